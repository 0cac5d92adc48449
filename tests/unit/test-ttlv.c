/* TTLV codec: the encodings of KMIP 1.4 §9.1.2 byte for byte, both ways, and the
 * rejection of every kind of malformed input the decoder must refuse. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kmip/tags.h"
#include "kmip/ttlv.h"

#define TAG 0x420020

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

static struct ttlv *decode_ok(const uint8_t *buf, size_t n) {
        struct ttlv *t = NULL;
        assert_int_equal(ttlv_decode(A, buf, n, NULL, &t), 0);
        assert_non_null(t);
        return t;
}

static int decode_err(const uint8_t *buf, size_t n) {
        struct ttlv *t = NULL;
        int r = ttlv_decode(A, buf, n, NULL, &t);
        assert_true(r < 0);
        return r;
}

static void encode_equals(const struct ttlv *n, const uint8_t *want, size_t size) {
        uint8_t buf[256];
        size_t used = 0;
        assert_int_equal(ttlv_encoded_size(n), size);
        assert_int_equal(ttlv_encode(n, buf, sizeof(buf), &used), 0);
        assert_int_equal(used, size);
        assert_memory_equal(buf, want, size);
}

/* KMIP 1.4 §9.1.2: "An Integer containing the decimal value 8". */
static void test_integer(void **state) {
        (void) state;
        static const uint8_t v[] = { 0x42, 0x00, 0x20, 0x02, 0x00, 0x00, 0x00, 0x04,
                                     0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00 };
        struct ttlv *t = decode_ok(v, sizeof(v));
        assert_int_equal(t->tag, TAG);
        assert_int_equal(t->type, TTLV_INTEGER);
        assert_int_equal(t->v.integer, 8);
        encode_equals(ttlv_add_integer(A, NULL, TAG, 8), v, sizeof(v));
}

static void test_long_integer(void **state) {
        (void) state;
        static const uint8_t v[] = { 0x42, 0x00, 0x20, 0x03, 0x00, 0x00, 0x00, 0x08,
                                     0x01, 0xB6, 0x9B, 0x4B, 0xA5, 0x74, 0x92, 0x00 };
        struct ttlv *t = decode_ok(v, sizeof(v));
        assert_int_equal(t->type, TTLV_LONG_INTEGER);
        assert_true(t->v.long_integer == 123456789000000000LL);
        encode_equals(ttlv_add_long(A, NULL, TAG, 123456789000000000LL), v, sizeof(v));
}

/* 1234567890000000000000000000: the encoder must sign-extend to 16 bytes. */
static void test_big_integer(void **state) {
        (void) state;
        static const uint8_t v[] = { 0x42, 0x00, 0x20, 0x04, 0x00, 0x00, 0x00, 0x10,
                                     0x00, 0x00, 0x00, 0x00, 0x03, 0xFD, 0x35, 0xEB,
                                     0x6B, 0xC2, 0xDF, 0x46, 0x18, 0x08, 0x00, 0x00 };
        static const uint8_t minimal[] = { 0x03, 0xFD, 0x35, 0xEB, 0x6B, 0xC2, 0xDF, 0x46, 0x18, 0x08, 0x00, 0x00 };
        struct ttlv *t = decode_ok(v, sizeof(v));
        assert_int_equal(t->type, TTLV_BIG_INTEGER);
        assert_int_equal(t->v.bytes.size, 16);
        assert_memory_equal(t->v.bytes.data, v + 8, 16);
        encode_equals(ttlv_add_big_integer(A, NULL, TAG, minimal, sizeof(minimal)), v, sizeof(v));

        /* A negative number is extended with 0xFF. */
        static const uint8_t neg[] = { 0x80, 0x01 };
        static const uint8_t neg_enc[] = { 0x42, 0x00, 0x20, 0x04, 0x00, 0x00, 0x00, 0x08,
                                           0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x80, 0x01 };
        encode_equals(ttlv_add_big_integer(A, NULL, TAG, neg, sizeof(neg)), neg_enc, sizeof(neg_enc));
}

static void test_enumeration(void **state) {
        (void) state;
        static const uint8_t v[] = { 0x42, 0x00, 0x20, 0x05, 0x00, 0x00, 0x00, 0x04,
                                     0x00, 0x00, 0x00, 0xFF, 0x00, 0x00, 0x00, 0x00 };
        struct ttlv *t = decode_ok(v, sizeof(v));
        assert_int_equal(t->type, TTLV_ENUMERATION);
        assert_int_equal(t->v.enumeration, 255);
        encode_equals(ttlv_add_enum(A, NULL, TAG, 255), v, sizeof(v));
}

static void test_boolean(void **state) {
        (void) state;
        static const uint8_t v[] = { 0x42, 0x00, 0x20, 0x06, 0x00, 0x00, 0x00, 0x08,
                                     0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01 };
        struct ttlv *t = decode_ok(v, sizeof(v));
        assert_int_equal(t->type, TTLV_BOOLEAN);
        assert_true(t->v.boolean);
        encode_equals(ttlv_add_bool(A, NULL, TAG, true), v, sizeof(v));
}

static void test_text_string(void **state) {
        (void) state;
        static const uint8_t v[] = { 0x42, 0x00, 0x20, 0x07, 0x00, 0x00, 0x00, 0x0B,
                                     'H', 'e', 'l', 'l', 'o', ' ', 'W', 'o', 'r', 'l', 'd', 0, 0, 0, 0, 0 };
        struct ttlv *t = decode_ok(v, sizeof(v));
        assert_int_equal(t->type, TTLV_TEXT_STRING);
        assert_int_equal(t->v.bytes.size, 11);
        assert_string_equal((const char *) t->v.bytes.data, "Hello World");
        encode_equals(ttlv_add_text(A, NULL, TAG, "Hello World"), v, sizeof(v));
}

static void test_byte_string(void **state) {
        (void) state;
        static const uint8_t v[] = { 0x42, 0x00, 0x20, 0x08, 0x00, 0x00, 0x00, 0x03,
                                     0x01, 0x02, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00 };
        static const uint8_t data[] = { 1, 2, 3 };
        struct ttlv *t = decode_ok(v, sizeof(v));
        assert_int_equal(t->type, TTLV_BYTE_STRING);
        assert_int_equal(t->v.bytes.size, 3);
        assert_memory_equal(t->v.bytes.data, data, 3);
        encode_equals(ttlv_add_bytes(A, NULL, TAG, data, 3), v, sizeof(v));
}

/* Friday, March 14, 2008, 11:56:40 GMT. */
static void test_date_time(void **state) {
        (void) state;
        static const uint8_t v[] = { 0x42, 0x00, 0x20, 0x09, 0x00, 0x00, 0x00, 0x08,
                                     0x00, 0x00, 0x00, 0x00, 0x47, 0xDA, 0x67, 0xF8 };
        struct ttlv *t = decode_ok(v, sizeof(v));
        assert_int_equal(t->type, TTLV_DATE_TIME);
        assert_true(t->v.date_time == 0x47DA67F8);
        encode_equals(ttlv_add_date_time(A, NULL, TAG, 0x47DA67F8), v, sizeof(v));
}

/* 10 days. */
static void test_interval(void **state) {
        (void) state;
        static const uint8_t v[] = { 0x42, 0x00, 0x20, 0x0A, 0x00, 0x00, 0x00, 0x04,
                                     0x00, 0x0D, 0x2F, 0x00, 0x00, 0x00, 0x00, 0x00 };
        struct ttlv *t = decode_ok(v, sizeof(v));
        assert_int_equal(t->type, TTLV_INTERVAL);
        assert_int_equal(t->v.interval, 864000);
        encode_equals(ttlv_add_interval(A, NULL, TAG, 864000), v, sizeof(v));
}

static void test_date_time_extended(void **state) {
        (void) state;
        static const uint8_t v[] = { 0x42, 0x00, 0x20, 0x0B, 0x00, 0x00, 0x00, 0x08,
                                     0x00, 0x04, 0x49, 0x1F, 0x0C, 0x4C, 0x26, 0xC0 };
        struct ttlv *t = decode_ok(v, sizeof(v));
        assert_int_equal(t->type, TTLV_DATE_TIME_EXTENDED);
        assert_true(t->v.date_time == 0x0004491F0C4C26C0LL);
        encode_equals(ttlv_add_date_time_ext(A, NULL, TAG, 0x0004491F0C4C26C0LL), v, sizeof(v));
}

/* A Structure holding Enumeration 254 (tag 0x420004) then Integer 255 (0x420005). */
static void test_structure(void **state) {
        (void) state;
        static const uint8_t v[] = { 0x42, 0x00, 0x20, 0x01, 0x00, 0x00, 0x00, 0x20,
                                     0x42, 0x00, 0x04, 0x05, 0x00, 0x00, 0x00, 0x04,
                                     0x00, 0x00, 0x00, 0xFE, 0x00, 0x00, 0x00, 0x00,
                                     0x42, 0x00, 0x05, 0x02, 0x00, 0x00, 0x00, 0x04,
                                     0x00, 0x00, 0x00, 0xFF, 0x00, 0x00, 0x00, 0x00 };
        struct ttlv *t = decode_ok(v, sizeof(v));
        assert_int_equal(t->type, TTLV_STRUCTURE);
        assert_int_equal(ttlv_count(t, 0), 2);
        uint32_t e;
        int32_t i;
        assert_int_equal(ttlv_get_enum(t, 0x420004, &e), 0);
        assert_int_equal(e, 254);
        assert_int_equal(ttlv_get_integer(t, 0x420005, &i), 0);
        assert_int_equal(i, 255);

        struct ttlv *s = ttlv_add_structure(A, NULL, TAG);
        ttlv_add_enum(A, s, 0x420004, 254);
        ttlv_add_integer(A, s, 0x420005, 255);
        encode_equals(s, v, sizeof(v));
        assert_true(ttlv_equal(s, t));
}

static void test_getters(void **state) {
        (void) state;
        struct ttlv *s = ttlv_add_structure(A, NULL, TAG);
        ttlv_add_text(A, s, KMIP_TAG_UNIQUE_IDENTIFIER, "abc");
        ttlv_add_enum(A, s, KMIP_TAG_OBJECT_TYPE, 2);
        const char *text = NULL;
        size_t n = 0;
        int32_t i = 77;
        uint32_t e;
        assert_int_equal(ttlv_get_text(s, KMIP_TAG_UNIQUE_IDENTIFIER, &text, &n), 0);
        assert_string_equal(text, "abc");
        assert_int_equal(n, 3);
        /* Wrong type: -EPROTO; missing: -ENODATA; outputs untouched. */
        assert_int_equal(ttlv_get_integer(s, KMIP_TAG_OBJECT_TYPE, &i), -EPROTO);
        assert_int_equal(i, 77);
        assert_int_equal(ttlv_get_enum(s, KMIP_TAG_STATE, &e), -ENODATA);
        assert_int_equal(ttlv_get_enum(s, KMIP_TAG_OBJECT_TYPE, &e), 0);
        assert_int_equal(e, 2);
        assert_null(ttlv_find(NULL, KMIP_TAG_STATE));
}

/* A structure whose length claims more bytes than the buffer holds. */
static void test_reject_lying_lengths(void **state) {
        (void) state;
        static const uint8_t outer[] = { 0x42, 0x00, 0x20, 0x01, 0x00, 0x00, 0x01, 0x00,
                                         0x42, 0x00, 0x05, 0x02, 0x00, 0x00, 0x00, 0x04,
                                         0x00, 0x00, 0x00, 0xFF, 0x00, 0x00, 0x00, 0x00 };
        assert_int_equal(decode_err(outer, sizeof(outer)), -EPROTO);
        /* A child that claims to run past its parent (parent says 16, child string 100). */
        static const uint8_t child[] = { 0x42, 0x00, 0x20, 0x01, 0x00, 0x00, 0x00, 0x10,
                                         0x42, 0x00, 0x05, 0x08, 0x00, 0x00, 0x00, 0x64,
                                         0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                         0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 };
        assert_int_equal(decode_err(child, sizeof(child)), -EPROTO);
        /* Lengths near 2^32 must not wrap around. */
        static const uint8_t huge[] = { 0x42, 0x00, 0x20, 0x08, 0xFF, 0xFF, 0xFF, 0xFC,
                                        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 };
        assert_int_equal(decode_err(huge, sizeof(huge)), -EPROTO);
        /* Truncated header, trailing bytes, empty input. */
        static const uint8_t trunc[] = { 0x42, 0x00, 0x20, 0x02, 0x00 };
        assert_int_equal(decode_err(trunc, sizeof(trunc)), -EPROTO);
        static const uint8_t trailing[] = { 0x42, 0x00, 0x20, 0x02, 0x00, 0x00, 0x00, 0x04,
                                            0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x42 };
        assert_int_equal(decode_err(trailing, sizeof(trailing)), -EPROTO);
        assert_int_equal(decode_err(trailing, 0), -EPROTO);
        /* Fixed-size types with another length. */
        static const uint8_t int8[] = { 0x42, 0x00, 0x20, 0x02, 0x00, 0x00, 0x00, 0x08,
                                        0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00 };
        assert_int_equal(decode_err(int8, sizeof(int8)), -EPROTO);
        static const uint8_t bool4[] = { 0x42, 0x00, 0x20, 0x06, 0x00, 0x00, 0x00, 0x04,
                                         0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00 };
        assert_int_equal(decode_err(bool4, sizeof(bool4)), -EPROTO);
        /* A Big Integer must be a multiple of 8 bytes. */
        static const uint8_t big3[] = { 0x42, 0x00, 0x20, 0x04, 0x00, 0x00, 0x00, 0x03,
                                        0x01, 0x02, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00 };
        assert_int_equal(decode_err(big3, sizeof(big3)), -EPROTO);
}

static void test_reject_bad_padding(void **state) {
        (void) state;
        static const uint8_t intpad[] = { 0x42, 0x00, 0x20, 0x02, 0x00, 0x00, 0x00, 0x04,
                                          0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x01, 0x00 };
        assert_int_equal(decode_err(intpad, sizeof(intpad)), -EPROTO);
        static const uint8_t textpad[] = { 0x42, 0x00, 0x20, 0x07, 0x00, 0x00, 0x00, 0x03,
                                           'a', 'b', 'c', 0x00, 0x00, 0x00, 0x00, 0x20 };
        assert_int_equal(decode_err(textpad, sizeof(textpad)), -EPROTO);
        /* Missing padding: a 3-byte string with the item ending right after it. */
        static const uint8_t nopad[] = { 0x42, 0x00, 0x20, 0x08, 0x00, 0x00, 0x00, 0x03, 1, 2, 3 };
        assert_int_equal(decode_err(nopad, sizeof(nopad)), -EPROTO);
}

static void test_reject_bad_values(void **state) {
        (void) state;
        static const uint8_t bool2[] = { 0x42, 0x00, 0x20, 0x06, 0x00, 0x00, 0x00, 0x08,
                                         0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02 };
        assert_int_equal(decode_err(bool2, sizeof(bool2)), -EPROTO);
        static const uint8_t type0c[] = { 0x42, 0x00, 0x20, 0x0C, 0x00, 0x00, 0x00, 0x04,
                                          0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00 };
        assert_int_equal(decode_err(type0c, sizeof(type0c)), -EPROTO);
        static const uint8_t badtag[] = { 0x01, 0x00, 0x20, 0x02, 0x00, 0x00, 0x00, 0x04,
                                          0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00 };
        assert_int_equal(decode_err(badtag, sizeof(badtag)), -EPROTO);
        /* Not UTF-8 (0xC3 0x28), and an embedded NUL. */
        static const uint8_t badutf[] = { 0x42, 0x00, 0x20, 0x07, 0x00, 0x00, 0x00, 0x02,
                                          0xC3, 0x28, 0, 0, 0, 0, 0, 0 };
        assert_int_equal(decode_err(badutf, sizeof(badutf)), -EPROTO);
        static const uint8_t nul[] = { 0x42, 0x00, 0x20, 0x07, 0x00, 0x00, 0x00, 0x02,
                                       'a', 0x00, 0, 0, 0, 0, 0, 0 };
        assert_int_equal(decode_err(nul, sizeof(nul)), -EPROTO);
        /* Valid multi-byte UTF-8 passes ("é"). */
        static const uint8_t utf[] = { 0x42, 0x00, 0x20, 0x07, 0x00, 0x00, 0x00, 0x02,
                                       0xC3, 0xA9, 0, 0, 0, 0, 0, 0 };
        decode_ok(utf, sizeof(utf));
}

static void test_limits(void **state) {
        (void) state;
        /* 40 nested structures: deeper than the default 32. */
        struct ttlv *root = ttlv_add_structure(A, NULL, TAG), *p = root;
        for (int i = 0; i < 39; i++)
                p = ttlv_add_structure(A, p, TAG);
        uint8_t *buf;
        size_t n;
        assert_int_equal(ttlv_encode_alloc(root, &buf, &n), 0);
        assert_int_equal(n, 40 * 8);
        assert_int_equal(decode_err(buf, n), -ELOOP);
        struct ttlv_limits deep = ttlv_default_limits;
        deep.max_depth = 40;
        struct ttlv *t;
        assert_int_equal(ttlv_decode(A, buf, n, &deep, &t), 0);
        assert_true(ttlv_equal(t, root));

        struct ttlv_limits small = { .max_size = n - 8, .max_depth = 64, .max_nodes = 1000 };
        assert_int_equal(ttlv_decode(A, buf, n, &small, &t), -EMSGSIZE);
        struct ttlv_limits few = { .max_size = 1 << 20, .max_depth = 64, .max_nodes = 10 };
        assert_int_equal(ttlv_decode(A, buf, n, &few, &t), -EMSGSIZE);
        ttlv_buffer_free(buf, n);
}

static void test_frame_size(void **state) {
        (void) state;
        static const uint8_t req[8] = { 0x42, 0x00, 0x78, 0x01, 0x00, 0x00, 0x01, 0x20 };
        size_t total = 0;
        assert_int_equal(ttlv_frame_size(req, 1 << 20, &total), 0);
        assert_int_equal(total, 0x120 + 8);
        assert_int_equal(ttlv_frame_size(req, 0x100, &total), -EMSGSIZE);
        static const uint8_t notstruct[8] = { 0x42, 0x00, 0x78, 0x02, 0x00, 0x00, 0x00, 0x04 };
        assert_int_equal(ttlv_frame_size(notstruct, 1 << 20, &total), -EPROTO);
        static const uint8_t odd[8] = { 0x42, 0x00, 0x78, 0x01, 0x00, 0x00, 0x00, 0x05 };
        assert_int_equal(ttlv_frame_size(odd, 1 << 20, &total), -EPROTO);
}

static void test_round_trip_and_copy(void **state) {
        (void) state;
        struct ttlv *s = ttlv_add_structure(A, NULL, KMIP_TAG_REQUEST_PAYLOAD);
        ttlv_add_text(A, s, KMIP_TAG_UNIQUE_IDENTIFIER, "1234-abcd");
        struct ttlv *kb = ttlv_add_structure(A, s, KMIP_TAG_KEY_BLOCK);
        uint8_t key[32];
        memset(key, 0xAB, sizeof(key));
        ttlv_add_bytes(A, kb, KMIP_TAG_KEY_MATERIAL, key, sizeof(key));
        ttlv_add_long(A, kb, KMIP_TAG_USAGE_LIMITS_TOTAL, -5);
        ttlv_add_bool(A, kb, KMIP_TAG_FRESH, false);
        uint8_t *buf;
        size_t n;
        assert_int_equal(ttlv_encode_alloc(s, &buf, &n), 0);
        struct ttlv *t = decode_ok(buf, n);
        assert_true(ttlv_equal(s, t));

        /* Copy into another arena, retagged; then freeing the first keeps the copy. */
        struct ttlv_arena *b = ttlv_arena_new();
        struct ttlv *c = ttlv_copy(b, NULL, t, 0x540001);
        assert_non_null(c);
        assert_int_equal(c->tag, 0x540001);
        assert_int_equal(ttlv_count(c, 0), 2);
        c->tag = s->tag;
        assert_true(ttlv_equal(c, s));

        /* The debug dump never shows key material. */
        char dump[2048];
        size_t len = ttlv_format(s, dump, sizeof(dump));
        assert_true(len < sizeof(dump));
        assert_non_null(strstr(dump, "1234-abcd"));
        assert_non_null(strstr(dump, "(hidden"));
        assert_null(strstr(dump, "abababab"));

        /* Detach and append move a subtree. */
        ttlv_detach(kb);
        assert_int_equal(ttlv_count(s, 0), 1);
        ttlv_append(s, kb);
        assert_int_equal(ttlv_count(s, 0), 2);

        /* Too small a buffer: -ENOBUFS. */
        uint8_t tiny[16];
        assert_int_equal(ttlv_encode(s, tiny, sizeof(tiny), NULL), -ENOBUFS);
        ttlv_arena_free(b);
        ttlv_buffer_free(buf, n);
}

static void test_arena(void **state) {
        (void) state;
        struct ttlv_arena *a = ttlv_arena_new();
        assert_non_null(a);
        for (int round = 0; round < 3; round++) {
                for (int i = 0; i < 10000; i++)
                        assert_non_null(ttlv_add_integer(a, NULL, TAG, i));
                void *big = ttlv_arena_alloc(a, 1 << 20);
                assert_non_null(big);
                assert_false(ttlv_arena_failed(a));
                ttlv_arena_reset(a);
        }
        assert_null(ttlv_arena_alloc(a, SIZE_MAX - 16));
        assert_true(ttlv_arena_failed(a));
        ttlv_arena_reset(a);
        assert_false(ttlv_arena_failed(a));
        ttlv_arena_free(a);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_integer),
                cmocka_unit_test(test_long_integer),
                cmocka_unit_test(test_big_integer),
                cmocka_unit_test(test_enumeration),
                cmocka_unit_test(test_boolean),
                cmocka_unit_test(test_text_string),
                cmocka_unit_test(test_byte_string),
                cmocka_unit_test(test_date_time),
                cmocka_unit_test(test_interval),
                cmocka_unit_test(test_date_time_extended),
                cmocka_unit_test(test_structure),
                cmocka_unit_test(test_getters),
                cmocka_unit_test(test_reject_lying_lengths),
                cmocka_unit_test(test_reject_bad_padding),
                cmocka_unit_test(test_reject_bad_values),
                cmocka_unit_test(test_limits),
                cmocka_unit_test(test_frame_size),
                cmocka_unit_test(test_round_trip_and_copy),
                cmocka_unit_test(test_arena),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
