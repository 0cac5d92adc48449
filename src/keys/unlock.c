/* Unlocking bound disks: see unlock.h. */
#include "keys/unlock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "disk/meta-lock.h"
#include "keys/keyslot-check.h"
#include "keys/provider.h"
#include "shared/log.h"

struct unlocker {
        struct provider_configs *cs;
        struct provider *open[PROVIDER_MAX];
};

int unlocker_new(const char *providers_path, struct unlocker **ret, struct error *err) {
        struct unlocker *u = calloc(1, sizeof(*u));
        if (!u)
                return -ENOMEM;
        int r = provider_config_load(providers_path, &u->cs, err);
        if (r < 0) {
                free(u);
                return r;
        }
        *ret = u;
        return 0;
}

void unlocker_free(struct unlocker *u) {
        for (size_t i = 0; i < PROVIDER_MAX; i++)
                provider_free(u->open[i]);
        provider_configs_free(u->cs);
        free(u);
}

struct provider *unlocker_provider(struct unlocker *u, const char *name, struct error *err) {
        for (size_t i = 0; i < u->cs->n; i++) {
                if (strcmp(u->cs->p[i].name, name) != 0)
                        continue;
                if (!u->open[i]) {
                        int r = provider_open(&u->cs->p[i], &u->open[i]);
                        if (r < 0) {
                                (void) error_set(err, r, "cannot use key provider \"%s\": %s", name,
                                                 r == -EOPNOTSUPP ? "this vmcrypt was built without KMIP support"
                                                                  : strerror(-r));
                                return NULL;
                        }
                }
                return u->open[i];
        }
        (void) error_set(err, -ENOENT, "the disk's key provider \"%s\" is not in %s: add it (same KMS, same name) to "
                         "that file", name, u->cs->path ? u->cs->path : "the provider configuration");
        return NULL;
}

int unlock_load(const char *image, const char *header, struct crypt_device **ret, struct error *err) {
        struct crypt_device *cd = NULL;
        /* libcryptsetup says "block device required" for a missing file: say it plainly. */
        const char *paths[] = { image, header };
        for (size_t i = 0; i < 2; i++)
                if (paths[i] && access(paths[i], F_OK) < 0) {
                        return error_set(err, -errno, "%s: %s", paths[i], strerror(errno));
                }
        int r = header ? crypt_init_data_device(&cd, header, image) : crypt_init(&cd, image);
        if (r < 0) {
                return error_set(err, r, "cannot open %s: %s", header ? header : image, strerror(-r));
        }
        r = crypt_load(cd, NULL, NULL);
        if (r < 0) {
                crypt_free(cd);
                if (r == -EINVAL)
                        r = -ENODEV;
                return error_set(err, r, "%s is not a LUKS volume%s (or its header is damaged: %s)",
                         header ? header : image, header ? " header" : "", strerror(r == -ENODEV ? EINVAL : -r));
        }
        *ret = cd;
        return 0;
}

int change_lock_take(const char *image, const char *header, struct change_lock *ret, struct error *err) {
        struct change_lock l = CHANGE_LOCK_INIT;
        const char *paths[] = { image, header };
        for (size_t i = 0; i < 2; i++) {
                if (!paths[i])
                        continue;
                int r = disk_meta_lock(paths[i], &l.fd[i]);
                if (r < 0) {
                        change_lock_release(&l);
                        if (r == -EBUSY)
                                return error_set(err, r,
                                                 "%s is being changed by another vmcrypt command (a rekey, bind, "
                                                 "recovery key or data job): wait for it to finish and try again",
                                                 paths[i]);
                        return error_set(err, r, "cannot lock %s: %s", paths[i], strerror(-r));
                }
        }
        *ret = l;
        return 0;
}

void change_lock_release(struct change_lock *l) {
        for (size_t i = 0; i < 2; i++)
                if (l->fd[i] >= 0) {
                        close(l->fd[i]);
                        l->fd[i] = -1;
                }
}

int unlock_load_for_change(const char *image, const char *header, struct change_lock *lock, struct crypt_device **ret,
                           struct error *err) {
        int r = change_lock_take(image, header, lock, err);
        return r < 0 ? r : unlock_load(image, header, ret, err);
}

/* How telling a failure is, to choose which one to report when every token fails:
 * a specific KMS verdict beats "unreachable", which beats a damaged token. */
static int severity(int r) {
        switch (-r) {
        case EKEYREVOKED:
        case ENOKEY:
        case EIDRM:
        case EKEYEXPIRED:
        case EACCES:
        case EKEYREJECTED:
                return 3;
        case ENOENT:
                return 2;
        case EBADMSG:
                return 0;
        default:
                return 1;
        }
}

bool unlock_error_is_dead(int r) {
        /* Not -ENOENT: Item Not Found is also what another identity gets. */
        return r == -EKEYREVOKED || r == -EIDRM;
}

int unlocker_unlock_cd(struct unlocker *u, struct crypt_device *cd, const char *header_path,
                       struct secret **ret_secret, struct unlock_result *ret, struct error *err) {
        _cleanup_(token_list_freep) struct token_list *l = NULL;
        int r = token_store_list(cd, header_path, &l);
        if (r == -EBADMSG) {
                return error_set(err, r, "the vmcrypt metadata of %s is damaged (LUKS1: both copies of its metadata "
                         "area, or its sidecar file): restore it from a backup, or open the disk with its recovery "
                         "passphrase", header_path);
        }
        if (r < 0) {
                return error_set(err, r, "cannot read the tokens of %s: %s", header_path, strerror(-r));
        }
        if (l->n == 0) {
                return error_set(err, -ENOENT, "%s is not bound to a key provider (no vmcrypt token): bind it with "
                         "'vmcrypt disk bind --provider NAME' or open it with its passphrase", header_path);
        }
        int best = 0, best_fault = ERROR_FAULT_NONE;
        char best_msg[1024] = "";
        for (size_t i = 0; i < l->n; i++) {
                struct token_entry *e = &l->e[i];
                char msg[1024];
                int fr, fault = ERROR_FAULT_NONE;
                bool provider_said = false; /* the failure came from the key provider */
                if (!e->tok) {
                        fr = -EBADMSG;
                        snprintf(msg, sizeof(msg), "token %d of %s is damaged: restore the header from a backup "
                                 "(cryptsetup luksHeaderRestore) or open the disk with its recovery passphrase",
                                 e->id, header_path);
                } else {
                        struct error pe = { 0 };
                        struct provider *p = unlocker_provider(u, e->tok->provider, &pe);
                        if (!p)
                                snprintf(msg, sizeof(msg), "%s", pe.text);
                        _cleanup_(secret_freep) struct secret *s = NULL;
                        fr = p ? provider_unwrap(p, e->tok, &s) : -ENOENT;
                        if (p && fr < 0) {
                                snprintf(msg, sizeof(msg), "%s", provider_error(p));
                                fault = provider_fault(p);
                                provider_said = true;
                        }
                        if (fr >= 0) {
                                /* The keyslot check: a token copied from another disk, or a
                                 * KEK that is not this disk's, stops here. */
                                fr = keyslot_check(cd, e->tok->keyslot, s);
                                if (fr == -EOPNOTSUPP)
                                        fr = crypt_activate_by_passphrase(cd, NULL, e->tok->keyslot,
                                                                          (const char *) s->data, s->size, 0);
                                if (fr >= 0) {
                                        if (ret) {
                                                ret->keyslot = e->tok->keyslot;
                                                ret->token_id = e->id;
                                                ret->token = TAKE_PTR(e->tok);
                                        }
                                        *ret_secret = TAKE_PTR(s);
                                        return 0;
                                }
                                snprintf(msg, sizeof(msg), "the secret unwrapped with KEK %s does not open keyslot %d "
                                         "(%s): token %d belongs to another disk or keyslot",
                                         e->tok->kek_id, e->tok->keyslot, strerror(-fr), e->id);
                                fr = -EKEYREJECTED;
                        }
                }
                log_debug("token %d: %s", e->id, msg);
                if (ret && provider_said && unlock_error_is_dead(fr) && ret->n_dead < UNLOCK_MAX_DEAD) {
                        ret->dead[ret->n_dead].id = e->id;
                        ret->dead[ret->n_dead].keyslot = e->tok->keyslot;
                        ret->dead[ret->n_dead].error = fr;
                        snprintf(ret->dead[ret->n_dead].kek, sizeof(ret->dead[0].kek), "%s", e->tok->kek_id);
                        ret->n_dead++;
                }
                /* The most telling failure is the one to report, whatever its order. */
                if (i == 0 || severity(fr) > severity(best)) {
                        best = fr;
                        best_fault = fault;
                        snprintf(best_msg, sizeof(best_msg), "%s", msg);
                }
        }
        return error_set_fault(err, best_fault, best, "%s", best_msg);
}

/* A LUKS1 image bound by an older vmcrypt keeps its tokens in a sidecar file; the
 * first unlock that finds one moves them into the header (token_store_migrate), so
 * a copy of the image keeps its binding from then on. It is best effort: the
 * unlock has succeeded, and a busy volume (another vmcrypt command holds its lock)
 * or a header without room keeps the sidecar, which still works. */
static void migrate_sidecar(struct crypt_device *cd, const char *image) {
        struct change_lock lock = CHANGE_LOCK_INIT;
        struct error err = { 0 };
        if (change_lock_take(image, NULL, &lock, &err) < 0) {
                log_debug("%s", err.text);
                return;
        }
        int r = token_store_migrate(cd, image);
        if (r < 0)
                log_debug("%s: cannot move the vmcrypt sidecar into the LUKS1 header: %s", image, strerror(-r));
        else if (r > 0)
                log_debug("%s: vmcrypt sidecar moved into the LUKS1 header", image);
        change_lock_release(&lock);
}

int unlocker_unlock(struct unlocker *u, const char *image, const char *header, struct secret **ret_secret,
                    struct unlock_result *ret, struct error *err) {
        struct crypt_device *cd = NULL;
        int r = unlock_load(image, header, &cd, err);
        if (r < 0)
                return r;
        r = unlocker_unlock_cd(u, cd, header ? header : image, ret_secret, ret, err);
        if (r >= 0 && !header)
                migrate_sidecar(cd, image);
        crypt_free(cd);
        return r;
}
