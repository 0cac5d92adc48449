/* libFuzzer harness for the TTLV decoder: any input either fails cleanly or decodes
 * to a tree that encodes back to exactly the same bytes and prints without fault. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kmip/ttlv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static struct ttlv_arena *a;
        if (!a && !(a = ttlv_arena_new()))
                abort();
        ttlv_arena_reset(a);

        struct ttlv *t;
        if (ttlv_decode(a, data, size, NULL, &t) < 0)
                return 0;

        /* The codec is canonical: what decodes must re-encode bit for bit. */
        uint8_t *buf;
        size_t n;
        if (ttlv_encode_alloc(t, &buf, &n) < 0)
                abort();
        if (n != size || memcmp(buf, data, size) != 0)
                abort();
        ttlv_buffer_free(buf, n);

        char dump[4096];
        (void) ttlv_format(t, dump, sizeof(dump));
        return 0;
}
