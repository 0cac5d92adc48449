/* Shared by the `vmcrypt disk` subcommands: option parsing, getting the key (key
 * file, stdin pipe, terminal prompt, or a new random key file), the progress
 * display and the one error message at the edge. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "disk/engine.h"
#include "shared/secret.h"

/* Which options a subcommand accepts. */
enum {
        DOPT_TYPE = 1U << 0,     /* --type, --sector-size */
        DOPT_HEADER = 1U << 1,   /* --header */
        DOPT_KEY = 1U << 2,      /* --key-file */
        DOPT_NEWKEY = 1U << 3,   /* --new-key-file, --random-key, --pbkdf-memory, --iter-time */
        DOPT_RUN = 1U << 4,      /* --max-rate, --progress */
        DOPT_YES = 1U << 5,      /* --yes */
        DOPT_JSON = 1U << 6,     /* --json */
        DOPT_PROVIDER = 1U << 7, /* --provider, --kek, --vm-name, --vm-uuid, --providers */
        DOPT_PROVIDERS = 1U << 8, /* --providers alone: unlock through the disk's vmcrypt token */
        DOPT_ONE_TARGET = 1U << 9, /* exactly one IMAGE|DEVICE argument (o->args[0]) */
        DOPT_FORCE_RAW = 1U << 10, /* --force-raw */
};

/* --help lines of options that several subcommands share, worded once. */
#define DISK_HELP_UNLOCK \
        "  --key-file FILE|-        unlock key from FILE, or from a pipe on stdin with -\n" \
        "  --providers FILE         providers.json for a disk bound to a key provider\n" \
        "                           (default /etc/vmcrypt/providers.json)\n"
#define DISK_HELP_RUN \
        "  --max-rate RATE          limit the data rate (bytes/s; suffixes K, M, G)\n" \
        "  --progress auto|bar|json|none\n" \
        "                           progress on stderr: a bar on a terminal, else JSON lines\n"
#define DISK_HELP_UNLOCK_NOTE \
        "Without --key-file, a disk bound to a key provider (a vmcrypt token) is\n" \
        "unlocked by its provider; otherwise the passphrase is asked on the terminal.\n"
#define DISK_HELP_NEW_SLOT \
        "  --random-key             the key file holds a random secret: fast PBKDF2 keyslot\n" \
        "  --provider NAME          bind to a key provider: a random unlock secret, wrapped by\n" \
        "                           a KEK of NAME, stored in the disk's vmcrypt token\n" \
        "  --kek ID                 with --provider: use this KEK (default: create a new one)\n" \
        "  --vm-name N, --vm-uuid U with --provider: tag the KEK (x-Name, x-Identifier)\n" \
        "  --providers FILE         provider configuration (default /etc/vmcrypt/providers.json)\n"
#define DISK_HELP_KDF \
        "  --pbkdf-memory KIB       Argon2id memory for passphrase keyslots\n" \
        "  --iter-time MS           KDF time for passphrase keyslots\n"

enum progress_mode { PROGRESS_AUTO, PROGRESS_BAR, PROGRESS_JSON, PROGRESS_NONE };

struct disk_opts {
        const char *header;
        const char *key_file;
        const char *new_key_file;
        bool random_key;
        enum disk_format type;
        unsigned sector_size;
        uint32_t pbkdf_memory;
        uint32_t iter_time;
        uint64_t max_rate;
        enum progress_mode progress;
        bool yes;
        bool json;
        bool force_raw;          /* encrypt a disk that starts like a qcow2/VMDK/... image */
        const char *provider;    /* --provider: bind the new keyslot to a key provider */
        const char *kek;
        const char *vm_name;
        const char *vm_uuid;
        const char *providers;   /* providers.json; NULL: the default path */
        int n_args;
        char **args;
};

/* Parse argv for command cmd ("vmcrypt disk encrypt"); prints help on --help.
 * Returns -1 to go on, or an exit code to return right away. */
int disk_opts_parse(const char *cmd, unsigned allowed, const char *help, int argc, char *argv[],
                    struct disk_opts *o);

/* Get the unlock key. new_slot: a keyslot will be created (confirm prompts, allow
 * --new-key-file). Sets the KDF to use for a new keyslot. Returns an exit code
 * or -1 to go on (the message is printed). */
int disk_get_key(const char *cmd, const struct disk_opts *o, const char *target, bool new_slot,
                 struct secret **ret, enum engine_kdf *ret_kdf);

/* Fill engine params for target from options and get the unlock key into *ret_key
 * (p->unlock points at it); new_slot as for disk_get_key. Returns -1 to go on, or
 * an exit code. */
int disk_prepare(const char *cmd, const struct disk_opts *o, const char *target, bool new_slot,
                 struct engine_params *p, struct secret **ret_key);

/* Fill engine params from options (progress display included). */
void disk_params_init(struct engine_params *p, const struct disk_opts *o, const char *path);

/* Whether the disk now carries an interrupted job (after a failure). */
bool disk_job_in_progress(const struct disk_opts *o, const char *path);

/* Print the one message for r (< 0) and return its exit code; for r >= 0 return 0.
 * Also prints the final progress event on success. */
int disk_finish(const char *what, const struct disk_opts *o, int r);
/* Before a job with a detached header: refuse (exit code) when the disk already has
 * an interrupted job recorded with another header, and record this one's (see
 * disk-job-record.h; a failure to record is only warned about). -1 to go on. */
int disk_job_begin(const char *cmd, const struct disk_opts *o, const char *target, enum engine_operation op);
/* Without --header: set o->header (into buf) to the recorded header of target's
 * interrupted job (started or not), and return 1; 0 when there is none. With
 * forget, a stale record is dropped; display commands pass false. */
int disk_job_find_header(struct disk_opts *o, const char *target, char *buf, size_t size, bool forget);
/* Same, naming the disk: a failed job left resumable gets a "run resume" hint; the
 * record of a detached job that is no longer in progress goes. */
int disk_finish_job(const char *what, const struct disk_opts *o, const char *path, int r);

/* --provider (disk-provider.c): make and wrap the new unlock secret (exit code or
 * -1 to go on, like disk_get_key), and the engine header hook that stores the
 * token. */
int disk_provider_get_key(const struct disk_opts *o, const char *target, struct secret **ret,
                          enum engine_kdf *ret_kdf);
int disk_provider_hook(struct crypt_device *cd, int keyslot, void *userdata);

/* For a disk that carries vmcrypt tokens: unwrap its unlock secret through the key
 * provider (providers.json from --providers or the default path). Returns -1 with
 * *ret set, -2 when the disk has no vmcrypt token (use another way in), or an exit
 * code after printing the one message. */
int disk_provider_unlock_key(const struct disk_opts *o, const char *target, struct secret **ret);

/* After a decrypt: remove the LUKS1 sidecar (IMAGE.vmcrypt.json) beside
 * header_path, whose wrapped secret now opens nothing. */
void disk_drop_sidecar(const char *header_path);

int disk_encrypt_main(int argc, char *argv[]);
int disk_convert_main(int argc, char *argv[]);
int disk_decrypt_main(int argc, char *argv[]);
int disk_reencrypt_main(int argc, char *argv[]);
int disk_resume_main(int argc, char *argv[]);
int disk_format_main(int argc, char *argv[]);
int disk_create_main(int argc, char *argv[]);
int disk_status_main(int argc, char *argv[]);
