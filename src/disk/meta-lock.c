/* Key-metadata lock: see meta-lock.h. */
#include "disk/meta-lock.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "shared/fd-util.h"
#include "shared/macro.h"

/* An OFD write lock on one byte far beyond any image's end (locks may cover bytes
 * that do not exist). QEMU locks bytes 100-299 only; a data job's whole-file lock
 * covers this byte too, so the two exclude each other. */
#define META_LOCK_OFFSET (INT64_C(1) << 62)

int disk_meta_lock(const char *path, int *ret_fd) {
        _cleanup_(closep) int fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = META_LOCK_OFFSET, .l_len = 1 };
        if (fcntl(fd, F_OFD_SETLK, &fl) < 0) {
                int r = negative_errno();
                return r == -EAGAIN || r == -EACCES ? -EBUSY : r;
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}
