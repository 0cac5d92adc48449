/* SetAttribute (KMIP 2.0): set a single-valued attribute, adding it if absent. */
#include <errno.h>

#include "kms/attr-edit.h"

/* Instance 0, present or not. */
static int place_first(struct kms_op *op, const struct kms_object *o, const struct kmip_attr *at, uint32_t *index) {
        (void) op;
        (void) o;
        (void) at;
        *index = 0;
        return 0;
}

int op_set_attribute(struct kms_op *op) {
        if (!kmip_version_is_2x(op->v))
                return kms_fail(op, -ENOSYS, "SetAttribute is a KMIP 2.0 operation");
        return attr_edit_set(op, KMIP_ATTR_CLIENT_MODIFY, place_first);
}
