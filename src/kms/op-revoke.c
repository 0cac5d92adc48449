/* Revoke: Key Compromise (or CA Compromise) moves any live object to Compromised;
 * other reasons move an Active or Pre-Active object to Deactivated. */
#include <errno.h>

#include "kms/lifecycle.h"

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
