/* Master key handling: see master.h.
 *
 * Rotation with a key file is crash-safe in three durable steps: (1) the new key is
 * written to "<file>.new" (0600, fsync'd); (2) one SQLite transaction re-seals every
 * object and the check value under it; (3) "<file>.new" is renamed over "<file>" and
 * the directory fsync'd. A crash before (2) commits leaves the old key valid (the
 * stray .new is ignored and overwritten next time); a crash between (2) and (3) is
 * repaired at the next open, which finds that .new, not the old file, opens the store. */
#include "kms/master.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kms/seal.h"
#include "shared/fd-util.h"
#include "shared/key-input.h"
#include "shared/log.h"

static int read_passphrase(const char *path, struct secret **ret) {
        _cleanup_(secret_freep) struct secret *p = NULL;
        int r = key_input_read_file(path, &p);
        if (r < 0)
                return r;
        /* A passphrase file written with echo ends in a newline that is not part of it. */
        size_t n = p->size;
        while (n > 0 && (p->data[n - 1] == '\n' || p->data[n - 1] == '\r'))
                n--;
        if (n == 0)
                return -EINVAL;
        secret_truncate(p, n);
        *ret = TAKE_PTR(p);
        return 0;
}

int kms_master_open_store(const struct kms_config *c, int prompt, struct store **ret) {
        _cleanup_(secret_freep) struct secret *pass = NULL;
        if (c->passphrase_file || !c->master_key_file) {
                int r = c->passphrase_file ? read_passphrase(c->passphrase_file, &pass)
                                           : prompt ? key_input_prompt("Master passphrase: ", 0, &pass) : -ENOKEY;
                if (r < 0)
                        return log_error_errno(r, "Cannot read the master passphrase%s%s: %m",
                                               c->passphrase_file ? " from " : "", c->passphrase_file ? c->passphrase_file : "");
                return store_sqlite_open_cache(c->database, &(struct master_source) { .passphrase = pass }, c->cache_rows, ret);
        }

        _cleanup_(secret_freep) struct secret *key = NULL;
        int r = seal_key_load_file(c->master_key_file, &key);
        if (r == -EPERM)
                return log_error_errno(r, "Master key file %s is readable by group or others; run chmod 600 on it.",
                                       c->master_key_file);
        if (r < 0)
                return log_error_errno(r, "Cannot load the master key file %s (32 bytes expected): %m", c->master_key_file);
        r = store_sqlite_open_cache(c->database, &(struct master_source) { .key = key }, c->cache_rows, ret);
        if (r != -EKEYREJECTED)
                return r;

        /* Perhaps a rotation committed but did not get to rename its key file. */
        _cleanup_(freep) char *newpath = NULL;
        if (asprintf(&newpath, "%s.new", c->master_key_file) < 0)
                return -ENOMEM;
        _cleanup_(secret_freep) struct secret *nk = NULL;
        if (seal_key_load_file(newpath, &nk) < 0)
                return r;
        r = store_sqlite_open_cache(c->database, &(struct master_source) { .key = nk }, c->cache_rows, ret);
        if (r < 0)
                return r;
        if (rename(newpath, c->master_key_file) < 0 || fsync_parent_dir(c->master_key_file) < 0)
                log_warning("Could not finish the interrupted master key rotation (rename %s): %m", newpath);
        else
                log_notice("Finished an interrupted master key rotation: %s is the new master key", c->master_key_file);
        return 0;
}

int kms_master_rotate(const struct kms_config *c, const struct secret *new_passphrase, struct store *s) {
        if (new_passphrase)
                return store_rotate(s, &(struct master_source) { .passphrase = new_passphrase });
        if (!c->master_key_file)
                return -EINVAL;
        _cleanup_(freep) char *newpath = NULL;
        if (asprintf(&newpath, "%s.new", c->master_key_file) < 0)
                return -ENOMEM;
        (void) unlink(newpath);
        _cleanup_(secret_freep) struct secret *nk = NULL;
        int r = key_input_new_key_file(newpath, SEAL_KEY_SIZE, &nk);
        if (r < 0)
                return r;
        _cleanup_(closep) int fd = open(newpath, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fsync(fd) < 0 || fsync_parent_dir(newpath) < 0)
                return negative_errno();
        r = store_rotate(s, &(struct master_source) { .key = nk });
        if (r < 0) {
                (void) unlink(newpath);
                return r;
        }
        if (rename(newpath, c->master_key_file) < 0)
                return negative_errno();
        return fsync_parent_dir(c->master_key_file);
}
