/* vmcrypt provider init|backup|restore: the native key provider's primary key.
 * The backup passphrase comes from --passphrase-file (or '-' for standard input)
 * or is asked for twice on the terminal; never from argv. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/disk-keys.h"
#include "keys/native.h"
#include "shared/key-input.h"
#include "shared/log.h"

struct native_args {
        const char *providers;
        const char *file;
        const char *passphrase_file;
        const struct provider_config *c;
        struct provider_configs *cs;
};

/* Parse options and find the native provider NAME. want_file: the option name of
 * the bundle ("--output"/"--input"), or NULL. Returns -1 to go on, or the exit code
 * to stop with (after --help or an error). */
static int parse(const char *cmd, const char *want_file, int argc, char *argv[], struct native_args *a) {
        static const struct option opts[] = {
                { "providers", required_argument, NULL, KEYS_OPT_PROVIDERS },
                { "output", required_argument, NULL, 'o' },
                { "input", required_argument, NULL, 'i' },
                { "passphrase-file", required_argument, NULL, 'P' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        int c;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                switch (c) {
                case KEYS_OPT_PROVIDERS: a->providers = optarg; break;
                case 'o':
                case 'i': a->file = optarg; break;
                case 'P': a->passphrase_file = optarg; break;
                case 'h':
                        printf("Usage: %s [--providers FILE]%s%s NAME\n", cmd, want_file ? " " : "",
                               want_file ? (strcmp(want_file, "--output") == 0 ? "--output FILE [--passphrase-file F]"
                                                                              : "--input FILE [--passphrase-file F]")
                                         : "");
                        return EXIT_OK;
                default: return cli_usage_error(cmd, "unknown option");
                }
        }
        if (optind + 1 != argc)
                return cli_usage_error(cmd, "give the name of one native key provider");
        if (want_file && !a->file)
                return cli_usage_error(cmd, "%s FILE is required", want_file);
        struct error err = { 0 };
        int r = provider_config_load(a->providers, &a->cs, &err);
        if (r < 0)
                return log_error("%s", err.text), cli_exit_code(r);
        a->c = provider_config_find(a->cs, argv[optind]);
        if (!a->c)
                return log_error("no key provider named \"%s\" in %s", argv[optind], a->cs->path), EXIT_NOT_FOUND;
        if (a->c->kind != PROVIDER_NATIVE)
                return log_error("key provider \"%s\" is a KMIP provider: its keys are backed up by its KMS", a->c->name),
                       EXIT_USAGE;
        return -1;
}

static int get_passphrase(const struct native_args *a, int confirm, struct secret **ret) {
        if (a->passphrase_file)
                return key_input_read_file(a->passphrase_file, ret);
        return key_input_prompt("Backup passphrase: ", confirm, ret);
}

int provider_init_main(int argc, char *argv[]) {
        struct native_args a = { 0 };
        int r = parse("vmcrypt provider init", NULL, argc, argv, &a);
        if (r < 0) {
                struct error err = { 0 };
                r = native_init(a.c, &err);
                if (r < 0)
                        r = (log_error("%s", err.text), cli_exit_code(r));
                else {
                        printf("native key provider \"%s\" initialised in %s\n", a.c->name, a.c->state_dir);
                        fprintf(stderr, "Next: 'vmcrypt provider backup %s --output FILE'; the provider refuses to "
                                        "work until a backup exists.\n", a.c->name);
                        r = EXIT_OK;
                }
        }
        provider_configs_free(a.cs);
        return r;
}

int provider_backup_main(int argc, char *argv[]) {
        struct native_args a = { 0 };
        int r = parse("vmcrypt provider backup", "--output", argc, argv, &a);
        if (r < 0) {
                _cleanup_(secret_freep) struct secret *pass = NULL;
                struct error err = { 0 };
                r = get_passphrase(&a, 1, &pass);
                if (r < 0)
                        r = (log_error_errno(r, "cannot read the backup passphrase: %m"), cli_exit_code(r));
                else if (pass->size < 8)
                        r = (log_error("the backup passphrase must have at least 8 characters"), EXIT_USAGE);
                else if ((r = native_backup(a.c, pass, a.file, &err)) < 0)
                        r = (log_error("%s", err.text), cli_exit_code(r));
                else {
                        printf("backup of native key provider \"%s\" written to %s; keep it off this host\n",
                               a.c->name, a.file);
                        r = EXIT_OK;
                }
        }
        provider_configs_free(a.cs);
        return r;
}

int provider_restore_main(int argc, char *argv[]) {
        struct native_args a = { 0 };
        int r = parse("vmcrypt provider restore", "--input", argc, argv, &a);
        if (r < 0) {
                _cleanup_(secret_freep) struct secret *pass = NULL;
                struct error err = { 0 };
                r = get_passphrase(&a, 0, &pass);
                if (r < 0)
                        r = (log_error_errno(r, "cannot read the backup passphrase: %m"), cli_exit_code(r));
                else if ((r = native_restore(a.c, pass, a.file, &err)) < 0)
                        r = (log_error("%s", err.text), cli_exit_code(r));
                else {
                        printf("native key provider \"%s\" restored from %s\n", a.c->name, a.file);
                        r = EXIT_OK;
                }
        }
        provider_configs_free(a.cs);
        return r;
}
