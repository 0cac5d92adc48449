/* Encrypt and Decrypt with a key that never leaves the server: AES-GCM (AEAD, the
 * default), AES key wrap with padding (RFC 5649, so a 32-byte secret can be wrapped
 * and unwrapped by a KEK held here) and AES-CBC with PKCS#5 padding. */
#pragma once

#include "kms/kms.h"

/* The whole operation; enc selects Encrypt or Decrypt. */
int cipher_operation(struct kms_op *op, int enc);
