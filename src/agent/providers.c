/* The host's key providers as the agent reports them with its inventory: what
 * providers.json names, and whether each answered just now. Credentials and
 * paths stay on the host: the report carries names, kinds, endpoints and when
 * the host's certificate for each ends. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "keys/provider.h"
#include "shared/log.h"
#include "shared/macro.h"

/* Per key server: a report that waits for a dead one waits this long. */
#define PROBE_TIMEOUT_MS 2000

/* A key server that does not answer is "unreachable" (the key layer's
 * key-unreachable fault, as jobs see it); one that answers but refuses this host
 * (trust, an expired certificate), or a native provider without its backup, is
 * an "error". */
static const char *state_name(const struct provider_report *p) {
        if (p->probe == 0)
                return "reachable";
        return p->fault == ERROR_FAULT_KEY_UNREACHABLE ? "unreachable" : "error";
}

/* What the last report said of provider name ("" none). */
static const char *last_state(json_t *last, const char *name) {
        size_t i;
        json_t *p;
        json_array_foreach(last, i, p)
                if (strcmp(json_string_value(json_object_get(p, "name")), name) == 0)
                        return json_string_value(json_object_get(p, "state"));
        return "";
}

json_t *agent_providers_report(const struct agent_config *cf, json_t *last) {
        struct provider_report *v = NULL;
        size_t n = 0;
        struct error err = { 0 };
        int r = provider_report_all(cf->providers[0] ? cf->providers : NULL, PROBE_TIMEOUT_MS, &v, &n, &err);
        if (r == -ENOENT)
                return json_array(); /* no providers.json: a host without keys */
        if (r < 0) {
                log_warning("cannot read the key providers: %s", err.text);
                return NULL;
        }
        json_t *list = json_array();
        for (size_t i = 0; i < n; i++) {
                const char *state = state_name(&v[i]);
                json_t *eps = json_array();
                for (size_t e = 0; e < v[i].n_endpoints; e++)
                        json_array_append_new(eps, json_string(v[i].endpoints[e]));
                json_array_append_new(list, json_pack("{s:s,s:s,s:o,s:b,s:s,s:s,s:I}", "name", v[i].name, "kind",
                                                      v[i].kind, "endpoints", eps, "default", v[i].is_default,
                                                      "state", state, "message", v[i].message, "cert_expires",
                                                      (json_int_t) v[i].cert_expires));
                /* The log says when a provider's state changes, not every
                 * inventory-seconds. */
                if (strcmp(last_state(last, v[i].name), state) == 0)
                        continue;
                if (v[i].probe < 0)
                        log_warning("key provider %s is %s: %s", v[i].name, state, v[i].message);
                else
                        log_info("key provider %s is reachable", v[i].name);
        }
        free(v);
        return list;
}
