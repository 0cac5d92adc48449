/* vmcrypt's metadata area in LUKS1 headers: see luks1-meta.h. */
#include "disk/luks1-meta.h"

#include <errno.h>
#include <fcntl.h>
#include <libcryptsetup.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "disk/testpoint.h"
#include "shared/fd-util.h"
#include "shared/macro.h"

static const uint8_t meta_magic[8] = { 'V', 'M', 'C', 'R', 'Y', 'P', 'T', 'M' };
#define META_VERSION 1U
/* Record layout, big-endian: magic[8] @0, version u32 @8, text length u32 @12,
 * seq u64 @16, own offset u64 @24, uuid[40] @32, sha256[32] @72, text @104. The
 * checksum covers the whole copy with the checksum field zeroed. */
#define OFF_VERSION 8
#define OFF_LEN 12
#define OFF_SEQ 16
#define OFF_SELF 24
#define OFF_UUID 32
#define UUID_LEN 40
#define OFF_CSUM 72

static uint32_t get_be32(const uint8_t *p) {
        return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

static uint64_t get_be64(const uint8_t *p) {
        return (uint64_t) get_be32(p) << 32 | get_be32(p + 4);
}

static void put_be32(uint8_t *p, uint32_t v) {
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t) (v >> (24 - 8 * i));
}

static void put_be64(uint8_t *p, uint64_t v) {
        put_be32(p, (uint32_t) (v >> 32));
        put_be32(p + 4, (uint32_t) v);
}

static void copy_csum(const uint8_t *copy, uint8_t out[static 32]) {
        uint8_t tmp[LUKS1_META_COPY];
        memcpy(tmp, copy, sizeof(tmp));
        memset(tmp + OFF_CSUM, 0, 32);
        SHA256(tmp, sizeof(tmp), out);
}

static bool uuid_matches(const uint8_t *field, const char *uuid) {
        uint8_t want[UUID_LEN] = { 0 };
        if (uuid)
                memcpy(want, uuid, MIN(strlen(uuid), sizeof(want)));
        return memcmp(field, want, UUID_LEN) == 0;
}

/* 1 when the copy is ours for this header (magic and UUID), with *ret_valid telling
 * whether it is whole; 0 when it is someone else's bytes. */
static int copy_check(const uint8_t *copy, uint64_t self, const char *uuid, bool *ret_valid) {
        *ret_valid = false;
        if (memcmp(copy, meta_magic, sizeof(meta_magic)) != 0 || !uuid_matches(copy + OFF_UUID, uuid))
                return 0;
        uint8_t csum[32];
        copy_csum(copy, csum);
        uint32_t len = get_be32(copy + OFF_LEN);
        /* Every field is checked against what the reader knows, not trusted: a
         * length past the copy or an offset that is not where the copy was read
         * makes the copy invalid, whatever its checksum says. */
        *ret_valid = CRYPTO_memcmp(csum, copy + OFF_CSUM, 32) == 0 && get_be32(copy + OFF_VERSION) == META_VERSION &&
                     len <= LUKS1_META_TEXT_MAX && get_be64(copy + OFF_SELF) == self &&
                     memchr(copy + LUKS1_META_RECORD, 0, len) == NULL;
        return 1;
}

int luks1_meta_parse(const uint8_t *buf, size_t len, uint64_t off, const char *uuid, char **ret_text,
                     uint64_t *ret_seq, int *ret_copy) {
        int best = -1, ours = 0;
        uint64_t best_seq = 0;
        for (int i = 0; i < 2; i++) {
                size_t at = (size_t) i * LUKS1_META_COPY;
                if (len < at + LUKS1_META_COPY)
                        break;
                bool valid;
                ours += copy_check(buf + at, off + at, uuid, &valid);
                if (!valid)
                        continue;
                uint64_t seq = get_be64(buf + at + OFF_SEQ);
                if (best < 0 || seq > best_seq) {
                        best = i;
                        best_seq = seq;
                }
        }
        if (best < 0)
                return ours ? -EBADMSG : -ENODATA;
        const uint8_t *copy = buf + (size_t) best * LUKS1_META_COPY;
        uint32_t n = get_be32(copy + OFF_LEN);
        char *text = malloc((size_t) n + 1);
        if (!text)
                return -ENOMEM;
        memcpy(text, copy + LUKS1_META_RECORD, n);
        text[n] = 0;
        *ret_text = text;
        if (ret_seq)
                *ret_seq = best_seq;
        if (ret_copy)
                *ret_copy = best;
        return 0;
}

int luks1_meta_locate(struct crypt_device *cd, uint64_t *ret_off) {
        const char *type = crypt_get_type(cd);
        if (!type || strcmp(type, CRYPT_LUKS1) != 0 || crypt_header_is_detached(cd) > 0)
                return -ENOTSUP;
        uint64_t region = crypt_get_data_offset(cd) * 512;
        if (region < LUKS1_META_TAIL + LUKS1_META_SIZE)
                return region == 0 ? -ENOTSUP : -ENOSPC;
        uint64_t start = region - LUKS1_META_TAIL - LUKS1_META_SIZE;
        uint64_t end = region - LUKS1_META_TAIL;
        int max = crypt_keyslot_max(CRYPT_LUKS1);
        for (int s = 0; s < max; s++) {
                uint64_t o = 0, l = 0;
                if (crypt_keyslot_area(cd, s, &o, &l) < 0)
                        return -EINVAL;
                if (o < end && start < o + l)
                        return -ENOSPC;
        }
        /* The binary header itself (592 bytes at 0) is below every keyslot. */
        if (start < 4096)
                return -ENOSPC;
        *ret_off = start;
        return 0;
}

static const char *meta_device(struct crypt_device *cd) {
        return crypt_get_device_name(cd);
}

static int read_area(int fd, uint64_t off, uint8_t *buf) {
        return pread_full(fd, buf, LUKS1_META_SIZE, (off_t) off);
}

int luks1_meta_read(struct crypt_device *cd, char **ret_text) {
        uint64_t off;
        int r = luks1_meta_locate(cd, &off);
        if (r < 0)
                return r;
        const char *dev = meta_device(cd);
        if (!dev)
                return -EINVAL;
        _cleanup_(closep) int fd = open(dev, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        _cleanup_(freep) uint8_t *buf = malloc(LUKS1_META_SIZE);
        if (!buf)
                return -ENOMEM;
        r = read_area(fd, off, buf);
        if (r == -EIO)
                return -ENODATA; /* a file shorter than its header: nothing stored there */
        if (r < 0)
                return r;
        return luks1_meta_parse(buf, LUKS1_META_SIZE, off, crypt_get_uuid(cd), ret_text, NULL, NULL);
}

int luks1_meta_write(struct crypt_device *cd, const char *text) {
        size_t n = strlen(text);
        if (n > LUKS1_META_TEXT_MAX)
                return -E2BIG;
        uint64_t off;
        int r = luks1_meta_locate(cd, &off);
        if (r < 0)
                return r;
        const char *dev = meta_device(cd);
        const char *uuid = crypt_get_uuid(cd);
        if (!dev || !uuid)
                return -EINVAL;
        _cleanup_(closep) int fd = open(dev, O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        _cleanup_(freep) uint8_t *buf = calloc(1, LUKS1_META_SIZE);
        if (!buf)
                return -ENOMEM;
        /* The next generation goes into the copy that does not hold the newest
         * valid one: until it is whole, a reader still finds the old document. */
        uint64_t seq = 0;
        int cur = -1;
        _cleanup_(freep) char *old = NULL;
        r = read_area(fd, off, buf);
        if (r == 0)
                r = luks1_meta_parse(buf, LUKS1_META_SIZE, off, uuid, &old, &seq, &cur);
        if (r < 0 && r != -ENODATA && r != -EBADMSG && r != -EIO)
                return r;
        int target = cur == 0 ? 1 : 0;
        uint8_t *copy = buf + (size_t) target * LUKS1_META_COPY;
        uint64_t self = off + (uint64_t) target * LUKS1_META_COPY;
        memset(copy, 0, LUKS1_META_COPY);
        memcpy(copy, meta_magic, sizeof(meta_magic));
        put_be32(copy + OFF_VERSION, META_VERSION);
        put_be32(copy + OFF_LEN, (uint32_t) n);
        put_be64(copy + OFF_SEQ, seq + 1);
        put_be64(copy + OFF_SELF, self);
        memcpy(copy + OFF_UUID, uuid, MIN(strlen(uuid), (size_t) UUID_LEN));
        memcpy(copy + LUKS1_META_RECORD, text, n);
        copy_csum(copy, copy + OFF_CSUM);
        /* The body first, then the sector that holds magic, sequence and checksum,
         * each flushed: a crash between them leaves a copy whose checksum fails
         * (the crash tests stop there, at luks1-meta-half). A real crash may tear
         * the copy anywhere; the checksum covers every byte of it either way. */
        if ((r = pwrite_full(fd, copy + 512, LUKS1_META_COPY - 512, (off_t) (self + 512))) < 0)
                return r;
        if (fdatasync(fd) < 0)
                return -errno;
        testpoint("luks1-meta-half");
        if ((r = pwrite_full(fd, copy, 512, (off_t) self)) < 0)
                return r;
        if (fdatasync(fd) < 0)
                return -errno;
        testpoint("luks1-meta-written");
        return 0;
}
