/* Unit tests for the XTS sector cipher: the IEEE 1619 known-answer vector, the
 * plain64 tweak of 4096-byte sectors (tweak 8n for sector n) and bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "crypto/xts.h"
#include "shared/hex.h"

/* IEEE Std 1619-2007, XTS-AES-256 vector 10: data unit sequence number 0xff. */
static const char v10_key[] =
        "2718281828459045235360287471352662497757247093699959574966967627"
        "3141592653589793238462643383279502884197169399375105820974944592";
static const char v10_ct[] =
        "1c3b3a102f770386e4836c99e370cf9bea00803f5e482357a4ae12d414a3e63b"
        "5d31e276f8fe4a8d66b317f9ac683f44680a86ac35adfc3345befecb4bb188fd"
        "5776926c49a3095eb108fd1098baec70aaa66999a72a82f27d848b21d4a741b0"
        "c5cd4d5fff9dac89aeba122961d03a757123e9870f8acf1000020887891429ca"
        "2a3e7a7d7df7b10355165c8b9a6d0a7de8b062c4500dc4cd120c0f7418dae3d0"
        "b5781c34803fa75421c790dfe1de1834f280d7667b327f6c8cd7557e12ac3a0f"
        "93ec05c52e0493ef31a12d3d9260f79a289d6a379bc70c50841473d1a8cc81ec"
        "583e9645e07b8d9670655ba5bbcfecc6dc3966380ad8fecb17b6ba02469a020a"
        "84e18e8f84252070c13e9f1f289be54fbc481457778f616015e1327a02b140f1"
        "505eb309326d68378f8374595c849d84f4c333ec4423885143cb47bd71c5edae"
        "9be69a2ffeceb1bec9de244fbe15992b11b77c040f12bd8f6a975a44a0f90c29"
        "a9abc3d4d893927284c58754cce294529f8614dcd2aba991925fedc4ae74ffac"
        "6e333b93eb4aff0479da9a410e4450e0dd7ae4c6e2910900575da401fc07059f"
        "645e8b7e9bfdef33943054ff84011493c27b3429eaedb4ed5376441a77ed4385"
        "1ad77f16f541dfd269d50d6a5f14fb0aab1cbb4c1550be97f7ab4066193c4caa"
        "773dad38014bd2092fa755c824bb5e54c4f36ffda9fcea70b9c6e693e148c151";

static struct xts_ctx *v10_ctx(void) {
        struct secret *k = secret_new(64);
        assert_non_null(k);
        assert_int_equal(hex_decode(v10_key, k->data, 64), 0);
        struct xts_ctx *x = NULL;
        assert_int_equal(xts_new(k, &x), 0);
        secret_free(k);
        return x;
}

static void test_ieee1619_vector10(void **state) {
        (void) state;
        struct xts_ctx *x = v10_ctx();
        uint8_t buf[512], ct[512];
        for (int i = 0; i < 512; i++)
                buf[i] = (uint8_t) i;
        assert_int_equal(hex_decode(v10_ct, ct, sizeof(ct)), 0);
        /* sequence number 0xff = byte offset 0xff * 512 within the segment */
        assert_int_equal(xts_encrypt(x, buf, sizeof(buf), 512, 0xffULL * 512), 0);
        assert_memory_equal(buf, ct, sizeof(ct));
        assert_int_equal(xts_decrypt(x, buf, sizeof(buf), 512, 0xffULL * 512), 0);
        for (int i = 0; i < 512; i++)
                assert_int_equal(buf[i], (uint8_t) i);
        xts_free(x);
}

/* dm-crypt plain64 with 4096-byte sectors: the tweak counts 512-byte units, so
 * sector n uses tweak 8n. Its first 512 bytes therefore equal a 512-byte sector
 * encrypted at tweak 8n, and differ from one at tweak n. */
static void test_4096_sector_tweak(void **state) {
        (void) state;
        struct xts_ctx *x = v10_ctx();
        static uint8_t big[4096], small[512], wrong[512];
        for (size_t i = 0; i < sizeof(big); i++)
                big[i] = (uint8_t) (i * 7 + 3);
        memcpy(small, big, sizeof(small));
        memcpy(wrong, big, sizeof(wrong));
        const uint64_t n = 5;
        assert_int_equal(xts_encrypt(x, big, sizeof(big), 4096, n * 4096), 0);
        assert_int_equal(xts_encrypt(x, small, sizeof(small), 512, n * 8 * 512), 0);
        assert_int_equal(xts_encrypt(x, wrong, sizeof(wrong), 512, n * 512), 0);
        assert_memory_equal(big, small, sizeof(small));
        assert_memory_not_equal(big, wrong, sizeof(wrong));
        /* and the tweak chain runs across the whole 4096-byte sector: the second
         * 512 bytes are not a fresh sector at tweak 8n+1 */
        static uint8_t second[512];
        for (size_t i = 0; i < sizeof(second); i++)
                second[i] = (uint8_t) ((i + 512) * 7 + 3);
        assert_int_equal(xts_encrypt(x, second, sizeof(second), 512, (n * 8 + 1) * 512), 0);
        assert_memory_not_equal(big + 512, second, sizeof(second));
        xts_free(x);
}

static void test_bad_input(void **state) {
        (void) state;
        struct xts_ctx *x = v10_ctx();
        uint8_t buf[1024] = { 0 };
        assert_int_equal(xts_encrypt(x, buf, 1000, 512, 0), -EINVAL);     /* not whole sectors */
        assert_int_equal(xts_encrypt(x, buf, 1024, 4096, 0), -EINVAL);    /* shorter than a sector */
        assert_int_equal(xts_encrypt(x, buf, 1024, 1024, 0), -EINVAL);    /* unsupported size */
        assert_int_equal(xts_encrypt(x, buf, 512, 512, 100), -EINVAL);    /* unaligned offset */
        xts_free(x);

        struct secret *k = secret_new(32);
        assert_non_null(k);
        assert_int_equal(xts_new(k, &x), -EINVAL); /* 256-bit key: not ours */
        secret_free(k);
        k = secret_new(64);                        /* equal halves (all zero): weak */
        assert_non_null(k);
        assert_int_equal(xts_new(k, &x), -EINVAL);
        secret_free(k);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ieee1619_vector10),
                cmocka_unit_test(test_4096_sector_tweak),
                cmocka_unit_test(test_bad_input),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
