/* New data disks for a VM, and the domain's auto-encrypt flag. An image is checked
 * (not another domain's disk, raw, not bound to a foreign KEK), encrypted first
 * when asked (or when the domain says so), and only then attached. Killed after
 * the encryption and before the attach, the image is an encrypted disk under the
 * VM's KEK that the next attach-disk takes as it is. A running QEMU opens a
 * hot-plugged encrypted disk during the attach call, so its secret exists in
 * libvirt (ephemeral, private) for that call only, as for vm start. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk/image-format.h"
#include "keys/unlock.h"
#include "shared/macro.h"
#include "vm/vm-ops.h"
#include "volume/volume.h"

int vm_set_auto_encrypt(const struct vm_params *p, bool on, struct error *err) {
        _cleanup_(vm_op_close) struct vm_op op = { 0 };
        struct vm_result res;
        int r = vm_op_open(p, &op, &res, err);
        if (r < 0)
                return r;
        if (!op.d.persistent)
                return error_set(err, -EINVAL, "domain %s is transient: the flag lives in its persistent definition; "
                               "define it first (virsh define)", op.d.name);
        struct vm_meta m = op.d.meta;
        m.auto_encrypt = on;
        return vm_op_set_meta(&op, &m, err);
}

/* Whether xml (a domain's definition) has a disk that is the file st. */
static bool xml_has_file(const char *xml, const struct stat *st, char target[static 32]) {
        struct vm_disk *disks = NULL;
        size_t n = 0;
        if (vm_xml_disks(xml, &disks, &n) < 0)
                return false;
        bool found = false;
        for (size_t i = 0; i < n; i++) {
                struct stat s;
                if (!found && disks[i].path && stat(disks[i].path, &s) == 0 && s.st_dev == st->st_dev &&
                    s.st_ino == st->st_ino) {
                        snprintf(target, 32, "%s", disks[i].target);
                        found = true;
                }
                free(disks[i].path);
        }
        free(disks);
        return found;
}

/* -EBUSY, naming the domain and target, when any domain (defined or running)
 * has the image as a disk: two VMs writing one disk destroy it, and this VM
 * would see it twice. Compared by inode, so another path to the file counts. */
static int refuse_attached(struct vm_op *op, const char *image, const struct stat *st, struct error *err) {
        virDomainPtr *doms = NULL;
        int n = virConnectListAllDomains(op->conn, &doms, 0);
        if (n < 0)
                return error_set(err, vm_virt_errno(), "cannot list the domains to check that no other uses %s: %s",
                               image, vm_virt_text());
        int r = 0;
        for (int i = 0; i < n; i++) {
                for (int live = 0; live < 2 && r == 0; live++) {
                        if (live && virDomainIsActive(doms[i]) != 1)
                                continue;
                        _cleanup_(freep) char *xml = virDomainGetXMLDesc(doms[i], live ? 0 : VIR_DOMAIN_XML_INACTIVE);
                        char target[32];
                        if (xml && xml_has_file(xml, st, target)) {
                                const char *name = virDomainGetName(doms[i]);
                                r = error_set(err, -EBUSY, "image %s is already attached to domain %s as %s%s; detach "
                                            "it there first (virsh detach-disk %s %s --persistent)", image, name,
                                            target, live ? " (running)" : "", name, target);
                        }
                }
                virDomainFree(doms[i]);
        }
        free(doms);
        return r;
}

static bool target_used(const struct vm_disk *d, size_t n, const char *t) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(d[i].target, t) == 0)
                        return true;
        return false;
}

/* The target: the one asked for if free, else the first free vdX, in both the
 * definition and the running domain. */
static int pick_target(struct vm_op *op, const char *want, char out[static 32], struct error *err) {
        _cleanup_(freep) char *live = op->d.active ? virDomainGetXMLDesc(op->dom, 0) : NULL;
        struct vm_disk *ld = NULL;
        size_t ln = 0;
        if (live && vm_xml_disks(live, &ld, &ln) < 0)
                ln = 0;
        int r = -ENOSPC;
        if (want) {
                if (strlen(want) >= 32 || target_used(op->d.disks, op->d.n_disks, want) || target_used(ld, ln, want))
                        r = error_set(err, -EEXIST, "domain %s has a disk %s already; give another --target, or none "
                                    "for the first free vdX", op->d.name, want);
                else
                        r = snprintf(out, 32, "%s", want) < 0 ? -EINVAL : 0;
        }
        for (char c = 'a'; !want && c <= 'z' && r < 0; c++) {
                char t[8] = { 'v', 'd', c, 0 };
                if (!target_used(op->d.disks, op->d.n_disks, t) && !target_used(ld, ln, t)) {
                        snprintf(out, 32, "%s", t);
                        r = 0;
                }
        }
        for (size_t i = 0; i < ln; i++)
                free(ld[i].path);
        free(ld);
        if (r == -ENOSPC)
                return error_set(err, r, "domain %s has every target vda..vdz taken; give --target", op->d.name);
        return r;
}

/* The image as an absolute path to a raw regular file. */
static int check_image(const char *image, char abs[static PATH_MAX], struct stat *st, struct error *err) {
        if (!realpath(image, abs))
                return error_set(err, -errno, "image %s: %s; give an existing raw image file", image, strerror(errno));
        if (stat(abs, st) < 0)
                return error_set(err, -errno, "image %s: %s", abs, strerror(errno));
        if (!S_ISREG(st->st_mode))
                return error_set(err, -EINVAL, "%s is not a regular file: vm attach-disk takes raw image files", abs);
        if (strpbrk(abs, "'\"<>&"))
                return error_set(err, -EINVAL, "image path %s has a character libvirt's secret XML cannot take "
                               "(' \" < > &); rename the file", abs);
        _cleanup_(closep) int fd = open(abs, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return error_set(err, -errno, "image %s: %s", abs, strerror(errno));
        const char *fmt = NULL;
        int r = image_format_probe(fd, (uint64_t) st->st_size, &fmt);
        if (r < 0)
                return error_set(err, r, "image %s: cannot read it: %s", abs, strerror(-r));
        if (r > 0)
                return error_set(err, -EMEDIUMTYPE, "image %s is a %s image, not a raw disk: vmcrypt attaches raw "
                               "images only (qemu-img convert -O raw %s NEW.img)", abs, fmt, abs);
        return 0;
}

/* Encrypt a plain image under the VM's KEK. */
static int encrypt_image(const struct vm_attach_params *a, struct vm_op *op, struct vm_disk *k,
                         struct vm_result *res, struct error *err) {
        char provider[128], kek[256];
        if (!vm_op_vm_kek(op, provider, kek))
                return error_set(err, -EINVAL, "domain %s is not encrypted, so it has no KEK to encrypt %s with; "
                               "encrypt the VM first (vmcrypt vm encrypt %s), or attach the image plain "
                               "(without --encrypt, auto-encrypt off)", op->d.name, k->path, op->d.name);
        struct volume_params vp;
        struct volume_result vr;
        struct error ve;
        struct vm_progress_ctx ctx;
        vm_volume_params(&a->vm, k, &ctx, &vp);
        vp.format = DISK_FORMAT_LUKS1;
        vp.key.provider = provider;
        vp.key.kek = kek;
        vp.key.vm_name = op->d.name;
        vp.key.vm_uuid = op->d.uuid;
        int r = volume_encrypt(&vp, &vr, &ve);
        if (r < 0)
                return vm_job_failed(op, k, "encryption", r, &vr, &ve, err);
        snprintf(res->provider, sizeof res->provider, "%s", provider);
        snprintf(res->kek, sizeof res->kek, "%s", kek);
        vm_disk_read(k, VM_INV_KEYS);
        return 0;
}

/* Finish the encryption a kill left on the image (an attach-disk --encrypt, or a
 * disk encrypt): the job knows its key; whose KEK it is is checked after. */
static int resume_image(const struct vm_attach_params *a, struct vm_op *op, struct vm_disk *k,
                        struct error *err) {
        struct volume_params vp;
        struct volume_result vr;
        struct error ve;
        struct vm_progress_ctx ctx;
        vm_volume_params(&a->vm, k, &ctx, &vp);
        int r = volume_resume(&vp, &vr, &ve);
        if (r < 0)
                return vm_job_failed(op, k, "resuming the encryption", r, &vr, &ve, err);
        vm_disk_read(k, VM_INV_KEYS);
        if (k->state != VM_DISK_ENCRYPTED)
                return error_set(err, -EUCLEAN, "image %s: %s after its encryption was resumed", k->path,
                               vm_disk_state_name(k->state));
        return 0;
}

/* An encrypted image must be one the VM can open with its own KEK. */
static int check_encrypted(struct vm_op *op, const struct vm_disk *k, struct vm_result *res, struct error *err) {
        if (k->status.format == DISK_FORMAT_LUKS2)
                return error_set(err, -EMEDIUMTYPE, "image %s is LUKS2: QEMU 7.2's luks driver opens LUKS1 only "
                               "(vmcrypt disk convert --to luks1 %s)", k->path, k->path);
        if (!k->kek[0])
                return error_set(err, -EINVAL, "image %s is encrypted but bound to no key provider (no vmcrypt token): "
                               "the VM could not start with it; bind it to the VM's KEK first (vmcrypt disk bind)",
                               k->path);
        char provider[128], kek[256];
        if (!vm_op_vm_kek(op, provider, kek))
                return error_set(err, -EINVAL, "image %s is encrypted (KEK %s) but domain %s is not: encrypt the VM "
                               "first (vmcrypt vm encrypt %s), or decrypt the image", k->path, k->kek, op->d.name,
                               op->d.name);
        if (strcmp(kek, k->kek) != 0 || strcmp(provider, k->provider) != 0)
                return error_set(err, -EKEYREJECTED, "image %s is bound to KEK %s at provider %s, not to domain %s's "
                               "KEK %s at %s; move it first (vmcrypt disk rekey --provider %s --kek %s %s)", k->path,
                               k->kek, k->provider, op->d.name, kek, provider, provider, kek, k->path);
        snprintf(res->provider, sizeof res->provider, "%s", provider);
        snprintf(res->kek, sizeof res->kek, "%s", kek);
        return 0;
}

/* virDomainAttachDeviceFlags, with the disk's secret defined around it when a
 * running QEMU has to open an encrypted disk. */
static int attach(const struct vm_attach_params *a, struct vm_op *op, const struct vm_disk *k, const char *xml,
                  unsigned flags, struct error *err) {
        virSecretPtr s = NULL;
        if ((flags & VIR_DOMAIN_AFFECT_LIVE) && k->secret_uuid[0]) {
                _cleanup_(unlocker_freep) struct unlocker *u = NULL;
                struct error e = { 0 };
                int r = unlocker_new(a->vm.providers, &u, &e);
                if (r < 0)
                        return error_wrap(err, &e, r, "domain %s: disk %s not attached: %s", op->d.name, k->path, e.text);
                _cleanup_(secret_freep) struct secret *value = NULL;
                struct unlock_result ur = { .keyslot = -1, .token_id = -1 };
                r = unlocker_unlock(u, k->path, NULL, &value, &ur, &e);
                token_free(ur.token);
                if (r < 0)
                        return error_wrap(err, &e, r, "domain %s: disk %s not attached: key provider %s, KEK %s: %s",
                                       op->d.name, k->path, k->provider, k->kek, e.text);
                r = vm_secret_define(op, k, value, &s, err);
                if (r < 0)
                        return r;
        }
        int r = 0;
        if (virDomainAttachDeviceFlags(op->dom, xml, flags) < 0)
                r = error_set(err, vm_virt_errno(), "domain %s: libvirt could not attach %s as %s: %s", op->d.name,
                            k->path, k->target, vm_virt_text());
        /* QEMU opened the disk during the call (or failed to): the secret has
         * served its purpose either way. */
        vm_secrets_undefine(&s, 1);
        return r;
}

int vm_attach_disk(const struct vm_attach_params *a, struct vm_result *res, struct error *err) {
        _cleanup_(vm_op_close) struct vm_op op = { 0 };
        int r = vm_op_open(&a->vm, &op, res, err);
        if (r < 0)
                return r;
        if (!a->image)
                return error_set(err, -EINVAL, "no image named");
        bool live = a->mode == VM_ATTACH_LIVE || (a->mode == VM_ATTACH_DEFAULT && op.d.active);
        bool config = a->mode != VM_ATTACH_LIVE;
        if (live && !op.d.active)
                return error_set(err, -EINVAL, "domain %s is %s: --live attaches to a running QEMU only; without it "
                               "the disk goes into the definition", op.d.name, op.d.state);
        if (config && !op.d.persistent)
                return error_set(err, -EINVAL, "domain %s is transient: it has no definition to keep the disk in; "
                               "give --live, or define it first (virsh define)", op.d.name);
        char abs[PATH_MAX];
        struct stat st;
        r = check_image(a->image, abs, &st, err);
        if (r >= 0)
                r = refuse_attached(&op, abs, &st, err);
        if (r < 0)
                return r;
        struct vm_disk k = { .path = abs, .eta = -1 };
        snprintf(k.source_type, sizeof k.source_type, "file");
        snprintf(k.format, sizeof k.format, "raw");
        r = pick_target(&op, a->target, k.target, err);
        if (r < 0)
                return r;
        vm_disk_read(&k, VM_INV_KEYS);
        struct vm_disk_result *dr = &res->disks[res->n++];
        snprintf(dr->target, sizeof dr->target, "%s", k.target);
        snprintf(dr->path, sizeof dr->path, "%s", abs);
        bool encrypt = a->encrypt || op.d.meta.auto_encrypt;
        switch (k.state) {
        case VM_DISK_UNKNOWN:
                return error_set(err, k.status_error, "image %s: %s", abs, k.status_text);
        case VM_DISK_DECRYPTING:
        case VM_DISK_REENCRYPTING:
                return error_set(err, -EINPROGRESS, "image %s: its %s job is in progress; finish it first (vmcrypt "
                               "disk resume %s)", abs, engine_operation_to_string(k.status.job), abs);
        case VM_DISK_PLAIN:
                if (!encrypt)
                        break;
                r = encrypt_image(a, &op, &k, res, err);
                if (r < 0)
                        return r;
                snprintf(dr->note, sizeof dr->note, "encrypted first (LUKS1, KEK %.200s)", res->kek);
                break;
        case VM_DISK_ENCRYPTING:
                /* Killed while an attach-disk --encrypt encrypted it: the same
                 * command (or any attach) finishes the job, then checks the KEK. */
                r = resume_image(a, &op, &k, err);
                if (r >= 0)
                        r = check_encrypted(&op, &k, res, err);
                if (r < 0)
                        return r;
                snprintf(dr->note, sizeof dr->note, "interrupted encryption finished (KEK %.200s)", res->kek);
                break;
        case VM_DISK_ENCRYPTED:
                r = check_encrypted(&op, &k, res, err);
                if (r < 0)
                        return r;
                snprintf(dr->note, sizeof dr->note, "encrypted already (KEK %.200s)", res->kek);
                break;
        }
        if (k.state == VM_DISK_ENCRYPTED) {
                r = vm_uuid_new(k.secret_uuid);
                if (r < 0)
                        return error_set(err, r, "no random bytes for a secret UUID");
        }
        _cleanup_(freep) char *xml = NULL;
        r = vm_xml_disk_new(abs, k.target, k.secret_uuid[0] ? k.secret_uuid : NULL, &xml);
        if (r < 0)
                return error_set(err, r, "domain %s: cannot build the disk's XML", op.d.name);
        unsigned flags = (live ? VIR_DOMAIN_AFFECT_LIVE : 0) | (config ? VIR_DOMAIN_AFFECT_CONFIG : 0);
        r = attach(a, &op, &k, xml, flags, err);
        if (r < 0)
                return r;
        dr->action = VM_ACTION_ATTACHED;
        res->hotplugged = live;
        res->persisted = config;
        return 0;
}
