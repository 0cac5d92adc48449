/* Configuration files: see conf.h. */
#include "shared/conf.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/macro.h"

char *conf_strip(char *s) {
        while (isspace((unsigned char) *s))
                s++;
        char *e = s + strlen(s);
        while (e > s && isspace((unsigned char) e[-1]))
                *--e = 0;
        return s;
}

/* One line's setting: a failure without an explanation gets one with the place. */
static int apply(conf_set_fn set, const char *section, const char *key, const char *value, void *userdata,
                 const char *path, unsigned line, struct error *err) {
        struct error e = { 0 };
        int r = set(section, key, value, userdata, &e);
        if (r >= 0)
                return r;
        if (error_text(&e))
                return error_set(err, r, "%s:%u: %s", path, line, e.text);
        if (r == -ENOKEY && key)
                return error_set(err, -EINVAL, "%s:%u: unknown key '%s'", path, line, key);
        if (r == -ENOKEY)
                return error_set(err, -EINVAL, "%s:%u: unknown section [%s]", path, line, section);
        if (r == -EINVAL && key)
                return error_set(err, r, "%s:%u: invalid value for '%s': %s", path, line, key, value);
        return error_set(err, r, "%s:%u: %s", path, line, strerror(-r));
}

int conf_read(const char *path, conf_set_fn set, void *userdata, struct error *err) {
        FILE *f = fopen(path, "re");
        if (!f) {
                int r = negative_errno();
                return error_set(err, r, "cannot read %s: %s", path, strerror(-r));
        }
        char buf[CONF_LINE_MAX + 2], section[256] = "";
        unsigned line = 0;
        int r = 0;
        while (r >= 0 && fgets(buf, sizeof(buf), f)) {
                line++;
                if (!strchr(buf, '\n') && !feof(f)) {
                        r = error_set(err, -EINVAL, "%s:%u: line longer than %d bytes", path, line, CONF_LINE_MAX);
                        break;
                }
                char *s = conf_strip(buf);
                if (!*s || *s == '#' || *s == ';')
                        continue;
                if (*s == '[') {
                        char *close = strchr(s, ']');
                        if (!close || close[1] || (size_t) (close - s - 1) >= sizeof(section)) {
                                r = error_set(err, -EINVAL, "%s:%u: a section line is [NAME]", path, line);
                                break;
                        }
                        *close = 0;
                        snprintf(section, sizeof(section), "%s", conf_strip(s + 1));
                        r = apply(set, section, NULL, NULL, userdata, path, line, err);
                        continue;
                }
                char *eq = strchr(s, '=');
                if (!eq) {
                        r = error_set(err, -EINVAL, "%s:%u: expected key = value", path, line);
                        break;
                }
                *eq = 0;
                r = apply(set, section, conf_strip(s), conf_strip(eq + 1), userdata, path, line, err);
        }
        fclose(f);
        return r < 0 ? r : 0;
}

int conf_path(const char *conf, const char *value, char **ret) {
        const char *slash = strrchr(conf, '/');
        char *p = NULL;
        if (value[0] == '/' || !slash)
                p = strdup(value);
        else if (asprintf(&p, "%.*s/%s", (int) (slash - conf), conf, value) < 0)
                p = NULL;
        if (!p)
                return -ENOMEM;
        *ret = p;
        return 0;
}

int conf_uint(const char *value, unsigned long min, unsigned long max, unsigned long *ret) {
        char *end;
        errno = 0;
        unsigned long n = strtoul(value, &end, 10);
        if (errno || end == value || *end || value[0] == '-' || n < min || n > max)
                return -EINVAL;
        *ret = n;
        return 0;
}
