/* TTLV, the binary encoding of KMIP (KMIP 1.4 §9.1, 2.0 §9.1): a strict codec and a
 * small tree API. Every node of one message lives in one arena, so decoding costs a
 * handful of allocations per message, and freeing the arena wipes everything it held
 * (byte strings may carry key material).
 *
 * The decoder trusts nothing: lengths are checked against the enclosing structure,
 * padding must be zero, fixed-size types must have their exact length, text must be
 * UTF-8, and depth, node count and total size are bounded. Malformed input yields
 * -EPROTO, structures nested deeper than the limit -ELOOP, input over another limit
 * -EMSGSIZE; nothing is ever read out of bounds. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/macro.h"

enum ttlv_type {
        TTLV_STRUCTURE = 0x01,
        TTLV_INTEGER = 0x02,
        TTLV_LONG_INTEGER = 0x03,
        TTLV_BIG_INTEGER = 0x04,
        TTLV_ENUMERATION = 0x05,
        TTLV_BOOLEAN = 0x06,
        TTLV_TEXT_STRING = 0x07,
        TTLV_BYTE_STRING = 0x08,
        TTLV_DATE_TIME = 0x09,
        TTLV_INTERVAL = 0x0A,
        TTLV_DATE_TIME_EXTENDED = 0x0B, /* KMIP 2.0 */
};

/* Tag (3 bytes), type (1 byte), length (4 bytes). */
#define TTLV_HEADER_SIZE 8

/* Bounds applied while decoding. */
struct ttlv_limits {
        size_t max_size;    /* whole encoded item, header included */
        unsigned max_depth; /* nesting of structures; the outermost item is depth 1 */
        size_t max_nodes;   /* items in total */
};

/* 1 MiB, depth 32, 65536 items: far above anything KMIP clients send in practice. */
extern const struct ttlv_limits ttlv_default_limits;

/* One TTLV item. Children of a structure form a singly linked list in wire order. */
struct ttlv {
        uint32_t tag;
        enum ttlv_type type;
        union {
                int32_t integer;      /* TTLV_INTEGER */
                uint32_t enumeration; /* TTLV_ENUMERATION */
                uint32_t interval;    /* TTLV_INTERVAL, seconds */
                int64_t long_integer; /* TTLV_LONG_INTEGER */
                int64_t date_time;    /* TTLV_DATE_TIME: POSIX seconds; _EXTENDED: microseconds */
                bool boolean;         /* TTLV_BOOLEAN */
                /* TTLV_TEXT_STRING (UTF-8, NUL-terminated after size bytes for convenience),
                 * TTLV_BYTE_STRING, TTLV_BIG_INTEGER (big-endian two's complement, as on the
                 * wire: a multiple of 8 bytes after decoding). */
                struct {
                        const uint8_t *data;
                        size_t size;
                } bytes;
        } v;
        struct ttlv *parent;
        struct ttlv *child; /* first child (structures) */
        struct ttlv *last;  /* last child, for appending in O(1) */
        struct ttlv *next;  /* next sibling */
};

#define TTLV_FOREACH_CHILD(c, parent) for (struct ttlv *c = (parent)->child; c; c = c->next)

/* Per-message memory. Allocation failure is sticky: builders return NULL and the
 * arena remembers, so a caller may build a whole message and check once. */
struct ttlv_arena;

/* A new, empty arena; NULL on allocation failure. */
struct ttlv_arena *ttlv_arena_new(void);
/* Wipe and free everything in the arena; NULL is fine. */
void ttlv_arena_free(struct ttlv_arena *a);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct ttlv_arena *, ttlv_arena_free);
/* Wipe everything and make the arena empty again, keeping one block for reuse. */
void ttlv_arena_reset(struct ttlv_arena *a);
/* Zeroed, 8-byte aligned memory that lives as long as the arena; NULL on failure. */
void *ttlv_arena_alloc(struct ttlv_arena *a, size_t size);
/* Copy of s (NUL-terminated) in the arena; NULL on failure. */
char *ttlv_arena_strdup(struct ttlv_arena *a, const char *s);
/* True when any allocation from the arena failed since it was created or reset. */
bool ttlv_arena_failed(const struct ttlv_arena *a);

/* Name of a type ("Structure", "Integer", ...), or "Unknown". */
const char *ttlv_type_name(enum ttlv_type type);

/* Decode exactly one item that fills buf[0..size) into nodes in arena a (limits NULL:
 * ttlv_default_limits). 0, -EPROTO (malformed), -ELOOP (nested deeper than max_depth),
 * -EMSGSIZE (over another limit), -ENOMEM. */
int ttlv_decode(struct ttlv_arena *a, const uint8_t *buf, size_t size,
                const struct ttlv_limits *limits, struct ttlv **ret);

/* From the first 8 bytes of a message, the total size to read (header included).
 * -EPROTO unless it is a structure, -EMSGSIZE if larger than max_size. */
int ttlv_frame_size(const uint8_t header[static TTLV_HEADER_SIZE], size_t max_size, size_t *ret);

/* Bytes the encoding of n takes, header and padding included. */
size_t ttlv_encoded_size(const struct ttlv *n);
/* Encode n into buf; *ret_size = bytes written. -ENOBUFS if size is too small,
 * -EINVAL for a node that cannot be encoded (e.g. a length over 2^32-1). */
int ttlv_encode(const struct ttlv *n, uint8_t *buf, size_t size, size_t *ret_size);
/* Encode n into a new buffer; free it with ttlv_buffer_free(). 0, -ENOMEM, -EINVAL. */
int ttlv_encode_alloc(const struct ttlv *n, uint8_t **ret, size_t *ret_size);
/* Wipe and free a buffer from ttlv_encode_alloc(); NULL is fine. */
void ttlv_buffer_free(uint8_t *buf, size_t size);

/* Builders: a new node in arena a, appended to parent unless parent is NULL (then it
 * stays detached, see ttlv_append()). NULL on allocation failure (sticky, see above). */
struct ttlv *ttlv_add_structure(struct ttlv_arena *a, struct ttlv *parent, uint32_t tag);
struct ttlv *ttlv_add_integer(struct ttlv_arena *a, struct ttlv *parent, uint32_t tag, int32_t v);
struct ttlv *ttlv_add_long(struct ttlv_arena *a, struct ttlv *parent, uint32_t tag, int64_t v);
struct ttlv *ttlv_add_enum(struct ttlv_arena *a, struct ttlv *parent, uint32_t tag, uint32_t v);
struct ttlv *ttlv_add_bool(struct ttlv_arena *a, struct ttlv *parent, uint32_t tag, bool v);
struct ttlv *ttlv_add_text(struct ttlv_arena *a, struct ttlv *parent, uint32_t tag, const char *s);
struct ttlv *ttlv_add_text_len(struct ttlv_arena *a, struct ttlv *parent, uint32_t tag,
                               const char *s, size_t n);
struct ttlv *ttlv_add_bytes(struct ttlv_arena *a, struct ttlv *parent, uint32_t tag,
                            const void *p, size_t n);
/* Big Integer from big-endian two's complement bytes; the encoder sign-extends to a
 * multiple of 8 bytes. */
struct ttlv *ttlv_add_big_integer(struct ttlv_arena *a, struct ttlv *parent, uint32_t tag,
                                  const void *p, size_t n);
struct ttlv *ttlv_add_date_time(struct ttlv_arena *a, struct ttlv *parent, uint32_t tag, int64_t t);
struct ttlv *ttlv_add_date_time_ext(struct ttlv_arena *a, struct ttlv *parent, uint32_t tag,
                                    int64_t usec);
struct ttlv *ttlv_add_interval(struct ttlv_arena *a, struct ttlv *parent, uint32_t tag, uint32_t v);

/* Append a detached node (or subtree) as the last child of parent; no-op if either
 * is NULL. The child must not already have a parent. */
void ttlv_append(struct ttlv *parent, struct ttlv *child);
/* Unlink n from its parent (it stays in the arena, detached). */
void ttlv_detach(struct ttlv *n);
/* Deep copy of src into arena a with tag `tag` (0: keep src's tag), appended to
 * parent unless NULL. src may live in another arena. NULL on allocation failure. */
struct ttlv *ttlv_copy(struct ttlv_arena *a, struct ttlv *parent, const struct ttlv *src, uint32_t tag);
/* Structural equality: same tag, type, value and children in order. */
bool ttlv_equal(const struct ttlv *x, const struct ttlv *y);

/* Lookup: first child of parent with tag, or NULL. parent may be NULL. */
struct ttlv *ttlv_find(const struct ttlv *parent, uint32_t tag);
/* The next sibling after n with the same tag as n, or NULL. */
struct ttlv *ttlv_find_next(const struct ttlv *n);
/* Number of children of parent with tag (any tag if tag is 0). */
size_t ttlv_count(const struct ttlv *parent, uint32_t tag);

/* Typed getters on the first child with tag: 0; -ENODATA when there is none (so an
 * optional field is `r == -ENODATA`); -EPROTO when it has another type. Text results
 * are NUL-terminated; ret_size may be NULL. Outputs are untouched on failure. */
int ttlv_get_structure(const struct ttlv *parent, uint32_t tag, struct ttlv **ret);
int ttlv_get_integer(const struct ttlv *parent, uint32_t tag, int32_t *ret);
int ttlv_get_long(const struct ttlv *parent, uint32_t tag, int64_t *ret);
int ttlv_get_enum(const struct ttlv *parent, uint32_t tag, uint32_t *ret);
int ttlv_get_bool(const struct ttlv *parent, uint32_t tag, bool *ret);
int ttlv_get_text(const struct ttlv *parent, uint32_t tag, const char **ret, size_t *ret_size);
int ttlv_get_bytes(const struct ttlv *parent, uint32_t tag, const uint8_t **ret, size_t *ret_size);
int ttlv_get_big_integer(const struct ttlv *parent, uint32_t tag, const uint8_t **ret, size_t *ret_size);
int ttlv_get_date_time(const struct ttlv *parent, uint32_t tag, int64_t *ret);
int ttlv_get_interval(const struct ttlv *parent, uint32_t tag, uint32_t *ret);

/* Human-readable dump of a tree for debug logs and `vmcrypt kms --debug`: one line per
 * item, indented; byte strings under tags that carry key material print as
 * "(hidden)". Writes at most size bytes (NUL-terminated); returns the length the full
 * dump needs, like snprintf. */
size_t ttlv_format(const struct ttlv *n, char *buf, size_t size);
