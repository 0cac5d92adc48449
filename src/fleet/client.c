/* The API client: see client.h. Plain sockets and OpenSSL; HTTP/1.1 with
 * "Connection: close", bodies by Content-Length or chunked. */
#include "fleet/client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "shared/fd-util.h"
#include "shared/key-input.h"
#include "shared/macro.h"
#include "shared/secret.h"

#define MAX_ANSWER (64 << 20)

struct fleet_client {
        char host[256], port[16];
        SSL_CTX *ctx;
        struct secret *token;   /* a bearer token, when there is no certificate */
};

int fleet_client_new(const char *url, const char *ca, const char *cert, const char *key, struct fleet_client **ret,
                     struct error *err) {
        if (strncmp(url, "https://", 8) != 0)
                return error_set(err, -EINVAL, "manager URL '%s' must start with https://", url);
        _cleanup_(fleet_client_freep) struct fleet_client *c = calloc(1, sizeof(*c));
        if (!c)
                return error_set(err, -ENOMEM, "out of memory");
        const char *h = url + 8, *end;
        if (*h == '[') {
                end = strchr(h, ']');
                if (!end)
                        return error_set(err, -EINVAL, "manager URL '%s': no ']'", url);
                snprintf(c->host, sizeof(c->host), "%.*s", (int) (end - h - 1), h + 1);
                end++;
        } else {
                end = h + strcspn(h, ":/");
                snprintf(c->host, sizeof(c->host), "%.*s", (int) (end - h), h);
        }
        snprintf(c->port, sizeof(c->port), "443");
        if (*end == ':') {
                size_t n = strspn(end + 1, "0123456789");
                if (n == 0 || n > 5)
                        return error_set(err, -EINVAL, "manager URL '%s': bad port", url);
                snprintf(c->port, sizeof(c->port), "%.*s", (int) n, end + 1);
                end += 1 + n;
        }
        if (!c->host[0] || (*end && strcmp(end, "/") != 0))
                return error_set(err, -EINVAL, "manager URL '%s' must be https://HOST[:PORT]", url);
        c->ctx = SSL_CTX_new(TLS_client_method());
        if (!c->ctx)
                return error_set(err, -ENOMEM, "out of memory");
        SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
        if (SSL_CTX_load_verify_locations(c->ctx, ca, NULL) != 1)
                return error_set(err, -ENOENT, "cannot read the manager's CA certificate %s", ca);
        if (cert && SSL_CTX_use_certificate_chain_file(c->ctx, cert) != 1)
                return error_set(err, -ENOENT, "cannot read the client certificate %s", cert);
        if (cert && (!key || SSL_CTX_use_PrivateKey_file(c->ctx, key, SSL_FILETYPE_PEM) != 1 ||
                     SSL_CTX_check_private_key(c->ctx) != 1))
                return error_set(err, -EKEYREJECTED, "cannot read the client key %s, or it does not match %s",
                                       key ? key : "(none)", cert);
        SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
        /* libevent may close without close_notify; bodies have a length (or
         * chunks), so a missing close_notify cannot cut one short unnoticed. */
        SSL_CTX_set_options(c->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
        ERR_clear_error();
        *ret = TAKE_PTR(c);
        return 0;
}

void fleet_client_free(struct fleet_client *c) {
        SSL_CTX_free(c->ctx);
        secret_free(c->token);
        free(c);
}

int fleet_client_use_token(struct fleet_client *c, const char *path, struct error *err) {
        /* Like ssh with a private key: a token others may read, or a link
         * another user could point elsewhere, is refused. */
        _cleanup_(closep) int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0)
                return error_set(err, negative_errno(), "cannot open the token file %s: %s", path, strerror(errno));
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return error_set(err, -EINVAL, "the token file %s is not a regular file", path);
        if (st.st_uid != geteuid() || (st.st_mode & 077))
                return error_set(err, -EACCES, "the token file %s must be yours and readable by you alone "
                                 "(chmod 600 %s)", path, path);
        _cleanup_(secret_freep) struct secret *t = NULL;
        int r = key_input_read_fd(fd, &t);
        if (r < 0)
                return error_set(err, r, "cannot read the token file %s: %s", path,
                                 r == -EINVAL ? "it is empty" : strerror(-r));
        key_input_strip_newline(t);
        /* RFC 6750's token characters: nothing that could end the header line. */
        for (size_t i = 0; i < t->size; i++)
                if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/=", t->data[i]))
                        return error_set(err, -EINVAL, "the token file %s holds more than one token of letters, "
                                         "digits and -._~+/=", path);
        if (t->size == 0 || t->size > 512)
                return error_set(err, -EINVAL, "the token in %s must be 1 to 512 characters", path);
        secret_free(c->token);
        c->token = TAKE_PTR(t);
        return 0;
}

static int connect_to(struct fleet_client *c, int timeout, struct error *err) {
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG }, *ai = NULL;
        int rc = getaddrinfo(c->host, c->port, &hints, &ai);
        if (rc != 0)
                return error_set(err, -EHOSTUNREACH, "cannot resolve the manager %s: %s", c->host,
                                       gai_strerror(rc));
        int fd = -1, e = 0;
        for (struct addrinfo *a = ai; a; a = a->ai_next) {
                fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
                if (fd < 0)
                        continue;
                int one = 1;
                (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                struct timeval tv = { .tv_sec = timeout };
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
                setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
                if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
                        break;
                e = errno;
                close(fd);
                fd = -1;
        }
        freeaddrinfo(ai);
        if (fd < 0)
                return error_set(err, -ECONNREFUSED, "cannot connect to the manager at %s:%s: %s; is "
                                       "vmcrypt-manager running there?", c->host, c->port, strerror(e ? e : EIO));
        return fd;
}

struct conn {
        SSL *ssl;
        int fd;
        char buf[16384];
        size_t len, pos;
};

static void conn_close(struct conn *k) {
        if (k->ssl) {
                SSL_shutdown(k->ssl);
                SSL_free(k->ssl);
        }
        if (k->fd >= 0)
                close(k->fd);
}

/* One more byte; -EPIPE at the end of the stream. */
static int conn_byte(struct conn *k) {
        if (k->pos == k->len) {
                int n = SSL_read(k->ssl, k->buf, sizeof(k->buf));
                if (n <= 0) {
                        int e = SSL_get_error(k->ssl, n);
                        return e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL ? -EPIPE : -EIO;
                }
                k->len = (size_t) n;
                k->pos = 0;
        }
        return (unsigned char) k->buf[k->pos++];
}

static int conn_line(struct conn *k, char *line, size_t size) {
        size_t n = 0;
        for (;;) {
                int ch = conn_byte(k);
                if (ch < 0)
                        return ch;
                if (ch == '\n')
                        break;
                if (n + 1 >= size)
                        return -E2BIG;
                line[n++] = (char) ch;
        }
        if (n > 0 && line[n - 1] == '\r')
                n--;
        line[n] = 0;
        return (int) n;
}

static int open_request(struct fleet_client *c, const char *method, const char *path, json_t *body, int timeout,
                        struct conn *k, struct error *err) {
        k->fd = connect_to(c, timeout, err);
        if (k->fd < 0)
                return k->fd;
        k->ssl = SSL_new(c->ctx);
        if (!k->ssl)
                return error_set(err, -ENOMEM, "out of memory");
        struct in6_addr a6;
        struct in_addr a4;
        X509_VERIFY_PARAM *vp = SSL_get0_param(k->ssl);
        if (inet_pton(AF_INET, c->host, &a4) == 1 || inet_pton(AF_INET6, c->host, &a6) == 1)
                X509_VERIFY_PARAM_set1_ip_asc(vp, c->host);
        else {
                SSL_set_tlsext_host_name(k->ssl, c->host);
                X509_VERIFY_PARAM_set1_host(vp, c->host, 0);
        }
        SSL_set_fd(k->ssl, k->fd);
        if (SSL_connect(k->ssl) != 1) {
                long v = SSL_get_verify_result(k->ssl);
                unsigned long e = ERR_get_error();
                ERR_clear_error();
                return error_set(err, v != X509_V_OK ? -EACCES : -ECONNRESET,
                                       "TLS with the manager %s:%s failed: %s", c->host, c->port,
                                       v != X509_V_OK ? X509_verify_cert_error_string(v)
                                       : e ? ERR_reason_error_string(e) : "the manager refused the certificate");
        }
        _cleanup_(freep) char *data = body ? json_dumps(body, JSON_COMPACT) : NULL;
        size_t dlen = data ? strlen(data) : 0;
        _cleanup_(freep) char *head = NULL;
        int n = asprintf(&head,
                         "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nAccept: application/json\r\n"
                         "%sContent-Length: %zu\r\n",
                         method, path, c->host, data ? "Content-Type: application/json\r\n" : "", dlen);
        if (n < 0)
                return error_set(err, -ENOMEM, "out of memory");
        bool ok = SSL_write(k->ssl, head, n) == n;
        if (ok && c->token) {
                /* The token goes from its locked memory to the TLS record and
                 * nowhere else. */
                ok = SSL_write(k->ssl, "Authorization: Bearer ", 22) == 22 &&
                     SSL_write(k->ssl, c->token->data, (int) c->token->size) == (int) c->token->size &&
                     SSL_write(k->ssl, "\r\n", 2) == 2;
        }
        ok = ok && SSL_write(k->ssl, "\r\n", 2) == 2;
        if (!ok || (dlen && SSL_write(k->ssl, data, (int) dlen) != (int) dlen))
                return error_set(err, -ECONNRESET, "the manager closed the connection while we sent %s %s",
                                       method, path);
        return 0;
}

/* The status line and headers: status, chunked or content length (-1 none). */
static int read_head(struct conn *k, int *status, bool *chunked, long long *length, struct error *err) {
        char line[8192];
        int r = conn_line(k, line, sizeof(line));
        if (r < 0 || sscanf(line, "HTTP/1.%*d %d", status) != 1)
                return error_set(err, -EPROTO, "the manager sent no HTTP answer (or it timed out)");
        *chunked = false;
        *length = -1;
        for (;;) {
                r = conn_line(k, line, sizeof(line));
                if (r < 0)
                        return error_set(err, -EPROTO, "the manager's answer ended in its headers");
                if (r == 0)
                        return 0;
                if (strncasecmp(line, "Transfer-Encoding:", 18) == 0 && strcasestr(line + 18, "chunked"))
                        *chunked = true;
                else if (strncasecmp(line, "Content-Length:", 15) == 0)
                        *length = strtoll(line + 15, NULL, 10);
        }
}

/* The body in pieces to piece(); stops early when piece returns non-zero. */
static int read_body(struct conn *k, bool chunked, long long length,
                     int (*piece)(const char *p, size_t n, void *u), void *u, struct error *err) {
        char line[64];
        for (;;) {
                long long n = length;
                if (chunked) {
                        if (conn_line(k, line, sizeof(line)) < 0)
                                return error_set(err, -EPROTO, "the manager's answer was cut short");
                        n = strtoll(line, NULL, 16);
                        if (n == 0)
                                return 0;
                }
                for (long long i = 0; n < 0 || i < n; i++) {
                        int ch = conn_byte(k);
                        if (ch == -EPIPE && n < 0)
                                return 0;
                        if (ch < 0)
                                return error_set(err, -EPROTO, "the manager's answer was cut short");
                        char b = (char) ch;
                        int r = piece(&b, 1, u);
                        if (r)
                                return r < 0 ? error_set(err, r, "the manager's answer is too large") : 0;
                }
                if (!chunked)
                        return 0;
                if (conn_line(k, line, sizeof(line)) < 0)
                        return error_set(err, -EPROTO, "the manager's answer was cut short");
        }
}

struct acc {
        char *data;
        size_t len, cap;
        int (*line)(json_t *value, void *userdata);
        void *userdata;
};

static int acc_add(const char *p, size_t n, void *u) {
        struct acc *a = u;
        if (a->len + n + 1 > a->cap) {
                if (a->len + n + 1 > MAX_ANSWER)
                        return -E2BIG;
                size_t cap = MAX(a->cap * 2, 4096);
                char *d = realloc(a->data, cap);
                if (!d)
                        return -ENOMEM;
                a->data = d;
                a->cap = cap;
        }
        memcpy(a->data + a->len, p, n);
        a->len += n;
        a->data[a->len] = 0;
        if (a->line && a->len && a->data[a->len - 1] == '\n') {
                json_t *v = json_loadb(a->data, a->len, 0, NULL);
                a->len = 0;
                if (v) {
                        int r = a->line(v, a->userdata);
                        json_decref(v);
                        if (r)
                                return 1;
                }
        }
        return 0;
}

int fleet_client_request(struct fleet_client *c, const char *method, const char *path, json_t *body, int timeout,
                         int *ret_status, json_t **ret_body, struct error *err) {
        struct conn k = { .fd = -1 };
        struct acc a = { 0 };
        int status = 0;
        bool chunked;
        long long length;
        int r = open_request(c, method, path, body, timeout, &k, err);
        if (r == 0)
                r = read_head(&k, &status, &chunked, &length, err);
        /* A 204 has no body, whatever its headers say. */
        if (r == 0 && status != 204 && status != 304)
                r = read_body(&k, chunked, length, acc_add, &a, err);
        conn_close(&k);
        json_t *v = NULL;
        if (r == 0 && a.len > 0) {
                v = json_loadb(a.data, a.len, 0, NULL);
                if (!v)
                        r = error_set(err, -EPROTO, "the manager answered %d with a body that is not JSON",
                                            status);
        }
        free(a.data);
        if (r < 0)
                return r;
        *ret_status = status;
        *ret_body = v;
        return 0;
}

int fleet_client_stream(struct fleet_client *c, const char *path, int (*line)(json_t *value, void *userdata),
                        void *userdata, int *ret_status, struct error *err) {
        struct conn k = { .fd = -1 };
        struct acc a = { .line = line, .userdata = userdata };
        bool chunked;
        long long length;
        /* A follow may be quiet for long: no receive timeout beyond the day. */
        int r = open_request(c, "GET", path, NULL, 86400, &k, err);
        if (r == 0)
                r = read_head(&k, ret_status, &chunked, &length, err);
        if (r == 0 && *ret_status != 200) {
                a.line = NULL;
                r = read_body(&k, chunked, length, acc_add, &a, err);
                json_t *v = r == 0 && a.len ? json_loadb(a.data, a.len, 0, NULL) : NULL;
                const char *e = json_string_value(json_object_get(v, "error"));
                r = error_set(err, *ret_status == 403 ? -EACCES : *ret_status == 404 ? -ENOENT : -EINVAL,
                                    "%s", e ? e : "the manager refused the request");
                json_decref(v);
        } else if (r == 0)
                r = read_body(&k, chunked, length, acc_add, &a, err);
        conn_close(&k);
        free(a.data);
        return r;
}

static bool job_ended(json_t *job) {
        const char *state = json_string_value(json_object_get(job, "state"));
        const char *request = json_string_value(json_object_get(job, "request"));
        if (!state || strcmp(state, "queued") == 0 || strcmp(state, "running") == 0)
                return false;
        return !(strcmp(state, "paused") == 0 && request && strcmp(request, "key-wait") == 0);
}

int fleet_client_job_wait(struct fleet_client *c, long long id, int patience, json_t **ret, struct error *err) {
        char path[64];
        snprintf(path, sizeof(path), "/jobs/%lld", id);
        int unreachable = 0;
        for (;;) {
                struct error e = { 0 };
                json_t *job = NULL;
                int status = 0;
                int r = fleet_client_request(c, "GET", path, NULL, 60, &status, &job, &e);
                if (r < 0) {
                        /* A manager restarting is not the job's end. */
                        if (++unreachable > patience)
                                return error_wrap(err, &e, r, "%s (for %d s while waiting for job %lld)", e.text,
                                                  patience, id);
                } else if (status != 200) {
                        const char *why = json_string_value(json_object_get(job, "error"));
                        r = error_set(err, status == 404 ? -ENOENT : status == 403 ? -EACCES : -EIO,
                                      "the manager answered %d about job %lld: %s", status, id, why ? why : "");
                        json_decref(job);
                        return r;
                } else {
                        unreachable = 0;
                        if (job_ended(job)) {
                                *ret = job;
                                return 0;
                        }
                }
                json_decref(job);
                sleep(1);
        }
}
