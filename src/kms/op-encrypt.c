/* Encrypt: see cipher.h. */
#include "kms/cipher.h"

int op_encrypt(struct kms_op *op) {
        return cipher_operation(op, 1);
}
