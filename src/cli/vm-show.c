/* `vmcrypt vm show`: one domain, every disk in detail. */
#include <stdio.h>

#include "cli/cli.h"
#include "cli/vm-common.h"

static const char help[] =
"Usage: vmcrypt vm show [OPTIONS] VM\n"
"\n"
"Show one domain (by name or UUID): UUID, state, QEMU's PID when it runs on this\n"
"host, and each disk: target, file or block device and its path, format, whether\n"
"it is the OS disk, its encryption state read from the disk (LUKS version, a job\n"
"in progress with its percentage), the key provider and KEK named by its vmcrypt\n"
"token, and the libvirt secret its <encryption> names in the domain XML. A\n"
"mismatch between the domain XML and the disk is said in words. Also vmcrypt's\n"
"settings for the domain (auto-encrypt, see 'vmcrypt vm set') and an unfinished\n"
"'vmcrypt vm rekey' with its target KEK.\n"
"\n"
"Options:\n"
VM_HELP_CONNECT
"  --json                   one JSON object on stdout: {\"name\",\"uuid\",\"state\",\n"
"                           \"persistent\",\"qemu_pid\",\"disks\":[...]} (disks as in\n"
"                           'vmcrypt vm list --json', plus \"provider\" and \"kek\")\n"
"  -h, --help               show this help\n"
"\n"
"Examples:\n"
"  vmcrypt vm show web1\n"
"  vmcrypt vm show --json 4dea22b3-1d52-d8f3-2516-782e98ab3fa0\n"
"\n"
"Exit status: 0 shown; 2 usage; 4 no such domain; 7 libvirt unreachable; 1 other\n"
"errors.\n";

int vm_show_main(int argc, char *argv[]) {
        const char *cmd = "vmcrypt vm show";
        struct vm_opts o;
        int r = vm_opts_parse(cmd, VOPT_JSON, help, 1, 1, argc, argv, &o);
        if (r >= 0)
                return r;
        _cleanup_(vm_inventory_freep) struct vm_inventory *inv = NULL;
        struct vm_error err;
        r = vm_inventory_get(o.uri, o.args[0], VM_INV_KEYS, &inv, &err);
        if (r < 0)
                return vm_report(cmd, r, &err);
        const struct vm_domain *d = &inv->domains[0];
        if (o.json) {
                json_t *disks = json_array();
                for (size_t j = 0; j < d->n_disks; j++)
                        json_array_append_new(disks, vm_disk_to_json(&d->disks[j]));
                json_t *j = json_pack("{s:s,s:s,s:s,s:b,s:o}", "name", d->name, "uuid", d->uuid, "state", d->state,
                                      "persistent", d->persistent, "disks", disks);
                json_object_set_new(j, "qemu_pid", d->qemu_pid > 0 ? json_integer(d->qemu_pid) : json_null());
                json_object_set_new(j, "auto_encrypt", json_boolean(d->meta.auto_encrypt));
                json_object_set_new(j, "rekey", d->meta.rekey_kek[0]
                                    ? json_pack("{s:s,s:s,s:b}", "provider", d->meta.rekey_provider, "kek",
                                                d->meta.rekey_kek, "deep", d->meta.rekey_deep)
                                    : json_null());
                return vm_print_json(j);
        }
        printf("name:        %s\nuuid:        %s\nstate:       %s%s\n", d->name, d->uuid, d->state,
               d->persistent ? "" : " (transient)");
        if (d->qemu_pid > 0)
                printf("qemu pid:    %d\n", (int) d->qemu_pid);
        printf("auto-encrypt: %s\n", d->meta.auto_encrypt ? "on (vm attach-disk encrypts new disks)" : "off");
        if (d->meta.rekey_kek[0])
                printf("rekey:       unfinished, to KEK %s at provider %s%s ('vmcrypt vm rekey %s' finishes it)\n",
                       d->meta.rekey_kek, d->meta.rekey_provider, d->meta.rekey_deep ? " (deep)" : "", d->name);
        for (size_t j = 0; j < d->n_disks; j++) {
                const struct vm_disk *k = &d->disks[j];
                printf("disk %s:%s\n", k->target, k->os ? " (OS disk)" : "");
                printf("  source:    %s %s, format %s%s\n", k->source_type, k->path ? k->path : "(none)",
                       k->format[0] ? k->format : "raw", k->readonly ? ", read-only" : "");
                printf("  state:     %s", vm_disk_state_name(k->state));
                if (k->state == VM_DISK_ENCRYPTED)
                        printf(" (%s)", disk_format_to_string(k->status.format));
                if (k->status.job != ENGINE_OP_NONE && k->state != VM_DISK_UNKNOWN)
                        printf(" %.1f%%", vm_disk_percent(k));
                if (k->state == VM_DISK_UNKNOWN)
                        printf(": %s", k->status_text);
                putchar('\n');
                if (k->kek[0])
                        printf("  key:       provider %s, KEK %s\n", k->provider, k->kek);
                if (k->xml_encrypted)
                        printf("  libvirt:   <encryption format='luks'>, secret %s\n",
                               k->secret_uuid[0] ? k->secret_uuid : "(none)");
                if (k->note[0])
                        printf("  note:      %s\n", k->note);
        }
        return EXIT_OK;
}
