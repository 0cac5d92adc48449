/* The fleet's model, shared by vmcrypt-manager, vmcrypt-agent and the CLI: hosts
 * (one agent each), the VMs and disks the agents report, jobs dispatched to a
 * host's agent, and an append-only log of events. The store keeps key IDs at
 * most, never keys: keys stay between each host and its key provider.
 *
 * Nothing here prints or exits; calls return 0 or a negative errno and fill the
 * caller's struct error (shared/error.h) with one line saying what is wrong and
 * what to do. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "shared/error.h"

/* Who calls the API, from the verified client certificate. */
enum fleet_role {
        FLEET_ROLE_NONE = 0,
        FLEET_ROLE_ADMIN,       /* everything */
        FLEET_ROLE_OPERATOR,    /* read, encrypt, decrypt, control jobs */
        FLEET_ROLE_AUDITOR,     /* read only */
        FLEET_ROLE_AGENT,       /* the /agent endpoints, for its own host (= its CN) only */
};

const char *fleet_role_name(enum fleet_role r);
/* "admin", "operator", ...: the role, or FLEET_ROLE_NONE for anything else. */
enum fleet_role fleet_role_from_string(const char *s);

/* Job operations and states (their names are the API's). */
/* rekey: a new KEK for the VM, secrets re-wrapped (no data pass); deep-rekey:
 * also a new volume key per disk (a data pass each). */
enum fleet_job_op { FLEET_OP_ENCRYPT = 0, FLEET_OP_DECRYPT, FLEET_OP_REKEY, FLEET_OP_DEEP_REKEY };

const char *fleet_job_op_name(enum fleet_job_op op);
int fleet_job_op_from_string(const char *s, enum fleet_job_op *ret);

/* Names a host or VM may have in the API: 1-200 printable ASCII characters
 * without '/', '?', '&', '%', quotes, backslash or spaces. */
bool fleet_valid_name(const char *s);
