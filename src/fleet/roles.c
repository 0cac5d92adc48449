/* Privileges and roles: see fleet.h. The built-in roles follow vSphere's: an
 * administrator, an operator who runs crypto jobs, a read-only auditor, and the
 * "No cryptography administrator", who runs the fleet (policies, the event log)
 * but may neither encrypt, decrypt nor rekey, nor choose the key providers. */
#include "fleet/fleet.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "shared/macro.h"

static const char *const priv_names[FLEET_PRIV_COUNT] = {
        [FLEET_PRIV_READ] = "read",
        [FLEET_PRIV_ENCRYPT] = "encrypt",
        [FLEET_PRIV_DECRYPT] = "decrypt",
        [FLEET_PRIV_REKEY] = "rekey",
        [FLEET_PRIV_START] = "start",
        [FLEET_PRIV_MANAGE_POLICIES] = "manage-policies",
        [FLEET_PRIV_MANAGE_PROVIDERS] = "manage-providers",
        [FLEET_PRIV_AGENT] = "agent",
};

const char *fleet_priv_name(enum fleet_priv p) {
        return (unsigned) p < FLEET_PRIV_COUNT ? priv_names[p] : "none";
}

int fleet_priv_from_string(const char *s, enum fleet_priv *ret) {
        for (unsigned i = 0; i < FLEET_PRIV_COUNT; i++)
                if (strcmp(s, priv_names[i]) == 0) {
                        *ret = (enum fleet_priv) i;
                        return 0;
                }
        return -EINVAL;
}

void fleet_privs_format(unsigned privs, const char *sep, char *buf, size_t size) {
        size_t o = 0;
        if (size)
                buf[0] = 0;
        for (unsigned i = 0; i < FLEET_PRIV_COUNT && o < size; i++)
                if (privs & (1U << i))
                        o += (size_t) snprintf(buf + o, size - o, "%s%s", o ? sep : "", priv_names[i]);
}

#define P(x) (1U << (x))
#define CRYPTO (P(FLEET_PRIV_ENCRYPT) | P(FLEET_PRIV_DECRYPT) | P(FLEET_PRIV_REKEY))

static const struct {
        const char *name;
        unsigned privs;
} builtin[FLEET_ROLE_BUILTIN_COUNT] = {
        [FLEET_ROLE_NONE] = { "none", 0 },
        [FLEET_ROLE_ADMIN] = { "admin", FLEET_PRIVS_ALL & ~P(FLEET_PRIV_AGENT) },
        [FLEET_ROLE_OPERATOR] = { "operator", P(FLEET_PRIV_READ) | CRYPTO | P(FLEET_PRIV_START) },
        [FLEET_ROLE_AUDITOR] = { "auditor", P(FLEET_PRIV_READ) },
        [FLEET_ROLE_AGENT] = { "agent", P(FLEET_PRIV_AGENT) },
        [FLEET_ROLE_NO_CRYPTO_ADMIN] = { "no-crypto-admin",
                                         FLEET_PRIVS_ALL & ~(P(FLEET_PRIV_AGENT) | CRYPTO |
                                                             P(FLEET_PRIV_MANAGE_PROVIDERS)) },
};

const char *fleet_role_name(enum fleet_role r) {
        return (unsigned) r < FLEET_ROLE_BUILTIN_COUNT ? builtin[r].name : "none";
}

enum fleet_role fleet_role_from_string(const char *s) {
        for (unsigned i = FLEET_ROLE_ADMIN; i < FLEET_ROLE_BUILTIN_COUNT; i++)
                if (strcmp(s, builtin[i].name) == 0)
                        return (enum fleet_role) i;
        return FLEET_ROLE_NONE;
}

unsigned fleet_role_privs(enum fleet_role r) {
        return (unsigned) r < FLEET_ROLE_BUILTIN_COUNT ? builtin[r].privs : 0;
}

void fleet_roles_init(struct fleet_roles *rs) {
        memset(rs, 0, sizeof(*rs));
        for (unsigned i = FLEET_ROLE_ADMIN; i < FLEET_ROLE_BUILTIN_COUNT; i++) {
                snprintf(rs->r[rs->n].name, sizeof(rs->r[rs->n].name), "%s", builtin[i].name);
                rs->r[rs->n++].privs = builtin[i].privs;
        }
}

const struct fleet_role_def *fleet_roles_find(const struct fleet_roles *rs, const char *name) {
        for (size_t i = 0; i < rs->n; i++)
                if (strcmp(rs->r[i].name, name) == 0)
                        return &rs->r[i];
        return NULL;
}

void fleet_roles_names(const struct fleet_roles *rs, char *buf, size_t size) {
        size_t o = 0;
        if (size)
                buf[0] = 0;
        for (size_t i = 0; i < rs->n && o < size; i++)
                o += (size_t) snprintf(buf + o, size - o, "%s%s", i ? ", " : "", rs->r[i].name);
}

/* A role's name is one word a client line can carry: letters, digits, '-',
 * '_' and '.'. */
static bool valid_role_name(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n >= sizeof(((struct fleet_role_def *) NULL)->name) || strcmp(s, "none") == 0)
                return false;
        return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == n;
}

int fleet_roles_define(struct fleet_roles *rs, const char *name, const char *privs, struct error *err) {
        if (!valid_role_name(name))
                return error_set(err, -EINVAL, "role name '%s' must be 1-63 of [A-Za-z0-9._-] (and not 'none')",
                                 name);
        if (fleet_role_from_string(name) != FLEET_ROLE_NONE)
                return error_set(err, -EINVAL, "role %s is built in and cannot be redefined: define a role "
                                 "with another name", name);
        if (fleet_roles_find(rs, name))
                return error_set(err, -EINVAL, "role %s is defined twice", name);
        if (rs->n >= FLEET_MAX_ROLES)
                return error_set(err, -E2BIG, "more than %d roles", FLEET_MAX_ROLES);
        unsigned set = 0;
        for (const char *p = privs; *p;) {
                p += strspn(p, " \t,");
                size_t len = strcspn(p, " \t,");
                if (len == 0)
                        break;
                char word[64];
                enum fleet_priv v;
                snprintf(word, sizeof(word), "%.*s", (int) MIN(len, sizeof(word) - 1), p);
                if (len >= sizeof(word) || fleet_priv_from_string(word, &v) < 0) {
                        char known[256];
                        fleet_privs_format(FLEET_PRIVS_ALL, ", ", known, sizeof(known));
                        return error_set(err, -EINVAL, "role %s: unknown privilege '%s': the privileges are %s",
                                         name, word, known);
                }
                set |= 1U << v;
                p += len;
        }
        if (set == 0) {
                char known[256];
                fleet_privs_format(FLEET_PRIVS_ALL, " ", known, sizeof(known));
                return error_set(err, -EINVAL, "role %s names no privilege: role %s = PRIV... (of %s)", name, name,
                                 known);
        }
        struct fleet_role_def *d = &rs->r[rs->n++];
        snprintf(d->name, sizeof(d->name), "%s", name);
        d->privs = set;
        return 0;
}
