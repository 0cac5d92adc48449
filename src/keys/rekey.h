/* Key rotation without a data pass, and break-glass recovery keys.
 *
 * Shallow rekey re-wraps a disk's unlock secret under another KEK (`vmcrypt disk
 * rekey --kek`); with rotate_secret it also replaces the secret and its keyslot.
 * Every step is one atomic metadata commit, ordered so that a crash between any two
 * leaves a working way in (as Azure Disk Encryption rotates its token): mark the
 * rotation (old keyslot -> new keyslot), add the new keyslot, add its token, remove
 * the old token(s), destroy the old keyslot, clear the mark. After a crash the next
 * rekey finishes the job from the mark, so no keyslot or token is left behind.
 *
 * A recovery key is an Argon2id keyslot opened by a generated passphrase, for plain
 * cryptsetup without any KMS. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "shared/error.h"
#include "keys/provider.h"
#include "shared/secret.h"

struct rekey_opts {
        const char *providers_path; /* NULL: default */
        const char *image;
        const char *header;         /* detached header, or NULL */
        const char *provider;       /* NULL: the provider of the current token */
        const char *kek_id;         /* NULL: create a new KEK */
        bool rotate_secret;         /* also replace the unlock secret and keyslot */
};

struct rekey_result {
        bool released;              /* the old KEK was released (old_release says how) */
        struct kek_release old_release;
        char old_kek[256];
        char new_kek[256];
        int old_keyslot, new_keyslot;
        int old_token, new_token;
};

/* Shallow rekey; on failure err says what is wrong and the disk is unchanged or
 * still opens with its old token. */
int keys_rekey(const struct rekey_opts *o, struct rekey_result *ret, struct error *err);

/* Recovery passphrases: 8 groups of 5 characters from 32 unambiguous symbols
 * (200 bits), dash-separated; the dashes are part of the passphrase. */
#define RECOVERY_GROUPS 8
#define RECOVERY_GROUP_LEN 5
#define RECOVERY_TEXT_LEN (RECOVERY_GROUPS * (RECOVERY_GROUP_LEN + 1) - 1)

struct recovery_opts {
        const char *providers_path;
        const char *image;
        const char *header;
        uint32_t pbkdf_memory_kib; /* Argon2id memory; 0: libcryptsetup default (up to 1 GiB) */
        uint32_t iter_time_ms;     /* 0: libcryptsetup default (2 s) */
};

/* Generate a recovery passphrase (not yet stored anywhere). */
int recovery_passphrase_new(struct secret **ret);

/* Unlock the disk through its token and add a keyslot for a new recovery
 * passphrase, returned in *ret_passphrase; returns the new keyslot. */
int keys_recovery_add(const struct recovery_opts *o, struct secret **ret_passphrase, struct error *err);

struct bind_opts {
        const char *providers_path; /* NULL: default */
        const char *image;
        const char *header;         /* detached header, or NULL */
        const char *provider;       /* NULL: the configuration's default */
        const char *kek_id;         /* NULL: create a new KEK */
        const char *vm_name, *vm_uuid;
};

struct bind_result {
        int keyslot;                /* the new keyslot */
        char kek[256];              /* the KEK that wraps its secret */
        bool newline_dropped;       /* the passphrase opened only without its trailing newline */
        unsigned n_replaced;        /* dead tokens (KEK revoked or destroyed) removed */
        int replaced[8];
};

/* Bind a LUKS volume opened by passphrase to a key provider: a new keyslot for a
 * fresh unlock secret and its token. A passphrase that opens no keyslot is tried
 * once more without one trailing newline (echo and editors add one). Tokens whose
 * KEK is revoked or destroyed are then removed with their keyslots: the new binding
 * replaces them, and unlocking no longer asks the key server for a dead KEK. */
int keys_bind(const struct bind_opts *o, const struct secret *passphrase, struct bind_result *ret, struct error *err);

struct unbind_result {
        char kek[256];              /* the removed token's KEK */
        bool keyslot_removed;       /* its keyslot went too (no other token used it) */
        bool released;              /* the KEK was released: release says how */
        struct kek_release release;
};

/* Remove token id and its keyslot (refused when no other keyslot would remain);
 * a keyslot another token still uses stays. Then the disk's use of the token's
 * KEK is released (keys_kek_release) unless another of its tokens uses it. */
int keys_unbind(const char *providers_path, const char *image, const char *header, int id, struct unbind_result *ret,
                struct error *err);

struct kek_info;
struct kek_release;

/* The volume with LUKS UUID disk, whose header is at path, no longer uses kek_id on
 * key provider `provider`: drop its record there, and retire the KEK (revoke, then
 * destroy) when it tracks its users and this was the last. *ret says what
 * happened, also on failure (then the KEK stays as it was, and ret->text says
 * why). 0 or -errno. */
int keys_kek_release(const char *providers_path, const char *provider, const char *kek_id, const char *disk,
                     const char *path, struct kek_release *ret);

/* The KEKs vmcrypt created on key provider `provider` (NULL: the default), each with
 * the number of the given disk images whose tokens use it: a KEK that none of a
 * host's disks uses is an orphan to retire. *ret is malloc'ed. */
int keys_kek_report(const char *providers_path, const char *provider, char *const *images, size_t n_images,
                    struct kek_info **ret, size_t *ret_n, struct error *err);
