/* GetAttributeList: the names of the attributes an object has. */
#include <errno.h>
#include <string.h>

#include "kms/kms.h"

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
