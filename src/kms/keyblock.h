/* Key Blocks in and out of the wire form: Raw, Opaque and Transparent Symmetric Key
 * formats, and wrapping a key block with AES key wrap with padding (RFC 5649) under
 * another key on the server. */
#pragma once

#include "kms/kms.h"

/* Key material from a Register's Symmetric Key / Secret Data object (unwrapped Key
 * Blocks only); also the Cryptographic Algorithm and Length from the block. */
int keyblock_parse(struct kms_op *op, const struct ttlv *object, struct secret **ret_key, uint32_t *ret_alg,
                   int32_t *ret_len);
/* Append the object (Symmetric Key or Secret Data with its Key Block) to parent in
 * format fmt (0: the default for the type), wrapped under wrap_key if not NULL. */
int keyblock_build(struct kms_op *op, struct ttlv *parent, const struct kms_object *o, uint32_t fmt,
                   const struct kms_object *wrap_key, const struct ttlv *wrap_spec);
