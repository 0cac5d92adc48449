/* Attributes in one form for all KMIP versions, and the converters to and from the
 * wire forms of KMIP 1.x (Attribute structures) and 2.0 (tagged elements, Vendor
 * Attribute). See attribute.h for the model. */
#include <errno.h>
#include <string.h>

#include "kmip/attribute.h"
#include "kmip/tags.h"
#include "shared/log.h"

#define SET (KMIP_ATTR_CLIENT_SET)
#define MOD (KMIP_ATTR_CLIENT_SET | KMIP_ATTR_CLIENT_MODIFY)

static const struct kmip_attr_def attr_defs[] = {
        { "Unique Identifier", KMIP_TAG_UNIQUE_IDENTIFIER, TTLV_TEXT_STRING, 0 },
        { "Name", KMIP_TAG_NAME, TTLV_STRUCTURE, KMIP_ATTR_MULTI | MOD },
        { "Object Type", KMIP_TAG_OBJECT_TYPE, TTLV_ENUMERATION, 0 },
        { "Cryptographic Algorithm", KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM, TTLV_ENUMERATION, SET },
        { "Cryptographic Length", KMIP_TAG_CRYPTOGRAPHIC_LENGTH, TTLV_INTEGER, SET },
        { "Cryptographic Parameters", KMIP_TAG_CRYPTOGRAPHIC_PARAMETERS, TTLV_STRUCTURE, KMIP_ATTR_MULTI | MOD },
        { "Cryptographic Domain Parameters", KMIP_TAG_CRYPTOGRAPHIC_DOMAIN_PARAMETERS, TTLV_STRUCTURE, SET },
        { "Certificate Type", KMIP_TAG_CERTIFICATE_TYPE, TTLV_ENUMERATION, 0 },
        { "Certificate Length", KMIP_TAG_CERTIFICATE_LENGTH, TTLV_INTEGER, KMIP_ATTR_SINCE_1_1 },
        { "Digital Signature Algorithm", KMIP_TAG_DIGITAL_SIGNATURE_ALGORITHM, TTLV_ENUMERATION,
          KMIP_ATTR_MULTI | KMIP_ATTR_SINCE_1_1 },
        { "Digest", KMIP_TAG_DIGEST, TTLV_STRUCTURE, KMIP_ATTR_MULTI },
        { "Operation Policy Name", KMIP_TAG_OPERATION_POLICY_NAME, TTLV_TEXT_STRING, MOD | KMIP_ATTR_ONLY_1X },
        { "Cryptographic Usage Mask", KMIP_TAG_CRYPTOGRAPHIC_USAGE_MASK, TTLV_INTEGER, SET },
        { "Lease Time", KMIP_TAG_LEASE_TIME, TTLV_INTERVAL, 0 },
        { "Usage Limits", KMIP_TAG_USAGE_LIMITS, TTLV_STRUCTURE, MOD },
        { "State", KMIP_TAG_STATE, TTLV_ENUMERATION, 0 },
        { "Initial Date", KMIP_TAG_INITIAL_DATE, TTLV_DATE_TIME, 0 },
        { "Activation Date", KMIP_TAG_ACTIVATION_DATE, TTLV_DATE_TIME, MOD },
        { "Process Start Date", KMIP_TAG_PROCESS_START_DATE, TTLV_DATE_TIME, MOD },
        { "Protect Stop Date", KMIP_TAG_PROTECT_STOP_DATE, TTLV_DATE_TIME, MOD },
        { "Deactivation Date", KMIP_TAG_DEACTIVATION_DATE, TTLV_DATE_TIME, MOD },
        { "Destroy Date", KMIP_TAG_DESTROY_DATE, TTLV_DATE_TIME, 0 },
        { "Compromise Occurrence Date", KMIP_TAG_COMPROMISE_OCCURRENCE_DATE, TTLV_DATE_TIME, 0 },
        { "Compromise Date", KMIP_TAG_COMPROMISE_DATE, TTLV_DATE_TIME, 0 },
        { "Revocation Reason", KMIP_TAG_REVOCATION_REASON, TTLV_STRUCTURE, 0 },
        { "Archive Date", KMIP_TAG_ARCHIVE_DATE, TTLV_DATE_TIME, 0 },
        { "Object Group", KMIP_TAG_OBJECT_GROUP, TTLV_TEXT_STRING, KMIP_ATTR_MULTI | MOD },
        { "Fresh", KMIP_TAG_FRESH, TTLV_BOOLEAN, MOD | KMIP_ATTR_SINCE_1_1 },
        { "Link", KMIP_TAG_LINK, TTLV_STRUCTURE, KMIP_ATTR_MULTI | MOD },
        { "Application Specific Information", KMIP_TAG_APPLICATION_SPECIFIC_INFORMATION, TTLV_STRUCTURE,
          KMIP_ATTR_MULTI | MOD },
        { "Contact Information", KMIP_TAG_CONTACT_INFORMATION, TTLV_TEXT_STRING, MOD },
        { "Last Change Date", KMIP_TAG_LAST_CHANGE_DATE, TTLV_DATE_TIME, 0 },
        { "Alternative Name", KMIP_TAG_ALTERNATIVE_NAME, TTLV_STRUCTURE,
          KMIP_ATTR_MULTI | MOD | KMIP_ATTR_SINCE_1_2 },
        { "Key Value Present", KMIP_TAG_KEY_VALUE_PRESENT, TTLV_BOOLEAN, KMIP_ATTR_SINCE_1_2 },
        { "Key Value Location", KMIP_TAG_KEY_VALUE_LOCATION, TTLV_STRUCTURE,
          KMIP_ATTR_MULTI | KMIP_ATTR_SINCE_1_2 },
        { "Original Creation Date", KMIP_TAG_ORIGINAL_CREATION_DATE, TTLV_DATE_TIME, KMIP_ATTR_SINCE_1_2 },
        { "Random Number Generator", KMIP_TAG_RANDOM_NUMBER_GENERATOR, TTLV_STRUCTURE, KMIP_ATTR_SINCE_1_2 },
        { "PKCS#12 Friendly Name", KMIP_TAG_PKCS12_FRIENDLY_NAME, TTLV_TEXT_STRING, MOD | KMIP_ATTR_SINCE_1_4 },
        { "Description", KMIP_TAG_DESCRIPTION, TTLV_TEXT_STRING, MOD | KMIP_ATTR_SINCE_1_4 },
        { "Comment", KMIP_TAG_COMMENT, TTLV_TEXT_STRING, MOD | KMIP_ATTR_SINCE_1_4 },
        { "Sensitive", KMIP_TAG_SENSITIVE, TTLV_BOOLEAN, MOD | KMIP_ATTR_SINCE_1_4 },
        { "Always Sensitive", KMIP_TAG_ALWAYS_SENSITIVE, TTLV_BOOLEAN, KMIP_ATTR_SINCE_1_4 },
        { "Extractable", KMIP_TAG_EXTRACTABLE, TTLV_BOOLEAN, MOD | KMIP_ATTR_SINCE_1_4 },
        { "Never Extractable", KMIP_TAG_NEVER_EXTRACTABLE, TTLV_BOOLEAN, KMIP_ATTR_SINCE_1_4 },
        { "Key Format Type", KMIP_TAG_KEY_FORMAT_TYPE, TTLV_ENUMERATION, KMIP_ATTR_SINCE_2_0 },
        { "Short Unique Identifier", KMIP_TAG_SHORT_UNIQUE_IDENTIFIER, TTLV_BYTE_STRING, KMIP_ATTR_SINCE_2_0 },
        { "NIST Key Type", KMIP_TAG_NIST_KEY_TYPE, TTLV_ENUMERATION, SET | KMIP_ATTR_SINCE_2_0 },
        { "Quantum Safe", KMIP_TAG_QUANTUM_SAFE, TTLV_BOOLEAN, SET | KMIP_ATTR_SINCE_2_0 },
        { "Protection Storage Mask", KMIP_TAG_PROTECTION_STORAGE_MASK, TTLV_INTEGER, SET | KMIP_ATTR_SINCE_2_0 },
};

const struct kmip_attr_def *kmip_attr_def_by_name(const char *name) {
        if (!name)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(attr_defs); i++)
                if (strcmp(attr_defs[i].name, name) == 0)
                        return &attr_defs[i];
        return NULL;
}

const struct kmip_attr_def *kmip_attr_def_by_tag(uint32_t tag) {
        for (size_t i = 0; i < ELEMENTSOF(attr_defs); i++)
                if (attr_defs[i].tag == tag)
                        return &attr_defs[i];
        return NULL;
}

bool kmip_attr_name_is_custom(const char *name) {
        return name && (strncmp(name, "x-", 2) == 0 || strncmp(name, "y-", 2) == 0);
}

bool kmip_attr_in_version(const char *name, struct kmip_version v) {
        const struct kmip_attr_def *d = kmip_attr_def_by_name(name);
        if (!d)
                return true; /* custom attributes exist in every version */
        if ((d->flags & KMIP_ATTR_ONLY_1X) && v.major >= 2)
                return false;
        if ((d->flags & KMIP_ATTR_SINCE_2_0) && v.major < 2)
                return false;
        if (v.major >= 2)
                return true;
        if ((d->flags & KMIP_ATTR_SINCE_1_4) && v.minor < 4)
                return false;
        if ((d->flags & KMIP_ATTR_SINCE_1_2) && v.minor < 2)
                return false;
        if ((d->flags & KMIP_ATTR_SINCE_1_1) && v.minor < 1)
                return false;
        return true;
}

static int check_type(const char *name, const struct ttlv *value) {
        const struct kmip_attr_def *d = kmip_attr_def_by_name(name);
        if (d && d->type != value->type)
                return log_debug_errno(-EPROTO, "KMIP: attribute '%s' has type %s, expected %s", name,
                                       ttlv_type_name(value->type), ttlv_type_name(d->type));
        return 0;
}

/* "x" + "Name" -> "x-Name" in the arena. */
static char *join_vendor(struct ttlv_arena *a, const char *vendor, size_t nv, const char *name, size_t nn) {
        char *s = ttlv_arena_alloc(a, nv + 1 + nn + 1);
        if (!s)
                return NULL;
        memcpy(s, vendor, nv);
        s[nv] = '-';
        memcpy(s + nv + 1, name, nn);
        return s;
}

int kmip_attr_parse(struct ttlv_arena *a, const struct ttlv *node, struct kmip_attr *ret) {
        struct kmip_attr attr = {};
        const char *name;
        size_t n;
        int r;

        if (!node)
                return -EPROTO;
        if (node->tag == KMIP_TAG_ATTRIBUTE && node->type == TTLV_STRUCTURE &&
            ttlv_find(node, KMIP_TAG_VENDOR_IDENTIFICATION)) {
                /* 2.0: Attribute{Vendor Identification, Attribute Name, Attribute Value}. */
                const char *vendor;
                size_t nv;
                if (ttlv_get_text(node, KMIP_TAG_VENDOR_IDENTIFICATION, &vendor, &nv) < 0 ||
                    ttlv_get_text(node, KMIP_TAG_ATTRIBUTE_NAME, &name, &n) < 0 || nv == 0)
                        return log_debug_errno(-EPROTO, "KMIP: malformed vendor Attribute");
                attr.value = ttlv_find(node, KMIP_TAG_ATTRIBUTE_VALUE);
                if (!attr.value)
                        return log_debug_errno(-EPROTO, "KMIP: vendor Attribute without value");
                attr.name = join_vendor(a, vendor, nv, name, n);
        } else if (node->tag == KMIP_TAG_ATTRIBUTE) {
                /* 1.x: Attribute{Attribute Name, Attribute Index, Attribute Value}. */
                if (node->type != TTLV_STRUCTURE)
                        return -EPROTO;
                r = ttlv_get_text(node, KMIP_TAG_ATTRIBUTE_NAME, &name, &n);
                if (r < 0)
                        return log_debug_errno(-EPROTO, "KMIP: Attribute without Attribute Name");
                r = ttlv_get_integer(node, KMIP_TAG_ATTRIBUTE_INDEX, &attr.index);
                if ((r < 0 && r != -ENODATA) || attr.index < 0)
                        return log_debug_errno(-EPROTO, "KMIP: malformed Attribute Index");
                attr.value = ttlv_find(node, KMIP_TAG_ATTRIBUTE_VALUE);
                if (!attr.value)
                        return log_debug_errno(-EPROTO, "KMIP: Attribute '%s' without value", name);
                attr.name = ttlv_arena_strdup(a, name);
        } else {
                const struct kmip_attr_def *d = kmip_attr_def_by_tag(node->tag);
                if (!d)
                        return -ENOENT;
                attr.name = d->name;
                attr.value = (struct ttlv *) node;
        }
        if (!attr.name)
                return -ENOMEM;
        r = check_type(attr.name, attr.value);
        if (r < 0)
                return r;
        *ret = attr;
        return 0;
}

static bool container_is_2x(uint32_t tag) {
        return tag == KMIP_TAG_ATTRIBUTES || tag == KMIP_TAG_COMMON_ATTRIBUTES ||
               tag == KMIP_TAG_PRIVATE_KEY_ATTRIBUTES || tag == KMIP_TAG_PUBLIC_KEY_ATTRIBUTES;
}

static int list_push(struct ttlv_arena *a, struct kmip_attr_list *list, const struct kmip_attr *attr) {
        if (list->n == list->allocated) {
                size_t k = list->allocated ? list->allocated * 2 : 8;
                struct kmip_attr *items = ttlv_arena_alloc(a, k * sizeof(*items));
                if (!items)
                        return -ENOMEM;
                if (list->n)
                        memcpy(items, list->items, list->n * sizeof(*items));
                list->items = items;
                list->allocated = k;
        }
        list->items[list->n++] = *attr;
        return 0;
}

int kmip_attrs_parse(struct ttlv_arena *a, const struct ttlv *container, struct kmip_attr_list *list) {
        if (!container)
                return 0;
        if (container->type != TTLV_STRUCTURE)
                return -EPROTO;
        bool v2 = container_is_2x(container->tag);
        TTLV_FOREACH_CHILD(c, container) {
                /* In a 1.x payload or Template-Attribute only Attribute items are
                 * attributes (Name there names a template, UID the object). */
                if (!v2 && c->tag != KMIP_TAG_ATTRIBUTE)
                        continue;
                struct kmip_attr attr;
                int r = kmip_attr_parse(a, c, &attr);
                if (r == -ENOENT)
                        return log_debug_errno(-EPROTO, "KMIP: %s (0x%06x) is not an attribute",
                                               kmip_tag_name(c->tag), c->tag);
                if (r < 0)
                        return r;
                r = list_push(a, list, &attr);
                if (r < 0)
                        return r;
        }
        return 0;
}

struct ttlv *kmip_attr_build(struct ttlv_arena *a, struct ttlv *parent, const struct kmip_attr *attr,
                             struct kmip_version v) {
        const struct kmip_attr_def *d = kmip_attr_def_by_name(attr->name);

        if (!kmip_version_is_2x(v)) {
                struct ttlv *n = ttlv_add_structure(a, parent, KMIP_TAG_ATTRIBUTE);
                ttlv_add_text(a, n, KMIP_TAG_ATTRIBUTE_NAME, attr->name);
                if (attr->index > 0)
                        ttlv_add_integer(a, n, KMIP_TAG_ATTRIBUTE_INDEX, attr->index);
                if (!ttlv_copy(a, n, attr->value, KMIP_TAG_ATTRIBUTE_VALUE))
                        return NULL;
                return n;
        }
        if (d)
                return ttlv_copy(a, parent, attr->value, d->tag);

        /* Custom attribute: "x-Name" is vendor "x", name "Name". */
        const char *dash = strchr(attr->name, '-');
        const char *vendor = "x", *name = attr->name;
        size_t nv = 1;
        if (dash && dash != attr->name) {
                vendor = attr->name;
                nv = (size_t) (dash - attr->name);
                name = dash + 1;
        }
        struct ttlv *n = ttlv_add_structure(a, parent, KMIP_TAG_VENDOR_ATTRIBUTE);
        ttlv_add_text_len(a, n, KMIP_TAG_VENDOR_IDENTIFICATION, vendor, nv);
        ttlv_add_text(a, n, KMIP_TAG_ATTRIBUTE_NAME, name);
        if (!ttlv_copy(a, n, attr->value, KMIP_TAG_ATTRIBUTE_VALUE))
                return NULL;
        return n;
}

int kmip_attrs_build(struct ttlv_arena *a, struct ttlv *parent, const struct kmip_attr_list *list,
                     struct kmip_version v) {
        if (!list)
                return 0;
        for (size_t i = 0; i < list->n; i++) {
                if (!kmip_attr_in_version(list->items[i].name, v))
                        continue;
                if (!kmip_attr_build(a, parent, &list->items[i], v))
                        return -ENOMEM;
        }
        return ttlv_arena_failed(a) ? -ENOMEM : 0;
}

struct ttlv *kmip_attrs_build_container(struct ttlv_arena *a, struct ttlv *parent,
                                        const struct kmip_attr_list *list, struct kmip_version v) {
        struct ttlv *c = ttlv_add_structure(a, parent,
                                            kmip_version_is_2x(v) ? KMIP_TAG_ATTRIBUTES : KMIP_TAG_TEMPLATE_ATTRIBUTE);
        if (!c || kmip_attrs_build(a, c, list, v) < 0)
                return NULL;
        return c;
}

int kmip_attr_list_add(struct ttlv_arena *a, struct kmip_attr_list *list, const char *name,
                       int32_t index, const struct ttlv *value) {
        struct kmip_attr attr = {
                .name = ttlv_arena_strdup(a, name),
                .index = index,
                .value = ttlv_copy(a, NULL, value, KMIP_TAG_ATTRIBUTE_VALUE),
        };
        if (!attr.name || !attr.value)
                return -ENOMEM;
        return list_push(a, list, &attr);
}

static int add_node(struct ttlv_arena *a, struct kmip_attr_list *list, const char *name, struct ttlv *value) {
        if (!value)
                return -ENOMEM;
        struct kmip_attr attr = { .name = ttlv_arena_strdup(a, name), .value = value };
        if (!attr.name)
                return -ENOMEM;
        return list_push(a, list, &attr);
}

int kmip_attr_list_add_enum(struct ttlv_arena *a, struct kmip_attr_list *list, const char *name, uint32_t v) {
        return add_node(a, list, name, ttlv_add_enum(a, NULL, KMIP_TAG_ATTRIBUTE_VALUE, v));
}

int kmip_attr_list_add_bool(struct ttlv_arena *a, struct kmip_attr_list *list, const char *name, bool v) {
        return add_node(a, list, name, ttlv_add_bool(a, NULL, KMIP_TAG_ATTRIBUTE_VALUE, v));
}

int kmip_attr_list_add_integer(struct ttlv_arena *a, struct kmip_attr_list *list, const char *name, int32_t v) {
        return add_node(a, list, name, ttlv_add_integer(a, NULL, KMIP_TAG_ATTRIBUTE_VALUE, v));
}

int kmip_attr_list_add_text(struct ttlv_arena *a, struct kmip_attr_list *list, const char *name, const char *s) {
        return add_node(a, list, name, ttlv_add_text(a, NULL, KMIP_TAG_ATTRIBUTE_VALUE, s));
}

int kmip_attr_list_add_date_time(struct ttlv_arena *a, struct kmip_attr_list *list, const char *name, int64_t t) {
        return add_node(a, list, name, ttlv_add_date_time(a, NULL, KMIP_TAG_ATTRIBUTE_VALUE, t));
}

int kmip_attr_list_add_name(struct ttlv_arena *a, struct kmip_attr_list *list, const char *name_value) {
        struct ttlv *v = ttlv_add_structure(a, NULL, KMIP_TAG_ATTRIBUTE_VALUE);
        ttlv_add_text(a, v, KMIP_TAG_NAME_VALUE, name_value);
        ttlv_add_enum(a, v, KMIP_TAG_NAME_TYPE, KMIP_NAME_UNINTERPRETED_TEXT_STRING);
        if (ttlv_arena_failed(a))
                return -ENOMEM;
        return add_node(a, list, KMIP_ATTR_NAME, v);
}

struct kmip_attr *kmip_attr_list_find(const struct kmip_attr_list *list, const char *name, int32_t index) {
        if (!list)
                return NULL;
        for (size_t i = 0; i < list->n; i++)
                if (strcmp(list->items[i].name, name) == 0 && (index < 0 || list->items[i].index == index))
                        return &list->items[i];
        return NULL;
}

int kmip_attr_names_parse(struct ttlv_arena *a, const struct ttlv *payload, const char **names,
                          size_t max, size_t *ret_n) {
        size_t k = 0;
        if (!payload) {
                *ret_n = 0;
                return 0;
        }
        TTLV_FOREACH_CHILD(c, payload) {
                const char *name = NULL;
                if (c->tag == KMIP_TAG_ATTRIBUTE_NAME) {
                        if (c->type != TTLV_TEXT_STRING)
                                return -EPROTO;
                        name = ttlv_arena_strdup(a, (const char *) c->v.bytes.data);
                } else if (c->tag == KMIP_TAG_ATTRIBUTE_REFERENCE) {
                        /* 2.0: the tag of a standard attribute as an enumeration, or a
                         * structure naming a vendor attribute. */
                        if (c->type == TTLV_ENUMERATION) {
                                const struct kmip_attr_def *d = kmip_attr_def_by_tag(c->v.enumeration);
                                if (!d)
                                        return log_debug_errno(-EPROTO, "KMIP: Attribute Reference to unknown tag 0x%06x",
                                                               c->v.enumeration);
                                name = d->name;
                        } else if (c->type == TTLV_STRUCTURE) {
                                const char *vendor, *an;
                                size_t nv, na;
                                if (ttlv_get_text(c, KMIP_TAG_VENDOR_IDENTIFICATION, &vendor, &nv) < 0 ||
                                    ttlv_get_text(c, KMIP_TAG_ATTRIBUTE_NAME, &an, &na) < 0)
                                        return -EPROTO;
                                name = join_vendor(a, vendor, nv, an, na);
                        } else
                                return -EPROTO;
                } else
                        continue;
                if (!name)
                        return -ENOMEM;
                if (k >= max)
                        return -E2BIG;
                names[k++] = name;
        }
        *ret_n = k;
        return 0;
}

struct ttlv *kmip_attr_name_build(struct ttlv_arena *a, struct ttlv *payload, const char *name,
                                  struct kmip_version v) {
        if (!kmip_version_is_2x(v))
                return ttlv_add_text(a, payload, KMIP_TAG_ATTRIBUTE_NAME, name);
        const struct kmip_attr_def *d = kmip_attr_def_by_name(name);
        if (d)
                return ttlv_add_enum(a, payload, KMIP_TAG_ATTRIBUTE_REFERENCE, d->tag);
        const char *dash = strchr(name, '-');
        struct ttlv *ref = ttlv_add_structure(a, payload, KMIP_TAG_ATTRIBUTE_REFERENCE);
        if (dash && dash != name) {
                ttlv_add_text_len(a, ref, KMIP_TAG_VENDOR_IDENTIFICATION, name, (size_t) (dash - name));
                ttlv_add_text(a, ref, KMIP_TAG_ATTRIBUTE_NAME, dash + 1);
        } else {
                ttlv_add_text(a, ref, KMIP_TAG_VENDOR_IDENTIFICATION, "x");
                ttlv_add_text(a, ref, KMIP_TAG_ATTRIBUTE_NAME, name);
        }
        return ttlv_arena_failed(a) ? NULL : ref;
}

int kmip_attr_value_encode(const struct ttlv *value, uint8_t **ret, size_t *ret_size) {
        struct ttlv tmp = *value;
        tmp.tag = KMIP_TAG_ATTRIBUTE_VALUE;
        tmp.parent = tmp.next = NULL;
        return ttlv_encode_alloc(&tmp, ret, ret_size);
}

int kmip_attr_value_decode(struct ttlv_arena *a, const uint8_t *buf, size_t size, struct ttlv **ret) {
        return ttlv_decode(a, buf, size, NULL, ret);
}
