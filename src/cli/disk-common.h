/* Shared by the `vmcrypt disk` subcommands: option parsing, getting the key (key
 * file, stdin pipe, terminal prompt, or a new random key file), the progress
 * display and the one error message at the edge. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "disk/engine.h"
#include "volume/volume.h"
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

/* The volume layer's parameters for path from the options: the key sources, a
 * passphrase prompt when stdin is a terminal, the progress display. */
void disk_volume_params(const struct disk_opts *o, const char *path, struct volume_params *p);

/* The end of a disk command: the notes of res, then for r < 0 the one error
 * message (and how to resume an interrupted job); returns the exit code. */
int disk_report(const char *cmd, const char *what, const struct disk_opts *o, const char *path, int r,
                const struct volume_result *res, const struct error *err);

int disk_encrypt_main(int argc, char *argv[]);
int disk_convert_main(int argc, char *argv[]);
int disk_decrypt_main(int argc, char *argv[]);
int disk_reencrypt_main(int argc, char *argv[]);
int disk_resume_main(int argc, char *argv[]);
int disk_format_main(int argc, char *argv[]);
int disk_create_main(int argc, char *argv[]);
int disk_status_main(int argc, char *argv[]);
