/* The host's job key: see job-key.h. */
#include "disk/job-key.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk/engine-internal.h"
#include "shared/fd-util.h"

const char *job_key_state_dir(void) {
        const char *d = getenv("VMCRYPT_STATE_DIR");
        return d && *d ? d : "/var/lib/vmcrypt";
}

/* Ours, and nobody else may write it (or, for private files, read it). */
static int check_owner(const struct stat *st, const char *path, bool private, struct error *err) {
        if (st->st_uid != geteuid())
                return engine_fail(err, -EACCES, "%s belongs to uid %u, not to the user running vmcrypt (uid %u): "
                                   "chown it, or set VMCRYPT_STATE_DIR to a directory of your own",
                                   path, (unsigned) st->st_uid, (unsigned) geteuid());
        mode_t open_bits = private ? 077 : 022;
        if (st->st_mode & open_bits)
                return engine_fail(err, -EACCES, "%s is open to other users (mode %04o): chmod %s %s", path,
                                   (unsigned) (st->st_mode & 07777), private ? "600" : "go-w", path);
        return 0;
}

static int open_state_dir(const char *dir, bool create, struct error *err) {
        if (create && mkdir(dir, 0700) < 0 && errno != EEXIST)
                return engine_fail(err, negative_errno(), "cannot create the state directory %s: %s", dir, strerror(errno));
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
                int r = negative_errno();
                if (r == -ENOENT)
                        return r;
                if (r == -ELOOP || r == -ENOTDIR)
                        return engine_fail(err, -EACCES, "the state directory %s is a symlink or not a directory: "
                                           "vmcrypt keeps its host key there and follows no links", dir);
                return engine_fail(err, r, "cannot open the state directory %s: %s", dir, strerror(-r));
        }
        struct stat st;
        int r = fstat(fd, &st) < 0 ? negative_errno() : check_owner(&st, dir, false, err);
        if (r < 0) {
                close(fd);
                return r;
        }
        return fd;
}

static int read_key(int dfd, const char *path, struct secret **ret, struct error *err) {
        _cleanup_(closep) int fd = openat(dfd, JOB_KEY_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                int r = negative_errno();
                if (r == -ENOENT)
                        return r;
                if (r == -ELOOP)
                        return engine_fail(err, -EACCES, "%s is a symlink: the job key must be a plain file", path);
                return engine_fail(err, r, "cannot open %s: %s", path, strerror(-r));
        }
        struct stat st;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode) || st.st_size != JOB_KEY_SIZE)
                return engine_fail(err, -EBADMSG, "%s is not a job key (%d random bytes): move it away, and a new one is "
                                   "made at the next job (jobs in progress then need the old one)", path, JOB_KEY_SIZE);
        int r = check_owner(&st, path, true, err);
        if (r < 0)
                return r;
        _cleanup_(secret_freep) struct secret *k = secret_new(JOB_KEY_SIZE);
        if (!k)
                return -ENOMEM;
        if ((r = pread_full(fd, k->data, JOB_KEY_SIZE, 0)) < 0)
                return engine_fail(err, r, "cannot read %s: %s", path, strerror(-r));
        *ret = TAKE_PTR(k);
        return 0;
}

/* A new key appears whole or not at all: written to a private temporary name and
 * linked into place; when another process won the race, its key is the one. */
static int make_key(int dfd, const char *path, struct error *err) {
        char tmp[64];
        snprintf(tmp, sizeof(tmp), ".%s.%ld", JOB_KEY_FILE, (long) getpid());
        (void) unlinkat(dfd, tmp, 0);
        _cleanup_(closep) int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return engine_fail(err, negative_errno(), "cannot create the job key in %s: %s", path, strerror(errno));
        _cleanup_(secret_freep) struct secret *k = NULL;
        int r = secret_new_random(JOB_KEY_SIZE, &k);
        if (r >= 0)
                r = pwrite_full(fd, k->data, JOB_KEY_SIZE, 0);
        if (r >= 0 && fsync(fd) < 0)
                r = negative_errno();
        if (r >= 0 && linkat(dfd, tmp, dfd, JOB_KEY_FILE, 0) < 0 && errno != EEXIST)
                r = negative_errno();
        (void) unlinkat(dfd, tmp, 0);
        if (r >= 0 && fsync(dfd) < 0)
                r = negative_errno();
        if (r < 0)
                return engine_fail(err, r, "cannot create the job key %s: %s", path, strerror(-r));
        return 0;
}

int job_key_load(const char *state_dir, bool create, struct secret **ret, struct error *err) {
        char path[4096];
        if (snprintf(path, sizeof(path), "%s/%s", state_dir, JOB_KEY_FILE) >= (int) sizeof(path))
                return engine_fail(err, -ENAMETOOLONG, "the state directory path is too long");
        _cleanup_(closep) int dfd = open_state_dir(state_dir, create, err);
        if (dfd < 0)
                return dfd;
        int r = read_key(dfd, path, ret, err);
        if (r != -ENOENT || !create)
                return r;
        if ((r = make_key(dfd, path, err)) < 0)
                return r;
        return read_key(dfd, path, ret, err);
}

int job_key_get(const struct secret *given, bool create, struct secret **owned, const struct secret **ret,
                struct error *err) {
        *owned = NULL;
        if (given) {
                *ret = given;
                return 0;
        }
        int r = job_key_load(job_key_state_dir(), create, owned, err);
        if (r == -ENOENT && !create) {
                *ret = NULL;
                return 0;
        }
        if (r < 0)
                return r;
        *ret = *owned;
        return 0;
}
