/* Locate: objects the client may see that match every attribute given (Object Type,
 * State and the first Name are filtered by the store; the rest here by value), in
 * creation order, with Offset Items and Maximum Items. Destroyed objects are found
 * only when a State is asked for explicitly. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kms/kms.h"

/* Does o hold an instance of want's attribute with the same type and value? */
static int matches(struct kms_op *op, const struct kms_object *o, const struct kmip_attr *want) {
        uint8_t *buf;
        size_t n;
        if (ttlv_encode_alloc(want->value, &buf, &n) < 0)
                return -ENOMEM;
        size_t len = ((size_t) buf[4] << 24) | ((size_t) buf[5] << 16) | ((size_t) buf[6] << 8) | buf[7];
        int found = 0;
        for (size_t i = 0; i < o->n_attrs && !found; i++) {
                const struct kms_attr *a = &o->attrs[i];
                found = strcmp(a->name, want->name) == 0 && a->type == buf[3] && a->len == len &&
                        memcmp(a->value, buf + TTLV_HEADER_SIZE, len) == 0;
        }
        ttlv_buffer_free(buf, n);
        (void) op;
        return found;
}

int op_locate(struct kms_op *op) {
        int32_t max = 0, offset = 0;
        (void) ttlv_get_integer(op->req, KMIP_TAG_MAXIMUM_ITEMS, &max);
        (void) ttlv_get_integer(op->req, KMIP_TAG_OFFSET_ITEMS, &offset);
        if (max < 0 || offset < 0)
                return kms_fail(op, -EINVAL, "Maximum Items and Offset Items must not be negative");

        struct kmip_attr_list want = {};
        const struct ttlv *c = kmip_version_is_2x(op->v) ? ttlv_find(op->req, KMIP_TAG_ATTRIBUTES) : op->req;
        if (c && kmip_attrs_parse(op->a, c, &want) < 0)
                return kms_fail(op, -EPROTO, "Malformed attributes");

        struct store_filter f = {};
        char namebuf[256];
        struct kmip_attr_list rest = {};
        for (size_t i = 0; i < want.n; i++) {
                struct kmip_attr *w = &want.items[i];
                if (strcmp(w->name, KMIP_ATTR_OBJECT_TYPE) == 0 && w->value->type == TTLV_ENUMERATION)
                        f.object_type = w->value->v.enumeration;
                else if (strcmp(w->name, KMIP_ATTR_STATE) == 0 && w->value->type == TTLV_ENUMERATION)
                        f.state = w->value->v.enumeration;
                else if (strcmp(w->name, KMIP_ATTR_NAME) == 0 && !f.name) {
                        const char *nv;
                        if (ttlv_get_text(w->value, KMIP_TAG_NAME_VALUE, &nv, NULL) < 0)
                                return kms_fail(op, -EPROTO, "Malformed Name");
                        snprintf(namebuf, sizeof(namebuf), "%s", nv);
                        f.name = namebuf;
                } else if (kmip_attr_list_add(op->a, &rest, w->name, w->index, w->value) < 0)
                        return -ENOMEM;
        }
        const struct kms_client *cl = op->client;
        if (!kms_policy_allows_all(op->engine->config, cl->cn, cl->fingerprint, KMIP_OP_LOCATE))
                f.owner = op->client->cn;

        /* The stored state may lag behind the dates (see kms_object_apply_dates), so
         * the state is compared here, not in the store. */
        uint32_t want_state = f.state;
        f.state = 0;
        store_id *ids = NULL;
        size_t n = 0;
        int r = store_list(op->engine->store, &f, &ids, &n);
        if (r < 0)
                return kms_fail(op, r, "Storage failure");
        size_t found = 0, skipped = 0;
        struct ttlv *count = NULL;
        if (kmip_version_cmp(op->v, KMIP_VERSION(1, 3)) >= 0)
                count = ttlv_add_integer(op->a, op->resp, KMIP_TAG_LOCATED_ITEMS, 0);
        for (size_t i = 0; i < n && r == 0; i++) {
                _cleanup_(kms_object_freep) struct kms_object *o = NULL;
                if (store_get_meta(op->engine->store, ids[i], &o) < 0)
                        continue;
                kms_object_apply_dates(o, kms_now());
                if (want_state ? o->state != want_state
                               : (o->state == KMIP_STATE_DESTROYED || o->state == KMIP_STATE_DESTROYED_COMPROMISED))
                        continue;
                if (!kms_policy_allows(op->engine->config, cl->cn, cl->fingerprint, o->owner, KMIP_OP_LOCATE))
                        continue;
                int ok = 1;
                for (size_t j = 0; j < rest.n && ok; j++) {
                        ok = matches(op, o, &rest.items[j]);
                        if (ok < 0)
                                r = ok;
                }
                if (ok <= 0)
                        continue;
                if (skipped < (size_t) offset) {
                        skipped++;
                        continue;
                }
                if (max > 0 && found >= (size_t) max) {
                        found++;
                        continue;
                }
                ttlv_add_text(op->a, op->resp, KMIP_TAG_UNIQUE_IDENTIFIER, o->id);
                found++;
        }
        free(ids);
        if (count)
                count->v.integer = (int32_t) (found + skipped);
        return r;
}
