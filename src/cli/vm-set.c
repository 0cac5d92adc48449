/* `vmcrypt vm set`: a VM's vmcrypt settings, kept in its domain XML. */
#include <stdio.h>

#include "cli/cli.h"
#include "cli/vm-common.h"

static const char help[] =
"Usage: vmcrypt vm set [OPTIONS] VM --auto-encrypt on|off\n"
"\n"
"Change vmcrypt's settings for a domain. They live in the domain's persistent\n"
"definition, in <metadata> under vmcrypt's own namespace (urn:vmcrypt:vm:1), so\n"
"they travel with the domain's XML; 'vmcrypt vm show' displays them. The domain\n"
"may be running.\n"
"\n"
"Options:\n"
VM_HELP_CONNECT
"  --auto-encrypt on|off    on: every 'vmcrypt vm attach-disk' on this VM\n"
"                           encrypts a plain image with the VM's KEK before\n"
"                           attaching it, as if --encrypt were given (the VM\n"
"                           must be encrypted)\n"
"  -h, --help               show this help\n"
"\n"
"Examples:\n"
"  vmcrypt vm set web1 --auto-encrypt on\n"
"\n"
"Exit status: 0 set; 2 usage, or a transient domain; 4 no such domain; 7 libvirt\n"
"unreachable; 1 other errors.\n";

int vm_set_main(int argc, char *argv[]) {
        const char *cmd = "vmcrypt vm set";
        struct vm_opts o;
        int r = vm_opts_parse(cmd, VOPT_AUTO, help, 1, 1, argc, argv, &o);
        if (r >= 0)
                return r;
        if (o.auto_encrypt < 0)
                return cli_usage_error(cmd, "nothing to set: give --auto-encrypt on|off");
        struct vm_params p;
        vm_opts_params(&o, o.args[0], &p);
        struct vm_error err;
        r = vm_set_auto_encrypt(&p, o.auto_encrypt == 1, &err);
        if (r < 0)
                return vm_report(cmd, r, &err);
        printf("%s: auto-encrypt %s\n", o.args[0], o.auto_encrypt ? "on" : "off");
        return EXIT_OK;
}
