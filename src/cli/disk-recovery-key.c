/* vmcrypt disk recovery-key add: a break-glass keyslot. The disk is unlocked through
 * its key provider, and a generated recovery passphrase (Argon2id keyslot) is added
 * and printed once on standard output. With it, plain cryptsetup opens the disk
 * without vmcrypt or any KMS. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/disk-keys.h"
#include "keys/provider-config.h"
#include "keys/rekey.h"
#include "shared/fd-util.h"
#include "shared/log.h"

static void help(void) {
        printf("Usage: vmcrypt disk recovery-key add [OPTIONS] IMAGE\n\n"
               "Add a recovery passphrase keyslot (Argon2id) and print the passphrase once.\n\n"
               "  --pbkdf-memory KIB  Argon2id memory (default: cryptsetup's, up to 1 GiB)\n"
               "  --iter-time MS      KDF time (default 2000)\n"
               "  --header FILE       detached LUKS header\n"
               "  --providers FILE    provider configuration (default %s)\n"
               "\nWhile another rekey, bind, recovery-key add or data job changes the disk, this\n"
               "command refuses (exit 5); a running VM does not stop it.\n",
               PROVIDERS_DEFAULT_PATH);
}

static int parse_u32(const char *s, uint32_t *ret) {
        char *end = NULL;
        unsigned long v = strtoul(s, &end, 10);
        if (!*s || *end || v == 0 || v > 4194304)
                return -EINVAL;
        *ret = (uint32_t) v;
        return 0;
}

static int recovery_add_main(int argc, char *argv[]) {
        static const struct option opts[] = {
                { "pbkdf-memory", required_argument, NULL, 'm' },
                { "iter-time", required_argument, NULL, 't' },
                { "header", required_argument, NULL, 'H' },
                { "providers", required_argument, NULL, KEYS_OPT_PROVIDERS },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        struct recovery_opts o = { 0 };
        int c;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                switch (c) {
                case 'm':
                        if (parse_u32(optarg, &o.pbkdf_memory_kib) < 0)
                                return cli_usage_error("vmcrypt disk recovery-key add", "--pbkdf-memory wants KiB, not '%s'", optarg);
                        break;
                case 't':
                        if (parse_u32(optarg, &o.iter_time_ms) < 0)
                                return cli_usage_error("vmcrypt disk recovery-key add", "--iter-time wants ms, not '%s'", optarg);
                        break;
                case 'H': o.header = optarg; break;
                case KEYS_OPT_PROVIDERS: o.providers_path = optarg; break;
                case 'h': help(); return EXIT_OK;
                default: return cli_usage_error("vmcrypt disk recovery-key add", "unknown option");
                }
        }
        if (optind + 1 != argc)
                return cli_usage_error("vmcrypt disk recovery-key add", "give exactly one IMAGE");
        o.image = argv[optind];
        _cleanup_(secret_freep) struct secret *pass = NULL;
        struct error err = { 0 };
        int r = keys_recovery_add(&o, &pass, &err);
        if (r < 0)
                return log_error("%s", err.text), cli_exit_code(r);
        fprintf(stderr, "Recovery passphrase for %s (keyslot %d). Write it down and keep it apart from the host:\n"
                        "it is shown only now. Dashes are part of it. It opens the disk without any key server:\n"
                        "  cryptsetup open %s NAME                       (needs device-mapper)\n"
                        "  vmcrypt disk decrypt --key-file FILE %s     (offline, back to plain data)\n"
                        "  vmcrypt disk bind IMAGE                         (a new key provider binding)\n",
                o.image, r, o.image, o.image);
        /* Straight to the descriptor: stdio would leave a copy in its heap buffer. */
        fflush(stdout);
        r = write_full(STDOUT_FILENO, pass->data, pass->size);
        if (r >= 0)
                r = write_full(STDOUT_FILENO, "\n", 1);
        if (r < 0)
                return log_error_errno(r, "cannot print the recovery passphrase: %m"), EXIT_FAILURE_GENERAL;
        return EXIT_OK;
}

static const struct cli_command recovery_commands[] = {
        { "add", recovery_add_main, "add a recovery passphrase keyslot, shown once" },
        { NULL, NULL, NULL },
};

int disk_recovery_key_main(int argc, char *argv[]) {
        return cli_dispatch("vmcrypt disk recovery-key", recovery_commands, argc, argv);
}
