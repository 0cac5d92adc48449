/* Format and create: a new empty encrypted disk without a data pass (the contents
 * are destroyed, so a target that holds anything needs force). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk/engine-internal.h"
#include "disk/job-key.h"
#include "disk/luks.h"
#include "shared/fd-util.h"
#include "shared/log.h"

/* Anything but zeros in the first MiB (partition table, file system, LUKS, ...). */
static int has_content(int fd, bool *ret) {
        uint64_t size;
        int r = engine_size(fd, &size);
        if (r < 0)
                return r;
        size_t n = (size_t) MIN(size, ENGINE_HEAD_SIZE);
        _cleanup_(freep) uint8_t *buf = malloc(n ? n : 1);
        if (!buf)
                return -ENOMEM;
        if (n && (r = pread_full(fd, buf, n, 0)) < 0)
                return r;
        *ret = false;
        for (size_t i = 0; i < n; i++)
                if (buf[i]) {
                        *ret = true;
                        break;
                }
        return 0;
}

static int format_fds(const struct engine_params *p, int data_fd, int hold_fd, bool force) {
        enum disk_format format = p->format ? p->format : DISK_FORMAT_LUKS2;
        unsigned ss = p->sector_size ? p->sector_size : 512;
        bool detached = hold_fd != data_fd;
        const char *why;
        if (disk_sector_size_check(format, ss, &why) < 0)
                return engine_fail(p->err, -EINVAL, "%s", why);
        uint64_t size, hold_size;
        int r = engine_size(data_fd, &size);
        if (r < 0 || (r = engine_size(hold_fd, &hold_size)) < 0)
                return r;
        if (!force) {
                bool busy = false;
                if ((r = has_content(data_fd, &busy)) < 0)
                        return r;
                if (busy)
                        return engine_fail(p->err, -EEXIST, "%s is not empty (it holds data or a signature): add --yes to destroy its contents", p->path);
                if (detached && hold_size > 0)
                        return engine_fail(p->err, -EEXIST, "header file %s is not empty: add --yes to overwrite it", p->header_path);
        }
        _cleanup_(secret_freep) struct secret *vk = NULL;
        if ((r = engine_new_volume_key(&vk)) < 0)
                return r;
        uint64_t s = detached ? 0 : format == DISK_FORMAT_LUKS1 ? 2 << 20 : 16 << 20;
        if (size <= s || (size - s) % ss)
                return engine_fail(p->err, -EINVAL, "%s (%llu bytes) is too small or not a whole number of %u-byte sectors after the %llu-byte header",
                                   p->path, (unsigned long long) size, ss, (unsigned long long) s);
        struct luks_new ln = { .format = format, .sector_size = ss, .detached = detached, .data_size = size - s,
                               .vk = vk, .unlock = p->unlock, .keyslot = -1, .kdf = p->kdf,
                               .pbkdf_memory_kib = p->pbkdf_memory_kib, .iter_time_ms = p->iter_time_ms,
                               .hook = p->header_hook, .hook_userdata = p->hook_userdata };
        _cleanup_(freep) uint8_t *hdr = NULL;
        size_t h;
        if ((r = luks_build(&ln, &hdr, &h)) < 0)
                return engine_fail(p->err, r, "cannot create the LUKS header: %s", strerror(-r));
        if (detached && ftruncate(hold_fd, 0) < 0)
                return negative_errno();
        if ((r = pwrite_full(hold_fd, hdr, h, 0)) < 0)
                return r;
        if (fsync(hold_fd) < 0)
                return negative_errno();
        return 0;
}

int engine_format(const struct engine_params *p, bool force) {
        _cleanup_(closep) int data_fd = -EBADF, hold_fd = -EBADF;
        int r = engine_open_locked(p->path, 0, &data_fd, p->err);
        if (r < 0)
                return r;
        if (p->header_path) {
                struct stat st;
                bool exists = stat(p->header_path, &st) == 0;
                if ((r = engine_open_locked(p->header_path, ENGINE_OPEN_HEADER | (exists ? 0 : ENGINE_OPEN_CREATE), &hold_fd, p->err)) < 0)
                        return r;
                r = format_fds(p, data_fd, hold_fd, force);
                if (r < 0 && !exists)
                        (void) unlink(p->header_path);
                return r;
        }
        if (!force && fd_is_block_device(data_fd) == 0) {
                /* A job in progress is never "just data". */
                uint64_t size;
                struct job_super sb;
                _cleanup_(secret_freep) struct secret *owned = NULL;
                const struct secret *key = NULL;
                if (job_key_get(p->job_key, false, &owned, &key, NULL) == 0 && engine_size(data_fd, &size) == 0 &&
                    job_read_super(data_fd, size, key, &sb) == 0)
                        return engine_fail(p->err, -EINPROGRESS, "a vmcrypt job is in progress on %s: run vmcrypt disk resume", p->path);
        }
        return format_fds(p, data_fd, data_fd, force);
}

int engine_create(const struct engine_params *p, uint64_t size) {
        enum disk_format format = p->format ? p->format : DISK_FORMAT_LUKS2;
        unsigned ss = p->sector_size ? p->sector_size : 512;
        if (size == 0 || size % ss)
                return engine_fail(p->err, -EINVAL, "size %llu is not a non-zero multiple of the %u-byte sector size",
                                   (unsigned long long) size, ss);
        uint64_t s = format == DISK_FORMAT_LUKS1 ? 2 << 20 : 16 << 20;
        _cleanup_(closep) int fd = -EBADF;
        int r = engine_open_locked(p->path, ENGINE_OPEN_CREATE, &fd, p->err);
        if (r < 0)
                return r;
        /* Sparse: only the header takes space. */
        r = engine_check_space(fd, s, p->err);
        if (r >= 0 && ftruncate(fd, (off_t) (s + size)) < 0)
                r = negative_errno();
        if (r >= 0)
                r = format_fds(p, fd, fd, true);
        if (r >= 0)
                r = fsync_parent_dir(p->path);
        if (r < 0)
                (void) unlink(p->path);
        return r;
}
