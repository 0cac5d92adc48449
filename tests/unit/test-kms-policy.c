/* Unit tests of the KMS configuration parser and access policy. */
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

#include "kmip/tags.h"
#include "kms/config.h"

static int write_conf(const char *text, char *path, size_t size) {
        snprintf(path, size, "/tmp/test-kms-policy-XXXXXX");
        int fd = mkstemp(path);
        if (fd < 0)
                return -1;
        ssize_t n = write(fd, text, strlen(text));
        close(fd);
        return n == (ssize_t) strlen(text) ? 0 : -1;
}

static void test_parse_and_policy(void **state) {
        (void) state;
        char path[64];
        assert_int_equal(write_conf("listen = 127.0.0.1:15696\n"
                                    "database = /var/tmp/x.db\n"
                                    "tls-ca = ca.pem\n"
                                    "workers = 4\n"
                                    "network-threads = 0\n"
                                    "cache-rows = 0\n"
                                    "[group auditors]\n"
                                    "members = carol, dave\n"
                                    "operations = locate, get-attributes\n"
                                    "[group backup]\n"
                                    "members = erin, sha256:ABCDEF01\n"
                                    "operations = all\n", path, sizeof(path)), 0);
        struct kms_config *c = NULL;
        assert_int_equal(kms_config_load(path, &c, NULL), 0);
        unlink(path);
        assert_string_equal(c->listen, "127.0.0.1:15696");
        assert_string_equal(c->database, "/var/tmp/x.db");
        assert_string_equal(c->tls_ca, "/tmp/ca.pem"); /* relative to the file */
        assert_int_equal(c->workers, 4);
        assert_int_equal(c->network_threads, 0); /* one per CPU, as documented */
        assert_int_equal(c->cache_rows, 0);      /* no read cache */
        assert_int_equal(c->n_groups, 2);

        /* Owners may do anything with their objects. */
        assert_true(kms_policy_allows(c, "alice", NULL, "alice", KMIP_OP_DESTROY));
        /* Strangers may do nothing. */
        assert_false(kms_policy_allows(c, "bob", NULL, "alice", KMIP_OP_GET));
        assert_false(kms_policy_allows_all(c, "bob", NULL, KMIP_OP_LOCATE));
        /* Group members only what the group lists. */
        assert_true(kms_policy_allows(c, "carol", NULL, "alice", KMIP_OP_GET_ATTRIBUTES));
        assert_false(kms_policy_allows(c, "carol", NULL, "alice", KMIP_OP_GET));
        assert_false(kms_policy_allows(c, "carol", NULL, "alice", KMIP_OP_DESTROY));
        assert_true(kms_policy_allows_all(c, "dave", NULL, KMIP_OP_LOCATE));
        assert_true(kms_policy_allows(c, "erin", NULL, "alice", KMIP_OP_DESTROY));
        /* By fingerprint: that certificate whatever its CN, and only it. */
        assert_true(kms_policy_allows(c, "zed", "abcdef01", "alice", KMIP_OP_GET));
        assert_false(kms_policy_allows(c, "zed", "abcdef02", "alice", KMIP_OP_GET));
        assert_false(kms_policy_allows(c, "sha256:abcdef01", NULL, "alice", KMIP_OP_GET));
        kms_config_free(c);
}

/* conf must be refused with -EINVAL and a message naming the line and saying must_say. */
static void expect_refused(const char *conf, const char *must_say) {
        char path[64];
        struct kms_config *c = NULL;
        struct error err = { 0 };
        assert_int_equal(write_conf(conf, path, sizeof(path)), 0);
        assert_int_equal(kms_config_load(path, &c, &err), -EINVAL);
        assert_null(c);
        if (!strstr(err.text, path) || !strstr(err.text, must_say))
                fail_msg("config \"%s\": message \"%s\" lacks the file or \"%s\"", conf, err.text, must_say);
        unlink(path);
}

static void test_errors(void **state) {
        (void) state;
        expect_refused("nonsense = 1\n", ":1: unknown key 'nonsense'");
        expect_refused("[group g]\noperations = fly\n", ":2: invalid value for 'operations': fly");
        expect_refused("workers = 0\n", "invalid value for 'workers'");
        expect_refused("cache-rows = -1\n", "invalid value for 'cache-rows'");
        expect_refused("max-message-size = 1023\n", "invalid value");
        expect_refused("# ok\n[pool x]\n", ":2: unknown section [pool x]");
        expect_refused("listen 1\n", ":1: expected key = value");
        struct kms_config *c = NULL;
        struct error err = { 0 };
        assert_int_equal(kms_config_load("/nonexistent/kms.conf", &c, &err), -ENOENT);
        assert_non_null(strstr(err.text, "/nonexistent/kms.conf"));
}

/* revoked-client takes a fingerprint as the audit log shows it or as openssl prints
 * it; each is kept as lowercase hex. crl is a path relative to the file. */
static void test_revoked_clients(void **state) {
        (void) state;
        char path[64];
        const char *hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        assert_int_equal(write_conf("revoked-client = 00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff\n"
                                    "revoked-client = sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"
                                    "revoked-client = SHA256 Fingerprint=00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:"
                                    "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\n"
                                    "crl = clients.crl\n", path, sizeof(path)), 0);
        struct kms_config *c = NULL;
        assert_int_equal(kms_config_load(path, &c, NULL), 0);
        unlink(path);
        assert_int_equal(c->n_revoked_clients, 3);
        for (size_t i = 0; i < 3; i++)
                assert_string_equal(c->revoked_clients[i], hex);
        assert_string_equal(c->crl, "/tmp/clients.crl");
        kms_config_free(c);
        c = NULL;
        static const char *const bad[] = { "revoked-client = 0011\n", "revoked-client = carol\n",
                                           "revoked-client = sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff00\n" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                assert_int_equal(write_conf(bad[i], path, sizeof(path)), 0);
                assert_int_equal(kms_config_load(path, &c, NULL), -EINVAL);
                unlink(path);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_and_policy),
                cmocka_unit_test(test_errors),
                cmocka_unit_test(test_revoked_clients),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
