/* Test hooks for the fault-injection tests (environment variables, never secrets):
 *   VMCRYPT_TEST_CRASH_POINT=NAME[:N]  raise(SIGKILL) at the N-th pass through NAME
 *   VMCRYPT_TEST_FAIL_WRITE_AFTER=BYTES[:ENOSPC|EIO|SHORT]  data writes fail once
 *       BYTES bytes of data were written (SHORT: write the part up to BYTES, rounded
 *       down to whole 512-byte sectors, then fail with EIO).
 * Unset, they cost one getenv at first use. See docs/engine.md for the point names.
 * They exist only in builds configured with -Dtestpoints=true (the test builds);
 * elsewhere the calls below compile to nothing and plain writes. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shared/fd-util.h"

#ifdef VMCRYPT_TESTPOINTS
/* Die with SIGKILL if this is the selected crash point and pass. */
void testpoint(const char *name);

/* pwrite_full for data, with the write-failure hook applied. */
int testpoint_pwrite_data(int fd, const void *buf, size_t n, off_t offset);
#else
static inline void testpoint(const char *name) {
        (void) name;
}

static inline int testpoint_pwrite_data(int fd, const void *buf, size_t n, off_t offset) {
        return pwrite_full(fd, buf, n, offset);
}
#endif
