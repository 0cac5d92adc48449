/* The managed object as the server keeps it: identity, owner, lifecycle state, key
 * material (in a struct secret) and a list of attributes. Attribute values are kept
 * as raw TTLV payloads (type byte + value bytes) so any attribute, custom ones of any
 * type included, round-trips unchanged whatever KMIP version a client speaks. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/macro.h"
#include "shared/secret.h"

#define KMS_ID_MAX 40      /* UUID text (36) + NUL, rounded */
#define KMS_OWNER_MAX 256
#define KMS_ATTR_NAME_MAX 1024

/* TTLV item types (KMIP 1.4 §9.1.1.2); repeated here so the store does not depend
 * on the protocol library. */
enum {
        KMS_T_STRUCTURE = 0x01,
        KMS_T_INTEGER = 0x02,
        KMS_T_LONG = 0x03,
        KMS_T_BIGINT = 0x04,
        KMS_T_ENUM = 0x05,
        KMS_T_BOOL = 0x06,
        KMS_T_TEXT = 0x07,
        KMS_T_BYTES = 0x08,
        KMS_T_DATETIME = 0x09,
        KMS_T_INTERVAL = 0x0A,
};

/* Object Type enumeration values the server handles (KMIP 1.4 §9.1.3.2.12). */
enum {
        KMS_OBJ_SYMMETRIC_KEY = 2,
        KMS_OBJ_SECRET_DATA = 7,
};

/* State enumeration (KMIP 1.4 §9.1.3.2.17). */
enum {
        KMS_STATE_PRE_ACTIVE = 1,
        KMS_STATE_ACTIVE = 2,
        KMS_STATE_DEACTIVATED = 3,
        KMS_STATE_COMPROMISED = 4,
        KMS_STATE_DESTROYED = 5,
        KMS_STATE_DESTROYED_COMPROMISED = 6,
};

struct kms_attr {
        char *name;        /* KMIP attribute name, e.g. "Cryptographic Length", "x-Vendor" */
        uint32_t index;
        uint8_t type;      /* KMS_T_* */
        size_t len;
        uint8_t *value;    /* TTLV payload, unpadded (structures: encoded children) */
};

struct kms_object {
        char id[KMS_ID_MAX];
        char owner[KMS_OWNER_MAX];
        uint32_t object_type;
        uint32_t state;
        struct secret *key;     /* key material; NULL once destroyed */
        struct kms_attr *attrs;
        size_t n_attrs;
};

/* Allocate an empty object; NULL on allocation failure. */
struct kms_object *kms_object_new(void);
/* Free object, attributes and key (wiped). NULL is fine. */
void kms_object_free(struct kms_object *o);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kms_object *, kms_object_free);

/* Find attribute name with index; NULL if absent. */
const struct kms_attr *kms_object_find(const struct kms_object *o, const char *name, uint32_t index);
/* Number of instances of name. */
size_t kms_object_count(const struct kms_object *o, const char *name);
/* Highest index + 1 of name, i.e. the index a new instance gets. */
uint32_t kms_object_next_index(const struct kms_object *o, const char *name);
/* Set (replace or add) name[index] to a copy of the value; 0 or -ENOMEM. */
int kms_object_set(struct kms_object *o, const char *name, uint32_t index, uint8_t type,
                   const void *value, size_t len);
/* Remove name[index]; -ENOENT if absent. */
int kms_object_remove(struct kms_object *o, const char *name, uint32_t index);

/* Typed helpers over kms_object_set/find for the common scalar types. */
int kms_object_set_int(struct kms_object *o, const char *name, uint8_t type, int64_t v);
int kms_object_set_text(struct kms_object *o, const char *name, const char *text);
/* Read a scalar (Integer, Enumeration, Boolean, Interval: 4/8 bytes; Long, DateTime: 8);
 * -ENOENT if absent, -EINVAL if not a scalar. */
int kms_object_get_int(const struct kms_object *o, const char *name, int64_t *ret);

/* Serialise the attribute list (not the key) for storage; caller frees *ret. A
 * compact binary form (per attribute: u16 name length, name, u32 index, u8 type,
 * u32 value length, value; big-endian), because a Get parses it every time. */
int kms_attrs_encode(const struct kms_object *o, uint8_t **ret, size_t *ret_n);
/* Parse the form above into o's attribute list; -EBADMSG if malformed. */
int kms_attrs_decode(struct kms_object *o, const uint8_t *p, size_t n);

/* Encode an int64 as a TTLV payload of the given scalar type into buf[8]; returns length. */
size_t kms_scalar_encode(uint8_t type, int64_t v, uint8_t buf[static 8]);
/* Decode a scalar payload; -EINVAL for wrong length/type. */
int kms_scalar_decode(uint8_t type, const uint8_t *p, size_t len, int64_t *ret);
