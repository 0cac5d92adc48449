/* vmcrypt kms create|register: make a key on the server, or store one there. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/kmip-common.h"
#include "kmip/tags.h"
#include "shared/key-input.h"

static const char create_help[] =
        "Usage: vmcrypt kms create [OPTIONS]\n"
        "\n"
        "Create a symmetric AES key on the KMIP server and print its unique identifier.\n"
        "The key material stays on the server; fetch it with `vmcrypt kms get` or use it\n"
        "in place with `vmcrypt kms wrap`.\n"
        "\n"
        "  --name NAME        a Name attribute to find the key by later\n"
        "  --length BITS      128 or 256 (default 256)\n"
        "  --usage LIST       comma-separated: encrypt, decrypt, wrap, unwrap\n"
        "                     (default encrypt,decrypt, as vCenter asks)\n"
        "  --attr x-NAME=VAL  a custom text attribute; repeatable\n"
        "  --activate         activate the key right away\n"
        "\n"
        "Example:\n"
        "  vmcrypt kms create --config kms.json --name vm42-kek --attr x-Vendor=vmcrypt --activate\n";

static const char register_help[] =
        "Usage: vmcrypt kms register [OPTIONS] --in FILE\n"
        "\n"
        "Store existing key material (read from FILE, or - for standard input) on the\n"
        "server and print the new object's unique identifier.\n"
        "\n"
        "  --in FILE          the raw key bytes (16 or 32 for AES; any size for secret data)\n"
        "  --type TYPE        symmetric-key (default) or secret-data\n"
        "  --name NAME        a Name attribute\n"
        "  --usage LIST       as for create\n"
        "  --attr x-NAME=VAL  a custom text attribute; repeatable\n";

enum { OPT_NAME = 1, OPT_LENGTH, OPT_USAGE, OPT_ATTR, OPT_ACTIVATE, OPT_IN, OPT_TYPE };

static int parse_usage(const char *s, uint32_t *ret) {
        uint32_t mask = 0;
        char buf[256];
        if (strlen(s) >= sizeof(buf))
                return -1;
        strcpy(buf, s);
        for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                if (strcmp(t, "encrypt") == 0)
                        mask |= KMIP_USAGE_ENCRYPT;
                else if (strcmp(t, "decrypt") == 0)
                        mask |= KMIP_USAGE_DECRYPT;
                else if (strcmp(t, "wrap") == 0)
                        mask |= KMIP_USAGE_WRAP_KEY;
                else if (strcmp(t, "unwrap") == 0)
                        mask |= KMIP_USAGE_UNWRAP_KEY;
                else
                        return -1;
        }
        if (!mask)
                return -1;
        *ret = mask;
        return 0;
}

static int run(const char *cmd, const char *help, bool reg, int argc, char *argv[]) {
        static const struct option opts[] = {
                KMS_COMMON_LONG_OPTIONS,
                { "name", required_argument, NULL, OPT_NAME },
                { "length", required_argument, NULL, OPT_LENGTH },
                { "usage", required_argument, NULL, OPT_USAGE },
                { "attr", required_argument, NULL, OPT_ATTR },
                { "activate", no_argument, NULL, OPT_ACTIVATE },
                { "in", required_argument, NULL, OPT_IN },
                { "type", required_argument, NULL, OPT_TYPE },
                {},
        };
        _cleanup_(ttlv_arena_freep) struct ttlv_arena *a = ttlv_arena_new();
        if (!a)
                return EXIT_FAILURE_GENERAL;
        struct kmip_conn_opts co = {};
        struct kmip_attr_list extra = {};
        const char *name = NULL, *in = NULL;
        int32_t bits = 256;
        uint32_t usage = KMIP_USAGE_ENCRYPT | KMIP_USAGE_DECRYPT, type = KMIP_OBJECT_SYMMETRIC_KEY;
        bool activate = false;
        int opt;
        while ((opt = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                switch (opt) {
                case 'h':
                        return kmip_cmd_help(help);
                case OPT_NAME:
                        name = optarg;
                        continue;
                case OPT_LENGTH:
                        if (reg || (strcmp(optarg, "128") != 0 && strcmp(optarg, "256") != 0))
                                return cli_usage_error(cmd, "--length is 128 or 256 (create only)");
                        bits = atoi(optarg);
                        continue;
                case OPT_USAGE:
                        if (parse_usage(optarg, &usage) < 0)
                                return cli_usage_error(cmd, "--usage wants a list of encrypt, decrypt, wrap, unwrap");
                        continue;
                case OPT_ATTR:
                        if (kmip_cmd_parse_attr(a, optarg, &extra) < 0)
                                return cli_usage_error(cmd, "--attr wants x-NAME=VALUE, not '%s'", optarg);
                        continue;
                case OPT_ACTIVATE:
                        activate = true;
                        continue;
                case OPT_IN:
                        if (!reg)
                                return cli_usage_error(cmd, "--in is for register");
                        in = optarg;
                        continue;
                case OPT_TYPE:
                        if (!reg || kmip_object_type_from_name(optarg, &type) < 0 ||
                            (type != KMIP_OBJECT_SYMMETRIC_KEY && type != KMIP_OBJECT_SECRET_DATA))
                                return cli_usage_error(cmd, "--type is symmetric-key or secret-data (register only)");
                        continue;
                }
                int k = kmip_cmd_option(cmd, &co, opt, optarg);
                if (k < 0)
                        return -k;
                if (k == 0)
                        return EXIT_USAGE;
        }
        if (optind != argc)
                return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
        if (reg && !in)
                return cli_usage_error(cmd, "--in FILE is required (- for standard input)");

        _cleanup_(secret_freep) struct secret *material = NULL;
        if (reg) {
                int r = key_input_read_file(in, &material);
                if (r < 0) {
                        fprintf(stderr, "%s: cannot read key material from %s: %s\n", cmd, in, strerror(-r));
                        return cli_exit_code(r);
                }
                if (type == KMIP_OBJECT_SYMMETRIC_KEY && material->size != 16 && material->size != 32)
                        return cli_usage_error(cmd, "an AES key has 16 or 32 bytes, %s has %zu", in, material->size);
        }

        _cleanup_(kmip_client_freep) struct kmip_client *c = NULL;
        int k = kmip_cmd_connect(cmd, &co, &c);
        if (k)
                return k;
        _cleanup_(freep) char *uid = NULL;
        int r = reg ? kmip_client_register(c, type, KMIP_ALG_AES, usage, material, name, &extra, &uid)
                    : kmip_client_create(c, KMIP_ALG_AES, bits, usage, name, &extra, &uid);
        if (r < 0)
                return kmip_cmd_fail(cmd, c, r);
        if (activate) {
                r = kmip_client_activate(c, uid);
                if (r < 0) {
                        fprintf(stderr, "%s: created %s but could not activate it\n", cmd, uid);
                        return kmip_cmd_fail(cmd, c, r);
                }
        }
        printf("%s\n", uid);
        return EXIT_OK;
}

int kmip_create_main(int argc, char *argv[]) {
        return run("vmcrypt kms create", create_help, false, argc, argv);
}

int kmip_register_main(int argc, char *argv[]) {
        return run("vmcrypt kms register", register_help, true, argc, argv);
}
