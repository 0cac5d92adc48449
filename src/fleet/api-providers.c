/* The key provider resources: GET /providers (what the fleet registered and
 * what each host reports), PUT and DELETE /providers/{name} (registration), and
 * the check of an agent's report. The manager learns names, kinds, endpoints
 * and reachability, never a credential: a report with any other field is
 * refused. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fleet/api-internal.h"
#include "shared/macro.h"

#define MAX_PROVIDERS 32
#define MAX_ENDPOINTS 8

#define KINDS "kmip|trusted|native"

static bool valid_provider_name(const char *s) {
        return s && strlen(s) <= 127 && fleet_valid_name(s);
}

/* "host:port" strings, at most MAX_ENDPOINTS. */
static int valid_endpoints(json_t *v, const char *what, struct error *err) {
        size_t i;
        json_t *e;
        if (!json_is_array(v) || json_array_size(v) > MAX_ENDPOINTS)
                return error_set(err, -EINVAL, "%s: endpoints must be an array of at most %d \"host:port\" strings",
                                 what, MAX_ENDPOINTS);
        json_array_foreach(v, i, e)
                if (!json_is_string(e) || !fleet_valid_name(json_string_value(e)) ||
                    !strchr(json_string_value(e), ':'))
                        return error_set(err, -EINVAL, "%s: endpoints[%zu] is not \"host:port\"", what, i);
        return 0;
}

int fleet_api_valid_host_providers(json_t *providers, struct error *err) {
        if (!json_is_array(providers) || json_array_size(providers) > MAX_PROVIDERS)
                return error_set(err, -EINVAL, "providers must be an array of at most %d key providers",
                                 MAX_PROVIDERS);
        size_t i;
        json_t *p;
        json_array_foreach(providers, i, p) {
                char what[32];
                snprintf(what, sizeof(what), "providers[%zu]", i);
                if (!json_is_object(p))
                        return error_set(err, -EINVAL, "%s must be an object", what);
                const char *key;
                json_t *v;
                json_object_foreach(p, key, v) {
                        (void) v;
                        if (!fleet_api_one_of(key, "name|kind|endpoints|default|state|message|cert_expires"))
                                return error_set(err, -EINVAL, "%s: unknown field '%s' (name, kind, endpoints, "
                                                 "default, state, message, cert_expires; never credentials or "
                                                 "paths)", what, key);
                }
                const char *name = json_string_value(json_object_get(p, "name"));
                const char *kind = json_string_value(json_object_get(p, "kind"));
                const char *state = json_string_value(json_object_get(p, "state"));
                json_t *message = json_object_get(p, "message"), *dflt = json_object_get(p, "default");
                if (!valid_provider_name(name))
                        return error_set(err, -EINVAL, "%s needs a name (printable, at most 127 characters)", what);
                if (!kind || !fleet_api_one_of(kind, KINDS))
                        return error_set(err, -EINVAL, "%s: kind must be kmip, trusted or native", what);
                if (!state || !fleet_api_one_of(state, "reachable|unreachable|error"))
                        return error_set(err, -EINVAL, "%s: state must be reachable, unreachable or error", what);
                if (message && (!json_is_string(message) || json_string_length(message) > 1024))
                        return error_set(err, -EINVAL, "%s: message must be a string of at most 1024 bytes", what);
                if (dflt && !json_is_boolean(dflt))
                        return error_set(err, -EINVAL, "%s: default must be true or false", what);
                json_t *ends = json_object_get(p, "cert_expires");
                if (ends && (!json_is_integer(ends) || json_integer_value(ends) < 0 ||
                             json_integer_value(ends) > 253402300799LL))
                        return error_set(err, -EINVAL, "%s: cert_expires must be seconds since 1970 (0: unknown)",
                                         what);
                json_t *eps = json_object_get(p, "endpoints");
                int r = eps ? valid_endpoints(eps, what, err) : 0;
                if (r < 0)
                        return r;
                for (size_t k = 0; k < i; k++)
                        if (json_equal(json_object_get(json_array_get(providers, k), "name"), json_object_get(p, "name")))
                                return error_set(err, -EINVAL, "%s: provider %s is there twice", what, name);
        }
        return 0;
}

int fleet_api_get_providers(struct fleet_store *s, const struct fleet_request *req _unused_, char a[][256] _unused_,
                            struct fleet_response *resp, struct error *err) {
        json_t *o = NULL;
        int r = fleet_store_providers(s, &o, err);
        return r < 0 ? r : fleet_api_reply(resp, 200, o);
}

/* {"kind": "kmip|trusted|native", "endpoints": ["host:port", ...],
 * "description": "..."}: what the fleet expects its hosts to use. */
int fleet_api_put_provider(struct fleet_store *s, const struct fleet_request *req, char a[][256],
                           struct fleet_response *resp, struct error *err) {
        if (!valid_provider_name(a[0]))
                return error_set(err, -EINVAL, "a provider's name is printable and at most 127 characters");
        json_t *body = NULL, *o = NULL;
        int r = fleet_api_body_object(req, &body, err);
        if (r < 0)
                return r;
        const char *key;
        json_t *v;
        json_object_foreach(body, key, v) {
                (void) v;
                if (r == 0 && !fleet_api_one_of(key, "kind|endpoints|description"))
                        r = error_set(err, -EINVAL, "unknown field '%s': a provider has kind, endpoints and "
                                      "description (never credentials)", key);
        }
        const char *kind = json_string_value(json_object_get(body, "kind"));
        json_t *eps = json_object_get(body, "endpoints"), *desc = json_object_get(body, "description");
        if (r == 0 && (!kind || !fleet_api_one_of(kind, KINDS)))
                r = error_set(err, -EINVAL, "kind must be kmip, trusted or native");
        if (r == 0 && eps)
                r = valid_endpoints(eps, a[0], err);
        if (r == 0 && kind && strcmp(kind, "native") != 0 && json_array_size(eps) == 0)
                r = error_set(err, -EINVAL, "a %s provider needs its key servers: \"endpoints\": [\"host:port\"]",
                              kind);
        if (r == 0 && desc && (!json_is_string(desc) || json_string_length(desc) > 256))
                r = error_set(err, -EINVAL, "description must be a string of at most 256 bytes");
        if (r == 0)
                r = fleet_store_provider_register(s, a[0], body, req->who->cn, &o, err);
        json_decref(body);
        return r < 0 ? r : fleet_api_reply(resp, 200, o);
}

int fleet_api_delete_provider(struct fleet_store *s, const struct fleet_request *req, char a[][256],
                              struct fleet_response *resp, struct error *err) {
        if (req->body_len > 0)
                return error_set(err, -EINVAL, "DELETE /providers/{name} takes no body");
        int r = fleet_store_provider_unregister(s, a[0], req->who->cn, err);
        return r < 0 ? r : fleet_api_reply(resp, 200, json_pack("{s:s}", "unregistered", a[0]));
}
