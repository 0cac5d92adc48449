/* Ownership and modes of the server's state: see perms.h.
 *
 * Paths are checked before they are opened by name; that is safe because the
 * directories that hold them are checked too: once no other user may write to a
 * directory, no other user can replace what is in it between the check and the
 * open. Root may own files and directories as well: root can change them anyway,
 * and an operator may keep certificates in root's /etc with a service user. */
#include "kms/perms.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shared/log.h"
#include "shared/macro.h"

static const char *user_name(uid_t uid, char *buf, size_t size) {
        struct passwd pw, *res = NULL;
        char tmp[1024];
        if (getpwuid_r(uid, &pw, tmp, sizeof(tmp), &res) == 0 && res)
                snprintf(buf, size, "%s", res->pw_name);
        else
                snprintf(buf, size, "%u", (unsigned) uid);
        return buf;
}

/* One path, already resolved, of a known kind. */
static int check_one(const char *path, enum kms_perm_kind kind, int missing_ok) {
        struct stat st;
        if (stat(path, &st) < 0) {
                int r = negative_errno();
                if (r == -ENOENT && missing_ok)
                        return r;
                return log_error_errno(r, "Cannot check %s: %m", path);
        }
        const char *what = kind == KMS_PERM_DIR ? "directory" : "file";
        if (kind == KMS_PERM_DIR ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
                return log_error_errno(-EPERM, "%s is not a %s.", path, kind == KMS_PERM_DIR ? "directory" : "regular file");
        uid_t me = geteuid();
        if (st.st_uid != me && st.st_uid != 0) {
                char owner[64], self[64];
                return log_error_errno(-EPERM,
                                       "The %s %s belongs to user %s, not to %s who runs vmcrypt-kms: that user "
                                       "can replace it. Check its contents, then run: chown %s %s",
                                       what, path, user_name(st.st_uid, owner, sizeof(owner)),
                                       user_name(me, self, sizeof(self)), self, path);
        }
        unsigned mode = st.st_mode & 07777;
        if (kind == KMS_PERM_PRIVATE && (mode & 066))
                return log_error_errno(-EPERM, "The file %s holds a secret and group or others may read or "
                                       "write it (mode %04o). Run: chmod 600 %s", path, mode, path);
        /* A sticky directory (like /tmp) still lets others create names in it, which
         * SQLite's -wal and -shm files and a rotation's .new key must not meet. */
        if (mode & 022)
                return log_error_errno(-EPERM, "The %s %s is writable by group or others (mode %04o): they can "
                                       "replace what the server trusts. Run: chmod go-w %s",
                                       what, path, mode, path);
        return 0;
}

static int check_dir_of(const char *path) {
        _cleanup_(freep) char *copy = strdup(path);
        if (!copy)
                return -ENOMEM;
        char real[PATH_MAX];
        const char *dir = dirname(copy);
        if (!realpath(dir, real))
                return log_error_errno(negative_errno(), "Cannot check the directory %s: %m", dir);
        return check_one(real, KMS_PERM_DIR, 0);
}

int kms_perms_check(const char *path, enum kms_perm_kind kind, int missing_ok) {
        if (kind == KMS_PERM_DIR) {
                char real[PATH_MAX];
                if (!realpath(path, real))
                        return log_error_errno(negative_errno(), "Cannot check the directory %s: %m", path);
                return check_one(real, KMS_PERM_DIR, 0);
        }
        /* The directory the name is in (who may replace the name, or a symlink), */
        int r = check_dir_of(path);
        if (r < 0)
                return r;
        char real[PATH_MAX];
        if (!realpath(path, real)) {
                r = negative_errno();
                if (r == -ENOENT && missing_ok)
                        return r;
                return log_error_errno(r, "Cannot check %s: %m", path);
        }
        /* the file itself, and where a symlink leads (who may replace the target). */
        r = check_one(real, kind, missing_ok);
        if (r < 0)
                return r;
        return strcmp(real, path) == 0 ? 0 : check_dir_of(real);
}

static int check_optional(const char *path, enum kms_perm_kind kind) {
        if (!path || strcmp(path, "-") == 0) /* none, or standard input */
                return 0;
        int r = kms_perms_check(path, kind, 1);
        return r == -ENOENT ? 0 : r;
}

int kms_perms_check_config(const struct kms_config *c, const char *config_path) {
        int r = kms_perms_check(config_path, KMS_PERM_PUBLIC, 0);
        if (r < 0)
                return r;
        const struct {
                const char *path;
                enum kms_perm_kind kind;
        } files[] = {
                { c->tls_cert, KMS_PERM_PUBLIC },
                { c->tls_key, KMS_PERM_PRIVATE },
                { c->tls_ca, KMS_PERM_PUBLIC },
                { c->database, KMS_PERM_PRIVATE },
                { c->master_key_file, KMS_PERM_PRIVATE },
                { c->passphrase_file, KMS_PERM_PRIVATE },
                { c->audit_log, KMS_PERM_PUBLIC },
                { c->operator_audit_log, KMS_PERM_PUBLIC },
                { c->attestation_ek_ca, KMS_PERM_PUBLIC },
        };
        for (size_t i = 0; i < ELEMENTSOF(files); i++)
                if ((r = check_optional(files[i].path, files[i].kind)) < 0)
                        return r;
        /* What SQLite and a rotation create next to their files, if they are there. */
        static const char *const suffixes[] = { "-wal", "-shm" };
        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
                _cleanup_(freep) char *p = NULL;
                if (asprintf(&p, "%s%s", c->database, suffixes[i]) < 0)
                        return -ENOMEM;
                if ((r = check_optional(p, KMS_PERM_PRIVATE)) < 0)
                        return r;
        }
        if (c->master_key_file) {
                _cleanup_(freep) char *p = NULL;
                if (asprintf(&p, "%s.new", c->master_key_file) < 0)
                        return -ENOMEM;
                if ((r = check_optional(p, KMS_PERM_PRIVATE)) < 0)
                        return r;
        }
        return 0;
}
