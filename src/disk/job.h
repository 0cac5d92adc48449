/* The job area: what an in-place job keeps at the end of the image file (or of the
 * detached header file) while it runs, so that a crash at any instant can be
 * resumed. It holds copies of the old/new LUKS header regions (magics disguised),
 * the saved first bytes of the disk, two areas of block hashes (in-place hotzones),
 * two alternating checkpoint records and, in the last 512 bytes, a superblock that
 * describes the job and points at all of these.
 *
 * Until a disk is encrypted its guest controls every byte of it, the last ones
 * included, so a job area found there proves nothing by its shape: a guest could
 * forge one that makes the next command truncate, grow or overwrite the disk. Every
 * record therefore carries an HMAC-SHA256 under the host's job key (job-key.h), which
 * only this host holds; a record whose MAC does not verify is not a job of this host
 * and is never acted on. Records are 512 bytes, the unit a disk writes atomically,
 * so a torn rewrite leaves the old record or the new one, never a broken one. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/secret.h"

#define JOB_BLOCK 4096
/* Superblock and checkpoint records: one 512-byte unit each. */
#define JOB_RECORD_SIZE 512
#define JOB_ID_SIZE 16
/* In-place hotzones hash every 512-byte unit: the unit a disk writes atomically, so
 * a write torn inside a larger block still classifies unit by unit. */
#define JOB_HASH_UNIT 512

enum job_layout {
        JOB_LAYOUT_SHIFT = 1, /* data moves between src_offset and dst_offset */
        JOB_LAYOUT_INPLACE,   /* same place; hotzones protected by block hashes */
};

enum job_phase {
        JOB_PHASE_DATA = 1,   /* data pass; pos = boundary of the finished part */
        JOB_PHASE_HOTZONE,    /* in-place: hashes of [hz_start, hz_start+hz_len) saved */
        JOB_PHASE_FINALIZE,   /* data complete: write header, drop job area, magic */
};

struct job_super {
        uint32_t op;            /* enum engine_operation */
        uint32_t layout;        /* enum job_layout */
        uint32_t format;        /* enum disk_format of the result (or of the source for decrypt) */
        uint32_t sector_size;
        uint32_t detached;      /* header lives in a separate file */
        uint64_t data_size;     /* N: bytes of guest data */
        uint64_t src_offset;    /* data source offset in the data file */
        uint64_t dst_offset;    /* data destination offset in the data file */
        uint64_t hdr_region;    /* header region bytes at the start of the holder */
        uint64_t final_size;    /* holder size when done (0: remove the header file) */
        uint64_t jstart;        /* offset of this area in the holder file */
        uint64_t jsize;         /* its size; the superblock is its last block */
        uint64_t old_hdr_off, old_hdr_len; /* relative to jstart */
        uint64_t new_hdr_off, new_hdr_len;
        uint64_t head_off, head_len;       /* saved first bytes (shift layouts) */
        uint64_t hash_off[2], hash_len;    /* in-place: per-block hashes, two sets */
        uint64_t ckpt_off[2];
        uint64_t hotzone;       /* in-place hotzone size in bytes */
        uint64_t orig_size;     /* holder size before the job (to roll back a start) */
        uint32_t preparing;     /* the area is being written: roll back, never resume */
        uint64_t data_dev;      /* detached: the data's device (st_rdev, or st_dev of a file) */
        uint64_t data_ino;      /* ... and inode (0 for a block device) */
        uint8_t id[JOB_ID_SIZE]; /* random per job: its checkpoints name it */
};

struct job_ckpt {
        uint64_t seq;
        uint32_t phase;         /* enum job_phase */
        uint64_t pos;
        uint64_t hz_start, hz_len;
};

/* The superblock's offset in the holder file: the last record of the area. */
static inline uint64_t job_super_offset(const struct job_super *sb) {
        return sb->jstart + sb->jsize - JOB_RECORD_SIZE;
}

/* Serialise and seal with key (the host's job key). */
void job_super_encode(const struct job_super *sb, const struct secret *key, uint8_t out[static JOB_RECORD_SIZE]);
/* Parse and validate: -ENODATA when there is no job magic, -EKEYREJECTED when the MAC
 * does not verify under key (NULL: nothing verifies), -EBADMSG when a sealed record
 * is inconsistent. */
int job_super_decode(const uint8_t in[static JOB_RECORD_SIZE], const struct secret *key, struct job_super *ret);
/* True when sb describes an area that ends a holder of size bytes and keeps every
 * offset of the job (data, header, original and final size) inside the holder. */
bool job_super_fits(const struct job_super *sb, uint64_t size);

/* Checkpoints belong to the job sb describes (its id is sealed into them). */
void job_ckpt_encode(const struct job_ckpt *c, const struct job_super *sb, const struct secret *key,
                     uint8_t out[static JOB_RECORD_SIZE]);
/* -EBADMSG for an empty, stale, foreign or unsealed record. */
int job_ckpt_decode(const uint8_t in[static JOB_RECORD_SIZE], const struct job_super *sb, const struct secret *key,
                    struct job_ckpt *ret);
/* The newest valid of two records; -EBADMSG if neither is valid. */
int job_ckpt_pick(const uint8_t a[static JOB_RECORD_SIZE], const uint8_t b[static JOB_RECORD_SIZE],
                  const struct job_super *sb, const struct secret *key, struct job_ckpt *ret);

/* Read the superblock at the end of fd (size bytes long): job_super_decode's
 * results, and -EBADMSG when it does not fit the file. An area of an older vmcrypt
 * (unsealed) is -EKEYREJECTED. */
int job_read_super(int fd, uint64_t size, const struct secret *key, struct job_super *ret);
/* Write sb's superblock durably (fsync: the file may have grown). */
int job_write_super(int fd, const struct job_super *sb, const struct secret *key);
/* Read both records and pick the newest valid one. */
int job_read_ckpt(int fd, const struct job_super *sb, const struct secret *key, struct job_ckpt *ret);
/* Write c into slot c->seq % 2 and make it durable (fdatasync). */
int job_write_ckpt(int fd, const struct job_super *sb, const struct secret *key, const struct job_ckpt *c);

/* Seal a record: the HMAC of its first JOB_RECORD_SIZE - 32 bytes into the last 32
 * (for the fuzz harness, which seals hostile field values to reach the checks
 * behind the MAC). */
void job_seal(const struct secret *key, uint8_t rec[static JOB_RECORD_SIZE]);

/* The 8-byte hash of one unit, used to classify in-place units after a crash. */
uint64_t job_block_hash(const uint8_t *data, size_t len);
