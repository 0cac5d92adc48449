/* AES ciphers fetched from OpenSSL once per process.
 *
 * With OpenSSL 3, passing EVP_aes_256_gcm() and friends to EVP_CipherInit_ex makes
 * it look the algorithm up by name on every call (an implicit fetch: a lock, a
 * property query, string compares). A key server does that per request; the
 * explicitly fetched ciphers here skip it. */
#pragma once

#include <openssl/evp.h>
#include <stddef.h>

enum aes_mode {
        AES_MODE_GCM,
        AES_MODE_CBC,
        AES_MODE_WRAP_PAD, /* RFC 5649 key wrap with padding */
        AES_MODE_XTS,      /* key is two AES keys: 32 or 64 bytes */
        _AES_MODE_MAX,
};

/* The cipher for mode and key size in bytes (16, 24, 32; XTS 32 or 64), or NULL
 * when there is none. Valid for the life of the process; do not free. */
const EVP_CIPHER *aes_cipher(enum aes_mode mode, size_t key_size);
