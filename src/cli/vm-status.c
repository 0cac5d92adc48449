/* `vmcrypt vm status`: the seeds' vocabulary, read from the disks. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/vm-common.h"

static const char help[] =
"Usage: vmcrypt vm status [OPTIONS] [VM...]\n"
"\n"
"The encryption status of VMs (all domains when none is named) in the vocabulary\n"
"of Azure Disk Encryption: OsVolumeEncrypted for the OS disk and\n"
"DataVolumesEncrypted for all other disks together, each one of\n"
"  NotEncrypted            not (or not every disk of the group) encrypted\n"
"  EncryptionInProgress    an encrypt (or deep rekey) job is on a disk\n"
"  Encrypted               every disk of the group is a LUKS volume\n"
"  DecryptionInProgress    a decrypt job is on a disk\n"
"  NotMounted              the group is empty (a VM without data disks)\n"
"and a ProgressMessage: each running job with its percentage (read from the job\n"
"area on the disk, so a second terminal sees a job started elsewhere, and a job\n"
"interrupted by a crash shows where it stopped), and any mismatch between the\n"
"domain XML and a disk (a disk decrypted with cryptsetup behind vmcrypt's back\n"
"is NotEncrypted, and the message says that the domain XML still has\n"
"<encryption>).\n"
"\n"
"Options:\n"
VM_HELP_CONNECT
"  --rate                   read running jobs twice, one second apart, to add\n"
"                           each disk's rate and time left\n"
"  --json                   one JSON object per VM, a line each:\n"
"      {\"name\",\"uuid\",\"OsVolumeEncrypted\",\"DataVolumesEncrypted\",\n"
"       \"ProgressMessage\",\"disks\":[{\"target\",\"os\",\"state\",\"percent\",\n"
"       \"rate\",\"eta_seconds\"}]}\n"
"  --manager URL, --manager-config FILE\n"
"                           do it through vmcrypt-manager and the VM's host agent\n"
"                           instead of this host's libvirt (the manager's options:\n"
"                           add --help after them)\n"
"  -h, --help               show this help\n"
"\n"
"Examples:\n"
"  vmcrypt vm status web1\n"
"  watch vmcrypt vm status --rate web1\n"
"  vmcrypt vm status --json --connect test:///var/tmp/node.xml\n"
"\n"
"Exit status: 0 shown; 2 usage; 4 no such domain; 7 libvirt unreachable; 1 other\n"
"errors.\n";

static void print_one(const struct vm_domain *d, bool json) {
        if (json) {
                vm_print_json(vm_summary_to_json(d));
                return;
        }
        printf("%s (%s)\n  OsVolumeEncrypted:    %s\n  DataVolumesEncrypted: %s\n  ProgressMessage:      %s\n",
               d->name, d->uuid, vm_volume_status_name(d->summary.os), vm_volume_status_name(d->summary.data),
               d->summary.message);
}

int vm_status_main(int argc, char *argv[]) {
        const char *cmd = "vmcrypt vm status";
        struct vm_opts o;
        int r = vm_opts_parse(cmd, VOPT_JSON | VOPT_RATE, help, 0, -1, argc, argv, &o);
        if (r >= 0)
                return r;
        unsigned flags = o.rate ? VM_INV_RATE : 0;
        struct error err;
        if (o.n_args == 0) {
                _cleanup_(vm_inventory_freep) struct vm_inventory *inv = NULL;
                r = vm_inventory_get(o.uri, NULL, flags, &inv, &err);
                if (r < 0)
                        return vm_report(cmd, r, &err);
                for (size_t i = 0; i < inv->n; i++)
                        print_one(&inv->domains[i], o.json);
                return EXIT_OK;
        }
        int rc = EXIT_OK;
        for (int i = 0; i < o.n_args; i++) {
                _cleanup_(vm_inventory_freep) struct vm_inventory *inv = NULL;
                r = vm_inventory_get(o.uri, o.args[i], flags, &inv, &err);
                if (r < 0) {
                        rc = vm_report(cmd, r, &err);
                        continue;
                }
                print_one(&inv->domains[0], o.json);
        }
        return rc;
}
