/* Attributes of managed objects, in one in-memory form for every KMIP version.
 *
 * KMIP 1.x wraps each attribute in Attribute{Attribute Name, Attribute Index,
 * Attribute Value}, inside Template-Attribute; KMIP 2.0 gives each attribute its own
 * tag inside Attributes, and custom attributes become Attribute{Vendor
 * Identification, Attribute Name, Attribute Value} (the "Vendor Attribute", same
 * tag as 1.x Attribute, told apart by its fields), with "x-Name" written as vendor
 * "x", name "Name". Here an attribute is (name, index, value): the 1.x name is the
 * key ("Cryptographic Algorithm", "x-Vendor"), the value a TTLV node of the right
 * type (a structure for Name, Link, Cryptographic Parameters, ...). The converters
 * read either form and write the one the peer speaks; a server stores attributes
 * once and answers each client in its own version. Custom attributes may have any
 * type. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kmip/message.h"
#include "kmip/ttlv.h"

/* Attribute names (KMIP 1.x spelling). */
#define KMIP_ATTR_UNIQUE_IDENTIFIER "Unique Identifier"
#define KMIP_ATTR_NAME "Name"
#define KMIP_ATTR_OBJECT_TYPE "Object Type"
#define KMIP_ATTR_CRYPTOGRAPHIC_ALGORITHM "Cryptographic Algorithm"
#define KMIP_ATTR_CRYPTOGRAPHIC_LENGTH "Cryptographic Length"
#define KMIP_ATTR_CRYPTOGRAPHIC_PARAMETERS "Cryptographic Parameters"
#define KMIP_ATTR_CRYPTOGRAPHIC_USAGE_MASK "Cryptographic Usage Mask"
#define KMIP_ATTR_STATE "State"
#define KMIP_ATTR_INITIAL_DATE "Initial Date"
#define KMIP_ATTR_ACTIVATION_DATE "Activation Date"
#define KMIP_ATTR_DEACTIVATION_DATE "Deactivation Date"
#define KMIP_ATTR_DESTROY_DATE "Destroy Date"
#define KMIP_ATTR_COMPROMISE_DATE "Compromise Date"
#define KMIP_ATTR_COMPROMISE_OCCURRENCE_DATE "Compromise Occurrence Date"
#define KMIP_ATTR_REVOCATION_REASON "Revocation Reason"
#define KMIP_ATTR_LAST_CHANGE_DATE "Last Change Date"
#define KMIP_ATTR_OPERATION_POLICY_NAME "Operation Policy Name"
#define KMIP_ATTR_OBJECT_GROUP "Object Group"
#define KMIP_ATTR_LINK "Link"
#define KMIP_ATTR_DIGEST "Digest"
#define KMIP_ATTR_FRESH "Fresh"
#define KMIP_ATTR_CONTACT_INFORMATION "Contact Information"
#define KMIP_ATTR_DESCRIPTION "Description"
#define KMIP_ATTR_COMMENT "Comment"
#define KMIP_ATTR_SENSITIVE "Sensitive"
#define KMIP_ATTR_EXTRACTABLE "Extractable"
#define KMIP_ATTR_KEY_FORMAT_TYPE "Key Format Type"

/* Facts about a standard attribute. */
enum {
        KMIP_ATTR_MULTI = 1U << 0,       /* may have several instances */
        KMIP_ATTR_CLIENT_SET = 1U << 1,  /* a client may set it at creation or add it */
        KMIP_ATTR_CLIENT_MODIFY = 1U << 2, /* a client may modify/delete it later */
        KMIP_ATTR_SINCE_1_1 = 1U << 3,   /* not in KMIP 1.0 (never sent to 1.0 peers) */
        KMIP_ATTR_SINCE_1_2 = 1U << 4,
        KMIP_ATTR_SINCE_1_4 = 1U << 5,
        KMIP_ATTR_SINCE_2_0 = 1U << 6,
        KMIP_ATTR_ONLY_1X = 1U << 7,     /* removed in 2.0 */
};

struct kmip_attr_def {
        const char *name;     /* 1.x name */
        uint32_t tag;         /* its tag (the 2.0 element tag) */
        enum ttlv_type type;
        unsigned flags;
};

/* The table entry for a standard attribute, by 1.x name (exact) or tag; NULL if none. */
const struct kmip_attr_def *kmip_attr_def_by_name(const char *name);
const struct kmip_attr_def *kmip_attr_def_by_tag(uint32_t tag);
/* True for custom attribute names: "x-..." (client) and "y-..." (server). */
bool kmip_attr_name_is_custom(const char *name);
/* Whether an attribute may be sent to a peer speaking v (e.g. Fresh is 1.1+). */
bool kmip_attr_in_version(const char *name, struct kmip_version v);

struct kmip_attr {
        const char *name;   /* in the arena of the list, NUL-terminated */
        int32_t index;      /* 1.x Attribute Index; 0 when absent */
        struct ttlv *value; /* typed value (its tag is irrelevant) */
};

/* A growable array of attributes; everything in one arena. */
struct kmip_attr_list {
        struct kmip_attr *items;
        size_t n;
        size_t allocated;
};

/* Read one attribute from a 1.x Attribute structure, a 2.0 attribute element, or a
 * 2.0 Vendor Attribute. Checks the value type of standard attributes. 0; -EPROTO for
 * a malformed attribute; -ENOENT for a 2.0 tag that is no attribute; -ENOMEM. */
int kmip_attr_parse(struct ttlv_arena *a, const struct ttlv *node, struct kmip_attr *ret);
/* Append every attribute found directly in container (Template-Attribute, Attributes,
 * a 1.x payload's Attribute children, ...) to list; 1.x Template-Attribute Name
 * references (templates) are ignored. Unknown 2.0 tags: -EPROTO. */
int kmip_attrs_parse(struct ttlv_arena *a, const struct ttlv *container, struct kmip_attr_list *list);

/* Append attr to parent in the form version v uses (1.x Attribute structure, or a 2.0
 * element / Vendor Attribute). Returns the node, NULL on allocation failure. */
struct ttlv *kmip_attr_build(struct ttlv_arena *a, struct ttlv *parent, const struct kmip_attr *attr,
                             struct kmip_version v);
/* Append all attributes of list to parent as above (skipping those not in v). */
int kmip_attrs_build(struct ttlv_arena *a, struct ttlv *parent, const struct kmip_attr_list *list,
                     struct kmip_version v);
/* The container for attributes sent in a request for version v: a new Template-
 * Attribute (1.x) or Attributes (2.0) structure appended to parent, with list in it. */
struct ttlv *kmip_attrs_build_container(struct ttlv_arena *a, struct ttlv *parent,
                                        const struct kmip_attr_list *list, struct kmip_version v);

/* Add an attribute to a list (name copied, value deep-copied into a). 0 or -ENOMEM. */
int kmip_attr_list_add(struct ttlv_arena *a, struct kmip_attr_list *list, const char *name,
                       int32_t index, const struct ttlv *value);
/* Convenience adders for typed values. */
int kmip_attr_list_add_enum(struct ttlv_arena *a, struct kmip_attr_list *list, const char *name, uint32_t v);
int kmip_attr_list_add_integer(struct ttlv_arena *a, struct kmip_attr_list *list, const char *name, int32_t v);
int kmip_attr_list_add_bool(struct ttlv_arena *a, struct kmip_attr_list *list, const char *name, bool v);
int kmip_attr_list_add_text(struct ttlv_arena *a, struct kmip_attr_list *list, const char *name, const char *s);
int kmip_attr_list_add_date_time(struct ttlv_arena *a, struct kmip_attr_list *list, const char *name, int64_t t);
/* Name{Name Value, Name Type = Uninterpreted Text String}. */
int kmip_attr_list_add_name(struct ttlv_arena *a, struct kmip_attr_list *list, const char *name_value);
/* First attribute called name with the given index (index < 0: any), or NULL. */
struct kmip_attr *kmip_attr_list_find(const struct kmip_attr_list *list, const char *name, int32_t index);

/* 1.x attribute names in a GetAttributes/DeleteAttribute request (Attribute Name text
 * strings) or 2.0 Attribute Reference structures/enumerations, as 1.x names appended
 * to names (arena strings). max bounds the count; 0 or -EPROTO/-E2BIG/-ENOMEM. */
int kmip_attr_names_parse(struct ttlv_arena *a, const struct ttlv *payload, const char **names,
                          size_t max, size_t *ret_n);
/* Append a reference to attribute `name` to a request payload in v's form. */
struct ttlv *kmip_attr_name_build(struct ttlv_arena *a, struct ttlv *payload, const char *name,
                                  struct kmip_version v);

/* Serialise one value to bytes for storage (its TTLV encoding) and back; a server
 * keeps attributes of any type this way. Free the bytes with ttlv_buffer_free(). */
int kmip_attr_value_encode(const struct ttlv *value, uint8_t **ret, size_t *ret_size);
int kmip_attr_value_decode(struct ttlv_arena *a, const uint8_t *buf, size_t size, struct ttlv **ret);
