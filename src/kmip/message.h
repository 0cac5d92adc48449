/* KMIP messages (KMIP 1.4 §7, 2.0 §8): Request and Response Messages in both
 * directions, so that one parser and one builder serve the client (builds requests,
 * parses responses) and the server (parses requests, builds responses).
 *
 * The message layer checks the envelope only: header fields, batch items, their
 * types and order. Payloads stay TTLV trees (struct ttlv) for the operation code to
 * read with the ttlv_get_*() getters and build with ttlv_add_*(). Everything a
 * parsed message points to lives in the arena it was parsed into. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kmip/ttlv.h"

struct kmip_version {
        int32_t major;
        int32_t minor;
};

#define KMIP_VERSION(ma, mi) ((struct kmip_version){ .major = (ma), .minor = (mi) })

/* What this library speaks, in order of preference: 2.0, 1.4, 1.3, 1.2, 1.1, 1.0. */
extern const struct kmip_version kmip_versions_supported[];
extern const size_t kmip_n_versions_supported;

/* <0, 0, >0 like strcmp. */
int kmip_version_cmp(struct kmip_version a, struct kmip_version b);
/* True for a version in kmip_versions_supported. */
bool kmip_version_supported(struct kmip_version v);
/* True for 2.x: attributes as their own tags, no Template-Attribute. */
static inline bool kmip_version_is_2x(struct kmip_version v) {
        return v.major >= 2;
}

#define KMIP_MAX_ATTESTATION_TYPES 4
#define KMIP_NONCE_MAX 64

/* Message header (Request Header / Response Header). Zero means "absent" for the
 * optional fields. */
struct kmip_header {
        struct kmip_version version;
        int32_t max_response_size;          /* request, optional */
        int64_t time_stamp;                 /* response: required (set by the builder when 0) */
        bool async_indicator;               /* request, optional */
        uint32_t batch_error_continuation;  /* request, optional; absent means Stop */
        bool batch_order_option;            /* request, optional */
        struct ttlv *authentication;        /* request, optional: raw Authentication structure */
        const uint8_t *client_correlation;  /* 1.4+, optional (Text String) */
        size_t client_correlation_size;
        const uint8_t *server_correlation;  /* 1.4+, optional (Text String) */
        size_t server_correlation_size;
        int32_t batch_count;                /* parsed value; builders compute it */
        /* KMIP 1.2+ attestation. Request: the client can attest (Attestation Capable
         * Indicator) with these Attestation Types. Response: the types the server
         * accepts, and the Nonce to attest over (Result Reason Attestation Required). */
        bool attestation_capable;
        uint32_t attestation_types[KMIP_MAX_ATTESTATION_TYPES];
        size_t n_attestation_types;
        const uint8_t *nonce_id;            /* response, optional (Nonce ID) */
        size_t nonce_id_size;
        const uint8_t *nonce_value;         /* response, optional (Nonce Value) */
        size_t nonce_value_size;
};

/* One batch item. Request items use operation/id/payload; response items add the
 * result fields. */
struct kmip_batch_item {
        uint32_t operation;     /* KMIP_OP_*; 0 when absent (failed response items may omit it) */
        const uint8_t *id;      /* Unique Batch Item ID, NULL when absent; echoed in responses */
        size_t id_size;
        uint32_t result_status; /* KMIP_STATUS_*; responses */
        uint32_t result_reason; /* KMIP_REASON_*; 0 when absent */
        const char *result_message; /* NULL when absent */
        struct ttlv *payload;   /* Request Payload / Response Payload structure or NULL */
};

struct kmip_message {
        struct kmip_header header;
        struct kmip_batch_item *items; /* in the arena */
        size_t n_items;
};

/* The Attestation credential (KMIP 1.2 §2.1.2, Credential Type 3) of a request's
 * Authentication: the server's Nonce, the Attestation Type and the evidence. The
 * pointers are into the parsed tree. */
struct kmip_attestation_credential {
        const uint8_t *nonce_id;
        size_t nonce_id_size;
        const uint8_t *nonce_value;
        size_t nonce_value_size;
        uint32_t type;                 /* KMIP_ATTESTATION_* */
        const uint8_t *measurement;    /* NULL when absent */
        size_t measurement_size;
        const uint8_t *assertion;      /* NULL when absent */
        size_t assertion_size;
};

/* Find and parse the Attestation credential in an Authentication structure (NULL:
 * none). 0; -ENODATA when there is none; -EPROTO when one is malformed (fields of
 * the wrong type, no Nonce, a Nonce ID or Value empty or over KMIP_NONCE_MAX). */
int kmip_attestation_credential_parse(const struct ttlv *authentication, struct kmip_attestation_credential *ret);
/* Append Credential{Attestation, cred} to an Authentication structure. */
struct ttlv *kmip_attestation_credential_add(struct ttlv_arena *a, struct ttlv *authentication,
                                             const struct kmip_attestation_credential *cred);

/* Maximum batch items accepted when parsing. */
#define KMIP_MAX_BATCH_ITEMS 1024

/* Parse a Request Message from buf (limits NULL: defaults) into ret, all in arena a.
 * 0; -EPROTO for a malformed message (ret->header.version is still filled in when the
 * Protocol Version could be read, so the server can answer in the client's version,
 * else it is 0.0); -ELOOP nested too deeply; -EMSGSIZE over another limit; -ENOMEM. */
int kmip_request_parse(struct ttlv_arena *a, const uint8_t *buf, size_t size,
                       const struct ttlv_limits *limits, struct kmip_message *ret);
/* The same for an already decoded tree. */
int kmip_request_from_ttlv(struct ttlv_arena *a, const struct ttlv *root, struct kmip_message *ret);

/* Parse a Response Message, as above. */
int kmip_response_parse(struct ttlv_arena *a, const uint8_t *buf, size_t size,
                        const struct ttlv_limits *limits, struct kmip_message *ret);
int kmip_response_from_ttlv(struct ttlv_arena *a, const struct ttlv *root, struct kmip_message *ret);

/* Build the TTLV tree of a Request Message from m (payload nodes must be detached
 * nodes of arena a; they are moved into the tree). Batch Count is computed. 0 or
 * -ENOMEM/-EINVAL. */
int kmip_request_build(struct ttlv_arena *a, struct kmip_message *m, struct ttlv **ret);
/* Build a Response Message likewise; a zero time stamp is replaced by now. */
int kmip_response_build(struct ttlv_arena *a, struct kmip_message *m, struct ttlv **ret);

/* A whole response for a request that could not be understood: one batch item with
 * no operation, Operation Failed, the given reason and message (KMIP 1.4 §11.1). */
int kmip_response_build_error(struct ttlv_arena *a, struct kmip_version v, uint32_t reason,
                              const char *message, struct ttlv **ret);

/* DiscoverVersions: the versions to answer, i.e. those of `ours` (in our order of
 * preference) that are also in `theirs`; all of ours when n_theirs is 0. Writes at
 * most n_ours versions to out and returns how many. */
size_t kmip_versions_negotiate(const struct kmip_version *theirs, size_t n_theirs,
                               const struct kmip_version *ours, size_t n_ours,
                               struct kmip_version *out);
/* Read the Protocol Version children of a DiscoverVersions payload (max entries). */
int kmip_versions_parse(const struct ttlv *payload, struct kmip_version *out, size_t max,
                        size_t *ret_n);
/* Append Protocol Version structures for versions[0..n) to payload. */
int kmip_versions_add(struct ttlv_arena *a, struct ttlv *payload,
                      const struct kmip_version *versions, size_t n);
/* Append one Protocol Version structure to parent (NULL: detached). */
struct ttlv *kmip_version_add(struct ttlv_arena *a, struct ttlv *parent, struct kmip_version v);
