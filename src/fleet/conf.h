/* "key = value" files (manager.conf, agent.conf, the CLI's manager file): '#'
 * comments, blank lines, one setting per line; relative paths are taken relative
 * to the file's directory. */
#pragma once

#include <stddef.h>

#include "fleet/fleet.h"

/* Call set(key, value, line, userdata) for each setting of path; set returns 0 or
 * a negative errno (having filled err). */
int fleet_conf_read(const char *path, int (*set)(const char *key, const char *value, int line, void *userdata,
                                                 struct error *err),
                    void *userdata, struct error *err);

/* value as a path: as it is when absolute, else relative to conf's directory. */
void fleet_conf_path(const char *conf, const char *value, char *buf, size_t size);
