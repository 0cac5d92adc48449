/* The quote verifier and its helpers (src/attest) without a TPM: a software "TPM"
 * (an OpenSSL P-256 key as the AK) signs TPMS_ATTEST structures, and every check
 * must catch what it is there for: a signature by another key or over altered
 * bytes, a wrong magic, type or extraData; PCR masks and digests; the PolicyPCR
 * digest (against a vector from tpm2_createpolicy on swtpm); the wire form of the
 * evidence (truncated, padded, oversized); the release key's attributes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <tss2/tss2_mu.h>

#include "attest/attest.h"
#include "shared/hex.h"

struct soft_tpm {
        EVP_PKEY *key;
        TPMT_PUBLIC ak;
};

static void soft_tpm_new(struct soft_tpm *t) {
        t->key = EVP_EC_gen("P-256");
        assert_non_null(t->key);
        uint8_t pt[65];
        size_t n = 0;
        assert_int_equal(EVP_PKEY_get_octet_string_param(t->key, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt), &n), 1);
        assert_int_equal(n, 65);
        t->ak = (TPMT_PUBLIC) {
                .type = TPM2_ALG_ECC,
                .nameAlg = TPM2_ALG_SHA256,
                .objectAttributes = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_FIXEDTPM |
                                    TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH,
                .parameters.eccDetail = { .symmetric.algorithm = TPM2_ALG_NULL,
                                          .scheme = { .scheme = TPM2_ALG_ECDSA, .details.ecdsa.hashAlg = TPM2_ALG_SHA256 },
                                          .curveID = TPM2_ECC_NIST_P256, .kdf.scheme = TPM2_ALG_NULL },
        };
        t->ak.unique.ecc.x.size = t->ak.unique.ecc.y.size = 32;
        memcpy(t->ak.unique.ecc.x.buffer, pt + 1, 32);
        memcpy(t->ak.unique.ecc.y.buffer, pt + 33, 32);
}

/* ECDSA-SHA256 over bytes, as a TPMT_SIGNATURE. */
static void sign_bytes(const struct soft_tpm *t, const uint8_t *buf, size_t n, TPMT_SIGNATURE *sig) {
        EVP_MD_CTX *c = EVP_MD_CTX_new();
        uint8_t der[128];
        size_t dn = sizeof(der);
        assert_int_equal(EVP_DigestSignInit(c, NULL, EVP_sha256(), NULL, t->key), 1);
        assert_int_equal(EVP_DigestSign(c, der, &dn, buf, n), 1);
        EVP_MD_CTX_free(c);
        const uint8_t *p = der;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long) dn);
        assert_non_null(es);
        *sig = (TPMT_SIGNATURE) { .sigAlg = TPM2_ALG_ECDSA };
        sig->signature.ecdsa.hash = TPM2_ALG_SHA256;
        sig->signature.ecdsa.signatureR.size =
                (UINT16) BN_bn2binpad(ECDSA_SIG_get0_r(es), sig->signature.ecdsa.signatureR.buffer, 32);
        sig->signature.ecdsa.signatureS.size =
                (UINT16) BN_bn2binpad(ECDSA_SIG_get0_s(es), sig->signature.ecdsa.signatureS.buffer, 32);
        ECDSA_SIG_free(es);
}

/* Marshal a and sign it as a TPM would. */
static void soft_sign(const struct soft_tpm *t, const TPMS_ATTEST *a, TPM2B_ATTEST *out, TPMT_SIGNATURE *sig) {
        size_t off = 0;
        assert_int_equal(Tss2_MU_TPMS_ATTEST_Marshal(a, out->attestationData, sizeof(out->attestationData), &off), 0);
        out->size = (UINT16) off;
        sign_bytes(t, out->attestationData, off, sig);
}

static const uint8_t qual[32] = { 1, 2, 3 };
static uint8_t pcr_vals[3][32];
static const attest_pcr_mask mask_0_7_16 = (1u << 0) | (1u << 7) | (1u << 16);

static void make_quote(TPMS_ATTEST *a) {
        for (int i = 0; i < 3; i++)
                memset(pcr_vals[i], i, 32);
        *a = (TPMS_ATTEST) { .magic = TPM2_GENERATED_VALUE, .type = TPM2_ST_ATTEST_QUOTE };
        a->extraData.size = sizeof(qual);
        memcpy(a->extraData.buffer, qual, sizeof(qual));
        a->clockInfo.resetCount = 7;
        attest_pcr_selection(mask_0_7_16, &a->attested.quote.pcrSelect);
        a->attested.quote.pcrDigest.size = 32;
        attest_pcr_digest((const uint8_t (*)[32]) pcr_vals, 3, a->attested.quote.pcrDigest.buffer);
}

static void test_quote_verifies(void **state) {
        (void) state;
        struct soft_tpm t;
        soft_tpm_new(&t);
        char err[ATTEST_ERR_MAX];
        assert_int_equal(attest_check_ak(&t.ak, err, sizeof(err)), 0);
        TPMS_ATTEST a, got;
        TPM2B_ATTEST m;
        TPMT_SIGNATURE sig;
        make_quote(&a);
        soft_sign(&t, &a, &m, &sig);
        assert_int_equal(attest_verify(&t.ak, m.attestationData, m.size, &sig, TPM2_ST_ATTEST_QUOTE, qual, sizeof(qual),
                                       &got, err, sizeof(err)),
                         0);
        assert_int_equal(got.clockInfo.resetCount, 7);
        attest_pcr_mask mk;
        assert_int_equal(attest_pcr_mask_of(&got.attested.quote.pcrSelect, &mk), 0);
        assert_int_equal(mk, mask_0_7_16);
        EVP_PKEY_free(t.key);
}

static void test_quote_refusals(void **state) {
        (void) state;
        struct soft_tpm t, other;
        soft_tpm_new(&t);
        soft_tpm_new(&other);
        char err[ATTEST_ERR_MAX];
        TPMS_ATTEST a, got;
        TPM2B_ATTEST m;
        TPMT_SIGNATURE sig;
        make_quote(&a);
        soft_sign(&t, &a, &m, &sig);

        /* Signed by another AK. */
        assert_int_equal(attest_verify(&other.ak, m.attestationData, m.size, &sig, TPM2_ST_ATTEST_QUOTE, qual,
                                       sizeof(qual), &got, err, sizeof(err)),
                         -EKEYREJECTED);
        assert_non_null(strstr(err, "not signed by the AK"));
        /* Altered after signing (the PCR digest's last byte). */
        m.attestationData[m.size - 1] ^= 1;
        assert_int_equal(attest_verify(&t.ak, m.attestationData, m.size, &sig, TPM2_ST_ATTEST_QUOTE, qual, sizeof(qual),
                                       &got, err, sizeof(err)),
                         -EKEYREJECTED);
        m.attestationData[m.size - 1] ^= 1;
        /* Another nonce. */
        uint8_t q2[32] = { 9 };
        assert_int_equal(attest_verify(&t.ak, m.attestationData, m.size, &sig, TPM2_ST_ATTEST_QUOTE, q2, sizeof(q2), &got,
                                       err, sizeof(err)),
                         -EINVAL);
        assert_non_null(strstr(err, "nonce"));
        /* A certification is not a quote. */
        assert_int_equal(attest_verify(&t.ak, m.attestationData, m.size, &sig, TPM2_ST_ATTEST_CERTIFY, qual,
                                       sizeof(qual), &got, err, sizeof(err)),
                         -EINVAL);
        /* Validly signed, but not TPM-made (magic): what a signing key outside a TPM
         * could produce. */
        a.magic = 0x12345678;
        soft_sign(&t, &a, &m, &sig);
        assert_int_equal(attest_verify(&t.ak, m.attestationData, m.size, &sig, TPM2_ST_ATTEST_QUOTE, qual, sizeof(qual),
                                       &got, err, sizeof(err)),
                         -EINVAL);
        assert_non_null(strstr(err, "magic"));
        /* Bytes after the structure, signed with it: still not a TPMS_ATTEST. */
        make_quote(&a);
        soft_sign(&t, &a, &m, &sig);
        m.attestationData[m.size++] = 0;
        sign_bytes(&t, m.attestationData, m.size, &sig);
        assert_int_equal(attest_verify(&t.ak, m.attestationData, m.size, &sig, TPM2_ST_ATTEST_QUOTE, qual, sizeof(qual),
                                       &got, err, sizeof(err)),
                         -EBADMSG);
        EVP_PKEY_free(t.key);
        EVP_PKEY_free(other.key);
}

static void test_ak_attributes(void **state) {
        (void) state;
        struct soft_tpm t;
        soft_tpm_new(&t);
        char err[ATTEST_ERR_MAX];
        TPMT_PUBLIC ak = t.ak;
        ak.objectAttributes &= ~TPMA_OBJECT_RESTRICTED;
        assert_int_equal(attest_check_ak(&ak, err, sizeof(err)), -EINVAL);
        ak = t.ak;
        ak.objectAttributes &= ~TPMA_OBJECT_FIXEDTPM;
        assert_int_equal(attest_check_ak(&ak, err, sizeof(err)), -EINVAL);
        ak = t.ak;
        ak.parameters.eccDetail.curveID = TPM2_ECC_NIST_P384;
        assert_int_equal(attest_check_ak(&ak, err, sizeof(err)), -EINVAL);
        EVP_PKEY_free(t.key);
}

static void test_pcr_masks(void **state) {
        (void) state;
        attest_pcr_mask m;
        char buf[80];
        assert_int_equal(attest_pcr_mask_parse("0,7,16", &m), 0);
        assert_int_equal(m, mask_0_7_16);
        attest_pcr_mask_format(m, buf, sizeof(buf));
        assert_string_equal(buf, "0,7,16");
        const char *bad[] = { "", "24", "1,1", "1,", ",1", "a", "1;2", "-1" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_int_equal(attest_pcr_mask_parse(bad[i], &m), -EINVAL);
        TPML_PCR_SELECTION sel;
        attest_pcr_selection(m, &sel);
        sel.pcrSelections[0].hash = TPM2_ALG_SHA1;
        assert_int_equal(attest_pcr_mask_of(&sel, &m), -EINVAL);
        /* Two banks, one empty: the empty one does not count. */
        attest_pcr_selection(1u << 7, &sel);
        sel.count = 2;
        sel.pcrSelections[1] = (TPMS_PCR_SELECTION) { .hash = TPM2_ALG_SHA1, .sizeofSelect = 3 };
        assert_int_equal(attest_pcr_mask_of(&sel, &m), 0);
        assert_int_equal(m, 1u << 7);
}

/* tpm2_createpolicy --policy-pcr -l sha256:0,7,16 with values 00.., 01.., 02.. */
static void test_pcr_policy_vector(void **state) {
        (void) state;
        uint8_t v[3][32], got[32], want[32];
        for (int i = 0; i < 3; i++)
                memset(v[i], i, 32);
        attest_pcr_policy(mask_0_7_16, (const uint8_t (*)[32]) v, 3, got);
        assert_int_equal(hex_decode("ae667b12267cf57245cc1f271a024cf070b2898bdae6fee5a01f14c5a0a23d1d", want, 32), 0);
        assert_memory_equal(got, want, 32);
}

static void test_evidence_wire(void **state) {
        (void) state;
        struct soft_tpm t;
        soft_tpm_new(&t);
        struct attest_evidence ev = { 0 }, back;
        TPMS_ATTEST a;
        make_quote(&a);
        soft_sign(&t, &a, &ev.quote, &ev.quote_sig);
        ev.n_pcr_values = 3;
        memcpy(ev.pcr_values, pcr_vals, sizeof(pcr_vals));
        ev.bk = t.ak;
        soft_sign(&t, &a, &ev.certify, &ev.certify_sig);
        uint8_t *m, *as;
        size_t mn, an;
        assert_int_equal(attest_evidence_build(&ev, true, &m, &mn, &as, &an), 0);
        assert_int_equal(attest_evidence_parse(m, mn, as, an, &back), 0);
        assert_int_equal(back.n_pcr_values, 3);
        assert_memory_equal(back.pcr_values, pcr_vals, sizeof(pcr_vals));
        assert_int_equal(back.quote.size, ev.quote.size);
        TPM2B_NAME n1, n2;
        assert_int_equal(attest_name(&ev.bk, &n1), 0);
        assert_int_equal(attest_name(&back.bk, &n2), 0);
        assert_memory_equal(n1.name, n2.name, n1.size);
        /* Every truncation and one byte more are refused. */
        for (size_t k = 0; k < mn; k++)
                assert_int_equal(attest_evidence_parse(m, k, as, an, &back), -EBADMSG);
        for (size_t k = 0; k < an; k++)
                assert_int_equal(attest_evidence_parse(m, mn, as, k, &back), -EBADMSG);
        uint8_t *longer = malloc(mn + 1);
        memcpy(longer, m, mn);
        longer[mn] = 0;
        assert_int_equal(attest_evidence_parse(longer, mn + 1, as, an, &back), -EBADMSG);
        /* A PCR count over 24. */
        size_t count_at = mn - 1 - 3 * 34;
        assert_int_equal(m[count_at], 3);
        m[count_at] = 25;
        assert_int_equal(attest_evidence_parse(m, mn, as, an, &back), -EBADMSG);
        free(longer);
        free(m);
        free(as);
        EVP_PKEY_free(t.key);
}

static void test_bk_checks(void **state) {
        (void) state;
        uint8_t policy[32] = { 5 }, other[32] = { 6 };
        TPMT_PUBLIC bk = {
                .type = TPM2_ALG_RSA,
                .nameAlg = TPM2_ALG_SHA256,
                .objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                                    TPMA_OBJECT_DECRYPT,
                .authPolicy = { .size = 32 },
                .parameters.rsaDetail = { .symmetric.algorithm = TPM2_ALG_NULL,
                                          .scheme = { .scheme = TPM2_ALG_OAEP, .details.oaep.hashAlg = TPM2_ALG_SHA256 },
                                          .keyBits = 2048 },
        };
        memcpy(bk.authPolicy.buffer, policy, 32);
        char err[ATTEST_ERR_MAX];
        assert_int_equal(attest_check_bk(&bk, policy, err, sizeof(err)), 0);
        assert_int_equal(attest_check_bk(&bk, other, err, sizeof(err)), -EINVAL);
        TPMT_PUBLIC b = bk;
        b.objectAttributes |= TPMA_OBJECT_USERWITHAUTH;
        assert_int_equal(attest_check_bk(&b, policy, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "userWithAuth"));
        b = bk;
        b.objectAttributes &= ~TPMA_OBJECT_FIXEDTPM;
        assert_int_equal(attest_check_bk(&b, policy, err, sizeof(err)), -EINVAL);
        b = bk;
        b.objectAttributes |= TPMA_OBJECT_SIGN_ENCRYPT;
        assert_int_equal(attest_check_bk(&b, policy, err, sizeof(err)), -EINVAL);
        b = bk;
        b.parameters.rsaDetail.scheme.scheme = TPM2_ALG_RSAES;
        assert_int_equal(attest_check_bk(&b, policy, err, sizeof(err)), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_quote_verifies),   cmocka_unit_test(test_quote_refusals),
                cmocka_unit_test(test_ak_attributes),    cmocka_unit_test(test_pcr_masks),
                cmocka_unit_test(test_pcr_policy_vector), cmocka_unit_test(test_evidence_wire),
                cmocka_unit_test(test_bk_checks),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
