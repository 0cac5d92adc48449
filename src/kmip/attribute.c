/* Attributes: placeholder until the converters land (header is the interface). */
#include <errno.h>
#include <string.h>

#include "kmip/attribute.h"

const struct kmip_attr_def *kmip_attr_def_by_name(const char *name) { (void) name; return NULL; }
const struct kmip_attr_def *kmip_attr_def_by_tag(uint32_t tag) { (void) tag; return NULL; }
bool kmip_attr_name_is_custom(const char *name) {
        return name && (strncmp(name, "x-", 2) == 0 || strncmp(name, "y-", 2) == 0);
}
