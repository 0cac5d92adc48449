/* What encrypt.c and start.c share: opening a domain for an operation, the disk
 * selection, and the edit of a disk's <encryption> in the persistent definition. */
#pragma once

#include "shared/secret.h"
#include "vm/vm-internal.h"

struct vm_op {
        virConnectPtr conn;
        virDomainPtr dom;
        struct vm_domain d;
        bool check;          /* vm_check: keys are unwrapped and proved, never handed to libvirt */
};

/* Connect, look the domain up and read it with its disks' keys; fills res's
 * identity. On failure op is cleared all the same (vm_op_close is safe). */
int vm_op_open(const struct vm_params *p, struct vm_op *op, struct vm_result *res, struct error *err);
void vm_op_close(struct vm_op *op);
/* -EBUSY, naming the domain and its QEMU, when it runs; -EINVAL when transient. */
int vm_op_require_off(struct vm_op *op, const char *what, struct error *err);
bool vm_op_selected(const struct vm_disk *k, enum vm_volume_type t);
/* Rewrite the persistent definition: the disk at target gets a luks <encryption>
 * naming secret_uuid, or loses it (NULL). */
int vm_op_set_encryption(struct vm_op *op, const char *target, const char *secret_uuid, struct error *err);

/* An ephemeral, private libvirt secret (UUID k->secret_uuid) holding the disk's
 * passphrase; -errno with err naming the disk. */
int vm_secret_define(struct vm_op *op, const struct vm_disk *k, const struct secret *value, virSecretPtr *ret,
                     struct error *err);
/* Undefine and free the n secrets (NULL entries skipped). */
void vm_secrets_undefine(virSecretPtr *s, size_t n);

/* Store m as the domain's vmcrypt metadata (persistent definition). */
int vm_op_set_meta(struct vm_op *op, const struct vm_meta *m, struct error *err);
/* The VM's provider and KEK: a rekey's target when one is under way, else the
 * KEK of its OS disk, else of another encrypted disk; false when it has none. */
bool vm_op_vm_kek(const struct vm_op *op, char provider[static 128], char kek[static 256]);

/* For the disk jobs of encrypt.c and rekey.c. */
struct vm_progress_ctx {
        const struct vm_params *p;
        const struct vm_disk *disk;
};
struct volume_params;
struct volume_result;
struct error;
void vm_volume_params(const struct vm_params *p, struct vm_disk *k, struct vm_progress_ctx *ctx,
                      struct volume_params *vp);
/* The result row for disk k, or NULL when it is not selected or left alone (the
 * row says why). */
struct vm_disk_result *vm_disk_row(const struct vm_params *p, struct vm_disk *k, bool encrypt,
                                   struct vm_result *res);
/* A disk whose state stops the command: unreadable, or a job of another kind. */
int vm_refuse_disk(const struct vm_op *op, const struct vm_disk *k, struct error *err);
int vm_job_failed(struct vm_op *op, struct vm_disk *k, const char *what, int r, const struct volume_result *vr,
                  const struct error *ve, struct error *err);
struct volume_result;
/* dr's note: what became of the KEK(s) a decrypted disk no longer uses. */
void vm_release_note(struct vm_disk_result *dr, const struct volume_result *vr);
