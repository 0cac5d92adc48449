/* vmcrypt-kms configuration: a small "key = value" file with [group NAME] sections
 * for the access policy. Relative paths are taken relative to the file's directory,
 * so an `init` directory can be moved as a whole. See docs/kms.md for every key. */
#pragma once

#include "shared/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/macro.h"

struct kms_group {
        char *name;
        char **members;      /* certificate subject CNs, or "sha256:HEX" fingerprints */
        size_t n_members;
        uint64_t operations; /* bit (1 << KMIP operation number) per allowed operation */
};

struct kms_config {
        char *listen;        /* host:port, default 0.0.0.0:5696 */
        char *tls_cert, *tls_key, *tls_ca;
        char *tls_ciphers;   /* TLS 1.2 suites, OpenSSL syntax; NULL: ECDHE only (tls.h) */
        char *database;
        char *master_key_file;
        char *passphrase_file;
        char *audit_log;     /* NULL: no audit log */
        char *operator_audit_log; /* the operator's commands' own log (NULL: none) */
        char *audit_key;     /* HMAC key chaining the audit log's lines */
        bool audit_continue; /* audit-failure = continue: serve when lines cannot be written */
        unsigned workers;
        unsigned network_threads; /* event loops; 0: one per online CPU */
        size_t max_message;
        unsigned idle_timeout;     /* seconds */
        unsigned max_connections;
        size_t cache_rows;         /* committed rows kept for reads; 0: no cache */
        /* Connections that have not finished their TLS handshake (no verified
         * certificate yet): closed after handshake_timeout seconds; at most
         * max_unauthenticated of them (at most half of max_connections, so the rest
         * is left to authenticated clients) and max_unauthenticated_per_address
         * from one address (an IPv6 /64). */
        unsigned handshake_timeout;
        unsigned max_unauthenticated;
        unsigned max_unauthenticated_per_address;
        struct kms_group *groups;
        size_t n_groups;
        /* Revoked client certificates (revocation.h), re-read on SIGHUP. */
        char **revoked_clients;    /* SHA-256 fingerprints, lowercase hex */
        size_t n_revoked_clients;
        char *crl;                 /* PEM CRL file of the client CA, or NULL */
        unsigned attestation_nonce_ttl; /* seconds an attestation nonce lives; 0: 60 */
        char *attestation_ek_ca;   /* PEM CAs EK certificates must chain to, or NULL */
};

/* Defaults for a state directory made by `vmcrypt-kms init DIR`. */
int kms_config_defaults(const char *dir, struct kms_config **ret);
/* Read a config file over the defaults of its directory; -EINVAL with err naming
 * the file, the line and what is wrong. */
int kms_config_load(const char *path, struct kms_config **ret, struct error *err);
void kms_config_free(struct kms_config *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kms_config *, kms_config_free);

/* Parse an operation name as in the config ("get", "get-attributes", "all"); the
 * bit mask or 0 when unknown. */
uint64_t kms_config_operation_mask(const char *name);

/* May the client (certificate CN and SHA-256 fingerprint, which may be NULL) perform
 * operation op on an object owned by owner? Owners always may; others only through a
 * group that lists both them (by CN, or "sha256:HEX") and the operation. */
int kms_policy_allows(const struct kms_config *c, const char *cn, const char *fingerprint, const char *owner,
                      uint32_t op);
/* May the client use objects of every owner for op (used by Locate)? */
int kms_policy_allows_all(const struct kms_config *c, const char *cn, const char *fingerprint, uint32_t op);
