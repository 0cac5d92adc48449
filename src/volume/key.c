/* Finding a disk's key and binding new keyslots to key providers: see volume.h. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "keys/rekey.h"
#include "keys/unlock.h"
#include "shared/fd-util.h"
#include "shared/key-input.h"
#include "volume/volume-internal.h"

/* The engine calls this with the new header: the binding stores its token. */
static int header_hook(struct crypt_device *cd, int keyslot, void *userdata) {
        struct volume_call *c = userdata;
        int r = binding_header_hook(cd, keyslot, c->binding);
        if (r < 0)
                error_set_fault(c->err, binding_fault(c->binding), r, "%s", binding_error(c->binding));
        return r;
}

static int bind_new_slot(struct volume_call *c) {
        const struct volume_key *k = &c->p->key;
        const struct binding_opts bo = {
                .providers_path = k->providers,
                .provider = k->provider,
                .kek_id = k->kek,
                .vm_name = k->vm_name,
                .vm_uuid = k->vm_uuid,
                .header_path = c->p->header ? c->p->header : c->p->path,
        };
        struct error inner = { 0 };
        int r = binding_prepare(&bo, &c->key, &c->binding, &inner);
        if (r < 0)
                return error_wrap(c->err, &inner, r, "cannot prepare the key for %s: %s", c->p->path, inner.text);
        /* The secret has full entropy: PBKDF2 with minimal iterations. */
        c->ep.kdf = ENGINE_KDF_MINIMAL;
        c->ep.header_hook = header_hook;
        c->ep.hook_userdata = c;
        snprintf(c->res->provider, sizeof(c->res->provider), "%s", k->provider);
        snprintf(c->res->kek, sizeof(c->res->kek), "%s", binding_kek_id(c->binding));
        return 0;
}

/* The call's LUKS header: on the disk, or during an interrupted job (when the one
 * on the disk is hidden) its copy in the job area, which carries the same tokens
 * (*memfd holds that copy). -ENOENT: not a LUKS volume. */
static int load_header(struct volume_call *c, struct crypt_device **ret, int *memfd) {
        if (unlock_load(c->p->path, c->ep.header_path, ret, NULL) >= 0 ||
            engine_job_header(c->p->path, c->ep.header_path, NULL, ret, memfd, NULL) >= 0)
                return 0;
        return -ENOENT;
}

int volume_collect_keks(struct volume_call *c) {
        struct crypt_device *cd = NULL;
        _cleanup_(closep) int memfd = -EBADF;
        c->n_keks = 0;
        if (load_header(c, &cd, &memfd) < 0)
                return 0;
        const char *header_path = c->ep.header_path ? c->ep.header_path : c->p->path;
        _cleanup_(token_list_freep) struct token_list *l = NULL;
        int r = token_store_list(cd, header_path, &l);
        const char *uuid = crypt_get_uuid(cd);
        snprintf(c->uuid, sizeof(c->uuid), "%s", uuid ? uuid : "");
        crypt_free(cd);
        if (r < 0)
                return 0; /* no tokens to read: nothing to release afterwards */
        for (size_t i = 0; i < l->n && c->n_keks < ELEMENTSOF(c->keks); i++) {
                const struct vmcrypt_token *t = l->e[i].tok;
                if (!t || !t->kek_id || !t->provider)
                        continue;
                bool dup = false;
                for (size_t k = 0; k < c->n_keks; k++)
                        dup |= strcmp(c->keks[k].kek, t->kek_id) == 0 && strcmp(c->keks[k].provider, t->provider) == 0;
                if (dup)
                        continue;
                snprintf(c->keks[c->n_keks].provider, sizeof(c->keks[0].provider), "%s", t->provider);
                snprintf(c->keks[c->n_keks].kek, sizeof(c->keks[0].kek), "%s", t->kek_id);
                c->n_keks++;
        }
        return 0;
}

void volume_release_keks(struct volume_call *c) {
        if (!c->uuid[0])
                return;
        for (size_t k = 0; k < c->n_keks && c->res->n_released < ELEMENTSOF(c->res->released); k++)
                (void) keys_kek_release(c->p->key.providers, c->keks[k].provider, c->keks[k].kek, c->uuid,
                                        c->ep.header_path ? c->ep.header_path : c->p->path,
                                        &c->res->released[c->res->n_released++]);
}

int volume_provider_key(struct volume_call *c, struct secret **ret) {
        const char *target = c->p->path, *header = c->ep.header_path;
        const char *header_path = header ? header : target;
        struct error inner = { 0 };
        struct crypt_device *cd = NULL;
        _cleanup_(closep) int memfd = -EBADF;
        if (load_header(c, &cd, &memfd) < 0)
                return 0;
        _cleanup_(token_list_freep) struct token_list *l = NULL;
        int r = token_store_list(cd, header_path, &l);
        if (r >= 0 && l->n == 0) {
                crypt_free(cd);
                return 0;
        }
        _cleanup_(unlocker_freep) struct unlocker *u = NULL;
        r = unlocker_new(c->p->key.providers, &u, &inner);
        if (r < 0) {
                crypt_free(cd);
                return error_set(c->err, r, "%s is bound to a key provider, but the providers cannot be loaded: %s",
                                   target, inner.text);
        }
        struct unlock_result res = { .keyslot = -1, .token_id = -1 };
        r = unlocker_unlock_cd(u, cd, header_path, ret, &res, &inner);
        crypt_free(cd);
        token_free(res.token);
        if (r < 0)
                return error_wrap(c->err, &inner, r, "cannot unlock %s through its key provider: %s", target,
                                  inner.text);
        c->res->key_released = true;
        c->res->keyslot = res.keyslot;
        return 1;
}

int volume_get_key(struct volume_call *c, bool new_slot) {
        const struct volume_key *k = &c->p->key;
        const char *target = c->p->path;
        int r;
        c->ep.kdf = ENGINE_KDF_SLOW;
        if (k->provider && new_slot)
                r = bind_new_slot(c);
        else if (k->new_file) {
                if (!new_slot)
                        return error_set(c->err, -EINVAL, "a new key file only applies when a new keyslot is made");
                /* 64 hex digits: cryptsetup and QEMU (UTF-8 secrets) both take it. */
                r = key_input_new_hex_key_file(k->new_file, 32, &c->key);
                if (r == -EEXIST)
                        return error_set(c->err, r, "key file %s already exists: refusing to overwrite it (choose another path)",
                                           k->new_file);
                if (r < 0)
                        return error_set(c->err, r, "cannot create key file %s: %s", k->new_file, strerror(-r));
                c->res->key_file_made = true;
                c->ep.kdf = ENGINE_KDF_MINIMAL;
        } else if (k->file) {
                r = key_input_read_file(k->file, &c->key);
                if (r == -EINVAL)
                        return error_set(c->err, r, "key file %s is empty", k->file);
                if (r < 0)
                        return error_set(c->err, r, "cannot read key file %s: %s", k->file, strerror(-r));
                if (k->random)
                        c->ep.kdf = ENGINE_KDF_MINIMAL;
        } else if (k->secret) {
                c->key = secret_new_copy(k->secret->data, k->secret->size);
                r = c->key ? 0 : -ENOMEM;
        } else {
                /* A disk bound to a key provider opens with what the provider releases,
                 * as `vmcrypt disk unlock` would: no key file, no prompt. */
                r = new_slot ? 0 : volume_provider_key(c, &c->key);
                if (r < 0)
                        return r;
                if (r == 0 && !k->ask) {
                        c->res->no_key = true;
                        return error_set(c->err, -EINVAL, "no key given for %s", target);
                }
                if (r == 0) {
                        r = k->ask(target, new_slot, &c->key, k->ask_userdata);
                        if (r == -EINVAL)
                                return error_set(c->err, r, "passphrases were empty or did not match");
                        if (r < 0)
                                return error_set(c->err, r, "cannot read a passphrase: %s", strerror(-r));
                }
                r = 0;
        }
        if (r < 0)
                return r;
        c->ep.unlock = c->key;
        return 0;
}
