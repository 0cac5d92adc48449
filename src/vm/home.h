/* The VM home beyond disks and vTPM: the UEFI NVRAM (home.c), encrypted like a
 * disk with the VM's KEK where libvirt and QEMU allow it. */
#pragma once

#include <stdlib.h>

#include "keys/unlock.h"
#include "vm/vm-ops.h"

/* The <nvram> of domain XML as a disk named "nvram" (path NULL for a network
 * NVRAM); 1 when there is one, 0 when not, -EBADMSG, -ENOMEM. */
int vm_xml_nvram(const char *xml, struct vm_disk *ret);
/* xml with the NVRAM's <encryption format='luks' engine='qemu'> naming
 * secret_uuid, or without it (NULL); the text form of <nvram> becomes
 * type='file' with a <source>. -ENOENT no NVRAM, -EOPNOTSUPP not a file. */
int vm_xml_nvram_set_encryption(const char *xml, const char *secret_uuid, char **ret);

static inline void vm_disk_clear(struct vm_disk *k) {
        free(k->path);
        k->path = NULL;
}

/* vm_encrypt of a whole VM, after its disks: the NVRAM file in place (LUKS1) under
 * the VM's KEK (res->provider, res->kek), then its XML; a row "nvram" in res. */
/* The NVRAM of the domain's persistent definition as a disk, its state and key
 * binding read from the file; 0 with k->path NULL when there is none to work on. */
int vm_home_nvram(struct vm_op *op, struct vm_disk *k, struct error *err);
int vm_home_encrypt(struct vm_op *op, const struct vm_params *p, struct vm_result *res, struct error *err);
/* vm_decrypt of a whole VM, after its disks: the NVRAM back to plain, XML unwired. */
int vm_home_decrypt(struct vm_op *op, const struct vm_params *p, struct vm_result *res, struct error *err);
/* vm_start: an encrypted NVRAM's secret unwrapped and defined as an ephemeral,
 * private libvirt secret (*ret, NULL when there is none); err names the NVRAM,
 * the provider and the KEK when the key server refuses. */
int vm_home_start_secret(struct vm_op *op, const char *providers, struct unlocker **u, struct vm_result *res,
                         virSecretPtr *ret, struct error *err);
