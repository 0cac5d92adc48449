/* `--provider` for vmcrypt disk encrypt|format|create: the new disk's keyslot is
 * opened by a fresh unlock secret wrapped by a KEK of the key provider, and the
 * engine's header hook stores the wrapped secret in the disk's vmcrypt token.
 * A disk job is one per process, so the binding lives here until the job ends. */
#include <errno.h>
#include <stdio.h>

#include "cli/cli.h"
#include "cli/disk-common.h"
#include "keys/binding.h"
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
