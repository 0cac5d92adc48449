/* The disk workflow that every program shares (the vmcrypt CLI, the host agent):
 * find a disk's key (a key file, a new key file, the caller's secret, the disk's
 * key provider, a passphrase the caller asks for), bind a new keyslot to a key
 * provider, begin and finish a job together with its record, and run encrypt,
 * decrypt, reencrypt, resume, format and create on one volume; read its status.
 *
 * Nothing here prints or exits. Every call returns 0 (or a documented positive
 * value) or a negative errno, and fills the caller's struct error (shared/error.h)
 * with one line that says what is wrong and what to do; struct volume_result says what was
 * done, for the one line a program prints on success. */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "disk/engine.h"
#include "keys/provider.h"
#include "shared/error.h"
#include "shared/secret.h"

/* Ask for a passphrase (a program's terminal prompt); new_slot: a keyslot will be
 * made, so confirm it. 0 with *ret set, or -errno. */
typedef int (*volume_ask_fn)(const char *target, bool new_slot, struct secret **ret, void *userdata);

/* Where the key of a disk comes from, first match wins: a new binding (provider),
 * a new key file, a key file, the caller's secret, the disk's own key provider
 * (existing keyslots only), then ask. */
struct volume_key {
        const char *provider;       /* new keyslot: bind to this key provider */
        const char *kek;            /* ... with this KEK (default: create one) */
        const char *vm_name;        /* ... tagging the KEK (x-Name, x-Identifier) */
        const char *vm_uuid;
        const char *providers;      /* providers.json; NULL: the default path */
        const char *new_file;       /* new keyslot: a random 32-byte key in this new file */
        const char *file;           /* key file, "-" for standard input */
        bool random;                /* the key file holds a random secret: fast KDF */
        const struct secret *secret; /* the caller's key (not owned) */
        volume_ask_fn ask;          /* NULL: never ask */
        void *ask_userdata;
};

struct volume_params {
        const char *path;            /* image file or block device */
        const char *header;          /* detached header; NULL: in front, or the recorded one */
        enum disk_format format;     /* encrypt/format/create; DISK_FORMAT_NONE = LUKS2 */
        unsigned sector_size;        /* encrypt/format/create: 512 (0) or 4096 */
        uint32_t pbkdf_memory_kib;   /* passphrase keyslots: Argon2 memory; 0 default */
        uint32_t iter_time_ms;       /* passphrase keyslots: KDF time; 0 default */
        uint64_t max_rate;           /* data pass limit in bytes/s; 0 none */
        unsigned threads;            /* 0: all CPUs */
        bool force_raw;              /* encrypt a disk that starts like a qcow2/VMDK/... image */
        struct volume_key key;
        engine_progress_fn progress; /* optional; may pause or cancel the job */
        void *progress_userdata;
};

/* What a call did. */
struct volume_result {
        char header[PATH_MAX];       /* the detached header used ("" none) */
        bool header_recorded;        /* ... found through the job record */
        char provider[128];          /* a new binding: provider and KEK */
        char kek[256];
        bool kek_retired;            /* failed: the KEK made for it was retired again */
        bool kek_left;               /* failed: ... and could not be (list it with provider keks) */
        bool key_released;           /* the disk's key provider released the key */
        int keyslot;                 /* ... into this keyslot (-1 unknown) */
        bool key_file_made;          /* new_file was written */
        bool no_key;                 /* failed: no key source given, and none to ask */
        unsigned dropped_keyslots;   /* reencrypt: keyslots the new volume key lost */
        char sidecar_removed[PATH_MAX]; /* decrypt: the LUKS1 binding file removed */
        unsigned n_released;         /* decrypt: the KEKs the disk no longer uses, */
        struct kek_release released[4]; /* ... each released (retired when the last) */
        bool interrupted;            /* failed, and the job waits for resume */
        bool paused;                 /* stopped on the progress callback's request */
        struct engine_status status; /* volume_status */
};

/* Return values of volume_resume besides 0 (finished). */
enum {
        VOLUME_NOTHING = 1,          /* no job on the disk */
        VOLUME_ROLLED_BACK = 2,      /* the job had not changed the disk: undone */
};

/* In-place jobs. A failure after the job changed the disk leaves it for
 * volume_resume (res->interrupted). A progress callback that answers
 * ENGINE_PAUSE or ENGINE_CANCEL stops the job at its next checkpoint: -ECANCELED,
 * res->interrupted, and resume finishes it. */
int volume_encrypt(const struct volume_params *p, struct volume_result *res, struct error *err);
int volume_decrypt(const struct volume_params *p, struct volume_result *res, struct error *err);
int volume_reencrypt(const struct volume_params *p, struct volume_result *res, struct error *err);
/* 0 finished, VOLUME_NOTHING, VOLUME_ROLLED_BACK, or -errno. */
int volume_resume(const struct volume_params *p, struct volume_result *res, struct error *err);

/* Move a volume between LUKS2 and LUKS1 without a data pass (docs/engine.md,
 * "Convert"): 0 converted, 1 already in that format, or -errno. */
int volume_convert(const struct volume_params *p, enum disk_format to, struct volume_result *res,
                   struct error *err);

/* A new LUKS header without a data pass: format destroys the data (refused on a
 * disk with a signature or data unless force); create makes a new sparse image. */
int volume_format(const struct volume_params *p, bool force, struct volume_result *res, struct error *err);
int volume_create(const struct volume_params *p, uint64_t size, struct volume_result *res, struct error *err);

/* The disk's state read from the disk (res->status), with its recorded detached
 * header when p->header is NULL. Never changes anything. */
int volume_status(const struct volume_params *p, struct volume_result *res, struct error *err);
