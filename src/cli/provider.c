/* vmcrypt provider: the key providers of providers.json. Listing them, creating a
 * KEK (useful to pre-create one per VM, and in tests), and the native provider's
 * life cycle (provider-backup.c: init, backup, restore). */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/disk-keys.h"
#include "cli/manager-common.h"
#include "keys/provider.h"
#include "keys/rekey.h"
#include "shared/log.h"

int provider_init_main(int argc, char *argv[]);
int provider_backup_main(int argc, char *argv[]);
int provider_restore_main(int argc, char *argv[]);

static const struct option list_opts[] = {
        { "providers", required_argument, NULL, KEYS_OPT_PROVIDERS },
        { "vm-name", required_argument, NULL, 'n' },
        { "vm-uuid", required_argument, NULL, 'u' },
        { "check", no_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
        {}
};

static int list_main(int argc, char *argv[]) {
        /* The fleet's providers, as the manager knows them. */
        if (manager_wanted(argc, argv))
                return provider_fleet_list_main(argc, argv);
        const char *path = NULL;
        bool check = false;
        int c;
        while ((c = getopt_long(argc, argv, "h", list_opts, NULL)) >= 0) {
                if (c == KEYS_OPT_PROVIDERS)
                        path = optarg;
                else if (c == 'c')
                        check = true;
                else if (c == 'h') {
                        printf("Usage: vmcrypt provider list [--providers FILE] [--check]\n"
                               "       vmcrypt provider list --manager URL|--manager-config FILE [--json]\n\n"
                               "This host's key providers, from its providers.json (default %s):\n"
                               "name (and whether it is the default), kind, and the key servers' endpoints\n"
                               "(kmip, trusted) or the state directory and readiness (native).\n\n"
                               "With --manager or --manager-config: the fleet's providers as vmcrypt-manager\n"
                               "knows them, registered and reported by each host with its reachability\n"
                               "(see 'vmcrypt provider list --manager-config FILE --help').\n\n"
                               "  --providers FILE    provider configuration\n"
                               "  --check             also check that each provider can serve this host now,\n"
                               "                      as vmcrypt-agent does for the manager: kmip and trusted\n"
                               "                      ask the key servers for DiscoverVersions with this host's\n"
                               "                      certificate (at most 5 s per server; the TPM is not\n"
                               "                      used); native needs its primary key and a backup;\n"
                               "                      and when this host's client certificate for each\n"
                               "                      ends ('!' within 30 days)\n\n"
                               "Exit status: 0 listed (with --check: every provider usable); 2 usage; 4 no\n"
                               "providers.json, or a native provider not initialised; 7 a key server\n"
                               "unreachable; 8 refused; 9 malformed; 1 other errors.\n",
                               PROVIDERS_DEFAULT_PATH);
                        return EXIT_OK;
                } else
                        return cli_usage_error("vmcrypt provider list", "unknown option");
        }
        /* With --check each provider is probed as vmcrypt-agent does for the
         * manager (at most 5 s per key server). */
        struct provider_report *v = NULL;
        size_t n = 0;
        struct error err = { 0 };
        int r = provider_report_all(path, check ? 5000 : 0, &v, &n, &err);
        if (r < 0)
                return log_error("%s", err.text), cli_exit_code(r);
        for (size_t i = 0; i < n; i++) {
                printf("%s%s\t%s\t", v[i].name, v[i].is_default ? " (default)" : "", v[i].kind);
                if (strcmp(v[i].kind, "native") == 0)
                        printf("%s\t%s\n", v[i].state_dir,
                               v[i].native_ready < 0 ? "not initialised"
                               : v[i].native_ready ? "ready" : "needs a backup before use");
                else {
                        for (size_t e = 0; e < v[i].n_endpoints; e++)
                                printf("%s%s", e ? "," : "", v[i].endpoints[e]);
                        putchar('\n');
                }
        }
        int worst = EXIT_OK;
        for (size_t i = 0; check && i < n; i++) {
                if (v[i].probe == 0)
                        printf("%s: usable (%u ms)\n", v[i].name, v[i].probe_ms);
                else
                        printf("%s: NOT usable (%u ms): %s\n", v[i].name, v[i].probe_ms, v[i].message);
                if (v[i].cert_expires > 0) {
                        char ends[64];
                        manager_expiry_text(v[i].cert_expires, ends, sizeof(ends));
                        printf("%s: this host's client certificate ends %s\n", v[i].name, ends);
                }
                if (v[i].probe < 0 && worst == EXIT_OK)
                        worst = cli_exit_code(v[i].probe);
        }
        free(v);
        return worst;
}

static int create_kek_main(int argc, char *argv[]) {
        const char *path = NULL;
        struct kek_attrs attrs = { 0 };
        int c;
        while ((c = getopt_long(argc, argv, "h", list_opts, NULL)) >= 0) {
                switch (c) {
                case KEYS_OPT_PROVIDERS: path = optarg; break;
                case 'n': attrs.vm_name = optarg; break;
                case 'u': attrs.vm_uuid = optarg; break;
                case 'h':
                        printf("Usage: vmcrypt provider create-kek [--providers FILE] [--vm-name N] [--vm-uuid U] [NAME]\n"
                               "Create and activate a KEK in provider NAME (default provider if omitted); print its id.\n");
                        return EXIT_OK;
                default: return cli_usage_error("vmcrypt provider create-kek", "unknown option");
                }
        }
        if (optind + 1 < argc)
                return cli_usage_error("vmcrypt provider create-kek", "at most one provider NAME");
        struct error err = { 0 };
        _cleanup_(provider_configs_freep) struct provider_configs *cs = NULL;
        int r = provider_config_load(path, &cs, &err);
        if (r < 0)
                return log_error("%s", err.text), cli_exit_code(r);
        _cleanup_(provider_freep) struct provider *p = NULL;
        r = provider_open_by_name(cs, optind < argc ? argv[optind] : NULL, &p, &err);
        if (r < 0)
                return log_error("%s", r == -EOPNOTSUPP ? "this vmcrypt was built without KMIP support" : err.text),
                       cli_exit_code(r);
        _cleanup_(freep) char *id = NULL;
        r = provider_kek_create(p, &attrs, &id);
        if (r < 0)
                return log_error("%s", provider_error(p)), cli_exit_code(r);
        printf("%s\n", id);
        return EXIT_OK;
}

static void keks_help(void) {
        printf("Usage: vmcrypt provider keks [--orphans] [--providers FILE] NAME [IMAGE...]\n\n"
               "List the KEKs vmcrypt created on key provider NAME (kmip): id, state, the VM\n"
               "they were made for (x-Name, x-Identifier), and the disks that use them.\n\n"
               "Every KEK vmcrypt creates records the disks bound to it on the key server\n"
               "(custom attributes x-vmcrypt-Disk-UUID = host:path), on every host: USERS\n"
               "counts them and the line below names them. Rekey, decrypt and unbind drop the\n"
               "disk's record and retire the KEK (revoke, then destroy) when it was the last.\n"
               "KEKs made before vmcrypt tracked disks, or on servers without AddAttribute\n"
               "(PyKMIP), record nothing (USERS \"-\"); for them, give the disk images of every\n"
               "host that could use them: HERE counts the IMAGEs whose tokens name each KEK.\n\n"
               "  --orphans           only Active KEKs that nothing uses: tracked KEKs with no\n"
               "                      disk recorded, untracked ones that none of the IMAGEs uses\n"
               "  --providers FILE    provider configuration (default %s)\n\n"
               "A tracked KEK can keep a record of a disk that is gone (deleted without\n"
               "'vmcrypt disk decrypt', or a crash just before the release): the line below it\n"
               "says which disk to look for. Retire an orphan on the key server with\n"
               "  vmcrypt kms revoke --provider NAME ID && vmcrypt kms destroy --provider NAME ID\n\n"
               "Exit status: 0 listed; 2 usage; 4 no such provider; 7 unreachable; 8 denied.\n",
               PROVIDERS_DEFAULT_PATH);
}

static int keks_main(int argc, char *argv[]) {
        static const struct option opts[] = {
                { "providers", required_argument, NULL, KEYS_OPT_PROVIDERS },
                { "orphans", no_argument, NULL, 'o' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        const char *path = NULL;
        bool orphans = false;
        int c;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                switch (c) {
                case KEYS_OPT_PROVIDERS: path = optarg; break;
                case 'o': orphans = true; break;
                case 'h': keks_help(); return EXIT_OK;
                default: return cli_usage_error("vmcrypt provider keks", "unknown option");
                }
        }
        if (optind >= argc)
                return cli_usage_error("vmcrypt provider keks", "give the key provider NAME, then the disk images");
        size_t n_images = (size_t) (argc - optind - 1);
        struct error err = { 0 };
        struct kek_info *v = NULL;
        size_t n = 0;
        int r = keys_kek_report(path, argv[optind], argv + optind + 1, n_images, &v, &n, &err);
        if (r < 0)
                return log_error("%s", err.text), cli_exit_code(r);
        printf("%-38s %-12s %5s %5s  %s\n", "KEK", "STATE", "USERS", "HERE", "VM (x-Name, x-Identifier)");
        unsigned unjudged = 0;
        for (size_t i = 0; i < n; i++) {
                const struct kek_info *k = &v[i];
                if (orphans) {
                        if (strcmp(k->state, "Active") != 0 || k->disks > 0 || (k->tracked && k->users > 0))
                                continue;
                        if (!k->tracked && n_images == 0) {
                                unjudged++;
                                continue;
                        }
                }
                char users[16] = "-";
                if (k->tracked)
                        snprintf(users, sizeof(users), "%u", k->users);
                printf("%-38s %-12s %5s %5u  %s%s%s\n", k->id, k->state[0] ? k->state : "?", users, k->disks,
                       k->vm_name[0] ? k->vm_name : "-", k->vm_uuid[0] ? " " : "", k->vm_uuid);
                if (k->user_list[0])
                        printf("    used by: %s\n", k->user_list);
        }
        free(v);
        if (unjudged)
                log_notice("%u Active KEK(s) record no disks: give the disk images of every host that could use "
                           "them to judge them", unjudged);
        return EXIT_OK;
}

static const struct cli_command provider_commands[] = {
        { "list", list_main, "list the configured key providers (or, with --manager, the fleet's)" },
        { "register", provider_register_main, "record at the manager a provider the fleet uses" },
        { "unregister", provider_unregister_main, "forget a provider's registration at the manager" },
        { "create-kek", create_kek_main, "create and activate a KEK, print its id" },
        { "keks", keks_main, "list the KEKs vmcrypt made, with the disks that use them" },
        { "init", provider_init_main, "native: create the primary key" },
        { "backup", provider_backup_main, "native: export the password-protected backup" },
        { "restore", provider_restore_main, "native: install the primary key from a backup" },
        { NULL, NULL, NULL },
};

int provider_main(int argc, char *argv[]) {
        return cli_dispatch("vmcrypt provider", provider_commands, argc, argv);
}
