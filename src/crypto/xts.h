/* The sector cipher of LUKS data: AES-256-XTS (512-bit key) with plain64 IVs, as
 * dm-crypt does it. The tweak of a sector is its byte offset within the data
 * segment divided by 512, also for 4096-byte sectors (LUKS2 never sets
 * iv_large_sectors), so sector n of 4096 bytes uses tweak 8n. One context per
 * thread: contexts are not shared. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "shared/secret.h"

#define XTS_KEY_SIZE 64

struct xts_ctx;

/* New context for a 64-byte (AES-256-XTS, every vmcrypt volume key) or 32-byte
 * (AES-128-XTS: LUKS keyslot areas of 256-bit volume keys) key; 0, -EINVAL (another
 * size, or the two key halves are equal, which OpenSSL rejects) or -ENOMEM. */
int xts_new(const struct secret *key, struct xts_ctx **ret);

/* Wipe and free; NULL is fine. */
void xts_free(struct xts_ctx *x);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct xts_ctx *, xts_free);

/* Encrypt len bytes in place: consecutive sectors of sector_size (512 or 4096; len a
 * multiple of it) whose first byte lies at data byte offset `offset` (a multiple of
 * sector_size). 0 or -EINVAL/-EIO. */
int xts_encrypt(struct xts_ctx *x, uint8_t *buf, size_t len, unsigned sector_size, uint64_t offset);

/* Decrypt in place; same conventions as xts_encrypt. */
int xts_decrypt(struct xts_ctx *x, uint8_t *buf, size_t len, unsigned sector_size, uint64_t offset);
