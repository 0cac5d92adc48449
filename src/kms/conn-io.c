/* Non-blocking TLS on plain libevent events: see conn-io.h.
 *
 * Not bufferevent_openssl, for the syscalls: it calls SSL_read until OpenSSL says
 * WANT_READ, so every request costs a read(2) that returns EAGAIN, and it adds the
 * write event whenever output is queued and removes it once written, two epoll_ctl
 * per answer. Here a readable socket gets one SSL_read (with read-ahead, one read(2)
 * brings in whole records), then only what OpenSSL already holds is drained; output
 * is written when the caller flushes, straight away, and the write event is added
 * only when the socket is full. An ordinary request costs one read(2) and one
 * write(2).
 *
 * OpenSSL rules this file depends on:
 * - A non-blocking SSL_write that failed with WANT_WRITE must be called again with
 *   the same bytes, at least as many as before. SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER
 *   lets those bytes move (the output is reallocated when an answer is appended to
 *   it); SSL_MODE_ENABLE_PARTIAL_WRITE makes SSL_write return as each record goes
 *   out, so the output's offset always says exactly what OpenSSL has taken.
 * - With read-ahead, OpenSSL may hold whole records that epoll can no longer report
 *   (they have left the socket): SSL_has_pending() says so. SSL_pending() would not:
 *   it counts only the decrypted rest of the current record.
 * - SSL_get_error() reads the thread's error queue, which request handlers running
 *   on the same thread may have left non-empty: it is emptied before each SSL call
 *   (err_reset).
 * - After SSL_ERROR_SSL or SSL_ERROR_SYSCALL the SSL object takes no more I/O; the
 *   caller closes the connection.
 * - The socket BIO writes with write(2): a peer gone raises SIGPIPE, which the
 *   daemon ignores (main.c). */
#include "kms/conn-io.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shared/log.h"
#include "shared/macro.h"

/* Input buffer for small requests (a Get is about 150 bytes); a larger message gets
 * a buffer of its own size (conn_io_reserve), given back once it is taken. */
#define IN_MIN 4096
/* OpenSSL's read-ahead buffer: four full records, so a large request or a burst of
 * pipelined ones costs one read(2) per 64 KiB, not one per record. It is freed
 * whenever it runs empty (SSL_MODE_RELEASE_BUFFERS, tls.c): idle connections don't
 * hold it. Only once the handshake is done: a peer that stalls in its handshake
 * holds a buffer of one record at most. */
#define READ_AHEAD (64 * 1024)

/* Bytes from len on never held data (see struct conn_buf), so wiping p[0..len) is
 * enough. */
static void buf_free(struct conn_buf *b) {
        OPENSSL_clear_free(b->p, b->len);
        *b = (struct conn_buf) {};
}

static void buf_compact(struct conn_buf *b) {
        size_t n = b->len - b->off;
        memmove(b->p, b->p + b->off, n);
        OPENSSL_cleanse(b->p + n, b->off);
        b->len = n;
        b->off = 0;
}

/* Move the data into a new buffer of cap bytes (at least the data's size). */
static int buf_resize(struct conn_buf *b, size_t cap) {
        size_t n = b->len - b->off;
        uint8_t *p = malloc(cap);
        if (!p)
                return -ENOMEM;
        if (n > 0)
                memcpy(p, b->p + b->off, n);
        buf_free(b);
        *b = (struct conn_buf) { .p = p, .len = n, .cap = cap };
        return 0;
}

/* 1 when an SSL_read may append to the input, 0 when it is full. */
static int in_make_room(struct conn_buf *b) {
        if (!b->p) {
                b->p = malloc(IN_MIN);
                if (!b->p)
                        return -ENOMEM;
                b->cap = IN_MIN;
                return 1;
        }
        if (b->len < b->cap)
                return 1;
        if (b->off == 0)
                return 0;
        buf_compact(b);
        return 1;
}

/* After a message was taken: no buffer when none is needed, no big one for a little. */
static void in_trim(struct conn_buf *b) {
        if (b->off == b->len)
                buf_free(b);
        else if (b->cap > IN_MIN && b->len - b->off <= IN_MIN)
                (void) buf_resize(b, IN_MIN); /* on failure the big one stays: harmless */
}

/* Empty the thread's OpenSSL error queue, checking first: it is nearly always empty
 * already, and ERR_clear_error() walks all its slots. */
static void err_reset(void) {
        if (ERR_peek_error() != 0)
                ERR_clear_error();
}

/* Add the write event while OpenSSL waits for the socket to take data and remove it
 * once it no longer does: after the first, the only epoll_ctl calls there are. */
static int write_interest(struct conn_io *io) {
        bool want = io->write_blocked || io->read_wants_write || io->accept_wants_write;
        if (want == io->writing)
                return 0;
        if ((want ? event_add(io->wev, io->idle) : event_del(io->wev)) < 0)
                return -ENOMEM;
        io->writing = want;
        return 0;
}

/* A failed SSL call: -EPIPE when the peer closed, -ECONNRESET when the socket
 * failed (not errno, which may be stale: it must never read as -EAGAIN), -EPROTO for
 * TLS errors. OpenSSL's reason is logged, and the error queue left empty. */
static int tls_failure(struct conn_io *io, int ssl_error) {
        int r = ssl_error == SSL_ERROR_ZERO_RETURN ? -EPIPE : ssl_error == SSL_ERROR_SYSCALL ? -ECONNRESET : -EPROTO;
        unsigned long e = ERR_peek_error();
        io->tls_error = e;
        if (e) {
                char buf[256];
                ERR_error_string_n(e, buf, sizeof(buf));
                log_info("TLS error from %s: %s", io->peer[0] ? io->peer : "(handshake)", buf);
        }
        ERR_clear_error();
        return r;
}

int conn_io_init(struct conn_io *io, struct event_base *base, SSL_CTX *ctx, int fd, event_callback_fn on_readable,
                 event_callback_fn on_writable, void *arg, const struct timeval *idle, const char *peer) {
        *io = (struct conn_io) {
                .fd = fd, .idle = idle, .peer = peer, .ctx = ctx, .base = base,
                .on_readable = on_readable, .on_writable = on_writable, .arg = arg,
        };
        /* Edge-triggered until conn_io_hello: a peer that sent part of a record must
         * not wake the loop again and again while the rest does not come. */
        io->rev = event_new(base, fd, EV_READ | EV_PERSIST | EV_ET, on_readable, arg);
        if (!io->rev || event_add(io->rev, NULL) < 0) {
                conn_io_done(io);
                return -ENOMEM;
        }
        io->reading = true;
        return 0;
}

/* The peer's first record is in: the OpenSSL object, and the events for the rest
 * of the connection's life (level-triggered, see conn-io.h). Called from the read
 * event's own callback, which libevent allows to free its event. */
static int start_tls(struct conn_io *io) {
        io->ssl = SSL_new(io->ctx);
        if (!io->ssl || SSL_set_fd(io->ssl, io->fd) != 1)
                return -ENOMEM;
        SSL_set_accept_state(io->ssl);
        SSL_set_mode(io->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        /* A peer that closes without close_notify has just closed: messages carry
         * their own length, so nothing can be taken for whole that was cut short. */
        SSL_set_options(io->ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
        event_free(io->rev);
        io->reading = false;
        io->rev = event_new(io->base, io->fd, EV_READ | EV_PERSIST, io->on_readable, io->arg);
        io->wev = event_new(io->base, io->fd, EV_WRITE | EV_PERSIST, io->on_writable, io->arg);
        if (!io->rev || !io->wev || event_add(io->rev, io->idle) < 0)
                return -ENOMEM;
        io->reading = true;
        return 0;
}

int conn_io_hello_in(const struct conn_io *io) {
        if (io->ssl)
                return 1;
        uint8_t h[5];
        ssize_t n = recv(io->fd, h, sizeof(h), MSG_PEEK | MSG_DONTWAIT);
        if (n == 0)
                return -EPIPE;
        if (n < 0)
                return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -ECONNRESET;
        /* A TLS handshake record (22), version 3.x, at most 2^14 bytes of body. */
        if (h[0] != 22 || (n >= 2 && h[1] != 3))
                return -EPROTO;
        if (n < 5)
                return 0;
        size_t need = 5 + ((size_t) h[3] << 8 | h[4]);
        if (need > 5 + 16384)
                return -EPROTO;
        int avail = 0;
        if (ioctl(io->fd, FIONREAD, &avail) < 0)
                return -ECONNRESET;
        return (size_t) avail >= need;
}

int conn_io_hello(struct conn_io *io) {
        if (io->ssl)
                return 1;
        int r = conn_io_hello_in(io);
        if (r <= 0)
                return r;
        r = start_tls(io);
        return r < 0 ? r : 1;
}

void conn_io_done(struct conn_io *io) {
        if (io->rev)
                event_free(io->rev);
        if (io->wev)
                event_free(io->wev);
        /* SSL_set_fd's socket BIO leaves the descriptor open (BIO_NOCLOSE). */
        SSL_free(io->ssl);
        buf_free(&io->in);
        buf_free(&io->out);
        if (io->fd >= 0)
                close(io->fd);
        *io = (struct conn_io) { .fd = -1 };
}

int conn_io_handshake(struct conn_io *io) {
        err_reset();
        int r = SSL_do_handshake(io->ssl);
        int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(io->ssl, r);
        if (e != SSL_ERROR_NONE && e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                return tls_failure(io, e);
        if (r == 1) {
                SSL_set_read_ahead(io->ssl, 1);
                SSL_set_default_read_buffer_len(io->ssl, READ_AHEAD);
        }
        io->accept_wants_write = e == SSL_ERROR_WANT_WRITE;
        if (write_interest(io) < 0)
                return -ENOMEM;
        return r == 1;
}

int conn_io_read(struct conn_io *io, bool socket_ready) {
        if (!socket_ready && !SSL_has_pending(io->ssl))
                return 0;
        struct conn_buf *b = &io->in;
        int r = in_make_room(b);
        if (r < 0)
                return r;
        if (r == 0) {
                /* Full until the caller takes a message. The socket is level-triggered:
                 * left readable, it would wake the loop again and again meanwhile. */
                if (socket_ready)
                        conn_io_pause_reading(io);
                return 0;
        }
        size_t n = 0;
        io->read_wants_write = false;
        err_reset();
        int ok = SSL_read_ex(io->ssl, b->p + b->len, b->cap - b->len, &n);
        int e = ok == 1 ? SSL_ERROR_NONE : SSL_get_error(io->ssl, ok);
        if (e != SSL_ERROR_NONE && e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                return tls_failure(io, e);
        b->len += n;
        if (b->off == b->len)
                buf_free(b); /* only a partial record came: hold no buffer meanwhile */
        /* TLS 1.3 lets the peer ask for a key update, whose answer may not fit in the
         * socket right now: then the read waits for writability. */
        io->read_wants_write = e == SSL_ERROR_WANT_WRITE;
        if (write_interest(io) < 0)
                return -ENOMEM;
        return n > 0;
}

const uint8_t *conn_io_input(const struct conn_io *io, size_t *n) {
        *n = io->in.len - io->in.off;
        return io->in.p ? io->in.p + io->in.off : NULL;
}

int conn_io_reserve(struct conn_io *io, size_t n) {
        struct conn_buf *b = &io->in;
        if (b->off + n <= b->cap)
                return 0;
        if (n <= b->cap) {
                buf_compact(b);
                return 0;
        }
        return buf_resize(b, n);
}

int conn_io_take(struct conn_io *io, size_t n, uint8_t **ret) {
        struct conn_buf *b = &io->in;
        if (b->off == 0 && b->len == n) {
                /* The usual case, the buffer holds one whole message: hand the buffer
                 * itself over (bytes from n on never held data). */
                *ret = b->p;
                *b = (struct conn_buf) {};
                return 0;
        }
        uint8_t *m = malloc(n);
        if (!m)
                return -ENOMEM;
        memcpy(m, b->p + b->off, n);
        b->off += n;
        in_trim(b);
        *ret = m;
        return 0;
}

bool conn_io_has_room(const struct conn_io *io) {
        return !io->in.p || io->in.len < io->in.cap || io->in.off > 0;
}

void conn_io_pause_reading(struct conn_io *io) {
        if (io->reading && event_del(io->rev) == 0)
                io->reading = false;
}

void conn_io_stop(struct conn_io *io) {
        conn_io_pause_reading(io);
        if (io->writing && event_del(io->wev) == 0)
                io->writing = false;
}

int conn_io_resume_reading(struct conn_io *io) {
        if (io->reading)
                return 0;
        if (event_add(io->rev, io->idle) < 0)
                return -ENOMEM;
        io->reading = true;
        return 0;
}

int conn_io_queue(struct conn_io *io, uint8_t *data, size_t n) {
        struct conn_buf *b = &io->out;
        if (!b->p) {
                /* The usual case: the answer goes out from its own buffer, uncopied. */
                *b = (struct conn_buf) { .p = data, .len = n, .cap = n };
                return 0;
        }
        if (b->cap - b->len < n) {
                /* Doubling: answers to a pipelined burst append in linear time. */
                size_t unsent = b->len - b->off;
                if (buf_resize(b, MAX(unsent + n, 2 * unsent)) < 0)
                        return -ENOMEM;
        }
        memcpy(b->p + b->len, data, n);
        b->len += n;
        OPENSSL_clear_free(data, n);
        return 0;
}

int conn_io_flush(struct conn_io *io) {
        struct conn_buf *b = &io->out;
        while (b->p && !io->write_blocked) {
                size_t n = 0;
                err_reset();
                int ok = SSL_write_ex(io->ssl, b->p + b->off, b->len - b->off, &n);
                if (ok == 1) {
                        b->off += n;
                        if (b->off == b->len)
                                buf_free(b); /* answers may hold keys (Get): wiped */
                        continue;
                }
                int e = SSL_get_error(io->ssl, ok);
                if (e == SSL_ERROR_WANT_WRITE)
                        io->write_blocked = true;
                else if (e == SSL_ERROR_WANT_READ)
                        break; /* no renegotiation (tls.c): tried again on the next wake-up */
                else
                        return tls_failure(io, e);
        }
        if (write_interest(io) < 0)
                return -ENOMEM;
        return b->p ? -EAGAIN : 0;
}

void conn_io_writable(struct conn_io *io) {
        /* Flags only: the write event stays until a flush finds nothing waiting, so a
         * slow reader costs no epoll_ctl pair per wake-up. */
        io->write_blocked = false;
        io->accept_wants_write = false;
}

size_t conn_io_unsent(const struct conn_io *io) {
        return io->out.len - io->out.off;
}
