/* Paths in configuration files: see conf.h. */
#include "fleet/conf.h"

#include <stdio.h>
#include <string.h>

void fleet_conf_path(const char *conf, const char *value, char *buf, size_t size) {
        const char *slash = strrchr(conf, '/');
        if (value[0] == '/' || !slash)
                snprintf(buf, size, "%s", value);
        else
                snprintf(buf, size, "%.*s/%s", (int) (slash - conf), conf, value);
}
