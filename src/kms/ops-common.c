/* Helpers every operation handler uses: see kms.h. */
#include <errno.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kms/kms.h"

int kms_fail(struct kms_op *op, int err, const char *message) {
        op->message = message;
        return err < 0 ? err : -EIO;
}

int kms_audit(struct kms_dispatcher *e, const struct kms_client *client, const char *operation, const char *object_id,
              uint32_t status, uint32_t reason, const char *message) {
        struct audit_event ev = {
                .identity = client->cn, .fingerprint = client->fingerprint, .peer = client->peer,
                .operation = operation, .object_id = object_id, .message = message,
                .status = status, .reason = reason,
        };
        return audit_record(e->audit, &ev);
}

bool kms_audit_refuses(const struct kms_dispatcher *e) {
        return e->audit && !e->config->audit_continue;
}

/* The line goes first, while nothing has changed: a change must never be stored
 * without its line, and a line without its change is only a line too many (a commit
 * that then fails adds a "failed" line for the same object; dispatch.c). With
 * audit-failure = refuse the store's commit hook also makes the line durable
 * (fdatasync) before the commit that holds the change (main.c). */
int kms_store_object(struct kms_op *op, const struct kms_object *o) {
        struct kms_dispatcher *e = op->dispatcher;
        snprintf(op->object_id, sizeof(op->object_id), "%s", o->id);
        int r = kms_audit(e, op->client, kmip_operation_name(op->operation), o->id, KMIP_STATUS_SUCCESS, 0, NULL);
        if (r < 0 && kms_audit_refuses(e))
                return kms_fail(op, -EIO, KMS_AUDIT_REFUSED);
        op->audited = r == 0;
        /* The fdatasync starts now, while the write is queued and committed; the
         * commit waits for it (main.c) instead of running it. */
        if (r == 0 && kms_audit_refuses(e))
                audit_sync_soon(e->audit);
        if (op->defer) {
                r = store_put_async(e->store, o, op->defer->done, op->defer->userdata);
                if (r == 0)
                        op->defer->deferred = true;
        } else
                r = store_put(e->store, o);
        if (r < 0)
                return kms_fail(op, r, "Could not store the object durably");
        return 0;
}

int kms_op_uid(struct kms_op *op, const char **ret) {
        const char *uid;
        int r = ttlv_get_text(op->req, KMIP_TAG_UNIQUE_IDENTIFIER, &uid, NULL);
        if (r == -ENODATA) {
                if (!op->placeholder[0])
                        return kms_fail(op, -ENODATA, "Unique Identifier missing and no ID Placeholder");
                uid = op->placeholder;
        } else if (r < 0)
                return kms_fail(op, -EPROTO, "Unique Identifier must be a Text String");
        if (strlen(uid) >= KMS_ID_MAX)
                return kms_fail(op, -ENOENT, "No such object");
        snprintf(op->object_id, sizeof(op->object_id), "%s", uid);
        *ret = uid;
        return 0;
}

int kms_load(struct kms_op *op, const char *uid, struct kms_object **ret) {
        struct kms_object *o = NULL;
        int r = store_get(op->dispatcher->store, uid, &o);
        if (r == -ENOENT)
                return kms_fail(op, -ENOENT, "No such object");
        if (r < 0)
                return kms_fail(op, r, "Storage failure");
        const struct kms_client *cl = op->client;
        if (!kms_policy_allows(op->dispatcher->config, cl->cn, cl->fingerprint, o->owner, op->operation)) {
                kms_object_free(o);
                return kms_fail(op, -ENOENT, "No such object");
        }
        kms_object_apply_dates(o, kms_now());
        *ret = o;
        return 0;
}

void kms_object_apply_dates(struct kms_object *o, int64_t now) {
        int64_t t;
        if (o->state == KMIP_STATE_PRE_ACTIVE && kms_object_get_int(o, KMIP_ATTR_ACTIVATION_DATE, &t) == 0 && t <= now)
                o->state = KMIP_STATE_ACTIVE;
        if (o->state == KMIP_STATE_ACTIVE && kms_object_get_int(o, KMIP_ATTR_DEACTIVATION_DATE, &t) == 0 && t <= now)
                o->state = KMIP_STATE_DEACTIVATED;
}

/* Revocation must bite: a key that was revoked (Deactivated, Compromised) or
 * destroyed neither leaves the server nor encrypts or decrypts. KMIP 1.4 §3.22
 * would still let a Deactivated or Compromised key "process" (Decrypt) data it
 * protected, but for vmcrypt a revoked KEK is one whose disks must stay shut, so
 * there is no such exception. allow_pre_active: a key that has not been Active yet
 * protected nothing; Get may hand it out (vCenter fetches its new keys before it
 * activates them). */
int kms_require_active(struct kms_op *op, const struct kms_object *o, bool allow_pre_active) {
        if (!o->key)
                return kms_fail(op, -EIDRM, "Object destroyed");
        switch (o->state) {
        case KMIP_STATE_ACTIVE:
                return 0;
        case KMIP_STATE_PRE_ACTIVE:
                return allow_pre_active ? 0 : kms_fail(op, -ENOKEY, "Key is not Active yet (Pre-Active): activate it");
        case KMIP_STATE_DEACTIVATED:
                return kms_fail(op, -EKEYREVOKED, "Key is revoked (Deactivated)");
        case KMIP_STATE_COMPROMISED:
                return kms_fail(op, -EKEYREVOKED, "Key is revoked (Compromised)");
        default:
                return kms_fail(op, -EIDRM, "Object destroyed");
        }
}

pthread_mutex_t *kms_lock(struct kms_dispatcher *e, const char *id) {
        uint32_t h = 2166136261u;
        for (const char *p = id; *p; p++)
                h = (h ^ (uint8_t) *p) * 16777619u;
        return &e->stripes[h % KMS_LOCK_STRIPES];
}

int64_t kms_now(void) {
        return (int64_t) time(NULL);
}

/* UUID version 7 (RFC 9562): 48 bits of milliseconds, then 74 random bits. Ids made
 * in time order land at the end of the store's id index, so a batch of Creates
 * dirties one index page instead of one random page each (fewer pages written per
 * commit and per checkpoint); the random bits keep ids unguessable. */
void kms_new_id(char id[static KMS_ID_MAX]) {
        uint8_t b[16];
        if (RAND_bytes(b + 6, sizeof(b) - 6) != 1)
                abort(); /* the CSPRNG failing is not something to serve through */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t ms = (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
        for (int i = 0; i < 6; i++)
                b[i] = (uint8_t) (ms >> (40 - 8 * i));
        b[6] = (b[6] & 0x0f) | 0x70;
        b[8] = (b[8] & 0x3f) | 0x80;
        snprintf(id, KMS_ID_MAX, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

struct ttlv *kms_attr_to_ttlv(struct ttlv_arena *a, const struct kms_attr *attr) {
        size_t n = TTLV_HEADER_SIZE + ALIGN_UP(attr->len, 8);
        uint8_t *buf = ttlv_arena_alloc(a, n);
        if (!buf)
                return NULL;
        buf[0] = 0x42;
        buf[1] = 0x00;
        buf[2] = 0x0B; /* Attribute Value */
        buf[3] = attr->type;
        for (int i = 0; i < 4; i++)
                buf[4 + i] = (uint8_t) (attr->len >> (24 - 8 * i));
        memcpy(buf + TTLV_HEADER_SIZE, attr->value, attr->len);
        struct ttlv *t = NULL;
        if (ttlv_decode(a, buf, n, NULL, &t) < 0)
                return NULL;
        return t;
}

int kms_attr_from_ttlv(struct kms_object *o, const char *name, uint32_t index, const struct ttlv *value) {
        uint8_t *buf;
        size_t n;
        int r = ttlv_encode_alloc(value, &buf, &n);
        if (r < 0)
                return r;
        size_t len = ((size_t) buf[4] << 24) | ((size_t) buf[5] << 16) | ((size_t) buf[6] << 8) | buf[7];
        r = kms_object_set(o, name, index, buf[3], buf + TTLV_HEADER_SIZE, len);
        ttlv_buffer_free(buf, n);
        return r;
}

static int want(const char *const *names, size_t n, const char *name) {
        if (!names)
                return 1;
        for (size_t i = 0; i < n; i++)
                if (strcmp(names[i], name) == 0)
                        return 1;
        return 0;
}

int kms_attrs_collect(struct kms_op *op, const struct kms_object *o, const char *const *names, size_t n_names,
                      struct kmip_attr_list *list) {
        int r = 0;
        if (want(names, n_names, KMIP_ATTR_UNIQUE_IDENTIFIER) && names)
                r = kmip_attr_list_add_text(op->a, list, KMIP_ATTR_UNIQUE_IDENTIFIER, o->id);
        if (r == 0 && want(names, n_names, KMIP_ATTR_OBJECT_TYPE))
                r = kmip_attr_list_add_enum(op->a, list, KMIP_ATTR_OBJECT_TYPE, o->object_type);
        if (r == 0 && want(names, n_names, KMIP_ATTR_STATE))
                r = kmip_attr_list_add_enum(op->a, list, KMIP_ATTR_STATE, o->state);
        for (size_t i = 0; r == 0 && i < o->n_attrs; i++) {
                const struct kms_attr *at = &o->attrs[i];
                if (!want(names, n_names, at->name) || !kmip_attr_in_version(at->name, op->v))
                        continue;
                struct ttlv *v = kms_attr_to_ttlv(op->a, at);
                if (!v)
                        return -ENOMEM;
                r = kmip_attr_list_add(op->a, list, at->name, (int32_t) at->index, v);
        }
        return r;
}

int kms_touch(struct kms_object *o) {
        return kms_object_set_int(o, KMIP_ATTR_LAST_CHANGE_DATE, KMS_T_DATETIME, kms_now());
}

int kms_attrs_apply_client(struct kms_op *op, struct kms_object *o, const struct kmip_attr_list *list) {
        for (size_t i = 0; i < list->n; i++) {
                const struct kmip_attr *at = &list->items[i];
                if (!kmip_attr_name_is_custom(at->name)) {
                        const struct kmip_attr_def *d = kmip_attr_def_by_name(at->name);
                        if (!d || !(d->flags & KMIP_ATTR_CLIENT_SET))
                                return kms_fail(op, -EINVAL, "Attribute may not be set by the client");
                        if (!(d->flags & KMIP_ATTR_MULTI) && kms_object_find(o, at->name, 0))
                                return kms_fail(op, -EINVAL, "Single-valued attribute given twice");
                }
                uint32_t index = kms_object_next_index(o, at->name);
                int r = kms_attr_from_ttlv(o, at->name, index, at->value);
                if (r < 0)
                        return kms_fail(op, r, "Cannot store attribute");
        }
        return 0;
}
