/* The per-message arena behind struct ttlv: a list of blocks handed out by bumping a
 * pointer. A message costs a few mallocs instead of one per node, and freeing wipes
 * every byte that was handed out, because byte strings may be key material. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "kmip/ttlv.h"

#define ARENA_FIRST_BLOCK 4096U
#define ARENA_MAX_GROWTH (256U * 1024U)

struct arena_block {
        struct arena_block *next;
        size_t size; /* usable bytes in data */
        size_t used;
        _Alignas(max_align_t) uint8_t data[];
};

struct ttlv_arena {
        struct arena_block *head; /* current block (most recent) */
        size_t next_size;
        bool failed;
};

static struct arena_block *block_new(size_t size) {
        struct arena_block *b = malloc(sizeof(*b) + size);
        if (!b)
                return NULL;
        b->next = NULL;
        b->size = size;
        b->used = 0;
        return b;
}

struct ttlv_arena *ttlv_arena_new(void) {
        struct ttlv_arena *a = calloc(1, sizeof(*a));
        if (!a)
                return NULL;
        a->next_size = ARENA_FIRST_BLOCK;
        return a;
}

static void blocks_free(struct arena_block *b, struct arena_block *keep) {
        while (b) {
                struct arena_block *next = b->next;
                OPENSSL_cleanse(b->data, b->used);
                if (b != keep)
                        free(b);
                b = next;
        }
}

void ttlv_arena_free(struct ttlv_arena *a) {
        if (!a)
                return;
        blocks_free(a->head, NULL);
        free(a);
}

void ttlv_arena_reset(struct ttlv_arena *a) {
        if (!a)
                return;
        /* Keep the oldest block: it is the first-size one, enough for most messages. */
        struct arena_block *oldest = a->head;
        while (oldest && oldest->next)
                oldest = oldest->next;
        blocks_free(a->head, oldest);
        a->head = oldest;
        if (oldest)
                oldest->used = 0;
        a->failed = false;
        a->next_size = ARENA_FIRST_BLOCK;
}

void *ttlv_arena_alloc(struct ttlv_arena *a, size_t size) {
        if (!a)
                return NULL;
        if (size > SIZE_MAX / 2) {
                a->failed = true;
                return NULL;
        }
        size = ALIGN_UP(size ? size : 1, 8);
        struct arena_block *b = a->head;
        if (!b || b->size - b->used < size) {
                size_t bs = MAX(a->next_size, size);
                b = block_new(bs);
                if (!b) {
                        a->failed = true;
                        return NULL;
                }
                b->next = a->head;
                a->head = b;
                if (a->next_size < ARENA_MAX_GROWTH)
                        a->next_size *= 2;
        }
        void *p = b->data + b->used;
        b->used += size;
        memset(p, 0, size);
        return p;
}

char *ttlv_arena_strdup(struct ttlv_arena *a, const char *s) {
        size_t n = strlen(s);
        char *p = ttlv_arena_alloc(a, n + 1);
        if (p)
                memcpy(p, s, n);
        return p;
}

bool ttlv_arena_failed(const struct ttlv_arena *a) {
        return !a || a->failed;
}
