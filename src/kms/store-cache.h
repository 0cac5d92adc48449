/* Read cache of committed store rows, for the SQLite backend: per id, the columns a
 * Get needs (owner, type, state, encoded attributes, SEALED key material, exactly as
 * on disk), so most Gets skip an SQLite read. Never plaintext key material.
 *
 * Bounded (CLOCK eviction), sharded by a hash of the id, each shard under its own
 * lock. Rows are immutable and reference counted, so a reader decodes one outside
 * the lock while a writer replaces it.
 *
 * It holds only what is committed, with the writer's help: see store_cache_begin_write
 * for the protocol. Thread-safe. A NULL cache is a valid, always empty one. */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kms/object.h"

/* One object's columns as plain values, whether they point into an SQLite row or
 * into a cached one. */
struct store_row {
        const char *owner;
        uint32_t object_type, state;
        const uint8_t *attrs;   /* kms_attrs_encode form */
        size_t attrs_len;
        const uint8_t *sealed;  /* seal_encrypt blob; NULL when there is no key material */
        size_t sealed_len;
};

/* A cached row: read-only once made; v points into the row's own memory. */
struct store_cache_row {
        atomic_uint n_ref;
        char id[KMS_ID_MAX];
        struct store_row v;
        uint8_t data[];
};

/* Copy id and v into a new row (one reference); NULL on allocation failure. */
struct store_cache_row *store_cache_row_new(const char *id, const struct store_row *v);
void store_cache_row_unref(struct store_cache_row *row);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct store_cache_row *, store_cache_row_unref);

struct store_cache;

/* What a reader that missed must hand back to store_cache_fill. */
struct store_cache_ticket {
        uint64_t gen;
        unsigned shard;
        bool valid;
};

/* A cache of at most max_rows rows, rounded up to a whole number per shard; with
 * max_rows 0, *ret is NULL (no cache). */
int store_cache_new(size_t max_rows, struct store_cache **ret);
void store_cache_free(struct store_cache *c);
/* Rows the cache can hold, 0 for none. */
size_t store_cache_capacity(const struct store_cache *c);

/* The row of id with a new reference (caller unrefs), or NULL with *ret_ticket set
 * for a fill after the caller read the store. */
struct store_cache_row *store_cache_get(struct store_cache *c, const char *id,
                                        struct store_cache_ticket *ret_ticket);
/* Insert row (read from the store after the store_cache_get that gave t) unless a
 * write may have raced with that read, or id already has an entry. Takes its own
 * reference: the caller keeps its one. */
void store_cache_fill(struct store_cache *c, const struct store_cache_ticket *t,
                      struct store_cache_row *row);

/* The writer's side. Before the transaction that may change id begins,
 * store_cache_begin_write takes id's entry out (returned, NULL if none; the caller
 * unrefs it) and holds fills into id's shard off. After the COMMIT (or its failure),
 * store_cache_end_write makes row id's entry (NULL: none), and lets fills in again
 * once every write of the shard has ended. row must be what is on disk now: the row
 * just committed, or the one begin returned if nothing of id was written. Every begin
 * is paired with one end, before the writer tells anyone that its write is done.
 *
 * Why no entry is ever uncommitted or stale (the store's row of id changes only in
 * a COMMIT, and only inside a begin/end pair of id):
 * - While a pair is open, id has no entry, and its end puts only what is on disk.
 *   So an entry, when there is one, is the latest committed row, and never older
 *   than what a reader could get from SQLite at that moment: a reader that missed
 *   and read the new row from SQLite cannot hit the old one afterwards. (Putting the
 *   new row only after the COMMIT but leaving the old one in place until then would
 *   not do: a fill made just before the COMMIT would outlive it.)
 * - A reader that misses takes a ticket: the shard's generation, under the shard's
 *   lock, before its SQLite read transaction begins; valid only if no write of the
 *   shard is open then. Every begin and every end bumps the generation, and the fill
 *   goes in only if it is unchanged (and id has no entry). So no write of the shard
 *   was open at any time from the miss to the insert; hence no COMMIT touching id
 *   happened between the read's snapshot and the insert, and the row read is still
 *   what is on disk when it becomes visible. A ticket is per shard, not per id: a
 *   write of another id in the shard costs a fill, never correctness. */
struct store_cache_row *store_cache_begin_write(struct store_cache *c, const char *id);
void store_cache_end_write(struct store_cache *c, const char *id, struct store_cache_row *row);
/* The same for a write of every row (master key rotation): empties the cache and
 * holds all fills off until store_cache_end_write_all. */
void store_cache_begin_write_all(struct store_cache *c);
void store_cache_end_write_all(struct store_cache *c);

/* The hash the cache shards and indexes by; also usable to group ids. */
uint64_t store_cache_hash(const char *id);
