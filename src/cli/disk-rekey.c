/* vmcrypt disk rekey: shallow rekey. Re-wraps the disk's unlock secret under another
 * KEK (no data pass), or with --secret also replaces the secret and its keyslot.
 * Crash-safe by ordering, see keys/rekey.h. Deep rekey is `vmcrypt disk reencrypt`. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/disk-keys.h"
#include "keys/provider-config.h"
#include "keys/rekey.h"
#include "shared/log.h"

static void help(void) {
        printf("Usage: vmcrypt disk rekey [OPTIONS] IMAGE\n\n"
               "Re-wrap the disk's unlock secret under a new KEK without touching the data.\n\n"
               "  --kek ID           the new KEK (default: create and activate a new one)\n"
               "  --provider NAME    move to this key provider (default: the disk's current one)\n"
               "  --secret           also replace the unlock secret (new keyslot, old one removed)\n"
               "  --header FILE      detached LUKS header\n"
               "  --providers FILE   provider configuration (default %s)\n"
               "\nWhile another rekey, bind, recovery-key add or data job changes the disk, this\n"
               "command refuses (exit 5); a running VM does not stop it.\n",
               PROVIDERS_DEFAULT_PATH);
}

int disk_rekey_main(int argc, char *argv[]) {
        static const struct option opts[] = {
                { "kek", required_argument, NULL, 'K' },
                { "provider", required_argument, NULL, 'p' },
                { "secret", no_argument, NULL, 's' },
                { "header", required_argument, NULL, 'H' },
                { "providers", required_argument, NULL, KEYS_OPT_PROVIDERS },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        struct rekey_opts o = { 0 };
        int c;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                switch (c) {
                case 'K': o.kek_id = optarg; break;
                case 'p': o.provider = optarg; break;
                case 's': o.rotate_secret = true; break;
                case 'H': o.header = optarg; break;
                case KEYS_OPT_PROVIDERS: o.providers_path = optarg; break;
                case 'h': help(); return EXIT_OK;
                default: return cli_usage_error("vmcrypt disk rekey", "unknown option");
                }
        }
        if (optind + 1 != argc)
                return cli_usage_error("vmcrypt disk rekey", "give exactly one IMAGE");
        o.image = argv[optind];
        struct rekey_result res = { 0 };
        struct error err = { 0 };
        int r = keys_rekey(&o, &res, &err);
        if (r < 0)
                return log_error("%s", err.text), cli_exit_code(r);
        if (o.rotate_secret)
                printf("%s: new unlock secret in keyslot %d (keyslot %d removed), wrapped under KEK %s (was %s)\n",
                       o.image, res.new_keyslot, res.old_keyslot, res.new_kek, res.old_kek);
        else
                printf("%s: unlock secret re-wrapped under KEK %s (was %s)\n", o.image, res.new_kek, res.old_kek);
        if (res.released)
                disk_report_release(&res.old_release);
        return EXIT_OK;
}
