/* Unit test of the KMS audit log: one valid JSON object per line whatever the client
 * identity contains, with the fields the operators rely on; the chain of MACs
 * holds across reopening and breaks where a line is edited, removed or cut. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kms/audit.h"

static void to_stderr(unsigned long line, const char *what, void *userdata) {
        (void) userdata;
        fprintf(stderr, "%lu: %s\n", line, what);
}

/* A fresh, unused log path and its key's path beside it. */
static void temp_paths(char path[static 64], char key[static 64]) {
        snprintf(path, 64, "/tmp/test-kms-audit-XXXXXX");
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        close(fd);
        unlink(path);
        snprintf(key, 64, "%s.key", path);
}

static void test_lines(void **state) {
        (void) state;
        char path[64], key[64];
        temp_paths(path, key);
        struct audit *a = NULL;
        assert_int_equal(audit_open(path, key, &a), 0);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_int_equal(stat(key, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_int_equal(st.st_size, AUDIT_KEY_SIZE);

        const char *names[] = { "vcenter", "quote\"back\\slash", "ctl\n\t\x01", "caf\xc3\xa9", "bad\xff\xfe" };
        for (size_t i = 0; i < 5; i++) {
                struct audit_event ev = {
                        .identity = names[i], .fingerprint = "ab12", .peer = "127.0.0.1:5", .operation = "Get",
                        .object_id = i == 0 ? "uuid-1" : NULL, .status = i == 0 ? 0 : 1, .reason = 1,
                };
                assert_int_equal(audit_record(a, &ev), 0);
        }
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
                assert_string_equal(json_string_value(json_object_get(o, "peer")), "127.0.0.1:5");
                assert_int_equal(json_integer_value(json_object_get(o, "seq")), (json_int_t) n + 1);
                assert_int_equal(strlen(json_string_value(json_object_get(o, "mac"))), 64);
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
        unsigned long lines = 0;
        assert_int_equal(audit_verify(path, key, to_stderr, NULL, &lines), 0);
        assert_int_equal(lines, 5);
        unlink(path);
        unlink(key);
        assert_int_equal(n, 5);
}

static void write_lines(const char *path, const char *key, int n) {
        struct audit *a = NULL;
        assert_int_equal(audit_open(path, key, &a), 0);
        for (int i = 0; i < n; i++) {
                char id[32];
                snprintf(id, sizeof(id), "id-%d", i);
                struct audit_event ev = { .identity = "c", .operation = "Create", .object_id = id };
                assert_int_equal(audit_record(a, &ev), 0);
        }
        audit_close(a);
}

static char *slurp(const char *path, size_t *n) {
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        static char buf[65536];
        *n = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        return buf;
}

static void spit(const char *path, const char *p, size_t n) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        assert_int_equal(fwrite(p, 1, n, f), n);
        fclose(f);
}

static void note_first(unsigned long line, const char *what, void *userdata) {
        unsigned long *first = userdata;
        (void) what;
        if (!*first)
                *first = line;
}

/* Verify's report for the file as it is: the first line number it names (0: none). */
static unsigned long first_break(const char *path, const char *key) {
        unsigned long first = 0;
        int r = audit_verify(path, key, note_first, &first, NULL);
        unsigned long line = r == 0 ? 0 : first;
        if (r != 0)
                assert_int_equal(r, -EBADMSG);
        return line;
}

static void test_chain(void **state) {
        (void) state;
        char path[64], key[64];
        temp_paths(path, key);
        /* Two runs of the server: the chain goes on across reopening. */
        write_lines(path, key, 3);
        write_lines(path, key, 3);
        assert_int_equal(first_break(path, key), 0);
        size_t n;
        char *orig = slurp(path, &n);
        char copy[65536];
        memcpy(copy, orig, n);

        /* An edited line: "id-1" becomes "id-9" on line 2. */
        char *p = strstr(copy, "id-1");
        p[3] = '9';
        spit(path, copy, n);
        assert_int_equal(first_break(path, key), 2);
        p[3] = '1';

        /* A line removed: line 3 goes, line 4 (now 3) says so. */
        char *l3 = strchr(strchr(copy, '\n') + 1, '\n') + 1, *l4 = strchr(l3, '\n') + 1;
        char cut[65536];
        size_t head = (size_t) (l3 - copy);
        memcpy(cut, copy, head);
        memcpy(cut + head, l4, n - (size_t) (l4 - copy));
        spit(path, cut, n - (size_t) (l4 - l3));
        assert_int_equal(first_break(path, key), 3);

        /* The last line cut short. */
        spit(path, copy, n - 10);
        assert_int_equal(first_break(path, key), 6);
        /* The server goes on after a cut line: new lines chain to the last whole one,
         * and only the cut line is reported. */
        write_lines(path, key, 2);
        assert_int_equal(first_break(path, key), 6);
        unsigned long lines;
        assert_int_equal(audit_verify(path, key, to_stderr, NULL, &lines), -EBADMSG);
        assert_int_equal(lines, 8);

        /* Another key: the first line already fails. */
        spit(path, copy, n);
        unlink(key);
        write_lines("/dev/null", key, 0);
        assert_int_equal(first_break(path, key), 1);
        unlink(path);
        unlink(key);
}

/* Two writers of one log (two processes: separate open files, as here): shared
 * handles go on from each other's lines; plain ones, each sure it is the only
 * writer, break the chain at the first line after the other's. */
static int interleave(bool shared) {
        char path[64], key[64];
        temp_paths(path, key);
        struct audit *a = NULL, *b = NULL;
        int (*open_fn)(const char *, const char *, struct audit **) = shared ? audit_open_shared : audit_open;
        assert_int_equal(open_fn(path, key, &a), 0);
        assert_int_equal(open_fn(path, key, &b), 0);
        for (int i = 0; i < 6; i++) {
                struct audit_event ev = { .identity = i % 2 ? "b" : "a", .operation = "Get" };
                assert_int_equal(audit_record(i % 2 ? b : a, &ev), 0);
        }
        audit_close(a);
        audit_close(b);
        unsigned long lines = 0;
        int r = audit_verify(path, key, to_stderr, NULL, &lines);
        assert_int_equal(lines, 6);
        unlink(path);
        unlink(key);
        return r;
}

static void test_shared(void **state) {
        (void) state;
        assert_int_equal(interleave(true), 0);
        assert_int_equal(interleave(false), -EBADMSG);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_lines),
                cmocka_unit_test(test_chain),
                cmocka_unit_test(test_shared),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
