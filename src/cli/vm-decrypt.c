/* `vmcrypt vm decrypt`: back to plain disks, data disks first. */
#include <stdio.h>

#include "cli/cli.h"
#include "cli/vm-common.h"

static const char help[] =
"Usage: vmcrypt vm decrypt [OPTIONS] VM\n"
"\n"
"Decrypt the disks of a shut-off, persistent domain in place back to their\n"
"original bytes, the data disks first and the OS disk last, and take each disk's\n"
"<encryption> out of the domain XML once the disk is plain. Each disk's key comes\n"
"from its key provider (its vmcrypt binding). A disk that is plain already (for\n"
"instance decrypted with cryptsetup) only has its XML fixed. A kill at any point\n"
"loses nothing: run the command again (or 'vmcrypt disk resume'). With\n"
"--volume-type all the NVRAM of a UEFI VM comes last, as a disk does. Each disk\n"
"(and the NVRAM) stops using the VM's KEK; with the last one that the key server\n"
"records for it, the KEK is retired (revoked, then destroyed; see 'vmcrypt\n"
"provider keks'). A VM with a vTPM added by 'vmcrypt vm add-vtpm' is not\n"
"decrypted (exit 5) while the run would leave no disk encrypted: run 'vmcrypt vm\n"
"remove-vtpm' first.\n"
"\n"
"Options:\n"
VM_HELP_CONNECT
"  --volume-type TYPE       which disks: all (default), os or data\n"
VM_HELP_PROVIDERS
VM_HELP_MAX_RATE
"  --progress auto|bar|none progress on stderr (auto: when it is a terminal)\n"
"  --manager URL, --manager-config FILE\n"
"                           do it through vmcrypt-manager and the VM's host agent\n"
"                           instead of this host's libvirt (the manager's options:\n"
"                           add --help after them)\n"
"  -h, --help               show this help\n"
"\n"
"Examples:\n"
"  vmcrypt vm decrypt web1\n"
"  vmcrypt vm decrypt --volume-type data web1\n"
"\n"
"Exit status: 0 every selected disk plain and unwired; 2 usage; 4 no such domain;\n"
"5 the domain runs; 7 key server or libvirt unreachable; 8 access denied by the\n"
"key server; 1 other errors.\n";

int vm_decrypt_main(int argc, char *argv[]) {
        const char *cmd = "vmcrypt vm decrypt";
        struct vm_opts o;
        int r = vm_opts_parse(cmd, VOPT_VOLUMES | VOPT_PROVIDERS | VOPT_PROGRESS | VOPT_MAX_RATE, help, 1, 1, argc, argv, &o);
        if (r >= 0)
                return r;
        struct vm_params p;
        vm_opts_params(&o, o.args[0], &p);
        if (o.progress) {
                p.progress = vm_progress_print;
                p.progress_userdata = (void *) "decrypting";
        }
        struct vm_result res;
        struct error err;
        r = vm_decrypt(&p, &res, &err);
        if (r < 0)
                return vm_report(cmd, r, &err);
        vm_print_result("decrypted", &res);
        return EXIT_OK;
}
