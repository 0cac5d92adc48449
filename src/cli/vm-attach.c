/* `vmcrypt vm attach-disk`: a new data disk, encrypted with the VM's KEK if asked. */
#include <stdio.h>

#include "cli/cli.h"
#include "cli/vm-common.h"

static const char help[] =
"Usage: vmcrypt vm attach-disk [OPTIONS] VM IMAGE\n"
"\n"
"Attach the raw image file IMAGE to the domain VM as a virtio data disk: into its\n"
"persistent definition and, when the domain runs, into the running QEMU as well\n"
"(hot-plug).\n"
"\n"
"With --encrypt, or when the domain is flagged auto-encrypt ('vmcrypt vm set VM\n"
"--auto-encrypt on'), a plain image is first encrypted in place into a LUKS1\n"
"volume with its own unlock secret wrapped by the VM's KEK, as 'vmcrypt vm\n"
"encrypt' does for a disk, and attached with <encryption format='luks'>. The VM\n"
"must be encrypted already (its KEK is found on its disks). An image that is\n"
"encrypted already is attached as it is if its vmcrypt binding names the VM's\n"
"KEK. A running QEMU opens a hot-plugged encrypted disk during the attach: its\n"
"unlock secret is unwrapped by the key provider and put into an ephemeral,\n"
"private libvirt secret that is undefined right after the attach.\n"
"\n"
"Refused, changing nothing: an image any domain has as a disk already (compared\n"
"by file, so another path to it counts), an image that is not a raw disk (qcow2,\n"
"VMDK, ...; convert it with qemu-img first), an image bound to another KEK (the\n"
"message names both KEKs), a LUKS2 image (QEMU 7.2 opens LUKS1 only), --encrypt\n"
"on a VM that is not encrypted, a target the domain has already.\n"
"\n"
"Killed while the image is being encrypted, the same command finishes the job\n"
"and then attaches the disk (see 'vmcrypt disk resume --help').\n"
"\n"
"Options:\n"
VM_HELP_CONNECT
"  --target vdX             the disk's name in the guest (default: the first free\n"
"                           of vda..vdz)\n"
"  --encrypt                encrypt a plain image with the VM's KEK first\n"
"  --persistent             only into the persistent definition (the next start)\n"
"  --live                   only into the running QEMU (gone at its next start)\n"
VM_HELP_PROVIDERS
VM_HELP_MAX_RATE
"  --progress auto|bar|none progress of the encryption on stderr\n"
"  -h, --help               show this help\n"
"\n"
"Examples:\n"
"  vmcrypt vm attach-disk --encrypt web1 /var/lib/libvirt/images/web1-logs.img\n"
"  vmcrypt vm attach-disk --target vdd --persistent web1 /srv/spare.img\n"
"\n"
"Exit status: 0 attached; 2 usage, or the VM is not encrypted; 3 the image is\n"
"bound to another KEK; 4 no such domain or image; 5 the image is attached\n"
"already, the target is taken, or a job is on the image; 7 key server or libvirt\n"
"unreachable; 8 key server denied; 11 not a raw image, or LUKS2; 1 other errors.\n";

static enum engine_verdict progress(const struct vm_disk *d, const struct engine_progress *p, void *userdata) {
        (void) userdata;
        double pct = p->total ? 100.0 * (double) p->done / (double) p->total : 100.0;
        fprintf(stderr, "\rencrypting %s: %5.1f%%%s", d->target, pct, p->finished ? "\n" : "");
        return ENGINE_CONTINUE;
}

int vm_attach_main(int argc, char *argv[]) {
        const char *cmd = "vmcrypt vm attach-disk";
        struct vm_opts o;
        int r = vm_opts_parse(cmd, VOPT_ATTACH | VOPT_PROVIDERS | VOPT_PROGRESS | VOPT_MAX_RATE, help, 2, 2, argc,
                              argv, &o);
        if (r >= 0)
                return r;
        struct vm_attach_params a = {
                .image = o.args[1],
                .target = o.target,
                .encrypt = o.encrypt,
                .mode = o.mode,
        };
        vm_opts_params(&o, o.args[0], &a.vm);
        if (o.progress)
                a.vm.progress = progress;
        struct vm_result res;
        struct vm_error err;
        r = vm_attach_disk(&a, &res, &err);
        if (r < 0)
                return vm_report(cmd, r, &err);
        const struct vm_disk_result *d = &res.disks[0];
        printf("%s: %s attached (%s)%s%s%s\n", res.name, d->target, d->path,
               res.hotplugged && res.persisted ? ", running and persistent"
               : res.hotplugged ? ", running only" : ", persistent (from the next start)",
               d->note[0] ? ": " : "", d->note);
        return EXIT_OK;
}
