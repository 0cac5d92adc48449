/* vmcrypt kms: talk to any KMIP key server. This file is only the table of
 * subcommands; each lives in its own kms-*.c file. */
#include "cli/cli.h"
#include "cli/kms-common.h"

static const struct cli_command kms_commands[] = {
        { "create", kms_create_main, "create an AES key on the server, print its id" },
        { "register", kms_register_main, "store existing key material on the server" },
        { "get", kms_get_main, "fetch a key (shown only with --reveal, or written with --out)" },
        { "locate", kms_locate_main, "find keys by name, type, state or custom attributes" },
        { "attrs", kms_attrs_main, "show, add, modify or delete attributes of an object" },
        { "activate", kms_activate_main, "make a key usable (Pre-Active -> Active)" },
        { "revoke", kms_revoke_main, "revoke a key (Deactivated or Compromised)" },
        { "destroy", kms_destroy_main, "destroy a key's material" },
        { "wrap", kms_wrap_main, "encrypt data with a key that never leaves the server" },
        { "unwrap", kms_unwrap_main, "decrypt what wrap produced" },
        { "query", kms_query_main, "show what the server is and supports" },
        { NULL, NULL, NULL },
};

int kms_main(int argc, char *argv[]) {
        return cli_dispatch("vmcrypt kms", kms_commands, argc, argv);
}
