/* The VM home beyond the disks: the UEFI variable store (NVRAM, OVMF's VARS file).
 * libvirt 9.0 takes <nvram type='file'><source file=P><encryption format='luks'
 * engine='qemu'>, and QEMU 7.2 then opens the pflash through its luks driver, as
 * it does a disk (LUKS1 only). So the NVRAM is encrypted like a disk: in place,
 * LUKS1, its own unlock secret wrapped by the VM's KEK, a libvirt secret only for
 * the start. It goes last when a whole VM is encrypted, and last when it is
 * decrypted (after the disks, as vSphere orders the VM home). The rest of the home
 * is covered by the vTPM (vtpm.c) or not at all (docs/vm.md, "VM home"). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "keys/unlock.h"
#include "shared/macro.h"
#include "vm/home.h"
#include "vm/vtpm.h"
#include "volume/volume.h"

int vm_home_nvram(struct vm_op *op, struct vm_disk *k, struct error *err) {
        _cleanup_(freep) char *xml = virDomainGetXMLDesc(op->dom, VIR_DOMAIN_XML_INACTIVE);
        if (!xml)
                return error_set(err, vm_virt_errno(), "domain %s: cannot read its XML: %s", op->d.name, vm_virt_text());
        int r = vm_xml_nvram(xml, k);
        if (r < 0)
                return error_set(err, r, "domain %s: cannot parse its XML", op->d.name);
        if (k->path)
                vm_disk_read(k, VM_INV_KEYS);
        return 0;
}

static int set_xml(struct vm_op *op, const char *secret_uuid, struct error *err) {
        _cleanup_(freep) char *xml = virDomainGetXMLDesc(op->dom, VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE);
        if (!xml)
                return error_set(err, vm_virt_errno(), "domain %s: cannot read its XML: %s", op->d.name, vm_virt_text());
        _cleanup_(freep) char *edited = NULL;
        int r = vm_xml_nvram_set_encryption(xml, secret_uuid, &edited);
        if (r < 0)
                return error_set(err, r, "domain %s: cannot edit the XML of its NVRAM", op->d.name);
        virDomainPtr nd = virDomainDefineXML(op->conn, edited);
        if (!nd)
                return error_set(err, vm_virt_errno(), "domain %s: libvirt refused the new definition for its NVRAM: %s",
                               op->d.name, vm_virt_text());
        virDomainFree(nd);
        return 0;
}

static struct vm_disk_result *row(const struct vm_disk *k, struct vm_result *res) {
        if (res->n >= VM_MAX_DISKS)
                return NULL;
        struct vm_disk_result *dr = &res->disks[res->n++];
        snprintf(dr->target, sizeof dr->target, "nvram");
        snprintf(dr->path, sizeof dr->path, "%s", k->path ? k->path : "");
        return dr;
}

static int job_failed(struct vm_op *op, const struct vm_disk *k, const char *what, int r,
                      const struct volume_result *vr, const struct error *ve, struct error *err) {
        return error_wrap(err, ve, r, "domain %s, NVRAM %s: %s failed: %s%s", op->d.name, k->path, what, ve->text,
                       vr->interrupted ? "; the job waits: run the same vmcrypt vm command again" : "");
}

int vm_home_encrypt(struct vm_op *op, const struct vm_params *p, struct vm_result *res, struct error *err) {
        _cleanup_(vm_disk_clear) struct vm_disk k = { 0 };
        int r = vm_home_nvram(op, &k, err);
        if (r < 0 || !k.target[0])
                return r;
        struct vm_disk_result *dr = row(&k, res);
        if (!dr)
                return 0;
        struct stat st;
        if (!k.path) {
                snprintf(dr->note, sizeof dr->note, "a %s NVRAM: vmcrypt encrypts NVRAM files only; left alone",
                         k.source_type);
                return 0;
        }
        if (stat(k.path, &st) < 0 && errno == ENOENT) {
                /* libvirt makes it from its template at the first start. */
                snprintf(dr->note, sizeof dr->note, "not made yet (libvirt copies the template at the first "
                         "start): run 'vmcrypt vm encrypt' again after that");
                return 0;
        }
        if (!res->kek[0]) {
                snprintf(dr->note, sizeof dr->note, "no disk was encrypted, so the VM has no KEK: left alone");
                return 0;
        }
        struct volume_params vp = { .path = k.path };
        vp.key.providers = p->providers;
        vp.max_rate = p->max_rate;
        struct volume_result vr;
        struct error ve;
        switch (k.state) {
        case VM_DISK_UNKNOWN:
                return error_set(err, k.status_error, "domain %s, NVRAM %s: %s", op->d.name, k.path, k.status_text);
        case VM_DISK_DECRYPTING:
        case VM_DISK_REENCRYPTING:
                return error_set(err, -EINPROGRESS, "domain %s, NVRAM %s: a %s job is in progress; finish it first "
                               "(vmcrypt disk resume %s)", op->d.name, k.path,
                               engine_operation_to_string(k.status.job), k.path);
        case VM_DISK_ENCRYPTING:
                r = volume_resume(&vp, &vr, &ve);
                if (r < 0)
                        return job_failed(op, &k, "resuming the encryption", r, &vr, &ve, err);
                dr->action = VM_ACTION_RESUMED;
                break;
        case VM_DISK_PLAIN:
                /* LUKS1: QEMU's luks driver under the pflash reads nothing else. */
                vp.format = DISK_FORMAT_LUKS1;
                vp.key.provider = res->provider;
                vp.key.kek = res->kek;
                vp.key.vm_name = op->d.name;
                vp.key.vm_uuid = op->d.uuid;
                r = volume_encrypt(&vp, &vr, &ve);
                if (r < 0)
                        return job_failed(op, &k, "encryption", r, &vr, &ve, err);
                dr->action = VM_ACTION_DONE;
                break;
        case VM_DISK_ENCRYPTED:
                dr->action = VM_ACTION_ALREADY;
                break;
        }
        if (k.xml_encrypted && k.secret_uuid[0])
                return 0;
        char uuid[VM_UUID_LEN];
        r = vm_uuid_new(uuid);
        if (r < 0)
                return error_set(err, r, "no random bytes for a secret UUID");
        r = set_xml(op, uuid, err);
        if (r >= 0 && dr->action == VM_ACTION_ALREADY)
                dr->action = VM_ACTION_XML;
        return r;
}

int vm_home_decrypt(struct vm_op *op, const struct vm_params *p, struct vm_result *res, struct error *err) {
        _cleanup_(vm_disk_clear) struct vm_disk k = { 0 };
        int r = vm_home_nvram(op, &k, err);
        if (r < 0 || !k.path)
                return r;
        if (k.state == VM_DISK_PLAIN && !k.xml_encrypted)
                return 0;
        struct vm_disk_result *dr = row(&k, res);
        if (!dr)
                return 0;
        struct volume_params vp = { .path = k.path };
        vp.key.providers = p->providers;
        vp.max_rate = p->max_rate;
        struct volume_result vr;
        struct error ve;
        switch (k.state) {
        case VM_DISK_UNKNOWN:
                return error_set(err, k.status_error, "domain %s, NVRAM %s: %s", op->d.name, k.path, k.status_text);
        case VM_DISK_ENCRYPTING:
        case VM_DISK_REENCRYPTING:
                return error_set(err, -EINPROGRESS, "domain %s, NVRAM %s: a %s job is in progress; finish it first "
                               "(vmcrypt vm encrypt %s)", op->d.name, k.path,
                               engine_operation_to_string(k.status.job), op->d.name);
        case VM_DISK_DECRYPTING:
                r = volume_resume(&vp, &vr, &ve);
                if (r < 0)
                        return job_failed(op, &k, "resuming the decryption", r, &vr, &ve, err);
                dr->action = VM_ACTION_RESUMED;
                vm_release_note(dr, &vr);
                break;
        case VM_DISK_ENCRYPTED:
                r = volume_decrypt(&vp, &vr, &ve);
                if (r < 0)
                        return job_failed(op, &k, "decryption", r, &vr, &ve, err);
                dr->action = VM_ACTION_DONE;
                vm_release_note(dr, &vr);
                break;
        case VM_DISK_PLAIN:
                dr->action = VM_ACTION_XML;
                break;
        }
        return k.xml_encrypted ? set_xml(op, NULL, err) : 0;
}

int vm_home_start_secret(struct vm_op *op, const char *providers, struct unlocker **u, struct vm_result *res,
                         virSecretPtr *ret, struct error *err) {
        *ret = NULL;
        _cleanup_(vm_disk_clear) struct vm_disk k = { 0 };
        int r = vm_home_nvram(op, &k, err);
        if (r < 0 || !k.xml_encrypted)
                return r;
        const char *n = op->d.name;
        if (!k.path || !k.secret_uuid[0])
                return error_set(err, -EUCLEAN, "domain %s not started: its NVRAM's <encryption> names no file or no "
                               "secret", n);
        if (k.state != VM_DISK_ENCRYPTED)
                return error_set(err, k.state == VM_DISK_PLAIN ? -EUCLEAN : -EINPROGRESS,
                               "domain %s not started: NVRAM %s is %s but the domain XML has <encryption>%s", n,
                               k.path, vm_disk_state_name(k.state),
                               k.state == VM_DISK_PLAIN ? " (a --reset-nvram or a copied template?); 'vmcrypt vm "
                               "encrypt' encrypts it again" : "; finish its job with 'vmcrypt vm encrypt|decrypt'");
        struct error e = { 0 };
        if (!*u && (r = unlocker_new(providers, u, &e)) < 0)
                return error_wrap(err, &e, r, "domain %s not started: %s", n, e.text);
        _cleanup_(secret_freep) struct secret *s = NULL;
        struct unlock_result ur = { .keyslot = -1, .token_id = -1 };
        r = unlocker_unlock(*u, k.path, NULL, &s, &ur, &e);
        token_free(ur.token);
        if (r < 0)
                return error_wrap(err, &e, r, "domain %s not started: NVRAM %s, key provider %s, KEK %s: %s", n, k.path,
                               k.provider[0] ? k.provider : "(none)", k.kek[0] ? k.kek : "(none)", e.text);
        if (op->check) {
                /* vm_check: the key is there; nothing goes to libvirt. */
                struct vm_disk_result *cr = row(&k, res);
                if (cr) {
                        cr->action = VM_ACTION_CHECKED;
                        snprintf(cr->note, sizeof cr->note, "key from provider %.64s (KEK %.128s) opens keyslot %d",
                                 k.provider, k.kek, ur.keyslot);
                }
                return 0;
        }
        char xml[PATH_MAX + 512];
        int len = snprintf(xml, sizeof xml,
                           "<secret ephemeral='yes' private='yes'><uuid>%s</uuid>"
                           "<description>vmcrypt: NVRAM of %s, for one start</description>"
                           "<usage type='volume'><volume>%s</volume></usage></secret>",
                           k.secret_uuid, op->d.uuid, k.path);
        if (len < 0 || (size_t) len >= sizeof xml || strpbrk(k.path, "<>&'\""))
                return error_set(err, -EINVAL, "domain %s: NVRAM path %s cannot go into a libvirt secret", n, k.path);
        virSecretPtr old = virSecretLookupByUUIDString(op->conn, k.secret_uuid);
        if (old) {
                (void) virSecretUndefine(old);
                virSecretFree(old);
        }
        virSecretPtr sec = virSecretDefineXML(op->conn, xml, 0);
        if (!sec)
                return error_set(err, vm_virt_errno(), "domain %s not started: libvirt refused the NVRAM secret %s: %s",
                               n, k.secret_uuid, vm_virt_text());
        if (virSecretSetValue(sec, s->data, s->size, 0) < 0) {
                r = error_set(err, vm_virt_errno(), "domain %s not started: libvirt refused the value of the NVRAM "
                            "secret %s: %s", n, k.secret_uuid, vm_virt_text());
                (void) virSecretUndefine(sec);
                virSecretFree(sec);
                return r;
        }
        struct vm_disk_result *dr = row(&k, res);
        if (dr)
                dr->action = VM_ACTION_UNLOCKED;
        *ret = sec;
        return 0;
}

int vm_home_read(const char *xml, unsigned flags, struct vm_domain *d) {
        struct vm_disk k;
        int r = vm_xml_nvram(xml, &k);
        if (r == -ENOMEM)
                return r;
        if (r > 0) {
                if (k.path)
                        vm_disk_read(&k, flags);
                d->nvram = malloc(sizeof *d->nvram);
                if (!d->nvram) {
                        free(k.path);
                        return -ENOMEM;
                }
                *d->nvram = k;
        }
        struct vm_vtpm_xml x;
        if (vm_xml_vtpm(xml, &x) < 0 || !x.tpm)
                return 0;
        struct vm_tpm *t = &d->tpm;
        t->present = true;
        t->vmcrypt = vm_vtpm_is_ours(&x);
        snprintf(t->model, sizeof t->model, "%s", x.model[0] ? x.model : "default");
        snprintf(t->secret_uuid, sizeof t->secret_uuid, "%s", x.tpm_secret);
        if (t->vmcrypt) {
                snprintf(t->provider, sizeof t->provider, "%s", x.m.provider);
                snprintf(t->kek, sizeof t->kek, "%s", x.m.kek);
        } else if (x.meta && x.meta_error) {
                snprintf(t->note, sizeof t->note, "vmcrypt's vTPM record is damaged: vm start refuses");
        } else if (x.meta) {
                snprintf(t->note, sizeof t->note, "vmcrypt's vTPM record names secret %s, the TPM %s: the "
                         "definition was edited; vm start refuses", x.m.secret_uuid,
                         x.tpm_secret[0] ? x.tpm_secret : "none");
        }
        return 0;
}
