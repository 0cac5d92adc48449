/* `vmcrypt policy list|set`: the manager's encryption policies. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/manager-common.h"
#include "shared/macro.h"

static const char help_list[] =
"Usage: vmcrypt policy list [OPTIONS]\n"
"\n"
"The manager's encryption policies: per VM (vm:NAME), per host group\n"
"(group:NAME, with its hosts) and the default. A VM's encrypt job takes each\n"
"setting from its vm: policy, else the first group (by name) that lists its\n"
"host, else the default; a setting that is empty is not set at that level.\n"
"\n"
"Options:\n"
MANAGER_HELP_CONNECT
"  --json                   the manager's answer, a JSON array\n"
"  -h, --help               show this help\n";

static const char help_set[] =
"Usage: vmcrypt policy set [OPTIONS] SCOPE [SETTING=VALUE...]\n"
"\n"
"Create or replace the policy SCOPE: default, group:NAME or vm:NAME. Settings\n"
"not given are not set at this level (a lower level's apply). Admins only.\n"
"\n"
"Settings:\n"
"  provider=NAME            the key provider of the hosts' providers.json for\n"
"                           the VM's KEK (empty: the VM's own, else the host's\n"
"                           default)\n"
"  volumes=all|os|data      which disks an encrypt job encrypts\n"
"  format=luks1             the disk format (QEMU's luks driver opens LUKS1 only)\n"
"  new_data_disk=event|encrypt\n"
"                           a plain disk that appears in an encrypted VM: an\n"
"                           event, or an event and an encrypt job (empty: the\n"
"                           manager's new-data-disk setting)\n"
"  hosts=H1,H2,...          group: only: the hosts of the group\n"
"\n"
"A job takes the policy in force when it is queued (its params show it).\n"
"\n"
"Options:\n"
MANAGER_HELP_CONNECT
"  --json                   the stored policy as JSON\n"
"  -h, --help               show this help\n"
"\n"
"Examples:\n"
"  vmcrypt policy set default provider=kms new_data_disk=encrypt\n"
"  vmcrypt policy set group:web hosts=kvm1,kvm2 volumes=data\n"
"\n"
"Exit status: 0 stored; 2 usage, or a value the manager refuses (its message\n"
"says which); 7 manager unreachable; 8 refused (admins only); 1 other errors.\n";

static const char *str(json_t *o, const char *k) {
        const char *v = json_string_value(json_object_get(o, k));
        return v && *v ? v : "-";
}

static void print_policy(json_t *p) {
        char hosts[512] = "";
        size_t i, o = 0;
        json_t *h;
        json_array_foreach(json_object_get(p, "hosts"), i, h)
                o += (size_t) snprintf(hosts + o, o < sizeof(hosts) ? sizeof(hosts) - o : 0, "%s%s", i ? "," : "",
                                       json_string_value(h));
        printf("%-24s %-12s %-8s %-8s %-13s %s\n", str(p, "scope"), str(p, "provider"), str(p, "volumes"),
               str(p, "format"), str(p, "new_data_disk"), hosts[0] ? hosts : "-");
}

static int policy_list_main(int argc, char *argv[]) {
        const char *cmd = "vmcrypt policy list";
        json_t *list = NULL;
        int r = manager_show(cmd, help_list, "/policies", argc, argv, &list);
        if (r >= 0)
                return r;
        printf("%-24s %-12s %-8s %-8s %-13s %s\n", "SCOPE", "PROVIDER", "VOLUMES", "FORMAT", "NEW DATA DISK",
               "HOSTS");
        size_t i;
        json_t *p;
        json_array_foreach(list, i, p)
                print_policy(p);
        json_decref(list);
        return EXIT_OK;
}

static int policy_set_main(int argc, char *argv[]) {
        const char *cmd = "vmcrypt policy set";
        struct manager_opts o;
        int r = manager_opts_parse(cmd, MOPT_JSON, help_set, 1, -1, argc, argv, &o);
        if (r >= 0)
                return r;
        json_t *body = json_pack("{s:s}", "scope", o.args[0]);
        if ((r = manager_settings(cmd, o.args + 1, o.n_args - 1, "hosts",
                                  "provider, volumes, format, new_data_disk, hosts", body)) >= 0) {
                json_decref(body);
                return r;
        }
        _cleanup_(fleet_client_freep) struct fleet_client *c = NULL;
        json_t *answer = NULL;
        if ((r = manager_connect(cmd, &o, &c)) < 0)
                r = manager_call(cmd, c, "PUT", "/policies", body, &answer);
        json_decref(body);
        if (r >= 0)
                return r;
        if (o.json)
                json_dumpf(answer, stdout, JSON_COMPACT), putchar('\n');
        else
                print_policy(answer);
        json_decref(answer);
        return EXIT_OK;
}

static const struct cli_command policy_commands[] = {
        { "list", policy_list_main, "the manager's encryption policies" },
        { "set", policy_set_main, "create or replace a policy (default, group:NAME, vm:NAME)" },
        { NULL, NULL, NULL },
};

int policy_main(int argc, char *argv[]) {
        return cli_dispatch("vmcrypt policy", policy_commands, argc, argv);
}
