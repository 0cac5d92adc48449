/* Network loop and worker pool: see server.h.
 *
 * One request per connection is in flight at a time: after a whole message is read,
 * reading stops until its response is queued, and stays stopped while the peer is
 * slow to take responses. So a connection's buffers are bounded by one message
 * (max-message-size) in and out, whatever the client does. */
#include "kms/server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "shared/log.h"

struct conn {
        struct conn *prev, *next;
        struct kms_server *srv;
        struct bufferevent *bev;
        struct kms_client client;
        bool identified;
        bool busy;      /* a job of this connection is with the workers */
        bool closing;   /* close once the current job is answered and flushed */
        bool blocked;   /* output over the limit: reading waits for it to drain */
        bool paused;    /* EV_READ disabled (each change costs an epoll_ctl) */
};

struct job {
        struct job *next;
        struct conn *conn;
        uint8_t *req, *resp;
        size_t req_n, resp_n;
        int r;
};

struct queue {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        struct job *head, *tail;
};

struct kms_server {
        const struct kms_config *config;
        struct kms_engine *engine;
        SSL_CTX *ssl;
        struct event_base *base;
        struct evconnlistener *listener;
        struct event *done_ev, *sigterm, *sigint, *deadline;
        int port;

        pthread_t *workers;
        unsigned n_workers;
        struct queue work, done;
        bool stop_workers;

        struct conn *conns;
        unsigned n_conns, in_flight;
        bool shutting_down;
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

                j->r = kms_process(s->engine, &j->conn->client, j->req, j->req_n, false, &j->resp, &j->resp_n);
                OPENSSL_clear_free(j->req, j->req_n);
                j->req = NULL;

                pthread_mutex_lock(&s->done.lock);
                bool was_empty = !s->done.head;
                queue_push(&s->done, j);
                pthread_mutex_unlock(&s->done.lock);
                if (was_empty)
                        event_active(s->done_ev, EV_READ, 0);
        }
        return NULL;
}

static void maybe_finish(struct kms_server *s) {
        if (s->shutting_down && s->in_flight == 0 && !s->conns)
                event_base_loopexit(s->base, NULL);
}

static void conn_free(struct conn *c) {
        struct kms_server *s = c->srv;
        if (c->prev)
                c->prev->next = c->next;
        else
                s->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        s->n_conns--;
        /* BEV_OPT_CLOSE_ON_FREE: frees the SSL object and closes the socket too. */
        bufferevent_free(c->bev);
        free(c);
        maybe_finish(s);
}

static void conn_read(struct bufferevent *bev, void *arg);

static void wipe_cleanup(const void *data, size_t len, void *extra) {
        (void) extra;
        OPENSSL_clear_free((void *) data, len);
}

/* Queue a finished job's response on its connection (loop thread only). True when
 * the connection may read its next request; false when it is gone or must wait. */
static bool job_complete(struct kms_server *s, struct job *j) {
        struct conn *c = j->conn;
        c->busy = false;
        if (j->r < 0) {
                log_warning_errno(j->r, "Dropping connection from %s: cannot process request: %m", c->client.cn);
                job_free(j);
                conn_free(c);
                return false;
        }
        struct evbuffer *out = bufferevent_get_output(c->bev);
        /* The buffer references the response and wipes it once sent. */
        if (evbuffer_add_reference(out, j->resp, j->resp_n, wipe_cleanup, NULL) == 0)
                j->resp = NULL;
        else
                c->closing = true;
        job_free(j);
        if (c->closing) {
                if (evbuffer_get_length(out) == 0)
                        conn_free(c);
                return false;
        }
        if (evbuffer_get_length(out) > s->config->max_message) {
                /* The peer is not taking its answers: read nothing more until it does. */
                c->blocked = true;
                if (!c->paused) {
                        c->paused = true;
                        bufferevent_disable(c->bev, EV_READ);
                }
                return false;
        }
        if (c->paused) {
                c->paused = false;
                bufferevent_enable(c->bev, EV_READ);
        }
        return true;
}

static void on_done(evutil_socket_t fd, short what, void *arg) {
        (void) fd;
        (void) what;
        struct kms_server *s = arg;
        pthread_mutex_lock(&s->done.lock);
        struct job *list = s->done.head;
        s->done.head = s->done.tail = NULL;
        pthread_mutex_unlock(&s->done.lock);

        while (list) {
                struct job *j = list;
                list = j->next;
                s->in_flight--;
                struct conn *c = j->conn;
                if (job_complete(s, j))
                        conn_read(c->bev, c);
        }
        maybe_finish(s);
}

/* Take the next whole message off the connection and run or queue it. True when
 * another buffered message may follow right away. */
static bool conn_take_one(struct conn *c) {
        struct kms_server *s = c->srv;
        if (c->busy || c->closing || c->blocked || !c->identified)
                return false;
        struct evbuffer *in = bufferevent_get_input(c->bev);
        size_t avail = evbuffer_get_length(in);
        if (avail < TTLV_HEADER_SIZE)
                return false;
        uint8_t hdr[TTLV_HEADER_SIZE];
        evbuffer_copyout(in, hdr, sizeof(hdr));
        size_t total;
        int r = ttlv_frame_size(hdr, s->config->max_message, &total);
        if (r < 0) {
                /* Not a KMIP message, or one larger than we accept: there is no
                 * reliable way to resynchronise the stream, so close it. */
                log_notice("Closing connection from %s: %s", c->client.cn,
                           r == -EMSGSIZE ? "message larger than max-message-size" : "not a KMIP message");
                conn_free(c);
                return false;
        }
        if (avail < total) {
                bufferevent_setwatermark(c->bev, EV_READ, total, s->config->max_message + 65536);
                return false;
        }
        bufferevent_setwatermark(c->bev, EV_READ, TTLV_HEADER_SIZE, s->config->max_message + 65536);
        struct job *j = calloc(1, sizeof(*j));
        if (j)
                j->req = malloc(total);
        if (!j || !j->req) {
                free(j);
                conn_free(c);
                return false;
        }
        j->req_n = total;
        j->conn = c;
        evbuffer_remove(in, j->req, total);
        c->busy = true;
        /* Reads are answered right here: no thread hand-off, no context switch. Only
         * requests that write (and so wait for a disk commit) go to the workers. */
        j->r = kms_process(s->engine, &c->client, j->req, j->req_n, true, &j->resp, &j->resp_n);
        if (j->r != -EWOULDBLOCK)
                return job_complete(s, j);
        /* Stop reading until the worker's answer is queued: one request in flight. */
        c->paused = true;
        bufferevent_disable(c->bev, EV_READ);
        s->in_flight++;
        pthread_mutex_lock(&s->work.lock);
        queue_push(&s->work, j);
        pthread_cond_signal(&s->work.cond);
        pthread_mutex_unlock(&s->work.lock);
        return false;
}

/* A loop, not recursion: a client may pipeline many requests. */
static void conn_read(struct bufferevent *bev, void *arg) {
        (void) bev;
        while (conn_take_one(arg))
                ;
}

static void conn_write(struct bufferevent *bev, void *arg) {
        struct conn *c = arg;
        /* Called when the output has drained. */
        if (c->busy)
                return;
        if (c->closing) {
                conn_free(c);
                return;
        }
        if (c->blocked) {
                c->blocked = false;
                c->paused = false;
                bufferevent_enable(bev, EV_READ);
                conn_read(bev, c);
        }
}

static void conn_event(struct bufferevent *bev, short events, void *arg) {
        struct conn *c = arg;
        if (events & BEV_EVENT_CONNECTED) {
                SSL *ssl = bufferevent_openssl_get_ssl(bev);
                char fp[KMS_FINGERPRINT_SIZE];
                if (kms_tls_identity(ssl, c->client.cn, sizeof(c->client.cn), fp) < 0) {
                        log_notice("Refusing client without a usable certificate (no subject CN)");
                        conn_free(c);
                        return;
                }
                memcpy(c->client.fingerprint, fp, sizeof(fp));
                c->identified = true;
                log_debug("Client %s connected (%s)", c->client.cn, c->client.fingerprint);
                conn_read(bev, c);
                return;
        }
        if (events & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
                if (events & BEV_EVENT_ERROR) {
                        unsigned long e = bufferevent_get_openssl_error(bev);
                        if (e) {
                                char buf[256];
                                ERR_error_string_n(e, buf, sizeof(buf));
                                log_info("TLS error from %s: %s", c->identified ? c->client.cn : "(handshake)", buf);
                        }
                }
                if (c->busy)
                        c->closing = true; /* freed when its job comes back */
                else
                        conn_free(c);
        }
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *addr, int len, void *arg) {
        (void) l;
        (void) addr;
        (void) len;
        struct kms_server *s = arg;
        if (s->shutting_down || s->n_conns >= s->config->max_connections) {
                evutil_closesocket(fd);
                return;
        }
        SSL *ssl = SSL_new(s->ssl);
        struct conn *c = calloc(1, sizeof(*c));
        if (!ssl || !c) {
                SSL_free(ssl);
                free(c);
                evutil_closesocket(fd);
                return;
        }
        c->bev = bufferevent_openssl_socket_new(s->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
        if (!c->bev) {
                SSL_free(ssl);
                free(c);
                evutil_closesocket(fd);
                return;
        }
        int one = 1;
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->srv = s;
        c->next = s->conns;
        if (s->conns)
                s->conns->prev = c;
        s->conns = c;
        s->n_conns++;
        bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
        struct timeval idle = { .tv_sec = s->config->idle_timeout };
        bufferevent_set_timeouts(c->bev, &idle, &idle);
        bufferevent_setwatermark(c->bev, EV_READ, TTLV_HEADER_SIZE, s->config->max_message + 65536);
        bufferevent_setcb(c->bev, conn_read, conn_write, conn_event, c);
        bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg) {
        (void) fd;
        (void) what;
        struct kms_server *s = arg;
        log_warning("Requests still running after 10 s; stopping anyway");
        event_base_loopexit(s->base, NULL);
}

static void on_signal(evutil_socket_t sig, short what, void *arg) {
        (void) what;
        struct kms_server *s = arg;
        if (s->shutting_down)
                return;
        log_notice("Received %s: finishing %u in-flight requests, then stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT",
                   s->in_flight);
        s->shutting_down = true;
        evconnlistener_disable(s->listener);
        /* Idle connections go now; busy ones after their answer is flushed. */
        for (struct conn *c = s->conns, *n; c; c = n) {
                n = c->next;
                c->closing = true;
                if (!c->busy && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
                        conn_free(c);
        }
        struct timeval ten = { .tv_sec = 10 };
        event_add(s->deadline, &ten);
        maybe_finish(s);
}

/* "HOST:PORT" or "[V6]:PORT", numeric host, port 0 allowed (any free port). */
static int parse_listen(const char *text, struct sockaddr_storage *ss, int *len) {
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
        struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE, .ai_socktype = SOCK_STREAM };
        struct addrinfo *ai = NULL;
        if (getaddrinfo(h, colon + 1, &hints, &ai) != 0 || !ai)
                return -EINVAL;
        memcpy(ss, ai->ai_addr, ai->ai_addrlen);
        *len = (int) ai->ai_addrlen;
        freeaddrinfo(ai);
        return 0;
}

int kms_server_new(const struct kms_config *c, struct kms_engine *e, SSL_CTX *ctx, struct kms_server **ret) {
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        pthread_once(&once, (void (*)(void)) evthread_use_pthreads);
        struct kms_server *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->config = c;
        s->engine = e;
        s->ssl = ctx;
        pthread_mutex_init(&s->work.lock, NULL);
        pthread_cond_init(&s->work.cond, NULL);
        pthread_mutex_init(&s->done.lock, NULL);
        pthread_cond_init(&s->done.cond, NULL);
        int r = -ENOMEM;
        s->base = event_base_new();
        if (!s->base)
                goto fail;

        struct sockaddr_storage ss;
        int sslen = sizeof(ss);
        if (parse_listen(c->listen, &ss, &sslen) < 0) {
                log_error("Cannot parse listen address '%s' (expected HOST:PORT)", c->listen);
                r = -EINVAL;
                goto fail;
        }
        s->listener = evconnlistener_new_bind(s->base, on_accept, s, LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE, 4096,
                                              (struct sockaddr *) &ss, sslen);
        if (!s->listener) {
                r = negative_errno();
                goto fail;
        }
        struct sockaddr_storage bound;
        socklen_t blen = sizeof(bound);
        if (getsockname(evconnlistener_get_fd(s->listener), (struct sockaddr *) &bound, &blen) == 0)
                s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *) &bound)->sin6_port
                                                            : ((struct sockaddr_in *) &bound)->sin_port);
        s->done_ev = event_new(s->base, -1, EV_PERSIST | EV_READ, on_done, s);
        s->sigterm = evsignal_new(s->base, SIGTERM, on_signal, s);
        s->sigint = evsignal_new(s->base, SIGINT, on_signal, s);
        s->deadline = evtimer_new(s->base, on_deadline, s);
        if (!s->done_ev || !s->sigterm || !s->sigint || !s->deadline)
                goto fail;
        event_add(s->done_ev, NULL);
        event_add(s->sigterm, NULL);
        event_add(s->sigint, NULL);

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

int kms_server_run(struct kms_server *s) {
        return event_base_dispatch(s->base) < 0 ? -EIO : 0;
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
        /* Jobs the workers finished after the loop stopped. */
        for (struct job *j = s->done.head, *n; j; j = n) {
                n = j->next;
                j->conn->busy = false;
                job_free(j);
        }
        for (struct job *j = s->work.head, *n; j; j = n) {
                n = j->next;
                job_free(j);
        }
        while (s->conns) {
                struct conn *c = s->conns;
                s->conns = c->next;
                bufferevent_free(c->bev);
                free(c);
        }
        if (s->listener)
                evconnlistener_free(s->listener);
        if (s->done_ev)
                event_free(s->done_ev);
        if (s->sigterm)
                event_free(s->sigterm);
        if (s->sigint)
                event_free(s->sigint);
        if (s->deadline)
                event_free(s->deadline);
        if (s->base)
                event_base_free(s->base);
        pthread_mutex_destroy(&s->work.lock);
        pthread_cond_destroy(&s->work.cond);
        pthread_mutex_destroy(&s->done.lock);
        pthread_cond_destroy(&s->done.cond);
        free(s);
}
