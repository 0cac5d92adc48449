/* KMIP client: placeholder until the implementation lands (header is the interface). */
#include <errno.h>

#include "kmip/client.h"

int kmip_client_new(const struct kmip_client_config *cfg, struct kmip_client **ret) {
        (void) cfg;
        (void) ret;
        return -ENOSYS;
}

void kmip_client_free(struct kmip_client *c) {
        (void) c;
}
