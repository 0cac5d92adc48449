/* The trusted key provider's TPM side (docs/attestation.md): a kmip provider whose
 * client attests when the KMS answers Attestation Required, with evidence from this
 * host's TPM, and unwraps what the KMS then releases inside the TPM. Also host
 * enrolment: EK and AK to the KMS, its MakeCredential challenge answered with
 * ActivateCredential, PCRs 0-23 quoted for the operator's policy capture. */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tss2/tss2_mu.h>

#include "keys/provider-internal.h"
#include "shared/hex.h"
#include "shared/log.h"
#include "tpm/tpm.h"

struct trusted_state {
        struct provider *p;
        struct tpm *tpm;
};

static int open_tpm(struct trusted_state *t, char *err, size_t errlen) {
        if (t->tpm)
                return 0;
        char why[256] = "";
        int r = tpm_open(t->p->config->tcti, &t->tpm, why, sizeof(why));
        if (r < 0)
                snprintf(err, errlen, "%s (provider \"%s\", \"tcti\")", why, t->p->config->name);
        else
                tpm_set_bk_cache(t->tpm, t->p->config->bk_cache);
        return r;
}

#ifdef VMCRYPT_TESTPOINTS
/* VMCRYPT_TEST_ATTEST=delay:N: wait N seconds before answering (nonce expiry test). */
static void test_delay(void) {
        const char *e = getenv("VMCRYPT_TEST_ATTEST");
        if (e && strncmp(e, "delay:", 6) == 0)
                sleep((unsigned) atoi(e + 6));
}

/* VMCRYPT_TEST_ATTEST=unwrap-elsewhere:TCTI: hand what the KMS released to another
 * TPM's release key instead (a response carried to another host). */
static const char *test_unwrap_elsewhere(void) {
        const char *e = getenv("VMCRYPT_TEST_ATTEST");
        return e && strncmp(e, "unwrap-elsewhere:", 17) == 0 ? e + 17 : NULL;
}
#else
static inline void test_delay(void) {
}
static inline const char *test_unwrap_elsewhere(void) {
        return NULL;
}
#endif

static int attest(void *userdata, uint32_t op, const char *uid, const uint8_t *nonce, size_t nonce_size,
                  uint8_t **ret_m, size_t *ret_m_size, uint8_t **ret_a, size_t *ret_a_size, char *err, size_t errlen) {
        struct trusted_state *t = userdata;
        (void) op;
        int r = open_tpm(t, err, errlen);
        if (r < 0)
                return r;
        struct attest_evidence ev;
        r = tpm_release_evidence(t->tpm, t->p->config->pcrs, nonce, nonce_size, uid, &ev);
        if (r < 0) {
                snprintf(err, errlen, "%s", tpm_error(t->tpm));
                return r;
        }
        test_delay();
        return attest_evidence_build(&ev, true, ret_m, ret_m_size, ret_a, ret_a_size);
}

static int unwrap(void *userdata, const uint8_t *wrapped, size_t size, struct secret **ret, char *err, size_t errlen) {
        struct trusted_state *t = userdata;
        if (!t->tpm) {
                snprintf(err, errlen, "no TPM open");
                return -ENODEV;
        }
        struct tpm *tpm = t->tpm, *other = NULL;
        const char *elsewhere = test_unwrap_elsewhere();
        if (elsewhere) {
                struct attest_evidence ev;
                static const uint8_t nonce[32];
                if (tpm_open(elsewhere, &other, err, errlen) < 0)
                        return -ENODEV;
                if (tpm_release_evidence(other, t->p->config->pcrs, nonce, sizeof(nonce), "x", &ev) < 0) {
                        snprintf(err, errlen, "%s", tpm_error(other));
                        tpm_free(other);
                        return -EIO;
                }
                tpm = other;
        }
        int r = tpm_release_decrypt(tpm, wrapped, size, ret);
        if (r < 0)
                snprintf(err, errlen, "%s", tpm_error(tpm));
        tpm_free(other);
        return r;
}

int trusted_attach(struct provider *p, struct kmip_client *client, struct trusted_state **ret) {
        struct trusted_state *t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->p = p;
        struct kmip_attester a = { .attest = attest, .unwrap = unwrap, .userdata = t };
        kmip_client_set_attester(client, &a);
        /* Attestation exists since KMIP 1.2; the client speaks 1.4 unless told. */
        *ret = t;
        return 0;
}

void trusted_detach(struct trusted_state *t) {
        if (!t)
                return;
        tpm_free(t->tpm);
        free(t);
}

static void arena_freep(struct ttlv_arena **a) {
        ttlv_arena_free(*a);
}

static int enroll_fail(struct provider *p, struct kmip_client *c, int r, const char *what) {
        return provider_fail(p, r, "enrolling with provider \"%s\": %s: %s", p->config->name, what,
                             c ? kmip_client_error(c) : strerror(-r));
}

int provider_trusted_enroll(struct provider *p, struct trusted_enrollment *ret) {
        if (p->config->kind != PROVIDER_TRUSTED)
                return provider_fail(p, -EOPNOTSUPP, "provider \"%s\" is not of type \"trusted\": only a trusted provider "
                                     "enrols hosts", p->config->name);
        struct kmip_client *c = provider_kmip_client(p);
        if (!c)
                return -EINVAL;
        struct trusted_state t = { .p = p };
        char err[512];
        int r = open_tpm(&t, err, sizeof(err));
        if (r < 0)
                return provider_fail(p, r, "%s", err);
        TPMT_PUBLIC ek, ak;
        uint8_t *ekb = NULL, *akb = NULL;
        size_t ekn = 0, akn = 0;
        struct secret *secret = NULL;
        _cleanup_(arena_freep) struct ttlv_arena *a = ttlv_arena_new();
        r = a ? tpm_identity(t.tpm, &ek, &ak) : -ENOMEM;
        if (r < 0) {
                provider_fail(p, r, "reading the TPM's EK and AK: %s", tpm_error(t.tpm));
                goto out;
        }
        r = attest_public_marshal(&ek, &ekb, &ekn);
        if (r >= 0)
                r = attest_public_marshal(&ak, &akb, &akn);
        if (r < 0)
                goto out;
        uint8_t fpr[32];
        unsigned fn = sizeof(fpr);
        if (EVP_Digest(ekb, ekn, fpr, &fn, EVP_sha256(), NULL) != 1) {
                r = -EIO;
                goto out;
        }
        hex_encode(fpr, sizeof(fpr), ret->ek_fingerprint);

        /* Round 1: the public keys (and the EK's certificate, when the TPM has one);
         * the KMS answers with a credential challenge. */
        struct ttlv *req = ttlv_add_structure(a, NULL, KMIP_TAG_REQUEST_PAYLOAD), *resp;
        ttlv_add_bytes(a, req, KMIP_TAG_X_EK_PUBLIC, ekb, ekn);
        ttlv_add_bytes(a, req, KMIP_TAG_X_AK_PUBLIC, akb, akn);
        uint8_t *cert = NULL;
        size_t cert_n = 0;
        r = tpm_ek_certificate(t.tpm, &cert, &cert_n);
        if (r == 0)
                ttlv_add_bytes(a, req, KMIP_TAG_X_EK_CERTIFICATE, cert, cert_n);
        free(cert);
        ret->has_ek_certificate = r == 0;
        if (r < 0 && r != -ENOENT) {
                provider_fail(p, r, "reading the TPM's EK certificate: %s", tpm_error(t.tpm));
                goto out;
        }
        r = ttlv_arena_failed(a) ? -ENOMEM : kmip_client_call(c, a, KMIP_OP_X_ENROLL_HOST, req, &resp);
        if (r < 0) {
                enroll_fail(p, c, r, "the KMS refused the TPM's keys");
                goto out;
        }
        const char *id;
        const uint8_t *blob_b, *sec_b;
        size_t blob_n, sec_n, off = 0, off2 = 0;
        TPM2B_ID_OBJECT blob = { 0 };
        TPM2B_ENCRYPTED_SECRET enc = { 0 };
        if (!resp || ttlv_get_text(resp, KMIP_TAG_X_HOST_ID, &id, NULL) < 0 ||
            ttlv_get_bytes(resp, KMIP_TAG_X_CREDENTIAL_BLOB, &blob_b, &blob_n) < 0 ||
            ttlv_get_bytes(resp, KMIP_TAG_X_ENCRYPTED_SECRET, &sec_b, &sec_n) < 0 ||
            Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(blob_b, blob_n, &off, &blob) != TSS2_RC_SUCCESS || off != blob_n ||
            Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(sec_b, sec_n, &off2, &enc) != TSS2_RC_SUCCESS || off2 != sec_n) {
                r = provider_fail(p, -EPROTO, "enrolling with provider \"%s\": the KMS's challenge is malformed (is it a "
                                  "vmcrypt-kms with attestation?)", p->config->name);
                goto out;
        }
        snprintf(ret->host_id, sizeof(ret->host_id), "%s", id);

        /* Round 2: only our TPM opens the challenge; prove it, and quote the PCRs. */
        r = tpm_activate(t.tpm, &blob, &enc, &secret);
        if (r < 0) {
                provider_fail(p, r, "enrolling with provider \"%s\": the TPM cannot open the KMS's challenge: %s",
                              p->config->name, tpm_error(t.tpm));
                goto out;
        }
        uint8_t proof[32], q[32];
        attest_enroll_proof(secret->data, secret->size, ret->host_id, proof);
        attest_enroll_qualifier(proof, sizeof(proof), q);
        struct attest_evidence ev = { 0 };
        r = tpm_quote(t.tpm, 0xFFFFFFu, q, sizeof(q), &ev);
        if (r < 0) {
                provider_fail(p, r, "enrolling: quoting the PCRs failed: %s", tpm_error(t.tpm));
                goto out;
        }
        uint8_t *m = NULL;
        size_t mn = 0;
        r = attest_evidence_build(&ev, false, &m, &mn, NULL, NULL);
        if (r < 0)
                goto out;
        req = ttlv_add_structure(a, NULL, KMIP_TAG_REQUEST_PAYLOAD);
        ttlv_add_text(a, req, KMIP_TAG_X_HOST_ID, ret->host_id);
        ttlv_add_bytes(a, req, KMIP_TAG_X_ACTIVATION_PROOF, proof, sizeof(proof));
        ttlv_add_bytes(a, req, KMIP_TAG_ATTESTATION_MEASUREMENT, m, mn);
        free(m);
        r = ttlv_arena_failed(a) ? -ENOMEM : kmip_client_call(c, a, KMIP_OP_X_ENROLL_HOST, req, &resp);
        if (r < 0) {
                enroll_fail(p, c, r, "the KMS refused the TPM's answer");
                goto out;
        }
        const char *state = "pending";
        if (resp)
                (void) ttlv_get_text(resp, KMIP_TAG_X_HOST_STATE, &state, NULL);
        snprintf(ret->state, sizeof(ret->state), "%s", state);
        r = 0;
out:
        secret_free(secret);
        free(ekb);
        free(akb);
        tpm_free(t.tpm);
        return r;
}
