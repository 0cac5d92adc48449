/* Network loops and worker pool: see server.h.
 *
 * Several event loops (one per core by default) each accept on their own socket bound
 * to the same address (SO_REUSEPORT: the kernel spreads connections), do TLS and
 * framing, and answer read-only requests inline. A Create or Register is run inline
 * too, but its write is only queued: the store's committer hands the held reply back
 * to the loop once the group commit holding it is durable, so a durable Create costs
 * no thread of its own. Other requests that write go to a shared pool of worker
 * threads, because they wait for a disk commit; the answer comes back to the
 * connection's own loop.
 *
 * No bufferevents, for the syscalls: on a small machine they, and the wake-ups,
 * were half the server's CPU. A connection's TLS I/O is its own (conn-io.c): a
 * read event added once for the connection's life, one SSL_read per readable
 * wake-up (read-ahead brings whole records in one read(2)), answers written in the
 * same wake-up (at the end of the loop's pass: conn_flush_later), and a write event
 * only while the socket is full. A Get costs one read(2), one write(2) and the audit
 * line, no epoll_ctl (bufferevent_openssl: two reads, one of them EAGAIN, and two
 * epoll_ctl); the idle timeout rides on the read event, whose timer libevent re-arms
 * in user space as it fires.
 *
 * One request per connection is in flight at a time: while it is out (with a worker
 * or the committer), the next is not taken, and none is while the peer is slow to
 * take answers. Input is read meanwhile only as long as it fits the connection's
 * buffer, then reading pauses. So a connection's buffers are bounded by one message
 * (max-message-size) in and out, whatever the client does. A connection is freed
 * only when no request of it is out: the job coming back always finds it.
 *
 * Until its TLS handshake is done, a connection is unauthenticated ("pending"): it
 * costs little (no OpenSSL object before its ClientHello is in, conn-io.c), it must
 * finish within handshake-timeout, and pending connections are capped in total
 * (max-unauthenticated, at most half of max-connections, so the other half is left
 * to clients that proved who they are) and per source address. At the cap, a new
 * connection pushes out the oldest pending one of its loop instead of being
 * refused: a flood of connections that never finish cannot lock out a real client,
 * whose handshake takes milliseconds. What was refused, pushed out or timed out is
 * counted and logged at most every 10 s, and once a flood has drained, the freed
 * heap is given back to the system (malloc_trim). */
#include "kms/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tls/addr-limit.h"
#include "kms/conn-io.h"
#include "shared/log.h"
#include "shared/x509.h"

#define MAX_LOOPS 64
/* Counts of closed unauthenticated connections are logged at most this often. */
#define REPORT_INTERVAL_S 10
/* After this many unauthenticated connections closed, once few are left, the heap
 * is trimmed. */
#define TRIM_AFTER 1000
/* Refused handshakes audited one by one per second; the rest in one line. */
#define HANDSHAKE_AUDITS_PER_S 20

struct loop;

enum {
        STAT_TIMED_OUT,   /* handshake not done within handshake-timeout */
        STAT_PER_ADDRESS, /* refused: max-unauthenticated-per-address */
        STAT_EVICTED,     /* pushed out by a newer one at a limit */
        STAT_REFUSED,     /* refused: max-connections, nothing pending to push out */
        STAT_FAILED,      /* handshake failed (not TLS, refused certificate, ...) */
        STAT_N,
};

struct conn {
        struct conn *prev, *next;
        struct loop *loop;
        struct conn_io io;
        struct kms_client client;
        bool identified;
        bool pending;   /* counted as unauthenticated, in one of loop->pending[] */
        bool in_tls;    /* pending, and its ClientHello came: in loop->pending[1] */
        bool tls_started; /* the SSL object exists and records the peer's certificate */
        struct conn *pprev, *pnext;
        struct event *deadline; /* the handshake's; NULL once done */
        struct addr_slot *src;
        bool busy;      /* a request of this connection is being answered */
        bool closing;   /* close once the current request is answered and flushed */
        bool broken;    /* close as soon as no request is out: no more I/O */
        bool blocked;   /* output over the limit: no request is taken until it drains */
        bool flush_queued;
        struct conn *flush_next; /* in loop->flushing */
        unsigned revocation_checked; /* generation of the revocation set last checked + 1 */
};

struct job {
        struct job *next;
        struct conn *conn;
        uint8_t *req, *resp;
        size_t req_n, resp_n;
        int r;
        struct kms_defer defer; /* deferred: resp waits for the store's commit */
        int commit_r;           /* the commit's outcome, set by on_committed */
};

struct queue {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        struct job *head, *tail;
};

struct loop {
        struct kms_server *srv;
        struct event_base *base;
        struct evconnlistener *listener;
        struct event *done_ev, *stop_ev, *deadline, *resume_accept, *flush_ev;
        struct conn *flushing;      /* answers to write at the end of this pass (on_flush) */
        const struct timeval *idle; /* a common timeout of base (cheap to re-arm); NULL: none */
        struct queue done;       /* jobs the workers finished for this loop */
        struct conn *conns;
        /* Unauthenticated connections, oldest first: [0] those whose ClientHello has
         * not come yet, [1] those in their TLS handshake. */
        struct pending_list {
                struct conn *head, *tail;
        } pending[2];
        const struct timeval *handshake; /* a common timeout of base */
        unsigned in_flight;      /* jobs of this loop with the workers */
        bool shutting_down;
        pthread_t thread;
        bool thread_running;
};

struct kms_server {
        const struct kms_config *config;
        struct kms_dispatcher *dispatcher;
        SSL_CTX *ssl;
        int port;
        unsigned max_connections;  /* config, lowered to what the fd limit allows */
        unsigned max_pending;      /* max-unauthenticated, at most half of max_connections */
        unsigned n_pending;        /* all loops; atomic */
        struct addr_limit *per_address;
        unsigned long stats[STAT_N]; /* atomic; since the last report */
        unsigned long unauth_closed; /* atomic; since the last malloc_trim */
        unsigned long hs_audited, hs_unaudited; /* atomic; refused handshakes this second */
        unsigned long audit_failures_reported;
        time_t last_audit_report;
        time_t last_report;
        time_t certs_checked;      /* the server's certificate and CA, looked at daily */
        struct event *sigterm, *sigint, *sighup, *stats_ev;
        struct kms_revocation *revocation; /* NULL: no check */
        void (*reload)(void *userdata);
        void *reload_data;

        struct loop loops[MAX_LOOPS];
        unsigned n_loops;
        unsigned n_conns;        /* all loops; atomic */

        pthread_t *workers;
        unsigned n_workers;
        struct queue work;
        bool stop_workers;

        /* Deferred replies whose commit is pending; atomic. The store reports them
         * from its own thread, so the loops must outlive the last report. */
        unsigned long deferred_started, deferred_reported;
};

static void queue_push(struct queue *q, struct job *j) {
        j->next = NULL;
        if (q->tail)
                q->tail->next = j;
        else
                q->head = j;
        q->tail = j;
}

static void job_free(struct job *j) {
        if (!j)
                return;
        /* Requests (Register) and responses (Get) may carry key material. */
        if (j->req)
                OPENSSL_clear_free(j->req, j->req_n);
        if (j->resp)
                OPENSSL_clear_free(j->resp, j->resp_n);
        free(j);
}

/* From any thread: hand a finished job back to its connection's loop. */
static void post_done(struct job *j) {
        struct loop *l = j->conn->loop;
        pthread_mutex_lock(&l->done.lock);
        bool was_empty = !l->done.head;
        queue_push(&l->done, j);
        pthread_mutex_unlock(&l->done.lock);
        /* One wake-up per batch of answers, not one per answer. */
        if (was_empty)
                event_active(l->done_ev, EV_READ, 0);
}

/* The store's committer thread: a deferred reply's write is durable (or failed). */
static void on_committed(int r, void *userdata) {
        struct job *j = userdata;
        struct kms_server *s = j->conn->loop->srv;
        j->commit_r = r;
        post_done(j);
        __atomic_add_fetch(&s->deferred_reported, 1, __ATOMIC_RELEASE);
}

static void work_push(struct kms_server *s, struct job *j) {
        pthread_mutex_lock(&s->work.lock);
        queue_push(&s->work, j);
        pthread_cond_signal(&s->work.cond);
        pthread_mutex_unlock(&s->work.lock);
}

static void *worker_main(void *arg) {
        struct kms_server *s = arg;
        for (;;) {
                pthread_mutex_lock(&s->work.lock);
                while (!s->work.head && !s->stop_workers)
                        pthread_cond_wait(&s->work.cond, &s->work.lock);
                struct job *j = s->work.head;
                if (!j) {
                        pthread_mutex_unlock(&s->work.lock);
                        break;
                }
                s->work.head = j->next;
                if (!s->work.head)
                        s->work.tail = NULL;
                pthread_mutex_unlock(&s->work.lock);

                j->r = kms_process(s->dispatcher, &j->conn->client, j->req, j->req_n, NULL, &j->resp, &j->resp_n);
                OPENSSL_clear_free(j->req, j->req_n);
                j->req = NULL;
                post_done(j);
        }
        return NULL;
}

static void maybe_finish(struct loop *l) {
        if (l->shutting_down && l->in_flight == 0 && !l->conns)
                event_base_loopexit(l->base, NULL);
}

static void stat_add(struct kms_server *s, unsigned which) {
        __atomic_add_fetch(&s->stats[which], 1, __ATOMIC_RELAXED);
}

static void pending_unlink(struct conn *c) {
        struct pending_list *pl = &c->loop->pending[c->in_tls];
        if (c->pprev)
                c->pprev->pnext = c->pnext;
        else
                pl->head = c->pnext;
        if (c->pnext)
                c->pnext->pprev = c->pprev;
        else
                pl->tail = c->pprev;
        c->pprev = c->pnext = NULL;
}

static void pending_append(struct conn *c) {
        struct pending_list *pl = &c->loop->pending[c->in_tls];
        c->pprev = pl->tail;
        if (pl->tail)
                pl->tail->pnext = c;
        else
                pl->head = c;
        pl->tail = c;
}

/* The connection is no longer pending: authenticated, or going. */
static void pending_end(struct conn *c, bool authenticated) {
        if (!c->pending)
                return;
        struct kms_server *s = c->loop->srv;
        pending_unlink(c);
        c->pending = false;
        __atomic_sub_fetch(&s->n_pending, 1, __ATOMIC_RELAXED);
        addr_limit_release(s->per_address, c->src);
        c->src = NULL;
        if (c->deadline) {
                event_free(c->deadline);
                c->deadline = NULL;
        }
        if (!authenticated)
                __atomic_add_fetch(&s->unauth_closed, 1, __ATOMIC_RELAXED);
}

/* Its ClientHello came: from now on it is pushed out at a limit only when no
 * connection that has sent less is left to push out. */
static void pending_hello(struct conn *c) {
        if (c->in_tls)
                return;
        pending_unlink(c);
        c->in_tls = true;
        pending_append(c);
}

static void conn_free(struct conn *c) {
        struct loop *l = c->loop;
        pending_end(c, false);
        if (c->prev)
                c->prev->next = c->next;
        else
                l->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        __atomic_sub_fetch(&l->srv->n_conns, 1, __ATOMIC_RELAXED);
        conn_io_done(&c->io);
        free(c);
        maybe_finish(l);
}

/* No more I/O on this connection: it goes as soon as no request of it is out (see
 * conn_settle). Its events are removed now, so a peer that is gone (its socket
 * readable for ever) cannot keep waking the loop meanwhile. */
static void conn_drop(struct conn *c) {
        c->broken = c->closing = true;
        conn_io_stop(&c->io);
}

/* The one place connections are freed, at the end of every callback that touched
 * one: never while a request of it is out, since the job will come back to it, nor
 * while it waits in the loop's flush list (on_flush settles it). */
static void conn_settle(struct conn *c) {
        if (c->busy || c->flush_queued)
                return;
        if (c->broken || (c->closing && conn_io_unsent(&c->io) == 0))
                conn_free(c);
}

static int conn_flush(struct conn *c) {
        int r = conn_io_flush(&c->io);
        if (r < 0 && r != -EAGAIN)
                conn_drop(c);
        return r;
}

/* Write the connection's answers at the end of the loop's current pass, after the
 * other callbacks that epoll_wait made ready: libevent runs events of one priority
 * in the order they became active, so on_flush, activated now, comes last. Writing
 * each answer as soon as it is built would wake its client while the loop still has
 * requests in hand: with more busy threads than cores, woken clients then preempt
 * the loops mid-request (twice the futex and wake-up time in profiles). Get at 64
 * connections on 2 cores: about 65k ops/s writing at once, 80k writing in one go after
 * the work (bufferevents, which wrote on the next wake-up: 73k). No extra syscall:
 * the pass is the same wake-up. */
static void conn_flush_later(struct conn *c) {
        struct loop *l = c->loop;
        if (c->flush_queued || conn_io_unsent(&c->io) == 0)
                return;
        c->flush_queued = true;
        c->flush_next = l->flushing;
        if (!l->flushing)
                event_active(l->flush_ev, EV_READ, 0);
        l->flushing = c;
}

static void on_flush(evutil_socket_t fd, short what, void *arg) {
        (void) fd;
        (void) what;
        struct loop *l = arg;
        while (l->flushing) {
                struct conn *c = l->flushing;
                l->flushing = c->flush_next;
                c->flush_queued = false;
                if (!c->broken)
                        (void) conn_flush(c);
                conn_settle(c);
        }
}

/* Queue a finished job's response on its connection (its loop's thread). */
static void job_complete(struct job *j) {
        struct conn *c = j->conn;
        size_t max = c->loop->srv->config->max_message;
        c->busy = false;
        if (j->r < 0) {
                log_warning_errno(j->r, "Dropping connection from %s: cannot process request: %m", c->client.cn);
                conn_drop(c);
        } else if (!c->broken) {
                if (conn_io_queue(&c->io, j->resp, j->resp_n) == 0)
                        j->resp = NULL; /* the output wipes it once sent */
                else
                        conn_drop(c);
        }
        job_free(j);
        /* The peer is not taking its answers: take no request until it has. */
        if (!c->broken && conn_io_unsent(&c->io) > max && conn_flush(c) == -EAGAIN &&
            conn_io_unsent(&c->io) > max)
                c->blocked = true;
}

/* The handshake refused revoked certificates (revocation.c's verify callback); a
 * certificate revoked later (or during the handshake) is caught here, at the
 * connection's next request after the reload: one atomic load per request while
 * nothing changes. */
static bool conn_revoked(struct conn *c) {
        struct kms_revocation *r = c->loop->srv->revocation;
        if (!r)
                return false;
        unsigned gen = kms_revocation_generation(r) + 1;
        if (c->revocation_checked == gen)
                return false;
        c->revocation_checked = gen;
        X509 *cert = SSL_get0_peer_certificate(c->io.ssl);
        if (!kms_revocation_denies(r, cert, c->client.fingerprint))
                return false;
        log_notice("Closing connection from %s: its certificate (sha256 %s) is revoked", c->client.cn,
                   c->client.fingerprint);
        conn_drop(c);
        return true;
}

/* Take the next whole message off the connection and run or queue it. True when
 * another buffered message may follow right away. */
static bool conn_take_one(struct conn *c) {
        struct loop *l = c->loop;
        struct kms_server *s = l->srv;
        if (c->busy || c->closing || c->blocked || !c->identified)
                return false;
        if (conn_revoked(c))
                return false;
        size_t avail;
        const uint8_t *in = conn_io_input(&c->io, &avail);
        if (avail < TTLV_HEADER_SIZE)
                return false;
        size_t total;
        int r = ttlv_frame_size(in, s->config->max_message, &total);
        if (r < 0) {
                /* Not a KMIP message, or one larger than we accept: there is no
                 * reliable way to resynchronise the stream, so close it. */
                log_notice("Closing connection from %s: %s", c->client.cn,
                           r == -EMSGSIZE ? "message larger than max-message-size" : "not a KMIP message");
                conn_drop(c);
                return false;
        }
        if (avail < total) {
                /* Room for all of it, so reading goes on until it is in. */
                if (conn_io_reserve(&c->io, total) < 0)
                        conn_drop(c);
                return false;
        }
        struct job *j = calloc(1, sizeof(*j));
        if (!j || conn_io_take(&c->io, total, &j->req) < 0) {
                free(j);
                conn_drop(c);
                return false;
        }
        j->req_n = total;
        j->conn = c;
        j->defer = (struct kms_defer) { .done = on_committed, .userdata = j };
        c->busy = true;
        /* Reads are answered right here: no thread hand-off, no context switch; so
         * are Creates, whose reply is held until the store's commit. Only other
         * requests that write (and so wait for a disk commit) go to the workers. */
        j->r = kms_process(s->dispatcher, &c->client, j->req, j->req_n, &j->defer, &j->resp, &j->resp_n);
        if (j->defer.deferred) {
                /* The job is the committer's now, even if j->r < 0: on_committed
                 * brings it back. */
                __atomic_add_fetch(&s->deferred_started, 1, __ATOMIC_RELAXED);
        } else if (j->r != -EWOULDBLOCK) {
                job_complete(j);
                return !c->broken && !c->blocked;
        } else {
                work_push(s, j);
        }
        /* The next request waits until this answer is back: one in flight. */
        l->in_flight++;
        return false;
}

/* One SSL_read into the input while the connection still takes requests. 1 when
 * bytes came, 0 when not, negative when the connection is done for. */
static int conn_fill(struct conn *c, bool socket_ready) {
        if (c->closing) {
                if (socket_ready)
                        conn_io_pause_reading(&c->io); /* level-triggered: stop the wake-ups */
                return 0;
        }
        int r = conn_io_read(&c->io, socket_ready);
        if (r == -EPIPE) {
                /* The peer closed: what it sent is in, and the answer it waits for
                 * (if any) still goes out before the connection does. */
                c->closing = true;
                conn_io_pause_reading(&c->io);
                return 0;
        }
        if (r < 0)
                conn_drop(c);
        return r;
}

/* Why a handshake failed, for the audit log. */
static const char *handshake_failure(const struct conn *c, int r, char *buf, size_t size) {
        if (!c->io.ssl)
                return "not TLS";
        long v = SSL_get_verify_result(c->io.ssl);
        if (v != X509_V_OK) {
                snprintf(buf, size, "certificate refused: %s", X509_verify_cert_error_string(v));
                return buf;
        }
        if (r == -EACCES)
                return "certificate without a subject CN";
        const char *why = c->io.tls_error ? ERR_reason_error_string(c->io.tls_error) : NULL;
        snprintf(buf, size, "TLS handshake failed: %s", why ? why : "connection reset");
        return buf;
}

/* A handshake that failed: counted and audited (a peer that merely closed is not a
 * refusal), and the connection goes. The audit takes HANDSHAKE_AUDITS_PER_S lines
 * a second; beyond that on_stats writes one line with the count, so a flood of bad
 * handshakes cannot fill the audit log's file system (which, failing closed, would
 * refuse every change). */
static void handshake_failed(struct conn *c, int r) {
        struct kms_server *s = c->loop->srv;
        log_debug("Handshake from %s failed: %s", c->client.peer, strerror(-r));
        if (r != -EPIPE) {
                stat_add(s, STAT_FAILED);
                if (__atomic_add_fetch(&s->hs_audited, 1, __ATOMIC_RELAXED) <= HANDSHAKE_AUDITS_PER_S) {
                        char buf[192];
                        struct audit_event ev = {
                                .fingerprint = c->client.fingerprint, .peer = c->client.peer,
                                .operation = "(TLS handshake)", .status = KMIP_STATUS_OPERATION_FAILED,
                                .message = handshake_failure(c, r, buf, sizeof(buf)),
                        };
                        (void) audit_record(s->dispatcher->audit, &ev);
                } else
                        __atomic_add_fetch(&s->hs_unaudited, 1, __ATOMIC_RELAXED);
        }
        conn_drop(c);
}

static int conn_handshake(struct conn *c) {
        /* The verify callback checks the certificate against this revocation set or
         * a newer one: the first request need not check again unless it changed. */
        struct kms_revocation *rev = c->loop->srv->revocation;
        unsigned gen = rev ? kms_revocation_generation(rev) : 0;
        int r = conn_io_hello(&c->io);
        if (r > 0 && c->pending)
                pending_hello(c);
        if (r > 0 && !c->tls_started) {
                tls_record_peer(c->io.ssl, c->client.fingerprint);
                c->tls_started = true;
        }
        if (r > 0)
                r = conn_io_handshake(&c->io);
        if (r <= 0) {
                if (r < 0)
                        handshake_failed(c, r);
                return r;
        }
        char fp[TLS_FINGERPRINT_SIZE];
        const char *why = NULL;
        if (tls_peer_identity(c->io.ssl, c->client.cn, sizeof(c->client.cn), fp, &why) < 0) {
                /* Before any request: a certificate that names no single, clean
                 * identity could otherwise be taken for another client. */
                log_notice("Refusing client certificate %s: %s", fp[0] ? fp : "(none)", why);
                char what[128];
                snprintf(what, sizeof(what), "(certificate refused: %s)", why);
                struct audit_event ev = {
                        .fingerprint = fp, .peer = c->client.peer, .operation = what,
                        .status = KMIP_STATUS_OPERATION_FAILED, .reason = KMIP_REASON_AUTHENTICATION_NOT_SUCCESSFUL,
                };
                (void) audit_record(c->loop->srv->dispatcher->audit, &ev);
                c->client.cn[0] = 0;
                stat_add(c->loop->srv, STAT_FAILED);
                conn_drop(c);
                return -EACCES;
        }
        memcpy(c->client.fingerprint, fp, sizeof(fp));
        c->identified = true;
        c->revocation_checked = gen + 1;
        pending_end(c, true);
        log_debug("Client %s connected (%s)", c->client.cn, c->client.fingerprint);
        return 1;
}

/* Everything a connection can do now without waiting: take the requests it has,
 * read (from the socket once, when it is readable; then only what OpenSSL holds),
 * and have the answers written at the end of the pass. */
static void conn_pump(struct conn *c, bool socket_ready) {
        if (!c->identified) {
                if (conn_handshake(c) <= 0)
                        return;
                /* The handshake read what the socket had; the request may be in
                 * OpenSSL's buffer already, or come with the next wake-up. */
                socket_ready = false;
        }
        for (;;) {
                while (conn_take_one(c))
                        ;
                if (c->broken)
                        return;
                int r = conn_fill(c, socket_ready);
                socket_ready = false;
                if (r < 0)
                        return;
                if (r > 0)
                        continue;
                if (!c->blocked)
                        break;
                /* The socket takes data again (on_writable): drained, the
                 * connection takes requests again. */
                (void) conn_flush(c);
                if (c->broken)
                        return;
                if (conn_io_unsent(&c->io) > 0)
                        break;
                c->blocked = false;
        }
        conn_flush_later(c);
        /* Reading paused when the input was full: it has room again. */
        if (!c->closing && conn_io_has_room(&c->io) && conn_io_resume_reading(&c->io) < 0)
                conn_drop(c);
}

static void on_readable(evutil_socket_t fd, short what, void *arg) {
        (void) fd;
        struct conn *c = arg;
        if (what & EV_TIMEOUT) {
                /* Idle: nothing came for idle-timeout. A connection waiting for its
                 * answer, or for the peer to take one (the write event's own timeout
                 * watches that), is not idle. */
                if (!c->busy && conn_io_unsent(&c->io) == 0) {
                        log_debug("Closing idle connection from %s", c->identified ? c->client.cn : "(handshake)");
                        conn_drop(c);
                }
        } else {
                conn_pump(c, true);
        }
        conn_settle(c);
}

static void on_writable(evutil_socket_t fd, short what, void *arg) {
        (void) fd;
        struct conn *c = arg;
        if (what & EV_TIMEOUT) {
                log_debug("Closing connection from %s: it took nothing for idle-timeout",
                          c->identified ? c->client.cn : "(handshake)");
                conn_drop(c);
        } else {
                conn_io_writable(&c->io);
                /* A read that waited for writability (TLS 1.3 key update) goes on too. */
                conn_pump(c, c->io.read_wants_write);
        }
        conn_settle(c);
}

static void on_done(evutil_socket_t fd, short what, void *arg) {
        (void) fd;
        (void) what;
        struct loop *l = arg;
        pthread_mutex_lock(&l->done.lock);
        struct job *list = l->done.head;
        l->done.head = l->done.tail = NULL;
        pthread_mutex_unlock(&l->done.lock);

        while (list) {
                struct job *j = list;
                list = j->next;
                struct conn *c = j->conn;
                if (j->defer.deferred) {
                        kms_defer_finish(l->srv->dispatcher, &c->client, &j->defer, j->commit_r);
                        if (j->commit_r < 0 && !c->closing) {
                                /* The held reply promised what the store could not
                                 * keep: run the request again, waiting for its commit,
                                 * for a true answer. */
                                OPENSSL_clear_free(j->resp, j->resp_n);
                                j->resp = NULL;
                                j->defer.deferred = false;
                                work_push(l->srv, j);
                                continue;
                        }
                        /* Closing, no time to run it again: the connection goes
                         * without that answer rather than with a false one. */
                        if (j->commit_r < 0)
                                j->r = j->commit_r;
                }
                l->in_flight--;
                job_complete(j);
                if (!c->broken)
                        conn_pump(c, false);
                conn_settle(c);
        }
        maybe_finish(l);
}

static void on_handshake_deadline(evutil_socket_t fd, short what, void *arg) {
        (void) fd;
        (void) what;
        struct conn *c = arg;
        stat_add(c->loop->srv, STAT_TIMED_OUT);
        log_debug("Closing connection from %s: no handshake within handshake-timeout", c->client.peer);
        conn_drop(c);
        conn_settle(c);
}

/* Make room by closing this loop's oldest pending connection that has not sent its
 * ClientHello, or else its oldest one in a TLS handshake; false if it has none. A
 * flood of connections that send nothing or a few bytes, the cheapest there is,
 * so never pushes out a client whose handshake is under way. Nor one whose
 * ClientHello is already in its socket, the loop not having got to it yet (a real
 * client sends it as soon as it connects): the oldest few are looked at. */
static bool evict_oldest(struct loop *l) {
        struct conn *c;
        for (unsigned i = 0; (c = l->pending[0].head) && i < 8; i++) {
                if (conn_io_hello_in(&c->io) <= 0)
                        break;
                pending_hello(c);
        }
        if (!c)
                c = l->pending[1].head;
        if (!c)
                return false;
        stat_add(l->srv, STAT_EVICTED);
        log_debug("Pushing out pending connection from %s (%s)", c->client.peer,
                  c->in_tls ? "in its TLS handshake" : "no ClientHello yet");
        conn_drop(c);
        conn_settle(c); /* a pending connection has no request out: freed now */
        return true;
}

static void on_accept(struct evconnlistener *listener, evutil_socket_t fd, struct sockaddr *addr, int len, void *arg) {
        (void) listener;
        (void) len;
        struct loop *l = arg;
        struct kms_server *s = l->srv;
        if (l->shutting_down) {
                evutil_closesocket(fd);
                return;
        }
        struct addr_slot *src = NULL;
        if (addr_limit_acquire(s->per_address, addr, &src) < 0) {
                stat_add(s, STAT_PER_ADDRESS);
                evutil_closesocket(fd);
                return;
        }
        /* At a limit, the oldest pending connection of this loop makes room. */
        if (__atomic_add_fetch(&s->n_pending, 1, __ATOMIC_RELAXED) > s->max_pending && !evict_oldest(l)) {
                __atomic_sub_fetch(&s->n_pending, 1, __ATOMIC_RELAXED);
                stat_add(s, STAT_REFUSED);
                addr_limit_release(s->per_address, src);
                evutil_closesocket(fd);
                return;
        }
        if (__atomic_add_fetch(&s->n_conns, 1, __ATOMIC_RELAXED) > s->max_connections && !evict_oldest(l)) {
                __atomic_sub_fetch(&s->n_conns, 1, __ATOMIC_RELAXED);
                __atomic_sub_fetch(&s->n_pending, 1, __ATOMIC_RELAXED);
                stat_add(s, STAT_REFUSED);
                addr_limit_release(s->per_address, src);
                evutil_closesocket(fd);
                return;
        }
        int one = 1;
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct conn *c = calloc(1, sizeof(*c));
        if (c)
                c->deadline = evtimer_new(l->base, on_handshake_deadline, c);
        if (!c || !c->deadline ||
            conn_io_init(&c->io, l->base, s->ssl, fd, on_readable, on_writable, c, l->idle, c->client.cn) < 0) {
                if (!c || !c->deadline)
                        evutil_closesocket(fd);
                if (c && c->deadline)
                        event_free(c->deadline);
                free(c);
                __atomic_sub_fetch(&s->n_conns, 1, __ATOMIC_RELAXED);
                __atomic_sub_fetch(&s->n_pending, 1, __ATOMIC_RELAXED);
                addr_limit_release(s->per_address, src);
                return;
        }
        addr_text(addr, c->client.peer, sizeof(c->client.peer));
        c->loop = l;
        c->next = l->conns;
        if (l->conns)
                l->conns->prev = c;
        l->conns = c;
        c->pending = true;
        c->src = src;
        pending_append(c);
        (void) evtimer_add(c->deadline, l->handshake);
}

/* Once a second on loop 0: log what happened to unauthenticated connections, at
 * most every REPORT_INTERVAL_S (one line, not one per connection, in a flood), and
 * give the heap back once a flood has drained: glibc returns freed memory from the
 * middle of its heaps only on malloc_trim, and a flood leaves it scattered (the
 * heap grew to 2.4 GB after four floods and stayed there). */
/* The server's certificate and CA: once either has ended no client connects,
 * so each within X509_WARN_DAYS of its end is a warning and an audit line,
 * daily. */
static void check_own_certs(struct kms_server *s) {
        const struct {
                const char *path, *what;
        } certs[] = {
                { s->config->tls_cert, "server certificate (tls-cert)" },
                { s->config->tls_ca, "client CA certificate (tls-ca)" },
        };
        time_t now = time(NULL);
        for (size_t i = 0; i < sizeof(certs) / sizeof(certs[0]); i++) {
                int64_t end = x509_file_end(certs[i].path);
                if (!x509_ends_soon(end, now))
                        continue;
                char msg[512];
                int64_t days = x509_days_left(end, now);
                if (days == 0)
                        snprintf(msg, sizeof(msg), "The %s %s has expired: clients refuse it; issue a new one",
                                 certs[i].what, certs[i].path);
                else
                        snprintf(msg, sizeof(msg), "The %s %s ends in %lld days: issue a new one before then",
                                 certs[i].what, certs[i].path, (long long) days);
                log_warning("%s", msg);
                struct audit_event ev = { .operation = "(certificate expiring)", .message = msg };
                (void) audit_record(s->dispatcher->audit, &ev);
        }
        s->certs_checked = now;
}

static void on_stats(evutil_socket_t fd, short what, void *arg) {
        (void) fd;
        (void) what;
        struct kms_server *s = arg;
        if (time(NULL) - s->certs_checked >= 86400)
                check_own_certs(s);
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        unsigned pending = __atomic_load_n(&s->n_pending, __ATOMIC_RELAXED);
        if (now.tv_sec - s->last_report >= REPORT_INTERVAL_S) {
                unsigned long n[STAT_N], sum = 0;
                for (unsigned i = 0; i < STAT_N; i++)
                        sum += n[i] = __atomic_exchange_n(&s->stats[i], 0, __ATOMIC_RELAXED);
                if (sum > 0) {
                        char msg[384];
                        snprintf(msg, sizeof(msg),
                                 "Unauthenticated connections closed in the last %lld s: %lu past "
                                 "handshake-timeout, %lu over max-unauthenticated-per-address, %lu pushed out "
                                 "by newer ones at a limit, %lu refused at max-connections, %lu failed "
                                 "handshakes; %u pending now",
                                 (long long) (now.tv_sec - s->last_report), n[STAT_TIMED_OUT], n[STAT_PER_ADDRESS],
                                 n[STAT_EVICTED], n[STAT_REFUSED], n[STAT_FAILED], pending);
                        log_notice("%s", msg);
                        struct audit_event ev = {
                                .operation = "(unauthenticated connections)", .status = KMIP_STATUS_OPERATION_FAILED,
                                .message = msg,
                        };
                        (void) audit_record(s->dispatcher->audit, &ev);
                }
                if (sum > 0)
                        s->last_report = now.tv_sec;
        }
        /* Audit lines that could not be written: the first time at once, then at
         * most every REPORT_INTERVAL_S. */
        unsigned long failed = audit_failures(s->dispatcher->audit);
        if (failed != s->audit_failures_reported && now.tv_sec - s->last_audit_report >= REPORT_INTERVAL_S) {
                log_warning("%lu audit lines could not be written (%s)", failed - s->audit_failures_reported,
                            s->config->audit_continue ? "audit-failure = continue: served anyway"
                                                      : "their requests were refused");
                s->audit_failures_reported = failed;
                s->last_audit_report = now.tv_sec;
        }
        __atomic_store_n(&s->hs_audited, 0, __ATOMIC_RELAXED);
        unsigned long unaudited = __atomic_exchange_n(&s->hs_unaudited, 0, __ATOMIC_RELAXED);
        if (unaudited > 0) {
                char msg[128];
                snprintf(msg, sizeof(msg), "%lu more refused handshakes in the last second, not audited one by one",
                         unaudited);
                struct audit_event ev = {
                        .operation = "(TLS handshake)", .status = KMIP_STATUS_OPERATION_FAILED, .message = msg,
                };
                (void) audit_record(s->dispatcher->audit, &ev);
        }
#ifdef __GLIBC__
        if (__atomic_load_n(&s->unauth_closed, __ATOMIC_RELAXED) >= TRIM_AFTER && pending <= s->max_pending / 16) {
                __atomic_store_n(&s->unauth_closed, 0, __ATOMIC_RELAXED);
                (void) malloc_trim(0);
                log_debug("Flood of unauthenticated connections drained: heap trimmed");
        }
#endif
}

static void on_resume_accept(evutil_socket_t fd, short what, void *arg) {
        (void) fd;
        (void) what;
        struct loop *l = arg;
        if (!l->shutting_down)
                evconnlistener_enable(l->listener);
}

/* accept() failed, typically out of descriptors (EMFILE): pause accepting for a
 * moment instead of spinning on a listening socket that stays readable. */
static void on_accept_error(struct evconnlistener *listener, void *arg) {
        struct loop *l = arg;
        int err = EVUTIL_SOCKET_ERROR();
        log_warning_errno(-err, "Cannot accept connections: %m; pausing for 100 ms");
        evconnlistener_disable(listener);
        struct timeval t = { .tv_usec = 100000 };
        event_add(l->resume_accept, &t);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg) {
        (void) fd;
        (void) what;
        struct loop *l = arg;
        log_warning("Requests still running after 10 s; stopping anyway");
        event_base_loopexit(l->base, NULL);
}

/* In each loop's own thread: stop accepting, close idle connections now and busy
 * ones once their answer is flushed, then leave the loop. */
static void on_stop(evutil_socket_t fd, short what, void *arg) {
        (void) fd;
        (void) what;
        struct loop *l = arg;
        if (l->shutting_down)
                return;
        l->shutting_down = true;
        evconnlistener_disable(l->listener);
        for (struct conn *c = l->conns, *n; c; c = n) {
                n = c->next;
                c->closing = true;
                conn_settle(c);
        }
        struct timeval ten = { .tv_sec = 10 };
        event_add(l->deadline, &ten);
        maybe_finish(l);
}

static void on_sighup(evutil_socket_t sig, short what, void *arg) {
        (void) sig;
        (void) what;
        struct kms_server *s = arg;
        if (s->reload)
                s->reload(s->reload_data);
}

void kms_server_set_revocation(struct kms_server *s, struct kms_revocation *r) {
        s->revocation = r;
}

void kms_server_on_reload(struct kms_server *s, void (*reload)(void *userdata), void *userdata) {
        s->reload = reload;
        s->reload_data = userdata;
}

static void on_signal(evutil_socket_t sig, short what, void *arg) {
        (void) what;
        struct kms_server *s = arg;
        unsigned in_flight = 0;
        for (unsigned i = 0; i < s->n_loops; i++)
                in_flight += __atomic_load_n(&s->loops[i].in_flight, __ATOMIC_RELAXED);
        log_notice("Received %s: finishing in-flight requests (%u with workers), then stopping",
                   sig == SIGTERM ? "SIGTERM" : "SIGINT", in_flight);
        for (unsigned i = 0; i < s->n_loops; i++)
                event_active(s->loops[i].stop_ev, EV_READ, 0);
}

/* "HOST:PORT" or "[V6]:PORT", numeric host, port 0 allowed (any free port). */
static int parse_listen(const char *text, uint16_t port_override, struct sockaddr_storage *ss, int *len) {
        char host[256];
        const char *colon = strrchr(text, ':');
        if (!colon || (size_t) (colon - text) >= sizeof(host))
                return -EINVAL;
        memcpy(host, text, (size_t) (colon - text));
        host[colon - text] = 0;
        char *h = host;
        size_t hl = strlen(h);
        if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
                h[hl - 1] = 0;
                h++;
        }
        char port[16];
        snprintf(port, sizeof(port), "%u", (unsigned) port_override);
        struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE, .ai_socktype = SOCK_STREAM };
        struct addrinfo *ai = NULL;
        if (getaddrinfo(h, port_override ? port : colon + 1, &hints, &ai) != 0 || !ai)
                return -EINVAL;
        memcpy(ss, ai->ai_addr, ai->ai_addrlen);
        *len = (int) ai->ai_addrlen;
        freeaddrinfo(ai);
        return 0;
}

static int loop_init(struct kms_server *s, struct loop *l, uint16_t port) {
        l->srv = s;
        pthread_mutex_init(&l->done.lock, NULL);
        pthread_cond_init(&l->done.cond, NULL);
        l->base = event_base_new();
        if (!l->base)
                return -ENOMEM;
        struct sockaddr_storage ss;
        int sslen = sizeof(ss);
        if (parse_listen(s->config->listen, port, &ss, &sslen) < 0) {
                log_error("Cannot parse listen address '%s' (expected HOST:PORT)", s->config->listen);
                return -EINVAL;
        }
        /* SO_REUSEPORT: every loop has its own listening socket on the same address,
         * and the kernel spreads new connections over them. */
        l->listener = evconnlistener_new_bind(l->base, on_accept, l,
                                              LEV_OPT_REUSEABLE | LEV_OPT_REUSEABLE_PORT | LEV_OPT_CLOSE_ON_FREE, 4096,
                                              (struct sockaddr *) &ss, sslen);
        if (!l->listener)
                return negative_errno();
        l->done_ev = event_new(l->base, -1, EV_PERSIST | EV_READ, on_done, l);
        l->flush_ev = event_new(l->base, -1, EV_READ, on_flush, l);
        l->stop_ev = event_new(l->base, -1, EV_READ, on_stop, l);
        l->deadline = evtimer_new(l->base, on_deadline, l);
        l->resume_accept = evtimer_new(l->base, on_resume_accept, l);
        if (!l->done_ev || !l->flush_ev || !l->stop_ev || !l->deadline || !l->resume_accept)
                return -ENOMEM;
        struct timeval hs = { .tv_sec = s->config->handshake_timeout };
        l->handshake = event_base_init_common_timeout(l->base, &hs);
        if (!l->handshake)
                return -ENOMEM;
        if (s->config->idle_timeout > 0) {
                /* Every connection's timer has this one duration: a common timeout
                 * keeps them in a queue, re-armed in constant time. */
                struct timeval idle = { .tv_sec = s->config->idle_timeout };
                l->idle = event_base_init_common_timeout(l->base, &idle);
                if (!l->idle)
                        return -ENOMEM;
        }
        evconnlistener_set_error_cb(l->listener, on_accept_error);
        event_add(l->done_ev, NULL);
        event_add(l->stop_ev, NULL);
        return 0;
}

int kms_server_new(const struct kms_config *c, struct kms_dispatcher *e, SSL_CTX *ctx, struct kms_server **ret) {
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        pthread_once(&once, (void (*)(void)) evthread_use_pthreads);
        struct kms_server *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->config = c;
        s->dispatcher = e;
        s->ssl = ctx;
        pthread_mutex_init(&s->work.lock, NULL);
        pthread_cond_init(&s->work.cond, NULL);

        /* Every connection is a descriptor: keep room under the limit for the store,
         * the log and the listeners, rather than fail accept() at the limit. */
        s->max_connections = c->max_connections;
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur > 256 &&
            s->max_connections > rl.rlim_cur - 128) {
                s->max_connections = (unsigned) (rl.rlim_cur - 128);
                log_notice("max-connections lowered to %u by the open file limit (%llu): to serve more, raise the "
                           "limit (ulimit -n, or LimitNOFILE= in the service unit), else set max-connections "
                           "to at most this in kms.conf", s->max_connections, (unsigned long long) rl.rlim_cur);
        }

        int r = addr_limit_new(c->max_unauthenticated_per_address, &s->per_address);
        if (r < 0)
                goto fail;
        s->max_pending = MIN(c->max_unauthenticated, MAX(s->max_connections / 2, 1U));
        if (s->max_pending < c->max_unauthenticated)
                log_notice("max-unauthenticated lowered to %u, half of max-connections: the rest is for "
                           "authenticated clients", s->max_pending);

        unsigned n = c->network_threads;
        if (n == 0) {
                long cpus = sysconf(_SC_NPROCESSORS_ONLN);
                n = cpus > 0 ? (unsigned) cpus : 1;
        }
        n = MIN(n, (unsigned) MAX_LOOPS);
        for (; s->n_loops < n; s->n_loops++) {
                r = loop_init(s, &s->loops[s->n_loops], (uint16_t) s->port);
                if (r < 0) {
                        s->n_loops++; /* so kms_server_free cleans it up */
                        goto fail;
                }
                if (s->n_loops == 0) {
                        /* With port 0 the first socket picks a port; the others join it. */
                        struct sockaddr_storage bound;
                        socklen_t blen = sizeof(bound);
                        if (getsockname(evconnlistener_get_fd(s->loops[0].listener), (struct sockaddr *) &bound, &blen) == 0)
                                s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *) &bound)->sin6_port
                                                                            : ((struct sockaddr_in *) &bound)->sin_port);
                }
        }
        r = -ENOMEM;
        s->sigterm = evsignal_new(s->loops[0].base, SIGTERM, on_signal, s);
        s->sigint = evsignal_new(s->loops[0].base, SIGINT, on_signal, s);
        s->sighup = evsignal_new(s->loops[0].base, SIGHUP, on_sighup, s);
        if (!s->sigterm || !s->sigint || !s->sighup)
                goto fail;
        event_add(s->sigterm, NULL);
        event_add(s->sigint, NULL);
        event_add(s->sighup, NULL);
        s->stats_ev = event_new(s->loops[0].base, -1, EV_PERSIST, on_stats, s);
        if (!s->stats_ev)
                goto fail;
        struct timeval second = { .tv_sec = 1 };
        event_add(s->stats_ev, &second);
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        s->last_report = now.tv_sec;

        s->workers = calloc(c->workers, sizeof(pthread_t));
        if (!s->workers)
                goto fail;
        for (; s->n_workers < c->workers; s->n_workers++)
                if (pthread_create(&s->workers[s->n_workers], NULL, worker_main, s) != 0) {
                        r = -EAGAIN;
                        goto fail;
                }
        *ret = s;
        return 0;
fail:
        kms_server_free(s);
        return r;
}

int kms_server_port(const struct kms_server *s) {
        return s->port;
}

static void *loop_main(void *arg) {
        struct loop *l = arg;
        (void) event_base_dispatch(l->base);
        return NULL;
}

int kms_server_run(struct kms_server *s) {
        /* Signals are blocked in the loop threads, so they reach the main thread,
         * which runs loop 0 and its signal events. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        for (unsigned i = 1; i < s->n_loops; i++)
                if (pthread_create(&s->loops[i].thread, NULL, loop_main, &s->loops[i]) == 0)
                        s->loops[i].thread_running = true;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        int r = event_base_dispatch(s->loops[0].base) < 0 ? -EIO : 0;
        for (unsigned i = 1; i < s->n_loops; i++)
                if (s->loops[i].thread_running) {
                        pthread_join(s->loops[i].thread, NULL);
                        s->loops[i].thread_running = false;
                }
        return r;
}

static void loop_free(struct loop *l) {
        /* Jobs the workers finished after the loop stopped. */
        for (struct job *j = l->done.head, *n; j; j = n) {
                n = j->next;
                job_free(j);
        }
        while (l->conns) {
                struct conn *c = l->conns;
                l->conns = c->next;
                pending_end(c, false);
                conn_io_done(&c->io);
                free(c);
        }
        if (l->listener)
                evconnlistener_free(l->listener);
        if (l->done_ev)
                event_free(l->done_ev);
        if (l->flush_ev)
                event_free(l->flush_ev);
        if (l->stop_ev)
                event_free(l->stop_ev);
        if (l->deadline)
                event_free(l->deadline);
        if (l->resume_accept)
                event_free(l->resume_accept);
        if (l->base)
                event_base_free(l->base);
        pthread_mutex_destroy(&l->done.lock);
        pthread_cond_destroy(&l->done.cond);
}

void kms_server_free(struct kms_server *s) {
        if (!s)
                return;
        pthread_mutex_lock(&s->work.lock);
        s->stop_workers = true;
        pthread_cond_broadcast(&s->work.cond);
        pthread_mutex_unlock(&s->work.lock);
        for (unsigned i = 0; i < s->n_workers; i++)
                pthread_join(s->workers[i], NULL);
        free(s->workers);
        /* Commits are quick and always report, success or not: wait for the last
         * deferred reply to come back before its loop goes. */
        while (__atomic_load_n(&s->deferred_reported, __ATOMIC_ACQUIRE) !=
               __atomic_load_n(&s->deferred_started, __ATOMIC_RELAXED))
                usleep(1000);
        for (struct job *j = s->work.head, *n; j; j = n) {
                n = j->next;
                job_free(j);
        }
        if (s->sigterm)
                event_free(s->sigterm);
        if (s->sigint)
                event_free(s->sigint);
        if (s->sighup)
                event_free(s->sighup);
        if (s->stats_ev)
                event_free(s->stats_ev);
        for (unsigned i = 0; i < s->n_loops; i++)
                loop_free(&s->loops[i]);
        addr_limit_free(s->per_address);
        pthread_mutex_destroy(&s->work.lock);
        pthread_cond_destroy(&s->work.cond);
        free(s);
}
