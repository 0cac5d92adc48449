/* A VM's vTPM: libvirt runs swtpm for the domain and encrypts its state with the
 * value of a libvirt secret; vmcrypt makes that value (a random secret), wraps it
 * with the VM's KEK (the KEK of its encrypted disks, through their key provider)
 * and keeps only the wrapped form, in the domain XML (vtpm.h). The value exists in
 * libvirt only while `vm start` starts the domain, as the disks' secrets do.
 *
 * As in vSphere, only an encrypted VM gets a vTPM, and a VM with one is not
 * decrypted: its state would otherwise rest under a KEK that no disk needs, or
 * under none. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keys/binding.h"
#include "keys/provider.h"
#include "keys/rekey.h"
#include "shared/b64.h"
#include "shared/macro.h"
#include "vm/home.h"
#include "vm/vtpm.h"

static int read_xml(struct vm_op *op, unsigned flags, char **ret_xml, struct vm_vtpm_xml *x, struct error *err) {
        char *xml = virDomainGetXMLDesc(op->dom, VIR_DOMAIN_XML_INACTIVE | flags);
        if (!xml)
                return error_set(err, vm_virt_errno(), "domain %s: cannot read its XML: %s", op->d.name, vm_virt_text());
        int r = vm_xml_vtpm(xml, x);
        if (r < 0) {
                free(xml);
                return error_set(err, r, "domain %s: cannot parse its XML", op->d.name);
        }
        if (ret_xml)
                *ret_xml = xml;
        else
                free(xml);
        return 0;
}

/* A running domain's swtpm has the state open, and the definition is what the
 * next start uses: both commands work on a shut-off, persistent domain. */
static int require_off(struct vm_op *op, const char *what, struct error *err) {
        if (op->d.active) {
                pid_t pid = vm_qemu_pid(op->d.uuid);
                char p[48] = "";
                if (pid > 0)
                        snprintf(p, sizeof p, " (QEMU PID %d)", (int) pid);
                return error_set(err, -EBUSY, "domain %s is %s%s: %s works on the definition of a shut-off VM; "
                               "shut it down first (virsh shutdown %s)", op->d.name, op->d.state, p, what,
                               op->d.name);
        }
        if (!op->d.persistent)
                return error_set(err, -EINVAL, "domain %s is transient: its vTPM state would not outlive it; define it "
                               "first (virsh define)", op->d.name);
        return 0;
}

static void identity(const struct vm_op *op, struct vm_vtpm_result *res) {
        snprintf(res->name, sizeof res->name, "%s", op->d.name);
        snprintf(res->uuid, sizeof res->uuid, "%s", op->d.uuid);
}

/* The VM's KEK: that of the OS disk, else of the first disk that has one. Every
 * disk must be encrypted and wired (vm status says Encrypted). */
static int vm_kek(struct vm_op *op, struct vm_vtpm_result *res, struct error *err) {
        vm_summarize(&op->d);
        const struct vm_summary *s = &op->d.summary;
        for (size_t i = 0; i < op->d.n_disks; i++) {
                const struct vm_disk *k = &op->d.disks[i];
                if (k->note[0])
                        return error_set(err, -EUCLEAN, "domain %s, disk %s: %s; a vTPM is added to a VM whose disks "
                                       "are all encrypted", op->d.name, k->target, k->note);
        }
        if (s->os != VM_ENCRYPTED || (s->data != VM_ENCRYPTED && s->data != VM_NOT_MOUNTED))
                return error_set(err, -ENOKEY, "domain %s is not encrypted (OsVolumeEncrypted %s, "
                               "DataVolumesEncrypted %s): a vTPM is added only to a VM whose disks are encrypted, "
                               "and its state is encrypted with the same KEK; run 'vmcrypt vm encrypt %s' first",
                               op->d.name, vm_volume_status_name(s->os), vm_volume_status_name(s->data),
                               op->d.name);
        const struct vm_disk *pick = NULL;
        for (size_t i = 0; i < op->d.n_disks && !pick; i++)
                if (op->d.disks[i].os && op->d.disks[i].kek[0])
                        pick = &op->d.disks[i];
        for (size_t i = 0; i < op->d.n_disks && !pick; i++)
                if (op->d.disks[i].kek[0])
                        pick = &op->d.disks[i];
        if (!pick)
                return error_set(err, -ENOKEY, "domain %s: its disks are encrypted but none is bound to a key "
                               "provider (no vmcrypt binding): there is no VM KEK to wrap the vTPM secret; bind "
                               "them (vmcrypt disk bind) or encrypt with 'vmcrypt vm encrypt'", op->d.name);
        snprintf(res->provider, sizeof res->provider, "%s", pick->provider);
        snprintf(res->kek, sizeof res->kek, "%s", pick->kek);
        return 0;
}

/* The rest of the VM home first, as vSphere has it: a UEFI VM's NVRAM, once
 * libvirt has made it, must be encrypted too. */
static int require_home(struct vm_op *op, const char *xml, struct error *err) {
        _cleanup_(vm_disk_clear) struct vm_disk k = { 0 };
        if (vm_xml_nvram(xml, &k) <= 0 || !k.path)
                return 0;
        vm_disk_read(&k, 0);
        if (k.state != VM_DISK_PLAIN || k.status_error)
                return 0;
        return error_set(err, -ENOKEY, "domain %s: its NVRAM %s (part of the VM home) is not encrypted: a vTPM is "
                       "added to a VM whose home is encrypted; run 'vmcrypt vm encrypt %s' (all volumes) first",
                       op->d.name, k.path, op->d.name);
}

static int b64_field(const uint8_t *p, size_t n, char *out, size_t size) {
        out[0] = '\0';
        if (!n)
                return 0;
        _cleanup_(freep) char *s = b64_encode(p, n);
        if (!s)
                return -ENOMEM;
        if (strlen(s) >= size)
                return -E2BIG;
        memcpy(out, s, strlen(s) + 1);
        return 0;
}

/* Where libvirt keeps the state (its default on a system host): the vTPM's
 * place in its KEK's record of users. */
static void state_path(const char *domain_uuid, char *buf, size_t size) {
        snprintf(buf, size, "/var/lib/libvirt/swtpm/%s", domain_uuid);
}

/* Wrap the state secret s with KEK kek at provider prov into the record m (whose
 * secret_uuid is set). The KEK records the vTPM as one of its users first (as a
 * binding records its disk), so that it is not retired with the last disk that
 * leaves it. */
static int wrap_secret(struct vm_op *op, struct provider *prov, const char *provider, const char *kek,
                       const struct secret *s, struct vm_vtpm_meta *m, struct error *err) {
        _cleanup_(token_freep) struct vmcrypt_token *t = token_new();
        if (!t)
                return error_set(err, -ENOMEM, "out of memory");
        char path[128], place[PATH_MAX + 300];
        state_path(op->d.uuid, path, sizeof path);
        provider_kek_place(path, place, sizeof place);
        int r = provider_kek_use(prov, kek, m->secret_uuid, place);
        if (r < 0)
                return error_set_fault(err, provider_fault(prov), r, "domain %s: key provider %s would not record "
                               "the vTPM as a user of the VM's "
                               "KEK %s: %s; nothing was changed", op->d.name, provider, kek, provider_error(prov));
        r = provider_wrap(prov, kek, s, t);
        if (r < 0)
                return error_set_fault(err, provider_fault(prov), r, "domain %s: key provider %s could not wrap "
                               "the vTPM secret with the VM's KEK %s: %s", op->d.name, provider, kek, provider_error(prov));
        snprintf(m->provider, sizeof m->provider, "%s", provider);
        snprintf(m->kek, sizeof m->kek, "%s", kek);
        snprintf(m->method, sizeof m->method, "%s", t->method ? t->method : "");
        snprintf(m->cipher, sizeof m->cipher, "%s", t->cipher ? t->cipher : "");
        if (b64_field(t->wrapped, t->wrapped_size, m->wrapped, sizeof m->wrapped) < 0 ||
            b64_field(t->iv, t->iv_size, m->iv, sizeof m->iv) < 0 ||
            b64_field(t->tag, t->tag_size, m->tag, sizeof m->tag) < 0)
                return error_set(err, -E2BIG, "domain %s: the wrapped vTPM secret is too large to record",
                               op->d.name);
        time_t now = time(NULL);
        struct tm tm;
        strftime(m->created, sizeof m->created, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
        return 0;
}

/* A new state secret wrapped by the VM's KEK, under m->secret_uuid: the record of
 * the new vTPM. */
static int wrap_new_secret(struct vm_op *op, const char *providers, const struct vm_vtpm_result *res,
                           struct vm_vtpm_meta *m, struct error *err) {
        struct error e = { 0 };
        _cleanup_(unlocker_freep) struct unlocker *u = NULL;
        int r = unlocker_new(providers, &u, &e);
        if (r < 0)
                return error_wrap(err, &e, r, "domain %s: %s", op->d.name, e.text);
        struct provider *prov = unlocker_provider(u, res->provider, &e);
        if (!prov)
                return error_wrap(err, &e, -ENOENT, "domain %s: %s", op->d.name, e.text);
        /* Hex text, as the disks' secrets: libvirt hands it to swtpm as a
         * passphrase, and text goes everywhere unchanged. */
        _cleanup_(secret_freep) struct secret *s = NULL;
        r = unlock_secret_new(&s);
        if (r < 0)
                return error_set(err, r, "no random bytes for the vTPM secret");
        return wrap_secret(op, prov, res->provider, res->kek, s, m, err);
}

int vm_vtpm_add(const struct vm_params *p, enum vm_vtpm_model model, struct vm_vtpm_result *res,
                struct error *err) {
        memset(res, 0, sizeof *res);
        struct vm_result vr;
        _cleanup_(vm_op_close) struct vm_op op = { 0 };
        int r = vm_op_open(p, &op, &vr, err);
        if (r < 0)
                return r;
        identity(&op, res);
        snprintf(res->model, sizeof res->model, "%s", model == VM_VTPM_TIS ? "tpm-tis" : "tpm-crb");
        r = require_off(&op, "add-vtpm", err);
        if (r < 0)
                return r;
        _cleanup_(freep) char *xml = NULL;
        struct vm_vtpm_xml x;
        r = read_xml(&op, VIR_DOMAIN_XML_SECURE, &xml, &x, err);
        if (r < 0)
                return r;
        if (x.tpm && vm_vtpm_is_ours(&x))
                return error_set(err, -EEXIST, "domain %s has a vTPM already, added by vmcrypt (%s, state secret %s "
                               "wrapped by KEK %s); 'vmcrypt vm remove-vtpm %s' removes it", op.d.name, x.model,
                               x.m.secret_uuid, x.m.kek, op.d.name);
        if (x.tpm)
                return error_set(err, -EEXIST, "domain %s has a TPM already that vmcrypt did not add (model %s, "
                               "backend %s%s%s): its state is not under the VM's KEK; remove it from the "
                               "definition first (virsh edit %s; the guest loses what it kept in it)", op.d.name,
                               x.model[0] ? x.model : "default", x.backend[0] ? x.backend : "?",
                               x.tpm_secret[0] ? ", encrypted with secret " : "", x.tpm_secret, op.d.name);
        r = vm_kek(&op, res, err);
        if (r >= 0)
                r = require_home(&op, xml, err);
        if (r < 0)
                return r;
        struct vm_vtpm_meta m = { 0 };
        r = vm_uuid_new(m.secret_uuid);
        if (r < 0)
                return error_set(err, r, "no random bytes for a secret UUID");
        snprintf(res->secret_uuid, sizeof res->secret_uuid, "%s", m.secret_uuid);
        r = wrap_new_secret(&op, p->providers, res, &m, err);
        if (r < 0)
                return r;
        _cleanup_(freep) char *edited = NULL;
        r = vm_xml_vtpm_add(xml, res->model, &m, &edited);
        if (r < 0)
                return error_set(err, r, "domain %s: cannot add the vTPM to its XML", op.d.name);
        virDomainPtr nd = virDomainDefineXML(op.conn, edited);
        if (!nd)
                return error_set(err, vm_virt_errno(), "domain %s: libvirt refused the definition with the vTPM: %s",
                               op.d.name, vm_virt_text());
        virDomainFree(nd);
        return 0;
}

/* libvirt deletes a TPM's state only when the domain is undefined with
 * VIR_DOMAIN_UNDEFINE_TPM: it refuses to detach a TPM from the persistent
 * definition ("persistent detach of device 'tpm' is not supported"), and a new
 * definition without the TPM leaves the state behind. So: undefine (keeping the
 * NVRAM, refusing when snapshots or a managed save exist, as libvirt does without
 * their flags), then define the new XML at once, and restore autostart. Removing
 * /var/lib/libvirt/swtpm/UUID by hand would work only for qemu:///system on this
 * host and with libvirt's default paths. */
static int redefine_without_state(struct vm_op *op, const char *old_xml, const char *new_xml,
                                  struct vm_vtpm_result *res, struct error *err) {
        int autostart = 0;
        if (virDomainGetAutostart(op->dom, &autostart) < 0)
                autostart = 0;
        if (virDomainUndefineFlags(op->dom, VIR_DOMAIN_UNDEFINE_TPM | VIR_DOMAIN_UNDEFINE_KEEP_NVRAM) < 0)
                return error_set(err, vm_virt_errno(), "domain %s: libvirt would not remove the vTPM state (undefine "
                               "with its TPM): %s; nothing was changed", op->d.name, vm_virt_text());
        virDomainPtr nd = virDomainDefineXML(op->conn, new_xml);
        if (!nd) {
                int r = vm_virt_errno();
                char why[512];
                snprintf(why, sizeof why, "%s", vm_virt_text());
                /* Put the domain back as it was (its TPM state is gone already). */
                nd = virDomainDefineXML(op->conn, old_xml);
                bool back = nd != NULL;
                if (nd)
                        virDomainFree(nd);
                return error_set(err, r, "domain %s: its vTPM state was removed but libvirt refused the definition "
                               "without the TPM: %s; %s", op->d.name, why,
                               back ? "the old definition is back: run remove-vtpm again"
                                  : "and the old one too: the domain is undefined, define it again (virsh define)");
        }
        if (autostart)
                (void) virDomainSetAutostart(nd, 1);
        virDomainFree(nd);
        res->state_removed = true;
        return 0;
}

int vm_vtpm_remove(const struct vm_params *p, struct vm_vtpm_result *res, struct error *err) {
        memset(res, 0, sizeof *res);
        struct vm_result vr;
        _cleanup_(vm_op_close) struct vm_op op = { 0 };
        int r = vm_op_open(p, &op, &vr, err);
        if (r < 0)
                return r;
        identity(&op, res);
        r = require_off(&op, "remove-vtpm", err);
        if (r < 0)
                return r;
        _cleanup_(freep) char *xml = NULL;
        struct vm_vtpm_xml x;
        r = read_xml(&op, VIR_DOMAIN_XML_SECURE, &xml, &x, err);
        if (r < 0)
                return r;
        if (!x.tpm && !x.meta)
                return error_set(err, -ENOENT, "domain %s has no vTPM", op.d.name);
        if (x.tpm && !vm_vtpm_is_ours(&x))
                return error_set(err, -EMEDIUMTYPE, "domain %s has a TPM that vmcrypt did not add (model %s, backend %s): "
                               "vmcrypt leaves it alone; remove it with virsh edit %s", op.d.name,
                               x.model[0] ? x.model : "default", x.backend[0] ? x.backend : "?", op.d.name);
        snprintf(res->model, sizeof res->model, "%s", x.model);
        snprintf(res->secret_uuid, sizeof res->secret_uuid, "%s", x.m.secret_uuid);
        snprintf(res->provider, sizeof res->provider, "%s", x.m.provider);
        snprintf(res->kek, sizeof res->kek, "%s", x.m.kek);
        _cleanup_(freep) char *edited = NULL;
        r = vm_xml_vtpm_remove(xml, &edited);
        if (r < 0)
                return error_set(err, r, "domain %s: cannot take the vTPM out of its XML", op.d.name);
        res->device_removed = x.tpm;
        if (x.tpm) {
                r = redefine_without_state(&op, xml, edited, res, err);
        } else {
                /* Only a record left (someone removed the device with virsh edit). */
                virDomainPtr nd = virDomainDefineXML(op.conn, edited);
                if (!nd)
                        return error_set(err, vm_virt_errno(), "domain %s: libvirt refused the definition without the "
                                       "vTPM record: %s", op.d.name, vm_virt_text());
                virDomainFree(nd);
        }
        if (r < 0 || x.meta_error)
                return r;
        /* The vTPM no longer uses the KEK: the key server drops its record, and
         * retires the KEK if nothing else uses it. A failure leaves the KEK as it
         * was and is reported, not fatal: the vTPM is gone already. */
        char path[128];
        state_path(op.d.uuid, path, sizeof path);
        res->kek_released = true;
        (void) keys_kek_release(p->providers, x.m.provider, x.m.kek, x.m.secret_uuid, path, &res->release);
        return 0;
}

void vm_vtpm_secret_drop(virSecretPtr *s) {
        if (!*s)
                return;
        (void) virSecretUndefine(*s);
        virSecretFree(*s);
        *s = NULL;
}

int vm_vtpm_start_secret(struct vm_op *op, const char *providers, struct unlocker **u, virSecretPtr *ret,
                         struct error *err) {
        *ret = NULL;
        struct vm_vtpm_xml x;
        int r = read_xml(op, 0, NULL, &x, err);
        if (r < 0)
                return r;
        /* No record: no vTPM, or a TPM vmcrypt did not add (libvirt starts it, or
         * says which secret it misses). A record without a device: nothing runs. */
        if (!x.meta || !x.tpm)
                return 0;
        const char *n = op->d.name;
        if (x.meta_error)
                return error_set(err, -EBADMSG, "domain %s not started: vmcrypt's vTPM record in its XML is damaged "
                               "(<%s:vtpm> in <metadata>): the vTPM state cannot be unlocked", n, VM_VTPM_NS_PREFIX);
        if (!vm_vtpm_is_ours(&x))
                return error_set(err, -EUCLEAN, "domain %s not started: its vTPM's <encryption secret='%s'> is not the "
                               "secret vmcrypt wrapped (%s): the definition was edited; put the secret back "
                               "(virsh edit %s)", n, x.tpm_secret, x.m.secret_uuid, n);
        struct error e = { 0 };
        if (!*u && (r = unlocker_new(providers, u, &e)) < 0)
                return error_wrap(err, &e, r, "domain %s not started: %s", n, e.text);
        struct provider *prov = unlocker_provider(*u, x.m.provider, &e);
        if (!prov)
                return error_wrap(err, &e, -ENOENT, "domain %s not started: vTPM (state secret %s), KEK %s: %s", n,
                               x.m.secret_uuid, x.m.kek, e.text);
        _cleanup_(token_freep) struct vmcrypt_token *t = NULL;
        r = vm_vtpm_meta_to_token(&x.m, &t);
        if (r < 0)
                return error_set(err, r, "domain %s not started: vmcrypt's vTPM record is damaged", n);
        _cleanup_(secret_freep) struct secret *s = NULL;
        r = provider_unwrap(prov, t, &s);
        /* The provider's advice speaks of disks; a vTPM has no recovery passphrase. */
        if (r < 0)
                return error_set_fault(err, provider_fault(prov), r, "domain %s not started: vTPM (state secret %s), "
                               "key provider %s, KEK %s: %s%s",
                               n, x.m.secret_uuid, x.m.provider, x.m.kek, provider_error(prov),
                               unlock_error_is_dead(r) ? " -- for the vTPM: its state opens only through this KEK "
                               "(no recovery passphrase); without it the guest's TPM contents are lost, and "
                               "'vmcrypt vm remove-vtpm' lets the VM start without them" : "");
        if (op->check)
                return 1; /* vm_check: the key is there; nothing goes to libvirt */
        /* A start killed before it undefined its secrets leaves this one in
         * libvirt (ephemeral secrets last until libvirtd restarts): it is ours. */
        virSecretPtr old = virSecretLookupByUUIDString(op->conn, x.m.secret_uuid);
        vm_vtpm_secret_drop(&old);
        char sx[512];
        snprintf(sx, sizeof sx,
                 "<secret ephemeral='yes' private='yes'><uuid>%s</uuid>"
                 "<description>vmcrypt: vTPM state of %s, for one start</description>"
                 "<usage type='vtpm'><name>vmcrypt vTPM %s</name></usage></secret>",
                 x.m.secret_uuid, op->d.uuid, op->d.uuid);
        virSecretPtr sec = virSecretDefineXML(op->conn, sx, 0);
        if (!sec)
                return error_set(err, vm_virt_errno(), "domain %s not started: libvirt refused the vTPM secret %s: %s",
                               n, x.m.secret_uuid, vm_virt_text());
        if (virSecretSetValue(sec, s->data, s->size, 0) < 0) {
                r = error_set(err, vm_virt_errno(), "domain %s not started: libvirt refused the value of the vTPM "
                            "secret %s: %s", n, x.m.secret_uuid, vm_virt_text());
                vm_vtpm_secret_drop(&sec);
                return r;
        }
        *ret = sec;
        return 0;
}

int vm_vtpm_check_decrypt(struct vm_op *op, enum vm_volume_type t, struct error *err) {
        struct vm_vtpm_xml x;
        int r = read_xml(op, 0, NULL, &x, err);
        if (r < 0 || !x.meta)
                return r;
        /* Disks that stay encrypted after this run keep the KEK in use. */
        size_t staying = 0;
        for (size_t i = 0; i < op->d.n_disks; i++) {
                const struct vm_disk *k = &op->d.disks[i];
                if (k->state != VM_DISK_PLAIN && k->state != VM_DISK_UNKNOWN && !vm_op_selected(k, t))
                        staying++;
        }
        if (t != VM_VOLUMES_ALL && staying > 0)
                return 0;
        return error_set(err, -EBUSY, "domain %s has a vTPM whose state is encrypted with the VM's KEK %s: a VM with "
                       "a vTPM stays encrypted, and its home is decrypted last; remove the vTPM first with "
                       "'vmcrypt vm remove-vtpm %s' (the guest loses what it kept in its TPM), then decrypt",
                       op->d.name, x.m.kek[0] ? x.m.kek : "(unknown)", op->d.name);
}

int vm_vtpm_rekey(struct vm_op *op, const char *providers, const char *provider, const char *kek,
                  struct vm_disk_result *dr, struct error *err) {
        _cleanup_(freep) char *xml = NULL;
        struct vm_vtpm_xml x;
        int r = read_xml(op, VIR_DOMAIN_XML_SECURE, &xml, &x, err);
        if (r < 0)
                return r;
        if (!x.meta || !x.tpm || !vm_vtpm_is_ours(&x))
                return 0;
        const char *n = op->d.name;
        if (x.meta_error)
                return error_set(err, -EBADMSG, "domain %s: vmcrypt's vTPM record in its XML is damaged: the vTPM "
                               "state secret cannot be re-wrapped", n);
        snprintf(dr->target, sizeof dr->target, "vtpm");
        if (strcmp(x.m.kek, kek) == 0 && strcmp(x.m.provider, provider) == 0) {
                dr->action = VM_ACTION_ALREADY;
                return 0;
        }
        struct error e = { 0 };
        _cleanup_(unlocker_freep) struct unlocker *u = NULL;
        if ((r = unlocker_new(providers, &u, &e)) < 0)
                return error_wrap(err, &e, r, "domain %s: %s", n, e.text);
        struct provider *old = unlocker_provider(u, x.m.provider, &e);
        struct provider *new = old ? unlocker_provider(u, provider, &e) : NULL;
        if (!new)
                return error_wrap(err, &e, -ENOENT, "domain %s: vTPM: %s", n, e.text);
        _cleanup_(token_freep) struct vmcrypt_token *t = NULL;
        if ((r = vm_vtpm_meta_to_token(&x.m, &t)) < 0)
                return error_set(err, r, "domain %s: vmcrypt's vTPM record is damaged", n);
        _cleanup_(secret_freep) struct secret *s = NULL;
        if ((r = provider_unwrap(old, t, &s)) < 0)
                return error_set_fault(err, provider_fault(old), r, "domain %s: vTPM (state secret %s), key "
                               "provider %s, KEK %s: %s", n,
                               x.m.secret_uuid, x.m.provider, x.m.kek, provider_error(old));
        /* The same secret under the new KEK: swtpm's state stays as it is. */
        struct vm_vtpm_meta m = x.m;
        if ((r = wrap_secret(op, new, provider, kek, s, &m, err)) < 0)
                return r;
        _cleanup_(freep) char *bare = NULL, *edited = NULL;
        if ((r = vm_xml_vtpm_remove(xml, &bare)) < 0 || (r = vm_xml_vtpm_add(bare, x.model, &m, &edited)) < 0)
                return error_set(err, r, "domain %s: cannot rewrite the vTPM record in its XML", n);
        virDomainPtr nd = virDomainDefineXML(op->conn, edited);
        if (!nd)
                return error_set(err, vm_virt_errno(), "domain %s: libvirt refused the definition with the re-wrapped "
                               "vTPM record: %s", n, vm_virt_text());
        virDomainFree(nd);
        dr->action = VM_ACTION_DONE;
        /* The old KEK no longer wraps the vTPM's secret. */
        char path[128];
        state_path(op->d.uuid, path, sizeof path);
        struct kek_release rel;
        (void) keys_kek_release(providers, x.m.provider, x.m.kek, x.m.secret_uuid, path, &rel);
        if (rel.error < 0)
                snprintf(dr->note, sizeof dr->note, "old KEK %.80s could not be released: %.140s", rel.kek, rel.text);
        else if (rel.retired)
                snprintf(dr->note, sizeof dr->note, "old KEK %.80s retired (nothing uses it any more)", rel.kek);
        return 0;
}
