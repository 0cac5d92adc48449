/* A small PKI for mutual TLS: see pki.h. Keys are EC P-256 (or RSA 3072), written
 * 0600 with O_EXCL so that an existing key is never overwritten. */
#include "tls/pki.h"

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

#include "shared/fd-util.h"
#include "shared/log.h"
#include "shared/macro.h"

void pki_pkey_freep(EVP_PKEY **p) {
        EVP_PKEY_free(*p);
}
void pki_x509_freep(X509 **p) {
        X509_free(*p);
}

int pki_write_pem(const char *dir, const char *name, mode_t mode, EVP_PKEY *key, X509 *cert) {
        _cleanup_(freep) char *path = NULL;
        if (asprintf(&path, "%s/%s", dir, name) < 0)
                return -ENOMEM;
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0)
                return log_debug_errno(negative_errno(), "Cannot create %s: %m", path);
        /* Exactly the documented mode, whatever the umask (a umask of 077 would make
         * certificates unreadable to the clients they are for). */
        if (fchmod(fd, mode) < 0) {
                int r = log_debug_errno(negative_errno(), "Cannot set the mode of %s: %m", path);
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

int pki_make_cert(enum pki_kind kind, EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
                     const char *san, long not_before_days, long days, X509 **ret) {
        _cleanup_(pki_x509_freep) X509 *c = X509_new();
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
        if (kind == PKI_CA) {
                if (r == 0)
                        r = add_ext(c, iss, NID_basic_constraints, "critical,CA:TRUE");
                if (r == 0)
                        r = add_ext(c, iss, NID_key_usage, "critical,keyCertSign,cRLSign");
        } else {
                /* Servers and clients alike: an end entity whose key signs (EC) or
                 * takes the key exchange (RSA); only the purpose and a server's names
                 * differ. */
                if (r == 0)
                        r = add_ext(c, iss, NID_basic_constraints, "critical,CA:FALSE");
                if (r == 0)
                        r = add_ext(c, iss, NID_key_usage, EVP_PKEY_is_a(key, "RSA")
                                                                  ? "critical,digitalSignature,keyEncipherment"
                                                                  : "critical,digitalSignature,keyAgreement");
                if (r == 0)
                        r = add_ext(c, iss, NID_ext_key_usage, kind == PKI_SERVER ? "serverAuth" : "clientAuth");
                if (r == 0 && kind == PKI_SERVER)
                        r = add_ext(c, iss, NID_subject_alt_name, san);
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
EVP_PKEY *pki_new_key(bool rsa) {
        return rsa ? EVP_RSA_gen(3072) : EVP_EC_gen("P-256");
}

int pki_issue(const char *dir, enum pki_kind kind, const char *cn, const char *base, X509 *ca, EVP_PKEY *ca_key,
                 const char *san, long not_before_days, long days) {
        _cleanup_(pki_pkey_freep) EVP_PKEY *key = pki_new_key(EVP_PKEY_is_a(ca_key, "RSA"));
        if (!key)
                return -EIO;
        _cleanup_(pki_x509_freep) X509 *cert = NULL;
        int r = pki_make_cert(kind, key, cn, ca, ca_key, san, not_before_days, days, &cert);
        if (r < 0)
                return r;
        char name[300];
        snprintf(name, sizeof(name), "%s.key", base);
        r = pki_write_pem(dir, name, 0600, key, NULL);
        if (r < 0)
                return r;
        snprintf(name, sizeof(name), "%s.crt", base);
        return pki_write_pem(dir, name, 0644, NULL, cert);
}

int pki_load_ca(const char *dir, X509 **ret_cert, EVP_PKEY **ret_key) {
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

bool pki_valid_cn(const char *cn) {
        if (!*cn || strlen(cn) > 64)
                return false;
        for (const char *p = cn; *p; p++)
                if (!(('a' <= *p && *p <= 'z') || ('A' <= *p && *p <= 'Z') || ('0' <= *p && *p <= '9') ||
                      *p == '-' || *p == '_' || *p == '.' || *p == '@'))
                        return false;
        return true;
}
