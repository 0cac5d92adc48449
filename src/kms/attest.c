/* Nonces and the checks of attested key release (see attest.h). The order of the
 * checks follows what each one relies on: the nonce (whose request is this?), the
 * host (whose AK?), the quote's signature (before believing anything in it), then
 * what it says: nonce binding, PCR selection, values, counters; then the release
 * key: certified by the same AK over the same nonce, bound to the same PCRs. */
#include "kms/attest.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "kmip/tags.h"
#include "shared/hex.h"
#include "shared/log.h"

struct nonce {
        bool used;
        uint8_t id[KMS_NONCE_ID_SIZE];
        uint8_t value[KMS_NONCE_SIZE];
        char cn[256];
        char uid[128];
        int64_t expires; /* CLOCK_MONOTONIC seconds */
};

struct kms_attest {
        struct attest_db *db;
        X509_STORE *ek_ca; /* NULL: EK certificates are recorded, not required */
        unsigned ttl;
        pthread_mutex_t lock;
        struct nonce *nonces; /* KMS_NONCES_MAX slots */
};

static int refuse(char *msg, size_t msglen, int r, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int64_t mono_now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec;
}

int kms_attest_new(const char *database, unsigned nonce_ttl, const char *ek_ca, struct kms_attest **ret) {
        struct kms_attest *at = calloc(1, sizeof(*at));
        if (!at)
                return -ENOMEM;
        at->nonces = calloc(KMS_NONCES_MAX, sizeof(*at->nonces));
        if (!at->nonces) {
                free(at);
                return -ENOMEM;
        }
        at->ttl = nonce_ttl ? nonce_ttl : KMS_NONCE_TTL_DEFAULT;
        pthread_mutex_init(&at->lock, NULL);
        int r = attest_db_open(database, &at->db);
        if (r < 0) {
                kms_attest_free(at);
                return r;
        }
        if (ek_ca) {
                at->ek_ca = X509_STORE_new();
                if (!at->ek_ca || X509_STORE_load_file(at->ek_ca, ek_ca) != 1) {
                        log_error("Cannot load the EK CA certificates from %s (attestation-ek-ca): give a PEM file", ek_ca);
                        kms_attest_free(at);
                        return -EINVAL;
                }
        }
        *ret = at;
        return 0;
}

int kms_attest_ek_cert(struct kms_attest *at, const TPMT_PUBLIC *ek, const uint8_t *der, size_t n,
                       enum attest_ek_cert_state *ret, char *msg, size_t msglen) {
        if (!der) {
                if (at->ek_ca)
                        return refuse(msg, msglen, -EACCES,
                                      "this KMS enrols only TPMs with an EK certificate from its attestation-ek-ca, and "
                                      "this TPM has none");
                *ret = ATTEST_EK_CERT_NONE;
                return 0;
        }
        const uint8_t *p = der;
        X509 *cert = d2i_X509(NULL, &p, (long) n);
        EVP_PKEY *k = NULL;
        int r = 0;
        if (!cert || p != der + n)
                r = refuse(msg, msglen, -EACCES, "the EK certificate is not a DER X.509 certificate");
        else if (attest_pkey(ek, &k) < 0 || EVP_PKEY_eq(X509_get0_pubkey(cert), k) != 1)
                r = refuse(msg, msglen, -EACCES, "the EK certificate certifies another key than this TPM's EK");
        else if (at->ek_ca) {
                X509_STORE_CTX *ctx = X509_STORE_CTX_new();
                int ok = ctx && X509_STORE_CTX_init(ctx, at->ek_ca, cert, NULL) == 1 && X509_verify_cert(ctx) == 1;
                int err = ctx ? X509_STORE_CTX_get_error(ctx) : 0;
                X509_STORE_CTX_free(ctx);
                if (!ok)
                        r = refuse(msg, msglen, -EACCES, "the EK certificate does not chain to attestation-ek-ca: %s",
                                   X509_verify_cert_error_string(err));
        }
        if (r == 0)
                *ret = at->ek_ca ? ATTEST_EK_CERT_VERIFIED : ATTEST_EK_CERT_PRESENT;
        EVP_PKEY_free(k);
        X509_free(cert);
        return r;
}

void kms_attest_free(struct kms_attest *at) {
        if (!at)
                return;
        attest_db_free(at->db);
        X509_STORE_free(at->ek_ca);
        pthread_mutex_destroy(&at->lock);
        free(at->nonces);
        free(at);
}

struct attest_db *kms_attest_db(struct kms_attest *at) {
        return at->db;
}

int kms_attest_nonce_new(struct kms_attest *at, const char *cn, const char *uid, uint8_t id[static KMS_NONCE_ID_SIZE],
                         uint8_t value[static KMS_NONCE_SIZE]) {
        if (RAND_bytes(id, KMS_NONCE_ID_SIZE) != 1 || RAND_bytes(value, KMS_NONCE_SIZE) != 1)
                return -EIO;
        int64_t now = mono_now();
        pthread_mutex_lock(&at->lock);
        /* A free or expired slot; but a client that already holds its share gives
         * up its oldest nonce instead, so that one certificate asking without
         * answering cannot starve every other host. */
        struct nonce *slot = NULL, *oldest = NULL;
        size_t mine = 0;
        for (size_t i = 0; i < KMS_NONCES_MAX; i++) {
                struct nonce *n = &at->nonces[i];
                if (!n->used || n->expires < now) {
                        if (!slot)
                                slot = n;
                } else if (strcmp(n->cn, cn) == 0) {
                        mine++;
                        if (!oldest || n->expires < oldest->expires)
                                oldest = n;
                }
        }
        if (mine >= KMS_NONCES_PER_CLIENT)
                slot = oldest;
        if (slot) {
                *slot = (struct nonce) { .used = true, .expires = now + at->ttl };
                memcpy(slot->id, id, KMS_NONCE_ID_SIZE);
                memcpy(slot->value, value, KMS_NONCE_SIZE);
                snprintf(slot->cn, sizeof(slot->cn), "%s", cn);
                snprintf(slot->uid, sizeof(slot->uid), "%s", uid);
        }
        pthread_mutex_unlock(&at->lock);
        return slot ? 0 : -EBUSY;
}

/* Take the nonce the credential names out of the table (single use). */
static int nonce_take(struct kms_attest *at, const struct kmip_attestation_credential *cred, struct nonce *ret) {
        int r = -ENOENT;
        pthread_mutex_lock(&at->lock);
        if (cred->nonce_id_size == KMS_NONCE_ID_SIZE)
                for (size_t i = 0; i < KMS_NONCES_MAX; i++) {
                        struct nonce *n = &at->nonces[i];
                        if (n->used && memcmp(n->id, cred->nonce_id, KMS_NONCE_ID_SIZE) == 0) {
                                *ret = *n;
                                *n = (struct nonce) {};
                                r = 0;
                                break;
                        }
                }
        pthread_mutex_unlock(&at->lock);
        return r;
}

static int refuse(char *msg, size_t msglen, int r, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, msglen, fmt, ap);
        va_end(ap);
        return r;
}

static int check_host(const struct attest_host *h, const char *group, char *msg, size_t msglen) {
        switch (h->state) {
        case ATTEST_HOST_APPROVED:
                break;
        case ATTEST_HOST_ENROLLING:
                return refuse(msg, msglen, -EACCES, "host %s never completed its enrolment: run vmcrypt host enroll again",
                              h->id);
        case ATTEST_HOST_PENDING:
                return refuse(msg, msglen, -EACCES,
                              "host %s is enrolled but not approved: vmcrypt-kms host approve %s (after checking its EK "
                              "sha256:%.16s...)",
                              h->id, h->id, h->ek_fingerprint);
        case ATTEST_HOST_REVOKED:
        default:
                return refuse(msg, msglen, -EACCES, "host %s is revoked: no key is released to it", h->id);
        }
        if (strcmp(h->group, group) != 0)
                return refuse(msg, msglen, -EACCES, "the key is released only to hosts of group \"%s\"; host %s is in \"%s\"",
                              group, h->id, h->group);
        return 0;
}

/* The quote's PCRs: the selection the policy names, values that hash to the quoted
 * digest, and those values equal to the golden ones. */
static int check_pcrs(const TPMS_ATTEST *q, const struct attest_evidence *ev, const struct attest_policy *pol,
                      char *msg, size_t msglen) {
        attest_pcr_mask quoted;
        char want[80], got[80];
        attest_pcr_mask_format(pol->mask, want, sizeof(want));
        if (attest_pcr_mask_of(&q->attested.quote.pcrSelect, &quoted) < 0 || quoted != pol->mask) {
                if (attest_pcr_mask_of(&q->attested.quote.pcrSelect, &quoted) < 0)
                        snprintf(got, sizeof(got), "other banks");
                else
                        attest_pcr_mask_format(quoted, got, sizeof(got));
                return refuse(msg, msglen, -EACCES,
                              "the quote covers PCRs %s (sha256) but the policy of group \"%s\" requires %s: set "
                              "\"pcrs\": \"%s\" in the provider",
                              got, pol->group, want, want);
        }
        if (ev->n_pcr_values != attest_pcr_count(pol->mask) || pol->n_values != ev->n_pcr_values)
                return refuse(msg, msglen, -EACCES, "the evidence reports %zu PCR values for %zu selected PCRs",
                              ev->n_pcr_values, attest_pcr_count(pol->mask));
        uint8_t d[ATTEST_DIGEST_SIZE];
        attest_pcr_digest((const uint8_t (*)[ATTEST_DIGEST_SIZE]) ev->pcr_values, ev->n_pcr_values, d);
        if (q->attested.quote.pcrDigest.size != sizeof(d) || CRYPTO_memcmp(q->attested.quote.pcrDigest.buffer, d, sizeof(d)))
                return refuse(msg, msglen, -EACCES, "the reported PCR values are not the ones the TPM quoted");
        for (size_t i = 0, pcr = 0; i < ev->n_pcr_values; i++, pcr++) {
                while (!(pol->mask & (1u << pcr)))
                        pcr++;
                if (CRYPTO_memcmp(ev->pcr_values[i], pol->values[i], ATTEST_DIGEST_SIZE) != 0)
                        return refuse(msg, msglen, -EACCES,
                                      "PCR %zu differs from the golden value of group \"%s\": the host booted or ran "
                                      "something else (vmcrypt-kms policy capture after a legitimate update)",
                                      pcr, pol->group);
        }
        return 0;
}

int kms_attest_check(struct kms_attest *at, const char *cn, const char *uid, const char *group,
                     const struct kmip_attestation_credential *cred, TPMT_PUBLIC *ret_bk, char *msg, size_t msglen) {
        struct nonce n;
        if (nonce_take(at, cred, &n) < 0)
                return refuse(msg, msglen, -EACCES, "unknown or already used nonce: attest again over a fresh one");
        if (cred->nonce_value_size != KMS_NONCE_SIZE || CRYPTO_memcmp(cred->nonce_value, n.value, KMS_NONCE_SIZE) != 0)
                return refuse(msg, msglen, -EACCES, "the Nonce Value is not the one issued with this Nonce ID");
        if (n.expires < mono_now())
                return refuse(msg, msglen, -EACCES, "the nonce expired (it lives %u s): attest again", at->ttl);
        if (strcmp(n.cn, cn) != 0)
                return refuse(msg, msglen, -EACCES, "the nonce was issued to another client");
        if (strcmp(n.uid, uid) != 0)
                return refuse(msg, msglen, -EACCES, "the nonce was issued for another object");
        if (cred->type != KMIP_ATTESTATION_TPM_QUOTE)
                return refuse(msg, msglen, -EACCES, "only Attestation Type TPM Quote is accepted");

        struct attest_evidence ev;
        if (!cred->measurement || !cred->assertion ||
            attest_evidence_parse(cred->measurement, cred->measurement_size, cred->assertion, cred->assertion_size, &ev) < 0)
                return refuse(msg, msglen, -EBADMSG, "the attestation measurement or assertion is malformed");

        struct attest_host h;
        int r = attest_db_host_by_cn(at->db, cn, &h);
        if (r == -ENOENT)
                return refuse(msg, msglen, -EACCES, "no TPM is enrolled for client \"%s\": run vmcrypt host enroll", cn);
        if (r < 0)
                return refuse(msg, msglen, -EIO, "the attestation store cannot be read");
        r = check_host(&h, group, msg, msglen);
        if (r < 0)
                return r;
        struct attest_policy pol;
        r = attest_db_policy_get(at->db, group, &pol);
        if (r < 0)
                return refuse(msg, msglen, r == -ENOENT ? -EACCES : -EIO,
                              "group \"%s\" has no PCR policy: vmcrypt-kms policy capture or policy set", group);
        TPMT_PUBLIC ak;
        if (attest_public_parse(h.ak, h.ak_size, &ak) < 0)
                return refuse(msg, msglen, -EIO, "the stored AK of host %s is unreadable: re-enrol it", h.id);

        TPM2B_NAME bk_name;
        if (attest_name(&ev.bk, &bk_name) < 0)
                return refuse(msg, msglen, -EACCES, "the release key does not use SHA-256 names");
        uint8_t q[ATTEST_DIGEST_SIZE];
        attest_release_qualifier(n.value, KMS_NONCE_SIZE, uid, &bk_name, q);
        char why[ATTEST_ERR_MAX];
        TPMS_ATTEST quote, cert;
        r = attest_verify(&ak, ev.quote.attestationData, ev.quote.size, &ev.quote_sig, TPM2_ST_ATTEST_QUOTE, q, sizeof(q),
                          &quote, why, sizeof(why));
        if (r < 0)
                return refuse(msg, msglen, -EACCES, "%s", why);
        r = check_pcrs(&quote, &ev, &pol, msg, msglen);
        if (r < 0)
                return r;

        /* A TPM's reset count only grows (each TPM Reset, i.e. boot); a lower one
         * means its state was rolled back or copied. A higher one is a reboot: this
         * quote, fresh and over the golden PCRs, is its re-attestation. */
        const TPMS_CLOCK_INFO *ci = &quote.clockInfo;
        if (h.has_clock && (ci->resetCount < h.reset_count ||
                            (ci->resetCount == h.reset_count && ci->restartCount < h.restart_count)))
                return refuse(msg, msglen, -EACCES,
                              "the TPM of host %s went back in time (reset count %u, restart count %u; seen %u, %u): its "
                              "state was rolled back or cloned; re-enrol the host",
                              h.id, ci->resetCount, ci->restartCount, h.reset_count, h.restart_count);

        r = attest_verify(&ak, ev.certify.attestationData, ev.certify.size, &ev.certify_sig, TPM2_ST_ATTEST_CERTIFY, q,
                          sizeof(q), &cert, why, sizeof(why));
        if (r < 0)
                return refuse(msg, msglen, -EACCES, "release key: %s", why);
        if (cert.attested.certify.name.size != bk_name.size ||
            CRYPTO_memcmp(cert.attested.certify.name.name, bk_name.name, bk_name.size) != 0)
                return refuse(msg, msglen, -EACCES, "the certification is for another key than the release key");
        uint8_t policy[ATTEST_DIGEST_SIZE];
        attest_pcr_policy(pol.mask, (const uint8_t (*)[ATTEST_DIGEST_SIZE]) pol.values, pol.n_values, policy);
        if (attest_check_bk(&ev.bk, policy, why, sizeof(why)) < 0)
                return refuse(msg, msglen, -EACCES, "%s", why);

        if (attest_db_host_set_clock(at->db, h.id, ci->resetCount, ci->restartCount) < 0)
                return refuse(msg, msglen, -EIO, "the TPM counters of host %s cannot be recorded", h.id);
        log_debug("attestation of host %s (%s) for %s passed", h.id, cn, uid);
        *ret_bk = ev.bk;
        return 0;
}
