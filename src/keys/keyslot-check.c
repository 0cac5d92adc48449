/* Fast LUKS2 keyslot check: see keyslot-check.h. The layout follows the LUKS2
 * on-disk format specification (keyslot area, luks1 anti-forensic split, pbkdf2
 * digest); tests/unit/test-keyslot-check.c compares every verdict with
 * libcryptsetup's. */
#include "keys/keyslot-check.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto/xts.h"
#include "shared/b64.h"
#include "shared/fd-util.h"
#include "shared/log.h"

#define SECTOR 512
#define MAX_KEY 64
#define MAX_STRIPES 4000
#define MAX_ITERATIONS 10000000

/* A JSON value that LUKS2 stores as a decimal string (u64) or number. */
static int json_u64(json_t *v, uint64_t *ret) {
        if (json_is_integer(v) && json_integer_value(v) >= 0) {
                *ret = (uint64_t) json_integer_value(v);
                return 0;
        }
        const char *s = json_string_value(v);
        if (!s || !*s)
                return -EBADMSG;
        char *end = NULL;
        errno = 0;
        unsigned long long x = strtoull(s, &end, 10);
        if (errno || *end || s[0] == '-')
                return -EBADMSG;
        *ret = x;
        return 0;
}

static int streq(json_t *v, const char *s) {
        return json_is_string(v) && strcmp(json_string_value(v), s) == 0;
}

/* H(be32(i) || chunk) for each digest-sized chunk of block, in place: the
 * diffusion step of the anti-forensic merge. */
static int diffuse(EVP_MD_CTX *ctx, const EVP_MD *md, uint8_t *block, size_t n) {
        size_t ds = (size_t) EVP_MD_get_size(md);
        uint8_t out[EVP_MAX_MD_SIZE];
        for (size_t i = 0, off = 0; off < n; i++, off += ds) {
                size_t len = MIN(ds, n - off);
                uint8_t be[4] = { (uint8_t) (i >> 24), (uint8_t) (i >> 16), (uint8_t) (i >> 8), (uint8_t) i };
                unsigned olen = 0;
                if (EVP_DigestInit_ex(ctx, md, NULL) != 1 || EVP_DigestUpdate(ctx, be, 4) != 1 ||
                    EVP_DigestUpdate(ctx, block + off, len) != 1 || EVP_DigestFinal_ex(ctx, out, &olen) != 1)
                        return -EIO;
                memcpy(block + off, out, len);
        }
        OPENSSL_cleanse(out, sizeof(out));
        return 0;
}

/* vk = merge of stripes (each key_size bytes) with hash md_name. The digest is
 * fetched once: passing a legacy EVP_MD to EVP_DigestInit_ex would make OpenSSL 3
 * look it up again for each of the thousands of small hashes. */
static int af_merge(const uint8_t *src, size_t key_size, size_t stripes, const char *md_name, uint8_t *vk) {
        EVP_MD *md = EVP_MD_fetch(NULL, md_name, NULL);
        EVP_MD_CTX *ctx = md ? EVP_MD_CTX_new() : NULL;
        if (!ctx) {
                EVP_MD_free(md);
                return -ENOMEM;
        }
        int r = 0;
        memset(vk, 0, key_size);
        for (size_t s = 0; s < stripes - 1 && r >= 0; s++) {
                for (size_t j = 0; j < key_size; j++)
                        vk[j] ^= src[s * key_size + j];
                r = diffuse(ctx, md, vk, key_size);
        }
        for (size_t j = 0; j < key_size; j++)
                vk[j] ^= src[(stripes - 1) * key_size + j];
        EVP_MD_CTX_free(ctx);
        EVP_MD_free(md);
        return r;
}

/* aes-xts-plain64 decryption of the keyslot area: 512-byte sectors, the IV is the
 * sector number counted from the start of the area (crypto/xts with offset 0). */
static int area_decrypt(const uint8_t *key, size_t key_size, const uint8_t *in, uint8_t *out, size_t n) {
        _cleanup_(secret_freep) struct secret *k = secret_new_copy(key, key_size);
        if (!k)
                return -ENOMEM;
        _cleanup_(xts_freep) struct xts_ctx *x = NULL;
        int r = xts_new(k, &x);
        if (r < 0)
                return log_debug_errno(-EOPNOTSUPP, "keyslot check: no XTS for %zu-byte keys", key_size);
        memcpy(out, in, n);
        return xts_decrypt(x, out, n, SECTOR, 0);
}

int keyslot_check(struct crypt_device *cd, int keyslot, const struct secret *secret) {
        const char *type = crypt_get_type(cd);
        if (!type || strcmp(type, CRYPT_LUKS2) != 0)
                return log_debug_errno(-EOPNOTSUPP, "keyslot check: %s is not LUKS2", type ? type : "(unknown)");
        const char *text = NULL;
        if (crypt_dump_json(cd, &text, 0) < 0 || !text)
                return log_debug_errno(-EOPNOTSUPP, "keyslot check: no JSON metadata");
        json_auto_t *root = json_loads(text, 0, NULL);
        char id[16];
        snprintf(id, sizeof(id), "%d", keyslot);
        json_t *ks = json_object_get(json_object_get(root, "keyslots"), id);
        if (!ks)
                return -ENOENT;
        json_t *af = json_object_get(ks, "af"), *area = json_object_get(ks, "area"), *kdf = json_object_get(ks, "kdf");
        /* Only the kind vmcrypt writes; everything else goes to libcryptsetup. */
        if (!streq(json_object_get(ks, "type"), "luks2") || !streq(json_object_get(af, "type"), "luks1") ||
            !streq(json_object_get(area, "type"), "raw") || !streq(json_object_get(area, "encryption"), "aes-xts-plain64") ||
            !streq(json_object_get(kdf, "type"), "pbkdf2"))
                return log_debug_errno(-EOPNOTSUPP, "keyslot check: keyslot %d is of another kind", keyslot);
        uint64_t key_size, stripes, off, size, akey, iters;
        if (json_u64(json_object_get(ks, "key_size"), &key_size) < 0 || json_u64(json_object_get(af, "stripes"), &stripes) < 0 ||
            json_u64(json_object_get(area, "offset"), &off) < 0 || json_u64(json_object_get(area, "size"), &size) < 0 ||
            json_u64(json_object_get(area, "key_size"), &akey) < 0 ||
            json_u64(json_object_get(kdf, "iterations"), &iters) < 0)
                return -EBADMSG;
        const EVP_MD *af_md = EVP_get_digestbyname(json_string_value(json_object_get(af, "hash")) ?: "");
        const EVP_MD *kdf_md = EVP_get_digestbyname(json_string_value(json_object_get(kdf, "hash")) ?: "");
        if (!af_md || !kdf_md || key_size == 0 || key_size > MAX_KEY || stripes == 0 || stripes > MAX_STRIPES ||
            (akey != 32 && akey != 64) || iters == 0 || iters > MAX_ITERATIONS)
                return log_debug_errno(-EOPNOTSUPP, "keyslot check: unusual parameters in keyslot %d", keyslot);
        size_t material = ALIGN_UP(key_size * stripes, SECTOR);
        if (material > size)
                return -EBADMSG;

        /* The digest that covers this keyslot. */
        json_t *dg = NULL;
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(root, "digests"), k, v) {
                size_t i;
                json_t *s;
                json_array_foreach(json_object_get(v, "keyslots"), i, s)
                        if (streq(s, id))
                                dg = v;
        }
        uint64_t diters;
        uint8_t salt[64], want[64];
        const EVP_MD *dmd = dg ? EVP_get_digestbyname(json_string_value(json_object_get(dg, "hash")) ?: "") : NULL;
        _cleanup_(freep) uint8_t *dsalt = NULL, *dwant = NULL;
        size_t dsalt_n = 0, dwant_n = 0;
        if (!dg || !streq(json_object_get(dg, "type"), "pbkdf2") || !dmd ||
            json_u64(json_object_get(dg, "iterations"), &diters) < 0 || diters == 0 || diters > MAX_ITERATIONS ||
            b64_decode(json_string_value(json_object_get(dg, "salt")), sizeof(salt), &dsalt, &dsalt_n) < 0 ||
            b64_decode(json_string_value(json_object_get(dg, "digest")), sizeof(want), &dwant, &dwant_n) < 0)
                return log_debug_errno(-EOPNOTSUPP, "keyslot check: no usable pbkdf2 digest for keyslot %d", keyslot);
        _cleanup_(freep) uint8_t *ksalt = NULL;
        size_t ksalt_n = 0;
        if (b64_decode(json_string_value(json_object_get(kdf, "salt")), 64, &ksalt, &ksalt_n) < 0)
                return -EBADMSG;

        /* Read the keyslot area from the header device. */
        /* The header lives on the metadata device when detached, else in front of the data. */
        const char *dev = crypt_get_metadata_device_name(cd);
        if (!dev)
                dev = crypt_get_device_name(cd);
        if (!dev)
                return log_debug_errno(-EOPNOTSUPP, "keyslot check: no metadata device");
        _cleanup_(closep) int fd = open(dev, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        /* The decrypted stripes are the volume key in disguise: locked, wiped memory. */
        _cleanup_(secret_freep) struct secret *plain_s = secret_new(material);
        uint8_t *enc = malloc(material), *plain = plain_s ? plain_s->data : NULL;
        uint8_t akey_buf[MAX_KEY], vk[MAX_KEY], got[64];
        int r = enc && plain ? 0 : -ENOMEM;
        if (r >= 0)
                r = pread_full(fd, enc, material, (off_t) off);
        if (r >= 0 && PKCS5_PBKDF2_HMAC((const char *) secret->data, (int) secret->size, ksalt, (int) ksalt_n,
                                        (int) iters, kdf_md, (int) akey, akey_buf) != 1)
                r = -EIO;
        if (r >= 0)
                r = area_decrypt(akey_buf, akey, enc, plain, material);
        if (r >= 0)
                r = af_merge(plain, key_size, stripes, json_string_value(json_object_get(af, "hash")), vk);
        if (r >= 0 && PKCS5_PBKDF2_HMAC((const char *) vk, (int) key_size, dsalt, (int) dsalt_n, (int) diters, dmd,
                                        (int) dwant_n, got) != 1)
                r = -EIO;
        if (r >= 0)
                r = CRYPTO_memcmp(got, dwant, dwant_n) == 0 ? 0 : -EPERM;
        OPENSSL_cleanse(akey_buf, sizeof(akey_buf));
        OPENSSL_cleanse(vk, sizeof(vk));
        OPENSSL_cleanse(got, sizeof(got));
        free(enc);
        return r;
}
