/* Per-call errors: see error.h. */
#include "shared/error.h"

#include <stdarg.h>
#include <stdio.h>

void error_clear(struct error *e) {
        if (!e)
                return;
        e->code = 0;
        e->text[0] = '\0';
}

int error_set(struct error *e, int r, const char *fmt, ...) {
        if (!e || e->code != 0 || e->text[0])
                return r;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->text, sizeof(e->text), fmt, ap);
        va_end(ap);
        e->code = r;
        return r;
}

const char *error_text(const struct error *e) {
        return e && e->text[0] ? e->text : NULL;
}
