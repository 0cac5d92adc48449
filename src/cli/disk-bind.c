/* vmcrypt disk bind: bind an existing LUKS volume (made by cryptsetup, QEMU, ...) to
 * a key provider: a new keyslot for a fresh unlock secret, and the token holding
 * the secret wrapped by a KEK. vmcrypt disk unbind: remove a token and its
 * keyslot. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/disk-keys.h"
#include "keys/rekey.h"
#include "keys/unlock.h"
#include "shared/key-input.h"
#include "shared/log.h"

static void help(void) {
        printf("Usage: vmcrypt disk bind [OPTIONS] IMAGE\n\n"
               "Bind an existing LUKS volume to a key provider: a new keyslot for a fresh random\n"
               "unlock secret, wrapped by a KEK of the provider and stored in the disk's vmcrypt\n"
               "token. A passphrase that opens the volume now is needed once; it keeps working.\n"
               "It is asked for on the terminal, or read from --key-file. A passphrase from a\n"
               "file or a pipe that opens no keyslot is tried once more without one trailing\n"
               "newline, so 'echo PASS | vmcrypt disk bind --key-file - IMAGE' works.\n\n"
               "This is also the way back after a KEK was revoked or destroyed: bind again with\n"
               "the recovery passphrase. Tokens whose KEK is revoked or destroyed are removed\n"
               "with their keyslots, so the new binding replaces them.\n\n"
               "  --key-file FILE|-  the current passphrase (default: ask on the terminal)\n"
               "  --provider NAME    key provider (default: the configuration's default)\n"
               "  --kek ID           wrap under this KEK (default: create and activate a new one)\n"
               "  --vm-name NAME     VM name (stored in the token, x-Name on the KEK)\n"
               "  --vm-uuid UUID     VM UUID (x-Identifier on the KEK)\n"
               "  --header FILE      detached LUKS header\n"
               "  --providers FILE   provider configuration (default %s)\n"
               "\nWhile another rekey, bind, recovery-key add or data job changes the disk, this\n"
               "command refuses (exit 5); a running VM does not stop it.\n"
               "\nExit status: 0 bound; 2 usage; 3 the passphrase opens no keyslot; 5 busy;\n"
               "7 key server unreachable; 8 denied; 1 other errors.\n",
               PROVIDERS_DEFAULT_PATH);
}

int disk_bind_main(int argc, char *argv[]) {
        static const struct option opts[] = {
                { "key-file", required_argument, NULL, 'k' },
                { "provider", required_argument, NULL, 'p' },
                { "kek", required_argument, NULL, 'K' },
                { "vm-name", required_argument, NULL, 'n' },
                { "vm-uuid", required_argument, NULL, 'u' },
                { "header", required_argument, NULL, 'H' },
                { "providers", required_argument, NULL, KEYS_OPT_PROVIDERS },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        struct bind_opts o = { 0 };
        const char *key_file = NULL;
        int c;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                switch (c) {
                case 'k': key_file = optarg; break;
                case 'p': o.provider = optarg; break;
                case 'K': o.kek_id = optarg; break;
                case 'n': o.vm_name = optarg; break;
                case 'u': o.vm_uuid = optarg; break;
                case 'H': o.header = optarg; break;
                case KEYS_OPT_PROVIDERS: o.providers_path = optarg; break;
                case 'h': help(); return EXIT_OK;
                default: return cli_usage_error("vmcrypt disk bind", "unknown option");
                }
        }
        if (optind + 1 != argc)
                return cli_usage_error("vmcrypt disk bind", "give exactly one IMAGE");
        o.image = argv[optind];
        if (!key_file && isatty(STDIN_FILENO) != 1)
                return cli_usage_error("vmcrypt disk bind", "no passphrase: give --key-file FILE (or - for a pipe on "
                                       "stdin), or run on a terminal to type it");

        _cleanup_(secret_freep) struct secret *pass = NULL;
        char prompt[512];
        snprintf(prompt, sizeof(prompt), "Current passphrase of %s: ", o.image);
        int r = key_file ? key_input_read_file(key_file, &pass) : key_input_prompt(prompt, 0, &pass);
        if (r < 0)
                return log_error_errno(r, "cannot read the passphrase%s%s: %m", key_file ? " from " : "",
                                       key_file ? key_file : ""), cli_exit_code(r);
        struct error err = { 0 };
        struct bind_result res;
        r = keys_bind(&o, pass, &res, &err);
        if (r < 0)
                return log_error("cannot bind %s: %s", o.image, err.text), cli_exit_code(r);
        if (res.newline_dropped)
                log_notice("the passphrase opened the disk without its trailing newline");
        for (unsigned i = 0; i < res.n_replaced; i++)
                log_notice("removed token %d: its KEK is revoked or destroyed, and the new binding replaces it",
                           res.replaced[i]);
        printf("%s: bound to key provider (keyslot %d, KEK %s)\n", o.image, res.keyslot, res.kek);
        return EXIT_OK;
}

static void unbind_help(void) {
        printf("Usage: vmcrypt disk unbind --token ID [--header FILE] IMAGE\n\n"
               "Remove vmcrypt token ID (see 'vmcrypt disk status') and the keyslot its secret\n"
               "opens. Refused when that keyslot is the last way into the volume, or when another\n"
               "token still uses it. The disk then stops using the token's KEK: a KEK that\n"
               "records its disks (every KEK vmcrypt creates) is retired (revoked, then\n"
               "destroyed) when this was the last disk using it; otherwise it stays.\n\n"
               "Options:\n"
               "  --token ID         the token to remove\n"
               "  --header FILE      the volume's detached header\n"
               "  --providers FILE   key providers (default /etc/vmcrypt/providers.json)\n\n"
               "Exit status: 0 removed; 2 usage; 4 no such token; 5 busy or the last keyslot;\n"
               "1 other errors.\n");
}

int disk_unbind_main(int argc, char *argv[]) {
        static const struct option opts[] = {
                { "token", required_argument, NULL, 't' },
                { "header", required_argument, NULL, 'H' },
                { "providers", required_argument, NULL, KEYS_OPT_PROVIDERS },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        const char *header = NULL, *providers = NULL;
        int id = -1, c;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                switch (c) {
                case 't': {
                        char *end = NULL;
                        long v = strtol(optarg, &end, 10);
                        if (!*optarg || *end || v < 0 || v > 31)
                                return cli_usage_error("vmcrypt disk unbind", "--token wants a token id (0-31), not '%s'", optarg);
                        id = (int) v;
                        break;
                }
                case 'H': header = optarg; break;
                case KEYS_OPT_PROVIDERS: providers = optarg; break;
                case 'h': unbind_help(); return EXIT_OK;
                default: return cli_usage_error("vmcrypt disk unbind", "unknown option");
                }
        }
        if (optind + 1 != argc || id < 0)
                return cli_usage_error("vmcrypt disk unbind", "give --token ID and exactly one IMAGE");
        struct error err = { 0 };
        struct unbind_result res;
        int r = keys_unbind(providers, argv[optind], header, id, &res, &err);
        if (r < 0)
                return log_error("cannot unbind %s: %s", argv[optind], err.text), cli_exit_code(r);
        printf("%s: removed token %d%s (KEK %s is no longer used by this disk)\n", argv[optind], id,
               res.keyslot_removed ? " and its keyslot" : "", res.kek[0] ? res.kek : "unknown");
        if (res.released)
                disk_report_release(&res.release);
        return EXIT_OK;
}
