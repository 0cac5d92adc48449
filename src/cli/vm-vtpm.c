/* `vmcrypt vm add-vtpm` and `vmcrypt vm remove-vtpm`: a VM's vTPM whose state is
 * encrypted under the VM's KEK. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/vm-common.h"
#include "shared/log.h"

static const char add_help[] =
"Usage: vmcrypt vm add-vtpm [OPTIONS] VM\n"
"\n"
"Give a shut-off VM whose disks are encrypted an emulated TPM 2.0 (libvirt runs\n"
"swtpm for it). Its state on the host (/var/lib/libvirt/swtpm/UUID) is encrypted\n"
"by libvirt with a random secret; vmcrypt wraps that secret with the VM's KEK (the\n"
"KEK of its disks, at their key provider) and records only the wrapped form, the\n"
"provider and the KEK id in the domain XML's <metadata>. 'vmcrypt vm start' unwraps\n"
"it and hands it to libvirt for the start only, as it does the disks' secrets.\n"
"\n"
"As in vSphere, only an encrypted VM gets a vTPM: the command refuses a VM whose\n"
"disks are not all encrypted (run 'vmcrypt vm encrypt VM' first), a running VM,\n"
"a transient one, and a VM that has a TPM already (it says whether vmcrypt added\n"
"it). A VM with a vTPM is not decrypted until 'vmcrypt vm remove-vtpm' removed it.\n"
"The key server records the vTPM among the users of the KEK (as it records the\n"
"disks), so the KEK is not retired while the vTPM needs it.\n"
"\n"
"Options:\n"
VM_HELP_CONNECT
"  --model crb|tis          the TPM interface the guest sees: crb (tpm-crb, the\n"
"                           default; TPM 2.0 CRB, for q35 and UEFI guests) or tis\n"
"                           (tpm-tis, the older FIFO interface)\n"
VM_HELP_PROVIDERS
"  -h, --help               show this help\n"
"\n"
"Examples:\n"
"  vmcrypt vm encrypt web1 && vmcrypt vm add-vtpm web1 && vmcrypt vm start web1\n"
"\n"
"Exit status: 0 added; 2 usage; 4 no such domain, or KEK destroyed; 5 the domain\n"
"runs or has a TPM; 7 key server or libvirt unreachable; 8 the VM is not\n"
"encrypted, or its KEK is revoked or access denied; 9 domain XML and a disk\n"
"disagree; 1 other errors.\n";

static const char remove_help[] =
"Usage: vmcrypt vm remove-vtpm [OPTIONS] VM\n"
"\n"
"Remove the vTPM that 'vmcrypt vm add-vtpm' gave a shut-off VM: the <tpm> device,\n"
"its state on the host and vmcrypt's record of the wrapped state secret. What the\n"
"guest kept in its TPM (keys sealed to it, NV data, a BitLocker or systemd-cryptenroll\n"
"binding) is gone for good: make sure the guest can do without it first.\n"
"\n"
"libvirt deletes a TPM's state only when a domain is undefined with its TPM, so\n"
"the command undefines the domain (keeping its NVRAM) and defines it again at once\n"
"without the TPM, with its autostart flag as it was. libvirt refuses while the\n"
"domain has snapshots or a managed save image; nothing is changed then.\n"
"A TPM that vmcrypt did not add is left alone (virsh edit removes it).\n"
"\n"
"The vTPM stops using the VM's KEK: the key server drops it from the KEK's\n"
"users, and the KEK is retired (revoked, then destroyed) if nothing else uses it.\n"
"\n"
"Options:\n"
VM_HELP_CONNECT
VM_HELP_PROVIDERS
"  -h, --help               show this help\n"
"\n"
"Examples:\n"
"  vmcrypt vm remove-vtpm web1 && vmcrypt vm decrypt web1\n"
"\n"
"Exit status: 0 removed; 2 usage; 4 no such domain, or no vTPM; 5 the domain\n"
"runs; 7 libvirt unreachable; 11 a TPM vmcrypt did not add; 1 other errors.\n";

enum { OPT_MODEL = 256, OPT_PROVIDERS };

static const struct option opts[] = {
        { "help", no_argument, NULL, 'h' },
        { "connect", required_argument, NULL, 'c' },
        { "model", required_argument, NULL, OPT_MODEL },
        { "providers", required_argument, NULL, OPT_PROVIDERS },
        { NULL, 0, NULL, 0 },
};

/* Returns -1 to go on, or an exit code. */
static int parse(const char *cmd, const char *help, bool add, int argc, char *argv[], struct vm_params *p,
                 enum vm_vtpm_model *model) {
        memset(p, 0, sizeof *p);
        *model = VM_VTPM_CRB;
        int c;
        while ((c = getopt_long(argc, argv, "hc:", opts, NULL)) >= 0) {
                if (!add && c == OPT_MODEL)
                        return cli_usage_error(cmd, "option '%s' is not accepted here", argv[optind - 1]);
                switch (c) {
                case 'h':
                        fputs(help, stdout);
                        return EXIT_OK;
                case 'c': p->uri = optarg; break;
                case OPT_PROVIDERS: p->providers = optarg; break;
                case OPT_MODEL:
                        if (strcmp(optarg, "crb") == 0)
                                *model = VM_VTPM_CRB;
                        else if (strcmp(optarg, "tis") == 0)
                                *model = VM_VTPM_TIS;
                        else
                                return cli_usage_error(cmd, "--model takes crb or tis, not '%s'", optarg);
                        break;
                default:
                        return cli_usage_error(cmd, "bad option");
                }
        }
        if (argc - optind < 1)
                return cli_usage_error(cmd, "missing the domain (a name or UUID)");
        if (argc - optind > 1)
                return cli_usage_error(cmd, "too many arguments: '%s'", argv[optind + 1]);
        p->name = argv[optind];
        return -1;
}

int vm_add_vtpm_main(int argc, char *argv[]) {
        const char *cmd = "vmcrypt vm add-vtpm";
        struct vm_params p;
        enum vm_vtpm_model model;
        int r = parse(cmd, add_help, true, argc, argv, &p, &model);
        if (r >= 0)
                return r;
        struct vm_vtpm_result res;
        struct error err;
        r = vm_vtpm_add(&p, model, &res, &err);
        if (r < 0)
                return vm_report(cmd, r, &err);
        printf("%s: vTPM added (%s, TPM 2.0), state secret %s wrapped by KEK %s at %s\n", res.name, res.model,
               res.secret_uuid, res.kek, res.provider);
        return EXIT_OK;
}

int vm_remove_vtpm_main(int argc, char *argv[]) {
        const char *cmd = "vmcrypt vm remove-vtpm";
        struct vm_params p;
        enum vm_vtpm_model model;
        int r = parse(cmd, remove_help, false, argc, argv, &p, &model);
        if (r >= 0)
                return r;
        struct vm_vtpm_result res;
        struct error err;
        r = vm_vtpm_remove(&p, &res, &err);
        if (r < 0)
                return vm_report(cmd, r, &err);
        if (res.device_removed)
                printf("%s: vTPM removed (%s), its state deleted\n", res.name, res.model);
        else
                printf("%s: no TPM device; vmcrypt's vTPM record removed\n", res.name);
        const struct kek_release *k = &res.release;
        if (!res.kek_released)
                return EXIT_OK;
        if (k->error < 0)
                log_warning("KEK %s on provider \"%s\" no longer wraps the vTPM's secret, but it could not be "
                            "released: %s; it stays as it was ('vmcrypt provider keks %s' shows its users)", k->kek,
                            k->provider, k->text, k->provider);
        else if (k->retired)
                printf("%s: KEK %s retired (revoked, then destroyed): nothing uses it any more\n", res.name, k->kek);
        else if (k->tracked)
                printf("%s: KEK %s stays: %u disk(s) still use it\n", res.name, k->kek, k->users);
        return EXIT_OK;
}
