/* The store's key providers: see store.h. Two tables: the providers the fleet
 * registered (PUT /providers/{name}) and those each host reports from its
 * providers.json, with whether the host reached each one when it last looked.
 * GET /providers puts them side by side, so that a host that lacks a provider
 * the fleet uses, or uses one the fleet does not know, stands out. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fleet/store-internal.h"
#include "shared/macro.h"
#include "shared/x509.h"

#define db(s) fleet_store_db(s)

static int64_t now(void) {
        return (int64_t) time(NULL);
}

static const char *str(json_t *o, const char *key) {
        const char *v = json_string_value(json_object_get(o, key));
        return v ? v : "";
}

static json_t *find_name(json_t *array, const char *name) {
        size_t i;
        json_t *o;
        json_array_foreach(array, i, o)
                if (strcmp(str(o, "name"), name) == 0)
                        return o;
        return NULL;
}

int fleet_store_host_providers_replace(struct fleet_store *s, const char *host, json_t *providers,
                                       struct error *err) {
        int r = fleet_db_begin(db(s), err);
        if (r < 0)
                return r;
        r = fleet_store_host_touch(s, host, 0, err);
        json_t *before = NULL;
        if (r >= 0)
                r = fleet_db_query(db(s), err, &before, "SELECT name, state FROM host_providers WHERE host = ?",
                                   "s", host);
        if (r >= 0)
                r = fleet_db_exec(db(s), err, "DELETE FROM host_providers WHERE host = ?", "s", host);
        size_t i;
        json_t *p;
        json_array_foreach(providers, i, p) {
                if (r < 0)
                        break;
                json_t *eps = json_object_get(p, "endpoints");
                _cleanup_(freep) char *eps_text = eps ? json_dumps(eps, JSON_COMPACT) : strdup("[]");
                if (!eps_text) {
                        r = error_set(err, -ENOMEM, "out of memory");
                        break;
                }
                const char *name = str(p, "name"), *state = str(p, "state"), *message = str(p, "message");
                r = fleet_db_exec(db(s), err,
                                  "INSERT INTO host_providers (host, name, kind, endpoints, is_default, state, "
                                  "message, seen, cert_expires) VALUES (?,?,?,?,?,?,?,?,?)",
                                  "ssssissii", host, name, str(p, "kind"), eps_text,
                                  (int64_t) json_is_true(json_object_get(p, "default")), state, message, now(),
                                  (int64_t) json_integer_value(json_object_get(p, "cert_expires")));
                if (r < 0)
                        break;
                /* The host's certificate for this provider's key servers: told
                 * before the servers refuse it. */
                char subject[400];
                snprintf(subject, sizeof(subject), "the client certificate of %s for key provider %s", host, name);
                r = fleet_store_expiry_event(s, host, "provider-certificate-expiring", subject,
                                             json_integer_value(json_object_get(p, "cert_expires")),
                                             "have the key server's CA issue a new one and put it in the host's "
                                             "providers.json", err);
                if (r < 0)
                        break;
                /* A change of reachability is news (vSphere's "key server
                 * unreachable" alarm); a first report only when it is bad. */
                json_t *old = find_name(before, name);
                bool ok = strcmp(state, "reachable") == 0;
                if (old ? strcmp(str(old, "state"), state) == 0 : ok)
                        continue;
                char msg[1400];
                snprintf(msg, sizeof(msg), "key provider %s on %s: %s%s%s", name, host, state, *message ? ": " : "",
                         message);
                r = fleet_store_event_add(s, host, host, "", 0, ok ? "provider-reachable" : "provider-unreachable",
                                          msg, err);
        }
        json_decref(before);
        return r < 0 ? fleet_db_rollback(db(s), r) : fleet_db_commit(db(s), err);
}

static int cmp_name(const void *a, const void *b) {
        return strcmp(str(*(json_t *const *) a, "name"), str(*(json_t *const *) b, "name"));
}

static void sort_by_name(json_t *list) {
        size_t n = json_array_size(list);
        json_t **v = calloc(n ? n : 1, sizeof(*v));
        if (!v)
                return; /* unsorted rather than nothing */
        for (size_t i = 0; i < n; i++)
                v[i] = json_incref(json_array_get(list, i));
        qsort(v, n, sizeof(*v), cmp_name);
        json_array_clear(list);
        for (size_t i = 0; i < n; i++)
                json_array_append_new(list, v[i]);
        free(v);
}

#define REGISTERED_COLUMNS "name, kind, endpoints, description, actor, updated"

int fleet_store_providers(struct fleet_store *s, json_t **ret, struct error *err) {
        json_t *regs = NULL, *reps = NULL, *hosts = NULL;
        int r = fleet_db_query(db(s), err, &regs, "SELECT " REGISTERED_COLUMNS " FROM providers ORDER BY name", NULL);
        if (r >= 0)
                r = fleet_db_query(db(s), err, &reps,
                                   "SELECT host, name, kind, endpoints, is_default, state, message, seen, "
                                   "? - seen AS seconds_since_seen, cert_expires FROM host_providers "
                                   "ORDER BY name, host",
                                   "i", now());
        if (r >= 0)
                r = fleet_db_query(db(s), err, &hosts, "SELECT name FROM hosts ORDER BY name", NULL);
        if (r < 0) {
                json_decref(regs);
                json_decref(reps);
                json_decref(hosts);
                return r;
        }
        json_t *list = json_array();
        size_t i;
        json_t *row;
        json_array_foreach(regs, i, row) {
                fleet_store_array_column(row, "endpoints");
                json_t *name = json_incref(json_object_get(row, "name"));
                json_object_del(row, "name");
                json_array_append_new(list, json_pack("{s:o,s:O,s:[],s:[],s:b,s:[]}", "name", name, "registered", row,
                                                      "hosts", "missing", "unregistered", false, "flags"));
        }
        json_array_foreach(reps, i, row) {
                const char *name = str(row, "name");
                json_t *entry = find_name(list, name);
                if (!entry) {
                        /* Reported, not registered: unknown to the fleet once the
                         * fleet registers any provider. */
                        entry = json_pack("{s:s,s:n,s:[],s:[],s:b,s:[]}", "name", name, "registered", "hosts",
                                          "missing", "unregistered", json_array_size(regs) > 0, "flags");
                        json_array_append_new(list, entry);
                }
                fleet_store_array_column(row, "endpoints");
                json_object_set_new(row, "default", json_boolean(json_integer_value(json_object_get(row, "is_default"))));
                json_object_del(row, "is_default");
                json_object_del(row, "name");
                json_array_append(json_object_get(entry, "hosts"), row);
        }
        /* By name, whether registered or only reported. */
        sort_by_name(list);
        /* Registered providers a host does not report. */
        json_t *entry;
        json_array_foreach(list, i, entry) {
                json_t *flags = json_object_get(entry, "flags");
                char text[1200];
                if (json_is_true(json_object_get(entry, "unregistered"))) {
                        snprintf(text, sizeof(text), "not registered with the fleet: register it (PUT /providers/%s) "
                                 "or remove it from the hosts' providers.json", str(entry, "name"));
                        json_array_append_new(flags, json_string(text));
                }
                /* Hosts whose client certificate for it ends soon or has ended. */
                size_t j;
                json_t *rep;
                json_array_foreach(json_object_get(entry, "hosts"), j, rep) {
                        int64_t end = json_integer_value(json_object_get(rep, "cert_expires"));
                        if (!x509_ends_soon(end, now()))
                                continue;
                        char day[16];
                        time_t t = (time_t) end;
                        struct tm tm;
                        strftime(day, sizeof(day), "%Y-%m-%d", gmtime_r(&t, &tm));
                        int64_t days = x509_days_left(end, now());
                        if (days == 0)
                                snprintf(text, sizeof(text), "%s's client certificate for it expired on %s",
                                         str(rep, "host"), day);
                        else
                                snprintf(text, sizeof(text), "%s's client certificate for it ends on %s, in %lld days",
                                         str(rep, "host"), day, (long long) days);
                        json_array_append_new(flags, json_string(text));
                }
                if (json_is_null(json_object_get(entry, "registered")))
                        continue;
                size_t k, o = 0;
                json_t *h;
                json_array_foreach(hosts, k, h) {
                        const char *host = str(h, "name");
                        bool has = false;
                        json_array_foreach(json_object_get(entry, "hosts"), j, rep)
                                has = has || strcmp(str(rep, "host"), host) == 0;
                        if (has)
                                continue;
                        json_array_append_new(json_object_get(entry, "missing"), json_string(host));
                        if (o < sizeof(text))
                                o += (size_t) snprintf(text + o, sizeof(text) - o, "%s%s", o ? ", " : "", host);
                }
                if (o) {
                        char msg[1400];
                        snprintf(msg, sizeof(msg), "hosts without it in their providers.json: %s", text);
                        json_array_append_new(flags, json_string(msg));
                }
        }
        json_decref(regs);
        json_decref(reps);
        json_decref(hosts);
        *ret = list;
        return 0;
}

int fleet_store_provider_register(struct fleet_store *s, const char *name, json_t *p, const char *actor,
                                  json_t **ret, struct error *err) {
        json_t *eps = json_object_get(p, "endpoints");
        _cleanup_(freep) char *eps_text = eps ? json_dumps(eps, JSON_COMPACT) : strdup("[]");
        if (!eps_text)
                return error_set(err, -ENOMEM, "out of memory");
        int r = fleet_db_begin(db(s), err);
        if (r < 0)
                return r;
        r = fleet_db_exec(db(s), err,
                          "INSERT INTO providers (name, kind, endpoints, description, actor, updated) "
                          "VALUES (?,?,?,?,?,?) ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, "
                          "endpoints = excluded.endpoints, description = excluded.description, "
                          "actor = excluded.actor, updated = excluded.updated",
                          "sssssi", name, str(p, "kind"), eps_text, str(p, "description"), actor, now());
        if (r >= 0) {
                char msg[1000];
                snprintf(msg, sizeof(msg), "key provider %s registered: kind %s, endpoints %s%s%s", name,
                         str(p, "kind"), eps_text, *str(p, "description") ? ", " : "", str(p, "description"));
                r = fleet_store_event_add(s, actor, "", "", 0, "provider-registered", msg, err);
        }
        json_t *rows = NULL;
        if (r >= 0)
                r = fleet_db_query(db(s), err, &rows, "SELECT " REGISTERED_COLUMNS " FROM providers WHERE name = ?",
                                   "s", name);
        if (r < 0)
                return fleet_db_rollback(db(s), r);
        *ret = json_incref(json_array_get(rows, 0));
        json_decref(rows);
        fleet_store_array_column(*ret, "endpoints");
        return fleet_db_commit(db(s), err);
}

int fleet_store_provider_unregister(struct fleet_store *s, const char *name, const char *actor, struct error *err) {
        int r = fleet_db_begin(db(s), err);
        if (r < 0)
                return r;
        /* A policy that names it would be refused if it were set now. */
        json_t *uses = NULL;
        r = fleet_db_query(db(s), err, &uses, "SELECT scope FROM policies WHERE provider = ? ORDER BY scope", "s",
                           name);
        if (r >= 0 && json_array_size(uses) > 0)
                r = error_set(err, -EBUSY, "policy %s names key provider %s: set its provider to another one first",
                              str(json_array_get(uses, 0), "scope"), name);
        json_decref(uses);
        if (r >= 0)
                r = fleet_db_exec(db(s), err, "DELETE FROM providers WHERE name = ?", "s", name);
        if (r == 0)
                r = error_set(err, -ENOENT, "no registered key provider %s: see GET /providers", name);
        if (r > 0) {
                char msg[300];
                snprintf(msg, sizeof(msg), "key provider %s unregistered", name);
                r = fleet_store_event_add(s, actor, "", "", 0, "provider-unregistered", msg, err);
        }
        return r < 0 ? fleet_db_rollback(db(s), r) : fleet_db_commit(db(s), err);
}

int fleet_store_provider_known(struct fleet_store *s, const char *name, struct error *err) {
        json_t *rows = NULL;
        int r = fleet_db_query(db(s), err, &rows, "SELECT name FROM providers ORDER BY name", NULL);
        if (r < 0)
                return r;
        if (json_array_size(rows) == 0 || find_name(rows, name)) {
                json_decref(rows);
                return 0;
        }
        char list[800];
        size_t o = 0, i;
        json_t *row;
        json_array_foreach(rows, i, row)
                if (o < sizeof(list))
                        o += (size_t) snprintf(list + o, sizeof(list) - o, "%s%s", o ? ", " : "", str(row, "name"));
        json_decref(rows);
        return error_set(err, -EINVAL, "key provider %s is not registered with the fleet: use one of %s, or "
                         "register it first (PUT /providers/%s)", name, list, name);
}
