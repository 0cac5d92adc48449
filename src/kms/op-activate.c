/* Activate: Pre-Active -> Active, with the Activation Date. */
#include <errno.h>

#include "kms/lifecycle.h"

static int activate(struct kms_op *op, struct kms_object *o) {
        if (o->state != KMIP_STATE_PRE_ACTIVE)
                return kms_fail(op, -ENOKEY, "Only a Pre-Active object can be activated");
        o->state = KMIP_STATE_ACTIVE;
        return kms_object_set_int(o, KMIP_ATTR_ACTIVATION_DATE, KMS_T_DATETIME, kms_now());
}

int op_activate(struct kms_op *op) {
        return lifecycle_update(op, activate);
}
