/* `vmcrypt events`: the manager's append-only event log, optionally followed. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/manager-common.h"
#include "shared/macro.h"

static const char help[] =
"Usage: vmcrypt events [OPTIONS]\n"
"\n"
"The manager's event log, oldest first: what happened, to which host, VM and\n"
"job, and who did it (a certificate's CN: an operator, or a host's agent). It\n"
"holds refused requests too (access-denied). Events are never changed or\n"
"removed.\n"
"\n"
"Options:\n"
MANAGER_HELP_CONNECT
"  --vm NAME                only the events of VM NAME\n"
"  -f, --follow             keep printing new events as they happen (until\n"
"                           interrupted)\n"
"  --json                   one JSON object per event, a line each\n"
"  -h, --help               show this help\n";

static int print_event(json_t *e, void *userdata) {
        const bool *json = userdata;
        if (*json) {
                json_dumpf(e, stdout, JSON_COMPACT);
                putchar('\n');
        } else {
                time_t t = (time_t) json_integer_value(json_object_get(e, "time"));
                char when[32];
                strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
                printf("%s %-6lld %-22s %-16s %s\n", when, (long long) json_integer_value(json_object_get(e, "id")),
                       json_string_value(json_object_get(e, "kind")), json_string_value(json_object_get(e, "actor")),
                       json_string_value(json_object_get(e, "message")));
        }
        fflush(stdout);
        return 0;
}

int events_main(int argc, char *argv[]) {
        const char *cmd = "vmcrypt events";
        struct manager_opts o;
        int r = manager_opts_parse(cmd, MOPT_JSON | MOPT_VM | MOPT_FOLLOW, help, 0, 0, argc, argv, &o);
        if (r >= 0)
                return r;
        char path[600];
        int n = snprintf(path, sizeof(path), "/events?follow=%d", o.follow ? 1 : 0);
        if (o.vm) {
                /* The query carries the name percent-encoded. */
                n += snprintf(path + n, sizeof(path) - (size_t) n, "&vm=");
                for (const char *p = o.vm; *p && n < (int) sizeof(path) - 4; p++)
                        n += snprintf(path + n, sizeof(path) - (size_t) n,
                                      strchr("-._~", *p) || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
                                                      (*p >= 'A' && *p <= 'Z')
                                              ? "%c"
                                              : "%%%02X",
                                      (unsigned char) *p);
        }
        _cleanup_(fleet_client_freep) struct fleet_client *c = NULL;
        if ((r = manager_connect(cmd, &o, &c)) >= 0)
                return r;
        if (o.follow) {
                struct error err = { 0 };
                int status = 0;
                r = fleet_client_stream(c, path, print_event, &o.json, &status, &err);
                if (r < 0) {
                        fprintf(stderr, "%s: %s\n", cmd, err.text);
                        return cli_exit_code(r);
                }
                return EXIT_OK;
        }
        json_t *events = NULL;
        if ((r = manager_call(cmd, c, "GET", path, NULL, &events)) >= 0)
                return r;
        size_t i;
        json_t *e;
        json_array_foreach(events, i, e)
                print_event(e, &o.json);
        json_decref(events);
        return EXIT_OK;
}
