/* `vmcrypt host list`: the fleet's hosts as the manager knows them (host.c holds
 * the command group). */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/manager-common.h"
#include "shared/macro.h"

static const char help_list[] =
"Usage: vmcrypt host list [OPTIONS]\n"
"\n"
"The hosts whose agents registered with the manager: name, agent version, the\n"
"number of VMs it reported, how long ago it was last heard from, and when the\n"
"agent's certificate ends (marked '!' within 30 days: renew it with\n"
"'vmcrypt-manager issue DIR HOST --renew' before then; the manager also raises\n"
"a certificate-expiring event once a day).\n"
"\n"
"Options:\n"
MANAGER_HELP_CONNECT
"  --json                   the manager's answer, a JSON array\n"
"  -h, --help               show this help\n"
"\n"
"Exit status: 0 shown; 2 usage; 7 manager unreachable; 8 refused; 1 other errors.\n";

int host_list_main(int argc, char *argv[]) {
        const char *cmd = "vmcrypt host list";
        json_t *hosts = NULL;
        int r = manager_show(cmd, help_list, "/hosts", argc, argv, &hosts);
        if (r >= 0)
                return r;
        printf("%-24s %-10s %5s %-10s %s\n", "HOST", "AGENT", "VMS", "LAST SEEN", "CERTIFICATE ENDS");
        size_t i;
        json_t *h;
        json_array_foreach(hosts, i, h) {
                char seen[32], ends[64];
                snprintf(seen, sizeof(seen), "%llds ago",
                         (long long) json_integer_value(json_object_get(h, "seconds_since_seen")));
                manager_expiry_text(json_integer_value(json_object_get(h, "cert_expires")), ends, sizeof(ends));
                printf("%-24s %-10s %5lld %-10s %s\n", json_string_value(json_object_get(h, "name")),
                       json_string_value(json_object_get(h, "version")),
                       (long long) json_integer_value(json_object_get(h, "vms")), seen, ends);
        }
        json_decref(hosts);
        return EXIT_OK;
}
