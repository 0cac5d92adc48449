/* Encrypting and decrypting every disk of a VM in place. One KEK per VM (tagged
 * with the domain's name and UUID on the key server), one unlock secret per disk.
 * Each disk is done and then wired into the domain XML, in that order: a kill at
 * any point leaves either a job that resumes, or a finished disk whose XML the
 * next run fixes; never XML that names a secret for a plain disk that boots. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys/provider-config.h"
#include "shared/macro.h"
#include "vm/vm-ops.h"
#include "vm/home.h"
#include "vm/vtpm.h"
#include "volume/volume.h"

int vm_op_open(const struct vm_params *p, struct vm_op *op, struct vm_result *res, struct error *err) {
        memset(op, 0, sizeof *op);
        memset(res, 0, sizeof *res);
        error_clear(err);
        if (!p->name)
                return error_set(err, -EINVAL, "no domain named");
        int r = vm_conn_open(p->uri, &op->conn, err);
        if (r >= 0)
                r = vm_domain_lookup(op->conn, p->name, &op->dom, err);
        if (r >= 0)
                r = vm_domain_read(op->dom, VM_INV_KEYS, &op->d, err);
        if (r < 0)
                return r;
        snprintf(res->name, sizeof res->name, "%s", op->d.name);
        snprintf(res->uuid, sizeof res->uuid, "%s", op->d.uuid);
        return 0;
}

void vm_op_close(struct vm_op *op) {
        vm_domain_clear(&op->d);
        if (op->dom)
                virDomainFree(op->dom);
        if (op->conn)
                virConnectClose(op->conn);
        op->dom = NULL;
        op->conn = NULL;
}

int vm_op_require_off(struct vm_op *op, const char *what, struct error *err) {
        if (op->d.active) {
                pid_t pid = vm_qemu_pid(op->d.uuid);
                char p[48] = "";
                if (pid > 0)
                        snprintf(p, sizeof p, " (QEMU PID %d)", (int) pid);
                return error_set(err, -EBUSY, "domain %s is %s%s: %s works on its disks in place and QEMU must "
                               "not have them open; shut it down first (virsh shutdown %s)", op->d.name,
                               op->d.state, p, what, op->d.name);
        }
        if (!op->d.persistent)
                return error_set(err, -EINVAL, "domain %s is transient: vmcrypt wires the disks' secrets into a "
                               "persistent definition; define it first (virsh define)", op->d.name);
        return 0;
}

bool vm_op_selected(const struct vm_disk *k, enum vm_volume_type t) {
        return t == VM_VOLUMES_ALL || (t == VM_VOLUMES_OS) == k->os;
}

int vm_op_set_encryption(struct vm_op *op, const char *target, const char *secret_uuid, struct error *err) {
        _cleanup_(freep) char *xml = virDomainGetXMLDesc(op->dom, VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE);
        if (!xml)
                return error_set(err, vm_virt_errno(), "domain %s: cannot read its XML: %s", op->d.name, vm_virt_text());
        _cleanup_(freep) char *edited = NULL;
        int r = vm_xml_set_encryption(xml, target, secret_uuid, &edited);
        if (r < 0)
                return error_set(err, r, "domain %s: cannot edit the XML of disk %s", op->d.name, target);
        virDomainPtr nd = virDomainDefineXML(op->conn, edited);
        if (!nd)
                return error_set(err, vm_virt_errno(), "domain %s: libvirt refused the new definition for disk %s: %s",
                               op->d.name, target, vm_virt_text());
        virDomainFree(nd);
        return 0;
}

static enum engine_verdict on_progress(const struct engine_progress *ep, void *userdata) {
        struct vm_progress_ctx *c = userdata;
        return c->p->progress ? c->p->progress(c->disk, ep, c->p->progress_userdata) : ENGINE_CONTINUE;
}

void vm_volume_params(const struct vm_params *p, struct vm_disk *k, struct vm_progress_ctx *ctx,
                      struct volume_params *vp) {
        memset(vp, 0, sizeof *vp);
        vp->path = k->path;
        vp->key.providers = p->providers;
        vp->max_rate = p->max_rate;
        ctx->p = p;
        ctx->disk = k;
        vp->progress = on_progress;
        vp->progress_userdata = ctx;
}

/* A disk vmcrypt cannot work on is left alone with a note, not an error: a cdrom
 * image or a qcow2 disk does not stop the VM's raw disks from being encrypted. */
static bool workable(const struct vm_disk *k, bool encrypt, struct vm_disk_result *dr) {
        if (k->readonly) {
                snprintf(dr->note, sizeof dr->note, "read-only disk: left alone");
                return false;
        }
        /* A block device has no room for a header in front, and QEMU's luks driver
         * takes no detached header. */
        if (encrypt && k->state == VM_DISK_PLAIN && strcmp(k->source_type, "block") == 0) {
                snprintf(dr->note, sizeof dr->note, "block device %s: no room for a LUKS1 header in front, and "
                         "QEMU's luks driver takes no detached header; not supported yet", k->path);
                return false;
        }
        if (k->state == VM_DISK_UNKNOWN && k->status_error == -EOPNOTSUPP) {
                snprintf(dr->note, sizeof dr->note, "%s", k->status_text);
                return false;
        }
        return true;
}

struct vm_disk_result *vm_disk_row(const struct vm_params *p, struct vm_disk *k, bool encrypt,
                                   struct vm_result *res) {
        if (!vm_op_selected(k, p->volumes) || res->n >= VM_MAX_DISKS)
                return NULL;
        struct vm_disk_result *dr = &res->disks[res->n++];
        snprintf(dr->target, sizeof dr->target, "%s", k->target);
        snprintf(dr->path, sizeof dr->path, "%s", k->path ? k->path : "");
        return workable(k, encrypt, dr) ? dr : NULL;
}

int vm_refuse_disk(const struct vm_op *op, const struct vm_disk *k, struct error *err) {
        if (k->state == VM_DISK_UNKNOWN)
                return error_set(err, k->status_error, "domain %s, disk %s (%s): %s", op->d.name, k->target, k->path,
                               k->status_text);
        return error_set(err, -EINPROGRESS, "domain %s, disk %s (%s): its %s job is in progress; finish it first "
                       "(vmcrypt disk resume %s)", op->d.name, k->target, k->path,
                       engine_operation_to_string(k->status.job), k->path);
}

int vm_job_failed(struct vm_op *op, struct vm_disk *k, const char *what, int r, const struct volume_result *vr,
                  const struct error *ve, struct error *err) {
        return error_wrap(err, ve, r, "domain %s, disk %s (%s): %s failed: %s%s", op->d.name, k->target, k->path, what,
                       ve->text, vr->interrupted ? "; the job waits: run the same vmcrypt vm command again "
                       "(or vmcrypt disk resume) to finish it" : "");
}

/* The VM's provider and KEK: --provider/--kek, else those its encrypted disks
 * already use, else the default provider of providers.json and no KEK yet (the
 * first disk creates it). */
static int find_vm_kek(const struct vm_params *p, struct vm_op *op, struct vm_result *res, struct error *err) {
        if (p->provider)
                snprintf(res->provider, sizeof res->provider, "%s", p->provider);
        char provider[128], kek[256];
        if (p->kek) {
                snprintf(res->kek, sizeof res->kek, "%s", p->kek);
        } else if (vm_op_vm_kek(op, provider, kek) && (!p->provider || strcmp(p->provider, provider) == 0)) {
                snprintf(res->provider, sizeof res->provider, "%s", provider);
                snprintf(res->kek, sizeof res->kek, "%s", kek);
        }
        if (res->provider[0])
                return 0;
        _cleanup_(provider_configs_freep) struct provider_configs *cs = NULL;
        struct error e = { 0 };
        int r = provider_config_load(p->providers, &cs, &e);
        if (r < 0)
                return error_wrap(err, &e, r, "domain %s: %s", op->d.name, e.text);
        const struct provider_config *c = provider_config_find(cs, NULL);
        if (!c)
                return error_set(err, -EINVAL, "domain %s: no key provider named: give --provider NAME, or set "
                               "\"default\" in %s", op->d.name, cs->path);
        snprintf(res->provider, sizeof res->provider, "%s", c->name);
        return 0;
}

bool vm_op_vm_kek(const struct vm_op *op, char provider[static 128], char kek[static 256]) {
        /* Mid-rekey the disks name two KEKs; the one they are moving to is the VM's. */
        if (op->d.meta.rekey_kek[0]) {
                snprintf(provider, 128, "%s", op->d.meta.rekey_provider);
                snprintf(kek, 256, "%s", op->d.meta.rekey_kek);
                return true;
        }
        for (int pass = 0; pass < 2; pass++)
                for (size_t i = 0; i < op->d.n_disks; i++) {
                        const struct vm_disk *k = &op->d.disks[i];
                        if (!k->kek[0] || k->os != (pass == 0))
                                continue;
                        snprintf(provider, 128, "%s", k->provider);
                        snprintf(kek, 256, "%s", k->kek);
                        return true;
                }
        return false;
}

int vm_op_set_meta(struct vm_op *op, const struct vm_meta *m, struct error *err) {
        _cleanup_(freep) char *xml = NULL;
        int r = vm_xml_meta_element(m, &xml);
        if (r < 0)
                return error_set(err, r, "domain %s: cannot build vmcrypt's metadata", op->d.name);
        if (virDomainSetMetadata(op->dom, VIR_DOMAIN_METADATA_ELEMENT, xml, VM_META_KEY, VM_META_NS,
                                 VIR_DOMAIN_AFFECT_CONFIG) < 0)
                return error_set(err, vm_virt_errno(), "domain %s: libvirt refused vmcrypt's metadata: %s", op->d.name,
                               vm_virt_text());
        op->d.meta = *m;
        return 0;
}

int vm_encrypt(const struct vm_params *p, struct vm_result *res, struct error *err) {
        _cleanup_(vm_op_close) struct vm_op op = { 0 };
        int r = vm_op_open(p, &op, res, err);
        if (r >= 0)
                r = vm_op_require_off(&op, "encryption", err);
        if (r < 0)
                return r;
        r = find_vm_kek(p, &op, res, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < op.d.n_disks && res->n < VM_MAX_DISKS; i++) {
                struct vm_disk *k = &op.d.disks[i];
                struct vm_disk_result *dr = vm_disk_row(p, k, true, res);
                if (!dr)
                        continue;
                struct volume_params vp;
                struct volume_result vr;
                struct error ve;
                struct vm_progress_ctx ctx;
                vm_volume_params(p, k, &ctx, &vp);
                switch (k->state) {
                case VM_DISK_UNKNOWN:
                case VM_DISK_DECRYPTING:
                case VM_DISK_REENCRYPTING:
                        return vm_refuse_disk(&op, k, err);
                case VM_DISK_ENCRYPTING:
                        r = volume_resume(&vp, &vr, &ve);
                        if (r < 0)
                                return vm_job_failed(&op, k, "resuming the encryption", r, &vr, &ve, err);
                        dr->action = VM_ACTION_RESUMED;
                        /* A kill during the first disk leaves the VM's KEK only on
                         * that disk: adopt it, or the next disk would make a second. */
                        vm_disk_read(k, VM_INV_KEYS);
                        if (!res->kek[0] && k->kek[0]) {
                                snprintf(res->provider, sizeof res->provider, "%s", k->provider);
                                snprintf(res->kek, sizeof res->kek, "%s", k->kek);
                        }
                        break;
                case VM_DISK_PLAIN:
                        /* LUKS1: QEMU 7.2's luks driver opens nothing else. */
                        vp.format = DISK_FORMAT_LUKS1;
                        vp.key.provider = res->provider[0] ? res->provider : NULL;
                        vp.key.kek = res->kek[0] ? res->kek : NULL;
                        vp.key.vm_name = op.d.name;
                        vp.key.vm_uuid = op.d.uuid;
                        r = volume_encrypt(&vp, &vr, &ve);
                        if (r < 0)
                                return vm_job_failed(&op, k, "encryption", r, &vr, &ve, err);
                        if (!res->kek[0]) {
                                res->kek_created = true;
                                snprintf(res->kek, sizeof res->kek, "%s", vr.kek);
                        }
                        snprintf(res->provider, sizeof res->provider, "%s", vr.provider);
                        dr->action = VM_ACTION_DONE;
                        break;
                case VM_DISK_ENCRYPTED:
                        dr->action = VM_ACTION_ALREADY;
                        if (k->status.format == DISK_FORMAT_LUKS2)
                                snprintf(dr->note, sizeof dr->note, "LUKS2 (encrypted outside vm encrypt): "
                                         "QEMU 7.2 cannot open it");
                        break;
                }
                if (k->xml_encrypted && k->secret_uuid[0])
                        continue;
                char uuid[VM_UUID_LEN];
                r = vm_uuid_new(uuid);
                if (r < 0)
                        return error_set(err, r, "no random bytes for a secret UUID");
                r = vm_op_set_encryption(&op, k->target, uuid, err);
                if (r < 0)
                        return r;
                if (dr->action == VM_ACTION_ALREADY)
                        dr->action = VM_ACTION_XML;
        }
        /* The VM home last: its NVRAM joins the VM's KEK. */
        return p->volumes == VM_VOLUMES_ALL ? vm_home_encrypt(&op, p, res, err) : 0;
}

/* What became of the KEK a decrypted disk used: the VM's KEK goes with its last disk. */
void vm_release_note(struct vm_disk_result *dr, const struct volume_result *vr) {
        for (unsigned i = 0; i < vr->n_released; i++) {
                const struct kek_release *k = &vr->released[i];
                if (k->error < 0)
                        snprintf(dr->note, sizeof(dr->note), "KEK %s could not be released: %.160s", k->kek, k->text);
                else if (k->retired)
                        snprintf(dr->note, sizeof(dr->note), "KEK %s retired (no disk uses it any more)", k->kek);
                else if (k->tracked)
                        snprintf(dr->note, sizeof(dr->note), "KEK %s stays (%u disk(s) still use it)", k->kek, k->users);
        }
}

int vm_decrypt(const struct vm_params *p, struct vm_result *res, struct error *err) {
        _cleanup_(vm_op_close) struct vm_op op = { 0 };
        int r = vm_op_open(p, &op, res, err);
        if (r >= 0)
                r = vm_op_require_off(&op, "decryption", err);
        if (r >= 0)
                r = vm_vtpm_check_decrypt(&op, p->volumes, err);
        if (r < 0)
                return r;
        /* Data disks first, the OS disk last: until the end the VM's system stays
         * on the encrypted disk, as in the seeds' order. */
        for (int pass = 0; pass < 2; pass++)
                for (size_t i = 0; i < op.d.n_disks && res->n < VM_MAX_DISKS; i++) {
                        struct vm_disk *k = &op.d.disks[i];
                        if (k->os != (pass == 1))
                                continue;
                        struct vm_disk_result *dr = vm_disk_row(p, k, false, res);
                        if (!dr)
                                continue;
                        struct volume_params vp;
                        struct volume_result vr;
                        struct error ve;
                        struct vm_progress_ctx ctx;
                        vm_volume_params(p, k, &ctx, &vp);
                        switch (k->state) {
                        case VM_DISK_UNKNOWN:
                        case VM_DISK_ENCRYPTING:
                        case VM_DISK_REENCRYPTING:
                                return vm_refuse_disk(&op, k, err);
                        case VM_DISK_DECRYPTING:
                                r = volume_resume(&vp, &vr, &ve);
                                if (r < 0)
                                        return vm_job_failed(&op, k, "resuming the decryption", r, &vr, &ve, err);
                                dr->action = VM_ACTION_RESUMED;
                                vm_release_note(dr, &vr);
                                break;
                        case VM_DISK_ENCRYPTED:
                                r = volume_decrypt(&vp, &vr, &ve);
                                if (r < 0)
                                        return vm_job_failed(&op, k, "decryption", r, &vr, &ve, err);
                                dr->action = VM_ACTION_DONE;
                                vm_release_note(dr, &vr);
                                break;
                        case VM_DISK_PLAIN:
                                dr->action = k->xml_encrypted ? VM_ACTION_XML : VM_ACTION_ALREADY;
                                break;
                        }
                        if (!k->xml_encrypted)
                                continue;
                        r = vm_op_set_encryption(&op, k->target, NULL, err);
                        if (r < 0)
                                return r;
                }
        /* The VM home (NVRAM) after every disk, as in the seeds' order. */
        if (p->volumes == VM_VOLUMES_ALL) {
                r = vm_home_decrypt(&op, p, res, err);
                if (r < 0)
                        return r;
        }
        /* No disk is left for an unfinished rekey to move. */
        if (p->volumes == VM_VOLUMES_ALL && op.d.meta.rekey_kek[0]) {
                struct vm_meta m = op.d.meta;
                m.rekey_provider[0] = m.rekey_kek[0] = '\0';
                m.rekey_deep = false;
                return vm_op_set_meta(&op, &m, err);
        }
        return 0;
}
