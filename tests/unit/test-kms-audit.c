/* Unit test of the KMS audit log: one valid JSON object per line whatever the client
 * identity contains, with the fields the operators rely on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kms/audit.h"

static void test_lines(void **state) {
        (void) state;
        char path[] = "/tmp/test-kms-audit-XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        close(fd);
        unlink(path);
        struct audit *a = NULL;
        assert_int_equal(audit_open(path, &a), 0);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);

        const char *names[] = { "vcenter", "quote\"back\\slash", "ctl\n\t\x01", "caf\xc3\xa9", "bad\xff\xfe" };
        for (size_t i = 0; i < 5; i++)
                audit_record(a, names[i], "ab12", "Get", i == 0 ? "uuid-1" : NULL, i == 0 ? 0 : 1, 1);
        audit_close(a);

        FILE *f = fopen(path, "r");
        assert_non_null(f);
        char line[4096];
        size_t n = 0;
        while (fgets(line, sizeof(line), f)) {
                json_error_t err;
                json_t *o = json_loads(line, 0, &err);
                assert_non_null(o);
                assert_string_equal(json_string_value(json_object_get(o, "operation")), "Get");
                assert_string_equal(json_string_value(json_object_get(o, "client_sha256")), "ab12");
                assert_non_null(json_string_value(json_object_get(o, "time")));
                if (n == 0) {
                        assert_string_equal(json_string_value(json_object_get(o, "result")), "success");
                        assert_string_equal(json_string_value(json_object_get(o, "object")), "uuid-1");
                        assert_null(json_object_get(o, "reason"));
                } else {
                        assert_string_equal(json_string_value(json_object_get(o, "result")), "failed");
                        assert_int_equal(json_integer_value(json_object_get(o, "reason")), 1);
                }
                /* Valid text survives unchanged. */
                if (n < 4)
                        assert_string_equal(json_string_value(json_object_get(o, "client")), names[n]);
                json_decref(o);
                n++;
        }
        fclose(f);
        unlink(path);
        assert_int_equal(n, 5);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_lines),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
