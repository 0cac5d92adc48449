/* `vmcrypt vm`: the table of VM subcommands; one file per subcommand. */
#include "cli/cli.h"
#include "cli/vm-common.h"
#include "cli/manager-common.h"

#include <string.h>

static const struct cli_command vm_commands[] = {
        { "list", vm_list_main, "the domains and their disks, with each disk's encryption state" },
        { "show", vm_show_main, "one domain: disks, formats, the OS disk, encryption, keys" },
        { "status", vm_status_main, "OsVolumeEncrypted / DataVolumesEncrypted and job progress" },
        { "encrypt", vm_encrypt_main, "encrypt a shut-off VM's disks in place, one KEK per VM" },
        { "decrypt", vm_decrypt_main, "decrypt a shut-off VM's disks in place, data disks first" },
        { "start", vm_start_main, "start an encrypted VM: keys from its provider, short-lived secrets" },
        { "check", vm_check_main, "would the VM start here? every key unwrapped and proved, none used" },
        { "attach-disk", vm_attach_main, "attach a raw data disk, encrypted with the VM's KEK if asked" },
        { "set", vm_set_main, "change a VM's vmcrypt settings (--auto-encrypt on|off)" },
        { "rekey", vm_rekey_main, "a new VM KEK for every disk; --deep: new volume keys too" },
        { "add-vtpm", vm_add_vtpm_main, "give an encrypted VM a vTPM whose state its KEK protects" },
        { "remove-vtpm", vm_remove_vtpm_main, "remove vmcrypt's vTPM and its state from a shut-off VM" },
        { NULL, NULL, NULL },
};

int vm_main(int argc, char *argv[]) {
        /* With a manager, encrypt, decrypt, rekey, start and status go through it (and its host
         * agents); without one they work on this host's libvirt. */
        if (argc > 1 && manager_wanted(argc - 1, argv + 1) &&
            (strcmp(argv[1], "encrypt") == 0 || strcmp(argv[1], "decrypt") == 0 || strcmp(argv[1], "rekey") == 0 ||
             strcmp(argv[1], "start") == 0 || strcmp(argv[1], "status") == 0))
                return vm_manager_main(argv[1], argc - 1, argv + 1);
        return cli_dispatch("vmcrypt vm", vm_commands, argc, argv);
}
