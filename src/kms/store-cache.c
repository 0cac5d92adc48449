/* Read cache of committed store rows (see store-cache.h): 64 shards, each a chained
 * hash table over a fixed array of slots with a CLOCK hand for eviction, so lookup,
 * insert, replace and evict are O(1) on average and memory is bounded. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kms/store-cache.h"

#define SHARD_BITS 6
#define N_SHARDS (1u << SHARD_BITS)
#define NONE UINT32_MAX

struct slot {
        struct store_cache_row *row; /* NULL: on the free list */
        uint64_t hash;
        uint32_t next;               /* next in the bucket's chain, or in the free list */
        bool referenced;             /* hit since the CLOCK hand last passed */
};

/* Aligned so two network threads on neighbouring shards do not share a cache line. */
struct shard {
        pthread_mutex_t lock;
        uint64_t gen;        /* bumped by every begin and end of a write */
        unsigned writers;    /* writes begun and not ended: no fills meanwhile */
        uint32_t n_slots, bucket_mask, hand, free_head;
        struct slot *slots;
        uint32_t *buckets;
} __attribute__((aligned(64)));

struct store_cache {
        struct shard shards[N_SHARDS];
        size_t capacity;
};

uint64_t store_cache_hash(const char *id) {
        /* FNV-1a, then a final mix so the shard (top bits) and bucket (low bits) are
         * both well spread. Ids are made by the server, so no seed is needed against
         * chosen collisions: a client cannot choose which ids get entries. */
        uint64_t h = 0xcbf29ce484222325ULL;
        for (const unsigned char *p = (const unsigned char *) id; *p; p++)
                h = (h ^ *p) * 0x100000001b3ULL;
        h ^= h >> 33;
        h *= 0xff51afd7ed558ccdULL;
        h ^= h >> 33;
        h *= 0xc4ceb9fe1a85ec53ULL;
        h ^= h >> 33;
        return h;
}

struct store_cache_row *store_cache_row_new(const char *id, const struct store_row *v) {
        size_t owner_len = strlen(v->owner) + 1;
        struct store_cache_row *row = malloc(sizeof(*row) + owner_len + v->attrs_len + v->sealed_len);
        if (!row)
                return NULL;
        atomic_init(&row->n_ref, 1);
        snprintf(row->id, sizeof(row->id), "%s", id);
        uint8_t *p = row->data;
        memcpy(p, v->owner, owner_len);
        row->v.owner = (const char *) p;
        p += owner_len;
        row->v.object_type = v->object_type;
        row->v.state = v->state;
        if (v->attrs_len)
                memcpy(p, v->attrs, v->attrs_len);
        row->v.attrs = p;
        row->v.attrs_len = v->attrs_len;
        p += v->attrs_len;
        if (v->sealed) {
                memcpy(p, v->sealed, v->sealed_len);
                row->v.sealed = p;
        } else
                row->v.sealed = NULL;
        row->v.sealed_len = v->sealed ? v->sealed_len : 0;
        return row;
}

static struct store_cache_row *row_ref(struct store_cache_row *row) {
        atomic_fetch_add_explicit(&row->n_ref, 1, memory_order_relaxed);
        return row;
}

void store_cache_row_unref(struct store_cache_row *row) {
        if (!row)
                return;
        /* The attributes are metadata and the key material is sealed: a plain free. */
        if (atomic_fetch_sub_explicit(&row->n_ref, 1, memory_order_acq_rel) == 1)
                free(row);
}

static uint32_t pow2_at_least(uint32_t n) {
        uint32_t p = 1;
        while (p < n)
                p <<= 1;
        return p;
}

int store_cache_new(size_t max_rows, struct store_cache **ret) {
        if (max_rows == 0) {
                *ret = NULL;
                return 0;
        }
        if (max_rows > (size_t) N_SHARDS << 24)
                return -EINVAL;
        struct store_cache *c = aligned_alloc(_Alignof(struct store_cache), sizeof(*c));
        if (!c)
                return -ENOMEM;
        memset(c, 0, sizeof(*c));
        uint32_t per_shard = (uint32_t) ((max_rows + N_SHARDS - 1) / N_SHARDS);
        uint32_t n_buckets = pow2_at_least(per_shard);
        c->capacity = (size_t) per_shard * N_SHARDS;
        int r = 0;
        for (unsigned i = 0; i < N_SHARDS; i++) {
                struct shard *sh = &c->shards[i];
                pthread_mutex_init(&sh->lock, NULL);
                sh->n_slots = per_shard;
                sh->bucket_mask = n_buckets - 1;
                sh->slots = calloc(per_shard, sizeof(*sh->slots));
                sh->buckets = malloc(n_buckets * sizeof(*sh->buckets));
                if (!sh->slots || !sh->buckets) {
                        r = -ENOMEM;
                        continue; /* every mutex gets initialised, for store_cache_free */
                }
                for (uint32_t b = 0; b < n_buckets; b++)
                        sh->buckets[b] = NONE;
                for (uint32_t k = 0; k < per_shard; k++)
                        sh->slots[k].next = k + 1 < per_shard ? k + 1 : NONE;
                sh->free_head = 0;
        }
        if (r < 0) {
                store_cache_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

void store_cache_free(struct store_cache *c) {
        if (!c)
                return;
        for (unsigned i = 0; i < N_SHARDS; i++) {
                struct shard *sh = &c->shards[i];
                if (sh->slots)
                        for (uint32_t k = 0; k < sh->n_slots; k++)
                                store_cache_row_unref(sh->slots[k].row);
                free(sh->slots);
                free(sh->buckets);
                pthread_mutex_destroy(&sh->lock);
        }
        free(c);
}

size_t store_cache_capacity(const struct store_cache *c) {
        return c ? c->capacity : 0;
}

static struct shard *shard_of(struct store_cache *c, uint64_t hash) {
        return &c->shards[hash >> (64 - SHARD_BITS)];
}

/* Under sh->lock: the link (bucket head or a slot's next) that points at id's slot,
 * or NULL. */
static uint32_t *find_link(struct shard *sh, uint64_t hash, const char *id) {
        uint32_t *link = &sh->buckets[hash & sh->bucket_mask];
        while (*link != NONE) {
                struct slot *e = &sh->slots[*link];
                if (e->hash == hash && strcmp(e->row->id, id) == 0)
                        return link;
                link = &e->next;
        }
        return NULL;
}

/* Under sh->lock: take the slot *link points at out of its chain and free it. */
static void unlink_slot(struct shard *sh, uint32_t *link) {
        uint32_t k = *link;
        struct slot *e = &sh->slots[k];
        *link = e->next;
        store_cache_row_unref(e->row);
        e->row = NULL;
        e->referenced = false;
        e->next = sh->free_head;
        sh->free_head = k;
}

/* Under sh->lock: a free slot, evicting the first entry the CLOCK hand finds not hit
 * since its last pass (at most two turns: the first clears every bit). */
static uint32_t take_slot(struct shard *sh) {
        if (sh->free_head == NONE)
                for (;;) {
                        uint32_t k = sh->hand;
                        sh->hand = k + 1 < sh->n_slots ? k + 1 : 0;
                        struct slot *e = &sh->slots[k];
                        if (e->referenced) {
                                e->referenced = false;
                                continue;
                        }
                        uint32_t *link = find_link(sh, e->hash, e->row->id);
                        unlink_slot(sh, link);
                        break;
                }
        uint32_t k = sh->free_head;
        sh->free_head = sh->slots[k].next;
        return k;
}

/* Under sh->lock: make row id's entry, replacing any. */
static void put_row(struct shard *sh, uint64_t hash, struct store_cache_row *row) {
        uint32_t *link = find_link(sh, hash, row->id);
        if (link) {
                struct slot *e = &sh->slots[*link];
                store_cache_row_unref(e->row);
                e->row = row_ref(row);
                return;
        }
        uint32_t k = take_slot(sh);
        uint32_t *head = &sh->buckets[hash & sh->bucket_mask];
        sh->slots[k] = (struct slot) { .row = row_ref(row), .hash = hash, .next = *head };
        *head = k;
}

struct store_cache_row *store_cache_get(struct store_cache *c, const char *id,
                                        struct store_cache_ticket *ret_ticket) {
        *ret_ticket = (struct store_cache_ticket) { .valid = false };
        if (!c)
                return NULL;
        uint64_t hash = store_cache_hash(id);
        struct shard *sh = shard_of(c, hash);
        struct store_cache_row *row = NULL;
        pthread_mutex_lock(&sh->lock);
        uint32_t *link = find_link(sh, hash, id);
        if (link) {
                struct slot *e = &sh->slots[*link];
                e->referenced = true;
                row = row_ref(e->row);
        } else
                *ret_ticket = (struct store_cache_ticket) {
                        .gen = sh->gen,
                        .shard = (unsigned) (sh - c->shards),
                        .valid = sh->writers == 0,
                };
        pthread_mutex_unlock(&sh->lock);
        return row;
}

void store_cache_fill(struct store_cache *c, const struct store_cache_ticket *t, struct store_cache_row *row) {
        if (!c || !t->valid)
                return;
        uint64_t hash = store_cache_hash(row->id);
        struct shard *sh = &c->shards[t->shard];
        pthread_mutex_lock(&sh->lock);
        /* gen unchanged since the miss, when no write was open: none has begun since
         * (so writers is still 0) and no COMMIT touched this shard meanwhile. An entry
         * made by someone else in between is as current as ours: keep it. */
        if (sh->gen == t->gen && !find_link(sh, hash, row->id))
                put_row(sh, hash, row);
        pthread_mutex_unlock(&sh->lock);
}

struct store_cache_row *store_cache_begin_write(struct store_cache *c, const char *id) {
        if (!c)
                return NULL;
        uint64_t hash = store_cache_hash(id);
        struct shard *sh = shard_of(c, hash);
        struct store_cache_row *was = NULL;
        pthread_mutex_lock(&sh->lock);
        sh->writers++;
        sh->gen++;
        uint32_t *link = find_link(sh, hash, id);
        if (link) {
                was = row_ref(sh->slots[*link].row);
                unlink_slot(sh, link);
        }
        pthread_mutex_unlock(&sh->lock);
        return was;
}

void store_cache_end_write(struct store_cache *c, const char *id, struct store_cache_row *row) {
        if (!c)
                return;
        uint64_t hash = store_cache_hash(id);
        struct shard *sh = shard_of(c, hash);
        pthread_mutex_lock(&sh->lock);
        if (row)
                put_row(sh, hash, row);
        sh->gen++;
        sh->writers--;
        pthread_mutex_unlock(&sh->lock);
}

void store_cache_begin_write_all(struct store_cache *c) {
        if (!c)
                return;
        for (unsigned i = 0; i < N_SHARDS; i++) {
                struct shard *sh = &c->shards[i];
                pthread_mutex_lock(&sh->lock);
                sh->writers++;
                sh->gen++;
                for (uint32_t b = 0; b <= sh->bucket_mask; b++)
                        while (sh->buckets[b] != NONE)
                                unlink_slot(sh, &sh->buckets[b]);
                pthread_mutex_unlock(&sh->lock);
        }
}

void store_cache_end_write_all(struct store_cache *c) {
        if (!c)
                return;
        for (unsigned i = 0; i < N_SHARDS; i++) {
                struct shard *sh = &c->shards[i];
                pthread_mutex_lock(&sh->lock);
                sh->gen++;
                sh->writers--;
                pthread_mutex_unlock(&sh->lock);
        }
}
