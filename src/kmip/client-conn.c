/* The client's transport: TCP with a connect timeout, mutual TLS with OpenSSL, and
 * KMIP framing (an 8-byte TTLV header announces the length of the rest). Failures
 * are classified into the errno values promised in client.h, because the caller has
 * to tell "KMS down" from "certificate expired" from "not trusted". */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "kmip/client-internal.h"
#include "shared/log.h"

void sigpipe_block(struct sigpipe_state *s) {
        sigset_t pipe, pending;
        sigemptyset(&pipe);
        sigaddset(&pipe, SIGPIPE);
        sigemptyset(&pending);
        (void) sigpending(&pending);
        s->was_pending = sigismember(&pending, SIGPIPE) == 1;
        (void) pthread_sigmask(SIG_BLOCK, &pipe, &s->old);
}

void sigpipe_restore(struct sigpipe_state *s) {
        sigset_t pipe, pending;
        sigemptyset(&pipe);
        sigaddset(&pipe, SIGPIPE);
        sigemptyset(&pending);
        /* Discard a SIGPIPE we caused (not one that was already there). */
        if (!s->was_pending && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1) {
                struct timespec zero = { 0, 0 };
                (void) sigtimedwait(&pipe, NULL, &zero);
        }
        (void) pthread_sigmask(SIG_SETMASK, &s->old, NULL);
}

int client_fail(struct kmip_client *c, int err, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->error, sizeof(c->error), fmt, ap);
        va_end(ap);
        log_debug("kmip client: %s", c->error);
        return err;
}

/* Split "host", "host:port" or "[v6]:port"; the port defaults to 5696. */
static int split_server(const char *s, char *host, size_t nh, char *port, size_t np) {
        const char *h = s, *p = NULL;
        size_t hl;
        if (s[0] == '[') {
                const char *end = strchr(s, ']');
                if (!end || (end[1] && end[1] != ':'))
                        return -EINVAL;
                h = s + 1;
                hl = (size_t) (end - h);
                p = end[1] ? end + 2 : NULL;
        } else {
                const char *colon = strrchr(s, ':');
                hl = colon ? (size_t) (colon - s) : strlen(s);
                p = colon ? colon + 1 : NULL;
        }
        if (!p)
                p = KMIP_DEFAULT_PORT;
        if (hl == 0 || hl >= nh || !*p || strlen(p) >= np || strspn(p, "0123456789") != strlen(p))
                return -EINVAL;
        memcpy(host, h, hl);
        host[hl] = '\0';
        strcpy(port, p);
        return 0;
}

static bool is_ip(const char *host) {
        unsigned char buf[sizeof(struct in6_addr)];
        return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static const char *ssl_errors(char *buf, size_t n) {
        unsigned long e = ERR_peek_last_error();
        if (e)
                ERR_error_string_n(e, buf, n);
        else
                snprintf(buf, n, "no detail");
        return buf;
}

static int ctx_setup(struct kmip_client *c) {
        char ebuf[256];
        if (c->ctx)
                return 0;
        SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
        if (!ctx)
                return client_fail(c, -ENOMEM, "cannot create a TLS context");
        SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        /* Answers carry unlock secrets (Decrypt) and KEKs (Get): have libssl wipe each
         * decrypted record once we have read it, instead of leaving the plaintext in
         * its freed buffers for the rest of the process (vmcrypt disk unlock lives on
         * while its child runs). Our own copies are wiped by ttlv_buffer_free. */
        SSL_CTX_set_options(ctx, SSL_OP_CLEANSE_PLAINTEXT);
        if (c->ca_file) {
                if (SSL_CTX_load_verify_locations(ctx, c->ca_file, NULL) != 1) {
                        client_fail(c, -EINVAL, "cannot load CA certificates from %s: %s", c->ca_file,
                                    ssl_errors(ebuf, sizeof(ebuf)));
                        goto fail;
                }
        } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
                client_fail(c, -EINVAL, "cannot load the system CA certificates");
                goto fail;
        }
        if (c->cert_file) {
                if (SSL_CTX_use_certificate_chain_file(ctx, c->cert_file) != 1) {
                        client_fail(c, -EINVAL, "cannot load client certificate %s: %s", c->cert_file,
                                    ssl_errors(ebuf, sizeof(ebuf)));
                        goto fail;
                }
                if (SSL_CTX_use_PrivateKey_file(ctx, c->key_file ? c->key_file : c->cert_file,
                                                SSL_FILETYPE_PEM) != 1 ||
                    SSL_CTX_check_private_key(ctx) != 1) {
                        client_fail(c, -EINVAL, "cannot load the private key of client certificate %s "
                                    "(or it does not match): %s", c->cert_file, ssl_errors(ebuf, sizeof(ebuf)));
                        goto fail;
                }
        }
        ERR_clear_error();
        c->ctx = ctx;
        return 0;
fail:
        ERR_clear_error();
        SSL_CTX_free(ctx);
        return -EINVAL;
}

/* An expired client certificate is the most common field failure; say so plainly
 * instead of waiting for the server's alert (which TLS 1.3 delivers only later). */
static int check_own_certificate(struct kmip_client *c) {
        X509 *cert = c->ctx ? SSL_CTX_get0_certificate(c->ctx) : NULL;
        if (!cert)
                return 0;
        if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0)
                return client_fail(c, -EKEYEXPIRED, "client certificate %s has expired; renew it", c->cert_file);
        if (X509_cmp_current_time(X509_get0_notBefore(cert)) > 0)
                return client_fail(c, -EKEYEXPIRED, "client certificate %s is not valid yet (check the clock)",
                                   c->cert_file);
        return 0;
}

static int poll_fd(int fd, short events, unsigned timeout_ms) {
        struct pollfd p = { .fd = fd, .events = events };
        for (;;) {
                int k = poll(&p, 1, (int) timeout_ms);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                return k == 0 ? -ETIMEDOUT : 0;
        }
}

static int tcp_connect(struct kmip_client *c, const char *host, const char *port, const char *name, int *ret_fd) {
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG }, *res = NULL;
        int g = getaddrinfo(host, port, &hints, &res);
        if (g != 0)
                return client_fail(c, g == EAI_NONAME ? -EHOSTUNREACH : -EHOSTUNREACH,
                                   "%s: cannot resolve host: %s", name, gai_strerror(g));
        int r = -EHOSTUNREACH;
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
                int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
                if (fd < 0) {
                        r = -errno;
                        continue;
                }
                if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
                        r = -errno;
                        close(fd);
                        continue;
                }
                r = poll_fd(fd, POLLOUT, c->connect_timeout_ms);
                if (r == 0) {
                        int err = 0;
                        socklen_t len = sizeof(err);
                        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                                err = errno;
                        r = -err;
                }
                if (r < 0) {
                        close(fd);
                        continue;
                }
                /* Back to blocking, with timeouts on every read and write. */
                int fl = fcntl(fd, F_GETFL);
                (void) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
                struct timeval tv = { .tv_sec = c->io_timeout_ms / 1000, .tv_usec = (c->io_timeout_ms % 1000) * 1000 };
                (void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
                (void) setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
                int one = 1;
                (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                freeaddrinfo(res);
                *ret_fd = fd;
                return 0;
        }
        freeaddrinfo(res);
        if (r == -ETIMEDOUT)
                return client_fail(c, r, "%s: connection timed out after %u ms", name, c->connect_timeout_ms);
        return client_fail(c, r, "%s: cannot connect: %s", name, strerror(-r));
}

/* Turn a failed SSL_connect/read/write into an errno and a sentence. */
static int tls_fail(struct kmip_client *c, SSL *ssl, int ret, const char *name, const char *what) {
        int e = SSL_get_error(ssl, ret);
        int saved = errno;
        unsigned long err = ERR_peek_last_error();
        char ebuf[256];
        int r;

        long v = SSL_get_verify_result(ssl);
        if (v != X509_V_OK && ERR_GET_REASON(err) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
                const char *why = X509_verify_cert_error_string(v);
                if (v == X509_V_ERR_CERT_HAS_EXPIRED)
                        r = client_fail(c, -EKEYEXPIRED, "%s: %s: the server's certificate has expired", name, what);
                else
                        r = client_fail(c, -EKEYREJECTED, "%s: %s: the server's certificate is not trusted (%s); "
                                        "check --ca and the server name", name, what, why);
                ERR_clear_error();
                return r;
        }
        switch (ERR_GET_REASON(err)) {
        case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
                r = client_fail(c, -EKEYEXPIRED, "%s: %s: the server says our client certificate has expired",
                                name, what);
                break;
        case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
        case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
        case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
        case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
        case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
        case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
        case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
                r = client_fail(c, -EKEYREJECTED, "%s: %s: the server rejected our client certificate (%s)",
                                name, what, ERR_reason_error_string(err));
                break;
        default:
                if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && err == 0 && saved == 0) ||
                    ERR_GET_REASON(err) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
                        r = client_fail(c, -ECONNRESET, "%s: %s: the server closed the connection", name, what);
                else if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ||
                         (e == SSL_ERROR_SYSCALL && (saved == EAGAIN || saved == EWOULDBLOCK)))
                        r = client_fail(c, -ETIMEDOUT, "%s: %s: no answer within %u ms", name, what,
                                        c->io_timeout_ms);
                else if (e == SSL_ERROR_SYSCALL && err == 0)
                        r = client_fail(c, saved == EPIPE ? -ECONNRESET : -saved, "%s: %s: %s", name, what,
                                        strerror(saved));
                else
                        r = client_fail(c, -EPROTO, "%s: %s: TLS error: %s", name, what,
                                        ssl_errors(ebuf, sizeof(ebuf)));
        }
        ERR_clear_error();
        return r;
}

static int tls_connect(struct kmip_client *c, int fd, const char *host, const char *name, SSL **ret) {
        SSL *ssl = SSL_new(c->ctx);
        if (!ssl)
                return client_fail(c, -ENOMEM, "%s: cannot create a TLS session", name);
        SSL_set_fd(ssl, fd);
        if (!is_ip(host))
                (void) SSL_set_tlsext_host_name(ssl, host);
        if (!c->no_verify_name) {
                X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
                int ok = is_ip(host) ? X509_VERIFY_PARAM_set1_ip_asc(param, host)
                                     : X509_VERIFY_PARAM_set1_host(param, host, 0);
                if (ok != 1) {
                        SSL_free(ssl);
                        return client_fail(c, -EINVAL, "%s: cannot set the expected server name", name);
                }
        }
        ERR_clear_error();
        int k = SSL_connect(ssl);
        if (k != 1) {
                int r = tls_fail(c, ssl, k, name, "TLS handshake failed");
                SSL_free(ssl);
                return r;
        }
        *ret = ssl;
        return 0;
}

/* How telling a failure is: a certificate problem beats a timeout beats a refusal,
 * so that "closed port, then untrusted server" reports the trust problem. */
static int rank(int r) {
        switch (-r) {
        case EKEYEXPIRED:
        case EKEYREJECTED:
        case EPROTO:
        case EINVAL:
                return 3;
        case ETIMEDOUT:
                return 2;
        default:
                return 1;
        }
}

/* Append "; msg" (or msg) to buf, truncating quietly. */
static void append_error(char *buf, size_t size, const char *msg) {
        size_t len = strnlen(buf, size);
        if (len && len + 2 < size) {
                memcpy(buf + len, "; ", 2);
                len += 2;
        }
        size_t k = MIN(strlen(msg), size - 1 - len);
        memcpy(buf + len, msg, k);
        buf[len + k] = '\0';
}

int conn_open(struct kmip_client *c) {
        if (c->ssl)
                return 0;
        int r = ctx_setup(c);
        if (r < 0)
                return r;
        r = check_own_certificate(c);
        if (r < 0)
                return r;

        char all[KMIP_CLIENT_ERROR_MAX] = "";
        int best = 0;
        for (size_t i = 0; i < c->n_servers; i++) {
                char host[256], port[16];
                const char *name = c->servers[i];
                int fd = -1;
                SSL *ssl = NULL;
                if (split_server(name, host, sizeof(host), port, sizeof(port)) < 0)
                        r = client_fail(c, -EINVAL, "%s: not a valid HOST[:PORT]", name);
                else {
                        r = tcp_connect(c, host, port, name, &fd);
                        if (r >= 0) {
                                r = tls_connect(c, fd, host, name, &ssl);
                                if (r < 0)
                                        close(fd);
                        }
                }
                if (r >= 0) {
                        c->fd = fd;
                        c->ssl = ssl;
                        c->connected = i;
                        c->reused = false;
                        if (i > 0)
                                log_debug("kmip client: failed over to %s after: %s", name, all);
                        return 0;
                }
                append_error(all, sizeof(all), c->error);
                if (best == 0 || rank(r) > rank(best))
                        best = r;
        }
        if (best == 0)
                return client_fail(c, -EINVAL, "no KMIP server configured");
        memcpy(c->error, all, sizeof(all));
        return best;
}

void conn_close(struct kmip_client *c) {
        if (c->ssl) {
                struct sigpipe_state sp;
                sigpipe_block(&sp);
                (void) SSL_shutdown(c->ssl);
                sigpipe_restore(&sp);
                ERR_clear_error();
                SSL_free(c->ssl);
                c->ssl = NULL;
        }
        if (c->fd >= 0) {
                close(c->fd);
                c->fd = -1;
        }
}

static const char *cur_name(struct kmip_client *c) {
        return c->ssl ? c->servers[c->connected] : "?";
}

int conn_send(struct kmip_client *c, const uint8_t *buf, size_t size) {
        size_t off = 0;
        while (off < size) {
                size_t w = 0;
                ERR_clear_error();
                int k = SSL_write_ex(c->ssl, buf + off, size - off, &w);
                if (k != 1)
                        return tls_fail(c, c->ssl, k, cur_name(c), "sending the request failed");
                off += w;
        }
        return 0;
}

static int read_exact(struct kmip_client *c, uint8_t *buf, size_t size, bool *got_any) {
        size_t off = 0;
        while (off < size) {
                size_t n = 0;
                ERR_clear_error();
                int k = SSL_read_ex(c->ssl, buf + off, size - off, &n);
                if (k != 1)
                        return tls_fail(c, c->ssl, k, cur_name(c), "reading the response failed");
                off += n;
                *got_any = true;
        }
        return 0;
}

int conn_recv(struct kmip_client *c, uint8_t **ret, size_t *ret_size) {
        uint8_t hdr[TTLV_HEADER_SIZE];
        bool got_any = false;
        int r = read_exact(c, hdr, sizeof(hdr), &got_any);
        if (r < 0)
                return r;
        size_t total;
        r = ttlv_frame_size(hdr, c->max_response_size, &total);
        if (r == -EMSGSIZE)
                return client_fail(c, -EMSGSIZE, "%s: response larger than %zu bytes", cur_name(c),
                                   c->max_response_size);
        if (r < 0)
                return client_fail(c, -EPROTO, "%s: the server did not answer with a KMIP message", cur_name(c));
        uint8_t *buf = malloc(total);
        if (!buf)
                return -ENOMEM;
        memcpy(buf, hdr, sizeof(hdr));
        r = read_exact(c, buf + sizeof(hdr), total - sizeof(hdr), &got_any);
        if (r < 0) {
                ttlv_buffer_free(buf, total);
                return r == -ECONNRESET ? client_fail(c, -EPROTO, "%s: response cut short", cur_name(c)) : r;
        }
        *ret = buf;
        *ret_size = total;
        return 0;
}

int conn_probe_alert(struct kmip_client *c) {
        const char *name = cur_name(c);
        if (!c->ssl)
                return -ECONNRESET;
        uint8_t b;
        size_t n;
        ERR_clear_error();
        int k = SSL_read_ex(c->ssl, &b, 1, &n);
        if (k == 1)
                return client_fail(c, -EPROTO, "%s: unexpected data from the server", name);
        int r = tls_fail(c, c->ssl, k, name, "the server closed the connection after the TLS handshake");
        if (r == -EKEYREJECTED || r == -EKEYEXPIRED)
                return r;
        return client_fail(c, -EKEYREJECTED,
                           "%s: the server closed the connection right after the TLS handshake "
                           "(it may not accept client certificate %s)", name,
                           c->cert_file ? c->cert_file : "(none)");
}
