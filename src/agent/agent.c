/* The agent's loop: see agent.h. One thread: register, report, long-poll for a
 * job, run it (its progress callback is where the manager's pause and cancel
 * arrive), report its end, report the VMs again. */
#include "agent/agent.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fleet/client.h"
#include "shared/fd-util.h"
#include "shared/log.h"
#include "shared/macro.h"
#include "vm/vm.h"

static volatile sig_atomic_t stopping;

static void on_stop(int sig _unused_) {
        stopping = 1;
}

static double now_mono(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Sleep up to s seconds, less when asked to stop. */
static void nap(double s) {
        double end = now_mono() + s;
        while (!stopping && now_mono() < end)
                usleep(100000);
}

/* method path body: the answer's status and body; logs a failure (the manager
 * may be restarting: the callers try again later). */
static int call(struct fleet_client *c, const char *method, const char *path, json_t *body, int timeout,
                int *status, json_t **answer) {
        struct error err = { 0 };
        *answer = NULL;
        int r = fleet_client_request(c, method, path, body, timeout, status, answer, &err);
        if (r < 0)
                return log_warning_errno(r, "%s %s: %s", method, path, err.text);
        if (*status >= 400) {
                const char *e = json_string_value(json_object_get(*answer, "error"));
                log_warning("%s %s: the manager answered %d: %s", method, path, *status, e ? e : "");
                return *status == 403 ? -EACCES : *status == 404 ? -ENOENT : -EPROTO;
        }
        return 0;
}

static json_t *domain_json(const struct vm_domain *d) {
        json_t *disks = json_array();
        for (size_t i = 0; i < d->n_disks; i++) {
                const struct vm_disk *k = &d->disks[i];
                json_array_append_new(disks,
                                      json_pack("{s:s,s:s,s:s,s:s,s:b,s:s,s:f,s:s}", "target", k->target, "type",
                                                k->source_type, "path", k->path ? k->path : "", "format", k->format,
                                                "os", k->os, "state", vm_disk_state_name(k->state), "percent",
                                                vm_disk_percent(k), "note", k->note[0] ? k->note : k->status_text));
        }
        return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:o}", "name", d->name, "uuid", d->uuid, "state", d->state,
                         "OsVolumeEncrypted", vm_volume_status_name(d->summary.os), "DataVolumesEncrypted",
                         vm_volume_status_name(d->summary.data), "ProgressMessage", d->summary.message, "disks",
                         disks);
}

/* The host's VMs as last reported: after a job only that VM is read again.
 * Its key providers are probed with each full report. */
static json_t *last_vms, *last_providers;

static int post_inventory(struct fleet_client *c) {
        json_t *body = json_pack("{s:O}", "vms", last_vms), *answer = NULL;
        if (last_providers)
                json_object_set(body, "providers", last_providers);
        int status;
        int r = call(c, "POST", "/agent/inventory", body, 60, &status, &answer);
        json_decref(body);
        json_decref(answer);
        return r;
}

/* The host's VMs (or the one called name, in the last full list), each disk's
 * state read from the disk, to the manager. */
static int report_inventory(const struct agent_config *cf, struct fleet_client *c, const char *name) {
        _cleanup_(vm_inventory_freep) struct vm_inventory *inv = NULL;
        struct error verr = { 0 };
        if (!last_vms)
                name = NULL;
        int r = vm_inventory_get(cf->libvirt[0] ? cf->libvirt : NULL, name, 0, &inv, &verr);
        if (r == -ENOENT && name)
                r = vm_inventory_get(cf->libvirt[0] ? cf->libvirt : NULL, name = NULL, 0, &inv, &verr);
        if (r < 0)
                return log_warning_errno(r, "cannot read the host's VMs: %s", verr.text);
        if (!name) {
                json_t *providers = agent_providers_report(cf, last_providers);
                json_decref(last_providers);
                last_providers = providers;
                json_decref(last_vms);
                last_vms = json_array();
                for (size_t i = 0; i < inv->n; i++)
                        json_array_append_new(last_vms, domain_json(&inv->domains[i]));
                return post_inventory(c);
        }
        json_t *fresh = domain_json(&inv->domains[0]);
        size_t i;
        json_t *vm;
        bool replaced = false;
        json_array_foreach(last_vms, i, vm)
                if (json_equal(json_object_get(vm, "name"), json_object_get(fresh, "name"))) {
                        json_array_set(last_vms, i, fresh);
                        replaced = true;
                        break;
                }
        if (!replaced)
                json_array_append(last_vms, fresh);
        json_decref(fresh);
        return post_inventory(c);
}

struct job {
        const struct agent_config *cf;
        struct fleet_client *c;
        long long id;
        double last_post;
        char action[16];   /* the manager's last word: continue, pause, cancel */
};

static enum engine_verdict on_progress(const struct vm_disk *disk, const struct engine_progress *p, void *userdata) {
        struct job *j = userdata;
        if (stopping)
                return ENGINE_PAUSE;
        double t = now_mono();
        if (!p->finished && t - j->last_post < 1.0)
                return ENGINE_CONTINUE;
        j->last_post = t;
        char path[128];
        snprintf(path, sizeof(path), "/agent/jobs/%lld/progress", j->id);
        json_t *body = json_pack("{s:s,s:I,s:I}", "disk", disk->target, "done", (json_int_t) p->done, "total",
                                 (json_int_t) p->total),
               *answer = NULL;
        int status;
        /* A manager that cannot be reached does not stop the job: the disk's own
         * record of progress is the truth, and the agent reports the end later. */
        if (call(j->c, "POST", path, body, 10, &status, &answer) == 0) {
                const char *a = json_string_value(json_object_get(answer, "action"));
                if (a)
                        snprintf(j->action, sizeof(j->action), "%s", a);
        }
        json_decref(body);
        json_decref(answer);
        if (strcmp(j->action, "pause") == 0)
                return ENGINE_PAUSE;
        if (strcmp(j->action, "cancel") == 0)
                return ENGINE_CANCEL;
        return ENGINE_CONTINUE;
}

static void job_file(const struct agent_config *cf, char *buf, size_t size) {
        snprintf(buf, size, "%s/job.json", cf->state_dir);
}

/* Tell the manager how the run ended; try until it has heard it (or we stop). */
static void finish(struct job *j, const char *result, const char *message) {
        char path[128];
        snprintf(path, sizeof(path), "/agent/jobs/%lld/done", j->id);
        json_t *body = json_pack("{s:s,s:s}", "result", result, "message", message);
        for (double wait = 1; !stopping; wait = MIN(wait * 2, 30)) {
                json_t *answer = NULL;
                int status = 0;
                int r = call(j->c, "POST", path, body, 30, &status, &answer);
                json_decref(answer);
                if (r == 0 || (status >= 400 && status < 500))
                        break;
                nap(wait);
        }
        json_decref(body);
}

/* The result for a failed run: vSphere's key errors by name (the manager pauses
 * a job whose key server is unreachable and fails one whose key is missing or
 * withheld); "retry" when this host's libvirtd did not answer (the manager tries
 * again a few times with backoff: a daemon restart is not a reason to fail);
 * anything else "failed". */
static const char *failure_result(int r, const struct error *err) {
        const char *name = error_fault_name(error_fault(err));
        if (*name)
                return name;
        return r == -ECONNREFUSED ? "retry" : "failed";
}

/* What a rekey did, for the job's message and its event: the new KEK, the old
 * one and what became of it (the key layer retires it with its last disk). */
static void rekey_message(const char *vm, bool deep, const struct vm_result *res, char *buf, size_t size) {
        size_t n = 0;
        const char *fate = "";
        for (size_t i = 0; i < res->n; i++) {
                if (res->disks[i].action == VM_ACTION_DONE || res->disks[i].action == VM_ACTION_RESUMED)
                        n++;
                if (strstr(res->disks[i].note, "old KEK"))
                        fate = res->disks[i].note;
        }
        snprintf(buf, size, "%s %s: %zu disk(s) under KEK %s at provider %s%s%s%s%s%s", deep ? "deep-rekey" : "rekey",
                 vm, n, res->kek, res->provider, res->resumed ? " (an interrupted rekey finished)" : "",
                 res->old_kek[0] ? "; was KEK " : "", res->old_kek, *fate ? "; " : "", fate);
}

static void run_job(const struct agent_config *cf, struct fleet_client *c, json_t *job) {
        struct job j = { .cf = cf, .c = c, .id = (long long) json_integer_value(json_object_get(job, "id")) };
        const char *op = json_string_value(json_object_get(job, "op"));
        const char *vm = json_string_value(json_object_get(job, "vm"));
        const char *request = json_string_value(json_object_get(job, "request"));
        snprintf(j.action, sizeof(j.action), "%s", request && *request ? request : "continue");
        if (!op || !vm) {
                finish(&j, "failed", "the manager sent a job without op or vm");
                return;
        }
        /* The job on disk: what this host was doing, for whoever looks after a crash. */
        char path[4200];
        job_file(cf, path, sizeof(path));
        _cleanup_(freep) char *text = json_dumps(job, JSON_COMPACT);
        bool resumed = access(path, F_OK) == 0;
        if (text)
                (void) write_file_atomic(path, text, strlen(text), 0600);
        log_info("job %lld: %s %s%s", j.id, op, vm, resumed ? " (resuming an interrupted run)" : "");
        struct vm_params p = {
                .uri = cf->libvirt[0] ? cf->libvirt : NULL,
                .name = vm,
                .providers = cf->providers[0] ? cf->providers : NULL,
                .max_rate = cf->max_rate,
                .progress = on_progress,
                .progress_userdata = &j,
        };
        /* An encrypt job carries its VM's policy: the provider and which disks. */
        json_t *params = json_loads(json_string_value(json_object_get(job, "params")) ?: "{}", 0, NULL);
        const char *provider = json_string_value(json_object_get(params, "provider"));
        const char *volumes = json_string_value(json_object_get(params, "volumes"));
        if (provider && *provider)
                p.provider = provider;
        if (volumes && strcmp(volumes, "os") == 0)
                p.volumes = VM_VOLUMES_OS;
        else if (volumes && strcmp(volumes, "data") == 0)
                p.volumes = VM_VOLUMES_DATA;
        struct vm_result res;
        struct error err = { 0 };
        char msg[1100];
        memset(&res, 0, sizeof(res));
        enum fleet_job_op kind;
        if (fleet_job_op_from_string(op, &kind) < 0) {
                /* A manager newer than this agent: say so rather than guess. */
                snprintf(msg, sizeof(msg), "this agent (%s) cannot run %s jobs: update it", VMCRYPT_VERSION, op);
                finish(&j, "failed", msg);
                unlink(path);
                json_decref(params);
                return;
        }
        int r;
        switch (kind) {
        case FLEET_OP_REKEY:
        case FLEET_OP_DEEP_REKEY: r = vm_rekey(&p, kind == FLEET_OP_DEEP_REKEY, &res, &err); break;
        case FLEET_OP_DECRYPT: r = vm_decrypt(&p, &res, &err); break;
        case FLEET_OP_START: r = vm_start(&p, &res, &err); break;
        default: r = vm_encrypt(&p, &res, &err); break;
        }
        if (r == -ECANCELED && stopping) {
                /* Still "running" at the manager: the next start takes it up again. */
                log_info("job %lld: stopped with the agent; it resumes at the next start", j.id);
                json_decref(params);
                return;
        }
        if (r == 0) {
                if (kind == FLEET_OP_REKEY || kind == FLEET_OP_DEEP_REKEY)
                        rekey_message(vm, kind == FLEET_OP_DEEP_REKEY, &res, msg, sizeof(msg));
                else if (kind == FLEET_OP_START)
                        snprintf(msg, sizeof(msg), "start %s: running, %zu disk key(s) released to QEMU", vm, res.n);
                else
                        snprintf(msg, sizeof(msg), "%s %s: %zu disk(s) handled", op, vm, res.n);
                finish(&j, "done", msg);
        } else if (r == -ECANCELED && strcmp(j.action, "pause") == 0)
                finish(&j, "paused", "paused at a checkpoint; the disk job resumes where it stopped");
        else if (r == -ECANCELED)
                finish(&j, "cancelled", "stopped at a checkpoint; the disk keeps its interrupted job, which a "
                                        "new job of the same kind for the VM takes up");
        else {
                snprintf(msg, sizeof(msg), "%s", err.text[0] ? err.text : strerror(-r));
                finish(&j, failure_result(r, &err), msg);
        }
        unlink(path);
        json_decref(params);
        log_info("job %lld: %s", j.id, r == 0 ? "done" : strerror(-r));
}

int agent_run(const struct agent_config *cf, struct error *err) {
        _cleanup_(fleet_client_freep) struct fleet_client *c = NULL;
        int r = fleet_client_new(cf->manager, cf->ca, cf->cert, cf->key, &c, err);
        if (r < 0)
                return r;
        if (mkdir(cf->state_dir, 0700) < 0 && errno != EEXIST)
                return error_set(err, -EIO, "cannot create the state directory %s", cf->state_dir);
        struct sigaction sa = { .sa_handler = on_stop };
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);

        json_t *hello = json_pack("{s:s}", "version", VMCRYPT_VERSION);
        for (double wait = 1; !stopping; wait = MIN(wait * 2, 30)) {
                json_t *answer = NULL;
                int status = 0;
                r = call(c, "POST", "/agent/register", hello, 30, &status, &answer);
                if (r == 0)
                        log_info("registered with %s as host %s", cf->manager,
                                 json_string_value(json_object_get(answer, "host")));
                json_decref(answer);
                if (r == 0)
                        break;
                if (r == -EACCES) {
                        json_decref(hello);
                        return error_set(err, r, "the manager refused this host's certificate %s", cf->cert);
                }
                nap(wait);
        }
        json_decref(hello);
        double last_inventory = 0;
        char query[64];
        snprintf(query, sizeof(query), "/agent/jobs?wait=%d", cf->poll_seconds);
        while (!stopping) {
                if (now_mono() - last_inventory >= cf->inventory_seconds) {
                        (void) report_inventory(cf, c, NULL);
                        last_inventory = now_mono();
                }
                json_t *job = NULL;
                int status = 0;
                r = call(c, "GET", query, NULL, cf->poll_seconds + 30, &status, &job);
                if (r < 0) {
                        json_decref(job);
                        nap(3);
                        continue;
                }
                if (status == 200 && json_is_object(job)) {
                        run_job(cf, c, job);
                        if (!stopping) {
                                (void) report_inventory(cf, c,
                                                        json_string_value(json_object_get(job, "vm")));
                                last_inventory = now_mono();
                        }
                } else {
                        json_t *answer = NULL;
                        (void) call(c, "POST", "/agent/heartbeat", NULL, 30, &status, &answer);
                        json_decref(answer);
                }
                json_decref(job);
        }
        log_info("stopping");
        json_decref(last_vms);
        json_decref(last_providers);
        last_vms = last_providers = NULL;
        return 0;
}
