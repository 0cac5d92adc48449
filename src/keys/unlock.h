/* Unlocking bound disks: read the disk's vmcrypt tokens, have the named provider
 * unwrap the secret, and prove it opens the keyslot the token names. One unlocker
 * keeps providers (and their KMS connections) open across many disks: the boot
 * storm path. */
#pragma once

#include <libcryptsetup.h>
#include <stdbool.h>

#include "shared/error.h"
#include "keys/token.h"
#include "keys/provider-config.h"
#include "shared/secret.h"

struct unlocker;

#define UNLOCK_MAX_DEAD 8

struct unlock_result {
        int keyslot;                /* the keyslot the secret opened */
        int token_id;               /* the token that worked */
        struct vmcrypt_token *token; /* a copy of it (owned by the caller: token_free) */
        /* Tokens tried before it whose KEK is gone for good (revoked, destroyed, not
         * on the key server): every unlock pays for them until they are removed. */
        unsigned n_dead;
        struct {
                int id;
                int keyslot;
                int error;          /* -EKEYREVOKED or -EIDRM */
                char kek[128];
        } dead[UNLOCK_MAX_DEAD];
};

/* Whether an unwrap error means the KEK will never unwrap again (as opposed to a
 * key server that is away, or a denied identity that may be fixed). */
bool unlock_error_is_dead(int r);

/* Load providers.json (NULL: default path); err says what is wrong. */
int unlocker_new(const char *providers_path, struct unlocker **ret, struct error *err);
void unlocker_free(struct unlocker *u);
static inline void unlocker_freep(struct unlocker **u) {
        if (*u)
                unlocker_free(*u);
}

/* Open image (with detached header when header is non-NULL) for metadata work;
 * 0, -ENODEV when it is no LUKS volume, other -errno. */
int unlock_load(const char *image, const char *header, struct crypt_device **ret, struct error *err);

/* Held while a disk's keyslots or tokens change (rekey, bind, recovery key): image
 * and detached header locked with disk_meta_lock, so two changes, or a change and a
 * data job, never interleave. */
struct change_lock {
        int fd[2];
};
#define CHANGE_LOCK_INIT { { -1, -1 } }

/* Take the lock for image (and header when non-NULL); on -EBUSY and other failures
 * err says which file and what to do. */
int change_lock_take(const char *image, const char *header, struct change_lock *ret, struct error *err);
/* Release; fine on CHANGE_LOCK_INIT. */
void change_lock_release(struct change_lock *l);

/* change_lock_take + unlock_load: open a disk whose keyslots or tokens are about to
 * change. The lock is held in *lock until released, also when loading fails. */
int unlock_load_for_change(const char *image, const char *header, struct change_lock *lock, struct crypt_device **ret,
                           struct error *err);

/* Unwrap the unlock secret of a loaded disk and check it against its keyslot.
 * Tokens are tried in id order; the first that works wins. header_path is where a
 * LUKS1 sidecar lives (header file or image). On failure err explains the most
 * telling failure (a damaged token, an unreachable KMS, a revoked KEK, ...). */
int unlocker_unlock_cd(struct unlocker *u, struct crypt_device *cd, const char *header_path,
                       struct secret **ret_secret, struct unlock_result *ret, struct error *err);

/* unlock_load + unlocker_unlock_cd. */
int unlocker_unlock(struct unlocker *u, const char *image, const char *header, struct secret **ret_secret,
                    struct unlock_result *ret, struct error *err);

/* The provider named name, opened once and kept; NULL with err set when unknown. */
struct provider *unlocker_provider(struct unlocker *u, const char *name, struct error *err);
