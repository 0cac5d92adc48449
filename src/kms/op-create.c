/* Create: a new AES key (128, 192 or 256 bits) from the CSPRNG, owned by the client,
 * Pre-Active unless an Activation Date not in the future was given. The reply is
 * sent only once the key is durable. */
#include <errno.h>
#include <string.h>

#include "kms/kms.h"

int create_common(struct kms_op *op, struct kms_object *o, struct kmip_attr_list *attrs) {
        struct ttlv *c = ttlv_find(op->req, kmip_version_is_2x(op->v) ? KMIP_TAG_ATTRIBUTES : KMIP_TAG_TEMPLATE_ATTRIBUTE);
        if (c && kmip_attrs_parse(op->a, c, attrs) < 0)
                return kms_fail(op, -EPROTO, "Malformed attributes");
        kms_new_id(o->id);
        snprintf(o->owner, sizeof(o->owner), "%s", op->client->cn);
        o->state = KMIP_STATE_PRE_ACTIVE;
        int r = kms_attrs_apply_client(op, o, attrs);
        if (r < 0)
                return r;
        int64_t now = kms_now();
        if (kms_object_set_int(o, KMIP_ATTR_INITIAL_DATE, KMS_T_DATETIME, now) < 0 || kms_touch(o) < 0)
                return -ENOMEM;
        kms_object_apply_dates(o, now);
        return 0;
}

/* Store, answer with Unique Identifier, and remember it as the batch's placeholder.
 * In the network loop the write is only queued: the reply waits for it (kms_defer). */
int create_finish(struct kms_op *op, struct kms_object *o) {
        int r = kms_store_object(op, o);
        if (r < 0)
                return r;
        snprintf(op->placeholder, KMS_ID_MAX, "%s", o->id);
        /* Create answers Object Type and Unique Identifier; Register only the latter. */
        if (op->operation == KMIP_OP_CREATE)
                ttlv_add_enum(op->a, op->resp, KMIP_TAG_OBJECT_TYPE, o->object_type);
        ttlv_add_text(op->a, op->resp, KMIP_TAG_UNIQUE_IDENTIFIER, o->id);
        return 0;
}

int op_create(struct kms_op *op) {
        uint32_t type;
        if (ttlv_get_enum(op->req, KMIP_TAG_OBJECT_TYPE, &type) < 0)
                return kms_fail(op, -ENODATA, "Object Type missing");
        if (type != KMIP_OBJECT_SYMMETRIC_KEY)
                return kms_fail(op, -EOPNOTSUPP, "Only symmetric keys can be created");
        _cleanup_(kms_object_freep) struct kms_object *o = kms_object_new();
        if (!o)
                return -ENOMEM;
        o->object_type = type;
        struct kmip_attr_list attrs = {};
        int r = create_common(op, o, &attrs);
        if (r < 0)
                return r;
        int64_t alg, bits;
        if (kms_object_get_int(o, KMIP_ATTR_CRYPTOGRAPHIC_ALGORITHM, &alg) < 0)
                return kms_fail(op, -ENODATA, "Cryptographic Algorithm missing");
        if (alg != KMIP_ALG_AES)
                return kms_fail(op, -EOPNOTSUPP, "Only AES keys can be created");
        if (kms_object_get_int(o, KMIP_ATTR_CRYPTOGRAPHIC_LENGTH, &bits) < 0)
                return kms_fail(op, -ENODATA, "Cryptographic Length missing");
        if (bits != 128 && bits != 192 && bits != 256)
                return kms_fail(op, -EINVAL, "AES keys are 128, 192 or 256 bits");
        r = secret_new_random((size_t) bits / 8, &o->key);
        if (r < 0)
                return kms_fail(op, r, "Random number generator failed");
        return create_finish(op, o);
}
