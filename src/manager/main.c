/* vmcrypt-manager: the table of subcommands and their manuals; the work is in
 * init.c, config.c and server.c. */
#include <errno.h>
#include <getopt.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "fleet/api.h"
#include "manager/manager.h"
#include "shared/log.h"

static const char help_main[] =
        "Usage: vmcrypt-manager COMMAND [OPTIONS]\n"
        "\n"
        "The control plane of a vmcrypt fleet: an HTTPS REST/JSON API over the hosts,\n"
        "VMs and disks the host agents (vmcrypt-agent) report, jobs that encrypt and\n"
        "decrypt VMs on their hosts, and an append-only event log. Every client, agents\n"
        "included, authenticates with a certificate from the manager's CA; its CN names\n"
        "it and manager.conf gives it a role, a named set of privileges. The manager\n"
        "never sees a key: agents get keys from their key providers with their hosts'\n"
        "own identities; the manager knows the providers by name and endpoints.\n"
        "\n"
        "Commands:\n"
        "  init DIR          create a CA, the server and admin certificates, agent\n"
        "                    certificates and manager.conf in DIR\n"
        "  issue DIR CN      issue one more client certificate (or bearer token),\n"
        "                    with a role\n"
        "  serve             run the server (foreground)\n"
        "  routes            print the API's routes and the privilege each needs\n"
        "  help [COMMAND]    show this text or a command's manual\n";

static const char help_init[] =
        "Usage: vmcrypt-manager init DIR [--agent HOST]... [--listen HOST:PORT]\n"
        "                            [--hostname NAME] [--address IP]... [--days N]\n"
        "\n"
        "Create a ready-to-run directory DIR (mode 0700):\n"
        "  ca.crt, ca.key                 the manager's CA (EC P-256, 10 years)\n"
        "  server.crt, server.key         the server certificate: SAN localhost,\n"
        "                                 127.0.0.1, ::1, the host name, each --address\n"
        "  client-admin.crt/.key          the first administrator (role admin)\n"
        "  client-HOST.crt/.key           one agent certificate per --agent (role agent;\n"
        "                                 the CN is the host's name in the fleet)\n"
        "  manager.conf                   the configuration, paths relative to DIR\n"
        "  admin.conf, HOST.conf          client settings: the manager's URL, CA,\n"
        "                                 certificate and key, for 'vmcrypt\n"
        "                                 --manager-config' and 'vmcrypt-agent --config'\n"
        "Keys are created 0600 and never overwritten; a DIR with a CA is refused.\n"
        "\n"
        "Options:\n"
        "  --agent HOST        issue an agent certificate for HOST (repeatable)\n"
        "  --listen HOST:PORT  the address to serve on (default 127.0.0.1:8443)\n"
        "  --hostname NAME     host name in the server certificate (default: this host)\n"
        "  --address IP        one more IP address the agents reach the manager at\n"
        "                      (repeatable)\n"
        "  --days N            lifetime of server and client certificates (default 825)\n";

static const char help_issue[] =
        "Usage: vmcrypt-manager issue DIR CN --role ROLE [--days N]\n"
        "       vmcrypt-manager issue DIR NAME --role ROLE --token [--days N]\n"
        "       vmcrypt-manager issue DIR NAME --renew [--days N]\n"
        "\n"
        "Issue a client certificate for CN from DIR's CA (DIR/client-CN.crt, .key),\n"
        "add 'client = CN ROLE' to DIR/manager.conf and write DIR/CN.conf. It takes\n"
        "effect when the manager reads manager.conf again (SIGHUP, or a restart).\n"
        "\n"
        "With --token: a bearer token for NAME instead, for callers that cannot hold\n"
        "a certificate (scripts, CI). DIR/token-NAME (mode 0600) holds the token, 64\n"
        "hex digits of 256 random bits, and is its only copy: manager.conf gets\n"
        "'token = NAME ROLE SHA256 EXPIRES' (the token's SHA-256, its end in seconds\n"
        "since 1970), DIR/NAME.conf the client settings with 'token = token-NAME'.\n"
        "Clients send it as 'Authorization: Bearer TOKEN' over TLS without a client\n"
        "certificate; once manager.conf has a token line the manager accepts such\n"
        "sessions, and answers 401 to a request in one that has no valid token. A\n"
        "token expires after --days (default 90); to revoke one, delete its line and\n"
        "send the manager SIGHUP. A token's role may not hold the agent privilege.\n"
        "\n"
        "A role is a named set of privileges (docs/fleet.md):\n"
        "  read               see hosts, VMs, jobs, events, policies, providers\n"
        "  encrypt            encrypt VMs; cancel, pause, resume encrypt jobs\n"
        "  decrypt            decrypt VMs; cancel, pause, resume decrypt jobs\n"
        "  rekey              rekey VMs (shallow and deep); control rekey jobs\n"
        "  start              start VMs on their hosts (the host releases the keys)\n"
        "  manage-policies    set encryption policies\n"
        "  manage-providers   register and unregister the fleet's key providers\n"
        "  agent              the host agent of host CN: reports it, runs its jobs\n"
        "\n"
        "Built-in roles:\n"
        "  admin              every privilege but agent\n"
        "  operator           read, encrypt, decrypt, rekey, start\n"
        "  auditor            read\n"
        "  agent              agent\n"
        "  no-crypto-admin    read, start, manage-policies: an administrator who\n"
        "                     may neither encrypt, decrypt, rekey nor manage providers\n"
        "                     (vSphere's \"No cryptography administrator\")\n"
        "Other roles come from 'role NAME = PRIV PRIV ...' lines in DIR/manager.conf.\n"
        "\n"
        "With --renew: a new certificate (or token) for a client manager.conf names,\n"
        "before the old one ends (host list and the certificate-expiring events say\n"
        "when). The new files get a new name (client-NAME-TIME.crt/.key, or\n"
        "token-NAME-TIME) and DIR/NAME.conf is switched to them in one rename. A\n"
        "token's line in manager.conf gets the new hash: the old token stops when the\n"
        "manager reloads (SIGHUP). An old certificate stays valid until its end:\n"
        "once the new one is on the host (copy it with NAME.conf; an agent reads its\n"
        "settings at start), revoke the old one with the printed revoked-client line.\n"
        "\n"
        "Options:\n"
        "  --role ROLE         the client's role (required, but not with --renew)\n"
        "  --token             issue a bearer token, not a certificate\n"
        "  --renew             a new certificate or token for an existing client\n"
        "  --days N            lifetime (default: 825 for a certificate, 90 for a token)\n";

static const char help_serve[] =
        "Usage: vmcrypt-manager serve --config FILE [--log-level LEVEL]\n"
        "\n"
        "Serve the API in the foreground until SIGTERM or SIGINT. SIGHUP reads\n"
        "manager.conf again: clients, tokens, roles, revoked-client and new-data-disk\n"
        "take effect at once, also for open long polls and event streams (a stream\n"
        "whose reader lost read ends); listen, tls-*, database and the limits need a\n"
        "restart; a file that does not read keeps the running configuration (logged).\n"
        "manager.conf:\n"
        "  listen = HOST:PORT             address and port (default 127.0.0.1:8443)\n"
        "  tls-cert, tls-key = FILE       the server certificate and key\n"
        "  tls-ca = FILE                  the CA that issues client certificates\n"
        "  database = FILE                the SQLite store (created and migrated)\n"
        "  role NAME = PRIV PRIV ...      a role: a named set of privileges (read,\n"
        "                                 encrypt, decrypt, rekey, start,\n"
        "                                 manage-policies, manage-providers, agent);\n"
        "                                 built in: admin, operator, auditor, agent,\n"
        "                                 no-crypto-admin\n"
        "  client = CN ROLE               a client and its role (repeatable); a\n"
        "                                 certificate of the CA with another CN gets 403\n"
        "  token = NAME ROLE SHA256 EXPIRES\n"
        "                                 a bearer token and its role (repeatable;\n"
        "                                 'vmcrypt-manager issue --token' writes it); with\n"
        "                                 one, TLS sessions without a client certificate\n"
        "                                 are accepted and their requests need a token\n"
        "  revoked-client = SHA256HEX     refuse this certificate (403, audited)\n"
        "  new-data-disk = event|encrypt  a plain disk that appears in a VM whose other\n"
        "                                 disks are encrypted: an event (default), or an\n"
        "                                 event and an encrypt job for the VM\n"
        "Limits (what anyone who reaches the port may hold; docs/fleet.md):\n"
        "  max-connections = N            connections in all (10000; lowered under\n"
        "                                 the open file limit)\n"
        "  max-unauthenticated = N        connections in their TLS handshake (1000,\n"
        "                                 at most half of max-connections)\n"
        "  max-unauthenticated-per-address = N\n"
        "                                 of those, from one address (100)\n"
        "  handshake-timeout = SECONDS    to finish the TLS handshake (10)\n"
        "  max-stream-buffer = BYTES      unread bytes after which an event stream is\n"
        "                                 closed (1048576)\n"
        "Paths are relative to the configuration file. The API is described in\n"
        "docs/fleet.md and docs/manager-openapi.yaml.\n"
        "\n"
        "Options:\n"
        "  --config FILE      manager.conf (required)\n"
        "  --log-level LEVEL  error, warning, notice, info (default), debug\n";

static int cmd_init(int argc, char *argv[]) {
        static const struct option opts[] = {
                { "agent", required_argument, NULL, 'a' },    { "listen", required_argument, NULL, 'l' },
                { "hostname", required_argument, NULL, 'n' }, { "address", required_argument, NULL, 'A' },
                { "days", required_argument, NULL, 'd' },     { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *agents[256], *addresses[64];
        struct manager_init_options o = { .agents = agents, .addresses = addresses };
        int c;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0)
                switch (c) {
                case 'a':
                        if (o.n_agents >= 256)
                                return log_error("too many --agent"), 2;
                        agents[o.n_agents++] = optarg;
                        break;
                case 'A':
                        if (o.n_addresses >= 64)
                                return log_error("too many --address"), 2;
                        addresses[o.n_addresses++] = optarg;
                        break;
                case 'l': o.listen = optarg; break;
                case 'n': o.hostname = optarg; break;
                case 'd': o.days = atoi(optarg); break;
                case 'h': fputs(help_init, stdout); return 0;
                default: return 2;
                }
        if (optind + 1 != argc)
                return log_error("init takes one directory; try 'vmcrypt-manager init --help'"), 2;
        o.dir = argv[optind];
        struct error err = { 0 };
        if (manager_init(&o, &err) < 0)
                return log_error("%s", err.text), 1;
        printf("Created %s: manager.conf, admin.conf%s\n", o.dir, o.n_agents ? " and one HOST.conf per agent" : "");
        return 0;
}

static int cmd_issue(int argc, char *argv[]) {
        static const struct option opts[] = {
                { "role", required_argument, NULL, 'r' },
                { "days", required_argument, NULL, 'd' },
                { "token", no_argument, NULL, 't' },
                { "renew", no_argument, NULL, 'R' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *role = NULL;
        bool token = false, renew = false;
        int days = 0, c;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0)
                switch (c) {
                case 'r': role = optarg; break;
                case 'd': {
                        char *end;
                        long v = strtol(optarg, &end, 10);
                        if (!*optarg || *end || v < 1 || v > 36500)
                                return log_error("--days takes a number of days from 1 to 36500"), 2;
                        days = (int) v;
                        break;
                }
                case 't': token = true; break;
                case 'R': renew = true; break;
                case 'h': fputs(help_issue, stdout); return 0;
                default: return 2;
                }
        if (optind + 2 != argc || (renew ? role || token : !role))
                return log_error("issue takes DIR CN --role ROLE [--token], or DIR CN --renew; try "
                                 "'vmcrypt-manager issue --help'"), 2;
        struct error err = { 0 };
        if (renew) {
                struct manager_renewal rn;
                int r = manager_renew(argv[optind], argv[optind + 1], days, &rn, &err);
                if (r < 0)
                        return log_error("%s", err.text), r == -EINVAL || r == -ENOENT ? 2 : 1;
                if (rn.token)
                        printf("Renewed the token of %s: %s/%s, named in %s/%s.conf; the old token stops when the "
                               "manager reloads (SIGHUP)\n", argv[optind + 1], argv[optind], rn.base, argv[optind],
                               argv[optind + 1]);
                else
                        printf("Renewed the certificate of %s: %s/%s.crt and .key, named in %s/%s.conf. Once the "
                               "client uses it, revoke the old one in manager.conf:\nrevoked-client = %s\n",
                               argv[optind + 1], argv[optind], rn.base, argv[optind], argv[optind + 1],
                               rn.old_fingerprint[0] ? rn.old_fingerprint : "(the old certificate's SHA-256)");
                return 0;
        }
        const char *dir = argv[optind], *name = argv[optind + 1];
        int r = token ? manager_issue_token(dir, name, role, days, &err) : manager_issue(dir, name, role, days, &err);
        if (r < 0)
                return log_error("%s", err.text), r == -EINVAL ? 2 : 1;
        if (token)
                printf("Issued the token %s/token-%s (role %s, %d days) and %s/%s.conf; reload the manager (SIGHUP) to "
                       "use it\n", dir, name, role, days > 0 ? days : 90, dir, name);
        else
                printf("Issued %s/client-%s.crt (role %s); reload the manager (SIGHUP) to use it\n", dir, name, role);
        return 0;
}

static const char help_routes[] =
        "Usage: vmcrypt-manager routes\n"
        "\n"
        "Print the API's route table, one route a line: METHOD PATH PRIVILEGE, the\n"
        "privilege a caller's role needs (\"any\": every client of the manager;\n"
        "\"encrypt|decrypt|rekey|start\": the one of the job's kind). It is what the server\n"
        "dispatches on; docs/manager-openapi.yaml describes the same paths (a test\n"
        "compares the two).\n";

static int cmd_routes(int argc, char *argv[]) {
        if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
                return fputs(help_routes, stdout), 0;
        if (argc > 1)
                return log_error("routes takes no arguments"), 2;
        for (const struct fleet_route *r = fleet_routes; r->method; r++)
                printf("%s %s %s\n", r->method, r->pattern, fleet_route_needs(r));
        return 0;
}

static int cmd_serve(int argc, char *argv[]) {
        static const struct option opts[] = {
                { "config", required_argument, NULL, 'c' },
                { "log-level", required_argument, NULL, 'L' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *config = NULL;
        int c;
        while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) >= 0)
                switch (c) {
                case 'c': config = optarg; break;
                case 'L': {
                        enum log_level l;
                        if (log_level_from_string(optarg, &l) < 0)
                                return log_error("unknown log level '%s'", optarg), 2;
                        log_set_level(l);
                        break;
                }
                case 'h': fputs(help_serve, stdout); return 0;
                default: return 2;
                }
        if (!config || optind != argc)
                return log_error("serve needs --config FILE; try 'vmcrypt-manager serve --help'"), 2;
        static struct manager_config conf;
        struct error err = { 0 };
        if (manager_config_read(config, &conf, &err) < 0)
                return log_error("%s", err.text), 2;
        prctl(PR_SET_DUMPABLE, 0);
        signal(SIGPIPE, SIG_IGN);
        if (manager_serve(&conf, &err) < 0)
                return log_error("%s", err.text), 1;
        return 0;
}

int main(int argc, char *argv[]) {
        log_set_program("vmcrypt-manager");
        log_set_level(LOG_LEVEL_INFO);
        static const struct {
                const char *name;
                int (*run)(int, char **);
                const char *help;
        } cmds[] = {
                { "init", cmd_init, help_init },
                { "issue", cmd_issue, help_issue },
                { "serve", cmd_serve, help_serve },
                { "routes", cmd_routes, help_routes },
        };
        if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
                fputs(help_main, argc < 2 ? stderr : stdout);
                return argc < 2 ? 2 : 0;
        }
        if (strcmp(argv[1], "help") == 0) {
                for (size_t i = 0; argc > 2 && i < sizeof(cmds) / sizeof(cmds[0]); i++)
                        if (strcmp(argv[2], cmds[i].name) == 0)
                                return fputs(cmds[i].help, stdout), 0;
                fputs(help_main, stdout);
                return 0;
        }
        for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
                if (strcmp(argv[1], cmds[i].name) == 0)
                        return cmds[i].run(argc - 1, argv + 1);
        log_error("unknown command '%s'; try 'vmcrypt-manager --help'", argv[1]);
        return 2;
}
