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
 * One request per connection is in flight at a time: while a worker has it, reading
 * stops, and it stays stopped while the peer is slow to take answers. So a
 * connection's buffers are bounded by one message (max-message-size) in and out,
 * whatever the client does. */
#include "kms/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shared/log.h"

#define MAX_LOOPS 64

struct loop;

struct conn {
        struct conn *prev, *next;
        struct loop *loop;
        struct bufferevent *bev;
        struct kms_client client;
        bool identified;
        bool busy;      /* a request of this connection is being answered */
        bool closing;   /* close once the current request is answered and flushed */
        bool blocked;   /* output over the limit: reading waits for it to drain */
        bool paused;    /* EV_READ disabled (each change costs an epoll_ctl) */
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
        struct event *done_ev, *stop_ev, *deadline, *resume_accept;
        struct queue done;       /* jobs the workers finished for this loop */
        struct conn *conns;
        unsigned in_flight;      /* jobs of this loop with the workers */
        bool shutting_down;
        pthread_t thread;
        bool thread_running;
};

struct kms_server {
        const struct kms_config *config;
        struct kms_engine *engine;
        SSL_CTX *ssl;
        int port;
        unsigned max_connections;  /* config, lowered to what the fd limit allows */
        struct event *sigterm, *sigint;

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

                j->r = kms_process(s->engine, &j->conn->client, j->req, j->req_n, NULL, &j->resp, &j->resp_n);
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

static void conn_free(struct conn *c) {
        struct loop *l = c->loop;
        if (c->prev)
                c->prev->next = c->next;
        else
                l->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        __atomic_sub_fetch(&l->srv->n_conns, 1, __ATOMIC_RELAXED);
        /* BEV_OPT_CLOSE_ON_FREE: frees the SSL object and closes the socket too. */
        bufferevent_free(c->bev);
        free(c);
        maybe_finish(l);
}

static void conn_read(struct bufferevent *bev, void *arg);

static void wipe_cleanup(const void *data, size_t len, void *extra) {
        (void) extra;
        OPENSSL_clear_free((void *) data, len);
}

/* Queue a finished job's response on its connection (its loop's thread). True when
 * the connection may read its next request; false when it is gone or must wait. */
static bool job_complete(struct job *j) {
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
        if (evbuffer_get_length(out) > c->loop->srv->config->max_message) {
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
                        kms_defer_finish(l->srv->engine, &c->client, &j->defer, j->commit_r);
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
                }
                l->in_flight--;
                if (job_complete(j))
                        conn_read(c->bev, c);
        }
        maybe_finish(l);
}

/* Take the next whole message off the connection and run or queue it. True when
 * another buffered message may follow right away. */
static bool conn_take_one(struct conn *c) {
        struct loop *l = c->loop;
        struct kms_server *s = l->srv;
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
        j->defer = (struct kms_defer) { .done = on_committed, .userdata = j };
        evbuffer_remove(in, j->req, total);
        c->busy = true;
        /* Reads are answered right here: no thread hand-off, no context switch; so
         * are Creates, whose reply is held until the store's commit. Only other
         * requests that write (and so wait for a disk commit) go to the workers. */
        j->r = kms_process(s->engine, &c->client, j->req, j->req_n, &j->defer, &j->resp, &j->resp_n);
        if (j->defer.deferred) {
                /* The job is the committer's now, even if j->r < 0: on_committed
                 * brings it back. */
                __atomic_add_fetch(&s->deferred_started, 1, __ATOMIC_RELAXED);
        } else if (j->r != -EWOULDBLOCK) {
                return job_complete(j);
        } else {
                work_push(s, j);
        }
        /* Stop reading until the answer is back: one request in flight. */
        c->paused = true;
        bufferevent_disable(c->bev, EV_READ);
        l->in_flight++;
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

static void on_accept(struct evconnlistener *listener, evutil_socket_t fd, struct sockaddr *addr, int len, void *arg) {
        (void) listener;
        (void) addr;
        (void) len;
        struct loop *l = arg;
        struct kms_server *s = l->srv;
        if (l->shutting_down ||
            __atomic_add_fetch(&s->n_conns, 1, __ATOMIC_RELAXED) > s->max_connections) {
                if (!l->shutting_down)
                        __atomic_sub_fetch(&s->n_conns, 1, __ATOMIC_RELAXED);
                evutil_closesocket(fd);
                return;
        }
        SSL *ssl = SSL_new(s->ssl);
        struct conn *c = calloc(1, sizeof(*c));
        if (ssl && c)
                c->bev = bufferevent_openssl_socket_new(l->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                        BEV_OPT_CLOSE_ON_FREE);
        if (!c || !c->bev) {
                SSL_free(ssl);
                free(c);
                evutil_closesocket(fd);
                __atomic_sub_fetch(&s->n_conns, 1, __ATOMIC_RELAXED);
                return;
        }
        int one = 1;
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->loop = l;
        c->next = l->conns;
        if (l->conns)
                l->conns->prev = c;
        l->conns = c;
        bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
        struct timeval idle = { .tv_sec = s->config->idle_timeout };
        bufferevent_set_timeouts(c->bev, &idle, &idle);
        bufferevent_setwatermark(c->bev, EV_READ, TTLV_HEADER_SIZE, s->config->max_message + 65536);
        bufferevent_setcb(c->bev, conn_read, conn_write, conn_event, c);
        bufferevent_enable(c->bev, EV_READ | EV_WRITE);
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
                if (!c->busy && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
                        conn_free(c);
        }
        struct timeval ten = { .tv_sec = 10 };
        event_add(l->deadline, &ten);
        maybe_finish(l);
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
        l->stop_ev = event_new(l->base, -1, EV_READ, on_stop, l);
        l->deadline = evtimer_new(l->base, on_deadline, l);
        l->resume_accept = evtimer_new(l->base, on_resume_accept, l);
        if (!l->done_ev || !l->stop_ev || !l->deadline || !l->resume_accept)
                return -ENOMEM;
        evconnlistener_set_error_cb(l->listener, on_accept_error);
        event_add(l->done_ev, NULL);
        event_add(l->stop_ev, NULL);
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

        /* Every connection is a descriptor: keep room under the limit for the store,
         * the log and the listeners, rather than fail accept() at the limit. */
        s->max_connections = c->max_connections;
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur > 256 &&
            s->max_connections > rl.rlim_cur - 128) {
                s->max_connections = (unsigned) (rl.rlim_cur - 128);
                log_notice("max-connections lowered to %u by the open file limit (%llu)", s->max_connections,
                           (unsigned long long) rl.rlim_cur);
        }

        unsigned n = c->network_threads;
        if (n == 0) {
                long cpus = sysconf(_SC_NPROCESSORS_ONLN);
                n = cpus > 0 ? (unsigned) cpus : 1;
        }
        n = MIN(n, (unsigned) MAX_LOOPS);
        int r;
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
        if (!s->sigterm || !s->sigint)
                goto fail;
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
                bufferevent_free(c->bev);
                free(c);
        }
        if (l->listener)
                evconnlistener_free(l->listener);
        if (l->done_ev)
                event_free(l->done_ev);
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
        for (unsigned i = 0; i < s->n_loops; i++)
                loop_free(&s->loops[i]);
        pthread_mutex_destroy(&s->work.lock);
        pthread_cond_destroy(&s->work.cond);
        free(s);
}
