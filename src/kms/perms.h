/* Who may change the server's state: the files and directories vmcrypt-kms reads
 * must belong to the user it runs as (or to root) and be writable by nobody else,
 * and its secrets readable by nobody else. Otherwise another local user could swap
 * ca.crt for their own CA, or a key file for theirs, and be served every key after
 * the next start. The checks log what is wrong and the command that fixes it. */
#pragma once

#include "kms/config.h"

enum kms_perm_kind {
        KMS_PERM_DIR,     /* holds state: not writable by group or others */
        KMS_PERM_PUBLIC,  /* certificates, config, audit log: not writable by group or others */
        KMS_PERM_PRIVATE, /* keys, master key, passphrase, database: not readable either */
};

/* Check path (a directory for KMS_PERM_DIR, else a regular file) and, for a file,
 * the directory that holds it (and the one its symlink target is in). Logs and
 * returns -EPERM when unsafe; -ENOENT without a log when it does not exist and
 * missing_ok is set (a directory must exist); other errors logged. */
int kms_perms_check(const char *path, enum kms_perm_kind kind, int missing_ok);

/* Everything serve and rotate-master-key read or write: the configuration file at
 * config_path, the TLS files, the database (and its WAL files), the master key or
 * passphrase file and the audit log. 0 or -EPERM (logged). Files not there yet are
 * left to the code that opens them, but their directory is checked. */
int kms_perms_check_config(const struct kms_config *c, const char *config_path);
