/* `vmcrypt job list|show|cancel|pause|resume`: the manager's jobs. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/manager-common.h"
#include "fleet/fleet.h"
#include "shared/macro.h"

static const char help_list[] =
"Usage: vmcrypt job list [OPTIONS]\n"
"\n"
"Every job the manager holds: id, VM, host, operation, state (queued, running,\n"
"paused, done, failed, cancelled), a pending request (pause or cancel, taken up\n"
"by the agent at the next checkpoint; key-wait on a job paused because its key\n"
"server was unreachable: it is handed out again by itself, 2, 4, 8 ... seconds\n"
"later, at most a minute), the disk being worked on and its percentage, and the\n"
"last message.\n"
"\n"
"Options:\n"
MANAGER_HELP_CONNECT
"  --json                   the manager's answer, a JSON array\n"
"  -h, --help               show this help\n";

static const char help_verb[] =
"Usage: vmcrypt job cancel|pause|resume|show [OPTIONS] ID\n"
"\n"
"  show     the job\n"
"  cancel   a queued or paused job ends now; a running one stops at its next\n"
"           checkpoint (its disk keeps the interrupted job: a new encrypt or\n"
"           decrypt of the VM takes it up)\n"
"  pause    a queued job waits; a running one stops at its next checkpoint; a\n"
"           job waiting for its key server (key-wait) waits for resume instead\n"
"  resume   a paused job is queued again and its disk job goes on where it\n"
"           stopped\n"
"\n"
"Options:\n"
MANAGER_HELP_CONNECT
"  --json                   the job as JSON\n"
"  -h, --help               show this help\n"
"\n"
"Exit status: 0 done; 4 no such job; 5 not possible in the job's state; 7\n"
"manager unreachable; 8 refused (your role may not); 1 other errors.\n";

static void print_job(json_t *j) {
        const char *req = json_string_value(json_object_get(j, "request"));
        printf("%-6lld %-20s %-16s %-8s %-10s%s%-7s %-5s %6.1f%% %s\n", (long long) json_integer_value(json_object_get(j, "id")),
               json_string_value(json_object_get(j, "vm")), json_string_value(json_object_get(j, "host")),
               json_string_value(json_object_get(j, "op")), json_string_value(json_object_get(j, "state")),
               req && *req ? "+" : " ", req && *req ? req : "", json_string_value(json_object_get(j, "disk")),
               json_real_value(json_object_get(j, "percent")), json_string_value(json_object_get(j, "message")));
}

static int job_list_main(int argc, char *argv[]) {
        const char *cmd = "vmcrypt job list";
        json_t *jobs = NULL;
        int r = manager_show(cmd, help_list, "/jobs", argc, argv, &jobs);
        if (r >= 0)
                return r;
        printf("%-6s %-20s %-16s %-8s %-18s %-5s %7s %s\n", "ID", "VM", "HOST", "OP", "STATE", "DISK",
               "DONE", "MESSAGE");
        size_t i;
        json_t *j;
        json_array_foreach(jobs, i, j)
                print_job(j);
        json_decref(jobs);
        return EXIT_OK;
}

static int job_verb(const char *verb, int argc, char *argv[]) {
        char cmd[64];
        snprintf(cmd, sizeof(cmd), "vmcrypt job %s", verb);
        struct manager_opts o;
        int r = manager_opts_parse(cmd, MOPT_JSON, help_verb, 1, 1, argc, argv, &o);
        if (r >= 0)
                return r;
        if (strspn(o.args[0], "0123456789") != strlen(o.args[0]) || !o.args[0][0])
                return cli_usage_error(cmd, "job ID '%s' is not a number (see 'vmcrypt job list')", o.args[0]);
        char path[128];
        if (strcmp(verb, "show") == 0)
                snprintf(path, sizeof(path), "/jobs/%s", o.args[0]);
        else
                snprintf(path, sizeof(path), "/jobs/%s/%s", o.args[0], verb);
        _cleanup_(fleet_client_freep) struct fleet_client *c = NULL;
        json_t *job = NULL;
        if ((r = manager_connect(cmd, &o, &c)) >= 0 ||
            (r = manager_call(cmd, c, strcmp(verb, "show") == 0 ? "GET" : "POST", path, NULL, &job)) >= 0)
                return r;
        if (o.json)
                json_dumpf(job, stdout, JSON_COMPACT), putchar('\n');
        else
                print_job(job);
        json_decref(job);
        return EXIT_OK;
}

static int job_show_main(int argc, char *argv[]) { return job_verb("show", argc, argv); }
static int job_cancel_main(int argc, char *argv[]) { return job_verb("cancel", argc, argv); }
static int job_pause_main(int argc, char *argv[]) { return job_verb("pause", argc, argv); }
static int job_resume_main(int argc, char *argv[]) { return job_verb("resume", argc, argv); }

static const struct cli_command job_commands[] = {
        { "list", job_list_main, "the manager's jobs with their state and progress" },
        { "show", job_show_main, "one job" },
        { "cancel", job_cancel_main, "cancel a job (a running one at its next checkpoint)" },
        { "pause", job_pause_main, "pause a job (a running one at its next checkpoint)" },
        { "resume", job_resume_main, "queue a paused job again" },
        { NULL, NULL, NULL },
};

int job_main(int argc, char *argv[]) {
        return cli_dispatch("vmcrypt job", job_commands, argc, argv);
}
