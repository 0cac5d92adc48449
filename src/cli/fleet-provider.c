/* `vmcrypt provider list --manager ...`, `provider register` and `provider
 * unregister`: the fleet's key providers as the manager knows them (what it
 * registered, what each host reports). provider.c holds the command group. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/manager-common.h"
#include "shared/macro.h"

static const char help_list[] =
"Usage: vmcrypt provider list --manager URL|--manager-config FILE [OPTIONS]\n"
"\n"
"The fleet's key providers: those registered with the manager ('vmcrypt\n"
"provider register') and those each host's agent reports from its\n"
"providers.json, one line per provider and host: kind, whether it is the host's\n"
"default, whether the host reached it when it last looked (reachable,\n"
"unreachable, or error: it answered but refused the host), when that was, and\n"
"its endpoints. Lines starting with '!' flag what needs a look: hosts without a\n"
"registered provider, or a provider the fleet has not registered. The manager\n"
"knows names and endpoints only: credentials stay on the hosts.\n"
"\n"
"Options:\n"
MANAGER_HELP_CONNECT
"  --json                   the manager's answer, a JSON array\n"
"  -h, --help               show this help\n"
"\n"
"Exit status: 0 shown; 2 usage; 7 manager unreachable; 8 refused; 1 other errors.\n";

static const char help_register[] =
"Usage: vmcrypt provider register NAME kind=KIND [endpoints=H:P,...]\n"
"                                 [description=TEXT] [OPTIONS]\n"
"\n"
"Record at the manager that the fleet uses key provider NAME (or replace what\n"
"it recorded): its kind (kmip, trusted or native), the key servers' endpoints\n"
"(needed for kmip and trusted) and a description. Nothing secret is sent: each\n"
"host keeps its own providers.json with its credentials, and the manager then\n"
"flags the hosts that lack NAME. Once any provider is registered, a policy may\n"
"only name registered ones. Needs the manage-providers privilege.\n"
"\n"
"Options:\n"
MANAGER_HELP_CONNECT
"  --json                   the stored registration as JSON\n"
"  -h, --help               show this help\n"
"\n"
"Example:\n"
"  vmcrypt provider register kms kind=kmip endpoints=kms1:5696,kms2:5696 \\\n"
"      description='the lab KMS pair' --manager-config admin.conf\n"
"\n"
"Exit status: 0 stored; 2 usage, or a value the manager refuses; 7 manager\n"
"unreachable; 8 refused (no manage-providers privilege); 1 other errors.\n";

static const char help_unregister[] =
"Usage: vmcrypt provider unregister NAME [OPTIONS]\n"
"\n"
"Forget the registration of key provider NAME at the manager (the hosts'\n"
"providers.json and their keys are not touched). Refused while a policy names\n"
"NAME. Needs the manage-providers privilege.\n"
"\n"
"Options:\n"
MANAGER_HELP_CONNECT
"  -h, --help               show this help\n"
"\n"
"Exit status: 0 done; 2 usage; 4 not registered; 5 a policy names it; 7 manager\n"
"unreachable; 8 refused; 1 other errors.\n";

static const char *str(json_t *o, const char *k) {
        const char *v = json_string_value(json_object_get(o, k));
        return v && *v ? v : "-";
}

static void endpoints(json_t *o, char *buf, size_t size) {
        size_t i, n = 0;
        json_t *e;
        buf[0] = 0;
        json_array_foreach(json_object_get(o, "endpoints"), i, e)
                if (n < size)
                        n += (size_t) snprintf(buf + n, size - n, "%s%s", i ? "," : "", json_string_value(e));
        if (!buf[0])
                snprintf(buf, size, "-");
}

int provider_fleet_list_main(int argc, char *argv[]) {
        const char *cmd = "vmcrypt provider list";
        json_t *list = NULL;
        int r = manager_show(cmd, help_list, "/providers", argc, argv, &list);
        if (r >= 0)
                return r;
        printf("%-16s %-8s %-10s %-16s %-7s %-11s %-9s %s\n", "PROVIDER", "KIND", "REGISTERED", "HOST", "DEFAULT",
               "STATE", "SEEN", "ENDPOINTS");
        size_t i;
        json_t *p;
        json_array_foreach(list, i, p) {
                json_t *reg = json_object_get(p, "registered"), *hosts = json_object_get(p, "hosts");
                char eps[512], seen[32];
                if (json_is_object(reg)) {
                        endpoints(reg, eps, sizeof(eps));
                        printf("%-16s %-8s %-10s %-16s %-7s %-11s %-9s %s\n", str(p, "name"), str(reg, "kind"), "yes",
                               "(fleet)", "-", "-", "-", eps);
                }
                size_t k;
                json_t *h;
                json_array_foreach(hosts, k, h) {
                        endpoints(h, eps, sizeof(eps));
                        snprintf(seen, sizeof(seen), "%llds ago",
                                 (long long) json_integer_value(json_object_get(h, "seconds_since_seen")));
                        printf("%-16s %-8s %-10s %-16s %-7s %-11s %-9s %s\n", str(p, "name"), str(h, "kind"),
                               json_is_object(reg) ? "yes" : "no", str(h, "host"),
                               json_is_true(json_object_get(h, "default")) ? "yes" : "no", str(h, "state"), seen, eps);
                        if (strcmp(str(h, "state"), "reachable") != 0)
                                printf("    %s: %s\n", str(h, "host"), str(h, "message"));
                }
                json_array_foreach(json_object_get(p, "flags"), k, h)
                        printf("  ! %s: %s\n", str(p, "name"), json_string_value(h));
        }
        json_decref(list);
        return EXIT_OK;
}

int provider_register_main(int argc, char *argv[]) {
        const char *cmd = "vmcrypt provider register";
        struct manager_opts o;
        int r = manager_opts_parse(cmd, MOPT_JSON, help_register, 1, -1, argc, argv, &o);
        if (r >= 0)
                return r;
        json_t *body = json_object();
        if ((r = manager_settings(cmd, o.args + 1, o.n_args - 1, "endpoints", "kind, endpoints, description",
                                  body)) >= 0) {
                json_decref(body);
                return r;
        }
        char path[512];
        if ((r = manager_path(cmd, "provider", "/providers", o.args[0], "", path, sizeof(path))) >= 0) {
                json_decref(body);
                return r;
        }
        _cleanup_(fleet_client_freep) struct fleet_client *c = NULL;
        json_t *answer = NULL;
        if ((r = manager_connect(cmd, &o, &c)) < 0)
                r = manager_call(cmd, c, "PUT", path, body, &answer);
        json_decref(body);
        if (r >= 0)
                return r;
        if (o.json)
                json_dumpf(answer, stdout, JSON_COMPACT), putchar('\n');
        else {
                char eps[512];
                endpoints(answer, eps, sizeof(eps));
                printf("registered key provider %s: %s, %s\n", o.args[0], str(answer, "kind"), eps);
        }
        json_decref(answer);
        return EXIT_OK;
}

int provider_unregister_main(int argc, char *argv[]) {
        const char *cmd = "vmcrypt provider unregister";
        struct manager_opts o;
        int r = manager_opts_parse(cmd, 0, help_unregister, 1, 1, argc, argv, &o);
        if (r >= 0)
                return r;
        char path[512];
        if ((r = manager_path(cmd, "provider", "/providers", o.args[0], "", path, sizeof(path))) >= 0)
                return r;
        _cleanup_(fleet_client_freep) struct fleet_client *c = NULL;
        json_t *answer = NULL;
        if ((r = manager_connect(cmd, &o, &c)) >= 0 || (r = manager_call(cmd, c, "DELETE", path, NULL, &answer)) >= 0)
                return r;
        json_decref(answer);
        printf("unregistered key provider %s\n", o.args[0]);
        return EXIT_OK;
}
