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
#include <sys/stat.h>
#include <unistd.h>

#include "kms/perms.h"
#include "kms/seal.h"
#include "shared/fd-util.h"
#include "shared/key-input.h"
#include "shared/log.h"

/* Characters, not bytes: UTF-8 continuation bytes do not start one. */
static size_t count_chars(const struct secret *s) {
        size_t n = 0;
        for (size_t i = 0; i < s->size; i++)
                n += (s->data[i] & 0xC0) != 0x80;
        return n;
}

/* The rules every master passphrase meets, typed or from a file (source names it
 * in messages). A new one (a new store, a rotation) must be long enough; one that
 * already seals a store is only warned about, so that it still opens. */
static int check_passphrase(const struct secret *p, bool new, const char *source) {
        if (p->size == 0)
                return log_error_errno(-EINVAL, "The master passphrase %s is empty.", source);
        if (memchr(p->data, '\n', p->size) || memchr(p->data, '\r', p->size))
                return log_error_errno(-EINVAL, "The master passphrase %s has a line break in it: a passphrase is "
                                       "one line, as typed at the prompt (one newline at the end of a file "
                                       "is not part of it).", source);
        size_t n = count_chars(p);
        if (n < KMS_PASSPHRASE_MIN && new)
                return log_error_errno(-EINVAL, "The master passphrase %s is too short (%zu characters); a new one "
                                       "needs at least %d. Use a longer one (e.g. several words).", source, n,
                                       KMS_PASSPHRASE_MIN);
        if (n < KMS_PASSPHRASE_MIN)
                log_warning("The master passphrase %s has only %zu characters: rotate to one of at least %d with "
                            "'vmcrypt-kms rotate-master-key --new-passphrase-file FILE'.", source, n,
                            KMS_PASSPHRASE_MIN);
        return 0;
}

int kms_master_read_passphrase(const char *path, bool new, struct secret **ret) {
        if (strcmp(path, "-") != 0) {
                int r = kms_perms_check(path, KMS_PERM_PRIVATE, 0);
                if (r < 0)
                        return r;
        }
        _cleanup_(secret_freep) struct secret *p = NULL;
        int r = key_input_read_file(path, &p);
        if (r == -EINVAL) /* key_input_read_file: an empty file */
                return log_error_errno(r, "The master passphrase file %s is empty.", path);
        if (r < 0)
                return log_error_errno(r, "Cannot read the master passphrase from %s: %m", path);
        /* A file written with echo ends in a newline that is not part of the
         * passphrase, as the prompt does not keep the Enter that ends a typed one:
         * exactly one is dropped, so that file and prompt give the same bytes. */
        key_input_strip_newline(p);
        _cleanup_(freep) char *source = NULL;
        if (asprintf(&source, "in %s", path) < 0)
                return -ENOMEM;
        r = check_passphrase(p, new, source);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(p);
        return 0;
}

static int open_db_rejected(const struct kms_config *c, const char *what) {
        return log_error_errno(-EKEYREJECTED, "The master %s does not match the database %s: use the key or "
                               "passphrase it was created with.", what, c->database);
}

/* Open the store with m, saying why not (but not a mismatch when quiet_reject:
 * the caller has another key to try). */
static int open_db(const struct kms_config *c, const struct master_source *m, bool quiet_reject, struct store **ret) {
        int r = store_sqlite_open_cache(c->database, m, c->cache_rows, ret);
        if (r == -EKEYREJECTED)
                return quiet_reject ? r : open_db_rejected(c, m->key ? "key" : "passphrase");
        if (r == -EUCLEAN)
                return log_error_errno(r, "The database %s records a master key derivation this version cannot "
                                       "use (or a damaged one).", c->database);
        if (r < 0)
                return log_error_errno(r, "Cannot open the database %s: %m", c->database);
        return 0;
}

/* Does the store not exist yet (or is it an empty file a failed start left)? Its
 * passphrase is then a new one. */
static bool store_is_new(const char *path) {
        struct stat st;
        return stat(path, &st) < 0 ? errno == ENOENT : st.st_size == 0;
}

int kms_master_open_store(const struct kms_config *c, int prompt, struct store **ret) {
        _cleanup_(secret_freep) struct secret *pass = NULL;
        if (c->passphrase_file || !c->master_key_file) {
                bool new = store_is_new(c->database);
                int r;
                if (c->passphrase_file)
                        r = kms_master_read_passphrase(c->passphrase_file, new, &pass);
                else if (!prompt)
                        return log_error_errno(-ENOKEY, "No master key: set master-key-file or passphrase-file, or "
                                               "use --passphrase-prompt.");
                else {
                        /* A new store's passphrase is asked twice: a typo would lock it. */
                        r = key_input_prompt("Master passphrase: ", new, &pass);
                        if (r < 0)
                                return log_error_errno(r, "Cannot read the master passphrase from the terminal%s: %m",
                                                       r == -EINVAL && new ? " (empty, or the two entries differ)" : "");
                        r = check_passphrase(pass, new, "typed");
                }
                if (r < 0)
                        return r;
                bool weak = false;
                r = open_db(c, &(struct master_source) { .passphrase = pass, .ret_weak_kdf = &weak }, false, ret);
                if (r == 0 && weak)
                        log_notice("The store's master passphrase is stretched with the older scrypt cost (N=2^15). "
                                   "'vmcrypt-kms rotate-master-key --new-passphrase-file FILE' re-seals it at "
                                   "today's (N=2^17).");
                return r;
        }

        _cleanup_(secret_freep) struct secret *key = NULL;
        int r = seal_key_load_file(c->master_key_file, &key);
        if (r == -EPERM)
                return log_error_errno(r, "Master key file %s is readable by group or others; run chmod 600 on it.",
                                       c->master_key_file);
        if (r < 0)
                return log_error_errno(r, "Cannot load the master key file %s (32 bytes expected): %m", c->master_key_file);
        r = open_db(c, &(struct master_source) { .key = key }, true, ret);
        if (r != -EKEYREJECTED)
                return r;

        /* Perhaps a rotation committed but did not get to rename its key file. */
        _cleanup_(freep) char *newpath = NULL;
        if (asprintf(&newpath, "%s.new", c->master_key_file) < 0)
                return -ENOMEM;
        _cleanup_(secret_freep) struct secret *nk = NULL;
        if (seal_key_load_file(newpath, &nk) < 0)
                return open_db_rejected(c, "key");
        r = open_db(c, &(struct master_source) { .key = nk }, false, ret);
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
