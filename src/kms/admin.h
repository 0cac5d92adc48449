/* Operator commands of vmcrypt-kms that work on the attestation store (hosts and
 * PCR policies of the trusted key provider): admin-attest.c. */
#pragma once

extern const char kms_help_host[];
extern const char kms_help_policy[];

/* vmcrypt-kms host list|approve|revoke; argv[0] is "host". Exit status. */
int kms_host_main(int argc, char *argv[]);
/* vmcrypt-kms policy capture|set|show; argv[0] is "policy". Exit status. */
int kms_policy_main(int argc, char *argv[]);
