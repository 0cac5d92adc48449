/* vmcrypt kms attrs: show and edit the attributes of an object. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/kmip-common.h"

static const char help[] =
        "Usage: vmcrypt kms attrs [OPTIONS] UID [NAME...]\n"
        "\n"
        "Print the attributes of object UID (all of them, or only the NAMEs given, e.g.\n"
        "State \"Cryptographic Length\" x-Vendor), one \"Name: value\" per line. Attributes\n"
        "the object does not have are simply not printed.\n"
        "\n"
        "With an edit option, change the object first (edits run before the listing):\n"
        "  --add x-NAME=VAL      add a custom text attribute; repeatable (one batch)\n"
        "  --modify x-NAME=VAL   change the value of a custom attribute\n"
        "  --delete NAME         delete an attribute\n";

enum { OPT_ADD = 1, OPT_MODIFY, OPT_DELETE };

int kmip_attrs_main(int argc, char *argv[]) {
        static const char cmd[] = "vmcrypt kms attrs";
        static const struct option opts[] = {
                KMS_COMMON_LONG_OPTIONS,
                { "add", required_argument, NULL, OPT_ADD },
                { "modify", required_argument, NULL, OPT_MODIFY },
                { "delete", required_argument, NULL, OPT_DELETE },
                {},
        };
        _cleanup_(ttlv_arena_freep) struct ttlv_arena *a = ttlv_arena_new();
        if (!a)
                return EXIT_FAILURE_GENERAL;
        struct kmip_conn_opts co = {};
        struct kmip_attr_list add = {}, modify = {};
        const char *del = NULL;
        int opt;
        while ((opt = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                switch (opt) {
                case 'h':
                        return kmip_cmd_help(help);
                case OPT_ADD:
                        if (kmip_cmd_parse_attr(a, optarg, &add) < 0)
                                return cli_usage_error(cmd, "--add wants x-NAME=VALUE, not '%s'", optarg);
                        continue;
                case OPT_MODIFY:
                        if (kmip_cmd_parse_attr(a, optarg, &modify) < 0)
                                return cli_usage_error(cmd, "--modify wants x-NAME=VALUE, not '%s'", optarg);
                        continue;
                case OPT_DELETE:
                        del = optarg;
                        continue;
                }
                int k = kmip_cmd_option(cmd, &co, opt, optarg);
                if (k < 0)
                        return -k;
                if (k == 0)
                        return EXIT_USAGE;
        }
        if (argc - optind < 1)
                return cli_usage_error(cmd, "expected a key id");
        const char *uid = argv[optind];

        _cleanup_(kmip_client_freep) struct kmip_client *c = NULL;
        int k = kmip_cmd_connect(cmd, &co, &c);
        if (k)
                return k;
        int r = kmip_client_add_attributes(c, uid, &add);
        for (size_t i = 0; r >= 0 && i < modify.n; i++)
                r = kmip_client_modify_attribute(c, uid, &modify.items[i]);
        if (r >= 0 && del)
                r = kmip_client_delete_attribute(c, uid, del, -1);
        if (r < 0)
                return kmip_cmd_fail(cmd, c, r);

        struct kmip_attr_list list;
        r = kmip_client_get_attributes(c, uid, (const char *const *) argv + optind + 1,
                                       (size_t) (argc - optind - 1), a, &list);
        if (r < 0)
                return kmip_cmd_fail(cmd, c, r);
        for (size_t i = 0; i < list.n; i++)
                kmip_cmd_print_attr(stdout, &list.items[i]);
        return EXIT_OK;
}
