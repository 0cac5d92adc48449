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
/* Derive a master key from a passphrase with scrypt (N=2^15, r=8, p=1) and salt. */
int seal_key_from_passphrase(const struct secret *pass, const uint8_t salt[static SEAL_SALT_SIZE],
                             struct secret **ret);
/* Load a master key file: exactly 32 bytes, owner-only permissions (-EPERM if the
 * file is readable by group or others). */
int seal_key_load_file(const char *path, struct secret **ret);
