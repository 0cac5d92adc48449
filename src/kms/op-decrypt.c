/* Decrypt: see cipher.h. */
#include "kms/cipher.h"

int op_decrypt(struct kms_op *op) {
        return cipher_operation(op, 0);
}
