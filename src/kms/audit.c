/* Audit log: see audit.h. */
#include "kms/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "shared/fd-util.h"
#include "shared/log.h"
#include "shared/macro.h"

struct audit {
        int fd;
        unsigned long failures;
};

int audit_open(const char *path, struct audit **ret) {
        struct audit *a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        a->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (a->fd < 0) {
                int r = negative_errno();
                free(a);
                return r;
        }
        *ret = a;
        return 0;
}

void audit_close(struct audit *a) {
        if (!a)
                return;
        (void) fsync(a->fd);
        close(a->fd);
        free(a);
}

static const char *result_name(uint32_t status) {
        switch (status) {
        case 0:
                return "success";
        case 1:
                return "failed";
        case 2:
                return "pending";
        default:
                return "undone";
        }
}

void audit_record(struct audit *a, const char *identity, const char *fingerprint, const char *operation,
                  const char *object_id, uint32_t status, uint32_t reason) {
        if (!a)
                return;
        struct timeval tv;
        gettimeofday(&tv, NULL);
        struct tm tm;
        gmtime_r(&tv.tv_sec, &tm);
        char ts[96];
        snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long) tv.tv_usec);
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "time", ts, "client", identity ? identity : "",
                              "client_sha256", fingerprint ? fingerprint : "", "operation", operation,
                              "result", result_name(status));
        if (!o) {
                __atomic_add_fetch(&a->failures, 1, __ATOMIC_RELAXED);
                return;
        }
        if (object_id && *object_id)
                json_object_set_new(o, "object", json_string(object_id));
        if (status != 0)
                json_object_set_new(o, "reason", json_integer(reason));
        char *line = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        if (!line) {
                __atomic_add_fetch(&a->failures, 1, __ATOMIC_RELAXED);
                return;
        }
        size_t n = strlen(line);
        line[n] = '\n'; /* json_dumps leaves room for the NUL we overwrite */
        if (write(a->fd, line, n + 1) != (ssize_t) (n + 1))
                __atomic_add_fetch(&a->failures, 1, __ATOMIC_RELAXED);
        free(line);
}
