/* libFuzzer harness for KMIP message parsing, both directions: parse the input as a
 * request and as a response; what parses must rebuild into a message that parses
 * again to the same envelope. Payloads go through the attribute parsers too, as the
 * server and the client would read them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kmip/attribute.h"
#include "kmip/message.h"
#include "kmip/tags.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void read_payload(struct ttlv_arena *a, struct ttlv *payload) {
        struct kmip_attr_list list = {};
        (void) kmip_attrs_parse(a, payload, &list);
        (void) kmip_attrs_parse(a, ttlv_find(payload, KMIP_TAG_TEMPLATE_ATTRIBUTE), &list);
        (void) kmip_attrs_parse(a, ttlv_find(payload, KMIP_TAG_ATTRIBUTES), &list);
        const char *names[64];
        size_t n;
        (void) kmip_attr_names_parse(a, payload, names, 64, &n);
        /* Whatever parsed converts to both wire forms. */
        struct ttlv *out = ttlv_add_structure(a, NULL, KMIP_TAG_ATTRIBUTES);
        (void) kmip_attrs_build(a, out, &list, KMIP_VERSION(1, 4));
        (void) kmip_attrs_build(a, out, &list, KMIP_VERSION(2, 0));
}

static void check(struct ttlv_arena *a, const uint8_t *data, size_t size, bool response) {
        struct kmip_message m;
        int r = response ? kmip_response_parse(a, data, size, NULL, &m) : kmip_request_parse(a, data, size, NULL, &m);
        if (r < 0)
                return;
        for (size_t i = 0; i < m.n_items; i++)
                if (m.items[i].payload)
                        read_payload(a, m.items[i].payload);

        /* Rebuild (payloads are moved into the new tree) and parse again. */
        size_t n_items = m.n_items;
        uint32_t op0 = m.items[0].operation;
        struct ttlv *root;
        r = response ? kmip_response_build(a, &m, &root) : kmip_request_build(a, &m, &root);
        if (r < 0)
                abort();
        uint8_t *buf;
        size_t n;
        if (ttlv_encode_alloc(root, &buf, &n) < 0)
                abort();
        struct kmip_message again;
        r = response ? kmip_response_parse(a, buf, n, NULL, &again) : kmip_request_parse(a, buf, n, NULL, &again);
        if (r < 0 || again.n_items != n_items || again.items[0].operation != op0)
                abort();
        ttlv_buffer_free(buf, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static struct ttlv_arena *a;
        if (!a && !(a = ttlv_arena_new()))
                abort();
        ttlv_arena_reset(a);
        check(a, data, size, false);
        ttlv_arena_reset(a);
        check(a, data, size, true);
        return 0;
}
