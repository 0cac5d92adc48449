/* Secret memory: see secret.h for why it exists. */
#include "shared/secret.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>

int secret_init_process(size_t heap_size) {
        /* No core dumps and no ptrace by other users: a crash must not write keys
         * to disk. */
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
                return negative_errno();
        struct rlimit nocore = { 0, 0 };
        (void) setrlimit(RLIMIT_CORE, &nocore);

        if (heap_size == 0 || CRYPTO_secure_malloc_initialized())
                return 0;
        /* The secure heap needs mlock; if the limit forbids it we still work, with
         * per-allocation mlock below as a best effort. */
        if (CRYPTO_secure_malloc_init(heap_size, 32) == 0)
                return 0;
        return 0;
}

struct secret *secret_new(size_t size) {
        struct secret *s = OPENSSL_zalloc(sizeof(*s));
        if (!s)
                return NULL;
        size_t alloc = size ? size : 1;
        s->data = OPENSSL_secure_zalloc(alloc);
        if (!s->data) {
                OPENSSL_free(s);
                return NULL;
        }
        if (!CRYPTO_secure_allocated(s->data))
                (void) mlock(s->data, alloc);
        s->size = size;
        return s;
}

int secret_new_random(size_t size, struct secret **ret) {
        struct secret *s = secret_new(size);
        if (!s)
                return -ENOMEM;
        if (size > 0 && RAND_priv_bytes(s->data, (int) size) != 1) {
                secret_free(s);
                return -EIO;
        }
        *ret = s;
        return 0;
}

struct secret *secret_new_copy(const void *data, size_t size) {
        struct secret *s = secret_new(size);
        if (s && size > 0)
                memcpy(s->data, data, size);
        return s;
}

void secret_truncate(struct secret *s, size_t size) {
        if (!s || size >= s->size)
                return;
        OPENSSL_cleanse(s->data + size, s->size - size);
        s->size = size;
}

void secret_free(struct secret *s) {
        if (!s)
                return;
        size_t alloc = s->size ? s->size : 1;
        int secure = CRYPTO_secure_allocated(s->data);
        OPENSSL_cleanse(s->data, alloc);
        if (!secure)
                (void) munlock(s->data, alloc);
        OPENSSL_secure_clear_free(s->data, alloc);
        OPENSSL_free(s);
}

int secret_equal(const struct secret *a, const struct secret *b) {
        if (!a || !b || a->size != b->size)
                return 0;
        return CRYPTO_memcmp(a->data, b->data, a->size) == 0;
}

void secret_wipe(void *p, size_t n) {
        if (p && n)
                OPENSSL_cleanse(p, n);
}
