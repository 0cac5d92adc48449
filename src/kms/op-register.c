/* Register: store a key (Symmetric Key) or secret (Secret Data) the client brings. */
#include <errno.h>

#include "kms/keyblock.h"
#include "kms/kms.h"

int op_register(struct kms_op *op) {
        uint32_t type;
        if (ttlv_get_enum(op->req, KMIP_TAG_OBJECT_TYPE, &type) < 0)
                return kms_fail(op, -ENODATA, "Object Type missing");
        uint32_t tag = type == KMIP_OBJECT_SYMMETRIC_KEY ? KMIP_TAG_SYMMETRIC_KEY :
                       type == KMIP_OBJECT_SECRET_DATA ? KMIP_TAG_SECRET_DATA : 0;
        if (!tag)
                return kms_fail(op, -EOPNOTSUPP, "Only Symmetric Key and Secret Data can be registered");
        struct ttlv *obj;
        if (ttlv_get_structure(op->req, tag, &obj) < 0)
                return kms_fail(op, -ENODATA, "Object missing");
        _cleanup_(kms_object_freep) struct kms_object *o = kms_object_new();
        if (!o)
                return -ENOMEM;
        o->object_type = type;
        uint32_t alg;
        int32_t bits;
        int r = keyblock_parse(op, obj, &o->key, &alg, &bits);
        if (r < 0)
                return r;
        struct kmip_attr_list attrs = {};
        r = create_common(op, o, &attrs);
        if (r < 0)
                return r;
        /* The Key Block's algorithm and length are attributes too, unless given. */
        if (alg && !kms_object_find(o, KMIP_ATTR_CRYPTOGRAPHIC_ALGORITHM, 0) &&
            kms_object_set_int(o, KMIP_ATTR_CRYPTOGRAPHIC_ALGORITHM, KMS_T_ENUM, alg) < 0)
                return -ENOMEM;
        if (bits > 0 && !kms_object_find(o, KMIP_ATTR_CRYPTOGRAPHIC_LENGTH, 0) &&
            kms_object_set_int(o, KMIP_ATTR_CRYPTOGRAPHIC_LENGTH, KMS_T_INTEGER, bits) < 0)
                return -ENOMEM;
        /* A key whose length disagrees with its bytes would fail later, far from
         * the cause: refuse it now. */
        int64_t a = 0, len = 0;
        (void) kms_object_get_int(o, KMIP_ATTR_CRYPTOGRAPHIC_ALGORITHM, &a);
        if (kms_object_get_int(o, KMIP_ATTR_CRYPTOGRAPHIC_LENGTH, &len) == 0 && type == KMIP_OBJECT_SYMMETRIC_KEY &&
            (uint64_t) len != 8 * o->key->size)
                return kms_fail(op, -EINVAL, "Cryptographic Length does not match the key material");
        if (a == KMIP_ALG_AES && o->key->size != 16 && o->key->size != 24 && o->key->size != 32)
                return kms_fail(op, -EINVAL, "AES keys are 16, 24 or 32 bytes");
        return create_finish(op, o);
}
