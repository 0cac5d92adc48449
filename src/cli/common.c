/* Helpers shared by all vmcrypt subcommands: exit codes, dispatch, parsing. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "shared/log.h"

int cli_exit_code(int r) {
        if (r >= 0)
                return EXIT_OK;
        switch (-r) {
        case EINVAL:
        case E2BIG:
                return EXIT_USAGE;
        case EKEYREJECTED:
        case EPERM:
                return EXIT_WRONG_KEY;
        case ENOENT:
        case ENODEV:
        case ENXIO:
        case EIDRM:     /* key destroyed on the KMS */
                return EXIT_NOT_FOUND;
        case EBUSY:
        case EAGAIN:
        case EEXIST:
        case EALREADY:
        case EINPROGRESS:
                return EXIT_BUSY;
        case ENOSPC:
        case EFBIG:
                return EXIT_NO_SPACE;
        case ECONNREFUSED:
        case ETIMEDOUT:
        case EHOSTUNREACH:
        case ENETUNREACH:
        case ECONNRESET:
                return EXIT_UNREACHABLE;
        case EACCES:
        case EKEYREVOKED:
        case EKEYEXPIRED:
        case ENOKEY:    /* key exists but is not active */
        case EXDEV:     /* key may not leave the KMS (not extractable) */
                return EXIT_DENIED;
        case EMEDIUMTYPE:
                return EXIT_UNSUPPORTED;
        case EBADMSG:
        case EUCLEAN:
        case EPROTO:
        case EILSEQ:
                return EXIT_BAD_DATA;
        default:
                return EXIT_FAILURE_GENERAL;
        }
}

static void print_table(const char *group, const struct cli_command *table, FILE *out) {
        fprintf(out, "Usage: %s COMMAND [OPTIONS...]\n\nCommands:\n", group);
        for (const struct cli_command *c = table; c->name; c++)
                fprintf(out, "  %-16s %s\n", c->name, c->summary);
        fprintf(out, "\nRun '%s COMMAND --help' for the options of one command.\n", group);
}

int cli_dispatch(const char *group, const struct cli_command *table, int argc, char *argv[]) {
        if (argc < 2) {
                print_table(group, table, stderr);
                return EXIT_USAGE;
        }
        const char *name = argv[1];
        if (strcmp(name, "help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0) {
                print_table(group, table, stdout);
                return EXIT_OK;
        }
        for (const struct cli_command *c = table; c->name; c++)
                if (strcmp(c->name, name) == 0) {
                        optind = 0; /* full getopt reset for the subcommand */
                        return c->run(argc - 1, argv + 1);
                }
        fprintf(stderr, "%s: unknown command '%s'\n\n", group, name);
        print_table(group, table, stderr);
        return EXIT_USAGE;
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        log_error("%s", msg);
        fprintf(stderr, "Try '%s --help' for more information.\n", cmd);
        return EXIT_USAGE;
}

int cli_parse_size(const char *s, unsigned long long *ret) {
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || end == s || s[0] == '-')
                return -EINVAL;
        unsigned shift = 0;
        switch (*end) {
        case 0: break;
        case 'k': case 'K': shift = 10; end++; break;
        case 'm': case 'M': shift = 20; end++; break;
        case 'g': case 'G': shift = 30; end++; break;
        case 't': case 'T': shift = 40; end++; break;
        default: return -EINVAL;
        }
        if (*end == 'i' && shift)
                end++;
        if ((*end == 'B' || *end == 'b') && end[1] == 0)
                end++;
        if (*end != 0)
                return -EINVAL;
        if (shift && v > (~0ULL >> shift))
                return -ERANGE;
        *ret = v << shift;
        return 0;
}

bool cli_stderr_is_tty(void) {
        return isatty(STDERR_FILENO) == 1;
}
