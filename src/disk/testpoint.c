/* Crash and write-failure injection: see testpoint.h. */
#include "disk/testpoint.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shared/fd-util.h"
#include "shared/log.h"
#include "shared/macro.h"

void testpoint(const char *name) {
        static unsigned passes;
        const char *e = getenv("VMCRYPT_TEST_CRASH_POINT");
        if (!e || !*e)
                return;
        size_t n = strcspn(e, ":");
        if (strlen(name) != n || strncmp(e, name, n) != 0)
                return;
        unsigned want = e[n] == ':' ? (unsigned) strtoul(e + n + 1, NULL, 10) : 1;
        if (++passes >= (want ? want : 1)) {
                log_debug("test crash point %s reached", name);
                raise(SIGKILL);
        }
}

static uint64_t written;

int testpoint_pwrite_data(int fd, const void *buf, size_t n, off_t offset) {
        const char *e = getenv("VMCRYPT_TEST_FAIL_WRITE_AFTER");
        if (e && *e) {
                char *end = NULL;
                uint64_t limit = strtoull(e, &end, 10);
                const char *mode = end && *end == ':' ? end + 1 : "EIO";
                if (written + n > limit) {
                        if (strcmp(mode, "SHORT") == 0 && limit > written) {
                                /* Whole 512-byte sectors: a disk tears writes at sector
                                 * boundaries, never inside a sector. */
                                size_t part = (size_t) ALIGN_DOWN(limit - written, 512);
                                int r = pwrite_full(fd, buf, part, offset);
                                if (r < 0)
                                        return r;
                                written += part;
                        }
                        return strcmp(mode, "ENOSPC") == 0 ? -ENOSPC : -EIO;
                }
        }
        int r = pwrite_full(fd, buf, n, offset);
        if (r == 0)
                written += n;
        return r;
}
