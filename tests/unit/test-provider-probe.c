/* provider_probe and provider_report_all (src/keys/provider.c): a native
 * provider is usable once it has a primary key and a backup, and says how to
 * get there; a kmip provider whose key servers do not answer is unreachable
 * (-ECONNREFUSED), at once; the report of a providers.json carries names,
 * kinds, endpoints and the default, and no path of providers.json's. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "keys/native.h"
#include "keys/provider.h"

static char dir[64];

/* A TCP port on 127.0.0.1 with nothing listening (bound, then closed). */
static unsigned closed_port(void) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(fd >= 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(a);
        assert_int_equal(bind(fd, (struct sockaddr *) &a, sizeof(a)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *) &a, &len), 0);
        close(fd);
        return ntohs(a.sin_port);
}

static void write_file(const char *path, const char *text) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
}

static void test_native_probe(void **state) {
        (void) state;
        char json[1024], path[256];
        snprintf(json, sizeof(json),
                 "{\"default\":\"local\",\"providers\":{\"local\":{\"type\":\"native\",\"state_dir\":\"%s/native\","
                 "\"key_file\":\"%s/native.key\"}}}", dir, dir);
        snprintf(path, sizeof(path), "%s/native.json", dir);
        write_file(path, json);
        struct provider_configs *cs = NULL;
        struct error err = { 0 };
        assert_int_equal(provider_config_load(path, &cs, &err), 0);
        struct provider *p = NULL;
        assert_int_equal(provider_open(&cs->p[0], &p), 0);
        assert_int_equal(provider_probe(p, 1000), -ENOENT);
        assert_non_null(strstr(provider_error(p), "run 'vmcrypt provider init local'"));
        assert_int_equal(native_init(&cs->p[0], &err), 0);
        assert_int_equal(provider_probe(p, 1000), -EACCES);
        assert_non_null(strstr(provider_error(p), "vmcrypt provider backup local"));
        struct secret *pass = secret_new_copy("correct horse", 13);
        char bundle[256];
        snprintf(bundle, sizeof(bundle), "%s/backup.json", dir);
        assert_int_equal(native_backup(&cs->p[0], pass, bundle, &err), 0);
        secret_free(pass);
        assert_int_equal(provider_probe(p, 1000), 0);
        assert_string_equal(provider_error(p), "");
        provider_free(p);
        provider_configs_free(cs);
}

static void test_report(void **state) {
        (void) state;
        unsigned port = closed_port();
        char json[4096], path[256], cmd[512];
        /* A certificate (its own CA) for kms; badca's files do not exist. */
        snprintf(cmd, sizeof(cmd), "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=t "
                 "-keyout %s/client.key -out %s/client.crt -days 1 2>/dev/null", dir, dir);
        assert_int_equal(system(cmd), 0);
        snprintf(json, sizeof(json),
                 "{\"default\":\"kms\",\"providers\":{"
                 "\"kms\":{\"type\":\"kmip\",\"endpoints\":[\"127.0.0.1:%u\"],\"ca\":\"%s/client.crt\","
                 "\"cert\":\"%s/client.crt\",\"key\":\"%s/client.key\"},"
                 "\"badca\":{\"type\":\"kmip\",\"endpoints\":[\"127.0.0.1:%u\"],\"ca\":\"%s/pki/ca.crt\","
                 "\"cert\":\"%s/pki/client.crt\",\"key\":\"%s/pki/client.key\"},"
                 "\"off\":{\"type\":\"native\",\"state_dir\":\"%s/off\",\"key_file\":\"%s/off.key\"}}}",
                 port, dir, dir, dir, port, dir, dir, dir, dir, dir);
        snprintf(path, sizeof(path), "%s/providers.json", dir);
        write_file(path, json);
        struct provider_report *v = NULL;
        size_t n = 0;
        struct error err = { 0 };
        assert_int_equal(provider_report_all(path, 1000, &v, &n, &err), 0);
        assert_int_equal(n, 3);
        struct provider_report *kms = NULL, *badca = NULL, *off = NULL;
        for (size_t i = 0; i < n; i++)
                *(strcmp(v[i].name, "kms") == 0 ? &kms : strcmp(v[i].name, "off") == 0 ? &off : &badca) = &v[i];
        assert_non_null(kms);
        assert_non_null(badca);
        assert_non_null(off);
        assert_string_equal(kms->kind, "kmip");
        assert_true(kms->is_default);
        assert_int_equal(kms->n_endpoints, 1);
        char ep[64];
        snprintf(ep, sizeof(ep), "127.0.0.1:%u", port);
        assert_string_equal(kms->endpoints[0], ep);
        /* Nothing listens: unreachable, and the message says what to check. */
        assert_int_equal(kms->probe, -ECONNREFUSED);
        assert_int_equal(kms->fault, ERROR_FAULT_KEY_UNREACHABLE);
        assert_non_null(strstr(kms->message, "no KMS of provider \"kms\" is reachable"));
        /* A CA file that is not there: an error, its path named by its setting. */
        assert_true(badca->probe < 0 && badca->fault != ERROR_FAULT_KEY_UNREACHABLE);
        assert_non_null(strstr(badca->message, "<ca>"));
        /* When the host's certificate ends: kms's made for one day; badca's
         * is not there (0, unknown); native has none. */
        int64_t left = kms->cert_expires - (int64_t) time(NULL);
        assert_true(left > 86400 - 600 && left <= 86400);
        assert_int_equal(badca->cert_expires, 0);
        assert_int_equal(off->cert_expires, 0);
        assert_string_equal(off->kind, "native");
        assert_false(off->is_default);
        assert_int_equal(off->n_endpoints, 0);
        assert_int_equal(off->probe, -ENOENT);
        for (size_t i = 0; i < n; i++)
                if (strstr(v[i].message, dir))
                        fail_msg("a path in the report: %s", v[i].message);
        free(v);
        /* No providers.json: -ENOENT, for the agent to report none. */
        snprintf(path, sizeof(path), "%s/none.json", dir);
        assert_int_equal(provider_report_all(path, 1000, &v, &n, &err), -ENOENT);
}

int main(void) {
        snprintf(dir, sizeof(dir), "/tmp/test-probe.XXXXXX");
        assert_non_null(mkdtemp(dir));
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_native_probe),
                cmocka_unit_test(test_report),
        };
        int r = cmocka_run_group_tests(tests, NULL, NULL);
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        if (system(cmd) != 0)
                r = 1;
        return r;
}
