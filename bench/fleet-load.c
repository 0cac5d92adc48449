/* Load generator for vmcrypt-manager's status API: N keep-alive HTTPS connections
 * (a thread each, mutual TLS with a client certificate), each sending
 * GET PREFIX<n> (n a random index below --count) and reading the
 * answer by its Content-Length, for --seconds or until SIGINT/SIGTERM. Prints one JSON line: requests,
 * requests/s, non-200 answers, p50/p99/max latency in ms.
 *
 * Usage: fleet-load --host H --port P --ca F --cert F --key F [--conns N]
 *                   [--seconds S] [--prefix /vms/vm-] [--count N] */
#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *host = "127.0.0.1", *path_prefix = "/vms/vm-";
static int port, conns = 8, seconds = 5, count = 200;
static SSL_CTX *ctx;
static double deadline;
static volatile sig_atomic_t stop; /* SIGINT/SIGTERM: finish and report */

static void on_stop(int sig) {
        (void) sig;
        stop = 1;
}

struct worker {
        pthread_t t;
        double *lat;
        size_t n, cap;
        long bad;
        unsigned seed;
};

static double now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One answer: status, headers, Content-Length bytes of body. */
static int read_answer(SSL *ssl, char *buf, size_t size, size_t *have, int *status) {
        for (;;) {
                buf[*have] = 0;
                char *end = strstr(buf, "\r\n\r\n");
                if (end) {
                        size_t head = (size_t) (end - buf) + 4;
                        char *cl = strcasestr(buf, "\r\nContent-Length:");
                        size_t len = cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
                        if (sscanf(buf, "HTTP/1.%*d %d", status) != 1)
                                return -1;
                        while (*have < head + len) {
                                if (*have >= size - 1)
                                        return -1;
                                int n = SSL_read(ssl, buf + *have, (int) (size - 1 - *have));
                                if (n <= 0)
                                        return -1;
                                *have += (size_t) n;
                        }
                        memmove(buf, buf + head + len, *have - head - len);
                        *have -= head + len;
                        return 0;
                }
                if (*have >= size - 1)
                        return -1;
                int n = SSL_read(ssl, buf + *have, (int) (size - 1 - *have));
                if (n <= 0)
                        return -1;
                *have += (size_t) n;
        }
}

static void *run(void *arg) {
        struct worker *w = arg;
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port) };
        inet_pton(AF_INET, host, &a.sin_addr);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(fd, (struct sockaddr *) &a, sizeof(a)) < 0) {
                perror("connect");
                exit(1);
        }
        SSL *ssl = SSL_new(ctx);
        SSL_set_fd(ssl, fd);
        if (SSL_connect(ssl) != 1) {
                fprintf(stderr, "TLS handshake failed\n");
                exit(1);
        }
        char *buf = malloc(1 << 16);
        size_t have = 0;
        while (!stop && now() < deadline) {
                char req[512], path[256];
                snprintf(path, sizeof(path), "%s%u", path_prefix, rand_r(&w->seed) % (unsigned) count);
                int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, host);
                double t0 = now();
                int status = 0;
                if (SSL_write(ssl, req, n) != n || read_answer(ssl, buf, 1 << 16, &have, &status) < 0) {
                        fprintf(stderr, "connection lost\n");
                        exit(1);
                }
                double dt = now() - t0;
                if (status != 200)
                        w->bad++;
                if (w->n == w->cap) {
                        w->cap = w->cap ? 2 * w->cap : 4096;
                        w->lat = realloc(w->lat, w->cap * sizeof(double));
                }
                w->lat[w->n++] = dt;
        }
        free(buf);
        SSL_free(ssl);
        close(fd);
        return NULL;
}

static int cmp(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

int main(int argc, char *argv[]) {
        static const struct option opts[] = {
                { "host", 1, NULL, 'h' }, { "port", 1, NULL, 'p' },    { "ca", 1, NULL, 'a' },
                { "cert", 1, NULL, 'c' }, { "key", 1, NULL, 'k' },     { "conns", 1, NULL, 'n' },
                { "seconds", 1, NULL, 's' }, { "prefix", 1, NULL, 'P' }, { "count", 1, NULL, 'N' },
                {},
        };
        const char *ca = NULL, *cert = NULL, *key = NULL;
        int c;
        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0)
                switch (c) {
                case 'h': host = optarg; break;
                case 'p': port = atoi(optarg); break;
                case 'a': ca = optarg; break;
                case 'c': cert = optarg; break;
                case 'k': key = optarg; break;
                case 'n': conns = atoi(optarg); break;
                case 's': seconds = atoi(optarg); break;
                case 'P': path_prefix = optarg; break;
                case 'N': count = atoi(optarg); break;
                default: return 2;
                }
        if (!port || !ca || !cert || !key || conns < 1 || conns > 64 || count < 1) {
                fprintf(stderr, "usage: fleet-load --port P --ca F --cert F --key F [--conns 1-64] ...\n");
                return 2;
        }
        ctx = SSL_CTX_new(TLS_client_method());
        if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1 || SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
            SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
                fprintf(stderr, "cannot load the certificates\n");
                return 1;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        struct worker *w = calloc((size_t) conns, sizeof(*w));
        struct sigaction sa = { .sa_handler = on_stop };
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        double start = now();
        deadline = start + seconds;
        for (int i = 0; i < conns; i++) {
                w[i].seed = (unsigned) i * 7919u + 1;
                pthread_create(&w[i].t, NULL, run, &w[i]);
        }
        size_t total = 0;
        long bad = 0;
        for (int i = 0; i < conns; i++) {
                pthread_join(w[i].t, NULL);
                total += w[i].n;
                bad += w[i].bad;
        }
        double elapsed = now() - start;
        double *all = malloc((total ? total : 1) * sizeof(double));
        size_t k = 0;
        for (int i = 0; i < conns; i++) {
                memcpy(all + k, w[i].lat, w[i].n * sizeof(double));
                k += w[i].n;
                free(w[i].lat);
        }
        qsort(all, total, sizeof(double), cmp);
        double p50 = total ? all[total / 2] : 0, p99 = total ? all[(size_t) (total * 0.99)] : 0,
               max = total ? all[total - 1] : 0;
        printf("{\"requests\": %zu, \"rps\": %.0f, \"non_200\": %ld, \"p50_ms\": %.2f, \"p99_ms\": %.2f, "
               "\"max_ms\": %.2f, \"conns\": %d}\n",
               total, total / elapsed, bad, p50 * 1e3, p99 * 1e3, max * 1e3, conns);
        free(all);
        free(w);
        SSL_CTX_free(ctx);
        return 0;
}
