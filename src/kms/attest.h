/* Attested key release on the server (docs/attestation.md): the nonces it hands out
 * with Attestation Required, the checks of a TPM quote against an enrolled host and
 * its group's PCR policy, and host enrolment (the Enroll Host extension operation:
 * MakeCredential to the EK, ActivateCredential proof from the host).
 *
 * An object requires attestation when it carries the custom attribute
 * x-vmcrypt-Require-Attestation = GROUP: its key material then reaches only hosts
 * of GROUP, through Decrypt, wrapped to a key inside the host's TPM. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attest/attest.h"
#include "kmip/message.h"
#include "kms/attest-db.h"

#define KMS_ATTR_REQUIRE_ATTESTATION "x-vmcrypt-Require-Attestation"
#define KMS_NONCE_SIZE 32
#define KMS_NONCE_ID_SIZE 16
#define KMS_NONCES_MAX 4096
#define KMS_NONCES_PER_CLIENT 32 /* outstanding per client certificate CN */
#define KMS_NONCE_TTL_DEFAULT 60

struct kms_attest;

/* The attestation state of a server over the database at path; nonces live nonce_ttl
 * seconds (0: KMS_NONCE_TTL_DEFAULT); ek_ca (may be NULL): a PEM file of the CAs
 * every enrolling TPM's EK certificate must chain to. */
int kms_attest_new(const char *database, unsigned nonce_ttl, const char *ek_ca, struct kms_attest **ret);
void kms_attest_free(struct kms_attest *at);
struct attest_db *kms_attest_db(struct kms_attest *at);

/* A fresh single-use nonce for client cn and object uid. -EBUSY when too many are
 * outstanding. */
int kms_attest_nonce_new(struct kms_attest *at, const char *cn, const char *uid, uint8_t id[static KMS_NONCE_ID_SIZE],
                         uint8_t value[static KMS_NONCE_SIZE]);

/* Check the EK certificate der (n bytes; NULL: the TPM sent none) of an enrolling
 * TPM whose EK is ek: it must certify that key and, with an EK CA configured,
 * exist and chain to it. 0 with its state in *ret, or -EACCES with msg. */
int kms_attest_ek_cert(struct kms_attest *at, const TPMT_PUBLIC *ek, const uint8_t *der, size_t n,
                       enum attest_ek_cert_state *ret, char *msg, size_t msglen);

/* Check cred (sent by client cn for object uid, which requires hosts of group) and
 * on success return the release key (BK) the secret is to be wrapped to. The nonce
 * is consumed whatever the outcome. On failure msg says which check failed and what
 * to do. -EACCES for a refusal, -EBADMSG for malformed evidence, -EIO on storage
 * failure. */
int kms_attest_check(struct kms_attest *at, const char *cn, const char *uid, const char *group,
                     const struct kmip_attestation_credential *cred, TPMT_PUBLIC *ret_bk, char *msg, size_t msglen);
