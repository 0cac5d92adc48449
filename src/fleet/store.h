/* The manager's store: hosts, VMs, jobs and events in SQL (SQLite, or
 * PostgreSQL for several managers; one schema and its migrations in schema.c). Answers come as jansson values in the
 * API's shape, so handlers pass them on. Every state change of a job happens in
 * one transaction with its event, so that a crash leaves both or neither. */
#pragma once

#include <jansson.h>
#include <stdint.h>

#include "fleet/fleet.h"

struct fleet_store;

/* Open (creating and migrating) the store: a SQLite file path, or a PostgreSQL
 * URI (postgresql://...). */
int fleet_store_open(const char *target, struct fleet_store **ret, struct error *err);
void fleet_store_free(struct fleet_store *s);
static inline void fleet_store_freep(struct fleet_store **s) {
        if (*s)
                fleet_store_free(*s);
}

/* The schema version the store is at (after fleet_store_open: the newest). */
int fleet_store_version(struct fleet_store *s);

/* Hosts. register: the agent's first call after each start; the host's jobs
 * that were running are queued again (they resume), or end paused or cancelled
 * when that was asked meanwhile. cert_expires: when the agent's certificate
 * ends (0: unknown); within X509_WARN_DAYS a certificate-expiring event,
 * once a day. */
int fleet_store_host_register(struct fleet_store *s, const char *host, const char *fingerprint, const char *version,
                              int64_t cert_expires, struct error *err);
int fleet_store_host_seen(struct fleet_store *s, const char *host, int64_t cert_expires, struct error *err);
/* An event of kind for host ("" the manager itself) when subject (a
 * certificate, named for people) ends within X509_WARN_DAYS or has
 * ended, with advice (what to do): at most one a day per subject. */
int fleet_store_expiry_event(struct fleet_store *s, const char *host, const char *kind, const char *subject,
                             int64_t expires, const char *advice, struct error *err);
int fleet_store_hosts(struct fleet_store *s, json_t **ret, struct error *err);

/* What a plain disk newly seen in an encrypted VM brings: an event, or an event
 * and an encrypt job for the VM. */
enum fleet_new_disk_policy { FLEET_NEW_DISK_EVENT = 0, FLEET_NEW_DISK_ENCRYPT };
void fleet_store_set_new_disk_policy(struct fleet_store *s, enum fleet_new_disk_policy p);

/* The VMs of host as its agent read them: replaces what host reported before.
 * A plain disk that was not in the last report of a VM whose other disks are
 * encrypted gets a disk-not-encrypted event (and an encrypt job, by policy). */
int fleet_store_vms_replace(struct fleet_store *s, const char *host, json_t *vms, struct error *err);
/* All VMs, or the VM called name (-ENOENT none); each with "host" and its active job. */
int fleet_store_vms(struct fleet_store *s, json_t **ret, struct error *err);
int fleet_store_vm_get(struct fleet_store *s, const char *name, json_t **ret, struct error *err);

/* A new queued job for VM name on the host that reported it; -ENOENT no such VM,
 * -EBUSY a job of that VM is not finished. */
int fleet_store_job_create(struct fleet_store *s, const char *vm, enum fleet_job_op op, const char *actor,
                           json_t **ret, struct error *err);
int fleet_store_jobs(struct fleet_store *s, json_t **ret, struct error *err);
int fleet_store_job_get(struct fleet_store *s, int64_t id, json_t **ret, struct error *err);
/* The operator's verbs: cancel, pause, resume; -EINVAL unknown verb, -ENOENT no
 * such job, -EBUSY not possible in the job's state. */
int fleet_store_job_control(struct fleet_store *s, int64_t id, const char *verb, const char *actor, json_t **ret,
                            struct error *err);

/* Agent side. claim: host's oldest queued job (or one paused for an unreachable
 * key server whose wait is over), which becomes running; -ENOENT
 * when there is none. Claims are serialized: of two managers on one database,
 * one hands a job out. */
int fleet_store_job_claim(struct fleet_store *s, const char *host, json_t **ret, struct error *err);
/* Progress of host's running job id; *ret_action says what the agent does next:
 * "continue", "pause" or "cancel". -EACCES when the job is not host's. */
int fleet_store_job_progress(struct fleet_store *s, int64_t id, const char *host, const char *disk, uint64_t done,
                             uint64_t total, const char **ret_action, struct error *err);
/* The end of a run: result "done", "failed", "paused" or "cancelled"; "retry"
 * (the host could not run it now: queued again with backoff, failed after 5
 * runs, event job-retry); or one of
 * vSphere's key errors: "key-unreachable" (the job pauses and is handed out again
 * after a backoff, request "key-wait"), "key-missing" or "key-denied" (it fails);
 * each with an event of that kind. */
int fleet_store_job_finish(struct fleet_store *s, int64_t id, const char *host, const char *result,
                           const char *message, struct error *err);

/* Encryption policies: "default", "group:NAME" (with its hosts) and "vm:NAME",
 * each field empty for "not set here". A VM's effective policy takes each field
 * from its vm: policy, else the first group (by name) that lists its host, else
 * default; encrypt jobs carry it as their params, and its new_data_disk decides
 * the new-data-disk rule (unset: the manager's setting). */
int fleet_store_policies(struct fleet_store *s, json_t **ret, struct error *err);
/* Create or replace the policy p->scope ({"scope", "hosts", "provider", "volumes",
 * "format", "new_data_disk"}, validated by the caller), with a policy-set event.
 * Once the fleet registers providers, the provider must be one of them (-EINVAL,
 * checked in the same transaction as the write). */
int fleet_store_policy_set(struct fleet_store *s, json_t *p, const char *actor, json_t **ret, struct error *err);
/* The effective policy of VM name on host (fields "" where nothing sets them)
 * and the scopes it came from. */
int fleet_store_policy_for(struct fleet_store *s, const char *name, const char *host, json_t **ret,
                           struct error *err);

/* Key providers. The providers host reported (an array of {name, kind,
 * endpoints, default, state, message}, validated by the caller) replace its
 * last report; a provider whose state changed gets a provider-reachable or
 * provider-unreachable event. */
int fleet_store_host_providers_replace(struct fleet_store *s, const char *host, json_t *providers,
                                       struct error *err);
/* Every provider the fleet registered or a host reported, by name: its
 * registration (or null), each host's report, the hosts that lack a registered
 * one ("missing") and whether a reported one is unknown to the fleet. */
int fleet_store_providers(struct fleet_store *s, json_t **ret, struct error *err);
/* Register (or replace) provider name: p holds kind, endpoints and description,
 * validated by the caller; a provider-registered event names actor. */
int fleet_store_provider_register(struct fleet_store *s, const char *name, json_t *p, const char *actor,
                                  json_t **ret, struct error *err);
/* -ENOENT not registered; -EBUSY a policy names it (err says which). */
int fleet_store_provider_unregister(struct fleet_store *s, const char *name, const char *actor, struct error *err);
/* 0 when a policy may name provider name: the fleet registered it, or none at
 * all (fleets that register nothing keep working); else -EINVAL, err naming the
 * registered ones. */
int fleet_store_provider_known(struct fleet_store *s, const char *name, struct error *err);

/* Events: append one; list those after id after_id (of vm when not NULL), at
 * most limit, oldest first. */
int fleet_store_event_add(struct fleet_store *s, const char *actor, const char *host, const char *vm, int64_t job,
                          const char *kind, const char *message, struct error *err);
int fleet_store_events(struct fleet_store *s, const char *vm, int64_t after_id, int limit, json_t **ret,
                       struct error *err);
