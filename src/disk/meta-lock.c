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
        int r = fd_ofd_write_lock(fd, META_LOCK_OFFSET, 1);
        if (r < 0)
                return r;
        *ret_fd = TAKE_FD(fd);
        return 0;
}
