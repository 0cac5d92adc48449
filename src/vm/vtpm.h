/* The vTPM of a VM, inside src/vm: what the domain XML says about it (its <tpm>
 * device and vmcrypt's record in <metadata>), and the pieces start.c and
 * encrypt.c call. The record holds the vTPM state secret only wrapped by the VM's
 * KEK, with the provider and KEK id to unwrap it; it lives in its own XML
 * namespace (VM_VTPM_NS), so that no other <metadata> element, vmcrypt's or
 * another tool's, can collide with it: libvirt keeps one element per namespace. */
#pragma once

#include <stdbool.h>

#include "keys/token.h"
#include "keys/unlock.h"
#include "vm/vm-ops.h"

#define VM_VTPM_NS "https://vmcrypt.dev/xmlns/vtpm/1"
#define VM_VTPM_NS_PREFIX "vmcrypt-vtpm"

/* vmcrypt's record of a vTPM, as text (base64 for the binary fields). */
struct vm_vtpm_meta {
        char secret_uuid[VM_UUID_LEN]; /* the libvirt secret <encryption secret=> names */
        char provider[128];
        char kek[256];
        char method[32];              /* TOKEN_METHOD_* */
        char cipher[64];              /* kmip-encrypt: the server's cipher ("" none) */
        char wrapped[1400];           /* base64 of up to TOKEN_WRAPPED_MAX bytes */
        char iv[96];
        char tag[96];
        char created[40];
};

/* What a domain XML says about TPMs. */
struct vm_vtpm_xml {
        bool tpm;                     /* a <tpm> device */
        char model[32];               /* tpm-crb, tpm-tis, ... */
        char backend[32];             /* emulator, passthrough, ... */
        char tpm_secret[VM_UUID_LEN]; /* its <encryption secret=> ("" none) */
        bool meta;                    /* vmcrypt's record is there ... */
        int meta_error;               /* ... but damaged (-EBADMSG) */
        struct vm_vtpm_meta m;
};

/* Read the <tpm> device and vmcrypt's vTPM record of domain XML; 0, -EBADMSG
 * when the XML does not parse, -ENOMEM. A damaged record is no error here: it
 * shows in ret->meta_error. */
int vm_xml_vtpm(const char *xml, struct vm_vtpm_xml *ret);
/* Whether the TPM is the one vmcrypt added: the record names its secret. */
bool vm_vtpm_is_ours(const struct vm_vtpm_xml *x);
/* xml with an emulated TPM 2.0 of model (tpm-crb, tpm-tis) whose state libvirt
 * encrypts with secret m->secret_uuid, and the record m, in one document (so one
 * define adds both or neither). -EEXIST when xml has a TPM. */
int vm_xml_vtpm_add(const char *xml, const char *model, const struct vm_vtpm_meta *m, char **ret);
/* xml without any <tpm> device and without vmcrypt's record. */
int vm_xml_vtpm_remove(const char *xml, char **ret);

/* The record as a token a provider unwraps; -EBADMSG when a field is malformed. */
int vm_vtpm_meta_to_token(const struct vm_vtpm_meta *m, struct vmcrypt_token **ret);

/* For vm_start: when the domain has vmcrypt's vTPM, unwrap its state secret (u is
 * made when NULL) and define it as an ephemeral, private libvirt secret for the
 * start; *ret stays NULL when there is nothing to do. On a refused unwrap err
 * names the vTPM, the provider and the KEK. For vm_check (op->check) nothing is
 * defined: 1 when the key was unwrapped, 0 when there is no vTPM of vmcrypt's. */
int vm_vtpm_start_secret(struct vm_op *op, const char *providers, struct unlocker **u, virSecretPtr *ret,
                         struct error *err);
/* Undefine and free the secret of vm_vtpm_start_secret; NULL is fine. */
void vm_vtpm_secret_drop(virSecretPtr *s);
/* For vm_rekey: re-wrap vmcrypt's vTPM state secret (the same secret: swtpm's state
 * is untouched) under kek at provider and release the old KEK; dr gets the row
 * ("vtpm"). 0 and dr untouched when the domain has no vmcrypt vTPM. */
int vm_vtpm_rekey(struct vm_op *op, const char *providers, const char *provider, const char *kek,
                  struct vm_disk_result *dr, struct error *err);
/* For vm_decrypt: refuse (-EBUSY) a decryption that would leave vmcrypt's vTPM on
 * a VM with no encrypted disk: the VM home goes last, and only without a vTPM. */
int vm_vtpm_check_decrypt(struct vm_op *op, enum vm_volume_type t, struct error *err);
