/* RFC 5649 key wrap: the RFC's own test vectors (section 6), a round trip with a
 * 256-bit KEK, and rejection of a wrong KEK, damaged data and bad sizes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "crypto/keywrap.h"
#include "shared/hex.h"

static struct secret *from_hex(const char *h) {
        size_t n = strlen(h) / 2;
        struct secret *s = secret_new(n);
        assert_non_null(s);
        assert_int_equal(hex_decode(h, s->data, n), 0);
        return s;
}

static void check_vector(const char *kek_hex, const char *key_hex, const char *wrapped_hex) {
        _cleanup_(secret_freep) struct secret *kek = from_hex(kek_hex);
        _cleanup_(secret_freep) struct secret *key = from_hex(key_hex);
        uint8_t expect[64], out[64];
        size_t n = strlen(wrapped_hex) / 2, len = 0;
        assert_int_equal(hex_decode(wrapped_hex, expect, n), 0);
        assert_int_equal(keywrap_wrapped_size(key->size), n);
        assert_int_equal(keywrap_wrap(kek, key, out, sizeof(out), &len), 0);
        assert_int_equal(len, n);
        assert_memory_equal(out, expect, n);

        _cleanup_(secret_freep) struct secret *back = NULL;
        assert_int_equal(keywrap_unwrap(kek, expect, n, &back), 0);
        assert_true(secret_equal(back, key));
}

/* RFC 5649 section 6: 192-bit KEK, a 20-byte and a 7-byte key. */
static void test_rfc5649_vectors(void **state) {
        (void) state;
        check_vector("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8",
                     "c37b7e6492584340bed12207808941155068f738",
                     "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a");
        check_vector("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8",
                     "466f7250617369",
                     "afbeb0f07dfbf5419200f2ccb50bb24f");
}

static void test_roundtrip_and_wrong_kek(void **state) {
        (void) state;
        _cleanup_(secret_freep) struct secret *kek = NULL, *kek2 = NULL, *plain = NULL, *back = NULL;
        assert_int_equal(secret_new_random(32, &kek), 0);
        assert_int_equal(secret_new_random(32, &kek2), 0);
        assert_int_equal(secret_new_random(64, &plain), 0);
        uint8_t out[128];
        size_t len = 0;
        assert_int_equal(keywrap_wrap(kek, plain, out, sizeof(out), &len), 0);
        assert_int_equal(len, 72);
        assert_int_equal(keywrap_unwrap(kek, out, len, &back), 0);
        assert_true(secret_equal(back, plain));

        struct secret *none = NULL;
        assert_int_equal(keywrap_unwrap(kek2, out, len, &none), -EBADMSG);
        assert_null(none);
        out[17] ^= 1;
        assert_int_equal(keywrap_unwrap(kek, out, len, &none), -EBADMSG);
        assert_null(none);
}

static void test_bad_sizes(void **state) {
        (void) state;
        _cleanup_(secret_freep) struct secret *kek = NULL, *bad_kek = NULL, *plain = NULL;
        assert_int_equal(secret_new_random(32, &kek), 0);
        assert_int_equal(secret_new_random(20, &bad_kek), 0);
        assert_int_equal(secret_new_random(32, &plain), 0);
        uint8_t out[64];
        size_t len = 0;
        struct secret *none = NULL;
        assert_int_equal(keywrap_wrap(bad_kek, plain, out, sizeof(out), &len), -EINVAL);
        assert_int_equal(keywrap_wrap(kek, plain, out, 39, &len), -ENOBUFS);
        assert_int_equal(keywrap_unwrap(kek, out, 12, &none), -EINVAL);
        assert_int_equal(keywrap_unwrap(kek, out, 20, &none), -EINVAL);
        assert_null(none);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_rfc5649_vectors),
                cmocka_unit_test(test_roundtrip_and_wrong_kek),
                cmocka_unit_test(test_bad_sizes),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
