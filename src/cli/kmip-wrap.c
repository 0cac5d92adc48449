/* vmcrypt kms wrap|unwrap: encrypt a small secret with a key that never leaves the
 * server (its Encrypt/Decrypt operations), in vmcrypt's wrap blob format. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/kmip-common.h"
#include "kmip/tags.h"
#include "shared/fd-util.h"
#include "shared/key-input.h"

static const char wrap_help[] =
        "Usage: vmcrypt kms wrap [OPTIONS] UID\n"
        "\n"
        "Encrypt data (a key or passphrase, up to 8 KiB) with key UID on the server and\n"
        "write the result, a self-describing blob (mode, IV, tag, ciphertext), to standard\n"
        "output or --out. The key UID never leaves the server. `vmcrypt kms unwrap UID`\n"
        "reverses it.\n"
        "\n"
        "  --in FILE      read the data from FILE (default: standard input)\n"
        "  --out FILE     write the blob to FILE (a new file, mode 0600; refused if it exists)\n"
        "  --mode MODE    gcm (default), aes-key-wrap-padding (RFC 5649), nist-key-wrap\n"
        "                 (RFC 3394) or cbc; the server must support it\n"
        "  --random-iv    let the server choose the IV (vmcrypt-kms takes a chosen IV\n"
        "                 only from identities that may also Decrypt with the key)\n"
        "\n"
        "Example:\n"
        "  head -c32 /dev/urandom > secret; vmcrypt kms wrap --config kms.json --in secret KEK-ID > secret.wrapped\n";

static const char unwrap_help[] =
        "Usage: vmcrypt kms unwrap [OPTIONS] UID\n"
        "\n"
        "Decrypt a blob made by `vmcrypt kms wrap` with key UID on the server and write the\n"
        "data to standard output or --out (created with mode 0600).\n"
        "\n"
        "  --in FILE      read the blob from FILE (default: standard input)\n"
        "  --out FILE     write the data to FILE (a new file: refused if it exists)\n"
        "\n"
        "Exit status 9 when the blob was altered or belongs to another key.\n";

enum { OPT_IN = 1, OPT_OUT, OPT_MODE, OPT_RANDOM_IV };

static int write_output(const char *cmd, const char *out, const uint8_t *data, size_t size) {
        _cleanup_(closep) int fd = -EBADF;
        int target = STDOUT_FILENO;
        if (out) {
                /* Never into an existing file: it may be another user's (or a link
                 * to one), and the data may be a key. */
                fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
                if (fd < 0) {
                        fprintf(stderr, "%s: cannot create %s: %m\n", cmd, out);
                        return cli_exit_code(negative_errno());
                }
                target = fd;
        }
        int r = write_full(target, data, size);
        if (r >= 0 && out && fsync(fd) < 0)
                r = negative_errno();
        if (r < 0) {
                if (out)
                        (void) unlink(out);
                fprintf(stderr, "%s: cannot write %s: %s\n", cmd, out ? out : "standard output", strerror(-r));
                return cli_exit_code(r);
        }
        return EXIT_OK;
}

static int run(const char *cmd, const char *help, bool wrap, int argc, char *argv[]) {
        static const struct option opts[] = {
                KMS_COMMON_LONG_OPTIONS,
                { "in", required_argument, NULL, OPT_IN },
                { "out", required_argument, NULL, OPT_OUT },
                { "mode", required_argument, NULL, OPT_MODE },
                { "random-iv", no_argument, NULL, OPT_RANDOM_IV },
                {},
        };
        struct kmip_conn_opts co = {};
        struct kmip_crypto_params p = { .mode = KMIP_MODE_GCM, .tag_length = 16 };
        const char *in = "-", *out = NULL;
        int opt;
        while ((opt = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                switch (opt) {
                case 'h':
                        return kmip_cmd_help(help);
                case OPT_IN:
                        in = optarg;
                        continue;
                case OPT_OUT:
                        out = optarg;
                        continue;
                case OPT_MODE:
                        if (!wrap)
                                return cli_usage_error(cmd, "--mode is for wrap (the blob records it)");
                        if (kmip_block_cipher_mode_from_name(optarg, &p.mode) < 0 ||
                            (p.mode != KMIP_MODE_GCM && p.mode != KMIP_MODE_AES_KEY_WRAP_PADDING &&
                             p.mode != KMIP_MODE_NIST_KEY_WRAP && p.mode != KMIP_MODE_CBC))
                                return cli_usage_error(cmd, "--mode is gcm, aes-key-wrap-padding, nist-key-wrap or cbc");
                        if (p.mode == KMIP_MODE_CBC)
                                p.padding = KMIP_PADDING_PKCS5;
                        continue;
                case OPT_RANDOM_IV:
                        p.random_iv = true;
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

        _cleanup_(secret_freep) struct secret *input = NULL;
        int r = key_input_read_file(in, &input);
        if (r < 0) {
                fprintf(stderr, "%s: cannot read %s: %s\n", cmd, strcmp(in, "-") == 0 ? "standard input" : in,
                        r == -EINVAL ? "empty input" : r == -EFBIG ? "more than 8 KiB" : strerror(-r));
                return cli_exit_code(r);
        }

        _cleanup_(kmip_client_freep) struct kmip_client *c = NULL;
        int k = kmip_cmd_connect(cmd, &co, &c);
        if (k)
                return k;
        if (wrap) {
                _cleanup_(freep) uint8_t *blob = NULL;
                size_t n = 0;
                r = kmip_client_wrap(c, uid, &p, input, &blob, &n);
                if (r < 0)
                        return kmip_cmd_fail(cmd, c, r);
                return write_output(cmd, out, blob, n);
        }
        _cleanup_(secret_freep) struct secret *plain = NULL;
        r = kmip_client_unwrap(c, uid, input->data, input->size, &plain);
        if (r < 0)
                return kmip_cmd_fail(cmd, c, r);
        return write_output(cmd, out, plain->data, plain->size);
}

int kmip_wrap_main(int argc, char *argv[]) {
        return run("vmcrypt kms wrap", wrap_help, true, argc, argv);
}

int kmip_unwrap_main(int argc, char *argv[]) {
        return run("vmcrypt kms unwrap", unwrap_help, false, argc, argv);
}
