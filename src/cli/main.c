/* vmcrypt: the command line. This file is only the table of command groups; each
 * group lives in its own file (disk.c, kms.c, ...) with one file per subcommand. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/manager-common.h"
#include "shared/log.h"
#include "shared/secret.h"

static int version_main(int argc, char *argv[]) {
        (void) argc;
        (void) argv;
        printf("vmcrypt %s\n", VMCRYPT_VERSION);
        return EXIT_OK;
}

int disk_main(int argc, char *argv[]);
int kmip_main(int argc, char *argv[]);
int provider_main(int argc, char *argv[]);
int vm_main(int argc, char *argv[]);
int host_main(int argc, char *argv[]);

static const struct cli_command groups[] = {
        { "disk", disk_main, "encrypt, decrypt, rekey and inspect disks (vmcrypt disk --help)" },
        { "provider", provider_main, "key providers: list (here or the fleet's), create KEKs, native backup (vmcrypt provider --help)" },
        { "vm", vm_main, "whole VMs through libvirt: list, status, encrypt, start (vmcrypt vm --help)" },
        { "kms", kmip_main, "talk to a KMIP key server: keys, attributes, wrap (vmcrypt kms --help)" },
        { "host", host_main, "this host's TPM enrolment; the fleet's hosts from vmcrypt-manager (vmcrypt host --help)" },
        { "job", job_main, "the manager's jobs: list, cancel, pause, resume (vmcrypt job --help)" },
        { "events", events_main, "the manager's event log, optionally followed (vmcrypt events --help)" },
        { "policy", policy_main, "the manager's encryption policies: list, set (vmcrypt policy --help)" },
        { "whoami", whoami_main, "who the manager takes you for: CN or token, role, privileges (vmcrypt whoami --help)" },
        { "version", version_main, "print the version" },
        { NULL, NULL, NULL },
};

int main(int argc, char *argv[]) {
        log_set_program("vmcrypt");
        /* The TSS's own warnings (trusted providers) would repeat, less clearly,
         * what our error message says; TSS2_LOG set by the user still wins. */
        (void) setenv("TSS2_LOG", "all+NONE", 0);
        /* Locked, non-dumpable memory for every key this process will touch. */
        (void) secret_init_process(1U << 20);
        if (argc >= 2 && strcmp(argv[1], "--version") == 0)
                return version_main(argc, argv);
        return cli_dispatch("vmcrypt", groups, argc, argv);
}
