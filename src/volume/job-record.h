/* Where the detached header of a disk's interrupted job is. A job with --header
 * keeps all its state in the header file, and the disk itself says nothing, so
 * after a crash `vmcrypt disk resume /dev/sdb` could not find it. Before such a job
 * changes anything, the CLI records the header's path under the state directory
 * ($VMCRYPT_STATE_DIR, default /var/lib/vmcrypt), in jobs/ keyed by the disk's
 * identity (device number, or file system and inode); the record goes when the job
 * is done. resume and status use it when --header is not given. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "disk/engine.h"

/* The state directory the records live under (jobs/ in it). */
const char *job_record_dir(void);
/* Durably record that a job of operation on target keeps its state in header. */
int job_record_add(const char *target, const char *header, enum engine_operation operation);
/* Forget the record of target's job (absent is fine). */
int job_record_remove(const char *target);
/* The recorded header of target's job into buf: 0, -ENOENT when there is none. */
int job_record_header(const char *target, char *buf, size_t size);
