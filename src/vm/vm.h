/* Whole VMs on a KVM host, through libvirt's C API: the inventory of domains and
 * their disks with each disk's encryption state read from the disk itself; that
 * state summed up per VM in the vocabulary of the cloud seeds (OsVolumeEncrypted,
 * DataVolumesEncrypted); encrypting and decrypting every disk of a VM in place
 * with one KEK per VM; and starting an encrypted VM with its disks' secrets handed
 * to libvirt only for as long as QEMU needs them to open the disks.
 *
 * Nothing here prints or exits. Every call returns 0 or a negative errno and fills
 * the caller's struct error (shared/error.h) with one line that says what is wrong (naming the
 * domain, the disk and, for key failures, the KEK) and what to do. */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "disk/engine.h"
#include "shared/error.h"
#include "keys/provider.h"

#define VM_DEFAULT_URI "qemu:///system"
#define VM_UUID_LEN 37 /* 36 characters and the NUL */

/* A disk's state as the disk itself tells it. */
enum vm_disk_state {
        VM_DISK_UNKNOWN = 0, /* not read: network disk, unsupported format, I/O error */
        VM_DISK_PLAIN,
        VM_DISK_ENCRYPTED,
        VM_DISK_ENCRYPTING,
        VM_DISK_DECRYPTING,
        VM_DISK_REENCRYPTING,
};

/* The seeds' vocabulary for a group of volumes (the OS disk, or all data disks). */
enum vm_volume_status {
        VM_NOT_ENCRYPTED = 0,
        VM_ENCRYPTION_IN_PROGRESS,
        VM_ENCRYPTED,
        VM_DECRYPTION_IN_PROGRESS,
        VM_NOT_MOUNTED, /* the group is empty: a VM without data disks */
};

struct vm_disk {
        char target[32];            /* "vda" */
        char source_type[16];       /* file, block, network, volume, ... */
        char *path;                 /* file or device; NULL for network/volume disks */
        char format[16];            /* the driver type: raw, qcow2, ... ("" not given) */
        bool os;                    /* the boot disk, else the first disk */
        bool readonly;
        bool xml_encrypted;         /* the domain XML has <encryption> for it */
        char secret_uuid[VM_UUID_LEN]; /* ... naming this libvirt secret ("" none) */
        enum vm_disk_state state;
        int status_error;           /* VM_DISK_UNKNOWN: why (-errno) */
        char status_text[256];      /* ... in words */
        struct engine_status status; /* what volume_status read */
        double rate;                /* bytes/s of a running job (VM_INV_RATE), 0 unknown */
        double eta;                 /* seconds left, < 0 unknown */
        char provider[128];         /* VM_INV_KEYS: the disk's vmcrypt token */
        char kek[256];
        char note[256];             /* a mismatch between domain XML and disk, in words */
};

/* The per-VM summary (vm status). */
struct vm_summary {
        enum vm_volume_status os, data;
        char message[1024];         /* ProgressMessage: what is going on, in words */
};

/* What vmcrypt keeps in the domain XML's <metadata> (its own namespace): the
 * domain's settings, and a rekey under way (so that a re-run after a kill knows
 * the KEK it was moving the disks to). */
struct vm_meta {
        bool auto_encrypt;          /* attach-disk encrypts every new disk first */
        char rekey_provider[128];   /* a vm rekey under way: its target provider and KEK */
        char rekey_kek[256];
        bool rekey_deep;            /* ... with new volume keys */
};

struct vm_domain {
        char name[256];
        char uuid[VM_UUID_LEN];
        char state[24];             /* running, shut off, paused, ... */
        bool active;
        bool persistent;
        pid_t qemu_pid;             /* a running domain's QEMU on this host, 0 unknown */
        size_t n_disks;
        struct vm_disk *disks;
        struct vm_summary summary;
        struct vm_meta meta;        /* from the inactive (persistent) definition */
        /* The VM home beyond the disks, read with VM_INV_HOME. */
        struct vm_disk *nvram;      /* the UEFI NVRAM as a disk named "nvram"; NULL none */
        struct vm_tpm {
                bool present;           /* a <tpm> device */
                bool vmcrypt;           /* ... added by vmcrypt vm add-vtpm */
                char model[32];
                char secret_uuid[VM_UUID_LEN]; /* its state secret ("" unencrypted) */
                char provider[128];     /* vmcrypt's: the KEK that wraps the secret */
                char kek[256];
                char note[256];         /* a record and device that disagree, in words */
        } tpm;
};

struct vm_inventory {
        size_t n;
        struct vm_domain *domains;
};

/* Flags of vm_inventory_get. */
enum {
        VM_INV_KEYS = 1U << 0,      /* read each encrypted disk's provider and KEK */
        VM_INV_RATE = 1U << 1,      /* sample running jobs twice, one second apart: rate, ETA */
        VM_INV_HOME = 1U << 2,      /* read the NVRAM's state and the TPM (struct vm_tpm) */
};

/* The domains of uri (NULL: VM_DEFAULT_URI), all of them or the one called name
 * (a name or UUID; -ENOENT when there is none), with their disks and each disk's
 * state read from the disk. */
int vm_inventory_get(const char *uri, const char *name, unsigned flags, struct vm_inventory **ret,
                     struct error *err);
void vm_inventory_free(struct vm_inventory *inv);
static inline void vm_inventory_freep(struct vm_inventory **inv) {
        if (*inv)
                vm_inventory_free(*inv);
}

const char *vm_disk_state_name(enum vm_disk_state s);
/* "NotEncrypted", "EncryptionInProgress", ... */
const char *vm_volume_status_name(enum vm_volume_status s);
/* Percent done of a disk's job (100 when none). */
double vm_disk_percent(const struct vm_disk *d);

/* Which disks a VM operation touches. */
enum vm_volume_type {
        VM_VOLUMES_ALL = 0,
        VM_VOLUMES_OS,
        VM_VOLUMES_DATA,
};

/* Progress of one disk's data pass; the answer may pause or cancel the job. */
typedef enum engine_verdict (*vm_progress_fn)(const struct vm_disk *disk, const struct engine_progress *p,
                                              void *userdata);

struct vm_params {
        const char *uri;            /* NULL: VM_DEFAULT_URI */
        const char *name;           /* domain name or UUID */
        enum vm_volume_type volumes;
        const char *provider;       /* encrypt: key provider (NULL: the VM's, else the default) */
        const char *kek;            /* encrypt: this KEK (NULL: the VM's, else a new one) */
        const char *providers;      /* providers.json; NULL: the default path */
        uint64_t max_rate;          /* encrypt/decrypt: data rate limit per disk, bytes/s; 0 none */
        vm_progress_fn progress;    /* optional */
        void *progress_userdata;
};

/* What happened to one disk. */
enum vm_disk_action {
        VM_ACTION_NONE = 0,         /* not touched (not selected, not a raw file/block disk) */
        VM_ACTION_DONE,             /* encrypted/decrypted now */
        VM_ACTION_RESUMED,          /* an interrupted job finished */
        VM_ACTION_ALREADY,          /* already in the wanted state, domain XML matched */
        VM_ACTION_XML,              /* already in the wanted state, domain XML fixed */
        VM_ACTION_UNLOCKED,         /* start: secret handed to libvirt */
        VM_ACTION_ATTACHED,         /* attach-disk: attached (encrypted first when the row says so) */
        VM_ACTION_CHECKED,          /* check: its key unwrapped and opens its keyslot */
};

struct vm_disk_result {
        char target[32];
        char path[PATH_MAX];
        enum vm_disk_action action;
        char note[256];             /* why a disk was left alone; check: how it fared */
        int error;                  /* check: why it would keep the VM from starting (-errno), 0 none */
};

#define VM_MAX_DISKS 64

struct vm_result {
        char name[256];
        char uuid[VM_UUID_LEN];
        char provider[128];         /* encrypt: the VM's provider and KEK */
        char kek[256];
        bool kek_created;
        char old_kek[256];          /* rekey: the KEK the disks left ("" none rekeyed now) */
        bool resumed;               /* rekey: an interrupted rekey was finished */
        bool hotplugged;            /* attach-disk: the running QEMU got the disk */
        bool persisted;             /* attach-disk: the persistent definition got it */
        pid_t qemu_pid;             /* start: the new QEMU, 0 unknown */
        bool vtpm_unlocked;         /* start: the vTPM's state secret was handed to libvirt;
                                     * check: its key unwrapped */
        int vtpm_error;             /* check: why the vTPM would keep the VM from starting */
        char vtpm_note[512];        /* ... in words */
        size_t n;
        struct vm_disk_result disks[VM_MAX_DISKS];
};

/* Encrypt the selected disks of a shut-off, persistent domain in place (LUKS1,
 * which QEMU's luks driver opens), each with its own unlock secret wrapped by the
 * VM's one KEK, and point the domain XML at a libvirt secret per disk. Disks that
 * are encrypted already are left as they are (their XML is fixed when needed);
 * an interrupted job is resumed. -EBUSY while the domain runs. */
int vm_encrypt(const struct vm_params *p, struct vm_result *res, struct error *err);
/* Decrypt the selected disks in place, data disks first, then the OS disk, and take
 * <encryption> out of the domain XML for each. */
int vm_decrypt(const struct vm_params *p, struct vm_result *res, struct error *err);
/* What vm_start does short of starting: each disk checked against its domain
 * XML, every encrypted disk's key unwrapped by its provider and proved against
 * its keyslot, the vTPM's and the NVRAM's keys unwrapped; nothing is handed to
 * libvirt and the domain may be running. Every disk is tried: res->disks say
 * how each fared (action VM_ACTION_CHECKED, or error and note), res->vtpm_*
 * the vTPM; the first failure is returned, err saying which and why (with the
 * key error's fault). vSphere shows such a VM as locked. */
int vm_check(const struct vm_params *p, struct vm_result *res, struct error *err);

/* Start a domain whose disks vmcrypt encrypted: each disk's secret unwrapped by its
 * key provider, given to libvirt as an ephemeral, private secret, removed again
 * once QEMU runs. On a key failure nothing starts and err names the disk, the KEK
 * and the reason. */
int vm_start(const struct vm_params *p, struct vm_result *res, struct error *err);

/* Turn the domain's auto-encrypt flag on or off (kept in its persistent
 * definition's <metadata>): with it, every vm_attach_disk encrypts a plain image
 * first. Works on a running domain; -EINVAL for a transient one. */
int vm_set_auto_encrypt(const struct vm_params *p, bool on, struct error *err);

/* Where vm_attach_disk puts the disk. */
enum vm_attach_mode {
        VM_ATTACH_DEFAULT = 0,      /* the persistent definition, and the running QEMU if any */
        VM_ATTACH_PERSISTENT,       /* the persistent definition only (next start) */
        VM_ATTACH_LIVE,             /* the running QEMU only (gone at its next start) */
};

struct vm_attach_params {
        struct vm_params vm;        /* uri, name, providers, max_rate, progress */
        const char *image;          /* a raw image file */
        const char *target;         /* "vdc"; NULL: the first free vdX */
        bool encrypt;               /* encrypt a plain image first (also: auto-encrypt) */
        enum vm_attach_mode mode;
};

/* Attach a raw image file as a data disk. A plain image is first encrypted in
 * place (LUKS1, its own unlock secret wrapped by the VM's KEK) when asked or when
 * the domain is flagged auto-encrypt; an encrypted image must be bound to the
 * VM's KEK. For a running domain an encrypted disk is hot-plugged with its secret
 * in an ephemeral, private libvirt secret that exists only during the attach.
 * Refused (changing nothing) for an image another domain (or this one) already
 * has, an image that is not raw, or an image bound to another KEK. */
int vm_attach_disk(const struct vm_attach_params *a, struct vm_result *res, struct error *err);

/* Give a shut-off domain a new KEK (created at provider p->provider, else the
 * VM's, tagged like vm_encrypt's) and re-wrap every encrypted disk's unlock
 * secret under it, without a data pass; deep also gives each disk a new volume
 * key (a data pass). The target KEK is recorded in the domain's metadata first, so
 * a re-run after a kill finishes the same rekey; disks under it are skipped. */
int vm_rekey(const struct vm_params *p, bool deep, struct vm_result *res, struct error *err);

/* The vTPM (libvirt + swtpm, state encrypted by libvirt with a secret that vmcrypt
 * wraps by the VM's KEK). */
enum vm_vtpm_model {
        VM_VTPM_CRB = 0,            /* tpm-crb */
        VM_VTPM_TIS,                /* tpm-tis */
};

struct vm_vtpm_result {
        char name[256];
        char uuid[VM_UUID_LEN];
        char model[32];
        char secret_uuid[VM_UUID_LEN]; /* the libvirt secret the <tpm> names */
        char provider[128];         /* the VM's KEK that wraps the state secret */
        char kek[256];
        bool device_removed;        /* remove: the <tpm> went */
        bool state_removed;         /* remove: libvirt deleted the swtpm state */
        bool kek_released;          /* remove: the KEK no longer counts the vTPM ... */
        struct kek_release release; /* ... and what became of it */
};

/* Give a shut-off, persistent domain whose disks are all encrypted an emulated TPM
 * 2.0: a random state secret wrapped by the VM's KEK is recorded in the domain's
 * <metadata> and the <tpm> names it. -ENOKEY on a VM that is not encrypted (no KEK), -EEXIST
 * when it has a TPM (err says whether vmcrypt added it), -EBUSY while it runs. */
int vm_vtpm_add(const struct vm_params *p, enum vm_vtpm_model model, struct vm_vtpm_result *res,
                struct error *err);
/* Remove vmcrypt's vTPM from a shut-off domain: the device, its swtpm state (the
 * guest's TPM contents are gone for good) and the record. -ENOENT without one,
 * -EMEDIUMTYPE for a TPM vmcrypt did not add. */
int vm_vtpm_remove(const struct vm_params *p, struct vm_vtpm_result *res, struct error *err);
