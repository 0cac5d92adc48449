/* "key = value" configuration files, as every vmcrypt daemon reads them
 * (kms.conf, and the manager's and agent's files): one setting per line, blank
 * lines and lines starting with '#' or ';' ignored, spaces around keys and values
 * trimmed, and "[NAME]" lines opening a section (e.g. "[group admins]"). A line
 * longer than CONF_LINE_MAX is an error, never silently split. */
#pragma once

#include "shared/error.h"

#define CONF_LINE_MAX 4096

/* Called for every setting: section is the open section's NAME ("" before the
 * first one); for a "[NAME]" line itself key and value are NULL. Returns 0, or a
 * negative errno with err set. -ENOKEY and -EINVAL without a message become
 * "unknown key" and "invalid value" messages naming the file and line. */
typedef int (*conf_set_fn)(const char *section, const char *key, const char *value, void *userdata,
                           struct error *err);

/* Read path and call set for each line; 0, or the first failure (err names the
 * file and the line). */
int conf_read(const char *path, conf_set_fn set, void *userdata, struct error *err);

/* s without the white space around it (trimmed in place). */
char *conf_strip(char *s);

/* value as a decimal number in [min, max] into *ret; -EINVAL otherwise (a sign,
 * trailing characters, out of range). */
int conf_uint(const char *value, unsigned long min, unsigned long max, unsigned long *ret);

/* value as a path: as it is when absolute, else relative to the directory of the
 * configuration file conf. malloc'ed into *ret; 0 or -ENOMEM. */
int conf_path(const char *conf, const char *value, char **ret);
