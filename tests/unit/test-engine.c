/* Round trips of the disk engine on small temporary files, for every layout:
 * header in front (LUKS2, LUKS1, LUKS2 with 4096-byte sectors) and detached.
 * Each result is checked by the real cryptsetup (luksDump and --test-passphrase),
 * then reencrypted and decrypted back to the exact original bytes. */
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
#include <libcryptsetup.h>
#include <openssl/rand.h>

#include "disk/engine.h"
#include "shared/fd-util.h"

static char dir[256];
static const char key_text[] = "unit-test key, not a secret";

static int setup(void **state) {
        (void) state;
        snprintf(dir, sizeof(dir), "/var/tmp/vmcrypt-unit.XXXXXX");
        if (!mkdtemp(dir))
                return -1;
        char path[300];
        /* The host's job key goes into the test's own state directory. */
        snprintf(path, sizeof(path), "%s/state", dir);
        setenv("VMCRYPT_STATE_DIR", path, 1);
        snprintf(path, sizeof(path), "%s/key", dir);
        return write_file_atomic(path, key_text, strlen(key_text), 0600) < 0 ? -1 : 0;
}

static int teardown(void **state) {
        (void) state;
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        return system(cmd) == 0 ? 0 : -1;
}

/* Header hook: the first call (encrypt) adds a token naming the new keyslot; later
 * calls (reencrypt) add nothing, so the token seen afterwards was carried over. */
static int add_token_once(struct crypt_device *cd, int keyslot, void *userdata) {
        int *calls = userdata;
        if ((*calls)++ > 0)
                return 0;
        char json[128];
        snprintf(json, sizeof(json), "{\"type\":\"unit-test\",\"keyslots\":[\"%d\"]}", keyslot);
        return crypt_token_json_set(cd, CRYPT_ANY_TOKEN, json) < 0 ? -EIO : 0;
}

static uint8_t *make_image(const char *path, size_t size) {
        uint8_t *data = malloc(size);
        assert_non_null(data);
        assert_int_equal(RAND_bytes(data, (int) size), 1);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(pwrite_full(fd, data, size, 0), 0);
        close(fd);
        return data;
}

static void assert_same_file(const char *path, const uint8_t *data, size_t size) {
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal((size_t) st.st_size, size);
        uint8_t *now = malloc(size);
        assert_non_null(now);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(pread_full(fd, now, size, 0), 0);
        close(fd);
        assert_memory_equal(now, data, size);
        free(now);
}

/* The real cryptsetup must accept the header and open a keyslot with the key. */
static void assert_cryptsetup_accepts(const char *hdr) {
        char cmd[1024];
        snprintf(cmd, sizeof(cmd), "cryptsetup luksDump '%s' >/dev/null", hdr);
        assert_int_equal(system(cmd), 0);
        snprintf(cmd, sizeof(cmd), "cryptsetup open --test-passphrase --key-file '%s/key' '%s'", dir, hdr);
        assert_int_equal(system(cmd), 0);
}

static void roundtrip(enum disk_format format, unsigned ss, bool detached, size_t size) {
        char img[300], hdr[300];
        snprintf(img, sizeof(img), "%s/disk-%d-%u-%d.img", dir, (int) format, ss, (int) detached);
        snprintf(hdr, sizeof(hdr), "%s/disk-%d-%u-%d.hdr", dir, (int) format, ss, (int) detached);
        uint8_t *orig = make_image(img, size);
        struct secret *key = secret_new_copy(key_text, strlen(key_text));
        struct secret *wrong = secret_new_copy("wrong", 5);
        assert_non_null(key);
        assert_non_null(wrong);
        int hook_calls = 0;
        bool luks2 = format == DISK_FORMAT_LUKS2;
        struct engine_params p = { .path = img, .header_path = detached ? hdr : NULL, .format = format,
                                   .sector_size = ss, .unlock = key, .kdf = ENGINE_KDF_MINIMAL,
                                   .header_hook = luks2 ? add_token_once : NULL, .hook_userdata = &hook_calls };

        assert_int_equal(engine_encrypt(&p), 0);
        assert_cryptsetup_accepts(detached ? hdr : img);
        struct engine_status st;
        assert_int_equal(engine_status(img, p.header_path, NULL, &st, NULL), 0);
        assert_true(st.encrypted);
        assert_int_equal(st.job, ENGINE_OP_NONE);
        assert_int_equal(st.format, format);
        assert_int_equal(st.sector_size, ss);
        assert_int_equal(st.data_size, size);
        assert_int_equal(st.detached, detached);
        assert_string_equal(st.cipher, "aes-xts-plain64");
        assert_int_equal(st.key_bits, 512);
        if (!detached) {
                assert_int_equal(engine_encrypt(&p), -EEXIST);   /* already a LUKS volume */
                assert_int_equal(st.data_offset, format == DISK_FORMAT_LUKS1 ? 2 << 20 : 16 << 20);
        }

        struct engine_params bad = p;
        bad.unlock = wrong;
        assert_int_equal(engine_decrypt(&bad), -EPERM);
        assert_int_equal(engine_reencrypt(&bad), -EPERM);

        if (luks2) {
                assert_int_equal(st.n_tokens, 1);
                assert_string_equal(st.tokens[0].type, "unit-test");
        }
        assert_int_equal(engine_reencrypt(&p), 0);
        assert_cryptsetup_accepts(detached ? hdr : img);
        assert_int_equal(engine_status(img, p.header_path, NULL, &st, NULL), 0);
        if (luks2) {
                assert_int_equal(hook_calls, 2);          /* called for the new header too */
                assert_int_equal(st.n_tokens, 1);         /* the old header's token kept */
                assert_string_equal(st.tokens[0].type, "unit-test");
        }

        assert_int_equal(engine_decrypt(&p), 0);
        assert_same_file(img, orig, size);
        assert_int_equal(engine_status(img, p.header_path, NULL, &st, NULL), 0);
        assert_int_equal(st.format, DISK_FORMAT_NONE);
        if (detached)
                assert_int_equal(access(hdr, F_OK), -1);
        free(orig);
        secret_free(key);
        secret_free(wrong);
}

static void test_luks2_shift(void **state) {
        (void) state;
        roundtrip(DISK_FORMAT_LUKS2, 512, false, (3 << 20) + 3 * 512);
}

static void test_luks1_shift(void **state) {
        (void) state;
        roundtrip(DISK_FORMAT_LUKS1, 512, false, (5 << 20) + 512);
}

static void test_luks2_4096(void **state) {
        (void) state;
        roundtrip(DISK_FORMAT_LUKS2, 4096, false, (3 << 20) + 4096);
}

static void test_luks2_detached(void **state) {
        (void) state;
        roundtrip(DISK_FORMAT_LUKS2, 512, true, (2 << 20) + 1024);
}

static void test_luks1_detached(void **state) {
        (void) state;
        roundtrip(DISK_FORMAT_LUKS1, 512, true, 1 << 20);
}

static void test_bad_sizes(void **state) {
        (void) state;
        char img[300];
        snprintf(img, sizeof(img), "%s/odd.img", dir);
        free(make_image(img, 4096 + 100));
        struct secret *key = secret_new_copy(key_text, strlen(key_text));
        struct engine_params p = { .path = img, .unlock = key, .kdf = ENGINE_KDF_MINIMAL };
        assert_int_equal(engine_encrypt(&p), -EINVAL);     /* not whole sectors */
        free(make_image(img, 8192));
        p.sector_size = 4096;
        p.format = DISK_FORMAT_LUKS1;
        assert_int_equal(engine_encrypt(&p), -EINVAL);     /* LUKS1 has no 4096 sectors */
        p.format = DISK_FORMAT_LUKS2;
        assert_int_equal(engine_decrypt(&p), -ENODEV);     /* not LUKS */
        struct engine_status st;
        assert_int_equal(engine_status(img, NULL, NULL, &st, NULL), 0);
        assert_int_equal(st.format, DISK_FORMAT_NONE);
        assert_int_equal(st.data_size, 8192);
        secret_free(key);
}


/* Progress callback that stops the job after every chunk: odd calls go on (the
 * first report of every run), even ones pause or cancel in turn. */
struct stopper {
        unsigned calls;
        unsigned stops;
};

static enum engine_verdict stop_every_chunk(const struct engine_progress *pr, void *userdata) {
        struct stopper *s = userdata;
        if (pr->finished || ++s->calls % 2)
                return ENGINE_CONTINUE;
        return ++s->stops % 2 ? ENGINE_PAUSE : ENGINE_CANCEL;
}

/* Run op, stopped after every chunk and resumed each time, to the end; the disk
 * says a job is in progress at every stop. Returns how often it stopped. */
static unsigned run_stopped(int (*op)(const struct engine_params *), struct engine_params *p,
                            enum engine_operation want) {
        struct stopper s = { 0 };
        p->progress = stop_every_chunk;
        p->progress_userdata = &s;
        int r = op(p);
        unsigned runs = 0;
        uint64_t done = 0;
        while (r == -ECANCELED && runs++ < 100) {
                struct engine_status st;
                assert_int_equal(engine_status(p->path, p->header_path, NULL, &st, NULL), 0);
                assert_int_equal(st.job, want);
                assert_false(st.encrypted);
                assert_true(st.job_done > done);            /* every run moved on */
                assert_true(st.job_done <= st.job_total);
                done = st.job_done;
                r = engine_resume(p);
        }
        assert_int_equal(r, 0);
        p->progress = NULL;
        return s.stops;
}

/* min_stops for the data-moving passes; reencrypt goes by 64 MiB hotzones. */
static void pause_roundtrip(enum disk_format format, bool detached, size_t size, unsigned min_stops) {
        unsigned min_hz = (unsigned) (size / (64 << 20));
        char img[300], hdr[300];
        snprintf(img, sizeof(img), "%s/pause-%d-%d.img", dir, (int) format, (int) detached);
        snprintf(hdr, sizeof(hdr), "%s/pause-%d-%d.hdr", dir, (int) format, (int) detached);
        uint8_t *orig = make_image(img, size);
        struct secret *key = secret_new_copy(key_text, strlen(key_text));
        struct engine_params p = { .path = img, .header_path = detached ? hdr : NULL, .format = format,
                                   .unlock = key, .kdf = ENGINE_KDF_MINIMAL };
        assert_true(run_stopped(engine_encrypt, &p, ENGINE_OP_ENCRYPT) >= min_stops);
        assert_cryptsetup_accepts(detached ? hdr : img);
        assert_true(run_stopped(engine_reencrypt, &p, ENGINE_OP_REENCRYPT) >= min_hz);
        assert_cryptsetup_accepts(detached ? hdr : img);
        assert_true(run_stopped(engine_decrypt, &p, ENGINE_OP_DECRYPT) >= min_stops);
        assert_same_file(img, orig, size);
        free(orig);
        secret_free(key);
}

/* A job asked to pause or cancel stops at a checkpoint; resume finishes it to the
 * exact bytes: 8 MiB chunks (LUKS2 in front), 1 MiB (LUKS1), 64 MiB hotzones
 * (detached, and every reencrypt). */
static void test_pause_cancel(void **state) {
        (void) state;
        pause_roundtrip(DISK_FORMAT_LUKS2, false, (40 << 20) + 512, 3);
        pause_roundtrip(DISK_FORMAT_LUKS1, false, 5 << 20, 4);
        pause_roundtrip(DISK_FORMAT_LUKS2, true, (136 << 20) + 4096, 2);
}

int main(void) {
        if (system("cryptsetup --version >/dev/null") != 0) {
                fprintf(stderr, "FAIL: cryptsetup is not installed (scripts/deps.sh installs cryptsetup-bin)\n");
                return 1;
        }
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_luks2_shift),
                cmocka_unit_test(test_luks1_shift),
                cmocka_unit_test(test_luks2_4096),
                cmocka_unit_test(test_luks2_detached),
                cmocka_unit_test(test_luks1_detached),
                cmocka_unit_test(test_bad_sizes),
                cmocka_unit_test(test_pause_cancel),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
