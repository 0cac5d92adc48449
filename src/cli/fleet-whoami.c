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
"encrypt, decrypt, rekey, start, manage-policies, manage-providers, agent). A\n"
"quick check of a new certificate, or of a role defined in manager.conf.\n"
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
        json_t *me = NULL;
        int r = manager_show(cmd, help, "/me", argc, argv, &me);
        if (r >= 0)
                return r;
        printf("CN:          %s\nrole:        %s\nprivileges: ", json_string_value(json_object_get(me, "cn")),
               json_string_value(json_object_get(me, "role")));
        size_t i;
        json_t *p;
        json_array_foreach(json_object_get(me, "privileges"), i, p)
                printf(" %s", json_string_value(p));
        putchar('\n');
        json_decref(me);
        return EXIT_OK;
}
