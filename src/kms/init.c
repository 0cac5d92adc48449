/* Quick-start state directory: see init.h. The certificates come from tls/pki.c. */
#include "kms/init.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kms/perms.h"
#include "tls/pki.h"
#include "shared/fd-util.h"
#include "shared/key-input.h"
#include "shared/log.h"
#include "shared/macro.h"

/* DIR and its CA, before the CA signs anything: a ca.key that another user can read
 * or replace issues certificates for any identity. */
static int check_ca_dir(const char *dir) {
        int r = kms_perms_check(dir, KMS_PERM_DIR, 0);
        if (r < 0)
                return r;
        char path[4096];
        snprintf(path, sizeof(path), "%s/ca.key", dir);
        r = kms_perms_check(path, KMS_PERM_PRIVATE, 1);
        if (r < 0 && r != -ENOENT)
                return r;
        snprintf(path, sizeof(path), "%s/ca.crt", dir);
        r = kms_perms_check(path, KMS_PERM_PUBLIC, 1);
        return r == -ENOENT ? 0 : r;
}

int kms_init_issue_client(const char *dir, const char *cn, int not_before_days, int days) {
        if (!pki_valid_cn(cn))
                return log_error_errno(-EINVAL, "Client name '%s' must be 1-64 of [A-Za-z0-9._@-]", cn);
        int r = check_ca_dir(dir);
        if (r < 0)
                return r;
        _cleanup_(pki_x509_freep) X509 *ca = NULL;
        _cleanup_(pki_pkey_freep) EVP_PKEY *ca_key = NULL;
        r = pki_load_ca(dir, &ca, &ca_key);
        if (r < 0)
                return log_error_errno(r, "Cannot load the CA (ca.crt, ca.key) from %s: %m", dir);
        char base[300];
        snprintf(base, sizeof(base), "client-%s", cn);
        return pki_issue(dir, PKI_CLIENT, cn, base, ca, ca_key, NULL, not_before_days, days);
}

int kms_init(const struct kms_init_options *o) {
        if (mkdir(o->dir, 0700) < 0 && errno != EEXIST)
                return log_error_errno(negative_errno(), "Cannot create %s: %m", o->dir);
        /* An existing directory must be ours alone: another user who may write to it
         * (or owns it) could replace ca.crt or a key after init, and be served every
         * key after the next start. */
        int r = kms_perms_check(o->dir, KMS_PERM_DIR, 0);
        if (r < 0)
                return r;
        char path[4096];
        snprintf(path, sizeof(path), "%s/ca.key", o->dir);
        if (access(path, F_OK) == 0)
                return log_error_errno(-EEXIST, "%s already holds a CA; refusing to overwrite it", o->dir);

        char host[256] = "";
        if (o->hostname)
                snprintf(host, sizeof(host), "%s", o->hostname);
        else if (gethostname(host, sizeof(host) - 1) < 0)
                host[0] = 0;
        char san[600];
        snprintf(san, sizeof(san), "DNS:localhost,IP:127.0.0.1,IP:::1%s%s", host[0] ? ",DNS:" : "", host);

        _cleanup_(pki_pkey_freep) EVP_PKEY *ca_key = pki_new_key(o->rsa);
        _cleanup_(pki_x509_freep) X509 *ca = NULL;
        if (!ca_key)
                return -EIO;
        r = pki_make_cert(PKI_CA, ca_key, "vmcrypt-kms CA", NULL, NULL, NULL, 0, 3650, &ca);
        if (r < 0)
                return log_error_errno(r, "Cannot create the CA certificate: %m");
        if ((r = pki_write_pem(o->dir, "ca.key", 0600, ca_key, NULL)) < 0 ||
            (r = pki_write_pem(o->dir, "ca.crt", 0644, NULL, ca)) < 0)
                return r;
        int days = o->days > 0 ? o->days : 825;
        r = pki_issue(o->dir, PKI_SERVER, host[0] ? host : "localhost", "server", ca, ca_key, san, 0, days);
        if (r < 0)
                return log_error_errno(r, "Cannot create the server certificate: %m");
        for (size_t i = 0; i < o->n_clients; i++) {
                r = kms_init_issue_client(o->dir, o->clients[i], 0, days);
                if (r < 0)
                        return r;
        }
        snprintf(path, sizeof(path), "%s/master.key", o->dir);
        _cleanup_(secret_freep) struct secret *mk = NULL;
        r = key_input_new_key_file(path, 32, &mk);
        if (r < 0)
                return log_error_errno(r, "Cannot create the master key %s: %m", path);

        char conf[2048];
        int n = snprintf(conf, sizeof(conf),
                         "# vmcrypt-kms configuration (see docs/kms.md). Paths are relative to this file.\n"
                         "listen = %s\n"
                         "tls-cert = server.crt\n"
                         "tls-key = server.key\n"
                         "tls-ca = ca.crt\n"
                         "database = kms.db\n"
                         "master-key-file = master.key\n"
                         "audit-log = audit.log\n"
                         "operator-audit-log = operator-audit.log\n"
                         "audit-key = audit.key\n"
                         "audit-failure = refuse\n"
                         "workers = 32\n"
                         "max-message-size = 1048576\n"
                         "idle-timeout = 600\n"
                         "max-connections = 20000\n"
                         "handshake-timeout = 10\n"
                         "max-unauthenticated = 1000\n"
                         "max-unauthenticated-per-address = 100\n"
                         "\n"
                         "# Access policy: objects belong to the client (certificate CN) that created them.\n"
                         "# A group may use other clients' objects for the operations it lists, e.g.\n"
                         "# [group auditors]\n"
                         "# members = alice, bob\n"
                         "# operations = locate, get-attributes, get-attribute-list\n",
                         o->listen ? o->listen : "0.0.0.0:5696");
        snprintf(path, sizeof(path), "%s/kms.conf", o->dir);
        r = write_file_atomic(path, conf, (size_t) n, 0644);
        if (r < 0)
                return log_error_errno(r, "Cannot write %s: %m", path);
        return 0;
}
