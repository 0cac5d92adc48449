/* The operator's audit log: vmcrypt-kms commands that change what the server
 * does (issue-client, rotate-master-key, host approve|revoke, policy
 * capture|set) write each change to operator-audit-log, chained like the
 * server's log under the same audit key. A change is written before it is made
 * (result pending, durable; if that fails nothing changes) and again with its
 * result. The client is "local:USER", the peer "local". Part of the
 * vmcrypt-kms program: it says what went wrong on standard error. */
#pragma once

#include "kms/audit.h"
#include "kms/config.h"

struct operator_log {
        struct audit *audit;    /* NULL: the configuration has none */
        char who[160];          /* "local:USER" */
};

/* Open c's operator log; 0, or -errno (said) when it cannot be opened, and
 * then the caller changes nothing. */
int operator_log_open(const struct kms_config *c, struct operator_log *ol);
void operator_log_close(struct operator_log *ol);
/* Write one line: result 1 before the change (pending), then the change's
 * result (0, or its -errno). 0, or -errno (said): before the change, do not
 * make it. */
int operator_log_record(struct operator_log *ol, const char *operation, const char *object, const char *message,
                        int result);
