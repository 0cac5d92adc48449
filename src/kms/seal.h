/* Encryption at rest: object keys are sealed with the master key (AES-256-GCM, a
 * random 96-bit nonce per seal, the object id as associated data so a sealed key
 * cannot be moved to another object). Blob layout: nonce(12) | ciphertext | tag(16). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "shared/secret.h"

#define SEAL_KEY_SIZE 32
#define SEAL_OVERHEAD (12 + 16)
#define SEAL_SALT_SIZE 16

/* Seal plain under master for object id; *ret is malloc'ed (not secret: ciphertext). */
int seal_encrypt(const struct secret *master, const char *id, const struct secret *plain,
                 uint8_t **ret, size_t *ret_len);
/* Open a sealed blob; -EBADMSG if the tag does not verify (wrong key, id or data). */
int seal_decrypt(const struct secret *master, const char *id, const uint8_t *blob, size_t len,
                 struct secret **ret);
/* scrypt's cost for a master passphrase. Stores keep the cost they were sealed
 * with: a store made before the cost was raised opens with SEAL_KDF_LEGACY, and a
 * new passphrase (new store, rotation) gets SEAL_KDF_CURRENT. */
struct seal_kdf {
        unsigned log2_n; /* N = 2^log2_n */
        unsigned r, p;
};
#define SEAL_KDF_LEGACY ((struct seal_kdf) { .log2_n = 15, .r = 8, .p = 1 })   /* 32 MiB */
#define SEAL_KDF_CURRENT ((struct seal_kdf) { .log2_n = 17, .r = 8, .p = 1 })  /* 128 MiB */
/* Costs a store may ask for; more would let a doctored store exhaust memory. */
#define SEAL_KDF_MAX_MEMORY (1ULL << 30)

/* "scrypt:LOG2N:R:P", the form stored next to the salt; parse refuses anything
 * else and costs over SEAL_KDF_MAX_MEMORY or under SEAL_KDF_LEGACY (-EINVAL). */
int seal_kdf_format(const struct seal_kdf *kdf, char *buf, size_t size);
int seal_kdf_parse(const char *s, size_t n, struct seal_kdf *ret);

/* Derive a master key from a passphrase with scrypt at cost kdf and salt. */
int seal_key_from_passphrase(const struct secret *pass, const uint8_t salt[static SEAL_SALT_SIZE],
                             const struct seal_kdf *kdf, struct secret **ret);
/* Load a master key file: exactly 32 bytes, owner-only permissions (-EPERM if the
 * file is readable by group or others). */
int seal_key_load_file(const char *path, struct secret **ret);
