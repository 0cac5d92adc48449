/* Server-side cryptography through the client: Encrypt and Decrypt with a key that
 * never leaves the KMS, and the small blob format vmcrypt keeps for a wrapped secret
 * (mode, IV, tag and ciphertext in one byte string). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "kmip/client-internal.h"
#include "kmip/tags.h"
#include "shared/log.h"

#define WRAP_BLOB_VERSION 1
#define WRAP_BLOB_HEADER 4

void kmip_ciphertext_done(struct kmip_ciphertext *ct) {
        if (!ct)
                return;
        free(ct->data);
        *ct = (struct kmip_ciphertext) {};
}

/* Bytes of IV a mode needs when the client picks it; 0 for modes without one. */
static size_t iv_size_for(uint32_t mode) {
        switch (mode) {
        case KMIP_MODE_GCM:
                return 12;
        case KMIP_MODE_CBC:
        case KMIP_MODE_CFB:
        case KMIP_MODE_OFB:
        case KMIP_MODE_CTR:
                return 16;
        default:
                return 0;
        }
}

static bool is_aead(uint32_t mode) {
        return mode == KMIP_MODE_GCM || mode == KMIP_MODE_CCM || mode == KMIP_MODE_AEAD;
}

static int32_t tag_length(const struct kmip_crypto_params *p) {
        return p->tag_length > 0 ? p->tag_length : 16;
}

static void add_params(struct ttlv_arena *a, struct ttlv *payload, const struct kmip_crypto_params *p,
                       bool random_iv) {
        struct ttlv *cp = ttlv_add_structure(a, payload, KMIP_TAG_CRYPTOGRAPHIC_PARAMETERS);
        ttlv_add_enum(a, cp, KMIP_TAG_BLOCK_CIPHER_MODE, p->mode);
        if (p->padding)
                ttlv_add_enum(a, cp, KMIP_TAG_PADDING_METHOD, p->padding);
        ttlv_add_enum(a, cp, KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM, p->alg ? p->alg : KMIP_ALG_AES);
        if (random_iv)
                ttlv_add_bool(a, cp, KMIP_TAG_RANDOM_IV, true);
        if (is_aead(p->mode))
                ttlv_add_integer(a, cp, KMIP_TAG_TAG_LENGTH, tag_length(p));
}

int kmip_client_encrypt(struct kmip_client *c, const char *uid, const struct kmip_crypto_params *p,
                        const struct secret *plaintext, const uint8_t *aad, size_t aad_size,
                        struct kmip_ciphertext *ret) {
        if (!p || !plaintext || (is_aead(p->mode) && (tag_length(p) < 4 || tag_length(p) > KMIP_AEAD_TAG_MAX)))
                return client_fail(c, -EINVAL, "invalid encryption parameters");
        _cleanup_(ttlv_arena_freep) struct ttlv_arena *a = ttlv_arena_new();
        if (!a)
                return -ENOMEM;
        struct kmip_ciphertext ct = {};
        size_t ivn = iv_size_for(p->mode);
        bool server_iv = p->random_iv && ivn > 0;
        if (ivn && !server_iv) {
                if (RAND_bytes(ct.iv, (int) ivn) != 1)
                        return client_fail(c, -EIO, "cannot generate an IV");
                ct.iv_size = ivn;
        }

        struct ttlv *pl = ttlv_add_structure(a, NULL, KMIP_TAG_REQUEST_PAYLOAD), *resp;
        ttlv_add_text(a, pl, KMIP_TAG_UNIQUE_IDENTIFIER, uid);
        add_params(a, pl, p, server_iv);
        ttlv_add_bytes(a, pl, KMIP_TAG_DATA, plaintext->data, plaintext->size);
        if (ct.iv_size)
                ttlv_add_bytes(a, pl, KMIP_TAG_IV_COUNTER_NONCE, ct.iv, ct.iv_size);
        if (aad && aad_size)
                ttlv_add_bytes(a, pl, KMIP_TAG_AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA, aad, aad_size);
        if (ttlv_arena_failed(a))
                return -ENOMEM;
        int r = client_call(c, a, KMIP_OP_ENCRYPT, pl, &resp);
        if (r < 0)
                return client_refine_state_error(c, uid, r);

        const char *name = c->servers[c->connected];
        const uint8_t *data, *iv, *tag;
        size_t n, n_iv, n_tag;
        if (ttlv_get_bytes(resp, KMIP_TAG_DATA, &data, &n) < 0)
                return client_fail(c, -EPROTO, "%s: Encrypt answer without Data", name);
        r = ttlv_get_bytes(resp, KMIP_TAG_IV_COUNTER_NONCE, &iv, &n_iv);
        if (r >= 0) {
                if (n_iv > KMIP_IV_MAX)
                        return client_fail(c, -EPROTO, "%s: IV of %zu bytes", name, n_iv);
                memcpy(ct.iv, iv, n_iv);
                ct.iv_size = n_iv;
        } else if (server_iv)
                return client_fail(c, -EPROTO, "%s: the server picked no IV", name);
        if (is_aead(p->mode)) {
                if (ttlv_get_bytes(resp, KMIP_TAG_AUTHENTICATED_ENCRYPTION_TAG, &tag, &n_tag) < 0 ||
                    n_tag > KMIP_AEAD_TAG_MAX || n_tag == 0)
                        return client_fail(c, -EPROTO, "%s: Encrypt answer without a valid tag", name);
                memcpy(ct.tag, tag, n_tag);
                ct.tag_size = n_tag;
        }
        ct.data = malloc(n ? n : 1);
        if (!ct.data)
                return -ENOMEM;
        memcpy(ct.data, data, n);
        ct.size = n;
        *ret = ct;
        return 0;
}

int kmip_client_decrypt(struct kmip_client *c, const char *uid, const struct kmip_crypto_params *p,
                        const struct kmip_ciphertext *ct, const uint8_t *aad, size_t aad_size,
                        struct secret **ret_plaintext) {
        if (!p || !ct || (is_aead(p->mode) && ct->tag_size == 0))
                return client_fail(c, -EINVAL, "invalid decryption parameters");
        _cleanup_(ttlv_arena_freep) struct ttlv_arena *a = ttlv_arena_new();
        if (!a)
                return -ENOMEM;
        struct kmip_crypto_params q = *p;
        if (is_aead(q.mode))
                q.tag_length = (int32_t) ct->tag_size;
        struct ttlv *pl = ttlv_add_structure(a, NULL, KMIP_TAG_REQUEST_PAYLOAD), *resp;
        ttlv_add_text(a, pl, KMIP_TAG_UNIQUE_IDENTIFIER, uid);
        add_params(a, pl, &q, false);
        ttlv_add_bytes(a, pl, KMIP_TAG_DATA, ct->data, ct->size);
        if (ct->iv_size)
                ttlv_add_bytes(a, pl, KMIP_TAG_IV_COUNTER_NONCE, ct->iv, ct->iv_size);
        if (aad && aad_size)
                ttlv_add_bytes(a, pl, KMIP_TAG_AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA, aad, aad_size);
        if (ct->tag_size)
                ttlv_add_bytes(a, pl, KMIP_TAG_AUTHENTICATED_ENCRYPTION_TAG, ct->tag, ct->tag_size);
        if (ttlv_arena_failed(a))
                return -ENOMEM;
        int r = client_call(c, a, KMIP_OP_DECRYPT, pl, &resp);
        if (r < 0)
                return client_refine_state_error(c, uid, r);
        const uint8_t *data;
        size_t n;
        if (ttlv_get_bytes(resp, KMIP_TAG_DATA, &data, &n) < 0)
                return client_fail(c, -EPROTO, "%s: Decrypt answer without Data", c->servers[c->connected]);
        if (c->attested) {
                /* Released to the attested key only: the TPM unwraps it. */
                char err[512] = "";
                r = c->attester.unwrap(c->attester.userdata, data, n, ret_plaintext, err, sizeof(err));
                if (r < 0)
                        return client_fail(c, r, "%s: the key released for %s cannot be unwrapped here: %s",
                                           c->servers[c->connected], uid, *err ? err : "unknown error");
                return 0;
        }
        struct secret *s = secret_new_copy(data, n);
        if (!s)
                return -ENOMEM;
        *ret_plaintext = s;
        return 0;
}

int kmip_wrap_blob_build(uint32_t mode, const struct kmip_ciphertext *ct, uint8_t **ret, size_t *ret_size) {
        if (mode > 0xFF || ct->iv_size > KMIP_IV_MAX || ct->tag_size > KMIP_AEAD_TAG_MAX)
                return -EINVAL;
        size_t n = WRAP_BLOB_HEADER + ct->iv_size + ct->tag_size + ct->size;
        uint8_t *b = malloc(n);
        if (!b)
                return -ENOMEM;
        b[0] = WRAP_BLOB_VERSION;
        b[1] = (uint8_t) mode;
        b[2] = (uint8_t) ct->iv_size;
        b[3] = (uint8_t) ct->tag_size;
        memcpy(b + WRAP_BLOB_HEADER, ct->iv, ct->iv_size);
        memcpy(b + WRAP_BLOB_HEADER + ct->iv_size, ct->tag, ct->tag_size);
        if (ct->size)
                memcpy(b + WRAP_BLOB_HEADER + ct->iv_size + ct->tag_size, ct->data, ct->size);
        *ret = b;
        *ret_size = n;
        return 0;
}

int kmip_wrap_blob_parse(const uint8_t *blob, size_t size, uint32_t *ret_mode, struct kmip_ciphertext *ret) {
        if (!blob || size < WRAP_BLOB_HEADER || blob[0] != WRAP_BLOB_VERSION || blob[1] == 0)
                return -EBADMSG;
        size_t ivn = blob[2], tagn = blob[3];
        if (ivn > KMIP_IV_MAX || tagn > KMIP_AEAD_TAG_MAX || size - WRAP_BLOB_HEADER < ivn + tagn + 1)
                return -EBADMSG;
        struct kmip_ciphertext ct = { .iv_size = ivn, .tag_size = tagn };
        memcpy(ct.iv, blob + WRAP_BLOB_HEADER, ivn);
        memcpy(ct.tag, blob + WRAP_BLOB_HEADER + ivn, tagn);
        ct.size = size - WRAP_BLOB_HEADER - ivn - tagn;
        ct.data = malloc(ct.size);
        if (!ct.data)
                return -ENOMEM;
        memcpy(ct.data, blob + WRAP_BLOB_HEADER + ivn + tagn, ct.size);
        *ret_mode = blob[1];
        *ret = ct;
        return 0;
}

int kmip_client_wrap(struct kmip_client *c, const char *uid, const struct kmip_crypto_params *p,
                     const struct secret *plaintext, uint8_t **ret_blob, size_t *ret_size) {
        static const struct kmip_crypto_params gcm = { .mode = KMIP_MODE_GCM, .tag_length = 16, .random_iv = true };
        if (!p)
                p = &gcm;
        struct kmip_ciphertext ct;
        int r = kmip_client_encrypt(c, uid, p, plaintext, NULL, 0, &ct);
        if (r < 0)
                return r;
        r = kmip_wrap_blob_build(p->mode, &ct, ret_blob, ret_size);
        kmip_ciphertext_done(&ct);
        return r;
}

int kmip_client_unwrap(struct kmip_client *c, const char *uid, const uint8_t *blob, size_t size,
                       struct secret **ret_plaintext) {
        struct kmip_ciphertext ct;
        uint32_t mode;
        int r = kmip_wrap_blob_parse(blob, size, &mode, &ct);
        if (r < 0)
                return client_fail(c, r, "the wrapped data is not a vmcrypt wrap blob");
        struct kmip_crypto_params p = {
                .mode = mode,
                .tag_length = (int32_t) ct.tag_size,
                .padding = mode == KMIP_MODE_CBC ? KMIP_PADDING_PKCS5 : 0,
        };
        r = kmip_client_decrypt(c, uid, &p, &ct, NULL, 0, ret_plaintext);
        kmip_ciphertext_done(&ct);
        return r;
}
