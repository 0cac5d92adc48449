/* vmcrypt host: this host's TPM and the trusted key providers (docs/attestation.md).
 * One subcommand, enroll; the work is provider_trusted_enroll(). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/manager-common.h"
#include "cli/disk-keys.h"
#include "keys/provider.h"
#include "shared/log.h"

static const char help_enroll[] =
        "Usage: vmcrypt host enroll [--provider NAME] [--providers FILE]\n"
        "\n"
        "Enrol this host's TPM with the KMS of a trusted key provider, so that the KMS\n"
        "may later release that provider's KEKs to this host (and to no other).\n"
        "\n"
        "The TPM is the one the provider's \"tcti\" names. Its endorsement key (EK) and an\n"
        "attestation key (AK) go to the KMS; the KMS answers with a challenge that only\n"
        "a TPM holding both can open (TPM2_MakeCredential / ActivateCredential), and\n"
        "this host answers it together with a quote of its SHA-256 PCRs 0-23, which the\n"
        "KMS operator may take as the golden values of a host group\n"
        "('vmcrypt-kms policy capture'). The host is then pending: nothing is released\n"
        "to it until the operator runs 'vmcrypt-kms host approve ID'. Compare the EK\n"
        "fingerprint printed here with the one 'vmcrypt-kms host list' shows before\n"
        "approving.\n"
        "\n"
        "Enrolling again (a new TPM, a cleared one) replaces the host's enrolment and\n"
        "needs a new approval. The client certificate of the provider is the host's\n"
        "identity: one enrolled TPM per certificate.\n"
        "\n"
        "Options:\n"
        "  --provider NAME   a provider of type \"trusted\" (default: the default provider)\n"
        "  --providers FILE  provider configuration (default /etc/vmcrypt/providers.json)\n"
        "\n"
        "Exit status: 0 enrolled (pending approval); 2 usage; 4 no such provider;\n"
        "7 KMS unreachable; 8 the KMS refused; 11 not a trusted provider; 1 other\n"
        "failures (the TPM cannot be used: the message says why).\n";

static const struct option enroll_opts[] = {
        { "provider", required_argument, NULL, 'p' },
        { "providers", required_argument, NULL, KEYS_OPT_PROVIDERS },
        { "help", no_argument, NULL, 'h' },
        {}
};

static int enroll_main(int argc, char *argv[]) {
        const char *path = NULL, *name = NULL;
        int c;
        while ((c = getopt_long(argc, argv, "h", enroll_opts, NULL)) >= 0)
                switch (c) {
                case 'p': name = optarg; break;
                case KEYS_OPT_PROVIDERS: path = optarg; break;
                case 'h': fputs(help_enroll, stdout); return EXIT_OK;
                default: return cli_usage_error("vmcrypt host enroll", "unknown option");
                }
        if (optind != argc)
                return cli_usage_error("vmcrypt host enroll", "unexpected argument '%s'", argv[optind]);
        struct error err = { 0 };
        _cleanup_(provider_configs_freep) struct provider_configs *cs = NULL;
        int r = provider_config_load(path, &cs, &err);
        if (r < 0)
                return log_error("%s", err.text), cli_exit_code(r);
        _cleanup_(provider_freep) struct provider *p = NULL;
        r = provider_open_by_name(cs, name, &p, &err);
        if (r < 0)
                return log_error("%s", err.text[0] ? err.text : strerror(-r)), cli_exit_code(r);
        struct trusted_enrollment e = { 0 };
        r = provider_trusted_enroll(p, &e);
        if (r < 0) {
                log_error("%s", provider_error(p));
                return r == -EOPNOTSUPP ? EXIT_UNSUPPORTED : cli_exit_code(r);
        }
        printf("host %s enrolled with provider \"%s\": %s\n", e.host_id, p->config->name, e.state);
        printf("EK sha256:%s (%s)\n", e.ek_fingerprint,
               e.has_ek_certificate ? "its certificate from the TPM was sent" : "the TPM has no EK certificate");
        printf("on the KMS, after checking the EK: vmcrypt-kms host approve %s\n", e.host_id);
        return EXIT_OK;
}

static const struct cli_command host_commands[] = {
        { "enroll", enroll_main, "enrol this host's TPM with a trusted key provider's KMS" },
        { "list", host_list_main, "the fleet's hosts whose agents report to vmcrypt-manager" },
        { NULL, NULL, NULL },
};

int host_main(int argc, char *argv[]) {
        return cli_dispatch("vmcrypt host", host_commands, argc, argv);
}
