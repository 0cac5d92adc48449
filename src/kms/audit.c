/* Audit log: see audit.h. Lines are formatted by hand (no JSON library on the hot
 * path: one line per operation); every string is escaped. */
#include "kms/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
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

static bool valid_utf8(const unsigned char *s) {
        while (*s) {
                size_t n = *s < 0x80 ? 0 : (*s & 0xe0) == 0xc0 ? 1 : (*s & 0xf0) == 0xe0 ? 2 : (*s & 0xf8) == 0xf0 ? 3 : 4;
                if (n == 4)
                        return false;
                s++;
                for (size_t i = 0; i < n; i++, s++)
                        if ((*s & 0xc0) != 0x80)
                                return false;
        }
        return true;
}

/* Append "key":"escaped value" to buf at *o (bounded by size). Control characters,
 * quotes and backslashes are escaped; bytes of invalid UTF-8 become \u00XX so that
 * the line is always valid JSON whatever a certificate's CN holds. */
static void put_string(char *buf, size_t size, size_t *o, const char *key, const char *value) {
        bool utf8 = valid_utf8((const unsigned char *) value);
        *o += (size_t) snprintf(buf + *o, size > *o ? size - *o : 0, ",\"%s\":\"", key);
        for (const unsigned char *p = (const unsigned char *) value; *p && *o + 8 < size; p++) {
                if (*p == '"' || *p == '\\') {
                        buf[(*o)++] = '\\';
                        buf[(*o)++] = (char) *p;
                } else if (*p < 0x20 || *p == 0x7f || (*p >= 0x80 && !utf8))
                        *o += (size_t) snprintf(buf + *o, size - *o, "\\u%04x", *p);
                else
                        buf[(*o)++] = (char) *p;
        }
        if (*o + 1 < size)
                buf[(*o)++] = '"';
}

void audit_record(struct audit *a, const char *identity, const char *fingerprint, const char *operation,
                  const char *object_id, uint32_t status, uint32_t reason) {
        if (!a)
                return;
        struct timeval tv;
        gettimeofday(&tv, NULL);
        struct tm tm;
        gmtime_r(&tv.tv_sec, &tm);
        char line[2048];
        size_t o = (size_t) snprintf(line, sizeof(line), "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ\"",
                                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                                     (long) tv.tv_usec);
        put_string(line, sizeof(line), &o, "client", identity ? identity : "");
        put_string(line, sizeof(line), &o, "client_sha256", fingerprint ? fingerprint : "");
        put_string(line, sizeof(line), &o, "operation", operation);
        put_string(line, sizeof(line), &o, "result", result_name(status));
        if (object_id && *object_id)
                put_string(line, sizeof(line), &o, "object", object_id);
        if (status != 0 && o < sizeof(line))
                o += (size_t) snprintf(line + o, sizeof(line) - o, ",\"reason\":%u", reason);
        if (o + 2 >= sizeof(line)) {
                __atomic_add_fetch(&a->failures, 1, __ATOMIC_RELAXED);
                return;
        }
        line[o++] = '}';
        line[o++] = '\n';
        if (write(a->fd, line, o) != (ssize_t) o)
                __atomic_add_fetch(&a->failures, 1, __ATOMIC_RELAXED);
}
