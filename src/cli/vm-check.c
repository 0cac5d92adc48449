/* `vmcrypt vm check`: would this VM start here? vm_start short of starting. */
#include <stdio.h>

#include "cli/cli.h"
#include "cli/vm-common.h"

static const char help[] =
"Usage: vmcrypt vm check [OPTIONS] VM\n"
"\n"
"Answer whether 'vmcrypt vm start VM' would start the domain on this host, and if\n"
"not, why, without starting it (vSphere shows such a VM as locked): every disk is\n"
"checked against the domain XML (a job in progress, <encryption> on a plain\n"
"disk, a missing secret UUID), every encrypted disk's unlock secret is unwrapped\n"
"by its key provider and proved against its keyslot, and the keys of the vTPM and\n"
"the encrypted NVRAM are unwrapped. Nothing is handed to libvirt, the keys are\n"
"wiped at once, and the domain may be running. Each key request is a real one,\n"
"audited by the key server like a start's.\n"
"\n"
"Every disk is tried, so one answer lists all that is wrong: for each disk 'ok'\n"
"with the provider, KEK and keyslot that opened it (and tokens whose KEK is\n"
"gone), 'plain', or what keeps it from opening.\n"
"\n"
"Options:\n"
VM_HELP_CONNECT
VM_HELP_PROVIDERS
"  -h, --help               show this help\n"
"\n"
"Examples:\n"
"  vmcrypt vm check web1\n"
"  vmcrypt vm check web1 --providers /etc/vmcrypt/providers.json\n"
"\n"
"Exit status: 0 it would start; 2 usage; 3 wrong key; 4 no such domain, or KEK\n"
"destroyed; 5 a disk job in progress; 7 key server or libvirt unreachable; 8\n"
"KEK revoked or access denied; 9 domain XML and disk disagree; 1 other errors\n"
"(the first failure's).\n";

int vm_check_main(int argc, char *argv[]) {
        const char *cmd = "vmcrypt vm check";
        struct vm_opts o;
        int r = vm_opts_parse(cmd, VOPT_PROVIDERS, help, 1, 1, argc, argv, &o);
        if (r >= 0)
                return r;
        struct vm_params p;
        vm_opts_params(&o, o.args[0], &p);
        struct vm_result res;
        struct error err;
        r = vm_check(&p, &res, &err);
        if (r < 0 && res.name[0] == 0)
                return vm_report(cmd, r, &err);
        for (size_t i = 0; i < res.n; i++) {
                const struct vm_disk_result *d = &res.disks[i];
                printf("  %-6s %-6s %s%s%s\n", d->target,
                       d->error ? "FAIL" : d->action == VM_ACTION_CHECKED ? "ok" : "plain", d->path,
                       d->path[0] && d->note[0] ? ": " : "", d->note);
        }
        if (res.vtpm_unlocked)
                printf("  %-6s %-6s its state key unwrapped\n", "vtpm", "ok");
        else if (res.vtpm_error)
                printf("  %-6s %-6s %s\n", "vtpm", "FAIL", res.vtpm_note);
        if (r < 0) {
                printf("%s: would NOT start here\n", res.name);
                return vm_report(cmd, r, &err);
        }
        printf("%s: would start here: every key is there\n", res.name);
        return EXIT_OK;
}
