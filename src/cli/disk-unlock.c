/* vmcrypt disk unlock: unwrap a bound disk's unlock secret through its key provider
 * and hand it to a command on a pipe (never a file, argv or the environment), or,
 * with --check, only prove that each disk can be unlocked. --check over many disks
 * shares one KMS connection per provider: the boot-storm path. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "cli/cli.h"
#include "cli/disk-keys.h"
#include "keys/unlock.h"
#include "shared/fd-util.h"
#include "shared/hex.h"
#include "shared/log.h"

enum out_format { FMT_RAW, FMT_HEX, FMT_BASE64 };

static void help(void) {
        printf("Usage: vmcrypt disk unlock [OPTIONS] IMAGE -- COMMAND [ARGS...]\n"
               "       vmcrypt disk unlock --check [OPTIONS] IMAGE...\n\n"
               "Unwrap the disk's unlock secret through its key provider and run COMMAND with the\n"
               "secret readable on a pipe at file descriptor N (default 0, standard input).\n"
               "Example: vmcrypt disk unlock IMG -- cryptsetup open --test-passphrase --key-file - IMG\n\n"
               "  --fd N                  descriptor the secret is readable on (default 0)\n"
               "  --format raw|hex|base64 encoding of the secret on the pipe (default raw)\n"
               "  --check                 only prove each IMAGE unlocks (KMS unwrap + keyslot test)\n"
               "  --header FILE           detached LUKS header (one IMAGE only)\n"
               "  --providers FILE        provider configuration (default %s)\n"
               "  -j, --jobs N            --check: N worker processes, each with its own KMS\n"
               "                          connection (default 1)\n"
               "  -q, --quiet             --check: print nothing for disks that unlock\n",
               PROVIDERS_DEFAULT_PATH);
}

/* The secret encoded for the pipe, in secret memory too. */
static int encode(const struct secret *s, enum out_format f, struct secret **ret) {
        struct secret *out;
        switch (f) {
        case FMT_RAW:
                out = secret_new_copy(s->data, s->size);
                break;
        case FMT_HEX:
                out = secret_new(2 * s->size + 1);
                if (out) {
                        hex_encode(s->data, s->size, (char *) out->data);
                        secret_truncate(out, 2 * s->size);
                }
                break;
        default:
                out = secret_new(4 * ((s->size + 2) / 3) + 1);
                if (out) {
                        int n = EVP_EncodeBlock(out->data, s->data, (int) s->size);
                        secret_truncate(out, (size_t) n);
                }
                break;
        }
        if (!out)
                return -ENOMEM;
        *ret = out;
        return 0;
}

/* Run argv with the secret on a pipe at fd; returns the command's exit code. */
static int run_with_secret(const struct secret *s, int fd, char **argv) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return log_error_errno(-errno, "cannot make a pipe: %m"), EXIT_FAILURE_GENERAL;
        pid_t pid = fork();
        if (pid < 0)
                return log_error_errno(-errno, "cannot fork: %m"), EXIT_FAILURE_GENERAL;
        if (pid == 0) {
                close(p[1]);
                /* dup2 clears O_CLOEXEC on the copy; if the pipe already sits at fd, clear
                 * it by hand. */
                if (p[0] == fd ? fcntl(fd, F_SETFD, 0) < 0 : dup2(p[0], fd) < 0)
                        _exit(127);
                signal(SIGPIPE, SIG_DFL);
                execvp(argv[0], argv);
                fprintf(stderr, "vmcrypt: cannot run %s: %s\n", argv[0], strerror(errno));
                _exit(127);
        }
        close(p[0]);
        /* A command that exits without reading must not kill us with SIGPIPE. */
        signal(SIGPIPE, SIG_IGN);
        int r = write_full(p[1], s->data, s->size);
        close(p[1]);
        if (r < 0 && r != -EPIPE)
                log_warning_errno(r, "writing the secret to %s failed: %m", argv[0]);
        int status = 0;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return log_error_errno(-errno, "waitpid: %m"), EXIT_FAILURE_GENERAL;
        if (WIFEXITED(status))
                return WEXITSTATUS(status);
        return 128 + WTERMSIG(status);
}

/* Check images[i] for every i = worker (mod stride), with one unlocker (one KMS
 * connection per provider) for all of them. Returns an exit code. */
static int check_shard(const char *providers, const char *header, char **images, int n, int worker, int stride,
                       int quiet) {
        char err[1024] = "";
        _cleanup_(unlocker_freep) struct unlocker *u = NULL;
        int r = unlocker_new(providers, &u, err, sizeof(err));
        if (r < 0)
                return log_error("%s", err), cli_exit_code(r);
        int first_fail = 0;
        for (int i = worker; i < n; i += stride) {
                _cleanup_(secret_freep) struct secret *s = NULL;
                struct unlock_result res = { 0 };
                r = unlocker_unlock(u, images[i], header, &s, &res, err, sizeof(err));
                if (r < 0) {
                        log_error("cannot unlock %s: %s", images[i], err);
                        if (!first_fail)
                                first_fail = r;
                        continue;
                }
                if (!quiet) {
                        /* One write per line, so parallel workers do not interleave. */
                        char line[1024];
                        int len = snprintf(line, sizeof(line), "%s: ok (keyslot %d, provider %s, KEK %s)\n", images[i],
                                           res.keyslot, res.token->provider, res.token->kek_id);
                        (void) write_full(STDOUT_FILENO, line, (size_t) MIN(len, (int) sizeof(line) - 1));
                }
                token_free(res.token);
        }
        return cli_exit_code(first_fail);
}

/* --check over many disks: the boot-storm path. Unlocking is CPU work in
 * libcryptsetup (PBKDF2, anti-forensic merge, digest) plus a KMS round trip, so
 * several worker processes overlap both; processes rather than threads because
 * libcryptsetup keeps global state. */
static int check_many(const char *providers, const char *header, char **images, int n, int jobs, int quiet) {
        if (jobs <= 1)
                return check_shard(providers, header, images, n, 0, 1, quiet);
        fflush(NULL);
        pid_t pids[256];
        int started = 0, result = EXIT_OK;
        for (int w = 0; w < jobs; w++) {
                pid_t pid = fork();
                if (pid < 0) {
                        log_error_errno(-errno, "cannot start worker %d: %m", w);
                        result = EXIT_FAILURE_GENERAL;
                        break;
                }
                if (pid == 0)
                        _exit(check_shard(providers, header, images, n, w, jobs, quiet));
                pids[started++] = pid;
        }
        for (int w = 0; w < started; w++) {
                int status = 0;
                while (waitpid(pids[w], &status, 0) < 0 && errno == EINTR)
                        ;
                int code = WIFEXITED(status) ? WEXITSTATUS(status) : EXIT_FAILURE_GENERAL;
                if (code != EXIT_OK && result == EXIT_OK)
                        result = code;
        }
        return result;
}

int disk_unlock_main(int argc, char *argv[]) {
        static const struct option opts[] = {
                { "fd", required_argument, NULL, 'f' },
                { "format", required_argument, NULL, 'F' },
                { "check", no_argument, NULL, 'c' },
                { "header", required_argument, NULL, 'H' },
                { "providers", required_argument, NULL, KEYS_OPT_PROVIDERS },
                { "quiet", no_argument, NULL, 'q' },
                { "jobs", required_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        const char *header = NULL, *providers = NULL;
        int fd = 0, check = 0, quiet = 0, jobs = 1, c;
        enum out_format fmt = FMT_RAW;
        /* '+': stop at the first non-option, so COMMAND's own options stay its own. */
        while ((c = getopt_long(argc, argv, "+qhj:", opts, NULL)) >= 0) {
                switch (c) {
                case 'f': {
                        char *end = NULL;
                        long v = strtol(optarg, &end, 10);
                        if (!*optarg || *end || v < 0 || v > 1023)
                                return cli_usage_error("vmcrypt disk unlock", "--fd wants a descriptor number, not '%s'", optarg);
                        fd = (int) v;
                        break;
                }
                case 'F':
                        if (strcmp(optarg, "raw") == 0)
                                fmt = FMT_RAW;
                        else if (strcmp(optarg, "hex") == 0)
                                fmt = FMT_HEX;
                        else if (strcmp(optarg, "base64") == 0)
                                fmt = FMT_BASE64;
                        else
                                return cli_usage_error("vmcrypt disk unlock", "--format is raw, hex or base64, not '%s'", optarg);
                        break;
                case 'c': check = 1; break;
                case 'q': quiet = 1; break;
                case 'j': {
                        char *end = NULL;
                        long v = strtol(optarg, &end, 10);
                        if (!*optarg || *end || v < 1 || v > 256)
                                return cli_usage_error("vmcrypt disk unlock", "--jobs wants 1 to 256, not '%s'", optarg);
                        jobs = (int) v;
                        break;
                }
                case 'H': header = optarg; break;
                case KEYS_OPT_PROVIDERS: providers = optarg; break;
                case 'h': help(); return EXIT_OK;
                default: return cli_usage_error("vmcrypt disk unlock", "unknown option");
                }
        }
        int nimg = 0;
        while (optind + nimg < argc && strcmp(argv[optind + nimg], "--") != 0)
                nimg++;
        char **cmd = optind + nimg < argc ? argv + optind + nimg + 1 : NULL;
        if (nimg == 0)
                return cli_usage_error("vmcrypt disk unlock", "no IMAGE given");
        if (!check && (nimg != 1 || !cmd || !*cmd))
                return cli_usage_error("vmcrypt disk unlock",
                                       "give one IMAGE, then '--' and the COMMAND that reads the secret (or use --check)");
        if (check && cmd)
                return cli_usage_error("vmcrypt disk unlock", "--check runs no command");
        if (header && nimg != 1)
                return cli_usage_error("vmcrypt disk unlock", "--header goes with exactly one IMAGE");

        if (check)
                return check_many(providers, header, argv + optind, nimg, MIN(jobs, nimg), quiet);

        char err[1024] = "";
        _cleanup_(unlocker_freep) struct unlocker *u = NULL;
        int r = unlocker_new(providers, &u, err, sizeof(err));
        if (r < 0)
                return log_error("%s", err), cli_exit_code(r);

        const char *image = argv[optind];
        _cleanup_(secret_freep) struct secret *s = NULL, *enc = NULL;
        struct unlock_result res = { 0 };
        r = unlocker_unlock(u, image, header, &s, &res, err, sizeof(err));
        if (r < 0)
                return log_error("cannot unlock %s: %s", image, err), cli_exit_code(r);
        token_free(res.token);
        r = encode(s, fmt, &enc);
        if (r < 0)
                return log_error_errno(r, "out of memory"), EXIT_FAILURE_GENERAL;
        /* Nothing of the unwrapping outlives it while COMMAND runs: the raw secret
         * (only its encoding goes down the pipe), and the providers with their KMS
         * connections, KMIP clients and TLS state (fetched KEKs are freed, wiped, as
         * soon as they have unwrapped). */
        secret_free(TAKE_PTR(s));
        unlocker_free(TAKE_PTR(u));
        return run_with_secret(enc, fd, cmd);

}
