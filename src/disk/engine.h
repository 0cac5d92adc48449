/* The disk engine: in-place, crash-safe encryption, decryption and deep rekey of
 * VM disk images and block devices into standard LUKS2/LUKS1 volumes, plus format,
 * create and status. Headers and keyslots are written by libcryptsetup; the bulk
 * data is encrypted here (aes-xts-plain64, 512-bit volume key). See docs/engine.md
 * for the on-disk job area and the crash-safety argument.
 *
 * All functions return 0 (or positive) on success or a negative errno:
 *   -EPERM        wrong key (no keyslot opens with the given secret)
 *   -EBUSY        image or device in use (locked by another process, mounted)
 *   -ENOSPC       not enough free space to grow the image
 *   -EEXIST       already a LUKS volume (encrypt/format), or key/header file exists
 *   -EINPROGRESS  a job is in progress on this disk: run resume
 *   -EBADMSG      truncated image or inconsistent job area
 *   -EUCLEAN      LUKS header(s) corrupted, or a torn block found on resume
 *   -ENODEV       not a LUKS volume (decrypt/reencrypt/status on plain data is fine)
 *   -EINVAL       bad parameters (size not a multiple of the sector size, ...)
 *   -ECANCELED    stopped by the progress callback (pause, cancel): resume finishes it
 *   -EMEDIUMTYPE  encrypt: the image is a container (qcow2, VMDK, ...), not a raw disk
 * The struct error given with the call (engine_params.err) explains a failure in one line. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "shared/error.h"
#include "shared/secret.h"

struct crypt_device;

enum disk_format {
        DISK_FORMAT_NONE = 0,
        DISK_FORMAT_LUKS2,
        DISK_FORMAT_LUKS1,
};

/* Which KDF protects the new keyslot. */
enum engine_kdf {
        /* Argon2id (LUKS2) or PBKDF2 (LUKS1) benchmarked: passphrases, key files. */
        ENGINE_KDF_SLOW = 0,
        /* PBKDF2-sha256, 1000 iterations: the secret is 32 random bytes. */
        ENGINE_KDF_MINIMAL,
};

/* Called with the new header, right after the keyslot was added and before the header
 * is persisted anywhere; may add tokens (e.g. type "vmcrypt"). Returns 0 or -errno;
 * a failure aborts the operation and nothing on disk changes. keyslot is the slot
 * that the unlock secret opens. */
typedef int (*engine_header_hook_t)(struct crypt_device *cd, int keyslot, void *userdata);

enum engine_operation {
        ENGINE_OP_NONE = 0,
        ENGINE_OP_ENCRYPT,
        ENGINE_OP_DECRYPT,
        ENGINE_OP_REENCRYPT,
        ENGINE_OP_CONVERT,      /* header only: LUKS2 <-> LUKS1, no data pass */
};

/* Progress of a data pass; done/total in bytes of data. */
struct engine_progress {
        enum engine_operation operation;
        uint64_t done;
        uint64_t total;
        bool finished;
};
/* What the progress callback asks of the job: go on, or stop at the next
 * checkpoint (the job returns -ECANCELED and waits for engine_resume, as after a
 * crash, but with nothing to redo). Pause and cancel differ only for the caller. */
enum engine_verdict {
        ENGINE_CONTINUE = 0,
        ENGINE_PAUSE,
        ENGINE_CANCEL,
};
typedef enum engine_verdict (*engine_progress_fn)(const struct engine_progress *p, void *userdata);

struct engine_params {
        const char *path;            /* image file or block device */
        const char *header_path;     /* detached header file, or NULL (header in front) */
        enum disk_format format;     /* encrypt/format/create: DISK_FORMAT_NONE = LUKS2 */
        unsigned sector_size;        /* encrypt/format/create: 512 (0) or 4096 (LUKS2) */
        const struct secret *unlock; /* passphrase or unlock secret; not owned */
        enum engine_kdf kdf;         /* for the new keyslot */
        uint32_t pbkdf_memory_kib;   /* Argon2 memory; 0 = libcryptsetup default */
        uint32_t iter_time_ms;       /* KDF time; 0 = libcryptsetup default */
        uint64_t max_rate;           /* data pass rate limit in bytes/s; 0 = none */
        unsigned threads;            /* encryption workers; 0 = all CPUs */
        bool force_raw;              /* encrypt: take the disk as raw even if it starts
                                      * like a qcow2/VMDK/VHD/VHDX/VDI/QED image */
        engine_header_hook_t header_hook; /* optional, see above */
        void *hook_userdata;
        const struct secret *job_key; /* the host's job key (job-key.h); NULL: the one in
                                       * $VMCRYPT_STATE_DIR, made by the first job */
        engine_progress_fn progress; /* optional, called from the engine's thread after
                                      * every chunk (up to 8-64 MiB); may pause or cancel */
        void *progress_userdata;
        struct error *err;           /* where a failure is explained (e.g. "not enough
                                      * free space: need 16.0 MiB, have 3.0 MiB"); may be NULL */
};

/* Encrypt a plaintext image/device in place into a new LUKS volume. */
int engine_encrypt(const struct engine_params *p);
/* Decrypt a LUKS volume in place back to the exact original bytes. */
int engine_decrypt(const struct engine_params *p);
/* Deep rekey in place: new volume key, new header, the unlocking keyslot's secret
 * opens the new keyslot (same slot id, same kind of KDF). Other keyslots are dropped
 * (their secrets are unknown here); tokens of the old header are kept, their keyslot
 * lists filtered to the slots that still exist; then header_hook runs. */
int engine_reencrypt(const struct engine_params *p);
/* Convert the volume between LUKS2 and LUKS1 (to), header only: the data and the
 * volume key stay, the keyslots (PBKDF2) and vmcrypt tokens are carried over, the
 * data offset is kept. The new header is written with the job machinery (job
 * area with both headers, a FINALIZE checkpoint, then the finishing steps of a
 * reencrypt), so a crash leaves the old or the new volume, or a job that resume
 * finishes without a key; a second run after a crash resumes the job first.
 * Returns 0, 1 when the volume is already in that format, -EMEDIUMTYPE when it
 * uses something the target format lacks (nothing changed), or as the others. */
int engine_convert(const struct engine_params *p, enum disk_format to);
/* Finish an interrupted encrypt/decrypt/reencrypt (or its finalisation). */
int engine_resume(const struct engine_params *p);
/* Write a fresh LUKS header without a data pass (destroys the data); refuses with
 * -EEXIST when the target carries a signature or data unless force is set. */
int engine_format(const struct engine_params *p, bool force);
/* Create a new sparse image file of size bytes (must not exist) and format it. */
int engine_create(const struct engine_params *p, uint64_t size);

#define ENGINE_MAX_SLOTS 32

struct engine_status {
        enum engine_operation job;   /* ENGINE_OP_NONE when no job is in progress */
        enum disk_format format;
        bool encrypted;              /* a complete LUKS volume (no job) */
        bool detached;
        char cipher[64];             /* "aes-xts-plain64" */
        unsigned key_bits;
        unsigned sector_size;
        uint64_t data_offset;        /* bytes */
        uint64_t data_size;          /* bytes of guest-visible data */
        unsigned n_keyslots;
        struct { int id; char kdf[24]; } keyslots[ENGINE_MAX_SLOTS];
        unsigned n_tokens;
        struct {
                int id;
                char type[64];
                int keyslot;         /* the first keyslot it names, or -1 */
                char provider[64];   /* "vmcrypt" tokens: the binding; else "" */
                char kek_id[128];
        } tokens[ENGINE_MAX_SLOTS];
        uint64_t job_done;           /* bytes of data already processed */
        uint64_t job_total;
        uint64_t job_position;       /* data offset the job has reached */
        bool job_finalizing;         /* data pass complete, header being finished */
        uint64_t job_data_dev;       /* detached job: the disk it was started on (see job.h) */
        uint64_t job_data_ino;
        bool job_unstarted;          /* a job area of a job that never changed the disk
                                      * (the next job or resume rolls it back) */
        bool foreign_job;            /* job area, marker or disguised header not written by
                                      * this host (forged by a guest, or another host's) */
};

/* Read the state of a disk from the disk itself (no volume key needed). job_key is
 * the host's job key, or NULL for the state directory's: a job area, marker or
 * disguised header it does not vouch for is reported as foreign_job, and the disk
 * as what the rest of it is. */
int engine_status(const char *path, const char *header_path, const struct secret *job_key, struct engine_status *ret,
                  struct error *err);

/* The LUKS header kept in the job area of an interrupted job (the new header for
 * encrypt/reencrypt, the old one for decrypt: the one that carries the volume's
 * tokens), loaded read-only from memory so that a key provider can find its token
 * and resume can get its key. crypt_free the device, then close *ret_memfd.
 * -ENODATA when there is no job on the disk. */
int engine_job_header(const char *path, const char *header_path, const struct secret *job_key,
                      struct crypt_device **ret_cd, int *ret_memfd, struct error *err);

const char *disk_format_to_string(enum disk_format f);
/* The one rule for encryption sector sizes: 512 or 4096, and LUKS1 only 512.
 * 0, or -EINVAL with *ret_msg saying which part is broken. */
int disk_sector_size_check(enum disk_format format, unsigned sector_size, const char **ret_msg);
const char *engine_operation_to_string(enum engine_operation op);

