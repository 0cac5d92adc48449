/* Direct writes for the data pass. Data written with O_DIRECT goes from our buffer to
 * the device without passing through the page cache: no copy, no dirty pages for a
 * later fdatasync to write back, so a commit's fdatasync only has to flush the
 * device's cache. Durability is unchanged: a completed direct write may still sit
 * in the device's volatile cache, and only the commit's fdatasync (which flushes
 * it) makes it durable. Every write falls back to a buffered one when direct I/O
 * is refused (tmpfs, an unaligned tail, a device with bigger logical sectors).
 * Reads stay buffered: the kernel's read-ahead (and posix_fadvise WILLNEED) read
 * faster here than direct reads of the same size, and a read never needs a sync. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#include "disk/engine-internal.h"
#include "disk/testpoint.h"
#include "shared/fd-util.h"

#define DIO_ALIGN 512

int engine_dio_open(int fd) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        /* A second open file description of the same file: no OFD lock of its own,
         * which is fine, the job's lock is held on fd. */
        int dfd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC | O_NOCTTY);
        return dfd >= 0 ? dfd : -1;
}

static bool dio_ok(int dfd, const void *buf, size_t len, uint64_t off) {
        return dfd >= 0 && (uintptr_t) buf % DIO_ALIGN == 0 && len % DIO_ALIGN == 0 && off % DIO_ALIGN == 0;
}

int engine_data_write(int dfd, int fd, const void *buf, size_t len, uint64_t off) {
        if (dio_ok(dfd, buf, len, off)) {
                /* Alignment is checked before anything is written: EINVAL means
                 * nothing was, and the buffered write below does it all. */
                int r = testpoint_pwrite_data(dfd, buf, len, (off_t) off);
                if (r != -EINVAL)
                        return r;
        }
        int r = testpoint_pwrite_data(fd, buf, len, (off_t) off);
        /* Start writeback at once so the next commit's fdatasync finds little left
         * to do. Only a hint: durability still comes from fdatasync. */
        if (r == 0)
                (void) sync_file_range(fd, (off_t) off, (off_t) len, SYNC_FILE_RANGE_WRITE);
        return r;
}

static void *writer_run(void *arg) {
        struct engine_writer *w = arg;
        w->r = engine_data_write(w->dfd, w->fd, w->buf, w->len, w->off);
        return NULL;
}

int engine_writer_wait(struct engine_writer *w) {
        if (w->running) {
                pthread_join(w->th, NULL);
                w->running = false;
        }
        int r = w->r;
        w->r = 0;
        return r;
}

int engine_writer_start(struct engine_writer *w, int dfd, int fd, const void *buf, size_t len, uint64_t off) {
        int r = engine_writer_wait(w);
        if (r < 0)
                return r;
        *w = (struct engine_writer) { .dfd = dfd, .fd = fd, .buf = buf, .len = len, .off = off };
        w->running = pthread_create(&w->th, NULL, writer_run, w) == 0;
        if (!w->running)
                writer_run(w); /* no thread: write now, report at the next wait */
        return 0;
}
