/* The object store: a small interface (a table of functions) so that the SQLite
 * backend used on one machine can be joined by a PostgreSQL backend for several
 * nodes. Every backend seals key material with the master key before it touches
 * disk, and a put returns only when the object is durable. Thread-safe. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kms/object.h"
#include "shared/secret.h"

struct store;

/* Where the master key comes from: a key file (32 bytes) or a passphrase (scrypt
 * with a salt and cost kept in the store, see seal.h). Exactly one is set. */
struct master_source {
        const struct secret *key;
        const struct secret *passphrase;
        /* If set, an open with a passphrase tells here whether the store's scrypt cost
         * is below today's (a store made before it was raised; rotating to a
         * passphrase raises it). */
        bool *ret_weak_kdf;
};

/* Pre-filter for listing; zero/NULL fields match anything. */
struct store_filter {
        const char *owner;
        uint32_t object_type;
        uint32_t state;
        const char *name;       /* first Name of the object */
};

typedef char store_id[KMS_ID_MAX];

/* Completion of store_put_async: r is 0 once the object is durable, or why it is
 * not. Runs on the store's own thread: keep it short and do not call the store. */
typedef void store_put_done_fn(int r, void *userdata);

/* Called by the store before each commit, with nothing of it durable yet: a
 * negative errno fails the whole commit (nothing of it is stored). */
typedef int store_commit_hook_fn(void *userdata);

struct store_ops {
        int (*put)(struct store *s, const struct kms_object *o);
        int (*put_async)(struct store *s, const struct kms_object *o, store_put_done_fn *done, void *userdata);
        int (*get)(struct store *s, const char *id, struct kms_object **ret);
        int (*get_meta)(struct store *s, const char *id, struct kms_object **ret);
        int (*list)(struct store *s, const struct store_filter *f, store_id **ret, size_t *ret_n);
        int (*rotate)(struct store *s, const struct master_source *new_master);
        int (*count)(struct store *s, uint64_t *ret);
        void (*set_commit_hook)(struct store *s, store_commit_hook_fn *fn, void *userdata);
        void (*free)(struct store *s);
};

struct store {
        const struct store_ops *ops;
};

/* Open (creating if needed) an SQLite store at path. -EKEYREJECTED when the master
 * key does not match the one the store was created with. */
int store_sqlite_open(const char *path, const struct master_source *master, struct store **ret);
/* The same with a read cache of at most about cache_rows committed rows (0: none);
 * store_sqlite_open's default is 65536 (config: cache-rows). */
int store_sqlite_open_cache(const char *path, const struct master_source *master, size_t cache_rows,
                            struct store **ret);

/* Insert or replace o; returns once it is durable (group commit). */
static inline int store_put(struct store *s, const struct kms_object *o) {
        return s->ops->put(s, o);
}
/* Queue o (insert or replace) and return at once; done(r, userdata) is called
 * exactly once, when it is durable or has failed. On an error return (nothing
 * queued) done is never called. Until done runs, readers may not see o yet. */
static inline int store_put_async(struct store *s, const struct kms_object *o, store_put_done_fn *done,
                                  void *userdata) {
        return s->ops->put_async(s, o, done, userdata);
}
/* Load the object id; -ENOENT if absent. */
static inline int store_get(struct store *s, const char *id, struct kms_object **ret) {
        return s->ops->get(s, id, ret);
}
/* Load the object id without its key material (o->key stays NULL): for scans such
 * as Locate, which must not unseal every key they look at. */
static inline int store_get_meta(struct store *s, const char *id, struct kms_object **ret) {
        return s->ops->get_meta(s, id, ret);
}
/* Ids matching f, in creation order; caller frees *ret. */
static inline int store_list(struct store *s, const struct store_filter *f, store_id **ret, size_t *ret_n) {
        return s->ops->list(s, f, ret, ret_n);
}
/* Re-seal every object under a new master key in one transaction (all or nothing). */
static inline int store_rotate(struct store *s, const struct master_source *new_master) {
        return s->ops->rotate(s, new_master);
}
/* Number of objects. */
static inline int store_count(struct store *s, uint64_t *ret) {
        return s->ops->count(s, ret);
}
/* Run fn before every commit from now on (the audit log's fsync: lines written
 * before a write was queued are durable before the write is). Set before serving. */
static inline void store_set_commit_hook(struct store *s, store_commit_hook_fn *fn, void *userdata) {
        s->ops->set_commit_hook(s, fn, userdata);
}
/* Finish pending commits and close. NULL is fine. */
static inline void store_free(struct store *s) {
        if (s)
                s->ops->free(s);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(struct store *, store_free);

/* First Name Value of an object (from its "Name" attribute), or NULL. Returns a
 * pointer into a static-per-call buffer supplied by the caller. */
const char *store_object_name(const struct kms_object *o, char *buf, size_t size);
