/* The host's TPM, as the trusted key provider uses it (libtss2-esys over a TCTI
 * named in the configuration: "swtpm:host=127.0.0.1,port=2321" in tests,
 * "device:/dev/tpmrm0" in production).
 *
 * All keys are primary keys or children of one, made again from fixed templates
 * on every open, so the host keeps no TPM files: the EK (RSA-2048, the TCG
 * template, so it matches an EK certificate), the AK (an ECC P-256 restricted
 * signing key in the endorsement hierarchy) and an SRK (ECC P-256 storage key). The BK,
 * the key a released secret is wrapped to, is a fresh RSA-2048 decryption key
 * under the SRK that the TPM uses only while the chosen PCRs hold the values they
 * held when it was made (PolicyPCR, no password use); it is kept for the next
 * release while those values stay. Every handle is flushed when the handle is
 * freed: a bare swtpm has no resource manager. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "attest/attest.h"
#include "shared/secret.h"

struct tpm;

/* Connect through tcti and start; err says what failed (-ENODEV: no TPM there). */
int tpm_open(const char *tcti, struct tpm **ret, char *err, size_t errlen);
/* Flush every loaded handle and disconnect; NULL is fine. */
void tpm_free(struct tpm *t);
static inline void tpm_freep(struct tpm **t) {
        tpm_free(*t);
}

/* The last TSS error as text ("" when none). */
const char *tpm_error(const struct tpm *t);

/* The public areas of the EK and the AK (creating them on first use). */
int tpm_identity(struct tpm *t, TPMT_PUBLIC *ret_ek, TPMT_PUBLIC *ret_ak);
/* The certificate of the RSA EK its manufacturer stored in NV (index 0x01c00002),
 * DER, malloc'ed; -ENOENT when the TPM has none. */
int tpm_ek_certificate(struct tpm *t, uint8_t **ret, size_t *ret_size);
/* TPM2_ActivateCredential of what attest_make_credential made for our AK. */
int tpm_activate(struct tpm *t, const TPM2B_ID_OBJECT *blob, const TPM2B_ENCRYPTED_SECRET *secret,
                 struct secret **ret);
/* Quote the SHA-256 PCRs in mask over qualifier with the AK, and read their
 * values: fills ev->quote, quote_sig, pcr_values and n_pcr_values. */
int tpm_quote(struct tpm *t, attest_pcr_mask mask, const uint8_t *qualifier, size_t size, struct attest_evidence *ev);
/* The evidence of one release: make a BK bound to the current values of the PCRs in
 * mask, then quote those PCRs and certify the BK with the AK, both over
 * attest_release_qualifier(nonce, uid, name(BK)). The BK stays loaded for
 * tpm_release_decrypt. */
int tpm_release_evidence(struct tpm *t, attest_pcr_mask mask, const uint8_t *nonce, size_t nonce_size, const char *uid,
                         struct attest_evidence *ev);
/* Keep release keys in dir (created by the caller, 0700) so that the next process
 * loads one instead of making one (RSA key generation is most of what a release
 * costs the TPM); NULL: only for the life of this handle. */
void tpm_set_bk_cache(struct tpm *t, const char *dir);
/* Decrypt what the server wrapped to the BK (inside the TPM, under its PCR policy). */
int tpm_release_decrypt(struct tpm *t, const uint8_t *wrapped, size_t size, struct secret **ret);
