/* Unit tests of the KMIP dispatcher of vmcrypt-kms (kms_process) without network: the
 * attribute operations in 1.x and 2.0 form, Locate filters and paging, the state
 * machine, and the read/write split the network loop relies on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kmip/attribute.h"
#include "kmip/message.h"
#include "kmip/tags.h"
#include "kms/kms.h"

static char dir[] = "/tmp/test-kms-dispatch-XXXXXX";
static struct kms_dispatcher dispatcher;
static struct kms_config *config;
static struct store *store;
static const struct kms_client alice = { .cn = "alice", .fingerprint = "aa" };
static const struct kms_client bob = { .cn = "bob", .fingerprint = "bb" };

static int setup(void **state) {
        (void) state;
        assert_non_null(mkdtemp(dir));
        assert_int_equal(kms_config_defaults(dir, &config), 0);
        struct secret *mk = secret_new(32);
        memset(mk->data, 7, 32);
        assert_int_equal(store_sqlite_open(config->database, &(struct master_source) { .key = mk }, &store), 0);
        secret_free(mk);
        return kms_dispatcher_init(&dispatcher, config, store, NULL);
}

static int teardown(void **state) {
        (void) state;
        kms_dispatcher_done(&dispatcher);
        store_free(store);
        kms_config_free(config);
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        return system(cmd);
}

/* One request of n_items through kms_process (defer NULL: every operation runs and
 * writes wait for their commit); on 0, *resp is the parsed response (in arena a). */
static int run_request(struct ttlv_arena *a, const struct kms_client *who, struct kmip_version v,
                       struct kmip_batch_item *items, size_t n_items, struct kms_defer *defer,
                       struct kmip_message *resp) {
        struct kmip_message m = { .header = { .version = v }, .items = items, .n_items = n_items };
        struct ttlv *root;
        assert_int_equal(kmip_request_build(a, &m, &root), 0);
        uint8_t *req, *out = NULL;
        size_t n, rn;
        assert_int_equal(ttlv_encode_alloc(root, &req, &n), 0);
        int r = kms_process(&dispatcher, who, req, n, defer, &out, &rn);
        ttlv_buffer_free(req, n);
        if (r == 0) {
                /* The parsed tree points into the response: keep it as long as the arena. */
                uint8_t *keep = ttlv_arena_alloc(a, rn);
                memcpy(keep, out, rn);
                assert_int_equal(kmip_response_parse(a, keep, rn, NULL, resp), 0);
        }
        free(out);
        return r;
}

/* One request with one item; returns the response item (in arena a). */
static struct kmip_batch_item *call(struct ttlv_arena *a, const struct kms_client *who, struct kmip_version v,
                                    uint32_t op, struct ttlv *payload) {
        struct kmip_batch_item item = { .operation = op, .payload = payload };
        struct kmip_message r;
        assert_int_equal(run_request(a, who, v, &item, 1, NULL, &r), 0);
        assert_int_equal(r.n_items, 1);
        assert_int_equal(r.header.version.major, v.major);
        assert_int_equal(r.header.version.minor, v.minor);
        return &r.items[0];
}

static struct ttlv *payload(struct ttlv_arena *a) {
        return ttlv_add_structure(a, NULL, KMIP_TAG_REQUEST_PAYLOAD);
}

static struct ttlv *uid_payload(struct ttlv_arena *a, const char *uid) {
        struct ttlv *p = payload(a);
        ttlv_add_text(a, p, KMIP_TAG_UNIQUE_IDENTIFIER, uid);
        return p;
}

static const char *create(struct ttlv_arena *a, const struct kms_client *who, struct kmip_version v, const char *name,
                          const char *group) {
        struct ttlv *p = payload(a);
        ttlv_add_enum(a, p, KMIP_TAG_OBJECT_TYPE, KMIP_OBJECT_SYMMETRIC_KEY);
        struct kmip_attr_list l = {};
        kmip_attr_list_add_enum(a, &l, KMIP_ATTR_CRYPTOGRAPHIC_ALGORITHM, KMIP_ALG_AES);
        kmip_attr_list_add_integer(a, &l, KMIP_ATTR_CRYPTOGRAPHIC_LENGTH, 128);
        if (name)
                kmip_attr_list_add_name(a, &l, name);
        if (group)
                kmip_attr_list_add_text(a, &l, "x-Group", group);
        kmip_attrs_build_container(a, p, &l, v);
        struct kmip_batch_item *r = call(a, who, v, KMIP_OP_CREATE, p);
        assert_int_equal(r->result_status, KMIP_STATUS_SUCCESS);
        const char *uid;
        assert_int_equal(ttlv_get_text(r->payload, KMIP_TAG_UNIQUE_IDENTIFIER, &uid, NULL), 0);
        return uid;
}

/* Value of attribute name through GetAttributes, or NULL if absent. */
static struct kmip_attr *get_attr(struct ttlv_arena *a, struct kmip_version v, const char *uid, const char *name) {
        struct ttlv *p = uid_payload(a, uid);
        kmip_attr_name_build(a, p, name, v);
        struct kmip_batch_item *r = call(a, &alice, v, KMIP_OP_GET_ATTRIBUTES, p);
        assert_int_equal(r->result_status, KMIP_STATUS_SUCCESS);
        struct kmip_attr_list l = {};
        const struct ttlv *c = kmip_version_is_2x(v) ? ttlv_find(r->payload, KMIP_TAG_ATTRIBUTES) : r->payload;
        assert_non_null(c);
        assert_int_equal(kmip_attrs_parse(a, c, &l), 0);
        struct kmip_attr *at = kmip_attr_list_find(&l, name, -1);
        return at;
}

static void test_attribute_ops(void **state) {
        (void) state;
        static const struct kmip_version versions[] = { { 1, 0 }, { 1, 4 }, { 2, 0 } };
        for (size_t i = 0; i < ELEMENTSOF(versions); i++) {
                struct kmip_version v = versions[i];
                struct ttlv_arena *a = ttlv_arena_new();
                const char *uid = create(a, &alice, v, NULL, NULL);
                assert_null(get_attr(a, v, uid, "x-Color"));

                /* Add: a custom attribute of a non-text type. */
                struct ttlv *p = uid_payload(a, uid);
                struct kmip_attr at = { .name = "x-Color", .value = ttlv_add_integer(a, NULL, KMIP_TAG_ATTRIBUTE_VALUE, 42) };
                struct ttlv *holder = kmip_version_is_2x(v) ? ttlv_add_structure(a, p, KMIP_TAG_NEW_ATTRIBUTE) : p;
                kmip_attr_build(a, holder, &at, v);
                assert_int_equal(call(a, &alice, v, KMIP_OP_ADD_ATTRIBUTE, p)->result_status, KMIP_STATUS_SUCCESS);
                struct kmip_attr *got = get_attr(a, v, uid, "x-Color");
                assert_non_null(got);
                assert_int_equal(got->value->type, TTLV_INTEGER);
                assert_int_equal(got->value->v.integer, 42);

                /* Modify (1.x) or Set (2.0). */
                p = uid_payload(a, uid);
                at.value = ttlv_add_integer(a, NULL, KMIP_TAG_ATTRIBUTE_VALUE, 43);
                holder = kmip_version_is_2x(v) ? ttlv_add_structure(a, p, KMIP_TAG_NEW_ATTRIBUTE) : p;
                kmip_attr_build(a, holder, &at, v);
                uint32_t op = kmip_version_is_2x(v) ? KMIP_OP_SET_ATTRIBUTE : KMIP_OP_MODIFY_ATTRIBUTE;
                assert_int_equal(call(a, &alice, v, op, p)->result_status, KMIP_STATUS_SUCCESS);
                assert_int_equal(get_attr(a, v, uid, "x-Color")->value->v.integer, 43);

                /* Attribute list names it. */
                struct kmip_batch_item *r = call(a, &alice, v, KMIP_OP_GET_ATTRIBUTE_LIST, uid_payload(a, uid));
                assert_int_equal(r->result_status, KMIP_STATUS_SUCCESS);
                const char *names[64];
                size_t n = 0;
                assert_int_equal(kmip_attr_names_parse(a, r->payload, names, 64, &n), 0);
                int seen = 0;
                for (size_t k = 0; k < n; k++)
                        seen += strcmp(names[k], "x-Color") == 0;
                assert_int_equal(seen, 1);

                /* Delete, then it is gone; deleting again fails. */
                for (int round = 0; round < 2; round++) {
                        p = uid_payload(a, uid);
                        kmip_attr_name_build(a, p, "x-Color", v);
                        r = call(a, &alice, v, KMIP_OP_DELETE_ATTRIBUTE, p);
                        assert_int_equal(r->result_status, round == 0 ? KMIP_STATUS_SUCCESS : KMIP_STATUS_OPERATION_FAILED);
                }
                assert_null(get_attr(a, v, uid, "x-Color"));

                /* 2.0 names the instance to delete by its value (Current Attribute). */
                if (kmip_version_is_2x(v)) {
                        for (int k = 1; k <= 2; k++) {
                                p = uid_payload(a, uid);
                                at = (struct kmip_attr) { .name = "x-Tone",
                                                          .value = ttlv_add_integer(a, NULL, KMIP_TAG_ATTRIBUTE_VALUE, k) };
                                kmip_attr_build(a, ttlv_add_structure(a, p, KMIP_TAG_NEW_ATTRIBUTE), &at, v);
                                assert_int_equal(call(a, &alice, v, KMIP_OP_ADD_ATTRIBUTE, p)->result_status,
                                                 KMIP_STATUS_SUCCESS);
                        }
                        for (int round = 0; round < 2; round++) {
                                p = uid_payload(a, uid);
                                at = (struct kmip_attr) { .name = "x-Tone",
                                                          .value = ttlv_add_integer(a, NULL, KMIP_TAG_ATTRIBUTE_VALUE, 2) };
                                kmip_attr_build(a, ttlv_add_structure(a, p, KMIP_TAG_CURRENT_ATTRIBUTE), &at, v);
                                r = call(a, &alice, v, KMIP_OP_DELETE_ATTRIBUTE, p);
                                assert_int_equal(r->result_status,
                                                 round == 0 ? KMIP_STATUS_SUCCESS : KMIP_STATUS_OPERATION_FAILED);
                        }
                        got = get_attr(a, v, uid, "x-Tone");
                        assert_non_null(got);
                        assert_int_equal(got->value->v.integer, 1); /* the other instance stays */
                }

                /* Server-only attributes cannot be added. */
                p = uid_payload(a, uid);
                at = (struct kmip_attr) { .name = "State", .value = ttlv_add_enum(a, NULL, KMIP_TAG_ATTRIBUTE_VALUE, 2) };
                holder = kmip_version_is_2x(v) ? ttlv_add_structure(a, p, KMIP_TAG_NEW_ATTRIBUTE) : p;
                kmip_attr_build(a, holder, &at, v);
                assert_int_equal(call(a, &alice, v, KMIP_OP_ADD_ATTRIBUTE, p)->result_status, KMIP_STATUS_OPERATION_FAILED);
                ttlv_arena_free(a);
        }
}

static void test_locate(void **state) {
        (void) state;
        struct kmip_version v = { 1, 4 };
        struct ttlv_arena *a = ttlv_arena_new();
        const char *ids[5];
        for (int i = 0; i < 5; i++)
                ids[i] = create(a, &alice, v, NULL, "loc");
        (void) create(a, &bob, v, NULL, "loc");

        struct ttlv *p = payload(a);
        struct kmip_attr at = { .name = "x-Group", .value = ttlv_add_text(a, NULL, KMIP_TAG_ATTRIBUTE_VALUE, "loc") };
        kmip_attr_build(a, p, &at, v);
        ttlv_add_integer(a, p, KMIP_TAG_MAXIMUM_ITEMS, 2);
        ttlv_add_integer(a, p, KMIP_TAG_OFFSET_ITEMS, 1);
        struct kmip_batch_item *r = call(a, &alice, v, KMIP_OP_LOCATE, p);
        assert_int_equal(r->result_status, KMIP_STATUS_SUCCESS);
        int32_t located;
        assert_int_equal(ttlv_get_integer(r->payload, KMIP_TAG_LOCATED_ITEMS, &located), 0);
        assert_int_equal(located, 5); /* alice's five, not bob's */
        assert_int_equal(ttlv_count(r->payload, KMIP_TAG_UNIQUE_IDENTIFIER), 2);
        struct ttlv *u = ttlv_find(r->payload, KMIP_TAG_UNIQUE_IDENTIFIER);
        assert_string_equal((const char *) u->v.bytes.data, ids[1]);
        assert_string_equal((const char *) ttlv_find_next(u)->v.bytes.data, ids[2]);

        /* A value that matches nothing. */
        p = payload(a);
        at.value = ttlv_add_text(a, NULL, KMIP_TAG_ATTRIBUTE_VALUE, "nope");
        kmip_attr_build(a, p, &at, v);
        r = call(a, &alice, v, KMIP_OP_LOCATE, p);
        assert_int_equal(ttlv_count(r->payload, KMIP_TAG_UNIQUE_IDENTIFIER), 0);
        ttlv_arena_free(a);
}

static uint32_t state_of(struct ttlv_arena *a, const char *uid) {
        struct kmip_attr *at = get_attr(a, (struct kmip_version) { 1, 4 }, uid, "State");
        assert_non_null(at);
        return at->value->v.enumeration;
}

static uint32_t run_op(struct ttlv_arena *a, uint32_t op, const char *uid, uint32_t revoke_code) {
        struct ttlv *p = uid_payload(a, uid);
        if (op == KMIP_OP_REVOKE) {
                struct ttlv *rr = ttlv_add_structure(a, p, KMIP_TAG_REVOCATION_REASON);
                ttlv_add_enum(a, rr, KMIP_TAG_REVOCATION_REASON_CODE, revoke_code);
        }
        struct kmip_batch_item *r = call(a, &alice, (struct kmip_version) { 1, 4 }, op, p);
        return r->result_status == KMIP_STATUS_SUCCESS ? 0 : r->result_reason;
}

static void test_state_machine(void **state) {
        (void) state;
        struct ttlv_arena *a = ttlv_arena_new();
        struct kmip_version v = { 1, 4 };
        const char *k = create(a, &alice, v, NULL, NULL);
        assert_int_equal(state_of(a, k), KMIP_STATE_PRE_ACTIVE);
        assert_int_equal(run_op(a, KMIP_OP_ACTIVATE, k, 0), 0);
        assert_int_equal(state_of(a, k), KMIP_STATE_ACTIVE);
        assert_non_null(get_attr(a, v, k, "Activation Date"));
        assert_int_not_equal(run_op(a, KMIP_OP_ACTIVATE, k, 0), 0);   /* not Pre-Active any more */
        assert_int_not_equal(run_op(a, KMIP_OP_DESTROY, k, 0), 0);    /* Active: revoke first */
        assert_int_equal(run_op(a, KMIP_OP_REVOKE, k, KMIP_REVOKE_CESSATION_OF_OPERATION), 0);
        assert_int_equal(state_of(a, k), KMIP_STATE_DEACTIVATED);
        assert_non_null(get_attr(a, v, k, "Deactivation Date"));
        assert_int_equal(run_op(a, KMIP_OP_DESTROY, k, 0), 0);
        assert_int_equal(state_of(a, k), KMIP_STATE_DESTROYED);
        assert_non_null(get_attr(a, v, k, "Destroy Date"));
        assert_int_equal(run_op(a, KMIP_OP_GET, k, 0), KMIP_REASON_ITEM_NOT_FOUND);
        assert_int_not_equal(run_op(a, KMIP_OP_DESTROY, k, 0), 0);

        /* Compromise from Pre-Active, then Destroyed Compromised. */
        const char *c = create(a, &alice, v, NULL, NULL);
        assert_int_equal(run_op(a, KMIP_OP_REVOKE, c, KMIP_REVOKE_KEY_COMPROMISE), 0);
        assert_int_equal(state_of(a, c), KMIP_STATE_COMPROMISED);
        assert_non_null(get_attr(a, v, c, "Compromise Date"));
        assert_int_equal(run_op(a, KMIP_OP_DESTROY, c, 0), 0);
        assert_int_equal(state_of(a, c), KMIP_STATE_DESTROYED_COMPROMISED);

        /* Encrypt needs an Active key. */
        const char *e = create(a, &alice, v, NULL, NULL);
        struct ttlv *p = uid_payload(a, e);
        ttlv_add_bytes(a, p, KMIP_TAG_DATA, "x", 1);
        assert_int_equal(call(a, &alice, v, KMIP_OP_ENCRYPT, p)->result_status, KMIP_STATUS_OPERATION_FAILED);
        ttlv_arena_free(a);
}

static void modify_date(struct ttlv_arena *a, struct kmip_version v, const char *uid, const char *name, int64_t t) {
        struct ttlv *p = uid_payload(a, uid);
        struct kmip_attr at = { .name = name, .value = ttlv_add_date_time(a, NULL, KMIP_TAG_ATTRIBUTE_VALUE, t) };
        kmip_attr_build(a, p, &at, v);
        struct kmip_batch_item *r = call(a, &alice, v, KMIP_OP_ADD_ATTRIBUTE, p);
        if (r->result_status != KMIP_STATUS_SUCCESS) {
                p = uid_payload(a, uid);
                kmip_attr_build(a, p, &at, v);
                r = call(a, &alice, v, KMIP_OP_MODIFY_ATTRIBUTE, p);
        }
        assert_int_equal(r->result_status, KMIP_STATUS_SUCCESS);
}

/* Dates move states by themselves: Activation Date reached -> Active, Deactivation
 * Date reached -> Deactivated, and Locate by State agrees. */
static void test_dates(void **state) {
        (void) state;
        struct ttlv_arena *a = ttlv_arena_new();
        struct kmip_version v = { 1, 4 };
        const char *k = create(a, &alice, v, NULL, "dates");
        int64_t now = kms_now();
        modify_date(a, v, k, "Activation Date", now + 3600);
        assert_int_equal(state_of(a, k), KMIP_STATE_PRE_ACTIVE);
        modify_date(a, v, k, "Activation Date", now - 10);
        assert_int_equal(state_of(a, k), KMIP_STATE_ACTIVE);

        struct ttlv *p = payload(a);
        struct kmip_attr at = { .name = "State", .value = ttlv_add_enum(a, NULL, KMIP_TAG_ATTRIBUTE_VALUE, KMIP_STATE_ACTIVE) };
        kmip_attr_build(a, p, &at, v);
        struct kmip_attr g = { .name = "x-Group", .value = ttlv_add_text(a, NULL, KMIP_TAG_ATTRIBUTE_VALUE, "dates") };
        kmip_attr_build(a, p, &g, v);
        struct kmip_batch_item *r = call(a, &alice, v, KMIP_OP_LOCATE, p);
        assert_int_equal(ttlv_count(r->payload, KMIP_TAG_UNIQUE_IDENTIFIER), 1);

        modify_date(a, v, k, "Deactivation Date", now - 1);
        assert_int_equal(state_of(a, k), KMIP_STATE_DEACTIVATED);
        /* Deactivated may be destroyed without a Revoke. */
        assert_int_equal(run_op(a, KMIP_OP_DESTROY, k, 0), 0);
        ttlv_arena_free(a);
}

/* Ids are RFC 9562 version 7 UUIDs: distinct, well-formed, and in creation order
 * (what keeps the store's id index appending instead of scattering). */
static void test_new_id(void **state) {
        (void) state;
        char prev[KMS_ID_MAX] = "", id[KMS_ID_MAX];
        for (int i = 0; i < 2000; i++) {
                kms_new_id(id);
                assert_int_equal(strlen(id), 36);
                for (int k = 0; k < 36; k++) {
                        if (k == 8 || k == 13 || k == 18 || k == 23)
                                assert_int_equal(id[k], '-');
                        else
                                assert_non_null(strchr("0123456789abcdef", id[k]));
                }
                assert_int_equal(id[14], '7');
                assert_non_null(strchr("89ab", id[19]));
                assert_string_not_equal(id, prev);
                /* Same millisecond: random tail, so only the time prefix is ordered. */
                assert_true(strncmp(prev, id, 13) <= 0);
                memcpy(prev, id, sizeof(id));
        }
}

struct done_flag {
        int r;
        int called;
};

static void note_done(int r, void *userdata) {
        struct done_flag *f = userdata;
        f->r = r;
        __atomic_add_fetch(&f->called, 1, __ATOMIC_RELEASE);
}

/* The network loop's mode: reads answered, a lone Create answered before its commit
 * with the reply held back, everything else handed back untouched. */
static void test_inline_split(void **state) {
        (void) state;
        struct ttlv_arena *a = ttlv_arena_new();
        struct kmip_version v = { 1, 1 };
        const char *k = create(a, &alice, v, NULL, NULL);
        struct done_flag f = {};
        struct kms_defer d = { .done = note_done, .userdata = &f };
        struct kmip_message resp;

        struct kmip_batch_item get = { .operation = KMIP_OP_GET, .payload = uid_payload(a, k) };
        assert_int_equal(run_request(a, &alice, v, &get, 1, &d, &resp), 0);
        assert_false(d.deferred);
        assert_int_equal(resp.items[0].result_status, KMIP_STATUS_SUCCESS);

        struct kmip_batch_item act = { .operation = KMIP_OP_ACTIVATE, .payload = uid_payload(a, k) };
        assert_int_equal(run_request(a, &alice, v, &act, 1, &d, &resp), -EWOULDBLOCK);
        assert_false(d.deferred);
        assert_int_equal(state_of(a, k), KMIP_STATE_PRE_ACTIVE);

        struct ttlv *p = payload(a);
        ttlv_add_enum(a, p, KMIP_TAG_OBJECT_TYPE, KMIP_OBJECT_SYMMETRIC_KEY);
        struct kmip_attr_list l = {};
        kmip_attr_list_add_enum(a, &l, KMIP_ATTR_CRYPTOGRAPHIC_ALGORITHM, KMIP_ALG_AES);
        kmip_attr_list_add_integer(a, &l, KMIP_ATTR_CRYPTOGRAPHIC_LENGTH, 256);
        kmip_attrs_build_container(a, p, &l, v);
        struct kmip_batch_item cr[2] = {
                { .operation = KMIP_OP_CREATE, .payload = p },
                { .operation = KMIP_OP_ACTIVATE, .payload = payload(a) },
        };
        /* Create then Activate of its placeholder: the second item needs the first
         * durable, so the whole batch goes to a worker. */
        assert_int_equal(run_request(a, &alice, v, cr, 2, &d, &resp), -EWOULDBLOCK);
        assert_false(d.deferred);
        assert_int_equal(__atomic_load_n(&f.called, __ATOMIC_ACQUIRE), 0);

        /* A lone Create: answered now, reported durable later, exactly once. */
        assert_int_equal(run_request(a, &alice, v, cr, 1, &d, &resp), 0);
        assert_true(d.deferred);
        assert_int_equal(d.operation, KMIP_OP_CREATE);
        assert_int_equal(resp.items[0].result_status, KMIP_STATUS_SUCCESS);
        const char *uid;
        assert_int_equal(ttlv_get_text(resp.items[0].payload, KMIP_TAG_UNIQUE_IDENTIFIER, &uid, NULL), 0);
        assert_string_equal(d.object_id, uid);
        while (!__atomic_load_n(&f.called, __ATOMIC_ACQUIRE))
                usleep(100);
        usleep(10000);
        assert_int_equal(__atomic_load_n(&f.called, __ATOMIC_ACQUIRE), 1);
        assert_int_equal(f.r, 0);
        /* Once reported, the key is there for everyone's reads. */
        assert_int_equal(state_of(a, uid), KMIP_STATE_PRE_ACTIVE);
        struct kmip_batch_item *g = call(a, &alice, v, KMIP_OP_GET, uid_payload(a, uid));
        assert_int_equal(g->result_status, KMIP_STATUS_SUCCESS);
        ttlv_arena_free(a);
}

/* One Decrypt of uid with the given request header; the parsed response. */
static struct kmip_message decrypt_with(struct ttlv_arena *a, const struct kmip_header *h, const char *uid) {
        struct ttlv *p = uid_payload(a, uid);
        ttlv_add_bytes(a, p, KMIP_TAG_DATA, (const uint8_t *) "0123456789abcdef", 16);
        ttlv_add_bytes(a, p, KMIP_TAG_IV_COUNTER_NONCE, (const uint8_t *) "0123456789ab", 12);
        ttlv_add_bytes(a, p, KMIP_TAG_AUTHENTICATED_ENCRYPTION_TAG, (const uint8_t *) "0123456789abcdef", 16);
        struct kmip_batch_item item = { .operation = KMIP_OP_DECRYPT, .payload = p };
        struct kmip_message m = { .header = *h, .items = &item, .n_items = 1 }, r;
        struct ttlv *root;
        assert_int_equal(kmip_request_build(a, &m, &root), 0);
        uint8_t *req, *out = NULL;
        size_t n, rn;
        assert_int_equal(ttlv_encode_alloc(root, &req, &n), 0);
        assert_int_equal(kms_process(&dispatcher, &alice, req, n, NULL, &out, &rn), 0);
        ttlv_buffer_free(req, n);
        uint8_t *keep = ttlv_arena_alloc(a, rn);
        memcpy(keep, out, rn);
        free(out);
        assert_int_equal(kmip_response_parse(a, keep, rn, NULL, &r), 0);
        assert_int_equal(r.n_items, 1);
        return r;
}

/* A key with x-vmcrypt-Require-Attestation: a client that cannot attest is told
 * why; one that can gets Attestation Required and a Nonce in the response header;
 * a credential over an unknown or spent nonce fails; Get and deleting the
 * requirement are refused; a KMIP 1.1 client is told it cannot. */
static void test_attestation_required(void **state) {
        (void) state;
        struct ttlv_arena *a = ttlv_arena_new();
        struct kmip_version v = KMIP_VERSION(1, 4);
        struct ttlv *p = payload(a);
        ttlv_add_enum(a, p, KMIP_TAG_OBJECT_TYPE, KMIP_OBJECT_SYMMETRIC_KEY);
        struct kmip_attr_list l = {};
        kmip_attr_list_add_enum(a, &l, KMIP_ATTR_CRYPTOGRAPHIC_ALGORITHM, KMIP_ALG_AES);
        kmip_attr_list_add_integer(a, &l, KMIP_ATTR_CRYPTOGRAPHIC_LENGTH, 256);
        kmip_attr_list_add_text(a, &l, KMS_ATTR_REQUIRE_ATTESTATION, "lab");
        kmip_attrs_build_container(a, p, &l, v);
        struct kmip_batch_item *r = call(a, &alice, v, KMIP_OP_CREATE, p);
        assert_int_equal(r->result_status, KMIP_STATUS_SUCCESS);
        const char *uid;
        assert_int_equal(ttlv_get_text(r->payload, KMIP_TAG_UNIQUE_IDENTIFIER, &uid, NULL), 0);
        assert_int_equal(call(a, &alice, v, KMIP_OP_ACTIVATE, uid_payload(a, uid))->result_status, KMIP_STATUS_SUCCESS);

        struct kmip_header h = { .version = v };
        struct kmip_message m = decrypt_with(a, &h, uid);
        assert_int_equal(m.items[0].result_reason, KMIP_REASON_PERMISSION_DENIED);
        assert_non_null(strstr(m.items[0].result_message, "did not say it can attest"));
        assert_null(m.header.nonce_id);

        h.attestation_capable = true;
        h.attestation_types[h.n_attestation_types++] = KMIP_ATTESTATION_TPM_QUOTE;
        m = decrypt_with(a, &h, uid);
        assert_int_equal(m.items[0].result_status, KMIP_STATUS_OPERATION_FAILED);
        assert_int_equal(m.items[0].result_reason, KMIP_REASON_ATTESTATION_REQUIRED);
        assert_non_null(m.header.nonce_id);
        assert_int_equal(m.header.nonce_id_size, KMS_NONCE_ID_SIZE);
        assert_int_equal(m.header.nonce_value_size, KMS_NONCE_SIZE);
        assert_int_equal(m.header.n_attestation_types, 1);

        /* The nonce comes back without evidence: refused, and spent. */
        struct kmip_attestation_credential cred = {
                .nonce_id = m.header.nonce_id, .nonce_id_size = m.header.nonce_id_size,
                .nonce_value = m.header.nonce_value, .nonce_value_size = m.header.nonce_value_size,
                .type = KMIP_ATTESTATION_TPM_QUOTE,
        };
        h.authentication = ttlv_add_structure(a, NULL, KMIP_TAG_AUTHENTICATION);
        kmip_attestation_credential_add(a, h.authentication, &cred);
        struct kmip_message m2 = decrypt_with(a, &h, uid);
        assert_int_equal(m2.items[0].result_reason, KMIP_REASON_ATTESTATION_FAILED);
        assert_non_null(strstr(m2.items[0].result_message, "malformed"));
        h.authentication = ttlv_add_structure(a, NULL, KMIP_TAG_AUTHENTICATION);
        kmip_attestation_credential_add(a, h.authentication, &cred);
        m2 = decrypt_with(a, &h, uid);
        assert_int_equal(m2.items[0].result_reason, KMIP_REASON_ATTESTATION_FAILED);
        assert_non_null(strstr(m2.items[0].result_message, "unknown or already used nonce"));

        /* One client holds at most KMS_NONCES_PER_CLIENT nonces: asking for one more
         * gives up its oldest, which is then unknown; the second oldest still works
         * (and fails only for want of evidence). */
        h.authentication = NULL;
        struct kmip_message first = decrypt_with(a, &h, uid), second = decrypt_with(a, &h, uid);
        for (int i = 0; i < KMS_NONCES_PER_CLIENT - 1; i++)
                (void) decrypt_with(a, &h, uid);
        const struct kmip_message *which[] = { &first, &second };
        const char *expect[] = { "unknown or already used nonce", "malformed" };
        for (int i = 0; i < 2; i++) {
                cred.nonce_id = which[i]->header.nonce_id;
                cred.nonce_value = which[i]->header.nonce_value;
                h.authentication = ttlv_add_structure(a, NULL, KMIP_TAG_AUTHENTICATION);
                kmip_attestation_credential_add(a, h.authentication, &cred);
                m2 = decrypt_with(a, &h, uid);
                assert_non_null(strstr(m2.items[0].result_message, expect[i]));
        }

        /* Get never releases it; its owner cannot drop the requirement. */
        r = call(a, &alice, v, KMIP_OP_GET, uid_payload(a, uid));
        assert_int_equal(r->result_reason, KMIP_REASON_PERMISSION_DENIED);
        p = uid_payload(a, uid);
        ttlv_add_text(a, p, KMIP_TAG_ATTRIBUTE_NAME, KMS_ATTR_REQUIRE_ATTESTATION);
        r = call(a, &alice, v, KMIP_OP_DELETE_ATTRIBUTE, p);
        assert_int_equal(r->result_reason, KMIP_REASON_ILLEGAL_OPERATION);

        /* KMIP 1.1 has no attestation: told so, no Nonce. */
        h = (struct kmip_header) { .version = KMIP_VERSION(1, 1), .attestation_capable = true };
        m = decrypt_with(a, &h, uid);
        assert_int_equal(m.items[0].result_reason, KMIP_REASON_PERMISSION_DENIED);
        assert_null(m.header.nonce_id);

        /* Enroll Host wants EK and AK public areas that parse. */
        p = payload(a);
        ttlv_add_bytes(a, p, KMIP_TAG_X_EK_PUBLIC, (const uint8_t *) "junk", 4);
        ttlv_add_bytes(a, p, KMIP_TAG_X_AK_PUBLIC, (const uint8_t *) "junk", 4);
        r = call(a, &alice, v, KMIP_OP_X_ENROLL_HOST, p);
        assert_int_equal(r->result_status, KMIP_STATUS_OPERATION_FAILED);
        assert_non_null(strstr(r->result_message, "TPM2B_PUBLIC"));
        ttlv_arena_free(a);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_attribute_ops),
                cmocka_unit_test(test_locate),
                cmocka_unit_test(test_state_machine),
                cmocka_unit_test(test_dates),
                cmocka_unit_test(test_inline_split),
                cmocka_unit_test(test_new_id),
                cmocka_unit_test(test_attestation_required),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
