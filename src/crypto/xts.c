/* AES-XTS sector cipher: see xts.h. */
#include "crypto/xts.h"

#include <errno.h>
#include <openssl/evp.h>
#include <string.h>

#include "crypto/ciphers.h"
#include "shared/log.h"

struct xts_ctx {
        EVP_CIPHER_CTX *enc;
        EVP_CIPHER_CTX *dec;
};

void xts_free(struct xts_ctx *x) {
        if (!x)
                return;
        EVP_CIPHER_CTX_free(x->enc);
        EVP_CIPHER_CTX_free(x->dec);
        OPENSSL_free(x);
}

int xts_new(const struct secret *key, struct xts_ctx **ret) {
        if (!key || (key->size != XTS_KEY_SIZE && key->size != XTS_KEY_SIZE / 2))
                return -EINVAL;
        /* OpenSSL refuses XTS keys whose halves are equal (a weak key). */
        if (CRYPTO_memcmp(key->data, key->data + key->size / 2, key->size / 2) == 0)
                return -EINVAL;
        struct xts_ctx *x = OPENSSL_zalloc(sizeof(*x));
        if (!x)
                return -ENOMEM;
        x->enc = EVP_CIPHER_CTX_new();
        x->dec = EVP_CIPHER_CTX_new();
        if (!x->enc || !x->dec ||
            EVP_EncryptInit_ex(x->enc, aes_cipher(AES_MODE_XTS, key->size), NULL, key->data, NULL) != 1 ||
            EVP_DecryptInit_ex(x->dec, aes_cipher(AES_MODE_XTS, key->size), NULL, key->data, NULL) != 1) {
                log_openssl_errors("xts init");
                xts_free(x);
                return -EIO;
        }
        *ret = x;
        return 0;
}

/* One call per sector: XTS in OpenSSL processes a whole message per tweak. The key
 * schedule stays in the context; only the IV changes. */
static int xts_run(EVP_CIPHER_CTX *c, int enc, uint8_t *buf, size_t len, unsigned sector_size,
                   uint64_t offset) {
        if ((sector_size != 512 && sector_size != 4096) || len % sector_size || offset % sector_size)
                return -EINVAL;
        uint8_t iv[16];
        for (size_t done = 0; done < len; done += sector_size) {
                uint64_t t = (offset + done) / 512;
                memset(iv, 0, sizeof(iv));
                for (int i = 0; i < 8; i++)
                        iv[i] = (uint8_t) (t >> (8 * i));
                int outl = 0;
                int ok = enc ? EVP_EncryptInit_ex(c, NULL, NULL, NULL, iv) &&
                                       EVP_EncryptUpdate(c, buf + done, &outl, buf + done, (int) sector_size)
                             : EVP_DecryptInit_ex(c, NULL, NULL, NULL, iv) &&
                                       EVP_DecryptUpdate(c, buf + done, &outl, buf + done, (int) sector_size);
                if (!ok || outl != (int) sector_size) {
                        log_openssl_errors("xts");
                        return -EIO;
                }
        }
        return 0;
}

int xts_encrypt(struct xts_ctx *x, uint8_t *buf, size_t len, unsigned sector_size, uint64_t offset) {
        return xts_run(x->enc, 1, buf, len, sector_size, offset);
}

int xts_decrypt(struct xts_ctx *x, uint8_t *buf, size_t len, unsigned sector_size, uint64_t offset) {
        return xts_run(x->dec, 0, buf, len, sector_size, offset);
}
