/* A new KEK for a whole VM. The KEK is created first and recorded in the domain's
 * metadata, then each disk's unlock secret is re-wrapped under it (keys_rekey:
 * crash-safe per disk); the record goes when every disk is done. So the VM's KEK
 * is never a guess from disks that disagree: while the record exists, it names the
 * KEK a re-run moves the remaining disks to, and disks already under it are
 * skipped. A deep rekey gives each disk a new volume key before its re-wrap, so a
 * disk under the target KEK is a finished disk in both kinds. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disk/testpoint.h"
#include "keys/provider-config.h"
#include "keys/provider.h"
#include "keys/rekey.h"
#include "keys/unlock.h"
#include "shared/macro.h"
#include "vm/home.h"
#include "vm/vm-ops.h"
#include "vm/vtpm.h"
#include "volume/volume.h"

/* A new KEK at provider, tagged with the domain's name and UUID. */
static int new_kek(const struct vm_params *p, struct vm_op *op, const char *provider, char kek[static 256],
                   struct error *err) {
        _cleanup_(provider_configs_freep) struct provider_configs *cs = NULL;
        struct error e = { 0 };
        int r = provider_config_load(p->providers, &cs, &e);
        if (r < 0)
                return error_wrap(err, &e, r, "domain %s: %s", op->d.name, e.text);
        _cleanup_(provider_freep) struct provider *pv = NULL;
        r = provider_open_by_name(cs, provider, &pv, &e);
        if (r < 0)
                return error_wrap(err, &e, r, "domain %s: %s", op->d.name, e.text);
        const struct kek_attrs attrs = { .vm_name = op->d.name, .vm_uuid = op->d.uuid };
        _cleanup_(freep) char *id = NULL;
        r = provider_kek_create(pv, &attrs, &id);
        if (r < 0)
                return error_set_fault(err, provider_fault(pv), r, "domain %s: no new KEK at provider %s: %s",
                                       op->d.name, provider, provider_error(pv));
        if (strlen(id) >= 256)
                return error_set(err, -ENAMETOOLONG, "domain %s: provider %s made a KEK id too long to record",
                               op->d.name, provider);
        snprintf(kek, 256, "%s", id);
        return 0;
}

/* Choose the target KEK: the one recorded by an interrupted run, else a new one,
 * recorded before any disk moves to it. */
static int target_kek(const struct vm_params *p, struct vm_op *op, bool *deep, struct vm_result *res,
                      struct error *err) {
        struct vm_meta m = op->d.meta;
        if (m.rekey_kek[0]) {
                if (p->provider && strcmp(p->provider, m.rekey_provider) != 0)
                        return error_set(err, -EBUSY, "domain %s: an interrupted rekey to KEK %s at provider %s "
                                       "waits; run 'vmcrypt vm rekey %s' without --provider to finish it first",
                                       op->d.name, m.rekey_kek, m.rekey_provider, op->d.name);
                *deep = *deep || m.rekey_deep;
                res->resumed = true;
                snprintf(res->provider, sizeof res->provider, "%s", m.rekey_provider);
                snprintf(res->kek, sizeof res->kek, "%s", m.rekey_kek);
                return 0;
        }
        char provider[128], kek[256];
        if (!vm_op_vm_kek(op, provider, kek))
                return error_set(err, -EINVAL, "domain %s has no encrypted disk: nothing to rekey (vmcrypt vm encrypt "
                               "%s first)", op->d.name, op->d.name);
        if (p->provider)
                snprintf(provider, sizeof provider, "%s", p->provider);
        int r = new_kek(p, op, provider, kek, err);
        if (r < 0)
                return r;
        res->kek_created = true;
        snprintf(res->provider, sizeof res->provider, "%s", provider);
        snprintf(res->kek, sizeof res->kek, "%s", kek);
        snprintf(m.rekey_provider, sizeof m.rekey_provider, "%s", provider);
        snprintf(m.rekey_kek, sizeof m.rekey_kek, "%s", kek);
        m.rekey_deep = *deep;
        /* Not recorded: no disk uses the KEK, which stays as an orphan that
         * 'vmcrypt provider keks --orphans' lists. */
        return vm_op_set_meta(op, &m, err);
}

/* Whether every token of the disk names kek. A re-wrap killed half-way leaves
 * the new token beside the old one; such a disk is not done, and keys_rekey
 * cleans it up. */
static bool all_tokens_on(const char *path, const char *kek) {
        struct error e = { 0 };
        struct crypt_device *cd = NULL;
        if (unlock_load(path, NULL, &cd, &e) < 0)
                return false;
        _cleanup_(token_list_freep) struct token_list *l = NULL;
        bool all = token_store_list(cd, path, &l) >= 0 && l->n > 0;
        for (size_t i = 0; all && i < l->n; i++)
                all = l->e[i].tok && strcmp(l->e[i].tok->kek_id, kek) == 0;
        crypt_free(cd);
        return all;
}

/* One disk: a new volume key first (deep), then the re-wrap. */
static int rekey_disk(const struct vm_params *p, struct vm_op *op, struct vm_disk *k, bool deep,
                      struct vm_result *res, struct vm_disk_result *dr, struct error *err) {
        struct volume_params vp;
        struct volume_result vr;
        struct error ve;
        struct vm_progress_ctx ctx;
        vm_volume_params(p, k, &ctx, &vp);
        int r;
        if (k->state == VM_DISK_REENCRYPTING) {
                /* Only this command's deep rekey leaves such a job on a VM's disk
                 * that it then continues; anything else is someone else's job. */
                if (!deep)
                        return vm_refuse_disk(op, k, err);
                r = volume_resume(&vp, &vr, &ve);
                if (r < 0)
                        return vm_job_failed(op, k, "resuming the new volume key", r, &vr, &ve, err);
                vm_disk_read(k, VM_INV_KEYS);
        } else if (strcmp(k->kek, res->kek) == 0 && all_tokens_on(k->path, res->kek)) {
                dr->action = VM_ACTION_ALREADY;
                return 0;
        } else if (deep && strcmp(k->kek, res->kek) != 0) {
                r = volume_reencrypt(&vp, &vr, &ve);
                if (r < 0)
                        return vm_job_failed(op, k, "the new volume key", r, &vr, &ve, err);
        }
        if (strcmp(k->kek, res->kek) != 0 || !all_tokens_on(k->path, res->kek)) {
                struct rekey_opts o = {
                        .providers_path = p->providers,
                        .image = k->path,
                        .provider = res->provider,
                        .kek_id = res->kek,
                };
                struct rekey_result rr = { 0 };
                struct error e = { 0 };
                r = keys_rekey(&o, &rr, &e);
                if (r < 0)
                        return error_wrap(err, &e, r, "domain %s, disk %s (%s): re-wrapping its secret under KEK %s "
                                       "failed: "
                                       "%s; run the same vmcrypt vm rekey again to finish", op->d.name, k->target,
                                       k->path, res->kek, e.text);
                if (!res->old_kek[0])
                        snprintf(res->old_kek, sizeof res->old_kek, "%s", rr.old_kek);
                /* The key layer released the old KEK (retired with its last disk). */
                const struct kek_release *rel = &rr.old_release;
                if (rr.released && rel->error < 0)
                        snprintf(dr->note, sizeof dr->note, "old KEK %.80s could not be released: %.140s", rel->kek,
                                 rel->text);
                else if (rr.released && rel->retired)
                        snprintf(dr->note, sizeof dr->note, "old KEK %.80s retired (no disk uses it any more)",
                                 rel->kek);
        }
        dr->action = VM_ACTION_DONE;
        return 0;
}

int vm_rekey(const struct vm_params *p, bool deep, struct vm_result *res, struct error *err) {
        _cleanup_(vm_op_close) struct vm_op op = { 0 };
        int r = vm_op_open(p, &op, res, err);
        if (r >= 0)
                r = vm_op_require_off(&op, deep ? "a deep rekey" : "a rekey", err);
        if (r < 0)
                return r;
        /* Every disk is checked before the KEK is made: a disk that stops the
         * rekey should not leave a new KEK behind. */
        for (size_t i = 0; i < op.d.n_disks; i++) {
                const struct vm_disk *k = &op.d.disks[i];
                bool mine = k->state == VM_DISK_REENCRYPTING && op.d.meta.rekey_kek[0];
                if (k->state == VM_DISK_ENCRYPTING || k->state == VM_DISK_DECRYPTING ||
                    (k->state == VM_DISK_REENCRYPTING && !mine) ||
                    (k->state == VM_DISK_UNKNOWN && k->status_error != -EOPNOTSUPP))
                        return vm_refuse_disk(&op, k, err);
                if (k->state == VM_DISK_ENCRYPTED && !k->kek[0])
                        return error_set(err, -EINVAL, "domain %s, disk %s (%s): encrypted but bound to no key "
                                       "provider (no vmcrypt token): vm rekey re-wraps bound secrets only (vmcrypt "
                                       "disk bind)", op.d.name, k->target, k->path);
        }
        r = target_kek(p, &op, &deep, res, err);
        if (r < 0)
                return r;
        struct vm_params all = *p;
        all.volumes = VM_VOLUMES_ALL;
        for (size_t i = 0; i < op.d.n_disks && res->n < VM_MAX_DISKS; i++) {
                struct vm_disk *k = &op.d.disks[i];
                struct vm_disk_result *dr = vm_disk_row(&all, k, false, res);
                if (!dr)
                        continue;
                if (k->state == VM_DISK_PLAIN) {
                        snprintf(dr->note, sizeof dr->note, "plain: nothing to rekey");
                        continue;
                }
                r = rekey_disk(&all, &op, k, deep, res, dr, err);
                if (r < 0)
                        return r;
                testpoint("vm-rekey-disk-done");
        }
        /* The VM home after the disks: a UEFI VM's NVRAM is a LUKS1 file like a
         * disk, the vTPM's state secret is re-wrapped (its state stays as it is). */
        _cleanup_(vm_disk_clear) struct vm_disk nv = { 0 };
        r = vm_home_nvram(&op, &nv, err);
        if (r < 0)
                return r;
        if (nv.path && nv.state != VM_DISK_PLAIN && res->n < VM_MAX_DISKS) {
                struct vm_disk_result *dr = &res->disks[res->n++];
                snprintf(dr->target, sizeof dr->target, "nvram");
                snprintf(dr->path, sizeof dr->path, "%s", nv.path);
                if ((r = rekey_disk(&all, &op, &nv, deep, res, dr, err)) < 0)
                        return r;
        }
        if (res->n < VM_MAX_DISKS) {
                struct vm_disk_result *dr = &res->disks[res->n];
                *dr = (struct vm_disk_result) { 0 };
                if ((r = vm_vtpm_rekey(&op, p->providers, res->provider, res->kek, dr, err)) < 0)
                        return r;
                if (dr->target[0])
                        res->n++;
        }
        struct vm_meta m = op.d.meta;
        m.rekey_provider[0] = m.rekey_kek[0] = '\0';
        m.rekey_deep = false;
        return vm_op_set_meta(&op, &m, err);
}
