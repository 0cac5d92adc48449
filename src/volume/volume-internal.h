/* Internal interface between the volume layer's files: the state of one call. */
#pragma once

#include <limits.h>

#include "keys/binding.h"
#include "volume/volume.h"

/* One call: its parameters, what it found and made, where its error goes. */
struct volume_call {
        const struct volume_params *p;
        struct volume_result *res;
        struct error *err;
        struct engine_params ep;     /* what the engine gets */
        struct secret *key;          /* the unlock key found or made */
        struct binding *binding;     /* a new keyslot's binding (its header hook) */
        char header[PATH_MAX];       /* the recorded header, when that is the one */
        char uuid[40];               /* decrypt: the volume's UUID and its tokens' KEKs */
        struct {
                char provider[128];
                char kek[256];
        } keks[4];
        size_t n_keks;
};

/* Start a call: clear res and err, fill the engine's parameters from p. */
void volume_call_init(struct volume_call *c, const struct volume_params *p, struct volume_result *res,
                      struct error *err);
/* Undo what a failed call made before the disk changed (a new key file, a KEK
 * created for it), and free what the call holds. */
void volume_call_done(struct volume_call *c, int r);

/* Find the key for the call's disk (new_slot: a keyslot will be made, so a new key
 * file or binding may be the source); sets c->key, the engine's unlock key and KDF,
 * and for a binding the header hook. -EINVAL and res->no_key when no source is given. */
int volume_get_key(struct volume_call *c, bool new_slot);

/* For a disk whose vmcrypt token opens it: the unlock secret through its key
 * provider (a copy of its header in the job area during a job). 1 with *ret set,
 * 0 when the disk has no vmcrypt token, or -errno. */
int volume_provider_key(struct volume_call *c, struct secret **ret);

/* Before a decrypt: remember the volume's UUID and the KEKs its tokens name, which
 * the decrypted disk no longer uses. */
int volume_collect_keks(struct volume_call *c);
/* After it: release each of them (keys_kek_release) into res->released. */
void volume_release_keks(struct volume_call *c);

/* The engine's last error into the call's error, for r < 0; returns r. */
int volume_engine_fail(struct volume_call *c, int r, const char *what);
