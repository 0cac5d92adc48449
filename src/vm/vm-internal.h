/* Pieces shared by the files of src/vm: errors, the libvirt seam, the domain XML
 * (libxml2) and the reading of one disk's state. */
#pragma once

#include <libvirt/libvirt.h>

#include "vm/vm.h"

void vm_error_clear(struct vm_error *e);
/* Set e (the first explanation of a call wins) and return r (< 0). */
int vm_fail(struct vm_error *e, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* libvirt's last error as -errno (VIR_ERR_NO_DOMAIN -> -ENOENT, ...) and text. */
int vm_virt_errno(void);
const char *vm_virt_text(void);

/* Connect to uri (NULL: VM_DEFAULT_URI); libvirt's own error printing is silenced
 * for the whole process: a library does not print. */
int vm_conn_open(const char *uri, virConnectPtr *ret, struct vm_error *err);
/* The domain called name (or with that UUID); -ENOENT with err set. */
int vm_domain_lookup(virConnectPtr conn, const char *name, virDomainPtr *ret, struct vm_error *err);
/* Fill d from the domain: identity, state, QEMU's PID, disks from the inactive XML
 * (what the next start uses) and each disk's state read from the disk. */
int vm_domain_read(virDomainPtr dom, unsigned flags, struct vm_domain *d, struct vm_error *err);
void vm_domain_clear(struct vm_domain *d);

/* The disks (device='disk') of domain XML, in document order, with os set; 0 or
 * -EBADMSG (unparsable), -ENOMEM. */
int vm_xml_disks(const char *xml, struct vm_disk **ret, size_t *ret_n);
/* xml with the <encryption> of the disk at target set to a luks passphrase secret
 * (secret_uuid), or removed (NULL). -ENOENT when no such disk. */
int vm_xml_set_encryption(const char *xml, const char *target, const char *secret_uuid, char **ret);

/* The namespace of vmcrypt's element in a domain's <metadata>. */
#define VM_META_NS "urn:vmcrypt:vm:1"
#define VM_META_KEY "vmcrypt"

/* vmcrypt's metadata in domain XML (all off when there is none); 0, -EBADMSG. */
int vm_xml_meta(const char *xml, struct vm_meta *m);
/* The element that virDomainSetMetadata stores for m; NULL in *ret when m holds
 * nothing (the element is then removed). */
int vm_xml_meta_element(const struct vm_meta *m, char **ret);
/* A <disk> element for a raw image file at target (virtio), with a luks
 * <encryption> naming secret_uuid when that is not NULL. */
int vm_xml_disk_new(const char *path, const char *target, const char *secret_uuid, char **ret);

/* Read one disk's state from the disk (volume_status), and with VM_INV_KEYS its
 * key provider and KEK from its vmcrypt token. */
void vm_disk_read(struct vm_disk *d, unsigned flags);
/* d->summary from its disks. */
void vm_summarize(struct vm_domain *d);

/* The PID of the QEMU running the domain with this UUID on this host, 0 if none is
 * found (a remote URI, another PID namespace). */
pid_t vm_qemu_pid(const char *uuid);
/* A new random (version 4) UUID. */
int vm_uuid_new(char out[VM_UUID_LEN]);
