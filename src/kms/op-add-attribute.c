/* AddAttribute: a new instance of an attribute (custom ones of any type; standard
 * ones clients may set). vCenter sends three in one batch per key. */
#include <errno.h>

#include "kms/attr-edit.h"

int op_add_attribute(struct kms_op *op) {
        const char *uid;
        int r = kms_op_uid(op, &uid);
        if (r < 0)
                return r;
        struct kmip_attr at;
        r = attr_edit_parse(op, KMIP_TAG_NEW_ATTRIBUTE, &at);
        if (r < 0)
                return r;
        r = attr_edit_allowed(op, at.name, KMIP_ATTR_CLIENT_SET);
        if (r < 0)
                return r;
        pthread_mutex_t *l = kms_lock(op->engine, uid);
        pthread_mutex_lock(l);
        _cleanup_(kms_object_freep) struct kms_object *o = NULL;
        r = kms_load(op, uid, &o);
        if (r < 0)
                goto out;
        const struct kmip_attr_def *d = kmip_attr_def_by_name(at.name);
        if (d && !(d->flags & KMIP_ATTR_MULTI) && kms_object_find(o, at.name, 0)) {
                r = kms_fail(op, -EEXIST, "Single-valued attribute already present");
                goto out;
        }
        uint32_t index = kms_object_next_index(o, at.name);
        r = kms_attr_from_ttlv(o, at.name, index, at.value);
        if (r == 0)
                r = kms_touch(o);
        if (r == 0)
                r = store_put(op->engine->store, o);
        if (r < 0) {
                r = kms_fail(op, r, "Could not store the attribute");
                goto out;
        }
        r = attr_edit_reply(op, o, at.name, index);
out:
        pthread_mutex_unlock(l);
        return r;
}
