/* `vmcrypt whoami`: who the manager takes this certificate or token for. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/manager-common.h"
#include "shared/macro.h"

static const char help[] =
"Usage: vmcrypt whoami [OPTIONS]\n"
"\n"
"Ask the manager who it takes your client certificate (or bearer token) for:\n"
"the certificate's CN (or \"token:\" and the token's name), the role\n"
"manager.conf gives it, and the role's privileges (read, encrypt, decrypt,\n"
"rekey, start, manage-policies, manage-providers, agent). A quick check of a\n"
"new certificate or token, or of a role defined in manager.conf.\n"
"\n"
"Options:\n"
MANAGER_HELP_CONNECT
"  --json                   the manager's answer as JSON\n"
"  -h, --help               show this help\n"
"\n"
"Exit status: 0 shown; 2 usage; 7 manager unreachable; 8 refused (the CN is not\n"
"a client of the manager, the certificate is revoked, the token unknown or\n"
"expired); 1 other errors.\n";

int whoami_main(int argc, char *argv[]) {
        const char *cmd = "vmcrypt whoami";
        json_t *me = NULL;
        int r = manager_show(cmd, help, "/me", argc, argv, &me);
        if (r >= 0)
                return r;
        const char *credential = json_string_value(json_object_get(me, "credential"));
        bool token = credential && strcmp(credential, "token") == 0;
        printf("%-13s%s\nrole:        %s\nprivileges: ", token ? "token:" : "CN:",
               json_string_value(json_object_get(me, "cn")), json_string_value(json_object_get(me, "role")));
        size_t i;
        json_t *p;
        json_array_foreach(json_object_get(me, "privileges"), i, p)
                printf(" %s", json_string_value(p));
        putchar('\n');
        json_decref(me);
        return EXIT_OK;
}
