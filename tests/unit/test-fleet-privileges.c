/* Crypto privileges and key providers in src/fleet (and manager.conf's role
 * lines in src/manager): the privilege each route needs, per built-in and
 * custom role; job verbs that need the privilege of the job's kind; GET /me;
 * roles defined, and bad role lines refused; the hosts' provider reports
 * stored and shown next to the fleet's registrations; registrations and
 * policies checked against each other. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fleet/api.h"
#include "fleet/store.h"
#include "manager/manager.h"

static char dir[] = "/tmp/test-fleet-priv.XXXXXX";
static char db[256];

static const char *str(json_t *o, const char *k) {
        return json_string_value(json_object_get(o, k));
}

/* A store with host h1 reporting vm1 and vm2, and host h2 with none. */
static struct fleet_store *fixture(void) {
        unlink(db);
        struct fleet_store *s = NULL;
        assert_int_equal(fleet_store_open(db, &s, NULL), 0);
        json_t *vms = json_loads("[{\"name\":\"vm1\",\"uuid\":\"u1\"},{\"name\":\"vm2\",\"uuid\":\"u2\"}]", 0, NULL);
        assert_int_equal(fleet_store_host_register(s, "h1", "fp", "1", 0, NULL), 0);
        assert_int_equal(fleet_store_host_register(s, "h2", "fp", "1", 0, NULL), 0);
        assert_int_equal(fleet_store_vms_replace(s, "h1", vms, NULL), 0);
        json_decref(vms);
        return s;
}

/* method path [body] as cn with role (privileges privs); the status, and the
 * answer in *ret when ret is not NULL. */
static int call_as(struct fleet_store *s, const char *cn, const char *role, unsigned privs, const char *method,
                   const char *path, const char *body, json_t **ret) {
        struct fleet_principal who = { .privs = privs };
        snprintf(who.cn, sizeof(who.cn), "%s", cn);
        snprintf(who.role, sizeof(who.role), "%s", role);
        struct fleet_request req = { .method = method, .path = path, .body = body,
                                     .body_len = body ? strlen(body) : 0, .who = &who };
        struct fleet_response resp;
        fleet_api_handle(s, &req, &resp);
        int status = resp.status;
        if (status >= 400)
                assert_non_null(str(resp.body, "error"));
        if (ret)
                *ret = json_incref(resp.body);
        fleet_response_clear(&resp);
        return status;
}

static int call(struct fleet_store *s, enum fleet_role role, const char *method, const char *path,
                const char *body) {
        return call_as(s, fleet_role_name(role), fleet_role_name(role), fleet_role_privs(role), method, path, body,
                       NULL);
}

/* The last event's kind and message. */
static void last_event(struct fleet_store *s, const char *kind, const char *needle) {
        json_t *events = NULL;
        assert_int_equal(fleet_store_events(s, NULL, 0, 100000, &events, NULL), 0);
        json_t *e = json_array_get(events, json_array_size(events) - 1);
        assert_non_null(e);
        assert_string_equal(str(e, "kind"), kind);
        if (needle && !strstr(str(e, "message"), needle))
                fail_msg("event '%s' does not say '%s'", str(e, "message"), needle);
        json_decref(events);
}

static void test_builtin_roles(void **state) {
        (void) state;
        char buf[256];
        fleet_privs_format(fleet_role_privs(FLEET_ROLE_ADMIN), " ", buf, sizeof(buf));
        assert_string_equal(buf, "read encrypt decrypt rekey start manage-policies manage-providers");
        fleet_privs_format(fleet_role_privs(FLEET_ROLE_OPERATOR), " ", buf, sizeof(buf));
        assert_string_equal(buf, "read encrypt decrypt rekey start");
        fleet_privs_format(fleet_role_privs(FLEET_ROLE_AUDITOR), " ", buf, sizeof(buf));
        assert_string_equal(buf, "read");
        fleet_privs_format(fleet_role_privs(FLEET_ROLE_AGENT), " ", buf, sizeof(buf));
        assert_string_equal(buf, "agent");
        fleet_privs_format(fleet_role_privs(FLEET_ROLE_NO_CRYPTO_ADMIN), " ", buf, sizeof(buf));
        assert_string_equal(buf, "read start manage-policies");
        assert_int_equal(fleet_role_from_string("no-crypto-admin"), FLEET_ROLE_NO_CRYPTO_ADMIN);
        assert_int_equal(fleet_role_from_string("none"), FLEET_ROLE_NONE);
        assert_int_equal(fleet_job_op_priv(FLEET_OP_DEEP_REKEY), FLEET_PRIV_REKEY);
        assert_int_equal(fleet_job_op_priv(FLEET_OP_DECRYPT), FLEET_PRIV_DECRYPT);
        assert_int_equal(fleet_job_op_priv(FLEET_OP_START), FLEET_PRIV_START);
}

/* What every route needs: the table, as `vmcrypt-manager routes` prints it. */
static void test_route_privileges(void **state) {
        (void) state;
        static const char *const want[][3] = {
                { "GET", "/me", "any" },
                { "GET", "/vms", "read" },
                { "POST", "/vms/{name}/encrypt", "encrypt" },
                { "POST", "/vms/{name}/decrypt", "decrypt" },
                { "POST", "/vms/{name}/rekey", "rekey" },
                { "POST", "/vms/{name}/start", "start" },
                { "POST", "/jobs/{id}/resume", "encrypt|decrypt|rekey|start" },
                { "PUT", "/policies", "manage-policies" },
                { "GET", "/providers", "read" },
                { "PUT", "/providers/{name}", "manage-providers" },
                { "DELETE", "/providers/{name}", "manage-providers" },
                { "POST", "/agent/inventory", "agent" },
        };
        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
                const struct fleet_route *r = fleet_routes;
                while (r->method && (strcmp(r->method, want[i][0]) != 0 || strcmp(r->pattern, want[i][1]) != 0))
                        r++;
                assert_non_null(r->method);
                assert_string_equal(fleet_route_needs(r), want[i][2]);
        }
        /* Only /agent routes take the agent privilege, and every one of them does. */
        for (const struct fleet_route *r = fleet_routes; r->method; r++)
                assert_int_equal(r->privilege == FLEET_PRIV_AGENT, strncmp(r->pattern, "/agent/", 7) == 0);
}

/* vSphere's "No cryptography administrator": runs policies and reads, but
 * neither encrypts, decrypts, rekeys nor manages providers; each refusal names
 * the missing privilege and is audited. */
static void test_no_crypto_admin(void **state) {
        (void) state;
        struct fleet_store *s = fixture();
        enum fleet_role n = FLEET_ROLE_NO_CRYPTO_ADMIN;
        assert_int_equal(call(s, n, "GET", "/vms", NULL), 200);
        assert_int_equal(call(s, n, "PUT", "/policies", "{\"scope\":\"default\",\"provider\":\"kms\"}"), 200);
        assert_int_equal(call(s, n, "POST", "/vms/vm1/encrypt", NULL), 403);
        last_event(s, "access-denied", "lacks the privilege encrypt");
        assert_int_equal(call(s, n, "POST", "/vms/vm1/decrypt", NULL), 403);
        last_event(s, "access-denied", "lacks the privilege decrypt");
        assert_int_equal(call(s, n, "POST", "/vms/vm1/rekey", NULL), 403);
        last_event(s, "access-denied", "lacks the privilege rekey");
        assert_int_equal(call(s, n, "PUT", "/providers/kms", "{\"kind\":\"native\"}"), 403);
        last_event(s, "access-denied", "lacks the privilege manage-providers");
        assert_int_equal(call(s, n, "POST", "/agent/register", "{}"), 403);
        /* The operator may not set policies; the admin may do all of it. */
        assert_int_equal(call(s, FLEET_ROLE_OPERATOR, "PUT", "/policies", "{\"scope\":\"default\"}"), 403);
        last_event(s, "access-denied", "lacks the privilege manage-policies");
        assert_int_equal(call(s, FLEET_ROLE_ADMIN, "PUT", "/providers/kms", "{\"kind\":\"native\"}"), 200);
        assert_int_equal(call(s, FLEET_ROLE_ADMIN, "POST", "/vms/vm1/encrypt", NULL), 202);
        json_t *jobs = NULL;
        assert_int_equal(fleet_store_jobs(s, &jobs, NULL), 0);
        assert_int_equal(json_array_size(jobs), 1); /* the refusals queued nothing */
        json_decref(jobs);
        /* Starting a VM is no crypto privilege: the no-crypto admin starts vm2 (its
         * host releases the keys); an auditor may not. */
        assert_int_equal(call(s, FLEET_ROLE_AUDITOR, "POST", "/vms/vm2/start", NULL), 403);
        last_event(s, "access-denied", "lacks the privilege start");
        assert_int_equal(call(s, n, "POST", "/vms/vm2/start", NULL), 202);
        assert_int_equal(fleet_store_jobs(s, &jobs, NULL), 0);
        assert_int_equal(json_array_size(jobs), 2);
        assert_string_equal(str(json_array_get(jobs, 1), "op"), "start");
        json_decref(jobs);
        fleet_store_free(s);
}

/* A custom role with decrypt alone: it decrypts and controls decrypt jobs, but
 * neither encrypts nor touches an encrypt job, nor reads the inventory. */
static void test_job_verbs_need_the_jobs_privilege(void **state) {
        (void) state;
        struct fleet_store *s = fixture();
        unsigned dec = 1U << FLEET_PRIV_DECRYPT;
        json_t *o = NULL;
        assert_int_equal(call(s, FLEET_ROLE_ADMIN, "POST", "/vms/vm2/encrypt", NULL), 202);      /* job 1 */
        assert_int_equal(call(s, FLEET_ROLE_ADMIN, "POST", "/jobs/1/pause", NULL), 200);
        assert_int_equal(call_as(s, "d", "decryptor", dec, "POST", "/jobs/1/resume", NULL, NULL), 403);
        last_event(s, "access-denied", "lacks the privilege encrypt");
        assert_int_equal(call_as(s, "d", "decryptor", dec, "POST", "/jobs/1/cancel", NULL, NULL), 403);
        assert_int_equal(call_as(s, "d", "decryptor", dec, "POST", "/vms/vm1/encrypt", NULL, NULL), 403);
        assert_int_equal(call_as(s, "d", "decryptor", dec, "GET", "/vms", NULL, NULL), 403);
        assert_int_equal(call_as(s, "d", "decryptor", dec, "POST", "/jobs/99/resume", NULL, NULL), 404);
        assert_int_equal(call_as(s, "d", "decryptor", dec, "POST", "/vms/vm1/decrypt", NULL, &o), 202); /* job 2 */
        assert_int_equal(json_integer_value(json_object_get(o, "id")), 2);
        json_decref(o);
        assert_int_equal(call_as(s, "d", "decryptor", dec, "POST", "/jobs/2/pause", NULL, NULL), 200);
        assert_int_equal(call_as(s, "d", "decryptor", dec, "POST", "/jobs/2/resume", NULL, NULL), 200);
        /* The operator's pause of job 1 stands; the admin resumes it. */
        assert_int_equal(fleet_store_job_get(s, 1, &o, NULL), 0);
        assert_string_equal(str(o, "state"), "paused");
        json_decref(o);
        assert_int_equal(call(s, FLEET_ROLE_OPERATOR, "POST", "/jobs/1/resume", NULL), 200);
        /* Rekey jobs need rekey, deep or not. */
        assert_int_equal(call(s, FLEET_ROLE_ADMIN, "POST", "/jobs/1/cancel", NULL), 200);
        assert_int_equal(call(s, FLEET_ROLE_ADMIN, "POST", "/vms/vm2/rekey", "{\"deep\":true}"), 202); /* job 3 */
        assert_int_equal(call_as(s, "d", "decryptor", dec, "POST", "/jobs/3/cancel", NULL, NULL), 403);
        last_event(s, "access-denied", "lacks the privilege rekey");
        assert_int_equal(call_as(s, "r", "rekeyer", 1U << FLEET_PRIV_REKEY, "POST", "/jobs/3/cancel", NULL, NULL),
                         200);
        fleet_store_free(s);
}

static void test_me(void **state) {
        (void) state;
        struct fleet_store *s = fixture();
        json_t *me = NULL;
        assert_int_equal(call_as(s, "carol", "decryptor", (1U << FLEET_PRIV_DECRYPT) | (1U << FLEET_PRIV_READ), "GET",
                                 "/me", NULL, &me),
                         200);
        assert_string_equal(str(me, "cn"), "carol");
        assert_string_equal(str(me, "role"), "decryptor");
        json_t *p = json_object_get(me, "privileges");
        assert_int_equal(json_array_size(p), 2);
        assert_string_equal(json_string_value(json_array_get(p, 0)), "read");
        assert_string_equal(json_string_value(json_array_get(p, 1)), "decrypt");
        json_decref(me);
        /* An agent may ask too; a CN manager.conf does not list may not. */
        assert_int_equal(call(s, FLEET_ROLE_AGENT, "GET", "/me", NULL), 200);
        assert_int_equal(call_as(s, "mallory", "", 0, "GET", "/me", NULL, NULL), 403);
        last_event(s, "access-denied", "not a client of this manager");
        fleet_store_free(s);
}

static void test_roles_define(void **state) {
        (void) state;
        struct fleet_roles rs;
        struct error err = { 0 };
        fleet_roles_init(&rs);
        assert_non_null(fleet_roles_find(&rs, "no-crypto-admin"));
        assert_int_equal(fleet_roles_define(&rs, "decryptor", "read, decrypt", &err), 0);
        const struct fleet_role_def *d = fleet_roles_find(&rs, "decryptor");
        assert_non_null(d);
        assert_int_equal(d->privs, (1U << FLEET_PRIV_READ) | (1U << FLEET_PRIV_DECRYPT));
        static const char *const bad[][2] = {
                { "x", "read fly" }, { "admin", "read" }, { "decryptor", "read" }, { "y", "" },
                { "bad name", "read" }, { "none", "read" }, { "z", "Read" },
        };
        static const char *const says[] = {
                ("unknown privilege 'fly': the privileges are read, encrypt, decrypt, rekey, start, manage-policies, "
                 "manage-providers, agent"),
                "built in", "defined twice", "names no privilege", "must be", "must be", "unknown privilege 'Read'",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                error_clear(&err);
                size_t n = rs.n;
                assert_int_equal(fleet_roles_define(&rs, bad[i][0], bad[i][1], &err), -EINVAL);
                if (!strstr(err.text, says[i]))
                        fail_msg("role %s = %s: '%s' does not say '%s'", bad[i][0], bad[i][1], err.text, says[i]);
                assert_int_equal(rs.n, n);
        }
        char names[512];
        fleet_roles_names(&rs, names, sizeof(names));
        assert_string_equal(names, "admin, operator, auditor, agent, no-crypto-admin, decryptor");
}

/* manager.conf: role lines anywhere in the file, clients resolved at the end;
 * an unknown role names the known ones. */
static void write_conf(const char *path, const char *extra) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fprintf(f, "tls-cert = s.crt\ntls-key = s.key\ntls-ca = ca.crt\ndatabase = m.db\n%s", extra);
        fclose(f);
}

#define H64 "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

static void test_manager_conf_roles(void **state) {
        (void) state;
        char path[300];
        snprintf(path, sizeof(path), "%s/manager.conf", dir);
        struct manager_config *c = calloc(1, sizeof(*c));
        struct error err = { 0 };
        write_conf(path, "client = carol decryptor\nclient = n no-crypto-admin\nrole decryptor = decrypt\n");
        assert_int_equal(manager_config_read(path, c, &err), 0);
        assert_int_equal(c->n_clients, 2);
        assert_string_equal(c->clients[0].role, "decryptor");
        assert_int_equal(c->clients[0].privs, 1U << FLEET_PRIV_DECRYPT);
        assert_int_equal(c->clients[1].privs, fleet_role_privs(FLEET_ROLE_NO_CRYPTO_ADMIN));
        /* A token line: its role resolved at the end too, its hash decoded. */
        write_conf(path, "token = ci decryptor " H64 " 4102444800\nrole decryptor = read decrypt\n");
        assert_int_equal(manager_config_read(path, c, &err), 0);
        assert_int_equal(c->n_clients, 1);
        assert_int_equal(c->n_tokens, 1);
        assert_true(c->clients[0].token);
        assert_string_equal(c->clients[0].cn, "ci");
        assert_int_equal(c->clients[0].privs, (1U << FLEET_PRIV_READ) | (1U << FLEET_PRIV_DECRYPT));
        assert_int_equal(c->clients[0].expires, 4102444800LL);
        assert_int_equal(c->clients[0].hash[1], 0x11);
        assert_int_equal(c->clients[0].hash[31], 0xff);
        static const char *const bad[][2] = {
                { "client = carol nobody\n", "role 'nobody', which is neither built in nor defined" },
                { "role r = read\nrole r = decrypt\n", ":2: role r is defined twice" },
                { "role operator = read\n", ":1: role operator is built in" },
                { "role r = read steal\n", "unknown privilege 'steal': the privileges are read" },
                { "client = carol admin extra\n", "client = CN ROLE" },
                { "token = ci auditor 00ff 99\n", "token = NAME ROLE SHA256 EXPIRES" },
                { "token = ci auditor " H64 " 0\n", "token = NAME ROLE SHA256 EXPIRES" },
                { "token = ci AUDITOR " H64 " 99\n", "token ci has role 'AUDITOR', which is neither" },
                { "token = ci agent " H64 " 99\n", "holds the agent privilege" },
                { "role a2 = read agent\ntoken = ci a2 " H64 " 99\n", "holds the agent privilege" },
                { "client = ci auditor\ntoken = ci auditor " H64 " 99\n", "client ci is listed twice (a name is one client" },
                { "token = ci auditor " H64 " 99\ntoken = ci operator " H64 " 99\n", "client ci is listed twice" },
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                error_clear(&err);
                FILE *f = fopen(path, "w");
                assert_non_null(f);
                fputs(bad[i][0], f);
                fputs("tls-cert = s.crt\ntls-key = s.key\ntls-ca = ca.crt\ndatabase = m.db\n", f);
                fclose(f);
                assert_true(manager_config_read(path, c, &err) < 0);
                if (!strstr(err.text, bad[i][1]))
                        fail_msg("'%s': '%s' does not say '%s'", bad[i][0], err.text, bad[i][1]);
        }
        free(c);
        unlink(path);
}

static const char report_h1[] =
        "{\"vms\":[{\"name\":\"vm1\",\"uuid\":\"u1\"},{\"name\":\"vm2\",\"uuid\":\"u2\"}],\"providers\":["
        "{\"name\":\"kms\",\"kind\":\"kmip\",\"endpoints\":[\"10.0.0.5:5696\"],\"default\":true,"
        "\"state\":\"reachable\",\"message\":\"\"},"
        "{\"name\":\"local\",\"kind\":\"native\",\"endpoints\":[],\"default\":false,\"state\":\"error\","
        "\"message\":\"native key provider \\\"local\\\" has no primary key yet\"}]}";

static const char report_h1_down[] =
        "{\"vms\":[{\"name\":\"vm1\",\"uuid\":\"u1\"},{\"name\":\"vm2\",\"uuid\":\"u2\"}],\"providers\":["
        "{\"name\":\"kms\",\"kind\":\"kmip\",\"endpoints\":[\"10.0.0.5:5696\"],\"default\":true,"
        "\"state\":\"unreachable\",\"message\":\"connection refused\"},"
        "{\"name\":\"local\",\"kind\":\"native\",\"endpoints\":[],\"default\":false,\"state\":\"error\","
        "\"message\":\"native key provider \\\"local\\\" has no primary key yet\"}]}";

static int count_events(struct fleet_store *s, const char *kind) {
        json_t *events = NULL;
        assert_int_equal(fleet_store_events(s, NULL, 0, 100000, &events, NULL), 0);
        int n = 0;
        size_t i;
        json_t *e;
        json_array_foreach(events, i, e)
                n += strcmp(str(e, "kind"), kind) == 0;
        json_decref(events);
        return n;
}

static json_t *provider(json_t *list, const char *name) {
        size_t i;
        json_t *p;
        json_array_foreach(list, i, p)
                if (strcmp(str(p, "name"), name) == 0)
                        return p;
        return NULL;
}

/* The hosts' reports: stored per host, shown per provider, state changes as
 * events; nothing but names, kinds, endpoints and states is taken. */
static void test_provider_reports(void **state) {
        (void) state;
        struct fleet_store *s = fixture();
        enum fleet_role a = FLEET_ROLE_AGENT;
        static const char *const bad[] = {
                "{\"vms\":[],\"providers\":{}}",
                "{\"vms\":[],\"providers\":[{\"name\":\"k\",\"kind\":\"kmip\",\"state\":\"reachable\","
                "\"key\":\"/etc/vmcrypt/client.key\"}]}",
                "{\"vms\":[],\"providers\":[{\"name\":\"k\",\"kind\":\"hsm\",\"state\":\"reachable\"}]}",
                "{\"vms\":[],\"providers\":[{\"name\":\"k\",\"kind\":\"kmip\",\"state\":\"fine\"}]}",
                "{\"vms\":[],\"providers\":[{\"name\":\"k\",\"kind\":\"kmip\",\"state\":\"reachable\","
                "\"endpoints\":[\"no port\"]}]}",
                "{\"vms\":[],\"providers\":[{\"name\":\"k\",\"kind\":\"kmip\",\"state\":\"reachable\"},"
                "{\"name\":\"k\",\"kind\":\"kmip\",\"state\":\"reachable\"}]}",
                "{\"vms\":[],\"providers\":[{\"name\":\"a/b\",\"kind\":\"kmip\",\"state\":\"reachable\"}]}",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_int_equal(call_as(s, "h1", "agent", fleet_role_privs(a), "POST", "/agent/inventory", bad[i],
                                         NULL),
                                 400);
        json_t *list = NULL, *vms = NULL;
        assert_int_equal(fleet_store_vms(s, &vms, NULL), 0);
        assert_int_equal(json_array_size(vms), 2); /* a refused report changed nothing */
        json_decref(vms);
        assert_int_equal(call_as(s, "h1", "agent", fleet_role_privs(a), "POST", "/agent/inventory", report_h1, NULL),
                         200);
        last_event(s, "provider-unreachable", "key provider local on h1: error: native key provider");
        assert_int_equal(call_as(s, "aud", "auditor", fleet_role_privs(FLEET_ROLE_AUDITOR), "GET", "/providers", NULL,
                                 &list),
                         200);
        assert_int_equal(json_array_size(list), 2);
        json_t *kms = provider(list, "kms"), *h = json_array_get(json_object_get(kms, "hosts"), 0);
        assert_true(json_is_null(json_object_get(kms, "registered")));
        assert_false(json_is_true(json_object_get(kms, "unregistered"))); /* nothing registered: no flags */
        assert_int_equal(json_array_size(json_object_get(kms, "flags")), 0);
        assert_string_equal(str(h, "host"), "h1");
        assert_string_equal(str(h, "kind"), "kmip");
        assert_string_equal(str(h, "state"), "reachable");
        assert_true(json_is_true(json_object_get(h, "default")));
        assert_string_equal(json_string_value(json_array_get(json_object_get(h, "endpoints"), 0)), "10.0.0.5:5696");
        assert_true(json_is_integer(json_object_get(h, "seen")));
        json_decref(list);
        /* The key server goes away: one event, not one per report. */
        assert_int_equal(call_as(s, "h1", "agent", fleet_role_privs(a), "POST", "/agent/inventory", report_h1_down,
                                 NULL),
                         200);
        last_event(s, "provider-unreachable", "key provider kms on h1: unreachable: connection refused");
        assert_int_equal(count_events(s, "provider-unreachable"), 2);
        assert_int_equal(call_as(s, "h1", "agent", fleet_role_privs(a), "POST", "/agent/inventory", report_h1_down,
                                 NULL),
                         200);
        assert_int_equal(count_events(s, "provider-unreachable"), 2);
        assert_int_equal(call_as(s, "h1", "agent", fleet_role_privs(a), "POST", "/agent/inventory", report_h1, NULL),
                         200);
        last_event(s, "provider-reachable", "key provider kms on h1: reachable");
        assert_int_equal(fleet_store_providers(s, &list, NULL), 0);
        h = json_array_get(json_object_get(provider(list, "kms"), "hosts"), 0);
        assert_string_equal(str(h, "state"), "reachable");
        json_decref(list);
        /* An inventory without providers (an older agent) keeps the last report. */
        assert_int_equal(call_as(s, "h1", "agent", fleet_role_privs(a), "POST", "/agent/inventory",
                                 "{\"vms\":[]}", NULL), 200);
        assert_int_equal(fleet_store_providers(s, &list, NULL), 0);
        assert_int_equal(json_array_size(list), 2);
        json_decref(list);
        fleet_store_free(s);
}

/* Registration: manage-providers only, checked input, events with the actor;
 * GET /providers flags hosts without a registered provider and reported ones
 * the fleet does not know; once any is registered, policies name registered
 * ones only, and a provider a policy names stays registered. */
static void test_provider_registration(void **state) {
        (void) state;
        struct fleet_store *s = fixture();
        enum fleet_role adm = FLEET_ROLE_ADMIN;
        assert_int_equal(call_as(s, "h1", "agent", fleet_role_privs(FLEET_ROLE_AGENT), "POST", "/agent/inventory",
                                 report_h1, NULL),
                         200);
        /* Before any registration a policy may name any provider. */
        assert_int_equal(call(s, adm, "PUT", "/policies", "{\"scope\":\"vm:vm1\",\"provider\":\"other\"}"), 200);
        assert_int_equal(call(s, FLEET_ROLE_OPERATOR, "PUT", "/providers/kms", "{\"kind\":\"kmip\"}"), 403);
        assert_int_equal(call(s, FLEET_ROLE_AUDITOR, "DELETE", "/providers/kms", NULL), 403);
        static const char *const bad[] = {
                "{}", "{\"kind\":\"hsm\"}", "{\"kind\":\"kmip\"}", "{\"kind\":\"kmip\",\"endpoints\":\"k:1\"}",
                "{\"kind\":\"native\",\"password\":\"x\"}", "{\"kind\":\"native\",\"description\":7}", "[1]",
                ("{\"kind\":\"kmip\",\"endpoints\":[\"a:1\",\"b:1\",\"c:1\",\"d:1\",\"e:1\",\"f:1\",\"g:1\","
                 "\"h:1\",\"i:1\"]}"),
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_int_equal(call(s, adm, "PUT", "/providers/kms", bad[i]), 400);
        json_t *list = NULL;
        assert_int_equal(fleet_store_providers(s, &list, NULL), 0);
        assert_true(json_is_null(json_object_get(provider(list, "kms"), "registered")));
        json_decref(list);
        assert_int_equal(call(s, adm, "PUT", "/providers/kms",
                              "{\"kind\":\"kmip\",\"endpoints\":[\"10.0.0.5:5696\"],\"description\":\"lab\"}"), 200);
        last_event(s, "provider-registered", "key provider kms registered: kind kmip");
        json_t *events = NULL;
        assert_int_equal(fleet_store_events(s, NULL, 0, 100000, &events, NULL), 0);
        assert_string_equal(str(json_array_get(events, json_array_size(events) - 1), "actor"), "admin");
        json_decref(events);
        assert_int_equal(fleet_store_providers(s, &list, NULL), 0);
        json_t *kms = provider(list, "kms"), *local = provider(list, "local");
        assert_string_equal(str(json_object_get(kms, "registered"), "description"), "lab");
        assert_string_equal(json_string_value(json_array_get(json_object_get(kms, "missing"), 0)), "h2");
        assert_non_null(strstr(json_string_value(json_array_get(json_object_get(kms, "flags"), 0)), "h2"));
        assert_true(json_is_true(json_object_get(local, "unregistered")));
        assert_non_null(strstr(json_string_value(json_array_get(json_object_get(local, "flags"), 0)),
                               "not registered with the fleet"));
        json_decref(list);
        /* Policies now name registered providers only (and "" still clears). */
        assert_int_equal(call(s, adm, "PUT", "/policies", "{\"scope\":\"default\",\"provider\":\"other\"}"), 400);
        assert_int_equal(call(s, adm, "PUT", "/policies", "{\"scope\":\"default\",\"provider\":\"kms\"}"), 200);
        assert_int_equal(call(s, adm, "PUT", "/policies", "{\"scope\":\"vm:vm1\",\"provider\":\"\"}"), 200);
        /* A provider a policy names stays; an unknown one is 404. */
        assert_int_equal(call(s, adm, "DELETE", "/providers/kms", NULL), 409);
        assert_int_equal(call(s, adm, "DELETE", "/providers/nope", NULL), 404);
        assert_int_equal(call(s, adm, "PUT", "/providers/spare", "{\"kind\":\"native\"}"), 200);
        /* By name, registered or only reported. */
        assert_int_equal(fleet_store_providers(s, &list, NULL), 0);
        assert_int_equal(json_array_size(list), 3);
        assert_string_equal(str(json_array_get(list, 0), "name"), "kms");
        assert_string_equal(str(json_array_get(list, 1), "name"), "local");
        assert_string_equal(str(json_array_get(list, 2), "name"), "spare");
        json_decref(list);
        assert_int_equal(call(s, adm, "DELETE", "/providers/spare", NULL), 200);
        last_event(s, "provider-unregistered", "key provider spare unregistered");
        assert_int_equal(fleet_store_providers(s, &list, NULL), 0);
        assert_null(provider(list, "spare"));
        json_decref(list);
        fleet_store_free(s);
}

int main(void) {
        assert_non_null(mkdtemp(dir));
        snprintf(db, sizeof(db), "%s/manager.db", dir);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_builtin_roles),
                cmocka_unit_test(test_route_privileges),
                cmocka_unit_test(test_no_crypto_admin),
                cmocka_unit_test(test_job_verbs_need_the_jobs_privilege),
                cmocka_unit_test(test_me),
                cmocka_unit_test(test_roles_define),
                cmocka_unit_test(test_manager_conf_roles),
                cmocka_unit_test(test_provider_reports),
                cmocka_unit_test(test_provider_registration),
        };
        int r = cmocka_run_group_tests(tests, NULL, NULL);
        unlink(db);
        char wal[300];
        snprintf(wal, sizeof(wal), "%s-wal", db);
        unlink(wal);
        snprintf(wal, sizeof(wal), "%s-shm", db);
        unlink(wal);
        rmdir(dir);
        return r;
}
