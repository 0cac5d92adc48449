/* TPM 2.0 attestation without a TPM: what the key server needs to check a host's
 * evidence, and what both sides need to agree on. It unmarshals TPM structures with
 * libtss2-mu and does the cryptography with OpenSSL:
 *   - object names (nameAlg || H(TPMT_PUBLIC)) and public keys as EVP_PKEYs;
 *   - a software TPM2_MakeCredential to an RSA EK (enrolment: proves that the AK
 *     lives in the same TPM as the EK);
 *   - the PolicyPCR digest of a PCR selection and its values;
 *   - quote and certify verification (signature by the AK, magic, type, extraData);
 *   - the wire form of the evidence carried in a KMIP Attestation credential.
 * No Esys here: the host side (src/tpm) builds on this, the server uses it alone.
 * Every function returns 0 or a negative errno; verifiers say what failed in a
 * caller-supplied buffer, one line, for the client and the audit log. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <tss2/tss2_tpm2_types.h>

#define ATTEST_DIGEST_SIZE 32 /* everything here is SHA-256 */
#define ATTEST_MAX_PCRS 24
#define ATTEST_ERR_MAX 256

/* A PCR set in the SHA-256 bank: bit i = PCR i. */
typedef uint32_t attest_pcr_mask;

/* Name of a public area: 0x000B || SHA-256(marshalled TPMT_PUBLIC). */
int attest_name(const TPMT_PUBLIC *pub, TPM2B_NAME *ret);
/* The public key of an RSA or ECC (NIST P-256) public area. */
int attest_pkey(const TPMT_PUBLIC *pub, EVP_PKEY **ret);
/* Parse a marshalled TPM2B_PUBLIC (the whole buffer, nothing after it). */
int attest_public_parse(const uint8_t *buf, size_t size, TPMT_PUBLIC *ret);
/* Marshal pub as a TPM2B_PUBLIC into a malloc'ed buffer. */
int attest_public_marshal(const TPMT_PUBLIC *pub, uint8_t **ret, size_t *ret_size);

/* A TPM selection of mask in the SHA-256 bank (and only that bank). */
void attest_pcr_selection(attest_pcr_mask mask, TPML_PCR_SELECTION *ret);
/* The mask of a selection; -EINVAL when it selects anything outside SHA-256 or
 * beyond PCR 23, or selects one bank twice. */
int attest_pcr_mask_of(const TPML_PCR_SELECTION *sel, attest_pcr_mask *ret);
/* SHA-256 of the values of the selected PCRs, in PCR order (values[i] for the i-th
 * set bit): the pcrDigest of a quote. */
void attest_pcr_digest(const uint8_t (*values)[ATTEST_DIGEST_SIZE], size_t n, uint8_t ret[static ATTEST_DIGEST_SIZE]);
/* PolicyPCR digest from an empty policy: what a key's authPolicy is when it may be
 * used only while the selected PCRs hold these values. */
void attest_pcr_policy(attest_pcr_mask mask, const uint8_t (*values)[ATTEST_DIGEST_SIZE], size_t n,
                       uint8_t ret[static ATTEST_DIGEST_SIZE]);
/* "0,7,16" <-> mask. parse: -EINVAL on anything else (empty, >23, repeats). */
int attest_pcr_mask_parse(const char *s, attest_pcr_mask *ret);
void attest_pcr_mask_format(attest_pcr_mask mask, char *buf, size_t size);
static inline size_t attest_pcr_count(attest_pcr_mask m) {
        return (size_t) __builtin_popcount(m);
}

/* TPM2_MakeCredential in software, to an RSA-2048 storage EK (AES-128-CFB,
 * nameAlg SHA-256): wraps secret (1..32 bytes) so that only the TPM holding the EK
 * and an object called name can recover it (TPM2_ActivateCredential). */
int attest_make_credential(const TPMT_PUBLIC *ek, const TPM2B_NAME *name, const uint8_t *secret, size_t secret_size,
                           TPM2B_ID_OBJECT *ret_blob, TPM2B_ENCRYPTED_SECRET *ret_secret);

/* An AK fit to sign attestations: a restricted signing key that never leaves its
 * TPM and was made inside it (fixedTPM, fixedParent, sensitiveDataOrigin), SHA-256,
 * RSA-2048 or ECC P-256. */
int attest_check_ak(const TPMT_PUBLIC *ak, char *err, size_t errlen);

/* Verify a TPMS_ATTEST (marshalled, as signed) and its TPMT_SIGNATURE with ak, and
 * that it is a genuine TPM-made structure of the given type (TPM_ST_ATTEST_*) over
 * extra_data. The parsed structure in ret. -EBADMSG when malformed, -EKEYREJECTED
 * when the signature does not verify, -EINVAL for a wrong type or extraData. */
int attest_verify(const TPMT_PUBLIC *ak, const uint8_t *attest, size_t attest_size, const TPMT_SIGNATURE *sig,
                  TPMI_ST_ATTEST type, const uint8_t *extra_data, size_t extra_size, TPMS_ATTEST *ret,
                  char *err, size_t errlen);

/* The evidence of one attested request. In the KMIP Attestation credential:
 *   Attestation Measurement = TPM2B_ATTEST quote || TPMT_SIGNATURE || UINT8 n ||
 *                             n x TPM2B_DIGEST (the quoted PCR values, PCR order)
 *   Attestation Assertion   = TPM2B_PUBLIC BK || TPM2B_ATTEST certify(BK by AK) ||
 *                             TPMT_SIGNATURE
 * BK is the TPM-resident key the released secret is wrapped to. */
struct attest_evidence {
        TPM2B_ATTEST quote;
        TPMT_SIGNATURE quote_sig;
        uint8_t pcr_values[ATTEST_MAX_PCRS][ATTEST_DIGEST_SIZE];
        size_t n_pcr_values;
        TPMT_PUBLIC bk;
        TPM2B_ATTEST certify;
        TPMT_SIGNATURE certify_sig;
};

/* Parse measurement and assertion (untrusted bytes: exact lengths, bounded). The
 * assertion may be absent (NULL) for enrolment quotes. -EBADMSG when malformed. */
int attest_evidence_parse(const uint8_t *measurement, size_t m_size, const uint8_t *assertion, size_t a_size,
                          struct attest_evidence *ret);
/* Marshal ev into two malloc'ed buffers; with_assertion false: measurement only. */
int attest_evidence_build(const struct attest_evidence *ev, bool with_assertion, uint8_t **ret_m, size_t *ret_m_size,
                          uint8_t **ret_a, size_t *ret_a_size);

/* The qualifying data of a release quote and certify: SHA-256 over a label, the
 * server's nonce, the object asked for and the BK's name, so that evidence made for
 * one request, object or key is useless for another. */
void attest_release_qualifier(const uint8_t *nonce, size_t nonce_size, const char *uid, const TPM2B_NAME *bk_name,
                              uint8_t ret[static ATTEST_DIGEST_SIZE]);
/* The qualifying data of the enrolment quote: SHA-256(label || credential secret). */
void attest_enroll_qualifier(const uint8_t *secret, size_t size, uint8_t ret[static ATTEST_DIGEST_SIZE]);
/* The enrolment proof: HMAC-SHA-256(secret, label || host id). */
void attest_enroll_proof(const uint8_t *secret, size_t size, const char *host_id, uint8_t ret[static ATTEST_DIGEST_SIZE]);

/* A BK fit to receive a released secret: an RSA-2048 decryption key that never
 * leaves its TPM, is not restricted, cannot be used with its password
 * (userWithAuth clear: else an empty password bypasses the policy) and whose
 * authPolicy is policy (the PolicyPCR digest of the golden values). */
int attest_check_bk(const TPMT_PUBLIC *bk, const uint8_t policy[static ATTEST_DIGEST_SIZE], char *err, size_t errlen);
/* RSAES-OAEP-SHA-256 (empty label) of plain to bk's key: what TPM2_RSA_Decrypt in
 * the host's TPM undoes. *ret malloc'ed. */
int attest_wrap_to_bk(const TPMT_PUBLIC *bk, const uint8_t *plain, size_t size, uint8_t **ret, size_t *ret_size);
