/* Internal interface between the engine's files: the running job, file helpers and
 * the data pass. Not part of the engine API (engine.h). */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "crypto/xts.h"
#include "disk/engine.h"
#include "disk/job.h"

#define ENGINE_HEAD_SIZE ((uint64_t) 1 << 20)  /* first bytes saved / marked */
#define ENGINE_HOTZONE ((uint64_t) 64 << 20)   /* in-place hotzone */
#define ENGINE_CHUNK ((uint64_t) 8 << 20)      /* largest I/O of the data pass */

struct job {
        const struct engine_params *p;
        const struct secret *key; /* the host's job key (NULL: none yet, resume only) */
        struct secret *owned_key; /* ... when loaded here rather than given */
        struct job_super sb;
        struct job_ckpt ck;       /* last durable checkpoint */
        int data_fd;              /* image or device */
        int hold_fd;              /* holds header + job area (== data_fd when embedded) */
        struct secret *old_vk;    /* decrypt/reencrypt: key of the data as it was */
        struct secret *new_vk;    /* encrypt/reencrypt: key of the data as it will be */
        uint8_t *head;            /* shift layouts: saved first bytes of the data */
        uint8_t *new_hdr;         /* disguised new header region (encrypt/reencrypt) */
        bool created_header;      /* this job created the header file */
        bool started;             /* the job area exists: the disk is changing */
};

/* Record a one-line explanation in e (the call's error; first one wins) and return r. */
int engine_fail(struct error *e, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Open and lock a file/device for a job (O_EXCL + mount check on block devices);
 * -EBUSY when another process holds it. */
enum {
        ENGINE_OPEN_CREATE = 1U << 0, /* O_CREAT|O_EXCL, mode 0600 */
        ENGINE_OPEN_HEADER = 1U << 1, /* a header file: no symlink, a regular file of ours */
};
int engine_open_locked(const char *path, unsigned how, int *ret_fd, struct error *err);
/* Fail with -ENOSPC and a message unless `need` more bytes fit next to fd. */
int engine_check_space(int fd, uint64_t need, struct error *err);
/* Same, for a regular file that will end up final_size bytes, all allocated. */
int engine_check_final(int fd, uint64_t final_size, struct error *err);
/* Bytes of a file or device. */
int engine_size(int fd, uint64_t *ret);

/* Lay out the job area starting at jstart (fills offsets and jsize in sb). */
void engine_job_layout(struct job_super *sb);
/* Write the job area (headers, head copy, first checkpoint, superblock) durably. */
int engine_job_write(struct job *j, const uint8_t *old_hdr, const uint8_t *new_hdr,
                     const uint8_t *head, uint64_t first_pos);
/* A job whose area exists but that has not yet changed the disk (no marker yet, or
 * its area was still being written) is rolled back rather than resumed: the disk is
 * still in its old state and may have been used since. */
int engine_job_unstarted(int hold_fd, const struct job_super *sb, const struct secret *key, bool *ret);
/* Truncate the job area away (or remove a header file the job created). */
int engine_job_rollback(int hold_fd, const char *header_path, const struct job_super *sb, struct error *err);
/* Seal the finishing stamp into the last record of a new embedded header region
 * (hdr, len bytes; disguised), in memory: see engine-io.c. */
int engine_stamp_header(const struct job *j, uint8_t *hdr, size_t len);
/* 1 when the disguised header at the start of fd, whose region is region bytes,
 * carries this host's finishing stamp; 0 when not; -errno on read errors. */
int engine_stamp_check(int fd, uint64_t region, const struct secret *key);
/* Restore the LUKS magics of a disguised header (secondary, flush, primary, flush),
 * then wipe the finishing stamp at the end of stamp_region (0: none). */
int engine_restore_magic(int fd, uint64_t stamp_region);
/* The LUKS status of the disguised header at the start of fd (size bytes). */
int engine_disguised_status(int fd, uint64_t size, struct engine_status *ret);
/* Write the marker over the first bytes of the holder (durably). */
int engine_write_marker(struct job *j);
/* True when buf starts with the job marker. */
bool engine_is_marker(const uint8_t *buf, size_t len);
/* Load a header copy from the job area (magic restored); crypt_free + close. */
int engine_job_load_header(struct job *j, bool new_header, struct crypt_device **ret_cd, int *ret_memfd);
/* Write the next checkpoint durably (seq+1). */
int engine_commit(struct job *j, uint32_t phase, uint64_t pos, uint64_t hz_start, uint64_t hz_len);

/* Direct writes of data (engine-dio.c): engine_dio_open gives a second, O_DIRECT
 * descriptor of fd, or -1 when the file system refuses direct I/O. A write uses dfd
 * when it can and falls back to fd (buffered, writeback started at once) when it
 * cannot; 0 or -errno. Writes go through the write-failure test hook. Durable only
 * after an fdatasync, as any write. */
int engine_dio_open(int fd);
int engine_data_write(int dfd, int fd, const void *buf, size_t len, uint64_t off);

/* One data write running in the background (engine_data_write on its own thread),
 * so that reading and transforming the next chunk overlaps it. start waits for the
 * previous write first and returns its error; wait returns the error of the last
 * write (0 when none is running). A buffer may be reused only after wait. */
struct engine_writer {
        pthread_t th;
        bool running;
        int dfd, fd;
        const void *buf;
        size_t len;
        uint64_t off;
        int r;
};
int engine_writer_start(struct engine_writer *w, int dfd, int fd, const void *buf, size_t len, uint64_t off);
int engine_writer_wait(struct engine_writer *w);

/* Run (or continue) the data pass from j->ck until the data is complete. */
int engine_pass(struct job *j);
/* Bytes of data finished at checkpoint c (for status and progress). */
uint64_t engine_done_bytes(const struct job_super *sb, const struct job_ckpt *c);

/* Finish a job whose data pass is complete (phase FINALIZE), step by step. */
int engine_finalize(struct job *j);
/* A random 64-byte XTS volume key (halves differ, as XTS requires). */
int engine_new_volume_key(struct secret **ret);

/* Free everything a job holds (does not close fds). */
void engine_job_done(struct job *j);
