/* A VM's encryption state in the vocabulary of the cloud seeds (Azure Disk
 * Encryption's OsVolumeEncrypted / DataVolumesEncrypted), summed up from what each
 * disk says about itself. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vm/vm-internal.h"

const char *vm_volume_status_name(enum vm_volume_status s) {
        switch (s) {
        case VM_ENCRYPTION_IN_PROGRESS: return "EncryptionInProgress";
        case VM_ENCRYPTED: return "Encrypted";
        case VM_DECRYPTION_IN_PROGRESS: return "DecryptionInProgress";
        case VM_NOT_MOUNTED: return "NotMounted";
        default: return "NotEncrypted";
        }
}

/* A job wins over the rest (it is what the user waits for); a group is Encrypted
 * only when every disk in it is. A deep rekey counts as encryption in progress. */
static enum vm_volume_status group(const struct vm_domain *d, bool os) {
        size_t n = 0, enc = 0;
        bool encrypting = false, decrypting = false;
        for (size_t i = 0; i < d->n_disks; i++) {
                const struct vm_disk *k = &d->disks[i];
                if (k->os != os)
                        continue;
                n++;
                enc += k->state == VM_DISK_ENCRYPTED;
                encrypting |= k->state == VM_DISK_ENCRYPTING || k->state == VM_DISK_REENCRYPTING;
                decrypting |= k->state == VM_DISK_DECRYPTING;
        }
        if (n == 0)
                return VM_NOT_MOUNTED;
        if (encrypting)
                return VM_ENCRYPTION_IN_PROGRESS;
        if (decrypting)
                return VM_DECRYPTION_IN_PROGRESS;
        return enc == n ? VM_ENCRYPTED : VM_NOT_ENCRYPTED;
}

static void add(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add(char *buf, size_t size, const char *fmt, ...) {
        size_t len = strlen(buf);
        if (len + 1 >= size)
                return;
        if (len)
                snprintf(buf + len, size - len, "; "), len = strlen(buf);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf + len, size - len, fmt, ap);
        va_end(ap);
}

void vm_summarize(struct vm_domain *d) {
        struct vm_summary *s = &d->summary;
        s->os = group(d, true);
        s->data = group(d, false);
        s->message[0] = '\0';
        size_t n_data = 0, enc_data = 0;
        for (size_t i = 0; i < d->n_disks; i++) {
                const struct vm_disk *k = &d->disks[i];
                if (!k->os) {
                        n_data++;
                        enc_data += k->state == VM_DISK_ENCRYPTED;
                }
                if (k->status.job != ENGINE_OP_NONE && k->state != VM_DISK_UNKNOWN) {
                        char rate[96] = "";
                        if (k->rate > 0)
                                snprintf(rate, sizeof rate, ", %.1f MiB/s, %.0f s left", k->rate / 1048576.0,
                                         k->eta);
                        add(s->message, sizeof s->message, "%s: %s %.1f%% (%llu of %llu MiB)%s%s", k->target,
                            engine_operation_to_string(k->status.job), vm_disk_percent(k),
                            (unsigned long long) (k->status.job_done >> 20),
                            (unsigned long long) (k->status.job_total >> 20), rate,
                            k->status.job_finalizing ? ", finishing" : "");
                }
                if (k->note[0])
                        add(s->message, sizeof s->message, "%s: %s", k->target, k->note);
                if (k->state == VM_DISK_UNKNOWN)
                        add(s->message, sizeof s->message, "%s: state unknown: %s", k->target, k->status_text);
        }
        if (s->message[0])
                return;
        if (s->os == VM_ENCRYPTED && (s->data == VM_ENCRYPTED || s->data == VM_NOT_MOUNTED))
                add(s->message, sizeof s->message, "Encryption succeeded for all volumes");
        else if (s->os == VM_ENCRYPTED)
                add(s->message, sizeof s->message, "Encryption succeeded for the OS volume; %zu of %zu data "
                    "volumes encrypted", enc_data, n_data);
        else if (s->data == VM_ENCRYPTED)
                add(s->message, sizeof s->message, "Encryption succeeded for the data volumes; the OS volume is "
                    "not encrypted");
        else if (enc_data)
                add(s->message, sizeof s->message, "%zu of %zu data volumes encrypted", enc_data, n_data);
        else if (d->n_disks == 0)
                add(s->message, sizeof s->message, "No disks");
        else
                add(s->message, sizeof s->message, "Not encrypted");
}
