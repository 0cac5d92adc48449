/* The operations on whole objects: Create, Register, Get and Locate. The dispatch
 * table in dispatch.c is the one place that lists every operation. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kms/keyblock.h"
#include "kms/kms.h"

/* Create: a new AES key (128, 192 or 256 bits) from the CSPRNG, owned by the client,
 * Pre-Active unless an Activation Date not in the future was given. The reply is
 * sent only once the key is durable. */
int create_common(struct kms_op *op, struct kms_object *o, struct kmip_attr_list *attrs) {
        struct ttlv *c = ttlv_find(op->req, kmip_version_is_2x(op->v) ? KMIP_TAG_ATTRIBUTES : KMIP_TAG_TEMPLATE_ATTRIBUTE);
        if (c && kmip_attrs_parse(op->a, c, attrs) < 0)
                return kms_fail(op, -EPROTO, "Malformed attributes");
        kms_new_id(o->id);
        snprintf(o->owner, sizeof(o->owner), "%s", op->client->cn);
        o->state = KMIP_STATE_PRE_ACTIVE;
        int r = kms_attrs_apply_client(op, o, attrs);
        if (r < 0)
                return r;
        int64_t now = kms_now();
        if (kms_object_set_int(o, KMIP_ATTR_INITIAL_DATE, KMS_T_DATETIME, now) < 0 || kms_touch(o) < 0)
                return -ENOMEM;
        kms_object_apply_dates(o, now);
        return 0;
}

/* Store, answer with Unique Identifier, and remember it as the batch's placeholder.
 * In the network loop the write is only queued: the reply waits for it (kms_defer). */
int create_finish(struct kms_op *op, struct kms_object *o) {
        int r = kms_store_object(op, o);
        if (r < 0)
                return r;
        snprintf(op->placeholder, KMS_ID_MAX, "%s", o->id);
        /* Create answers Object Type and Unique Identifier; Register only the latter. */
        if (op->operation == KMIP_OP_CREATE)
                ttlv_add_enum(op->a, op->resp, KMIP_TAG_OBJECT_TYPE, o->object_type);
        ttlv_add_text(op->a, op->resp, KMIP_TAG_UNIQUE_IDENTIFIER, o->id);
        return 0;
}

int op_create(struct kms_op *op) {
        uint32_t type;
        if (ttlv_get_enum(op->req, KMIP_TAG_OBJECT_TYPE, &type) < 0)
                return kms_fail(op, -ENODATA, "Object Type missing");
        if (type != KMIP_OBJECT_SYMMETRIC_KEY)
                return kms_fail(op, -EOPNOTSUPP, "Only symmetric keys can be created");
        _cleanup_(kms_object_freep) struct kms_object *o = kms_object_new();
        if (!o)
                return -ENOMEM;
        o->object_type = type;
        struct kmip_attr_list attrs = {};
        int r = create_common(op, o, &attrs);
        if (r < 0)
                return r;
        int64_t alg, bits;
        if (kms_object_get_int(o, KMIP_ATTR_CRYPTOGRAPHIC_ALGORITHM, &alg) < 0)
                return kms_fail(op, -ENODATA, "Cryptographic Algorithm missing");
        if (alg != KMIP_ALG_AES)
                return kms_fail(op, -EOPNOTSUPP, "Only AES keys can be created");
        if (kms_object_get_int(o, KMIP_ATTR_CRYPTOGRAPHIC_LENGTH, &bits) < 0)
                return kms_fail(op, -ENODATA, "Cryptographic Length missing");
        if (bits != 128 && bits != 192 && bits != 256)
                return kms_fail(op, -EINVAL, "AES keys are 128, 192 or 256 bits");
        r = secret_new_random((size_t) bits / 8, &o->key);
        if (r < 0)
                return kms_fail(op, r, "Random number generator failed");
        return create_finish(op, o);
}

/* Register: store a key (Symmetric Key) or secret (Secret Data) the client brings. */
int op_register(struct kms_op *op) {
        uint32_t type;
        if (ttlv_get_enum(op->req, KMIP_TAG_OBJECT_TYPE, &type) < 0)
                return kms_fail(op, -ENODATA, "Object Type missing");
        uint32_t tag = type == KMIP_OBJECT_SYMMETRIC_KEY ? KMIP_TAG_SYMMETRIC_KEY :
                       type == KMIP_OBJECT_SECRET_DATA ? KMIP_TAG_SECRET_DATA : 0;
        if (!tag)
                return kms_fail(op, -EOPNOTSUPP, "Only Symmetric Key and Secret Data can be registered");
        struct ttlv *obj;
        if (ttlv_get_structure(op->req, tag, &obj) < 0)
                return kms_fail(op, -ENODATA, "Object missing");
        _cleanup_(kms_object_freep) struct kms_object *o = kms_object_new();
        if (!o)
                return -ENOMEM;
        o->object_type = type;
        uint32_t alg;
        int32_t bits;
        int r = keyblock_parse(op, obj, &o->key, &alg, &bits);
        if (r < 0)
                return r;
        struct kmip_attr_list attrs = {};
        r = create_common(op, o, &attrs);
        if (r < 0)
                return r;
        /* The Key Block's algorithm and length are attributes too, unless given. */
        if (alg && !kms_object_find(o, KMIP_ATTR_CRYPTOGRAPHIC_ALGORITHM, 0) &&
            kms_object_set_int(o, KMIP_ATTR_CRYPTOGRAPHIC_ALGORITHM, KMS_T_ENUM, alg) < 0)
                return -ENOMEM;
        if (bits > 0 && !kms_object_find(o, KMIP_ATTR_CRYPTOGRAPHIC_LENGTH, 0) &&
            kms_object_set_int(o, KMIP_ATTR_CRYPTOGRAPHIC_LENGTH, KMS_T_INTEGER, bits) < 0)
                return -ENOMEM;
        /* A key whose length disagrees with its bytes would fail later, far from
         * the cause: refuse it now. */
        int64_t a = 0, len = 0;
        (void) kms_object_get_int(o, KMIP_ATTR_CRYPTOGRAPHIC_ALGORITHM, &a);
        if (kms_object_get_int(o, KMIP_ATTR_CRYPTOGRAPHIC_LENGTH, &len) == 0 && type == KMIP_OBJECT_SYMMETRIC_KEY &&
            (uint64_t) len != 8 * o->key->size)
                return kms_fail(op, -EINVAL, "Cryptographic Length does not match the key material");
        if (a == KMIP_ALG_AES && o->key->size != 16 && o->key->size != 24 && o->key->size != 32)
                return kms_fail(op, -EINVAL, "AES keys are 16, 24 or 32 bytes");
        return create_finish(op, o);
}

/* Get: the key material in Raw (default for keys), Opaque (default for secret data)
 * or Transparent Symmetric Key format, optionally wrapped under another key the
 * client may use (AES key wrap with padding).
 *
 * Not for every object: a revoked one (Deactivated, Compromised) stays here, and so
 * does one its owner made non-extractable (Extractable = false, e.g. vmcrypt's
 * KEKs) or Sensitive (then only wrapped). Either attribute can only be tightened
 * (attr-edit.c), so the owner cannot turn the protection off later either. */
int op_get(struct kms_op *op) {
        const char *uid;
        int r = kms_op_uid(op, &uid);
        if (r < 0)
                return r;
        _cleanup_(kms_object_freep) struct kms_object *o = NULL;
        r = kms_load(op, uid, &o);
        if (r < 0)
                return r;
        r = kms_require_active(op, o, true);
        if (r < 0)
                return r;
        if (kms_attest_required(o, NULL, 0))
                return kms_fail(op, -EACCES,
                                "The key is released only to attested hosts, through Decrypt: Get is refused");
        int64_t flag;
        if (kms_object_get_int(o, KMIP_ATTR_EXTRACTABLE, &flag) == 0 && !flag)
                return kms_fail(op, -EXDEV, "Key is not extractable (Extractable = false): use it with Encrypt/Decrypt");
        uint32_t fmt = 0, comp;
        if (ttlv_get_enum(op->req, KMIP_TAG_KEY_FORMAT_TYPE, &fmt) == -EPROTO)
                return kms_fail(op, -EPROTO, "Key Format Type must be an Enumeration");
        if (ttlv_get_enum(op->req, KMIP_TAG_KEY_COMPRESSION_TYPE, &comp) == 0)
                return kms_fail(op, -EOPNOTSUPP, "Key compression is not supported");

        _cleanup_(kms_object_freep) struct kms_object *wk = NULL;
        struct ttlv *spec = ttlv_find(op->req, KMIP_TAG_KEY_WRAPPING_SPECIFICATION);
        if (!spec && kms_object_get_int(o, KMIP_ATTR_SENSITIVE, &flag) == 0 && flag)
                return kms_fail(op, -EACCES, "Key is Sensitive: Get it only wrapped (Key Wrapping Specification)");
        if (spec) {
                struct ttlv *eki;
                const char *wid;
                if (ttlv_get_structure(spec, KMIP_TAG_ENCRYPTION_KEY_INFORMATION, &eki) < 0 ||
                    ttlv_get_text(eki, KMIP_TAG_UNIQUE_IDENTIFIER, &wid, NULL) < 0)
                        return kms_fail(op, -ENODATA, "Wrapping key identifier missing");
                struct kms_op wop = *op;
                r = kms_load(&wop, wid, &wk);
                if (r < 0)
                        return kms_fail(op, r, "Wrapping key not found");
                if (!wk->key || wk->state != KMIP_STATE_ACTIVE)
                        return kms_fail(op, -ENOKEY, "Wrapping key is not active");
        }
        ttlv_add_enum(op->a, op->resp, KMIP_TAG_OBJECT_TYPE, o->object_type);
        ttlv_add_text(op->a, op->resp, KMIP_TAG_UNIQUE_IDENTIFIER, o->id);
        return keyblock_build(op, op->resp, o, fmt, wk, spec);
}

/* Locate: objects the client may see that match every attribute given (Object Type,
 * State and the first Name are filtered by the store; the rest here by value), in
 * creation order, with Offset Items and Maximum Items. Destroyed objects are found
 * only when a State is asked for explicitly. */
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
        if (!kms_policy_allows_all(op->dispatcher->config, cl->cn, cl->fingerprint, KMIP_OP_LOCATE))
                f.owner = op->client->cn;

        /* The stored state may lag behind the dates (see kms_object_apply_dates), so
         * the state is compared here, not in the store. */
        uint32_t want_state = f.state;
        f.state = 0;
        store_id *ids = NULL;
        size_t n = 0;
        int r = store_list(op->dispatcher->store, &f, &ids, &n);
        if (r < 0)
                return kms_fail(op, r, "Storage failure");
        size_t found = 0, skipped = 0;
        struct ttlv *count = NULL;
        if (kmip_version_cmp(op->v, KMIP_VERSION(1, 3)) >= 0)
                count = ttlv_add_integer(op->a, op->resp, KMIP_TAG_LOCATED_ITEMS, 0);
        for (size_t i = 0; i < n && r == 0; i++) {
                _cleanup_(kms_object_freep) struct kms_object *o = NULL;
                if (store_get_meta(op->dispatcher->store, ids[i], &o) < 0)
                        continue;
                kms_object_apply_dates(o, kms_now());
                if (want_state ? o->state != want_state
                               : (o->state == KMIP_STATE_DESTROYED || o->state == KMIP_STATE_DESTROYED_COMPROMISED))
                        continue;
                if (!kms_policy_allows(op->dispatcher->config, cl->cn, cl->fingerprint, o->owner, KMIP_OP_LOCATE))
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
