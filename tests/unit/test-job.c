/* Unit tests for the job area records: superblock and checkpoint encoding, torn
 * and stale records, and corrupted superblocks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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

static struct secret *key_of(uint8_t fill) {
        struct secret *k = secret_new(32);
        assert_non_null(k);
        memset(k->data, fill, 32);
        return k;
}

static void test_super_roundtrip(void **state) {
        (void) state;
        _cleanup_(secret_freep) struct secret *key = key_of(7);
        struct job_super sb = sample(), out;
        memset(sb.id, 0xab, sizeof(sb.id));
        uint8_t rec[JOB_RECORD_SIZE];
        uint8_t again[JOB_RECORD_SIZE];
        job_super_encode(&sb, key, rec);
        assert_int_equal(job_super_decode(rec, key, &out), 0);
        assert_int_equal(out.jsize, sb.jsize);
        assert_int_equal(out.hotzone, sb.hotzone);
        assert_int_equal(out.orig_size, sb.orig_size);
        assert_memory_equal(out.id, sb.id, JOB_ID_SIZE);
        job_super_encode(&out, key, again);               /* every field survived */
        assert_memory_equal(rec, again, JOB_RECORD_SIZE);
}

/* A guest writes what it likes at the end of its disk: the exact bytes vmcrypt would
 * write, sealed under any key but this host's, never decode. */
static void test_super_unsealed(void **state) {
        (void) state;
        _cleanup_(secret_freep) struct secret *key = key_of(7);
        _cleanup_(secret_freep) struct secret *other = key_of(8);
        struct job_super sb = sample(), out;
        sb.preparing = 1;
        uint8_t rec[JOB_RECORD_SIZE];
        job_super_encode(&sb, other, rec);
        assert_int_equal(job_super_decode(rec, key, &out), -EKEYREJECTED);
        assert_int_equal(job_super_decode(rec, NULL, &out), -EKEYREJECTED);
        job_super_encode(&sb, key, rec);
        assert_int_equal(job_super_decode(rec, NULL, &out), -EKEYREJECTED);
        assert_int_equal(job_super_decode(rec, key, &out), 0);
}

static void test_super_corrupted(void **state) {
        (void) state;
        _cleanup_(secret_freep) struct secret *key = key_of(7);
        struct job_super sb = sample(), out;
        uint8_t rec[JOB_RECORD_SIZE];
        job_super_encode(&sb, key, rec);

        uint8_t bad[JOB_RECORD_SIZE];
        memset(bad, 0, sizeof(bad));
        assert_int_equal(job_super_decode(bad, key, &out), -ENODATA);   /* no job at all */

        for (size_t i = 16; i < JOB_RECORD_SIZE; i += 37) {              /* any flipped bit */
                memcpy(bad, rec, sizeof(bad));
                bad[i] ^= 0x10;
                assert_int_equal(job_super_decode(bad, key, &out), -EKEYREJECTED);
        }

        /* sealed but inconsistent: a region outside the area, a bad sector size */
        struct job_super s2 = sample();
        s2.new_hdr_off = s2.jsize;
        job_super_encode(&s2, key, bad);
        assert_int_equal(job_super_decode(bad, key, &out), -EBADMSG);
        s2 = sample();
        s2.sector_size = 1024;
        job_super_encode(&s2, key, bad);
        assert_int_equal(job_super_decode(bad, key, &out), -EBADMSG);
        s2 = sample();
        s2.hash_len = 8; /* too small for the hotzone's hashes */
        job_super_encode(&s2, key, bad);
        assert_int_equal(job_super_decode(bad, key, &out), -EBADMSG);
        s2 = sample();
        s2.op = 42;
        job_super_encode(&s2, key, bad);
        assert_int_equal(job_super_decode(bad, key, &out), -EBADMSG);
        s2 = sample();
        s2.jstart = UINT64_MAX - 4095; /* wraps */
        job_super_encode(&s2, key, bad);
        assert_int_equal(job_super_decode(bad, key, &out), -EBADMSG);
}

/* Every offset a job acts on stays inside the file; rollback and finish never grow it. */
static void test_super_fits(void **state) {
        (void) state;
        struct job_super sb = sample();
        uint64_t size = sb.jstart + sb.jsize;
        assert_true(job_super_fits(&sb, size));
        assert_false(job_super_fits(&sb, size + 4096));          /* not at the end */
        assert_false(job_super_fits(&sb, sb.jsize - 1));
        struct job_super s2 = sb;
        s2.orig_size = sb.jstart + 1;                            /* rollback would grow */
        assert_false(job_super_fits(&s2, size));
        s2 = sb;
        s2.final_size = (uint64_t) 1 << 40;                      /* finish would grow */
        assert_false(job_super_fits(&s2, size));
        s2 = sb;
        s2.dst_offset = sb.jstart;                               /* data beyond the area */
        assert_false(job_super_fits(&s2, size));
        s2 = sb;
        s2.data_size = UINT64_MAX - 511;                          /* wraps */
        assert_false(job_super_fits(&s2, size));
        s2 = sb;
        s2.hdr_region = sb.jstart + 4096;
        assert_false(job_super_fits(&s2, size));
}

/* A power cut while the superblock is rewritten from "preparing" to final tears the
 * 4 KiB block at 512-byte units: every mix of old and new units still holds one
 * whole record, the old or the new (it is one unit), never a dead end. */
static void test_super_torn_rewrite(void **state) {
        (void) state;
        _cleanup_(secret_freep) struct secret *key = key_of(7);
        struct job_super sb = sample(), out;
        uint8_t old_blk[JOB_BLOCK] = { 0 }, new_blk[JOB_BLOCK] = { 0 }, mix[JOB_BLOCK];
        sb.preparing = 1;
        job_super_encode(&sb, key, old_blk + JOB_BLOCK - JOB_RECORD_SIZE);
        sb.preparing = 0;
        job_super_encode(&sb, key, new_blk + JOB_BLOCK - JOB_RECORD_SIZE);
        for (unsigned m = 0; m < 256; m++) {
                for (unsigned u = 0; u < 8; u++)
                        memcpy(mix + u * 512, (m >> u) & 1 ? new_blk + u * 512 : old_blk + u * 512, 512);
                assert_int_equal(job_super_decode(mix + JOB_BLOCK - JOB_RECORD_SIZE, key, &out), 0);
                assert_int_equal(out.preparing, (m >> 7) & 1 ? 0 : 1);
        }
}

static void test_read_super_v1(void **state) {
        (void) state;
        _cleanup_(secret_freep) struct secret *key = key_of(7);
        FILE *f = tmpfile();
        assert_non_null(f);
        uint8_t blk[JOB_BLOCK] = { 0 };
        memcpy(blk, "VMCRYPT-JOBAREA", 16);                      /* an older vmcrypt's area */
        assert_int_equal(fwrite(blk, 1, sizeof(blk), f), sizeof(blk));
        fflush(f);
        struct job_super out;
        assert_int_equal(job_read_super(fileno(f), JOB_BLOCK, key, &out), -EKEYREJECTED);
        fclose(f);
}

static void test_ckpt_pick(void **state) {
        (void) state;
        _cleanup_(secret_freep) struct secret *key = key_of(7);
        struct job_super sb = sample(), sb2 = sample();
        memset(sb.id, 1, sizeof(sb.id));
        memset(sb2.id, 2, sizeof(sb2.id));
        uint8_t a[JOB_RECORD_SIZE], b[JOB_RECORD_SIZE];
        struct job_ckpt c1 = { .seq = 7, .phase = JOB_PHASE_DATA, .pos = 1234 * 512 };
        struct job_ckpt c2 = { .seq = 8, .phase = JOB_PHASE_HOTZONE, .pos = 99, .hz_start = 4096, .hz_len = 8192 };
        struct job_ckpt out;
        job_ckpt_encode(&c1, &sb, key, a);
        job_ckpt_encode(&c2, &sb, key, b);
        assert_int_equal(job_ckpt_decode(b, &sb, key, &out), 0);
        assert_int_equal(out.seq, 8);
        assert_int_equal(out.hz_len, 8192);
        assert_int_equal(job_ckpt_decode(b, &sb2, key, &out), -EBADMSG); /* another job's */
        assert_int_equal(job_ckpt_decode(b, &sb, NULL, &out), -EBADMSG);

        assert_int_equal(job_ckpt_pick(a, b, &sb, key, &out), 0);          /* newest wins */
        assert_int_equal(out.seq, 8);
        assert_int_equal(job_ckpt_pick(b, a, &sb, key, &out), 0);
        assert_int_equal(out.seq, 8);

        b[100] ^= 1;                                                 /* newest torn */
        assert_int_equal(job_ckpt_decode(b, &sb, key, &out), -EBADMSG);
        assert_int_equal(job_ckpt_pick(a, b, &sb, key, &out), 0);
        assert_int_equal(out.seq, 7);
        assert_int_equal(out.pos, 1234 * 512);

        memset(a + 200, 0, JOB_RECORD_SIZE - 200);                   /* both torn */
        assert_int_equal(job_ckpt_pick(a, b, &sb, key, &out), -EBADMSG);

        struct job_ckpt bad = { .seq = 1, .phase = 9 };              /* unknown phase */
        job_ckpt_encode(&bad, &sb, key, a);
        assert_int_equal(job_ckpt_decode(a, &sb, key, &out), -EBADMSG);
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
                cmocka_unit_test(test_super_unsealed),
                cmocka_unit_test(test_super_corrupted),
                cmocka_unit_test(test_super_fits),
                cmocka_unit_test(test_read_super_v1),
                cmocka_unit_test(test_super_torn_rewrite),
                cmocka_unit_test(test_ckpt_pick),
                cmocka_unit_test(test_block_hash),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
