/* The attribute operations: GetAttributes, GetAttributeList, and the edits
 * (AddAttribute, ModifyAttribute, DeleteAttribute, SetAttribute) that share one
 * locked read-modify-write. */
#include <errno.h>
#include <string.h>

#include "kms/kms.h"

/* What AddAttribute, ModifyAttribute, DeleteAttribute and SetAttribute share: reading
 * the attribute of the request in 1.x or 2.0 form, the rules on which attributes a
 * client may change, and the locked read-modify-write of the object. */

/* The attribute in container tag (1.x: Attribute; 2.0: New/Current Attribute). */
static int attr_edit_parse(struct kms_op *op, uint32_t tag, struct kmip_attr *ret);
/* May a client add/modify/delete this attribute? */
static int attr_edit_allowed(struct kms_op *op, const char *name, unsigned need_flag);
/* Refuse an edit that would loosen Extractable (false) or Sensitive (true) of o:
 * value is the new value, NULL for a deletion. */
static int attr_edit_one_way(struct kms_op *op, const struct kms_object *o, const char *name, const struct ttlv *value);
/* Answer with Unique Identifier and (1.x) the attribute as it now is. */
static int attr_edit_reply(struct kms_op *op, const struct kms_object *o, const char *name, uint32_t index);

/* Where the new value goes in the loaded object: set *index, or fail (kms_fail)
 * when the object does not allow this edit. */
typedef int attr_edit_place_fn(struct kms_op *op, const struct kms_object *o, const struct kmip_attr *at,
                               uint32_t *index);
/* AddAttribute, ModifyAttribute and SetAttribute: read the request's New Attribute,
 * check the client may edit it (need_flag), then under the object's lock load it,
 * place the value, store it durably and answer. */
static int attr_edit_set(struct kms_op *op, unsigned need_flag, attr_edit_place_fn *place);

static int attr_edit_parse(struct kms_op *op, uint32_t tag, struct kmip_attr *ret) {
        struct ttlv *c = ttlv_find(op->req, kmip_version_is_2x(op->v) ? tag : KMIP_TAG_ATTRIBUTE);
        if (!c)
                return kms_fail(op, -ENODATA, "Attribute missing");
        /* 2.0 wraps the attribute element (or Vendor Attribute) in New/Current Attribute. */
        const struct ttlv *node = kmip_version_is_2x(op->v) ? c->child : c;
        if (!node || kmip_attr_parse(op->a, node, ret) < 0)
                return kms_fail(op, -EPROTO, "Malformed attribute");
        return 0;
}

static int attr_edit_allowed(struct kms_op *op, const char *name, unsigned need_flag) {
        if (kmip_attr_name_is_custom(name))
                return 0;
        const struct kmip_attr_def *d = kmip_attr_def_by_name(name);
        if (!d)
                return kms_fail(op, -EINVAL, "Unknown attribute");
        if (!(d->flags & need_flag))
                return kms_fail(op, -EPERM, "Attribute is read-only for clients");
        return 0;
}

/* Extractable and Sensitive protect the key material from its own owner's later
 * mistakes (or a stolen owner certificate): they only ever tighten, as KMIP 1.4
 * §3.48-3.49 requires. A protected value is the one whose loss would let the key
 * out: Extractable false, Sensitive true. */
static bool is_protected(const char *name, int64_t v) {
        if (strcmp(name, KMIP_ATTR_EXTRACTABLE) == 0)
                return !v;
        if (strcmp(name, KMIP_ATTR_SENSITIVE) == 0)
                return v;
        return false;
}

static int attr_edit_one_way(struct kms_op *op, const struct kms_object *o, const char *name, const struct ttlv *value) {
        /* The same holds for the attestation requirement: once a key is released only
         * to attested hosts, no client (its owner included) may change or drop that. */
        if (strcmp(name, KMS_ATTR_REQUIRE_ATTESTATION) == 0 && kms_object_find(o, name, 0))
                return kms_fail(op, -EPERM, KMS_ATTR_REQUIRE_ATTESTATION " is set: it cannot be changed or removed");
        int64_t old;
        if (kms_object_get_int(o, name, &old) < 0 || !is_protected(name, old))
                return 0;
        if (value && value->type == TTLV_BOOLEAN && is_protected(name, value->v.boolean))
                return 0;
        return kms_fail(op, -EPERM, "Extractable can only become false and Sensitive only true");
}

static int attr_edit_reply(struct kms_op *op, const struct kms_object *o, const char *name, uint32_t index) {
        ttlv_add_text(op->a, op->resp, KMIP_TAG_UNIQUE_IDENTIFIER, o->id);
        if (kmip_version_is_2x(op->v))
                return 0;
        const struct kms_attr *at = kms_object_find(o, name, index);
        if (!at)
                return 0;
        struct ttlv *v = kms_attr_to_ttlv(op->a, at);
        if (!v)
                return -ENOMEM;
        struct kmip_attr ka = { .name = name, .index = (int32_t) index, .value = v };
        return kmip_attr_build(op->a, op->resp, &ka, op->v) ? 0 : -ENOMEM;
}

static int attr_edit_set(struct kms_op *op, unsigned need_flag, attr_edit_place_fn *place) {
        const char *uid;
        int r = kms_op_uid(op, &uid);
        if (r < 0)
                return r;
        struct kmip_attr at;
        r = attr_edit_parse(op, KMIP_TAG_NEW_ATTRIBUTE, &at);
        if (r < 0)
                return r;
        r = attr_edit_allowed(op, at.name, need_flag);
        if (r < 0)
                return r;
        pthread_mutex_t *l = kms_lock(op->dispatcher, uid);
        pthread_mutex_lock(l);
        _cleanup_(kms_object_freep) struct kms_object *o = NULL;
        uint32_t index = 0;
        r = kms_load(op, uid, &o);
        if (r == 0)
                r = attr_edit_one_way(op, o, at.name, at.value);
        if (r == 0)
                r = place(op, o, &at, &index);
        if (r < 0)
                goto out;
        r = kms_attr_from_ttlv(o, at.name, index, at.value);
        if (r == 0)
                r = kms_touch(o);
        if (r == 0)
                r = kms_store_object(op, o);
        if (r < 0) {
                if (!op->message) /* kms_store_object's says why */
                        r = kms_fail(op, r, "Could not store the attribute");
                goto out;
        }
        r = attr_edit_reply(op, o, at.name, index);
out:
        pthread_mutex_unlock(l);
        return r;
}

/* GetAttributes: the named attributes (all when none is named). Absent attributes
 * are simply left out: vCenter asks for x-Vendor & co. on fresh keys and needs a
 * Success that carries only the Unique Identifier. */
int op_get_attributes(struct kms_op *op) {
        const char *uid;
        int r = kms_op_uid(op, &uid);
        if (r < 0)
                return r;
        const char *names[256];
        size_t n = 0;
        r = kmip_attr_names_parse(op->a, op->req, names, ELEMENTSOF(names), &n);
        if (r < 0)
                return kms_fail(op, r == -E2BIG ? -EINVAL : -EPROTO, "Malformed attribute names");
        _cleanup_(kms_object_freep) struct kms_object *o = NULL;
        r = kms_load(op, uid, &o);
        if (r < 0)
                return r;
        struct kmip_attr_list list = {};
        r = kms_attrs_collect(op, o, n ? names : NULL, n, &list);
        if (r < 0)
                return r;
        ttlv_add_text(op->a, op->resp, KMIP_TAG_UNIQUE_IDENTIFIER, o->id);
        struct ttlv *parent = op->resp;
        if (kmip_version_is_2x(op->v))
                parent = ttlv_add_structure(op->a, op->resp, KMIP_TAG_ATTRIBUTES);
        return kmip_attrs_build(op->a, parent, &list, op->v);
}

/* GetAttributeList: the names of the attributes an object has. */
int op_get_attribute_list(struct kms_op *op) {
        const char *uid;
        int r = kms_op_uid(op, &uid);
        if (r < 0)
                return r;
        _cleanup_(kms_object_freep) struct kms_object *o = NULL;
        r = kms_load(op, uid, &o);
        if (r < 0)
                return r;
        struct kmip_attr_list list = {};
        r = kms_attrs_collect(op, o, NULL, 0, &list);
        if (r < 0)
                return r;
        ttlv_add_text(op->a, op->resp, KMIP_TAG_UNIQUE_IDENTIFIER, o->id);
        kmip_attr_name_build(op->a, op->resp, KMIP_ATTR_UNIQUE_IDENTIFIER, op->v);
        for (size_t i = 0; i < list.n; i++) {
                /* One name per attribute, however many instances it has. */
                int seen = 0;
                for (size_t j = 0; j < i && !seen; j++)
                        seen = strcmp(list.items[j].name, list.items[i].name) == 0;
                if (!seen)
                        kmip_attr_name_build(op->a, op->resp, list.items[i].name, op->v);
        }
        return 0;
}

/* AddAttribute: a new instance of an attribute (custom ones of any type; standard
 * ones clients may set). vCenter sends three in one batch per key. */
/* After the last instance; a single-valued attribute only if absent. */
static int place_new(struct kms_op *op, const struct kms_object *o, const struct kmip_attr *at, uint32_t *index) {
        const struct kmip_attr_def *d = kmip_attr_def_by_name(at->name);
        if (d && !(d->flags & KMIP_ATTR_MULTI) && kms_object_find(o, at->name, 0))
                return kms_fail(op, -EEXIST, "Single-valued attribute already present");
        *index = kms_object_next_index(o, at->name);
        return 0;
}

int op_add_attribute(struct kms_op *op) {
        return attr_edit_set(op, KMIP_ATTR_CLIENT_SET, place_new);
}

/* ModifyAttribute: change the value of an existing attribute instance (index 0
 * unless given). */
/* The instance the request names, which must exist. */
static int place_existing(struct kms_op *op, const struct kms_object *o, const struct kmip_attr *at,
                          uint32_t *index) {
        *index = at->index > 0 ? (uint32_t) at->index : 0;
        if (!kms_object_find(o, at->name, *index))
                return kms_fail(op, -ENOENT, "Attribute not found");
        return 0;
}

int op_modify_attribute(struct kms_op *op) {
        return attr_edit_set(op, KMIP_ATTR_CLIENT_MODIFY, place_existing);
}

/* The index of the instance of name whose value is want (KMIP 2.0 names the
 * instance to delete by its value, not by an index). */
static bool instance_with_value(struct kms_op *op, const struct kms_object *o, const char *name,
                                const struct ttlv *want, uint32_t *ret_index) {
        for (size_t i = 0; i < o->n_attrs; i++) {
                const struct kms_attr *at = &o->attrs[i];
                if (strcmp(at->name, name) != 0)
                        continue;
                struct ttlv *v = kms_attr_to_ttlv(op->a, at);
                if (!v)
                        continue;
                v->tag = want->tag; /* the element's tag differs between the forms */
                if (ttlv_equal(v, want)) {
                        *ret_index = at->index;
                        return true;
                }
        }
        return false;
}

/* DeleteAttribute: remove an attribute instance (1.x: index 0 unless given; 2.0:
 * the one whose value the Current Attribute gives, else the first). */
int op_delete_attribute(struct kms_op *op) {
        const char *uid;
        int r = kms_op_uid(op, &uid);
        if (r < 0)
                return r;
        const char *name = NULL;
        uint32_t index = 0;
        const struct ttlv *want = NULL; /* 2.0 Current Attribute: the instance with this value */
        if (kmip_version_is_2x(op->v)) {
                struct kmip_attr at;
                const char *names[1];
                size_t n = 0;
                if (ttlv_find(op->req, KMIP_TAG_CURRENT_ATTRIBUTE)) {
                        r = attr_edit_parse(op, KMIP_TAG_CURRENT_ATTRIBUTE, &at);
                        if (r < 0)
                                return r;
                        name = at.name;
                        want = at.value;
                } else if (kmip_attr_names_parse(op->a, op->req, names, 1, &n) == 0 && n == 1)
                        name = names[0];
        } else {
                int32_t idx = 0;
                if (ttlv_get_text(op->req, KMIP_TAG_ATTRIBUTE_NAME, &name, NULL) < 0)
                        name = NULL;
                if (ttlv_get_integer(op->req, KMIP_TAG_ATTRIBUTE_INDEX, &idx) == 0 && idx > 0)
                        index = (uint32_t) idx;
        }
        if (!name)
                return kms_fail(op, -ENODATA, "Attribute name missing");
        r = attr_edit_allowed(op, name, KMIP_ATTR_CLIENT_MODIFY);
        if (r < 0)
                return r;
        pthread_mutex_t *l = kms_lock(op->dispatcher, uid);
        pthread_mutex_lock(l);
        _cleanup_(kms_object_freep) struct kms_object *o = NULL;
        r = kms_load(op, uid, &o);
        if (r < 0)
                goto out;
        if (want && !instance_with_value(op, o, name, want, &index)) {
                r = kms_fail(op, -ENOENT, "Attribute not found");
                goto out;
        }
        const struct kms_attr *old = kms_object_find(o, name, index);
        if (!old) {
                r = kms_fail(op, -ENOENT, "Attribute not found");
                goto out;
        }
        r = attr_edit_one_way(op, o, name, NULL);
        if (r < 0)
                goto out;
        /* 1.x answers with the deleted attribute: build it before it goes. */
        ttlv_add_text(op->a, op->resp, KMIP_TAG_UNIQUE_IDENTIFIER, o->id);
        if (!kmip_version_is_2x(op->v)) {
                struct kmip_attr ka = { .name = name, .index = (int32_t) index, .value = kms_attr_to_ttlv(op->a, old) };
                if (!ka.value || !kmip_attr_build(op->a, op->resp, &ka, op->v)) {
                        r = -ENOMEM;
                        goto out;
                }
        }
        r = kms_object_remove(o, name, index);
        if (r == 0)
                r = kms_touch(o);
        if (r == 0)
                r = kms_store_object(op, o);
        if (r < 0 && !op->message) /* kms_store_object's says why */
                r = kms_fail(op, r, "Could not store the change");
out:
        pthread_mutex_unlock(l);
        return r;
}

/* SetAttribute (KMIP 2.0): set a single-valued attribute, adding it if absent. */
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
