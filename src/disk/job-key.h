/* The host's job key: 32 random bytes in STATE_DIR/job.key (STATE_DIR is
 * $VMCRYPT_STATE_DIR, default /var/lib/vmcrypt) that seal every job area this host
 * writes (job.h). A guest owns the bytes of its disk until they are encrypted and
 * could otherwise plant a job area that the next command obeys; without this key it
 * cannot make one that verifies. The key authenticates, it hides nothing: losing it
 * costs only the ability to resume jobs that were in progress, and a disk moved to
 * another host in the middle of a job resumes there with a copy of this file.
 *
 * The directory and the file must belong to the user running vmcrypt and be closed
 * to everyone else (a local user who could replace the key could forge jobs). */
#pragma once

#include <stdbool.h>

#include "shared/error.h"
#include "shared/secret.h"

#define JOB_KEY_SIZE 32
#define JOB_KEY_FILE "job.key"

/* The state directory: $VMCRYPT_STATE_DIR or /var/lib/vmcrypt. */
const char *job_key_state_dir(void);

/* Load STATE_DIR/job.key into *ret. With create, a missing directory (0700) and key
 * (0600) are made first. -ENOENT when there is no key and create is false; -EACCES
 * when the directory or the file is a symlink, not ours, or open to group/others;
 * -EBADMSG when the file is not a key; err explains. */
int job_key_load(const char *state_dir, bool create, struct secret **ret, struct error *err);

/* The key one engine call uses: given (not owned) when set, else the state
 * directory's, loaded into *owned (the caller frees it). With create it is made
 * if missing; without, a missing key is no error and *ret is NULL (no job of this
 * host can exist then). */
int job_key_get(const struct secret *given, bool create, struct secret **owned, const struct secret **ret,
                struct error *err);
