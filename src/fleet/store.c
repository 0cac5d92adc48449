/* The manager's store: see store.h. Every query is here once, in SQL that SQLite
 * and PostgreSQL both take, over the seam in db.h. One connection, used by the
 * manager's one event loop thread. */
#include "fleet/store.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fleet/db.h"
#include "fleet/schema.h"
#include "fleet/store-internal.h"
#include "shared/macro.h"
#include "shared/x509.h"

struct fleet_store {
        struct fleet_db *db;
        int version;
        enum fleet_new_disk_policy new_disk;
};

#define exec_args(s, err, ...) fleet_db_exec((s)->db, err, __VA_ARGS__)
#define query_json(s, err, ...) fleet_db_query((s)->db, err, __VA_ARGS__)
#define begin(s, err) fleet_db_begin((s)->db, err)
#define commit(s, err) fleet_db_commit((s)->db, err)
#define rollback(s, r) fleet_db_rollback((s)->db, r)

/* The request of a job paused because no key server answered: it is handed out
 * again at not_before, unlike one an operator paused. */
#define KEY_WAIT "key-wait"
#define KEY_WAIT_MAX 60
/* Runs of a job whose host could not run it, before it fails. */
#define RETRY_MAX 5

int fleet_store_open(const char *target, struct fleet_store **ret, struct error *err) {
        _cleanup_(fleet_store_freep) struct fleet_store *s = calloc(1, sizeof(*s));
        if (!s)
                return error_set(err, -ENOMEM, "out of memory");
        int r = fleet_db_open(target, &s->db, err);
        if (r < 0)
                return r;
        const char *const *schema = s->db->kind == FLEET_DB_POSTGRESQL ? fleet_schema_postgresql : fleet_schema_sqlite;
        r = begin(s, err);
        if (r < 0)
                return r;
        r = fleet_db_script(s->db, err, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
        if (r < 0)
                return rollback(s, r);
        json_t *rows = NULL;
        r = query_json(s, err, &rows, "SELECT version FROM schema_version", NULL);
        if (r < 0)
                return rollback(s, r);
        int version = json_array_size(rows) ? (int) json_integer_value(json_object_get(json_array_get(rows, 0),
                                                                                        "version"))
                                            : 0;
        bool fresh = json_array_size(rows) == 0;
        json_decref(rows);
        if (version > fleet_schema_count)
                return rollback(s, error_set(err, -EPROTO,
                                                   "the manager database is at schema version %d, newer than "
                                                   "this vmcrypt-manager (%d): run the newer manager",
                                                   version, fleet_schema_count));
        for (int v = version; v < fleet_schema_count && r >= 0; v++)
                r = fleet_db_script(s->db, err, schema[v]);
        if (r >= 0)
                r = exec_args(s, err, fresh ? "INSERT INTO schema_version (version) VALUES (?)"
                                            : "UPDATE schema_version SET version = ?",
                              "i", (int64_t) fleet_schema_count);
        if (r < 0)
                return rollback(s, r);
        r = commit(s, err);
        if (r < 0)
                return r;
        s->version = fleet_schema_count;
        *ret = TAKE_PTR(s);
        return 0;
}

void fleet_store_free(struct fleet_store *s) {
        fleet_db_close(s->db);
        free(s);
}

int fleet_store_version(struct fleet_store *s) {
        return s->version;
}

static int64_t now(void) {
        return (int64_t) time(NULL);
}

static int event_add(struct fleet_store *s, const char *actor, const char *host, const char *vm, int64_t job,
                     const char *kind, const char *message, struct error *err) {
        int r = exec_args(s, err,
                          "INSERT INTO events (time, actor, host, vm, job, kind, message) VALUES (?,?,?,?,?,?,?)",
                          "isssiss", now(), actor, host ? host : "", vm ? vm : "", job, kind, message);
        return r < 0 ? r : 0;
}

int fleet_store_event_add(struct fleet_store *s, const char *actor, const char *host, const char *vm, int64_t job,
                          const char *kind, const char *message, struct error *err) {
        return event_add(s, actor, host, vm, job, kind, message, err);
}

int fleet_store_events(struct fleet_store *s, const char *vm, int64_t after_id, int limit, json_t **ret,
                       struct error *err) {
        if (vm)
                return query_json(s, err, ret,
                                  "SELECT id, time, actor, host, vm, job, kind, message FROM events "
                                  "WHERE id > ? AND vm = ? ORDER BY id LIMIT ?",
                                  "isi", after_id, vm, (int64_t) limit);
        return query_json(s, err, ret,
                          "SELECT id, time, actor, host, vm, job, kind, message FROM events "
                          "WHERE id > ? ORDER BY id LIMIT ?",
                          "ii", after_id, (int64_t) limit);
}

/* Forward: the transitions below. */
struct job_row;
static int job_row(struct fleet_store *s, int64_t id, struct job_row *j, struct error *err);
static int job_move(struct fleet_store *s, int64_t id, const struct job_row *j, const char *state,
                    const char *request, const char *actor, const char *kind, const char *message,
                    struct error *err);

/* An agent that registers has (re)started: whatever it was running stopped
 * with it. Each such job is queued again (the disk job resumes where it
 * stopped), or ends as paused or cancelled when that was asked meanwhile. */
static int requeue_interrupted(struct fleet_store *s, const char *host, struct error *err);

int fleet_store_expiry_event(struct fleet_store *s, const char *host, const char *kind, const char *subject,
                             int64_t expires, const char *advice, struct error *err) {
        if (!x509_ends_soon(expires, now()))
                return 0;
        /* Once a day per certificate: the event says so while there is time. */
        json_t *recent = NULL;
        int r = query_json(s, err, &recent,
                           "SELECT id FROM events WHERE host = ? AND kind = ? AND time > ? "
                           "AND substr(message, 1, ?) = ? LIMIT 1",
                           "ssiis", host, kind, now() - 86400, (int64_t) strlen(subject), subject);
        bool said = json_array_size(recent) > 0;
        json_decref(recent);
        if (r < 0 || said)
                return r < 0 ? r : 0;
        char day[32], msg[600];
        time_t t = (time_t) expires;
        struct tm tm;
        strftime(day, sizeof(day), "%Y-%m-%d %H:%M UTC", gmtime_r(&t, &tm));
        int64_t days = x509_days_left(expires, now());
        if (days == 0)
                snprintf(msg, sizeof(msg), "%s expired on %s: it is refused now; %s", subject, day, advice);
        else
                snprintf(msg, sizeof(msg), "%s expires on %s, in %lld day%s: %s", subject, day, (long long) days,
                         days > 1 ? "s" : "", advice);
        return event_add(s, *host ? host : "vmcrypt-manager", host, NULL, 0, kind, msg, err);
}

/* The agent's certificate, as its TLS session shows it: told of before it
 * ends. */
static int agent_cert_event(struct fleet_store *s, const char *host, int64_t cert_expires, struct error *err) {
        char subject[300], advice[300];
        snprintf(subject, sizeof(subject), "the certificate of %s's agent", host);
        snprintf(advice, sizeof(advice), "renew it ('vmcrypt-manager issue DIR %s --renew') and give the agent the "
                 "new one", host);
        return fleet_store_expiry_event(s, host, "certificate-expiring", subject, cert_expires, advice, err);
}

int fleet_store_host_register(struct fleet_store *s, const char *host, const char *fingerprint, const char *version,
                              int64_t cert_expires, struct error *err) {
        int r = begin(s, err);
        if (r < 0)
                return r;
        r = exec_args(s, err,
                      "INSERT INTO hosts (name, fingerprint, version, registered, last_seen, cert_expires) "
                      "VALUES (?,?,?,?,?,?) ON CONFLICT (name) DO UPDATE SET fingerprint = excluded.fingerprint, "
                      "version = excluded.version, registered = excluded.registered, last_seen = excluded.last_seen, "
                      "cert_expires = excluded.cert_expires",
                      "sssiii", host, fingerprint, version, now(), now(), cert_expires);
        if (r >= 0) {
                char msg[300];
                snprintf(msg, sizeof(msg), "agent of %s registered (vmcrypt-agent %s)", host, version);
                r = event_add(s, host, host, NULL, 0, "host-registered", msg, err);
        }
        if (r >= 0)
                r = agent_cert_event(s, host, cert_expires, err);
        if (r >= 0)
                r = requeue_interrupted(s, host, err);
        return r < 0 ? rollback(s, r) : commit(s, err);
}

int fleet_store_host_touch(struct fleet_store *s, const char *host, int64_t cert_expires, struct error *err) {
        int r = cert_expires > 0 ? exec_args(s, err, "UPDATE hosts SET last_seen = ?, cert_expires = ? WHERE name = ?",
                                             "iis", now(), cert_expires, host)
                                 : exec_args(s, err, "UPDATE hosts SET last_seen = ? WHERE name = ?", "is", now(), host);
        if (r == 0)
                return error_set(err, -ENOENT, "host %s has not registered: POST /agent/register first", host);
        return r < 0 ? r : 0;
}

int fleet_store_host_seen(struct fleet_store *s, const char *host, int64_t cert_expires, struct error *err) {
        /* Most heartbeats are one statement; a certificate near its end may
         * add its event, in one transaction with it. */
        if (!x509_ends_soon(cert_expires, now()))
                return fleet_store_host_touch(s, host, cert_expires, err);
        int r = begin(s, err);
        if (r < 0)
                return r;
        r = fleet_store_host_touch(s, host, cert_expires, err);
        if (r >= 0)
                r = agent_cert_event(s, host, cert_expires, err);
        return r < 0 ? rollback(s, r) : commit(s, err);
}

int fleet_store_hosts(struct fleet_store *s, json_t **ret, struct error *err) {
        int r = query_json(s, err, ret,
                           "SELECT name, fingerprint, version, registered, last_seen, cert_expires, "
                           "(SELECT count(*) FROM vms WHERE vms.host = hosts.name) AS vms, "
                           "? - last_seen AS seconds_since_seen FROM hosts ORDER BY name",
                           "i", now());
        return r;
}

static int job_insert(struct fleet_store *s, const char *name, const char *host, enum fleet_job_op op,
                      const char *actor, int64_t *ret_id, struct error *err);

void fleet_store_set_new_disk_policy(struct fleet_store *s, enum fleet_new_disk_policy p) {
        s->new_disk = p;
}

static json_t *find_by(json_t *array, const char *key, const char *value) {
        size_t i;
        json_t *o;
        json_array_foreach(array, i, o)
                if (json_is_string(json_object_get(o, key)) && strcmp(json_string_value(json_object_get(o, key)),
                                                                      value) == 0)
                        return o;
        return NULL;
}

/* The new-data-disk rule for a VM: its policy's, else the manager's. */
static enum fleet_new_disk_policy new_disk_rule(struct fleet_store *s, const char *name, const char *host) {
        json_t *pol = NULL;
        enum fleet_new_disk_policy rule = s->new_disk;
        if (fleet_store_policy_for(s, name, host, &pol, NULL) == 0) {
                const char *v = json_string_value(json_object_get(pol, "new_data_disk"));
                if (v && strcmp(v, "encrypt") == 0)
                        rule = FLEET_NEW_DISK_ENCRYPT;
                else if (v && strcmp(v, "event") == 0)
                        rule = FLEET_NEW_DISK_EVENT;
                json_decref(pol);
        }
        return rule;
}

/* The seeds' "new data disk is not encrypted": a plain disk that was not plain
 * in the last report of a VM without a job whose other disks are encrypted (one
 * attached after the VM was encrypted). An event for each; with the encrypt
 * policy, an encrypt job for the VM. */
static int new_plain_disks(struct fleet_store *s, const char *host, json_t *before, json_t *vms,
                           struct error *err) {
        size_t i;
        json_t *vm;
        json_array_foreach(vms, i, vm) {
                const char *name = json_string_value(json_object_get(vm, "name"));
                json_t *disks = json_object_get(vm, "disks"), *old = name ? find_by(before, "name", name) : NULL;
                if (!name || !json_is_array(disks) || !find_by(disks, "state", "encrypted"))
                        continue;
                /* A VM with a job is between states (a paused decrypt has plain and
                 * encrypted disks): nothing is new there. */
                json_t *active = NULL;
                int r = query_json(s, err, &active,
                                   "SELECT id FROM jobs WHERE vm = ? AND host = ? "
                                   "AND state IN ('queued', 'running', 'paused')",
                                   "ss", name, host);
                size_t busy = json_array_size(active);
                json_decref(active);
                if (r < 0)
                        return r;
                if (busy)
                        continue;
                size_t k, fresh = 0;
                /* Looked up at the first new plain disk, for the events and the job. */
                enum fleet_new_disk_policy rule = FLEET_NEW_DISK_EVENT;
                json_t *d;
                json_array_foreach(disks, k, d) {
                        const char *target = json_string_value(json_object_get(d, "target"));
                        const char *state = json_string_value(json_object_get(d, "state"));
                        if (!target || !state || strcmp(state, "plain") != 0)
                                continue;
                        json_t *was = find_by(json_object_get(old, "disks"), "target", target);
                        if (was && json_equal(json_object_get(was, "state"), json_object_get(d, "state")))
                                continue;
                        if (fresh == 0)
                                rule = new_disk_rule(s, name, host);
                        char msg[600];
                        snprintf(msg, sizeof(msg), "VM %s on %s: disk %s is not encrypted while the VM's other disks "
                                 "are (attached after the VM was encrypted?)%s", name, host, target,
                                 rule == FLEET_NEW_DISK_ENCRYPT
                                         ? "; the policy encrypts it"
                                         : "; encrypt the VM again to encrypt it");
                        r = event_add(s, host, host, name, 0, "disk-not-encrypted", msg, err);
                        if (r < 0)
                                return r;
                        fresh++;
                }
                int64_t id;
                if (fresh > 0 && rule == FLEET_NEW_DISK_ENCRYPT) {
                        r = job_insert(s, name, host, FLEET_OP_ENCRYPT, "policy", &id, err);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

int fleet_store_vms_replace(struct fleet_store *s, const char *host, json_t *vms, struct error *err) {
        int r = begin(s, err);
        if (r < 0)
                return r;
        /* A host's rows hang on its registration: an unknown host is the
         * caller's mistake, not a constraint failure of the database. */
        r = fleet_store_host_touch(s, host, 0, err);
        json_t *before = NULL;
        if (r >= 0)
                r = query_json(s, err, &before, "SELECT data FROM vms WHERE host = ?", "s", host);
        if (r >= 0)
                r = new_plain_disks(s, host, before, vms, err);
        json_decref(before);
        if (r >= 0)
                r = exec_args(s, err, "DELETE FROM vms WHERE host = ?", "s", host);
        size_t i;
        json_t *vm;
        json_array_foreach(vms, i, vm) {
                if (r < 0)
                        break;
                _cleanup_(freep) char *data = json_dumps(vm, JSON_COMPACT);
                const char *name = json_string_value(json_object_get(vm, "name"));
                const char *uuid = json_string_value(json_object_get(vm, "uuid"));
                if (!data || !name)
                        r = error_set(err, -EINVAL, "VM %zu has no name", i);
                else
                        r = exec_args(s, err,
                                      "INSERT INTO vms (host, name, uuid, data, updated) VALUES (?,?,?,?,?)",
                                      "ssssi", host, name, uuid ? uuid : "", data, now());
        }
        return r < 0 ? rollback(s, r) : commit(s, err);
}

#define JOB_COLUMNS                                                                                              \
        "id, vm, host, op, state, request, disk, done, total, "                                                  \
        "CASE WHEN state = 'done' THEN 100.0 WHEN total > 0 THEN round(100.0 * done / total, 1) ELSE 0.0 END " \
        "AS percent, attempts, message, actor, created, updated, not_before, params"

/* The VMs' rows with "host" and "job" (the active one, or null). */
static int vms_with_jobs(struct fleet_store *s, json_t *rows, struct error *err) {
        size_t i;
        json_t *vm;
        json_array_foreach(rows, i, vm) {
                json_t *jobs = NULL;
                int r = query_json(s, err, &jobs,
                                   "SELECT " JOB_COLUMNS " FROM jobs WHERE vm = ? AND host = ? "
                                   "AND state IN ('queued', 'running', 'paused') ORDER BY id LIMIT 1",
                                   "ss", json_string_value(json_object_get(vm, "name")),
                                   json_string_value(json_object_get(vm, "host")));
                if (r < 0)
                        return r;
                json_object_set(vm, "job", json_array_size(jobs) ? json_array_get(jobs, 0) : json_null());
                json_decref(jobs);
        }
        return 0;
}

int fleet_store_vms(struct fleet_store *s, json_t **ret, struct error *err) {
        json_t *rows = NULL;
        int r = query_json(s, err, &rows, "SELECT host, updated, data FROM vms ORDER BY name, host", NULL);
        if (r == 0)
                r = vms_with_jobs(s, rows, err);
        if (r < 0) {
                json_decref(rows);
                return r;
        }
        *ret = rows;
        return 0;
}

int fleet_store_vm_get(struct fleet_store *s, const char *name, json_t **ret, struct error *err) {
        json_t *rows = NULL;
        int r = query_json(s, err, &rows, "SELECT host, updated, data FROM vms WHERE name = ? OR uuid = ?", "ss",
                           name, name);
        if (r < 0)
                return r;
        if (json_array_size(rows) != 1) {
                r = json_array_size(rows) == 0
                            ? error_set(err, -ENOENT, "no VM called %s: see GET /vms", name)
                            : error_set(err, -EEXIST, "VM name %s is on several hosts: use its UUID", name);
                json_decref(rows);
                return r;
        }
        r = vms_with_jobs(s, rows, err);
        if (r == 0)
                *ret = json_incref(json_array_get(rows, 0));
        json_decref(rows);
        return r;
}

static int job_get(struct fleet_store *s, int64_t id, json_t **ret, struct error *err) {
        json_t *rows = NULL;
        int r = query_json(s, err, &rows, "SELECT " JOB_COLUMNS " FROM jobs WHERE id = ?", "i", id);
        if (r < 0)
                return r;
        if (json_array_size(rows) == 0) {
                json_decref(rows);
                return error_set(err, -ENOENT, "no job %lld: see GET /jobs", (long long) id);
        }
        *ret = json_incref(json_array_get(rows, 0));
        json_decref(rows);
        return 0;
}

int fleet_store_job_get(struct fleet_store *s, int64_t id, json_t **ret, struct error *err) {
        return job_get(s, id, ret, err);
}

int fleet_store_jobs(struct fleet_store *s, json_t **ret, struct error *err) {
        return query_json(s, err, ret, "SELECT " JOB_COLUMNS " FROM jobs ORDER BY id", NULL);
}

/* A queued job and its event, in the open transaction. */
static int job_insert(struct fleet_store *s, const char *name, const char *host, enum fleet_job_op op,
                      const char *actor, int64_t *ret_id, struct error *err) {
        /* An encrypt job carries the VM's policy as it was when the job was made. */
        _cleanup_(freep) char *params = NULL;
        if (op == FLEET_OP_ENCRYPT) {
                json_t *pol = NULL;
                int r = fleet_store_policy_for(s, name, host, &pol, err);
                if (r < 0)
                        return r;
                json_object_del(pol, "new_data_disk");
                params = json_dumps(pol, JSON_COMPACT | JSON_SORT_KEYS);
                json_decref(pol);
                if (!params)
                        return error_set(err, -ENOMEM, "out of memory");
        }
        json_t *ids = NULL;
        int r = query_json(s, err, &ids,
                           "INSERT INTO jobs (vm, host, op, state, actor, created, updated, params) "
                           "VALUES (?,?,?,'queued',?,?,?,?) RETURNING id",
                           "ssssiis", name, host, fleet_job_op_name(op), actor, now(), now(), params ? params : "{}");
        int64_t id = r < 0 ? 0 : json_integer_value(json_object_get(json_array_get(ids, 0), "id"));
        json_decref(ids);
        if (r >= 0) {
                char msg[400];
                snprintf(msg, sizeof(msg), "%s of %s on %s queued as job %lld", fleet_job_op_name(op), name, host,
                         (long long) id);
                r = event_add(s, actor, host, name, id, "job-queued", msg, err);
        }
        *ret_id = id;
        return r < 0 ? r : 0;
}

int fleet_store_job_create(struct fleet_store *s, const char *vm, enum fleet_job_op op, const char *actor,
                           json_t **ret, struct error *err) {
        int r = begin(s, err);
        if (r < 0)
                return r;
        json_t *v = NULL;
        r = fleet_store_vm_get(s, vm, &v, err);
        if (r < 0)
                return rollback(s, r);
        const char *host = json_string_value(json_object_get(v, "host"));
        const char *name = json_string_value(json_object_get(v, "name"));
        json_t *active = json_object_get(v, "job");
        if (!json_is_null(active)) {
                r = error_set(err, -EBUSY, "VM %s has job %lld (%s, %s): wait for it, or cancel it", name,
                                    (long long) json_integer_value(json_object_get(active, "id")),
                                    json_string_value(json_object_get(active, "op")),
                                    json_string_value(json_object_get(active, "state")));
                json_decref(v);
                return rollback(s, r);
        }
        int64_t id = 0;
        r = job_insert(s, name, host, op, actor, &id, err);
        json_decref(v);
        if (r >= 0)
                r = job_get(s, id, ret, err);
        return r < 0 ? rollback(s, r) : commit(s, err);
}

/* A job's row fields the transitions look at. */
struct job_row {
        char vm[256], host[256], op[16], state[16], request[16];
};

static int job_row(struct fleet_store *s, int64_t id, struct job_row *j, struct error *err) {
        json_t *o = NULL;
        int r = job_get(s, id, &o, err);
        if (r < 0)
                return r;
        snprintf(j->vm, sizeof(j->vm), "%s", json_string_value(json_object_get(o, "vm")));
        snprintf(j->host, sizeof(j->host), "%s", json_string_value(json_object_get(o, "host")));
        snprintf(j->op, sizeof(j->op), "%s", json_string_value(json_object_get(o, "op")));
        snprintf(j->state, sizeof(j->state), "%s", json_string_value(json_object_get(o, "state")));
        snprintf(j->request, sizeof(j->request), "%s", json_string_value(json_object_get(o, "request")));
        json_decref(o);
        return 0;
}

/* Move job id to state (and request), with its event, in the open transaction. */
static int job_move(struct fleet_store *s, int64_t id, const struct job_row *j, const char *state,
                    const char *request, const char *actor, const char *kind, const char *message,
                    struct error *err) {
        int r = exec_args(s, err, "UPDATE jobs SET state = ?, request = ?, message = ?, updated = ? WHERE id = ?",
                          "sssii", state, request, message ? message : "", now(), id);
        if (r < 0)
                return r;
        char msg[800];
        snprintf(msg, sizeof(msg), "job %lld (%s of %s): %s%s%s", (long long) id, j->op, j->vm, kind,
                 message && *message ? ": " : "", message ? message : "");
        return event_add(s, actor, j->host, j->vm, id, kind, msg, err);
}

int fleet_store_job_control(struct fleet_store *s, int64_t id, const char *verb, const char *actor, json_t **ret,
                            struct error *err) {
        int r = begin(s, err);
        if (r < 0)
                return r;
        struct job_row j;
        r = job_row(s, id, &j, err);
        if (r < 0)
                return rollback(s, r);
        bool queued = strcmp(j.state, "queued") == 0, running = strcmp(j.state, "running") == 0,
             paused = strcmp(j.state, "paused") == 0;
        if (strcmp(verb, "cancel") == 0) {
                if (queued || paused)
                        r = job_move(s, id, &j, "cancelled", "", actor, "job-cancelled", NULL, err);
                else if (running)
                        r = job_move(s, id, &j, "running", "cancel", actor, "job-cancel-requested", NULL, err);
                else
                        r = -EBUSY;
        } else if (strcmp(verb, "pause") == 0) {
                if (queued || (paused && strcmp(j.request, KEY_WAIT) == 0))
                        r = job_move(s, id, &j, "paused", "", actor, "job-paused", NULL, err);
                else if (running)
                        r = job_move(s, id, &j, "running", "pause", actor, "job-pause-requested", NULL, err);
                else
                        r = -EBUSY;
        } else if (strcmp(verb, "resume") == 0) {
                if (paused)
                        r = job_move(s, id, &j, "queued", "", actor, "job-resumed", NULL, err);
                else if (running && strcmp(j.request, "pause") == 0)
                        r = job_move(s, id, &j, "running", "", actor, "job-resumed", NULL, err);
                else
                        r = -EBUSY;
        } else
                r = error_set(err, -EINVAL, "unknown job verb '%s': cancel, pause or resume", verb);
        if (r == -EBUSY)
                error_set(err, r, "job %lld is %s: it cannot be %s", (long long) id, j.state,
                                strcmp(verb, "cancel") == 0 ? "cancelled"
                                : strcmp(verb, "pause") == 0 ? "paused" : "resumed");
        if (r >= 0)
                r = job_get(s, id, ret, err);
        return r < 0 ? rollback(s, r) : commit(s, err);
}

/* Test builds only: VMCRYPT_TEST_CLAIM_DELAY_MS=N holds a claim's transaction
 * open N ms between choosing the job and taking it, so that a test can show that
 * claims through several managers cannot overlap. */
static void claim_testpoint(void) {
#ifdef VMCRYPT_TESTPOINTS
        const char *v = getenv("VMCRYPT_TEST_CLAIM_DELAY_MS");
        if (v)
                usleep((useconds_t) atoi(v) * 1000);
#endif
}

/* Queued jobs, and those paused while the key server was unreachable, once their
 * wait is over. */
#define CLAIMABLE                                                                                      \
        "SELECT id FROM jobs WHERE host = ? AND (state = 'queued' OR (state = 'paused' AND request = '" \
        KEY_WAIT "')) AND not_before <= ? ORDER BY id LIMIT 1"

int fleet_store_job_claim(struct fleet_store *s, const char *host, json_t **ret, struct error *err) {
        /* Long polls ask four times a second: a look without the write lock
         * first, so that an idle fleet takes no lock at all. */
        json_t *rows = NULL;
        int r = query_json(s, err, &rows, CLAIMABLE, "si", host, now());
        size_t n = json_array_size(rows);
        json_decref(rows);
        rows = NULL;
        if (r < 0)
                return r;
        if (n == 0)
                return -ENOENT;
        r = begin(s, err);
        if (r < 0)
                return r;
        r = query_json(s, err, &rows,
                       CLAIMABLE, "si", host, now());
        if (r < 0)
                return rollback(s, r);
        if (json_array_size(rows) == 0) {
                json_decref(rows);
                rollback(s, 0);
                return -ENOENT;
        }
        int64_t id = json_integer_value(json_object_get(json_array_get(rows, 0), "id"));
        json_decref(rows);
        claim_testpoint();
        struct job_row j;
        r = job_row(s, id, &j, err);
        if (r >= 0)
                r = exec_args(s, err, "UPDATE jobs SET attempts = attempts + 1 WHERE id = ?", "i", id);
        if (r >= 0)
                r = job_move(s, id, &j, "running", strcmp(j.request, KEY_WAIT) == 0 ? "" : j.request, host,
                             "job-started", NULL, err);
        if (r >= 0)
                r = job_get(s, id, ret, err);
        return r < 0 ? rollback(s, r) : commit(s, err);
}

static int requeue_interrupted(struct fleet_store *s, const char *host, struct error *err) {
        json_t *rows = NULL;
        int r = query_json(s, err, &rows, "SELECT id FROM jobs WHERE host = ? AND state = 'running' ORDER BY id",
                           "s", host);
        size_t i;
        json_t *row;
        json_array_foreach(rows, i, row) {
                if (r < 0)
                        break;
                int64_t id = json_integer_value(json_object_get(row, "id"));
                struct job_row j;
                r = job_row(s, id, &j, err);
                if (r < 0)
                        break;
                const char *state = strcmp(j.request, "cancel") == 0  ? "cancelled"
                                    : strcmp(j.request, "pause") == 0 ? "paused"
                                                                      : "queued";
                r = job_move(s, id, &j, state, "", host, "job-interrupted",
                             "the agent restarted while running it", err);
        }
        json_decref(rows);
        return r;
}

/* The job of host (-EACCES for another host's: refused and audited by the caller). */
static int own_job(struct fleet_store *s, int64_t id, const char *host, struct job_row *j, struct error *err) {
        int r = job_row(s, id, j, err);
        if (r < 0)
                return r;
        if (strcmp(j->host, host) != 0)
                return error_set(err, -EACCES, "job %lld belongs to another host than %s", (long long) id,
                                       host);
        return 0;
}

int fleet_store_job_progress(struct fleet_store *s, int64_t id, const char *host, const char *disk, uint64_t done,
                             uint64_t total, const char **ret_action, struct error *err) {
        struct job_row j;
        int r = own_job(s, id, host, &j, err);
        if (r < 0)
                return r;
        r = exec_args(s, err, "UPDATE jobs SET disk = ?, done = ?, total = ?, updated = ? WHERE id = ?", "siiii",
                      disk, (int64_t) done, (int64_t) total, now(), id);
        if (r < 0)
                return r;
        /* A job that is no longer running here (cancelled while the agent was away)
         * stops. */
        if (strcmp(j.state, "running") != 0 || strcmp(j.request, "cancel") == 0)
                *ret_action = "cancel";
        else if (strcmp(j.request, "pause") == 0)
                *ret_action = "pause";
        else
                *ret_action = "continue";
        return 0;
}

int fleet_store_job_finish(struct fleet_store *s, int64_t id, const char *host, const char *result,
                           const char *message, struct error *err) {
        int r = begin(s, err);
        if (r < 0)
                return r;
        struct job_row j;
        r = own_job(s, id, host, &j, err);
        if (r < 0)
                return rollback(s, r);
        if (strcmp(j.state, "running") != 0)
                return rollback(s, error_set(err, -EBUSY, "job %lld is %s, not running", (long long) id,
                                                   j.state));
        static const struct {
                const char *result, *state, *kind;
        } map[] = {
                { "done", "done", "job-done" },
                { "failed", "failed", "job-failed" },
                { "paused", "paused", "job-paused" },
                { "cancelled", "cancelled", "job-cancelled" },
                /* vSphere's other two key errors end the job: only an administrator
                 * of the key server can mend them. */
                { "key-missing", "failed", "key-missing" },
                { "key-denied", "failed", "key-denied" },
        };
        if (strcmp(result, "key-unreachable") == 0) {
                /* No key server answered: the job pauses and is tried again 2, 4,
                 * 8 ... seconds later (at most a minute), so that it resumes soon
                 * after the server returns; the disk job goes on where it stopped. */
                json_t *o = NULL;
                r = job_get(s, id, &o, err);
                int64_t attempts = r < 0 ? 1 : json_integer_value(json_object_get(o, "attempts"));
                json_decref(o);
                int64_t wait = attempts >= 6 ? KEY_WAIT_MAX : MIN((int64_t) 1 << attempts, KEY_WAIT_MAX);
                char msg[1200];
                snprintf(msg, sizeof(msg), "the key server is unreachable: %s; paused, tried again in %lld s",
                         message, (long long) wait);
                if (r >= 0)
                        r = job_move(s, id, &j, "paused", KEY_WAIT, host, "key-unreachable", msg, err);
                if (r >= 0)
                        r = exec_args(s, err, "UPDATE jobs SET not_before = ? WHERE id = ?", "ii", now() + wait, id);
                return r < 0 ? rollback(s, r) : commit(s, err);
        }
        if (strcmp(result, "retry") == 0) {
                /* The host could not run it now (its libvirtd did not answer):
                 * queued again 2, 4, 8, 16 s later, failed at the RETRY_MAX-th
                 * such run. Only these runs count: key waits are not the host's. */
                json_t *rows = NULL;
                r = query_json(s, err, &rows, "SELECT COUNT(*) AS n FROM events WHERE job = ? AND kind = 'job-retry'",
                               "i", id);
                int64_t run = r < 0 ? RETRY_MAX : json_integer_value(json_object_get(json_array_get(rows, 0), "n")) + 1;
                json_decref(rows);
                char msg[1200];
                if (r >= 0 && run >= RETRY_MAX) {
                        snprintf(msg, sizeof(msg), "%s; gave up after %lld runs", message, (long long) run);
                        r = job_move(s, id, &j, "failed", "", host, "job-failed", msg, err);
                } else if (r >= 0) {
                        int64_t wait = (int64_t) 1 << run;
                        snprintf(msg, sizeof(msg), "%s; tried again in %lld s (run %lld of at most %d)", message,
                                 (long long) wait, (long long) run, RETRY_MAX);
                        r = job_move(s, id, &j, "queued", "", host, "job-retry", msg, err);
                        if (r >= 0)
                                r = exec_args(s, err, "UPDATE jobs SET not_before = ? WHERE id = ?", "ii",
                                              now() + wait, id);
                }
                return r < 0 ? rollback(s, r) : commit(s, err);
        }
        size_t i = 0;
        while (i < ELEMENTSOF(map) && strcmp(result, map[i].result) != 0)
                i++;
        if (i == ELEMENTSOF(map))
                return rollback(s, error_set(err, -EINVAL,
                                             "unknown result '%s': done, failed, paused, cancelled, "
                                             "retry, key-unreachable, key-missing or key-denied",
                                             result));
        for (; i < ELEMENTSOF(map); i++)
                if (strcmp(result, map[i].result) == 0) {
                        r = job_move(s, id, &j, map[i].state, "", host, map[i].kind, message, err);
                        if (r >= 0 && strcmp(result, "done") == 0)
                                r = exec_args(s, err, "UPDATE jobs SET done = total WHERE id = ?", "i", id);
                        break;
                }
        return r < 0 ? rollback(s, r) : commit(s, err);
}

/* ---- encryption policies ---------------------------------------------- */

#define POLICY_COLUMNS "scope, hosts, provider, volumes, format, new_data_disk, actor, updated"
static const char *const policy_fields[] = { "provider", "volumes", "format", "new_data_disk" };

void fleet_store_array_column(json_t *row, const char *column) {
        const char *text = json_string_value(json_object_get(row, column));
        json_t *v = text ? json_loads(text, 0, NULL) : NULL;
        json_object_set_new(row, column, json_is_array(v) ? v : json_array());
        if (v && !json_is_array(v))
                json_decref(v);
}

/* The rows with hosts as a JSON array (it is stored as its text). */
static int policy_rows(json_t *rows) {
        size_t i;
        json_t *row;
        json_array_foreach(rows, i, row)
                fleet_store_array_column(row, "hosts");
        return 0;
}

int fleet_store_policies(struct fleet_store *s, json_t **ret, struct error *err) {
        json_t *rows = NULL;
        int r = query_json(s, err, &rows, "SELECT " POLICY_COLUMNS " FROM policies ORDER BY scope", NULL);
        if (r < 0)
                return r;
        policy_rows(rows);
        *ret = rows;
        return 0;
}

int fleet_store_policy_set(struct fleet_store *s, json_t *p, const char *actor, json_t **ret, struct error *err) {
        const char *scope = json_string_value(json_object_get(p, "scope"));
        json_t *hosts = json_object_get(p, "hosts");
        _cleanup_(freep) char *hosts_text = hosts ? json_dumps(hosts, JSON_COMPACT) : strdup("[]");
        if (!scope || !hosts_text)
                return error_set(err, -EINVAL, "a policy needs a scope");
        const char *v[4];
        for (size_t i = 0; i < ELEMENTSOF(policy_fields); i++) {
                v[i] = json_string_value(json_object_get(p, policy_fields[i]));
                v[i] = v[i] ? v[i] : "";
        }
        int r = begin(s, err);
        if (r < 0)
                return r;
        /* In the write transaction, so that an unregistration cannot slip between
         * the check and the insert. */
        if (*v[0] && (r = fleet_store_provider_known(s, v[0], err)) < 0)
                return rollback(s, r);
        r = exec_args(s, err,
                      "INSERT INTO policies (scope, hosts, provider, volumes, format, new_data_disk, actor, updated) "
                      "VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (scope) DO UPDATE SET hosts = excluded.hosts, "
                      "provider = excluded.provider, volumes = excluded.volumes, format = excluded.format, "
                      "new_data_disk = excluded.new_data_disk, actor = excluded.actor, updated = excluded.updated",
                      "sssssssi", scope, hosts_text, v[0], v[1], v[2], v[3], actor, now());
        if (r >= 0) {
                char msg[900];
                snprintf(msg, sizeof(msg), "policy %s: provider '%s', volumes '%s', format '%s', new-data-disk '%s'%s%s",
                         scope, v[0], v[1], v[2], v[3], strncmp(scope, "group:", 6) == 0 ? ", hosts " : "",
                         strncmp(scope, "group:", 6) == 0 ? hosts_text : "");
                r = event_add(s, actor, "", strncmp(scope, "vm:", 3) == 0 ? scope + 3 : "", 0, "policy-set", msg,
                              err);
        }
        json_t *rows = NULL;
        if (r >= 0)
                r = query_json(s, err, &rows, "SELECT " POLICY_COLUMNS " FROM policies WHERE scope = ?", "s", scope);
        if (r < 0)
                return rollback(s, r);
        policy_rows(rows);
        *ret = json_incref(json_array_get(rows, 0));
        json_decref(rows);
        return commit(s, err);
}

static bool lists_host(json_t *policy, const char *host) {
        size_t i;
        json_t *h;
        json_array_foreach(json_object_get(policy, "hosts"), i, h)
                if (json_is_string(h) && strcmp(json_string_value(h), host) == 0)
                        return true;
        return false;
}

int fleet_store_policy_for(struct fleet_store *s, const char *name, const char *host, json_t **ret,
                           struct error *err) {
        json_t *rows = NULL;
        int r = fleet_store_policies(s, &rows, err);
        if (r < 0)
                return r;
        char vm_scope[300];
        snprintf(vm_scope, sizeof(vm_scope), "vm:%s", name);
        /* Most specific first: the VM's, the groups that list its host, default. */
        json_t *order[3] = { NULL, NULL, NULL };
        size_t i;
        json_t *row;
        json_array_foreach(rows, i, row) {
                const char *scope = json_string_value(json_object_get(row, "scope"));
                if (strcmp(scope, vm_scope) == 0)
                        order[0] = row;
                else if (!order[1] && strncmp(scope, "group:", 6) == 0 && lists_host(row, host))
                        order[1] = row;
                else if (strcmp(scope, "default") == 0)
                        order[2] = row;
        }
        json_t *pol = json_object(), *from = json_array();
        for (size_t f = 0; f < ELEMENTSOF(policy_fields); f++) {
                const char *value = "";
                for (size_t k = 0; k < 3 && !*value; k++) {
                        const char *v = order[k] ? json_string_value(json_object_get(order[k], policy_fields[f])) : NULL;
                        if (v && *v) {
                                value = v;
                                json_t *sc = json_object_get(order[k], "scope");
                                bool seen = false;
                                size_t j;
                                json_t *x;
                                json_array_foreach(from, j, x) seen = seen || json_equal(x, sc);
                                if (!seen)
                                        json_array_append(from, sc);
                        }
                }
                json_object_set_new(pol, policy_fields[f], json_string(value));
        }
        json_object_set_new(pol, "policy", from);
        json_decref(rows);
        *ret = pol;
        return 0;
}

struct fleet_db *fleet_store_db(struct fleet_store *s) {
        return s->db;
}
