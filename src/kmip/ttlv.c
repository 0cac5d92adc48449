/* The TTLV codec: decoding untrusted bytes into a tree, encoding a tree into bytes.
 * The decoder checks every length against the bytes that remain in the enclosing
 * structure before it looks at them, so a message that lies about a length fails
 * with -EPROTO instead of reading past the buffer. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "kmip/ttlv.h"
#include "shared/log.h"

const struct ttlv_limits ttlv_default_limits = {
        .max_size = 1U << 20,
        .max_depth = 32,
        .max_nodes = 65536,
};

const char *ttlv_type_name(enum ttlv_type type) {
        switch (type) {
        case TTLV_STRUCTURE: return "Structure";
        case TTLV_INTEGER: return "Integer";
        case TTLV_LONG_INTEGER: return "Long Integer";
        case TTLV_BIG_INTEGER: return "Big Integer";
        case TTLV_ENUMERATION: return "Enumeration";
        case TTLV_BOOLEAN: return "Boolean";
        case TTLV_TEXT_STRING: return "Text String";
        case TTLV_BYTE_STRING: return "Byte String";
        case TTLV_DATE_TIME: return "Date-Time";
        case TTLV_INTERVAL: return "Interval";
        case TTLV_DATE_TIME_EXTENDED: return "Date-Time Extended";
        }
        return "Unknown";
}

static uint32_t get_be32(const uint8_t *p) {
        return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

static uint64_t get_be64(const uint8_t *p) {
        return (uint64_t) get_be32(p) << 32 | get_be32(p + 4);
}

static void put_be32(uint8_t *p, uint32_t v) {
        p[0] = v >> 24;
        p[1] = v >> 16;
        p[2] = v >> 8;
        p[3] = v;
}

static void put_be64(uint8_t *p, uint64_t v) {
        put_be32(p, v >> 32);
        put_be32(p + 4, (uint32_t) v);
}

static bool all_zero(const uint8_t *p, size_t n) {
        uint8_t acc = 0;
        for (size_t i = 0; i < n; i++)
                acc |= p[i];
        return acc == 0;
}

/* Standard tags are 0x42xxxx, extensions 0x54xxxx; everything else is reserved. */
static bool tag_valid(uint32_t tag) {
        uint32_t hi = tag >> 16;
        return hi == 0x42 || hi == 0x54;
}

/* Strict UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF); NUL is
 * refused too, since text values end up as C strings. */
static bool utf8_valid(const uint8_t *s, size_t n) {
        size_t i = 0;
        while (i < n) {
                uint8_t c = s[i];
                if (c == 0)
                        return false;
                if (c < 0x80) {
                        i++;
                        continue;
                }
                size_t len;
                uint32_t cp, min;
                if ((c & 0xE0) == 0xC0) {
                        len = 2, cp = c & 0x1F, min = 0x80;
                } else if ((c & 0xF0) == 0xE0) {
                        len = 3, cp = c & 0x0F, min = 0x800;
                } else if ((c & 0xF8) == 0xF0) {
                        len = 4, cp = c & 0x07, min = 0x10000;
                } else
                        return false;
                if (n - i < len)
                        return false;
                for (size_t k = 1; k < len; k++) {
                        if ((s[i + k] & 0xC0) != 0x80)
                                return false;
                        cp = cp << 6 | (s[i + k] & 0x3F);
                }
                if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                        return false;
                i += len;
        }
        return true;
}

struct decoder {
        struct ttlv_arena *arena;
        const struct ttlv_limits *limits;
        size_t nodes;
};

/* Decode one item from p[0..avail); on success *ret_used is its padded size. */
static int decode_item(struct decoder *d, const uint8_t *p, size_t avail, unsigned depth,
                       struct ttlv *parent, struct ttlv **ret, size_t *ret_used) {
        if (avail < TTLV_HEADER_SIZE)
                return log_debug_errno(-EPROTO, "TTLV: truncated header (%zu bytes left)", avail);
        if (depth > d->limits->max_depth)
                return log_debug_errno(-ELOOP, "TTLV: nesting deeper than %u", d->limits->max_depth);
        if (++d->nodes > d->limits->max_nodes)
                return log_debug_errno(-EMSGSIZE, "TTLV: more than %zu items", d->limits->max_nodes);

        uint32_t tag = (uint32_t) p[0] << 16 | (uint32_t) p[1] << 8 | p[2];
        uint8_t type = p[3];
        size_t len = get_be32(p + 4);
        size_t room = avail - TTLV_HEADER_SIZE;
        const uint8_t *v = p + TTLV_HEADER_SIZE;

        if (!tag_valid(tag))
                return log_debug_errno(-EPROTO, "TTLV: reserved tag 0x%06x", tag);
        if (len > room)
                return log_debug_errno(-EPROTO, "TTLV: tag 0x%06x claims %zu bytes, only %zu left",
                                       tag, len, room);

        struct ttlv *n = ttlv_arena_alloc(d->arena, sizeof(*n));
        if (!n)
                return -ENOMEM;
        n->tag = tag;
        n->type = type;
        size_t padded;

        switch (type) {
        case TTLV_STRUCTURE: {
                /* A structure's length counts its children with their padding, so it is a
                 * multiple of 8 whenever the children are well formed. */
                if (len % 8 != 0)
                        return log_debug_errno(-EPROTO, "TTLV: structure 0x%06x length %zu not a multiple of 8",
                                               tag, len);
                size_t off = 0;
                while (off < len) {
                        struct ttlv *child;
                        size_t used;
                        int r = decode_item(d, v + off, len - off, depth + 1, n, &child, &used);
                        if (r < 0)
                                return r;
                        off += used;
                }
                padded = len;
                break;
        }
        case TTLV_INTEGER:
        case TTLV_ENUMERATION:
        case TTLV_INTERVAL:
                if (len != 4 || room < 8)
                        return log_debug_errno(-EPROTO, "TTLV: %s 0x%06x with length %zu",
                                               ttlv_type_name(type), tag, len);
                if (!all_zero(v + 4, 4))
                        return log_debug_errno(-EPROTO, "TTLV: non-zero padding after 0x%06x", tag);
                n->v.enumeration = get_be32(v); /* same bits for all three */
                padded = 8;
                break;
        case TTLV_LONG_INTEGER:
        case TTLV_DATE_TIME:
        case TTLV_DATE_TIME_EXTENDED:
                if (len != 8)
                        return log_debug_errno(-EPROTO, "TTLV: %s 0x%06x with length %zu",
                                               ttlv_type_name(type), tag, len);
                n->v.long_integer = (int64_t) get_be64(v);
                padded = 8;
                break;
        case TTLV_BOOLEAN: {
                if (len != 8)
                        return log_debug_errno(-EPROTO, "TTLV: Boolean 0x%06x with length %zu", tag, len);
                uint64_t b = get_be64(v);
                if (b > 1)
                        return log_debug_errno(-EPROTO, "TTLV: Boolean 0x%06x is neither 0 nor 1", tag);
                n->v.boolean = b == 1;
                padded = 8;
                break;
        }
        case TTLV_TEXT_STRING:
        case TTLV_BYTE_STRING:
        case TTLV_BIG_INTEGER: {
                padded = ALIGN_UP(len, 8);
                if (padded > room)
                        return log_debug_errno(-EPROTO, "TTLV: padding of 0x%06x runs past the end", tag);
                if (!all_zero(v + len, padded - len))
                        return log_debug_errno(-EPROTO, "TTLV: non-zero padding after 0x%06x", tag);
                if (type == TTLV_BIG_INTEGER && (len == 0 || len % 8 != 0))
                        return log_debug_errno(-EPROTO, "TTLV: Big Integer 0x%06x with length %zu", tag, len);
                if (type == TTLV_TEXT_STRING && !utf8_valid(v, len))
                        return log_debug_errno(-EPROTO, "TTLV: Text String 0x%06x is not valid UTF-8", tag);
                uint8_t *copy = ttlv_arena_alloc(d->arena, len + 1);
                if (!copy)
                        return -ENOMEM;
                memcpy(copy, v, len);
                n->v.bytes.data = copy;
                n->v.bytes.size = len;
                break;
        }
        default:
                return log_debug_errno(-EPROTO, "TTLV: unknown type 0x%02x for tag 0x%06x", type, tag);
        }

        ttlv_append(parent, n);
        *ret = n;
        *ret_used = TTLV_HEADER_SIZE + padded;
        return 0;
}

int ttlv_decode(struct ttlv_arena *a, const uint8_t *buf, size_t size,
                const struct ttlv_limits *limits, struct ttlv **ret) {
        struct decoder d = {
                .arena = a,
                .limits = limits ? limits : &ttlv_default_limits,
        };
        if (!buf && size > 0)
                return -EINVAL;
        if (size > d.limits->max_size)
                return log_debug_errno(-EMSGSIZE, "TTLV: message of %zu bytes over the limit of %zu",
                                       size, d.limits->max_size);
        struct ttlv *root;
        size_t used;
        int r = decode_item(&d, buf, size, 1, NULL, &root, &used);
        if (r < 0)
                return r;
        if (used != size)
                return log_debug_errno(-EPROTO, "TTLV: %zu trailing bytes after the item", size - used);
        *ret = root;
        return 0;
}

int ttlv_frame_size(const uint8_t header[static TTLV_HEADER_SIZE], size_t max_size, size_t *ret) {
        uint32_t tag = (uint32_t) header[0] << 16 | (uint32_t) header[1] << 8 | header[2];
        if (!tag_valid(tag) || header[3] != TTLV_STRUCTURE)
                return -EPROTO;
        size_t total = (size_t) get_be32(header + 4) + TTLV_HEADER_SIZE;
        if (total % 8 != 0)
                return -EPROTO;
        if (total > max_size)
                return -EMSGSIZE;
        *ret = total;
        return 0;
}

/* Bytes a Big Integer value takes once sign-extended to a multiple of 8. */
static size_t big_integer_size(size_t n) {
        return n == 0 ? 8 : ALIGN_UP(n, 8);
}

static size_t value_size(const struct ttlv *n) {
        switch (n->type) {
        case TTLV_STRUCTURE: {
                size_t s = 0;
                TTLV_FOREACH_CHILD(c, n)
                        s += ttlv_encoded_size(c);
                return s;
        }
        case TTLV_TEXT_STRING:
        case TTLV_BYTE_STRING:
                return ALIGN_UP(n->v.bytes.size, 8);
        case TTLV_BIG_INTEGER:
                return big_integer_size(n->v.bytes.size);
        default:
                return 8;
        }
}

size_t ttlv_encoded_size(const struct ttlv *n) {
        return TTLV_HEADER_SIZE + value_size(n);
}

static int encode_item(const struct ttlv *n, uint8_t *buf, size_t size, size_t *off) {
        if (size - *off < TTLV_HEADER_SIZE)
                return -ENOBUFS;
        if (!tag_valid(n->tag))
                return -EINVAL;
        uint8_t *h = buf + *off;
        h[0] = n->tag >> 16;
        h[1] = n->tag >> 8;
        h[2] = n->tag;
        h[3] = n->type;
        *off += TTLV_HEADER_SIZE;
        uint8_t *v = buf + *off;
        size_t room = size - *off;
        size_t len, padded;

        switch (n->type) {
        case TTLV_STRUCTURE: {
                size_t start = *off;
                TTLV_FOREACH_CHILD(c, n) {
                        int r = encode_item(c, buf, size, off);
                        if (r < 0)
                                return r;
                }
                len = *off - start;
                if (len > UINT32_MAX)
                        return -EINVAL;
                put_be32(h + 4, (uint32_t) len);
                return 0;
        }
        case TTLV_INTEGER:
        case TTLV_ENUMERATION:
        case TTLV_INTERVAL:
                if (room < 8)
                        return -ENOBUFS;
                put_be32(v, n->v.enumeration);
                memset(v + 4, 0, 4);
                len = 4, padded = 8;
                break;
        case TTLV_LONG_INTEGER:
        case TTLV_DATE_TIME:
        case TTLV_DATE_TIME_EXTENDED:
                if (room < 8)
                        return -ENOBUFS;
                put_be64(v, (uint64_t) n->v.long_integer);
                len = padded = 8;
                break;
        case TTLV_BOOLEAN:
                if (room < 8)
                        return -ENOBUFS;
                put_be64(v, n->v.boolean ? 1 : 0);
                len = padded = 8;
                break;
        case TTLV_TEXT_STRING:
        case TTLV_BYTE_STRING:
                len = n->v.bytes.size;
                padded = ALIGN_UP(len, 8);
                if (len > UINT32_MAX)
                        return -EINVAL;
                if (room < padded)
                        return -ENOBUFS;
                if (len)
                        memcpy(v, n->v.bytes.data, len);
                memset(v + len, 0, padded - len);
                break;
        case TTLV_BIG_INTEGER: {
                size_t n_in = n->v.bytes.size;
                len = padded = big_integer_size(n_in);
                if (len > UINT32_MAX)
                        return -EINVAL;
                if (room < padded)
                        return -ENOBUFS;
                /* Sign extension: leading 0xFF for negative numbers, 0x00 otherwise. */
                uint8_t fill = n_in > 0 && (n->v.bytes.data[0] & 0x80) ? 0xFF : 0x00;
                memset(v, fill, padded - n_in);
                if (n_in)
                        memcpy(v + padded - n_in, n->v.bytes.data, n_in);
                break;
        }
        default:
                return -EINVAL;
        }
        put_be32(h + 4, (uint32_t) len);
        *off += padded;
        return 0;
}

int ttlv_encode(const struct ttlv *n, uint8_t *buf, size_t size, size_t *ret_size) {
        size_t off = 0;
        int r = encode_item(n, buf, size, &off);
        if (r < 0)
                return r;
        if (ret_size)
                *ret_size = off;
        return 0;
}

int ttlv_encode_alloc(const struct ttlv *n, uint8_t **ret, size_t *ret_size) {
        size_t size = ttlv_encoded_size(n);
        uint8_t *buf = malloc(size);
        if (!buf)
                return -ENOMEM;
        size_t used;
        int r = ttlv_encode(n, buf, size, &used);
        if (r < 0) {
                ttlv_buffer_free(buf, size);
                return r;
        }
        *ret = buf;
        *ret_size = used;
        return 0;
}

void ttlv_buffer_free(uint8_t *buf, size_t size) {
        if (!buf)
                return;
        OPENSSL_cleanse(buf, size);
        free(buf);
}
