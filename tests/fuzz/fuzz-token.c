/* libFuzzer harness for the "vmcrypt" LUKS2 token and LUKS1 sidecar JSON: a token is
 * read from a disk header anyone may have edited. Any text must be rejected or give
 * a valid token whose JSON parses back to the same token. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keys/token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same_bytes(const uint8_t *a, size_t an, const uint8_t *b, size_t bn) {
        return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *text = malloc(size + 1);
        if (!text)
                return 0;
        memcpy(text, data, size);
        text[size] = 0;

        struct vmcrypt_token *t = NULL;
        if (token_from_json(text, &t) == 0) {
                if (token_validate(t) != 0)
                        abort();
                char *json = NULL;
                struct vmcrypt_token *t2 = NULL;
                if (token_to_json(t, &json) != 0 || token_from_json(json, &t2) != 0)
                        abort();
                if (t2->keyslot != t->keyslot || strcmp(t2->kek_id, t->kek_id) != 0 ||
                    !same_bytes(t->wrapped, t->wrapped_size, t2->wrapped, t2->wrapped_size))
                        abort();
                token_free(t2);
                free(json);
                token_free(t);
        }
        free(text);
        return 0;
}
