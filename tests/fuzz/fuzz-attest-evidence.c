/* libFuzzer harness for the TPM evidence a client sends (src/attest): input is
 * [2 bytes: measurement length][measurement][assertion]; length 0xFFFF means the
 * rest is one marshalled TPM2B_PUBLIC (an EK or AK at enrolment). Whatever parses
 * goes through what the server does with it: the quote's and certification's
 * TPMS_ATTEST, PCR selection and digest, the release key's name, key and checks. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <tss2/tss2_mu.h>

#include "attest/attest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void attest_struct(const TPM2B_ATTEST *a) {
        TPMS_ATTEST s;
        size_t off = 0;
        if (Tss2_MU_TPMS_ATTEST_Unmarshal(a->attestationData, a->size, &off, &s) != TSS2_RC_SUCCESS)
                return;
        attest_pcr_mask m;
        (void) attest_pcr_mask_of(&s.attested.quote.pcrSelect, &m);
}

static void public_area(const TPMT_PUBLIC *p) {
        char err[ATTEST_ERR_MAX];
        TPM2B_NAME name;
        uint8_t policy[ATTEST_DIGEST_SIZE] = { 0 };
        (void) attest_name(p, &name);
        (void) attest_check_ak(p, err, sizeof(err));
        (void) attest_check_bk(p, policy, err, sizeof(err));
        EVP_PKEY *k = NULL;
        if (attest_pkey(p, &k) == 0)
                EVP_PKEY_free(k);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 2)
                return 0;
        size_t mn = (size_t) data[0] << 8 | data[1];
        if (mn == 0xFFFF) {
                TPMT_PUBLIC p;
                if (attest_public_parse(data + 2, size - 2, &p) == 0)
                        public_area(&p);
                return 0;
        }
        if (mn > size - 2)
                return 0;
        struct attest_evidence ev;
        const uint8_t *as = data + 2 + mn;
        size_t an = size - 2 - mn;
        if (attest_evidence_parse(data + 2, mn, an ? as : NULL, an, &ev) < 0)
                return 0;
        attest_struct(&ev.quote);
        attest_struct(&ev.certify);
        public_area(&ev.bk);
        uint8_t d[ATTEST_DIGEST_SIZE];
        attest_pcr_digest((const uint8_t (*)[ATTEST_DIGEST_SIZE]) ev.pcr_values, ev.n_pcr_values, d);
        /* What parsed marshals back to what was read. */
        uint8_t *m2, *a2;
        size_t m2n, a2n;
        if (attest_evidence_build(&ev, an > 0, &m2, &m2n, &a2, &a2n) == 0) {
                if (m2n != mn || memcmp(m2, data + 2, mn) != 0)
                        abort();
                free(m2);
                free(a2);
        }
        return 0;
}
