/* src/fleet without a network: the store's job state machine and its events
 * (append-only, enforced by the database), migrations on reopen, the API's
 * routes, roles and per-host checks, and query decoding. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "fleet/api.h"
#include "fleet/schema.h"
#include "fleet/store.h"

static char dir[] = "/tmp/test-fleet.XXXXXX";
static char db[256];

static struct fleet_store *open_store(void) {
        struct fleet_store *s = NULL;
        struct error err = { 0 };
        assert_int_equal(fleet_store_open(db, &s, &err), 0);
        return s;
}

/* A store with host h1 reporting vm1 and vm2. */
static struct fleet_store *fixture(void) {
        unlink(db);
        struct fleet_store *s = open_store();
        json_t *vms = json_loads("[{\"name\":\"vm1\",\"uuid\":\"u1\"},{\"name\":\"vm2\",\"uuid\":\"u2\"}]", 0, NULL);
        assert_int_equal(fleet_store_host_register(s, "h1", "fp", "1", 0, NULL), 0);
        assert_int_equal(fleet_store_vms_replace(s, "h1", vms, NULL), 0);
        json_decref(vms);
        return s;
}

static const char *str(json_t *o, const char *k) {
        return json_string_value(json_object_get(o, k));
}

static void test_job_states(void **state) {
        (void) state;
        struct fleet_store *s = fixture();
        struct error err = { 0 };
        json_t *job = NULL;
        assert_int_equal(fleet_store_job_create(s, "vm1", FLEET_OP_ENCRYPT, "admin", &job, &err), 0);
        assert_string_equal(str(job, "state"), "queued");
        json_decref(job);
        assert_int_equal(fleet_store_job_create(s, "vm1", FLEET_OP_DECRYPT, "admin", &job, &err), -EBUSY);
        assert_int_equal(fleet_store_job_create(s, "nope", FLEET_OP_DECRYPT, "admin", &job, &err), -ENOENT);
        /* Another host neither gets it nor reports for it. */
        assert_int_equal(fleet_store_job_claim(s, "h2", &job, &err), -ENOENT);
        assert_int_equal(fleet_store_job_claim(s, "h1", &job, &err), 0);
        assert_string_equal(str(job, "state"), "running");
        json_decref(job);
        const char *action = NULL;
        assert_int_equal(fleet_store_job_progress(s, 1, "h2", "vda", 1, 2, &action, &err), -EACCES);
        assert_int_equal(fleet_store_job_progress(s, 1, "h1", "vda", 1, 2, &action, &err), 0);
        assert_string_equal(action, "continue");
        /* Running: no second claim; the agent's restart (register) queues it again. */
        assert_int_equal(fleet_store_job_claim(s, "h1", &job, &err), -ENOENT);
        assert_int_equal(fleet_store_host_register(s, "h1", "fp", "1", 0, &err), 0);
        assert_int_equal(fleet_store_job_claim(s, "h1", &job, &err), 0);
        assert_int_equal(json_integer_value(json_object_get(job, "attempts")), 2);
        json_decref(job);
        assert_int_equal(fleet_store_job_control(s, 1, "pause", "op", &job, &err), 0);
        assert_string_equal(str(job, "request"), "pause");
        json_decref(job);
        assert_int_equal(fleet_store_job_progress(s, 1, "h1", "vda", 1, 2, &action, &err), 0);
        assert_string_equal(action, "pause");
        assert_int_equal(fleet_store_job_finish(s, 1, "h1", "paused", "", &err), 0);
        assert_int_equal(fleet_store_job_control(s, 1, "pause", "op", &job, &err), -EBUSY);
        assert_int_equal(fleet_store_job_claim(s, "h1", &job, &err), -ENOENT);
        assert_int_equal(fleet_store_job_control(s, 1, "resume", "op", &job, &err), 0);
        assert_string_equal(str(job, "state"), "queued");
        json_decref(job);
        assert_int_equal(fleet_store_job_claim(s, "h1", &job, &err), 0);
        json_decref(job);
        assert_int_equal(fleet_store_job_finish(s, 1, "h1", "bogus", "", &err), -EINVAL);
        assert_int_equal(fleet_store_job_finish(s, 1, "h1", "done", "ok", &err), 0);
        assert_int_equal(fleet_store_job_get(s, 1, &job, &err), 0);
        assert_string_equal(str(job, "state"), "done");
        assert_true(json_real_value(json_object_get(job, "percent")) == 100.0);
        json_decref(job);
        assert_int_equal(fleet_store_job_control(s, 1, "cancel", "op", &job, &err), -EBUSY);
        /* A key server down: the job pauses (not claimed before its time, then
         * handed out again by itself). */
        assert_int_equal(fleet_store_job_create(s, "vm2", FLEET_OP_ENCRYPT, "admin", &job, &err), 0);
        json_decref(job);
        assert_int_equal(fleet_store_job_claim(s, "h1", &job, &err), 0);
        json_decref(job);
        assert_int_equal(fleet_store_job_finish(s, 2, "h1", "key-error", "no KMS", &err), -EINVAL);
        assert_int_equal(fleet_store_job_finish(s, 2, "h1", "key-unreachable", "no KMS", &err), 0);
        assert_int_equal(fleet_store_job_get(s, 2, &job, &err), 0);
        assert_string_equal(str(job, "state"), "paused");
        assert_string_equal(str(job, "request"), "key-wait");
        assert_non_null(strstr(str(job, "message"), "unreachable: no KMS; paused, tried again in 2 s"));
        json_decref(job);
        assert_int_equal(fleet_store_job_claim(s, "h1", &job, &err), -ENOENT);
        sleep(2);
        assert_int_equal(fleet_store_job_claim(s, "h1", &job, &err), 0);
        assert_int_equal(json_integer_value(json_object_get(job, "id")), 2);
        assert_string_equal(str(job, "request"), "");
        json_decref(job);
        /* Paused again; an operator's pause holds it: no longer handed out. */
        assert_int_equal(fleet_store_job_finish(s, 2, "h1", "key-unreachable", "no KMS", &err), 0);
        assert_int_equal(fleet_store_job_control(s, 2, "pause", "op", &job, &err), 0);
        assert_string_equal(str(job, "state"), "paused");
        assert_string_equal(str(job, "request"), "");
        json_decref(job);
        sleep(5);
        assert_int_equal(fleet_store_job_claim(s, "h1", &job, &err), -ENOENT);
        assert_int_equal(fleet_store_job_control(s, 2, "cancel", "op", &job, &err), 0);
        json_decref(job);
        /* A cancelled queued job ends at once; a new one may follow. */
        assert_int_equal(fleet_store_job_create(s, "vm1", FLEET_OP_DECRYPT, "admin", &job, &err), 0);
        json_decref(job);
        assert_int_equal(fleet_store_job_control(s, 3, "cancel", "op", &job, &err), 0);
        assert_string_equal(str(job, "state"), "cancelled");
        json_decref(job);
        json_t *events = NULL;
        assert_int_equal(fleet_store_events(s, "vm1", 0, 1000, &events, &err), 0);
        const char *want[] = { "job-queued", "job-started", "job-interrupted", "job-started", "job-pause-requested", "job-paused",
                               "job-resumed", "job-started", "job-done", "job-queued", "job-cancelled" };
        /* (vm2's job and its key errors are vm2's events.) */
        assert_int_equal(json_array_size(events), sizeof(want) / sizeof(want[0]));
        for (size_t i = 0; i < json_array_size(events); i++)
                assert_string_equal(str(json_array_get(events, i), "kind"), want[i]);
        json_decref(events);
        fleet_store_free(s);
}

/* A key missing at the key server, or one it does not deliver to this host, ends
 * the job with an event named after the error; the job is not handed out again. */
static void test_key_errors(void **state) {
        (void) state;
        struct fleet_store *s = fixture();
        struct error err = { 0 };
        json_t *job = NULL;
        const char *results[] = { "key-missing", "key-denied" };
        for (int i = 0; i < 2; i++) {
                assert_int_equal(fleet_store_job_create(s, "vm1", FLEET_OP_DECRYPT, "admin", &job, &err), 0);
                json_decref(job);
                assert_int_equal(fleet_store_job_claim(s, "h1", &job, &err), 0);
                json_decref(job);
                assert_int_equal(fleet_store_job_finish(s, i + 1, "h1", results[i], "KMS said so", &err), 0);
                assert_int_equal(fleet_store_job_get(s, i + 1, &job, &err), 0);
                assert_string_equal(str(job, "state"), "failed");
                json_decref(job);
                assert_int_equal(fleet_store_job_claim(s, "h1", &job, &err), -ENOENT);
        }
        json_t *events = NULL;
        assert_int_equal(fleet_store_events(s, "vm1", 0, 1000, &events, &err), 0);
        const char *want[] = { "job-queued", "job-started", "key-missing", "job-queued", "job-started", "key-denied" };
        assert_int_equal(json_array_size(events), sizeof(want) / sizeof(want[0]));
        for (size_t i = 0; i < json_array_size(events); i++)
                assert_string_equal(str(json_array_get(events, i), "kind"), want[i]);
        assert_non_null(strstr(str(json_array_get(events, 2), "message"), "KMS said so"));
        json_decref(events);
        fleet_store_free(s);
}

/* A host that could not run a job now (its libvirtd did not answer) gets it again
 * after a backoff, and the job fails after five runs. */
static void test_retry(void **state) {
        (void) state;
        struct fleet_store *s = fixture();
        struct error err = { 0 };
        json_t *job = NULL;
        assert_int_equal(fleet_store_job_create(s, "vm1", FLEET_OP_ENCRYPT, "admin", &job, &err), 0);
        json_decref(job);
        assert_int_equal(fleet_store_job_claim(s, "h1", &job, &err), 0);
        json_decref(job);
        assert_int_equal(fleet_store_job_finish(s, 1, "h1", "retry", "libvirtd down", &err), 0);
        assert_int_equal(fleet_store_job_get(s, 1, &job, &err), 0);
        assert_string_equal(str(job, "state"), "queued");
        assert_non_null(strstr(str(job, "message"), "libvirtd down; tried again in 2 s (run 1 of at most 5)"));
        json_decref(job);
        assert_int_equal(fleet_store_job_claim(s, "h1", &job, &err), -ENOENT);
        /* A key wait between the runs is not the host's failure: it does not count. */
        sqlite3 *h = NULL;
        assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
        assert_int_equal(sqlite3_exec(h, "UPDATE jobs SET not_before = 0", NULL, NULL, NULL), SQLITE_OK);
        assert_int_equal(fleet_store_job_claim(s, "h1", &job, &err), 0);
        json_decref(job);
        assert_int_equal(fleet_store_job_finish(s, 1, "h1", "key-unreachable", "no KMS", &err), 0);
        assert_int_equal(sqlite3_exec(h, "UPDATE jobs SET not_before = 0", NULL, NULL, NULL), SQLITE_OK);
        /* Runs 2 to 4 are retried, the fifth ends it. */
        for (int run = 2; run <= 5; run++) {
                assert_int_equal(fleet_store_job_claim(s, "h1", &job, &err), 0);
                json_decref(job);
                assert_int_equal(fleet_store_job_finish(s, 1, "h1", "retry", "libvirtd down", &err), 0);
                assert_int_equal(fleet_store_job_get(s, 1, &job, &err), 0);
                if (run < 5) {
                        char want[64];
                        snprintf(want, sizeof(want), "(run %d of at most 5)", run);
                        assert_string_equal(str(job, "state"), "queued");
                        assert_non_null(strstr(str(job, "message"), want));
                }
                json_decref(job);
                assert_int_equal(sqlite3_exec(h, "UPDATE jobs SET not_before = 0", NULL, NULL, NULL), SQLITE_OK);
        }
        sqlite3_close(h);
        assert_int_equal(fleet_store_job_get(s, 1, &job, &err), 0);
        assert_string_equal(str(job, "state"), "failed");
        assert_non_null(strstr(str(job, "message"), "gave up after 5 runs"));
        json_decref(job);
        json_t *events = NULL;
        assert_int_equal(fleet_store_events(s, "vm1", 0, 1000, &events, &err), 0);
        const char *want[] = { "job-queued", "job-started", "job-retry", "job-started", "key-unreachable",
                               "job-started", "job-retry", "job-started", "job-retry", "job-started", "job-retry",
                               "job-started", "job-failed" };
        assert_int_equal(json_array_size(events), sizeof(want) / sizeof(want[0]));
        for (size_t i = 0; i < json_array_size(events); i++)
                assert_string_equal(str(json_array_get(events, i), "kind"), want[i]);
        json_decref(events);
        fleet_store_free(s);
}

static void test_events_append_only(void **state) {
        (void) state;
        fleet_store_free(fixture());
        sqlite3 *h = NULL;
        assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
        assert_int_not_equal(sqlite3_exec(h, "UPDATE events SET message = 'x'", NULL, NULL, NULL), SQLITE_OK);
        assert_int_not_equal(sqlite3_exec(h, "DELETE FROM events", NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(h);
        /* Reopening keeps the schema version and the data. */
        struct fleet_store *s = open_store();
        assert_int_equal(fleet_store_version(s), fleet_schema_count);
        json_t *vms = NULL;
        assert_int_equal(fleet_store_vms(s, &vms, NULL), 0);
        assert_int_equal(json_array_size(vms), 2);
        json_decref(vms);
        fleet_store_free(s);
        /* A newer schema than this program knows is refused. */
        assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
        assert_int_equal(sqlite3_exec(h, "UPDATE schema_version SET version = 99", NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(h);
        struct fleet_store *s2 = NULL;
        struct error err = { 0 };
        assert_int_equal(fleet_store_open(db, &s2, &err), -EPROTO);
        assert_non_null(strstr(err.text, "newer"));
}

/* A database made by a manager of schema 1 is migrated to the newest. */
static void test_migration(void **state) {
        (void) state;
        unlink(db);
        sqlite3 *h = NULL;
        assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
        assert_int_equal(sqlite3_exec(h, fleet_schema_sqlite[0], NULL, NULL, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_exec(h, "CREATE TABLE schema_version (version INTEGER NOT NULL);"
                                         "INSERT INTO schema_version VALUES (1);"
                                         "INSERT INTO hosts VALUES ('h1', 'fp', '1', 0, 0);"
                                         "INSERT INTO vms VALUES ('h1', 'vm1', 'u1', '{\"name\":\"vm1\"}', 0);"
                                         "INSERT INTO jobs (vm, host, op, state, actor, created, updated) "
                                         "VALUES ('vm1', 'h1', 'encrypt', 'queued', 'admin', 0, 0);",
                                     NULL, NULL, NULL),
                         SQLITE_OK);
        sqlite3_close(h);
        struct fleet_store *s = open_store();
        assert_int_equal(fleet_store_version(s), fleet_schema_count);
        json_t *job = NULL;
        assert_int_equal(fleet_store_job_claim(s, "h1", &job, NULL), 0);
        assert_int_equal(json_integer_value(json_object_get(job, "not_before")), 0);
        json_decref(job);
        fleet_store_free(s);
}

static int call(struct fleet_store *s, enum fleet_role role, const char *cn, const char *method, const char *path,
                const char *query, const char *body) {
        struct fleet_principal who = { .privs = fleet_role_privs(role) };
        snprintf(who.cn, sizeof(who.cn), "%s", cn);
        snprintf(who.role, sizeof(who.role), "%s", role == FLEET_ROLE_NONE ? "" : fleet_role_name(role));
        struct fleet_request req = { .method = method, .path = path, .query = query, .body = body,
                                     .body_len = body ? strlen(body) : 0, .who = &who };
        struct fleet_response resp;
        fleet_api_handle(s, &req, &resp);
        int status = resp.status;
        if (status >= 400)
                assert_non_null(json_string_value(json_object_get(resp.body, "error")));
        fleet_response_clear(&resp);
        return status;
}

static void test_api_roles(void **state) {
        (void) state;
        struct fleet_store *s = fixture();
        assert_int_equal(call(s, FLEET_ROLE_AUDITOR, "a", "GET", "/vms", NULL, NULL), 200);
        assert_int_equal(call(s, FLEET_ROLE_AUDITOR, "a", "POST", "/vms/vm1/encrypt", NULL, NULL), 403);
        assert_int_equal(call(s, FLEET_ROLE_NONE, "x", "GET", "/hosts", NULL, NULL), 403);
        assert_int_equal(call(s, FLEET_ROLE_AGENT, "h1", "GET", "/vms", NULL, NULL), 403);
        assert_int_equal(call(s, FLEET_ROLE_OPERATOR, "o", "POST", "/vms/vm1/encrypt", NULL, "{}"), 202);
        assert_int_equal(call(s, FLEET_ROLE_OPERATOR, "o", "POST", "/vms/vm1/encrypt", NULL, "{}"), 409);
        assert_int_equal(call(s, FLEET_ROLE_ADMIN, "o", "POST", "/vms/vm2/encrypt", NULL, "[1]"), 400);
        assert_int_equal(call(s, FLEET_ROLE_ADMIN, "o", "POST", "/vms/vm2/encrypt", NULL, "{\"a\":1,\"a\":2}"), 400);
        assert_int_equal(call(s, FLEET_ROLE_ADMIN, "o", "GET", "/vms/vm1/encrypt", NULL, NULL), 405);
        assert_int_equal(call(s, FLEET_ROLE_ADMIN, "o", "GET", "/vms//", NULL, NULL), 404);
        assert_int_equal(call(s, FLEET_ROLE_AGENT, "h2", "GET", "/agent/jobs", "host=h1", NULL), 403);
        assert_int_equal(call(s, FLEET_ROLE_AGENT, "h2", "GET", "/agent/jobs", NULL, NULL), 204);
        assert_int_equal(call(s, FLEET_ROLE_AGENT, "h2", "POST", "/agent/jobs/1/done", NULL,
                              "{\"result\":\"done\"}"), 403);
        assert_int_equal(call(s, FLEET_ROLE_AGENT, "h1", "GET", "/agent/jobs", "wait=301", NULL), 400);
        assert_int_equal(call(s, FLEET_ROLE_AGENT, "h1", "GET", "/agent/jobs", "wait=0", NULL), 200);
        assert_int_equal(call(s, FLEET_ROLE_AGENT, "h1", "POST", "/agent/inventory", NULL,
                              "{\"vms\":[{\"name\":\"a\"},{\"name\":\"a\"}]}"), 400);
        /* A host that never registered has nothing to report into: a clear
         * 404, not the database's foreign-key failure as a 500. */
        assert_int_equal(call(s, FLEET_ROLE_AGENT, "h2", "POST", "/agent/inventory", NULL,
                              "{\"vms\":[{\"name\":\"vm9\"}]}"), 404);
        json_t *providers = json_loads("[{\"name\":\"kms\",\"kind\":\"kmip\",\"state\":\"reachable\"}]", 0, NULL);
        struct error perr = { 0 };
        assert_int_equal(fleet_store_host_providers_replace(s, "h2", providers, &perr), -ENOENT);
        assert_non_null(strstr(perr.text, "has not registered"));
        json_decref(providers);
        /* An agent's inventory replaces only its own host's VMs. */
        assert_int_equal(call(s, FLEET_ROLE_AGENT, "h2", "POST", "/agent/register", NULL, "{}"), 200);
        assert_int_equal(call(s, FLEET_ROLE_AGENT, "h2", "POST", "/agent/inventory", NULL, "{\"vms\":[]}"), 200);
        json_t *vms = NULL;
        assert_int_equal(fleet_store_vms(s, &vms, NULL), 0);
        assert_int_equal(json_array_size(vms), 2);
        json_decref(vms);
        json_t *events = NULL;
        assert_int_equal(fleet_store_events(s, NULL, 0, 1000, &events, NULL), 0);
        size_t denied = 0;
        for (size_t i = 0; i < json_array_size(events); i++)
                denied += strcmp(str(json_array_get(events, i), "kind"), "access-denied") == 0;
        assert_int_equal(denied, 5);
        json_decref(events);
        fleet_store_free(s);
}

/* Rekey is a job kind: shallow or deep from the body, operators only, one job per
 * VM, handed to the VM's host with its kind, paused and resumed like the others. */
static void test_rekey_jobs(void **state) {
        (void) state;
        struct fleet_store *s = fixture();
        struct error err = { 0 };
        assert_int_equal(call(s, FLEET_ROLE_AUDITOR, "a", "POST", "/vms/vm1/rekey", NULL, "{}"), 403);
        assert_int_equal(call(s, FLEET_ROLE_OPERATOR, "o", "POST", "/vms/vm1/rekey", NULL, "{\"deep\":1}"), 400);
        assert_int_equal(call(s, FLEET_ROLE_OPERATOR, "o", "POST", "/vms/vm1/rekey", NULL, "{\"deeper\":true}"),
                         400);
        assert_int_equal(call(s, FLEET_ROLE_OPERATOR, "o", "POST", "/vms/vm1/rekey", NULL,
                              "{\"deep\":true,\"x\":1}"), 400);
        assert_int_equal(call(s, FLEET_ROLE_OPERATOR, "o", "POST", "/vms/nope/rekey", NULL, "{}"), 404);
        json_t *jobs = NULL;
        assert_int_equal(fleet_store_jobs(s, &jobs, &err), 0);
        assert_int_equal(json_array_size(jobs), 0);  /* refusals changed nothing */
        json_decref(jobs);
        assert_int_equal(call(s, FLEET_ROLE_OPERATOR, "o", "POST", "/vms/vm1/rekey", NULL, NULL), 202);
        assert_int_equal(call(s, FLEET_ROLE_OPERATOR, "o", "POST", "/vms/vm1/rekey", NULL, "{}"), 409);
        assert_int_equal(call(s, FLEET_ROLE_ADMIN, "o", "POST", "/vms/vm2/rekey", NULL, "{\"deep\":true}"), 202);
        json_t *job = NULL;
        assert_int_equal(fleet_store_job_get(s, 1, &job, &err), 0);
        assert_string_equal(str(job, "op"), "rekey");
        json_decref(job);
        assert_int_equal(fleet_store_job_get(s, 2, &job, &err), 0);
        assert_string_equal(str(job, "op"), "deep-rekey");
        json_decref(job);
        enum fleet_job_op op;
        assert_int_equal(fleet_job_op_from_string("deep-rekey", &op), 0);
        assert_int_equal(op, FLEET_OP_DEEP_REKEY);
        assert_string_equal(fleet_job_op_name(FLEET_OP_REKEY), "rekey");
        /* The agent claims the oldest with its kind; a deep rekey's data pass
         * reports progress and takes a pause like an encrypt. */
        assert_int_equal(fleet_store_job_claim(s, "h1", &job, &err), 0);
        assert_string_equal(str(job, "op"), "rekey");
        json_decref(job);
        assert_int_equal(fleet_store_job_finish(s, 1, "h1", "done", "rekey vm1: 2 disk(s) under KEK k2", &err), 0);
        assert_int_equal(fleet_store_job_claim(s, "h1", &job, &err), 0);
        assert_string_equal(str(job, "op"), "deep-rekey");
        json_decref(job);
        assert_int_equal(fleet_store_job_control(s, 2, "pause", "o", &job, &err), 0);
        json_decref(job);
        const char *action = NULL;
        assert_int_equal(fleet_store_job_progress(s, 2, "h1", "vda", 5, 10, &action, &err), 0);
        assert_string_equal(action, "pause");
        assert_int_equal(fleet_store_job_finish(s, 2, "h1", "paused", "", &err), 0);
        assert_int_equal(fleet_store_job_control(s, 2, "resume", "o", &job, &err), 0);
        assert_string_equal(str(job, "state"), "queued");
        json_decref(job);
        json_t *events = NULL;
        assert_int_equal(fleet_store_events(s, "vm1", 0, 1000, &events, &err), 0);
        json_t *last = json_array_get(events, json_array_size(events) - 1);
        assert_string_equal(str(last, "kind"), "job-done");
        assert_non_null(strstr(str(last, "message"), "(rekey of vm1)"));
        assert_non_null(strstr(str(last, "message"), "under KEK k2"));
        json_decref(events);
        fleet_store_free(s);
}

/* Policies: admins set them, bad ones are refused with nothing stored; a VM's
 * encrypt job takes each setting from vm:, then its host's group, then default;
 * the new-data-disk rule follows the VM's policy. */
static void test_policies(void **state) {
        (void) state;
        struct fleet_store *s = fixture();
        struct error err = { 0 };
        assert_int_equal(call(s, FLEET_ROLE_OPERATOR, "o", "PUT", "/policies", NULL, "{\"scope\":\"default\"}"), 403);
        const char *bad[] = {
                "{}", "{\"scope\":\"vm:\"}", "{\"scope\":\"host:h1\"}", "{\"scope\":\"default\",\"x\":\"1\"}",
                "{\"scope\":\"default\",\"volumes\":\"some\"}", "{\"scope\":\"default\",\"format\":\"luks2\"}",
                "{\"scope\":\"default\",\"new_data_disk\":\"yes\"}", "{\"scope\":\"vm:vm1\",\"hosts\":[\"h1\"]}",
                "{\"scope\":\"group:g\",\"hosts\":[\"a/b\"]}", "{\"scope\":\"default\",\"provider\":7}",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_int_equal(call(s, FLEET_ROLE_ADMIN, "a", "PUT", "/policies", NULL, bad[i]), 400);
        json_t *list = NULL;
        assert_int_equal(fleet_store_policies(s, &list, &err), 0);
        assert_int_equal(json_array_size(list), 0);
        json_decref(list);
        assert_int_equal(call(s, FLEET_ROLE_ADMIN, "a", "PUT", "/policies", NULL,
                              "{\"scope\":\"default\",\"provider\":\"kms\",\"volumes\":\"all\"}"), 200);
        assert_int_equal(call(s, FLEET_ROLE_ADMIN, "a", "PUT", "/policies", NULL,
                              "{\"scope\":\"group:web\",\"hosts\":[\"h1\"],\"volumes\":\"data\","
                              "\"new_data_disk\":\"encrypt\"}"), 200);
        assert_int_equal(call(s, FLEET_ROLE_ADMIN, "a", "PUT", "/policies", NULL,
                              "{\"scope\":\"vm:vm2\",\"provider\":\"other\",\"format\":\"luks1\"}"), 200);
        /* Replacing keeps one row per scope. */
        assert_int_equal(call(s, FLEET_ROLE_ADMIN, "a", "PUT", "/policies", NULL,
                              "{\"scope\":\"vm:vm2\",\"provider\":\"lab\",\"format\":\"luks1\"}"), 200);
        assert_int_equal(call(s, FLEET_ROLE_AUDITOR, "u", "GET", "/policies", NULL, NULL), 200);
        assert_int_equal(fleet_store_policies(s, &list, &err), 0);
        assert_int_equal(json_array_size(list), 3);
        json_decref(list);
        json_t *job = NULL;
        assert_int_equal(fleet_store_job_create(s, "vm2", FLEET_OP_ENCRYPT, "a", &job, &err), 0);
        assert_string_equal(str(job, "params"),
                            "{\"format\":\"luks1\",\"policy\":[\"vm:vm2\",\"group:web\"],\"provider\":\"lab\","
                            "\"volumes\":\"data\"}");
        json_decref(job);
        /* Other kinds carry none. */
        assert_int_equal(fleet_store_job_create(s, "vm1", FLEET_OP_DECRYPT, "a", &job, &err), 0);
        assert_string_equal(str(job, "params"), "{}");
        json_decref(job);
        /* A host in no group: the default only. */
        json_t *pol = NULL;
        assert_int_equal(fleet_store_policy_for(s, "vmx", "h9", &pol, &err), 0);
        assert_string_equal(str(pol, "provider"), "kms");
        assert_string_equal(str(pol, "volumes"), "all");
        assert_string_equal(str(pol, "new_data_disk"), "");
        json_decref(pol);
        json_t *events = NULL;
        assert_int_equal(fleet_store_events(s, "vm2", 0, 1000, &events, &err), 0);
        assert_string_equal(str(json_array_get(events, 0), "kind"), "policy-set");
        assert_non_null(strstr(str(json_array_get(events, 1), "message"), "provider 'lab'"));
        json_decref(events);
        fleet_store_free(s);
}

static void test_new_disk_policy(void **state) {
        (void) state;
        struct fleet_store *s = fixture();
        fleet_store_set_new_disk_policy(s, FLEET_NEW_DISK_ENCRYPT);
        const char *enc = "[{\"name\":\"vm1\",\"disks\":[{\"target\":\"vda\",\"state\":\"encrypted\"}]},"
                          "{\"name\":\"vm2\",\"disks\":[{\"target\":\"vda\",\"state\":\"plain\"}]}]";
        const char *attached = "[{\"name\":\"vm1\",\"disks\":[{\"target\":\"vda\",\"state\":\"encrypted\"},"
                               "{\"target\":\"vdb\",\"state\":\"plain\"}]},"
                               "{\"name\":\"vm2\",\"disks\":[{\"target\":\"vda\",\"state\":\"plain\"},"
                               "{\"target\":\"vdb\",\"state\":\"plain\"}]}]";
        json_t *a = json_loads(enc, 0, NULL), *b = json_loads(attached, 0, NULL), *jobs = NULL, *events = NULL;
        assert_int_equal(fleet_store_vms_replace(s, "h1", a, NULL), 0);
        assert_int_equal(fleet_store_vms_replace(s, "h1", b, NULL), 0);
        /* The same report again is nothing new. */
        assert_int_equal(fleet_store_vms_replace(s, "h1", b, NULL), 0);
        assert_int_equal(fleet_store_jobs(s, &jobs, NULL), 0);
        assert_int_equal(json_array_size(jobs), 1);
        assert_string_equal(str(json_array_get(jobs, 0), "vm"), "vm1");
        assert_string_equal(str(json_array_get(jobs, 0), "actor"), "policy");
        assert_int_equal(fleet_store_events(s, "vm1", 0, 100, &events, NULL), 0);
        assert_int_equal(json_array_size(events), 2);
        assert_string_equal(str(json_array_get(events, 0), "kind"), "disk-not-encrypted");
        assert_non_null(strstr(str(json_array_get(events, 0), "message"), "disk vdb is not encrypted"));
        json_decref(jobs);
        json_decref(events);
        fleet_store_free(s);
        /* The VM's policy overrides the manager's setting: event only for vm1,
         * although the manager would encrypt. */
        s = fixture();
        fleet_store_set_new_disk_policy(s, FLEET_NEW_DISK_ENCRYPT);
        json_t *pol = json_pack("{s:s,s:s}", "scope", "vm:vm1", "new_data_disk", "event"), *stored = NULL;
        assert_int_equal(fleet_store_policy_set(s, pol, "a", &stored, NULL), 0);
        json_decref(pol);
        json_decref(stored);
        assert_int_equal(fleet_store_vms_replace(s, "h1", a, NULL), 0);
        assert_int_equal(fleet_store_vms_replace(s, "h1", b, NULL), 0);
        assert_int_equal(fleet_store_jobs(s, &jobs, NULL), 0);
        assert_int_equal(json_array_size(jobs), 0);
        assert_int_equal(fleet_store_events(s, "vm1", 0, 100, &events, NULL), 0);
        assert_non_null(strstr(str(json_array_get(events, json_array_size(events) - 1), "message"),
                               "encrypt the VM again to encrypt it"));
        json_decref(a);
        json_decref(b);
        json_decref(jobs);
        json_decref(events);
        fleet_store_free(s);
}

static int events_of(struct fleet_store *s, const char *kind, const char *says) {
        json_t *events = NULL;
        assert_int_equal(fleet_store_events(s, NULL, 0, 100000, &events, NULL), 0);
        int n = 0;
        for (size_t i = 0; i < json_array_size(events); i++) {
                json_t *e = json_array_get(events, i);
                n += strcmp(str(e, "kind"), kind) == 0 && strstr(str(e, "message"), says) != NULL;
        }
        json_decref(events);
        return n;
}

/* Certificates that end within 30 days: the agent's (from its session) and a
 * host's for a key provider (from its report), kept and told of once a day;
 * a bad cert_expires in a report changes nothing. */
static void test_cert_expiry(void **state) {
        (void) state;
        struct fleet_store *s = fixture();
        int64_t t = (int64_t) time(NULL);
        assert_int_equal(fleet_store_host_register(s, "h3", "fp", "1", t + 10 * 86400 - 60, NULL), 0);
        assert_int_equal(fleet_store_host_seen(s, "h3", t + 10 * 86400 - 60, NULL), 0);
        assert_int_equal(fleet_store_host_register(s, "h4", "fp", "1", t + 100 * 86400, NULL), 0);
        assert_int_equal(fleet_store_host_seen(s, "h4", t + 100 * 86400, NULL), 0);
        assert_int_equal(events_of(s, "certificate-expiring", "the certificate of h3's agent expires on "), 1);
        assert_int_equal(events_of(s, "certificate-expiring", ", in 10 days: renew it ('vmcrypt-manager issue DIR h3 --renew')"), 1);
        assert_int_equal(events_of(s, "certificate-expiring", "h4"), 0);
        json_t *hosts = NULL;
        assert_int_equal(fleet_store_hosts(s, &hosts, NULL), 0);
        for (size_t i = 0; i < json_array_size(hosts); i++)
                if (strcmp(str(json_array_get(hosts, i), "name"), "h3") == 0)
                        assert_int_equal(json_integer_value(json_object_get(json_array_get(hosts, i), "cert_expires")),
                                         t + 10 * 86400 - 60);
        json_decref(hosts);
        char body[512];
        snprintf(body, sizeof(body), "{\"vms\":[],\"providers\":[{\"name\":\"kms\",\"kind\":\"kmip\","
                 "\"state\":\"reachable\",\"cert_expires\":%lld}]}", (long long) (t - 3600));
        for (int i = 0; i < 2; i++)
                assert_int_equal(call(s, FLEET_ROLE_AGENT, "h3", "POST", "/agent/inventory", NULL, body), 200);
        assert_int_equal(events_of(s, "provider-certificate-expiring",
                                   "the client certificate of h3 for key provider kms expired on "), 1);
        json_t *providers = NULL;
        assert_int_equal(fleet_store_providers(s, &providers, NULL), 0);
        char *text = json_dumps(providers, JSON_COMPACT);
        assert_non_null(strstr(text, "h3's client certificate for it expired on "));
        free(text);
        json_decref(providers);
        static const char *const bad[] = { "-1", "\"soon\"", "1.5", "99999999999999" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                snprintf(body, sizeof(body), "{\"vms\":[],\"providers\":[{\"name\":\"kms\",\"kind\":\"kmip\","
                         "\"state\":\"reachable\",\"cert_expires\":%s}]}", bad[i]);
                assert_int_equal(call(s, FLEET_ROLE_AGENT, "h3", "POST", "/agent/inventory", NULL, body), 400);
        }
        fleet_store_free(s);
}

static void test_query(void **state) {
        (void) state;
        char buf[16];
        assert_int_equal(fleet_query_get("a=1&vm=web%2D1+x&b", "vm", buf, sizeof(buf)), 0);
        assert_string_equal(buf, "web-1 x");
        assert_int_equal(fleet_query_get("vm=%4", "vm", buf, sizeof(buf)), -EINVAL);
        assert_int_equal(fleet_query_get("vm=%00", "vm", buf, sizeof(buf)), -EINVAL);
        assert_int_equal(fleet_query_get("vm=0123456789abcdefg", "vm", buf, sizeof(buf)), -EINVAL);
        assert_int_equal(fleet_query_get("xvm=1", "vm", buf, sizeof(buf)), -ENOENT);
        assert_int_equal(fleet_query_get(NULL, "vm", buf, sizeof(buf)), -ENOENT);
        assert_true(fleet_valid_name("web-1.example"));
        assert_false(fleet_valid_name("a/b"));
        assert_false(fleet_valid_name(""));
        assert_false(fleet_valid_name("a b"));
}

int main(void) {
        if (!mkdtemp(dir))
                return 1;
        snprintf(db, sizeof(db), "%s/m.db", dir);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_job_states),
                cmocka_unit_test(test_key_errors),
                cmocka_unit_test(test_retry),
                cmocka_unit_test(test_events_append_only),
                cmocka_unit_test(test_migration),
                cmocka_unit_test(test_api_roles),
                cmocka_unit_test(test_rekey_jobs),
                cmocka_unit_test(test_policies),
                cmocka_unit_test(test_new_disk_policy),
                cmocka_unit_test(test_cert_expiry),
                cmocka_unit_test(test_query),
        };
        int r = cmocka_run_group_tests(tests, NULL, NULL);
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        if (system(cmd) != 0)
                r = r ? r : 1;
        return r;
}
