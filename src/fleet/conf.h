/* Paths in the fleet's configuration files (read with shared/conf.h): the buffer
 * form of conf_path. */
#pragma once

#include <stddef.h>

/* value as a path: as it is when absolute, else relative to conf's directory. */
void fleet_conf_path(const char *conf, const char *value, char *buf, size_t size);
