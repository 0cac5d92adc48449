/* The error of one library call: its negative errno and one line that says what is
 * wrong and what to do.
 *
 * Every library call that can fail for a reason worth telling takes a struct error
 * from its caller (usually on the caller's stack) and fills it; the first
 * explanation set wins, because what outer steps add later only says that they
 * failed too. Handles with a life of their own (a key provider, a KMIP client
 * connection, a KMS request) keep their last error in the handle instead, as
 * libcryptsetup keeps a log per device. Libraries never print. */
#pragma once

#include <stddef.h>

/* What a failure was, where the errno cannot say: -ENOENT is a missing file as
 * well as a key the key server does not have, -EACCES a file mode as well as a key
 * server that refuses this host. The three key faults are vSphere's key errors;
 * callers act on them (a job waits for a key server, a missing key is reported
 * as such) and the key layer sets them. */
enum error_fault {
        ERROR_FAULT_NONE = 0,
        ERROR_FAULT_KEY_UNREACHABLE, /* no server of the key provider answered */
        ERROR_FAULT_KEY_MISSING,     /* the key server has no such key (destroyed, revoked, inactive) */
        ERROR_FAULT_KEY_DENIED,      /* the key server does not deliver the key to this host */
};

struct error {
        int code;        /* 0, or the -errno of the first failure */
        int fault;       /* its enum error_fault */
        char text[1024]; /* its explanation ("" none) */
};

/* Forget any earlier failure. e may be NULL. */
void error_clear(struct error *e);
/* Record r and its explanation unless e already holds one; returns r, so that
 * callers can `return error_set(err, -EINVAL, "...")`. e may be NULL. */
int error_set(struct error *e, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* error_set that also records fault (enum error_fault). */
int error_set_fault(struct error *e, int fault, int r, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* error_set for an explanation that quotes inner's: inner's fault goes with it. */
int error_wrap(struct error *e, const struct error *inner, int r, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
/* The fault of e's failure (ERROR_FAULT_NONE for none or NULL). */
int error_fault(const struct error *e);
/* A short name for a fault ("key-unreachable", ...; "" for none). */
const char *error_fault_name(int fault);
/* The explanation, or NULL when there is none. */
const char *error_text(const struct error *e);
