/* Enrolled hosts and PCR policies of the trusted key provider, in tables of their
 * own in the KMS database (attest_hosts, attest_policies; created on first open,
 * schema version in meta "attest_schema"). Nothing here is secret: public keys,
 * PCR values, counters. Both the server and the admin commands (`vmcrypt-kms host`,
 * `vmcrypt-kms policy`) open it; SQLite's WAL lets them run side by side, and an
 * approval or revocation bites on the next request. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/macro.h"

#define ATTEST_HOST_ID_MAX 40
#define ATTEST_GROUP_MAX 64
#define ATTEST_PUBLIC_MAX 1024
#define ATTEST_PCRS_ALL 24

enum attest_host_state {
        ATTEST_HOST_ENROLLING, /* challenged, not answered yet */
        ATTEST_HOST_PENDING,   /* proved its AK; waits for `host approve` */
        ATTEST_HOST_APPROVED,
        ATTEST_HOST_REVOKED,
};

enum attest_ek_cert_state {
        ATTEST_EK_CERT_NONE,     /* the TPM sent none */
        ATTEST_EK_CERT_PRESENT,  /* sent, matches the EK; no CA configured to check it */
        ATTEST_EK_CERT_VERIFIED, /* matches the EK and chains to attestation-ek-ca */
};

struct attest_host {
        char id[ATTEST_HOST_ID_MAX];
        char cn[256];          /* the client certificate it enrolled with */
        char group[ATTEST_GROUP_MAX];
        enum attest_host_state state;
        uint8_t ek[ATTEST_PUBLIC_MAX]; /* TPM2B_PUBLIC */
        size_t ek_size;
        uint8_t ak[ATTEST_PUBLIC_MAX]; /* TPM2B_PUBLIC */
        size_t ak_size;
        char ek_fingerprint[65];       /* SHA-256 of ek, hex: what the operator compares */
        uint8_t proof[32];             /* expected enrolment proof while enrolling */
        uint8_t pcrs[ATTEST_PCRS_ALL][32]; /* SHA-256 PCRs 0-23 at enrolment (for capture) */
        bool has_pcrs;
        uint32_t reset_count, restart_count; /* highest seen in a quote */
        bool has_clock;
        int64_t created, updated;
        uint8_t ek_cert[4096];         /* DER, as the TPM's NV held it */
        size_t ek_cert_size;
        enum attest_ek_cert_state ek_cert_state;
};

struct attest_policy {
        char group[ATTEST_GROUP_MAX];
        uint32_t mask;                 /* PCRs, bit i = PCR i */
        uint8_t values[ATTEST_PCRS_ALL][32]; /* golden values, in PCR order */
        size_t n_values;
};

struct attest_db;

/* Open (creating the tables) the database at path. */
int attest_db_open(const char *path, struct attest_db **ret);
void attest_db_free(struct attest_db *db);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct attest_db *, attest_db_free);

const char *attest_host_state_name(enum attest_host_state s);
const char *attest_ek_cert_state_name(enum attest_ek_cert_state s);

/* Insert or replace the host enrolled by cn (a new enrolment starts over). */
int attest_db_host_put(struct attest_db *db, const struct attest_host *h);
/* By id or by certificate CN; -ENOENT when absent. */
int attest_db_host_get(struct attest_db *db, const char *id, struct attest_host *ret);
int attest_db_host_by_cn(struct attest_db *db, const char *cn, struct attest_host *ret);
/* All hosts, oldest first; *ret malloc'ed. */
int attest_db_host_list(struct attest_db *db, struct attest_host **ret, size_t *ret_n);
/* Set state (and group when not NULL); -ENOENT when absent. */
int attest_db_host_set_state(struct attest_db *db, const char *id, enum attest_host_state s, const char *group);
/* Raise the recorded reset/restart counts of id (never lowers them). */
int attest_db_host_set_clock(struct attest_db *db, const char *id, uint32_t reset_count, uint32_t restart_count);

int attest_db_policy_put(struct attest_db *db, const struct attest_policy *p);
/* -ENOENT when the group has no policy. */
int attest_db_policy_get(struct attest_db *db, const char *group, struct attest_policy *ret);
/* The golden values of group for the PCRs in mask, taken from what host id reported
 * at enrolment (a reference host). -ENOENT: no such host; -ENODATA: it has no PCRs
 * on record (enrolment unfinished). */
int attest_db_policy_capture(struct attest_db *db, const char *id, const char *group, uint32_t mask,
                             struct attest_policy *ret);
int attest_db_policy_list(struct attest_db *db, struct attest_policy **ret, size_t *ret_n);
