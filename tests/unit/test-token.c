/* The "vmcrypt" token: JSON round trip, rejection of damaged or incomplete tokens,
 * and the stores on real headers made by libcryptsetup (LUKS2 header tokens, the
 * LUKS1 metadata area with its two copies, the sidecar of older vmcrypt and its
 * migration into the area). */
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

#include "disk/luks1-meta.h"
#include "keys/token.h"
#include "shared/macro.h"

static struct vmcrypt_token *sample(void) {
        struct vmcrypt_token *t = token_new();
        assert_non_null(t);
        t->keyslot = 3;
        t->provider = strdup("lab");
        t->kek_id = strdup("42");
        t->method = strdup(TOKEN_METHOD_RFC5649);
        t->wrapped_size = 40;
        t->wrapped = malloc(40);
        for (int i = 0; i < 40; i++)
                t->wrapped[i] = (uint8_t) (i * 7);
        t->vm_name = strdup("web-01");
        t->vm_uuid = strdup("4216a6a2-1d3c-4c1e-9f0e-000000000001");
        assert_int_equal(token_stamp(t), 0);
        return t;
}

static void test_roundtrip(void **state) {
        (void) state;
        _cleanup_(token_freep) struct vmcrypt_token *t = sample(), *back = NULL;
        _cleanup_(freep) char *json = NULL;
        assert_int_equal(token_to_json(t, &json), 0);
        assert_non_null(strstr(json, "\"type\":\"vmcrypt\""));
        assert_non_null(strstr(json, "\"keyslots\":[\"3\"]"));
        assert_int_equal(token_from_json(json, &back), 0);
        assert_int_equal(back->keyslot, 3);
        assert_string_equal(back->provider, "lab");
        assert_string_equal(back->kek_id, "42");
        assert_string_equal(back->method, "rfc5649");
        assert_int_equal(back->wrapped_size, 40);
        assert_memory_equal(back->wrapped, t->wrapped, 40);
        assert_string_equal(back->vm_name, "web-01");
        assert_null(back->iv);

        /* kmip-encrypt carries a cipher, IV and tag. */
        t->method[0] = 0;
        free(t->method);
        t->method = strdup(TOKEN_METHOD_KMIP_ENCRYPT);
        _cleanup_(freep) char *no_cipher = NULL;
        assert_int_equal(token_to_json(t, &no_cipher), -EBADMSG);
        t->cipher = strdup("aes-gcm");
        t->iv = calloc(1, 12);
        t->iv_size = 12;
        t->tag = calloc(1, 16);
        t->tag_size = 16;
        _cleanup_(freep) char *json2 = NULL;
        _cleanup_(token_freep) struct vmcrypt_token *back2 = NULL;
        assert_int_equal(token_to_json(t, &json2), 0);
        assert_int_equal(token_from_json(json2, &back2), 0);
        assert_int_equal(back2->iv_size, 12);
        assert_int_equal(back2->tag_size, 16);
        assert_string_equal(back2->cipher, "aes-gcm");
}

static void test_damaged(void **state) {
        (void) state;
        static const char *const bad[] = {
                "",
                "{",
                "[]",
                "{\"type\":\"clevis\",\"keyslots\":[\"1\"]}",
                /* missing wrapped */
                "{\"type\":\"vmcrypt\",\"keyslots\":[\"1\"],\"provider\":\"p\",\"kek_id\":\"k\",\"method\":\"rfc5649\"}",
                /* two keyslots */
                "{\"type\":\"vmcrypt\",\"keyslots\":[\"1\",\"2\"],\"provider\":\"p\",\"kek_id\":\"k\",\"method\":\"rfc5649\","
                "\"wrapped\":\"AAAAAAAAAAAAAAAAAAAAAA==\"}",
                /* keyslot out of range */
                "{\"type\":\"vmcrypt\",\"keyslots\":[\"99\"],\"provider\":\"p\",\"kek_id\":\"k\",\"method\":\"rfc5649\","
                "\"wrapped\":\"AAAAAAAAAAAAAAAAAAAAAA==\"}",
                /* base64 damaged */
                "{\"type\":\"vmcrypt\",\"keyslots\":[\"1\"],\"provider\":\"p\",\"kek_id\":\"k\",\"method\":\"rfc5649\","
                "\"wrapped\":\"AAAAAAAAAAA*AAAAAAAAAA==\"}",
                /* 15 bytes: not whole 64-bit blocks */
                "{\"type\":\"vmcrypt\",\"keyslots\":[\"1\"],\"provider\":\"p\",\"kek_id\":\"k\",\"method\":\"rfc5649\","
                "\"wrapped\":\"AAAAAAAAAAAAAAAAAAAA\"}",
                /* unknown method */
                "{\"type\":\"vmcrypt\",\"keyslots\":[\"1\"],\"provider\":\"p\",\"kek_id\":\"k\",\"method\":\"rot13\","
                "\"wrapped\":\"AAAAAAAAAAAAAAAAAAAAAA==\"}",
                /* provider of the wrong type */
                "{\"type\":\"vmcrypt\",\"keyslots\":[\"1\"],\"provider\":7,\"kek_id\":\"k\",\"method\":\"rfc5649\","
                "\"wrapped\":\"AAAAAAAAAAAAAAAAAAAAAA==\"}",
                /* duplicate member */
                "{\"type\":\"vmcrypt\",\"keyslots\":[\"1\"],\"provider\":\"p\",\"provider\":\"q\",\"kek_id\":\"k\","
                "\"method\":\"rfc5649\",\"wrapped\":\"AAAAAAAAAAAAAAAAAAAAAA==\"}",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                struct vmcrypt_token *t = NULL;
                int r = token_from_json(bad[i], &t);
                if (r != -EBADMSG)
                        fail_msg("damaged token %zu accepted (r=%d): %s", i, r, bad[i]);
                assert_null(t);
        }
        /* The good twin of the above is accepted: the rejections are for the damage. */
        struct vmcrypt_token *ok = NULL;
        assert_int_equal(token_from_json("{\"type\":\"vmcrypt\",\"keyslots\":[\"1\"],\"provider\":\"p\",\"kek_id\":\"k\","
                                         "\"method\":\"rfc5649\",\"wrapped\":\"AAAAAAAAAAAAAAAAAAAAAA==\"}", &ok), 0);
        token_free(ok);
}

/* A fresh LUKS volume in a sparse file, one keyslot with a cheap KDF. */
static struct crypt_device *make_volume(const char *path, const char *type) {
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, 20 << 20), 0);
        close(fd);
        struct crypt_device *cd = NULL;
        assert_int_equal(crypt_init(&cd, path), 0);
        struct crypt_pbkdf_type pbkdf = { .type = CRYPT_KDF_PBKDF2, .hash = "sha256", .iterations = 1000,
                                          .flags = CRYPT_PBKDF_NO_BENCHMARK };
        assert_int_equal(crypt_set_pbkdf_type(cd, &pbkdf), 0);
        assert_int_equal(crypt_format(cd, type, "aes", "xts-plain64", NULL, NULL, 64, NULL), 0);
        assert_true(crypt_keyslot_add_by_volume_key(cd, CRYPT_ANY_SLOT, NULL, 0, "pw", 2) >= 0);
        return cd;
}

static void flip_byte(const char *img, uint64_t off) {
        int fd = open(img, O_RDWR);
        assert_true(fd >= 0);
        uint8_t b;
        assert_int_equal(pread(fd, &b, 1, (off_t) off), 1);
        b ^= 0x55;
        assert_int_equal(pwrite(fd, &b, 1, (off_t) off), 1);
        close(fd);
}

static int count_tokens(struct crypt_device *cd, const char *img) {
        struct token_list *l = NULL;
        int r = token_store_list(cd, img, &l);
        if (r < 0)
                return r;
        r = (int) l->n;
        token_list_free(l);
        return r;
}

/* The LUKS1 metadata area on a header libcryptsetup made (one token stored):
 * one torn copy falls back to the other generation; two damaged copies are an
 * error, never "no tokens"; a sidecar of an older vmcrypt is read, then moved
 * into the area. */
static void luks1_area_checks(struct crypt_device *cd, const char *img, const char *side) {
        uint64_t off;
        assert_int_equal(luks1_meta_locate(cd, &off), 0);
        assert_int_equal(token_store_can_add(cd, img), 0);
        /* Clear of every keyslot, before the last 4 KiB of the 2 MiB region. */
        assert_int_equal(off + LUKS1_META_SIZE, crypt_get_data_offset(cd) * 512 - LUKS1_META_TAIL);
        char *text = NULL;
        assert_int_equal(luks1_meta_read(cd, &text), 0);
        assert_non_null(strstr(text, "\"tokens\""));
        free(text);

        /* Another generation, then its copy torn: the previous one is read. */
        _cleanup_(token_freep) struct vmcrypt_token *t = sample();
        t->keyslot = 0;
        int id = token_store_add(cd, img, t);
        assert_true(id >= 0);
        assert_int_equal(count_tokens(cd, img), 2);
        int fd = open(img, O_RDONLY);
        uint8_t c0[LUKS1_META_SIZE];
        assert_int_equal(pread(fd, c0, sizeof(c0), (off_t) off), (ssize_t) sizeof(c0));
        close(fd);
        uint64_t seq;
        int copy = -1;
        assert_int_equal(luks1_meta_parse(c0, sizeof(c0), off, crypt_get_uuid(cd), &text, &seq, &copy), 0);
        free(text);
        flip_byte(img, off + (uint64_t) copy * LUKS1_META_COPY + LUKS1_META_RECORD + 3);
        assert_int_equal(count_tokens(cd, img), 1);
        /* The next write goes into the torn copy's place and is whole again. */
        assert_true(token_store_add(cd, img, t) >= 0);
        assert_int_equal(count_tokens(cd, img), 2);

        /* The area of another volume (other UUID) on the same bytes is not ours. */
        assert_int_equal(luks1_meta_parse(c0, sizeof(c0), off, "00000000-0000-0000-0000-000000000000", &text,
                                          NULL, NULL), -ENODATA);
        /* Nor is a copy read at another offset than the one it names. */
        assert_int_equal(luks1_meta_parse(c0, sizeof(c0), off + 512, crypt_get_uuid(cd), &text, NULL, NULL),
                         -EBADMSG);

        /* Both copies damaged: an error for the whole store. */
        flip_byte(img, off + LUKS1_META_RECORD + 1);
        flip_byte(img, off + LUKS1_META_COPY + LUKS1_META_RECORD + 1);
        assert_int_equal(count_tokens(cd, img), -EBADMSG);

        /* An image bound by an older vmcrypt: no area, a sidecar. It is read, and
         * moved into the area (then removed) by token_store_migrate. */
        int zfd = open(img, O_RDWR);
        static const uint8_t zero[LUKS1_META_SIZE];
        assert_int_equal(pwrite(zfd, zero, sizeof(zero), (off_t) off), (ssize_t) sizeof(zero));
        close(zfd);
        assert_int_equal(count_tokens(cd, img), 0);
        char *json = NULL;
        assert_int_equal(token_to_json(t, &json), 0);
        FILE *f = fopen(side, "w");
        fprintf(f, "{\"tokens\": {\"4\": %s}}", json);
        fclose(f);
        free(json);
        assert_int_equal(count_tokens(cd, img), 1);
        /* A header built elsewhere (another path) does not take this sidecar. */
        assert_int_equal(token_store_migrate(cd, "/nonexistent/disk.img"), 0);
        assert_int_equal(token_store_migrate(cd, img), 1);
        assert_int_not_equal(access(side, F_OK), 0);
        struct token_list *l = NULL;
        assert_int_equal(token_store_list(cd, img, &l), 0);
        assert_int_equal(l->n, 1);
        assert_int_equal(l->e[0].id, 4);
        token_list_free(l);
        assert_int_equal(token_store_migrate(cd, img), 0);

        /* A damaged sidecar is an error for the whole store, not "no tokens". */
        zfd = open(img, O_RDWR);
        assert_int_equal(pwrite(zfd, zero, sizeof(zero), (off_t) off), (ssize_t) sizeof(zero));
        close(zfd);
        f = fopen(side, "w");
        fputs("{\"tokens\": {\"0\": ", f);
        fclose(f);
        assert_int_equal(count_tokens(cd, img), -EBADMSG);
        unlink(side);
}

/* A LUKS1 header with no gap between its keyslots and its data has no room for the
 * area: a token is refused (-ENOSPC), and nothing is written beside it. */
static void test_luks1_no_room(void **state) {
        (void) state;
        char dir[] = "/tmp/test-token.XXXXXX";
        assert_non_null(mkdtemp(dir));
        char img[128], side[160];
        snprintf(img, sizeof(img), "%s/disk.img", dir);
        snprintf(side, sizeof(side), "%s%s", img, TOKEN_SIDECAR_SUFFIX);
        int fd = open(img, O_RDWR | O_CREAT | O_TRUNC, 0600);
        assert_int_equal(ftruncate(fd, 8 << 20), 0);
        close(fd);
        struct crypt_device *cd = NULL;
        assert_int_equal(crypt_init(&cd, img), 0);
        struct crypt_pbkdf_type pbkdf = { .type = CRYPT_KDF_PBKDF2, .hash = "sha256", .iterations = 1000,
                                          .flags = CRYPT_PBKDF_NO_BENCHMARK };
        assert_int_equal(crypt_set_pbkdf_type(cd, &pbkdf), 0);
        /* Keyslot material of a 512-bit key ends at sector 4040. */
        assert_int_equal(crypt_set_data_offset(cd, 4040), 0);
        assert_int_equal(crypt_format(cd, CRYPT_LUKS1, "aes", "xts-plain64", NULL, NULL, 64, NULL), 0);
        assert_true(crypt_keyslot_add_by_volume_key(cd, CRYPT_ANY_SLOT, NULL, 0, "pw", 2) >= 0);
        uint64_t off;
        assert_int_equal(luks1_meta_locate(cd, &off), -ENOSPC);
        assert_int_equal(token_store_can_add(cd, img), -ENOSPC);
        _cleanup_(token_freep) struct vmcrypt_token *t = sample();
        t->keyslot = 0;
        assert_int_equal(token_store_add(cd, img, t), -ENOSPC);
        assert_int_not_equal(access(side, F_OK), 0);
        assert_int_equal(count_tokens(cd, img), 0);
        crypt_free(cd);
        unlink(img);
        rmdir(dir);
}

static void store_cycle(const char *type) {
        char dir[] = "/tmp/test-token.XXXXXX";
        assert_non_null(mkdtemp(dir));
        char img[128];
        snprintf(img, sizeof(img), "%s/disk.img", dir);
        struct crypt_device *cd = make_volume(img, type);
        _cleanup_(token_freep) struct vmcrypt_token *t = sample();
        t->keyslot = 0;
        int id1 = token_store_add(cd, img, t);
        assert_true(id1 >= 0);
        free(t->kek_id);
        t->kek_id = strdup("43");
        int id2 = token_store_add(cd, img, t);
        assert_true(id2 >= 0 && id2 != id1);

        /* Reload from disk: what was stored survives. */
        crypt_free(cd);
        assert_int_equal(crypt_init(&cd, img), 0);
        assert_int_equal(crypt_load(cd, NULL, NULL), 0);
        struct token_list *l = NULL;
        assert_int_equal(token_store_list(cd, img, &l), 0);
        assert_int_equal(l->n, 2);
        assert_string_equal(l->e[0].tok->kek_id, "42");
        assert_string_equal(l->e[1].tok->kek_id, "43");
        token_list_free(l);

        assert_int_equal(token_store_remove(cd, img, id1), 0);
        assert_int_equal(token_store_remove(cd, img, id1), -ENOENT);
        assert_int_equal(token_store_list(cd, img, &l), 0);
        assert_int_equal(l->n, 1);
        assert_int_equal(l->e[0].id, id2);
        token_list_free(l);

        /* The rotation marker: set, read back after a reload, cleared; it is not a
         * vmcrypt token and does not show up in the list. */
        int from = -1, to = -1;
        assert_int_equal(token_store_get_pending(cd, img, &from, &to), -ENOENT);
        assert_int_equal(token_store_set_pending(cd, img, 0, 5), 0);
        assert_int_equal(token_store_set_pending(cd, img, 0, 6), 0);
        crypt_free(cd);
        assert_int_equal(crypt_init(&cd, img), 0);
        assert_int_equal(crypt_load(cd, NULL, NULL), 0);
        assert_int_equal(token_store_get_pending(cd, img, &from, &to), 0);
        assert_int_equal(from, 0);
        assert_int_equal(to, 6);
        assert_int_equal(token_store_list(cd, img, &l), 0);
        assert_int_equal(l->n, 1);
        token_list_free(l);
        assert_int_equal(token_store_clear_pending(cd, img), 0);
        assert_int_equal(token_store_clear_pending(cd, img), 0);
        assert_int_equal(token_store_get_pending(cd, img, &from, &to), -ENOENT);
        assert_int_equal(token_store_set_pending(cd, img, 0, 32), -EINVAL);

        char side[160];
        snprintf(side, sizeof(side), "%s%s", img, TOKEN_SIDECAR_SUFFIX);
        if (strcmp(type, CRYPT_LUKS1) == 0) {
                /* Everything went into the header: no sidecar. */
                assert_int_not_equal(access(side, F_OK), 0);
                luks1_area_checks(cd, img, side);
        } else {
                assert_int_not_equal(access(side, F_OK), 0);
                /* A damaged token in the header is reported, with the others intact. */
                int bad = crypt_token_json_set(cd, CRYPT_ANY_TOKEN,
                                               "{\"type\":\"vmcrypt\",\"keyslots\":[\"0\"],\"wrapped\":\"%%\"}");
                assert_true(bad >= 0);
                assert_int_equal(token_store_list(cd, img, &l), 0);
                assert_int_equal(l->n, 2);
                for (size_t i = 0; i < l->n; i++)
                        if (l->e[i].id == bad) {
                                assert_int_equal(l->e[i].error, -EBADMSG);
                                assert_null(l->e[i].tok);
                        } else
                                assert_non_null(l->e[i].tok);
                token_list_free(l);
        }
        crypt_free(cd);
        unlink(img);
        rmdir(dir);
}

static void test_store_luks2(void **state) {
        (void) state;
        store_cycle(CRYPT_LUKS2);
}

static void test_store_luks1(void **state) {
        (void) state;
        store_cycle(CRYPT_LUKS1);
}

int main(void) {
        crypt_set_log_callback(NULL, NULL, NULL);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_roundtrip),
                cmocka_unit_test(test_damaged),
                cmocka_unit_test(test_store_luks2),
                cmocka_unit_test(test_store_luks1),
                cmocka_unit_test(test_luks1_no_room),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
