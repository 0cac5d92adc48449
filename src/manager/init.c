/* A quick-start directory for the manager: a CA, the server certificate, an
 * admin certificate, one certificate per agent, manager.conf, and a client file
 * per certificate for the CLI and the agents. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fleet/conf.h"
#include "manager/manager.h"
#include "shared/fd-util.h"
#include "shared/hex.h"
#include "shared/key-input.h"
#include "shared/macro.h"
#include "tls/pki.h"
#include "tls/tls.h"

/* DIR/CN.conf: what `vmcrypt --manager-config` and vmcrypt-agent read; with
 * token, a bearer token's file takes the certificate's place. */
static int write_client_conf(const char *dir, const char *cn, const char *listen, bool token, const char *base,
                             struct error *err) {
        char url[300], path[4096], text[2048];
        const char *colon = strrchr(listen, ':');
        if (strncmp(listen, "0.0.0.0:", 8) == 0 || strncmp(listen, "[::]:", 5) == 0)
                snprintf(url, sizeof(url), "https://127.0.0.1%s", colon);
        else
                snprintf(url, sizeof(url), "https://%s", listen);
        int n = token ? snprintf(text, sizeof(text),
                                 "# vmcrypt manager client settings for %s (paths relative to this file)\n"
                                 "manager = %s\nca = ca.crt\ntoken = %s\n", cn, url, base)
                      : snprintf(text, sizeof(text),
                                 "# vmcrypt manager client settings for %s (paths relative to this file)\n"
                                 "manager = %s\nca = ca.crt\ncert = %s.crt\nkey = %s.key\n",
                                 cn, url, base, base);
        snprintf(path, sizeof(path), "%s/%s.conf", dir, cn);
        int r = write_file_atomic(path, text, (size_t) n, 0644);
        return r < 0 ? error_set(err, r, "cannot write %s: %s", path, strerror(-r)) : 0;
}

static int read_listen(const char *dir, char *listen, size_t size) {
        char path[4096], line[512];
        snprintf(path, sizeof(path), "%s/manager.conf", dir);
        FILE *f = fopen(path, "re");
        if (!f)
                return negative_errno();
        snprintf(listen, size, "127.0.0.1:8443");
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, " listen = %255s", listen) == 1)
                        break;
        fclose(f);
        return 0;
}

/* DIR/manager.conf, read whole into *ret (malloc'ed). */
static int dir_conf(const char *dir, struct manager_config **ret, struct error *err) {
        struct manager_config *c = calloc(1, sizeof(*c));
        if (!c)
                return error_set(err, -ENOMEM, "out of memory");
        char path[4096];
        snprintf(path, sizeof(path), "%s/manager.conf", dir);
        int r = manager_config_read(path, c, err);
        if (r < 0) {
                free(c);
                return r;
        }
        *ret = c;
        return 0;
}

/* role as c knows it (built in, or a 'role' line); NULL, with err naming the
 * roles there are, when it knows no such role. */
static const struct fleet_role_def *role_def(const struct manager_config *c, const char *role, struct error *err) {
        const struct fleet_role_def *d = fleet_roles_find(&c->roles, role);
        if (!d) {
                char known[1024];
                fleet_roles_names(&c->roles, known, sizeof(known));
                error_set(err, -EINVAL, "unknown role '%s': the roles are %s (define others in %s with "
                          "'role NAME = PRIV ...')", role, known, c->path);
        }
        return d;
}

/* A role of DIR's manager: built in, or defined in DIR/manager.conf. */
static int known_role(const char *dir, const char *role, struct error *err) {
        if (fleet_role_from_string(role) != FLEET_ROLE_NONE)
                return 0;
        _cleanup_(freep) struct manager_config *c = NULL;
        int r = dir_conf(dir, &c, err);
        if (r < 0)
                return r;
        return role_def(c, role, err) ? 0 : -EINVAL;
}

/* One more line at the end of DIR/manager.conf, on disk before we return. */
static int append_conf(const char *dir, const char *line, struct error *err) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/manager.conf", dir);
        FILE *f = fopen(path, "ae");
        if (!f)
                return error_set(err, negative_errno(), "cannot append to %s: %s", path, strerror(errno));
        fputs(line, f);
        if (fflush(f) != 0 || fsync(fileno(f)) < 0) {
                fclose(f);
                return error_set(err, -EIO, "cannot write %s", path);
        }
        fclose(f);
        return 0;
}

int manager_issue(const char *dir, const char *cn, const char *role, int days, struct error *err) {
        if (!pki_valid_cn(cn))
                return error_set(err, -EINVAL, "client name '%s' must be 1-64 of [A-Za-z0-9._@-]", cn);
        int r = known_role(dir, role, err);
        if (r < 0)
                return r;
        _cleanup_(pki_x509_freep) X509 *ca = NULL;
        _cleanup_(pki_pkey_freep) EVP_PKEY *ca_key = NULL;
        r = pki_load_ca(dir, &ca, &ca_key);
        if (r < 0)
                return error_set(err, r, "cannot load the CA (ca.crt, ca.key) from %s: run "
                                       "'vmcrypt-manager init %s' first", dir, dir);
        char base[300], listen[256];
        snprintf(base, sizeof(base), "client-%s", cn);
        r = pki_issue(dir, PKI_CLIENT, cn, base, ca, ca_key, NULL, 0, days > 0 ? days : 825);
        if (r == -EEXIST)
                return error_set(err, r, "%s/%s.key exists: a certificate for %s was issued before", dir, base,
                                       cn);
        if (r < 0)
                return error_set(err, r, "cannot issue a certificate for %s: %s", cn, strerror(-r));
        char line[300];
        snprintf(line, sizeof(line), "client = %s %s\n", cn, role);
        r = append_conf(dir, line, err);
        if (r < 0)
                return r;
        r = read_listen(dir, listen, sizeof(listen));
        if (r < 0)
                return error_set(err, r, "cannot read %s/manager.conf", dir);
        return write_client_conf(dir, cn, listen, false, base, err);
}

/* A new token in file (0600, must not exist; 256 random bits as hex text, its
 * only copy) and its manager.conf line in line. */
static int new_token(const char *file, const char *name, const char *role, int days, char *line, size_t size,
                     struct error *err) {
        _cleanup_(secret_freep) struct secret *token = NULL;
        int r = key_input_new_hex_key_file(file, 32, &token);
        if (r < 0)
                return r == -EEXIST ? r : error_set(err, r, "cannot write %s: %s", file, strerror(-r));
        unsigned char digest[32];
        char hex[65];
        SHA256(token->data, token->size, digest);
        hex_encode(digest, sizeof(digest), hex);
        long long expires = (long long) time(NULL) + 86400LL * (days > 0 ? days : 90);
        snprintf(line, size, "token = %s %s %s %lld\n", name, role, hex, expires);
        return 0;
}

int manager_issue_token(const char *dir, const char *name, const char *role, int days, struct error *err) {
        if (!pki_valid_cn(name))
                return error_set(err, -EINVAL, "token name '%s' must be 1-64 of [A-Za-z0-9._@-]", name);
        /* The whole configuration as it would be, read before anything is
         * written: the role exists and may be a token's, the name is free. */
        _cleanup_(freep) struct manager_config *c = NULL;
        int r = dir_conf(dir, &c, err);
        if (r < 0)
                return r;
        const char *path = c->path;
        char line[512];
        const struct fleet_role_def *d = role_def(c, role, err);
        if (!d)
                return -EINVAL;
        if (d->privs & (1U << FLEET_PRIV_AGENT))
                return error_set(err, -EINVAL, "role %s holds the agent privilege: an agent authenticates with "
                                 "its host's certificate ('vmcrypt-manager issue DIR HOST --role agent')", role);
        for (size_t i = 0; i < c->n_clients; i++)
                if (strcmp(c->clients[i].cn, name) == 0)
                        return error_set(err, -EEXIST, "%s is a client of %s already (%s); remove its line to issue "
                                         "it again", name, path, c->clients[i].token ? "a token" : "a certificate");
        char file[4096];
        snprintf(file, sizeof(file), "%s/token-%s", dir, name);
        r = new_token(file, name, role, days, line, sizeof(line), err);
        if (r == -EEXIST)
                return error_set(err, r, "%s exists: remove it to issue the token again", file);
        if (r < 0)
                return r;
        r = append_conf(dir, line, err);
        if (r < 0) {
                unlink(file);
                return r;
        }
        snprintf(file, sizeof(file), "token-%s", name);
        return write_client_conf(dir, name, c->listen, true, file, err);
}

/* DIR/manager.conf with the token line of name replaced by line. */
static int replace_token_line(const char *dir, const char *name, const char *line, struct error *err) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/manager.conf", dir);
        FILE *f = fopen(path, "re");
        if (!f)
                return error_set(err, negative_errno(), "cannot read %s: %s", path, strerror(errno));
        char *text = NULL, buf[4096], key[160];
        size_t size = 0;
        FILE *out = open_memstream(&text, &size);
        int found = 0;
        while (out && fgets(buf, sizeof(buf), f)) {
                char tname[130];
                if (sscanf(buf, " token = %129s", tname) == 1 && strcmp(tname, name) == 0) {
                        fputs(line, out);
                        found++;
                } else
                        fputs(buf, out);
        }
        fclose(f);
        if (!out)
                return error_set(err, -ENOMEM, "out of memory");
        fclose(out);
        snprintf(key, sizeof(key), "token = %s", name);
        int r = found == 1 ? write_file_atomic(path, text, size, 0644) : -ENOENT;
        free(text);
        if (r == -ENOENT)
                return error_set(err, r, "%s has no single '%s ...' line", path, key);
        return r < 0 ? error_set(err, r, "cannot write %s: %s", path, strerror(-r)) : 0;
}

int manager_renew(const char *dir, const char *name, int days, struct manager_renewal *ret, struct error *err) {
        *ret = (struct manager_renewal) {};
        _cleanup_(freep) struct manager_config *c = NULL;
        int r = dir_conf(dir, &c, err);
        if (r < 0)
                return r;
        const char *path = c->path, *listen = c->listen;
        const struct manager_client *m = NULL;
        for (size_t i = 0; i < c->n_clients && !m; i++)
                if (strcmp(c->clients[i].cn, name) == 0)
                        m = &c->clients[i];
        if (!m)
                return error_set(err, -ENOENT, "%s names no client %s: issue one with 'vmcrypt-manager issue %s %s "
                                 "--role ROLE'", path, name, dir, name);
        /* New files under a new name, then the client settings switched to
         * them in one rename: a crash leaves the old or the new, never half. */
        ret->token = m->token;
        snprintf(ret->base, sizeof(ret->base), "%s-%s-%lld", m->token ? "token" : "client", name,
                 (long long) time(NULL));
        if (m->token) {
                char file[4096], line[512];
                snprintf(file, sizeof(file), "%s/%s", dir, ret->base);
                r = new_token(file, name, m->role, days, line, sizeof(line), err);
                if (r >= 0)
                        r = replace_token_line(dir, name, line, err);
                return r < 0 ? r : write_client_conf(dir, name, listen, true, ret->base, err);
        }
        /* The certificate the client holds now: its fingerprint, to revoke it
         * once the new one is in place. */
        char conf[4096], old[4096] = "";
        snprintf(conf, sizeof(conf), "%s/%s.conf", dir, name);
        FILE *f = fopen(conf, "re");
        char buf[4200];
        while (f && fgets(buf, sizeof(buf), f))
                if (sscanf(buf, " cert = %4095s", old) == 1)
                        break;
        if (f)
                fclose(f);
        if (old[0]) {
                char oldpath[4096];
                fleet_conf_path(conf, old, oldpath, sizeof(oldpath));
                FILE *cf = fopen(oldpath, "re");
                X509 *x = cf ? PEM_read_X509(cf, NULL, NULL, NULL) : NULL;
                if (cf)
                        fclose(cf);
                if (x)
                        (void) tls_fingerprint(x, ret->old_fingerprint);
                X509_free(x);
        }
        _cleanup_(pki_x509_freep) X509 *ca = NULL;
        _cleanup_(pki_pkey_freep) EVP_PKEY *ca_key = NULL;
        r = pki_load_ca(dir, &ca, &ca_key);
        if (r < 0)
                return error_set(err, r, "cannot load the CA (ca.crt, ca.key) from %s", dir);
        r = pki_issue(dir, PKI_CLIENT, name, ret->base, ca, ca_key, NULL, 0, days > 0 ? days : 825);
        if (r < 0)
                return error_set(err, r, "cannot issue a certificate for %s: %s", name, strerror(-r));
        return write_client_conf(dir, name, listen, false, ret->base, err);
}

int manager_init(const struct manager_init_options *o, struct error *err) {
        if (mkdir(o->dir, 0700) < 0 && errno != EEXIST)
                return error_set(err, negative_errno(), "cannot create %s: %s", o->dir, strerror(errno));
        char path[4096];
        snprintf(path, sizeof(path), "%s/ca.key", o->dir);
        if (access(path, F_OK) == 0)
                return error_set(err, -EEXIST, "%s already holds a CA; refusing to overwrite it", o->dir);
        const char *listen = o->listen ? o->listen : "127.0.0.1:8443";
        char host[256] = "", san[2048];
        if (o->hostname)
                snprintf(host, sizeof(host), "%s", o->hostname);
        else if (gethostname(host, sizeof(host) - 1) < 0)
                host[0] = 0;
        int n = snprintf(san, sizeof(san), "DNS:localhost,IP:127.0.0.1,IP:::1%s%s", host[0] ? ",DNS:" : "", host);
        for (size_t i = 0; i < o->n_addresses && n < (int) sizeof(san); i++)
                n += snprintf(san + n, sizeof(san) - (size_t) n, ",IP:%s", o->addresses[i]);
        if (n >= (int) sizeof(san))
                return error_set(err, -E2BIG, "too many server addresses");
        _cleanup_(pki_pkey_freep) EVP_PKEY *ca_key = pki_new_key(false);
        _cleanup_(pki_x509_freep) X509 *ca = NULL;
        if (!ca_key)
                return error_set(err, -EIO, "cannot create the CA key");
        int r = pki_make_cert(PKI_CA, ca_key, "vmcrypt-manager CA", NULL, NULL, NULL, 0, 3650, &ca);
        if (r == 0)
                r = pki_write_pem(o->dir, "ca.key", 0600, ca_key, NULL);
        if (r == 0)
                r = pki_write_pem(o->dir, "ca.crt", 0644, NULL, ca);
        int days = o->days > 0 ? o->days : 825;
        if (r == 0)
                r = pki_issue(o->dir, PKI_SERVER, host[0] ? host : "localhost", "server", ca, ca_key, san, 0, days);
        if (r < 0)
                return error_set(err, r, "cannot create the CA and server certificate in %s: %s (is an "
                                       "address in --address not an IP address?)", o->dir, strerror(-r));
        char conf[2048];
        n = snprintf(conf, sizeof(conf),
                     "# vmcrypt-manager configuration (see docs/fleet.md). Paths are relative to this file.\n"
                     "listen = %s\ntls-cert = server.crt\ntls-key = server.key\ntls-ca = ca.crt\n"
                     "database = manager.db\n"
                     "# Roles are named sets of privileges (read, encrypt, decrypt, rekey, start,\n"
                     "# manage-policies, manage-providers, agent). Built in: admin, operator,\n"
                     "# auditor, agent, no-crypto-admin; more with lines like\n"
                     "#   role decryptor = read decrypt\n"
                     "# Clients: certificate CN and role; an agent's CN is its host's name.\n"
                     "# 'vmcrypt-manager issue' adds lines here.\n",
                     listen);
        snprintf(path, sizeof(path), "%s/manager.conf", o->dir);
        r = write_file_atomic(path, conf, (size_t) n, 0644);
        if (r < 0)
                return error_set(err, r, "cannot write %s: %s", path, strerror(-r));
        r = manager_issue(o->dir, "admin", "admin", days, err);
        for (size_t i = 0; r == 0 && i < o->n_agents; i++)
                r = manager_issue(o->dir, o->agents[i], "agent", days, err);
        return r;
}
