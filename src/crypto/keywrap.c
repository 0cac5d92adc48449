/* RFC 5649 key wrap: see keywrap.h. OpenSSL does the work; this file only checks
 * sizes, keeps plaintext inside struct secret, and turns OpenSSL's 1/0 results into
 * -errno at one place. */
#include "crypto/keywrap.h"

#include <errno.h>
#include <openssl/evp.h>
#include <string.h>

#include "crypto/ciphers.h"
#include "shared/log.h"

size_t keywrap_wrapped_size(size_t n) {
        return ALIGN_UP(n, 8) + 8;
}

static void ctx_freep(EVP_CIPHER_CTX **c) {
        EVP_CIPHER_CTX_free(*c);
}

/* The whole input goes in a single update: key wrap is not a streaming mode. */
int keywrap_run(int encrypt, const struct secret *kek, const uint8_t *in, size_t n,
                uint8_t *out, size_t out_size, size_t *ret_len) {
        const EVP_CIPHER *cipher = kek ? aes_cipher(AES_MODE_WRAP_PAD, kek->size) : NULL;
        if (!cipher || n > INT32_MAX - 16)
                return -EINVAL;
        _cleanup_(ctx_freep) EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
        if (!ctx)
                return -ENOMEM;
        /* Needed by OpenSSL 1.1 to allow wrap modes through EVP; harmless on 3.x. */
        EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
        if (EVP_CipherInit_ex(ctx, cipher, NULL, kek->data, NULL, encrypt) != 1) {
                log_openssl_errors("key wrap init");
                return -EIO;
        }
        int len = 0, fin = 0;
        if (out_size < n + 8 + 7)
                return -ENOBUFS;
        if (EVP_CipherUpdate(ctx, out, &len, in, (int) n) != 1 || len < 0 ||
            EVP_CipherFinal_ex(ctx, out + len, &fin) != 1) {
                log_openssl_errors(encrypt ? "key wrap" : "key unwrap");
                /* Unwrapping only fails on the integrity check: wrong KEK or damage. */
                return encrypt ? -EIO : -EBADMSG;
        }
        *ret_len = (size_t) len + (size_t) fin;
        return 0;
}

int keywrap_wrap(const struct secret *kek, const struct secret *plain,
                 uint8_t *out, size_t out_size, size_t *ret_len) {
        if (!plain || plain->size == 0 || plain->size > KEYWRAP_MAX_INPUT)
                return -EINVAL;
        size_t need = keywrap_wrapped_size(plain->size);
        if (out_size < need)
                return -ENOBUFS;
        /* OpenSSL may want a block of slack beyond the exact result. */
        uint8_t buf[KEYWRAP_MAX_INPUT + 32];
        size_t len = 0;
        int r = keywrap_run(1, kek, plain->data, plain->size, buf, sizeof(buf), &len);
        if (r >= 0 && len != need)
                r = -EIO;
        if (r >= 0) {
                memcpy(out, buf, len);
                *ret_len = len;
        }
        secret_wipe(buf, sizeof(buf));
        return r;
}

int keywrap_unwrap(const struct secret *kek, const uint8_t *in, size_t n, struct secret **ret) {
        if (!in || n < 16 || n % 8 != 0 || n > KEYWRAP_MAX_INPUT + 8)
                return -EINVAL;
        _cleanup_(secret_freep) struct secret *buf = secret_new(n + 32);
        if (!buf)
                return -ENOMEM;
        size_t len = 0;
        int r = keywrap_run(0, kek, in, n, buf->data, buf->size, &len);
        if (r < 0)
                return r;
        if (len == 0 || len > n - 8)
                return -EBADMSG;
        secret_truncate(buf, len);
        *ret = TAKE_PTR(buf);
        return 0;
}
