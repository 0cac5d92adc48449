/* The fleet model's names and errors: see fleet.h. */
#include "fleet/fleet.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const role_names[] = {
        [FLEET_ROLE_NONE] = "none",         [FLEET_ROLE_ADMIN] = "admin", [FLEET_ROLE_OPERATOR] = "operator",
        [FLEET_ROLE_AUDITOR] = "auditor",   [FLEET_ROLE_AGENT] = "agent",
};

const char *fleet_role_name(enum fleet_role r) {
        return (unsigned) r < sizeof(role_names) / sizeof(role_names[0]) ? role_names[r] : "none";
}

enum fleet_role fleet_role_from_string(const char *s) {
        for (unsigned i = FLEET_ROLE_ADMIN; i < sizeof(role_names) / sizeof(role_names[0]); i++)
                if (strcmp(s, role_names[i]) == 0)
                        return (enum fleet_role) i;
        return FLEET_ROLE_NONE;
}

static const char *const op_names[] = {
        [FLEET_OP_ENCRYPT] = "encrypt",
        [FLEET_OP_DECRYPT] = "decrypt",
        [FLEET_OP_REKEY] = "rekey",
        [FLEET_OP_DEEP_REKEY] = "deep-rekey",
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

bool fleet_valid_name(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > 200)
                return false;
        for (const char *p = s; *p; p++)
                if (*p <= ' ' || *p >= 0x7f || strchr("/?&%\"'\\#", *p))
                        return false;
        return true;
}
