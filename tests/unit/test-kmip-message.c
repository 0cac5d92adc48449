/* KMIP messages: requests and responses built, encoded, decoded and parsed both ways;
 * envelopes with wrong types, missing fields or wrong counts are refused; the
 * version survives a broken message; DiscoverVersions negotiation. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kmip/message.h"
#include "kmip/tags.h"
#include "kmip/ttlv.h"

static struct ttlv_arena *A;

static int setup(void **state) {
        (void) state;
        A = ttlv_arena_new();
        return A ? 0 : -1;
}

static int teardown(void **state) {
        (void) state;
        ttlv_arena_free(A);
        return 0;
}

static void encode(const struct ttlv *t, uint8_t **buf, size_t *n) {
        assert_int_equal(ttlv_encode_alloc(t, buf, n), 0);
}

static void test_request_round_trip(void **state) {
        (void) state;
        struct ttlv *p1 = ttlv_add_structure(A, NULL, KMIP_TAG_REQUEST_PAYLOAD);
        ttlv_add_enum(A, p1, KMIP_TAG_OBJECT_TYPE, KMIP_OBJECT_SYMMETRIC_KEY);
        struct ttlv *p2 = ttlv_add_structure(A, NULL, KMIP_TAG_REQUEST_PAYLOAD);
        ttlv_add_text(A, p2, KMIP_TAG_UNIQUE_IDENTIFIER, "42");
        struct kmip_batch_item items[2] = {
                { .operation = KMIP_OP_CREATE, .id = (const uint8_t *) "A1", .id_size = 2, .payload = p1 },
                { .operation = KMIP_OP_GET, .id = (const uint8_t *) "A2", .id_size = 2, .payload = p2 },
        };
        struct kmip_message m = {
                .header = { .version = KMIP_VERSION(1, 1), .max_response_size = 4096,
                            .batch_error_continuation = KMIP_BATCH_STOP },
                .items = items,
                .n_items = 2,
        };
        struct ttlv *root;
        assert_int_equal(kmip_request_build(A, &m, &root), 0);
        uint8_t *buf;
        size_t n;
        encode(root, &buf, &n);
        /* The outer header says: Request Message, Structure, length n - 8. */
        assert_int_equal(buf[0], 0x42);
        assert_int_equal(buf[1], 0x00);
        assert_int_equal(buf[2], 0x78);
        assert_int_equal(buf[3], 0x01);
        assert_int_equal(((size_t) buf[4] << 24 | buf[5] << 16 | buf[6] << 8 | buf[7]), n - 8);

        struct kmip_message got;
        assert_int_equal(kmip_request_parse(A, buf, n, NULL, &got), 0);
        assert_int_equal(got.header.version.major, 1);
        assert_int_equal(got.header.version.minor, 1);
        assert_int_equal(got.header.max_response_size, 4096);
        assert_int_equal(got.header.batch_error_continuation, KMIP_BATCH_STOP);
        assert_int_equal(got.header.batch_count, 2);
        assert_int_equal(got.n_items, 2);
        assert_int_equal(got.items[0].operation, KMIP_OP_CREATE);
        assert_int_equal(got.items[1].operation, KMIP_OP_GET);
        assert_int_equal(got.items[1].id_size, 2);
        assert_memory_equal(got.items[1].id, "A2", 2);
        const char *uid;
        assert_int_equal(ttlv_get_text(got.items[1].payload, KMIP_TAG_UNIQUE_IDENTIFIER, &uid, NULL), 0);
        assert_string_equal(uid, "42");
        /* The same bytes do not parse as a response. */
        assert_int_equal(kmip_response_parse(A, buf, n, NULL, &got), -EPROTO);
        ttlv_buffer_free(buf, n);
}

static void test_response_round_trip(void **state) {
        (void) state;
        struct ttlv *p = ttlv_add_structure(A, NULL, KMIP_TAG_RESPONSE_PAYLOAD);
        ttlv_add_text(A, p, KMIP_TAG_UNIQUE_IDENTIFIER, "7");
        struct kmip_batch_item items[2] = {
                { .operation = KMIP_OP_ACTIVATE, .result_status = KMIP_STATUS_SUCCESS, .payload = p },
                { .operation = KMIP_OP_GET, .result_status = KMIP_STATUS_OPERATION_FAILED,
                  .result_reason = KMIP_REASON_ITEM_NOT_FOUND, .result_message = "no such key" },
        };
        struct kmip_message m = { .header.version = KMIP_VERSION(2, 0), .items = items, .n_items = 2 };
        struct ttlv *root;
        assert_int_equal(kmip_response_build(A, &m, &root), 0);
        uint8_t *buf;
        size_t n;
        encode(root, &buf, &n);
        struct kmip_message got;
        assert_int_equal(kmip_response_parse(A, buf, n, NULL, &got), 0);
        assert_int_equal(got.header.version.major, 2);
        assert_true(got.header.time_stamp > 1600000000); /* filled in by the builder */
        assert_int_equal(got.n_items, 2);
        assert_int_equal(got.items[0].result_status, KMIP_STATUS_SUCCESS);
        assert_non_null(got.items[0].payload);
        assert_int_equal(got.items[1].result_reason, KMIP_REASON_ITEM_NOT_FOUND);
        assert_string_equal(got.items[1].result_message, "no such key");
        assert_null(got.items[1].payload);
        ttlv_buffer_free(buf, n);
}

static void test_error_response(void **state) {
        (void) state;
        struct ttlv *root;
        assert_int_equal(kmip_response_build_error(A, KMIP_VERSION(1, 4), KMIP_REASON_INVALID_MESSAGE,
                                                   "bad", &root), 0);
        uint8_t *buf;
        size_t n;
        encode(root, &buf, &n);
        struct kmip_message got;
        assert_int_equal(kmip_response_parse(A, buf, n, NULL, &got), 0);
        assert_int_equal(got.n_items, 1);
        assert_int_equal(got.items[0].operation, 0);
        assert_int_equal(got.items[0].result_status, KMIP_STATUS_OPERATION_FAILED);
        assert_int_equal(got.items[0].result_reason, KMIP_REASON_INVALID_MESSAGE);
        ttlv_buffer_free(buf, n);
}

/* A valid request tree with one field swapped for a wrong one. */
static struct ttlv *request_tree(void) {
        struct ttlv *root = ttlv_add_structure(A, NULL, KMIP_TAG_REQUEST_MESSAGE);
        struct ttlv *h = ttlv_add_structure(A, root, KMIP_TAG_REQUEST_HEADER);
        kmip_version_add(A, h, KMIP_VERSION(1, 2));
        ttlv_add_integer(A, h, KMIP_TAG_BATCH_COUNT, 1);
        struct ttlv *it = ttlv_add_structure(A, root, KMIP_TAG_BATCH_ITEM);
        ttlv_add_enum(A, it, KMIP_TAG_OPERATION, KMIP_OP_QUERY);
        ttlv_add_structure(A, it, KMIP_TAG_REQUEST_PAYLOAD);
        return root;
}

static int parse_tree(struct ttlv *root, struct kmip_message *m) {
        uint8_t *buf;
        size_t n;
        encode(root, &buf, &n);
        int r = kmip_request_parse(A, buf, n, NULL, m);
        ttlv_buffer_free(buf, n);
        return r;
}

static void test_wrong_types_refused(void **state) {
        (void) state;
        struct kmip_message m;
        struct ttlv *root = request_tree();
        assert_int_equal(parse_tree(root, &m), 0);

        /* Batch Count as an Enumeration. */
        root = request_tree();
        struct ttlv *bc = ttlv_find(root->child, KMIP_TAG_BATCH_COUNT);
        bc->type = TTLV_ENUMERATION;
        assert_int_equal(parse_tree(root, &m), -EPROTO);
        /* The version is still known, for the error answer. */
        assert_int_equal(m.header.version.major, 1);
        assert_int_equal(m.header.version.minor, 2);

        /* Operation as an Integer. */
        root = request_tree();
        ttlv_find(root->last, KMIP_TAG_OPERATION)->type = TTLV_INTEGER;
        assert_int_equal(parse_tree(root, &m), -EPROTO);

        /* Protocol Version Major as a Long Integer. */
        root = request_tree();
        struct ttlv *pv = ttlv_find(root->child, KMIP_TAG_PROTOCOL_VERSION);
        struct ttlv *major = ttlv_find(pv, KMIP_TAG_PROTOCOL_VERSION_MAJOR);
        major->type = TTLV_LONG_INTEGER;
        major->v.long_integer = 1;
        assert_int_equal(parse_tree(root, &m), -EPROTO);

        /* Payload as a Text String. */
        root = request_tree();
        struct ttlv *pl = ttlv_find(root->last, KMIP_TAG_REQUEST_PAYLOAD);
        ttlv_detach(pl);
        ttlv_add_text(A, root->last, KMIP_TAG_REQUEST_PAYLOAD, "x");
        assert_int_equal(parse_tree(root, &m), -EPROTO);

        /* Batch Count disagreeing with the items. */
        root = request_tree();
        ttlv_find(root->child, KMIP_TAG_BATCH_COUNT)->v.integer = 2;
        assert_int_equal(parse_tree(root, &m), -EPROTO);

        /* No batch item at all, and a message of the wrong kind. */
        root = request_tree();
        ttlv_detach(root->last);
        ttlv_find(root->child, KMIP_TAG_BATCH_COUNT)->v.integer = 0;
        assert_int_equal(parse_tree(root, &m), -EPROTO);
        root = request_tree();
        root->tag = KMIP_TAG_RESPONSE_MESSAGE;
        assert_int_equal(parse_tree(root, &m), -EPROTO);

        /* Unknown header fields from a newer minor version are ignored. */
        root = request_tree();
        ttlv_add_text(A, root->child, 0x540099, "extension");
        assert_int_equal(parse_tree(root, &m), 0);
}

static void test_version_from_broken_bytes(void **state) {
        (void) state;
        uint8_t *buf;
        size_t n;
        encode(request_tree(), &buf, &n);
        buf[n - 1] = 0x01; /* non-zero padding at the very end */
        struct kmip_message m;
        assert_int_equal(kmip_request_parse(A, buf, n, NULL, &m), -EPROTO);
        assert_int_equal(m.header.version.major, 1);
        assert_int_equal(m.header.version.minor, 2);
        ttlv_buffer_free(buf, n);
}

static void test_versions(void **state) {
        (void) state;
        struct kmip_version theirs[] = { { 1, 1 }, { 1, 4 }, { 3, 0 } }, out[8];
        size_t k = kmip_versions_negotiate(theirs, 3, kmip_versions_supported, kmip_n_versions_supported, out);
        assert_int_equal(k, 2);
        assert_int_equal(out[0].minor, 4); /* our preference order */
        assert_int_equal(out[1].minor, 1);
        k = kmip_versions_negotiate(NULL, 0, kmip_versions_supported, kmip_n_versions_supported, out);
        assert_int_equal(k, kmip_n_versions_supported);

        struct ttlv *p = ttlv_add_structure(A, NULL, KMIP_TAG_RESPONSE_PAYLOAD);
        assert_int_equal(kmip_versions_add(A, p, out, k), 0);
        struct kmip_version back[8];
        size_t nb;
        assert_int_equal(kmip_versions_parse(p, back, 8, &nb), 0);
        assert_int_equal(nb, k);
        assert_int_equal(back[0].major, 2);
        assert_int_equal(kmip_versions_parse(p, back, 2, &nb), -E2BIG);
        assert_true(kmip_version_supported(KMIP_VERSION(1, 0)));
        assert_false(kmip_version_supported(KMIP_VERSION(2, 1)));
        assert_true(kmip_version_cmp(KMIP_VERSION(1, 4), KMIP_VERSION(2, 0)) < 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_request_round_trip),
                cmocka_unit_test(test_response_round_trip),
                cmocka_unit_test(test_error_response),
                cmocka_unit_test(test_wrong_types_refused),
                cmocka_unit_test(test_version_from_broken_bytes),
                cmocka_unit_test(test_versions),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
