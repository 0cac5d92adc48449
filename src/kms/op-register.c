/* Register: store a key (Symmetric Key) or secret (Secret Data) the client brings. */
#include <errno.h>

#include "kms/keyblock.h"
#include "kms/kms.h"

int create_common(struct kms_op *op, struct kms_object *o, struct kmip_attr_list *attrs);
int create_finish(struct kms_op *op, struct kms_object *o);

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
        return create_finish(op, o);
}
