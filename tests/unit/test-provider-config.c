/* providers.json: a full valid file, and each kind of mistake rejected with a
 * message that names the provider and the field. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "keys/provider-config.h"

static void test_valid(void **state) {
        (void) state;
        const char *text =
                "{ \"default\": \"lab\", \"providers\": {"
                "  \"lab\": { \"type\": \"kmip\", \"endpoints\": [\"kms1.example:5697\", \"10.0.0.2\", \"[::1]:5696\"],"
                "             \"ca\": \"ca.crt\", \"cert\": \"/etc/c.crt\", \"key\": \"c.key\", \"timeout_ms\": 2000,"
                "             \"wrap\": \"rfc5649\" },"
                "  \"local\": { \"type\": \"native\", \"state_dir\": \"native\" },"
                "  \"tkp\": { \"type\": \"trusted\", \"endpoints\": [\"kms1\"], \"ca\": \"c\", \"cert\": \"c\", \"key\": \"k\","
                "           \"tcti\": \"device:/dev/tpmrm0\", \"pcrs\": \"0,7,16\", \"bk_cache\": \"bk\" } } }";
        struct provider_configs *cs = NULL;
        struct error err = { 0 };
        assert_int_equal(provider_config_parse(text, "/etc/vmcrypt", &cs, &err), 0);
        assert_int_equal(cs->n, 3);
        const struct provider_config *lab = provider_config_find(cs, NULL);
        assert_non_null(lab);
        assert_string_equal(lab->name, "lab");
        assert_int_equal(lab->kind, PROVIDER_KMIP);
        assert_int_equal(lab->n_endpoints, 3);
        assert_string_equal(lab->endpoints[0].host, "kms1.example");
        assert_int_equal(lab->endpoints[0].port, 5697);
        assert_int_equal(lab->endpoints[1].port, 5696);
        assert_string_equal(lab->endpoints[2].host, "::1");
        assert_string_equal(lab->ca, "/etc/vmcrypt/ca.crt");
        assert_string_equal(lab->cert, "/etc/c.crt");
        assert_int_equal(lab->timeout_ms, 2000);
        assert_int_equal(lab->connect_timeout_ms, 3000);
        assert_int_equal(lab->wrap, WRAP_RFC5649);
        const struct provider_config *local = provider_config_find(cs, "local");
        assert_non_null(local);
        assert_int_equal(local->kind, PROVIDER_NATIVE);
        assert_string_equal(local->state_dir, "/etc/vmcrypt/native");
        assert_null(local->key_file);
        const struct provider_config *tkp = provider_config_find(cs, "tkp");
        assert_non_null(tkp);
        assert_int_equal(tkp->kind, PROVIDER_TRUSTED);
        assert_string_equal(tkp->tcti, "device:/dev/tpmrm0");
        assert_int_equal(tkp->pcrs, (1u << 0) | (1u << 7) | (1u << 16));
        assert_string_equal(tkp->group, "default");
        assert_string_equal(tkp->bk_cache, "/etc/vmcrypt/bk");
        assert_int_equal(tkp->wrap, WRAP_KMIP_ENCRYPT);
        assert_null(provider_config_find(cs, "nope"));
        provider_configs_free(cs);
}

struct bad_case {
        const char *json;
        const char *must_say;
};

static void test_errors(void **state) {
        (void) state;
        static const struct bad_case cases[] = {
                { "{\"providers\": ", "line 1" },
                { "{}", "\"providers\"" },
                { "{\"providers\": {\"a\": {\"type\": \"hsm\"}}}", "\"type\" must be" },
                { "{\"providers\": {\"a\": {\"type\": \"kmip\", \"endpoints\": []}}}", "endpoints" },
                { "{\"providers\": {\"a\": {\"type\": \"kmip\", \"endpoints\": [\"h:99999\"], \"ca\": \"c\", \"cert\": \"c\", \"key\": \"k\"}}}",
                  "endpoint 1" },
                { "{\"providers\": {\"a\": {\"type\": \"kmip\", \"endpoints\": [\"h\"], \"ca\": \"c\", \"key\": \"k\"}}}",
                  "\"cert\" is missing" },
                { "{\"providers\": {\"a\": {\"type\": \"kmip\", \"endpionts\": [\"h\"]}}}", "unknown member \"endpionts\"" },
                { "{\"providers\": {\"a\": {\"type\": \"kmip\", \"endpoints\": [\"h\"], \"ca\": \"c\", \"cert\": \"c\", \"key\": \"k\", \"wrap\": \"xor\"}}}",
                  "\"wrap\"" },
                { "{\"providers\": {\"a\": {\"type\": \"kmip\", \"endpoints\": [\"h\"], \"ca\": \"c\", \"cert\": \"c\", \"key\": \"k\", \"timeout_ms\": -1}}}",
                  "timeouts" },
                { "{\"providers\": {\"a\": {\"type\": \"native\"}}}", "state_dir" },
                { "{\"providers\": {\"a b\": {\"type\": \"native\", \"state_dir\": \"/x\"}}}", "names use" },
                { "{\"default\": \"b\", \"providers\": {\"a\": {\"type\": \"native\", \"state_dir\": \"/x\"}}}", "\"default\"" },
                { "{\"providers\": {\"a\": {\"type\": \"trusted\", \"endpoints\": [\"h\"], \"ca\": \"c\", \"cert\": \"c\", \"key\": \"k\"}}}", "\"tcti\" names the TPM" },
                { "{\"providers\": {\"a\": {\"type\": \"trusted\", \"endpoints\": [\"h\"], \"ca\": \"c\", \"cert\": \"c\", \"key\": \"k\", \"tcti\": \"device\"}}}", "\"pcrs\" must list" },
                { "{\"providers\": {\"a\": {\"type\": \"trusted\", \"endpoints\": [\"h\"], \"ca\": \"c\", \"cert\": \"c\", \"key\": \"k\", \"tcti\": \"device\", \"pcrs\": \"0,24\"}}}", "\"pcrs\" must list" },
                { "{\"providers\": {\"a\": {\"type\": \"trusted\", \"endpoints\": [\"h\"], \"ca\": \"c\", \"cert\": \"c\", \"key\": \"k\", \"tcti\": \"device\", \"pcrs\": \"7,7\"}}}", "\"pcrs\" must list" },
                { "{\"providers\": {\"a\": {\"type\": \"trusted\", \"endpoints\": [\"h\"], \"ca\": \"c\", \"cert\": \"c\", \"key\": \"k\", \"tcti\": \"device\", \"pcrs\": \"7,\"}}}", "\"pcrs\" must list" },
                { "{\"providers\": {\"a\": {\"type\": \"trusted\", \"endpoints\": [\"h\"], \"ca\": \"c\", \"cert\": \"c\", \"key\": \"k\", \"tcti\": \"d\", \"pcrs\": \"7\", \"wrap\": \"rfc5649\"}}}",
                  "kmip-encrypt\" only" },
                { "{\"providers\": {\"a\": {\"type\": \"trusted\", \"endpoints\": [\"h\"], \"ca\": \"c\", \"cert\": \"c\", \"key\": \"k\", \"tcti\": \"d\", \"pcrs\": \"7\", \"group\": \"\"}}}", "\"group\"" },
                { "{\"providers\": {\"a\": {\"type\": \"kmip\", \"endpoints\": [\"h\"], \"ca\": \"c\", \"cert\": \"c\", \"key\": \"k\", \"tcti\": \"d\"}}}",
                  "unknown member \"tcti\"" },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct provider_configs *cs = NULL;
                struct error err = { 0 };
                int r = provider_config_parse(cases[i].json, "/", &cs, &err);
                if (r != -EBADMSG || cs)
                        fail_msg("case %zu accepted (r=%d): %s", i, r, cases[i].json);
                if (!strstr(err.text, cases[i].must_say))
                        fail_msg("case %zu: message \"%s\" does not mention %s", i, err.text, cases[i].must_say);
        }
}

static void test_load_missing(void **state) {
        (void) state;
        struct provider_configs *cs = NULL;
        struct error err = { 0 };
        assert_int_equal(provider_config_load("/nonexistent/providers.json", &cs, &err), -ENOENT);
        assert_non_null(strstr(err.text, "/nonexistent/providers.json"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_valid),
                cmocka_unit_test(test_errors),
                cmocka_unit_test(test_load_missing),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
