/* File-descriptor helpers: full reads and writes that survive EINTR and short
 * transfers, and small file utilities. All return 0 (or a byte count) or -errno. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Read exactly n bytes at offset; -EIO on premature end of file. */
int pread_full(int fd, void *buf, size_t n, off_t offset);
/* Write exactly n bytes at offset. */
int pwrite_full(int fd, const void *buf, size_t n, off_t offset);
/* Read up to n bytes from a stream until EOF; returns the count. */
ssize_t read_full(int fd, void *buf, size_t n);
/* Write all n bytes to a stream. */
int write_full(int fd, const void *buf, size_t n);

/* Size of a regular file or block device. */
int fd_get_size(int fd, uint64_t *ret);
/* True (1) when fd is a block device, 0 when a regular file, -errno else. */
int fd_is_block_device(int fd);

/* Take an OFD write lock on len bytes at start (len 0: to the end and beyond)
 * without waiting; -EBUSY when another open file description holds a lock there. */
int fd_ofd_write_lock(int fd, off_t start, off_t len);

/* fsync the directory that contains path, so a create/rename/truncate is durable. */
int fsync_parent_dir(const char *path);

/* Read a whole regular file of at most max bytes into a NUL-terminated buffer:
 * -EFBIG when it is larger (every file vmcrypt parses has a cap), -EINVAL when it
 * is not a regular file. */
int read_file_bounded(const char *path, size_t max, char **ret, size_t *ret_size);

/* Write data to path atomically (temp file, fsync, rename, fsync dir) with mode. */
int write_file_atomic(const char *path, const void *data, size_t n, mode_t mode);
