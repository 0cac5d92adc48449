/* Revoked client certificates: see revocation.h. */
#include "kms/revocation.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tls/tls.h"
#include "shared/log.h"

struct set {
        char (*fingerprints)[TLS_FINGERPRINT_SIZE];
        size_t n_fingerprints;
        STACK_OF(X509_CRL) *crls;
};

struct kms_revocation {
        char *ca_file;
        pthread_rwlock_t lock;
        struct set set;
        unsigned generation; /* atomic */
};

static int ex_index = -1;
static pthread_once_t ex_once = PTHREAD_ONCE_INIT;

static void ex_index_init(void) {
        ex_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

static void set_done(struct set *s) {
        free(s->fingerprints);
        sk_X509_CRL_pop_free(s->crls, X509_CRL_free);
        *s = (struct set) {};
}

int kms_revocation_new(const char *ca_file, struct kms_revocation **ret) {
        struct kms_revocation *r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        if (!(r->ca_file = strdup(ca_file))) {
                free(r);
                return -ENOMEM;
        }
        pthread_rwlock_init(&r->lock, NULL);
        *ret = r;
        return 0;
}

void kms_revocation_free(struct kms_revocation *r) {
        if (!r)
                return;
        set_done(&r->set);
        pthread_rwlock_destroy(&r->lock);
        free(r->ca_file);
        free(r);
}

/* A CRL counts only when one of the client CAs signed it: a CRL file anyone could
 * write to must not be a way to lock clients out unnoticed, and a CRL of another CA
 * is a configuration mistake worth a refusal to start or reload. */
static int crl_check_signer(X509_CRL *crl, STACK_OF(X509_INFO) *cas, const char *path) {
        const X509_NAME *issuer = X509_CRL_get_issuer(crl);
        for (int i = 0; i < sk_X509_INFO_num(cas); i++) {
                X509 *ca = sk_X509_INFO_value(cas, i)->x509;
                if (!ca || X509_NAME_cmp(X509_get_subject_name(ca), issuer) != 0)
                        continue;
                if (X509_CRL_verify(crl, X509_get0_pubkey(ca)) == 1) {
                        const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);
                        if (next && X509_cmp_time(next, NULL) < 0)
                                log_warning("CRL in %s is past its next update: it still revokes what it lists; "
                                            "fetch a fresh one", path);
                        return 0;
                }
        }
        log_error("CRL in %s is not signed by a client CA of the server (tls-ca)", path);
        return -EKEYREJECTED;
}

static int load_crls(const char *path, const char *ca_file, STACK_OF(X509_CRL) **ret) {
        FILE *f = fopen(path, "re");
        if (!f)
                return log_error_errno(negative_errno(), "Cannot open the CRL file %s: %m", path);
        STACK_OF(X509_INFO) *infos = PEM_X509_INFO_read(f, NULL, NULL, NULL);
        fclose(f);
        FILE *cf = fopen(ca_file, "re");
        STACK_OF(X509_INFO) *cas = cf ? PEM_X509_INFO_read(cf, NULL, NULL, NULL) : NULL;
        if (cf)
                fclose(cf);
        STACK_OF(X509_CRL) *crls = sk_X509_CRL_new_null();
        int r = infos && cas && crls ? 0 : -EINVAL;
        if (r < 0)
                log_openssl_errors("CRL");
        for (int i = 0; r == 0 && i < sk_X509_INFO_num(infos); i++) {
                X509_INFO *in = sk_X509_INFO_value(infos, i);
                if (!in->crl)
                        continue;
                r = crl_check_signer(in->crl, cas, path);
                if (r == 0 && !sk_X509_CRL_push(crls, in->crl))
                        r = -ENOMEM;
                if (r == 0)
                        in->crl = NULL; /* now crls' */
        }
        if (r == 0 && sk_X509_CRL_num(crls) == 0) {
                log_error("No CRL in %s (expected PEM: -----BEGIN X509 CRL-----)", path);
                r = -EINVAL;
        }
        sk_X509_INFO_pop_free(infos, X509_INFO_free);
        sk_X509_INFO_pop_free(cas, X509_INFO_free);
        ERR_clear_error();
        if (r < 0) {
                sk_X509_CRL_pop_free(crls, X509_CRL_free);
                return r;
        }
        *ret = crls;
        return 0;
}

int kms_revocation_load(struct kms_revocation *r, const struct kms_config *c) {
        struct set s = {};
        if (c->n_revoked_clients) {
                s.fingerprints = calloc(c->n_revoked_clients, sizeof(*s.fingerprints));
                if (!s.fingerprints)
                        return -ENOMEM;
                for (size_t i = 0; i < c->n_revoked_clients; i++)
                        snprintf(s.fingerprints[i], TLS_FINGERPRINT_SIZE, "%s", c->revoked_clients[i]);
                s.n_fingerprints = c->n_revoked_clients;
        }
        if (c->crl) {
                int k = load_crls(c->crl, r->ca_file, &s.crls);
                if (k < 0) {
                        set_done(&s);
                        return k;
                }
        }
        pthread_rwlock_wrlock(&r->lock);
        struct set old = r->set;
        r->set = s;
        __atomic_add_fetch(&r->generation, 1, __ATOMIC_RELEASE);
        pthread_rwlock_unlock(&r->lock);
        set_done(&old);
        return 0;
}

unsigned kms_revocation_generation(const struct kms_revocation *r) {
        return __atomic_load_n(&r->generation, __ATOMIC_ACQUIRE);
}

static bool crl_lists(STACK_OF(X509_CRL) *crls, X509 *cert) {
        const X509_NAME *issuer = X509_get_issuer_name(cert);
        for (int i = 0; i < sk_X509_CRL_num(crls); i++) {
                X509_CRL *crl = sk_X509_CRL_value(crls, i);
                X509_REVOKED *entry;
                /* 2 would be a delta CRL's removeFromCRL: not revoked. */
                if (X509_NAME_cmp(X509_CRL_get_issuer(crl), issuer) == 0 &&
                    X509_CRL_get0_by_cert(crl, &entry, cert) == 1)
                        return true;
        }
        return false;
}

bool kms_revocation_denies(struct kms_revocation *r, X509 *cert, const char *fingerprint) {
        bool denied = false;
        pthread_rwlock_rdlock(&r->lock);
        for (size_t i = 0; !denied && i < r->set.n_fingerprints; i++)
                denied = strcasecmp(r->set.fingerprints[i], fingerprint) == 0;
        if (!denied && cert && r->set.crls)
                denied = crl_lists(r->set.crls, cert);
        pthread_rwlock_unlock(&r->lock);
        return denied;
}

/* After OpenSSL's own checks of the client's chain: the leaf may still be revoked.
 * Failing here sends the certificate_revoked alert, so the client learns why. */
static int verify_cb(int ok, X509_STORE_CTX *x) {
        ok = tls_verify_note(ok, x); /* the audit log names refused certificates too */
        if (!ok || X509_STORE_CTX_get_error_depth(x) != 0)
                return ok;
        SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
        struct kms_revocation *r = ssl ? SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ex_index) : NULL;
        X509 *cert = X509_STORE_CTX_get_current_cert(x);
        if (!r || !cert)
                return ok;
        char fp[TLS_FINGERPRINT_SIZE];
        if (tls_fingerprint(cert, fp) < 0)
                return 0;
        if (kms_revocation_denies(r, cert, fp)) {
                log_notice("Refusing revoked client certificate (sha256 %s)", fp);
                X509_STORE_CTX_set_error(x, X509_V_ERR_CERT_REVOKED);
                return 0;
        }
        return 1;
}

int kms_revocation_attach(struct kms_revocation *r, SSL_CTX *ctx) {
        pthread_once(&ex_once, ex_index_init);
        if (ex_index < 0 || SSL_CTX_set_ex_data(ctx, ex_index, r) != 1)
                return -ENOMEM;
        SSL_CTX_set_verify(ctx, SSL_CTX_get_verify_mode(ctx), verify_cb);
        return 0;
}
