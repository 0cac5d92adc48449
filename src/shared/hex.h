/* Hexadecimal text for binary values (key IDs, digests, QEMU secret text). */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Write 2*n lowercase hex digits and a NUL to out (size >= 2*n+1). */
void hex_encode(const uint8_t *in, size_t n, char *out);
/* Decode exactly 2*n hex digits from text into out[n]; 0 or -EINVAL. */
int hex_decode(const char *text, uint8_t *out, size_t n);
