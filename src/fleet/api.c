/* The REST API's routes and handlers: see api.h. Handlers validate step by step
 * and return early; the store does the work in one transaction each. */
#include "fleet/api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet/api-internal.h"
#include "shared/macro.h"

int fleet_http_status(int r) {
        switch (r) {
        case -EINVAL: case -EPROTO: case -E2BIG: case -ERANGE: return 400;
        case -EACCES: case -EPERM: return 403;
        case -ENOENT: return 404;
        case -EBUSY: case -EEXIST: return 409;
        default: return 500;
        }
}

static int hexval(char c) {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
}

int fleet_query_get(const char *query, const char *key, char *buf, size_t size) {
        size_t klen = strlen(key);
        for (const char *p = query; p && *p;) {
                const char *end = strchr(p, '&');
                size_t len = end ? (size_t) (end - p) : strlen(p);
                if (len > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
                        size_t o = 0;
                        for (size_t i = klen + 1; i < len; i++) {
                                char c = p[i];
                                if (c == '%') {
                                        if (i + 2 >= len || hexval(p[i + 1]) < 0 || hexval(p[i + 2]) < 0)
                                                return -EINVAL;
                                        c = (char) (hexval(p[i + 1]) << 4 | hexval(p[i + 2]));
                                        if (c == 0)
                                                return -EINVAL;
                                        i += 2;
                                } else if (c == '+')
                                        c = ' ';
                                if (o + 1 >= size)
                                        return -EINVAL;
                                buf[o++] = c;
                        }
                        buf[o] = 0;
                        return 0;
                }
                p = end ? end + 1 : NULL;
        }
        return -ENOENT;
}

/* The request body as a JSON object ({} when there is none). */
static int body_object(const struct fleet_request *req, json_t **ret, struct error *err) {
        if (!req->body || req->body_len == 0) {
                *ret = json_object();
                return 0;
        }
        json_error_t jerr;
        json_t *o = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
        if (!o)
                return error_set(err, -EINVAL, "the body is not JSON: %s (line %d); send a JSON object",
                                       jerr.text, jerr.line);
        if (!json_is_object(o)) {
                json_decref(o);
                return error_set(err, -EINVAL, "the body must be a JSON object");
        }
        *ret = o;
        return 0;
}

static int parse_id(const char *s, int64_t *ret, struct error *err) {
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (!*s || *end || errno || v <= 0)
                return error_set(err, -EINVAL, "job id '%s' is not a positive number", s);
        *ret = v;
        return 0;
}

static int reply(struct fleet_response *resp, int status, json_t *body) {
        resp->status = status;
        resp->body = body;
        return 0;
}

/* For api-providers.c. */
int fleet_api_body_object(const struct fleet_request *req, json_t **ret, struct error *err) {
        return body_object(req, ret, err);
}

int fleet_api_reply(struct fleet_response *resp, int status, json_t *body) {
        return reply(resp, status, body);
}

/* ---- reading: hosts, VMs, jobs, events ---------------------------------- */

static int get_hosts(struct fleet_store *s, const struct fleet_request *req _unused_, char a[][256] _unused_,
                     struct fleet_response *resp, struct error *err) {
        json_t *o = NULL;
        int r = fleet_store_hosts(s, &o, err);
        return r < 0 ? r : reply(resp, 200, o);
}

static int get_vms(struct fleet_store *s, const struct fleet_request *req _unused_, char a[][256] _unused_,
                   struct fleet_response *resp, struct error *err) {
        json_t *o = NULL;
        int r = fleet_store_vms(s, &o, err);
        return r < 0 ? r : reply(resp, 200, o);
}

static int get_vm(struct fleet_store *s, const struct fleet_request *req _unused_, char a[][256],
                  struct fleet_response *resp, struct error *err) {
        json_t *o = NULL;
        int r = fleet_store_vm_get(s, a[0], &o, err);
        return r < 0 ? r : reply(resp, 200, o);
}

static int get_jobs(struct fleet_store *s, const struct fleet_request *req _unused_, char a[][256] _unused_,
                    struct fleet_response *resp, struct error *err) {
        json_t *o = NULL;
        int r = fleet_store_jobs(s, &o, err);
        return r < 0 ? r : reply(resp, 200, o);
}

static int get_job(struct fleet_store *s, const struct fleet_request *req _unused_, char a[][256],
                   struct fleet_response *resp, struct error *err) {
        int64_t id = 0;
        json_t *o = NULL;
        int r = parse_id(a[0], &id, err);
        if (r == 0)
                r = fleet_store_job_get(s, id, &o, err);
        return r < 0 ? r : reply(resp, 200, o);
}

static int get_events(struct fleet_store *s, const struct fleet_request *req, char a[][256] _unused_,
                      struct fleet_response *resp, struct error *err) {
        char vm[256] = "", buf[32];
        int64_t after = 0;
        bool follow = false;
        int r = fleet_query_get(req->query, "vm", vm, sizeof(vm));
        if (r == -EINVAL || (r == 0 && !fleet_valid_name(vm)))
                return error_set(err, -EINVAL, "vm= must name a VM");
        r = fleet_query_get(req->query, "after", buf, sizeof(buf));
        if (r == 0) {
                char *end;
                after = strtoll(buf, &end, 10);
                if (!*buf || *end || after < 0)
                        return error_set(err, -EINVAL, "after= must be an event id (a number >= 0)");
        } else if (r == -EINVAL)
                return error_set(err, -EINVAL, "after= must be an event id (a number >= 0)");
        r = fleet_query_get(req->query, "follow", buf, sizeof(buf));
        if (r == 0) {
                if (strcmp(buf, "1") != 0 && strcmp(buf, "0") != 0)
                        return error_set(err, -EINVAL, "follow= must be 1 or 0");
                follow = buf[0] == '1';
        } else if (r == -EINVAL)
                return error_set(err, -EINVAL, "follow= must be 1 or 0");
        json_t *o = NULL;
        r = fleet_store_events(s, vm[0] ? vm : NULL, after, 100000, &o, err);
        if (r < 0)
                return r;
        if (follow) {
                resp->kind = FLEET_STREAM_EVENTS;
                snprintf(resp->vm, sizeof(resp->vm), "%s", vm);
                size_t n = json_array_size(o);
                resp->after = n ? json_integer_value(json_object_get(json_array_get(o, n - 1), "id")) : after;
        }
        return reply(resp, 200, o);
}

/* ---- operators: jobs ---------------------------------------------------- */

static int post_vm_job(struct fleet_store *s, const struct fleet_request *req, char a[][256], enum fleet_job_op op,
                       struct fleet_response *resp, struct error *err) {
        json_t *body = NULL;
        int r = body_object(req, &body, err);
        if (r < 0)
                return r;
        /* No options yet: an unknown one is refused rather than ignored. */
        if (json_object_size(body) > 0) {
                json_decref(body);
                return error_set(err, -EINVAL, "%s takes no options: send {} or no body",
                                       fleet_job_op_name(op));
        }
        json_decref(body);
        json_t *o = NULL;
        r = fleet_store_job_create(s, a[0], op, req->who->cn, &o, err);
        return r < 0 ? r : reply(resp, 202, o);
}

static int post_encrypt(struct fleet_store *s, const struct fleet_request *req, char a[][256],
                        struct fleet_response *resp, struct error *err) {
        return post_vm_job(s, req, a, FLEET_OP_ENCRYPT, resp, err);
}

/* Start: the VM's host agent runs vm_start, its keys from the host's providers. */
static int post_start(struct fleet_store *s, const struct fleet_request *req, char a[][256],
                      struct fleet_response *resp, struct error *err) {
        return post_vm_job(s, req, a, FLEET_OP_START, resp, err);
}

static int post_decrypt(struct fleet_store *s, const struct fleet_request *req, char a[][256],
                        struct fleet_response *resp, struct error *err) {
        return post_vm_job(s, req, a, FLEET_OP_DECRYPT, resp, err);
}

/* Rekey takes one option, {"deep": bool}: a deep rekey is its own job kind, so
 * that the job list and the agent see which one it is. */
static int post_rekey(struct fleet_store *s, const struct fleet_request *req, char a[][256],
                      struct fleet_response *resp, struct error *err) {
        json_t *body = NULL;
        int r = body_object(req, &body, err);
        if (r < 0)
                return r;
        json_t *deep = json_object_get(body, "deep");
        if ((deep && !json_is_boolean(deep)) || json_object_size(body) > (deep ? 1 : 0)) {
                json_decref(body);
                return error_set(err, -EINVAL, "rekey takes {\"deep\": true|false} (or no body) and nothing else");
        }
        enum fleet_job_op op = json_is_true(deep) ? FLEET_OP_DEEP_REKEY : FLEET_OP_REKEY;
        json_decref(body);
        json_t *o = NULL;
        r = fleet_store_job_create(s, a[0], op, req->who->cn, &o, err);
        return r < 0 ? r : reply(resp, 202, o);
}

/* Whoever may queue a job of a kind may stop and start it: only who may decrypt
 * resumes a decrypt job. So the job is looked up before the verb. */
static int post_job_verb(struct fleet_store *s, const struct fleet_request *req, char a[][256], const char *verb,
                         struct fleet_response *resp, struct error *err) {
        int64_t id = 0;
        json_t *o = NULL;
        int r = parse_id(a[0], &id, err);
        if (r == 0)
                r = fleet_store_job_get(s, id, &o, err);
        if (r < 0)
                return r;
        enum fleet_job_op op = FLEET_OP_ENCRYPT;
        const char *op_name = json_string_value(json_object_get(o, "op"));
        (void) fleet_job_op_from_string(op_name ? op_name : "", &op);
        enum fleet_priv need = fleet_job_op_priv(op);
        json_decref(o);
        o = NULL;
        if (!(req->who->privs & (1U << need)))
                return error_set(err, -EACCES, "%s (role %s) lacks the privilege %s: job %lld is a %s job, and only "
                                 "who may %s may %s it", req->who->cn, req->who->role[0] ? req->who->role : "none",
                                 fleet_priv_name(need), (long long) id, fleet_job_op_name(op), fleet_priv_name(need),
                                 verb);
        r = fleet_store_job_control(s, id, verb, req->who->cn, &o, err);
        return r < 0 ? r : reply(resp, 200, o);
}

static int post_cancel(struct fleet_store *s, const struct fleet_request *req, char a[][256],
                       struct fleet_response *resp, struct error *err) {
        return post_job_verb(s, req, a, "cancel", resp, err);
}
static int post_pause(struct fleet_store *s, const struct fleet_request *req, char a[][256],
                      struct fleet_response *resp, struct error *err) {
        return post_job_verb(s, req, a, "pause", resp, err);
}
static int post_resume(struct fleet_store *s, const struct fleet_request *req, char a[][256],
                       struct fleet_response *resp, struct error *err) {
        return post_job_verb(s, req, a, "resume", resp, err);
}

/* ---- the caller --------------------------------------------------------- */

/* Who the manager takes the caller for: a client checks its certificate and
 * the manager's configuration with it. */
static int get_me(struct fleet_store *s _unused_, const struct fleet_request *req, char a[][256] _unused_,
                  struct fleet_response *resp, struct error *err _unused_) {
        json_t *privs = json_array();
        for (unsigned i = 0; i < FLEET_PRIV_COUNT; i++)
                if (req->who->privs & (1U << i))
                        json_array_append_new(privs, json_string(fleet_priv_name((enum fleet_priv) i)));
        return reply(resp, 200, json_pack("{s:s,s:s,s:o,s:s}", "cn", req->who->cn, "role", req->who->role,
                                                    "privileges", privs, "credential",
                                                    req->who->token ? "token" : "certificate"));
}

/* ---- encryption policies ------------------------------------------------ */

static int get_policies(struct fleet_store *s, const struct fleet_request *req _unused_, char a[][256] _unused_,
                        struct fleet_response *resp, struct error *err) {
        json_t *o = NULL;
        int r = fleet_store_policies(s, &o, err);
        return r < 0 ? r : reply(resp, 200, o);
}

bool fleet_api_one_of(const char *value, const char *allowed) {
        size_t n = strlen(value);
        for (const char *p = allowed; *p;) {
                size_t len = strcspn(p, "|");
                if (len == n && strncmp(p, value, n) == 0)
                        return true;
                p += len + (p[len] == '|');
        }
        return false;
}

static int valid_policy(json_t *body, struct error *err) {
        const char *key;
        json_t *v;
        json_object_foreach(body, key, v) {
                if (strcmp(key, "hosts") == 0) {
                        size_t i;
                        json_t *h;
                        if (!json_is_array(v) || json_array_size(v) > 1000)
                                return error_set(err, -EINVAL, "hosts must be an array of host names");
                        json_array_foreach(v, i, h)
                                if (!json_is_string(h) || !fleet_valid_name(json_string_value(h)))
                                        return error_set(err, -EINVAL, "hosts[%zu] is not a host name", i);
                } else if (!fleet_api_one_of(key, "scope|provider|volumes|format|new_data_disk"))
                        return error_set(err, -EINVAL, "unknown policy field '%s': scope, hosts, provider, volumes, "
                                                       "format, new_data_disk", key);
                else if (!json_is_string(v))
                        return error_set(err, -EINVAL, "%s must be a string", key);
        }
        const char *scope = json_string_value(json_object_get(body, "scope"));
        if (!scope || (strcmp(scope, "default") != 0 &&
                       !((strncmp(scope, "vm:", 3) == 0 && fleet_valid_name(scope + 3)) ||
                         (strncmp(scope, "group:", 6) == 0 && fleet_valid_name(scope + 6)))))
                return error_set(err, -EINVAL, "scope must be default, group:NAME or vm:NAME");
        if (json_object_get(body, "hosts") && strncmp(scope, "group:", 6) != 0)
                return error_set(err, -EINVAL, "only a group: policy lists hosts");
        const char *provider = json_string_value(json_object_get(body, "provider"));
        if (provider && *provider && (strlen(provider) > 127 || !fleet_valid_name(provider)))
                return error_set(err, -EINVAL, "provider must name a key provider of the hosts' providers.json");
        const char *volumes = json_string_value(json_object_get(body, "volumes"));
        if (volumes && *volumes && !fleet_api_one_of(volumes, "all|os|data"))
                return error_set(err, -EINVAL, "volumes must be all, os or data (or \"\" for not set)");
        /* QEMU's luks driver (7.2) opens LUKS1 only: vm encrypt writes nothing else. */
        const char *format = json_string_value(json_object_get(body, "format"));
        if (format && *format && !fleet_api_one_of(format, "luks1"))
                return error_set(err, -EINVAL, "format must be luks1 (QEMU opens no other) or \"\"");
        const char *nd = json_string_value(json_object_get(body, "new_data_disk"));
        if (nd && *nd && !fleet_api_one_of(nd, "event|encrypt"))
                return error_set(err, -EINVAL, "new_data_disk must be event or encrypt (or \"\" for not set)");
        return 0;
}

static int put_policies(struct fleet_store *s, const struct fleet_request *req, char a[][256] _unused_,
                        struct fleet_response *resp, struct error *err) {
        json_t *body = NULL, *o = NULL;
        int r = body_object(req, &body, err);
        if (r < 0)
                return r;
        r = valid_policy(body, err);
        if (r == 0)
                r = fleet_store_policy_set(s, body, req->who->cn, &o, err);
        json_decref(body);
        return r < 0 ? r : reply(resp, 200, o);
}

/* ---- agents: each for its own host, named by its certificate ------------- */

/* A "host" in the body or query must be the caller's own. */
static int own_host(const struct fleet_request *req, json_t *body, struct error *err) {
        const char *host = NULL;
        char q[256];
        json_t *h = body ? json_object_get(body, "host") : NULL;
        if (h && !json_is_string(h))
                return error_set(err, -EINVAL, "host must be a string");
        if (h)
                host = json_string_value(h);
        else if (fleet_query_get(req->query, "host", q, sizeof(q)) == 0)
                host = q;
        if (host && strcmp(host, req->who->cn) != 0)
                return error_set(err, -EACCES, "agent %s may not act for host %s", req->who->cn, host);
        return 0;
}

static int post_register(struct fleet_store *s, const struct fleet_request *req, char a[][256] _unused_,
                         struct fleet_response *resp, struct error *err) {
        json_t *body = NULL;
        int r = body_object(req, &body, err);
        if (r < 0)
                return r;
        r = own_host(req, body, err);
        json_t *v = json_object_get(body, "version");
        if (r == 0 && v && (!json_is_string(v) || json_string_length(v) > 64))
                r = error_set(err, -EINVAL, "version must be a string of at most 64 characters");
        if (r == 0)
                r = fleet_store_host_register(s, req->who->cn, req->who->fingerprint, v ? json_string_value(v) : "",
                                              req->who->cert_expires, err);
        json_decref(body);
        return r < 0 ? r : reply(resp, 200, json_pack("{s:s}", "host", req->who->cn));
}

static int post_heartbeat(struct fleet_store *s, const struct fleet_request *req, char a[][256] _unused_,
                          struct fleet_response *resp, struct error *err) {
        json_t *body = NULL;
        int r = body_object(req, &body, err);
        if (r == 0)
                r = own_host(req, body, err);
        if (r == 0)
                r = fleet_store_host_seen(s, req->who->cn, req->who->cert_expires, err);
        json_decref(body);
        return r < 0 ? r : reply(resp, 200, json_pack("{s:s}", "host", req->who->cn));
}

static int valid_vm(json_t *vm, size_t i, struct error *err) {
        json_t *name = json_object_get(vm, "name"), *uuid = json_object_get(vm, "uuid"),
               *disks = json_object_get(vm, "disks");
        if (!json_is_object(vm) || !json_is_string(name) || !fleet_valid_name(json_string_value(name)))
                return error_set(err, -EINVAL, "vms[%zu] needs a name (printable, no '/', '?', '&', '%%')", i);
        if (uuid && !json_is_string(uuid))
                return error_set(err, -EINVAL, "vms[%zu].uuid must be a string", i);
        if (disks && !json_is_array(disks))
                return error_set(err, -EINVAL, "vms[%zu].disks must be an array", i);
        return 0;
}

static int post_inventory(struct fleet_store *s, const struct fleet_request *req, char a[][256] _unused_,
                          struct fleet_response *resp, struct error *err) {
        json_t *body = NULL;
        int r = body_object(req, &body, err);
        if (r < 0)
                return r;
        r = own_host(req, body, err);
        json_t *vms = json_object_get(body, "vms");
        if (r == 0 && !json_is_array(vms))
                r = error_set(err, -EINVAL, "the body needs \"vms\": an array of VMs");
        size_t i;
        json_t *vm;
        json_array_foreach(vms, i, vm) {
                if (r < 0)
                        break;
                r = valid_vm(vm, i, err);
                for (size_t k = 0; r == 0 && k < i; k++)
                        if (json_equal(json_object_get(json_array_get(vms, k), "name"), json_object_get(vm, "name")))
                                r = error_set(err, -EINVAL, "vms[%zu]: the name %s is there twice", i,
                                                    json_string_value(json_object_get(vm, "name")));
        }
        /* The host's key providers, when the agent reports them (names,
         * endpoints and reachability: never a credential). */
        json_t *providers = json_object_get(body, "providers");
        if (r == 0 && providers)
                r = fleet_api_valid_host_providers(providers, err);
        if (r == 0)
                r = fleet_store_vms_replace(s, req->who->cn, vms, err);
        if (r == 0 && providers)
                r = fleet_store_host_providers_replace(s, req->who->cn, providers, err);
        json_decref(body);
        return r < 0 ? r : reply(resp, 200, json_pack("{s:I}", "vms", (json_int_t) json_array_size(vms)));
}

static int get_agent_jobs(struct fleet_store *s, const struct fleet_request *req, char a[][256] _unused_,
                          struct fleet_response *resp, struct error *err) {
        int r = own_host(req, NULL, err);
        if (r < 0)
                return r;
        int wait = 0;
        char buf[16];
        r = fleet_query_get(req->query, "wait", buf, sizeof(buf));
        if (r == 0) {
                char *end;
                long w = strtol(buf, &end, 10);
                if (!*buf || *end || w < 0 || w > 300)
                        return error_set(err, -EINVAL, "wait= must be 0 to 300 seconds");
                wait = (int) w;
        } else if (r == -EINVAL)
                return error_set(err, -EINVAL, "wait= must be 0 to 300 seconds");
        json_t *job = NULL;
        r = fleet_store_job_claim(s, req->who->cn, &job, err);
        if (r == -ENOENT) {
                resp->kind = wait > 0 ? FLEET_WAIT_JOB : FLEET_REPLY;
                resp->wait_seconds = wait;
                return reply(resp, 204, NULL);
        }
        return r < 0 ? r : reply(resp, 200, job);
}

static int post_progress(struct fleet_store *s, const struct fleet_request *req, char a[][256],
                         struct fleet_response *resp, struct error *err) {
        int64_t id = 0;
        int r = parse_id(a[0], &id, err);
        if (r < 0)
                return r;
        json_t *body = NULL;
        r = body_object(req, &body, err);
        if (r < 0)
                return r;
        json_t *disk = json_object_get(body, "disk"), *done = json_object_get(body, "done"),
               *total = json_object_get(body, "total");
        const char *action = NULL;
        if (!json_is_string(disk) || json_string_length(disk) > 31 || !json_is_integer(done) ||
            !json_is_integer(total) || json_integer_value(done) < 0 ||
            json_integer_value(total) < json_integer_value(done))
                r = error_set(err, -EINVAL,
                                    "progress needs {\"disk\": target, \"done\": bytes, \"total\": bytes >= done}");
        if (r == 0)
                r = own_host(req, body, err);
        if (r == 0)
                r = fleet_store_job_progress(s, id, req->who->cn, json_string_value(disk),
                                             (uint64_t) json_integer_value(done),
                                             (uint64_t) json_integer_value(total), &action, err);
        json_decref(body);
        return r < 0 ? r : reply(resp, 200, json_pack("{s:s}", "action", action));
}

static int post_done(struct fleet_store *s, const struct fleet_request *req, char a[][256],
                     struct fleet_response *resp, struct error *err) {
        int64_t id = 0;
        int r = parse_id(a[0], &id, err);
        if (r < 0)
                return r;
        json_t *body = NULL;
        r = body_object(req, &body, err);
        if (r < 0)
                return r;
        json_t *result = json_object_get(body, "result"), *message = json_object_get(body, "message");
        if (!json_is_string(result) || (message && (!json_is_string(message) || json_string_length(message) > 1024)))
                r = error_set(err, -EINVAL,
                                    "done needs {\"result\": done|failed|paused|cancelled|retry|key-unreachable|"
                                    "key-missing|key-denied, \"message\": text}");
        if (r == 0)
                r = own_host(req, body, err);
        if (r == 0)
                r = fleet_store_job_finish(s, id, req->who->cn, json_string_value(result),
                                           message ? json_string_value(message) : "", err);
        json_t *job = NULL;
        if (r == 0)
                r = fleet_store_job_get(s, id, &job, err);
        json_decref(body);
        return r < 0 ? r : reply(resp, 200, job);
}

#define ANY FLEET_ROUTE_ANY_CLIENT
#define JOB FLEET_ROUTE_JOB_OP

const struct fleet_route fleet_routes[] = {
        { "GET", "/me", ANY, get_me },
        { "GET", "/hosts", FLEET_PRIV_READ, get_hosts },
        { "GET", "/vms", FLEET_PRIV_READ, get_vms },
        { "GET", "/vms/{name}", FLEET_PRIV_READ, get_vm },
        { "POST", "/vms/{name}/encrypt", FLEET_PRIV_ENCRYPT, post_encrypt },
        { "POST", "/vms/{name}/decrypt", FLEET_PRIV_DECRYPT, post_decrypt },
        { "POST", "/vms/{name}/start", FLEET_PRIV_START, post_start },
        { "POST", "/vms/{name}/rekey", FLEET_PRIV_REKEY, post_rekey },
        { "GET", "/jobs", FLEET_PRIV_READ, get_jobs },
        { "GET", "/jobs/{id}", FLEET_PRIV_READ, get_job },
        { "POST", "/jobs/{id}/cancel", JOB, post_cancel },
        { "POST", "/jobs/{id}/pause", JOB, post_pause },
        { "POST", "/jobs/{id}/resume", JOB, post_resume },
        { "GET", "/events", FLEET_PRIV_READ, get_events },
        { "GET", "/policies", FLEET_PRIV_READ, get_policies },
        { "PUT", "/policies", FLEET_PRIV_MANAGE_POLICIES, put_policies },
        { "GET", "/providers", FLEET_PRIV_READ, fleet_api_get_providers },
        { "PUT", "/providers/{name}", FLEET_PRIV_MANAGE_PROVIDERS, fleet_api_put_provider },
        { "DELETE", "/providers/{name}", FLEET_PRIV_MANAGE_PROVIDERS, fleet_api_delete_provider },
        { "POST", "/agent/register", FLEET_PRIV_AGENT, post_register },
        { "POST", "/agent/heartbeat", FLEET_PRIV_AGENT, post_heartbeat },
        { "POST", "/agent/inventory", FLEET_PRIV_AGENT, post_inventory },
        { "GET", "/agent/jobs", FLEET_PRIV_AGENT, get_agent_jobs },
        { "POST", "/agent/jobs/{id}/progress", FLEET_PRIV_AGENT, post_progress },
        { "POST", "/agent/jobs/{id}/done", FLEET_PRIV_AGENT, post_done },
        { NULL, NULL, 0, NULL },
};

const char *fleet_route_needs(const struct fleet_route *r) {
        if (r->privilege == FLEET_ROUTE_ANY_CLIENT)
                return "any";
        if (r->privilege == FLEET_ROUTE_JOB_OP)
                return "encrypt|decrypt|rekey|start";
        return fleet_priv_name((enum fleet_priv) r->privilege);
}

#define MAX_ARGS 2

/* Does path match pattern? The {x} segments land in args. */
static bool route_match(const char *pattern, const char *path, char args[][256]) {
        int n = 0;
        while (*pattern && *path) {
                if (*pattern != '/' || *path != '/')
                        return false;
                pattern++, path++;
                const char *pe = strchrnul(pattern, '/'), *se = strchrnul(path, '/');
                if (*pattern == '{') {
                        size_t len = (size_t) (se - path);
                        if (len == 0 || len >= 256 || n >= MAX_ARGS)
                                return false;
                        memcpy(args[n], path, len);
                        args[n][len] = 0;
                        if (!fleet_valid_name(args[n]))
                                return false;
                        n++;
                } else if (pe - pattern != se - path || strncmp(pattern, path, (size_t) (pe - pattern)) != 0)
                        return false;
                pattern = pe, path = se;
        }
        return !*pattern && !*path;
}

void fleet_response_clear(struct fleet_response *resp) {
        json_decref(resp->body);
        memset(resp, 0, sizeof(*resp));
}

/* s as printable ASCII for messages (at most size - 1 bytes): a request's path
 * may hold any bytes, and messages are JSON strings and log lines. */
static const char *printable(const char *s, char *buf, size_t size) {
        size_t o = 0;
        for (; s && *s && o + 1 < size; s++)
                buf[o++] = *s > ' ' && *s < 0x7f ? *s : '?';
        buf[o] = 0;
        return buf;
}

void fleet_api_handle(struct fleet_store *s, const struct fleet_request *req, struct fleet_response *resp) {
        memset(resp, 0, sizeof(*resp));
        char path[128], method[16];
        printable(req->path, path, sizeof(path));
        printable(req->method, method, sizeof(method));
        struct error err = { 0 };
        char args[MAX_ARGS][256];
        const struct fleet_route *route = NULL;
        bool path_known = false;
        for (const struct fleet_route *rt = fleet_routes; rt->method; rt++)
                if (route_match(rt->pattern, req->path, args)) {
                        path_known = true;
                        if (strcmp(rt->method, req->method) == 0) {
                                route = rt;
                                break;
                        }
                }
        int r;
        if (!route)
                r = path_known ? error_set(&err, -EOPNOTSUPP, "%s is not allowed on %s", method, path)
                               : error_set(&err, -ENOENT, "no such resource: %s", path);
        else if (!req->who->role[0])
                /* A certificate of the CA whose CN manager.conf does not list (or
                 * a revoked one): nothing at all. */
                r = error_set(&err, -EACCES, "%s is not a client of this manager: add 'client = %s ROLE' to "
                                             "manager.conf", req->who->cn, req->who->cn);
        else if (route->privilege >= 0 && !(req->who->privs & (1U << route->privilege)))
                r = error_set(&err, -EACCES, "%s (role %s) lacks the privilege %s needed to %s %s", req->who->cn,
                              req->who->role, fleet_priv_name((enum fleet_priv) route->privilege), method,
                              route->pattern);
        else
                r = route->handler(s, req, args, resp, &err);
        if (r >= 0)
                return;
        json_decref(resp->body);
        memset(resp, 0, sizeof(*resp));
        resp->status = r == -EOPNOTSUPP ? 405 : fleet_http_status(r);
        resp->body = json_pack("{s:s}", "error", err.text[0] ? err.text : strerror(-r));
        if (!resp->body) /* a message that is not UTF-8: say less rather than nothing */
                resp->body = json_pack("{s:s}", "error", strerror(-r));
        if (resp->status == 403) {
                /* Refusals are audited: a valid certificate may still be hostile. */
                char msg[1200];
                snprintf(msg, sizeof(msg), "refused %s %s: %s", method, path, err.text);
                (void) fleet_store_event_add(s, req->who->cn, "", "", 0, "access-denied", msg, NULL);
        }
}
