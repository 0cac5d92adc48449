/* kms-load: a KMIP load generator for vmcrypt-kms (and any KMIP server). N TLS
 * connections, one thread each, send Get / Create / Encrypt requests back to back
 * for a fixed time; prints ops/s and p50/p99 latency. Requests are built and
 * responses checked with the project's KMIP library. */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kmip/attribute.h"
#include "kmip/message.h"
#include "kmip/tags.h"
#include "kmip/ttlv.h"

enum { KIND_GET, KIND_CREATE, KIND_ENCRYPT, KIND_MAX };
static const char *kind_names[] = { "get", "create", "encrypt" };

static struct {
        const char *host, *port, *cert, *key, *ca;
        int conns;
        double seconds;
        unsigned weights[KIND_MAX];
        struct kmip_version v;
} opt = { .host = "127.0.0.1", .port = "5696", .conns = 16, .seconds = 5, .v = { 1, 4 } };

struct thread {
        pthread_t t;
        int id;
        SSL_CTX *ctx;
        double *lat; /* seconds per op */
        size_t n, cap;
        unsigned long errors, per_kind[KIND_MAX];
        const char *fail;
};

static double now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int connect_tcp(void) {
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
        if (getaddrinfo(opt.host, opt.port, &hints, &ai) != 0)
                return -1;
        int fd = socket(ai->ai_family, SOCK_STREAM, 0);
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
                close(fd);
                fd = -1;
        }
        freeaddrinfo(ai);
        int one = 1;
        if (fd >= 0)
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        return fd;
}

static int read_full_ssl(SSL *ssl, uint8_t *buf, size_t n) {
        size_t got = 0;
        while (got < n) {
                int r = SSL_read(ssl, buf + got, (int) (n - got));
                if (r <= 0)
                        return -1;
                got += (size_t) r;
        }
        return 0;
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

/* Send a request and read the response; on success fills uid (if asked) from it. */
static int roundtrip(SSL *ssl, const uint8_t *req, size_t n, char *uid, size_t uid_size) {
        if (SSL_write(ssl, req, (int) n) != (int) n)
                return -1;
        uint8_t hdr[8];
        if (read_full_ssl(ssl, hdr, 8) < 0)
                return -1;
        size_t len = ((size_t) hdr[4] << 24) | ((size_t) hdr[5] << 16) | ((size_t) hdr[6] << 8) | hdr[7];
        if (len > (1U << 20))
                return -1;
        uint8_t *buf = malloc(8 + len);
        memcpy(buf, hdr, 8);
        int r = read_full_ssl(ssl, buf + 8, len);
        struct ttlv_arena *a = ttlv_arena_new();
        struct kmip_message m = {};
        if (r == 0 && (kmip_response_parse(a, buf, 8 + len, NULL, &m) < 0 || m.n_items != 1 ||
                       m.items[0].result_status != KMIP_STATUS_SUCCESS))
                r = -2;
        if (r == 0 && uid) {
                const char *u;
                if (ttlv_get_text(m.items[0].payload, KMIP_TAG_UNIQUE_IDENTIFIER, &u, NULL) == 0)
                        snprintf(uid, uid_size, "%s", u);
                else
                        r = -2;
        }
        ttlv_arena_free(a);
        free(buf);
        return r;
}

static void *run(void *arg) {
        struct thread *t = arg;
        int fd = connect_tcp();
        if (fd < 0) {
                t->fail = "connect failed";
                return NULL;
        }
        SSL *ssl = SSL_new(t->ctx);
        SSL_set_fd(ssl, fd);
        if (SSL_connect(ssl) != 1) {
                t->fail = "TLS handshake failed";
                SSL_free(ssl);
                close(fd);
                return NULL;
        }
        uint8_t *create, *get = NULL, *enc = NULL, *act = NULL;
        size_t create_n, get_n = 0, enc_n = 0, act_n = 0;
        char uid[128] = "";
        build_create(&create, &create_n);
        /* One key per connection for Get and Encrypt (activated so it may encrypt). */
        if (roundtrip(ssl, create, create_n, uid, sizeof(uid)) < 0 || build_uid_op(KMIP_OP_ACTIVATE, uid, &act, &act_n) < 0 ||
            roundtrip(ssl, act, act_n, NULL, 0) < 0) {
                t->fail = "initial Create/Activate failed";
                goto out;
        }
        build_uid_op(KMIP_OP_GET, uid, &get, &get_n);
        build_uid_op(KMIP_OP_ENCRYPT, uid, &enc, &enc_n);

        unsigned total = 0;
        for (int k = 0; k < KIND_MAX; k++)
                total += opt.weights[k];
        unsigned seq = (unsigned) t->id * 7919u;
        double end = now() + opt.seconds;
        for (;;) {
                double t0 = now();
                if (t0 >= end)
                        break;
                unsigned pick = seq++ % total, kind = 0;
                while (pick >= opt.weights[kind])
                        pick -= opt.weights[kind++];
                const uint8_t *req = kind == KIND_GET ? get : kind == KIND_CREATE ? create : enc;
                size_t n = kind == KIND_GET ? get_n : kind == KIND_CREATE ? create_n : enc_n;
                int r = roundtrip(ssl, req, n, NULL, 0);
                if (r == -1) {
                        t->fail = "connection lost";
                        break;
                }
                if (r < 0) {
                        t->errors++;
                        continue;
                }
                double dt = now() - t0;
                if (t->n == t->cap) {
                        t->cap = t->cap ? 2 * t->cap : 4096;
                        t->lat = realloc(t->lat, t->cap * sizeof(double));
                }
                t->lat[t->n++] = dt;
                t->per_kind[kind]++;
        }
out:
        SSL_shutdown(ssl);
        SSL_free(ssl);
        close(fd);
        ttlv_buffer_free(create, create_n);
        ttlv_buffer_free(get, get_n);
        ttlv_buffer_free(enc, enc_n);
        ttlv_buffer_free(act, act_n);
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
        "                [--seconds S] [--mix get:8,create:1,encrypt:1] [--kmip 1.4]\n"
        "N TLS connections send KMIP requests back to back for S seconds; prints\n"
        "ops/s and p50/p99 latency. Each connection first creates and activates its own\n"
        "AES-256 key, which its Get and Encrypt (AES-CBC, 32 bytes) requests use.\n";

int main(int argc, char *argv[]) {
        static const struct option o[] = {
                { "host", 1, NULL, 'h' }, { "port", 1, NULL, 'p' }, { "cert", 1, NULL, 'c' },
                { "key", 1, NULL, 'k' },  { "ca", 1, NULL, 'a' },   { "conns", 1, NULL, 'n' },
                { "seconds", 1, NULL, 's' }, { "mix", 1, NULL, 'm' }, { "kmip", 1, NULL, 'v' },
                { "help", 0, NULL, 'H' }, {},
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
        SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
        if (SSL_CTX_use_certificate_file(ctx, opt.cert, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_use_PrivateKey_file(ctx, opt.key, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_load_verify_locations(ctx, opt.ca, NULL) != 1) {
                ERR_print_errors_fp(stderr);
                return 1;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        struct thread *ts = calloc((size_t) opt.conns, sizeof(*ts));
        double t0 = now();
        for (int i = 0; i < opt.conns; i++) {
                ts[i] = (struct thread) { .id = i, .ctx = ctx };
                pthread_create(&ts[i].t, NULL, run, &ts[i]);
        }
        size_t total = 0;
        unsigned long errors = 0, kinds[KIND_MAX] = {};
        int failed = 0;
        for (int i = 0; i < opt.conns; i++) {
                pthread_join(ts[i].t, NULL);
                total += ts[i].n;
                errors += ts[i].errors;
                for (int k = 0; k < KIND_MAX; k++)
                        kinds[k] += ts[i].per_kind[k];
                if (ts[i].fail) {
                        fprintf(stderr, "connection %d: %s\n", i, ts[i].fail);
                        failed++;
                }
        }
        double elapsed = now() - t0;
        double *all = malloc((total ? total : 1) * sizeof(double));
        size_t k = 0;
        for (int i = 0; i < opt.conns; i++) {
                memcpy(all + k, ts[i].lat, ts[i].n * sizeof(double));
                k += ts[i].n;
                free(ts[i].lat);
        }
        qsort(all, total, sizeof(double), cmp);
        double p50 = total ? all[total / 2] : 0, p99 = total ? all[(size_t) ((double) total * 0.99)] : 0;
        printf("ops=%zu ops_per_s=%.0f p50_us=%.0f p99_us=%.0f errors=%lu get=%lu create=%lu encrypt=%lu "
               "conns=%d seconds=%.1f\n",
               total, (double) total / opt.seconds, p50 * 1e6, p99 * 1e6, errors, kinds[0], kinds[1], kinds[2],
               opt.conns, elapsed);
        free(all);
        free(ts);
        SSL_CTX_free(ctx);
        return failed || errors || total == 0 ? 1 : 0;
}
