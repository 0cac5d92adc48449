/* Encryption at rest with the master key: see seal.h. */
#include "kms/seal.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "crypto/ciphers.h"
#include "shared/fd-util.h"
#include "shared/log.h"

static int gcm(int enc, const struct secret *master, const char *id, const uint8_t nonce[12],
               const uint8_t *in, size_t n, uint8_t *out, uint8_t tag[16]) {
        if (master->size != SEAL_KEY_SIZE || n > INT32_MAX)
                return -EINVAL;
        EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
        if (!c)
                return -ENOMEM;
        int len, r = -EIO;
        if (EVP_CipherInit_ex(c, aes_cipher(AES_MODE_GCM, SEAL_KEY_SIZE), NULL, master->data, nonce, enc) != 1)
                goto out;
        if (EVP_CipherUpdate(c, NULL, &len, (const uint8_t *) id, (int) strlen(id)) != 1)
                goto out;
        if (n > 0 && EVP_CipherUpdate(c, out, &len, in, (int) n) != 1)
                goto out;
        if (!enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, tag) != 1)
                goto out;
        if (EVP_CipherFinal_ex(c, out + n, &len) != 1) {
                r = enc ? -EIO : -EBADMSG;
                goto out;
        }
        if (enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag) != 1)
                goto out;
        r = 0;
out:
        EVP_CIPHER_CTX_free(c);
        return r;
}

int seal_encrypt(const struct secret *master, const char *id, const struct secret *plain,
                 uint8_t **ret, size_t *ret_len) {
        size_t n = plain->size + SEAL_OVERHEAD;
        uint8_t *blob = malloc(n);
        if (!blob)
                return -ENOMEM;
        if (RAND_bytes(blob, 12) != 1) {
                free(blob);
                return -EIO;
        }
        int r = gcm(1, master, id, blob, plain->data, plain->size, blob + 12, blob + 12 + plain->size);
        if (r < 0) {
                free(blob);
                return r;
        }
        *ret = blob;
        *ret_len = n;
        return 0;
}

int seal_decrypt(const struct secret *master, const char *id, const uint8_t *blob, size_t len,
                 struct secret **ret) {
        if (len < SEAL_OVERHEAD)
                return -EBADMSG;
        size_t n = len - SEAL_OVERHEAD;
        _cleanup_(secret_freep) struct secret *s = secret_new(n);
        if (!s)
                return -ENOMEM;
        uint8_t tag[16];
        memcpy(tag, blob + 12 + n, 16);
        int r = gcm(0, master, id, blob, blob + 12, n, s->data, tag);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

/* scrypt's own memory: 128 r (N + p) bytes, and a little of its state. */
static uint64_t kdf_memory(const struct seal_kdf *kdf) {
        return 128ULL * kdf->r * ((1ULL << kdf->log2_n) + kdf->p + 2);
}

int seal_kdf_format(const struct seal_kdf *kdf, char *buf, size_t size) {
        int n = snprintf(buf, size, "scrypt:%u:%u:%u", kdf->log2_n, kdf->r, kdf->p);
        return n > 0 && (size_t) n < size ? n : -ENOBUFS;
}

int seal_kdf_parse(const char *s, size_t n, struct seal_kdf *ret) {
        char text[64], tail;
        if (n == 0 || n >= sizeof(text) || memchr(s, 0, n))
                return -EINVAL;
        memcpy(text, s, n);
        text[n] = 0;
        struct seal_kdf k;
        if (sscanf(text, "scrypt:%u:%u:%u%c", &k.log2_n, &k.r, &k.p, &tail) != 3)
                return -EINVAL;
        if (k.log2_n < SEAL_KDF_LEGACY.log2_n || k.log2_n > 30 || k.r < 1 || k.r > 64 || k.p < 1 || k.p > 16 ||
            kdf_memory(&k) > SEAL_KDF_MAX_MEMORY)
                return -EINVAL;
        *ret = k;
        return 0;
}

int seal_key_from_passphrase(const struct secret *pass, const uint8_t salt[static SEAL_SALT_SIZE],
                             const struct seal_kdf *kdf, struct secret **ret) {
        _cleanup_(secret_freep) struct secret *k = secret_new(SEAL_KEY_SIZE);
        if (!k)
                return -ENOMEM;
        /* scrypt: memory-hard, so a stolen database plus a weak passphrase is expensive
         * to attack. The current cost, 128 MiB and about half a second per open, is a
         * fair price for a daemon start (and costs a guesser as much per guess). */
        if (EVP_PBE_scrypt((const char *) pass->data, pass->size, salt, SEAL_SALT_SIZE,
                           1ULL << kdf->log2_n, kdf->r, kdf->p, kdf_memory(kdf) + (1U << 20), k->data,
                           k->size) != 1) {
                log_openssl_errors("scrypt");
                return -EIO;
        }
        *ret = TAKE_PTR(k);
        return 0;
}

int seal_key_load_file(const char *path, struct secret **ret) {
        _cleanup_(closep) int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        struct stat st;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        if (st.st_mode & 077)
                return -EPERM;
        if (st.st_size != SEAL_KEY_SIZE)
                return -EBADMSG;
        _cleanup_(secret_freep) struct secret *k = secret_new(SEAL_KEY_SIZE);
        if (!k)
                return -ENOMEM;
        ssize_t n = read_full(fd, k->data, SEAL_KEY_SIZE);
        if (n < 0)
                return (int) n;
        if (n != SEAL_KEY_SIZE)
                return -EBADMSG;
        *ret = TAKE_PTR(k);
        return 0;
}
