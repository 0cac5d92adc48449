/* Configuration files: see conf.h. */
#include "fleet/conf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/macro.h"

static char *strip(char *s) {
        while (*s == ' ' || *s == '\t')
                s++;
        char *e = s + strlen(s);
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
                *--e = 0;
        return s;
}

int fleet_conf_read(const char *path, int (*set)(const char *key, const char *value, int line, void *userdata,
                                                 struct error *err),
                    void *userdata, struct error *err) {
        FILE *f = fopen(path, "re");
        if (!f)
                return error_set(err, negative_errno(), "cannot read %s: %s", path, strerror(errno));
        char buf[4096];
        int line = 0, r = 0;
        while (r == 0 && fgets(buf, sizeof(buf), f)) {
                line++;
                if (!strchr(buf, '\n') && !feof(f)) {
                        r = error_set(err, -EINVAL, "%s:%d: line too long", path, line);
                        break;
                }
                char *s = strip(buf);
                if (!*s || *s == '#')
                        continue;
                char *eq = strchr(s, '=');
                if (!eq) {
                        r = error_set(err, -EINVAL, "%s:%d: expected 'key = value'", path, line);
                        break;
                }
                *eq = 0;
                r = set(strip(s), strip(eq + 1), line, userdata, err);
        }
        fclose(f);
        return r;
}

void fleet_conf_path(const char *conf, const char *value, char *buf, size_t size) {
        const char *slash = strrchr(conf, '/');
        if (value[0] == '/' || !slash)
                snprintf(buf, size, "%s", value);
        else
                snprintf(buf, size, "%.*s/%s", (int) (slash - conf), conf, value);
}
