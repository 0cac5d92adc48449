/* ModifyAttribute: change the value of an existing attribute instance (index 0
 * unless given). */
#include <errno.h>

#include "kms/attr-edit.h"

int op_modify_attribute(struct kms_op *op) {
        const char *uid;
        int r = kms_op_uid(op, &uid);
        if (r < 0)
                return r;
        struct kmip_attr at;
        r = attr_edit_parse(op, KMIP_TAG_NEW_ATTRIBUTE, &at);
        if (r < 0)
                return r;
        r = attr_edit_allowed(op, at.name, KMIP_ATTR_CLIENT_MODIFY);
        if (r < 0)
                return r;
        uint32_t index = at.index > 0 ? (uint32_t) at.index : 0;
        pthread_mutex_t *l = kms_lock(op->engine, uid);
        pthread_mutex_lock(l);
        _cleanup_(kms_object_freep) struct kms_object *o = NULL;
        r = kms_load(op, uid, &o);
        if (r < 0)
                goto out;
        if (!kms_object_find(o, at.name, index)) {
                r = kms_fail(op, -ENOENT, "Attribute not found");
                goto out;
        }
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
