/* libFuzzer harness for the job records of the state directory
 * ($VMCRYPT_STATE_DIR/jobs and headers: JSON naming a detached header). A local user
 * who could write there, or a damaged file, hands the parser any bytes: it must
 * accept only an absolute, NUL-free path that fits the buffer, and never read or
 * write outside it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "volume/job-record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size > JOB_RECORD_MAX)
                return 0;
        char buf[64];
        memset(buf, 0x5a, sizeof(buf));
        if (job_record_parse((const char *) data, size, buf, sizeof(buf)) == 0) {
                size_t n = strnlen(buf, sizeof(buf));
                if (n == sizeof(buf) || n < 2 || buf[0] != '/')
                        abort();
        }
        return 0;
}
