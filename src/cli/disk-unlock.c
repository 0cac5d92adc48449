/* vmcrypt disk unlock: unwrap a bound disk's unlock secret through its key provider
 * and hand it to a command on a pipe (never a file, argv or the environment), or,
 * with --check, only prove that each disk can be unlocked. --check over many disks
 * shares one KMS connection per provider: the boot-storm path. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdbool.h>

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
               "Unwrap the disk's unlock secret through its key provider, put it on a pipe at file\n"
               "descriptor N (default 0, standard input) and run COMMAND in vmcrypt's place: the\n"
               "pipe holds the secret and nothing else, vmcrypt is gone before COMMAND starts, and\n"
               "COMMAND's exit status is the command's own.\n\n"
               "  --fd N                  descriptor the secret is readable on (default 0)\n"
               "  --format raw|hex|base64 encoding of the secret on the pipe (default raw):\n"
               "                          raw  the secret as it is: a bound disk's secret is already\n"
               "                               text (64 hex digits), for cryptsetup --key-file - and\n"
               "                               QEMU --object secret,id=s,file=/dev/fd/N\n"
               "                          base64 for QEMU --object secret,...,format=base64 with\n"
               "                               file=/dev/fd/N\n"
               "                          hex  for binary secrets only; refused for text secrets\n"
               "  --check                 only prove each IMAGE unlocks (KMS unwrap + keyslot test)\n"
               "  --header FILE           detached LUKS header (one IMAGE only)\n"
               "  --providers FILE        provider configuration (default %s)\n"
               "  -j, --jobs N            --check: N worker processes, each with its own KMS\n"
               "                          connection (default 1)\n"
               "  -q, --quiet             --check: print nothing for disks that unlock\n\n"
               "Examples:\n"
               "  vmcrypt disk unlock vm1.img -- cryptsetup open --test-passphrase --key-file - vm1.img\n"
               "  vmcrypt disk unlock --fd 3 --format base64 vm1.img -- qemu-system-x86_64 \\\n"
               "      --object secret,id=sec0,file=/dev/fd/3,format=base64 \\\n"
               "      -blockdev driver=luks,key-secret=sec0,node-name=d0,file.driver=file,file.filename=vm1.img ...\n\n"
               "Exit status: COMMAND's; or 2 usage, 3 the secret opens no keyslot, 4 no token,\n"
               "7 key server unreachable, 8 denied or KEK revoked, 9 damaged token.\n",
               PROVIDERS_DEFAULT_PATH);
}

static bool is_hex_text(const struct secret *s) {
        for (size_t i = 0; i < s->size; i++)
                if (!((s->data[i] >= '0' && s->data[i] <= '9') || (s->data[i] >= 'a' && s->data[i] <= 'f')))
                        return false;
        return s->size > 0;
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

/* Put the secret on a pipe at fd and become argv. The secret is far smaller than a
 * pipe's buffer, so it is written and the write end closed before the command
 * starts: nothing of vmcrypt stays behind holding the secret or as the command's
 * parent (a daemonised QEMU is not orphaned when vmcrypt is signalled). Returns
 * only on failure, with an exit code. */
static int exec_with_secret(struct secret **s, int fd, char **argv) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return log_error_errno(-errno, "cannot make a pipe: %m"), EXIT_FAILURE_GENERAL;
        int r = write_full(p[1], (*s)->data, (*s)->size);
        secret_free(TAKE_PTR(*s));
        close(p[1]);
        if (r < 0) {
                close(p[0]);
                return log_error_errno(r, "cannot write the secret to a pipe: %m"), EXIT_FAILURE_GENERAL;
        }
        /* dup2 clears O_CLOEXEC on the copy; if the pipe already sits at fd, clear it
         * by hand. */
        if (p[0] == fd ? fcntl(fd, F_SETFD, 0) < 0 : dup2(p[0], fd) < 0) {
                close(p[0]);
                return log_error_errno(-errno, "cannot move the pipe to descriptor %d: %m", fd), EXIT_FAILURE_GENERAL;
        }
        if (p[0] != fd)
                close(p[0]);
        fflush(NULL);
        execvp(argv[0], argv);
        log_error_errno(-errno, "cannot run %s: %m", argv[0]);
        return errno == ENOENT ? 127 : 126;
}

/* Check images[i] for every i = worker (mod stride), with one unlocker (one KMS
 * connection per provider) for all of them. Returns an exit code. */
static int check_shard(const char *providers, const char *header, char **images, int n, int worker, int stride,
                       int quiet) {
        struct error err = { 0 };
        _cleanup_(unlocker_freep) struct unlocker *u = NULL;
        int r = unlocker_new(providers, &u, &err);
        if (r < 0)
                return log_error("%s", err.text), cli_exit_code(r);
        int first_fail = 0;
        for (int i = worker; i < n; i += stride) {
                _cleanup_(secret_freep) struct secret *s = NULL;
                struct unlock_result res = { 0 };
                error_clear(&err);
                r = unlocker_unlock(u, images[i], header, &s, &res, &err);
                if (r < 0) {
                        log_error("cannot unlock %s: %s", images[i], err.text);
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
                /* A token tried first and dead costs a refused request at every
                 * unlock (and a line in the key server's audit log). */
                for (unsigned d = 0; d < res.n_dead; d++)
                        log_warning("%s: token %d is dead (KEK %s is %s): remove it with 'vmcrypt disk unbind "
                                    "--token %d %s'", images[i], res.dead[d].id, res.dead[d].kek,
                                    res.dead[d].error == -EKEYREVOKED ? "revoked" : "destroyed", res.dead[d].id,
                                    images[i]);
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

        struct error err = { 0 };
        _cleanup_(unlocker_freep) struct unlocker *u = NULL;
        int r = unlocker_new(providers, &u, &err);
        if (r < 0)
                return log_error("%s", err.text), cli_exit_code(r);

        const char *image = argv[optind];
        _cleanup_(secret_freep) struct secret *s = NULL, *enc = NULL;
        struct unlock_result res = { 0 };
        r = unlocker_unlock(u, image, header, &s, &res, &err);
        if (r < 0)
                return log_error("cannot unlock %s: %s", image, err.text), cli_exit_code(r);
        token_free(res.token);
        /* A bound disk's secret is already text (64 hex digits): hex would encode
         * that text again, and no consumer would match the keyslot. */
        if (fmt == FMT_HEX && is_hex_text(s))
                return cli_usage_error("vmcrypt disk unlock",
                                       "the secret of %s is already hex text: --format hex would encode it twice; "
                                       "use --format raw (cryptsetup --key-file -, QEMU secret file=) or base64 "
                                       "(QEMU secret data=..., format=base64)", image);
        r = encode(s, fmt, &enc);
        if (r < 0)
                return log_error_errno(r, "out of memory"), EXIT_FAILURE_GENERAL;
        secret_free(TAKE_PTR(s));
        /* Providers hold KMS connections (and RFC 5649 mode the KEK): none of it
         * goes into the command. */
        unlocker_free(TAKE_PTR(u));
        return exec_with_secret(&enc, fd, cmd);
}
