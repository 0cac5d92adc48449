/* Starting a VM whose disks vmcrypt encrypted. libvirt hands QEMU a disk's
 * passphrase from a libvirt secret named in the domain XML; vmcrypt makes each such
 * secret only for the start: ephemeral (never written to /etc/libvirt/secrets) and
 * private (no API reads it back), its value the disk's unlock secret as unwrapped
 * by the disk's key provider, and undefines it as soon as libvirt has started QEMU
 * (which then holds the key in its own memory). Everything is checked before the
 * first secret is made: a key server that refuses any disk means no start. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys/unlock.h"
#include "shared/macro.h"
#include "vm/vm-ops.h"
#include "vm/home.h"
#include "vm/vtpm.h"

/* Whether the disk is ready to be opened by QEMU; -errno with err naming the
 * mismatch otherwise. */
static int check_disk(const struct vm_op *op, const struct vm_disk *k, struct error *err) {
        const char *n = op->d.name;
        if (k->state == VM_DISK_ENCRYPTING || k->state == VM_DISK_DECRYPTING || k->state == VM_DISK_REENCRYPTING)
                return error_set(err, -EINPROGRESS, "domain %s, disk %s (%s): its %s job is in progress (%.1f%%); the "
                               "VM cannot start until it finishes (vmcrypt vm encrypt|decrypt %s, or vmcrypt disk "
                               "resume %s)", n, k->target, k->path, engine_operation_to_string(k->status.job),
                               vm_disk_percent(k), n, k->path);
        if (k->note[0] && (k->state == VM_DISK_PLAIN || !k->xml_encrypted))
                return error_set(err, -EUCLEAN, "domain %s, disk %s (%s): %s", n, k->target, k->path, k->note);
        if (k->xml_encrypted && k->state == VM_DISK_ENCRYPTED && !k->secret_uuid[0])
                return error_set(err, -EUCLEAN, "domain %s, disk %s: its <encryption> names no secret UUID", n,
                               k->target);
        return 0;
}

void vm_secrets_undefine(virSecretPtr *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (s[i]) {
                        (void) virSecretUndefine(s[i]);
                        virSecretFree(s[i]);
                        s[i] = NULL;
                }
}

int vm_secret_define(struct vm_op *op, const struct vm_disk *k, const struct secret *value, virSecretPtr *ret,
                         struct error *err) {
        char xml[PATH_MAX + 512];
        int n = snprintf(xml, sizeof xml,
                         "<secret ephemeral='yes' private='yes'><uuid>%s</uuid>"
                         "<description>vmcrypt: disk %s of %s, for one start</description>"
                         "<usage type='volume'><volume>%s</volume></usage></secret>",
                         k->secret_uuid, k->target, op->d.name, k->path);
        if (n < 0 || (size_t) n >= sizeof xml || strpbrk(k->path, "<>&'\""))
                return error_set(err, -EINVAL, "disk %s: path %s cannot go into a libvirt secret", k->target, k->path);
        virSecretPtr s = virSecretDefineXML(op->conn, xml, 0);
        if (!s)
                return error_set(err, vm_virt_errno(), "domain %s, disk %s: libvirt refused the secret %s: %s",
                               op->d.name, k->target, k->secret_uuid, vm_virt_text());
        if (virSecretSetValue(s, value->data, value->size, 0) < 0) {
                int r = error_set(err, vm_virt_errno(), "domain %s, disk %s: libvirt refused the value of secret %s: %s",
                                op->d.name, k->target, k->secret_uuid, vm_virt_text());
                (void) virSecretUndefine(s);
                virSecretFree(s);
                return r;
        }
        *ret = s;
        return 0;
}

int vm_start(const struct vm_params *p, struct vm_result *res, struct error *err) {
        _cleanup_(vm_op_close) struct vm_op op = { 0 };
        int r = vm_op_open(p, &op, res, err);
        if (r < 0)
                return r;
        if (op.d.active) {
                pid_t pid = vm_qemu_pid(op.d.uuid);
                return error_set(err, -EALREADY, "domain %s is %s already%s", op.d.name, op.d.state,
                               pid > 0 ? " (QEMU runs)" : "");
        }
        for (size_t i = 0; i < op.d.n_disks; i++) {
                r = check_disk(&op, &op.d.disks[i], err);
                if (r < 0)
                        return r;
        }
        _cleanup_(unlocker_freep) struct unlocker *u = NULL;
        virSecretPtr secrets[VM_MAX_DISKS] = { 0 };
        size_t n_secrets = 0;
        virSecretPtr vtpm = NULL, nvram = NULL;
        for (size_t i = 0; i < op.d.n_disks && res->n < VM_MAX_DISKS; i++) {
                struct vm_disk *k = &op.d.disks[i];
                if (!(k->xml_encrypted && k->state == VM_DISK_ENCRYPTED))
                        continue;
                struct vm_disk_result *dr = &res->disks[res->n++];
                snprintf(dr->target, sizeof dr->target, "%s", k->target);
                snprintf(dr->path, sizeof dr->path, "%s", k->path);
                struct error e = { 0 };
                if (!u && (r = unlocker_new(p->providers, &u, &e)) < 0) {
                        error_wrap(err, &e, r, "domain %s not started: %s", op.d.name, e.text);
                        goto fail;
                }
                _cleanup_(secret_freep) struct secret *s = NULL;
                struct unlock_result ur = { .keyslot = -1, .token_id = -1 };
                r = unlocker_unlock(u, k->path, NULL, &s, &ur, &e);
                token_free(ur.token);
                if (r < 0) {
                        error_wrap(err, &e, r, "domain %s not started: disk %s (%s), key provider %s, KEK %s: %s", op.d.name,
                                k->target, k->path, k->provider[0] ? k->provider : "(none)",
                                k->kek[0] ? k->kek : "(none)", e.text);
                        goto fail;
                }
                r = vm_secret_define(&op, k, s, &secrets[n_secrets], err);
                if (r < 0)
                        goto fail;
                n_secrets++;
                dr->action = VM_ACTION_UNLOCKED;
        }
        r = vm_vtpm_start_secret(&op, p->providers, &u, &vtpm, err);
        if (r >= 0)
                r = vm_home_start_secret(&op, p->providers, &u, res, &nvram, err);
        if (r < 0)
                goto fail;
        res->vtpm_unlocked = vtpm != NULL;
        if (virDomainCreate(op.dom) < 0) {
                r = error_set(err, vm_virt_errno(), "domain %s: libvirt could not start it: %s", op.d.name,
                            vm_virt_text());
                goto fail;
        }
        /* QEMU has the keys now (libvirt passed them at its start, encrypted with
         * QEMU's master key); the secrets are not needed to run. */
        vm_secrets_undefine(secrets, n_secrets);
        vm_vtpm_secret_drop(&vtpm);
        vm_vtpm_secret_drop(&nvram);
        res->qemu_pid = vm_qemu_pid(op.d.uuid);
        return 0;
fail:
        vm_secrets_undefine(secrets, n_secrets);
        vm_vtpm_secret_drop(&vtpm);
        vm_vtpm_secret_drop(&nvram);
        return r;
}

/* One disk of vm_check: its XML against the disk, then its key. */
static int check_one(struct vm_op *op, const struct vm_params *p, struct unlocker **u, const struct vm_disk *k,
                     struct vm_disk_result *dr, struct error *e) {
        int r = check_disk(op, k, e);
        if (r < 0)
                return r;
        if (!(k->xml_encrypted && k->state == VM_DISK_ENCRYPTED)) {
                snprintf(dr->note, sizeof dr->note, "%s", k->state == VM_DISK_PLAIN ? "not encrypted"
                                                          : vm_disk_state_name(k->state));
                return 0;
        }
        if (!*u && (r = unlocker_new(p->providers, u, e)) < 0)
                return r;
        _cleanup_(secret_freep) struct secret *s = NULL;
        struct unlock_result ur = { .keyslot = -1, .token_id = -1 };
        r = unlocker_unlock(*u, k->path, NULL, &s, &ur, e);
        if (r == 0) {
                dr->action = VM_ACTION_CHECKED;
                int n = snprintf(dr->note, sizeof dr->note, "key from provider %.64s (KEK %.128s) opens keyslot %d",
                                 ur.token ? ur.token->provider : k->provider, ur.token ? ur.token->kek_id : k->kek,
                                 ur.keyslot);
                if (ur.n_dead > 0 && n > 0 && (size_t) n < sizeof dr->note)
                        snprintf(dr->note + n, sizeof dr->note - (size_t) n, "; %u older token%s name a KEK that "
                                 "is gone (each unlock tries them first: 'vmcrypt disk rekey' drops them)", ur.n_dead,
                                 ur.n_dead > 1 ? "s" : "");
        }
        token_free(ur.token);
        return r;
}

int vm_check(const struct vm_params *p, struct vm_result *res, struct error *err) {
        _cleanup_(vm_op_close) struct vm_op op = { 0 };
        int r = vm_op_open(p, &op, res, err);
        if (r < 0)
                return r;
        op.check = true;
        _cleanup_(unlocker_freep) struct unlocker *u = NULL;
        int first = 0;
        for (size_t i = 0; i < op.d.n_disks && res->n < VM_MAX_DISKS; i++) {
                const struct vm_disk *k = &op.d.disks[i];
                struct vm_disk_result *dr = &res->disks[res->n++];
                snprintf(dr->target, sizeof dr->target, "%s", k->target);
                snprintf(dr->path, sizeof dr->path, "%s", k->path ? k->path : "");
                struct error e = { 0 };
                r = check_one(&op, p, &u, k, dr, &e);
                if (r == 0)
                        continue;
                dr->error = r;
                snprintf(dr->note, sizeof dr->note, "%.*s", (int) sizeof dr->note - 1, e.text);
                if (!first)
                        first = error_wrap(err, &e, r, "domain %s would not start: disk %s (%s), key provider %s, "
                                           "KEK %s: %s", op.d.name, k->target, dr->path,
                                           k->provider[0] ? k->provider : "(none)", k->kek[0] ? k->kek : "(none)",
                                           e.text);
        }
        /* The vTPM and the NVRAM: the same steps as a start, without secrets. */
        virSecretPtr none = NULL;
        struct error e = { 0 };
        r = vm_vtpm_start_secret(&op, p->providers, &u, &none, &e);
        res->vtpm_error = MIN(r, 0);
        res->vtpm_unlocked = r > 0;
        snprintf(res->vtpm_note, sizeof res->vtpm_note, "%.*s", (int) sizeof res->vtpm_note - 1, e.text);
        if (r < 0 && !first)
                first = error_wrap(err, &e, r, "%s", e.text);
        error_clear(&e);
        r = vm_home_start_secret(&op, p->providers, &u, res, &none, &e);
        if (r < 0 && res->n < VM_MAX_DISKS) {
                struct vm_disk_result *dr = &res->disks[res->n++];
                *dr = (struct vm_disk_result) { .error = r };
                snprintf(dr->target, sizeof dr->target, "nvram");
                snprintf(dr->note, sizeof dr->note, "%.*s", (int) sizeof dr->note - 1, e.text);
        }
        if (r < 0 && !first)
                first = error_wrap(err, &e, r, "%s", e.text);
        return first;
}
