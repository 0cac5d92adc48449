/* Binding disks to key providers: the flow behind `vmcrypt disk encrypt|format|
 * create --provider`, and `vmcrypt disk bind` for volumes that exist already.
 *
 * A bound disk has a keyslot opened by a fresh unlock secret: 32 random bytes,
 * used as its 64-character hex text so that every consumer takes it as it is
 * (cryptsetup key files, and QEMU, whose secrets must be UTF-8). The secret is
 * wrapped by the provider's KEK and only the wrapped form is stored, in the disk's
 * "vmcrypt" token (disk/token.h). */
#pragma once

#include <libcryptsetup.h>

#include "shared/error.h"
#include "keys/token.h"
#include "keys/provider.h"
#include "shared/secret.h"

#define UNLOCK_SECRET_BYTES 32
/* Length of the keyslot passphrase: the hex text of the secret. */
#define UNLOCK_SECRET_TEXT (2 * UNLOCK_SECRET_BYTES)

struct binding_opts {
        const char *providers_path; /* NULL: PROVIDERS_DEFAULT_PATH */
        const char *provider;       /* NULL: the configuration's default */
        const char *kek_id;         /* NULL: create (and activate) a new KEK */
        const char *vm_name;        /* optional, stored in the token and on the KEK */
        const char *vm_uuid;
        const char *header_path;    /* the header file or image: where a LUKS1 sidecar goes */
};

struct binding;

/* A new unlock secret (the hex text of 32 random bytes). */
int unlock_secret_new(struct secret **ret);

/* Make the unlock secret and its wrapped form (creating a KEK unless one is given):
 * everything a disk job needs before it touches the disk. *ret_secret goes to the
 * engine as the passphrase of the new keyslot; pass binding_header_hook and *ret as
 * its header hook and userdata. On failure err says what is wrong and what to do. */
int binding_prepare(const struct binding_opts *o, struct secret **ret_secret, struct binding **ret,
                    struct error *err);

/* As binding_prepare, for a secret the caller has (shallow rekey re-wraps the
 * existing one). */
int binding_prepare_secret(const struct binding_opts *o, const struct secret *secret, struct binding **ret,
                           struct error *err);

/* engine_header_hook_t: store the token for keyslot in the new header (LUKS2) or
 * the sidecar (LUKS1). userdata is the struct binding. */
int binding_header_hook(struct crypt_device *cd, int keyslot, void *userdata);

/* The binding will not be used (its job failed before the disk got the keyslot):
 * retire the KEK if this binding created it (revoke + destroy at the provider).
 * 1 when a KEK was retired, 0 when there was none to retire, -errno (the error
 * text in binding_error). */
int binding_abandon(struct binding *b);
/* The KEK id used (created or given), for messages; valid until binding_free. */
const char *binding_kek_id(const struct binding *b);
/* The token id the hook stored, or -1 before it ran. */
int binding_token_id(const struct binding *b);
/* The last error text of the hook (the engine reports only its errno). */
const char *binding_error(const struct binding *b);
/* ... and its enum error_fault (what the key server said, if it was that). */
int binding_fault(const struct binding *b);

void binding_free(struct binding *b);
static inline void binding_freep(struct binding **b) {
        binding_free(*b);
}

/* Bind an existing, loaded LUKS volume: add a keyslot for a new unlock secret
 * (opened by passphrase, any keyslot), then its token; if the token cannot be
 * stored the keyslot is destroyed again (and a KEK made for it retired). Returns
 * the new keyslot; the KEK id goes to ret_kek. */
int binding_attach(struct crypt_device *cd, const struct binding_opts *o, const struct secret *passphrase,
                   char *ret_kek, size_t kek_size, struct error *err);

/* The cheap KDF for keyslots opened by full-entropy secrets (PBKDF2, 1000
 * iterations, no benchmark); 0 or -errno. */
int binding_set_minimal_pbkdf(struct crypt_device *cd);
