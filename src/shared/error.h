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

struct error {
        int code;        /* 0, or the -errno of the first failure */
        char text[1024]; /* its explanation ("" none) */
};

/* Forget any earlier failure. e may be NULL. */
void error_clear(struct error *e);
/* Record r and its explanation unless e already holds one; returns r, so that
 * callers can `return error_set(err, -EINVAL, "...")`. e may be NULL. */
int error_set(struct error *e, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The explanation, or NULL when there is none. */
const char *error_text(const struct error *e);
