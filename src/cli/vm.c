/* `vmcrypt vm`: the table of VM subcommands; one file per subcommand. */
#include "cli/cli.h"
#include "cli/vm-common.h"

static const struct cli_command vm_commands[] = {
        { "list", vm_list_main, "the domains and their disks, with each disk's encryption state" },
        { "show", vm_show_main, "one domain: disks, formats, the OS disk, encryption, keys" },
        { "status", vm_status_main, "OsVolumeEncrypted / DataVolumesEncrypted and job progress" },
        { "encrypt", vm_encrypt_main, "encrypt a shut-off VM's disks in place, one KEK per VM" },
        { "decrypt", vm_decrypt_main, "decrypt a shut-off VM's disks in place, data disks first" },
        { "start", vm_start_main, "start an encrypted VM: keys from its provider, short-lived secrets" },
        { "attach-disk", vm_attach_main, "attach a raw data disk, encrypted with the VM's KEK if asked" },
        { "set", vm_set_main, "change a VM's vmcrypt settings (--auto-encrypt on|off)" },
        { "rekey", vm_rekey_main, "a new VM KEK for every disk; --deep: new volume keys too" },
        { NULL, NULL, NULL },
};

int vm_main(int argc, char *argv[]) {
        return cli_dispatch("vmcrypt vm", vm_commands, argc, argv);
}
