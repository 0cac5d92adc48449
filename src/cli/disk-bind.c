/* vmcrypt disk bind: bind an existing LUKS volume (made by cryptsetup, QEMU, ...) to
 * a key provider: a new keyslot for a fresh unlock secret, and the token holding
 * the secret wrapped by a KEK. The existing passphrase comes from a key file or
 * standard input, and stays valid. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/disk-keys.h"
#include "keys/binding.h"
#include "keys/unlock.h"
#include "shared/key-input.h"
#include "shared/log.h"

static void help(void) {
        printf("Usage: vmcrypt disk bind [OPTIONS] --key-file FILE IMAGE\n\n"
               "Bind an existing LUKS volume to a key provider. FILE ('-' = standard input) holds\n"
               "a passphrase that opens the volume now; it keeps working.\n\n"
               "  --provider NAME    key provider (default: the configuration's default)\n"
               "  --kek ID           wrap under this KEK (default: create and activate a new one)\n"
               "  --vm-name NAME     VM name (stored in the token, x-Name on the KEK)\n"
               "  --vm-uuid UUID     VM UUID (x-Identifier on the KEK)\n"
               "  --header FILE      detached LUKS header\n"
               "  --providers FILE   provider configuration (default %s)\n"
               "\nWhile another rekey, bind, recovery-key add or data job changes the disk, this\n"
               "command refuses (exit 5); a running VM does not stop it.\n",
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
        struct binding_opts o = { 0 };
        const char *key_file = NULL, *header = NULL;
        int c;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                switch (c) {
                case 'k': key_file = optarg; break;
                case 'p': o.provider = optarg; break;
                case 'K': o.kek_id = optarg; break;
                case 'n': o.vm_name = optarg; break;
                case 'u': o.vm_uuid = optarg; break;
                case 'H': header = optarg; break;
                case KEYS_OPT_PROVIDERS: o.providers_path = optarg; break;
                case 'h': help(); return EXIT_OK;
                default: return cli_usage_error("vmcrypt disk bind", "unknown option");
                }
        }
        if (optind + 1 != argc)
                return cli_usage_error("vmcrypt disk bind", "give exactly one IMAGE");
        if (!key_file)
                return cli_usage_error("vmcrypt disk bind", "--key-file FILE (or -) with a current passphrase is required");
        const char *image = argv[optind];
        o.header_path = header ? header : image;

        _cleanup_(secret_freep) struct secret *pass = NULL;
        int r = key_input_read_file(key_file, &pass);
        if (r < 0)
                return log_error_errno(r, "cannot read the passphrase from %s: %m", key_file), cli_exit_code(r);
        char err[1024] = "";
        _cleanup_(change_lock_release) struct change_lock lock = CHANGE_LOCK_INIT;
        struct crypt_device *cd = NULL;
        r = unlock_load_for_change(image, header, &lock, &cd, err, sizeof(err));
        if (r < 0)
                return log_error("%s", err), cli_exit_code(r);
        r = binding_attach(cd, &o, pass, err, sizeof(err));
        crypt_free(cd);
        if (r < 0)
                return log_error("cannot bind %s: %s", image, err), cli_exit_code(r);
        printf("%s: bound to key provider (keyslot %d)\n", image, r);
        return EXIT_OK;
}
