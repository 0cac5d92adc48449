/* DiscoverVersions: the versions both sides speak, in our order of preference; an
 * empty request gets them all. vCenter sends it at the start of every connection. */
#include <errno.h>

#include "kms/kms.h"

int op_discover_versions(struct kms_op *op) {
        struct kmip_version theirs[32], out[32];
        size_t n = 0;
        if (op->req && kmip_versions_parse(op->req, theirs, ELEMENTSOF(theirs), &n) < 0)
                return kms_fail(op, -EPROTO, "Malformed Protocol Version list");
        size_t k = kmip_versions_negotiate(theirs, n, kmip_versions_supported, kmip_n_versions_supported, out);
        return kmip_versions_add(op->a, op->resp, out, k);
}
