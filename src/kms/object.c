/* Managed objects and their attribute lists: see object.h. The JSON form is what the
 * store keeps (beside the sealed key); it never contains key material. */
#include "kms/object.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>


struct kms_object *kms_object_new(void) {
        return calloc(1, sizeof(struct kms_object));
}

static void attr_clear(struct kms_attr *a) {
        free(a->name);
        free(a->value);
        *a = (struct kms_attr) {};
}

void kms_object_free(struct kms_object *o) {
        if (!o)
                return;
        for (size_t i = 0; i < o->n_attrs; i++)
                attr_clear(&o->attrs[i]);
        free(o->attrs);
        secret_free(o->key);
        free(o);
}

static struct kms_attr *find_mut(const struct kms_object *o, const char *name, uint32_t index) {
        for (size_t i = 0; i < o->n_attrs; i++)
                if (o->attrs[i].index == index && strcmp(o->attrs[i].name, name) == 0)
                        return &o->attrs[i];
        return NULL;
}

const struct kms_attr *kms_object_find(const struct kms_object *o, const char *name, uint32_t index) {
        return find_mut(o, name, index);
}

size_t kms_object_count(const struct kms_object *o, const char *name) {
        size_t n = 0;
        for (size_t i = 0; i < o->n_attrs; i++)
                n += strcmp(o->attrs[i].name, name) == 0;
        return n;
}

uint32_t kms_object_next_index(const struct kms_object *o, const char *name) {
        uint32_t next = 0;
        for (size_t i = 0; i < o->n_attrs; i++)
                if (strcmp(o->attrs[i].name, name) == 0 && o->attrs[i].index >= next)
                        next = o->attrs[i].index + 1;
        return next;
}

int kms_object_set(struct kms_object *o, const char *name, uint32_t index, uint8_t type,
                   const void *value, size_t len) {
        uint8_t *copy = malloc(len ? len : 1);
        if (!copy)
                return -ENOMEM;
        if (len)
                memcpy(copy, value, len);

        struct kms_attr *a = find_mut(o, name, index);
        if (a) {
                free(a->value);
                a->value = copy;
                a->len = len;
                a->type = type;
                return 0;
        }
        char *n = strdup(name);
        struct kms_attr *attrs = n ? realloc(o->attrs, (o->n_attrs + 1) * sizeof(*attrs)) : NULL;
        if (!attrs) {
                free(n);
                free(copy);
                return -ENOMEM;
        }
        o->attrs = attrs;
        o->attrs[o->n_attrs++] = (struct kms_attr) {
                .name = n, .index = index, .type = type, .len = len, .value = copy,
        };
        return 0;
}

int kms_object_remove(struct kms_object *o, const char *name, uint32_t index) {
        struct kms_attr *a = find_mut(o, name, index);
        if (!a)
                return -ENOENT;
        attr_clear(a);
        size_t i = (size_t) (a - o->attrs);
        memmove(&o->attrs[i], &o->attrs[i + 1], (o->n_attrs - i - 1) * sizeof(*a));
        o->n_attrs--;
        return 0;
}

size_t kms_scalar_encode(uint8_t type, int64_t v, uint8_t buf[static 8]) {
        size_t n = (type == KMS_T_LONG || type == KMS_T_DATETIME || type == KMS_T_BOOL) ? 8 : 4;
        uint64_t u = (uint64_t) v;
        for (size_t i = 0; i < n; i++)
                buf[i] = (uint8_t) (u >> (8 * (n - 1 - i)));
        return n;
}

int kms_scalar_decode(uint8_t type, const uint8_t *p, size_t len, int64_t *ret) {
        switch (type) {
        case KMS_T_INTEGER:
        case KMS_T_ENUM:
        case KMS_T_INTERVAL:
                if (len != 4)
                        return -EINVAL;
                break;
        case KMS_T_LONG:
        case KMS_T_DATETIME:
        case KMS_T_BOOL:
                if (len != 8)
                        return -EINVAL;
                break;
        default:
                return -EINVAL;
        }
        uint64_t u = 0;
        for (size_t i = 0; i < len; i++)
                u = (u << 8) | p[i];
        /* Integer is signed 32-bit; Enumeration and Interval are unsigned. */
        if (type == KMS_T_INTEGER)
                *ret = (int32_t) (uint32_t) u;
        else
                *ret = (int64_t) u;
        return 0;
}

int kms_object_set_int(struct kms_object *o, const char *name, uint8_t type, int64_t v) {
        uint8_t buf[8];
        size_t n = kms_scalar_encode(type, v, buf);
        return kms_object_set(o, name, 0, type, buf, n);
}

int kms_object_set_text(struct kms_object *o, const char *name, const char *text) {
        return kms_object_set(o, name, 0, KMS_T_TEXT, text, strlen(text));
}

int kms_object_get_int(const struct kms_object *o, const char *name, int64_t *ret) {
        const struct kms_attr *a = kms_object_find(o, name, 0);
        if (!a)
                return -ENOENT;
        return kms_scalar_decode(a->type, a->value, a->len, ret);
}

static void put_be(uint8_t *p, uint64_t v, size_t n) {
        for (size_t i = 0; i < n; i++)
                p[i] = (uint8_t) (v >> (8 * (n - 1 - i)));
}

static uint64_t get_be(const uint8_t *p, size_t n) {
        uint64_t v = 0;
        for (size_t i = 0; i < n; i++)
                v = (v << 8) | p[i];
        return v;
}

int kms_attrs_encode(const struct kms_object *o, uint8_t **ret, size_t *ret_n) {
        size_t total = 0;
        for (size_t i = 0; i < o->n_attrs; i++) {
                size_t nl = strlen(o->attrs[i].name);
                if (nl > KMS_ATTR_NAME_MAX || o->attrs[i].len > UINT32_MAX)
                        return -E2BIG;
                total += 2 + nl + 4 + 1 + 4 + o->attrs[i].len;
        }
        uint8_t *buf = malloc(total ? total : 1), *p = buf;
        if (!buf)
                return -ENOMEM;
        for (size_t i = 0; i < o->n_attrs; i++) {
                const struct kms_attr *a = &o->attrs[i];
                size_t nl = strlen(a->name);
                put_be(p, nl, 2);
                memcpy(p + 2, a->name, nl);
                p += 2 + nl;
                put_be(p, a->index, 4);
                p[4] = a->type;
                put_be(p + 5, a->len, 4);
                memcpy(p + 9, a->value, a->len);
                p += 9 + a->len;
        }
        *ret = buf;
        *ret_n = total;
        return 0;
}

int kms_attrs_decode(struct kms_object *o, const uint8_t *p, size_t n) {
        char name[KMS_ATTR_NAME_MAX + 1];
        while (n > 0) {
                if (n < 2)
                        return -EBADMSG;
                size_t nl = get_be(p, 2);
                if (nl > KMS_ATTR_NAME_MAX || n < 2 + nl + 9)
                        return -EBADMSG;
                memcpy(name, p + 2, nl);
                name[nl] = 0;
                p += 2 + nl;
                n -= 2 + nl;
                uint32_t index = (uint32_t) get_be(p, 4);
                uint8_t type = p[4];
                size_t len = get_be(p + 5, 4);
                if (n - 9 < len)
                        return -EBADMSG;
                int r = kms_object_set(o, name, index, type, p + 9, len);
                if (r < 0)
                        return r;
                p += 9 + len;
                n -= 9 + len;
        }
        return 0;
}
