/* Mutation test of the KMIP dispatcher: valid requests of every served operation, with
 * bytes flipped, lengths changed and tails cut, fed to kms_process. Whatever comes in,
 * the dispatcher must answer with a well-formed response message (never crash, never read
 * out of bounds: run it under ASan). Deterministic: fixed seed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kmip/attribute.h"
#include "kmip/message.h"
#include "kmip/tags.h"
#include "kms/kms.h"

static char dir[] = "/tmp/test-kms-mutate-XXXXXX";

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint32_t next_rand(void) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return (uint32_t) rng;
}

static void encode_request(struct ttlv_arena *a, struct kmip_version v, uint32_t op, struct ttlv *p, uint8_t **out,
                           size_t *n) {
        struct kmip_batch_item item = { .operation = op, .payload = p, .id = (const uint8_t *) "id", .id_size = 2 };
        struct kmip_message m = { .header = { .version = v }, .items = &item, .n_items = 1 };
        struct ttlv *root;
        assert_int_equal(kmip_request_build(a, &m, &root), 0);
        assert_int_equal(ttlv_encode_alloc(root, out, n), 0);
}

static void count_done(int r, void *userdata) {
        (void) r;
        __atomic_add_fetch((int *) userdata, 1, __ATOMIC_RELEASE);
}

static void test_mutations(void **state) {
        (void) state;
        assert_non_null(mkdtemp(dir));
        struct kms_config *config;
        assert_int_equal(kms_config_defaults(dir, &config), 0);
        struct secret *mk = secret_new(32);
        struct store *store;
        assert_int_equal(store_sqlite_open(config->database, &(struct master_source) { .key = mk }, &store), 0);
        secret_free(mk);
        struct kms_dispatcher e;
        kms_dispatcher_init(&e, config, store, NULL);
        const struct kms_client who = { .cn = "fuzz" };

        /* A real key to aim at, so mutated requests reach deep into the handlers. */
        struct ttlv_arena *a = ttlv_arena_new();
        struct kmip_version v = { 1, 4 };
        struct ttlv *p = ttlv_add_structure(a, NULL, KMIP_TAG_REQUEST_PAYLOAD);
        ttlv_add_enum(a, p, KMIP_TAG_OBJECT_TYPE, KMIP_OBJECT_SYMMETRIC_KEY);
        struct kmip_attr_list l = {};
        kmip_attr_list_add_enum(a, &l, KMIP_ATTR_CRYPTOGRAPHIC_ALGORITHM, KMIP_ALG_AES);
        kmip_attr_list_add_integer(a, &l, KMIP_ATTR_CRYPTOGRAPHIC_LENGTH, 256);
        kmip_attr_list_add_name(a, &l, "fuzz-key");
        kmip_attrs_build_container(a, p, &l, v);
        uint8_t *req, *resp;
        size_t n, rn;
        encode_request(a, v, KMIP_OP_CREATE, p, &req, &n);
        assert_int_equal(kms_process(&e, &who, req, n, false, &resp, &rn), 0);
        struct kmip_message m;
        assert_int_equal(kmip_response_parse(a, resp, rn, NULL, &m), 0);
        const char *uid0;
        assert_int_equal(ttlv_get_text(m.items[0].payload, KMIP_TAG_UNIQUE_IDENTIFIER, &uid0, NULL), 0);
        char uid[64];
        snprintf(uid, sizeof(uid), "%s", uid0);
        free(resp);
        ttlv_buffer_free(req, n);

        /* Seeds: one valid request per operation, in 1.1 and 2.0 forms. */
        uint8_t *seeds[64];
        size_t seed_n[64], n_seeds = 0;
        static const uint32_t ops[] = {
                KMIP_OP_CREATE, KMIP_OP_REGISTER, KMIP_OP_LOCATE, KMIP_OP_GET, KMIP_OP_GET_ATTRIBUTES,
                KMIP_OP_GET_ATTRIBUTE_LIST, KMIP_OP_ADD_ATTRIBUTE, KMIP_OP_MODIFY_ATTRIBUTE, KMIP_OP_DELETE_ATTRIBUTE,
                KMIP_OP_ACTIVATE, KMIP_OP_REVOKE, KMIP_OP_DESTROY, KMIP_OP_QUERY, KMIP_OP_DISCOVER_VERSIONS,
                KMIP_OP_ENCRYPT, KMIP_OP_DECRYPT, KMIP_OP_SET_ATTRIBUTE,
        };
        static const struct kmip_version vs[] = { { 1, 1 }, { 2, 0 } };
        for (size_t vi = 0; vi < 2; vi++)
                for (size_t i = 0; i < ELEMENTSOF(ops); i++) {
                        struct ttlv_arena *b = ttlv_arena_new();
                        struct ttlv *q = ttlv_add_structure(b, NULL, KMIP_TAG_REQUEST_PAYLOAD);
                        if (ops[i] == KMIP_OP_CREATE || ops[i] == KMIP_OP_REGISTER) {
                                ttlv_add_enum(b, q, KMIP_TAG_OBJECT_TYPE, KMIP_OBJECT_SYMMETRIC_KEY);
                                struct kmip_attr_list al = {};
                                kmip_attr_list_add_enum(b, &al, KMIP_ATTR_CRYPTOGRAPHIC_ALGORITHM, KMIP_ALG_AES);
                                kmip_attr_list_add_integer(b, &al, KMIP_ATTR_CRYPTOGRAPHIC_LENGTH, 128);
                                kmip_attrs_build_container(b, q, &al, vs[vi]);
                                if (ops[i] == KMIP_OP_REGISTER) {
                                        struct ttlv *sk = ttlv_add_structure(b, q, KMIP_TAG_SYMMETRIC_KEY);
                                        struct ttlv *kb = ttlv_add_structure(b, sk, KMIP_TAG_KEY_BLOCK);
                                        ttlv_add_enum(b, kb, KMIP_TAG_KEY_FORMAT_TYPE, KMIP_KEY_FORMAT_RAW);
                                        struct ttlv *kv = ttlv_add_structure(b, kb, KMIP_TAG_KEY_VALUE);
                                        ttlv_add_bytes(b, kv, KMIP_TAG_KEY_MATERIAL, "0123456789abcdef", 16);
                                }
                        } else if (ops[i] == KMIP_OP_QUERY) {
                                ttlv_add_enum(b, q, KMIP_TAG_QUERY_FUNCTION, KMIP_QUERY_OPERATIONS);
                                ttlv_add_enum(b, q, KMIP_TAG_QUERY_FUNCTION, KMIP_QUERY_SERVER_INFORMATION);
                        } else if (ops[i] == KMIP_OP_DISCOVER_VERSIONS) {
                                kmip_version_add(b, q, KMIP_VERSION(1, 2));
                        } else if (ops[i] == KMIP_OP_LOCATE) {
                                struct kmip_attr_list al = {};
                                kmip_attr_list_add_name(b, &al, "fuzz-key");
                                kmip_attr_list_add_text(b, &al, "x-a", "b");
                                if (kmip_version_is_2x(vs[vi]))
                                        kmip_attrs_build_container(b, q, &al, vs[vi]);
                                else
                                        kmip_attrs_build(b, q, &al, vs[vi]);
                                ttlv_add_integer(b, q, KMIP_TAG_MAXIMUM_ITEMS, 3);
                        } else {
                                ttlv_add_text(b, q, KMIP_TAG_UNIQUE_IDENTIFIER, uid);
                                struct kmip_attr at = { .name = "x-Vendor", .value = ttlv_add_text(b, NULL, KMIP_TAG_ATTRIBUTE_VALUE, "v") };
                                if (ops[i] == KMIP_OP_ADD_ATTRIBUTE || ops[i] == KMIP_OP_MODIFY_ATTRIBUTE ||
                                    ops[i] == KMIP_OP_SET_ATTRIBUTE)
                                        kmip_attr_build(b, kmip_version_is_2x(vs[vi]) ? ttlv_add_structure(b, q, KMIP_TAG_NEW_ATTRIBUTE) : q,
                                                        &at, vs[vi]);
                                if (ops[i] == KMIP_OP_GET_ATTRIBUTES || ops[i] == KMIP_OP_DELETE_ATTRIBUTE)
                                        kmip_attr_name_build(b, q, "x-Vendor", vs[vi]);
                                if (ops[i] == KMIP_OP_REVOKE) {
                                        struct ttlv *rr = ttlv_add_structure(b, q, KMIP_TAG_REVOCATION_REASON);
                                        ttlv_add_enum(b, rr, KMIP_TAG_REVOCATION_REASON_CODE, 5);
                                }
                                if (ops[i] == KMIP_OP_GET) {
                                        struct ttlv *ws = ttlv_add_structure(b, q, KMIP_TAG_KEY_WRAPPING_SPECIFICATION);
                                        ttlv_add_enum(b, ws, KMIP_TAG_WRAPPING_METHOD, 1);
                                        struct ttlv *eki = ttlv_add_structure(b, ws, KMIP_TAG_ENCRYPTION_KEY_INFORMATION);
                                        ttlv_add_text(b, eki, KMIP_TAG_UNIQUE_IDENTIFIER, uid);
                                }
                                if (ops[i] == KMIP_OP_ENCRYPT || ops[i] == KMIP_OP_DECRYPT) {
                                        struct ttlv *cp = ttlv_add_structure(b, q, KMIP_TAG_CRYPTOGRAPHIC_PARAMETERS);
                                        ttlv_add_enum(b, cp, KMIP_TAG_BLOCK_CIPHER_MODE, KMIP_MODE_GCM);
                                        ttlv_add_bytes(b, q, KMIP_TAG_DATA, "0123456789abcdef", 16);
                                        ttlv_add_bytes(b, q, KMIP_TAG_IV_COUNTER_NONCE, "0123456789ab", 12);
                                        ttlv_add_bytes(b, q, KMIP_TAG_AUTHENTICATED_ENCRYPTION_TAG, "0123456789abcdef", 16);
                                }
                        }
                        encode_request(b, vs[vi], ops[i], q, &seeds[n_seeds], &seed_n[n_seeds]);
                        n_seeds++;
                        ttlv_arena_free(b);
                }

        /* Activate the key so Encrypt/Decrypt/wrapping paths run too. */
        struct ttlv *ap = ttlv_add_structure(a, NULL, KMIP_TAG_REQUEST_PAYLOAD);
        ttlv_add_text(a, ap, KMIP_TAG_UNIQUE_IDENTIFIER, uid);
        encode_request(a, v, KMIP_OP_ACTIVATE, ap, &req, &n);
        assert_int_equal(kms_process(&e, &who, req, n, false, &resp, &rn), 0);
        free(resp);
        ttlv_buffer_free(req, n);

        unsigned answered = 0, succeeded = 0;
        for (unsigned iter = 0; iter < 20000; iter++) {
                size_t s = next_rand() % n_seeds;
                size_t len = seed_n[s];
                uint8_t *buf = malloc(len);
                memcpy(buf, seeds[s], len);
                unsigned muts = next_rand() % 8 == 0 ? 2 + next_rand() % 3 : 1;
                for (unsigned k = 0; k < muts; k++) {
                        size_t pos = next_rand() % len;
                        switch (next_rand() % 4) {
                        case 0: buf[pos] ^= (uint8_t) (1u << (next_rand() % 8)); break;
                        case 1: buf[pos] = (uint8_t) next_rand(); break;
                        case 2: /* a length field: make it lie */
                                if (pos + 4 <= len)
                                        buf[pos + 3] = (uint8_t) (buf[pos + 3] + (next_rand() % 17) - 8);
                                break;
                        case 3: /* cut the tail, fixing the outer length so it still frames */
                                if (pos > 8) {
                                        len = ALIGN_DOWN(pos, 8);
                                        uint32_t inner = (uint32_t) (len - 8);
                                        buf[4] = (uint8_t) (inner >> 24);
                                        buf[5] = (uint8_t) (inner >> 16);
                                        buf[6] = (uint8_t) (inner >> 8);
                                        buf[7] = (uint8_t) inner;
                                }
                                break;
                        }
                }
                uint8_t *out = NULL;
                size_t out_n = 0;
                /* Odd rounds in the network loop's mode, whose Creates reply before
                 * their commit and report it later, once. */
                int called = 0;
                struct kms_defer d = { .done = count_done, .userdata = &called };
                int r = kms_process(&e, &who, buf, len, (iter & 1) ? &d : NULL, &out, &out_n);
                assert_true(r == 0 || r == -EWOULDBLOCK);
                if (d.deferred)
                        while (!__atomic_load_n(&called, __ATOMIC_ACQUIRE))
                                usleep(50);
                if (r == 0) {
                        /* The answer is always a well-formed Response Message. */
                        struct ttlv_arena *c = ttlv_arena_new();
                        struct kmip_message rm;
                        assert_int_equal(kmip_response_parse(c, out, out_n, NULL, &rm), 0);
                        assert_true(rm.n_items >= 1);
                        succeeded += rm.items[0].result_status == KMIP_STATUS_SUCCESS;
                        ttlv_arena_free(c);
                        answered++;
                        free(out);
                }
                free(buf);
        }
        print_message("%u mutated requests: %u answered here (the rest handed to workers), %u succeeded\n",
                      20000u, answered, succeeded);
        assert_true(answered > 10000);
        /* Enough mutations must still be valid to exercise the handlers, not only the parser. */
        assert_true(succeeded > 300);
        for (size_t i = 0; i < n_seeds; i++)
                ttlv_buffer_free(seeds[i], seed_n[i]);
        ttlv_arena_free(a);
        kms_dispatcher_done(&e);
        store_free(store);
        kms_config_free(config);
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        assert_int_equal(system(cmd), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_mutations),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
