/* Attestation in the KMIP operations: the gate in front of key release, and the
 * Enroll Host extension operation (docs/attestation.md).
 *
 * Enroll Host runs twice. First {EK Public, AK Public}: the server records the host
 * as enrolling and answers {Host ID, Credential Blob, Encrypted Secret}, a
 * MakeCredential that only the TPM holding that EK and that AK can open. Then {Host
 * ID, Activation Proof = HMAC(secret, host id), Attestation Measurement = a quote
 * of PCRs 0-23 over the proof}: the host is pending, with its PCRs on record for
 * `vmcrypt-kms policy capture`, until an operator approves it. */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include <tss2/tss2_mu.h>

#include "kms/kms.h"
#include "shared/hex.h"
#include "shared/log.h"

#define ENROLL_ALL_PCRS 0xFFFFFFu

bool kms_attest_required(const struct kms_object *o, char *group, size_t size) {
        const struct kms_attr *a = kms_object_find(o, KMS_ATTR_REQUIRE_ATTESTATION, 0);
        if (!a)
                return false;
        if (group) {
                size_t n = a->type == KMS_T_TEXT && a->len < size ? a->len : 0;
                memcpy(group, a->value, n);
                group[n] = '\0';
                if (!*group)
                        snprintf(group, size, "default");
        }
        return true;
}

static int fail_msg(struct kms_op *op, int r, uint32_t reason) {
        op->reason = reason;
        op->message = op->message_buf;
        return r < 0 ? r : -EACCES;
}

int kms_attest_gate(struct kms_op *op, const struct kms_object *o, bool *ret_attested, TPMT_PUBLIC *ret_bk) {
        char group[ATTEST_GROUP_MAX];
        *ret_attested = false;
        if (!kms_attest_required(o, group, sizeof(group)))
                return 0;
        struct kms_attest *at = op->dispatcher->attest;
        if (!at)
                return kms_fail(op, -EACCES, "The key requires attestation, which this server cannot check");
        struct kmip_attestation_credential cred;
        int r = kmip_attestation_credential_parse(op->header ? op->header->authentication : NULL, &cred);
        if (r == -EPROTO)
                return kms_fail(op, -EPROTO, "Malformed Attestation credential");
        if (r == -ENODATA) {
                if (!op->header || !op->header->attestation_capable || kmip_version_cmp(op->v, KMIP_VERSION(1, 2)) < 0)
                        return kms_fail(op, -EACCES,
                                        "The key is released only to attested hosts (KMIP 1.2 TPM Quote attestation); "
                                        "this client did not say it can attest");
                r = kms_attest_nonce_new(at, op->client->cn, o->id, op->nonce_id, op->nonce_value);
                if (r < 0)
                        return kms_fail(op, -EBUSY, "Too many attestations outstanding: retry shortly");
                op->nonce_set = true;
                snprintf(op->message_buf, sizeof(op->message_buf),
                         "Attestation required: quote over the Nonce in the response header");
                return fail_msg(op, -EACCES, KMIP_REASON_ATTESTATION_REQUIRED);
        }
        r = kms_attest_check(at, op->client->cn, o->id, group, &cred, ret_bk, op->message_buf, sizeof(op->message_buf));
        if (r < 0) {
                log_info("attestation refused for %s on %s: %s", op->client->cn, o->id, op->message_buf);
                return fail_msg(op, r == -EIO ? -EIO : -EACCES, r == -EIO ? 0 : KMIP_REASON_ATTESTATION_FAILED);
        }
        *ret_attested = true;
        return 0;
}

/* ---- Enroll Host ---- */

static int enroll_start(struct kms_op *op, struct kms_attest *at) {
        const uint8_t *ek_b, *ak_b;
        size_t ek_n, ak_n;
        if (ttlv_get_bytes(op->req, KMIP_TAG_X_EK_PUBLIC, &ek_b, &ek_n) < 0 ||
            ttlv_get_bytes(op->req, KMIP_TAG_X_AK_PUBLIC, &ak_b, &ak_n) < 0)
                return kms_fail(op, -ENODATA, "Enroll Host needs EK Public and AK Public");
        if (ek_n > ATTEST_PUBLIC_MAX || ak_n > ATTEST_PUBLIC_MAX)
                return kms_fail(op, -EINVAL, "EK or AK public area too large");
        TPMT_PUBLIC ek, ak;
        if (attest_public_parse(ek_b, ek_n, &ek) < 0 || attest_public_parse(ak_b, ak_n, &ak) < 0)
                return kms_fail(op, -EINVAL, "EK Public and AK Public must be marshalled TPM2B_PUBLIC structures");
        char why[ATTEST_ERR_MAX];
        if (attest_check_ak(&ak, why, sizeof(why)) < 0) {
                snprintf(op->message_buf, sizeof(op->message_buf), "AK refused: %s", why);
                return fail_msg(op, -EINVAL, 0);
        }
        TPM2B_NAME name;
        if (attest_name(&ak, &name) < 0)
                return kms_fail(op, -EINVAL, "AK name algorithm is not SHA-256");

        struct attest_host h = { .state = ATTEST_HOST_ENROLLING, .created = kms_now(), .updated = kms_now() };
        const uint8_t *cert = NULL;
        size_t cert_n = 0;
        int cr = ttlv_get_bytes(op->req, KMIP_TAG_X_EK_CERTIFICATE, &cert, &cert_n);
        if (cr == -EPROTO || (cr == 0 && cert_n > sizeof(h.ek_cert)))
                return kms_fail(op, -EINVAL, "EK Certificate must be a DER certificate of at most 4 KiB");
        if (kms_attest_ek_cert(at, &ek, cr == 0 ? cert : NULL, cert_n, &h.ek_cert_state, op->message_buf,
                               sizeof(op->message_buf)) < 0)
                return fail_msg(op, -EACCES, 0);
        if (cr == 0) {
                memcpy(h.ek_cert, cert, cert_n);
                h.ek_cert_size = cert_n;
        }
        char id[KMS_ID_MAX];
        kms_new_id(id);
        snprintf(h.id, sizeof(h.id), "%s", id);
        snprintf(h.cn, sizeof(h.cn), "%s", op->client->cn);
        snprintf(h.group, sizeof(h.group), "default");
        memcpy(h.ek, ek_b, ek_n);
        h.ek_size = ek_n;
        memcpy(h.ak, ak_b, ak_n);
        h.ak_size = ak_n;
        uint8_t fpr[32];
        unsigned fn = sizeof(fpr);
        if (EVP_Digest(ek_b, ek_n, fpr, &fn, EVP_sha256(), NULL) != 1)
                return -EIO;
        hex_encode(fpr, sizeof(fpr), h.ek_fingerprint);

        uint8_t secret[32];
        TPM2B_ID_OBJECT blob;
        TPM2B_ENCRYPTED_SECRET enc;
        if (RAND_bytes(secret, sizeof(secret)) != 1)
                return -EIO;
        int r = attest_make_credential(&ek, &name, secret, sizeof(secret), &blob, &enc);
        if (r < 0) {
                OPENSSL_cleanse(secret, sizeof(secret));
                return kms_fail(op, r == -EOPNOTSUPP ? -EINVAL : r,
                                "EK refused: it must be an RSA-2048 storage key (TCG default EK template)");
        }
        attest_enroll_proof(secret, sizeof(secret), h.id, h.proof);
        OPENSSL_cleanse(secret, sizeof(secret));
        snprintf(op->object_id, sizeof(op->object_id), "%s", h.id);
        r = attest_db_host_put(kms_attest_db(at), &h);
        if (r < 0)
                return kms_fail(op, r, "Could not store the host");

        uint8_t bb[sizeof(blob)], eb[sizeof(enc)];
        size_t bo = 0, eo = 0;
        if (Tss2_MU_TPM2B_ID_OBJECT_Marshal(&blob, bb, sizeof(bb), &bo) != TSS2_RC_SUCCESS ||
            Tss2_MU_TPM2B_ENCRYPTED_SECRET_Marshal(&enc, eb, sizeof(eb), &eo) != TSS2_RC_SUCCESS)
                return -EIO;
        ttlv_add_text(op->a, op->resp, KMIP_TAG_X_HOST_ID, h.id);
        ttlv_add_bytes(op->a, op->resp, KMIP_TAG_X_CREDENTIAL_BLOB, bb, bo);
        ttlv_add_bytes(op->a, op->resp, KMIP_TAG_X_ENCRYPTED_SECRET, eb, eo);
        ttlv_add_text(op->a, op->resp, KMIP_TAG_X_HOST_STATE, attest_host_state_name(h.state));
        return 0;
}

static int enroll_finish(struct kms_op *op, struct kms_attest *at, const char *id) {
        struct attest_host h;
        snprintf(op->object_id, sizeof(op->object_id), "%s", id);
        int r = attest_db_host_get(kms_attest_db(at), id, &h);
        /* Another client's enrolment is as unknown to this one as a missing one. */
        if (r == -ENOENT || (r == 0 && strcmp(h.cn, op->client->cn) != 0))
                return kms_fail(op, -ENOENT, "No enrolment under way with this Host ID: start again");
        if (r < 0)
                return kms_fail(op, r, "Storage failure");
        if (h.state != ATTEST_HOST_ENROLLING)
                return kms_fail(op, -EPERM, "This host has already completed its enrolment");
        const uint8_t *proof, *m;
        size_t pn, mn;
        if (ttlv_get_bytes(op->req, KMIP_TAG_X_ACTIVATION_PROOF, &proof, &pn) < 0 ||
            ttlv_get_bytes(op->req, KMIP_TAG_ATTESTATION_MEASUREMENT, &m, &mn) < 0)
                return kms_fail(op, -ENODATA, "Enroll Host needs Activation Proof and Attestation Measurement");
        if (pn != sizeof(h.proof) || CRYPTO_memcmp(proof, h.proof, sizeof(h.proof)) != 0)
                return kms_fail(op, -EACCES, "Activation proof wrong: the AK is not in the TPM of this EK");
        struct attest_evidence ev;
        if (attest_evidence_parse(m, mn, NULL, 0, &ev) < 0)
                return kms_fail(op, -EINVAL, "Malformed Attestation Measurement");
        TPMT_PUBLIC ak;
        if (attest_public_parse(h.ak, h.ak_size, &ak) < 0)
                return -EIO;
        uint8_t q[ATTEST_DIGEST_SIZE], d[ATTEST_DIGEST_SIZE];
        attest_enroll_qualifier(h.proof, sizeof(h.proof), q);
        TPMS_ATTEST quote;
        char why[ATTEST_ERR_MAX];
        attest_pcr_mask mask;
        r = attest_verify(&ak, ev.quote.attestationData, ev.quote.size, &ev.quote_sig, TPM2_ST_ATTEST_QUOTE, q, sizeof(q),
                          &quote, why, sizeof(why));
        if (r < 0) {
                snprintf(op->message_buf, sizeof(op->message_buf), "Enrolment quote refused: %s", why);
                return fail_msg(op, -EACCES, 0);
        }
        attest_pcr_digest((const uint8_t (*)[ATTEST_DIGEST_SIZE]) ev.pcr_values, ev.n_pcr_values, d);
        if (attest_pcr_mask_of(&quote.attested.quote.pcrSelect, &mask) < 0 || mask != ENROLL_ALL_PCRS ||
            ev.n_pcr_values != ATTEST_PCRS_ALL || quote.attested.quote.pcrDigest.size != sizeof(d) ||
            CRYPTO_memcmp(quote.attested.quote.pcrDigest.buffer, d, sizeof(d)) != 0)
                return kms_fail(op, -EACCES, "Enrolment quote must cover SHA-256 PCRs 0-23 with their values");
        memcpy(h.pcrs, ev.pcr_values, sizeof(h.pcrs));
        h.has_pcrs = true;
        h.has_clock = true;
        h.reset_count = quote.clockInfo.resetCount;
        h.restart_count = quote.clockInfo.restartCount;
        h.state = ATTEST_HOST_PENDING;
        h.updated = kms_now();
        memset(h.proof, 0, sizeof(h.proof));
        r = attest_db_host_put(kms_attest_db(at), &h);
        if (r < 0)
                return kms_fail(op, r, "Could not store the host");
        ttlv_add_text(op->a, op->resp, KMIP_TAG_X_HOST_ID, h.id);
        ttlv_add_text(op->a, op->resp, KMIP_TAG_X_HOST_STATE, attest_host_state_name(h.state));
        return 0;
}

int op_enroll_host(struct kms_op *op) {
        struct kms_attest *at = op->dispatcher->attest;
        if (!at)
                return kms_fail(op, -EOPNOTSUPP, "Host enrolment is not available on this server");
        const char *id;
        int r = ttlv_get_text(op->req, KMIP_TAG_X_HOST_ID, &id, NULL);
        if (r == -ENODATA)
                return enroll_start(op, at);
        if (r < 0 || strlen(id) >= ATTEST_HOST_ID_MAX)
                return kms_fail(op, -EINVAL, "Host ID must be a short Text String");
        return enroll_finish(op, at, id);
}
