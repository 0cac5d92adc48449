/* AES ciphers fetched once: see ciphers.h. */
#include "crypto/ciphers.h"

#include <pthread.h>

/* Index by key size: 16, 24, 32 bytes; XTS uses slots for 32 and 64. */
enum { SIZE_16, SIZE_24, SIZE_32, SIZE_64, _SIZE_MAX };

static const char *const names[_AES_MODE_MAX][_SIZE_MAX] = {
        [AES_MODE_GCM] = { "AES-128-GCM", "AES-192-GCM", "AES-256-GCM", NULL },
        [AES_MODE_CBC] = { "AES-128-CBC", "AES-192-CBC", "AES-256-CBC", NULL },
        [AES_MODE_WRAP_PAD] = { "AES-128-WRAP-PAD", "AES-192-WRAP-PAD", "AES-256-WRAP-PAD", NULL },
        [AES_MODE_XTS] = { NULL, NULL, "AES-128-XTS", "AES-256-XTS" },
};

/* Fetched once and kept: they are immutable and OpenSSL reference-counts them. */
static EVP_CIPHER *fetched[_AES_MODE_MAX][_SIZE_MAX];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void fetch_all(void) {
        for (size_t m = 0; m < _AES_MODE_MAX; m++)
                for (size_t s = 0; s < _SIZE_MAX; s++)
                        if (names[m][s])
                                fetched[m][s] = EVP_CIPHER_fetch(NULL, names[m][s], NULL);
}

const EVP_CIPHER *aes_cipher(enum aes_mode mode, size_t key_size) {
        int s = key_size == 16 ? SIZE_16 : key_size == 24 ? SIZE_24 : key_size == 32 ? SIZE_32 :
                key_size == 64 ? SIZE_64 : -1;
        if ((unsigned) mode >= _AES_MODE_MAX || s < 0)
                return NULL;
        pthread_once(&once, fetch_all);
        return fetched[mode][s];
}
