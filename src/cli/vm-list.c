/* `vmcrypt vm list`: every domain with its disks and their encryption state. */
#include <stdio.h>

#include "cli/cli.h"
#include "cli/vm-common.h"

static const char help[] =
"Usage: vmcrypt vm list [OPTIONS]\n"
"\n"
"List the domains libvirt knows (running or not) with their UUID and state, and\n"
"for each disk (device='disk'; cdroms and floppies are not the VM's volumes): its\n"
"target, whether it is a file or a block device, its format, whether it is the OS\n"
"disk, and its encryption state as the disk itself says it (vmcrypt remembers\n"
"nothing: a disk decrypted with cryptsetup shows as plain). The OS disk is the\n"
"one with the lowest <boot order='N'/>, else the first disk.\n"
"\n"
"Disk states: plain, encrypted, encrypting, decrypting, reencrypting (a job is on\n"
"the disk: running, or interrupted and waiting for resume), unknown (a network or\n"
"non-raw disk, or one that cannot be read; --json says why).\n"
"\n"
"Options:\n"
VM_HELP_CONNECT
"  --json                   one JSON array on stdout, one object per domain:\n"
"      {\"name\",\"uuid\",\"state\",\"disks\":[{\"target\",\"type\":\"file|block|...\",\n"
"       \"path\",\"format\",\"os\",\"readonly\",\"state\",\"luks\":\"luks1|luks2\"|null,\n"
"       \"xml_encryption\",\"secret\",\"job\":null|{...},\"note\"}]}\n"
"  -h, --help               show this help\n"
"\n"
"Examples:\n"
"  vmcrypt vm list\n"
"  vmcrypt vm list --connect test:///var/tmp/node.xml --json\n"
"\n"
"Exit status: 0 listed; 2 usage; 7 libvirt unreachable; 8 access denied; 1 other\n"
"errors.\n";

int vm_list_main(int argc, char *argv[]) {
        const char *cmd = "vmcrypt vm list";
        struct vm_opts o;
        int r = vm_opts_parse(cmd, VOPT_JSON, help, 0, 0, argc, argv, &o);
        if (r >= 0)
                return r;
        _cleanup_(vm_inventory_freep) struct vm_inventory *inv = NULL;
        struct error err;
        r = vm_inventory_get(o.uri, NULL, 0, &inv, &err);
        if (r < 0)
                return vm_report(cmd, r, &err);
        if (o.json) {
                json_t *a = json_array();
                for (size_t i = 0; i < inv->n; i++) {
                        const struct vm_domain *d = &inv->domains[i];
                        json_t *disks = json_array();
                        for (size_t j = 0; j < d->n_disks; j++)
                                json_array_append_new(disks, vm_disk_to_json(&d->disks[j]));
                        json_array_append_new(a, json_pack("{s:s,s:s,s:s,s:o}", "name", d->name, "uuid", d->uuid,
                                                           "state", d->state, "disks", disks));
                }
                return vm_print_json(a);
        }
        printf("%-24s %-36s %-10s %s\n", "NAME", "UUID", "STATE", "DISKS (target:type/format:state, * OS disk)");
        for (size_t i = 0; i < inv->n; i++) {
                const struct vm_domain *d = &inv->domains[i];
                printf("%-24s %-36s %-10s", d->name, d->uuid, d->state);
                for (size_t j = 0; j < d->n_disks; j++) {
                        const struct vm_disk *k = &d->disks[j];
                        printf(" %s%s:%s/%s:%s", k->os ? "*" : "", k->target, k->source_type,
                               k->format[0] ? k->format : "raw", vm_disk_state_name(k->state));
                }
                putchar('\n');
        }
        return EXIT_OK;
}
