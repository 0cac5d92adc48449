/* DeleteAttribute: remove an attribute instance (index 0 unless given). */
#include <errno.h>
#include <string.h>

#include "kms/attr-edit.h"

int op_delete_attribute(struct kms_op *op) {
        const char *uid;
        int r = kms_op_uid(op, &uid);
        if (r < 0)
                return r;
        const char *name = NULL;
        uint32_t index = 0;
        if (kmip_version_is_2x(op->v)) {
                struct kmip_attr at;
                const char *names[1];
                size_t n = 0;
                if (ttlv_find(op->req, KMIP_TAG_CURRENT_ATTRIBUTE)) {
                        r = attr_edit_parse(op, KMIP_TAG_CURRENT_ATTRIBUTE, &at);
                        if (r < 0)
                                return r;
                        name = at.name;
                } else if (kmip_attr_names_parse(op->a, op->req, names, 1, &n) == 0 && n == 1)
                        name = names[0];
        } else {
                int32_t idx = 0;
                if (ttlv_get_text(op->req, KMIP_TAG_ATTRIBUTE_NAME, &name, NULL) < 0)
                        name = NULL;
                if (ttlv_get_integer(op->req, KMIP_TAG_ATTRIBUTE_INDEX, &idx) == 0 && idx > 0)
                        index = (uint32_t) idx;
        }
        if (!name)
                return kms_fail(op, -ENODATA, "Attribute name missing");
        r = attr_edit_allowed(op, name, KMIP_ATTR_CLIENT_MODIFY);
        if (r < 0)
                return r;
        pthread_mutex_t *l = kms_lock(op->engine, uid);
        pthread_mutex_lock(l);
        _cleanup_(kms_object_freep) struct kms_object *o = NULL;
        r = kms_load(op, uid, &o);
        if (r < 0)
                goto out;
        const struct kms_attr *old = kms_object_find(o, name, index);
        if (!old) {
                r = kms_fail(op, -ENOENT, "Attribute not found");
                goto out;
        }
        r = attr_edit_one_way(op, o, name, NULL);
        if (r < 0)
                goto out;
        /* 1.x answers with the deleted attribute: build it before it goes. */
        ttlv_add_text(op->a, op->resp, KMIP_TAG_UNIQUE_IDENTIFIER, o->id);
        if (!kmip_version_is_2x(op->v)) {
                struct kmip_attr ka = { .name = name, .index = (int32_t) index, .value = kms_attr_to_ttlv(op->a, old) };
                if (!ka.value || !kmip_attr_build(op->a, op->resp, &ka, op->v)) {
                        r = -ENOMEM;
                        goto out;
                }
        }
        r = kms_object_remove(o, name, index);
        if (r == 0)
                r = kms_touch(o);
        if (r == 0)
                r = kms_store_object(op, o);
        if (r < 0 && !op->message) /* kms_store_object's says why */
                r = kms_fail(op, r, "Could not store the change");
out:
        pthread_mutex_unlock(l);
        return r;
}
