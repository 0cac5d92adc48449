/* Base64 (RFC 4648, padded) for binary fields in JSON: tokens, native provider
 * files, backup bundles. Strict: decoding rejects anything that does not re-encode
 * to the same text. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* New NUL-terminated text for n bytes (caller frees); NULL on ENOMEM. */
char *b64_encode(const uint8_t *p, size_t n);

/* Decode 1..max bytes into a new buffer (caller frees); -EBADMSG when malformed. */
int b64_decode(const char *s, size_t max, uint8_t **ret, size_t *ret_size);

/* Decode exactly n bytes into out; -EBADMSG unless s holds exactly n bytes. */
int b64_decode_exact(const char *s, uint8_t *out, size_t n);
