/* AES key wrap with padding (RFC 5649, NIST SP 800-38F KWP) through OpenSSL's
 * EVP "aes-*-wrap-pad" ciphers. Used to wrap a disk's 32-byte unlock secret under
 * a key-encryption key (KEK) when the key server cannot wrap it itself. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "shared/secret.h"

/* Largest plaintext accepted: far above any key, small enough for the stack. */
#define KEYWRAP_MAX_INPUT 4096

/* Size of the wrapped form of an n-byte plaintext: n rounded up to 8, plus 8. */
size_t keywrap_wrapped_size(size_t n);

/* Wrap plain (1..KEYWRAP_MAX_INPUT bytes) under kek (16, 24 or 32 bytes) into out,
 * which has room for keywrap_wrapped_size(plain->size) bytes; sets *ret_len.
 * 0 or -EINVAL (bad sizes) / -EIO (OpenSSL failure). */
int keywrap_wrap(const struct secret *kek, const struct secret *plain,
                 uint8_t *out, size_t out_size, size_t *ret_len);

/* Unwrap in (a multiple of 8, at least 16 bytes) under kek into a new secret.
 * -EBADMSG when the integrity check fails (wrong KEK or damaged data). */
int keywrap_unwrap(const struct secret *kek, const uint8_t *in, size_t n, struct secret **ret);

/* One pass of the wrap cipher over plain buffers, for data that is not a secret of
 * ours (KMIP Encrypt of a client's bytes): encrypt 1 wraps, 0 unwraps. out must hold
 * n + 15 bytes. -EBADMSG when unwrapping fails its integrity check. */
int keywrap_run(int encrypt, const struct secret *kek, const uint8_t *in, size_t n,
                uint8_t *out, size_t out_size, size_t *ret_len);
