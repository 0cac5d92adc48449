/* vmcrypt-agent: one per KVM host. It connects out to the manager (so it works
 * behind NAT), registers with its host's certificate, reports the host's VMs and
 * every disk's state read from the disk, and runs the jobs the manager queues for
 * its host through the VM library, with progress, pause and cancel. Keys come
 * from the host's own key providers (providers.json): the manager never sees one.
 *
 * An interrupted job (the agent killed, the host rebooted) is still "running" at
 * the manager, which hands it back when the agent asks again; the VM library
 * resumes the disk job where it stopped. */
#pragma once

#include <jansson.h>
#include <stdint.h>

#include "fleet/fleet.h"

struct agent_config {
        char path[4096];
        char manager[512];
        char ca[4096], cert[4096], key[4096];
        char libvirt[1024];       /* "" the default URI */
        char providers[4096];     /* "" the default providers.json */
        char state_dir[4096];
        uint64_t max_rate;        /* per disk, bytes/s; 0 none */
        int poll_seconds;         /* long poll length */
        int inventory_seconds;    /* report the VMs at least this often */
        int nice;                 /* CPU priority of the agent and its data passes */
};

int agent_config_read(const char *path, struct agent_config *c, struct error *err);

/* Run until SIGTERM/SIGINT; returns 0 then. */
int agent_run(const struct agent_config *c, struct error *err);

/* The host's key providers for the manager: [{name, kind, endpoints, default,
 * state, message}], each probed now (a few seconds at most per key server);
 * NULL when providers.json cannot be read (logged). A state that differs from
 * the last report's (last may be NULL) is logged. */
json_t *agent_providers_report(const struct agent_config *c, json_t *last);
