/* `vmcrypt vm encrypt`: every disk of a shut-off VM, in place, one KEK per VM. */
#include <stdio.h>

#include "cli/cli.h"
#include "cli/vm-common.h"

static const char help[] =
"Usage: vmcrypt vm encrypt [OPTIONS] VM\n"
"\n"
"Encrypt the disks of a shut-off, persistent domain in place into LUKS1 volumes\n"
"(QEMU 7.2's luks driver opens LUKS1 only) and wire each into the domain XML as\n"
"<encryption format='luks'><secret type='passphrase' uuid='...'/></encryption>.\n"
"\n"
"Keys: the VM gets one KEK at its key provider, created by the first disk and\n"
"tagged with the domain's name (x-Name) and UUID (x-Identifier) and the vSphere\n"
"attributes x-Vendor, x-Product, x-Product_Version, x-Component; each disk gets\n"
"its own random unlock secret, wrapped by that KEK and stored on the disk (in\n"
"vmcrypt's metadata area of the LUKS1 header). No key is written anywhere else:\n"
"the libvirt secrets the XML names exist only while 'vmcrypt vm start' starts the\n"
"VM (or 'vmcrypt vm attach-disk' hot-plugs a disk).\n"
"\n"
"Running it again encrypts only what is not encrypted yet (data disks attached\n"
"since), keeps the VM's KEK, and finishes what an interrupted run left: a disk\n"
"job is resumed, a finished disk whose XML was not yet written gets it. A kill\n"
"at any point loses no byte (see 'vmcrypt disk resume --help').\n"
"\n"
"With --volume-type all, a UEFI VM's NVRAM (its variable store, part of the VM\n"
"home) is encrypted last the same way, and <nvram> gets an <encryption>; libvirt\n"
"makes that file at the first start, so a VM that never ran is told to run the\n"
"command again after it.\n"
"\n"
"Only raw file disks are encrypted; others (block devices for now, qcow2,\n"
"network, read-only) are left alone and named. The VM must be shut off: the\n"
"command names the running domain and its QEMU's PID.\n"
"\n"
"Options:\n"
VM_HELP_CONNECT
"  --volume-type TYPE       which disks: all (default), os (the lowest <boot\n"
"                           order>, else the first disk) or data (the others)\n"
"  --provider NAME          the key provider (default: the one the VM's disks\n"
"                           use, else the default of providers.json)\n"
"  --kek ID                 use this KEK instead of the VM's own or a new one\n"
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
"  vmcrypt vm encrypt web1\n"
"  vmcrypt vm encrypt --volume-type data --provider lab web1\n"
"\n"
"Exit status: 0 every selected disk encrypted and wired; 2 usage; 4 no such\n"
"domain; 5 the domain runs, or a job of another kind is on a disk; 6 no space;\n"
"7 key server or libvirt unreachable; 8 access denied by the key server; 1 other\n"
"errors. After a failure the command says whether a job waits for resume.\n";

int vm_encrypt_main(int argc, char *argv[]) {
        const char *cmd = "vmcrypt vm encrypt";
        struct vm_opts o;
        int r = vm_opts_parse(cmd, VOPT_VOLUMES | VOPT_KEK | VOPT_PROVIDERS | VOPT_PROGRESS | VOPT_MAX_RATE, help, 1, 1, argc, argv,
                              &o);
        if (r >= 0)
                return r;
        struct vm_params p;
        vm_opts_params(&o, o.args[0], &p);
        if (o.progress) {
                p.progress = vm_progress_print;
                p.progress_userdata = (void *) "encrypting";
        }
        struct vm_result res;
        struct error err;
        r = vm_encrypt(&p, &res, &err);
        if (r < 0)
                return vm_report(cmd, r, &err);
        vm_print_result("encrypted", &res);
        if (res.kek[0])
                printf("%s: KEK %s at provider %s%s\n", res.name, res.kek, res.provider,
                       res.kek_created ? " (new, tagged with the VM's name and UUID)" : "");
        return EXIT_OK;
}
