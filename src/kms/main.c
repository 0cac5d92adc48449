/* vmcrypt-kms: a KMIP key server. This file is the table of subcommands and their
 * manuals; each subcommand's work lives in its module (server.c, init.c, master.c). */
#include <errno.h>
#include <getopt.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "kms/admin.h"
#include "kms/audit.h"
#include "kms/operator-log.h"
#include "kms/config.h"
#include "kms/init.h"
#include "kms/kms.h"
#include "kms/master.h"
#include "kms/perms.h"
#include "kms/server.h"
#include "tls/tls.h"
#include "shared/key-input.h"
#include "shared/log.h"
#include "shared/secret.h"

static const char help_main[] =
        "Usage: vmcrypt-kms COMMAND [OPTIONS]\n"
        "\n"
        "A KMIP 1.0-1.4 and 2.0 key server for vmcrypt, vCenter and other KMIP clients.\n"
        "\n"
        "Commands:\n"
        "  init DIR              create a CA, certificates, a master key and a config in DIR\n"
        "  issue-client DIR CN   issue one more client certificate from DIR's CA\n"
        "  serve                 run the server (foreground)\n"
        "  rotate-master-key     re-encrypt every stored key under a new master key\n"
        "  audit-verify [LOG]    check the audit log's chain of MACs: where it breaks\n"
        "  host list|approve|revoke   hosts enrolled for attested key release\n"
        "  policy capture|set|show    PCR policies of host groups\n"
        "  help [COMMAND]        show this text or a command's manual\n"
        "\n"
        "Run 'vmcrypt-kms COMMAND --help' for the options of each command.\n";

static const char help_init[] =
        "Usage: vmcrypt-kms init DIR [--client CN]... [--hostname NAME] [--listen HOST:PORT] [--days N]\n"
        "                            [--key-type ec|rsa]\n"
        "\n"
        "Create a ready-to-run state directory DIR for a quick start:\n"
        "  ca.crt, ca.key            a new certificate authority (EC P-256, 10 years)\n"
        "  server.crt, server.key    the server certificate: SAN localhost, 127.0.0.1, ::1\n"
        "                            and the host name; EKU serverAuth\n"
        "  client-CN.crt, .key       one client certificate per --client (EKU clientAuth);\n"
        "                            the CN is the client's identity on the server\n"
        "  master.key                32 random bytes that encrypt every stored key\n"
        "  kms.conf                  the configuration, with paths relative to DIR\n"
        "Key files are created with mode 0600 and never overwritten; DIR is created 0700.\n"
        "An existing DIR must belong to the user running init (or root) and must not be\n"
        "writable by group or others.\n"
        "\n"
        "With an existing PKI, skip init: write kms.conf yourself (see docs/kms.md) with\n"
        "tls-cert/tls-key for the server and tls-ca for the CA that issues client\n"
        "certificates, and create the master key with\n"
        "  (umask 077; head -c 32 /dev/urandom > master.key)\n"
        "\n"
        "Options:\n"
        "  --client CN         issue a client certificate for CN (repeatable)\n"
        "  --hostname NAME     host name for the server certificate (default: this host)\n"
        "  --listen HOST:PORT  listen address written to kms.conf (default 0.0.0.0:5696)\n"
        "  --days N            lifetime of server and client certificates (default 825)\n"
        "  --key-type ec|rsa   EC P-256 keys (default) or RSA 3072, for clients that only\n"
        "                      negotiate suites with RSA authentication (static RSA key\n"
        "                      exchange also needs tls-ciphers, see docs/kms.md)\n";

static const char help_issue[] =
        "Usage: vmcrypt-kms issue-client DIR CN [--days N] [--not-before-days N]\n"
        "\n"
        "Issue a client certificate for identity CN from the CA in DIR (made by init),\n"
        "written to DIR/client-CN.crt and DIR/client-CN.key (0600). The issue is written\n"
        "to the operator-audit-log of DIR/kms.conf before and after (if that cannot be\n"
        "done, nothing is issued).\n"
        "\n"
        "Options:\n"
        "  --days N             validity in days (default 825)\n"
        "  --not-before-days N  start of validity relative to now, in days (default 0;\n"
        "                       negative values back-date, e.g. to test expiry)\n";

static const char help_serve[] =
        "Usage: vmcrypt-kms serve [--config FILE | --state-dir DIR] [--listen HOST:PORT]\n"
        "                         [--passphrase-file FILE | --passphrase-prompt] [--log-level LEVEL]\n"
        "\n"
        "Serve KMIP over TLS (1.3, or 1.2 with the ECDHE suites unless tls-ciphers in the\n"
        "config says otherwise) on port 5696. Every client must present a\n"
        "certificate issued by the configured CA; its subject CN is its identity, and\n"
        "objects belong to the identity that created them. Other identities get Item Not\n"
        "Found unless a [group] in the config grants them the operation.\n"
        "\n"
        "Runs in the foreground and logs to standard error. SIGTERM or SIGINT stops it\n"
        "gracefully: no new connections, in-flight requests finish (at most 10 s), the\n"
        "store is closed cleanly. A reply that reports a key created or changed means the\n"
        "change is on disk (fsync'd), and so is its audit line: with audit-failure = refuse\n"
        "(the default) a request whose audit line cannot be written is refused with\n"
        "General Failure and changes nothing. SIGHUP re-reads the revoked client\n"
        "certificates (revoked-client and crl in the config); an open connection of a\n"
        "certificate revoked that way is closed at its next request.\n"
        "\n"
        "Options:\n"
        "  --config FILE          configuration file (default DIR/kms.conf)\n"
        "  --state-dir DIR        directory made by 'init' (default /var/lib/vmcrypt-kms)\n"
        "  --listen HOST:PORT     override the listen address (port 0: any free port,\n"
        "                         printed on standard output as 'listening on PORT')\n"
        "  --passphrase-file FILE master passphrase from FILE instead of master-key-file\n"
        "                         (one line; mode 0600, ours; see rotate-master-key)\n"
        "  --passphrase-prompt    ask for the master passphrase on the terminal (twice\n"
        "                         when it is to seal a new store)\n"
        "  --log-level LEVEL      error, warning, notice (default), info or debug\n"
        "\n"
        "Every file it uses and the directories holding them must belong to the user it\n"
        "runs as (or root) and not be writable by group or others; keys, the master key,\n"
        "the passphrase file and the database not readable by them either.\n"
        "\n"
        "Exit status: 0 after a clean stop; 1 when the configuration, certificates, master\n"
        "key or database cannot be used, or another user could change them (the message\n"
        "says which and what to do).\n";

static const char help_audit_verify[] =
        "Usage: vmcrypt-kms audit-verify [--config FILE | --state-dir DIR] [--key FILE] [LOG]\n"
        "\n"
        "Check the audit log LOG (default: audit-log of the configuration; give\n"
        "operator-audit.log for the operator commands' log) against its key (--key,\n"
        "default: audit-key of the configuration). Every line carries a\n"
        "sequence number and an HMAC-SHA256 of itself and of the line before it, so an\n"
        "edited, removed, reordered or cut line breaks the chain; each break is printed\n"
        "as 'LOG:LINE: what'. Lines removed from the very end leave no trace.\n"
        "\n"
        "Exit status: 0 when the chain holds, 1 when it breaks, 2 when the files cannot\n"
        "be read.\n";

static const char help_rotate[] =
        "Usage: vmcrypt-kms rotate-master-key [--config FILE | --state-dir DIR]\n"
        "                                     [--new-passphrase-file FILE]\n"
        "\n"
        "Re-encrypt every stored key under a new master key, in one transaction: after a\n"
        "crash either all keys are under the old master key or all under the new one.\n"
        "Stop the server first (the database is locked while it runs). The rotation is\n"
        "written to the configuration's operator-audit-log before and after.\n"
        "\n"
        "Without options a fresh random key replaces master-key-file: it is written to\n"
        "FILE.new first and renamed over FILE after the commit; if the rename is lost to a\n"
        "crash, the next start finishes it. With --new-passphrase-file the store switches\n"
        "to that passphrase (set passphrase-file in the config afterwards).\n"
        "\n"
        "A passphrase file holds one line, at least 12 characters (one newline at its end\n"
        "is not part of the passphrase, as with a typed one); it must be mode 0600 and\n"
        "belong to the user running the command. Passphrases are stretched with scrypt\n"
        "(N=2^17, r=8, p=1: 128 MiB); stores sealed with the older N=2^15 still open, and\n"
        "rotating to a passphrase moves them to the current cost.\n"
        "\n"
        "Options:\n"
        "  --config FILE, --state-dir DIR   as for serve\n"
        "  --passphrase-file FILE           the current passphrase, if one is in use\n"
        "  --new-passphrase-file FILE       switch to the passphrase in FILE\n";

enum {
        OPT_CONFIG = 0x100, OPT_STATE_DIR, OPT_LISTEN, OPT_PASSFILE, OPT_PASSPROMPT, OPT_LOG_LEVEL, OPT_CLIENT,
        OPT_HOSTNAME, OPT_DAYS, OPT_NOT_BEFORE, OPT_NEW_PASSFILE, OPT_KEY_TYPE, OPT_KEY, OPT_HELP,
};

static const struct option common_opts[] = {
        { "config", required_argument, NULL, OPT_CONFIG },
        { "state-dir", required_argument, NULL, OPT_STATE_DIR },
        { "listen", required_argument, NULL, OPT_LISTEN },
        { "passphrase-file", required_argument, NULL, OPT_PASSFILE },
        { "passphrase-prompt", no_argument, NULL, OPT_PASSPROMPT },
        { "log-level", required_argument, NULL, OPT_LOG_LEVEL },
        { "client", required_argument, NULL, OPT_CLIENT },
        { "hostname", required_argument, NULL, OPT_HOSTNAME },
        { "days", required_argument, NULL, OPT_DAYS },
        { "not-before-days", required_argument, NULL, OPT_NOT_BEFORE },
        { "new-passphrase-file", required_argument, NULL, OPT_NEW_PASSFILE },
        { "key-type", required_argument, NULL, OPT_KEY_TYPE },
        { "key", required_argument, NULL, OPT_KEY },
        { "help", no_argument, NULL, OPT_HELP },
        {},
};

struct args {
        const char *config, *state_dir, *listen, *passfile, *new_passfile, *hostname, *key;
        int prompt, days, not_before, help, rsa;
        const char *clients[64];
        size_t n_clients;
};

static int parse_args(int argc, char *argv[], const char *help, struct args *a) {
        *a = (struct args) { .state_dir = "/var/lib/vmcrypt-kms" };
        int c;
        optind = 1;
        while ((c = getopt_long(argc, argv, "h", common_opts, NULL)) >= 0) {
                switch (c) {
                case OPT_CONFIG: a->config = optarg; break;
                case OPT_STATE_DIR: a->state_dir = optarg; break;
                case OPT_LISTEN: a->listen = optarg; break;
                case OPT_PASSFILE: a->passfile = optarg; break;
                case OPT_PASSPROMPT: a->prompt = 1; break;
                case OPT_NEW_PASSFILE: a->new_passfile = optarg; break;
                case OPT_HOSTNAME: a->hostname = optarg; break;
                case OPT_KEY: a->key = optarg; break;
                case OPT_DAYS: a->days = atoi(optarg); break;
                case OPT_NOT_BEFORE: a->not_before = atoi(optarg); break;
                case OPT_KEY_TYPE:
                        if (strcmp(optarg, "ec") != 0 && strcmp(optarg, "rsa") != 0) {
                                log_error("--key-type must be ec or rsa, not '%s'", optarg);
                                return -EINVAL;
                        }
                        a->rsa = strcmp(optarg, "rsa") == 0;
                        break;
                case OPT_LOG_LEVEL: {
                        enum log_level l;
                        if (log_level_from_string(optarg, &l) < 0) {
                                log_error("Unknown log level '%s' (error, warning, notice, info, debug)", optarg);
                                return -EINVAL;
                        }
                        log_set_level(l);
                        break;
                }
                case OPT_CLIENT:
                        if (a->n_clients >= ELEMENTSOF(a->clients))
                                return -E2BIG;
                        a->clients[a->n_clients++] = optarg;
                        break;
                case 'h':
                case OPT_HELP:
                        fputs(help, stdout);
                        a->help = 1;
                        return 0;
                default:
                        fputs(help, stderr);
                        return -EINVAL;
                }
        }
        return 0;
}

static int load_config(const struct args *a, struct kms_config **ret) {
        _cleanup_(freep) char *path = NULL;
        if (!a->config && asprintf(&path, "%s/kms.conf", a->state_dir) < 0)
                return -ENOMEM;
        const char *p = a->config ? a->config : path;
        /* Who may write the configuration decides everything else: check it first. */
        int r = kms_perms_check(p, KMS_PERM_PUBLIC, 1);
        if (r < 0 && r != -ENOENT)
                return r;
        _cleanup_(kms_config_freep) struct kms_config *c = NULL;
        struct error err = { 0 };
        r = kms_config_load(p, &c, &err);
        if (r == -ENOENT)
                return log_error_errno(r, "No configuration at %s: run 'vmcrypt-kms init DIR' or pass --config FILE.", p);
        if (r < 0)
                return log_error_errno(r, "Cannot read the configuration: %s", err.text[0] ? err.text : strerror(-r));
        if (a->listen) {
                free(c->listen);
                if (!(c->listen = strdup(a->listen)))
                        return -ENOMEM;
        }
        if (a->passfile) {
                free(c->master_key_file);
                c->master_key_file = NULL;
                free(c->passphrase_file);
                if (!(c->passphrase_file = strdup(a->passfile)))
                        return -ENOMEM;
        } else if (a->prompt) {
                free(c->master_key_file);
                c->master_key_file = NULL;
        }
        /* Before anything is opened or created: see perms.h. */
        r = kms_perms_check_config(c, p);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

struct reload {
        const struct args *args;
        struct kms_revocation *revocation;
};

/* SIGHUP: only the revocation lists change at run time; the rest of the file is
 * read at start. A broken file leaves the lists in force as they were. */
static void reload_revocation(void *userdata) {
        struct reload *rl = userdata;
        _cleanup_(kms_config_freep) struct kms_config *c = NULL;
        if (load_config(rl->args, &c) < 0 || kms_revocation_load(rl->revocation, c) < 0) {
                log_error("SIGHUP: revoked client certificates not reloaded; the previous list stays in force");
                return;
        }
        log_notice("SIGHUP: revoked client certificates reloaded (%zu fingerprints%s%s)", c->n_revoked_clients,
                   c->crl ? ", CRL " : "", c->crl ? c->crl : "");
}

static void raise_fd_limit(void) {
        /* Thousands of client connections need thousands of descriptors. */
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }
}

static int audit_commit_hook(void *userdata) {
        return audit_sync(userdata);
}

static int serve_main(int argc, char *argv[]) {
        struct args a;
        int r = parse_args(argc, argv, help_serve, &a);
        if (r < 0 || a.help)
                return r < 0 ? 2 : 0;
        _cleanup_(kms_config_freep) struct kms_config *c = NULL;
        if (load_config(&a, &c) < 0)
                return 1;
        raise_fd_limit();
        signal(SIGPIPE, SIG_IGN);

        SSL_CTX *ctx = NULL;
        r = tls_server_context(c->tls_cert, c->tls_key, c->tls_ca, c->tls_ciphers, &ctx);
        if (r == -EINVAL) {
                log_error("OpenSSL accepts no TLS 1.2 cipher suite in tls-ciphers = %s (OpenSSL cipher list "
                          "syntax, e.g. %s).", c->tls_ciphers ? c->tls_ciphers : TLS_DEFAULT_CIPHERS,
                          TLS_DEFAULT_CIPHERS);
                return 1;
        }
        if (r < 0) {
                log_error_errno(r, "Cannot set up TLS with certificate %s, key %s and client CA %s: %m. "
                                "Check that the files exist and the key matches the certificate.",
                                c->tls_cert, c->tls_key, c->tls_ca);
                return 1;
        }
        _cleanup_(kms_revocation_freep) struct kms_revocation *revocation = NULL;
        r = kms_revocation_new(c->tls_ca, &revocation);
        if (r >= 0)
                r = kms_revocation_load(revocation, c);
        if (r >= 0)
                r = kms_revocation_attach(revocation, ctx);
        if (r < 0) {
                log_error_errno(r, "Cannot use the revoked client certificates (revoked-client, crl) of the "
                                "configuration: %m");
                SSL_CTX_free(ctx);
                return 1;
        }
        _cleanup_(store_freep) struct store *store = NULL;
        r = kms_master_open_store(c, a.prompt, &store);
        if (r < 0) {
                SSL_CTX_free(ctx);
                return 1;
        }
        struct audit *audit = NULL;
        if (c->audit_log && (r = audit_open(c->audit_log, c->audit_key, &audit)) < 0) {
                if (r == -EPERM)
                        log_error("The audit key %s may be read by others: chmod 600 it.", c->audit_key);
                else
                        log_error_errno(r, "Cannot open the audit log %s with its key %s: %m", c->audit_log,
                                        c->audit_key);
                SSL_CTX_free(ctx);
                return 1;
        }
        /* Fail closed: a change's audit line (written before the change was queued)
         * is on disk before the commit that holds the change. */
        if (audit && !c->audit_continue)
                store_set_commit_hook(store, audit_commit_hook, audit);
        struct kms_dispatcher dispatcher;
        r = kms_dispatcher_init(&dispatcher, c, store, audit);
        struct kms_server *srv = NULL;
        if (r < 0)
                log_error("Cannot open the attestation tables in %s: %s", c->database, strerror(-r));
        else
                r = kms_server_new(c, &dispatcher, ctx, &srv);
        struct reload rl = { .args = &a, .revocation = revocation };
        if (r < 0) {
                if (!srv && dispatcher.attest)
                        log_error_errno(r, "Cannot listen on %s: %m", c->listen);
        } else {
                kms_server_set_revocation(srv, revocation);
                kms_server_on_reload(srv, reload_revocation, &rl);
                printf("listening on %d\n", kms_server_port(srv));
                fflush(stdout);
                log_notice("Serving KMIP on %s (port %d), %u workers", c->listen, kms_server_port(srv), c->workers);
                r = kms_server_run(srv);
                kms_server_free(srv);
                log_notice("Stopped");
        }
        kms_dispatcher_done(&dispatcher);
        store_set_commit_hook(store, NULL, NULL);
        audit_close(audit);
        SSL_CTX_free(ctx);
        return r < 0 ? 1 : 0;
}

static int init_main(int argc, char *argv[]) {
        struct args a;
        int r = parse_args(argc, argv, help_init, &a);
        if (r < 0 || a.help)
                return r < 0 ? 2 : 0;
        if (optind != argc - 1) {
                fputs(help_init, stderr);
                return 2;
        }
        struct kms_init_options o = {
                .dir = argv[optind], .clients = a.clients, .n_clients = a.n_clients,
                .hostname = a.hostname, .listen = a.listen, .days = a.days, .rsa = a.rsa,
        };
        r = kms_init(&o);
        if (r < 0)
                return 1;
        printf("Created %s. Start the server with:\n  vmcrypt-kms serve --config %s/kms.conf\n", o.dir, o.dir);
        return 0;
}

static int issue_main(int argc, char *argv[]) {
        struct args a;
        int r = parse_args(argc, argv, help_issue, &a);
        if (r < 0 || a.help)
                return r < 0 ? 2 : 0;
        if (optind != argc - 2) {
                fputs(help_issue, stderr);
                return 2;
        }
        /* A new credential: written to the operator's log of DIR's server. */
        const char *dir = argv[optind], *cn = argv[optind + 1];
        char path[4096], msg[128];
        snprintf(path, sizeof(path), "%s/kms.conf", dir);
        _cleanup_(kms_config_freep) struct kms_config *c = NULL;
        struct error err = { 0 };
        r = kms_config_load(path, &c, &err);
        if (r < 0) {
                log_error_errno(r, "Cannot read %s (%s): the issue is audited in its operator-audit-log, so nothing "
                                "was issued.", path, err.text[0] ? err.text : strerror(-r));
                return 1;
        }
        _cleanup_(operator_log_close) struct operator_log ol = { 0 };
        int days = a.days ? a.days : 825;
        snprintf(msg, sizeof(msg), "client certificate for %d days", days);
        if (operator_log_open(c, &ol) < 0 || operator_log_record(&ol, "issue-client", cn, msg, 1) < 0)
                return 1;
        r = kms_init_issue_client(dir, cn, a.not_before, days);
        (void) operator_log_record(&ol, "issue-client", cn, msg, r);
        if (r == -EPERM) /* unsafe ownership or mode: said, with the fix */
                return 1;
        if (r < 0) {
                log_error_errno(r, "Cannot issue the client certificate: %m");
                return 1;
        }
        return 0;
}

static int rotate_main(int argc, char *argv[]) {
        struct args a;
        int r = parse_args(argc, argv, help_rotate, &a);
        if (r < 0 || a.help)
                return r < 0 ? 2 : 0;
        _cleanup_(kms_config_freep) struct kms_config *c = NULL;
        if (load_config(&a, &c) < 0)
                return 1;
        /* The new passphrase first: a bad one stops the command before the store
         * is even opened. */
        _cleanup_(secret_freep) struct secret *pass = NULL;
        if (a.new_passfile && kms_master_read_passphrase(a.new_passfile, true, &pass) < 0)
                return 1;
        _cleanup_(store_freep) struct store *store = NULL;
        r = kms_master_open_store(c, a.prompt, &store);
        if (r < 0)
                return 1;
        if (!a.new_passfile && !c->master_key_file) {
                log_error("The store uses a passphrase: give the new one with --new-passphrase-file FILE.");
                return 1;
        }
        uint64_t count = 0;
        (void) store_count(store, &count);
        _cleanup_(operator_log_close) struct operator_log ol = { 0 };
        const char *what = pass ? "to a passphrase" : "to a new master key file";
        if (operator_log_open(c, &ol) < 0 || operator_log_record(&ol, "rotate-master-key", NULL, what, 1) < 0)
                return 1;
        r = kms_master_rotate(c, pass, store);
        (void) operator_log_record(&ol, "rotate-master-key", NULL, what, r);
        if (r < 0) {
                log_error_errno(r, "Master key rotation failed; the old master key is still valid: %m");
                return 1;
        }
        printf("Re-encrypted %llu objects under the new master key%s.\n", (unsigned long long) count,
               pass ? " (passphrase); set passphrase-file in the configuration" : "");
        return 0;
}

/* Findings go to standard output, prefixed with the file name, as a compiler's. */
static void print_finding(unsigned long line, const char *what, void *userdata) {
        printf("%s:%lu: %s\n", (const char *) userdata, line, what);
}

static int audit_verify_main(int argc, char *argv[]) {
        struct args a;
        int r = parse_args(argc, argv, help_audit_verify, &a);
        if (r < 0 || a.help)
                return r < 0 ? 2 : 0;
        if (optind < argc - 1) {
                fputs(help_audit_verify, stderr);
                return 2;
        }
        _cleanup_(kms_config_freep) struct kms_config *c = NULL;
        const char *log = optind < argc ? argv[optind] : NULL;
        const char *key = a.key;
        if (!log || !key) {
                if (load_config(&a, &c) < 0)
                        return 2;
                log = log ? log : c->audit_log;
                key = key ? key : c->audit_key;
        }
        if (!log) {
                log_error("The configuration has no audit log (audit-log = none).");
                return 2;
        }
        unsigned long lines = 0;
        r = audit_verify(log, key, print_finding, (void *) log, &lines);
        if (r == -EBADMSG) {
                printf("%s: %lu lines: the chain is BROKEN (see above)\n", log, lines);
                return 1;
        }
        if (r < 0) {
                log_error_errno(r, "Cannot check %s with the key %s: %m", log, key);
                return 2;
        }
        printf("%s: %lu lines, chain intact\n", log, lines);
        return 0;
}

static const struct {
        const char *name;
        int (*fn)(int argc, char *argv[]);
        const char *help;
} commands[] = {
        { "serve", serve_main, help_serve },
        { "init", init_main, help_init },
        { "issue-client", issue_main, help_issue },
        { "rotate-master-key", rotate_main, help_rotate },
        { "audit-verify", audit_verify_main, help_audit_verify },
        { "host", kms_host_main, kms_help_host },
        { "policy", kms_policy_main, kms_help_policy },
};

int main(int argc, char *argv[]) {
        log_set_program("vmcrypt-kms");
        /* libtss2-mu logs every malformed TPM structure it is given on stderr; a
         * client's evidence is untrusted input and must not fill our log. Our own
         * refusal says what was wrong. TSS2_LOG set by the operator still wins. */
        (void) setenv("TSS2_LOG", "all+NONE", 0);
        /* Locked, non-dumpable memory: the master key and every object key live there. */
        if (secret_init_process(8U << 20) < 0)
                log_warning("Cannot make the process non-dumpable; keys might reach a core dump");
        if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
                fputs(help_main, argc < 2 ? stderr : stdout);
                return argc < 2 ? 2 : 0;
        }
        if (strcmp(argv[1], "--version") == 0) {
                printf("vmcrypt-kms %s\n", VMCRYPT_VERSION);
                return 0;
        }
        if (strcmp(argv[1], "help") == 0) {
                for (size_t i = 0; argc > 2 && i < ELEMENTSOF(commands); i++)
                        if (strcmp(argv[2], commands[i].name) == 0) {
                                fputs(commands[i].help, stdout);
                                return 0;
                        }
                fputs(help_main, stdout);
                return 0;
        }
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (strcmp(argv[1], commands[i].name) == 0)
                        return commands[i].fn(argc - 1, argv + 1);
        log_error("Unknown command '%s'. Run 'vmcrypt-kms --help'.", argv[1]);
        return 2;
}
