/* What AddAttribute, ModifyAttribute, DeleteAttribute and SetAttribute share: reading
 * the attribute of the request in 1.x or 2.0 form, the rules on which attributes a
 * client may change, and the locked read-modify-write of the object. */
#pragma once

#include "kms/kms.h"

/* The attribute in container tag (1.x: Attribute; 2.0: New/Current Attribute). */
int attr_edit_parse(struct kms_op *op, uint32_t tag, struct kmip_attr *ret);
/* May a client add/modify/delete this attribute? */
int attr_edit_allowed(struct kms_op *op, const char *name, unsigned need_flag);
/* Answer with Unique Identifier and (1.x) the attribute as it now is. */
int attr_edit_reply(struct kms_op *op, const struct kms_object *o, const char *name, uint32_t index);
