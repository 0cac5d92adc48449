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
#include "keys/native.h"
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
        { "help", no_argument, NULL, 'h' },
        {}
};

static int list_main(int argc, char *argv[]) {
        const char *path = NULL;
        int c;
        while ((c = getopt_long(argc, argv, "h", list_opts, NULL)) >= 0) {
                if (c == KEYS_OPT_PROVIDERS)
                        path = optarg;
                else if (c == 'h') {
                        printf("Usage: vmcrypt provider list [--providers FILE]\n");
                        return EXIT_OK;
                } else
                        return cli_usage_error("vmcrypt provider list", "unknown option");
        }
        char err[1024] = "";
        _cleanup_(provider_configs_freep) struct provider_configs *cs = NULL;
        int r = provider_config_load(path, &cs, err, sizeof(err));
        if (r < 0)
                return log_error("%s", err), cli_exit_code(r);
        for (size_t i = 0; i < cs->n; i++) {
                const struct provider_config *p = &cs->p[i];
                int dflt = cs->default_name && strcmp(cs->default_name, p->name) == 0;
                if (p->kind == PROVIDER_KMIP || p->kind == PROVIDER_TRUSTED) {
                        printf("%s%s\t%s\t", p->name, dflt ? " (default)" : "",
                               p->kind == PROVIDER_TRUSTED ? "trusted" : "kmip");
                        for (size_t e = 0; e < p->n_endpoints; e++)
                                printf("%s%s:%u", e ? "," : "", p->endpoints[e].host, p->endpoints[e].port);
                        printf("\n");
                } else {
                        int b = native_backup_exported(p);
                        printf("%s%s\tnative\t%s\t%s\n", p->name, dflt ? " (default)" : "", p->state_dir,
                               b < 0 ? "not initialised" : b ? "ready" : "needs a backup before use");
                }
        }
        return EXIT_OK;
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
        char err[1024] = "";
        _cleanup_(provider_configs_freep) struct provider_configs *cs = NULL;
        int r = provider_config_load(path, &cs, err, sizeof(err));
        if (r < 0)
                return log_error("%s", err), cli_exit_code(r);
        _cleanup_(provider_freep) struct provider *p = NULL;
        r = provider_open_by_name(cs, optind < argc ? argv[optind] : NULL, &p, err, sizeof(err));
        if (r < 0)
                return log_error("%s", r == -EOPNOTSUPP ? "this vmcrypt was built without KMIP support" : err),
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
               "List the KEKs vmcrypt created on key provider NAME (kmip): id, state, and the\n"
               "VM they were made for (x-Name, x-Identifier), with how many of the given disk\n"
               "images use each (their vmcrypt tokens name it). Give every disk of the host to\n"
               "find the KEKs nothing uses any more: a failed command's KEK is retired by the\n"
               "command itself, but rekey and decrypt leave the old KEK on the key server, as\n"
               "other disks may share it.\n\n"
               "  --orphans           only Active KEKs that none of the IMAGEs uses\n"
               "  --providers FILE    provider configuration (default %s)\n\n"
               "Retire an orphan on the key server with\n"
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
        if (orphans && optind + 1 == argc)
                return cli_usage_error("vmcrypt provider keks", "--orphans needs the disk images to look in");
        char err[1024] = "";
        struct kek_info *v = NULL;
        size_t n = 0;
        int r = keys_kek_report(path, argv[optind], argv + optind + 1, (size_t) (argc - optind - 1), &v, &n, err,
                                sizeof(err));
        if (r < 0)
                return log_error("%s", err), cli_exit_code(r);
        printf("%-38s %-12s %5s  %s\n", "KEK", "STATE", "DISKS", "VM (x-Name, x-Identifier)");
        for (size_t i = 0; i < n; i++) {
                if (orphans && (v[i].disks > 0 || strcmp(v[i].state, "Active") != 0))
                        continue;
                printf("%-38s %-12s %5u  %s%s%s\n", v[i].id, v[i].state[0] ? v[i].state : "?", v[i].disks,
                       v[i].vm_name[0] ? v[i].vm_name : "-", v[i].vm_uuid[0] ? " " : "", v[i].vm_uuid);
        }
        free(v);
        return EXIT_OK;
}

static const struct cli_command provider_commands[] = {
        { "list", list_main, "list the configured key providers" },
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
