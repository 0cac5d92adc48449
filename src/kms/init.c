/* Quick-start state directory: see init.h. Keys are EC P-256, written 0600 with
 * O_EXCL so that an existing key is never overwritten. */
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
#include "shared/fd-util.h"
#include "shared/key-input.h"
#include "shared/log.h"
#include "shared/macro.h"

enum kind { KIND_CA, KIND_SERVER, KIND_CLIENT };

static void pkey_freep(EVP_PKEY **p) {
        EVP_PKEY_free(*p);
}
static void x509_freep(X509 **p) {
        X509_free(*p);
}

static int write_pem(const char *dir, const char *name, mode_t mode, EVP_PKEY *key, X509 *cert) {
        _cleanup_(freep) char *path = NULL;
        if (asprintf(&path, "%s/%s", dir, name) < 0)
                return -ENOMEM;
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0)
                return log_error_errno(negative_errno(), "Cannot create %s: %m", path);
        /* Exactly the documented mode, whatever the umask (a umask of 077 would make
         * certificates unreadable to the clients they are for). */
        if (fchmod(fd, mode) < 0) {
                int r = log_error_errno(negative_errno(), "Cannot set the mode of %s: %m", path);
                close(fd);
                return r;
        }
        FILE *f = fdopen(fd, "w");
        if (!f) {
                close(fd);
                return -ENOMEM;
        }
        int ok = key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) : PEM_write_X509(f, cert);
        if (fflush(f) != 0 || fsync(fileno(f)) < 0)
                ok = 0;
        fclose(f);
        return ok ? 0 : -EIO;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value) {
        X509V3_CTX ctx;
        X509V3_set_ctx_nodb(&ctx);
        X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
        if (!ext)
                return -EINVAL;
        int ok = X509_add_ext(cert, ext, -1);
        X509_EXTENSION_free(ext);
        return ok ? 0 : -EINVAL;
}

static int make_cert(enum kind kind, EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
                     const char *san, long not_before_days, long days, X509 **ret) {
        _cleanup_(x509_freep) X509 *c = X509_new();
        if (!c)
                return -ENOMEM;
        uint8_t serial[16];
        if (RAND_bytes(serial, sizeof(serial)) != 1)
                return -EIO;
        serial[0] &= 0x7f;
        BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
        int ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c)) != NULL;
        BN_free(bn);
        ok = ok && X509_set_version(c, 2);
        ok = ok && X509_gmtime_adj(X509_getm_notBefore(c), not_before_days * 86400 - 3600);
        ok = ok && X509_gmtime_adj(X509_getm_notAfter(c), (not_before_days + days) * 86400);
        ok = ok && X509_set_pubkey(c, key);
        X509_NAME *name = X509_get_subject_name(c);
        ok = ok && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *) cn, -1, -1, 0);
        ok = ok && X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : name);
        if (!ok)
                return -EINVAL;
        X509 *iss = issuer ? issuer : c;
        int r = add_ext(c, iss, NID_subject_key_identifier, "hash");
        if (r == 0)
                r = add_ext(c, iss, NID_authority_key_identifier, "keyid:always");
        switch (kind) {
        case KIND_CA:
                if (r == 0)
                        r = add_ext(c, iss, NID_basic_constraints, "critical,CA:TRUE");
                if (r == 0)
                        r = add_ext(c, iss, NID_key_usage, "critical,keyCertSign,cRLSign");
                break;
        case KIND_SERVER:
                if (r == 0)
                        r = add_ext(c, iss, NID_basic_constraints, "critical,CA:FALSE");
                if (r == 0)
                        r = add_ext(c, iss, NID_key_usage, EVP_PKEY_is_a(key, "RSA")
                                                                  ? "critical,digitalSignature,keyEncipherment"
                                                                  : "critical,digitalSignature,keyAgreement");
                if (r == 0)
                        r = add_ext(c, iss, NID_ext_key_usage, "serverAuth");
                if (r == 0)
                        r = add_ext(c, iss, NID_subject_alt_name, san);
                break;
        case KIND_CLIENT:
                if (r == 0)
                        r = add_ext(c, iss, NID_basic_constraints, "critical,CA:FALSE");
                if (r == 0)
                        r = add_ext(c, iss, NID_key_usage, EVP_PKEY_is_a(key, "RSA")
                                                                  ? "critical,digitalSignature,keyEncipherment"
                                                                  : "critical,digitalSignature,keyAgreement");
                if (r == 0)
                        r = add_ext(c, iss, NID_ext_key_usage, "clientAuth");
                break;
        }
        if (r < 0)
                return r;
        if (!X509_sign(c, issuer_key ? issuer_key : key, EVP_sha256()))
                return -EIO;
        *ret = TAKE_PTR(c);
        return 0;
}

/* A new key of the CA's kind: EC P-256 by default; RSA 3072 for peers that only
 * negotiate RSA suites (older KMIP clients, some appliances). */
static EVP_PKEY *new_key(int rsa) {
        return rsa ? EVP_RSA_gen(3072) : EVP_EC_gen("P-256");
}

static int issue(const char *dir, enum kind kind, const char *cn, const char *base, X509 *ca, EVP_PKEY *ca_key,
                 const char *san, long not_before_days, long days) {
        _cleanup_(pkey_freep) EVP_PKEY *key = new_key(EVP_PKEY_is_a(ca_key, "RSA"));
        if (!key)
                return -EIO;
        _cleanup_(x509_freep) X509 *cert = NULL;
        int r = make_cert(kind, key, cn, ca, ca_key, san, not_before_days, days, &cert);
        if (r < 0)
                return r;
        char name[300];
        snprintf(name, sizeof(name), "%s.key", base);
        r = write_pem(dir, name, 0600, key, NULL);
        if (r < 0)
                return r;
        snprintf(name, sizeof(name), "%s.crt", base);
        return write_pem(dir, name, 0644, NULL, cert);
}

static int load_ca(const char *dir, X509 **ret_cert, EVP_PKEY **ret_key) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/ca.crt", dir);
        FILE *f = fopen(path, "re");
        if (!f)
                return negative_errno();
        *ret_cert = PEM_read_X509(f, NULL, NULL, NULL);
        fclose(f);
        snprintf(path, sizeof(path), "%s/ca.key", dir);
        f = fopen(path, "re");
        if (!f)
                return negative_errno();
        *ret_key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
        return *ret_cert && *ret_key ? 0 : -EINVAL;
}

static int valid_cn(const char *cn) {
        if (!*cn || strlen(cn) > 64)
                return 0;
        for (const char *p = cn; *p; p++)
                if (!(('a' <= *p && *p <= 'z') || ('A' <= *p && *p <= 'Z') || ('0' <= *p && *p <= '9') ||
                      *p == '-' || *p == '_' || *p == '.' || *p == '@'))
                        return 0;
        return 1;
}

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
        if (!valid_cn(cn))
                return log_error_errno(-EINVAL, "Client name '%s' must be 1-64 of [A-Za-z0-9._@-]", cn);
        int r = check_ca_dir(dir);
        if (r < 0)
                return r;
        _cleanup_(x509_freep) X509 *ca = NULL;
        _cleanup_(pkey_freep) EVP_PKEY *ca_key = NULL;
        r = load_ca(dir, &ca, &ca_key);
        if (r < 0)
                return log_error_errno(r, "Cannot load the CA (ca.crt, ca.key) from %s: %m", dir);
        char base[300];
        snprintf(base, sizeof(base), "client-%s", cn);
        return issue(dir, KIND_CLIENT, cn, base, ca, ca_key, NULL, not_before_days, days);
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

        _cleanup_(pkey_freep) EVP_PKEY *ca_key = new_key(o->rsa);
        _cleanup_(x509_freep) X509 *ca = NULL;
        if (!ca_key)
                return -EIO;
        r = make_cert(KIND_CA, ca_key, "vmcrypt-kms CA", NULL, NULL, NULL, 0, 3650, &ca);
        if (r < 0)
                return log_error_errno(r, "Cannot create the CA certificate: %m");
        if ((r = write_pem(o->dir, "ca.key", 0600, ca_key, NULL)) < 0 ||
            (r = write_pem(o->dir, "ca.crt", 0644, NULL, ca)) < 0)
                return r;
        int days = o->days > 0 ? o->days : 825;
        r = issue(o->dir, KIND_SERVER, host[0] ? host : "localhost", "server", ca, ca_key, san, 0, days);
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
