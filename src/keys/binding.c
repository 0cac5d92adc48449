/* Binding disks to key providers: see binding.h. */
#include "keys/binding.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "disk/luks1-meta.h"
#include "shared/hex.h"
#include "shared/log.h"

struct binding {
        struct provider_configs *cs;
        struct provider *p;
        struct vmcrypt_token *tok; /* everything but the keyslot */
        char *header_path;
        int token_id;
        bool kek_created;          /* made for this binding: retired if it is abandoned */
        char used_by[40];          /* the volume recorded among the KEK's users ("" none) */
        char used_at[PATH_MAX + 300]; /* ... at this place */
        char error[512];
        int fault;                 /* enum error_fault of error */
};

int unlock_secret_new(struct secret **ret) {
        _cleanup_(secret_freep) struct secret *raw = NULL;
        int r = secret_new_random(UNLOCK_SECRET_BYTES, &raw);
        if (r < 0)
                return r;
        /* hex_encode writes a NUL after the digits: room for it, then trimmed. */
        _cleanup_(secret_freep) struct secret *text = secret_new(UNLOCK_SECRET_TEXT + 1);
        if (!text)
                return -ENOMEM;
        hex_encode(raw->data, raw->size, (char *) text->data);
        secret_truncate(text, UNLOCK_SECRET_TEXT);
        *ret = TAKE_PTR(text);
        return 0;
}

int binding_set_minimal_pbkdf(struct crypt_device *cd) {
        /* The secret has 256 bits of entropy: a slow KDF would only slow boot storms. */
        const struct crypt_pbkdf_type pbkdf = {
                .type = CRYPT_KDF_PBKDF2,
                .hash = "sha256",
                .iterations = 1000,
                .flags = CRYPT_PBKDF_NO_BENCHMARK,
        };
        return crypt_set_pbkdf_type(cd, &pbkdf);
}

void binding_free(struct binding *b) {
        if (!b)
                return;
        provider_free(b->p);
        provider_configs_free(b->cs);
        token_free(b->tok);
        free(b->header_path);
        free(b);
}

int binding_abandon(struct binding *b) {
        if (!b)
                return 0;
        if (b->used_by[0] && !b->kek_created) {
                /* A KEK the caller chose stays; only this disk's record goes. */
                struct kek_usage u;
                if (provider_kek_unuse(b->p, b->tok->kek_id, b->used_by, b->used_at, &u) < 0)
                        snprintf(b->error, sizeof(b->error), "%s", provider_error(b->p));
                b->used_by[0] = '\0';
        }
        if (!b->kek_created)
                return 0;
        b->kek_created = false;
        int r = provider_kek_retire(b->p, b->tok->kek_id);
        if (r < 0)
                snprintf(b->error, sizeof(b->error), "%s", provider_error(b->p));
        return r < 0 ? r : 1;
}

const char *binding_kek_id(const struct binding *b) {
        return b->tok->kek_id;
}

int binding_token_id(const struct binding *b) {
        return b->token_id;
}

const char *binding_error(const struct binding *b) {
        return b->error;
}

int binding_fault(const struct binding *b) {
        return b->fault;
}

int binding_prepare_secret(const struct binding_opts *o, const struct secret *secret, struct binding **ret,
                           struct error *err) {
        _cleanup_(binding_freep) struct binding *b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        b->token_id = -1;
        if (o->header_path && !(b->header_path = strdup(o->header_path)))
                return -ENOMEM;
        int r = provider_config_load(o->providers_path, &b->cs, err);
        if (r < 0)
                return r;
        r = provider_open_by_name(b->cs, o->provider, &b->p, err);
        if (r == -EOPNOTSUPP)
                return error_set(err, r, "%s", "this vmcrypt was built without KMIP support");
        if (r < 0)
                return r;

        b->tok = token_new();
        if (!b->tok || !(b->tok->provider = strdup(b->p->config->name)))
                return -ENOMEM;
        if ((o->vm_name && !(b->tok->vm_name = strdup(o->vm_name))) ||
            (o->vm_uuid && !(b->tok->vm_uuid = strdup(o->vm_uuid))))
                return -ENOMEM;
        if (o->kek_id) {
                if (!(b->tok->kek_id = strdup(o->kek_id)))
                        return -ENOMEM;
        } else {
                const struct kek_attrs attrs = { .vm_name = o->vm_name, .vm_uuid = o->vm_uuid };
                r = provider_kek_create(b->p, &attrs, &b->tok->kek_id);
                if (r < 0)
                        return provider_error_set(err, b->p, r);
                b->kek_created = true;
        }
        r = provider_wrap(b->p, b->tok->kek_id, secret, b->tok);
        if (r < 0) {
                (void) provider_error_set(err, b->p, r);
                (void) binding_abandon(b);
                return r;
        }
        /* Prove the way back before any disk depends on it: a KEK that wraps but does
         * not unwrap (usage mask, policy) must fail now, not at the next boot. */
        _cleanup_(secret_freep) struct secret *check = NULL;
        b->tok->keyslot = 0;
        r = provider_unwrap(b->p, b->tok, &check);
        b->tok->keyslot = -1;
        if (r >= 0 && !secret_equal(check, secret))
                r = error_set(err, -EIO, "%s", "the key provider unwrapped a different secret than it wrapped");
        else if (r < 0)
                (void) provider_error_set(err, b->p, r);
        if (r < 0) {
                (void) binding_abandon(b);
                return r;
        }
        r = token_stamp(b->tok);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(b);
        return 0;
}

int binding_prepare(const struct binding_opts *o, struct secret **ret_secret, struct binding **ret,
                    struct error *err) {
        _cleanup_(secret_freep) struct secret *secret = NULL;
        int r = unlock_secret_new(&secret);
        if (r < 0)
                return r;
        r = binding_prepare_secret(o, secret, ret, err);
        if (r < 0)
                return r;
        *ret_secret = TAKE_PTR(secret);
        return 0;
}

static void no_room_error(char *buf, size_t size, const char *path) {
        snprintf(buf, size,
                 "cannot store the vmcrypt token: the LUKS1 header of %s has no room for vmcrypt's "
                 "metadata area (%u KiB between the keyslots and the data, before its last 4 KiB; "
                 "qemu-img's LUKS1 images have none): make the volume again with room ('vmcrypt disk "
                 "decrypt', then 'vmcrypt disk encrypt --type luks1 --provider NAME', or cryptsetup "
                 "luksFormat --type luks1), or use LUKS2",
                 path, LUKS1_META_SIZE >> 10);
}

static const char *store_path(const struct binding *b, struct crypt_device *cd) {
        return b->header_path ? b->header_path
             : crypt_get_metadata_device_name(cd) ? crypt_get_metadata_device_name(cd)
                                                   : crypt_get_device_name(cd);
}

/* Before the token: a disk whose token exists but is not recorded could lose its
 * KEK when the KEK's other disks go; a record without a token only keeps a KEK. */
static int record_use(struct binding *b, struct crypt_device *cd, const char *path) {
        const char *uuid = crypt_get_uuid(cd);
        if (!uuid)
                return 0;
        provider_kek_place(b->header_path ? b->header_path : path, b->used_at, sizeof(b->used_at));
        int r = provider_kek_use(b->p, b->tok->kek_id, uuid, b->used_at);
        if (r < 0) {
                snprintf(b->error, sizeof(b->error), "%s", provider_error(b->p));
                b->fault = provider_fault(b->p);
                return r;
        }
        snprintf(b->used_by, sizeof(b->used_by), "%s", uuid);
        return 0;
}

int binding_header_hook(struct crypt_device *cd, int keyslot, void *userdata) {
        struct binding *b = userdata;
        b->tok->keyslot = keyslot;
        const char *path = store_path(b, cd);
        if (token_store_can_add(cd, path) == -ENOSPC && strcmp(crypt_get_type(cd), CRYPT_LUKS1) == 0) {
                no_room_error(b->error, sizeof(b->error), path);
                return -ENOSPC;
        }
        int r = record_use(b, cd, path);
        if (r < 0)
                return r;
        r = token_store_add(cd, path, b->tok);
        if (r == -ENOSPC && strcmp(crypt_get_type(cd), CRYPT_LUKS1) == 0) {
                no_room_error(b->error, sizeof(b->error), path);
                return r;
        }
        if (r < 0) {
                snprintf(b->error, sizeof(b->error), "cannot store the vmcrypt token: %s", strerror(-r));
                return r;
        }
        b->token_id = r;
        return 0;
}

int binding_attach(struct crypt_device *cd, const struct binding_opts *o, const struct secret *passphrase,
                   char *ret_kek, size_t kek_size, struct error *err) {
        _cleanup_(binding_freep) struct binding *b = NULL;
        _cleanup_(secret_freep) struct secret *secret = NULL;
        /* A LUKS1 header without room for the token: refuse before a KEK is made
         * on the KMS or a keyslot added, so that the refusal changes nothing. */
        const char *path = o->header_path ? o->header_path : crypt_get_device_name(cd);
        if (token_store_can_add(cd, path) == -ENOSPC) {
                char text[sizeof(err->text)];
                no_room_error(text, sizeof(text), path);
                return error_set(err, -ENOSPC, "%s", text);
        }
        int r = binding_prepare(o, &secret, &b, err);
        if (r < 0)
                return r;
        r = binding_set_minimal_pbkdf(cd);
        int slot = r < 0 ? r
                         : crypt_keyslot_add_by_passphrase(cd, CRYPT_ANY_SLOT, (const char *) passphrase->data,
                                                           passphrase->size, (const char *) secret->data, secret->size);
        if (r < 0)
                (void) error_set(err, r, "%s", "cannot select PBKDF2 for the new keyslot");
        else if (slot == -EPERM)
                r = error_set(err, -EKEYREJECTED, "%s", "the passphrase opens no keyslot of this volume");
        else if (slot < 0)
                r = error_set(err, slot, "%s", "cannot add a keyslot (is a keyslot free?)");
        else if ((r = binding_header_hook(cd, slot, b)) < 0) {
                /* Roll back: a keyslot nobody can open is clutter, and a limit. */
                (void) crypt_keyslot_destroy(cd, slot);
                (void) error_set_fault(err, b->fault, r, "%s", b->error);
        }
        if (r < 0) {
                /* The KEK made for this binding wraps nothing anyone keeps. */
                (void) binding_abandon(b);
                return r;
        }
        if (ret_kek && kek_size)
                snprintf(ret_kek, kek_size, "%s", binding_kek_id(b));
        return slot;
}
