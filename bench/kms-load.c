/* kms-load: a KMIP load generator for vmcrypt-kms (and any KMIP server). N TLS
 * connections send Get / Create / Encrypt requests back to back for a fixed time,
 * each with exactly one request outstanding (a closed loop); prints ops/s and
 * p50/p99 latency. Requests are built and responses checked with the project's
 * KMIP library.
 *
 * The generator shares the machine's cores with the server it measures, so it is
 * built to cost as little as it can: a few threads (--threads, default one per
 * online CPU), each running one epoll loop over its share of the connections, with
 * non-blocking sockets and non-blocking OpenSSL. A thread per connection with
 * blocking I/O would sleep and wake (a context switch) on every operation; here one
 * wakeup serves every connection whose response has arrived, and a busy thread
 * finds more ready connections each time it looks. Sockets stay registered for
 * reading the whole run; writability is watched only while OpenSSL is waiting to
 * write, so the common operation costs no epoll_ctl. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kmip/attribute.h"
#include "kmip/message.h"
#include "kmip/tags.h"
#include "kmip/ttlv.h"

enum { KIND_GET, KIND_CREATE, KIND_ENCRYPT, KIND_MAX };
static const char *kind_names[] = { "get", "create", "encrypt" };

/* Largest response body accepted; anything bigger means the stream is garbage. */
#define MAX_BODY (1U << 20)

static struct {
        const char *host, *port, *cert, *key, *ca;
        int conns, threads;
        double seconds;
        unsigned weights[KIND_MAX];
        struct kmip_version v;
} opt = { .host = "127.0.0.1", .port = "5696", .conns = 16, .seconds = 5, .v = { 1, 4 } };

/* Where a connection is: setting up its key, then running the measured loop. */
enum phase { PHASE_HANDSHAKE, PHASE_CREATE, PHASE_ACTIVATE, PHASE_RUN, PHASE_DONE };

struct worker;

struct conn {
        struct worker *w;
        int fd;
        SSL *ssl;
        enum phase phase;
        uint8_t *create, *activate, *get, *encrypt;
        size_t create_n, activate_n, get_n, encrypt_n;
        unsigned seq, kind;
        const uint8_t *out; /* request OpenSSL has not taken yet; NULL when sent */
        size_t out_n;
        uint8_t *in; /* response read so far: header, then the whole message */
        size_t in_got, in_cap;
        double sent_at, end; /* end: --seconds after this connection's key is ready */
        bool watch_out; /* EPOLLOUT is registered */
        const char *fail;
};

struct worker {
        pthread_t t;
        SSL_CTX *ctx;
        struct conn *conns;
        int n_conns, active, ep;
        struct ttlv_arena *arena; /* reused for every response this thread parses */
        double *lat;              /* seconds per op */
        size_t n, cap;
        unsigned long errors, per_kind[KIND_MAX];
};

static double now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* Blocking: a loopback connect completes at once, and it happens once per
 * connection; the handshake, where the round trips are, is non-blocking. */
static int connect_tcp(void) {
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
        if (getaddrinfo(opt.host, opt.port, &hints, &ai) != 0)
                return -1;
        int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
                close(fd);
                fd = -1;
        }
        freeaddrinfo(ai);
        int one = 1;
        if (fd >= 0 && (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ||
                        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)) {
                close(fd);
                fd = -1;
        }
        return fd;
}

/* Build one request message with a single batch item. */
static int build(uint32_t op, struct ttlv_arena *a, struct ttlv *payload, uint8_t **out, size_t *out_n) {
        struct kmip_batch_item item = { .operation = op, .payload = payload };
        struct kmip_message m = { .header = { .version = opt.v }, .items = &item, .n_items = 1 };
        struct ttlv *root;
        if (kmip_request_build(a, &m, &root) < 0)
                return -1;
        return ttlv_encode_alloc(root, out, out_n);
}

static int build_create(uint8_t **out, size_t *n) {
        struct ttlv_arena *a = ttlv_arena_new();
        struct ttlv *p = ttlv_add_structure(a, NULL, KMIP_TAG_REQUEST_PAYLOAD);
        ttlv_add_enum(a, p, KMIP_TAG_OBJECT_TYPE, KMIP_OBJECT_SYMMETRIC_KEY);
        struct kmip_attr_list l = {};
        kmip_attr_list_add_enum(a, &l, KMIP_ATTR_CRYPTOGRAPHIC_ALGORITHM, KMIP_ALG_AES);
        kmip_attr_list_add_integer(a, &l, KMIP_ATTR_CRYPTOGRAPHIC_LENGTH, 256);
        kmip_attr_list_add_integer(a, &l, KMIP_ATTR_CRYPTOGRAPHIC_USAGE_MASK, KMIP_USAGE_ENCRYPT | KMIP_USAGE_DECRYPT);
        kmip_attrs_build_container(a, p, &l, opt.v);
        int r = build(KMIP_OP_CREATE, a, p, out, n);
        ttlv_arena_free(a);
        return r;
}

static int build_uid_op(uint32_t op, const char *uid, uint8_t **out, size_t *n) {
        struct ttlv_arena *a = ttlv_arena_new();
        struct ttlv *p = ttlv_add_structure(a, NULL, KMIP_TAG_REQUEST_PAYLOAD);
        ttlv_add_text(a, p, KMIP_TAG_UNIQUE_IDENTIFIER, uid);
        if (op == KMIP_OP_ENCRYPT) {
                struct ttlv *cp = ttlv_add_structure(a, p, KMIP_TAG_CRYPTOGRAPHIC_PARAMETERS);
                ttlv_add_enum(a, cp, KMIP_TAG_BLOCK_CIPHER_MODE, KMIP_MODE_CBC);
                ttlv_add_enum(a, cp, KMIP_TAG_PADDING_METHOD, KMIP_PADDING_PKCS5);
                ttlv_add_enum(a, cp, KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM, KMIP_ALG_AES);
                static const uint8_t data[32] = "a 32-byte data encryption key..";
                static const uint8_t iv[16] = { 1 };
                ttlv_add_bytes(a, p, KMIP_TAG_DATA, data, sizeof(data));
                ttlv_add_bytes(a, p, KMIP_TAG_IV_COUNTER_NONCE, iv, sizeof(iv));
        }
        int r = build(op, a, p, out, n);
        ttlv_arena_free(a);
        return r;
}

/* 0 if the response is a single successful batch item (and, if uid is asked for,
 * carries a Unique Identifier, copied there); -1 otherwise. */
static int check_response(struct ttlv_arena *a, const uint8_t *buf, size_t n, char *uid, size_t uid_size) {
        struct kmip_message m = {};
        int r = 0;
        if (kmip_response_parse(a, buf, n, NULL, &m) < 0 || m.n_items != 1 ||
            m.items[0].result_status != KMIP_STATUS_SUCCESS)
                r = -1;
        if (r == 0 && uid) {
                const char *u;
                if (ttlv_get_text(m.items[0].payload, KMIP_TAG_UNIQUE_IDENTIFIER, &u, NULL) == 0)
                        snprintf(uid, uid_size, "%s", u);
                else
                        r = -1;
        }
        ttlv_arena_reset(a);
        return r;
}

/* The next kind in the connection's sequence: deterministic, so runs compare, and
 * started at a different point per connection so they do not move in lockstep. */
static unsigned next_kind(struct conn *c) {
        unsigned total = 0;
        for (int k = 0; k < KIND_MAX; k++)
                total += opt.weights[k];
        unsigned pick = c->seq++ % total, kind = 0;
        while (pick >= opt.weights[kind])
                pick -= opt.weights[kind++];
        return kind;
}

/* The request goes out from conn_pump, which also retries it if the socket is full. */
static void queue_request(struct conn *c, const uint8_t *req, size_t n) {
        c->out = req;
        c->out_n = n;
        c->sent_at = now();
}

static void queue_next_op(struct conn *c) {
        c->kind = next_kind(c);
        if (c->kind == KIND_GET)
                queue_request(c, c->get, c->get_n);
        else if (c->kind == KIND_CREATE)
                queue_request(c, c->create, c->create_n);
        else
                queue_request(c, c->encrypt, c->encrypt_n);
}

static int watch_out(struct conn *c, bool on) {
        if (c->watch_out == on)
                return 0;
        struct epoll_event ev = { .events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c };
        if (epoll_ctl(c->w->ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
                return -1;
        c->watch_out = on;
        return 0;
}

/* After a non-blocking OpenSSL call that could not finish: 0 to wait for the
 * socket, -1 if the connection is gone. Either direction can block either call
 * (TLS may need to read to write, or write to read), so what OpenSSL asks for,
 * not which call it was, decides whether to watch for writability. */
static int ssl_wait(struct conn *c, int r) {
        switch (SSL_get_error(c->ssl, r)) {
        case SSL_ERROR_WANT_READ: return watch_out(c, false);
        case SSL_ERROR_WANT_WRITE: return watch_out(c, true);
        default: return -1;
        }
}

/* Stop using the connection (the run is over for it, or it failed); it is closed
 * when the thread is done. */
static void conn_stop(struct conn *c, const char *fail) {
        epoll_ctl(c->w->ep, EPOLL_CTL_DEL, c->fd, NULL);
        c->phase = PHASE_DONE;
        c->fail = fail;
        c->w->active--;
        if (fail)
                ERR_clear_error();
}

static int handshake(struct conn *c) {
        int r = SSL_connect(c->ssl);
        if (r != 1)
                return ssl_wait(c, r);
        c->phase = PHASE_CREATE;
        queue_request(c, c->create, c->create_n);
        return 1;
}

/* 1 once the request is sent, 0 to wait, -1 if the connection is gone. Without
 * SSL_MODE_ENABLE_PARTIAL_WRITE OpenSSL takes the whole request or nothing, and a
 * retry after WANT_* passes the same buffer, as it requires. */
static int write_request(struct conn *c) {
        size_t n;
        int r = SSL_write_ex(c->ssl, c->out, c->out_n, &n);
        if (r <= 0)
                return ssl_wait(c, r);
        c->out = NULL;
        return watch_out(c, false) < 0 ? -1 : 1;
}

/* Bytes of the current response to have before it is whole: the 8-byte TTLV
 * header first, then the length it gives. */
static size_t response_size(const struct conn *c) {
        const uint8_t *h = c->in;
        if (c->in_got < 8)
                return 8;
        return 8 + (((size_t) h[4] << 24) | ((size_t) h[5] << 16) | ((size_t) h[6] << 8) | h[7]);
}

/* Read what OpenSSL and the socket hold of the response, never past its end (the
 * next one belongs to the next request). 1 when it is whole, 0 to wait, -1 if the
 * connection is gone. */
static int read_response(struct conn *c) {
        for (;;) {
                size_t want = response_size(c), n;
                if (c->in_got >= 8 && c->in_got == want)
                        return 1;
                if (want > 8 + MAX_BODY)
                        return -1;
                if (want > c->in_cap) {
                        uint8_t *p = realloc(c->in, want);
                        if (!p)
                                return -1;
                        c->in = p;
                        c->in_cap = want;
                }
                int r = SSL_read_ex(c->ssl, c->in + c->in_got, want - c->in_got, &n);
                if (r <= 0)
                        return ssl_wait(c, r);
                c->in_got += n;
        }
}

static void record(struct worker *w, struct conn *c, double t) {
        if (w->n == w->cap) {
                w->cap = w->cap ? 2 * w->cap : 4096;
                w->lat = realloc(w->lat, w->cap * sizeof(double));
        }
        w->lat[w->n++] = t - c->sent_at;
        w->per_kind[c->kind]++;
}

/* A whole response is in: check it and queue the next request. 1 to go on, 0 when
 * the connection is done, -1 if it failed. */
static int on_response(struct conn *c) {
        struct worker *w = c->w;
        double t = now();
        char uid[128];
        bool want_uid = c->phase == PHASE_CREATE;
        int ok = check_response(w->arena, c->in, c->in_got, want_uid ? uid : NULL, sizeof(uid)) == 0;
        c->in_got = 0;
        switch (c->phase) {
        case PHASE_CREATE: /* one key per connection for Get and Encrypt, activated so it may encrypt */
                if (!ok || build_uid_op(KMIP_OP_ACTIVATE, uid, &c->activate, &c->activate_n) < 0 ||
                    build_uid_op(KMIP_OP_GET, uid, &c->get, &c->get_n) < 0 ||
                    build_uid_op(KMIP_OP_ENCRYPT, uid, &c->encrypt, &c->encrypt_n) < 0)
                        return -1;
                c->phase = PHASE_ACTIVATE;
                queue_request(c, c->activate, c->activate_n);
                return 1;
        case PHASE_ACTIVATE:
                if (!ok)
                        return -1;
                c->phase = PHASE_RUN;
                c->end = t + opt.seconds;
                queue_next_op(c);
                return 1;
        default:
                /* A failed operation is counted, not timed, and the loop goes on. */
                if (ok)
                        record(w, c, t);
                else
                        w->errors++;
                if (t >= c->end) {
                        conn_stop(c, NULL);
                        return 0;
                }
                queue_next_op(c);
                return 1;
        }
}

static const char *failure(enum phase phase) {
        switch (phase) {
        case PHASE_HANDSHAKE: return "TLS handshake failed";
        case PHASE_RUN: return "connection lost";
        default: return "initial Create/Activate failed";
        }
}

/* Take the connection as far as it goes without waiting. After a request is sent
 * its response cannot be there yet, so unless OpenSSL already holds bytes (which
 * epoll cannot see) it is back to epoll without a read that would only say
 * EAGAIN; level-triggered epoll reports anything the socket receives meanwhile. */
static void conn_pump(struct conn *c) {
        int r = 1;
        while (r > 0 && c->phase != PHASE_DONE) {
                if (c->phase == PHASE_HANDSHAKE)
                        r = handshake(c);
                else if (c->out) {
                        r = write_request(c);
                        if (r > 0 && !SSL_has_pending(c->ssl))
                                r = 0;
                } else if ((r = read_response(c)) > 0)
                        r = on_response(c);
        }
        if (r < 0)
                conn_stop(c, failure(c->phase));
}

/* For a connection that never got going. */
static void conn_unused(struct conn *c, const char *fail) {
        c->phase = PHASE_DONE;
        c->fail = fail;
}

static void conn_open(struct worker *w, struct conn *c) {
        c->w = w;
        if (w->ep < 0 || !w->arena) {
                conn_unused(c, "out of memory or file descriptors");
                return;
        }
        if ((c->fd = connect_tcp()) < 0) {
                conn_unused(c, "connect failed");
                return;
        }
        c->ssl = SSL_new(w->ctx);
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        if (!c->ssl || build_create(&c->create, &c->create_n) < 0 || !SSL_set_fd(c->ssl, c->fd) ||
            epoll_ctl(w->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
                conn_unused(c, "out of memory or file descriptors");
                return;
        }
        /* One read(2) per TLS record instead of two (header, then body). */
        SSL_set_read_ahead(c->ssl, 1);
        w->active++;
        conn_pump(c);
}

static void conn_close(struct conn *c) {
        if (c->ssl && !c->fail)
                SSL_shutdown(c->ssl); /* best effort: close_notify, no waiting */
        SSL_free(c->ssl);
        if (c->fd >= 0)
                close(c->fd);
        ttlv_buffer_free(c->create, c->create_n);
        ttlv_buffer_free(c->activate, c->activate_n);
        ttlv_buffer_free(c->get, c->get_n);
        ttlv_buffer_free(c->encrypt, c->encrypt_n);
        free(c->in);
}

static void *worker_run(void *arg) {
        struct worker *w = arg;
        w->ep = epoll_create1(EPOLL_CLOEXEC);
        w->arena = ttlv_arena_new();
        for (int i = 0; i < w->n_conns; i++)
                conn_open(w, &w->conns[i]);
        struct epoll_event ev[64];
        while (w->active > 0) {
                int n = epoll_wait(w->ep, ev, 64, -1);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        for (int i = 0; i < w->n_conns; i++)
                                if (w->conns[i].phase != PHASE_DONE)
                                        conn_stop(&w->conns[i], "epoll_wait failed");
                        break;
                }
                for (int i = 0; i < n; i++)
                        conn_pump(ev[i].data.ptr);
        }
        for (int i = 0; i < w->n_conns; i++)
                conn_close(&w->conns[i]);
        ttlv_arena_free(w->arena);
        if (w->ep >= 0)
                close(w->ep);
        return NULL;
}

static int cmp(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

static int parse_mix(char *s) {
        memset(opt.weights, 0, sizeof(opt.weights));
        for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ",")) {
                char *colon = strchr(tok, ':');
                unsigned w = 1;
                if (colon) {
                        *colon = 0;
                        w = (unsigned) atoi(colon + 1);
                }
                int k;
                for (k = 0; k < KIND_MAX && strcmp(tok, kind_names[k]) != 0; k++)
                        ;
                if (k == KIND_MAX)
                        return -1;
                opt.weights[k] = w;
        }
        return opt.weights[0] + opt.weights[1] + opt.weights[2] ? 0 : -1;
}

static const char usage[] =
        "Usage: kms-load --cert FILE --key FILE --ca FILE [--host H] [--port P] [--conns N]\n"
        "                [--threads T] [--seconds S] [--mix get:8,create:1,encrypt:1] [--kmip 1.4]\n"
        "N TLS connections send KMIP requests back to back, one outstanding each, for S\n"
        "seconds; prints ops/s and p50/p99 latency. Each connection first creates and\n"
        "activates its own AES-256 key, which its Get and Encrypt (AES-CBC, 32 bytes)\n"
        "requests use. T threads (default: online CPUs, at most N) each drive their share\n"
        "of the connections with non-blocking I/O, to leave the CPUs to the server.\n";

int main(int argc, char *argv[]) {
        static const struct option o[] = {
                { "host", 1, NULL, 'h' },    { "port", 1, NULL, 'p' }, { "cert", 1, NULL, 'c' },
                { "key", 1, NULL, 'k' },     { "ca", 1, NULL, 'a' },   { "conns", 1, NULL, 'n' },
                { "threads", 1, NULL, 't' }, { "seconds", 1, NULL, 's' }, { "mix", 1, NULL, 'm' },
                { "kmip", 1, NULL, 'v' },    { "help", 0, NULL, 'H' }, {},
        };
        char mix[] = "get:8,create:1,encrypt:1";
        parse_mix(mix);
        int c;
        while ((c = getopt_long(argc, argv, "", o, NULL)) >= 0) {
                switch (c) {
                case 'h': opt.host = optarg; break;
                case 'p': opt.port = optarg; break;
                case 'c': opt.cert = optarg; break;
                case 'k': opt.key = optarg; break;
                case 'a': opt.ca = optarg; break;
                case 'n': opt.conns = atoi(optarg); break;
                case 't':
                        if ((opt.threads = atoi(optarg)) < 1) {
                                fprintf(stderr, "bad --threads\n");
                                return 2;
                        }
                        break;
                case 's': opt.seconds = atof(optarg); break;
                case 'm':
                        if (parse_mix(optarg) < 0) {
                                fprintf(stderr, "bad --mix\n");
                                return 2;
                        }
                        break;
                case 'v':
                        if (sscanf(optarg, "%d.%d", &opt.v.major, &opt.v.minor) != 2)
                                return 2;
                        break;
                case 'H': fputs(usage, stdout); return 0;
                default: fputs(usage, stderr); return 2;
                }
        }
        if (!opt.cert || !opt.key || !opt.ca || opt.conns < 1) {
                fputs(usage, stderr);
                return 2;
        }
        if (opt.threads == 0) {
                long cpus = sysconf(_SC_NPROCESSORS_ONLN);
                opt.threads = cpus > 0 ? (int) cpus : 1;
        }
        if (opt.threads > opt.conns)
                opt.threads = opt.conns;
        /* A server that goes away must end the run with a report, not kill it. */
        signal(SIGPIPE, SIG_IGN);
        SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
        if (SSL_CTX_use_certificate_file(ctx, opt.cert, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_use_PrivateKey_file(ctx, opt.key, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_load_verify_locations(ctx, opt.ca, NULL) != 1) {
                ERR_print_errors_fp(stderr);
                SSL_CTX_free(ctx);
                return 1;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        struct conn *conns = calloc((size_t) opt.conns, sizeof(*conns));
        struct worker *ws = calloc((size_t) opt.threads, sizeof(*ws));
        double t0 = now();
        for (int i = 0; i < opt.threads; i++) {
                /* Contiguous shares, sizes differing by at most one. */
                int from = opt.conns * i / opt.threads, to = opt.conns * (i + 1) / opt.threads;
                ws[i] = (struct worker) { .ctx = ctx, .conns = conns + from, .n_conns = to - from, .ep = -1 };
                for (int j = from; j < to; j++)
                        conns[j] = (struct conn) { .fd = -1, .seq = (unsigned) j * 7919u };
                pthread_create(&ws[i].t, NULL, worker_run, &ws[i]);
        }
        size_t total = 0;
        unsigned long errors = 0, kinds[KIND_MAX] = {};
        for (int i = 0; i < opt.threads; i++) {
                pthread_join(ws[i].t, NULL);
                total += ws[i].n;
                errors += ws[i].errors;
                for (int k = 0; k < KIND_MAX; k++)
                        kinds[k] += ws[i].per_kind[k];
        }
        double elapsed = now() - t0;
        int failed = 0;
        for (int i = 0; i < opt.conns; i++)
                if (conns[i].fail) {
                        fprintf(stderr, "connection %d: %s\n", i, conns[i].fail);
                        failed++;
                }
        double *all = malloc((total ? total : 1) * sizeof(double));
        size_t k = 0;
        for (int i = 0; i < opt.threads; i++) {
                if (ws[i].n)
                        memcpy(all + k, ws[i].lat, ws[i].n * sizeof(double));
                k += ws[i].n;
                free(ws[i].lat);
        }
        qsort(all, total, sizeof(double), cmp);
        double p50 = total ? all[total / 2] : 0, p99 = total ? all[(size_t) ((double) total * 0.99)] : 0;
        printf("ops=%zu ops_per_s=%.0f p50_us=%.0f p99_us=%.0f errors=%lu get=%lu create=%lu encrypt=%lu "
               "conns=%d seconds=%.1f\n",
               total, (double) total / opt.seconds, p50 * 1e6, p99 * 1e6, errors, kinds[0], kinds[1], kinds[2],
               opt.conns, elapsed);
        free(all);
        free(conns);
        free(ws);
        SSL_CTX_free(ctx);
        return failed || errors || total == 0 ? 1 : 0;
}
