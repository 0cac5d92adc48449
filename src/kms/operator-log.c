/* The operator's audit log: see operator-log.h. */
#include "kms/operator-log.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "shared/log.h"

int operator_log_open(const struct kms_config *c, struct operator_log *ol) {
        *ol = (struct operator_log) {};
        struct passwd pw, *pwp = NULL;
        char buf[1024];
        if (getpwuid_r(geteuid(), &pw, buf, sizeof(buf), &pwp) == 0 && pwp)
                snprintf(ol->who, sizeof(ol->who), "local:%s", pw.pw_name);
        else
                snprintf(ol->who, sizeof(ol->who), "local:uid %u", (unsigned) geteuid());
        /* A log of its own: the server's log has one writer, which keeps its hot
         * path free of file locks; operators' commands may run side by side. */
        int r = c->operator_audit_log ? audit_open_shared(c->operator_audit_log, c->audit_key, &ol->audit) : 0;
        if (r < 0)
                log_error_errno(r, "Cannot open the operator's audit log %s with the audit key %s (%m): an "
                                "operator's change is audited, so nothing was changed.", c->operator_audit_log,
                                c->audit_key);
        return r;
}

void operator_log_close(struct operator_log *ol) {
        audit_close(ol->audit);
        ol->audit = NULL;
}

int operator_log_record(struct operator_log *ol, const char *operation, const char *object, const char *message,
                        int result) {
        struct audit_event ev = {
                .identity = ol->who,
                .peer = "local",
                .operation = operation,
                .object_id = object,
                .message = message,
                .status = result == 1 ? 2 : result < 0 ? 1 : 0, /* KMIP's pending, failed, success */
        };
        int r = audit_record(ol->audit, &ev);
        if (r == 0)
                r = audit_sync(ol->audit);
        if (r < 0 && result == 1)
                log_error_errno(r, "Cannot write the operator's audit log (%m): nothing was changed.");
        else if (r < 0)
                log_error_errno(r, "The change is made, but its result could not be written to the operator's audit "
                                "log (%m).");
        return r;
}
