/* The native key provider: the backup gate (refuses until a backup exists, with a
 * message saying how), wrap/unwrap under derived KEKs, the at-rest file's
 * permissions and contents, and restoring a backup into a fresh state directory. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "keys/native.h"

static char dir[64];

static void cfg_init(struct provider_config *c, const char *name, const char *sub) {
        memset(c, 0, sizeof(*c));
        c->name = strdup(name);
        c->kind = PROVIDER_NATIVE;
        assert_true(asprintf(&c->state_dir, "%s/%s", dir, sub) > 0);
        assert_true(asprintf(&c->key_file, "%s/%s.key", dir, sub) > 0);
}

static void cfg_done(struct provider_config *c) {
        free(c->name);
        free(c->state_dir);
        free(c->key_file);
}

static int file_contains(const char *path, const uint8_t *needle, size_t n) {
        FILE *f = fopen(path, "r");
        if (!f)
                return 0;
        uint8_t buf[8192];
        size_t len = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        for (size_t i = 0; i + n <= len; i++)
                if (memcmp(buf + i, needle, n) == 0)
                        return 1;
        return 0;
}

static void test_gate_wrap_restore(void **state) {
        (void) state;
        struct provider_config c;
        cfg_init(&c, "local", "a");
        struct error err = { 0 };
        _cleanup_(provider_freep) struct provider *p = NULL;
        assert_int_equal(provider_open(&c, &p), 0);

        /* Not initialised: says how to initialise. */
        char *id = NULL;
        assert_int_equal(provider_kek_create(p, NULL, &id), -ENOENT);
        assert_non_null(strstr(provider_error(p), "vmcrypt provider init local"));

        assert_int_equal(native_init(&c, &err), 0);
        assert_int_equal(native_init(&c, &err), -EEXIST);
        struct stat st;
        char path[256];
        snprintf(path, sizeof(path), "%s/primary.json", c.state_dir);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_int_equal(stat(c.key_file, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);

        /* The gate: no backup, no use, and the message says how. */
        assert_int_equal(native_backup_exported(&c), 0);
        assert_int_equal(provider_kek_create(p, NULL, &id), -EACCES);
        assert_non_null(strstr(provider_error(p), "vmcrypt provider backup local"));

        _cleanup_(secret_freep) struct secret *pass = secret_new_copy("correct horse", 13);
        _cleanup_(secret_freep) struct secret *wrong = secret_new_copy("wrong horse", 11);
        char bundle[256];
        snprintf(bundle, sizeof(bundle), "%s/backup.json", dir);
        int rb = native_backup(&c, pass, bundle, &err);
        if (rb != 0)
                fail_msg("backup: %d %s", rb, err.text);
        assert_int_equal(native_backup(&c, pass, bundle, &err), -EEXIST);
        assert_int_equal(stat(bundle, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_int_equal(native_backup_exported(&c), 1);

        /* Usable now: wrap, unwrap, and a different KEK id does not unwrap. */
        assert_int_equal(provider_kek_create(p, NULL, &id), 0);
        assert_non_null(id);
        _cleanup_(secret_freep) struct secret *plain = NULL, *back = NULL, *none = NULL;
        assert_int_equal(secret_new_random(64, &plain), 0);
        _cleanup_(token_freep) struct vmcrypt_token *t = token_new();
        t->keyslot = 0;
        t->provider = strdup("local");
        t->kek_id = id;
        assert_int_equal(provider_wrap(p, id, plain, t), 0);
        assert_string_equal(t->method, TOKEN_METHOD_RFC5649);
        assert_int_equal(t->wrapped_size, 72);
        assert_int_equal(provider_unwrap(p, t, &back), 0);
        assert_true(secret_equal(back, plain));
        char *other = strdup("native-00000000000000000000000000000000");
        t->kek_id = other;
        assert_int_equal(provider_unwrap(p, t, &none), -EKEYREJECTED);
        assert_non_null(strstr(provider_error(p), "does not unwrap"));
        t->kek_id = id;
        free(other);

        /* The primary key is not in the state files in the clear: check that the
         * derived KEK material is nowhere (the primary itself we cannot see, so we
         * check the plaintext we wrapped). */
        assert_false(file_contains(path, plain->data, plain->size));

        /* Restore into a second host's state dir; it unwraps the same token. */
        struct provider_config c2;
        cfg_init(&c2, "local", "b");
        error_clear(&err);
        assert_int_equal(native_restore(&c2, wrong, bundle, &err), -EKEYREJECTED);
        assert_non_null(strstr(err.text, "passphrase"));
        assert_int_equal(native_restore(&c2, pass, bundle, &err), 0);
        _cleanup_(provider_freep) struct provider *p2 = NULL;
        _cleanup_(secret_freep) struct secret *back2 = NULL;
        assert_int_equal(provider_open(&c2, &p2), 0);
        assert_int_equal(provider_unwrap(p2, t, &back2), 0);
        assert_true(secret_equal(back2, plain));

        /* A different primary key is never overwritten by a restore. */
        struct provider_config c3;
        cfg_init(&c3, "local", "c");
        assert_int_equal(native_init(&c3, &err), 0);
        assert_int_equal(native_restore(&c3, pass, bundle, &err), -EEXIST);

        /* A wrong key file does not open the at-rest file. */
        FILE *f = fopen(c2.key_file, "w");
        fputs("not the key", f);
        fclose(f);
        _cleanup_(provider_freep) struct provider *p3 = NULL;
        struct secret *x = NULL;
        assert_int_equal(provider_open(&c2, &p3), 0);
        assert_int_equal(provider_unwrap(p3, t, &x), -EKEYREJECTED);
        assert_non_null(strstr(provider_error(p3), "wrong key file"));
        cfg_done(&c);
        cfg_done(&c2);
        cfg_done(&c3);
}

int main(void) {
        snprintf(dir, sizeof(dir), "/tmp/test-native.XXXXXX");
        assert_non_null(mkdtemp(dir));
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_gate_wrap_restore),
        };
        int r = cmocka_run_group_tests(tests, NULL, NULL);
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        if (system(cmd) != 0)
                r = 1;
        return r;
}
