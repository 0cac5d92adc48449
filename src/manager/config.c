/* manager.conf: see manager.h and docs/fleet.md. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet/conf.h"
#include "shared/conf.h"
#include "shared/hex.h"
#include "manager/manager.h"
#include "shared/macro.h"

static int set(const char *section, const char *key, const char *value, void *userdata, struct error *err) {
        if (!key || *section)
                return -ENOKEY; /* no sections */
        struct manager_config *c = userdata;
        if (strcmp(key, "listen") == 0)
                snprintf(c->listen, sizeof(c->listen), "%s", value);
        else if (strcmp(key, "tls-cert") == 0)
                fleet_conf_path(c->path, value, c->cert, sizeof(c->cert));
        else if (strcmp(key, "tls-key") == 0)
                fleet_conf_path(c->path, value, c->key, sizeof(c->key));
        else if (strcmp(key, "tls-ca") == 0)
                fleet_conf_path(c->path, value, c->ca, sizeof(c->ca));
        else if (strcmp(key, "database") == 0) {
                /* A PostgreSQL URI is no path. */
                if (strstr(value, "://"))
                        snprintf(c->database, sizeof(c->database), "%s", value);
                else
                        fleet_conf_path(c->path, value, c->database, sizeof(c->database));
        }
        else if (strncmp(key, "role ", 5) == 0 || strcmp(key, "role") == 0) {
                /* role NAME = PRIV PRIV ...: the key holds the name. */
                char name[256];
                snprintf(name, sizeof(name), "%s", key + 4);
                return fleet_roles_define(&c->roles, conf_strip(name), value, err);
        }
        else if (strcmp(key, "client") == 0 || strcmp(key, "token") == 0) {
                bool token = key[0] == 't';
                char cn[128], role[64], hash[80] = "", extra[2];
                long long expires = 0;
                if (!token && sscanf(value, "%127s %63s %1s", cn, role, extra) != 2)
                        return error_set(err, -EINVAL, "client = CN ROLE (one role, a word)");
                if (token && (sscanf(value, "%127s %63s %79s %lld %1s", cn, role, hash, &expires, extra) != 4 ||
                              strlen(hash) != 64 || strspn(hash, "0123456789abcdef") != 64 || expires <= 0))
                        return error_set(err, -EINVAL, "token = NAME ROLE SHA256 EXPIRES (the token's SHA-256 in "
                                         "lowercase hex, its end in seconds since 1970; 'vmcrypt-manager issue "
                                         "--token' writes these lines)");
                if (c->n_clients >= MANAGER_MAX_CLIENTS)
                        return error_set(err, -E2BIG, "more than %d clients", MANAGER_MAX_CLIENTS);
                /* The events' actor must say who: a name is one client. */
                for (size_t i = 0; i < c->n_clients; i++)
                        if (strcmp(c->clients[i].cn, cn) == 0)
                                return error_set(err, -EINVAL, "client %s is listed twice (a name is one client: "
                                                 "a certificate or a token)", cn);
                /* The role may be defined further down: resolved at the end. */
                struct manager_client *m = &c->clients[c->n_clients++];
                snprintf(m->cn, sizeof(m->cn), "%s", cn);
                snprintf(m->role, sizeof(m->role), "%s", role);
                m->token = token;
                m->expires = expires;
                if (token) {
                        (void) hex_decode(hash, m->hash, sizeof(m->hash)); /* checked above */
                        c->n_tokens++;
                }
        } else if (strcmp(key, "new-data-disk") == 0) {
                if (strcmp(value, "encrypt") != 0 && strcmp(value, "event") != 0)
                        return error_set(err, -EINVAL, "new-data-disk is 'event' or 'encrypt'");
                c->encrypt_new_disks = strcmp(value, "encrypt") == 0;
        } else if (strcmp(key, "revoked-client") == 0) {
                if (strlen(value) != 64 || strspn(value, "0123456789abcdef") != 64)
                        return error_set(err, -EINVAL,
                                         "revoked-client takes a certificate's SHA-256 in lowercase hex");
                if (c->n_revoked >= 64)
                        return error_set(err, -E2BIG, "too many revoked clients");
                snprintf(c->revoked[c->n_revoked++], 65, "%s", value);
        } else if (strcmp(key, "max-connections") == 0 || strcmp(key, "max-unauthenticated") == 0 ||
                   strcmp(key, "max-unauthenticated-per-address") == 0 || strcmp(key, "handshake-timeout") == 0 ||
                   strcmp(key, "max-stream-buffer") == 0) {
                bool buffer = strcmp(key, "max-stream-buffer") == 0;
                unsigned long v, lo = buffer ? 4096 : 1, hi = buffer ? (1UL << 30) : 1000000;
                if (conf_uint(value, lo, hi, &v) < 0)
                        return error_set(err, -EINVAL, "%s takes a number from %lu to %lu", key, lo, hi);
                if (buffer)
                        c->max_stream_buffer = v;
                else if (strcmp(key, "max-connections") == 0)
                        c->max_connections = (unsigned) v;
                else if (strcmp(key, "max-unauthenticated") == 0)
                        c->max_unauthenticated = (unsigned) v;
                else if (strcmp(key, "handshake-timeout") == 0)
                        c->handshake_timeout = (unsigned) v;
                else
                        c->max_unauthenticated_per_address = (unsigned) v;
        } else
                return -ENOKEY;
        return 0;
}

int manager_config_read(const char *path, struct manager_config *c, struct error *err) {
        memset(c, 0, sizeof(*c));
        snprintf(c->path, sizeof(c->path), "%s", path);
        snprintf(c->listen, sizeof(c->listen), "127.0.0.1:8443");
        c->max_connections = 10000;
        c->max_unauthenticated = 1000;
        c->max_unauthenticated_per_address = 100;
        c->handshake_timeout = 10;
        c->max_stream_buffer = 1 << 20;
        fleet_roles_init(&c->roles);
        int r = conf_read(path, set, c, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < c->n_clients; i++) {
                struct manager_client *m = &c->clients[i];
                const struct fleet_role_def *d = fleet_roles_find(&c->roles, m->role);
                if (!d) {
                        char known[1024];
                        fleet_roles_names(&c->roles, known, sizeof(known));
                        return error_set(err, -EINVAL, "%s: %s %s has role '%s', which is neither built in nor "
                                         "defined by a 'role %s = PRIV ...' line; the roles are %s", path,
                                         m->token ? "token" : "client", m->cn, m->role, m->role, known);
                }
                /* An agent acts for the host its certificate names; a token
                 * names no host. */
                if (m->token && (d->privs & (1U << FLEET_PRIV_AGENT)))
                        return error_set(err, -EINVAL, "%s: token %s has role '%s', which holds the agent privilege: "
                                         "agents authenticate with their host's certificate", path, m->cn, m->role);
                m->privs = d->privs;
        }
        /* Half the connections stay for clients that finished their handshake. */
        if (c->max_unauthenticated > c->max_connections / 2)
                c->max_unauthenticated = MAX(c->max_connections / 2, 1U);
        if (!c->cert[0] || !c->key[0] || !c->ca[0] || !c->database[0])
                return error_set(err, -EINVAL, "%s needs tls-cert, tls-key, tls-ca and database", path);
        return 0;
}
