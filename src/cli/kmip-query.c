/* vmcrypt kms query: what is this server and what does it support. */
#include <getopt.h>
#include <stdio.h>

#include "cli/cli.h"
#include "cli/kmip-common.h"
#include "kmip/tags.h"

static const char help[] =
        "Usage: vmcrypt kms query [OPTIONS]\n"
        "\n"
        "Connect, then print the server's KMIP versions (DiscoverVersions), vendor,\n"
        "operations and object types (Query). A quick check that the connection settings\n"
        "work.\n";

int kmip_query_main(int argc, char *argv[]) {
        static const char cmd[] = "vmcrypt kms query";
        static const struct option opts[] = { KMS_COMMON_LONG_OPTIONS, {} };
        struct kmip_conn_opts co = {};
        int opt;
        while ((opt = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                if (opt == 'h')
                        return kmip_cmd_help(help);
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
        struct kmip_version v[16];
        size_t n;
        int r = kmip_client_discover_versions(c, v, ELEMENTSOF(v), &n);
        if (r < 0)
                return kmip_cmd_fail(cmd, c, r);
        printf("Server: %s\nVersions:", kmip_client_endpoint(c));
        for (size_t i = 0; i < n; i++)
                printf(" %d.%d", v[i].major, v[i].minor);
        printf("\n");

        _cleanup_(ttlv_arena_freep) struct ttlv_arena *a = ttlv_arena_new();
        if (!a)
                return EXIT_FAILURE_GENERAL;
        struct kmip_query_result q;
        r = kmip_client_query(c, a, &q);
        if (r < 0)
                return kmip_cmd_fail(cmd, c, r);
        if (q.vendor)
                printf("Vendor: %s\n", q.vendor);
        printf("Operations:");
        for (size_t i = 0; i < q.n_operations; i++)
                printf("%s%s", i ? ", " : " ", kmip_operation_name(q.operations[i]));
        printf("\nObject types:");
        for (size_t i = 0; i < q.n_object_types; i++)
                printf("%s%s", i ? ", " : " ", kmip_object_type_name(q.object_types[i]));
        printf("\n");
        return EXIT_OK;
}
