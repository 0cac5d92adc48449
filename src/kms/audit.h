/* Audit log: one JSON line per KMIP operation (time, client identity, operation,
 * object id, result status and reason). Never key material: callers pass only
 * identifiers. Lines are written with one write(2) on an O_APPEND descriptor, so
 * concurrent workers never interleave. */
#pragma once

#include <stdint.h>

struct audit;

/* Open (create 0600, append) the log at path. */
int audit_open(const char *path, struct audit **ret);
void audit_close(struct audit *a);
/* Record one operation; a NULL audit is a no-op. Failures are counted, not fatal. */
void audit_record(struct audit *a, const char *identity, const char *fingerprint, const char *operation,
                  const char *object_id, uint32_t status, uint32_t reason);
