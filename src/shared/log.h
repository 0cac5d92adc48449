/* Logging for programs (CLI and daemons). Libraries only log at debug level, to
 * explain a failure they also return; the one user-facing message is printed at
 * the edge. Messages never contain key material. */
#pragma once

#include <stdarg.h>

#include "shared/macro.h"

enum log_level {
        LOG_LEVEL_ERROR = 0,
        LOG_LEVEL_WARNING,
        LOG_LEVEL_NOTICE,
        LOG_LEVEL_INFO,
        LOG_LEVEL_DEBUG,
};

/* Program name shown in front of every message (default "vmcrypt"). */
void log_set_program(const char *name);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parse "error|warning|notice|info|debug"; 0 or -EINVAL. */
int log_level_from_string(const char *s, enum log_level *ret);

/* Print at level; returns error (a negative errno) so callers can
 * `return log_error_errno(r, "...")`. "%m" is replaced by strerror(-error). */
int log_full_errno(enum log_level level, int error, const char *fmt, ...) _printf_(3, 4);

#define log_error(...) log_full_errno(LOG_LEVEL_ERROR, 0, __VA_ARGS__)
#define log_warning(...) log_full_errno(LOG_LEVEL_WARNING, 0, __VA_ARGS__)
#define log_notice(...) log_full_errno(LOG_LEVEL_NOTICE, 0, __VA_ARGS__)
#define log_info(...) log_full_errno(LOG_LEVEL_INFO, 0, __VA_ARGS__)
#define log_debug(...) log_full_errno(LOG_LEVEL_DEBUG, 0, __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_LEVEL_ERROR, (e), __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_LEVEL_WARNING, (e), __VA_ARGS__)
#define log_debug_errno(e, ...) log_full_errno(LOG_LEVEL_DEBUG, (e), __VA_ARGS__)

/* Log OpenSSL's error queue at debug level and clear it. */
void log_openssl_errors(const char *context);
