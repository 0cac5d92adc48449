/* Request and Response Messages: the envelope around operation payloads. Parsing
 * checks the type of every header and batch item field it knows and ignores fields
 * it does not (a newer minor version may add some, KMIP 1.4 §11.1); the payloads are
 * left to the operation code. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "kmip/message.h"
#include "kmip/tags.h"
#include "shared/log.h"

const struct kmip_version kmip_versions_supported[] = {
        { 2, 0 }, { 1, 4 }, { 1, 3 }, { 1, 2 }, { 1, 1 }, { 1, 0 },
};
const size_t kmip_n_versions_supported = ELEMENTSOF(kmip_versions_supported);

int kmip_version_cmp(struct kmip_version a, struct kmip_version b) {
        if (a.major != b.major)
                return a.major < b.major ? -1 : 1;
        if (a.minor != b.minor)
                return a.minor < b.minor ? -1 : 1;
        return 0;
}

bool kmip_version_supported(struct kmip_version v) {
        for (size_t i = 0; i < kmip_n_versions_supported; i++)
                if (kmip_version_cmp(v, kmip_versions_supported[i]) == 0)
                        return true;
        return false;
}

/* Map a getter result for an optional field: absent is fine, a wrong type is not. */
static int optional(int r) {
        return r == -ENODATA ? 0 : r;
}

static int parse_version(const struct ttlv *pv, struct kmip_version *ret) {
        struct kmip_version v;
        if (!pv || pv->type != TTLV_STRUCTURE)
                return -EPROTO;
        int r = ttlv_get_integer(pv, KMIP_TAG_PROTOCOL_VERSION_MAJOR, &v.major);
        if (r < 0)
                return -EPROTO;
        r = ttlv_get_integer(pv, KMIP_TAG_PROTOCOL_VERSION_MINOR, &v.minor);
        if (r < 0)
                return -EPROTO;
        *ret = v;
        return 0;
}

/* Nonce {Nonce ID, Nonce Value}: both byte strings, neither empty, both bounded. */
static int parse_nonce(const struct ttlv *nonce, const uint8_t **id, size_t *id_size, const uint8_t **value,
                       size_t *value_size) {
        if (ttlv_get_bytes(nonce, KMIP_TAG_NONCE_ID, id, id_size) < 0 ||
            ttlv_get_bytes(nonce, KMIP_TAG_NONCE_VALUE, value, value_size) < 0 || *id_size == 0 ||
            *id_size > KMIP_NONCE_MAX || *value_size == 0 || *value_size > KMIP_NONCE_MAX)
                return log_debug_errno(-EPROTO, "KMIP: malformed Nonce");
        return 0;
}

int kmip_attestation_credential_parse(const struct ttlv *auth, struct kmip_attestation_credential *ret) {
        if (!auth)
                return -ENODATA;
        for (struct ttlv *cred = ttlv_find(auth, KMIP_TAG_CREDENTIAL); cred; cred = ttlv_find_next(cred)) {
                uint32_t type;
                if (cred->type != TTLV_STRUCTURE || ttlv_get_enum(cred, KMIP_TAG_CREDENTIAL_TYPE, &type) < 0)
                        return log_debug_errno(-EPROTO, "KMIP: Credential without a Credential Type");
                if (type != KMIP_CREDENTIAL_ATTESTATION)
                        continue;
                struct kmip_attestation_credential c = {};
                struct ttlv *value, *nonce;
                if (ttlv_get_structure(cred, KMIP_TAG_CREDENTIAL_VALUE, &value) < 0 ||
                    ttlv_get_structure(value, KMIP_TAG_NONCE, &nonce) < 0)
                        return log_debug_errno(-EPROTO, "KMIP: Attestation credential without a Nonce");
                int r = parse_nonce(nonce, &c.nonce_id, &c.nonce_id_size, &c.nonce_value, &c.nonce_value_size);
                if (r < 0)
                        return r;
                if (ttlv_get_enum(value, KMIP_TAG_ATTESTATION_TYPE, &c.type) < 0)
                        return log_debug_errno(-EPROTO, "KMIP: Attestation credential without an Attestation Type");
                r = ttlv_get_bytes(value, KMIP_TAG_ATTESTATION_MEASUREMENT, &c.measurement, &c.measurement_size);
                if (optional(r) < 0)
                        return log_debug_errno(-EPROTO, "KMIP: Attestation Measurement is not a byte string");
                r = ttlv_get_bytes(value, KMIP_TAG_ATTESTATION_ASSERTION, &c.assertion, &c.assertion_size);
                if (optional(r) < 0)
                        return log_debug_errno(-EPROTO, "KMIP: Attestation Assertion is not a byte string");
                *ret = c;
                return 0;
        }
        return -ENODATA;
}

struct ttlv *kmip_attestation_credential_add(struct ttlv_arena *a, struct ttlv *auth,
                                             const struct kmip_attestation_credential *c) {
        struct ttlv *cred = ttlv_add_structure(a, auth, KMIP_TAG_CREDENTIAL);
        ttlv_add_enum(a, cred, KMIP_TAG_CREDENTIAL_TYPE, KMIP_CREDENTIAL_ATTESTATION);
        struct ttlv *value = ttlv_add_structure(a, cred, KMIP_TAG_CREDENTIAL_VALUE);
        struct ttlv *nonce = ttlv_add_structure(a, value, KMIP_TAG_NONCE);
        ttlv_add_bytes(a, nonce, KMIP_TAG_NONCE_ID, c->nonce_id, c->nonce_id_size);
        ttlv_add_bytes(a, nonce, KMIP_TAG_NONCE_VALUE, c->nonce_value, c->nonce_value_size);
        ttlv_add_enum(a, value, KMIP_TAG_ATTESTATION_TYPE, c->type);
        if (c->measurement)
                ttlv_add_bytes(a, value, KMIP_TAG_ATTESTATION_MEASUREMENT, c->measurement, c->measurement_size);
        if (c->assertion)
                ttlv_add_bytes(a, value, KMIP_TAG_ATTESTATION_ASSERTION, c->assertion, c->assertion_size);
        return cred;
}

static int parse_header(const struct ttlv *h, bool response, struct kmip_header *ret) {
        int r;
        if (!h || h->type != TTLV_STRUCTURE ||
            h->tag != (response ? KMIP_TAG_RESPONSE_HEADER : KMIP_TAG_REQUEST_HEADER))
                return log_debug_errno(-EPROTO, "KMIP: message without a %s header",
                                       response ? "response" : "request");

        r = parse_version(ttlv_find(h, KMIP_TAG_PROTOCOL_VERSION), &ret->version);
        if (r < 0)
                return log_debug_errno(r, "KMIP: missing or malformed Protocol Version");

        const char *text;
        size_t n;
        r = ttlv_get_text(h, KMIP_TAG_CLIENT_CORRELATION_VALUE, &text, &n);
        if (optional(r) < 0)
                return -EPROTO;
        if (r >= 0) {
                ret->client_correlation = (const uint8_t *) text;
                ret->client_correlation_size = n;
        }
        r = ttlv_get_text(h, KMIP_TAG_SERVER_CORRELATION_VALUE, &text, &n);
        if (optional(r) < 0)
                return -EPROTO;
        if (r >= 0) {
                ret->server_correlation = (const uint8_t *) text;
                ret->server_correlation_size = n;
        }

        if (optional(ttlv_get_date_time(h, KMIP_TAG_TIME_STAMP, &ret->time_stamp)) < 0)
                return log_debug_errno(-EPROTO, "KMIP: malformed Time Stamp");
        if (response && ret->time_stamp == 0 && !ttlv_find(h, KMIP_TAG_TIME_STAMP))
                return log_debug_errno(-EPROTO, "KMIP: response header without Time Stamp");

        if (!response) {
                if (optional(ttlv_get_integer(h, KMIP_TAG_MAXIMUM_RESPONSE_SIZE, &ret->max_response_size)) < 0 ||
                    optional(ttlv_get_bool(h, KMIP_TAG_ASYNCHRONOUS_INDICATOR, &ret->async_indicator)) < 0 ||
                    optional(ttlv_get_enum(h, KMIP_TAG_BATCH_ERROR_CONTINUATION_OPTION,
                                           &ret->batch_error_continuation)) < 0 ||
                    optional(ttlv_get_bool(h, KMIP_TAG_BATCH_ORDER_OPTION, &ret->batch_order_option)) < 0 ||
                    optional(ttlv_get_structure(h, KMIP_TAG_AUTHENTICATION, &ret->authentication)) < 0)
                        return log_debug_errno(-EPROTO, "KMIP: request header field of the wrong type");
                if (ret->max_response_size < 0)
                        return log_debug_errno(-EPROTO, "KMIP: negative Maximum Response Size");
                if (optional(ttlv_get_bool(h, KMIP_TAG_ATTESTATION_CAPABLE_INDICATOR, &ret->attestation_capable)) < 0)
                        return log_debug_errno(-EPROTO, "KMIP: Attestation Capable Indicator is not a boolean");
        } else {
                struct ttlv *nonce;
                r = ttlv_get_structure(h, KMIP_TAG_NONCE, &nonce);
                if (optional(r) < 0)
                        return log_debug_errno(-EPROTO, "KMIP: Nonce is not a structure");
                if (r >= 0) {
                        r = parse_nonce(nonce, &ret->nonce_id, &ret->nonce_id_size, &ret->nonce_value,
                                        &ret->nonce_value_size);
                        if (r < 0)
                                return r;
                }
        }
        TTLV_FOREACH_CHILD(at, h) {
                if (at->tag != KMIP_TAG_ATTESTATION_TYPE)
                        continue;
                if (at->type != TTLV_ENUMERATION || ret->n_attestation_types >= KMIP_MAX_ATTESTATION_TYPES)
                        return log_debug_errno(-EPROTO, "KMIP: malformed or too many Attestation Types");
                ret->attestation_types[ret->n_attestation_types++] = at->v.enumeration;
        }

        r = ttlv_get_integer(h, KMIP_TAG_BATCH_COUNT, &ret->batch_count);
        if (r < 0)
                return log_debug_errno(-EPROTO, "KMIP: missing or malformed Batch Count");
        return 0;
}

static int parse_item(struct ttlv *it, bool response, struct kmip_batch_item *ret) {
        int r;
        if (it->type != TTLV_STRUCTURE)
                return log_debug_errno(-EPROTO, "KMIP: Batch Item is not a structure");

        r = ttlv_get_enum(it, KMIP_TAG_OPERATION, &ret->operation);
        if (r == -ENODATA && !response)
                return log_debug_errno(-EPROTO, "KMIP: request batch item without Operation");
        if (optional(r) < 0)
                return log_debug_errno(-EPROTO, "KMIP: Operation is not an enumeration");

        r = ttlv_get_bytes(it, KMIP_TAG_UNIQUE_BATCH_ITEM_ID, &ret->id, &ret->id_size);
        if (optional(r) < 0)
                return log_debug_errno(-EPROTO, "KMIP: Unique Batch Item ID is not a byte string");

        uint32_t payload_tag = response ? KMIP_TAG_RESPONSE_PAYLOAD : KMIP_TAG_REQUEST_PAYLOAD;
        r = ttlv_get_structure(it, payload_tag, &ret->payload);
        if (optional(r) < 0)
                return log_debug_errno(-EPROTO, "KMIP: payload is not a structure");

        if (response) {
                r = ttlv_get_enum(it, KMIP_TAG_RESULT_STATUS, &ret->result_status);
                if (r < 0)
                        return log_debug_errno(-EPROTO, "KMIP: response batch item without Result Status");
                if (optional(ttlv_get_enum(it, KMIP_TAG_RESULT_REASON, &ret->result_reason)) < 0 ||
                    optional(ttlv_get_text(it, KMIP_TAG_RESULT_MESSAGE, &ret->result_message, NULL)) < 0)
                        return log_debug_errno(-EPROTO, "KMIP: result field of the wrong type");
                if (ret->result_status == KMIP_STATUS_SUCCESS && ret->operation == 0)
                        return log_debug_errno(-EPROTO, "KMIP: successful batch item without Operation");
        } else if (!ret->payload)
                return log_debug_errno(-EPROTO, "KMIP: request batch item without Request Payload");
        return 0;
}

static int message_from_ttlv(struct ttlv_arena *a, const struct ttlv *root, bool response,
                             struct kmip_message *ret) {
        *ret = (struct kmip_message) {};
        uint32_t want = response ? KMIP_TAG_RESPONSE_MESSAGE : KMIP_TAG_REQUEST_MESSAGE;
        if (!root || root->tag != want || root->type != TTLV_STRUCTURE)
                return log_debug_errno(-EPROTO, "KMIP: not a %s message", response ? "response" : "request");

        /* The version first, on its own, so that even a broken message can be answered
         * in the version the peer speaks. */
        struct ttlv *h = root->child;
        if (h && h->type == TTLV_STRUCTURE)
                (void) parse_version(ttlv_find(h, KMIP_TAG_PROTOCOL_VERSION), &ret->header.version);

        struct kmip_version v = ret->header.version;
        int r = parse_header(h, response, &ret->header);
        if (r < 0) {
                ret->header = (struct kmip_header) { .version = v };
                return r;
        }

        size_t n = ttlv_count(root, KMIP_TAG_BATCH_ITEM);
        if (n == 0)
                return log_debug_errno(-EPROTO, "KMIP: message without batch items");
        if (n > KMIP_MAX_BATCH_ITEMS)
                return log_debug_errno(-EMSGSIZE, "KMIP: %zu batch items, more than %d", n,
                                       KMIP_MAX_BATCH_ITEMS);
        if (ret->header.batch_count < 0 || (size_t) ret->header.batch_count != n)
                return log_debug_errno(-EPROTO, "KMIP: Batch Count %d but %zu batch items",
                                       ret->header.batch_count, n);
        if (ttlv_count(root, 0) != n + 1)
                return log_debug_errno(-EPROTO, "KMIP: unexpected fields in the message");

        ret->items = ttlv_arena_alloc(a, n * sizeof(*ret->items));
        if (!ret->items)
                return -ENOMEM;
        size_t i = 0;
        for (struct ttlv *it = ttlv_find(root, KMIP_TAG_BATCH_ITEM); it; it = ttlv_find_next(it)) {
                r = parse_item(it, response, &ret->items[i]);
                if (r < 0)
                        return r;
                i++;
        }
        ret->n_items = n;
        return 0;
}

int kmip_request_from_ttlv(struct ttlv_arena *a, const struct ttlv *root, struct kmip_message *ret) {
        return message_from_ttlv(a, root, false, ret);
}

int kmip_response_from_ttlv(struct ttlv_arena *a, const struct ttlv *root, struct kmip_message *ret) {
        return message_from_ttlv(a, root, true, ret);
}

static int message_parse(struct ttlv_arena *a, const uint8_t *buf, size_t size,
                         const struct ttlv_limits *limits, bool response, struct kmip_message *ret) {
        struct ttlv *root;
        *ret = (struct kmip_message) {};
        int r = ttlv_decode(a, buf, size, limits, &root);
        if (r < 0) {
                /* Still try to read the version from the raw prefix: the first item of the
                 * header is the Protocol Version in every KMIP version. */
                if (size >= 56 && buf[24] == 0x42 && buf[25] == 0x00 && buf[26] == 0x6A &&
                    buf[40] == 0x42 && buf[41] == 0x00 && buf[42] == 0x6B) {
                        ret->header.version.major =
                                (int32_t) ((uint32_t) buf[32] << 24 | buf[33] << 16 | buf[34] << 8 | buf[35]);
                        ret->header.version.minor =
                                (int32_t) ((uint32_t) buf[48] << 24 | buf[49] << 16 | buf[50] << 8 | buf[51]);
                }
                return r;
        }
        return message_from_ttlv(a, root, response, ret);
}

int kmip_request_parse(struct ttlv_arena *a, const uint8_t *buf, size_t size,
                       const struct ttlv_limits *limits, struct kmip_message *ret) {
        return message_parse(a, buf, size, limits, false, ret);
}

int kmip_response_parse(struct ttlv_arena *a, const uint8_t *buf, size_t size,
                        const struct ttlv_limits *limits, struct kmip_message *ret) {
        return message_parse(a, buf, size, limits, true, ret);
}

struct ttlv *kmip_version_add(struct ttlv_arena *a, struct ttlv *parent, struct kmip_version v) {
        struct ttlv *pv = ttlv_add_structure(a, parent, KMIP_TAG_PROTOCOL_VERSION);
        ttlv_add_integer(a, pv, KMIP_TAG_PROTOCOL_VERSION_MAJOR, v.major);
        ttlv_add_integer(a, pv, KMIP_TAG_PROTOCOL_VERSION_MINOR, v.minor);
        return pv;
}

static void add_payload(struct ttlv *item, struct ttlv *payload, uint32_t tag) {
        if (!payload)
                return;
        ttlv_detach(payload);
        payload->tag = tag;
        ttlv_append(item, payload);
}

int kmip_request_build(struct ttlv_arena *a, struct kmip_message *m, struct ttlv **ret) {
        if (m->n_items == 0 || m->n_items > KMIP_MAX_BATCH_ITEMS)
                return -EINVAL;
        struct ttlv *root = ttlv_add_structure(a, NULL, KMIP_TAG_REQUEST_MESSAGE);
        struct ttlv *h = ttlv_add_structure(a, root, KMIP_TAG_REQUEST_HEADER);
        const struct kmip_header *hd = &m->header;

        kmip_version_add(a, h, hd->version);
        if (hd->max_response_size > 0)
                ttlv_add_integer(a, h, KMIP_TAG_MAXIMUM_RESPONSE_SIZE, hd->max_response_size);
        if (hd->client_correlation)
                ttlv_add_text_len(a, h, KMIP_TAG_CLIENT_CORRELATION_VALUE,
                                  (const char *) hd->client_correlation, hd->client_correlation_size);
        if (hd->server_correlation)
                ttlv_add_text_len(a, h, KMIP_TAG_SERVER_CORRELATION_VALUE,
                                  (const char *) hd->server_correlation, hd->server_correlation_size);
        if (hd->async_indicator)
                ttlv_add_bool(a, h, KMIP_TAG_ASYNCHRONOUS_INDICATOR, true);
        if (hd->attestation_capable)
                ttlv_add_bool(a, h, KMIP_TAG_ATTESTATION_CAPABLE_INDICATOR, true);
        for (size_t i = 0; i < hd->n_attestation_types && i < KMIP_MAX_ATTESTATION_TYPES; i++)
                ttlv_add_enum(a, h, KMIP_TAG_ATTESTATION_TYPE, hd->attestation_types[i]);
        if (hd->authentication)
                ttlv_copy(a, h, hd->authentication, KMIP_TAG_AUTHENTICATION);
        if (hd->batch_error_continuation)
                ttlv_add_enum(a, h, KMIP_TAG_BATCH_ERROR_CONTINUATION_OPTION, hd->batch_error_continuation);
        if (hd->batch_order_option)
                ttlv_add_bool(a, h, KMIP_TAG_BATCH_ORDER_OPTION, true);
        if (hd->time_stamp)
                ttlv_add_date_time(a, h, KMIP_TAG_TIME_STAMP, hd->time_stamp);
        ttlv_add_integer(a, h, KMIP_TAG_BATCH_COUNT, (int32_t) m->n_items);

        for (size_t i = 0; i < m->n_items; i++) {
                struct kmip_batch_item *b = &m->items[i];
                struct ttlv *it = ttlv_add_structure(a, root, KMIP_TAG_BATCH_ITEM);
                ttlv_add_enum(a, it, KMIP_TAG_OPERATION, b->operation);
                if (b->id)
                        ttlv_add_bytes(a, it, KMIP_TAG_UNIQUE_BATCH_ITEM_ID, b->id, b->id_size);
                if (b->payload)
                        add_payload(it, b->payload, KMIP_TAG_REQUEST_PAYLOAD);
                else
                        ttlv_add_structure(a, it, KMIP_TAG_REQUEST_PAYLOAD);
        }
        if (ttlv_arena_failed(a))
                return -ENOMEM;
        *ret = root;
        return 0;
}

int kmip_response_build(struct ttlv_arena *a, struct kmip_message *m, struct ttlv **ret) {
        if (m->n_items == 0 || m->n_items > KMIP_MAX_BATCH_ITEMS)
                return -EINVAL;
        struct ttlv *root = ttlv_add_structure(a, NULL, KMIP_TAG_RESPONSE_MESSAGE);
        struct ttlv *h = ttlv_add_structure(a, root, KMIP_TAG_RESPONSE_HEADER);
        const struct kmip_header *hd = &m->header;

        kmip_version_add(a, h, hd->version);
        ttlv_add_date_time(a, h, KMIP_TAG_TIME_STAMP, hd->time_stamp ? hd->time_stamp : (int64_t) time(NULL));
        if (hd->nonce_id) {
                struct ttlv *nonce = ttlv_add_structure(a, h, KMIP_TAG_NONCE);
                ttlv_add_bytes(a, nonce, KMIP_TAG_NONCE_ID, hd->nonce_id, hd->nonce_id_size);
                ttlv_add_bytes(a, nonce, KMIP_TAG_NONCE_VALUE, hd->nonce_value, hd->nonce_value_size);
        }
        for (size_t i = 0; i < hd->n_attestation_types && i < KMIP_MAX_ATTESTATION_TYPES; i++)
                ttlv_add_enum(a, h, KMIP_TAG_ATTESTATION_TYPE, hd->attestation_types[i]);
        if (hd->client_correlation)
                ttlv_add_text_len(a, h, KMIP_TAG_CLIENT_CORRELATION_VALUE,
                                  (const char *) hd->client_correlation, hd->client_correlation_size);
        if (hd->server_correlation)
                ttlv_add_text_len(a, h, KMIP_TAG_SERVER_CORRELATION_VALUE,
                                  (const char *) hd->server_correlation, hd->server_correlation_size);
        ttlv_add_integer(a, h, KMIP_TAG_BATCH_COUNT, (int32_t) m->n_items);

        for (size_t i = 0; i < m->n_items; i++) {
                struct kmip_batch_item *b = &m->items[i];
                struct ttlv *it = ttlv_add_structure(a, root, KMIP_TAG_BATCH_ITEM);
                if (b->operation)
                        ttlv_add_enum(a, it, KMIP_TAG_OPERATION, b->operation);
                if (b->id)
                        ttlv_add_bytes(a, it, KMIP_TAG_UNIQUE_BATCH_ITEM_ID, b->id, b->id_size);
                ttlv_add_enum(a, it, KMIP_TAG_RESULT_STATUS, b->result_status);
                if (b->result_reason)
                        ttlv_add_enum(a, it, KMIP_TAG_RESULT_REASON, b->result_reason);
                if (b->result_message)
                        ttlv_add_text(a, it, KMIP_TAG_RESULT_MESSAGE, b->result_message);
                add_payload(it, b->payload, KMIP_TAG_RESPONSE_PAYLOAD);
        }
        if (ttlv_arena_failed(a))
                return -ENOMEM;
        *ret = root;
        return 0;
}

int kmip_response_build_error(struct ttlv_arena *a, struct kmip_version v, uint32_t reason,
                              const char *message, struct ttlv **ret) {
        struct kmip_batch_item item = {
                .result_status = KMIP_STATUS_OPERATION_FAILED,
                .result_reason = reason,
                .result_message = message,
        };
        struct kmip_message m = {
                .header.version = v,
                .items = &item,
                .n_items = 1,
        };
        return kmip_response_build(a, &m, ret);
}

size_t kmip_versions_negotiate(const struct kmip_version *theirs, size_t n_theirs,
                               const struct kmip_version *ours, size_t n_ours,
                               struct kmip_version *out) {
        size_t k = 0;
        for (size_t i = 0; i < n_ours; i++) {
                bool match = n_theirs == 0;
                for (size_t j = 0; j < n_theirs && !match; j++)
                        match = kmip_version_cmp(ours[i], theirs[j]) == 0;
                if (match)
                        out[k++] = ours[i];
        }
        return k;
}

int kmip_versions_parse(const struct ttlv *payload, struct kmip_version *out, size_t max,
                        size_t *ret_n) {
        size_t k = 0;
        if (payload)
                for (struct ttlv *pv = ttlv_find(payload, KMIP_TAG_PROTOCOL_VERSION); pv;
                     pv = ttlv_find_next(pv)) {
                        struct kmip_version v;
                        int r = parse_version(pv, &v);
                        if (r < 0)
                                return r;
                        if (k >= max)
                                return -E2BIG;
                        out[k++] = v;
                }
        *ret_n = k;
        return 0;
}

int kmip_versions_add(struct ttlv_arena *a, struct ttlv *payload,
                      const struct kmip_version *versions, size_t n) {
        for (size_t i = 0; i < n; i++)
                kmip_version_add(a, payload, versions[i]);
        return ttlv_arena_failed(a) ? -ENOMEM : 0;
}
