/* ModifyAttribute: change the value of an existing attribute instance (index 0
 * unless given). */
#include <errno.h>

#include "kms/attr-edit.h"

/* The instance the request names, which must exist. */
static int place_existing(struct kms_op *op, const struct kms_object *o, const struct kmip_attr *at,
                          uint32_t *index) {
        *index = at->index > 0 ? (uint32_t) at->index : 0;
        if (!kms_object_find(o, at->name, *index))
                return kms_fail(op, -ENOENT, "Attribute not found");
        return 0;
}

int op_modify_attribute(struct kms_op *op) {
        return attr_edit_set(op, KMIP_ATTR_CLIENT_MODIFY, place_existing);
}
