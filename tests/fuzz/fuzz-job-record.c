/* libFuzzer harness for the job area's on-disk records (superblock and checkpoint).
 * Records are sealed with the host's job key, so hostile bytes from a guest stop at
 * the MAC; the harness also seals the input itself (as if the key had leaked, or a
 * bug wrote nonsense) to reach the checks behind it: any sealed record must either be
 * rejected or decode to one that re-encodes equal and keeps every offset inside a
 * file of the size the input names. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "disk/job.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t key_bytes[32] = { 1, 2, 3, 4, 5, 6, 7, 8 };

static uint64_t le64(const uint8_t *p) {
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
                v |= (uint64_t) p[i] << (8 * i);
        return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct secret key = { .size = sizeof(key_bytes), .data = key_bytes };
        uint8_t rec[JOB_RECORD_SIZE] = { 0 };
        memcpy(rec, data, size < sizeof(rec) ? size : sizeof(rec));

        struct job_super sb;
        if (job_super_decode(rec, &key, &sb) == 0) /* unsealed input: never */
                abort();
        job_seal(&key, rec);
        if (job_super_decode(rec, &key, &sb) == 0) {
                uint8_t again[JOB_RECORD_SIZE];
                struct job_super sb2;
                job_super_encode(&sb, &key, again);
                if (job_super_decode(again, &key, &sb2) != 0 || memcmp(&sb, &sb2, sizeof(sb)) != 0)
                        abort();
                uint64_t fsize = size >= JOB_RECORD_SIZE + 8 ? le64(data + JOB_RECORD_SIZE) : sb.jstart + sb.jsize;
                if (job_super_fits(&sb, fsize)) {
                        if (sb.orig_size > fsize || sb.final_size > fsize || sb.jstart + sb.jsize != fsize)
                                abort();
                        if (!sb.detached && (sb.src_offset + sb.data_size > sb.jstart ||
                                             sb.dst_offset + sb.data_size > sb.jstart ||
                                             sb.src_offset + sb.data_size < sb.src_offset))
                                abort();
                }
        }

        /* Two checkpoint slots taken from the input, sealed: picking must never trust
         * a record that does not decode on its own. */
        struct job_super owner = { 0 };
        struct job_ckpt c, picked;
        uint8_t a[JOB_RECORD_SIZE] = { 0 }, b[JOB_RECORD_SIZE] = { 0 };
        memcpy(a, rec, sizeof(a));
        if (size > JOB_RECORD_SIZE)
                memcpy(b, data + JOB_RECORD_SIZE, size - JOB_RECORD_SIZE < sizeof(b) ? size - JOB_RECORD_SIZE : sizeof(b));
        job_seal(&key, b);
        int ra = job_ckpt_decode(a, &owner, &key, &c);
        int rb = job_ckpt_decode(b, &owner, &key, &c);
        int rp = job_ckpt_pick(a, b, &owner, &key, &picked);
        if ((ra < 0 && rb < 0) != (rp < 0))
                abort();
        if (rp == 0) {
                uint8_t again[JOB_RECORD_SIZE];
                struct job_ckpt c2;
                job_ckpt_encode(&picked, &owner, &key, again);
                if (job_ckpt_decode(again, &owner, &key, &c2) != 0 || c2.seq != picked.seq || c2.pos != picked.pos)
                        abort();
        }
        return 0;
}
