/* Logging: see log.h. stderr only; daemons redirect it where they want. */
#include "shared/log.h"

#include <errno.h>
#include <openssl/err.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *program = "vmcrypt";
static enum log_level max_level = LOG_LEVEL_NOTICE;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void log_set_program(const char *name) {
        program = name;
}

void log_set_level(enum log_level level) {
        max_level = level;
}

enum log_level log_get_level(void) {
        return max_level;
}

int log_level_from_string(const char *s, enum log_level *ret) {
        static const char *const names[] = { "error", "warning", "notice", "info", "debug" };
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (strcasecmp(s, names[i]) == 0) {
                        *ret = (enum log_level) i;
                        return 0;
                }
        return -EINVAL;
}

int log_full_errno(enum log_level level, int error, const char *fmt, ...) {
        if (level > max_level)
                return error < 0 ? error : -error;

        /* Expand %m ourselves so the message uses the error we were given, not
         * whatever errno happens to hold now. */
        char expanded[1024];
        const char *errstr = strerror(error < 0 ? -error : error);
        size_t o = 0;
        for (const char *p = fmt; *p && o + 1 < sizeof(expanded); p++) {
                if (p[0] == '%' && p[1] == 'm') {
                        size_t n = strlen(errstr);
                        if (n > sizeof(expanded) - 1 - o)
                                n = sizeof(expanded) - 1 - o;
                        memcpy(expanded + o, errstr, n);
                        o += n;
                        p++;
                } else
                        expanded[o++] = *p;
        }
        expanded[o] = 0;

        char msg[2048];
        va_list ap;
        va_start(ap, fmt);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        vsnprintf(msg, sizeof(msg), expanded, ap);
#pragma GCC diagnostic pop
        va_end(ap);

        static const char *const prefixes[] = { "error: ", "warning: ", "", "", "debug: " };
        pthread_mutex_lock(&log_lock);
        fprintf(stderr, "%s: %s%s\n", program, prefixes[level], msg);
        pthread_mutex_unlock(&log_lock);
        return error < 0 ? error : -error;
}

void log_openssl_errors(const char *context) {
        unsigned long e;
        char buf[256];
        while ((e = ERR_get_error()) != 0) {
                ERR_error_string_n(e, buf, sizeof(buf));
                log_debug("%s: openssl: %s", context, buf);
        }
}
