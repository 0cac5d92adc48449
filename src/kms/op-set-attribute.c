/* SetAttribute (KMIP 2.0): set a single-valued attribute, adding it if absent. */
#include <errno.h>

#include "kms/attr-edit.h"

int op_set_attribute(struct kms_op *op) {
        if (!kmip_version_is_2x(op->v))
                return kms_fail(op, -ENOSYS, "SetAttribute is a KMIP 2.0 operation");
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
        pthread_mutex_t *l = kms_lock(op->engine, uid);
        pthread_mutex_lock(l);
        _cleanup_(kms_object_freep) struct kms_object *o = NULL;
        r = kms_load(op, uid, &o);
        if (r == 0)
                r = kms_attr_from_ttlv(o, at.name, 0, at.value);
        if (r == 0)
                r = kms_touch(o);
        if (r == 0) {
                r = store_put(op->engine->store, o);
                if (r < 0)
                        r = kms_fail(op, r, "Could not store the attribute");
        }
        if (r == 0)
                r = attr_edit_reply(op, o, at.name, 0);
        pthread_mutex_unlock(l);
        return r;
}
