/* What encrypt.c and start.c share: opening a domain for an operation, the disk
 * selection, and the edit of a disk's <encryption> in the persistent definition. */
#pragma once

#include "vm/vm-internal.h"

struct vm_op {
        virConnectPtr conn;
        virDomainPtr dom;
        struct vm_domain d;
};

/* Connect, look the domain up and read it with its disks' keys; fills res's
 * identity. On failure op is cleared all the same (vm_op_close is safe). */
int vm_op_open(const struct vm_params *p, struct vm_op *op, struct vm_result *res, struct vm_error *err);
void vm_op_close(struct vm_op *op);
/* -EBUSY, naming the domain and its QEMU, when it runs; -EINVAL when transient. */
int vm_op_require_off(struct vm_op *op, const char *what, struct vm_error *err);
bool vm_op_selected(const struct vm_disk *k, enum vm_volume_type t);
/* Rewrite the persistent definition: the disk at target gets a luks <encryption>
 * naming secret_uuid, or loses it (NULL). */
int vm_op_set_encryption(struct vm_op *op, const char *target, const char *secret_uuid, struct vm_error *err);
struct volume_result;
/* dr's note: what became of the KEK(s) a decrypted disk no longer uses. */
void vm_release_note(struct vm_disk_result *dr, const struct volume_result *vr);
