/* The operations about the server itself: Query and DiscoverVersions. */
#include <errno.h>

#include "kms/kms.h"

/* Query: the operations and object types served, and server information (vCenter
 * asks for the latter once per connection). */
static const uint32_t served_ops[] = {
        KMIP_OP_CREATE, KMIP_OP_REGISTER, KMIP_OP_LOCATE, KMIP_OP_GET, KMIP_OP_GET_ATTRIBUTES,
        KMIP_OP_GET_ATTRIBUTE_LIST, KMIP_OP_ADD_ATTRIBUTE, KMIP_OP_MODIFY_ATTRIBUTE,
        KMIP_OP_DELETE_ATTRIBUTE, KMIP_OP_ACTIVATE, KMIP_OP_REVOKE, KMIP_OP_DESTROY, KMIP_OP_QUERY,
        KMIP_OP_DISCOVER_VERSIONS, KMIP_OP_ENCRYPT, KMIP_OP_DECRYPT,
};

int op_query(struct kms_op *op) {
        for (struct ttlv *f = ttlv_find(op->req, KMIP_TAG_QUERY_FUNCTION); f; f = ttlv_find_next(f)) {
                if (f->type != TTLV_ENUMERATION)
                        return kms_fail(op, -EPROTO, "Query Function must be an Enumeration");
                switch (f->v.enumeration) {
                case KMIP_QUERY_OPERATIONS:
                        for (size_t i = 0; i < ELEMENTSOF(served_ops); i++)
                                ttlv_add_enum(op->a, op->resp, KMIP_TAG_OPERATION, served_ops[i]);
                        if (kmip_version_is_2x(op->v))
                                ttlv_add_enum(op->a, op->resp, KMIP_TAG_OPERATION, KMIP_OP_SET_ATTRIBUTE);
                        break;
                case KMIP_QUERY_OBJECTS:
                        ttlv_add_enum(op->a, op->resp, KMIP_TAG_OBJECT_TYPE, KMIP_OBJECT_SYMMETRIC_KEY);
                        ttlv_add_enum(op->a, op->resp, KMIP_TAG_OBJECT_TYPE, KMIP_OBJECT_SECRET_DATA);
                        break;
                case KMIP_QUERY_SERVER_INFORMATION: {
                        ttlv_add_text(op->a, op->resp, KMIP_TAG_VENDOR_IDENTIFICATION, "vmcrypt");
                        struct ttlv *si = ttlv_add_structure(op->a, op->resp, KMIP_TAG_SERVER_INFORMATION);
                        if (kmip_version_is_2x(op->v)) {
                                ttlv_add_text(op->a, si, KMIP_TAG_SERVER_NAME, "vmcrypt-kms");
                                ttlv_add_text(op->a, si, KMIP_TAG_SERVER_VERSION, VMCRYPT_VERSION);
                                ttlv_add_text(op->a, si, KMIP_TAG_PRODUCT_NAME, "vmcrypt");
                        }
                        break;
                }
                default:
                        /* Functions we have nothing to say about are answered with nothing. */
                        break;
                }
        }
        return 0;
}

/* DiscoverVersions: the versions both sides speak, in our order of preference; an
 * empty request gets them all. vCenter sends it at the start of every connection. */
int op_discover_versions(struct kms_op *op) {
        struct kmip_version theirs[32], out[32];
        size_t n = 0;
        if (op->req && kmip_versions_parse(op->req, theirs, ELEMENTSOF(theirs), &n) < 0)
                return kms_fail(op, -EPROTO, "Malformed Protocol Version list");
        size_t k = kmip_versions_negotiate(theirs, n, kmip_versions_supported, kmip_n_versions_supported, out);
        return kmip_versions_add(op->a, op->resp, out, k);
}
