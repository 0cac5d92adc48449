/* Key Blocks: see keyblock.h. */
#include "kms/keyblock.h"

#include <errno.h>
#include <openssl/evp.h>
#include <string.h>

#include "crypto/keywrap.h"
#include "shared/log.h"

int keyblock_parse(struct kms_op *op, const struct ttlv *object, struct secret **ret_key, uint32_t *ret_alg,
                   int32_t *ret_len) {
        struct ttlv *kb, *kv;
        if (ttlv_get_structure(object, KMIP_TAG_KEY_BLOCK, &kb) < 0)
                return kms_fail(op, -ENODATA, "Key Block missing");
        if (ttlv_find(kb, KMIP_TAG_KEY_WRAPPING_DATA))
                return kms_fail(op, -EOPNOTSUPP, "Registering wrapped keys is not supported");
        uint32_t fmt = 0;
        if (ttlv_get_enum(kb, KMIP_TAG_KEY_FORMAT_TYPE, &fmt) < 0)
                return kms_fail(op, -ENODATA, "Key Format Type missing");
        if (ttlv_get_structure(kb, KMIP_TAG_KEY_VALUE, &kv) < 0)
                return kms_fail(op, -ENODATA, "Key Value missing");
        struct ttlv *km = ttlv_find(kv, KMIP_TAG_KEY_MATERIAL);
        const uint8_t *p = NULL;
        size_t n = 0;
        if (km && km->type == TTLV_BYTE_STRING && (fmt == KMIP_KEY_FORMAT_RAW || fmt == KMIP_KEY_FORMAT_OPAQUE)) {
                p = km->v.bytes.data;
                n = km->v.bytes.size;
        } else if (km && km->type == TTLV_STRUCTURE && fmt == KMIP_KEY_FORMAT_TRANSPARENT_SYMMETRIC_KEY) {
                if (ttlv_get_bytes(km, KMIP_TAG_KEY, &p, &n) < 0)
                        return kms_fail(op, -ENODATA, "Transparent key has no Key");
        } else
                return kms_fail(op, -EOPNOTSUPP, "Key format not supported");
        if (n == 0 || n > 1024)
                return kms_fail(op, -EINVAL, "Key material must be 1 to 1024 bytes");
        *ret_alg = 0;
        *ret_len = 0;
        (void) ttlv_get_enum(kb, KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM, ret_alg);
        (void) ttlv_get_integer(kb, KMIP_TAG_CRYPTOGRAPHIC_LENGTH, ret_len);
        *ret_key = secret_new_copy(p, n);
        return *ret_key ? 0 : -ENOMEM;
}

static int wrap_mode(const struct ttlv *spec, uint32_t *ret) {
        struct ttlv *eki, *cp;
        *ret = KMIP_MODE_AES_KEY_WRAP_PADDING;
        if (ttlv_get_structure(spec, KMIP_TAG_ENCRYPTION_KEY_INFORMATION, &eki) < 0)
                return -ENODATA;
        if (ttlv_get_structure(eki, KMIP_TAG_CRYPTOGRAPHIC_PARAMETERS, &cp) == 0)
                (void) ttlv_get_enum(cp, KMIP_TAG_BLOCK_CIPHER_MODE, ret);
        return 0;
}

int keyblock_build(struct kms_op *op, struct ttlv *parent, const struct kms_object *o, uint32_t fmt,
                   const struct kms_object *wrap_key, const struct ttlv *wrap_spec) {
        struct ttlv_arena *a = op->a;
        int is_secret = o->object_type == KMIP_OBJECT_SECRET_DATA;
        if (fmt == 0)
                fmt = is_secret ? KMIP_KEY_FORMAT_OPAQUE : KMIP_KEY_FORMAT_RAW;
        if (fmt != KMIP_KEY_FORMAT_RAW && fmt != KMIP_KEY_FORMAT_OPAQUE &&
            !(fmt == KMIP_KEY_FORMAT_TRANSPARENT_SYMMETRIC_KEY && !is_secret))
                return kms_fail(op, -EOPNOTSUPP, "Key Format Type not supported for this object");

        struct ttlv *obj = ttlv_add_structure(a, parent, is_secret ? KMIP_TAG_SECRET_DATA : KMIP_TAG_SYMMETRIC_KEY);
        if (is_secret)
                ttlv_add_enum(a, obj, KMIP_TAG_SECRET_DATA_TYPE, 2 /* Seed */);
        struct ttlv *kb = ttlv_add_structure(a, obj, KMIP_TAG_KEY_BLOCK);
        ttlv_add_enum(a, kb, KMIP_TAG_KEY_FORMAT_TYPE, fmt);

        if (!wrap_key) {
                struct ttlv *kv = ttlv_add_structure(a, kb, KMIP_TAG_KEY_VALUE);
                if (fmt == KMIP_KEY_FORMAT_TRANSPARENT_SYMMETRIC_KEY) {
                        struct ttlv *km = ttlv_add_structure(a, kv, KMIP_TAG_KEY_MATERIAL);
                        ttlv_add_bytes(a, km, KMIP_TAG_KEY, o->key->data, o->key->size);
                } else
                        ttlv_add_bytes(a, kv, KMIP_TAG_KEY_MATERIAL, o->key->data, o->key->size);
        } else {
                uint32_t method = KMIP_WRAP_ENCRYPT, mode, enc = KMIP_ENCODING_NONE;
                (void) ttlv_get_enum(wrap_spec, KMIP_TAG_WRAPPING_METHOD, &method);
                (void) ttlv_get_enum(wrap_spec, KMIP_TAG_ENCODING_OPTION, &enc);
                if (wrap_mode(wrap_spec, &mode) < 0)
                        return kms_fail(op, -ENODATA, "Encryption Key Information missing");
                if (method != KMIP_WRAP_ENCRYPT || mode != KMIP_MODE_AES_KEY_WRAP_PADDING || enc != KMIP_ENCODING_NONE ||
                    fmt == KMIP_KEY_FORMAT_TRANSPARENT_SYMMETRIC_KEY)
                        return kms_fail(op, -EOPNOTSUPP,
                                        "Only Encrypt wrapping with AES Key Wrap with Padding, no encoding, is supported");
                uint8_t *out = ttlv_arena_alloc(a, o->key->size + 16);
                size_t n;
                if (!out)
                        return -ENOMEM;
                int r = keywrap_run(1, wrap_key->key, o->key->data, o->key->size, out, o->key->size + 16, &n);
                if (r < 0)
                        return kms_fail(op, r, "Key wrapping failed");
                /* A wrapped Key Value is a Byte String (KMIP 1.4 §2.1.4). */
                ttlv_add_bytes(a, kb, KMIP_TAG_KEY_VALUE, out, n);
        }
        int64_t alg, len;
        if (kms_object_get_int(o, KMIP_ATTR_CRYPTOGRAPHIC_ALGORITHM, &alg) == 0)
                ttlv_add_enum(a, kb, KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM, (uint32_t) alg);
        if (kms_object_get_int(o, KMIP_ATTR_CRYPTOGRAPHIC_LENGTH, &len) == 0)
                ttlv_add_integer(a, kb, KMIP_TAG_CRYPTOGRAPHIC_LENGTH, (int32_t) len);
        if (wrap_key) {
                struct ttlv *kwd = ttlv_add_structure(a, kb, KMIP_TAG_KEY_WRAPPING_DATA);
                ttlv_add_enum(a, kwd, KMIP_TAG_WRAPPING_METHOD, KMIP_WRAP_ENCRYPT);
                struct ttlv *eki = ttlv_add_structure(a, kwd, KMIP_TAG_ENCRYPTION_KEY_INFORMATION);
                ttlv_add_text(a, eki, KMIP_TAG_UNIQUE_IDENTIFIER, wrap_key->id);
                struct ttlv *cp = ttlv_add_structure(a, eki, KMIP_TAG_CRYPTOGRAPHIC_PARAMETERS);
                ttlv_add_enum(a, cp, KMIP_TAG_BLOCK_CIPHER_MODE, KMIP_MODE_AES_KEY_WRAP_PADDING);
                ttlv_add_enum(a, kwd, KMIP_TAG_ENCODING_OPTION, KMIP_ENCODING_NONE);
        }
        return 0;
}
