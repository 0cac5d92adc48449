/* `vmcrypt disk`: the table of disk subcommands; one file per subcommand. */
#include "cli/cli.h"
#include "cli/disk-common.h"
#include "cli/disk-keys.h"

static const struct cli_command disk_commands[] = {
        { "encrypt", disk_encrypt_main, "encrypt an image or device in place" },
        { "decrypt", disk_decrypt_main, "decrypt in place back to the original bytes" },
        { "reencrypt", disk_reencrypt_main, "deep rekey in place with a new volume key" },
        { "convert", disk_convert_main, "convert between LUKS2 and LUKS1, header only" },
        { "resume", disk_resume_main, "finish an interrupted encrypt/decrypt/reencrypt/convert" },
        { "format", disk_format_main, "write a new empty encrypted volume (destroys data)" },
        { "create", disk_create_main, "create a new sparse encrypted image file" },
        { "status", disk_status_main, "show the encryption state read from the disk" },
        { "unlock", disk_unlock_main, "unwrap the disk's secret via its key provider, pipe it to a command" },
        { "bind", disk_bind_main, "bind an existing LUKS volume to a key provider" },
        { "unbind", disk_unbind_main, "remove a vmcrypt token and its keyslot" },
        { "rekey", disk_rekey_main, "re-wrap the unlock secret under a new KEK (no data pass)" },
        { "recovery-key", disk_recovery_key_main, "add a break-glass recovery passphrase" },
        { NULL, NULL, NULL },
};

int disk_main(int argc, char *argv[]) {
        return cli_dispatch("vmcrypt disk", disk_commands, argc, argv);
}
