/* Unit tests for the job area records: superblock and checkpoint encoding, torn
 * and stale records, and corrupted superblocks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "disk/engine.h"
#include "disk/job.h"

static struct job_super sample(void) {
        struct job_super sb = {
                .op = ENGINE_OP_REENCRYPT, .layout = JOB_LAYOUT_INPLACE, .format = DISK_FORMAT_LUKS2,
                .sector_size = 4096, .data_size = 1 << 30, .src_offset = 16 << 20, .dst_offset = 16 << 20,
                .hdr_region = 16 << 20, .final_size = (1 << 30) + (16 << 20), .jstart = (1 << 30) + (16 << 20),
                .old_hdr_off = 0, .old_hdr_len = 16 << 20, .new_hdr_off = 16 << 20, .new_hdr_len = 16 << 20,
                .hash_off = { 32 << 20, 33 << 20 }, .hash_len = 1 << 20,
                .ckpt_off = { 34 << 20, (34 << 20) + 4096 }, .hotzone = 64 << 20,
                .orig_size = (1 << 30) + (16 << 20),
        };
        sb.jsize = (34 << 20) + 3 * JOB_BLOCK;
        return sb;
}

static void test_super_roundtrip(void **state) {
        (void) state;
        struct job_super sb = sample(), out;
        uint8_t blk[JOB_BLOCK];
        uint8_t again[JOB_BLOCK];
        job_super_encode(&sb, blk);
        assert_int_equal(job_super_decode(blk, &out), 0);
        assert_int_equal(out.jsize, sb.jsize);
        assert_int_equal(out.hotzone, sb.hotzone);
        assert_int_equal(out.orig_size, sb.orig_size);
        job_super_encode(&out, again);               /* every field survived */
        assert_memory_equal(blk, again, JOB_BLOCK);
}

static void test_super_corrupted(void **state) {
        (void) state;
        struct job_super sb = sample(), out;
        uint8_t blk[JOB_BLOCK];
        job_super_encode(&sb, blk);

        uint8_t bad[JOB_BLOCK];
        memset(bad, 0, sizeof(bad));
        assert_int_equal(job_super_decode(bad, &out), -ENODATA);   /* no job at all */

        for (size_t i = 16; i < JOB_BLOCK; i += 97) {               /* any flipped bit */
                memcpy(bad, blk, sizeof(bad));
                bad[i] ^= 0x10;
                assert_int_equal(job_super_decode(bad, &out), -EBADMSG);
        }
        memcpy(bad, blk, sizeof(bad));                              /* torn: tail missing */
        memset(bad + 2048, 0, 2048);
        assert_int_equal(job_super_decode(bad, &out), -EBADMSG);

        /* checksummed but inconsistent: a region outside the area, a bad sector size */
        struct job_super s2 = sample();
        s2.new_hdr_off = s2.jsize;
        job_super_encode(&s2, bad);
        assert_int_equal(job_super_decode(bad, &out), -EBADMSG);
        s2 = sample();
        s2.sector_size = 1024;
        job_super_encode(&s2, bad);
        assert_int_equal(job_super_decode(bad, &out), -EBADMSG);
        s2 = sample();
        s2.hash_len = 8; /* too small for the hotzone's hashes */
        job_super_encode(&s2, bad);
        assert_int_equal(job_super_decode(bad, &out), -EBADMSG);
        s2 = sample();
        s2.op = 42;
        job_super_encode(&s2, bad);
        assert_int_equal(job_super_decode(bad, &out), -EBADMSG);
}

static void test_ckpt_pick(void **state) {
        (void) state;
        uint8_t a[JOB_CKPT_SIZE], b[JOB_CKPT_SIZE];
        struct job_ckpt c1 = { .seq = 7, .phase = JOB_PHASE_DATA, .pos = 1234 * 512 };
        struct job_ckpt c2 = { .seq = 8, .phase = JOB_PHASE_HOTZONE, .pos = 99, .hz_start = 4096, .hz_len = 8192 };
        struct job_ckpt out;
        job_ckpt_encode(&c1, a);
        job_ckpt_encode(&c2, b);
        assert_int_equal(job_ckpt_decode(b, &out), 0);
        assert_int_equal(out.seq, 8);
        assert_int_equal(out.hz_len, 8192);

        assert_int_equal(job_ckpt_pick(a, b, &out), 0);             /* newest wins */
        assert_int_equal(out.seq, 8);
        assert_int_equal(job_ckpt_pick(b, a, &out), 0);
        assert_int_equal(out.seq, 8);

        b[100] ^= 1;                                                 /* newest torn */
        assert_int_equal(job_ckpt_decode(b, &out), -EBADMSG);
        assert_int_equal(job_ckpt_pick(a, b, &out), 0);
        assert_int_equal(out.seq, 7);
        assert_int_equal(out.pos, 1234 * 512);

        memset(a + 200, 0, JOB_CKPT_SIZE - 200);                     /* both torn */
        assert_int_equal(job_ckpt_pick(a, b, &out), -EBADMSG);

        struct job_ckpt bad = { .seq = 1, .phase = 9 };              /* unknown phase */
        job_ckpt_encode(&bad, a);
        assert_int_equal(job_ckpt_decode(a, &out), -EBADMSG);
}

static void test_block_hash(void **state) {
        (void) state;
        uint8_t blk[4096] = { 0 };
        uint64_t h0 = job_block_hash(blk, sizeof(blk));
        blk[4095] = 1;
        assert_true(h0 != job_block_hash(blk, sizeof(blk)));
        assert_true(job_block_hash(blk, 512) != job_block_hash(blk, 4096));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_super_roundtrip),
                cmocka_unit_test(test_super_corrupted),
                cmocka_unit_test(test_ckpt_pick),
                cmocka_unit_test(test_block_hash),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
