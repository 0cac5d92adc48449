/* `vmcrypt vm encrypt|decrypt|rekey|start|status VM --manager ...`: the VM verbs through the
 * manager, which queues the work for the VM's host agent. */
#include <stdio.h>
#include <stdbool.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/manager-common.h"
#include "shared/macro.h"

/* The options and exit status every job verb shares. */
#define HELP_WAIT                                                                       \
        "  --wait                   wait for the job to end (also through a pause for\n" \
        "                           an unreachable key server, and a manager that is\n"  \
        "                           unreachable for up to 2 minutes); exit 0 only when\n" \
        "                           done\n"
#define HELP_JOB_END(waited)                                                                 \
        "  --json                   the job as JSON\n"                                       \
        "  -h, --help               show this help\n"                                        \
        "\n"                                                                                 \
        "Exit status: 0 queued (with --wait: " waited "); 4 no such VM; 5 the VM has a job;\n" \
        "7 manager unreachable; 8 refused (your role may not); 1 the job failed or\n"        \
        "other errors.\n"

static const char help_job[] =
"Usage: vmcrypt vm encrypt|decrypt --manager URL|--manager-config FILE [OPTIONS] VM\n"
"\n"
"Queue a job at the manager that encrypts (or decrypts) every disk of VM on the\n"
"host whose agent reported it. The agent runs it with the host's own key\n"
"providers; the manager never sees a key. Prints the job; follow it with\n"
"'vmcrypt job list' and 'vmcrypt events --vm VM'. A VM has one job at a time.\n"
"\n"
"Options:\n"
MANAGER_HELP_CONNECT
HELP_WAIT
HELP_JOB_END("done");

static const char help_start[] =
"Usage: vmcrypt vm start --manager URL|--manager-config FILE [OPTIONS] VM\n"
"\n"
"Queue a job at the manager that starts VM on the host whose agent reported it,\n"
"as 'vmcrypt vm start' does there: each encrypted disk's secret (and the NVRAM's\n"
"and vTPM's) is unwrapped by the host's own key provider with the host's\n"
"identity, handed to libvirt as an ephemeral private secret and removed once\n"
"QEMU runs. The manager never sees a key. Needs the start privilege; a key the\n"
"key server does not deliver or no longer has ends the job with a key-denied or\n"
"key-missing event, an unreachable key server pauses it until it answers.\n"
"\n"
"Options:\n"
MANAGER_HELP_CONNECT
"  --wait                   wait until the VM runs (or the job failed)\n"
HELP_JOB_END("running");

static const char help_rekey[] =
"Usage: vmcrypt vm rekey --manager URL|--manager-config FILE [OPTIONS] VM\n"
"\n"
"Queue a job at the manager that gives VM a new KEK on the host whose agent\n"
"reported it: every encrypted disk's unlock secret (and the NVRAM's and vTPM's)\n"
"is re-wrapped under it, and the old KEK is retired once nothing uses it. The\n"
"job's message says the new KEK, the old one and whether it was retired. The VM\n"
"must be shut off. With --deep every disk also gets a new volume key (a data\n"
"pass per disk, with progress; pause and cancel work as for encrypt).\n"
"\n"
"Options:\n"
MANAGER_HELP_CONNECT
"  --deep                   also a new volume key per disk (the job kind\n"
"                           deep-rekey)\n"
HELP_WAIT
HELP_JOB_END("done");

static const char help_status[] =
"Usage: vmcrypt vm status --manager URL|--manager-config FILE [OPTIONS] VM\n"
"\n"
"VM's status as its host agent last read it from the disks (OsVolumeEncrypted,\n"
"DataVolumesEncrypted, ProgressMessage), with the VM's host and its active job\n"
"and that job's progress.\n"
"\n"
"Options:\n"
MANAGER_HELP_CONNECT
"  --json                   the manager's answer as JSON\n"
"  -h, --help               show this help\n";

int vm_manager_main(const char *verb, int argc, char *argv[]) {
        char cmd[64], path[400];
        snprintf(cmd, sizeof(cmd), "vmcrypt vm %s", verb);
        bool status = strcmp(verb, "status") == 0, rekey = strcmp(verb, "rekey") == 0,
             start = strcmp(verb, "start") == 0;
        struct manager_opts o;
        int r = manager_opts_parse(cmd, MOPT_JSON | (status ? 0 : MOPT_WAIT) | (rekey ? MOPT_DEEP : 0),
                                   status ? help_status : rekey ? help_rekey : start ? help_start : help_job, 1, 1,
                                   argc, argv, &o);
        if (r >= 0)
                return r;
        char suffix[32];
        snprintf(suffix, sizeof(suffix), "%s%s", status ? "" : "/", status ? "" : verb);
        if ((r = manager_path(cmd, "VM", "/vms", o.args[0], suffix, path, sizeof(path))) >= 0)
                return r;
        _cleanup_(fleet_client_freep) struct fleet_client *c = NULL;
        json_t *answer = NULL, *body = status ? NULL : rekey ? json_pack("{s:b}", "deep", o.deep) : json_object();
        r = manager_connect(cmd, &o, &c);
        if (r < 0)
                r = manager_call(cmd, c, status ? "GET" : "POST", path, body, &answer);
        json_decref(body);
        if (r >= 0)
                return r;
        if (status) {
                if (o.json)
                        json_dumpf(answer, stdout, JSON_COMPACT), putchar('\n');
                else {
                        json_t *job = json_object_get(answer, "job");
                        printf("%s (%s) on %s\n  OsVolumeEncrypted:    %s\n  DataVolumesEncrypted: %s\n"
                               "  ProgressMessage:      %s\n",
                               json_string_value(json_object_get(answer, "name")),
                               json_string_value(json_object_get(answer, "uuid")),
                               json_string_value(json_object_get(answer, "host")),
                               json_string_value(json_object_get(answer, "OsVolumeEncrypted")),
                               json_string_value(json_object_get(answer, "DataVolumesEncrypted")),
                               json_string_value(json_object_get(answer, "ProgressMessage")));
                        if (json_is_object(job))
                                printf("  Job:                  %lld %s %s, %s %.1f%%\n",
                                       (long long) json_integer_value(json_object_get(job, "id")),
                                       json_string_value(json_object_get(job, "op")),
                                       json_string_value(json_object_get(job, "state")),
                                       json_string_value(json_object_get(job, "disk")),
                                       json_real_value(json_object_get(job, "percent")));
                }
                json_decref(answer);
                return EXIT_OK;
        }
        long long id = (long long) json_integer_value(json_object_get(answer, "id"));
        if (o.wait) {
                struct error err = { 0 };
                json_t *job = NULL;
                if ((r = fleet_client_job_wait(c, id, 120, &job, &err)) < 0) {
                        json_decref(answer);
                        fprintf(stderr, "%s: %s\n", cmd, err.text);
                        return cli_exit_code(r);
                }
                json_decref(answer);
                answer = job;
        }
        const char *state = json_string_value(json_object_get(answer, "state"));
        if (o.json)
                json_dumpf(answer, stdout, JSON_COMPACT), putchar('\n');
        else
                printf("job %lld: %s of %s on %s: %s%s%s\n", id, json_string_value(json_object_get(answer, "op")),
                       o.args[0],
                       json_string_value(json_object_get(answer, "host")), state,
                       *json_string_value(json_object_get(answer, "message")) ? ": " : "",
                       json_string_value(json_object_get(answer, "message")));
        r = o.wait && strcmp(state, "done") != 0 ? EXIT_FAILURE_GENERAL : EXIT_OK;
        json_decref(answer);
        return r;
}
