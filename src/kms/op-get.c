/* Get: the key material in Raw (default for keys), Opaque (default for secret data)
 * or Transparent Symmetric Key format, optionally wrapped under another key the
 * client may use (AES key wrap with padding).
 *
 * Not for every object: a revoked one (Deactivated, Compromised) stays here, and so
 * does one its owner made non-extractable (Extractable = false, e.g. vmcrypt's
 * KEKs) or Sensitive (then only wrapped). Either attribute can only be tightened
 * (attr-edit.c), so the owner cannot turn the protection off later either. */
#include <errno.h>

#include "kms/keyblock.h"
#include "kms/kms.h"

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
