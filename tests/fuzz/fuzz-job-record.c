/* libFuzzer harness for the job area's on-disk records (superblock and checkpoint):
 * these are read back from an image after a crash, so any bytes must either be
 * rejected or decode to a record that re-encodes to an equal, valid record. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "disk/job.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        uint8_t block[JOB_BLOCK] = { 0 };
        memcpy(block, data, size < sizeof(block) ? size : sizeof(block));

        struct job_super sb;
        if (job_super_decode(block, &sb) == 0) {
                uint8_t again[JOB_BLOCK];
                struct job_super sb2;
                job_super_encode(&sb, again);
                if (job_super_decode(again, &sb2) != 0 || memcmp(&sb, &sb2, sizeof(sb)) != 0)
                        abort();
        }

        /* Two checkpoint slots taken from the input: picking must never trust a
         * record that does not decode on its own. */
        struct job_ckpt c, picked;
        const uint8_t *a = block, *b = block + JOB_CKPT_SIZE;
        int ra = job_ckpt_decode(a, &c);
        int rb = job_ckpt_decode(b, &c);
        int rp = job_ckpt_pick(a, b, &picked);
        if ((ra < 0 && rb < 0) != (rp < 0))
                abort();
        if (rp == 0) {
                uint8_t again[JOB_CKPT_SIZE];
                struct job_ckpt c2;
                job_ckpt_encode(&picked, again);
                if (job_ckpt_decode(again, &c2) != 0 || c2.seq != picked.seq || c2.pos != picked.pos)
                        abort();
        }
        return 0;
}
