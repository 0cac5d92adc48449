/* vmcrypt kms activate|revoke|destroy: the life cycle of a key. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/kmip-common.h"
#include "kmip/tags.h"

static const char activate_help[] =
        "Usage: vmcrypt kms activate [OPTIONS] UID\n"
        "\n"
        "Make key UID usable for cryptography: its state goes from Pre-Active to Active.\n"
        "Keys made by `vmcrypt kms create` start Pre-Active unless created with --activate.\n";

static const char revoke_help[] =
        "Usage: vmcrypt kms revoke [OPTIONS] UID\n"
        "\n"
        "Revoke key UID. It can no longer encrypt; it may still decrypt, depending on the\n"
        "server. With --reason key-compromise the state becomes Compromised, otherwise\n"
        "Deactivated. A key must be revoked before most servers let it be destroyed.\n"
        "\n"
        "  --reason R     unspecified, key-compromise, ca-compromise, affiliation-changed,\n"
        "                 superseded, cessation-of-operation (default), privilege-withdrawn\n"
        "  --message TEXT why, recorded by the server\n";

static const char destroy_help[] =
        "Usage: vmcrypt kms destroy [OPTIONS] UID\n"
        "\n"
        "Destroy the key material of UID on the server. Every disk wrapped with this key\n"
        "becomes unreadable unless it has another way in (e.g. a recovery passphrase).\n"
        "Most servers refuse to destroy an Active key: revoke it first.\n";

enum { OPT_REASON = 1, OPT_MESSAGE };

static int run(const char *cmd, const char *help, uint32_t op, int argc, char *argv[]) {
        static const struct option opts[] = {
                KMS_COMMON_LONG_OPTIONS,
                { "reason", required_argument, NULL, OPT_REASON },
                { "message", required_argument, NULL, OPT_MESSAGE },
                {},
        };
        struct kmip_conn_opts co = {};
        uint32_t reason = KMIP_REVOKE_CESSATION_OF_OPERATION;
        const char *message = NULL;
        int opt;
        while ((opt = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                if (opt == 'h')
                        return kmip_cmd_help(help);
                if ((opt == OPT_REASON || opt == OPT_MESSAGE) && op != KMIP_OP_REVOKE)
                        return cli_usage_error(cmd, "--reason and --message are for revoke");
                if (opt == OPT_REASON) {
                        if (kmip_revocation_reason_from_name(optarg, &reason) < 0)
                                return cli_usage_error(cmd, "unknown revocation reason '%s'", optarg);
                        continue;
                }
                if (opt == OPT_MESSAGE) {
                        message = optarg;
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

        _cleanup_(kmip_client_freep) struct kmip_client *c = NULL;
        int k = kmip_cmd_connect(cmd, &co, &c);
        if (k)
                return k;
        int r;
        if (op == KMIP_OP_ACTIVATE)
                r = kmip_client_activate(c, uid);
        else if (op == KMIP_OP_REVOKE)
                r = kmip_client_revoke(c, uid, reason, message, 0);
        else
                r = kmip_client_destroy(c, uid);
        return kmip_cmd_fail(cmd, c, r);
}

int kmip_activate_main(int argc, char *argv[]) {
        return run("vmcrypt kms activate", activate_help, KMIP_OP_ACTIVATE, argc, argv);
}

int kmip_revoke_main(int argc, char *argv[]) {
        return run("vmcrypt kms revoke", revoke_help, KMIP_OP_REVOKE, argc, argv);
}

int kmip_destroy_main(int argc, char *argv[]) {
        return run("vmcrypt kms destroy", destroy_help, KMIP_OP_DESTROY, argc, argv);
}
