/* Unit tests of the KMS object store: round trips, listing, sealing at rest and
 * master key rotation, on a real SQLite file in a temporary directory; its read cache
 * (never a row that is not committed, never a stale one), alone and under load. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kms/object.h"
#include "kms/seal.h"
#include "kms/store-cache.h"
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

static void exec_sql(const char *path, const char *sql) {
        sqlite3 *db;
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
}

/* The passphrase's scrypt cost is recorded with the store: new stores get today's
 * cost, stores from before costs were recorded open with the old one (and say so),
 * and a recorded cost that is malformed or too expensive is refused. */
static void test_kdf_versions(void **state) {
        (void) state;
        char path[300];
        snprintf(path, sizeof(path), "%s/kdf.db", dir);
        _cleanup_(secret_freep) struct secret *pass = secret_new_copy("correct horse battery", 21);
        bool weak = true;
        struct store *s = NULL;
        assert_int_equal(store_sqlite_open(path, &(struct master_source) { .passphrase = pass }, &s), 0);
        store_free(s);
        sqlite3 *db;
        sqlite3_stmt *st;
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, "SELECT v FROM meta WHERE k = 'kdf'", -1, &st, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_string_equal((const char *) sqlite3_column_blob(st, 0), "scrypt:17:8:1");
        sqlite3_finalize(st);
        sqlite3_close(db);
        assert_int_equal(store_sqlite_open(path, &(struct master_source) { .passphrase = pass, .ret_weak_kdf = &weak },
                                           &s), 0);
        assert_false(weak);
        store_free(s);

        /* A store as the earlier version made it: the key is scrypt N=2^15 of the
         * passphrase and the salt, and no cost is recorded. */
        char legacy[300];
        snprintf(legacy, sizeof(legacy), "%s/legacy.db", dir);
        static const uint8_t salt[SEAL_SALT_SIZE] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
        _cleanup_(secret_freep) struct secret *k = NULL;
        assert_int_equal(seal_key_from_passphrase(pass, salt, &SEAL_KDF_LEGACY, &k), 0);
        assert_int_equal(store_sqlite_open(legacy, &(struct master_source) { .key = k }, &s), 0);
        struct kms_object *o = make_object("id-legacy", "alice", 0x5A);
        assert_int_equal(store_put(s, o), 0);
        kms_object_free(o);
        store_free(s);
        exec_sql(legacy, "INSERT INTO meta (k, v) VALUES ('kdf-salt', X'0102030405060708090a0b0c0d0e0f10')");
        assert_int_equal(store_sqlite_open(legacy, &(struct master_source) { .passphrase = pass, .ret_weak_kdf = &weak },
                                           &s), 0);
        assert_true(weak);
        assert_int_equal(store_get(s, "id-legacy", &o), 0);
        assert_int_equal(o->key->data[0], 0x5A);
        kms_object_free(o);
        /* Rotating to a passphrase records today's cost. */
        assert_int_equal(store_rotate(s, &(struct master_source) { .passphrase = pass }), 0);
        store_free(s);
        assert_int_equal(store_sqlite_open(legacy, &(struct master_source) { .passphrase = pass, .ret_weak_kdf = &weak },
                                           &s), 0);
        assert_false(weak);
        store_free(s);

        /* A doctored cost: 2^40 would be 128 TiB of memory; garbage is garbage. */
        exec_sql(legacy, "UPDATE meta SET v = CAST('scrypt:40:8:1' AS BLOB) WHERE k = 'kdf'");
        assert_int_equal(store_sqlite_open(legacy, &(struct master_source) { .passphrase = pass }, &s), -EUCLEAN);
        exec_sql(legacy, "UPDATE meta SET v = CAST('argon2:1' AS BLOB) WHERE k = 'kdf'");
        assert_int_equal(store_sqlite_open(legacy, &(struct master_source) { .passphrase = pass }, &s), -EUCLEAN);

        struct seal_kdf kdf;
        assert_int_equal(seal_kdf_parse("scrypt:17:8:1", 13, &kdf), 0);
        assert_int_equal(kdf.log2_n, 17);
        assert_int_equal(seal_kdf_parse("scrypt:14:8:1", 13, &kdf), -EINVAL); /* below the legacy cost */
        assert_int_equal(seal_kdf_parse("scrypt:17:8:1x", 14, &kdf), -EINVAL);
        assert_int_equal(seal_kdf_parse("scrypt:17:8:1\0", 14, &kdf), -EINVAL);
        assert_int_equal(seal_kdf_parse("scrypt:23:8:1", 13, &kdf), -EINVAL); /* 8 GiB */
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

/* ---- the read cache ---- */

/* A fresh database file per test, so the tests above keep theirs. */
static const char *cache_db(const char *name) {
        static char path[300];
        snprintf(path, sizeof(path), "%s/%s.db", dir, name);
        return path;
}

/* Object id at version v: its state, an x-Version attribute and its key all say v. */
static struct kms_object *make_version(const char *id, const char *owner, int64_t v) {
        struct kms_object *o = make_object(id, owner, (uint8_t) v);
        o->state = v % 2 ? KMS_STATE_PRE_ACTIVE : KMS_STATE_ACTIVE;
        assert_int_equal(kms_object_set_int(o, "x-Version", KMS_T_INTEGER, v), 0);
        return o;
}

/* The version a read object says, after checking its parts agree; -1 if they do not. */
static int64_t version_of(const struct kms_object *o, bool with_key) {
        int64_t v;
        if (kms_object_get_int(o, "x-Version", &v) < 0)
                return -1;
        if (o->state != (uint32_t) (v % 2 ? KMS_STATE_PRE_ACTIVE : KMS_STATE_ACTIVE))
                return -1;
        if (with_key && (!o->key || o->key->size != 32 || o->key->data[0] != (uint8_t) v ||
                         o->key->data[31] != (uint8_t) v))
                return -1;
        if (!with_key && o->key)
                return -1;
        return v;
}

static int64_t get_version(struct store *s, const char *id) {
        _cleanup_(kms_object_freep) struct kms_object *o = NULL;
        int r = store_get(s, id, &o);
        if (r < 0)
                return r;
        return version_of(o, true);
}

static void put_version(struct store *s, const char *id, const char *owner, int64_t v) {
        _cleanup_(kms_object_freep) struct kms_object *o = make_version(id, owner, v);
        assert_int_equal(store_put(s, o), 0);
}

/* store_put_async's completion, for a test to wait on. */
struct waiter {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        unsigned n_done, n_failed;
};

static void waiter_done(int r, void *userdata) {
        struct waiter *w = userdata;
        pthread_mutex_lock(&w->lock);
        w->n_done++;
        if (r < 0)
                w->n_failed++;
        pthread_cond_broadcast(&w->cond);
        pthread_mutex_unlock(&w->lock);
}

static void waiter_wait(struct waiter *w, unsigned n) {
        pthread_mutex_lock(&w->lock);
        while (w->n_done < n)
                pthread_cond_wait(&w->cond, &w->lock);
        pthread_mutex_unlock(&w->lock);
}

static void put_version_async(struct store *s, const char *id, const char *owner, int64_t v, struct waiter *w) {
        _cleanup_(kms_object_freep) struct kms_object *o = make_version(id, owner, v);
        assert_int_equal(store_put_async(s, o, waiter_done, w), 0);
}

/* What the database file itself holds for id, read past the store: its state. */
static int64_t disk_state(const char *path, const char *id) {
        sqlite3 *db;
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        sqlite3_stmt *st;
        assert_int_equal(sqlite3_prepare_v2(db, "SELECT state FROM objects WHERE id = ?", -1, &st, NULL), SQLITE_OK);
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        int64_t v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
        sqlite3_finalize(st);
        sqlite3_close(db);
        return v;
}

static void sql(const char *path, const char *q) {
        sqlite3 *db;
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        sqlite3_busy_timeout(db, 10000);
        char *err = NULL;
        if (sqlite3_exec(db, q, NULL, NULL, &err) != SQLITE_OK)
                fail_msg("%s: %s", q, err);
        sqlite3_close(db);
}

/* Get after put sees the new version, however the entry got there (the committer
 * after a put, or a reader's fill), for get and get_meta alike. */
static void test_cache_put_then_get(void **state) {
        (void) state;
        _cleanup_(secret_freep) struct secret *mk = key_of(0x11);
        struct store *s = NULL;
        assert_int_equal(store_sqlite_open(cache_db("put-get"), &(struct master_source) { .key = mk }, &s), 0);
        for (int64_t v = 1; v <= 5; v++) {
                put_version(s, "x", "alice", v);
                assert_int_equal(get_version(s, "x"), v);
                assert_int_equal(get_version(s, "x"), v);
                struct kms_object *o = NULL;
                assert_int_equal(store_get_meta(s, "x", &o), 0);
                assert_int_equal(version_of(o, false), v);
                kms_object_free(o);
        }
        /* Attributes removed by a put are gone from what a get returns. */
        _cleanup_(kms_object_freep) struct kms_object *o = make_version("x", "bob", 6);
        assert_int_equal(kms_object_remove(o, "x-Vendor", 0), 0);
        secret_free(o->key); /* as Destroy does: no key material any more */
        o->key = NULL;
        assert_int_equal(store_put(s, o), 0);
        kms_object_free(o);
        o = NULL;
        assert_int_equal(store_get(s, "x", &o), 0);
        assert_string_equal(o->owner, "bob");
        assert_null(o->key);
        assert_null(kms_object_find(o, "x-Vendor", 0));
        store_free(s);

        /* A store that starts with rows on disk fills from them. */
        assert_int_equal(store_sqlite_open(cache_db("put-get"), &(struct master_source) { .key = mk }, &s), 0);
        kms_object_free(o);
        o = NULL;
        assert_int_equal(store_get(s, "x", &o), 0);
        assert_string_equal(o->owner, "bob");
        put_version(s, "x", "carol", 7);
        assert_int_equal(get_version(s, "x"), 7);
        store_free(s);
}

/* The cache really answers: a row changed behind the store's back (which nothing
 * but this test does) is not seen while the entry stands. Without this, every other
 * test here would pass with no cache at all. */
static void test_cache_serves_hits(void **state) {
        (void) state;
        _cleanup_(secret_freep) struct secret *mk = key_of(0x11);
        struct store *s = NULL;
        const char *path = cache_db("hits");
        assert_int_equal(store_sqlite_open(path, &(struct master_source) { .key = mk }, &s), 0);
        put_version(s, "x", "alice", 2);
        assert_int_equal(get_version(s, "x"), 2);
        sql(path, "UPDATE objects SET state = 5 WHERE id = 'x'");
        assert_int_equal(disk_state(path, "x"), 5);
        assert_int_equal(get_version(s, "x"), 2);
        store_free(s);
        /* Without a cache the same read sees the change. */
        assert_int_equal(store_sqlite_open_cache(path, &(struct master_source) { .key = mk }, 0, &s), 0);
        assert_int_equal(get_version(s, "x"), -1);
        store_free(s);
}

static void test_cache_async(void **state) {
        (void) state;
        _cleanup_(secret_freep) struct secret *mk = key_of(0x11);
        struct store *s = NULL;
        assert_int_equal(store_sqlite_open(cache_db("async"), &(struct master_source) { .key = mk }, &s), 0);
        struct waiter w = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
        put_version_async(s, "a", "alice", 1, &w);
        waiter_wait(&w, 1);
        assert_int_equal(get_version(s, "a"), 1);
        /* Back to back: both may share one group; the later one is what is on disk. */
        unsigned n = 1;
        for (int64_t v = 2; v < 40; v += 2) {
                put_version_async(s, "a", "alice", v, &w);
                put_version_async(s, "a", "alice", v + 1, &w);
                n += 2;
                waiter_wait(&w, n);
                assert_int_equal(get_version(s, "a"), v + 1);
        }
        assert_int_equal(w.n_failed, 0);
        store_free(s);
}

static void test_cache_absent(void **state) {
        (void) state;
        _cleanup_(secret_freep) struct secret *mk = key_of(0x11);
        struct store *s = NULL;
        assert_int_equal(store_sqlite_open(cache_db("absent"), &(struct master_source) { .key = mk }, &s), 0);
        struct kms_object *o = NULL;
        assert_int_equal(store_get(s, "never", &o), -ENOENT);
        for (int i = 0; i < 200; i++) {
                char id[16];
                snprintf(id, sizeof(id), "other-%d", i);
                put_version(s, id, "alice", i);
                assert_int_equal(store_get(s, "never", &o), -ENOENT);
                assert_int_equal(store_get_meta(s, "never", &o), -ENOENT);
        }
        /* And a miss is not remembered: once put, it is there. */
        put_version(s, "never", "alice", 3);
        assert_int_equal(get_version(s, "never"), 3);
        store_free(s);
}

/* Far more objects than the cache holds (64 rows, one per shard) all read back
 * right, however entries are evicted and refilled, and after updates. */
static void test_cache_capacity(void **state) {
        (void) state;
        _cleanup_(secret_freep) struct secret *mk = key_of(0x11);
        struct store *s = NULL;
        assert_int_equal(store_sqlite_open_cache(cache_db("capacity"), &(struct master_source) { .key = mk }, 64, &s), 0);
        enum { N = 1000 };
        struct waiter w = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
        for (int i = 0; i < N; i++) {
                char id[16];
                snprintf(id, sizeof(id), "k-%d", i);
                put_version_async(s, id, "alice", i, &w);
        }
        waiter_wait(&w, N);
        assert_int_equal(w.n_failed, 0);
        unsigned seed = 1;
        for (int pass = 0; pass < 3; pass++)
                for (int j = 0; j < N; j++) {
                        int i = pass == 1 ? (int) (rand_r(&seed) % N) : pass == 0 ? j : N - 1 - j;
                        char id[16];
                        snprintf(id, sizeof(id), "k-%d", i);
                        assert_int_equal(get_version(s, id), i);
                }
        for (int i = 0; i < N; i += 3) {
                char id[16];
                snprintf(id, sizeof(id), "k-%d", i);
                put_version(s, id, "alice", i + 1000);
        }
        for (int i = 0; i < N; i++) {
                char id[16];
                snprintf(id, sizeof(id), "k-%d", i);
                assert_int_equal(get_version(s, id), i % 3 == 0 ? i + 1000 : i);
        }
        store_free(s);
}

/* After a rotation, keys sealed under the old master key are not served from the
 * cache: every get unseals with the new one. */
static void test_cache_rotate(void **state) {
        (void) state;
        _cleanup_(secret_freep) struct secret *mk = key_of(0x11);
        _cleanup_(secret_freep) struct secret *mk2 = key_of(0x66);
        struct store *s = NULL;
        const char *path = cache_db("rotate");
        assert_int_equal(store_sqlite_open(path, &(struct master_source) { .key = mk }, &s), 0);
        for (int i = 0; i < 20; i++) {
                char id[16];
                snprintf(id, sizeof(id), "r-%d", i);
                put_version(s, id, "alice", i);
                assert_int_equal(get_version(s, id), i);
        }
        assert_int_equal(store_rotate(s, &(struct master_source) { .key = mk2 }), 0);
        for (int i = 0; i < 20; i++) {
                char id[16];
                snprintf(id, sizeof(id), "r-%d", i);
                assert_int_equal(get_version(s, id), i);
                assert_int_equal(get_version(s, id), i);
        }
        put_version(s, "r-3", "alice", 33);
        assert_int_equal(get_version(s, "r-3"), 33);
        store_free(s);
        assert_int_equal(store_sqlite_open(path, &(struct master_source) { .key = mk2 }, &s), 0);
        assert_int_equal(get_version(s, "r-3"), 33);
        assert_int_equal(get_version(s, "r-4"), 4);
        store_free(s);
}

/* A row that fails to commit never enters the cache, and the entry its id had (the
 * row still on disk) stays right. */
static void test_cache_failed_put(void **state) {
        (void) state;
        _cleanup_(secret_freep) struct secret *mk = key_of(0x11);
        struct store *s = NULL;
        const char *path = cache_db("failed");
        assert_int_equal(store_sqlite_open(path, &(struct master_source) { .key = mk }, &s), 0);
        put_version(s, "x", "alice", 1);
        assert_int_equal(get_version(s, "x"), 1);
        put_version(s, "y", "alice", 1); /* y's entry is made by the put, never read */
        sql(path, "CREATE TRIGGER doom_insert BEFORE INSERT ON objects WHEN NEW.owner = 'doomed' "
                  "BEGIN SELECT RAISE(ABORT, 'x'); END;"
                  "CREATE TRIGGER doom_update BEFORE UPDATE ON objects WHEN NEW.owner = 'doomed' "
                  "BEGIN SELECT RAISE(ABORT, 'x'); END;");

        _cleanup_(kms_object_freep) struct kms_object *o = make_version("x", "doomed", 2);
        assert_true(store_put(s, o) < 0);
        assert_int_equal(get_version(s, "x"), 1);
        kms_object_free(o);
        o = make_version("new", "doomed", 2);
        assert_true(store_put(s, o) < 0);
        struct kms_object *got = NULL;
        assert_int_equal(store_get(s, "new", &got), -ENOENT);

        /* Failing and succeeding rows of one id back to back (likely one group), in
         * both orders: the one that committed is what a get sees. */
        struct waiter w = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
        unsigned n = 0;
        for (int64_t v = 10; v < 30; v += 2) {
                put_version_async(s, "x", "doomed", v - 1, &w);
                put_version_async(s, "y", "doomed", v - 1, &w);
                put_version_async(s, "x", "alice", v, &w);
                put_version_async(s, "x", "doomed", v + 1, &w);
                put_version_async(s, "new", "doomed", v, &w);
                n += 5;
                waiter_wait(&w, n);
                assert_int_equal(w.n_failed, n / 5 * 4);
                assert_int_equal(get_version(s, "x"), v);
                assert_int_equal(get_version(s, "y"), 1);
                assert_int_equal(store_get(s, "new", &got), -ENOENT);
                assert_int_equal(disk_state(path, "x"), KMS_STATE_ACTIVE);
        }
        sql(path, "DROP TRIGGER doom_insert; DROP TRIGGER doom_update;");
        put_version(s, "x", "alice", 31);
        assert_int_equal(get_version(s, "x"), 31);
        store_free(s);
}

/* The cache's own rules, step by step, where a store could only hit them by chance:
 * a fill whose read may have raced with a write is dropped. */
static void test_cache_fill_rules(void **state) {
        (void) state;
        struct store_cache *c = NULL;
        assert_int_equal(store_cache_new(128, &c), 0);
        assert_int_equal(store_cache_capacity(c), 128);
        struct store_row v1 = { .owner = "o", .object_type = 2, .state = 1, .attrs = (const uint8_t *) "a1", .attrs_len = 2 };
        struct store_row v2 = { .owner = "o", .object_type = 2, .state = 2, .attrs = (const uint8_t *) "a2", .attrs_len = 2,
                                .sealed = (const uint8_t *) "sealed", .sealed_len = 6 };
        _cleanup_(store_cache_row_unrefp) struct store_cache_row *r1 = store_cache_row_new("x", &v1);
        _cleanup_(store_cache_row_unrefp) struct store_cache_row *r2 = store_cache_row_new("x", &v2);
        assert_non_null(r1);
        assert_non_null(r2);
        assert_null(r1->v.sealed);
        assert_memory_equal(r2->v.sealed, "sealed", 6);
        struct store_cache_ticket t, t2;
        struct store_cache_row *hit;

        /* A write began and ended between the miss and the fill: the fill (v1, read
         * before the write's COMMIT) is dropped, the write's row stays. */
        assert_null(store_cache_get(c, "x", &t));
        assert_true(t.valid);
        assert_null(store_cache_begin_write(c, "x"));
        store_cache_end_write(c, "x", r2);
        store_cache_fill(c, &t, r1);
        hit = store_cache_get(c, "x", &t);
        assert_ptr_equal(hit, r2);
        store_cache_row_unref(hit);

        /* The write's entry is what begin hands back; without an end row the id
         * stays empty, and a miss during an open write may not fill even after it. */
        hit = store_cache_begin_write(c, "x");
        assert_ptr_equal(hit, r2);
        store_cache_row_unref(hit);
        assert_null(store_cache_get(c, "x", &t));
        assert_false(t.valid);
        store_cache_end_write(c, "x", NULL);
        store_cache_fill(c, &t, r1);
        assert_null(store_cache_get(c, "x", &t));
        assert_true(t.valid);

        /* A write of another id in the same shard counts too (the ticket cannot tell
         * ids apart), and so does a rotation's write of everything. */
        char other[16];
        for (int i = 0;; i++) {
                snprintf(other, sizeof(other), "o-%d", i);
                assert_null(store_cache_get(c, other, &t2));
                if (t2.shard == t.shard)
                        break;
        }
        assert_null(store_cache_begin_write(c, other));
        store_cache_end_write(c, other, NULL);
        store_cache_fill(c, &t, r1);
        assert_null(store_cache_get(c, "x", &t));
        store_cache_begin_write_all(c);
        store_cache_end_write_all(c);
        store_cache_fill(c, &t, r1);
        assert_null(store_cache_get(c, "x", &t));

        /* A clean fill goes in; a second fill does not replace it. */
        store_cache_fill(c, &t, r1);
        assert_null(store_cache_get(c, "y", &t2));
        hit = store_cache_get(c, "x", &t2);
        assert_ptr_equal(hit, r1);
        store_cache_row_unref(hit);
        store_cache_fill(c, &t, r2);
        hit = store_cache_get(c, "x", &t2);
        assert_ptr_equal(hit, r1);
        store_cache_row_unref(hit);

        /* Rotation empties everything. */
        store_cache_begin_write_all(c);
        assert_null(store_cache_get(c, "x", &t));
        assert_false(t.valid);
        store_cache_end_write_all(c);
        assert_null(store_cache_get(c, "x", &t));
        assert_true(t.valid);
        store_cache_free(c);

        /* No cache: nothing is kept, nothing fails. */
        assert_int_equal(store_cache_new(0, &c), 0);
        assert_null(c);
        assert_null(store_cache_get(c, "x", &t));
        store_cache_fill(c, &t, r1);
        assert_null(store_cache_begin_write(c, "x"));
        store_cache_end_write(c, "x", r1);
        assert_null(store_cache_get(c, "x", &t));
}

/* Bounded: however many ids go in, at most the capacity stays, and entries hit
 * since the CLOCK hand last passed survive an eviction round. */
static void test_cache_eviction(void **state) {
        (void) state;
        struct store_cache *c = NULL;
        assert_int_equal(store_cache_new(64 * 4, &c), 0);
        struct store_row v = { .owner = "o", .attrs = (const uint8_t *) "", .attrs_len = 0 };
        enum { N = 5000 };
        char id[16];
        for (int i = 0; i < N; i++) {
                snprintf(id, sizeof(id), "e-%d", i);
                struct store_cache_ticket t;
                assert_null(store_cache_get(c, id, &t));
                _cleanup_(store_cache_row_unrefp) struct store_cache_row *row = store_cache_row_new(id, &v);
                store_cache_fill(c, &t, row);
                /* Hit "e-0" often: it must never be evicted. */
                struct store_cache_row *hit = store_cache_get(c, "e-0", &t);
                assert_non_null(hit);
                store_cache_row_unref(hit);
        }
        size_t present = 0;
        for (int i = 0; i < N; i++) {
                snprintf(id, sizeof(id), "e-%d", i);
                struct store_cache_ticket t;
                struct store_cache_row *hit = store_cache_get(c, id, &t);
                if (hit) {
                        assert_string_equal(hit->id, id);
                        present++;
                }
                store_cache_row_unref(hit);
        }
        assert_true(present <= store_cache_capacity(c));
        assert_true(present >= store_cache_capacity(c) / 2);
        store_cache_free(c);
}

/* Readers never see an id go back to an older version while writers keep putting
 * new ones (sync and async, several ids per group), and at the end every id reads
 * its last version; with the default cache and with a tiny one that evicts. */
enum { CC_IDS = 48, CC_READERS = 6, CC_WRITERS = 2, CC_ROUNDS = 100, CC_SECONDS = 3 };

struct cc {
        struct store *s;
        atomic_bool stop;
        atomic_uint errors;
        atomic_ulong reads;
        char first_error[256];
        pthread_mutex_t lock;
        int64_t last[CC_IDS];
};

_printf_(2, 3) static void cc_error(struct cc *cc, const char *fmt, ...) {
        if (atomic_fetch_add(&cc->errors, 1) == 0) {
                va_list ap;
                va_start(ap, fmt);
                pthread_mutex_lock(&cc->lock);
                vsnprintf(cc->first_error, sizeof(cc->first_error), fmt, ap);
                pthread_mutex_unlock(&cc->lock);
                va_end(ap);
        }
}

static void *cc_reader(void *arg) {
        struct cc *cc = arg;
        int64_t seen[CC_IDS];
        for (int i = 0; i < CC_IDS; i++)
                seen[i] = 0;
        unsigned seed = (unsigned) (uintptr_t) &seen;
        while (!atomic_load(&cc->stop)) {
                int i = (int) (rand_r(&seed) % CC_IDS);
                char id[16];
                snprintf(id, sizeof(id), "c-%d", i);
                bool meta = rand_r(&seed) % 4 == 0;
                struct kms_object *o = NULL;
                int r = meta ? store_get_meta(cc->s, id, &o) : store_get(cc->s, id, &o);
                if (r < 0) {
                        cc_error(cc, "get %s: %d", id, r);
                        continue;
                }
                int64_t v = version_of(o, !meta);
                kms_object_free(o);
                if (v < 0)
                        cc_error(cc, "%s: inconsistent object", id);
                else if (v < seen[i])
                        cc_error(cc, "%s went back from version %lld to %lld", id, (long long) seen[i], (long long) v);
                else
                        seen[i] = v;
                atomic_fetch_add(&cc->reads, 1);
        }
        return NULL;
}

struct cc_writer {
        struct cc *cc;
        int first; /* writes ids first, first + CC_WRITERS, ... */
        struct waiter w;
};

static void *cc_writer(void *arg) {
        struct cc_writer *wr = arg;
        struct cc *cc = wr->cc;
        unsigned queued = 0;
        time_t deadline = time(NULL) + CC_SECONDS; /* fewer rounds on a slow machine or under TSan */
        for (int64_t v = 1; v <= CC_ROUNDS && time(NULL) < deadline; v++)
                for (int i = wr->first; i < CC_IDS; i += CC_WRITERS) {
                        char id[16];
                        snprintf(id, sizeof(id), "c-%d", i);
                        int64_t ver = v * 1000 + i;
                        struct kms_object *o = make_version(id, "alice", ver);
                        int r;
                        /* Odd writers queue without waiting, a few rows at a time. */
                        if (wr->first % 2) {
                                r = store_put_async(cc->s, o, waiter_done, &wr->w);
                                if (r == 0 && ++queued % 8 == 0)
                                        waiter_wait(&wr->w, queued);
                        } else
                                r = store_put(cc->s, o);
                        kms_object_free(o);
                        if (r < 0)
                                cc_error(cc, "put %s: %d", id, r);
                        cc->last[i] = ver;
                }
        waiter_wait(&wr->w, queued);
        if (wr->w.n_failed)
                cc_error(cc, "%u async puts failed", wr->w.n_failed);
        return NULL;
}

static void run_concurrency(size_t cache_rows, const char *name) {
        _cleanup_(secret_freep) struct secret *mk = key_of(0x11);
        struct cc cc = { .lock = PTHREAD_MUTEX_INITIALIZER };
        assert_int_equal(store_sqlite_open_cache(cache_db(name), &(struct master_source) { .key = mk }, cache_rows, &cc.s), 0);
        for (int i = 0; i < CC_IDS; i++) {
                char id[16];
                snprintf(id, sizeof(id), "c-%d", i);
                put_version(cc.s, id, "alice", i);
                cc.last[i] = i;
        }
        pthread_t readers[CC_READERS], writers[CC_WRITERS];
        struct cc_writer wr[CC_WRITERS];
        for (int i = 0; i < CC_READERS; i++)
                assert_int_equal(pthread_create(&readers[i], NULL, cc_reader, &cc), 0);
        for (int i = 0; i < CC_WRITERS; i++) {
                wr[i] = (struct cc_writer) { .cc = &cc, .first = i,
                                             .w = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER } };
                assert_int_equal(pthread_create(&writers[i], NULL, cc_writer, &wr[i]), 0);
        }
        for (int i = 0; i < CC_WRITERS; i++)
                pthread_join(writers[i], NULL);
        atomic_store(&cc.stop, true);
        for (int i = 0; i < CC_READERS; i++)
                pthread_join(readers[i], NULL);
        if (atomic_load(&cc.errors))
                fail_msg("%u errors, first: %s", atomic_load(&cc.errors), cc.first_error);
        assert_true(atomic_load(&cc.reads) > 0);
        for (int i = 0; i < CC_IDS; i++) {
                char id[16];
                snprintf(id, sizeof(id), "c-%d", i);
                assert_int_equal(get_version(cc.s, id), cc.last[i]);
        }
        store_free(cc.s);
}

static void test_cache_concurrency(void **state) {
        (void) state;
        run_concurrency(65536, "concurrency");
        run_concurrency(64, "concurrency-tiny");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_roundtrip_and_list),
                cmocka_unit_test(test_sealed_at_rest),
                cmocka_unit_test(test_wrong_master_rejected),
                cmocka_unit_test(test_rotate),
                cmocka_unit_test(test_seal_binds_id),
                cmocka_unit_test(test_kdf_versions),
                cmocka_unit_test(test_cache_put_then_get),
                cmocka_unit_test(test_cache_serves_hits),
                cmocka_unit_test(test_cache_async),
                cmocka_unit_test(test_cache_absent),
                cmocka_unit_test(test_cache_capacity),
                cmocka_unit_test(test_cache_rotate),
                cmocka_unit_test(test_cache_failed_put),
                cmocka_unit_test(test_cache_fill_rules),
                cmocka_unit_test(test_cache_eviction),
                cmocka_unit_test(test_cache_concurrency),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
