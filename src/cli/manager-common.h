/* Shared by the commands that talk to vmcrypt-manager (host, job, events and
 * `vm ... --manager`): the connection options, one call with its error message,
 * and the tables they print. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "fleet/client.h"

#define MANAGER_HELP_CONNECT \
        "  --manager URL            the manager, https://HOST:PORT\n" \
        "  --manager-config FILE    a file with manager = URL, ca = FILE, and cert = FILE\n" \
        "                           and key = FILE or token = FILE ('vmcrypt-manager\n" \
        "                           init' writes admin.conf, 'issue' one NAME.conf);\n" \
        "                           default ~/.config/vmcrypt/manager.conf\n" \
        "  --ca FILE, --cert FILE, --key FILE\n" \
        "                           the manager's CA and your client certificate and\n" \
        "                           key (override the file's)\n" \
        "  --token FILE             a bearer token instead of a certificate: the file\n" \
        "                           'vmcrypt-manager issue --token' wrote (yours, mode\n" \
        "                           0600); the file's 'token = FILE' likewise\n"

struct manager_opts {
        char url[512], ca[4096], cert[4096], key[4096], token[4096];
        const char *config;
        bool json, follow, wait, deep;
        const char *vm;
        int n_args;
        char **args;
};

/* Options a command takes besides the connection and --help. */
enum {
        MOPT_JSON = 1U << 0,
        MOPT_VM = 1U << 1,      /* --vm NAME */
        MOPT_FOLLOW = 1U << 2,  /* --follow */
        MOPT_WAIT = 1U << 3,    /* --wait */
        MOPT_DEEP = 1U << 4,    /* --deep */
};

/* Parse argv; -1 to go on, else an exit code to return. */
int manager_opts_parse(const char *cmd, unsigned allowed, const char *help, int min_args, int max_args, int argc,
                       char *argv[], struct manager_opts *o);
/* A client for the options' manager; prints the error and returns an exit code
 * (or -1 on success). */
int manager_connect(const char *cmd, const struct manager_opts *o, struct fleet_client **ret);
/* The read-only verbs (host list, job list, ...): parse their options (--json,
 * the connection; no arguments), GET path and with --json print the answer.
 * -1 with *ret the answer when the caller prints it as a table, else the exit
 * code. */
int manager_show(const char *cmd, const char *help, const char *path, int argc, char *argv[], json_t **ret);
/* SETTING=VALUE arguments into body's members (list_key's value split at commas
 * into an array); -1 when all were, else the usage error's exit code (naming
 * known, the settings that may be given). */
int manager_settings(const char *cmd, char *const *args, int n, const char *list_key, const char *known,
                     json_t *body);
/* method path body; on 2xx *ret gets the body and -1 is returned, else the error
 * is printed and an exit code returned. */
int manager_call(const char *cmd, struct fleet_client *c, const char *method, const char *path, json_t *body,
                 json_t **ret);
/* prefix/name+suffix into buf when name is one the manager accepts (what: "VM",
 * "provider"; the rule is fleet_valid_name's); -1 when built, else the usage
 * error's exit code. */
int manager_path(const char *cmd, const char *what, const char *prefix, const char *name, const char *suffix,
                 char *buf, size_t size);

/* A certificate's end for a table: "2027-03-01 (85 days)", "! 2026-12-20 (14
 * days)" within X509_WARN_DAYS, "! expired 2026-11-01", "-" unknown (0). */
void manager_expiry_text(long long expires, char *buf, size_t size);

/* `vmcrypt host list` (a verb of host.c's group). */
int host_list_main(int argc, char *argv[]);
int job_main(int argc, char *argv[]);
int events_main(int argc, char *argv[]);
int policy_main(int argc, char *argv[]);
int whoami_main(int argc, char *argv[]);
/* `vmcrypt provider list --manager ...`, `provider register|unregister`
 * (verbs of provider.c's group). */
int provider_fleet_list_main(int argc, char *argv[]);
int provider_register_main(int argc, char *argv[]);
int provider_unregister_main(int argc, char *argv[]);
/* `vmcrypt vm encrypt|decrypt|rekey|status VM --manager ...`. */
int vm_manager_main(const char *verb, int argc, char *argv[]);
/* Whether argv asks for the manager (--manager or --manager-config). */
bool manager_wanted(int argc, char *argv[]);
