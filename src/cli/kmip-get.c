/* vmcrypt kms get: fetch a key. The material is shown only when asked for with
 * --reveal, or written to a new 0600 file with --out. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/kmip-common.h"
#include "kmip/tags.h"
#include "shared/fd-util.h"
#include "shared/hex.h"

#define KEY_HEX_MAX 512

static const char help[] =
        "Usage: vmcrypt kms get [OPTIONS] UID\n"
        "\n"
        "Fetch key UID from the server and print what it is. The key material itself is\n"
        "printed only with --reveal (as hex), or written with --out to a new file that\n"
        "only you can read (mode 0600; the file must not exist yet).\n"
        "\n"
        "  --reveal      print the key material in hex on standard output\n"
        "  --out FILE    write the raw key material to FILE\n"
        "\n"
        "Fails with exit status 8 if the key is revoked or not active, 4 if it does not\n"
        "exist or was destroyed.\n";

enum { OPT_REVEAL = 1, OPT_OUT };

int kmip_get_main(int argc, char *argv[]) {
        static const char cmd[] = "vmcrypt kms get";
        static const struct option opts[] = {
                KMS_COMMON_LONG_OPTIONS,
                { "reveal", no_argument, NULL, OPT_REVEAL },
                { "out", required_argument, NULL, OPT_OUT },
                {},
        };
        struct kmip_conn_opts co = {};
        bool reveal = false;
        const char *out = NULL;
        int opt;
        while ((opt = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                if (opt == 'h')
                        return kmip_cmd_help(help);
                if (opt == OPT_REVEAL) {
                        reveal = true;
                        continue;
                }
                if (opt == OPT_OUT) {
                        out = optarg;
                        continue;
                }
                int k = kmip_cmd_option(cmd, &co, opt, optarg);
                if (k < 0)
                        return -k;
                if (k == 0)
                        return EXIT_USAGE;
        }
        if (argc - optind != 1)
                return cli_usage_error(cmd, "expected one key id");
        const char *uid = argv[optind];

        /* Create the output file first: no key is fetched if it cannot be written. */
        _cleanup_(closep) int fd = -EBADF;
        if (out) {
                fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
                if (fd < 0) {
                        fprintf(stderr, "%s: cannot create %s: %m\n", cmd, out);
                        return cli_exit_code(negative_errno());
                }
        }

        _cleanup_(kmip_client_freep) struct kmip_client *c = NULL;
        int k = kmip_cmd_connect(cmd, &co, &c);
        if (k) {
                if (out)
                        unlink(out);
                return k;
        }
        _cleanup_(secret_freep) struct secret *key = NULL;
        struct kmip_key_info info;
        int r = kmip_client_get(c, uid, &key, &info);
        if (r < 0) {
                if (out)
                        unlink(out);
                return kmip_cmd_fail(cmd, c, r);
        }
        if (out) {
                r = write_full(fd, key->data, key->size);
                if (r >= 0 && fsync(fd) < 0)
                        r = negative_errno();
                if (r < 0) {
                        unlink(out);
                        fprintf(stderr, "%s: cannot write %s: %s\n", cmd, out, strerror(-r));
                        return cli_exit_code(r);
                }
        }
        printf("Unique Identifier: %s\n", uid);
        printf("Object Type: %s\n", kmip_object_type_name(info.object_type));
        if (info.alg)
                printf("Cryptographic Algorithm: %s\n", kmip_crypto_alg_name(info.alg));
        printf("Cryptographic Length: %d\n", info.bits ? info.bits : (int) key->size * 8);
        if (reveal) {
                char hex[2 * KEY_HEX_MAX + 1];
                if (key->size > KEY_HEX_MAX) {
                        fprintf(stderr, "%s: key of %zu bytes too large to print\n", cmd, key->size);
                        return EXIT_FAILURE_GENERAL;
                }
                hex_encode(key->data, key->size, hex);
                printf("Key Material: %s\n", hex);
                secret_wipe(hex, sizeof(hex));
        } else if (out)
                printf("Key Material: written to %s\n", out);
        else
                printf("Key Material: (hidden; use --reveal or --out FILE)\n");
        return EXIT_OK;
}
