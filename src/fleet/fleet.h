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
#include <stddef.h>
#include <stdint.h>

#include "shared/error.h"

/* Crypto privileges, as vSphere's Cryptographer.* privileges are separate from
 * its roles: what a caller may do is the set of privileges of its role, and
 * every API route names the one it needs. */
enum fleet_priv {
        FLEET_PRIV_READ = 0,          /* hosts, VMs, jobs, events, policies, providers */
        FLEET_PRIV_ENCRYPT,           /* encrypt VMs; cancel, pause, resume encrypt jobs */
        FLEET_PRIV_DECRYPT,           /* the same for decrypt */
        FLEET_PRIV_REKEY,             /* the same for rekey and deep rekey (vSphere's Recrypt) */
        FLEET_PRIV_START,             /* start a VM: its host releases the VM's keys to QEMU */
        FLEET_PRIV_MANAGE_POLICIES,   /* set encryption policies */
        FLEET_PRIV_MANAGE_PROVIDERS,  /* register and unregister the fleet's key providers */
        FLEET_PRIV_AGENT,             /* the /agent endpoints, for its own host (= its CN) only */
        FLEET_PRIV_COUNT,
};
#define FLEET_PRIVS_ALL ((1U << FLEET_PRIV_COUNT) - 1)

/* "read", "encrypt", ..., "manage-providers", "agent". */
const char *fleet_priv_name(enum fleet_priv p);
int fleet_priv_from_string(const char *s, enum fleet_priv *ret);
/* privs (bits 1U << enum fleet_priv) as names separated by sep, into buf. */
void fleet_privs_format(unsigned privs, const char *sep, char *buf, size_t size);

/* The built-in roles, named privilege sets. */
enum fleet_role {
        FLEET_ROLE_NONE = 0,
        FLEET_ROLE_ADMIN,           /* every privilege but agent */
        FLEET_ROLE_OPERATOR,        /* read, encrypt, decrypt, rekey, start */
        FLEET_ROLE_AUDITOR,         /* read */
        FLEET_ROLE_AGENT,           /* agent */
        FLEET_ROLE_NO_CRYPTO_ADMIN, /* admin without encrypt, decrypt, rekey, manage-providers */
        FLEET_ROLE_BUILTIN_COUNT,
};

const char *fleet_role_name(enum fleet_role r);
/* "admin", "operator", ...: the built-in role, or FLEET_ROLE_NONE for anything else. */
enum fleet_role fleet_role_from_string(const char *s);
/* The privileges of a built-in role (0 for FLEET_ROLE_NONE). */
unsigned fleet_role_privs(enum fleet_role r);

/* The roles a manager knows: the built-in ones, then those its configuration
 * defines ("role NAME = PRIV PRIV ..."). */
#define FLEET_MAX_ROLES 64
struct fleet_role_def {
        char name[64];
        unsigned privs;
};
struct fleet_roles {
        size_t n;
        struct fleet_role_def r[FLEET_MAX_ROLES];
};

/* rs with the built-in roles only. */
void fleet_roles_init(struct fleet_roles *rs);
/* Define role name with the privileges named in privs (separated by spaces or
 * commas); -EINVAL for a bad name, an unknown privilege (err names the known
 * ones), a name already defined or built in. */
int fleet_roles_define(struct fleet_roles *rs, const char *name, const char *privs, struct error *err);
/* The role called name, or NULL. */
const struct fleet_role_def *fleet_roles_find(const struct fleet_roles *rs, const char *name);
/* The roles' names, separated by ", ", into buf (for messages). */
void fleet_roles_names(const struct fleet_roles *rs, char *buf, size_t size);

/* Job operations and states (their names are the API's). */
/* rekey: a new KEK for the VM, secrets re-wrapped (no data pass); deep-rekey:
 * also a new volume key per disk (a data pass each); start: the VM started on
 * its host, each disk's key released by the host's own key provider. */
enum fleet_job_op { FLEET_OP_ENCRYPT = 0, FLEET_OP_DECRYPT, FLEET_OP_REKEY, FLEET_OP_DEEP_REKEY, FLEET_OP_START };

const char *fleet_job_op_name(enum fleet_job_op op);
int fleet_job_op_from_string(const char *s, enum fleet_job_op *ret);
/* The privilege a job of kind op needs to be queued, cancelled, paused or resumed. */
enum fleet_priv fleet_job_op_priv(enum fleet_job_op op);

/* Names a host or VM may have in the API: 1-200 printable ASCII characters
 * without '/', '?', '&', '%', quotes, backslash or spaces. */
bool fleet_valid_name(const char *s);
