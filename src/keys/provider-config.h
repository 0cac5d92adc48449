/* providers.json: the named key providers a host may use. Format (docs/keys.md):
 *
 *   { "default": "lab",
 *     "providers": {
 *       "lab":   { "type": "kmip", "endpoints": ["kms1:5696", "kms2:5696"],
 *                  "ca": "ca.crt", "cert": "client.crt", "key": "client.key",
 *                  "connect_timeout_ms": 3000, "timeout_ms": 10000,
 *                  "wrap": "auto" },
 *       "local": { "type": "native", "state_dir": "/var/lib/vmcrypt/native/local",
 *                  "key_file": "/etc/vmcrypt/native-local.key" },
 *       "tkp":   { "type": "trusted", "endpoints": [...], "ca": ..., "cert": ..., "key": ...,
 *                  "tcti": "device:/dev/tpmrm0", "pcrs": "0,2,4,7", "group": "default" } } }
 *
 * Relative paths are resolved against the file's directory. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "shared/error.h"

#define PROVIDERS_DEFAULT_PATH "/etc/vmcrypt/providers.json"
#define PROVIDER_MAX_ENDPOINTS 8
#define PROVIDER_MAX 32

enum provider_kind {
        PROVIDER_KMIP,
        PROVIDER_NATIVE,
        PROVIDER_TRUSTED, /* kmip, with KEKs released only to this host's attested TPM */
};

/* How a kmip provider wraps: ask the server to Encrypt, wrap locally after a Get,
 * or try the server first and fall back (auto). */
enum provider_wrap_mode {
        WRAP_AUTO,
        WRAP_KMIP_ENCRYPT,
        WRAP_RFC5649,
};

struct provider_endpoint {
        char *host;
        unsigned port;
};

struct provider_config {
        char *name;
        enum provider_kind kind;
        /* kmip */
        struct provider_endpoint endpoints[PROVIDER_MAX_ENDPOINTS];
        size_t n_endpoints;
        char *ca, *cert, *key;
        unsigned connect_timeout_ms, timeout_ms;
        enum provider_wrap_mode wrap;
        /* trusted (besides the kmip settings) */
        char *tcti;          /* the TPM: "device:/dev/tpmrm0", "swtpm:host=H,port=P" */
        uint32_t pcrs;       /* SHA-256 PCRs to quote (bit i = PCR i); the group's policy */
        char *group;         /* host group KEKs are released to (x-vmcrypt-Require-Attestation) */
        char *bk_cache;      /* directory keeping the TPM's release keys across processes, or NULL */
        /* native */
        char *state_dir;
        char *key_file; /* NULL: ask for a passphrase on the terminal */
};

struct provider_configs {
        char *path;
        char *default_name;
        size_t n;
        struct provider_config p[PROVIDER_MAX];
};

/* Load and check path (NULL: PROVIDERS_DEFAULT_PATH). On failure, err says what is
 * wrong and where (file, provider, field): -ENOENT when the file is missing,
 * -EBADMSG when it is malformed. */
int provider_config_load(const char *path, struct provider_configs **ret, struct error *err);

/* Parse JSON text; base_dir resolves relative paths. Same errors as above. */
int provider_config_parse(const char *text, const char *base_dir, struct provider_configs **ret,
                          struct error *err);

/* "kmip", "native" or "trusted": the type's name in providers.json. */
const char *provider_kind_name(enum provider_kind k);
/* An endpoint as host:port ([host]:port for an IPv6 address), into buf. */
void provider_endpoint_text(const struct provider_endpoint *e, char *buf, size_t size);

/* The provider called name, or the default when name is NULL; NULL if none. */
const struct provider_config *provider_config_find(const struct provider_configs *cs, const char *name);

void provider_configs_free(struct provider_configs *cs);
static inline void provider_configs_freep(struct provider_configs **cs) {
        if (*cs)
                provider_configs_free(*cs);
}
