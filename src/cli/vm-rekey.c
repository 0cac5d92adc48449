/* `vmcrypt vm rekey`: a new KEK for a whole VM; --deep: new volume keys too. */
#include <stdio.h>

#include "cli/cli.h"
#include "cli/vm-common.h"

static const char help[] =
"Usage: vmcrypt vm rekey [OPTIONS] VM\n"
"\n"
"Give a shut-off VM a new KEK and re-wrap every encrypted disk's unlock secret\n"
"under it, without touching the data (a shallow rekey, as 'vmcrypt disk rekey'\n"
"does for one disk). The new KEK is created at the key provider with the same\n"
"tags as 'vmcrypt vm encrypt' gives a VM's KEK (x-Name, x-Identifier and the\n"
"vSphere attributes). The VM home follows the disks: a UEFI VM's encrypted NVRAM\n"
"is re-wrapped like a disk, and the vTPM's state secret (vmcrypt vm add-vtpm) is\n"
"re-wrapped under the new KEK. The secrets themselves, the domain XML's libvirt\n"
"secret UUIDs and the vTPM's state stay as they are. The old KEK is retired\n"
"(revoked, then destroyed) once nothing uses it.\n"
"\n"
"With --deep every disk also gets a new volume key: its data is re-encrypted in\n"
"place (a data pass per disk, crash-safe like 'vmcrypt disk reencrypt').\n"
"\n"
"Crashes: the new KEK is recorded in the domain's vmcrypt metadata before the\n"
"first disk moves to it and the record is removed after the last. Killed at any\n"
"point, running the command again finishes the same rekey: disks already under\n"
"the new KEK are skipped, a disk's interrupted re-wrap or data pass is finished.\n"
"While a rekey is unfinished, 'vmcrypt vm encrypt' and 'attach-disk' use the new\n"
"KEK, and 'vmcrypt vm start' works (each disk opens with the KEK it names).\n"
"\n"
"The old KEK is no longer used by the VM's disks; 'vmcrypt provider keks\n"
"--orphans' lists KEKs no disk uses. Plain disks, and disks vmcrypt cannot read\n"
"(qcow2, network, read-only), are left alone and named.\n"
"\n"
"Options:\n"
VM_HELP_CONNECT
"  --deep                   also a new volume key per disk (a data pass)\n"
"  --provider NAME          create the new KEK at this key provider (default: the\n"
"                           VM's)\n"
VM_HELP_PROVIDERS
VM_HELP_MAX_RATE
"  --progress auto|bar|none progress of --deep's data passes on stderr\n"
"  --manager URL, --manager-config FILE\n"
"                           do it through vmcrypt-manager and the VM's host agent\n"
"                           instead of this host's libvirt (the manager's options:\n"
"                           add --help after them)\n"
"  -h, --help               show this help\n"
"\n"
"Examples:\n"
"  vmcrypt vm rekey web1\n"
"  vmcrypt vm rekey --deep web1\n"
"\n"
"Exit status: 0 every encrypted disk under the new KEK; 2 usage, or no encrypted\n"
"disk; 4 no such domain; 5 the domain runs, or a job of another kind is on a\n"
"disk; 6 no space; 7 key server or libvirt unreachable; 8 access denied by the\n"
"key server; 1 other errors.\n";

int vm_rekey_main(int argc, char *argv[]) {
        const char *cmd = "vmcrypt vm rekey";
        struct vm_opts o;
        int r = vm_opts_parse(cmd, VOPT_DEEP | VOPT_KEK | VOPT_PROVIDERS | VOPT_PROGRESS | VOPT_MAX_RATE, help, 1, 1,
                              argc, argv, &o);
        if (r >= 0)
                return r;
        if (o.kek)
                return cli_usage_error(cmd, "--kek is not taken: vm rekey creates the VM's new KEK itself");
        struct vm_params p;
        vm_opts_params(&o, o.args[0], &p);
        if (o.progress) {
                p.progress = vm_progress_print;
                p.progress_userdata = (void *) "new volume key for";
        }
        struct vm_result res;
        struct error err;
        r = vm_rekey(&p, o.deep, &res, &err);
        if (r < 0)
                return vm_report(cmd, r, &err);
        vm_print_result(o.deep ? "rekeyed, new volume key" : "rekeyed", &res);
        printf("%s: KEK %s at provider %s%s%s%s\n", res.name, res.kek, res.provider,
               res.resumed ? " (an interrupted rekey finished)" : res.kek_created ? " (new)" : "",
               res.old_kek[0] ? ", was " : "", res.old_kek);
        return EXIT_OK;
}
