/* `--provider` for vmcrypt disk encrypt|format|create: the new disk's keyslot is
 * opened by a fresh unlock secret wrapped by a KEK of the key provider, and the
 * engine's header hook stores the wrapped secret in the disk's vmcrypt token.
 * A disk job is one per process, so the binding lives here until the job ends. */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/disk-common.h"
#include "keys/binding.h"
#include "keys/unlock.h"
#include "shared/log.h"

static struct binding *current;

static void release(void) {
        binding_free(current);
        current = NULL;
}

int disk_provider_get_key(const struct disk_opts *o, const char *target, struct secret **ret,
                          enum engine_kdf *ret_kdf) {
        const struct binding_opts bo = {
                .providers_path = o->providers,
                .provider = o->provider,
                .kek_id = o->kek,
                .vm_name = o->vm_name,
                .vm_uuid = o->vm_uuid,
                .header_path = o->header ? o->header : target,
        };
        char err[1024] = "";
        release();
        int r = binding_prepare(&bo, ret, &current, err, sizeof(err));
        if (r < 0) {
                log_error("cannot prepare the key for %s: %s", target, err);
                return cli_exit_code(r);
        }
        atexit(release);
        /* The secret has full entropy: PBKDF2 with minimal iterations. */
        *ret_kdf = ENGINE_KDF_MINIMAL;
        log_info("unlock secret wrapped under KEK %s of provider \"%s\"", binding_kek_id(current),
                 o->provider ? o->provider : "(default)");
        return -1;
}

int disk_provider_hook(struct crypt_device *cd, int keyslot, void *userdata) {
        (void) userdata;
        if (!current)
                return -EINVAL;
        int r = binding_header_hook(cd, keyslot, current);
        if (r < 0)
                log_error("%s", binding_error(current));
        return r;
}

int disk_provider_unlock_key(const struct disk_opts *o, const char *target, struct secret **ret) {
        const char *header_path = o->header ? o->header : target;
        char err[1024] = "";
        struct crypt_device *cd = NULL;
        _cleanup_(closep) int memfd = -EBADF;
        /* During an interrupted job the header on the disk is hidden; its copy in the
         * job area carries the same tokens. Neither: not a LUKS volume, so the caller
         * asks for the key another way. */
        if (unlock_load(target, o->header, &cd, err, sizeof(err)) < 0 &&
            engine_job_header(target, o->header, NULL, &cd, &memfd) < 0)
                return -2;
        _cleanup_(token_list_freep) struct token_list *l = NULL;
        int r = token_store_list(cd, header_path, &l);
        if (r >= 0 && l->n == 0) {
                crypt_free(cd);
                return -2;
        }

        _cleanup_(unlocker_freep) struct unlocker *u = NULL;
        r = unlocker_new(o->providers, &u, err, sizeof(err));
        if (r < 0) {
                crypt_free(cd);
                log_error("%s is bound to a key provider, but the providers cannot be loaded: %s", target, err);
                return cli_exit_code(r);
        }
        struct unlock_result res = { .keyslot = -1, .token_id = -1 };
        r = unlocker_unlock_cd(u, cd, header_path, ret, &res, err, sizeof(err));
        crypt_free(cd);
        token_free(res.token);
        if (r < 0) {
                log_error("cannot unlock %s through its key provider: %s", target, err);
                return cli_exit_code(r);
        }
        log_info("unlock secret released by the key provider (keyslot %d)", res.keyslot);
        return -1;
}

/* A LUKS1 volume keeps its vmcrypt token beside the image; once the disk is plain
 * again that wrapped secret opens nothing and only misleads, so it goes too. */
void disk_drop_sidecar(const char *header_path) {
        _cleanup_(freep) char *sidecar = token_sidecar_path(header_path);
        if (sidecar && unlink(sidecar) == 0)
                log_info("removed %s (the vmcrypt metadata of the LUKS1 volume)", sidecar);
}
