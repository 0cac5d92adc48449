/* One TLS connection's non-blocking I/O for the KMS's network loops: its OpenSSL
 * object, its two libevent events and its input and output buffers. It only moves
 * bytes; framing, requests and when to close are server.c's.
 *
 * Until the peer's first TLS record (its ClientHello) is in the socket whole, a
 * connection has no OpenSSL object and no write event, only an edge-triggered read
 * event: a peer that connects and sends a few bytes costs a few hundred bytes, not
 * the 45 KiB an SSL object with its handshake buffers costs (conn_io_hello).
 *
 * The read event is added once and stays (level-triggered, persistent, carrying the
 * idle timeout); the write event is added only while OpenSSL waits for the socket
 * to take more, so an ordinary request costs no epoll_ctl. Both events call back
 * with the same argument, given to conn_io_init. */
#pragma once

#include <event2/event.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Data is p[off..len); p[0..off) was consumed (wiped when the buffer is compacted or
 * freed), and bytes from len on never held any, so wiping p[0..len) wipes it all.
 * p is NULL while empty: idle connections hold no buffer. */
struct conn_buf {
        uint8_t *p;
        size_t off, len, cap;
};

struct conn_io {
        SSL *ssl;                   /* NULL until conn_io_hello says 1 */
        SSL_CTX *ctx;
        struct event_base *base;
        event_callback_fn on_readable, on_writable;
        void *arg;
        struct event *rev, *wev;
        const struct timeval *idle; /* NULL: no idle timeout */
        const char *peer;           /* for log messages; "" until the client is known */
        struct conn_buf in, out;
        unsigned long tls_error; /* OpenSSL's first error of the last failure, for the audit */
        int fd;
        bool reading;          /* rev is added */
        bool writing;          /* wev is added */
        bool write_blocked;    /* SSL_write waits for the socket to be writable */
        bool read_wants_write; /* so does SSL_read (it must answer the peer first) */
        bool accept_wants_write;
};

/* Take the accepted non-blocking socket fd, which io owns from now on (closed on
 * failure too), and start waiting for the peer's first bytes; TLS starts with
 * conn_io_hello. on_readable and on_writable get arg; EV_TIMEOUT in their `what`
 * means nothing moved that way for idle (never before conn_io_hello: the caller
 * bounds that time itself). -ENOMEM. */
int conn_io_init(struct conn_io *io, struct event_base *base, SSL_CTX *ctx, int fd, event_callback_fn on_readable,
                 event_callback_fn on_writable, void *arg, const struct timeval *idle, const char *peer);
/* Close the socket and free everything, wiping the buffers. */
void conn_io_done(struct conn_io *io);

/* Whether the peer's first TLS record is in: 1 when it is (the OpenSSL object now
 * exists and the handshake can start), 0 while it is not whole yet, -EPROTO when
 * the bytes are not TLS, -EPIPE when the peer closed, -ECONNRESET, -ENOMEM. Only
 * peeks: the bytes stay in the socket for OpenSSL. */
int conn_io_hello(struct conn_io *io);
/* The same test without starting TLS. */
int conn_io_hello_in(const struct conn_io *io);
/* One step of the TLS handshake (after conn_io_hello): 1 done, 0 waiting for the peer, negative on
 * failure (TLS errors logged). */
int conn_io_handshake(struct conn_io *io);

/* One SSL_read into the input: from the socket when it is readable (socket_ready),
 * otherwise only what OpenSSL already holds, so no read(2) is spent on EAGAIN.
 * 1 when bytes were added, 0 when there was nothing (or no room: then reading
 * pauses until conn_io_resume_reading), -EPIPE when the peer closed, -ECONNRESET or
 * -EPROTO when the connection failed (TLS errors logged), -ENOMEM. */
int conn_io_read(struct conn_io *io, bool socket_ready);
/* Unconsumed input: *n bytes at the returned address. */
const uint8_t *conn_io_input(const struct conn_io *io, size_t *n);
/* Make room for a message of n bytes at the start of the unconsumed input. -ENOMEM. */
int conn_io_reserve(struct conn_io *io, size_t n);
/* Remove the first n bytes of the input into *ret (malloc'ed, n bytes of data; the
 * caller wipes and frees it). -ENOMEM. */
int conn_io_take(struct conn_io *io, size_t n, uint8_t **ret);
/* Whether another SSL_read could add input now. */
bool conn_io_has_room(const struct conn_io *io);
void conn_io_pause_reading(struct conn_io *io);
/* No more I/O: remove both events (a peer that is gone leaves its socket readable
 * for ever). */
void conn_io_stop(struct conn_io *io);
int conn_io_resume_reading(struct conn_io *io);

/* Append data[0..n) to the output; io owns data from now on and wipes it once it is
 * sent. On -ENOMEM data is still the caller's. */
int conn_io_queue(struct conn_io *io, uint8_t *data, size_t n);
/* SSL_write as much of the output as the socket takes: 0 when all of it is out,
 * -EAGAIN when some waits (for EV_WRITE), other negative errno values on failure (as
 * conn_io_read's). */
int conn_io_flush(struct conn_io *io);
/* The write event fired: the socket takes data again. */
void conn_io_writable(struct conn_io *io);
size_t conn_io_unsent(const struct conn_io *io);
