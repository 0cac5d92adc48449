/* GetAttributes: the named attributes (all when none is named). Absent attributes
 * are simply left out: vCenter asks for x-Vendor & co. on fresh keys and needs a
 * Success that carries only the Unique Identifier. */
#include <errno.h>

#include "kms/kms.h"

int op_get_attributes(struct kms_op *op) {
        const char *uid;
        int r = kms_op_uid(op, &uid);
        if (r < 0)
                return r;
        const char *names[256];
        size_t n = 0;
        r = kmip_attr_names_parse(op->a, op->req, names, ELEMENTSOF(names), &n);
        if (r < 0)
                return kms_fail(op, r == -E2BIG ? -EINVAL : -EPROTO, "Malformed attribute names");
        _cleanup_(kms_object_freep) struct kms_object *o = NULL;
        r = kms_load(op, uid, &o);
        if (r < 0)
                return r;
        struct kmip_attr_list list = {};
        r = kms_attrs_collect(op, o, n ? names : NULL, n, &list);
        if (r < 0)
                return r;
        ttlv_add_text(op->a, op->resp, KMIP_TAG_UNIQUE_IDENTIFIER, o->id);
        struct ttlv *parent = op->resp;
        if (kmip_version_is_2x(op->v))
                parent = ttlv_add_structure(op->a, op->resp, KMIP_TAG_ATTRIBUTES);
        return kmip_attrs_build(op->a, parent, &list, op->v);
}
