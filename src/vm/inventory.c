/* The inventory: domains, their disks, and each disk's encryption state read from
 * the disk itself (never remembered: a disk decrypted behind vmcrypt's back shows
 * as plain, and a job started in another terminal shows its progress). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keys/unlock.h"
#include "shared/macro.h"
#include "vm/vm-internal.h"
#include "volume/volume.h"

const char *vm_disk_state_name(enum vm_disk_state s) {
        switch (s) {
        case VM_DISK_PLAIN: return "plain";
        case VM_DISK_ENCRYPTED: return "encrypted";
        case VM_DISK_ENCRYPTING: return "encrypting";
        case VM_DISK_DECRYPTING: return "decrypting";
        case VM_DISK_REENCRYPTING: return "reencrypting";
        default: return "unknown";
        }
}

double vm_disk_percent(const struct vm_disk *d) {
        const struct engine_status *st = &d->status;
        if (st->job == ENGINE_OP_NONE || !st->job_total)
                return 100.0;
        return 100.0 * (double) st->job_done / (double) st->job_total;
}

static const char *state_name(int s) {
        switch (s) {
        case VIR_DOMAIN_RUNNING: return "running";
        case VIR_DOMAIN_BLOCKED: return "blocked";
        case VIR_DOMAIN_PAUSED: return "paused";
        case VIR_DOMAIN_SHUTDOWN: return "shutting down";
        case VIR_DOMAIN_SHUTOFF: return "shut off";
        case VIR_DOMAIN_CRASHED: return "crashed";
        case VIR_DOMAIN_PMSUSPENDED: return "suspended";
        default: return "no state";
        }
}

static void read_keys(struct vm_disk *d) {
        struct crypt_device *cd = NULL;
        if (unlock_load(d->path, NULL, &cd, NULL) < 0)
                return;
        _cleanup_(token_list_freep) struct token_list *l = NULL;
        if (token_store_list(cd, d->path, &l) >= 0)
                for (size_t i = 0; i < l->n; i++)
                        if (l->e[i].tok) {
                                snprintf(d->provider, sizeof d->provider, "%s", l->e[i].tok->provider);
                                snprintf(d->kek, sizeof d->kek, "%s", l->e[i].tok->kek_id);
                                break;
                        }
        crypt_free(cd);
}

void vm_disk_read(struct vm_disk *d, unsigned flags) {
        d->state = VM_DISK_UNKNOWN;
        d->note[0] = '\0';
        if (!d->path) {
                d->status_error = -EOPNOTSUPP;
                snprintf(d->status_text, sizeof d->status_text, "a %s disk: vmcrypt reads file and block disks only",
                         d->source_type[0] ? d->source_type : "sourceless");
                return;
        }
        /* Only raw disks are LUKS or plain to the host; a qcow2 file read as raw
         * would look plain whatever its guest wrote. */
        if (d->format[0] && strcmp(d->format, "raw") != 0) {
                d->status_error = -EOPNOTSUPP;
                snprintf(d->status_text, sizeof d->status_text,
                         "format %s: vmcrypt encrypts raw disks only (qemu-img convert -O raw first)", d->format);
                return;
        }
        struct volume_params p = { .path = d->path };
        struct volume_result res;
        struct error err;
        /* A status read that meets a running job's header mid-change sees it torn
         * (seen once per LUKS1 decrypt: "corrupted (both copies)"): the engine
         * writes it in a moment, so read again before calling the disk damaged. */
        int r = volume_status(&p, &res, &err);
        for (int i = 0; i < 5 && (r == -EUCLEAN || r == -EBADMSG); i++) {
                nanosleep(&(struct timespec){ .tv_nsec = 20 * 1000 * 1000 }, NULL);
                r = volume_status(&p, &res, &err);
        }
        if (r < 0) {
                d->status_error = r;
                snprintf(d->status_text, sizeof d->status_text, "%.255s", err.text);
                return;
        }
        d->status_error = 0;
        d->status_text[0] = '\0';
        d->status = res.status;
        switch (res.status.job) {
        case ENGINE_OP_ENCRYPT: d->state = VM_DISK_ENCRYPTING; break;
        case ENGINE_OP_DECRYPT: d->state = VM_DISK_DECRYPTING; break;
        case ENGINE_OP_REENCRYPT: d->state = VM_DISK_REENCRYPTING; break;
        default: d->state = res.status.format == DISK_FORMAT_NONE ? VM_DISK_PLAIN : VM_DISK_ENCRYPTED;
        }
        if (d->state == VM_DISK_ENCRYPTED && (flags & VM_INV_KEYS))
                read_keys(d);
        /* The domain XML and the disk disagree: say which way, and what fixes it. */
        if (d->xml_encrypted && d->state == VM_DISK_PLAIN)
                snprintf(d->note, sizeof d->note,
                         "the domain XML still has <encryption> (secret %s) but the disk is plain: it was "
                         "decrypted outside vmcrypt (cryptsetup?); 'vmcrypt vm decrypt' fixes the XML",
                         d->secret_uuid[0] ? d->secret_uuid : "none");
        else if (!d->xml_encrypted && d->state == VM_DISK_ENCRYPTED)
                snprintf(d->note, sizeof d->note,
                         "the disk is LUKS but the domain XML has no <encryption>: the VM cannot read it; "
                         "'vmcrypt vm encrypt' finishes the wiring");
        else if (d->state == VM_DISK_ENCRYPTED && d->status.format == DISK_FORMAT_LUKS2)
                snprintf(d->note, sizeof d->note, "LUKS2: QEMU 7.2's luks driver opens LUKS1 only");
}

void vm_domain_clear(struct vm_domain *d) {
        for (size_t i = 0; i < d->n_disks; i++)
                free(d->disks[i].path);
        free(d->disks);
        d->disks = NULL;
        d->n_disks = 0;
}

int vm_domain_read(virDomainPtr dom, unsigned flags, struct vm_domain *d, struct vm_error *err) {
        memset(d, 0, sizeof *d);
        const char *name = virDomainGetName(dom);
        snprintf(d->name, sizeof d->name, "%s", name ? name : "");
        if (virDomainGetUUIDString(dom, d->uuid) < 0)
                return vm_fail(err, vm_virt_errno(), "domain %s: no UUID: %s", d->name, vm_virt_text());
        int state = VIR_DOMAIN_NOSTATE, reason;
        if (virDomainGetState(dom, &state, &reason, 0) < 0)
                return vm_fail(err, vm_virt_errno(), "domain %s: no state: %s", d->name, vm_virt_text());
        snprintf(d->state, sizeof d->state, "%s", state_name(state));
        d->active = virDomainIsActive(dom) == 1;
        d->persistent = virDomainIsPersistent(dom) == 1;
        /* The inactive XML is what the next start uses, and what vmcrypt edits. */
        _cleanup_(freep) char *xml = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_INACTIVE);
        if (!xml)
                return vm_fail(err, vm_virt_errno(), "domain %s: cannot read its XML: %s", d->name, vm_virt_text());
        int r = vm_xml_disks(xml, &d->disks, &d->n_disks);
        if (r < 0)
                return vm_fail(err, r, "domain %s: cannot parse its XML", d->name);
        (void) vm_xml_meta(xml, &d->meta);
        for (size_t i = 0; i < d->n_disks; i++)
                vm_disk_read(&d->disks[i], flags);
        return 0;
}

static double now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* Rate and ETA of running jobs: the job area holds no clock, so read it twice. */
static void sample_rates(struct vm_inventory *inv, unsigned flags) {
        size_t jobs = 0;
        for (size_t i = 0; i < inv->n; i++)
                for (size_t j = 0; j < inv->domains[i].n_disks; j++)
                        jobs += inv->domains[i].disks[j].status.job != ENGINE_OP_NONE;
        if (!jobs)
                return;
        double t0 = now();
        nanosleep(&(struct timespec){ .tv_sec = 1 }, NULL);
        for (size_t i = 0; i < inv->n; i++)
                for (size_t j = 0; j < inv->domains[i].n_disks; j++) {
                        struct vm_disk *d = &inv->domains[i].disks[j];
                        if (d->status.job == ENGINE_OP_NONE)
                                continue;
                        uint64_t done0 = d->status.job_done;
                        vm_disk_read(d, flags);
                        double dt = now() - t0;
                        if (d->status.job != ENGINE_OP_NONE && d->status.job_done > done0 && dt > 0) {
                                d->rate = (double) (d->status.job_done - done0) / dt;
                                d->eta = (double) (d->status.job_total - d->status.job_done) / d->rate;
                        }
                }
}

static int by_name(const void *a, const void *b) {
        return strcmp(((const struct vm_domain *) a)->name, ((const struct vm_domain *) b)->name);
}

void vm_inventory_free(struct vm_inventory *inv) {
        if (!inv)
                return;
        for (size_t i = 0; i < inv->n; i++)
                vm_domain_clear(&inv->domains[i]);
        free(inv->domains);
        free(inv);
}

static void connp(virConnectPtr *c) {
        if (*c)
                virConnectClose(*c);
}

int vm_inventory_get(const char *uri, const char *name, unsigned flags, struct vm_inventory **ret,
                     struct vm_error *err) {
        vm_error_clear(err);
        _cleanup_(connp) virConnectPtr conn = NULL;
        int r = vm_conn_open(uri, &conn, err);
        if (r < 0)
                return r;
        _cleanup_(vm_inventory_freep) struct vm_inventory *inv = calloc(1, sizeof *inv);
        if (!inv)
                return vm_fail(err, -ENOMEM, "out of memory");
        virDomainPtr *doms = NULL;
        int n;
        if (name) {
                virDomainPtr d;
                r = vm_domain_lookup(conn, name, &d, err);
                if (r < 0)
                        return r;
                doms = malloc(sizeof *doms);
                if (!doms) {
                        virDomainFree(d);
                        return vm_fail(err, -ENOMEM, "out of memory");
                }
                doms[0] = d;
                n = 1;
        } else {
                n = virConnectListAllDomains(conn, &doms, 0);
                if (n < 0)
                        return vm_fail(err, vm_virt_errno(), "cannot list the domains: %s", vm_virt_text());
        }
        inv->domains = calloc(n ? (size_t) n : 1, sizeof *inv->domains);
        r = inv->domains ? 0 : vm_fail(err, -ENOMEM, "out of memory");
        for (int i = 0; i < n; i++) {
                if (r >= 0) {
                        struct vm_domain *d = &inv->domains[inv->n];
                        r = vm_domain_read(doms[i], flags, d, err);
                        inv->n++;
                        /* One domain: say which QEMU runs it (a scan of /proc, too slow
                         * to do for every domain of a big host). */
                        if (r >= 0 && name && d->active)
                                d->qemu_pid = vm_qemu_pid(d->uuid);
                        if (r >= 0)
                                vm_summarize(d);
                }
                virDomainFree(doms[i]);
        }
        free(doms);
        if (r < 0)
                return r;
        if (flags & VM_INV_RATE) {
                sample_rates(inv, flags);
                for (size_t i = 0; i < inv->n; i++)
                        vm_summarize(&inv->domains[i]);
        }
        qsort(inv->domains, inv->n, sizeof *inv->domains, by_name);
        *ret = TAKE_PTR(inv);
        return 0;
}
