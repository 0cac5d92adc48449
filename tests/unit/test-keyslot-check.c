/* The fast keyslot check agrees with libcryptsetup: the right secret opens, wrong
 * ones (and a damaged keyslot area) do not, and kinds it does not handle are
 * handed back (-EOPNOTSUPP) instead of being judged. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "keys/keyslot-check.h"
#include "shared/fd-util.h"
#include "shared/log.h"

static char dir[64];

static struct crypt_device *make(const char *name, const char *type, uint32_t sector, const char *kdf,
                                 const char *pass, int *ret_slot) {
        char path[128];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, 20 << 20), 0);
        close(fd);
        struct crypt_device *cd = NULL;
        assert_int_equal(crypt_init(&cd, path), 0);
        struct crypt_pbkdf_type fast = { .type = CRYPT_KDF_PBKDF2, .hash = "sha256", .iterations = 1000,
                                         .flags = CRYPT_PBKDF_NO_BENCHMARK };
        struct crypt_pbkdf_type argon = { .type = CRYPT_KDF_ARGON2ID, .hash = "sha256", .iterations = 4,
                                          .max_memory_kb = 32, .parallel_threads = 1,
                                          .flags = CRYPT_PBKDF_NO_BENCHMARK };
        assert_int_equal(crypt_set_pbkdf_type(cd, &fast), 0);
        struct crypt_params_luks2 p2 = { .sector_size = sector };
        assert_int_equal(crypt_format(cd, type, "aes", "xts-plain64", NULL, NULL, 64,
                                      strcmp(type, CRYPT_LUKS2) == 0 ? &p2 : NULL), 0);
        if (strcmp(kdf, "argon2id") == 0)
                assert_int_equal(crypt_set_pbkdf_type(cd, &argon), 0);
        *ret_slot = crypt_keyslot_add_by_volume_key(cd, CRYPT_ANY_SLOT, NULL, 0, pass, strlen(pass));
        assert_true(*ret_slot >= 0);
        return cd;
}

static struct secret *str(const char *s) {
        return secret_new_copy(s, strlen(s));
}

static void test_agrees_with_libcryptsetup(void **state) {
        (void) state;
        static const uint32_t sectors[] = { 512, 4096 };
        for (size_t i = 0; i < 2; i++) {
                int slot;
                struct crypt_device *cd = make("a.img", CRYPT_LUKS2, sectors[i], "pbkdf2",
                                               "0123456789abcdef0123456789abcdef", &slot);
                _cleanup_(secret_freep) struct secret *good = str("0123456789abcdef0123456789abcdef");
                _cleanup_(secret_freep) struct secret *bad = str("0123456789abcdef0123456789abcdeF");
                _cleanup_(secret_freep) struct secret *empty = str("x");
                assert_int_equal(keyslot_check(cd, slot, good), 0);
                assert_int_equal(keyslot_check(cd, slot, bad), -EPERM);
                assert_int_equal(keyslot_check(cd, slot, empty), -EPERM);
                assert_true(crypt_activate_by_passphrase(cd, NULL, slot, (const char *) good->data, good->size, 0) >= 0);
                assert_int_equal(crypt_activate_by_passphrase(cd, NULL, slot, (const char *) bad->data, bad->size, 0), -EPERM);
                /* A second keyslot with its own secret: each opens only its own. */
                _cleanup_(secret_freep) struct secret *other = str("another secret of enough length!");
                int slot2 = crypt_keyslot_add_by_passphrase(cd, CRYPT_ANY_SLOT, (const char *) good->data, good->size,
                                                            (const char *) other->data, other->size);
                assert_true(slot2 >= 0);
                assert_int_equal(keyslot_check(cd, slot2, other), 0);
                assert_int_equal(keyslot_check(cd, slot2, good), -EPERM);
                assert_int_equal(keyslot_check(cd, slot, other), -EPERM);
                assert_int_equal(keyslot_check(cd, 7, good), -ENOENT);

                /* Damage one byte of the keyslot area on disk: the check must fail. */
                char dev[128];
                snprintf(dev, sizeof(dev), "%s", crypt_get_device_name(cd));
                int fd = open(dev, O_RDWR);
                assert_true(fd >= 0);
                uint8_t b;
                off_t at = 32768 + 1000; /* inside the first keyslot's area */
                assert_int_equal(pread_full(fd, &b, 1, at), 0);
                b ^= 0x40;
                assert_int_equal(pwrite_full(fd, &b, 1, at), 0);
                close(fd);
                crypt_free(cd);
                assert_int_equal(crypt_init(&cd, dev), 0);
                assert_int_equal(crypt_load(cd, CRYPT_LUKS2, NULL), 0);
                int lib = crypt_activate_by_passphrase(cd, NULL, slot, (const char *) good->data, good->size, 0);
                int ours = keyslot_check(cd, slot, good);
                assert_int_equal(ours, lib < 0 ? -EPERM : 0);
                crypt_free(cd);
        }
}

static void test_hands_back_other_kinds(void **state) {
        (void) state;
        int slot;
        _cleanup_(secret_freep) struct secret *pw = str("a passphrase");
        struct crypt_device *cd = make("b.img", CRYPT_LUKS2, 512, "argon2id", "a passphrase", &slot);
        assert_int_equal(keyslot_check(cd, slot, pw), -EOPNOTSUPP);
        crypt_free(cd);
        cd = make("c.img", CRYPT_LUKS1, 512, "pbkdf2", "a passphrase", &slot);
        assert_int_equal(keyslot_check(cd, slot, pw), -EOPNOTSUPP);
        crypt_free(cd);
}

int main(void) {
        snprintf(dir, sizeof(dir), "/tmp/test-keyslot.XXXXXX");
        assert_non_null(mkdtemp(dir));
        crypt_set_log_callback(NULL, NULL, NULL);
        log_set_level(LOG_LEVEL_DEBUG);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_agrees_with_libcryptsetup),
                cmocka_unit_test(test_hands_back_other_kinds),
        };
        int r = cmocka_run_group_tests(tests, NULL, NULL);
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        if (system(cmd) != 0)
                r = 1;
        return r;
}
