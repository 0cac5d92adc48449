/* The fleet model's names and errors: see fleet.h. */
#include "fleet/fleet.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const op_names[] = {
        [FLEET_OP_ENCRYPT] = "encrypt",
        [FLEET_OP_DECRYPT] = "decrypt",
        [FLEET_OP_REKEY] = "rekey",
        [FLEET_OP_DEEP_REKEY] = "deep-rekey",
        [FLEET_OP_START] = "start",
};

const char *fleet_job_op_name(enum fleet_job_op op) {
        return (unsigned) op < sizeof(op_names) / sizeof(op_names[0]) ? op_names[op] : "encrypt";
}

int fleet_job_op_from_string(const char *s, enum fleet_job_op *ret) {
        for (unsigned i = 0; i < sizeof(op_names) / sizeof(op_names[0]); i++)
                if (strcmp(s, op_names[i]) == 0) {
                        *ret = (enum fleet_job_op) i;
                        return 0;
                }
        return -EINVAL;
}

enum fleet_priv fleet_job_op_priv(enum fleet_job_op op) {
        switch (op) {
        case FLEET_OP_DECRYPT: return FLEET_PRIV_DECRYPT;
        case FLEET_OP_REKEY: case FLEET_OP_DEEP_REKEY: return FLEET_PRIV_REKEY;
        case FLEET_OP_START: return FLEET_PRIV_START;
        default: return FLEET_PRIV_ENCRYPT;
        }
}

bool fleet_valid_name(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > 200)
                return false;
        for (const char *p = s; *p; p++)
                if (*p <= ' ' || *p >= 0x7f || strchr("/?&%\"'\\#", *p))
                        return false;
        return true;
}
