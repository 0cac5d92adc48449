/* Status read from the disk itself: plain, a finished LUKS volume, or a job in
 * progress (from the job area, or a disguised header while finishing). */
#include <errno.h>
#include <fcntl.h>
#include <libcryptsetup.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "disk/engine-internal.h"
#include "disk/job-key.h"
#include "disk/luks.h"
#include "shared/fd-util.h"
#include "shared/log.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct crypt_device *, crypt_free);

static enum engine_operation op_from_letter(char c) {
        return c == 'd' ? ENGINE_OP_DECRYPT : c == 'r' ? ENGINE_OP_REENCRYPT : c == 'c' ? ENGINE_OP_CONVERT
                                                                                          : ENGINE_OP_ENCRYPT;
}

static int status_from_buffer(const uint8_t *buf, size_t len, struct engine_status *st) {
        _cleanup_(freep) uint8_t *copy = malloc(len);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, buf, len);
        luks_undisguise(copy, len);
        _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
        _cleanup_(closep) int memfd = -EBADF;
        int r = luks_load_buffer(copy, len, &cd, &memfd);
        if (r < 0)
                return r;
        return luks_fill_status(cd, st);
}

int engine_disguised_status(int fd, uint64_t size, struct engine_status *ret) {
        size_t n = (size_t) MIN(size, (uint64_t) 16 << 20);
        _cleanup_(freep) uint8_t *buf = malloc(n ? n : 1);
        if (!buf)
                return -ENOMEM;
        int r = n ? pread_full(fd, buf, n, 0) : -ENODATA;
        if (r < 0)
                return r;
        struct engine_status st = { 0 };
        if ((r = status_from_buffer(buf, n, &st)) < 0)
                return r;
        *ret = st;
        return 0;
}

static int status_job(int fd, const struct job_super *sb, const struct secret *key, struct engine_status *st,
                      struct error *err) {
        struct job_ckpt ck;
        int r = job_read_ckpt(fd, sb, key, &ck);
        if (r < 0)
                return engine_fail(err, r, "both checkpoint records of the job are damaged");
        bool use_new = sb->op != ENGINE_OP_DECRYPT;
        uint64_t off = use_new ? sb->new_hdr_off : sb->old_hdr_off;
        uint64_t len = use_new ? sb->new_hdr_len : sb->old_hdr_len;
        _cleanup_(freep) uint8_t *buf = malloc(len ? len : 1);
        if (!buf)
                return -ENOMEM;
        if ((r = pread_full(fd, buf, len, (off_t) (sb->jstart + off))) < 0)
                return r;
        if ((r = status_from_buffer(buf, len, st)) < 0)
                return engine_fail(err, -EBADMSG, "the header copy in the job area is damaged");
        st->job = sb->op;
        st->detached = sb->detached;
        st->job_data_dev = sb->data_dev;
        st->job_data_ino = sb->data_ino;
        st->data_size = sb->data_size;
        st->job_total = sb->data_size;
        st->job_done = engine_done_bytes(sb, &ck);
        st->job_position = ck.phase == JOB_PHASE_HOTZONE ? ck.hz_start : ck.pos;
        st->job_finalizing = ck.phase == JOB_PHASE_FINALIZE;
        return 0;
}

static int status_once(const char *path, const char *header_path, const struct secret *key,
                       struct engine_status *ret, struct error *err) {
        struct engine_status st = { 0 };
        _cleanup_(closep) int data_fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (data_fd < 0) {
                int r = negative_errno();
                return engine_fail(err, r, "cannot open %s: %s", path, strerror(-r));
        }
        _cleanup_(closep) int hdr_fd = -EBADF;
        if (header_path) {
                hdr_fd = open(header_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (hdr_fd < 0 && errno != ENOENT) {
                        int r = negative_errno();
                        return engine_fail(err, r, "cannot open %s: %s", header_path, strerror(-r));
                }
        }
        int hold = hdr_fd >= 0 ? hdr_fd : data_fd;
        const char *hold_path = hdr_fd >= 0 ? header_path : path;
        bool detached = hdr_fd >= 0;
        uint64_t size, dsize;
        int r = engine_size(hold, &size);
        if (r < 0 || (r = engine_size(data_fd, &dsize)) < 0)
                return r;
        struct job_super sb;
        r = job_read_super(hold, size, key, &sb);
        if (r == -EBADMSG)
                return engine_fail(err, r, "the job area at the end of %s is damaged", hold_path);
        if (r == -EKEYREJECTED) {
                st.foreign_job = true;
                r = -ENODATA;
        }
        bool unstarted = false;
        if (r == 0 && (r = engine_job_unstarted(hold, &sb, key, &unstarted)) < 0)
                return engine_fail(err, r, "both checkpoint records of the job on %s are damaged", hold_path);
        if (r == 0 && !unstarted) {
                if ((r = status_job(hold, &sb, key, &st, err)) < 0)
                        return r;
                *ret = st;
                return 0;
        }
        if (unstarted) {
                /* The job never changed the disk; the next command rolls it back.
                 * Report the disk as it was. */
                st.job_unstarted = true;
                if (sb.detached && sb.op == ENGINE_OP_ENCRYPT) {
                        hold = data_fd;
                        hold_path = path;
                        detached = false;
                        size = dsize;
                } else {
                        size = sb.orig_size;
                        if (hold == data_fd)
                                dsize = size;
                }
        }
        size_t n = (size_t) MIN(size, (uint64_t) 16 << 20);
        _cleanup_(freep) uint8_t *buf = malloc(n ? n : 1);
        if (!buf)
                return -ENOMEM;
        if (n && (r = pread_full(hold, buf, n, 0)) < 0)
                return r;
        char op = 'e';
        enum luks_magic m = luks_magic_probe(buf, n, &op);
        if (engine_is_marker(buf, n)) {
                /* Without this host's job area a marker is only bytes a guest wrote. */
                st.foreign_job = true;
                m = LUKS_MAGIC_NONE;
        }
        if (m == LUKS_MAGIC_DISGUISED) {
                struct engine_status ds = st;
                if ((r = status_from_buffer(buf, n, &ds)) < 0 ||
                    (!detached && engine_stamp_check(hold, ds.data_offset, key) <= 0)) {
                        st.foreign_job = true;
                        m = LUKS_MAGIC_NONE;
                } else
                        st = ds;
        }
        if (m == LUKS_MAGIC_DISGUISED) {
                st.job = op_from_letter(op);
                st.job_finalizing = true;
                st.detached = detached;
                st.data_size = dsize - (st.detached ? st.data_offset : MIN(dsize, st.data_offset));
                st.job_total = st.job_done = st.data_size;
                *ret = st;
                return 0;
        }
        if (m == LUKS_MAGIC_NONE) {
                st.format = DISK_FORMAT_NONE;
                st.data_size = dsize;
                st.detached = false;
                *ret = st;
                return 0;
        }
        _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
        r = luks_load_path(hold_path, &cd);
        if (r < 0)
                return engine_fail(err, -EUCLEAN, "the LUKS header of %s is corrupted (both copies)", hold_path);
        if ((r = luks_fill_status(cd, &st)) < 0)
                return r;
        st.encrypted = true;
        st.detached = detached;
        st.data_size = dsize > st.data_offset ? dsize - st.data_offset : 0;
        *ret = st;
        return 0;
}

int engine_status(const char *path, const char *header_path, const struct secret *job_key, struct engine_status *ret,
                  struct error *err) {
        _cleanup_(secret_freep) struct secret *owned = NULL;
        const struct secret *key = NULL;
        int r = job_key_get(job_key, false, &owned, &key, err);
        if (r < 0)
                return r;
        /* Status takes no lock (it must work while a job runs), so it can read the
         * end of the file before a job appends its area, and the start after the
         * job's marker began to overwrite the header: both header copies then look
         * damaged. A job that just started is found on a second look. */
        for (int tries = 0;; tries++) {
                /* Only the last look's explanation counts. */
                struct error look = { 0 };
                r = status_once(path, header_path, key, ret, &look);
                if (r != -EUCLEAN || tries == 2) {
                        if (r < 0 && error_text(&look))
                                (void) error_set(err, r, "%s", look.text);
                        return r;
                }
                struct timespec pause = { 0, 20 * 1000 * 1000 };
                (void) nanosleep(&pause, NULL);
        }
}

int engine_job_header(const char *path, const char *header_path, const struct secret *job_key,
                      struct crypt_device **ret_cd, int *ret_memfd, struct error *err) {
        _cleanup_(secret_freep) struct secret *owned = NULL;
        const struct secret *key = NULL;
        int kr = job_key_get(job_key, false, &owned, &key, err);
        if (kr < 0)
                return kr;
        const struct engine_params p = { .path = path, .header_path = header_path, .err = err };
        struct job j = { .p = &p, .data_fd = -EBADF, .hold_fd = -EBADF };
        _cleanup_(closep) int fd = open(header_path ? header_path : path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        uint64_t size;
        int r = engine_size(fd, &size);
        if (r < 0)
                return r;
        if ((r = job_read_super(fd, size, key, &j.sb)) < 0)
                return r == -EKEYREJECTED ? -ENODATA : r;
        j.hold_fd = fd;
        return engine_job_load_header(&j, j.sb.op != ENGINE_OP_DECRYPT, ret_cd, ret_memfd);
}
