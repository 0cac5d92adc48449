/* The lifecycle operations: Activate, Revoke and Destroy, over one state change. */
#include <errno.h>

#include "kms/kms.h"

/* The key state machine (KMIP 1.4 §3.22): which transitions Activate, Revoke and
 * Destroy may make, and the dates each one sets. */

/* Run change() on the object uid under its lock and store it durably. */
static int lifecycle_update(struct kms_op *op, int (*change)(struct kms_op *op, struct kms_object *o));

static int lifecycle_update(struct kms_op *op, int (*change)(struct kms_op *op, struct kms_object *o)) {
        const char *uid;
        int r = kms_op_uid(op, &uid);
        if (r < 0)
                return r;
        pthread_mutex_t *l = kms_lock(op->dispatcher, uid);
        pthread_mutex_lock(l);
        _cleanup_(kms_object_freep) struct kms_object *o = NULL;
        r = kms_load(op, uid, &o);
        if (r == 0)
                r = change(op, o);
        if (r == 0)
                r = kms_touch(o);
        if (r == 0)
                r = kms_store_object(op, o); /* its failures say why */
        pthread_mutex_unlock(l);
        if (r == 0)
                ttlv_add_text(op->a, op->resp, KMIP_TAG_UNIQUE_IDENTIFIER, uid);
        return r;
}

/* Activate: Pre-Active -> Active, with the Activation Date. */
static int activate(struct kms_op *op, struct kms_object *o) {
        if (o->state != KMIP_STATE_PRE_ACTIVE)
                return kms_fail(op, -ENOKEY, "Only a Pre-Active object can be activated");
        o->state = KMIP_STATE_ACTIVE;
        return kms_object_set_int(o, KMIP_ATTR_ACTIVATION_DATE, KMS_T_DATETIME, kms_now());
}

int op_activate(struct kms_op *op) {
        return lifecycle_update(op, activate);
}

/* Revoke: Key Compromise (or CA Compromise) moves any live object to Compromised;
 * other reasons move an Active or Pre-Active object to Deactivated. */
static int do_revoke(struct kms_op *op, struct kms_object *o) {
        struct ttlv *rr;
        uint32_t code;
        if (ttlv_get_structure(op->req, KMIP_TAG_REVOCATION_REASON, &rr) < 0 ||
            ttlv_get_enum(rr, KMIP_TAG_REVOCATION_REASON_CODE, &code) < 0)
                return kms_fail(op, -ENODATA, "Revocation Reason missing");
        if (o->state == KMIP_STATE_DESTROYED || o->state == KMIP_STATE_DESTROYED_COMPROMISED)
                return kms_fail(op, -EIDRM, "Object destroyed");
        int64_t now = kms_now();
        int r;
        if (code == KMIP_REVOKE_KEY_COMPROMISE || code == KMIP_REVOKE_CA_COMPROMISE) {
                int64_t occurred = now;
                (void) ttlv_get_date_time(op->req, KMIP_TAG_COMPROMISE_OCCURRENCE_DATE, &occurred);
                o->state = KMIP_STATE_COMPROMISED;
                r = kms_object_set_int(o, KMIP_ATTR_COMPROMISE_DATE, KMS_T_DATETIME, now);
                if (r == 0)
                        r = kms_object_set_int(o, KMIP_ATTR_COMPROMISE_OCCURRENCE_DATE, KMS_T_DATETIME, occurred);
        } else {
                if (o->state != KMIP_STATE_ACTIVE && o->state != KMIP_STATE_PRE_ACTIVE)
                        return kms_fail(op, -ENOKEY, "Only an Active or Pre-Active object can be deactivated");
                o->state = KMIP_STATE_DEACTIVATED;
                r = kms_object_set_int(o, KMIP_ATTR_DEACTIVATION_DATE, KMS_T_DATETIME, now);
        }
        if (r == 0)
                r = kms_attr_from_ttlv(o, KMIP_ATTR_REVOCATION_REASON, 0, rr);
        return r;
}

int op_revoke(struct kms_op *op) {
        return lifecycle_update(op, do_revoke);
}

/* Destroy: the key material goes; the metadata stays with state Destroyed (or
 * Destroyed Compromised). An Active object must be revoked first (SKLC-M-2). */
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
