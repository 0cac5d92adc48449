/* Per-call errors: see error.h. */
#include "shared/error.h"

#include <stdarg.h>
#include <stdio.h>

void error_clear(struct error *e) {
        if (!e)
                return;
        e->code = 0;
        e->fault = ERROR_FAULT_NONE;
        e->text[0] = '\0';
}

__attribute__((format(printf, 4, 0)))
static int set(struct error *e, int fault, int r, const char *fmt, va_list ap) {
        if (!e || e->code != 0 || e->text[0])
                return r;
        vsnprintf(e->text, sizeof(e->text), fmt, ap);
        e->code = r;
        e->fault = fault;
        return r;
}

int error_set(struct error *e, int r, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        set(e, ERROR_FAULT_NONE, r, fmt, ap);
        va_end(ap);
        return r;
}

int error_set_fault(struct error *e, int fault, int r, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        set(e, fault, r, fmt, ap);
        va_end(ap);
        return r;
}

int error_wrap(struct error *e, const struct error *inner, int r, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        set(e, error_fault(inner), r, fmt, ap);
        va_end(ap);
        return r;
}

int error_fault(const struct error *e) {
        return e ? e->fault : ERROR_FAULT_NONE;
}

const char *error_fault_name(int fault) {
        switch (fault) {
        case ERROR_FAULT_KEY_UNREACHABLE: return "key-unreachable";
        case ERROR_FAULT_KEY_MISSING: return "key-missing";
        case ERROR_FAULT_KEY_DENIED: return "key-denied";
        default: return "";
        }
}

const char *error_text(const struct error *e) {
        return e && e->text[0] ? e->text : NULL;
}
