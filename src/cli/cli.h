/* Shared pieces of the vmcrypt command line: the subcommand table type, the one
 * mapping from -errno to exit codes, and option helpers. */
#pragma once

#include <stdbool.h>

struct cli_command {
        const char *name;
        int (*run)(int argc, char *argv[]);
        const char *summary;
};

/* Exit codes (documented in `vmcrypt --help` and README). */
enum {
        EXIT_OK = 0,
        EXIT_FAILURE_GENERAL = 1,
        EXIT_USAGE = 2,
        EXIT_WRONG_KEY = 3,
        EXIT_NOT_FOUND = 4,
        EXIT_BUSY = 5,
        EXIT_NO_SPACE = 6,
        EXIT_UNREACHABLE = 7,
        EXIT_DENIED = 8,
        EXIT_BAD_DATA = 9,
        EXIT_ROLLED_BACK = 10,  /* resume: the job had not started; the disk is as before */
        EXIT_UNSUPPORTED = 11,  /* not a raw disk (qcow2, VMDK, ...), or a volume feature
                                 * the target format lacks (convert) */
};

/* Map a negative errno (or 0) to one of the exit codes above. */
int cli_exit_code(int r);

/* Find name in a NULL-terminated table and run it with argv shifted; prints the
 * table as help on "help", -h, --help or an unknown name. Returns an exit code. */
int cli_dispatch(const char *group, const struct cli_command *table, int argc, char *argv[]);

/* Print a usage error ("Try '<cmd> --help'") and return EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parse a size such as 4096, 64M, 2G, 1T (binary units); 0 or -EINVAL. */
int cli_parse_size(const char *s, unsigned long long *ret);

/* Whether stdout/stderr is a terminal (for progress bars vs JSON lines). */
bool cli_stderr_is_tty(void);
