/* The manager's HTTPS server: libevent's evhttp over OpenSSL bufferevents, every
 * client authenticated by its certificate before a byte of HTTP is read (or,
 * when manager.conf has bearer tokens, by its first request's token). The
 * handlers are fleet_api_handle's; this file only maps certificates to roles,
 * moves bytes, and keeps the long polls and event streams that wait. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "fleet/api.h"
#include "fleet/store.h"
#include "manager/manager.h"
#include "shared/log.h"
#include "shared/macro.h"
#include "shared/x509.h"
#include "tls/addr-limit.h"
#include "tls/tls.h"

/* A request that waits: a long poll for an agent's next job, or an event stream. */
struct parked {
        struct parked *next;
        struct evhttp_request *req;
        struct evhttp_connection *conn;
        struct fleet_principal who;
        enum fleet_reply_kind kind;
        char path[256], query[512];
        time_t deadline;
        char vm[256];
        int64_t after;
        bool gone;
};

/* One connection, from its bufferevent's making to its SSL object's end (the
 * SSL's ex_data free callback unlinks it: evhttp owns the connection and frees
 * it when it likes). evhttp accepts and gives the socket to the bufferevent
 * only after bev_new returns, so the address is looked at a moment later. */
struct conn {
        struct conn *prev, *next;
        struct server *server;
        struct bufferevent *bev;
        SSL *ssl;
        time_t started;
        bool checked;            /* its address was looked at */
        bool authenticated;      /* its handshake is done */
        bool doomed;             /* to be closed: over a limit */
        struct addr_slot *slot;  /* its count in the per-address table while pending */
};

struct server {
        const struct manager_config *config;
        struct manager_config *reloaded;  /* config, when SIGHUP read it anew (freed here) */
        struct event_base *base;
        SSL_CTX *ctx;
        struct fleet_store *store;
        struct parked *parked;
        struct conn *conns;
        unsigned n_conns, n_pending;
        unsigned max_conns, max_pending;  /* the config's, under the open file limit */
        struct addr_limit *pending_by_addr;
        struct event *check;     /* made active by bev_new: look at new connections */
        /* What the limits closed since the last log line. */
        unsigned closed_full, closed_addr, closed_timeout, dropped_streams;
        time_t certs_checked;    /* the manager's own certificates, looked at hourly */
};

static int conn_index = -1;

/* An event stream's socket send buffer (the kernel doubles it). */
#define STREAM_SNDBUF (64 * 1024)

static void conn_pending_end(struct conn *c) {
        if (c->authenticated)
                return;
        c->authenticated = true;
        c->server->n_pending--;
        addr_limit_release(c->server->pending_by_addr, c->slot);
        c->slot = NULL;
}

/* The SSL object goes (with its connection): forget the connection. */
static void conn_free(void *parent _unused_, void *ptr, CRYPTO_EX_DATA *ad _unused_, int idx _unused_,
                      long argl _unused_, void *argp _unused_) {
        struct conn *c = ptr;
        if (!c)
                return;
        struct server *s = c->server;
        if (!s) { /* the server is gone */
                free(c);
                return;
        }
        conn_pending_end(c);
        if (c->prev)
                c->prev->next = c->next;
        else
                s->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        s->n_conns--;
        free(c);
}

/* Close a connection evhttp owns: it sees the end of the stream and frees it. */
static void conn_close(struct conn *c) {
        evutil_socket_t fd = bufferevent_getfd(c->bev);
        if (fd >= 0)
                (void) shutdown(fd, SHUT_RDWR);
        c->doomed = false;
        c->checked = true;
}

/* New connections' addresses against the per-address limit, those over a limit
 * closed; pending ones past the handshake deadline closed; finished handshakes
 * counted out of the pending ones. */
static void check_conns(evutil_socket_t fd _unused_, short what _unused_, void *arg) {
        struct server *s = arg;
        time_t now = time(NULL);
        for (struct conn *c = s->conns, *next; c; c = next) {
                next = c->next;
                if (c->doomed) {
                        conn_close(c);
                        continue;
                }
                /* A session without a certificate (bearer tokens) stays pending,
                 * under the same limits and deadline, until a request of it
                 * shows a valid token. */
                if (!c->authenticated && SSL_is_init_finished(c->ssl) && SSL_get0_peer_certificate(c->ssl)) {
                        conn_pending_end(c);
                        continue;
                }
                if (c->authenticated)
                        continue;
                if (!c->checked) {
                        struct sockaddr_storage ss;
                        socklen_t len = sizeof(ss);
                        evutil_socket_t sock = bufferevent_getfd(c->bev);
                        if (sock < 0)
                                continue;
                        c->checked = true;
                        if (getpeername(sock, (struct sockaddr *) &ss, &len) == 0 &&
                            addr_limit_acquire(s->pending_by_addr, (struct sockaddr *) &ss, &c->slot) < 0) {
                                s->closed_addr++;
                                conn_close(c);
                                continue;
                        }
                }
                if (now - c->started >= (time_t) s->config->handshake_timeout) {
                        s->closed_timeout++;
                        conn_close(c);
                }
        }
}

static struct bufferevent *bev_new(struct event_base *base, void *arg) {
        struct server *s = arg;
        struct conn *c = calloc(1, sizeof(*c));
        SSL *ssl = c ? SSL_new(s->ctx) : NULL;
        if (!ssl || !SSL_set_ex_data(ssl, conn_index, c)) {
                /* Out of memory. (evhttp makes a plain socket of a NULL: a client
                 * without a certificate, which every route refuses.) */
                SSL_free(ssl);
                free(c);
                return NULL;
        }
        *c = (struct conn) { .server = s, .ssl = ssl, .started = time(NULL), .next = s->conns };
        if (s->conns)
                s->conns->prev = c;
        s->conns = c;
        s->n_conns++;
        s->n_pending++;
        c->bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
        if (!c->bev) {
                SSL_free(ssl); /* conn_free unlinks c */
                return NULL;
        }
        /* Over max-connections, or max-unauthenticated: closed at once (the
         * clients that finished their handshake keep their place). */
        if (s->n_conns > s->max_conns || s->n_pending > s->max_pending) {
                s->closed_full++;
                c->doomed = true;
        }
        event_active(s->check, 0, 0);
        return c->bev;
}

/* who's role and privileges as manager.conf gives them now: a certificate by
 * its CN (none when its fingerprint is revoked), a token by its name (none when
 * it is gone or expired). */
static void principal_role(const struct manager_config *c, struct fleet_principal *who) {
        who->role[0] = 0;
        who->privs = 0;
        for (size_t i = 0; !who->token && i < c->n_revoked; i++)
                if (strcmp(c->revoked[i], who->fingerprint) == 0)
                        return;
        for (size_t i = 0; i < c->n_clients; i++) {
                const struct manager_client *m = &c->clients[i];
                if (m->token != who->token || strcmp(m->cn, who->cn) != 0)
                        continue;
                if (m->token && (long long) time(NULL) >= m->expires)
                        return;
                snprintf(who->role, sizeof(who->role), "%s", m->role);
                who->privs = m->privs;
                return;
        }
}

/* A session without a certificate (accepted only when manager.conf has
 * tokens): the request's bearer token names the caller. 0, or -EACCES with
 * why for a 401. */
static int token_principal(struct server *s, struct evhttp_request *req, struct fleet_principal *who,
                           const char **why) {
        const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
        *why = "no client certificate and no bearer token (Authorization: Bearer TOKEN)";
        if (!h || strncasecmp(h, "Bearer ", 7) != 0)
                return -EACCES;
        const char *t = h + 7 + strspn(h + 7, " ");
        *why = "the bearer token is not one of this manager's";
        size_t n = strlen(t);
        if (n == 0 || n > 512)
                return -EACCES;
        unsigned char digest[32];
        SHA256((const unsigned char *) t, n, digest);
        /* Every entry is compared, in constant time: how long the search takes
         * says nothing of which tokens exist. */
        const struct manager_client *found = NULL;
        for (size_t i = 0; i < s->config->n_clients; i++) {
                const struct manager_client *m = &s->config->clients[i];
                if (m->token && CRYPTO_memcmp(digest, m->hash, sizeof(digest)) == 0)
                        found = m;
        }
        if (!found)
                return -EACCES;
        if ((long long) time(NULL) >= found->expires) {
                *why = "the bearer token has expired: renew it with 'vmcrypt-manager issue DIR NAME --renew'";
                return -EACCES;
        }
        snprintf(who->cn, sizeof(who->cn), "%s", found->cn);
        who->token = true;
        principal_role(s->config, who);
        return 0;
}

/* Who is calling: the verified certificate's CN and its role from manager.conf,
 * or a bearer token's name and role in a session without a certificate. 0, or
 * -EACCES with why when the caller is not authenticated at all. */
static int principal(struct server *s, struct evhttp_request *req, struct fleet_principal *who, const char **why) {
        memset(who, 0, sizeof(*who));
        struct bufferevent *bev = evhttp_connection_get_bufferevent(evhttp_request_get_connection(req));
        SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
        X509 *peer = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
        /* (A session without a certificate exists only while manager.conf has,
         * or had before a reload, token lines.) */
        if (ssl && !peer) {
                int r = token_principal(s, req, who, why);
                struct conn *c = r == 0 ? SSL_get_ex_data(ssl, conn_index) : NULL;
                if (c)
                        conn_pending_end(c);
                return r;
        }
        if (!ssl || tls_peer_identity(ssl, who->cn, sizeof(who->cn), who->fingerprint, why) < 0) {
                snprintf(who->cn, sizeof(who->cn), "(unidentified)");
                return 0;
        }
        /* When the certificate ends: agents are told of before it does. */
        who->cert_expires = x509_end(peer);
        principal_role(s->config, who);
        return 0;
}

static void send_json(struct evhttp_request *req, int status, json_t *body) {
        struct evbuffer *out = evbuffer_new();
        if (body) {
                char *text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
                if (text) {
                        evbuffer_add(out, text, strlen(text));
                        evbuffer_add(out, "\n", 1);
                        free(text);
                }
                evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
        }
        static const struct { int code; const char *reason; } reasons[] = {
                { 200, "OK" }, { 202, "Accepted" }, { 204, "No Content" }, { 400, "Bad Request" },
                { 403, "Forbidden" }, { 404, "Not Found" }, { 405, "Method Not Allowed" }, { 409, "Conflict" },
                { 413, "Payload Too Large" }, { 500, "Internal Server Error" },
        };
        const char *reason = "Status";
        for (size_t i = 0; i < ELEMENTSOF(reasons); i++)
                if (reasons[i].code == status)
                        reason = reasons[i].reason;
        evhttp_send_reply(req, status, reason, out);
        evbuffer_free(out);
}

/* What a stream's reader has not taken yet: the plaintext a TLS connection
 * could not send. */
static size_t unsent(struct evhttp_connection *conn) {
        struct bufferevent *bev = evhttp_connection_get_bufferevent(conn);
        return bev ? evbuffer_get_length(bufferevent_get_output(bev)) : 0;
}

/* Send the events of a stream as JSON lines. */
static void stream_events(struct evhttp_request *req, json_t *events, int64_t *after) {
        struct evbuffer *out = evbuffer_new();
        size_t i;
        json_t *e;
        json_array_foreach(events, i, e) {
                char *text = json_dumps(e, JSON_COMPACT);
                if (text) {
                        evbuffer_add_printf(out, "%s\n", text);
                        free(text);
                }
                *after = json_integer_value(json_object_get(e, "id"));
        }
        if (evbuffer_get_length(out))
                evhttp_send_reply_chunk(req, out);
        evbuffer_free(out);
}

static void parked_closed(struct evhttp_connection *conn _unused_, void *arg) {
        struct parked *p = arg;
        p->gone = true;
}

static void park(struct server *s, struct evhttp_request *req, const struct fleet_principal *who,
                 const struct fleet_request *r, const struct fleet_response *resp) {
        struct parked *p = calloc(1, sizeof(*p));
        if (!p) {
                send_json(req, 500, NULL);
                return;
        }
        p->req = req;
        p->conn = evhttp_request_get_connection(req);
        p->who = *who;
        p->kind = resp->kind;
        snprintf(p->path, sizeof(p->path), "%s", r->path);
        snprintf(p->query, sizeof(p->query), "%s", r->query ? r->query : "");
        p->deadline = time(NULL) + resp->wait_seconds;
        snprintf(p->vm, sizeof(p->vm), "%s", resp->vm);
        p->after = resp->after;
        evhttp_connection_set_closecb(p->conn, parked_closed, p);
        p->next = s->parked;
        s->parked = p;
}

static void handle(struct evhttp_request *req, void *arg) {
        struct server *s = arg;
        struct fleet_principal who;
        const char *why = NULL;
        if (principal(s, req, &who, &why) < 0) {
                /* Not authenticated at all (no certificate, no valid token): an
                 * answer, no event (a peer that proved nothing may not write to
                 * the log), and the connection closed. */
                struct evkeyvalq *h = evhttp_request_get_output_headers(req);
                evhttp_add_header(h, "WWW-Authenticate", "Bearer realm=\"vmcrypt-manager\"");
                evhttp_add_header(h, "Connection", "close");
                json_t *e = json_pack("{s:s}", "error", why);
                send_json(req, 401, e);
                json_decref(e);
                log_debug("refused a request without credentials: %s", why);
                return;
        }
        const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
        const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
        const char *method;
        switch (evhttp_request_get_command(req)) {
        case EVHTTP_REQ_GET: method = "GET"; break;
        case EVHTTP_REQ_POST: method = "POST"; break;
        case EVHTTP_REQ_PUT: method = "PUT"; break;
        case EVHTTP_REQ_DELETE: method = "DELETE"; break;
        default: method = "OTHER"; break;
        }
        if (!path || !*path) {
                json_t *e = json_pack("{s:s}", "error", "bad request URI");
                send_json(req, 400, e);
                json_decref(e);
                return;
        }
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        size_t len = evbuffer_get_length(in);
        struct fleet_request r = {
                .method = method,
                .path = path,
                .query = evhttp_uri_get_query(uri),
                .body = len ? (const char *) evbuffer_pullup(in, -1) : NULL,
                .body_len = len,
                .who = &who,
        };
        struct fleet_response resp;
        fleet_api_handle(s->store, &r, &resp);
        log_debug("%s %s %s (%s): %d", who.cn, method, path, who.role[0] ? who.role : "none", resp.status);
        if (resp.kind == FLEET_WAIT_JOB)
                park(s, req, &who, &r, &resp);
        else if (resp.kind == FLEET_STREAM_EVENTS) {
                /* The kernel would otherwise take megabytes for a reader that does
                 * not read (send buffer autotuning): a fixed send buffer leaves the
                 * backlog where max-stream-buffer sees it. */
                struct bufferevent *bev = evhttp_connection_get_bufferevent(evhttp_request_get_connection(req));
                int sndbuf = STREAM_SNDBUF;
                if (bev && bufferevent_getfd(bev) >= 0)
                        (void) setsockopt(bufferevent_getfd(bev), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
                evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/x-ndjson");
                evhttp_send_reply_start(req, 200, "OK");
                int64_t after = resp.after;
                stream_events(req, resp.body, &after);
                park(s, req, &who, &r, &resp);
        } else
                send_json(req, resp.status, resp.body);
        fleet_response_clear(&resp);
}

/* Every quarter second: long polls that now have a job (or ran out of time),
 * streams that have new events. Polling the store (not a signal inside this
 * process) is what lets several managers share one database. */
/* The manager's server certificate and CA: an expired one stops the fleet,
 * so each within X509_WARN_DAYS of its end is a warning and an event
 * (once a day). */
static void check_own_certs(struct server *s) {
        const struct {
                const char *path, *subject;
        } certs[] = {
                { s->config->cert, "the manager's server certificate (tls-cert)" },
                { s->config->ca, "the manager's CA certificate (tls-ca)" },
        };
        for (size_t i = 0; i < sizeof(certs) / sizeof(certs[0]); i++) {
                int64_t end = x509_file_end(certs[i].path);
                if (!x509_ends_soon(end, (int64_t) time(NULL)))
                        continue;
                log_warning("%s %s ends within %d days (%s): renew it", certs[i].subject, certs[i].path,
                            X509_WARN_DAYS, end <= (int64_t) time(NULL) ? "it has" : "soon");
                struct error err = { 0 };
                if (fleet_store_expiry_event(s->store, "", "certificate-expiring", certs[i].subject, end,
                                             "replace it (tls-cert, tls-key, tls-ca in manager.conf) and restart "
                                             "the manager", &err) < 0)
                        log_warning("cannot record the event: %s", err.text);
        }
        s->certs_checked = time(NULL);
}

static void tick(evutil_socket_t fd _unused_, short what _unused_, void *arg) {
        struct server *s = arg;
        time_t now = time(NULL);
        if (now - s->certs_checked >= 3600)
                check_own_certs(s);
        check_conns(-1, 0, s);
        if (s->closed_full + s->closed_addr + s->closed_timeout + s->dropped_streams > 0) {
                log_warning("limits: closed %u connection(s) over max-connections or max-unauthenticated, %u over "
                            "max-unauthenticated-per-address, %u past handshake-timeout; dropped %u event "
                            "stream(s) over max-stream-buffer",
                            s->closed_full, s->closed_addr, s->closed_timeout, s->dropped_streams);
                s->closed_full = s->closed_addr = s->closed_timeout = s->dropped_streams = 0;
        }
        for (struct parked **pp = &s->parked; *pp;) {
                struct parked *p = *pp;
                bool finished = p->gone;
                if (!finished && p->kind == FLEET_WAIT_JOB) {
                        struct fleet_request r = { .method = "GET", .path = p->path, .query = p->query,
                                                   .who = &p->who };
                        struct fleet_response resp;
                        fleet_api_handle(s->store, &r, &resp);
                        if (resp.kind != FLEET_WAIT_JOB || now >= p->deadline) {
                                evhttp_connection_set_closecb(p->conn, NULL, NULL);
                                send_json(p->req, resp.status, resp.body);
                                finished = true;
                        }
                        fleet_response_clear(&resp);
                } else if (!finished && unsent(p->conn) > s->config->max_stream_buffer) {
                        /* A reader that does not read is dropped, not buffered for: it
                         * may follow again with after= the last event it has. */
                        s->dropped_streams++;
                        evutil_socket_t sock = bufferevent_getfd(evhttp_connection_get_bufferevent(p->conn));
                        evhttp_connection_set_closecb(p->conn, NULL, NULL);
                        if (sock >= 0)
                                (void) shutdown(sock, SHUT_RDWR);
                        finished = true;
                } else if (!finished) {
                        json_t *events = NULL;
                        if (fleet_store_events(s->store, p->vm[0] ? p->vm : NULL, p->after, 1000, &events, NULL) == 0)
                                stream_events(p->req, events, &p->after);
                        json_decref(events);
                }
                if (finished) {
                        *pp = p->next;
                        free(p);
                } else
                        pp = &p->next;
        }
}

static void on_signal(evutil_socket_t sig _unused_, short what _unused_, void *arg) {
        event_base_loopexit(arg, NULL);
}

/* Who may connect without a certificate follows the token lines. */
static void set_verify(SSL_CTX *ctx, const struct manager_config *c) {
        SSL_CTX_set_verify(ctx, c->n_tokens > 0 ? SSL_VERIFY_PEER : SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                           SSL_CTX_get_verify_callback(ctx));
}

/* SIGHUP: manager.conf read again, so that a revoked certificate, a removed
 * token or a changed role takes effect now, for new requests and for the
 * long polls and event streams already open. A file that does not read keeps
 * the running configuration. listen, tls-*, database and the limits stay as
 * they were until the next start. */
static void on_reload(evutil_socket_t sig _unused_, short what _unused_, void *arg) {
        struct server *s = arg;
        struct manager_config *c = calloc(1, sizeof(*c));
        struct error err = { 0 };
        if (!c || manager_config_read(s->config->path, c, &err) < 0) {
                log_error("reload of %s refused, the running configuration stays: %s", s->config->path,
                          c ? err.text : "out of memory");
                free(c);
                return;
        }
        if (strcmp(c->listen, s->config->listen) != 0 || strcmp(c->cert, s->config->cert) != 0 ||
            strcmp(c->key, s->config->key) != 0 || strcmp(c->ca, s->config->ca) != 0 ||
            strcmp(c->database, s->config->database) != 0)
                log_warning("reload: listen, tls-cert, tls-key, tls-ca and database change at the next start only");
        free(s->reloaded);
        s->config = s->reloaded = c;
        set_verify(s->ctx, c);
        fleet_store_set_new_disk_policy(s->store, c->encrypt_new_disks ? FLEET_NEW_DISK_ENCRYPT : FLEET_NEW_DISK_EVENT);
        /* What is open already: a long poll is asked again each tick with the
         * new privileges (a refusal ends it); an event stream whose reader may
         * no longer read ends now. */
        for (struct parked *p = s->parked; p; p = p->next) {
                principal_role(c, &p->who);
                if (p->gone || p->kind != FLEET_STREAM_EVENTS || (p->who.privs & (1U << FLEET_PRIV_READ)))
                        continue;
                evutil_socket_t sock = bufferevent_getfd(evhttp_connection_get_bufferevent(p->conn));
                evhttp_connection_set_closecb(p->conn, NULL, NULL);
                if (sock >= 0)
                        (void) shutdown(sock, SHUT_RDWR);
                p->gone = true;
        }
        log_info("reloaded %s: %zu clients (%zu with tokens), %zu revoked certificates", c->path, c->n_clients,
                 c->n_tokens, c->n_revoked);
}

int manager_serve(const struct manager_config *c, struct error *err) {
        struct server s = { .config = c };
        int r = tls_server_context(c->cert, c->key, c->ca, NULL, &s.ctx);
        if (r < 0)
                return error_set(err, r, "cannot set up TLS from %s, %s, %s: check the files named in %s",
                                       c->cert, c->key, c->ca, c->path);
        SSL_CTX_set_session_id_context(s.ctx, (const unsigned char *) "vmcrypt-manager", 15);
        /* Bearer tokens come in sessions without a client certificate: only
         * when manager.conf has some, and a certificate sent is still verified. */
        set_verify(s.ctx, c);
        if (conn_index < 0)
                conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_free);
        r = conn_index < 0 ? -ENOMEM : addr_limit_new(c->max_unauthenticated_per_address, &s.pending_by_addr);
        if (r < 0) {
                SSL_CTX_free(s.ctx);
                return error_set(err, r, "out of memory");
        }
        /* Each connection is a descriptor: stay under the open file limit. */
        s.max_conns = c->max_connections;
        s.max_pending = c->max_unauthenticated;
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur > 128 &&
            s.max_conns > rl.rlim_cur - 64) {
                s.max_conns = (unsigned) (rl.rlim_cur - 64);
                s.max_pending = MIN(s.max_pending, MAX(s.max_conns / 2, 1U));
                log_info("max-connections lowered to %u, max-unauthenticated to %u (open file limit %llu)",
                         s.max_conns, s.max_pending, (unsigned long long) rl.rlim_cur);
        }
        r = fleet_store_open(c->database, &s.store, err);
        if (r < 0) {
                addr_limit_free(s.pending_by_addr);
                SSL_CTX_free(s.ctx);
                return r;
        }
        fleet_store_set_new_disk_policy(s.store, c->encrypt_new_disks ? FLEET_NEW_DISK_ENCRYPT : FLEET_NEW_DISK_EVENT);
        char host[256];
        const char *colon = strrchr(c->listen, ':');
        int port = colon ? atoi(colon + 1) : 0;
        snprintf(host, sizeof(host), "%.*s", colon ? (int) (colon - c->listen) : 0, c->listen);
        if (host[0] == '[') {
                memmove(host, host + 1, strlen(host));
                host[strcspn(host, "]")] = 0;
        }
        s.base = event_base_new();
        struct evhttp *http = s.base ? evhttp_new(s.base) : NULL;
        if (!http) {
                r = error_set(err, -ENOMEM, "cannot set up the event loop");
                goto out;
        }
        s.check = event_new(s.base, -1, 0, check_conns, &s);
        if (!s.check) {
                r = error_set(err, -ENOMEM, "cannot set up the event loop");
                goto out;
        }
        evhttp_set_bevcb(http, bev_new, &s);
        evhttp_set_gencb(http, handle, &s);
        evhttp_set_max_body_size(http, FLEET_API_MAX_BODY);
        evhttp_set_max_headers_size(http, 16384);
        evhttp_set_timeout(http, 330);
        evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
        struct evhttp_bound_socket *bound =
                port > 0 && port <= 65535 ? evhttp_bind_socket_with_handle(http, host, (ev_uint16_t) port) : NULL;
        if (!bound) {
                r = error_set(err, -EADDRINUSE, "cannot listen on %s (listen in %s): in use, or not an "
                                    "address of this host", c->listen, c->path);
                goto out;
        }
        /* Answers leave as several TLS records (headers, body): without NODELAY the
         * second waits for the client's delayed ACK, 40 ms a request. Accepted
         * sockets inherit it from the listener. */
        int one = 1;
        (void) setsockopt(evhttp_bound_socket_get_fd(bound), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct event *timer = event_new(s.base, -1, EV_PERSIST, tick, &s);
        struct timeval quarter = { 0, 250000 };
        event_add(timer, &quarter);
        struct event *sigterm = evsignal_new(s.base, SIGTERM, on_signal, s.base);
        struct event *sigint = evsignal_new(s.base, SIGINT, on_signal, s.base);
        struct event *sighup = evsignal_new(s.base, SIGHUP, on_reload, &s);
        event_add(sigterm, NULL);
        event_add(sigint, NULL);
        event_add(sighup, NULL);
        log_info("listening on %s, database %s (schema %d)", c->listen, c->database, fleet_store_version(s.store));
        event_base_dispatch(s.base);
        log_info("stopping");
        event_free(timer);
        event_free(sigterm);
        event_free(sigint);
        event_free(sighup);
        while (s.parked) {
                struct parked *p = s.parked;
                s.parked = p->next;
                if (!p->gone)
                        evhttp_connection_set_closecb(p->conn, NULL, NULL);
                free(p);
        }
        r = 0;
out:
        if (http)
                evhttp_free(http);
        /* Connections evhttp did not free (none expected) must not call back. */
        for (struct conn *k = s.conns; k; k = k->next)
                k->server = NULL;
        if (s.check)
                event_free(s.check);
        if (s.base)
                event_base_free(s.base);
        fleet_store_free(s.store);
        addr_limit_free(s.pending_by_addr);
        SSL_CTX_free(s.ctx);
        free(s.reloaded);
        return r;
}
