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

enum job_record_kind {
        JOB_RECORD_JOB,     /* jobs/: where an interrupted job's state is */
        JOB_RECORD_HEADER,  /* headers/: where a finished volume's detached header is, so
                             * status without --header does not take its ciphertext
                             * for plain data */
};

/* The state directory the records live under (jobs/ and headers/ in it). */
const char *job_record_dir(void);
/* Durably record that target's job of operation (or its volume) keeps its state in
 * header. Stale temporary files of dead writers are removed on the way. */
int job_record_add(enum job_record_kind kind, const char *target, const char *header,
                   enum engine_operation operation);
/* Forget the record (absent is fine). */
int job_record_remove(enum job_record_kind kind, const char *target);
/* A record is a few hundred bytes; larger files are not records. */
#define JOB_RECORD_MAX (64U << 10)

/* The recorded header into buf: 0, -ENOENT when there is none, -EUCLEAN when the
 * record is damaged. */
int job_record_header(enum job_record_kind kind, const char *target, char *buf, size_t size);
/* The header path of a record's text (JSON) into buf: 0 or -EUCLEAN. */
int job_record_parse(const char *text, size_t len, char *buf, size_t size);
