/* Locked, durable state changes: see lifecycle.h. */
#include "kms/lifecycle.h"

#include <errno.h>

int lifecycle_update(struct kms_op *op, int (*change)(struct kms_op *op, struct kms_object *o)) {
        const char *uid;
        int r = kms_op_uid(op, &uid);
        if (r < 0)
                return r;
        pthread_mutex_t *l = kms_lock(op->engine, uid);
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
