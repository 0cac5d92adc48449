/* The TTLV tree API: builders, lookups, typed getters, copies and a debug dump. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kmip/tags.h"
#include "kmip/ttlv.h"

static struct ttlv *node_new(struct ttlv_arena *a, struct ttlv *parent, uint32_t tag, enum ttlv_type type) {
        struct ttlv *n = ttlv_arena_alloc(a, sizeof(*n));
        if (!n)
                return NULL;
        n->tag = tag;
        n->type = type;
        ttlv_append(parent, n);
        return n;
}

void ttlv_append(struct ttlv *parent, struct ttlv *child) {
        if (!parent || !child)
                return;
        child->parent = parent;
        child->next = NULL;
        if (parent->last)
                parent->last->next = child;
        else
                parent->child = child;
        parent->last = child;
}

void ttlv_detach(struct ttlv *n) {
        if (!n || !n->parent)
                return;
        struct ttlv *p = n->parent, *prev = NULL;
        for (struct ttlv *c = p->child; c; prev = c, c = c->next)
                if (c == n) {
                        if (prev)
                                prev->next = n->next;
                        else
                                p->child = n->next;
                        if (p->last == n)
                                p->last = prev;
                        break;
                }
        n->parent = NULL;
        n->next = NULL;
}

struct ttlv *ttlv_add_structure(struct ttlv_arena *a, struct ttlv *parent, uint32_t tag) {
        return node_new(a, parent, tag, TTLV_STRUCTURE);
}

struct ttlv *ttlv_add_integer(struct ttlv_arena *a, struct ttlv *parent, uint32_t tag, int32_t v) {
        struct ttlv *n = node_new(a, parent, tag, TTLV_INTEGER);
        if (n)
                n->v.integer = v;
        return n;
}

struct ttlv *ttlv_add_long(struct ttlv_arena *a, struct ttlv *parent, uint32_t tag, int64_t v) {
        struct ttlv *n = node_new(a, parent, tag, TTLV_LONG_INTEGER);
        if (n)
                n->v.long_integer = v;
        return n;
}

struct ttlv *ttlv_add_enum(struct ttlv_arena *a, struct ttlv *parent, uint32_t tag, uint32_t v) {
        struct ttlv *n = node_new(a, parent, tag, TTLV_ENUMERATION);
        if (n)
                n->v.enumeration = v;
        return n;
}

struct ttlv *ttlv_add_bool(struct ttlv_arena *a, struct ttlv *parent, uint32_t tag, bool v) {
        struct ttlv *n = node_new(a, parent, tag, TTLV_BOOLEAN);
        if (n)
                n->v.boolean = v;
        return n;
}

static struct ttlv *add_blob(struct ttlv_arena *a, struct ttlv *parent, uint32_t tag,
                             enum ttlv_type type, const void *p, size_t size) {
        uint8_t *copy = ttlv_arena_alloc(a, size + 1);
        if (!copy)
                return NULL;
        if (size)
                memcpy(copy, p, size);
        struct ttlv *n = node_new(a, parent, tag, type);
        if (!n)
                return NULL;
        n->v.bytes.data = copy;
        n->v.bytes.size = size;
        return n;
}

struct ttlv *ttlv_add_text(struct ttlv_arena *a, struct ttlv *parent, uint32_t tag, const char *s) {
        return add_blob(a, parent, tag, TTLV_TEXT_STRING, s, s ? strlen(s) : 0);
}

struct ttlv *ttlv_add_text_len(struct ttlv_arena *a, struct ttlv *parent, uint32_t tag,
                               const char *s, size_t n) {
        return add_blob(a, parent, tag, TTLV_TEXT_STRING, s, n);
}

struct ttlv *ttlv_add_bytes(struct ttlv_arena *a, struct ttlv *parent, uint32_t tag,
                            const void *p, size_t n) {
        return add_blob(a, parent, tag, TTLV_BYTE_STRING, p, n);
}

struct ttlv *ttlv_add_big_integer(struct ttlv_arena *a, struct ttlv *parent, uint32_t tag,
                                  const void *p, size_t n) {
        return add_blob(a, parent, tag, TTLV_BIG_INTEGER, p, n);
}

struct ttlv *ttlv_add_date_time(struct ttlv_arena *a, struct ttlv *parent, uint32_t tag, int64_t t) {
        struct ttlv *n = node_new(a, parent, tag, TTLV_DATE_TIME);
        if (n)
                n->v.date_time = t;
        return n;
}

struct ttlv *ttlv_add_date_time_ext(struct ttlv_arena *a, struct ttlv *parent, uint32_t tag,
                                    int64_t usec) {
        struct ttlv *n = node_new(a, parent, tag, TTLV_DATE_TIME_EXTENDED);
        if (n)
                n->v.date_time = usec;
        return n;
}

struct ttlv *ttlv_add_interval(struct ttlv_arena *a, struct ttlv *parent, uint32_t tag, uint32_t v) {
        struct ttlv *n = node_new(a, parent, tag, TTLV_INTERVAL);
        if (n)
                n->v.interval = v;
        return n;
}

static bool is_blob(enum ttlv_type t) {
        return t == TTLV_TEXT_STRING || t == TTLV_BYTE_STRING || t == TTLV_BIG_INTEGER;
}

struct ttlv *ttlv_copy(struct ttlv_arena *a, struct ttlv *parent, const struct ttlv *src, uint32_t tag) {
        if (!src)
                return NULL;
        uint32_t t = tag ? tag : src->tag;
        struct ttlv *n;
        if (is_blob(src->type))
                n = add_blob(a, parent, t, src->type, src->v.bytes.data, src->v.bytes.size);
        else {
                n = node_new(a, parent, t, src->type);
                if (n && src->type != TTLV_STRUCTURE)
                        n->v = src->v;
        }
        if (!n)
                return NULL;
        if (src->type == TTLV_STRUCTURE)
                TTLV_FOREACH_CHILD(c, src)
                        if (!ttlv_copy(a, n, c, 0))
                                return NULL;
        return n;
}

bool ttlv_equal(const struct ttlv *x, const struct ttlv *y) {
        if (x == y)
                return true;
        if (!x || !y || x->tag != y->tag || x->type != y->type)
                return false;
        switch (x->type) {
        case TTLV_STRUCTURE: {
                const struct ttlv *a = x->child, *b = y->child;
                for (; a && b; a = a->next, b = b->next)
                        if (!ttlv_equal(a, b))
                                return false;
                return !a && !b;
        }
        case TTLV_TEXT_STRING:
        case TTLV_BYTE_STRING:
        case TTLV_BIG_INTEGER:
                return x->v.bytes.size == y->v.bytes.size &&
                       (x->v.bytes.size == 0 || memcmp(x->v.bytes.data, y->v.bytes.data, x->v.bytes.size) == 0);
        case TTLV_BOOLEAN:
                return x->v.boolean == y->v.boolean;
        case TTLV_INTEGER:
        case TTLV_ENUMERATION:
        case TTLV_INTERVAL:
                return x->v.enumeration == y->v.enumeration;
        default:
                return x->v.long_integer == y->v.long_integer;
        }
}

struct ttlv *ttlv_find(const struct ttlv *parent, uint32_t tag) {
        if (!parent)
                return NULL;
        TTLV_FOREACH_CHILD(c, parent)
                if (c->tag == tag)
                        return c;
        return NULL;
}

struct ttlv *ttlv_find_next(const struct ttlv *n) {
        if (!n)
                return NULL;
        for (struct ttlv *c = n->next; c; c = c->next)
                if (c->tag == n->tag)
                        return c;
        return NULL;
}

size_t ttlv_count(const struct ttlv *parent, uint32_t tag) {
        size_t k = 0;
        if (!parent)
                return 0;
        TTLV_FOREACH_CHILD(c, parent)
                if (tag == 0 || c->tag == tag)
                        k++;
        return k;
}

static int find_typed(const struct ttlv *parent, uint32_t tag, enum ttlv_type type, struct ttlv **ret) {
        struct ttlv *n = ttlv_find(parent, tag);
        if (!n)
                return -ENODATA;
        if (n->type != type)
                return -EPROTO;
        *ret = n;
        return 0;
}

int ttlv_get_structure(const struct ttlv *parent, uint32_t tag, struct ttlv **ret) {
        return find_typed(parent, tag, TTLV_STRUCTURE, ret);
}

int ttlv_get_integer(const struct ttlv *parent, uint32_t tag, int32_t *ret) {
        struct ttlv *n;
        int r = find_typed(parent, tag, TTLV_INTEGER, &n);
        if (r >= 0)
                *ret = n->v.integer;
        return r;
}

int ttlv_get_long(const struct ttlv *parent, uint32_t tag, int64_t *ret) {
        struct ttlv *n;
        int r = find_typed(parent, tag, TTLV_LONG_INTEGER, &n);
        if (r >= 0)
                *ret = n->v.long_integer;
        return r;
}

int ttlv_get_enum(const struct ttlv *parent, uint32_t tag, uint32_t *ret) {
        struct ttlv *n;
        int r = find_typed(parent, tag, TTLV_ENUMERATION, &n);
        if (r >= 0)
                *ret = n->v.enumeration;
        return r;
}

int ttlv_get_bool(const struct ttlv *parent, uint32_t tag, bool *ret) {
        struct ttlv *n;
        int r = find_typed(parent, tag, TTLV_BOOLEAN, &n);
        if (r >= 0)
                *ret = n->v.boolean;
        return r;
}

static int get_blob(const struct ttlv *parent, uint32_t tag, enum ttlv_type type,
                    const uint8_t **ret, size_t *ret_size) {
        struct ttlv *n;
        int r = find_typed(parent, tag, type, &n);
        if (r < 0)
                return r;
        *ret = n->v.bytes.data;
        if (ret_size)
                *ret_size = n->v.bytes.size;
        return 0;
}

int ttlv_get_text(const struct ttlv *parent, uint32_t tag, const char **ret, size_t *ret_size) {
        return get_blob(parent, tag, TTLV_TEXT_STRING, (const uint8_t **) ret, ret_size);
}

int ttlv_get_bytes(const struct ttlv *parent, uint32_t tag, const uint8_t **ret, size_t *ret_size) {
        return get_blob(parent, tag, TTLV_BYTE_STRING, ret, ret_size);
}

int ttlv_get_big_integer(const struct ttlv *parent, uint32_t tag, const uint8_t **ret, size_t *ret_size) {
        return get_blob(parent, tag, TTLV_BIG_INTEGER, ret, ret_size);
}

int ttlv_get_date_time(const struct ttlv *parent, uint32_t tag, int64_t *ret) {
        struct ttlv *n;
        int r = find_typed(parent, tag, TTLV_DATE_TIME, &n);
        if (r >= 0)
                *ret = n->v.date_time;
        return r;
}

int ttlv_get_interval(const struct ttlv *parent, uint32_t tag, uint32_t *ret) {
        struct ttlv *n;
        int r = find_typed(parent, tag, TTLV_INTERVAL, &n);
        if (r >= 0)
                *ret = n->v.interval;
        return r;
}

/* Values under these tags are key material or plaintext and never printed. */
static bool tag_is_secret(uint32_t tag) {
        switch (tag) {
        case KMIP_TAG_KEY_MATERIAL:
        case KMIP_TAG_DATA:
        case KMIP_TAG_PASSWORD:
        case KMIP_TAG_CREDENTIAL_VALUE:
        case KMIP_TAG_D:
        case KMIP_TAG_P:
        case KMIP_TAG_Q:
        case KMIP_TAG_PRIVATE_EXPONENT:
        case KMIP_TAG_PRIME_EXPONENT_P:
        case KMIP_TAG_PRIME_EXPONENT_Q:
        case KMIP_TAG_CRT_COEFFICIENT:
        case KMIP_TAG_SECRET_DATA:
                return true;
        default:
                return false;
        }
}

struct out {
        char *buf;
        size_t size;
        size_t len;
};

static void out_printf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_printf(struct out *o, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = o->len < o->size ? o->size - o->len : 0;
        int k = vsnprintf(room ? o->buf + o->len : NULL, room, fmt, ap);
        va_end(ap);
        if (k > 0)
                o->len += (size_t) k;
}

static void format_item(struct out *o, const struct ttlv *n, unsigned depth, bool hidden) {
        hidden = hidden || tag_is_secret(n->tag);
        out_printf(o, "%*s%s (0x%06x) %s", (int) depth * 2, "", kmip_tag_name(n->tag), n->tag,
                   ttlv_type_name(n->type));
        switch (n->type) {
        case TTLV_STRUCTURE:
                out_printf(o, "\n");
                TTLV_FOREACH_CHILD(c, n)
                        format_item(o, c, depth + 1, hidden);
                return;
        case TTLV_INTEGER:
                out_printf(o, " %" PRId32, n->v.integer);
                break;
        case TTLV_ENUMERATION:
        case TTLV_INTERVAL:
                out_printf(o, " 0x%08" PRIx32, n->v.enumeration);
                break;
        case TTLV_LONG_INTEGER:
        case TTLV_DATE_TIME:
        case TTLV_DATE_TIME_EXTENDED:
                out_printf(o, " %" PRId64, n->v.long_integer);
                break;
        case TTLV_BOOLEAN:
                out_printf(o, " %s", n->v.boolean ? "true" : "false");
                break;
        case TTLV_TEXT_STRING:
                if (hidden)
                        out_printf(o, " (hidden)");
                else
                        out_printf(o, " \"%s\"", (const char *) n->v.bytes.data);
                break;
        case TTLV_BYTE_STRING:
        case TTLV_BIG_INTEGER:
                if (hidden)
                        out_printf(o, " (hidden, %zu bytes)", n->v.bytes.size);
                else {
                        out_printf(o, " ");
                        for (size_t i = 0; i < n->v.bytes.size && i < 64; i++)
                                out_printf(o, "%02x", n->v.bytes.data[i]);
                        if (n->v.bytes.size > 64)
                                out_printf(o, "... (%zu bytes)", n->v.bytes.size);
                }
                break;
        }
        out_printf(o, "\n");
}

size_t ttlv_format(const struct ttlv *n, char *buf, size_t size) {
        struct out o = { .buf = buf, .size = size };
        if (size)
                buf[0] = '\0';
        if (n)
                format_item(&o, n, 0, false);
        return o.len;
}
