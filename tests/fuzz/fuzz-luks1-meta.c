/* libFuzzer harness for the parser of vmcrypt's LUKS1 metadata area: the bytes sit
 * in a LUKS1 header anyone with the image may have edited, and the reader must
 * survive hostile lengths, offsets, sequence numbers and UUIDs.
 *
 * Input: offset (8 bytes, big-endian) | flags (1) | UUID (40) | area bytes. The
 * offset is where the area claims to have been read. With flags bit 0 set the
 * harness seals each whole copy with a correct checksum first, so that the fuzzer
 * reaches the checks behind the checksum (length, version, own offset, NUL bytes)
 * instead of stopping at SHA-256. A document that parses must be a NUL-terminated
 * string no longer than a copy can hold. */
#include <openssl/sha.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "disk/luks1-meta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CSUM_OFF 72 /* the record's checksum field (luks1-meta.c) */

static void seal(uint8_t *copy) {
        memset(copy + CSUM_OFF, 0, 32);
        uint8_t md[32];
        SHA256(copy, LUKS1_META_COPY, md);
        memcpy(copy + CSUM_OFF, md, 32);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 49)
                return 0;
        uint64_t off = 0;
        for (int i = 0; i < 8; i++)
                off = off << 8 | data[i];
        uint8_t flags = data[8];
        char uuid[41];
        memcpy(uuid, data + 9, 40);
        uuid[40] = 0;
        size_t len = size - 49;
        uint8_t *buf = malloc(len ? len : 1);
        if (!buf)
                return 0;
        memcpy(buf, data + 49, len);
        if (flags & 1)
                for (size_t at = 0; at + LUKS1_META_COPY <= len && at < LUKS1_META_SIZE; at += LUKS1_META_COPY)
                        seal(buf + at);
        char *text = NULL;
        uint64_t seq = 0;
        int copy = -1;
        int r = luks1_meta_parse(buf, len, off, (flags & 2) ? NULL : uuid, &text, &seq, &copy);
        if (r == 0) {
                if (!text || strlen(text) > LUKS1_META_TEXT_MAX || (copy != 0 && copy != 1) ||
                    (size_t) (copy + 1) * LUKS1_META_COPY > len)
                        abort();
                free(text);
        } else if (text) {
                abort();
        }
        free(buf);
        return 0;
}
