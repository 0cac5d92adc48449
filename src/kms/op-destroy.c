/* Destroy: the key material goes; the metadata stays with state Destroyed (or
 * Destroyed Compromised). An Active object must be revoked first (SKLC-M-2). */
#include <errno.h>

#include "kms/lifecycle.h"

static int destroy(struct kms_op *op, struct kms_object *o) {
        switch (o->state) {
        case KMIP_STATE_ACTIVE:
                return kms_fail(op, -ENOKEY, "An Active object must be revoked before it is destroyed");
        case KMIP_STATE_DESTROYED:
        case KMIP_STATE_DESTROYED_COMPROMISED:
                return kms_fail(op, -EIDRM, "Object already destroyed");
        case KMIP_STATE_COMPROMISED:
                o->state = KMIP_STATE_DESTROYED_COMPROMISED;
                break;
        default:
                o->state = KMIP_STATE_DESTROYED;
        }
        secret_free(o->key);
        o->key = NULL;
        return kms_object_set_int(o, KMIP_ATTR_DESTROY_DATE, KMS_T_DATETIME, kms_now());
}

int op_destroy(struct kms_op *op) {
        return lifecycle_update(op, destroy);
}
