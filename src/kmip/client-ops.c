/* The client's object operations: Create, Register, Get, attributes, Locate and the
 * life cycle (Activate, Revoke, Destroy). Each builds its payload in the version the
 * client speaks (Template-Attribute for 1.x, Attributes for 2.0). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kmip/client-internal.h"
#include "kmip/tags.h"
#include "shared/log.h"

static struct ttlv *new_payload(struct ttlv_arena *a) {
        return ttlv_add_structure(a, NULL, KMIP_TAG_REQUEST_PAYLOAD);
}

static int take_uid(struct kmip_client *c, const struct ttlv *resp, char **ret_uid) {
        const char *uid;
        if (ttlv_get_text(resp, KMIP_TAG_UNIQUE_IDENTIFIER, &uid, NULL) < 0)
                return client_fail(c, -EPROTO, "%s: answer without Unique Identifier", c->servers[c->connected]);
        if (ret_uid) {
                *ret_uid = strdup(uid);
                if (!*ret_uid)
                        return -ENOMEM;
        }
        return 0;
}

static int add_common_attrs(struct ttlv_arena *a, struct kmip_attr_list *list, uint32_t alg, int32_t bits,
                            uint32_t usage_mask, const char *name, const struct kmip_attr_list *extra) {
        int r = 0;
        if (alg)
                r = kmip_attr_list_add_enum(a, list, KMIP_ATTR_CRYPTOGRAPHIC_ALGORITHM, alg);
        if (r >= 0 && bits)
                r = kmip_attr_list_add_integer(a, list, KMIP_ATTR_CRYPTOGRAPHIC_LENGTH, bits);
        if (r >= 0 && usage_mask)
                r = kmip_attr_list_add_integer(a, list, KMIP_ATTR_CRYPTOGRAPHIC_USAGE_MASK, (int32_t) usage_mask);
        if (r >= 0 && name)
                r = kmip_attr_list_add_name(a, list, name);
        for (size_t i = 0; r >= 0 && extra && i < extra->n; i++)
                r = kmip_attr_list_add(a, list, extra->items[i].name, extra->items[i].index, extra->items[i].value);
        return r;
}

int kmip_client_create(struct kmip_client *c, uint32_t alg, int32_t bits, uint32_t usage_mask,
                       const char *name, const struct kmip_attr_list *extra, char **ret_uid) {
        _cleanup_(ttlv_arena_freep) struct ttlv_arena *a = ttlv_arena_new();
        if (!a)
                return -ENOMEM;
        struct kmip_attr_list list = {};
        int r = add_common_attrs(a, &list, alg, bits, usage_mask, name, extra);
        if (r < 0)
                return r;
        struct ttlv *p = new_payload(a), *resp;
        ttlv_add_enum(a, p, KMIP_TAG_OBJECT_TYPE, KMIP_OBJECT_SYMMETRIC_KEY);
        kmip_attrs_build_container(a, p, &list, c->version);
        if (ttlv_arena_failed(a))
                return -ENOMEM;
        r = client_call(c, a, KMIP_OP_CREATE, p, &resp);
        if (r < 0)
                return r;
        return take_uid(c, resp, ret_uid);
}

int kmip_client_register(struct kmip_client *c, uint32_t object_type, uint32_t alg, uint32_t usage_mask,
                         const struct secret *material, const char *name, const struct kmip_attr_list *extra,
                         char **ret_uid) {
        if (!material || material->size == 0 || material->size > INT32_MAX / 8)
                return client_fail(c, -EINVAL, "no key material to register");
        if (object_type != KMIP_OBJECT_SYMMETRIC_KEY && object_type != KMIP_OBJECT_SECRET_DATA)
                return client_fail(c, -EOPNOTSUPP, "registering %s objects is not supported",
                                   kmip_object_type_name(object_type));
        _cleanup_(ttlv_arena_freep) struct ttlv_arena *a = ttlv_arena_new();
        if (!a)
                return -ENOMEM;
        bool sym = object_type == KMIP_OBJECT_SYMMETRIC_KEY;
        int32_t bits = (int32_t) material->size * 8;
        struct kmip_attr_list list = {};
        int r = add_common_attrs(a, &list, sym ? alg : 0, sym ? bits : 0, usage_mask, name, extra);
        if (r < 0)
                return r;

        struct ttlv *p = new_payload(a), *resp;
        ttlv_add_enum(a, p, KMIP_TAG_OBJECT_TYPE, object_type);
        kmip_attrs_build_container(a, p, &list, c->version);
        struct ttlv *obj = ttlv_add_structure(a, p, sym ? KMIP_TAG_SYMMETRIC_KEY : KMIP_TAG_SECRET_DATA);
        if (!sym)
                ttlv_add_enum(a, obj, KMIP_TAG_SECRET_DATA_TYPE, 1 /* Password */);
        struct ttlv *kb = ttlv_add_structure(a, obj, KMIP_TAG_KEY_BLOCK);
        ttlv_add_enum(a, kb, KMIP_TAG_KEY_FORMAT_TYPE, sym ? KMIP_KEY_FORMAT_RAW : KMIP_KEY_FORMAT_OPAQUE);
        struct ttlv *kv = ttlv_add_structure(a, kb, KMIP_TAG_KEY_VALUE);
        ttlv_add_bytes(a, kv, KMIP_TAG_KEY_MATERIAL, material->data, material->size);
        if (sym) {
                ttlv_add_enum(a, kb, KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM, alg);
                ttlv_add_integer(a, kb, KMIP_TAG_CRYPTOGRAPHIC_LENGTH, bits);
        }
        if (ttlv_arena_failed(a))
                return -ENOMEM;
        r = client_call(c, a, KMIP_OP_REGISTER, p, &resp);
        if (r < 0)
                return r;
        return take_uid(c, resp, ret_uid);
}

int kmip_client_get(struct kmip_client *c, const char *uid, struct secret **ret_key, struct kmip_key_info *ret_info) {
        _cleanup_(ttlv_arena_freep) struct ttlv_arena *a = ttlv_arena_new();
        if (!a)
                return -ENOMEM;
        struct ttlv *p = new_payload(a), *resp;
        ttlv_add_text(a, p, KMIP_TAG_UNIQUE_IDENTIFIER, uid);
        if (ttlv_arena_failed(a))
                return -ENOMEM;
        int r = client_call(c, a, KMIP_OP_GET, p, &resp);
        if (r < 0)
                return client_refine_state_error(c, uid, r);

        const char *name = c->servers[c->connected];
        struct kmip_key_info info = {};
        if (ttlv_get_enum(resp, KMIP_TAG_OBJECT_TYPE, &info.object_type) < 0)
                return client_fail(c, -EPROTO, "%s: Get answer without Object Type", name);
        uint32_t obj_tag = info.object_type == KMIP_OBJECT_SYMMETRIC_KEY ? KMIP_TAG_SYMMETRIC_KEY
                           : info.object_type == KMIP_OBJECT_SECRET_DATA ? KMIP_TAG_SECRET_DATA
                                                                          : 0;
        if (!obj_tag)
                return client_fail(c, -EOPNOTSUPP, "%s: object %s is a %s, not a symmetric key or secret data",
                                   name, uid, kmip_object_type_name(info.object_type));
        struct ttlv *obj, *kb, *kv;
        if (ttlv_get_structure(resp, obj_tag, &obj) < 0 || ttlv_get_structure(obj, KMIP_TAG_KEY_BLOCK, &kb) < 0 ||
            ttlv_get_enum(kb, KMIP_TAG_KEY_FORMAT_TYPE, &info.key_format) < 0)
                return client_fail(c, -EPROTO, "%s: Get answer without a Key Block", name);
        if (ttlv_find(kb, KMIP_TAG_KEY_WRAPPING_DATA))
                return client_fail(c, -EOPNOTSUPP, "%s: the server returned the key wrapped", name);
        (void) ttlv_get_enum(kb, KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM, &info.alg);
        (void) ttlv_get_integer(kb, KMIP_TAG_CRYPTOGRAPHIC_LENGTH, &info.bits);
        if (ttlv_get_structure(kb, KMIP_TAG_KEY_VALUE, &kv) < 0)
                return client_fail(c, -EPROTO, "%s: Get answer without Key Value", name);

        /* Raw/Opaque: Key Material is the bytes; Transparent Symmetric Key: a
         * structure holding Key. */
        const uint8_t *data;
        size_t size;
        struct ttlv *km = ttlv_find(kv, KMIP_TAG_KEY_MATERIAL);
        if (km && km->type == TTLV_BYTE_STRING) {
                data = km->v.bytes.data;
                size = km->v.bytes.size;
        } else if (km && km->type == TTLV_STRUCTURE && ttlv_get_bytes(km, KMIP_TAG_KEY, &data, &size) >= 0) {
        } else
                return client_fail(c, -EPROTO, "%s: Get answer with unreadable Key Material", name);
        if (size == 0)
                return client_fail(c, -EPROTO, "%s: Get answer with empty key material", name);

        struct secret *key = secret_new_copy(data, size);
        if (!key)
                return -ENOMEM;
        *ret_key = key;
        if (ret_info)
                *ret_info = info;
        return 0;
}

int kmip_client_get_attributes(struct kmip_client *c, const char *uid, const char *const *names, size_t n,
                               struct ttlv_arena *a, struct kmip_attr_list *ret) {
        struct ttlv *p = new_payload(a), *resp;
        ttlv_add_text(a, p, KMIP_TAG_UNIQUE_IDENTIFIER, uid);
        for (size_t i = 0; i < n; i++)
                kmip_attr_name_build(a, p, names[i], c->version);
        if (ttlv_arena_failed(a))
                return -ENOMEM;
        int r = client_call(c, a, KMIP_OP_GET_ATTRIBUTES, p, &resp);
        if (r < 0)
                return r;
        struct kmip_attr_list list = {};
        struct ttlv *container = resp;
        if (kmip_version_is_2x(c->version))
                container = ttlv_find(resp, KMIP_TAG_ATTRIBUTES);
        r = kmip_attrs_parse(a, container, &list);
        if (r < 0)
                return client_fail(c, r == -ENOMEM ? r : -EPROTO, "%s: malformed attributes in the answer",
                                   c->servers[c->connected]);
        *ret = list;
        return 0;
}

int kmip_client_get_state(struct kmip_client *c, const char *uid, uint32_t *ret_state) {
        _cleanup_(ttlv_arena_freep) struct ttlv_arena *a = ttlv_arena_new();
        if (!a)
                return -ENOMEM;
        const char *names[] = { KMIP_ATTR_STATE };
        struct kmip_attr_list list;
        int r = kmip_client_get_attributes(c, uid, names, 1, a, &list);
        if (r < 0)
                return r;
        struct kmip_attr *s = kmip_attr_list_find(&list, KMIP_ATTR_STATE, -1);
        if (!s || s->value->type != TTLV_ENUMERATION)
                return client_fail(c, -ENODATA, "%s: object %s has no State", c->servers[c->connected], uid);
        *ret_state = s->value->v.enumeration;
        return 0;
}

int kmip_client_add_attributes(struct kmip_client *c, const char *uid, const struct kmip_attr_list *list) {
        if (!list || list->n == 0)
                return 0;
        if (list->n > KMIP_MAX_BATCH_ITEMS)
                return -E2BIG;
        _cleanup_(ttlv_arena_freep) struct ttlv_arena *a = ttlv_arena_new();
        _cleanup_(freep) struct kmip_batch_item *items = calloc(list->n, sizeof(*items));
        if (!a || !items)
                return -ENOMEM;
        for (size_t i = 0; i < list->n; i++) {
                struct ttlv *p = new_payload(a);
                ttlv_add_text(a, p, KMIP_TAG_UNIQUE_IDENTIFIER, uid);
                struct ttlv *parent = p;
                if (kmip_version_is_2x(c->version))
                        parent = ttlv_add_structure(a, p, KMIP_TAG_NEW_ATTRIBUTE);
                kmip_attr_build(a, parent, &list->items[i], c->version);
                items[i] = (struct kmip_batch_item) { .operation = KMIP_OP_ADD_ATTRIBUTE, .payload = p };
        }
        if (ttlv_arena_failed(a))
                return -ENOMEM;
        struct kmip_message resp;
        return client_batch(c, a, items, list->n, &resp);
}

int kmip_client_modify_attribute(struct kmip_client *c, const char *uid, const struct kmip_attr *attr) {
        _cleanup_(ttlv_arena_freep) struct ttlv_arena *a = ttlv_arena_new();
        if (!a)
                return -ENOMEM;
        struct ttlv *p = new_payload(a);
        ttlv_add_text(a, p, KMIP_TAG_UNIQUE_IDENTIFIER, uid);
        struct ttlv *parent = p;
        if (kmip_version_is_2x(c->version))
                parent = ttlv_add_structure(a, p, KMIP_TAG_NEW_ATTRIBUTE);
        kmip_attr_build(a, parent, attr, c->version);
        if (ttlv_arena_failed(a))
                return -ENOMEM;
        return client_call(c, a, KMIP_OP_MODIFY_ATTRIBUTE, p, NULL);
}

int kmip_client_delete_attribute(struct kmip_client *c, const char *uid, const char *name, int32_t index) {
        _cleanup_(ttlv_arena_freep) struct ttlv_arena *a = ttlv_arena_new();
        if (!a)
                return -ENOMEM;
        struct ttlv *p = new_payload(a);
        ttlv_add_text(a, p, KMIP_TAG_UNIQUE_IDENTIFIER, uid);
        kmip_attr_name_build(a, p, name, c->version);
        if (!kmip_version_is_2x(c->version) && index > 0)
                ttlv_add_integer(a, p, KMIP_TAG_ATTRIBUTE_INDEX, index);
        if (ttlv_arena_failed(a))
                return -ENOMEM;
        return client_call(c, a, KMIP_OP_DELETE_ATTRIBUTE, p, NULL);
}

void kmip_strv_free(char **v) {
        if (!v)
                return;
        for (char **p = v; *p; p++)
                free(*p);
        free(v);
}

int kmip_client_locate(struct kmip_client *c, const struct kmip_locate_filter *f, char ***ret_uids, size_t *ret_n) {
        _cleanup_(ttlv_arena_freep) struct ttlv_arena *a = ttlv_arena_new();
        if (!a)
                return -ENOMEM;
        struct kmip_attr_list list = {};
        int r = 0;
        if (f->object_type)
                r = kmip_attr_list_add_enum(a, &list, KMIP_ATTR_OBJECT_TYPE, f->object_type);
        if (r >= 0 && f->state)
                r = kmip_attr_list_add_enum(a, &list, KMIP_ATTR_STATE, f->state);
        if (r >= 0 && f->name)
                r = kmip_attr_list_add_name(a, &list, f->name);
        for (size_t i = 0; r >= 0 && f->attrs && i < f->attrs->n; i++)
                r = kmip_attr_list_add(a, &list, f->attrs->items[i].name, f->attrs->items[i].index,
                                       f->attrs->items[i].value);
        if (r < 0)
                return r;

        struct ttlv *p = new_payload(a), *resp;
        if (f->max_items > 0)
                ttlv_add_integer(a, p, KMIP_TAG_MAXIMUM_ITEMS, f->max_items);
        if (f->offset_items > 0) {
                if (!kmip_version_is_2x(c->version) && c->version.minor < 3)
                        return client_fail(c, -EOPNOTSUPP, "Locate with an offset needs KMIP 1.3 or later");
                ttlv_add_integer(a, p, KMIP_TAG_OFFSET_ITEMS, f->offset_items);
        }
        if (kmip_version_is_2x(c->version))
                kmip_attrs_build_container(a, p, &list, c->version);
        else
                kmip_attrs_build(a, p, &list, c->version);
        if (ttlv_arena_failed(a))
                return -ENOMEM;
        r = client_call(c, a, KMIP_OP_LOCATE, p, &resp);
        if (r < 0)
                return r;

        size_t n = ttlv_count(resp, KMIP_TAG_UNIQUE_IDENTIFIER);
        char **v = calloc(n + 1, sizeof(char *));
        if (!v)
                return -ENOMEM;
        size_t k = 0;
        for (struct ttlv *u = ttlv_find(resp, KMIP_TAG_UNIQUE_IDENTIFIER); u; u = ttlv_find_next(u)) {
                if (u->type != TTLV_TEXT_STRING) {
                        kmip_strv_free(v);
                        return client_fail(c, -EPROTO, "%s: Locate answer with a malformed identifier",
                                           c->servers[c->connected]);
                }
                v[k] = strdup((const char *) u->v.bytes.data);
                if (!v[k]) {
                        kmip_strv_free(v);
                        return -ENOMEM;
                }
                k++;
        }
        *ret_uids = v;
        *ret_n = k;
        return 0;
}

static int uid_only(struct kmip_client *c, uint32_t op, const char *uid) {
        _cleanup_(ttlv_arena_freep) struct ttlv_arena *a = ttlv_arena_new();
        if (!a)
                return -ENOMEM;
        struct ttlv *p = new_payload(a);
        ttlv_add_text(a, p, KMIP_TAG_UNIQUE_IDENTIFIER, uid);
        if (ttlv_arena_failed(a))
                return -ENOMEM;
        return client_call(c, a, op, p, NULL);
}

int kmip_client_activate(struct kmip_client *c, const char *uid) {
        return uid_only(c, KMIP_OP_ACTIVATE, uid);
}

int kmip_client_destroy(struct kmip_client *c, const char *uid) {
        return uid_only(c, KMIP_OP_DESTROY, uid);
}

int kmip_client_revoke(struct kmip_client *c, const char *uid, uint32_t reason, const char *message,
                       int64_t compromise_time) {
        _cleanup_(ttlv_arena_freep) struct ttlv_arena *a = ttlv_arena_new();
        if (!a)
                return -ENOMEM;
        struct ttlv *p = new_payload(a);
        ttlv_add_text(a, p, KMIP_TAG_UNIQUE_IDENTIFIER, uid);
        struct ttlv *rr = ttlv_add_structure(a, p, KMIP_TAG_REVOCATION_REASON);
        ttlv_add_enum(a, rr, KMIP_TAG_REVOCATION_REASON_CODE, reason);
        if (message)
                ttlv_add_text(a, rr, KMIP_TAG_REVOCATION_MESSAGE, message);
        if (reason == KMIP_REVOKE_KEY_COMPROMISE || reason == KMIP_REVOKE_CA_COMPROMISE)
                ttlv_add_date_time(a, p, KMIP_TAG_COMPROMISE_OCCURRENCE_DATE,
                                   compromise_time ? compromise_time : (int64_t) time(NULL));
        if (ttlv_arena_failed(a))
                return -ENOMEM;
        return client_call(c, a, KMIP_OP_REVOKE, p, NULL);
}

/* Beside kmip_client_get_state, which it asks: see client-internal.h. */
int client_refine_state_error(struct kmip_client *c, const char *uid, int r) {
        if (r != -EACCES && r != -EPERM && r != -ENOKEY && r != -EINVAL)
                return r;
        char saved[KMIP_CLIENT_ERROR_MAX];
        memcpy(saved, c->error, sizeof(saved));
        uint32_t state;
        int k = kmip_client_get_state(c, uid, &state);
        memcpy(c->error, saved, sizeof(saved));
        if (k < 0)
                return r;
        size_t len = strlen(c->error);
        switch (state) {
        case KMIP_STATE_PRE_ACTIVE:
                r = -ENOKEY;
                break;
        case KMIP_STATE_DEACTIVATED:
        case KMIP_STATE_COMPROMISED:
                r = -EKEYREVOKED;
                break;
        case KMIP_STATE_DESTROYED:
        case KMIP_STATE_DESTROYED_COMPROMISED:
                r = -EIDRM;
                break;
        default:
                return r;
        }
        snprintf(c->error + len, sizeof(c->error) - len, " (key %s is %s)", uid, kmip_state_name(state));
        return r;
}
