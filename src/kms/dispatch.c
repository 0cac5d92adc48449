/* One request message in, one response message out: version checks, the batch loop
 * with Unique Batch Item IDs and Batch Error Continuation, the operation table, and
 * the audit record of every item. */
#include <errno.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>

#include "kmip/errors.h"
#include "kms/kms.h"
#include "shared/log.h"

static const struct {
        uint32_t op;
        kms_op_fn *fn;
} handlers[] = {
        { KMIP_OP_CREATE, op_create },
        { KMIP_OP_REGISTER, op_register },
        { KMIP_OP_LOCATE, op_locate },
        { KMIP_OP_GET, op_get },
        { KMIP_OP_GET_ATTRIBUTES, op_get_attributes },
        { KMIP_OP_GET_ATTRIBUTE_LIST, op_get_attribute_list },
        { KMIP_OP_ADD_ATTRIBUTE, op_add_attribute },
        { KMIP_OP_MODIFY_ATTRIBUTE, op_modify_attribute },
        { KMIP_OP_DELETE_ATTRIBUTE, op_delete_attribute },
        { KMIP_OP_SET_ATTRIBUTE, op_set_attribute },
        { KMIP_OP_ACTIVATE, op_activate },
        { KMIP_OP_REVOKE, op_revoke },
        { KMIP_OP_DESTROY, op_destroy },
        { KMIP_OP_QUERY, op_query },
        { KMIP_OP_DISCOVER_VERSIONS, op_discover_versions },
        { KMIP_OP_ENCRYPT, op_encrypt },
        { KMIP_OP_DECRYPT, op_decrypt },
        { KMIP_OP_X_ENROLL_HOST, op_enroll_host },
};

/* Operations that never write to the store and finish quickly (no scans). */
static bool is_quick_read(uint32_t op) {
        switch (op) {
        case KMIP_OP_GET:
        case KMIP_OP_GET_ATTRIBUTES:
        case KMIP_OP_GET_ATTRIBUTE_LIST:
        case KMIP_OP_ENCRYPT:
        case KMIP_OP_DECRYPT:
        case KMIP_OP_QUERY:
        case KMIP_OP_DISCOVER_VERSIONS:
                return true;
        default:
                return false;
        }
}

/* Writes of a new object: nothing else can see it before the reply, so the reply
 * can be built at once and held until the write is durable. */
static bool is_deferrable_write(uint32_t op) {
        return op == KMIP_OP_CREATE || op == KMIP_OP_REGISTER;
}

static kms_op_fn *handler_for(uint32_t op) {
        for (size_t i = 0; i < ELEMENTSOF(handlers); i++)
                if (handlers[i].op == op)
                        return handlers[i].fn;
        return NULL;
}

int kms_dispatcher_init(struct kms_dispatcher *e, const struct kms_config *c, struct store *s, struct audit *audit) {
        *e = (struct kms_dispatcher) { .config = c, .store = s, .audit = audit };
        if (c->database) {
                int r = kms_attest_new(c->database, c->attestation_nonce_ttl, c->attestation_ek_ca, &e->attest);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < KMS_LOCK_STRIPES; i++)
                pthread_mutex_init(&e->stripes[i], NULL);
        return 0;
}

void kms_dispatcher_done(struct kms_dispatcher *e) {
        kms_attest_free(e->attest);
        e->attest = NULL;
        for (size_t i = 0; i < KMS_LOCK_STRIPES; i++)
                pthread_mutex_destroy(&e->stripes[i]);
}

static int encode(struct ttlv *root, uint8_t **ret, size_t *ret_n) {
        uint8_t *buf;
        size_t n;
        int r = ttlv_encode_alloc(root, &buf, &n);
        if (r < 0)
                return r;
        /* Hand over a plain malloc'ed copy: the caller frees it from another thread
         * after writing it out. Responses may hold key material (Get), so wipe. */
        uint8_t *out = malloc(n);
        if (!out) {
                ttlv_buffer_free(buf, n);
                return -ENOMEM;
        }
        memcpy(out, buf, n);
        ttlv_buffer_free(buf, n);
        *ret = out;
        *ret_n = n;
        return 0;
}

static int error_response(struct ttlv_arena *a, struct kmip_version v, uint32_t reason, const char *msg,
                          uint8_t **ret, size_t *ret_n) {
        struct ttlv *root;
        int r = kmip_response_build_error(a, v, reason, msg, &root);
        if (r < 0)
                return r;
        return encode(root, ret, ret_n);
}

/* Answer in the client's version when we speak it; a newer minor of a major we speak
 * is answered in our newest minor of that major (backward compatibility is required
 * within a major version); another major is refused. */
static int pick_version(struct kmip_version asked, struct kmip_version *ret) {
        if (kmip_version_supported(asked)) {
                *ret = asked;
                return 0;
        }
        for (size_t i = 0; i < kmip_n_versions_supported; i++) {
                struct kmip_version s = kmip_versions_supported[i];
                if (s.major == asked.major && s.minor < asked.minor) {
                        *ret = s;
                        return 0;
                }
        }
        return -EPROTONOSUPPORT;
}

static int process(struct kms_dispatcher *e, const struct kms_client *client, const uint8_t *req, size_t n,
                   struct kms_defer *defer, uint8_t **ret, size_t *ret_n);

int kms_process(struct kms_dispatcher *e, const struct kms_client *client, const uint8_t *req, size_t n,
                struct kms_defer *defer, uint8_t **ret, size_t *ret_n) {
        if (defer)
                defer->deferred = false;
        int r = process(e, client, req, n, defer, ret, ret_n);
        /* Leave this thread's OpenSSL error queue empty: the network loop runs
         * requests inline, and SSL_get_error() on any of its connections would
         * misread an error an operation left behind (e.g. a failed GCM tag check). */
        ERR_clear_error();
        return r;
}

void kms_defer_finish(struct kms_dispatcher *e, const struct kms_client *client, const struct kms_defer *d, int r) {
        /* Its success line went out before the write was queued (kms_store_object):
         * only a commit that failed, or a line that could not be written then
         * (audit-failure = continue), needs one now. */
        if (r < 0)
                (void) kms_audit(e, client, kmip_operation_name(d->operation), d->object_id,
                                 KMIP_STATUS_OPERATION_FAILED, kmip_reason_from_errno(r, d->v),
                                 "The commit failed after the audit line was written: nothing stored");
        else if (!d->audited)
                (void) kms_audit(e, client, kmip_operation_name(d->operation), d->object_id, KMIP_STATUS_SUCCESS, 0,
                                 NULL);
}

static int process(struct kms_dispatcher *e, const struct kms_client *client, const uint8_t *req, size_t n,
                   struct kms_defer *defer, uint8_t **ret, size_t *ret_n) {
        _cleanup_(ttlv_arena_freep) struct ttlv_arena *a = ttlv_arena_new();
        if (!a)
                return -ENOMEM;
        struct ttlv_limits limits = ttlv_default_limits;
        limits.max_size = e->config->max_message;

        struct kmip_message m = {};
        int r = kmip_request_parse(a, req, n, &limits, &m);
        /* The one item whose write may be queued without waiting, if any. */
        struct kms_defer *item_defer = NULL;
        if (r == 0 && defer) {
                if (m.n_items == 1 && is_deferrable_write(m.items[0].operation)) {
                        defer->operation = m.items[0].operation;
                        item_defer = defer;
                } else
                        for (size_t i = 0; i < m.n_items; i++)
                                if (!is_quick_read(m.items[i].operation))
                                        return -EWOULDBLOCK;
                /* Checking evidence reads and writes the attestation store: not on
                 * the network loop. */
                struct kmip_attestation_credential cred;
                if (!item_defer && kmip_attestation_credential_parse(m.header.authentication, &cred) != -ENODATA)
                        return -EWOULDBLOCK;
        }
        struct kmip_version v = m.header.version;
        if (v.major == 0 && v.minor == 0)
                v = KMIP_VERSION(1, 0);
        if (r < 0) {
                (void) kms_audit(e, client, "(invalid message)", NULL, KMIP_STATUS_OPERATION_FAILED,
                                 KMIP_REASON_INVALID_MESSAGE, NULL);
                if (pick_version(v, &v) < 0)
                        v = KMIP_VERSION(1, 0);
                return error_response(a, v, KMIP_REASON_INVALID_MESSAGE,
                                      r == -ELOOP      ? "Message structures nested too deeply"
                                      : r == -EMSGSIZE ? "Message too large"
                                                       : "Malformed request message",
                                      ret, ret_n);
        }
        if (pick_version(m.header.version, &v) < 0) {
                (void) kms_audit(e, client, "(unsupported version)", NULL, KMIP_STATUS_OPERATION_FAILED,
                                 KMIP_REASON_INVALID_MESSAGE, NULL);
                return error_response(a, m.header.version, KMIP_REASON_INVALID_MESSAGE,
                                      "Protocol version not supported", ret, ret_n);
        }
        uint32_t cont = m.header.batch_error_continuation ? m.header.batch_error_continuation : KMIP_BATCH_STOP;
        if (cont == KMIP_BATCH_UNDO || m.header.async_indicator) {
                const char *why = cont == KMIP_BATCH_UNDO ? "Batch Error Continuation Option Undo is not supported"
                                                          : "Asynchronous operations are not supported";
                (void) kms_audit(e, client, cont == KMIP_BATCH_UNDO ? "(batch undo)" : "(asynchronous)", NULL,
                                 KMIP_STATUS_OPERATION_FAILED, KMIP_REASON_FEATURE_NOT_SUPPORTED, why);
                return error_response(a, v, KMIP_REASON_FEATURE_NOT_SUPPORTED, why, ret, ret_n);
        }

        struct kmip_message resp = { .header = { .version = v } };
        resp.items = ttlv_arena_alloc(a, (m.n_items ? m.n_items : 1) * sizeof(*resp.items));
        if (!resp.items)
                return -ENOMEM;
        char placeholder[KMS_ID_MAX] = "";

        for (size_t i = 0; i < m.n_items; i++) {
                const struct kmip_batch_item *it = &m.items[i];
                struct kmip_batch_item *out = &resp.items[resp.n_items++];
                *out = (struct kmip_batch_item) { .operation = it->operation, .id = it->id, .id_size = it->id_size };
                struct kms_op op = {
                        .dispatcher = e, .client = client, .a = a, .v = v, .operation = it->operation,
                        .req = it->payload, .placeholder = placeholder,
                        .defer = item_defer, .header = &m.header,
                };
                op.resp = ttlv_add_structure(a, NULL, KMIP_TAG_RESPONSE_PAYLOAD);
                if (!op.resp)
                        return -ENOMEM;
                kms_op_fn *fn = handler_for(it->operation);
                int rr = fn ? fn(&op) : kms_fail(&op, -ENOSYS, "Operation not supported");
                if (ttlv_arena_failed(a))
                        return -ENOMEM;
                if (rr >= 0) {
                        out->result_status = KMIP_STATUS_SUCCESS;
                        out->payload = op.resp;
                } else {
                        out->result_status = KMIP_STATUS_OPERATION_FAILED;
                        out->result_reason = kmip_reason_from_errno(rr, v);
                        /* Attestation reasons exist since KMIP 1.2. */
                        if (op.reason && kmip_version_cmp(v, KMIP_VERSION(1, 2)) >= 0)
                                out->result_reason = op.reason;
                        out->result_message = op.message ? op.message : kmip_reason_name(out->result_reason);
                        if (op.message == op.message_buf) {
                                /* op ends with this item; the response is built after the loop. */
                                size_t len = strlen(op.message_buf) + 1;
                                char *copy = ttlv_arena_alloc(a, len);
                                if (!copy)
                                        return -ENOMEM;
                                memcpy(copy, op.message_buf, len);
                                out->result_message = copy;
                        }
                        if (op.nonce_set && !resp.header.nonce_id && kmip_version_cmp(v, KMIP_VERSION(1, 2)) >= 0) {
                                /* One Nonce per response header: the batch item that
                                 * asked for attestation is the request's only one. */
                                uint8_t *nid = ttlv_arena_alloc(a, sizeof(op.nonce_id));
                                uint8_t *nv = ttlv_arena_alloc(a, sizeof(op.nonce_value));
                                if (!nid || !nv)
                                        return -ENOMEM;
                                memcpy(nid, op.nonce_id, sizeof(op.nonce_id));
                                memcpy(nv, op.nonce_value, sizeof(op.nonce_value));
                                resp.header.nonce_id = nid;
                                resp.header.nonce_id_size = sizeof(op.nonce_id);
                                resp.header.nonce_value = nv;
                                resp.header.nonce_value_size = sizeof(op.nonce_value);
                                resp.header.attestation_types[0] = KMIP_ATTESTATION_TPM_QUOTE;
                                resp.header.n_attestation_types = 1;
                        }
                        log_debug("%s from %s: %s", kmip_operation_name(it->operation), client->cn, out->result_message);
                }
                if (op.defer && op.defer->deferred) {
                        /* kms_defer_finish completes the record once the write's
                         * outcome is known. */
                        op.defer->v = v;
                        op.defer->audited = op.audited;
                        snprintf(op.defer->object_id, sizeof(op.defer->object_id), "%s", op.object_id);
                } else if (!op.audited || rr < 0) {
                        /* A write that succeeded was audited before it was stored; one
                         * that failed after its line gets a second line, "failed". */
                        int ar = kms_audit(e, client, kmip_operation_name(it->operation), op.object_id,
                                           out->result_status, out->result_reason, rr < 0 ? out->result_message : NULL);
                        if (ar < 0 && rr >= 0 && kms_audit_refuses(e)) {
                                /* A read (a write's line went first): no line, no answer. */
                                rr = -EIO;
                                out->result_status = KMIP_STATUS_OPERATION_FAILED;
                                out->result_reason = kmip_reason_from_errno(rr, v);
                                out->result_message = KMS_AUDIT_REFUSED;
                                out->payload = NULL;
                        }
                }
                if (rr < 0 && cont == KMIP_BATCH_STOP)
                        break;
        }

        struct ttlv *root;
        r = kmip_response_build(a, &resp, &root);
        if (r < 0)
                return r;
        if (m.header.max_response_size > 0 && ttlv_encoded_size(root) > (size_t) m.header.max_response_size)
                return error_response(a, v, KMIP_REASON_RESPONSE_TOO_LARGE, "Response larger than Maximum Response Size",
                                      ret, ret_n);
        return encode(root, ret, ret_n);
}
