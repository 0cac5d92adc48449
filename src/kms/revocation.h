/* Revoked client certificates: the SHA-256 fingerprints listed in kms.conf
 * (revoked-client) and the CRLs of the client CA (crl). Checked in every handshake
 * (the TLS verify callback refuses a revoked certificate with the certificate_revoked
 * alert) and, after a reload (SIGHUP), once more at the next request of every open
 * connection, so a revoked client loses a connection it already had too.
 *
 * One set is shared by all network loops; a reload builds a new set and swaps it in
 * under a lock, and bumps a generation counter that connections compare, one atomic
 * load per request. */
#pragma once

#include <openssl/ssl.h>
#include <stdbool.h>

#include "kms/config.h"
#include "shared/macro.h"

struct kms_revocation;

/* An empty set; ca_file holds the CA(s) a CRL must be signed by (copied). */
int kms_revocation_new(const char *ca_file, struct kms_revocation **ret);
void kms_revocation_free(struct kms_revocation *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kms_revocation *, kms_revocation_free);

/* Replace the set with what config c lists. All or nothing: on failure (a bad
 * fingerprint, a CRL that is unreadable or not signed by the client CA) the old set
 * stays and the error is logged. */
int kms_revocation_load(struct kms_revocation *r, const struct kms_config *c);

/* Number of the set now in force; changes with every successful load. */
unsigned kms_revocation_generation(const struct kms_revocation *r);

/* Is the client certificate (with its SHA-256 fingerprint, hex) revoked? */
bool kms_revocation_denies(struct kms_revocation *r, X509 *cert, const char *fingerprint);

/* Have ctx's certificate verification refuse revoked client certificates; r must
 * outlive ctx. */
int kms_revocation_attach(struct kms_revocation *r, SSL_CTX *ctx);
