/* Key providers: where KEKs live. A provider creates KEKs, wraps a disk's unlock
 * secret under one, and unwraps it again; the plaintext KEK ideally never leaves
 * the provider. Three kinds implement the vtable below: `kmip` (a KMIP server
 * cluster, provider-kmip.c), `trusted` (the same, but the KMS releases only to
 * this host's attested TPM: provider-trusted.c) and `native` (a primary key kept
 * by vmcrypt itself, provider-native.c). Providers are named in providers.json (provider-config.c).
 *
 * Every failing call returns -errno and leaves a one-line explanation (what went
 * wrong, where, and what to do) in provider_error(), for the CLI to print. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>

#include "shared/error.h"
#include "keys/token.h"
#include "keys/provider-config.h"
#include "shared/secret.h"

/* Tags stored with a new KEK (KMIP custom attributes, as vSphere sets them). */
struct kek_attrs {
        const char *vm_name; /* x-Name; may be NULL */
        const char *vm_uuid; /* x-Identifier; may be NULL */
};

/* A KEK as a key provider lists it: the tags vmcrypt set when it created it. */
struct kek_info {
        char id[128];
        char name[192];        /* KMIP Name */
        char state[24];        /* "Active", "Deactivated", ... */
        char vm_name[128];     /* x-Name */
        char vm_uuid[64];      /* x-Identifier */
        unsigned disks;        /* filled by keys_kek_report: disks among those given */
        bool tracked;          /* the KEK records the disks that use it */
        unsigned users;        /* ... and this many are recorded */
        char user_list[1024];  /* ... where they are ("host:/path, ..."; may be cut short) */
};

/* How a KEK stands after a disk stopped using it (provider_kek_unuse). */
struct kek_usage {
        bool tracked;          /* the KEK records its disks (vmcrypt made it so) */
        bool gone;             /* the KEK no longer exists on the provider */
        bool found;            /* this disk was recorded here, and the record went */
        unsigned users;        /* disks still recorded, this one not counted */
        char elsewhere[320];   /* a record of this volume (UUID) at another place: a
                                * copy, or the disk before it moved ("" none) */
};

/* What became of the KEK a disk stopped using (keys_kek_release). */
struct kek_release {
        char provider[128];
        char kek[256];
        bool tracked;          /* see struct kek_usage */
        bool retired;          /* it was the last user's: revoked and destroyed */
        unsigned users;        /* disks that still use it */
        char elsewhere[320];   /* see struct kek_usage */
        int error;             /* -errno: the release failed, the KEK stays as it was */
        char text[512];        /* ... why */
};

struct provider;

struct provider_ops {
        const char *kind;
        /* Create (and activate) a new 256-bit KEK tagged with attrs; its id in *ret_id. */
        int (*kek_create)(struct provider *p, const struct kek_attrs *attrs, char **ret_id);
        /* Wrap plain under kek_id; fills t->method, cipher, wrapped, iv and tag. */
        int (*wrap)(struct provider *p, const char *kek_id, const struct secret *plain,
                    struct vmcrypt_token *t);
        /* Unwrap what t holds; -EKEYREJECTED when the KEK is not the one that wrapped it. */
        int (*unwrap)(struct provider *p, const struct vmcrypt_token *t, struct secret **ret);
        /* Retire a KEK for good: revoke, then destroy. Optional (NULL: the kind keeps
         * nothing per KEK, e.g. native KEKs are derived). */
        int (*kek_retire)(struct provider *p, const char *kek_id);
        /* The KEKs vmcrypt created there (by their Name), malloc'ed array. Optional
         * (NULL: the kind keeps no list; native KEKs are derived). */
        int (*kek_list)(struct provider *p, struct kek_info **ret, size_t *ret_n);
        /* Record that the volume with LUKS UUID disk, at place (host:/path), uses
         * kek_id. Copies of an image share its UUID, so a record names both. A KEK
         * that does not track its disks is left alone. Optional. */
        int (*kek_use)(struct provider *p, const char *kek_id, const char *disk, const char *place);
        /* Drop that record and say how the KEK stands. Optional. */
        int (*kek_unuse)(struct provider *p, const char *kek_id, const char *disk, const char *place,
                         struct kek_usage *ret);
        /* A cheap check that the provider can serve this host now, within
         * timeout_ms per key server. Optional (NULL: always usable). */
        int (*probe)(struct provider *p, unsigned timeout_ms);
        /* Release what open() allocated in p->data. */
        void (*close)(struct provider *p);
};

struct provider {
        const struct provider_ops *ops;
        const struct provider_config *config; /* borrowed from the loaded config */
        void *data;
        char error[768];
        int fault;  /* enum error_fault of the last failure: what the key server said */
};

/* Open the provider described by c (kept borrowed until provider_free). */
int provider_open(const struct provider_config *c, struct provider **ret);
/* Open a provider by name from a loaded configuration; -ENOENT when unknown. */
int provider_open_by_name(const struct provider_configs *cs, const char *name, struct provider **ret,
                          struct error *err);
/* Close and free; NULL is fine. */
void provider_free(struct provider *p);
static inline void provider_freep(struct provider **p) {
        provider_free(*p);
}

/* The last failure's explanation and fault (ERROR_FAULT_KEY_*: unreachable,
 * missing, denied), as struct error err holds them; returns r. */
int provider_error_set(struct error *err, const struct provider *p, int r);
/* The last failure's enum error_fault. */
int provider_fault(const struct provider *p);

/* Thin wrappers around the vtable that make sure error text is always set. */
int provider_kek_create(struct provider *p, const struct kek_attrs *attrs, char **ret_id);
/* The KEKs vmcrypt created on p; -EOPNOTSUPP for kinds that keep none. */
int provider_kek_list(struct provider *p, struct kek_info **ret, size_t *ret_n);
/* Retire kek_id (0 when the kind keeps nothing per KEK). */
int provider_kek_retire(struct provider *p, const char *kek_id);
/* Record that volume disk at place uses kek_id (0 for kinds that track nothing). */
int provider_kek_use(struct provider *p, const char *kek_id, const char *disk, const char *place);
/* Drop that record; *ret says whether the KEK tracks its users and how many are
 * left (untracked for kinds that track nothing). */
int provider_kek_unuse(struct provider *p, const char *kek_id, const char *disk, const char *place,
                       struct kek_usage *ret);
/* Where a volume is, as KEK records name it: "host:/absolute/path". */
void provider_kek_place(const char *path, char *buf, size_t size);
int provider_wrap(struct provider *p, const char *kek_id, const struct secret *plain, struct vmcrypt_token *t);
int provider_unwrap(struct provider *p, const struct vmcrypt_token *t, struct secret **ret);

/* Can p serve this host now? kmip and trusted: a KMIP DiscoverVersions over a
 * new mutual-TLS connection with the host's identity, at most timeout_ms per
 * endpoint (the TPM is not touched); native: its primary key is there and backed
 * up. 0, or -errno with provider_error() saying why and provider_fault() what
 * kind of key error it is (ERROR_FAULT_KEY_UNREACHABLE: no key server answered). */
int provider_probe(struct provider *p, unsigned timeout_ms);

/* What a host may tell about one of its providers: no credential, no path. */
struct provider_report {
        char name[128];
        const char *kind;      /* "kmip", "trusted", "native" */
        char endpoints[PROVIDER_MAX_ENDPOINTS][300];   /* "host:port" */
        size_t n_endpoints;
        bool is_default;
        char state_dir[512];   /* native: its state directory (stays on the host) */
        int native_ready;      /* native: 1 ready, 0 needs a backup first, -ENOENT not initialised */
        int64_t cert_expires;  /* kmip, trusted: the end of this host's client certificate
                                * (seconds since the epoch; 0 unreadable) */
        int probe;             /* provider_probe's result (0 when not probed) */
        int fault;             /* ... its enum error_fault (ERROR_FAULT_KEY_UNREACHABLE: no server answered) */
        unsigned probe_ms;     /* ... and how long it took */
        char message[768];     /* ... and why, when it failed (paths named by their setting, "<cert>") */
};
/* The providers of path (NULL: the default providers.json), each probed with
 * timeout_ms (0: not probed); *ret malloc'ed. -ENOENT when the file is missing. */
int provider_report_all(const char *path, unsigned timeout_ms, struct provider_report **ret, size_t *ret_n,
                        struct error *err);

/* Explanation of the last failure ("" when none). */
const char *provider_error(const struct provider *p);
/* Record an explanation; returns r so callers can `return provider_fail(p, r, ...)`. */
int provider_fail(struct provider *p, int r, const char *fmt, ...) _printf_(3, 4);

/* The vtables of the kinds. */
extern const struct provider_ops provider_native_ops;
extern const struct provider_ops provider_kmip_ops;
extern const struct provider_ops provider_trusted_ops;

/* What enrolling this host's TPM with a trusted provider's KMS produced. */
struct trusted_enrollment {
        char host_id[64];
        char state[16];          /* "pending" until the KMS operator approves it */
        char ek_fingerprint[65]; /* SHA-256 of the EK public area (TPM2B_PUBLIC), hex */
        bool has_ek_certificate; /* the TPM had one in NV, and it was sent */
};
/* Enrol the TPM of a trusted provider p with its KMS (docs/attestation.md):
 * EK and AK, the KMS's credential challenge answered by the TPM, a quote of PCRs
 * 0-23 for the operator's reference. -EOPNOTSUPP for other kinds. */
int provider_trusted_enroll(struct provider *p, struct trusted_enrollment *ret);
