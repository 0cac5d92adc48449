/* Secrets (keys, passphrases, unlock secrets) live only in this type: OpenSSL's
 * secure heap when the program initialised one (locked, excluded from core dumps),
 * otherwise mlock'ed heap memory; always wiped on free. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "shared/macro.h"

struct secret {
        size_t size;
        uint8_t *data;
};

/* Initialise the locked secure heap and make the process non-dumpable.
 * Programs call this once at start; 0 or -errno. */
int secret_init_process(size_t heap_size);

/* Allocate a zeroed secret of size bytes; NULL on allocation failure. */
struct secret *secret_new(size_t size);

/* Allocate a secret of size bytes filled from the CSPRNG; 0 or -errno. */
int secret_new_random(size_t size, struct secret **ret);

/* Copy bytes into a new secret; NULL on allocation failure. */
struct secret *secret_new_copy(const void *data, size_t size);

/* Shrink the visible size (data beyond is wiped); never grows. */
void secret_truncate(struct secret *s, size_t size);

/* Wipe and free; NULL is fine. */
void secret_free(struct secret *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct secret *, secret_free);

/* Constant-time comparison; true when equal in size and content. */
int secret_equal(const struct secret *a, const struct secret *b);

/* Wipe a stack or heap buffer that held key material. */
void secret_wipe(void *p, size_t n);
