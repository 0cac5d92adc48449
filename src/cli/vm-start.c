/* `vmcrypt vm start`: start an encrypted VM with short-lived libvirt secrets. */
#include <stdio.h>

#include "cli/cli.h"
#include "cli/vm-common.h"

static const char help[] =
"Usage: vmcrypt vm start [OPTIONS] VM\n"
"\n"
"Start a domain whose disks 'vmcrypt vm encrypt' encrypted. For each disk whose\n"
"domain XML has <encryption>, the disk's key provider unwraps its unlock secret\n"
"(the KEK never leaves a KMIP server that can Encrypt/Decrypt); vmcrypt defines\n"
"the libvirt secret the XML names as ephemeral (never written to disk) and\n"
"private (no API reads it back), sets its value, starts the domain, and\n"
"undefines the secrets as soon as QEMU runs with the keys. An encrypted NVRAM\n"
"is handled like a disk; a vTPM added by 'vmcrypt vm add-vtpm' has its state\n"
"secret unwrapped the same way and given to libvirt (usage vtpm) for swtpm.\n"
"\n"
"Nothing starts unless every disk can be opened: a disk with a job in progress, a\n"
"domain XML that does not match its disk, or a key provider that refuses (KEK\n"
"revoked or destroyed, key server unreachable, access denied) stops the start,\n"
"and the message names the disk (or the NVRAM or the vTPM), the KEK and the\n"
"reason. 'vmcrypt vm check VM' runs the same checks and key requests without\n"
"starting, and reports every disk.\n"
"\n"
"'virsh start' does not work on such a domain: the secrets it needs exist only\n"
"during 'vmcrypt vm start'. libvirt needs them again for disk hot-plug, block\n"
"jobs (blockcopy, blockcommit, snapshots) and migration; see docs/vm.md.\n"
"\n"
"Options:\n"
VM_HELP_CONNECT
VM_HELP_PROVIDERS
"  --manager URL, --manager-config FILE\n"
"                           do it through vmcrypt-manager and the VM's host agent\n"
"                           instead of this host's libvirt (the manager's options:\n"
"                           add --help after them)\n"
"  -h, --help               show this help\n"
"\n"
"Examples:\n"
"  vmcrypt vm start web1\n"
"  vmcrypt vm start web1 --manager-config admin.conf --wait\n"
"\n"
"Exit status: 0 started; 2 usage; 3 wrong key; 4 no such domain, or KEK\n"
"destroyed; 5 running already, or a disk job in progress; 7 key server or\n"
"libvirt unreachable; 8 KEK revoked or access denied; 9 domain XML and disk\n"
"disagree; 1 other errors.\n";

int vm_start_main(int argc, char *argv[]) {
        const char *cmd = "vmcrypt vm start";
        struct vm_opts o;
        int r = vm_opts_parse(cmd, VOPT_PROVIDERS, help, 1, 1, argc, argv, &o);
        if (r >= 0)
                return r;
        struct vm_params p;
        vm_opts_params(&o, o.args[0], &p);
        struct vm_result res;
        struct error err;
        r = vm_start(&p, &res, &err);
        if (r < 0)
                return vm_report(cmd, r, &err);
        vm_print_result("", &res);
        if (res.vtpm_unlocked)
                printf("%s: vTPM state key released to swtpm\n", res.name);
        if (res.qemu_pid > 0)
                printf("%s: started, QEMU PID %d\n", res.name, (int) res.qemu_pid);
        else
                printf("%s: started\n", res.name);
        return EXIT_OK;
}
