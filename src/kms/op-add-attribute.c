/* AddAttribute: a new instance of an attribute (custom ones of any type; standard
 * ones clients may set). vCenter sends three in one batch per key. */
#include <errno.h>

#include "kms/attr-edit.h"

/* After the last instance; a single-valued attribute only if absent. */
static int place_new(struct kms_op *op, const struct kms_object *o, const struct kmip_attr *at, uint32_t *index) {
        const struct kmip_attr_def *d = kmip_attr_def_by_name(at->name);
        if (d && !(d->flags & KMIP_ATTR_MULTI) && kms_object_find(o, at->name, 0))
                return kms_fail(op, -EEXIST, "Single-valued attribute already present");
        *index = kms_object_next_index(o, at->name);
        return 0;
}

int op_add_attribute(struct kms_op *op) {
        return attr_edit_set(op, KMIP_ATTR_CLIENT_SET, place_new);
}
