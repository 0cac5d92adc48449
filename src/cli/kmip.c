/* `vmcrypt kms`: the KMIP client for any KMIP key server (named kmip-* here, as
 * src/kms is the key server). This file is only the table of
 * subcommands; each lives in its own kmip-*.c file. */
#include "cli/cli.h"
#include "cli/kmip-common.h"

static const struct cli_command kmip_commands[] = {
        { "create", kmip_create_main, "create an AES key on the server, print its id" },
        { "register", kmip_register_main, "store existing key material on the server" },
        { "get", kmip_get_main, "fetch a key (shown only with --reveal, or written with --out)" },
        { "locate", kmip_locate_main, "find keys by name, type, state or custom attributes" },
        { "attrs", kmip_attrs_main, "show, add, modify or delete attributes of an object" },
        { "activate", kmip_activate_main, "make a key usable (Pre-Active -> Active)" },
        { "revoke", kmip_revoke_main, "revoke a key (Deactivated or Compromised)" },
        { "destroy", kmip_destroy_main, "destroy a key's material" },
        { "wrap", kmip_wrap_main, "encrypt data with a key that never leaves the server" },
        { "unwrap", kmip_unwrap_main, "decrypt what wrap produced" },
        { "query", kmip_query_main, "show what the server is and supports" },
        { NULL, NULL, NULL },
};

int kmip_main(int argc, char *argv[]) {
        return cli_dispatch("vmcrypt kms", kmip_commands, argc, argv);
}
