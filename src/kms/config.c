/* Configuration file and access policy: see config.h. */
#include "kms/config.h"

#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kmip/tags.h"
#include "shared/conf.h"

static int set_path(char **field, const char *dir, const char *value) {
        char *p;
        if (value[0] == '/' || !dir)
                p = strdup(value);
        else if (asprintf(&p, "%s/%s", dir, value) < 0)
                p = NULL;
        if (!p)
                return -ENOMEM;
        free(*field);
        *field = p;
        return 0;
}

int kms_config_defaults(const char *dir, struct kms_config **ret) {
        _cleanup_(kms_config_freep) struct kms_config *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->workers = 32;
        c->max_message = 1U << 20;
        c->idle_timeout = 600;
        c->cache_rows = 65536;
        c->max_connections = 20000;
        c->handshake_timeout = 10;
        c->max_unauthenticated = 1000;
        c->max_unauthenticated_per_address = 100;
        if (!(c->listen = strdup("0.0.0.0:5696")))
                return -ENOMEM;
        if (set_path(&c->tls_cert, dir, "server.crt") < 0 || set_path(&c->tls_key, dir, "server.key") < 0 ||
            set_path(&c->tls_ca, dir, "ca.crt") < 0 || set_path(&c->database, dir, "kms.db") < 0 ||
            set_path(&c->master_key_file, dir, "master.key") < 0 || set_path(&c->audit_log, dir, "audit.log") < 0 ||
            set_path(&c->operator_audit_log, dir, "operator-audit.log") < 0 ||
            set_path(&c->audit_key, dir, "audit.key") < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(c);
        return 0;
}

static const struct {
        const char *name;
        uint32_t op;
} op_names[] = {
        { "create", KMIP_OP_CREATE },
        { "register", KMIP_OP_REGISTER },
        { "locate", KMIP_OP_LOCATE },
        { "get", KMIP_OP_GET },
        { "get-attributes", KMIP_OP_GET_ATTRIBUTES },
        { "get-attribute-list", KMIP_OP_GET_ATTRIBUTE_LIST },
        { "add-attribute", KMIP_OP_ADD_ATTRIBUTE },
        { "modify-attribute", KMIP_OP_MODIFY_ATTRIBUTE },
        { "delete-attribute", KMIP_OP_DELETE_ATTRIBUTE },
        { "set-attribute", KMIP_OP_SET_ATTRIBUTE },
        { "activate", KMIP_OP_ACTIVATE },
        { "revoke", KMIP_OP_REVOKE },
        { "destroy", KMIP_OP_DESTROY },
        { "encrypt", KMIP_OP_ENCRYPT },
        { "decrypt", KMIP_OP_DECRYPT },
};

uint64_t kms_config_operation_mask(const char *name) {
        if (strcasecmp(name, "all") == 0)
                return UINT64_MAX;
        if (strcasecmp(name, "read") == 0)
                return (1ULL << KMIP_OP_LOCATE) | (1ULL << KMIP_OP_GET) | (1ULL << KMIP_OP_GET_ATTRIBUTES) |
                       (1ULL << KMIP_OP_GET_ATTRIBUTE_LIST);
        for (size_t i = 0; i < ELEMENTSOF(op_names); i++)
                if (strcasecmp(name, op_names[i].name) == 0)
                        return 1ULL << op_names[i].op;
        return 0;
}

/* Split a comma-separated list, calling f on each non-empty item. */
static int each_item(char *list, int (*f)(struct kms_group *g, const char *item), struct kms_group *g) {
        char *save = NULL;
        for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                t = conf_strip(t);
                if (!*t)
                        continue;
                int r = f(g, t);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int add_member(struct kms_group *g, const char *item) {
        char **m = realloc(g->members, (g->n_members + 1) * sizeof(*m));
        if (!m)
                return -ENOMEM;
        g->members = m;
        if (!(m[g->n_members] = strdup(item)))
                return -ENOMEM;
        g->n_members++;
        return 0;
}

static int add_operation(struct kms_group *g, const char *item) {
        uint64_t mask = kms_config_operation_mask(item);
        if (!mask)
                return -EINVAL;
        g->operations |= mask;
        return 0;
}

/* "revoked-client = HEX": a certificate's SHA-256 fingerprint, as the audit log
 * shows it, or as `openssl x509 -fingerprint -sha256` prints it (AB:CD:..., with
 * an optional "sha256:" or "SHA256 Fingerprint=" in front). Kept as lowercase hex. */
static int add_revoked_client(struct kms_config *c, const char *v) {
        const char *eq = strchr(v, '=');
        if (strncasecmp(v, "sha256:", 7) == 0)
                v += 7;
        else if (eq && strncasecmp(v, "sha256 fingerprint", 18) == 0)
                v = eq + 1;
        char hex[65];
        size_t n = 0;
        for (; *v; v++) {
                if (*v == ':')
                        continue;
                if (!isxdigit((unsigned char) *v) || n == 64)
                        return -EINVAL;
                hex[n++] = (char) tolower((unsigned char) *v);
        }
        if (n != 64)
                return -EINVAL;
        hex[n] = 0;
        char **l = realloc(c->revoked_clients, (c->n_revoked_clients + 1) * sizeof(*l));
        if (!l)
                return -ENOMEM;
        c->revoked_clients = l;
        if (!(l[c->n_revoked_clients] = strdup(hex)))
                return -ENOMEM;
        c->n_revoked_clients++;
        return 0;
}

static int set_key(struct kms_config *c, const char *dir, const char *k, const char *v) {
        unsigned long n;
        int r;
        if (strcmp(k, "listen") == 0) {
                char *p = strdup(v);
                if (!p)
                        return -ENOMEM;
                free(c->listen);
                c->listen = p;
                return 0;
        }
        if (strcmp(k, "tls-cert") == 0)
                return set_path(&c->tls_cert, dir, v);
        if (strcmp(k, "tls-key") == 0)
                return set_path(&c->tls_key, dir, v);
        if (strcmp(k, "tls-ca") == 0)
                return set_path(&c->tls_ca, dir, v);
        if (strcmp(k, "tls-ciphers") == 0) {
                char *p = strdup(v);
                if (!p)
                        return -ENOMEM;
                free(c->tls_ciphers);
                c->tls_ciphers = p;
                return 0;
        }
        if (strcmp(k, "database") == 0)
                return set_path(&c->database, dir, v);
        if (strcmp(k, "master-key-file") == 0) {
                free(c->passphrase_file);
                c->passphrase_file = NULL;
                return set_path(&c->master_key_file, dir, v);
        }
        if (strcmp(k, "passphrase-file") == 0) {
                free(c->master_key_file);
                c->master_key_file = NULL;
                return set_path(&c->passphrase_file, dir, v);
        }
        if (strcmp(k, "audit-log") == 0) {
                if (strcmp(v, "none") == 0) {
                        free(c->audit_log);
                        c->audit_log = NULL;
                        return 0;
                }
                return set_path(&c->audit_log, dir, v);
        }
        if (strcmp(k, "operator-audit-log") == 0) {
                if (strcmp(v, "none") == 0) {
                        free(c->operator_audit_log);
                        c->operator_audit_log = NULL;
                        return 0;
                }
                return set_path(&c->operator_audit_log, dir, v);
        }
        if (strcmp(k, "audit-key") == 0)
                return set_path(&c->audit_key, dir, v);
        if (strcmp(k, "audit-failure") == 0) {
                if (strcmp(v, "refuse") != 0 && strcmp(v, "continue") != 0)
                        return -EINVAL;
                c->audit_continue = strcmp(v, "continue") == 0;
                return 0;
        }
        if (strcmp(k, "workers") == 0) {
                if ((r = conf_uint(v, 1, 1024, &n)) < 0)
                        return r;
                c->workers = (unsigned) n;
                return 0;
        }
        if (strcmp(k, "network-threads") == 0) {
                if ((r = conf_uint(v, 0, 64, &n)) < 0)
                        return r;
                c->network_threads = (unsigned) n;
                return 0;
        }
        if (strcmp(k, "max-message-size") == 0) {
                if ((r = conf_uint(v, 1024, 64UL << 20, &n)) < 0)
                        return r;
                c->max_message = n;
                return 0;
        }
        if (strcmp(k, "cache-rows") == 0) {
                if ((r = conf_uint(v, 0, 64UL << 20, &n)) < 0)
                        return r;
                c->cache_rows = n;
                return 0;
        }
        if (strcmp(k, "attestation-nonce-ttl") == 0) {
                if ((r = conf_uint(v, 1, 3600, &n)) < 0)
                        return r;
                c->attestation_nonce_ttl = (unsigned) n;
                return 0;
        }
        if (strcmp(k, "idle-timeout") == 0) {
                if ((r = conf_uint(v, 1, 86400, &n)) < 0)
                        return r;
                c->idle_timeout = (unsigned) n;
                return 0;
        }
        if (strcmp(k, "revoked-client") == 0)
                return add_revoked_client(c, v);
        if (strcmp(k, "crl") == 0)
                return set_path(&c->crl, dir, v);
        if (strcmp(k, "attestation-ek-ca") == 0)
                return set_path(&c->attestation_ek_ca, dir, v);
        if (strcmp(k, "max-connections") == 0) {
                if ((r = conf_uint(v, 1, 1000000, &n)) < 0)
                        return r;
                c->max_connections = (unsigned) n;
                return 0;
        }
        if (strcmp(k, "handshake-timeout") == 0) {
                if ((r = conf_uint(v, 1, 3600, &n)) < 0)
                        return r;
                c->handshake_timeout = (unsigned) n;
                return 0;
        }
        if (strcmp(k, "max-unauthenticated") == 0) {
                if ((r = conf_uint(v, 1, 1000000, &n)) < 0)
                        return r;
                c->max_unauthenticated = (unsigned) n;
                return 0;
        }
        if (strcmp(k, "max-unauthenticated-per-address") == 0) {
                if ((r = conf_uint(v, 1, 1000000, &n)) < 0)
                        return r;
                c->max_unauthenticated_per_address = (unsigned) n;
                return 0;
        }
        return -ENOKEY;
}

struct load {
        struct kms_config *c;
        const char *dir;
        struct kms_group *g; /* the open [group NAME] section, or NULL */
};

static int load_set(const char *section, const char *key, const char *value, void *userdata, struct error *err) {
        struct load *x = userdata;
        if (!key) {
                char name[256];
                if (sscanf(section, "group %255[^\n]", name) != 1)
                        return error_set(err, -EINVAL, "unknown section [%s] (only [group NAME] exists)", section);
                struct kms_group *gs = realloc(x->c->groups, (x->c->n_groups + 1) * sizeof(*gs));
                if (!gs)
                        return -ENOMEM;
                x->c->groups = gs;
                x->g = &gs[x->c->n_groups++];
                *x->g = (struct kms_group) { .name = strdup(conf_strip(name)) };
                return x->g->name ? 0 : -ENOMEM;
        }
        _cleanup_(freep) char *v = strdup(value); /* each_item splits it in place */
        if (!v)
                return -ENOMEM;
        if (x->g && strcmp(key, "members") == 0)
                return each_item(v, add_member, x->g);
        if (x->g && strcmp(key, "operations") == 0)
                return each_item(v, add_operation, x->g);
        if (x->g)
                return -ENOKEY;
        return set_key(x->c, x->dir, key, v);
}

int kms_config_load(const char *path, struct kms_config **ret, struct error *err) {
        _cleanup_(freep) char *pathcopy = strdup(path);
        if (!pathcopy)
                return -ENOMEM;
        const char *dir = dirname(pathcopy);
        _cleanup_(kms_config_freep) struct kms_config *c = NULL;
        int r = kms_config_defaults(dir, &c);
        if (r < 0)
                return r;
        struct load x = { .c = c, .dir = dir };
        r = conf_read(path, load_set, &x, err);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

void kms_config_free(struct kms_config *c) {
        if (!c)
                return;
        free(c->listen);
        free(c->tls_cert);
        free(c->tls_key);
        free(c->tls_ca);
        free(c->tls_ciphers);
        free(c->database);
        free(c->master_key_file);
        free(c->passphrase_file);
        free(c->audit_log);
        free(c->operator_audit_log);
        free(c->audit_key);
        for (size_t i = 0; i < c->n_groups; i++) {
                for (size_t j = 0; j < c->groups[i].n_members; j++)
                        free(c->groups[i].members[j]);
                free(c->groups[i].members);
                free(c->groups[i].name);
        }
        free(c->groups);
        for (size_t i = 0; i < c->n_revoked_clients; i++)
                free(c->revoked_clients[i]);
        free(c->revoked_clients);
        free(c->crl);
        free(c->attestation_ek_ca);
        free(c);
}

/* A group member is a certificate CN, or "sha256:HEX" for one exact certificate. */
static int member_matches(const char *member, const char *cn, const char *fingerprint) {
        if (strncasecmp(member, "sha256:", 7) == 0)
                return fingerprint && strcasecmp(member + 7, fingerprint) == 0;
        return strcmp(member, cn) == 0;
}

int kms_policy_allows_all(const struct kms_config *c, const char *cn, const char *fingerprint, uint32_t op) {
        if (op >= 64)
                return 0;
        for (size_t i = 0; i < c->n_groups; i++) {
                const struct kms_group *g = &c->groups[i];
                if (!(g->operations & (1ULL << op)))
                        continue;
                for (size_t j = 0; j < g->n_members; j++)
                        if (member_matches(g->members[j], cn, fingerprint))
                                return 1;
        }
        return 0;
}

int kms_policy_allows(const struct kms_config *c, const char *cn, const char *fingerprint, const char *owner,
                      uint32_t op) {
        if (strcmp(cn, owner) == 0)
                return 1;
        return kms_policy_allows_all(c, cn, fingerprint, op);
}
