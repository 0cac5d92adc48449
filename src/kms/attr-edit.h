/* What AddAttribute, ModifyAttribute, DeleteAttribute and SetAttribute share: reading
 * the attribute of the request in 1.x or 2.0 form, the rules on which attributes a
 * client may change, and the locked read-modify-write of the object. */
#pragma once

#include "kms/kms.h"

/* The attribute in container tag (1.x: Attribute; 2.0: New/Current Attribute). */
int attr_edit_parse(struct kms_op *op, uint32_t tag, struct kmip_attr *ret);
/* May a client add/modify/delete this attribute? */
int attr_edit_allowed(struct kms_op *op, const char *name, unsigned need_flag);
/* Refuse an edit that would loosen Extractable (false) or Sensitive (true) of o:
 * value is the new value, NULL for a deletion. */
int attr_edit_one_way(struct kms_op *op, const struct kms_object *o, const char *name, const struct ttlv *value);
/* Answer with Unique Identifier and (1.x) the attribute as it now is. */
int attr_edit_reply(struct kms_op *op, const struct kms_object *o, const char *name, uint32_t index);

/* Where the new value goes in the loaded object: set *index, or fail (kms_fail)
 * when the object does not allow this edit. */
typedef int attr_edit_place_fn(struct kms_op *op, const struct kms_object *o, const struct kmip_attr *at,
                               uint32_t *index);
/* AddAttribute, ModifyAttribute and SetAttribute: read the request's New Attribute,
 * check the client may edit it (need_flag), then under the object's lock load it,
 * place the value, store it durably and answer. */
int attr_edit_set(struct kms_op *op, unsigned need_flag, attr_edit_place_fn *place);
