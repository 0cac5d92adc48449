/* Shallow rekey and recovery keys: see rekey.h. */
#include "keys/rekey.h"

#include <errno.h>
#include <limits.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys/binding.h"
#include "keys/provider.h"
#include "keys/unlock.h"
#include "shared/log.h"

static void crypt_freep(struct crypt_device **cd) {
        crypt_free(*cd);
}

/* Remove every vmcrypt token that opens keyslot except keep_id: after a rekey they
 * are stale, including leftovers of an earlier interrupted rekey. */
static int drop_tokens_for(struct crypt_device *cd, const char *header_path, int keyslot, int keep_id) {
        _cleanup_(token_list_freep) struct token_list *l = NULL;
        int r = token_store_list(cd, header_path, &l);
        if (r < 0)
                return r;
        for (size_t i = 0; i < l->n; i++) {
                if (l->e[i].id == keep_id || !l->e[i].tok || l->e[i].tok->keyslot != keyslot)
                        continue;
                r = token_store_remove(cd, header_path, l->e[i].id);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int free_keyslot(struct crypt_device *cd) {
        int max = crypt_keyslot_max(crypt_get_type(cd));
        for (int k = 0; k < max; k++)
                if (crypt_keyslot_status(cd, k) == CRYPT_SLOT_INACTIVE)
                        return k;
        return -ENOSPC;
}

static bool slot_active(struct crypt_device *cd, int slot) {
        crypt_keyslot_info st = crypt_keyslot_status(cd, slot);
        return st == CRYPT_SLOT_ACTIVE || st == CRYPT_SLOT_ACTIVE_LAST;
}

/* Finish what an interrupted `rekey --secret` left: of the two keyslots of the
 * rotation, keep the one we just unlocked with (proven to work) and remove the
 * other with its tokens. When we unlocked through some other binding, only a
 * keyslot without any token is removed. */
static int finish_interrupted(struct crypt_device *cd, const char *header_path, int in_use) {
        int from, to;
        int r = token_store_get_pending(cd, header_path, &from, &to);
        if (r == -ENOENT)
                return 0;
        if (r == -EBADMSG)
                return token_store_clear_pending(cd, header_path);
        if (r < 0)
                return r;
        int drop = in_use == from ? to : in_use == to ? from : -1;
        if (drop < 0) {
                _cleanup_(token_list_freep) struct token_list *l = NULL;
                r = token_store_list(cd, header_path, &l);
                if (r < 0)
                        return r;
                bool named = false;
                for (size_t i = 0; i < l->n; i++)
                        if (l->e[i].tok && l->e[i].tok->keyslot == to)
                                named = true;
                drop = named ? -1 : to;
        }
        if (drop >= 0 && drop != in_use) {
                log_debug("finishing an interrupted rekey: removing keyslot %d", drop);
                r = drop_tokens_for(cd, header_path, drop, -1);
                if (r < 0)
                        return r;
                if (slot_active(cd, drop) && (r = crypt_keyslot_destroy(cd, drop)) < 0)
                        return r;
        }
        return token_store_clear_pending(cd, header_path);
}

int keys_rekey(const struct rekey_opts *o, struct rekey_result *ret, struct error *err) {
        _cleanup_(unlocker_freep) struct unlocker *u = NULL;
        int r = unlocker_new(o->providers_path, &u, err);
        if (r < 0)
                return r;
        _cleanup_(change_lock_release) struct change_lock lock = CHANGE_LOCK_INIT;
        _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
        r = unlock_load_for_change(o->image, o->header, &lock, &cd, err);
        if (r < 0)
                return r;
        const char *hp = o->header ? o->header : o->image;
        _cleanup_(secret_freep) struct secret *secret = NULL;
        struct unlock_result cur = { 0 };
        struct error inner = { 0 };
        r = unlocker_unlock_cd(u, cd, hp, &secret, &cur, &inner);
        if (r < 0)
                return error_wrap(err, &inner, r, "cannot unlock %s with its current token, so it cannot be "
                                  "rekeyed: %s", o->image, inner.text);
        _cleanup_(token_freep) struct vmcrypt_token *old = cur.token;

        const struct binding_opts bo = {
                .providers_path = o->providers_path,
                .provider = o->provider ? o->provider : old->provider,
                .kek_id = o->kek_id,
                .vm_name = old->vm_name,
                .vm_uuid = old->vm_uuid,
                .header_path = hp,
        };
        _cleanup_(secret_freep) struct secret *fresh = NULL;
        if (o->rotate_secret && (r = unlock_secret_new(&fresh)) < 0)
                return r;
        _cleanup_(binding_freep) struct binding *b = NULL;
        r = binding_prepare_secret(&bo, fresh ? fresh : secret, &b, err);
        if (r < 0)
                return r;

        r = finish_interrupted(cd, hp, cur.keyslot);
        if (r < 0)
                return error_set(err, r, "cannot clean up after an interrupted rekey of %s: %s", o->image,
                            strerror(-r));
        int slot = cur.keyslot;
        if (o->rotate_secret) {
                r = binding_set_minimal_pbkdf(cd);
                if (r < 0)
                        return error_set(err, r, "cannot select PBKDF2 for the new keyslot");
                slot = free_keyslot(cd);
                if (slot < 0)
                        return error_set(err, slot, "%s has no free keyslot for the new secret", o->image);
                /* Step 1: mark the rotation, then add the keyslot. After a crash the
                 * marker says which two keyslots were involved. */
                r = token_store_set_pending(cd, hp, cur.keyslot, slot);
                if (r < 0)
                        return error_set(err, r, "cannot record the pending keyslot: %s", strerror(-r));
                r = crypt_keyslot_add_by_passphrase(cd, slot, (const char *) secret->data, secret->size,
                                                    (const char *) fresh->data, fresh->size);
                if (r < 0) {
                        (void) token_store_clear_pending(cd, hp);
                        return error_set(err, r, "cannot add keyslot %d for the new secret: %s", slot, strerror(-r));
                }
        }
        /* Step 2: the new token. Until it is committed the old token still works. */
        r = binding_header_hook(cd, slot, b);
        if (r < 0) {
                (void) binding_abandon(b);
                if (o->rotate_secret) {
                        (void) crypt_keyslot_destroy(cd, slot);
                        (void) token_store_clear_pending(cd, hp);
                }
                return error_set(err, r, "%s; %s is unchanged", binding_error(b), o->image);
        }
        int new_token = binding_token_id(b);
        /* Step 3: retire the old token(s); the new one already works. */
        r = drop_tokens_for(cd, hp, cur.keyslot, new_token);
        if (r < 0)
                return error_set(err, r, "the new token %d is in place, but the old one could not be removed: %s",
                            new_token, strerror(-r));
        /* Step 4: the old keyslot goes last; its secret is no longer stored anywhere. */
        if (o->rotate_secret) {
                r = crypt_keyslot_destroy(cd, cur.keyslot);
                if (r < 0)
                        return error_set(err, r, "the new keyslot %d works, but old keyslot %d could not be removed: %s",
                                    slot, cur.keyslot, strerror(-r));
                r = token_store_clear_pending(cd, hp);
                if (r < 0)
                        return error_set(err, r, "rekeyed, but the transition marker could not be removed: %s",
                                    strerror(-r));
        }
        /* Last: the old KEK may now be unused. The disk is rekeyed whatever the
         * provider answers; the result says what became of the old KEK. */
        bool same_kek = strcmp(old->kek_id, binding_kek_id(b)) == 0 &&
                        bo.provider && strcmp(old->provider, bo.provider) == 0;
        struct kek_release rel = { 0 };
        if (!same_kek && crypt_get_uuid(cd))
                (void) keys_kek_release(o->providers_path, old->provider, old->kek_id, crypt_get_uuid(cd), hp, &rel);
        if (ret) {
                ret->old_release = rel;
                ret->released = !same_kek && crypt_get_uuid(cd);
                snprintf(ret->old_kek, sizeof(ret->old_kek), "%s", old->kek_id);
                snprintf(ret->new_kek, sizeof(ret->new_kek), "%s", binding_kek_id(b));
                ret->old_keyslot = cur.keyslot;
                ret->new_keyslot = slot;
                ret->old_token = cur.token_id;
                ret->new_token = new_token;
        }
        return 0;
}

int recovery_passphrase_new(struct secret **ret) {
        static const char alphabet[] = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"; /* 32: no 0/O, 1/I */
        _cleanup_(secret_freep) struct secret *rnd = NULL;
        int r = secret_new_random(RECOVERY_GROUPS * RECOVERY_GROUP_LEN, &rnd);
        if (r < 0)
                return r;
        _cleanup_(secret_freep) struct secret *p = secret_new(RECOVERY_TEXT_LEN);
        if (!p)
                return -ENOMEM;
        size_t k = 0;
        for (size_t g = 0; g < RECOVERY_GROUPS; g++) {
                if (g)
                        p->data[k++] = '-';
                for (size_t i = 0; i < RECOVERY_GROUP_LEN; i++)
                        /* 256 is a multiple of 32: no modulo bias. */
                        p->data[k++] = (uint8_t) alphabet[rnd->data[g * RECOVERY_GROUP_LEN + i] % 32];
        }
        *ret = TAKE_PTR(p);
        return 0;
}

int keys_recovery_add(const struct recovery_opts *o, struct secret **ret_passphrase, struct error *err) {
        _cleanup_(unlocker_freep) struct unlocker *u = NULL;
        int r = unlocker_new(o->providers_path, &u, err);
        if (r < 0)
                return r;
        _cleanup_(change_lock_release) struct change_lock lock = CHANGE_LOCK_INIT;
        _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
        r = unlock_load_for_change(o->image, o->header, &lock, &cd, err);
        if (r < 0)
                return r;
        _cleanup_(secret_freep) struct secret *secret = NULL;
        struct unlock_result cur = { 0 };
        struct error inner = { 0 };
        r = unlocker_unlock_cd(u, cd, o->header ? o->header : o->image, &secret, &cur, &inner);
        token_free(cur.token);
        if (r < 0)
                return error_wrap(err, &inner, r, "cannot unlock %s through its key provider: %s", o->image,
                                  inner.text);

        _cleanup_(secret_freep) struct secret *pass = NULL;
        r = recovery_passphrase_new(&pass);
        if (r < 0)
                return r;
        /* A typed passphrase needs a slow, memory-hard KDF (LUKS1 has only PBKDF2). */
        int luks2 = strcmp(crypt_get_type(cd), CRYPT_LUKS2) == 0;
        struct crypt_pbkdf_type pbkdf = {
                .type = luks2 ? CRYPT_KDF_ARGON2ID : CRYPT_KDF_PBKDF2,
                .hash = "sha256",
                .time_ms = o->iter_time_ms ? o->iter_time_ms : 2000,
                .max_memory_kb = luks2 ? (o->pbkdf_memory_kib ? o->pbkdf_memory_kib : 1048576) : 0,
                .parallel_threads = luks2 ? 4 : 0,
        };
        r = crypt_set_pbkdf_type(cd, &pbkdf);
        if (r < 0)
                return error_set(err, r, "cannot select the recovery keyslot's KDF: %s", strerror(-r));
        int slot = crypt_keyslot_add_by_passphrase(cd, CRYPT_ANY_SLOT, (const char *) secret->data, secret->size,
                                                   (const char *) pass->data, pass->size);
        if (slot < 0)
                return error_set(err, slot, "cannot add the recovery keyslot: %s", strerror(-slot));
        *ret_passphrase = TAKE_PTR(pass);
        return slot;
}

/* A passphrase from a file or a pipe usually ends with the newline echo or an
 * editor added; cryptsetup's own prompt never passes one. Try it as given, then
 * without one trailing newline. Returns the keyslot it opens, or -EPERM. */
static int try_passphrase(struct crypt_device *cd, const struct secret *pass, size_t *ret_len) {
        size_t n = pass->size;
        int r = crypt_activate_by_passphrase(cd, NULL, CRYPT_ANY_SLOT, (const char *) pass->data, n, 0);
        if (r == -EPERM && n > 1 && pass->data[n - 1] == '\n') {
                n -= n > 2 && pass->data[n - 2] == '\r' ? 2 : 1;
                r = crypt_activate_by_passphrase(cd, NULL, CRYPT_ANY_SLOT, (const char *) pass->data, n, 0);
        }
        *ret_len = n;
        return r;
}

/* Remove the tokens (and keyslots nobody else uses) whose KEK is revoked or
 * destroyed, except keep_id. Other failures (a key server away, another identity)
 * prove nothing and leave the token alone. */
static int drop_dead_tokens(struct crypt_device *cd, const char *hp, const char *providers_path, int keep_id,
                            struct bind_result *ret) {
        struct error err = { 0 };
        _cleanup_(unlocker_freep) struct unlocker *u = NULL;
        if (unlocker_new(providers_path, &u, &err) < 0)
                return 0;
        _cleanup_(token_list_freep) struct token_list *l = NULL;
        int r = token_store_list(cd, hp, &l);
        if (r < 0)
                return r;
        for (size_t i = 0; i < l->n; i++) {
                struct token_entry *e = &l->e[i];
                if (e->id == keep_id || !e->tok)
                        continue;
                struct provider *p = unlocker_provider(u, e->tok->provider, &err);
                _cleanup_(secret_freep) struct secret *s = NULL;
                if (!p || !unlock_error_is_dead(provider_unwrap(p, e->tok, &s)))
                        continue;
                int slot = e->tok->keyslot;
                bool shared = false;
                for (size_t k = 0; k < l->n; k++)
                        if (k != i && l->e[k].tok && l->e[k].tok->keyslot == slot && l->e[k].id != e->id)
                                shared = true;
                if ((r = token_store_remove(cd, hp, e->id)) < 0)
                        return r;
                if (!shared && slot_active(cd, slot) && (r = crypt_keyslot_destroy(cd, slot)) < 0)
                        return r;
                if (ret->n_replaced < ELEMENTSOF(ret->replaced))
                        ret->replaced[ret->n_replaced++] = e->id;
        }
        return 0;
}

int keys_bind(const struct bind_opts *o, const struct secret *passphrase, struct bind_result *ret,
              struct error *err) {
        _cleanup_(change_lock_release) struct change_lock lock = CHANGE_LOCK_INIT;
        _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
        int r = unlock_load_for_change(o->image, o->header, &lock, &cd, err);
        if (r < 0)
                return r;
        const char *hp = o->header ? o->header : o->image;
        *ret = (struct bind_result) { .keyslot = -1 };
        size_t len;
        r = try_passphrase(cd, passphrase, &len);
        if (r == -EPERM)
                return error_set(err, -EKEYREJECTED, "the passphrase opens no keyslot of %s (tried as given and "
                            "without a trailing newline)", o->image);
        if (r < 0)
                return error_set(err, r, "cannot test the passphrase on %s: %s", o->image, strerror(-r));
        ret->newline_dropped = len != passphrase->size;
        _cleanup_(secret_freep) struct secret *pass = secret_new_copy(passphrase->data, len);
        if (!pass)
                return -ENOMEM;
        const struct binding_opts bo = {
                .providers_path = o->providers_path,
                .provider = o->provider,
                .kek_id = o->kek_id,
                .vm_name = o->vm_name,
                .vm_uuid = o->vm_uuid,
                .header_path = hp,
        };
        int slot = binding_attach(cd, &bo, pass, ret->kek, sizeof(ret->kek), err);
        if (slot < 0)
                return slot;
        ret->keyslot = slot;
        _cleanup_(token_list_freep) struct token_list *l = NULL;
        int keep = -1;
        if (token_store_list(cd, hp, &l) >= 0)
                for (size_t i = 0; i < l->n; i++)
                        if (l->e[i].tok && l->e[i].tok->keyslot == slot)
                                keep = l->e[i].id;
        r = drop_dead_tokens(cd, hp, o->providers_path, keep, ret);
        if (r < 0)
                return error_set(err, r, "bound (keyslot %d), but a dead token could not be removed: %s", slot,
                            strerror(-r));
        return 0;
}

int keys_unbind(const char *providers_path, const char *image, const char *header, int id, struct unbind_result *ret,
                struct error *err) {
        *ret = (struct unbind_result) { 0 };
        _cleanup_(change_lock_release) struct change_lock lock = CHANGE_LOCK_INIT;
        _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
        int r = unlock_load_for_change(image, header, &lock, &cd, err);
        if (r < 0)
                return r;
        const char *hp = header ? header : image;
        _cleanup_(token_list_freep) struct token_list *l = NULL;
        if ((r = token_store_list(cd, hp, &l)) < 0)
                return error_set(err, r, "cannot read the tokens of %s: %s", image, strerror(-r));
        const struct token_entry *t = NULL;
        for (size_t i = 0; i < l->n; i++)
                if (l->e[i].id == id)
                        t = &l->e[i];
        if (!t)
                return error_set(err, -ENOENT, "%s has no vmcrypt token %d ('vmcrypt disk status' lists them)", image, id);
        int slot = t->tok ? t->tok->keyslot : -1;
        for (size_t i = 0; i < l->n; i++)
                if (&l->e[i] != t && l->e[i].tok && l->e[i].tok->keyslot == slot)
                        slot = -1; /* another token still opens it */
        int max = crypt_keyslot_max(crypt_get_type(cd)), others = 0;
        for (int k = 0; k < max; k++)
                if (k != slot && slot_active(cd, k))
                        others++;
        if (slot >= 0 && others == 0)
                return error_set(err, -EBUSY, "keyslot %d is the last way into %s: add a recovery passphrase "
                            "('vmcrypt disk recovery-key add') or another binding before removing token %d",
                            slot, image, id);
        snprintf(ret->kek, sizeof(ret->kek), "%s", t->tok && t->tok->kek_id ? t->tok->kek_id : "");
        _cleanup_(freep) char *provider = t->tok && t->tok->provider ? strdup(t->tok->provider) : NULL;
        /* Token first: a keyslot without a token is still a way in for whoever
         * has its secret, a token without a keyslot would mislead. */
        if ((r = token_store_remove(cd, hp, id)) < 0)
                return error_set(err, r, "cannot remove token %d: %s", id, strerror(-r));
        if (slot >= 0 && slot_active(cd, slot) && (r = crypt_keyslot_destroy(cd, slot)) < 0)
                return error_set(err, r, "token %d removed, but keyslot %d could not be: %s", id, slot, strerror(-r));
        ret->keyslot_removed = slot >= 0;
        /* Another token of this disk under the same KEK still uses it. */
        bool kek_still_used = false;
        for (size_t i = 0; i < l->n; i++)
                if (&l->e[i] != t && l->e[i].tok && l->e[i].tok->kek_id && ret->kek[0] &&
                    strcmp(l->e[i].tok->kek_id, ret->kek) == 0)
                        kek_still_used = true;
        if (provider && ret->kek[0] && !kek_still_used && crypt_get_uuid(cd)) {
                ret->released = true;
                (void) keys_kek_release(providers_path, provider, ret->kek, crypt_get_uuid(cd), hp, &ret->release);
        }
        return 0;
}

int keys_kek_release(const char *providers_path, const char *provider, const char *kek_id, const char *disk,
                     const char *path, struct kek_release *ret) {
        *ret = (struct kek_release) { 0 };
        snprintf(ret->provider, sizeof(ret->provider), "%s", provider ? provider : "");
        snprintf(ret->kek, sizeof(ret->kek), "%s", kek_id);
        _cleanup_(provider_configs_freep) struct provider_configs *cs = NULL;
        struct error e = { 0 };
        int r = provider_config_load(providers_path, &cs, &e);
        _cleanup_(provider_freep) struct provider *p = NULL;
        if (r >= 0)
                r = provider_open_by_name(cs, provider, &p, &e);
        snprintf(ret->text, sizeof(ret->text), "%.*s", (int) sizeof(ret->text) - 1, e.text);
        if (r == -EOPNOTSUPP)
                snprintf(ret->text, sizeof(ret->text), "this vmcrypt was built without KMIP support");
        if (r < 0)
                return ret->error = r;
        struct kek_usage u;
        char place[PATH_MAX + 300];
        provider_kek_place(path, place, sizeof(place));
        r = provider_kek_unuse(p, kek_id, disk, place, &u);
        if (r < 0) {
                snprintf(ret->text, sizeof(ret->text), "%s", provider_error(p));
                return ret->error = r;
        }
        ret->tracked = u.tracked;
        ret->users = u.users;
        snprintf(ret->elsewhere, sizeof(ret->elsewhere), "%s", u.elsewhere);
        /* Not found: this disk was never recorded (a copy of a recorded image, or
         * an image moved since): its release cannot speak for the others. */
        if (u.gone || !u.tracked || !u.found || u.users > 0)
                return 0;
        r = provider_kek_retire(p, kek_id);
        if (r < 0) {
                snprintf(ret->text, sizeof(ret->text), "%s", provider_error(p));
                return ret->error = r;
        }
        ret->retired = true;
        return 0;
}

int keys_kek_report(const char *providers_path, const char *provider, char *const *images, size_t n_images,
                    struct kek_info **ret, size_t *ret_n, struct error *err) {
        _cleanup_(provider_configs_freep) struct provider_configs *cs = NULL;
        int r = provider_config_load(providers_path, &cs, err);
        if (r < 0)
                return r;
        _cleanup_(provider_freep) struct provider *p = NULL;
        if ((r = provider_open_by_name(cs, provider, &p, err)) < 0)
                return r;
        struct kek_info *v = NULL;
        size_t n = 0;
        if ((r = provider_kek_list(p, &v, &n)) < 0)
                return provider_error_set(err, p, r);
        for (size_t i = 0; i < n_images; i++) {
                _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
                struct error e = { 0 };
                if (unlock_load(images[i], NULL, &cd, &e) < 0)
                        continue; /* plain or unreadable: it uses no KEK */
                _cleanup_(token_list_freep) struct token_list *l = NULL;
                if (token_store_list(cd, images[i], &l) < 0)
                        continue;
                for (size_t t = 0; t < l->n; t++)
                        for (size_t k = 0; k < n; k++)
                                if (l->e[t].tok && l->e[t].tok->kek_id && strcmp(l->e[t].tok->kek_id, v[k].id) == 0 &&
                                    strcmp(l->e[t].tok->provider, p->config->name) == 0)
                                        v[k].disks++;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}
