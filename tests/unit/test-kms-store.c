/* Unit tests of the KMS object store: round trips, listing, sealing at rest and
 * master key rotation, on a real SQLite file in a temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kms/object.h"
#include "kms/seal.h"
#include "kms/store.h"
#include "shared/secret.h"

static char dir[] = "/tmp/test-kms-store-XXXXXX";
static char dbpath[256];

static struct secret *key_of(uint8_t fill) {
        struct secret *k = secret_new(32);
        memset(k->data, fill, 32);
        return k;
}

static struct kms_object *make_object(const char *id, const char *owner, uint8_t keyfill) {
        struct kms_object *o = kms_object_new();
        snprintf(o->id, sizeof(o->id), "%s", id);
        snprintf(o->owner, sizeof(o->owner), "%s", owner);
        o->object_type = KMS_OBJ_SYMMETRIC_KEY;
        o->state = KMS_STATE_PRE_ACTIVE;
        o->key = key_of(keyfill);
        assert_int_equal(kms_object_set_int(o, "Cryptographic Length", KMS_T_INTEGER, 256), 0);
        assert_int_equal(kms_object_set_text(o, "x-Vendor", "VMware, Inc."), 0);
        /* Name { Name Value "n-<id>", Name Type 1 } as TTLV children. */
        uint8_t name[64] = { 0x42, 0x00, 0x55, 0x07 };
        size_t n = strlen(id) + 2;
        name[7] = (uint8_t) n;
        memcpy(name + 8, "n-", 2);
        memcpy(name + 10, id, strlen(id));
        size_t off = 8 + ALIGN_UP(n, 8);
        const uint8_t nt[] = { 0x42, 0x00, 0x54, 0x05, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0 };
        memcpy(name + off, nt, sizeof(nt));
        assert_int_equal(kms_object_set(o, "Name", 0, KMS_T_STRUCTURE, name, off + sizeof(nt)), 0);
        return o;
}

static int setup(void **state) {
        (void) state;
        assert_non_null(mkdtemp(dir));
        snprintf(dbpath, sizeof(dbpath), "%s/kms.db", dir);
        return 0;
}

static int teardown(void **state) {
        (void) state;
        char cmd[512];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        return system(cmd);
}

static void test_roundtrip_and_list(void **state) {
        (void) state;
        _cleanup_(secret_freep) struct secret *mk = key_of(0x11);
        struct master_source m = { .key = mk };
        struct store *s = NULL;
        assert_int_equal(store_sqlite_open(dbpath, &m, &s), 0);

        for (int i = 0; i < 5; i++) {
                char id[16];
                snprintf(id, sizeof(id), "id-%d", i);
                _cleanup_(kms_object_freep) struct kms_object *o = make_object(id, i < 3 ? "alice" : "bob", (uint8_t) (0xA0 + i));
                assert_int_equal(store_put(s, o), 0);
        }
        struct kms_object *o = NULL;
        assert_int_equal(store_get(s, "id-1", &o), 0);
        assert_string_equal(o->owner, "alice");
        assert_int_equal(o->state, KMS_STATE_PRE_ACTIVE);
        assert_int_equal(o->key->size, 32);
        assert_int_equal(o->key->data[0], 0xA1);
        int64_t len;
        assert_int_equal(kms_object_get_int(o, "Cryptographic Length", &len), 0);
        assert_int_equal(len, 256);
        const struct kms_attr *a = kms_object_find(o, "x-Vendor", 0);
        assert_non_null(a);
        assert_memory_equal(a->value, "VMware, Inc.", 12);

        /* Update in place: state change is persisted. */
        o->state = KMS_STATE_ACTIVE;
        assert_int_equal(store_put(s, o), 0);
        kms_object_free(o);
        o = NULL;
        assert_int_equal(store_get(s, "id-1", &o), 0);
        assert_int_equal(o->state, KMS_STATE_ACTIVE);
        kms_object_free(o);

        assert_int_equal(store_get(s, "nope", &o), -ENOENT);
        /* Metadata only: same attributes, no key material unsealed. */
        assert_int_equal(store_get_meta(s, "id-2", &o), 0);
        assert_null(o->key);
        assert_non_null(kms_object_find(o, "x-Vendor", 0));
        kms_object_free(o);

        store_id *ids = NULL;
        size_t n = 0;
        assert_int_equal(store_list(s, &(struct store_filter) { .owner = "alice" }, &ids, &n), 0);
        assert_int_equal(n, 3);
        assert_string_equal(ids[0], "id-0");
        free(ids);
        assert_int_equal(store_list(s, &(struct store_filter) { .owner = "alice", .state = KMS_STATE_ACTIVE }, &ids, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(ids[0], "id-1");
        free(ids);
        assert_int_equal(store_list(s, &(struct store_filter) { .name = "n-id-4" }, &ids, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(ids[0], "id-4");
        free(ids);
        uint64_t count;
        assert_int_equal(store_count(s, &count), 0);
        assert_int_equal(count, 5);
        store_free(s);
}

/* The key bytes must not be found anywhere in the database file. */
static void test_sealed_at_rest(void **state) {
        (void) state;
        FILE *f = fopen(dbpath, "rb");
        assert_non_null(f);
        static uint8_t buf[1 << 20];
        size_t n = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        assert_true(n > 0);
        uint8_t key[32];
        memset(key, 0xA1, sizeof(key));
        assert_null(memmem(buf, n, key, sizeof(key)));
        /* While the attributes are there in clear (they are metadata, not secrets). */
        assert_non_null(memmem(buf, n, "n-id-1", 6));

        /* And the sealed column really is ciphertext of the right size. */
        sqlite3 *db;
        assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
        sqlite3_stmt *st;
        assert_int_equal(sqlite3_prepare_v2(db, "SELECT sealed FROM objects WHERE id='id-1'", -1, &st, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_int_equal(sqlite3_column_bytes(st, 0), 32 + SEAL_OVERHEAD);
        assert_null(memmem(sqlite3_column_blob(st, 0), 32 + SEAL_OVERHEAD, key, 16));
        sqlite3_finalize(st);
        sqlite3_close(db);
}

static void test_wrong_master_rejected(void **state) {
        (void) state;
        _cleanup_(secret_freep) struct secret *bad = key_of(0x22);
        struct store *s = NULL;
        assert_int_equal(store_sqlite_open(dbpath, &(struct master_source) { .key = bad }, &s), -EKEYREJECTED);
        _cleanup_(secret_freep) struct secret *pass = secret_new_copy("pw", 2);
        assert_int_equal(store_sqlite_open(dbpath, &(struct master_source) { .passphrase = pass }, &s), -EKEYREJECTED);
}

static void test_rotate(void **state) {
        (void) state;
        _cleanup_(secret_freep) struct secret *mk = key_of(0x11);
        _cleanup_(secret_freep) struct secret *pass = secret_new_copy("correct horse", 13);
        struct store *s = NULL;
        assert_int_equal(store_sqlite_open(dbpath, &(struct master_source) { .key = mk }, &s), 0);
        assert_int_equal(store_rotate(s, &(struct master_source) { .passphrase = pass }), 0);
        store_free(s);

        /* Old key no longer opens the store; the passphrase does, and keys are intact. */
        assert_int_equal(store_sqlite_open(dbpath, &(struct master_source) { .key = mk }, &s), -EKEYREJECTED);
        assert_int_equal(store_sqlite_open(dbpath, &(struct master_source) { .passphrase = pass }, &s), 0);
        for (int i = 0; i < 5; i++) {
                char id[16];
                snprintf(id, sizeof(id), "id-%d", i);
                struct kms_object *o = NULL;
                assert_int_equal(store_get(s, id, &o), 0);
                assert_int_equal(o->key->data[31], 0xA0 + i);
                kms_object_free(o);
        }
        /* And back to a key file. */
        _cleanup_(secret_freep) struct secret *mk2 = key_of(0x33);
        assert_int_equal(store_rotate(s, &(struct master_source) { .key = mk2 }), 0);
        store_free(s);
        assert_int_equal(store_sqlite_open(dbpath, &(struct master_source) { .key = mk2 }, &s), 0);
        struct kms_object *o = NULL;
        assert_int_equal(store_get(s, "id-3", &o), 0);
        assert_int_equal(o->key->data[0], 0xA3);
        kms_object_free(o);
        store_free(s);
}

static void test_seal_binds_id(void **state) {
        (void) state;
        _cleanup_(secret_freep) struct secret *mk = key_of(0x44);
        _cleanup_(secret_freep) struct secret *k = key_of(0x55);
        _cleanup_(freep) uint8_t *blob = NULL;
        size_t n;
        assert_int_equal(seal_encrypt(mk, "a", k, &blob, &n), 0);
        struct secret *out = NULL;
        assert_int_equal(seal_decrypt(mk, "b", blob, n, &out), -EBADMSG);
        assert_int_equal(seal_decrypt(mk, "a", blob, n, &out), 0);
        assert_true(secret_equal(out, k));
        secret_free(out);
        blob[n - 1] ^= 1;
        assert_int_equal(seal_decrypt(mk, "a", blob, n, &out), -EBADMSG);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_roundtrip_and_list),
                cmocka_unit_test(test_sealed_at_rest),
                cmocka_unit_test(test_wrong_master_rejected),
                cmocka_unit_test(test_rotate),
                cmocka_unit_test(test_seal_binds_id),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
