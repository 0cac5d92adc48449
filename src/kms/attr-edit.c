/* Shared by the attribute-editing operations: see attr-edit.h. */
#include "kms/attr-edit.h"

#include <errno.h>
#include <string.h>

int attr_edit_parse(struct kms_op *op, uint32_t tag, struct kmip_attr *ret) {
        struct ttlv *c = ttlv_find(op->req, kmip_version_is_2x(op->v) ? tag : KMIP_TAG_ATTRIBUTE);
        if (!c)
                return kms_fail(op, -ENODATA, "Attribute missing");
        /* 2.0 wraps the attribute element (or Vendor Attribute) in New/Current Attribute. */
        const struct ttlv *node = kmip_version_is_2x(op->v) ? c->child : c;
        if (!node || kmip_attr_parse(op->a, node, ret) < 0)
                return kms_fail(op, -EPROTO, "Malformed attribute");
        return 0;
}

int attr_edit_allowed(struct kms_op *op, const char *name, unsigned need_flag) {
        if (kmip_attr_name_is_custom(name))
                return 0;
        const struct kmip_attr_def *d = kmip_attr_def_by_name(name);
        if (!d)
                return kms_fail(op, -EINVAL, "Unknown attribute");
        if (!(d->flags & need_flag))
                return kms_fail(op, -EPERM, "Attribute is read-only for clients");
        return 0;
}

/* Extractable and Sensitive protect the key material from its own owner's later
 * mistakes (or a stolen owner certificate): they only ever tighten, as KMIP 1.4
 * §3.48-3.49 requires. A protected value is the one whose loss would let the key
 * out: Extractable false, Sensitive true. */
static bool is_protected(const char *name, int64_t v) {
        if (strcmp(name, KMIP_ATTR_EXTRACTABLE) == 0)
                return !v;
        if (strcmp(name, KMIP_ATTR_SENSITIVE) == 0)
                return v;
        return false;
}

int attr_edit_one_way(struct kms_op *op, const struct kms_object *o, const char *name, const struct ttlv *value) {
        int64_t old;
        if (kms_object_get_int(o, name, &old) < 0 || !is_protected(name, old))
                return 0;
        if (value && value->type == TTLV_BOOLEAN && is_protected(name, value->v.boolean))
                return 0;
        return kms_fail(op, -EPERM, "Extractable can only become false and Sensitive only true");
}

int attr_edit_reply(struct kms_op *op, const struct kms_object *o, const char *name, uint32_t index) {
        ttlv_add_text(op->a, op->resp, KMIP_TAG_UNIQUE_IDENTIFIER, o->id);
        if (kmip_version_is_2x(op->v))
                return 0;
        const struct kms_attr *at = kms_object_find(o, name, index);
        if (!at)
                return 0;
        struct ttlv *v = kms_attr_to_ttlv(op->a, at);
        if (!v)
                return -ENOMEM;
        struct kmip_attr ka = { .name = name, .index = (int32_t) index, .value = v };
        return kmip_attr_build(op->a, op->resp, &ka, op->v) ? 0 : -ENOMEM;
}

int attr_edit_set(struct kms_op *op, unsigned need_flag, attr_edit_place_fn *place) {
        const char *uid;
        int r = kms_op_uid(op, &uid);
        if (r < 0)
                return r;
        struct kmip_attr at;
        r = attr_edit_parse(op, KMIP_TAG_NEW_ATTRIBUTE, &at);
        if (r < 0)
                return r;
        r = attr_edit_allowed(op, at.name, need_flag);
        if (r < 0)
                return r;
        pthread_mutex_t *l = kms_lock(op->engine, uid);
        pthread_mutex_lock(l);
        _cleanup_(kms_object_freep) struct kms_object *o = NULL;
        uint32_t index = 0;
        r = kms_load(op, uid, &o);
        if (r == 0)
                r = attr_edit_one_way(op, o, at.name, at.value);
        if (r == 0)
                r = place(op, o, &at, &index);
        if (r < 0)
                goto out;
        r = kms_attr_from_ttlv(o, at.name, index, at.value);
        if (r == 0)
                r = kms_touch(o);
        if (r == 0)
                r = kms_store_object(op, o);
        if (r < 0) {
                if (!op->message) /* kms_store_object's says why */
                        r = kms_fail(op, r, "Could not store the attribute");
                goto out;
        }
        r = attr_edit_reply(op, o, at.name, index);
out:
        pthread_mutex_unlock(l);
        return r;
}
