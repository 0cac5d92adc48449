/* vmcrypt kms locate: find objects by name, type, state and custom attributes. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "cli/kmip-common.h"
#include "kmip/tags.h"

static const char help[] =
        "Usage: vmcrypt kms locate [OPTIONS]\n"
        "\n"
        "Print the unique identifiers of the objects that match every criterion given,\n"
        "one per line. Nothing printed (exit 0) means no match.\n"
        "\n"
        "  --name NAME        the Name attribute\n"
        "  --type TYPE        symmetric-key, secret-data, certificate, ...\n"
        "  --state STATE      pre-active, active, deactivated, compromised, ...\n"
        "  --attr x-NAME=VAL  a custom text attribute; repeatable\n"
        "  --max N            at most N results\n"
        "  --offset N         skip the first N results (KMIP 1.3 and later)\n"
        "\n"
        "Example:\n"
        "  vmcrypt kms locate --config kms.json --state active --attr x-Component=\"Virtual Machine\"\n";

enum { OPT_NAME = 1, OPT_TYPE, OPT_STATE, OPT_ATTR, OPT_MAX, OPT_OFFSET };

static int parse_count(const char *s, int32_t *ret) {
        char *end;
        long v = strtol(s, &end, 10);
        if (*end || v < 0 || v > INT32_MAX)
                return -1;
        *ret = (int32_t) v;
        return 0;
}

int kmip_locate_main(int argc, char *argv[]) {
        static const char cmd[] = "vmcrypt kms locate";
        static const struct option opts[] = {
                KMS_COMMON_LONG_OPTIONS,
                { "name", required_argument, NULL, OPT_NAME },
                { "type", required_argument, NULL, OPT_TYPE },
                { "state", required_argument, NULL, OPT_STATE },
                { "attr", required_argument, NULL, OPT_ATTR },
                { "max", required_argument, NULL, OPT_MAX },
                { "offset", required_argument, NULL, OPT_OFFSET },
                {},
        };
        _cleanup_(ttlv_arena_freep) struct ttlv_arena *a = ttlv_arena_new();
        if (!a)
                return EXIT_FAILURE_GENERAL;
        struct kmip_conn_opts co = {};
        struct kmip_attr_list attrs = {};
        struct kmip_locate_filter f = { .attrs = &attrs };
        int opt;
        while ((opt = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                switch (opt) {
                case 'h':
                        return kmip_cmd_help(help);
                case OPT_NAME:
                        f.name = optarg;
                        continue;
                case OPT_TYPE:
                        if (kmip_object_type_from_name(optarg, &f.object_type) < 0)
                                return cli_usage_error(cmd, "unknown object type '%s'", optarg);
                        continue;
                case OPT_STATE:
                        if (kmip_state_from_name(optarg, &f.state) < 0)
                                return cli_usage_error(cmd, "unknown state '%s'", optarg);
                        continue;
                case OPT_ATTR:
                        if (kmip_cmd_parse_attr(a, optarg, &attrs) < 0)
                                return cli_usage_error(cmd, "--attr wants x-NAME=VALUE, not '%s'", optarg);
                        continue;
                case OPT_MAX:
                        if (parse_count(optarg, &f.max_items) < 0)
                                return cli_usage_error(cmd, "--max wants a number");
                        continue;
                case OPT_OFFSET:
                        if (parse_count(optarg, &f.offset_items) < 0)
                                return cli_usage_error(cmd, "--offset wants a number");
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

        _cleanup_(kmip_client_freep) struct kmip_client *c = NULL;
        int k = kmip_cmd_connect(cmd, &co, &c);
        if (k)
                return k;
        char **uids = NULL;
        size_t n = 0;
        int r = kmip_client_locate(c, &f, &uids, &n);
        if (r < 0)
                return kmip_cmd_fail(cmd, c, r);
        for (size_t i = 0; i < n; i++)
                printf("%s\n", uids[i]);
        kmip_strv_free(uids);
        return EXIT_OK;
}
