/* libFuzzer harness for the attestation fields of a request (src/kmip/message.c):
 * Attestation Capable Indicator and Types in the header, the Attestation credential
 * in its Authentication, and the evidence inside that credential (src/attest), as
 * the server reads them before it checks anything. */
#include <stdint.h>
#include <stdlib.h>

#include "attest/attest.h"
#include "kmip/message.h"
#include "kmip/tags.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct ttlv_arena *a = ttlv_arena_new();
        if (!a)
                return 0;
        struct kmip_message m;
        struct kmip_attestation_credential c;
        if (kmip_request_parse(a, data, size, NULL, &m) == 0 &&
            kmip_attestation_credential_parse(m.header.authentication, &c) == 0) {
                if (c.nonce_id_size == 0 || c.nonce_id_size > KMIP_NONCE_MAX || c.nonce_value_size == 0 ||
                    c.nonce_value_size > KMIP_NONCE_MAX)
                        abort(); /* the parser promised bounds */
                struct attest_evidence ev;
                if (c.measurement)
                        (void) attest_evidence_parse(c.measurement, c.measurement_size, c.assertion, c.assertion_size,
                                                     &ev);
                /* What parsed is built again into an Authentication. */
                struct ttlv *auth = ttlv_add_structure(a, NULL, KMIP_TAG_AUTHENTICATION);
                (void) kmip_attestation_credential_add(a, auth, &c);
        }
        ttlv_arena_free(a);
        return 0;
}
