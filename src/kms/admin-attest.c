/* vmcrypt-kms host ... and vmcrypt-kms policy ...: the operator's side of the
 * trusted key provider. Thin: parse, one attestation-store call, print; each
 * change written to the operator's audit log around it. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "attest/attest.h"
#include "kms/admin.h"
#include "kms/attest-db.h"
#include "kms/operator-log.h"
#include "kms/config.h"
#include "shared/hex.h"
#include "shared/log.h"

const char kms_help_host[] =
        "Usage: vmcrypt-kms host list|approve ID|revoke ID [--group GROUP] [--config FILE | --state-dir DIR]\n"
        "\n"
        "Hosts of the trusted key provider (docs/attestation.md). A host enrols its TPM\n"
        "with 'vmcrypt host enroll': it proves that its attestation key (AK) lives in the\n"
        "TPM of its endorsement key (EK) and reports its PCRs, and then waits here as\n"
        "'pending'. Nothing is released to it before an operator approves it.\n"
        "\n"
        "  list         every host: ID, client certificate CN, group, state, the SHA-256\n"
        "               fingerprint of its EK (compare it with what 'vmcrypt host enroll'\n"
        "               printed on the host), its EK certificate (none; present: it\n"
        "               certifies the EK; verified: it also chains to attestation-ek-ca),\n"
        "               its TPM reset count as last seen\n"
        "  approve ID   keys that require attestation may now be released to host ID\n"
        "               (after a quote that matches its group's PCR policy)\n"
        "  revoke ID    never release anything to host ID again (until it enrols anew\n"
        "               and is approved again)\n"
        "\n"
        "Options:\n"
        "  --group GROUP   with approve: the host group, whose PCR policy applies to it\n"
        "                  (default: keep the current one, 'default' for a new host)\n"
        "  --config FILE, --state-dir DIR   the server's configuration (its database);\n"
        "                  the server may be running\n"
        "\n"
        "approve and revoke are audited in the configuration's operator-audit-log\n"
        "(client local:USER): a line before the change, which must be written or\n"
        "nothing changes, and one with its result.\n"
        "\n"
        "Exit status: 0 done; 1 no such host, the database or the audit log cannot be\n"
        "used; 2 usage.\n";

const char kms_help_policy[] =
        "Usage: vmcrypt-kms policy capture --host ID --pcrs LIST [--group GROUP]\n"
        "       vmcrypt-kms policy set --pcrs LIST --values HEX,... [--group GROUP]\n"
        "       vmcrypt-kms policy show [--group GROUP]\n"
        "                              [--config FILE | --state-dir DIR]\n"
        "\n"
        "PCR policies of the trusted key provider, one per host group: which SHA-256 PCRs\n"
        "a host's quote must cover and the golden value of each. A key created with the\n"
        "attribute x-vmcrypt-Require-Attestation = GROUP is released only to approved\n"
        "hosts of GROUP whose quote matches GROUP's policy.\n"
        "\n"
        "  capture   take the golden values from a reference host: the PCR values host ID\n"
        "            reported (in a quote) when it enrolled\n"
        "  set       give the golden values: one 64-digit hex value per PCR of LIST, in\n"
        "            PCR order\n"
        "  show      the policies (of GROUP, or all)\n"
        "\n"
        "Options:\n"
        "  --group GROUP   the host group (default: default)\n"
        "  --pcrs LIST     PCR numbers 0-23, comma-separated, e.g. 0,7,16 (the provider's\n"
        "                  \"pcrs\" in providers.json must name the same ones)\n"
        "  --host ID       with capture: the reference host\n"
        "  --values HEX,...  with set: the golden values\n"
        "  --config FILE, --state-dir DIR   as for host\n"
        "\n"
        "capture and set are audited as host approve is (see 'vmcrypt-kms host --help').\n"
        "\n"
        "Exit status: 0 done; 1 the database or the audit log cannot be used, or the\n"
        "host has no PCRs on record; 2 usage.\n";

enum { OPT_CONFIG = 0x100, OPT_STATE_DIR, OPT_GROUP, OPT_PCRS, OPT_HOST, OPT_VALUES, OPT_HELP };

static const struct option opts[] = {
        { "config", required_argument, NULL, OPT_CONFIG },
        { "state-dir", required_argument, NULL, OPT_STATE_DIR },
        { "group", required_argument, NULL, OPT_GROUP },
        { "pcrs", required_argument, NULL, OPT_PCRS },
        { "host", required_argument, NULL, OPT_HOST },
        { "values", required_argument, NULL, OPT_VALUES },
        { "help", no_argument, NULL, OPT_HELP },
        {},
};

struct admin_args {
        const char *config, *state_dir, *group, *pcrs, *host, *values;
        bool help;
};

static int parse(int argc, char *argv[], const char *help, struct admin_args *a) {
        *a = (struct admin_args) {};
        int c;
        optind = 1;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0)
                switch (c) {
                case OPT_CONFIG: a->config = optarg; break;
                case OPT_STATE_DIR: a->state_dir = optarg; break;
                case OPT_GROUP: a->group = optarg; break;
                case OPT_PCRS: a->pcrs = optarg; break;
                case OPT_HOST: a->host = optarg; break;
                case OPT_VALUES: a->values = optarg; break;
                case 'h':
                case OPT_HELP: a->help = true; break;
                default: fputs(help, stderr); return -EINVAL;
                }
        if (a->help)
                fputs(help, stdout);
        if (a->group && (!*a->group || strlen(a->group) >= ATTEST_GROUP_MAX)) {
                log_error("--group must be 1 to %d characters.", ATTEST_GROUP_MAX - 1);
                return -EINVAL;
        }
        return 0;
}

/* The attestation store of the server's configuration, and the operator's
 * audit log. */
struct admin {
        struct attest_db *db;
        struct operator_log log;
};

static void admin_close(struct admin *m) {
        attest_db_free(m->db);
        operator_log_close(&m->log);
}

static int admin_open(const struct admin_args *a, struct admin *m) {
        *m = (struct admin) {};
        char path[4096];
        if (a->config)
                snprintf(path, sizeof(path), "%s", a->config);
        else
                snprintf(path, sizeof(path), "%s/kms.conf", a->state_dir ? a->state_dir : "/var/lib/vmcrypt-kms");
        _cleanup_(kms_config_freep) struct kms_config *c = NULL;
        struct error err = { 0 };
        int r = kms_config_load(path, &c, &err);
        if (r < 0) {
                log_error_errno(r, "Cannot read the configuration: %s", err.text[0] ? err.text : strerror(-r));
                return r;
        }
        r = operator_log_open(c, &m->log);
        if (r < 0)
                return r;
        r = attest_db_open(c->database, &m->db);
        if (r < 0) {
                log_error("Cannot open the database %s (see above).", c->database);
                admin_close(m);
        }
        return r;
}

static int host_list(struct attest_db *db) {
        struct attest_host *v = NULL;
        size_t n = 0;
        int r = attest_db_host_list(db, &v, &n);
        if (r < 0)
                return 1;
        printf("%-36s  %-20s  %-12s  %-9s  %-19s  %-8s  %s\n", "ID", "CN", "GROUP", "STATE", "EK SHA-256", "EK CERT",
               "RESETS");
        for (size_t i = 0; i < n; i++) {
                char reset[16] = "-";
                if (v[i].has_clock)
                        snprintf(reset, sizeof(reset), "%u", v[i].reset_count);
                printf("%-36s  %-20s  %-12s  %-9s  %.16s...  %-8s  %s\n", v[i].id, v[i].cn, v[i].group,
                       attest_host_state_name(v[i].state), v[i].ek_fingerprint,
                       attest_ek_cert_state_name(v[i].ek_cert_state), reset);
        }
        if (n == 0)
                printf("(no hosts enrolled: run 'vmcrypt host enroll' on a host)\n");
        free(v);
        return 0;
}

int kms_host_main(int argc, char *argv[]) {
        struct admin_args a;
        if (argc < 2) {
                fputs(kms_help_host, stderr);
                return 2;
        }
        const char *verb = argv[1];
        if (parse(argc - 1, argv + 1, kms_help_host, &a) < 0)
                return 2;
        if (a.help)
                return 0;
        int rest = argc - 1 - optind;
        bool list = strcmp(verb, "list") == 0;
        bool approve = strcmp(verb, "approve") == 0, revoke = strcmp(verb, "revoke") == 0;
        if ((!list && !approve && !revoke) || rest != (list ? 0 : 1) || (a.group && !approve)) {
                fputs(kms_help_host, stderr);
                return 2;
        }
        _cleanup_(admin_close) struct admin m;
        if (admin_open(&a, &m) < 0)
                return 1;
        if (list)
                return host_list(m.db);
        const char *id = argv[1 + optind];
        const char *op = approve ? "host approve" : "host revoke";
        char msg[128] = "";
        if (a.group)
                snprintf(msg, sizeof(msg), "group %s", a.group);
        if (operator_log_record(&m.log, op, id, msg, 1) < 0)
                return 1;
        int r = attest_db_host_set_state(m.db, id, approve ? ATTEST_HOST_APPROVED : ATTEST_HOST_REVOKED, a.group);
        if (r == -ENOENT)
                log_error("No host %s: see 'vmcrypt-kms host list'.", id);
        (void) operator_log_record(&m.log, op, id, r == -ENOENT ? "no such host" : msg, r);
        if (r < 0)
                return 1;
        struct attest_host h;
        if (attest_db_host_get(m.db, id, &h) < 0)
                return 1;
        printf("host %s (%s, group %s): %s\n", id, h.cn, h.group, attest_host_state_name(h.state));
        return 0;
}

static int print_policy(const struct attest_policy *p) {
        char pcrs[80];
        attest_pcr_mask_format(p->mask, pcrs, sizeof(pcrs));
        printf("group %s: sha256 PCRs %s\n", p->group, pcrs);
        for (size_t i = 0, pcr = 0; i < p->n_values; i++, pcr++) {
                while (!(p->mask & (1u << pcr)))
                        pcr++;
                char hex[65];
                hex_encode(p->values[i], 32, hex);
                printf("  PCR %2zu  %s\n", pcr, hex);
        }
        return 0;
}

static int parse_values(const char *s, size_t n, struct attest_policy *p) {
        size_t k = 0;
        const char *q = s;
        while (*q && k < ATTEST_PCRS_ALL) {
                const char *e = strchr(q, ',');
                size_t len = e ? (size_t) (e - q) : strlen(q);
                char hex[65];
                if (len != 64)
                        return -EINVAL;
                memcpy(hex, q, 64);
                hex[64] = '\0';
                if (hex_decode(hex, p->values[k], 32) < 0)
                        return -EINVAL;
                k++;
                q = e ? e + 1 : q + len;
        }
        if (k != n || *q)
                return -EINVAL;
        p->n_values = n;
        return 0;
}

int kms_policy_main(int argc, char *argv[]) {
        struct admin_args a;
        if (argc < 2) {
                fputs(kms_help_policy, stderr);
                return 2;
        }
        const char *verb = argv[1];
        if (parse(argc - 1, argv + 1, kms_help_policy, &a) < 0)
                return 2;
        if (a.help)
                return 0;
        const char *group = a.group ? a.group : "default";
        bool capture = strcmp(verb, "capture") == 0, set = strcmp(verb, "set") == 0, show = strcmp(verb, "show") == 0;
        if ((!capture && !set && !show) || argc - 1 != optind || (capture && (!a.host || !a.pcrs || a.values)) ||
            (set && (!a.pcrs || !a.values || a.host)) || (show && (a.pcrs || a.values || a.host))) {
                fputs(kms_help_policy, stderr);
                return 2;
        }
        attest_pcr_mask mask = 0;
        if (a.pcrs && attest_pcr_mask_parse(a.pcrs, &mask) < 0) {
                log_error("--pcrs '%s': give PCR numbers 0-23, comma-separated, each once (e.g. 0,7,16).", a.pcrs);
                return 2;
        }
        struct attest_policy p = { .mask = mask };
        snprintf(p.group, sizeof(p.group), "%s", group);
        if (set && parse_values(a.values, attest_pcr_count(mask), &p) < 0) {
                log_error("--values: give %zu SHA-256 values (64 hex digits each), comma-separated, in PCR order.",
                          attest_pcr_count(mask));
                return 2;
        }
        _cleanup_(admin_close) struct admin m;
        if (admin_open(&a, &m) < 0)
                return 1;
        struct attest_db *db = m.db;
        int r;
        if (capture || set) {
                char pcrs[80], msg[256];
                attest_pcr_mask_format(mask, pcrs, sizeof(pcrs));
                snprintf(msg, sizeof(msg), "sha256 PCRs %s%s%s", pcrs, capture ? " from host " : "",
                         capture ? a.host : "");
                const char *op = capture ? "policy capture" : "policy set";
                if (operator_log_record(&m.log, op, group, msg, 1) < 0)
                        return 1;
                r = capture ? attest_db_policy_capture(db, a.host, group, mask, &p) : attest_db_policy_put(db, &p);
                if (r == -ENOENT)
                        log_error("No host %s: see 'vmcrypt-kms host list'.", a.host);
                else if (r == -ENODATA)
                        log_error("Host %s has no PCR values on record: it has not finished enrolling.", a.host);
                (void) operator_log_record(&m.log, op, group, msg, r);
                if (r < 0)
                        return 1;
                if (capture)
                        printf("captured from host %s:\n", a.host);
                return print_policy(&p);
        }
        if (a.group) {
                r = attest_db_policy_get(db, group, &p);
                if (r == -ENOENT) {
                        log_error("Group %s has no policy: vmcrypt-kms policy capture or policy set.", group);
                        return 1;
                }
                return r < 0 ? 1 : print_policy(&p);
        }
        struct attest_policy *v = NULL;
        size_t n = 0;
        if (attest_db_policy_list(db, &v, &n) < 0)
                return 1;
        for (size_t i = 0; i < n; i++)
                print_policy(&v[i]);
        if (n == 0)
                printf("(no policies: vmcrypt-kms policy capture or policy set)\n");
        free(v);
        return 0;
}
