/* libFuzzer harness for the manager's request handling (src/fleet/api.c): any
 * certificate of the CA may send any method, path, query and body. The first
 * byte picks the caller's role and CN, the first line is "METHOD PATH[?QUERY]", the rest
 * is the body. Every answer must be a status the API documents, with an "error"
 * for each 4xx/5xx; the store is an in-memory one with a host, a VM and a job. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet/api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fleet_store *store;

static void setup(void) {
        if (fleet_store_open(":memory:", &store, NULL) < 0)
                abort();
        json_t *vms = json_loads("[{\"name\":\"vm1\",\"uuid\":\"u1\",\"disks\":[]}]", 0, NULL);
        json_t *job = NULL;
        if (fleet_store_host_register(store, "h1", "00", "1", 0, NULL) < 0 ||
            fleet_store_vms_replace(store, "h1", vms, NULL) < 0 ||
            fleet_store_job_create(store, "vm1", FLEET_OP_ENCRYPT, "admin", &job, NULL) < 0)
                abort();
        json_decref(vms);
        json_decref(job);
        /* A host's report of its key providers, for GET /providers to join. */
        json_t *providers = json_loads("[{\"name\":\"kms\",\"kind\":\"kmip\",\"endpoints\":[\"k:5696\"],"
                                       "\"default\":true,\"state\":\"reachable\",\"message\":\"\"}]", 0, NULL);
        if (!providers || fleet_store_host_providers_replace(store, "h1", providers, NULL) < 0)
                abort();
        json_decref(providers);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (!store)
                setup();
        if (size < 2)
                return 0;
        static const char *const cns[] = { "admin", "op", "aud", "h1", "h2" };
        /* A built-in role, or (the last one) a custom role of any privileges. */
        enum fleet_role role = (enum fleet_role) (data[0] % (FLEET_ROLE_BUILTIN_COUNT + 1));
        struct fleet_principal who = { .privs = fleet_role_privs(role) };
        snprintf(who.role, sizeof(who.role), "%s", role == FLEET_ROLE_NONE ? "" : fleet_role_name(role));
        if (role == FLEET_ROLE_BUILTIN_COUNT) {
                snprintf(who.role, sizeof(who.role), "custom");
                who.privs = data[0] & FLEET_PRIVS_ALL;
        }
        snprintf(who.cn, sizeof(who.cn), "%s", cns[data[0] / 7 % 5]);
        data++, size--;
        const uint8_t *nl = memchr(data, '\n', size);
        size_t line = nl ? (size_t) (nl - data) : size;
        char *head = strndup((const char *) data, line);
        if (!head)
                return 0;
        char *sp = strchr(head, ' ');
        if (!sp || strlen(head) != line) { /* a NUL in the line: evhttp never passes one */
                free(head);
                return 0;
        }
        *sp = 0;
        char *path = sp + 1, *q = strchr(path, '?');
        if (q)
                *q++ = 0;
        struct fleet_request req = {
                .method = head,
                .path = path,
                .query = q,
                .body = nl ? (const char *) nl + 1 : NULL,
                .body_len = nl ? size - line - 1 : 0,
                .who = &who,
        };
        struct fleet_response resp;
        fleet_api_handle(store, &req, &resp);
        if (resp.status < 200 || resp.status > 599)
                abort();
        if (resp.status >= 400 && !json_is_string(json_object_get(resp.body, "error")))
                abort();
        if (resp.status >= 500)
                abort(); /* bad input is the caller's fault: never a server error */
        fleet_response_clear(&resp);
        free(head);
        return 0;
}
