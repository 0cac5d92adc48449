/* Audit log: one JSON line per KMIP operation, refused handshake or refusal (time,
 * client identity and certificate fingerprint, peer address, operation, object id,
 * result, reason, message). Never key material: callers pass only identifiers.
 *
 * Lines are chained: each ends with "seq" (one more than the line before) and
 * "mac", an HMAC-SHA256 under the audit key of the previous line's mac and this
 * line up to its mac, so that an edited, removed, reordered or cut line shows
 * (audit_verify). Whole lines cut from the end do not: nothing follows them.
 *
 * A line is written with one write(2) under the log's lock (and, for a log that
 * several processes write, a file lock), so concurrent writers never interleave,
 * each goes on from the line before it, and the file's order is the chain's; a
 * write that falls short (a full file system) is cut back off, so no partial line
 * stays. audit_sync makes what was written durable. */
#pragma once

#include <stdint.h>
#include <stdio.h>

#define AUDIT_KEY_SIZE 32

struct audit;

struct audit_event {
        const char *identity;    /* certificate CN; NULL or "" when none */
        const char *fingerprint; /* SHA-256 hex of the certificate; NULL or "" when none */
        const char *peer;        /* "ADDR:PORT"; NULL or "" when unknown */
        const char *operation;
        const char *object_id;   /* may be NULL */
        const char *message;     /* may be NULL */
        uint32_t status;         /* KMIP Result Status: 0 success, 1 failed, ... */
        uint32_t reason;         /* KMIP Result Reason when status != 0; 0: none */
};

/* Open (create 0600, append) the log at path, chained under the 32-byte key in
 * key_path (created 0600 with a random key when absent; refused with -EPERM when
 * others may read it). The chain goes on from the log's last whole line; a last
 * line cut short (a crash while writing) is left as it is, for audit_verify to
 * report, and the new lines start on a line of their own. */
int audit_open(const char *path, const char *key_path, struct audit **ret);
/* The same for a log several processes append to (the operator's log, written
 * by each 'vmcrypt-kms host|policy' command): each line is written under a file
 * lock and goes on from the log's last line, whoever wrote it. The server's log
 * has the server as its one writer: audit_open. */
int audit_open_shared(const char *path, const char *key_path, struct audit **ret);
void audit_close(struct audit *a);
/* Write one line; a NULL audit is a no-op (0). 0, or the negative errno of the
 * write that failed (-ENOSPC, -EIO, ...): then nothing of the line is in the file. */
int audit_record(struct audit *a, const struct audit_event *ev);
/* Start making the lines written so far durable (fdatasync in the log's own
 * thread), without waiting. */
void audit_sync_soon(struct audit *a);
/* Wait until every line written so far is durable: 0, or the error of the
 * fdatasync that failed (from then on every line and sync fails: Linux may report
 * a later fdatasync as a success although the data is lost). */
int audit_sync(struct audit *a);
/* Lines that could not be written since the log was opened. */
unsigned long audit_failures(const struct audit *a);

/* What audit_verify found at line `line` of the log (a break, or a new chain). */
typedef void (*audit_finding_fn)(unsigned long line, const char *what, void *userdata);

/* Check the chain of the log at path with the key in key_path. Each finding goes to
 * report; 0 when the whole chain holds, -EBADMSG when it breaks somewhere, other
 * negative errno when the files cannot be read. *ret_lines: the lines read. */
int audit_verify(const char *path, const char *key_path, audit_finding_fn report, void *userdata,
                 unsigned long *ret_lines);
