/* `vmcrypt whoami`: who the manager takes this certificate for. */
#include <stdio.h>

#include "cli/cli.h"
#include "cli/manager-common.h"
#include "shared/macro.h"

static const char help[] =
"Usage: vmcrypt whoami [OPTIONS]\n"
"\n"
"Ask the manager who it takes your client certificate for: the certificate's\n"
"CN, the role manager.conf gives that CN, and the role's privileges (read,\n"
"encrypt, decrypt, rekey, manage-policies, manage-providers, agent). A quick\n"
"check of a new certificate, or of a role defined in manager.conf.\n"
"\n"
"Options:\n"
MANAGER_HELP_CONNECT
"  --json                   the manager's answer as JSON\n"
"  -h, --help               show this help\n"
"\n"
"Exit status: 0 shown; 2 usage; 7 manager unreachable; 8 refused (the CN is not\n"
"a client of the manager, or the certificate is revoked); 1 other errors.\n";

int whoami_main(int argc, char *argv[]) {
        const char *cmd = "vmcrypt whoami";
        struct manager_opts o;
        int r = manager_opts_parse(cmd, MOPT_JSON, help, 0, 0, argc, argv, &o);
        if (r >= 0)
                return r;
        _cleanup_(fleet_client_freep) struct fleet_client *c = NULL;
        json_t *me = NULL;
        if ((r = manager_connect(cmd, &o, &c)) >= 0 || (r = manager_call(cmd, c, "GET", "/me", NULL, &me)) >= 0)
                return r;
        if (o.json)
                json_dumpf(me, stdout, JSON_COMPACT), putchar('\n');
        else {
                printf("CN:          %s\nrole:        %s\nprivileges: ", json_string_value(json_object_get(me, "cn")),
                       json_string_value(json_object_get(me, "role")));
                size_t i;
                json_t *p;
                json_array_foreach(json_object_get(me, "privileges"), i, p)
                        printf(" %s", json_string_value(p));
                putchar('\n');
        }
        json_decref(me);
        return EXIT_OK;
}
