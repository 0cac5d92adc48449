/* The KMIP client object and its request/response cycle: batch items out, results in,
 * connection reuse with one reconnect when a kept-alive connection turns out dead,
 * and the protocol-level operations (DiscoverVersions, Query). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kmip/client-internal.h"
#include "kmip/errors.h"
#include "kmip/tags.h"
#include "shared/log.h"

int kmip_client_new(const struct kmip_client_config *cfg, struct kmip_client **ret) {
        if (!cfg || cfg->n_servers == 0 || cfg->n_servers > KMIP_CLIENT_MAX_SERVERS)
                return log_debug_errno(-EINVAL, "kmip client: between 1 and %d servers needed",
                                       KMIP_CLIENT_MAX_SERVERS);
        if (!!cfg->cert_file != !!cfg->key_file && !cfg->cert_file)
                return log_debug_errno(-EINVAL, "kmip client: a key file without a certificate");
        struct kmip_client *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->fd = -1;
        for (size_t i = 0; i < cfg->n_servers; i++) {
                if (!cfg->servers[i] || !*cfg->servers[i])
                        goto einval;
                c->servers[i] = strdup(cfg->servers[i]);
                if (!c->servers[i])
                        goto enomem;
                c->n_servers++;
        }
        if ((cfg->cert_file && !(c->cert_file = strdup(cfg->cert_file))) ||
            (cfg->key_file && !(c->key_file = strdup(cfg->key_file))) ||
            (cfg->ca_file && !(c->ca_file = strdup(cfg->ca_file))))
                goto enomem;
        if (cfg->username && !(c->username = strdup(cfg->username)))
                goto enomem;
        if (cfg->password && !(c->password = secret_new_copy(cfg->password->data, cfg->password->size)))
                goto enomem;
        c->no_verify_name = cfg->no_verify_name;
        c->connect_timeout_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : 5000;
        c->io_timeout_ms = cfg->io_timeout_ms ? cfg->io_timeout_ms : 30000;
        c->max_response_size = cfg->max_response_size ? cfg->max_response_size : ttlv_default_limits.max_size;
        c->version = cfg->version.major ? cfg->version : KMIP_VERSION(1, 4);
        if (!kmip_version_supported(c->version)) {
                kmip_client_free(c);
                return log_debug_errno(-EPROTONOSUPPORT, "kmip client: KMIP %d.%d is not supported",
                                       cfg->version.major, cfg->version.minor);
        }
        *ret = c;
        return 0;
einval:
        kmip_client_free(c);
        return -EINVAL;
enomem:
        kmip_client_free(c);
        return -ENOMEM;
}

void kmip_client_free(struct kmip_client *c) {
        if (!c)
                return;
        conn_close(c);
        SSL_CTX_free(c->ctx);
        for (size_t i = 0; i < c->n_servers; i++)
                free(c->servers[i]);
        free(c->cert_file);
        free(c->key_file);
        free(c->ca_file);
        free(c->username);
        secret_free(c->password);
        free(c);
}

const char *kmip_client_error(const struct kmip_client *c) {
        return c ? c->error : "";
}

const char *kmip_client_endpoint(const struct kmip_client *c) {
        return c && c->ssl ? c->servers[c->connected] : NULL;
}

struct kmip_version kmip_client_version(const struct kmip_client *c) {
        return c->version;
}

void kmip_client_set_version(struct kmip_client *c, struct kmip_version v) {
        c->version = v;
}

void kmip_client_disconnect(struct kmip_client *c) {
        conn_close(c);
}

/* Send req and read the answer; on a connection that already served a request, a
 * dead peer (closed while idle) gets one fresh connection. Requests are not resent
 * once any byte of an answer arrived. */
static int exchange(struct kmip_client *c, const uint8_t *req, size_t req_size, uint8_t **ret, size_t *ret_size) {
        for (int attempt = 0;; attempt++) {
                int r = conn_open(c);
                if (r < 0)
                        return r;
                bool reused = c->reused;
                r = conn_send(c, req, req_size);
                if (r >= 0)
                        r = conn_recv(c, ret, ret_size);
                if (r >= 0) {
                        c->reused = true;
                        return 0;
                }
                if (!reused && (r == -ECONNRESET || r == -EPIPE))
                        r = conn_probe_alert(c);
                conn_close(c);
                if (!(reused && attempt == 0 && r == -ECONNRESET))
                        return r;
                log_debug("kmip client: kept-alive connection was closed, reconnecting");
        }
}

/* One exchange of the request items[0..n) (with an Attestation credential when
 * cred is set); the parsed response in resp. */
static int send_once(struct kmip_client *c, struct ttlv_arena *a, struct kmip_batch_item *items, size_t n,
                     const struct kmip_attestation_credential *cred, struct kmip_message *resp) {
        struct kmip_message m = {
                .header.version = c->version,
                .items = items,
                .n_items = n,
        };
        if (c->has_attester && kmip_version_cmp(c->version, KMIP_VERSION(1, 2)) >= 0) {
                m.header.attestation_capable = true;
                m.header.attestation_types[0] = KMIP_ATTESTATION_TPM_QUOTE;
                m.header.n_attestation_types = 1;
        }
        struct ttlv *auth = NULL;
        if (c->username || cred)
                auth = ttlv_add_structure(a, NULL, KMIP_TAG_AUTHENTICATION);
        if (c->username) {
                /* Authentication{Credential{Username and Password, {Username, Password}}};
                 * the password only ever lives in the arena, which is wiped. */
                struct ttlv *cr = ttlv_add_structure(a, auth, KMIP_TAG_CREDENTIAL);
                ttlv_add_enum(a, cr, KMIP_TAG_CREDENTIAL_TYPE, KMIP_CREDENTIAL_USERNAME_AND_PASSWORD);
                struct ttlv *value = ttlv_add_structure(a, cr, KMIP_TAG_CREDENTIAL_VALUE);
                ttlv_add_text(a, value, KMIP_TAG_USERNAME, c->username);
                if (c->password)
                        ttlv_add_text_len(a, value, KMIP_TAG_PASSWORD, (const char *) c->password->data,
                                          c->password->size);
        }
        if (cred)
                kmip_attestation_credential_add(a, auth, cred);
        m.header.authentication = auth;
        struct ttlv *root;
        int r = kmip_request_build(a, &m, &root);
        if (r < 0)
                return r;
        uint8_t *req = NULL, *buf = NULL;
        size_t req_size = 0, size = 0;
        r = ttlv_encode_alloc(root, &req, &req_size);
        if (r < 0)
                return r;
        struct sigpipe_state sp;
        sigpipe_block(&sp);
        r = exchange(c, req, req_size, &buf, &size);
        sigpipe_restore(&sp);
        ttlv_buffer_free(req, req_size);
        if (r < 0)
                return r;
        struct ttlv_limits lim = ttlv_default_limits;
        lim.max_size = c->max_response_size;
        r = kmip_response_parse(a, buf, size, &lim, resp);
        ttlv_buffer_free(buf, size);
        if (r < 0) {
                conn_close(c);
                return client_fail(c, -EPROTO, "%s: malformed KMIP response", c->servers[c->connected]);
        }
        return 0;
}

/* The server wants evidence for the one item of this request: ask the attester. */
static int attest_for(struct kmip_client *c, struct ttlv_arena *a, const struct kmip_batch_item *item,
                      const struct kmip_message *resp, struct kmip_attestation_credential *ret) {
        const char *uid = "";
        (void) ttlv_get_text(item->payload, KMIP_TAG_UNIQUE_IDENTIFIER, &uid, NULL);
        uint8_t *m = NULL, *as = NULL;
        size_t mn = 0, an = 0;
        char err[512] = "";
        int r = c->attester.attest(c->attester.userdata, item->operation, uid, resp->header.nonce_value,
                                   resp->header.nonce_value_size, &m, &mn, &as, &an, err, sizeof(err));
        if (r < 0)
                return client_fail(c, r, "%s: %s of %s needs attestation, which failed here: %s",
                                   c->servers[c->connected], kmip_operation_name(item->operation), uid,
                                   *err ? err : "unknown error");
        /* Into the arena, which goes with the request. */
        uint8_t *am = ttlv_arena_alloc(a, mn ? mn : 1), *aa = as ? ttlv_arena_alloc(a, an ? an : 1) : NULL;
        if (!am || (as && !aa)) {
                free(m);
                free(as);
                return -ENOMEM;
        }
        memcpy(am, m, mn);
        if (as)
                memcpy(aa, as, an);
        free(m);
        free(as);
        *ret = (struct kmip_attestation_credential) {
                .nonce_id = resp->header.nonce_id, .nonce_id_size = resp->header.nonce_id_size,
                .nonce_value = resp->header.nonce_value, .nonce_value_size = resp->header.nonce_value_size,
                .type = KMIP_ATTESTATION_TPM_QUOTE,
                .measurement = am, .measurement_size = mn,
                .assertion = aa, .assertion_size = an,
        };
        return 0;
}

void kmip_client_set_attester(struct kmip_client *c, const struct kmip_attester *a) {
        c->has_attester = a != NULL;
        if (a)
                c->attester = *a;
}

#ifdef VMCRYPT_TESTPOINTS
static bool test_replay(void) {
        const char *e = getenv("VMCRYPT_TEST_ATTEST");
        return e && strcmp(e, "replay") == 0;
}
#else
static inline bool test_replay(void) {
        return false;
}
#endif

int client_batch(struct kmip_client *c, struct ttlv_arena *a, struct kmip_batch_item *items, size_t n,
                 struct kmip_message *resp) {
        c->error[0] = '\0';
        c->attested = false;
        if (n == 0 || n > KMIP_MAX_BATCH_ITEMS)
                return -EINVAL;
        uint32_t *ids = ttlv_arena_alloc(a, n * sizeof(*ids));
        if (!ids)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                ids[i] = ++c->next_id;
                items[i].id = ttlv_arena_alloc(a, 4);
                if (!items[i].id)
                        return -ENOMEM;
                memcpy((uint8_t *) items[i].id, &ids[i], 4);
                items[i].id_size = 4;
        }
        struct kmip_attestation_credential cred;
        int r = send_once(c, a, items, n, NULL, resp);
        if (r < 0)
                return r;
        if (c->has_attester && n == 1 && resp->n_items == 1 && resp->header.nonce_id &&
            resp->items[0].result_status == KMIP_STATUS_OPERATION_FAILED &&
            resp->items[0].result_reason == KMIP_REASON_ATTESTATION_REQUIRED) {
                r = attest_for(c, a, &items[0], resp, &cred);
                if (r < 0)
                        return r;
                r = send_once(c, a, items, n, &cred, resp);
                if (r >= 0 && test_replay())
                        /* The refusal test of a replayed credential: the same evidence
                         * and nonce once more; its answer is the one reported. */
                        r = send_once(c, a, items, n, &cred, resp);
                if (r < 0)
                        return r;
                c->attested = true;
        }
        const char *name = c->servers[c->connected];
        /* A server that cannot read the request at all answers with one item and no
         * operation (KMIP 1.4 §11.1); report that reason. */
        if (resp->n_items == 1 && n > 1 && resp->items[0].result_status != KMIP_STATUS_SUCCESS) {
                struct kmip_batch_item *b = &resp->items[0];
                return client_fail(c, kmip_reason_to_errno(b->result_reason), "%s: request refused: %s%s%s", name,
                                   kmip_reason_name(b->result_reason), b->result_message ? ": " : "",
                                   b->result_message ? b->result_message : "");
        }
        if (resp->n_items != n) {
                conn_close(c);
                return client_fail(c, -EPROTO, "%s: %zu answers to %zu requests", name, resp->n_items, n);
        }
        /* Match answers to requests by Unique Batch Item ID when the server echoes it;
         * each request must get exactly one answer. */
        struct kmip_batch_item *sorted = ttlv_arena_alloc(a, n * sizeof(*sorted));
        bool *seen = ttlv_arena_alloc(a, n * sizeof(*seen));
        if (!sorted || !seen)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const struct kmip_batch_item *b = &resp->items[i];
                size_t k = i;
                if (b->id) {
                        uint32_t id = 0;
                        k = n;
                        if (b->id_size == 4) {
                                memcpy(&id, b->id, 4);
                                for (k = 0; k < n && ids[k] != id; k++)
                                        ;
                        }
                }
                if (k == n || seen[k]) {
                        conn_close(c);
                        return client_fail(c, -EPROTO, "%s: answers do not match the requests", name);
                }
                seen[k] = true;
                sorted[k] = *b;
        }
        memcpy(resp->items, sorted, n * sizeof(*sorted));

        for (size_t i = 0; i < n; i++) {
                const struct kmip_batch_item *b = &resp->items[i];
                if (b->result_status == KMIP_STATUS_SUCCESS)
                        continue;
                if (b->result_status != KMIP_STATUS_OPERATION_FAILED)
                        return client_fail(c, -EPROTO, "%s: %s: unexpected result status %s", name,
                                           kmip_operation_name(items[i].operation),
                                           kmip_status_name(b->result_status));
                return client_fail(c, kmip_reason_to_errno(b->result_reason), "%s: %s failed: %s%s%s", name,
                                   kmip_operation_name(items[i].operation), kmip_reason_name(b->result_reason),
                                   b->result_message ? ": " : "", b->result_message ? b->result_message : "");
        }
        return 0;
}

int client_call(struct kmip_client *c, struct ttlv_arena *a, uint32_t op, struct ttlv *payload,
                struct ttlv **ret) {
        struct kmip_batch_item item = { .operation = op, .payload = payload };
        struct kmip_message resp;
        int r = client_batch(c, a, &item, 1, &resp);
        if (r < 0)
                return r;
        if (resp.items[0].operation && resp.items[0].operation != op)
                return client_fail(c, -EPROTO, "%s: answer for %s to a %s request", c->servers[c->connected],
                                   kmip_operation_name(resp.items[0].operation), kmip_operation_name(op));
        if (ret)
                *ret = resp.items[0].payload;
        return 0;
}

int kmip_client_call(struct kmip_client *c, struct ttlv_arena *a, uint32_t op, struct ttlv *payload,
                     struct ttlv **ret) {
        return client_call(c, a, op, payload, ret);
}

int kmip_client_discover_versions(struct kmip_client *c, struct kmip_version *out, size_t max, size_t *ret_n) {
        _cleanup_(ttlv_arena_freep) struct ttlv_arena *a = ttlv_arena_new();
        if (!a)
                return -ENOMEM;
        struct ttlv *p = ttlv_add_structure(a, NULL, KMIP_TAG_REQUEST_PAYLOAD), *resp;
        int r = kmip_versions_add(a, p, kmip_versions_supported, kmip_n_versions_supported);
        if (r < 0)
                return r;
        /* Ask in the oldest version with DiscoverVersions (1.1), which any server reads. */
        struct kmip_version saved = c->version;
        if (kmip_version_cmp(c->version, KMIP_VERSION(1, 1)) > 0)
                c->version = KMIP_VERSION(1, 1);
        r = client_call(c, a, KMIP_OP_DISCOVER_VERSIONS, p, &resp);
        c->version = saved;
        if (r < 0)
                return r;
        r = kmip_versions_parse(resp, out, max, ret_n);
        if (r < 0)
                return client_fail(c, -EPROTO, "%s: malformed DiscoverVersions answer", c->servers[c->connected]);
        return 0;
}

int kmip_client_negotiate(struct kmip_client *c) {
        struct kmip_version v[16];
        size_t n;
        int r = kmip_client_discover_versions(c, v, ELEMENTSOF(v), &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                if (kmip_version_supported(v[i])) {
                        c->version = v[i];
                        return 0;
                }
        return client_fail(c, -EPROTONOSUPPORT, "%s: no KMIP version in common with the server",
                           c->servers[c->connected]);
}

int kmip_client_query(struct kmip_client *c, struct ttlv_arena *a, struct kmip_query_result *ret) {
        struct ttlv *p = ttlv_add_structure(a, NULL, KMIP_TAG_REQUEST_PAYLOAD), *resp;
        ttlv_add_enum(a, p, KMIP_TAG_QUERY_FUNCTION, KMIP_QUERY_OPERATIONS);
        ttlv_add_enum(a, p, KMIP_TAG_QUERY_FUNCTION, KMIP_QUERY_OBJECTS);
        ttlv_add_enum(a, p, KMIP_TAG_QUERY_FUNCTION, KMIP_QUERY_SERVER_INFORMATION);
        if (ttlv_arena_failed(a))
                return -ENOMEM;
        int r = client_call(c, a, KMIP_OP_QUERY, p, &resp);
        if (r < 0)
                return r;
        struct kmip_query_result q = {};
        size_t nop = ttlv_count(resp, KMIP_TAG_OPERATION), nobj = ttlv_count(resp, KMIP_TAG_OBJECT_TYPE);
        q.operations = ttlv_arena_alloc(a, (nop + 1) * sizeof(uint32_t));
        q.object_types = ttlv_arena_alloc(a, (nobj + 1) * sizeof(uint32_t));
        if (!q.operations || !q.object_types)
                return -ENOMEM;
        TTLV_FOREACH_CHILD(n, resp) {
                if (n->type != TTLV_ENUMERATION)
                        continue;
                if (n->tag == KMIP_TAG_OPERATION)
                        q.operations[q.n_operations++] = n->v.enumeration;
                else if (n->tag == KMIP_TAG_OBJECT_TYPE)
                        q.object_types[q.n_object_types++] = n->v.enumeration;
        }
        (void) ttlv_get_text(resp, KMIP_TAG_VENDOR_IDENTIFICATION, &q.vendor, NULL);
        (void) ttlv_get_structure(resp, KMIP_TAG_SERVER_INFORMATION, &q.server_information);
        *ret = q;
        return 0;
}
