/* The cryptographic operations: Encrypt and Decrypt with a managed key. */
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/ciphers.h"
#include "crypto/keywrap.h"
#include "kms/keyblock.h"
#include "kms/kms.h"
#include "shared/log.h"

/* Encrypt and Decrypt with a key that never leaves the server: AES-GCM (AEAD, the
 * default), AES key wrap with padding (RFC 5649, so a 32-byte secret can be wrapped
 * and unwrapped by a KEK held here) and AES-CBC with PKCS#5 padding. */

struct params {
        uint32_t mode, padding;
        int32_t tag_len;
        bool random_iv;
};

static const EVP_CIPHER *evp_for(uint32_t mode, size_t keylen) {
        switch (mode) {
        case KMIP_MODE_GCM:
                return aes_cipher(AES_MODE_GCM, keylen);
        case KMIP_MODE_CBC:
                return aes_cipher(AES_MODE_CBC, keylen);
        default:
                return NULL;
        }
}

static int read_params(struct kms_op *op, const struct kms_object *o, struct params *p) {
        *p = (struct params) { .mode = KMIP_MODE_GCM, .padding = KMIP_PADDING_NONE, .tag_len = 16 };
        struct ttlv *cp = ttlv_find(op->req, KMIP_TAG_CRYPTOGRAPHIC_PARAMETERS);
        struct ttlv *stored = NULL;
        if (!cp) {
                /* Fall back on the object's own Cryptographic Parameters attribute. */
                const struct kms_attr *a = kms_object_find(o, KMIP_ATTR_CRYPTOGRAPHIC_PARAMETERS, 0);
                if (a)
                        cp = stored = kms_attr_to_ttlv(op->a, a);
        }
        if (!cp)
                return 0;
        (void) ttlv_get_enum(cp, KMIP_TAG_BLOCK_CIPHER_MODE, &p->mode);
        (void) ttlv_get_enum(cp, KMIP_TAG_PADDING_METHOD, &p->padding);
        (void) ttlv_get_integer(cp, KMIP_TAG_TAG_LENGTH, &p->tag_len);
        (void) ttlv_get_bool(cp, KMIP_TAG_RANDOM_IV, &p->random_iv);
        uint32_t alg;
        if (ttlv_get_enum(cp, KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM, &alg) == 0 && alg != KMIP_ALG_AES)
                return kms_fail(op, -EOPNOTSUPP, "Only AES is supported");
        return 0;
}

static int run(struct kms_op *op, int enc, const struct secret *key, const struct params *p, bool may_choose_iv,
               const uint8_t *data, size_t n) {
        struct ttlv_arena *a = op->a;
        if (n > INT32_MAX - 64)
                return kms_fail(op, -EINVAL, "Data too large");
        if (p->mode == KMIP_MODE_AES_KEY_WRAP_PADDING) {
                uint8_t *out = ttlv_arena_alloc(a, n + 16);
                size_t m;
                if (!out)
                        return -ENOMEM;
                if (keywrap_run(enc, key, data, n, out, n + 16, &m) < 0)
                        return kms_fail(op, -EBADMSG, enc ? "Key wrap failed" : "Key unwrap failed: integrity check");
                ttlv_add_bytes(a, op->resp, KMIP_TAG_DATA, out, m);
                return 0;
        }
        const EVP_CIPHER *c = evp_for(p->mode, key->size);
        if (!c)
                return kms_fail(op, -EOPNOTSUPP, "Block cipher mode not supported (GCM, CBC, AES key wrap with padding)");
        bool gcm = p->mode == KMIP_MODE_GCM;
        size_t ivlen = gcm ? 12 : 16;
        if (gcm && (p->tag_len < 12 || p->tag_len > 16))
                return kms_fail(op, -EINVAL, "GCM tag length must be 12 to 16 bytes");
        if (!gcm && p->padding != KMIP_PADDING_PKCS5 && p->padding != KMIP_PADDING_NONE)
                return kms_fail(op, -EOPNOTSUPP, "CBC supports PKCS5 padding or none");

        const uint8_t *iv;
        size_t got_iv;
        bool generated = false;
        uint8_t ivbuf[16];
        if (ttlv_get_bytes(op->req, KMIP_TAG_IV_COUNTER_NONCE, &iv, &got_iv) == 0) {
                if (enc && p->random_iv)
                        return kms_fail(op, -EINVAL, "IV/Counter/Nonce given together with Random IV");
                if (enc && !may_choose_iv)
                        return kms_fail(op, -EACCES, "Only a client that may also Decrypt with this key may choose the "
                                                     "IV: send no IV/Counter/Nonce and take the server's from the answer");
                if (got_iv != ivlen)
                        return kms_fail(op, -EINVAL, gcm ? "GCM needs a 12-byte IV" : "CBC needs a 16-byte IV");
        } else if (enc) {
                if (RAND_bytes(ivbuf, (int) ivlen) != 1)
                        return -EIO;
                iv = ivbuf;
                generated = true;
        } else
                return kms_fail(op, -ENODATA, "IV/Counter/Nonce missing");

        const uint8_t *aad = NULL, *tag = NULL;
        size_t aad_n = 0, tag_n = 0;
        (void) ttlv_get_bytes(op->req, KMIP_TAG_AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA, &aad, &aad_n);
        if (gcm && !enc) {
                if (ttlv_get_bytes(op->req, KMIP_TAG_AUTHENTICATED_ENCRYPTION_TAG, &tag, &tag_n) < 0 || tag_n < 12 || tag_n > 16)
                        return kms_fail(op, -ENODATA, "Authenticated Encryption Tag missing or of a wrong size");
        }

        uint8_t *out = ttlv_arena_alloc(a, n + 32);
        if (!out)
                return -ENOMEM;
        EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
        if (!ctx)
                return -ENOMEM;
        int l1 = 0, l2 = 0, r = -EBADMSG, ok = EVP_CipherInit_ex(ctx, c, NULL, NULL, NULL, enc) == 1;
        if (ok && gcm)
                ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, (int) ivlen, NULL) == 1;
        ok = ok && EVP_CipherInit_ex(ctx, NULL, NULL, key->data, iv, enc) == 1;
        if (ok && !gcm)
                ok = EVP_CIPHER_CTX_set_padding(ctx, p->padding == KMIP_PADDING_PKCS5) == 1;
        int dummy;
        if (ok && gcm && aad_n)
                ok = EVP_CipherUpdate(ctx, NULL, &dummy, aad, (int) aad_n) == 1;
        if (ok && n)
                ok = EVP_CipherUpdate(ctx, out, &l1, data, (int) n) == 1;
        if (ok && gcm && !enc)
                ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, (int) tag_n, (void *) tag) == 1;
        ok = ok && EVP_CipherFinal_ex(ctx, out + l1, &l2) == 1;
        uint8_t tagbuf[16];
        if (ok && gcm && enc)
                ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, p->tag_len, tagbuf) == 1;
        EVP_CIPHER_CTX_free(ctx);
        if (!ok) {
                log_openssl_errors("encrypt/decrypt");
                return kms_fail(op, r, enc ? "Encryption failed" : "Decryption failed (wrong key, data, IV or tag)");
        }
        ttlv_add_bytes(a, op->resp, KMIP_TAG_DATA, out, (size_t) (l1 + l2));
        if (generated)
                ttlv_add_bytes(a, op->resp, KMIP_TAG_IV_COUNTER_NONCE, iv, ivlen);
        if (gcm && enc)
                ttlv_add_bytes(a, op->resp, KMIP_TAG_AUTHENTICATED_ENCRYPTION_TAG, tagbuf, (size_t) p->tag_len);
        return 0;
}

/* The whole operation; enc selects Encrypt or Decrypt. */
static int cipher_operation(struct kms_op *op, int enc) {
        const char *uid;
        int r = kms_op_uid(op, &uid);
        if (r < 0)
                return r;
        const uint8_t *data;
        size_t n;
        if (ttlv_get_bytes(op->req, KMIP_TAG_DATA, &data, &n) < 0)
                return kms_fail(op, -ENODATA, "Data missing");
        _cleanup_(kms_object_freep) struct kms_object *o = NULL;
        r = kms_load(op, uid, &o);
        if (r < 0)
                return r;
        r = kms_require_active(op, o, false);
        if (r < 0)
                return r;
        /* Decrypt releases what a key protects: for a key that requires attestation,
         * only to an attested host, wrapped to its TPM. */
        bool attested = false;
        TPMT_PUBLIC bk;
        if (!enc) {
                r = kms_attest_gate(op, o, &attested, &bk);
                if (r < 0)
                        return r;
        }
        int64_t alg = KMIP_ALG_AES, mask;
        (void) kms_object_get_int(o, KMIP_ATTR_CRYPTOGRAPHIC_ALGORITHM, &alg);
        if (alg != KMIP_ALG_AES)
                return kms_fail(op, -EOPNOTSUPP, "Only AES keys can encrypt");
        struct params p;
        r = read_params(op, o, &p);
        if (r < 0)
                return r;
        /* The usage mask, when set, must allow the use: Encrypt/Decrypt, or Wrap/Unwrap
         * for key wrapping. */
        if (kms_object_get_int(o, KMIP_ATTR_CRYPTOGRAPHIC_USAGE_MASK, &mask) == 0) {
                uint32_t need = enc ? KMIP_USAGE_ENCRYPT : KMIP_USAGE_DECRYPT;
                if (p.mode == KMIP_MODE_AES_KEY_WRAP_PADDING)
                        need |= enc ? KMIP_USAGE_WRAP_KEY : KMIP_USAGE_UNWRAP_KEY;
                if (!((uint32_t) mask & need))
                        return kms_fail(op, -EACCES, "Cryptographic Usage Mask does not allow this use");
        }
        const struct kms_client *cl = op->client;
        /* A chosen IV turns Encrypt into a keystream oracle for GCM and CBC, i.e. a
         * Decrypt: never for a key whose Decrypt needs attestation. */
        bool may_choose_iv = !enc || (kms_policy_allows(op->dispatcher->config, cl->cn, cl->fingerprint, o->owner,
                                                         KMIP_OP_DECRYPT) &&
                                      !kms_attest_required(o, NULL, 0));
        ttlv_add_text(op->a, op->resp, KMIP_TAG_UNIQUE_IDENTIFIER, o->id);
        r = run(op, enc, o->key, &p, may_choose_iv, data, n);
        if (r < 0 || !attested)
                return r;
        struct ttlv *out = ttlv_find(op->resp, KMIP_TAG_DATA);
        uint8_t *w;
        size_t wn;
        if (!out || attest_wrap_to_bk(&bk, out->v.bytes.data, out->v.bytes.size, &w, &wn) < 0)
                return kms_fail(op, -EIO, "Could not wrap the released data to the attested key");
        uint8_t *copy = ttlv_arena_alloc(op->a, wn);
        if (copy)
                memcpy(copy, w, wn);
        free(w);
        if (!copy)
                return -ENOMEM;
        /* The plaintext stays only in the arena, which is wiped when freed. */
        out->v.bytes.data = copy;
        out->v.bytes.size = wn;
        return 0;
}

int op_encrypt(struct kms_op *op) {
        return cipher_operation(op, 1);
}

int op_decrypt(struct kms_op *op) {
        return cipher_operation(op, 0);
}
