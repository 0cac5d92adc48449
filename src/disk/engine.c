/* In-place jobs: encrypt, decrypt, reencrypt, resume and their finalisation. The
 * data pass is in engine-pass.c, the job area in job.c / engine-io.c. The order of
 * every durable step below is what makes a crash at any instant resumable; each
 * step names its crash point (testpoint) for the fault-injection tests. */
#include <errno.h>
#include <fcntl.h>
#include <libcryptsetup.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk/engine-internal.h"
#include "disk/image-format.h"
#include "disk/job-key.h"
#include "disk/luks.h"
#include "disk/testpoint.h"
#include "shared/fd-util.h"
#include "shared/log.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct crypt_device *, crypt_free);

static void job_cleanup(struct job *j) {
        /* A header file we created for a job that never started must not remain. */
        if (j->created_header && !j->started && j->p && j->p->header_path)
                (void) unlink(j->p->header_path);
        engine_job_done(j);
        if (j->hold_fd >= 0 && j->hold_fd != j->data_fd)
                close(j->hold_fd);
        if (j->data_fd >= 0)
                close(j->data_fd);
}

/* What the start (and the end) of a holder file says about it. */
enum holder_kind {
        HOLDER_PLAIN = 0,
        HOLDER_LUKS,
        HOLDER_DISGUISED,
        HOLDER_JOB,
};

/* What fd holds, judged only by what this host can vouch for: a job area sealed
 * with its job key, or a disguised embedded header with its finishing stamp. A
 * guest writes anything into its plain disk, the last bytes and a marker or a
 * disguised header at the start included; unsealed, these are its data. */
static int holder_probe(int fd, const struct secret *key, bool embedded, enum holder_kind *ret, char *ret_version) {
        uint64_t size;
        int r = engine_size(fd, &size);
        if (r < 0)
                return r;
        struct job_super sb;
        r = job_read_super(fd, size, key, &sb);
        if (r == 0 || r == -EBADMSG) {
                *ret = HOLDER_JOB;
                return 0;
        }
        size_t n = (size_t) MIN(size, (uint64_t) (4 << 20) + 4096);
        _cleanup_(freep) uint8_t *buf = malloc(n ? n : 1);
        if (!buf)
                return -ENOMEM;
        if (n && (r = pread_full(fd, buf, n, 0)) < 0)
                return r;
        enum luks_magic m = luks_magic_probe(buf, n, NULL);
        if (engine_is_marker(buf, n))
                *ret = HOLDER_PLAIN; /* no sealed job area: never ours */
        else if (m == LUKS_MAGIC_DISGUISED) {
                *ret = HOLDER_DISGUISED;
                struct engine_status st;
                if (embedded && (engine_disguised_status(fd, size, &st) < 0 ||
                                 engine_stamp_check(fd, st.data_offset, key) <= 0))
                        *ret = HOLDER_PLAIN;
        } else
                *ret = m == LUKS_MAGIC_REAL ? HOLDER_LUKS : HOLDER_PLAIN;
        if (ret_version)
                *ret_version = n >= 8 && buf[7] == 1 ? '1' : '2';
        return 0;
}

/* Roll back a job that never started changing the disk (see engine_job_unstarted).
 * Returns 1 when it did. */
static int settle_unstarted(int fd, const char *header_path, const struct secret *key, struct error *err) {
        uint64_t size;
        struct job_super sb;
        bool unstarted = false;
        int r = engine_size(fd, &size);
        if (r < 0)
                return r;
        if (job_read_super(fd, size, key, &sb) < 0)
                return 0;
        if (engine_job_unstarted(fd, &sb, key, &unstarted) < 0 || !unstarted)
                return 0;
        r = engine_job_rollback(fd, header_path, &sb, err);
        return r < 0 ? r : 1;
}

static int refuse_busy_or_luks(int fd, const char *path, const struct secret *key, bool embedded, bool luks_is_error,
                               struct error *err) {
        enum holder_kind k;
        char v = '2';
        int r = holder_probe(fd, key, embedded, &k, &v);
        if (r < 0)
                return r;
        if (k == HOLDER_JOB || k == HOLDER_DISGUISED)
                return engine_fail(err, -EINPROGRESS, "a vmcrypt job is in progress on %s: run vmcrypt disk resume", path);
        if (k == HOLDER_LUKS && luks_is_error)
                return engine_fail(err, -EEXIST, "%s is already a LUKS%c volume", path, v);
        return 0;
}

/* The "marker": from now on nothing recognises the disk as what it was. For a
 * detached encrypt it is the disguised new header in the fresh header file. */
static int job_mark(struct job *j) {
        if (j->sb.detached && j->sb.op == ENGINE_OP_ENCRYPT) {
                int r = pwrite_full(j->hold_fd, j->new_hdr, j->sb.new_hdr_len, 0);
                if (r < 0)
                        return r;
                if (fdatasync(j->hold_fd) < 0)
                        return negative_errno();
                testpoint("after-marker");
                return 0;
        }
        return engine_write_marker(j);
}

static int read_job_region(struct job *j, uint64_t off, uint64_t len, uint8_t **ret) {
        _cleanup_(freep) uint8_t *buf = malloc(len ? len : 1);
        if (!buf)
                return -ENOMEM;
        int r = pread_full(j->hold_fd, buf, len, (off_t) (j->sb.jstart + off));
        if (r < 0)
                return r;
        *ret = TAKE_PTR(buf);
        return 0;
}

int engine_finalize(struct job *j) {
        const struct job_super *sb = &j->sb;
        int r;
        testpoint("before-finalize");
        if (sb->op == ENGINE_OP_ENCRYPT || sb->op == ENGINE_OP_REENCRYPT || sb->op == ENGINE_OP_CONVERT) {
                if (!j->new_hdr && (r = read_job_region(j, sb->new_hdr_off, sb->new_hdr_len, &j->new_hdr)) < 0)
                        return r;
                /* Still disguised: the job area is still attached. */
                if (!sb->detached && (r = engine_stamp_header(j, j->new_hdr, sb->new_hdr_len)) < 0)
                        return r;
                if ((r = pwrite_full(j->hold_fd, j->new_hdr, sb->new_hdr_len, 0)) < 0)
                        return r;
                if (fdatasync(j->hold_fd) < 0)
                        return negative_errno();
        } else if (sb->layout == JOB_LAYOUT_SHIFT) {
                /* decrypt: the first bytes of plaintext go in last */
                if (!j->head && (r = read_job_region(j, sb->head_off, sb->head_len, &j->head)) < 0)
                        return r;
                _cleanup_(xts_freep) struct xts_ctx *x = NULL;
                if ((r = xts_new(j->old_vk, &x)) < 0)
                        return r;
                _cleanup_(freep) uint8_t *plain = malloc(sb->head_len);
                if (!plain)
                        return -ENOMEM;
                memcpy(plain, j->head, sb->head_len);
                r = xts_decrypt(x, plain, sb->head_len, sb->sector_size, 0);
                if (r >= 0)
                        r = pwrite_full(j->data_fd, plain, sb->head_len, 0);
                secret_wipe(plain, sb->head_len);
                if (r < 0)
                        return r;
                if (fdatasync(j->data_fd) < 0)
                        return negative_errno();
        }
        testpoint("after-header-write");
        if (sb->final_size == 0) {
                /* detached decrypt: the header has no more use */
                if (unlink(j->p->header_path) < 0 && errno != ENOENT)
                        return negative_errno();
                (void) fsync_parent_dir(j->p->header_path);
        } else {
                if (ftruncate(j->hold_fd, (off_t) sb->final_size) < 0)
                        return negative_errno();
                if (fsync(j->hold_fd) < 0)
                        return negative_errno();
        }
        testpoint("after-truncate");
        if (sb->op == ENGINE_OP_DECRYPT) {
                testpoint("after-magic");
                return 0;
        }
        return engine_restore_magic(j->hold_fd, sb->detached ? 0 : sb->new_hdr_len);
}

static int job_run(struct job *j) {
        j->started = true;
        int r = job_mark(j);
        if (r < 0)
                return r;
        r = engine_pass(j);
        if (r < 0)
                return r;
        r = engine_finalize(j);
        if (r >= 0 && j->p->progress) {
                struct engine_progress pr = { j->sb.op, j->sb.data_size, j->sb.data_size, true };
                (void) j->p->progress(&pr, j->p->progress_userdata);
        }
        return r;
}

/* Open the data file and, if any, the header file; both locked. */
static int job_open(struct job *j, const struct engine_params *p, bool create_header, bool new_job) {
        j->p = p;
        j->data_fd = j->hold_fd = -EBADF;
        int r = job_key_get(p->job_key, new_job, &j->owned_key, &j->key, p->err);
        if (r < 0)
                return r;
        r = engine_open_locked(p->path, 0, &j->data_fd, p->err);
        if (r < 0)
                return r;
        if (!p->header_path) {
                j->hold_fd = j->data_fd;
                return 0;
        }
        if (create_header) {
                struct stat st;
                bool exists = stat(p->header_path, &st) == 0;
                if (exists && st.st_size > 0) {
                        r = engine_open_locked(p->header_path, ENGINE_OPEN_HEADER, &j->hold_fd, p->err);
                        if (r < 0)
                                return r;
                        r = settle_unstarted(j->hold_fd, p->header_path, j->key, p->err);
                        if (r < 0)
                                return r;
                        if (r > 0) { /* an aborted start of ours: begin afresh */
                                close(j->hold_fd);
                                j->hold_fd = -EBADF;
                                exists = stat(p->header_path, &st) == 0;
                                return engine_open_locked(p->header_path, ENGINE_OPEN_HEADER | (exists ? 0 : ENGINE_OPEN_CREATE), &j->hold_fd, p->err);
                        }
                        r = refuse_busy_or_luks(j->hold_fd, p->header_path, j->key, false, true, p->err);
                        if (r < 0)
                                return r;
                        return engine_fail(p->err, -EEXIST, "header file %s already exists and is not empty", p->header_path);
                }
                j->created_header = !exists;
                return engine_open_locked(p->header_path, ENGINE_OPEN_HEADER | (exists ? 0 : ENGINE_OPEN_CREATE), &j->hold_fd, p->err);
        }
        return engine_open_locked(p->header_path, ENGINE_OPEN_HEADER, &j->hold_fd, p->err);
}

static int check_sector(uint64_t n, unsigned ss, const char *path, struct error *err) {
        if (n == 0 || n % ss)
                return engine_fail(err, -EINVAL, "the size of %s (%llu bytes) is not a non-zero multiple of the %u-byte sector size",
                                   path, (unsigned long long) n, ss);
        return 0;
}

/* A qcow2 (or VMDK, ...) file holds a disk; it is not one. Encrypting it as raw
 * bytes gives a LUKS volume whose "disk" is the container, useless to the guest.
 * The signature is guest data on a raw disk, so the administrator may override. */
static int refuse_container(int fd, uint64_t size, const struct engine_params *p) {
        const char *name = NULL;
        int r = image_format_probe(fd, size, &name);
        if (r <= 0 || p->force_raw)
                return r;
        return engine_fail(p->err, -EMEDIUMTYPE,
                           "%s is a %s image, not a raw disk: convert it to raw first "
                           "('qemu-img convert -O raw %s IMAGE.raw') and encrypt that; if it is a raw "
                           "disk whose guest wrote these bytes, pass --force-raw",
                           p->path, name, p->path);
}

int engine_encrypt(const struct engine_params *p) {
        enum disk_format format = p->format ? p->format : DISK_FORMAT_LUKS2;
        unsigned ss = p->sector_size ? p->sector_size : 512;
        const char *why;
        if (disk_sector_size_check(format, ss, &why) < 0)
                return engine_fail(p->err, -EINVAL, "%s", why);
        _cleanup_(job_cleanup) struct job j = { .data_fd = -EBADF, .hold_fd = -EBADF };
        int r = job_open(&j, p, true, true);
        if (r < 0)
                return r;
        bool detached = p->header_path != NULL;
        if (!detached && fd_is_block_device(j.data_fd) > 0)
                return engine_fail(p->err, -EINVAL, "%s is a block device: there is no room for a header in front; use --header FILE", p->path);
        uint64_t n;
        if ((r = engine_size(j.data_fd, &n)) < 0)
                return r;
        if (!detached && (r = settle_unstarted(j.data_fd, NULL, j.key, p->err)) > 0)
                r = engine_size(j.data_fd, &n);
        if (r < 0)
                return r;
        if ((r = refuse_busy_or_luks(j.data_fd, p->path, j.key, true, true, p->err)) < 0)
                return r;
        if ((r = refuse_container(j.data_fd, n, p)) < 0)
                return r;
        if ((r = check_sector(n, ss, p->path, p->err)) < 0)
                return r;

        if ((r = engine_new_volume_key(&j.new_vk)) < 0)
                return r;
        struct luks_new ln = { .format = format, .sector_size = ss, .detached = detached, .data_size = n,
                               .vk = j.new_vk, .unlock = p->unlock, .keyslot = -1, .kdf = p->kdf,
                               .pbkdf_memory_kib = p->pbkdf_memory_kib, .iter_time_ms = p->iter_time_ms,
                               .hook = p->header_hook, .hook_userdata = p->hook_userdata };
        size_t h;
        if ((r = luks_build(&ln, &j.new_hdr, &h)) < 0)
                return engine_fail(p->err, r, "cannot create the LUKS header: %s", strerror(-r));
        luks_disguise(j.new_hdr, h, 'e');

        struct job_super *sb = &j.sb;
        *sb = (struct job_super) { .op = ENGINE_OP_ENCRYPT, .format = format, .sector_size = ss,
                                   .detached = detached, .data_size = n, .hdr_region = h, .new_hdr_len = h,
                                   .orig_size = detached ? 0 : n };
        if (!detached) {
                sb->layout = JOB_LAYOUT_SHIFT;
                sb->dst_offset = h;
                sb->final_size = n + h;
                sb->jstart = ALIGN_UP(n + h, JOB_BLOCK);
                sb->head_len = MIN(ENGINE_HEAD_SIZE, n);
                engine_job_layout(sb);
                if (!(j.head = malloc(sb->head_len)))
                        return -ENOMEM;
                if ((r = pread_full(j.data_fd, j.head, sb->head_len, 0)) < 0)
                        return r;
        } else {
                sb->layout = JOB_LAYOUT_INPLACE;
                sb->final_size = h;
                sb->jstart = ALIGN_UP(h, JOB_BLOCK);
                sb->hotzone = MIN(ENGINE_HOTZONE, ALIGN_UP(n, JOB_BLOCK));
                engine_job_layout(sb);
        }
        if ((r = engine_check_final(j.hold_fd, sb->jstart + sb->jsize, p->err)) < 0)
                return r;
        if (detached && (r = engine_check_final(j.data_fd, n, p->err)) < 0)
                return r;
        if ((r = engine_job_write(&j, NULL, j.new_hdr, j.head, detached ? 0 : n)) < 0)
                return r;
        return job_run(&j);
}

/* An operation on an existing volume: roll back a job that never started, refuse
 * one in progress, and load the header, with the messages every such operation
 * gives for a plain, truncated or damaged holder. */
static int load_existing(struct job *j, const char *hold_path, struct crypt_device **ret) {
        int r;
        if ((r = settle_unstarted(j->hold_fd, j->p->header_path, j->key, j->p->err)) < 0)
                return r;
        if ((r = refuse_busy_or_luks(j->hold_fd, hold_path, j->key, !j->p->header_path, false, j->p->err)) < 0)
                return r;
        _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
        r = luks_load_path(hold_path, &cd);
        if (r == -ENODEV)
                return engine_fail(j->p->err, r, "%s is not a LUKS volume (no LUKS header found)", hold_path);
        if (r == -ERANGE)
                return engine_fail(j->p->err, -EBADMSG, "%s is truncated: it is shorter than its LUKS header says (restore the missing end of the file)", hold_path);
        if (r < 0)
                return engine_fail(j->p->err, -EUCLEAN, "the LUKS header of %s is corrupted (both copies): restore it from a header backup", hold_path);
        *ret = TAKE_PTR(cd);
        return 0;
}

/* Shared by decrypt and reencrypt: open, load the header, unlock, size the data. */
static int open_existing(struct job *j, const struct engine_params *p, struct crypt_device **ret_cd,
                         struct engine_status *st, int *ret_slot) {
        int r = job_open(j, p, false, true);
        if (r < 0)
                return r;
        const char *hold_path = p->header_path ? p->header_path : p->path;
        _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
        if ((r = load_existing(j, hold_path, &cd)) < 0)
                return r;
        if ((r = luks_fill_status(cd, st)) < 0)
                return r;
        if (strcmp(st->cipher, "aes-xts-plain64") != 0 || st->key_bits != 512)
                return engine_fail(p->err, -EINVAL, "%s uses %s with a %u-bit key; vmcrypt handles aes-xts-plain64 with 512-bit keys",
                                   hold_path, st->cipher, st->key_bits);
        if (!p->header_path && st->data_offset == 0)
                return engine_fail(p->err, -EINVAL, "%s has a detached header: pass --header FILE", p->path);
        r = luks_unlock(cd, p->unlock, &j->old_vk, ret_slot);
        if (r == -EPERM)
                return engine_fail(p->err, r, "wrong key: no keyslot of %s opens with it", hold_path);
        if (r < 0)
                return engine_fail(p->err, r, "cannot unlock %s: %s", hold_path, strerror(-r));
        uint64_t size;
        if ((r = engine_size(j->data_fd, &size)) < 0)
                return r;
        if (size < st->data_offset + st->sector_size || (size - st->data_offset) % st->sector_size)
                return engine_fail(p->err, -EBADMSG, "%s is truncated: %llu bytes do not hold a %llu-byte header plus whole %u-byte sectors",
                                   p->path, (unsigned long long) size, (unsigned long long) st->data_offset,
                                   st->sector_size);
        st->data_size = size - st->data_offset;
        *ret_cd = TAKE_PTR(cd);
        return 0;
}

static int read_holder(struct job *j, uint64_t len, char op, uint8_t **ret) {
        _cleanup_(freep) uint8_t *buf = malloc(len);
        if (!buf)
                return -ENOMEM;
        int r = pread_full(j->hold_fd, buf, len, 0);
        if (r < 0)
                return r;
        luks_disguise(buf, len, op);
        *ret = TAKE_PTR(buf);
        return 0;
}

int engine_decrypt(const struct engine_params *p) {
        _cleanup_(job_cleanup) struct job j = { .data_fd = -EBADF, .hold_fd = -EBADF };
        _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
        struct engine_status st = { 0 };
        int r = open_existing(&j, p, &cd, &st, NULL);
        if (r < 0)
                return r;
        bool detached = p->header_path != NULL;
        uint64_t h, hold_size, n = st.data_size;
        if ((r = luks_region_size(cd, &h)) < 0 || (r = engine_size(j.hold_fd, &hold_size)) < 0)
                return r;
        h = MIN(h, hold_size);
        _cleanup_(freep) uint8_t *old_hdr = NULL;
        if ((r = read_holder(&j, h, 'd', &old_hdr)) < 0)
                return r;
        struct job_super *sb = &j.sb;
        *sb = (struct job_super) { .op = ENGINE_OP_DECRYPT, .format = st.format, .sector_size = st.sector_size,
                                   .detached = detached, .data_size = n, .hdr_region = h, .old_hdr_len = h,
                                   .orig_size = hold_size };
        if (!detached) {
                sb->layout = JOB_LAYOUT_SHIFT;
                sb->src_offset = st.data_offset;
                sb->final_size = n;
                sb->jstart = ALIGN_UP(hold_size, JOB_BLOCK);
                sb->head_len = MIN(ENGINE_HEAD_SIZE, n);
                if (!(j.head = malloc(sb->head_len)))
                        return -ENOMEM;
                if ((r = pread_full(j.data_fd, j.head, sb->head_len, (off_t) st.data_offset)) < 0)
                        return r;
        } else {
                sb->layout = JOB_LAYOUT_INPLACE;
                sb->src_offset = sb->dst_offset = st.data_offset;
                sb->final_size = 0;
                sb->jstart = ALIGN_UP(hold_size, JOB_BLOCK);
                sb->hotzone = MIN(ENGINE_HOTZONE, ALIGN_UP(n, JOB_BLOCK));
        }
        engine_job_layout(sb);
        if ((r = engine_check_final(j.hold_fd, sb->jstart + sb->jsize, p->err)) < 0)
                return r;
        if (detached && (r = engine_check_final(j.data_fd, sb->src_offset + n, p->err)) < 0)
                return r;
        /* detached: backward from the end; shift: forward from the start */
        if ((r = engine_job_write(&j, old_hdr, NULL, j.head, detached ? n : 0)) < 0)
                return r;
        return job_run(&j);
}

/* A keyslot protecting a random secret (PBKDF2, minimal iterations) stays one. */
static enum engine_kdf slot_kdf(struct crypt_device *cd, int slot, enum engine_kdf dflt) {
        struct crypt_pbkdf_type pb = { 0 };
        if (crypt_keyslot_get_pbkdf(cd, slot, &pb) == 0 && pb.type && strcmp(pb.type, CRYPT_KDF_PBKDF2) == 0 &&
            pb.iterations <= 1000)
                return ENGINE_KDF_MINIMAL;
        return dflt;
}

int engine_reencrypt(const struct engine_params *p) {
        _cleanup_(job_cleanup) struct job j = { .data_fd = -EBADF, .hold_fd = -EBADF };
        _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
        struct engine_status st = { 0 };
        int slot = -1;
        int r = open_existing(&j, p, &cd, &st, &slot);
        if (r < 0)
                return r;
        bool detached = p->header_path != NULL;
        uint64_t h, hold_size, n = st.data_size;
        if ((r = luks_region_size(cd, &h)) < 0 || (r = engine_size(j.hold_fd, &hold_size)) < 0)
                return r;
        h = MIN(h, hold_size);
        _cleanup_(freep) uint8_t *old_hdr = NULL;
        if ((r = read_holder(&j, h, 'r', &old_hdr)) < 0)
                return r;
        if ((r = engine_new_volume_key(&j.new_vk)) < 0)
                return r;
        struct luks_new ln = { .format = st.format, .sector_size = st.sector_size, .detached = detached,
                               .data_offset = detached ? 0 : st.data_offset, .data_size = n,
                               .vk = j.new_vk, .unlock = p->unlock, .keyslot = slot,
                               .kdf = slot_kdf(cd, slot, p->kdf), .pbkdf_memory_kib = p->pbkdf_memory_kib,
                               .iter_time_ms = p->iter_time_ms, .tokens_from = cd,
                               .hook = p->header_hook, .hook_userdata = p->hook_userdata };
        size_t hn;
        if ((r = luks_build(&ln, &j.new_hdr, &hn)) < 0)
                return engine_fail(p->err, r, "cannot create the new LUKS header: %s", strerror(-r));
        luks_disguise(j.new_hdr, hn, 'r');
        struct job_super *sb = &j.sb;
        *sb = (struct job_super) { .op = ENGINE_OP_REENCRYPT, .layout = JOB_LAYOUT_INPLACE, .format = st.format,
                                   .sector_size = st.sector_size, .detached = detached, .data_size = n,
                                   .src_offset = st.data_offset, .dst_offset = st.data_offset,
                                   .hdr_region = MAX(h, (uint64_t) hn), .old_hdr_len = h, .new_hdr_len = hn,
                                   .final_size = detached ? hn : hold_size,
                                   .jstart = ALIGN_UP(hold_size, JOB_BLOCK), .orig_size = hold_size,
                                   .hotzone = MIN(ENGINE_HOTZONE, ALIGN_UP(n, JOB_BLOCK)) };
        engine_job_layout(sb);
        if ((r = engine_check_final(j.hold_fd, sb->jstart + sb->jsize, p->err)) < 0)
                return r;
        if (detached && (r = engine_check_final(j.data_fd, sb->src_offset + n, p->err)) < 0)
                return r;
        if ((r = engine_job_write(&j, old_hdr, j.new_hdr, NULL, 0)) < 0)
                return r;
        return job_run(&j);
}

/* With a key given: the new header (in memory) opens with it to the same volume
 * key as the old one, before the disk is touched. */
static int same_volume_key(const struct secret *a, const uint8_t *hdr, size_t len, const struct secret *unlock) {
        _cleanup_(secret_freep) struct secret *b = NULL;
        _cleanup_(crypt_freep) struct crypt_device *nc = NULL;
        _cleanup_(closep) int memfd = -EBADF;
        int r = luks_load_buffer(hdr, len, &nc, &memfd);
        if (r < 0 || (r = luks_unlock(nc, unlock, &b, NULL)) < 0)
                return -EBADMSG;
        return secret_equal(a, b) ? 0 : -EBADMSG;
}

/* One attempt of engine_convert: see engine.h. The new header is built in memory
 * (luks_convert), both headers go to a job area like a reencrypt's, the marker
 * replaces the old header, a FINALIZE checkpoint follows (no data pass: the data
 * and its key do not change), and engine_finalize writes the new header disguised
 * with the finishing stamp, drops the job area and restores the magics. Until the
 * marker is durable the disk is untouched and the job area is rolled back by the
 * next command; after it, resume finishes the job (a convert has no data pass to
 * resume, whatever its checkpoint says). */
static int convert_once(const struct engine_params *p, enum disk_format to) {
        _cleanup_(job_cleanup) struct job j = { .data_fd = -EBADF, .hold_fd = -EBADF };
        int r = job_open(&j, p, false, true);
        if (r < 0)
                return r;
        bool detached = p->header_path != NULL;
        const char *hold_path = detached ? p->header_path : p->path;
        _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
        if ((r = load_existing(&j, hold_path, &cd)) < 0)
                return r;
        struct engine_status st = { 0 };
        if ((r = luks_fill_status(cd, &st)) < 0)
                return r;
        if (st.format == to)
                return 1;
        if (!detached && st.data_offset == 0)
                return engine_fail(p->err, -EINVAL, "%s has a detached header: pass --header FILE", p->path);
        uint64_t h, hold_size, size;
        if ((r = luks_region_size(cd, &h)) < 0 || (r = engine_size(j.hold_fd, &hold_size)) < 0 ||
            (r = engine_size(j.data_fd, &size)) < 0)
                return r;
        if (h > hold_size || size < st.data_offset + st.sector_size || (size - st.data_offset) % st.sector_size)
                return engine_fail(p->err, -EBADMSG, "%s is truncated: it does not hold its %llu-byte header region and whole "
                                   "%u-byte sectors of data", hold_path, (unsigned long long) h, st.sector_size);
        uint64_t n = size - st.data_offset;
        _cleanup_(freep) uint8_t *old_hdr = NULL;
        if ((r = read_holder(&j, h, 'c', &old_hdr)) < 0)
                return r;
        _cleanup_(freep) uint8_t *plain = malloc(h);
        if (!plain)
                return -ENOMEM;
        memcpy(plain, old_hdr, h);
        luks_undisguise(plain, h);
        if (p->unlock) {
                r = luks_unlock(cd, p->unlock, &j.old_vk, NULL);
                if (r == -EPERM)
                        return engine_fail(p->err, r, "wrong key: no keyslot of %s opens with it", hold_path);
                if (r < 0)
                        return engine_fail(p->err, r, "cannot unlock %s: %s", hold_path, strerror(-r));
        }
        char why[512] = "";
        size_t hn;
        r = luks_convert(cd, plain, h, to, p->unlock, p->iter_time_ms, &j.new_hdr, &hn, why, sizeof(why));
        if (r < 0)
                return engine_fail(p->err, r, "cannot convert %s to %s: %s", hold_path, disk_format_to_string(to),
                                   why[0] ? why : strerror(-r));
        if (p->unlock && (r = same_volume_key(j.old_vk, j.new_hdr, hn, p->unlock)) < 0)
                return engine_fail(p->err, r, "the converted header of %s does not give the volume key the old one gives "
                                   "with this key: nothing was changed", hold_path);
        luks_disguise(j.new_hdr, hn, 'c');
        struct job_super *sb = &j.sb;
        *sb = (struct job_super) { .op = ENGINE_OP_CONVERT, .layout = JOB_LAYOUT_INPLACE, .format = to,
                                   .sector_size = st.sector_size, .detached = detached, .data_size = n,
                                   .src_offset = st.data_offset, .dst_offset = st.data_offset,
                                   .hdr_region = MAX(h, (uint64_t) hn), .old_hdr_len = h, .new_hdr_len = hn,
                                   .final_size = detached ? hn : hold_size,
                                   .jstart = ALIGN_UP(hold_size, JOB_BLOCK), .orig_size = hold_size,
                                   .hotzone = JOB_BLOCK };
        engine_job_layout(sb);
        if ((r = engine_check_final(j.hold_fd, sb->jstart + sb->jsize, p->err)) < 0)
                return r;
        if ((r = engine_job_write(&j, old_hdr, j.new_hdr, NULL, 0)) < 0)
                return r;
        j.started = true;
        /* From the marker on the job area's header is authoritative: the marker
         * keeps cryptsetup from opening the old header and changing its keyslots,
         * which the new header (already built) would silently undo. */
        if ((r = job_mark(&j)) < 0)
                return r;
        if ((r = engine_commit(&j, JOB_PHASE_FINALIZE, n, 0, 0)) < 0)
                return r;
        testpoint("after-convert-commit");
        return engine_finalize(&j);
}

int engine_convert(const struct engine_params *p, enum disk_format to) {
        if (to != DISK_FORMAT_LUKS1 && to != DISK_FORMAT_LUKS2)
                return engine_fail(p->err, -EINVAL, "convert to luks1 or luks2");
        int r = convert_once(p, to);
        if (r != -EINPROGRESS)
                return r;
        /* Run again after a crash: finish our own interrupted convert, then look
         * again (it may have been rolled back). Other jobs are refused. */
        struct engine_status st;
        if (engine_status(p->path, p->header_path, p->job_key, &st, p->err) < 0 || st.job != ENGINE_OP_CONVERT)
                return engine_fail(p->err, -EINPROGRESS, "a vmcrypt job is in progress on %s: run vmcrypt disk resume",
                                   p->header_path ? p->header_path : p->path);
        if ((r = engine_resume(p)) < 0)
                return r;
        return convert_once(p, to);
}

static int unlock_copy(struct job *j, bool new_header, struct secret **ret) {
        _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
        _cleanup_(closep) int memfd = -EBADF;
        int r = engine_job_load_header(j, new_header, &cd, &memfd);
        if (r < 0)
                return engine_fail(j->p->err, -EBADMSG, "the header copy in the job area is damaged");
        r = luks_unlock(cd, j->p->unlock, ret, NULL);
        if (r == -EPERM)
                return engine_fail(j->p->err, r, "wrong key: the key of this job's volume does not open it");
        return r;
}

int engine_resume(const struct engine_params *p) {
        _cleanup_(job_cleanup) struct job j = { .data_fd = -EBADF, .hold_fd = -EBADF };
        /* A detached decrypt removes its header file as its very last step. */
        if (p->header_path && access(p->header_path, F_OK) < 0 && errno == ENOENT && access(p->path, F_OK) == 0)
                return 1;
        int r = job_open(&j, p, false, false);
        if (r < 0)
                return r;
        const char *hold_path = p->header_path ? p->header_path : p->path;
        uint64_t size;
        if ((r = engine_size(j.hold_fd, &size)) < 0)
                return r;
        r = job_read_super(j.hold_fd, size, j.key, &j.sb);
        if (r == -EBADMSG)
                return engine_fail(p->err, r, "the job area at the end of %s is damaged: cannot resume", hold_path);
        if (r == -EKEYREJECTED)
                return engine_fail(p->err, -EBADMSG, "the end of %s looks like a vmcrypt job area, but not one this host wrote "
                                   "(its seal does not verify under %s/%s): a guest may have forged it, or the "
                                   "job was started on another host (resume it with a copy of that host's job key) "
                                   "or by an older vmcrypt (finish it with that version)",
                                   hold_path, job_key_state_dir(), JOB_KEY_FILE);
        if (r == -ENODATA) {
                enum holder_kind k;
                if ((r = holder_probe(j.hold_fd, j.key, !p->header_path, &k, NULL)) < 0)
                        return r;
                if (k == HOLDER_DISGUISED) {
                        struct engine_status st = { 0 };
                        if (!p->header_path && (r = engine_disguised_status(j.hold_fd, size, &st)) < 0)
                                return r;
                        return engine_restore_magic(j.hold_fd, p->header_path ? 0 : st.data_offset);
                }
                return 1; /* nothing to resume */
        }
        if (r < 0)
                return r;
        bool unstarted = false;
        if ((r = engine_job_unstarted(j.hold_fd, &j.sb, j.key, &unstarted)) < 0)
                return engine_fail(p->err, r, "both checkpoint records of the job on %s are damaged", hold_path);
        if (unstarted) {
                r = engine_job_rollback(j.hold_fd, p->header_path, &j.sb, p->err);
                return r < 0 ? r : 2; /* rolled back: the disk is as it was */
        }
        if ((r = job_read_ckpt(j.hold_fd, &j.sb, j.key, &j.ck)) < 0)
                return engine_fail(p->err, r, "both checkpoint records of the job on %s are damaged", hold_path);
        /* Writing a new header that the job area holds needs no key (a convert has
         * none to give): only decrypt's last step decrypts data. */
        if ((j.ck.phase == JOB_PHASE_FINALIZE && j.sb.op != ENGINE_OP_DECRYPT) || j.sb.op == ENGINE_OP_CONVERT)
                return engine_finalize(&j);
        if (!p->unlock)
                return engine_fail(p->err, -EINVAL, "a key is needed to resume the job on %s", hold_path);
        if (j.sb.op != ENGINE_OP_ENCRYPT && (r = unlock_copy(&j, false, &j.old_vk)) < 0)
                return r;
        if (j.sb.op != ENGINE_OP_DECRYPT && (r = unlock_copy(&j, true, &j.new_vk)) < 0)
                return r;
        if (j.sb.layout == JOB_LAYOUT_SHIFT &&
            (r = read_job_region(&j, j.sb.head_off, j.sb.head_len, &j.head)) < 0)
                return r;
        if (j.sb.op != ENGINE_OP_DECRYPT &&
            (r = read_job_region(&j, j.sb.new_hdr_off, j.sb.new_hdr_len, &j.new_hdr)) < 0)
                return r;
        uint64_t dsize;
        if ((r = engine_size(j.data_fd, &dsize)) < 0)
                return r;
        if (dsize < MAX(j.sb.src_offset, j.sb.dst_offset) + j.sb.data_size && !(j.sb.layout == JOB_LAYOUT_SHIFT))
                return engine_fail(p->err, -EBADMSG, "%s is smaller than the job expects", p->path);
        if (j.ck.phase == JOB_PHASE_FINALIZE)
                return engine_finalize(&j);
        return job_run(&j);
}
