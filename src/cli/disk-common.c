/* Helpers shared by the `vmcrypt disk` subcommands: see disk-common.h. */
#include "cli/disk-common.h"

#include <errno.h>
#include <limits.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "shared/key-input.h"
#include "cli/disk-job-record.h"
#include "shared/log.h"

enum {
        ARG_TYPE = 0x100, ARG_HEADER, ARG_SECTOR, ARG_KEY_FILE, ARG_NEW_KEY_FILE, ARG_RANDOM_KEY,
        ARG_PBKDF_MEMORY, ARG_ITER_TIME, ARG_MAX_RATE, ARG_PROGRESS, ARG_YES, ARG_JSON,
        ARG_PROVIDER, ARG_KEK, ARG_VM_NAME, ARG_VM_UUID, ARG_PROVIDERS, ARG_FORCE_RAW,
};

static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "type", required_argument, NULL, ARG_TYPE },
        { "header", required_argument, NULL, ARG_HEADER },
        { "sector-size", required_argument, NULL, ARG_SECTOR },
        { "key-file", required_argument, NULL, ARG_KEY_FILE },
        { "new-key-file", required_argument, NULL, ARG_NEW_KEY_FILE },
        { "random-key", no_argument, NULL, ARG_RANDOM_KEY },
        { "pbkdf-memory", required_argument, NULL, ARG_PBKDF_MEMORY },
        { "iter-time", required_argument, NULL, ARG_ITER_TIME },
        { "max-rate", required_argument, NULL, ARG_MAX_RATE },
        { "progress", required_argument, NULL, ARG_PROGRESS },
        { "yes", no_argument, NULL, ARG_YES },
        { "json", no_argument, NULL, ARG_JSON },
        { "provider", required_argument, NULL, ARG_PROVIDER },
        { "kek", required_argument, NULL, ARG_KEK },
        { "vm-name", required_argument, NULL, ARG_VM_NAME },
        { "vm-uuid", required_argument, NULL, ARG_VM_UUID },
        { "providers", required_argument, NULL, ARG_PROVIDERS },
        { "force-raw", no_argument, NULL, ARG_FORCE_RAW },
        { NULL, 0, NULL, 0 },
};

static unsigned option_group(int c) {
        switch (c) {
        case ARG_TYPE: case ARG_SECTOR: return DOPT_TYPE;
        case ARG_HEADER: return DOPT_HEADER;
        case ARG_KEY_FILE: return DOPT_KEY;
        case ARG_NEW_KEY_FILE: case ARG_RANDOM_KEY: case ARG_PBKDF_MEMORY: case ARG_ITER_TIME: return DOPT_NEWKEY;
        case ARG_MAX_RATE: case ARG_PROGRESS: return DOPT_RUN;
        case ARG_YES: return DOPT_YES;
        case ARG_JSON: return DOPT_JSON;
        case ARG_PROVIDER: case ARG_KEK: case ARG_VM_NAME: case ARG_VM_UUID: return DOPT_PROVIDER;
        case ARG_PROVIDERS: return DOPT_PROVIDER | DOPT_PROVIDERS;
        case ARG_FORCE_RAW: return DOPT_FORCE_RAW;
        default: return 0;
        }
}

static int parse_u32(const char *s, uint32_t *ret) {
        unsigned long long v;
        if (cli_parse_size(s, &v) < 0 || v == 0 || v > UINT32_MAX)
                return -EINVAL;
        *ret = (uint32_t) v;
        return 0;
}

int disk_opts_parse(const char *cmd, unsigned allowed, const char *help, int argc, char *argv[],
                    struct disk_opts *o) {
        *o = (struct disk_opts) { .progress = PROGRESS_AUTO };
        int c;
        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
                if (c == 'h') {
                        fputs(help, stdout);
                        return EXIT_OK;
                }
                if (c == '?' || c == ':')
                        return cli_usage_error(cmd, "unknown option or missing value: %s", argv[optind - 1]);
                if (!(option_group(c) & allowed))
                        return cli_usage_error(cmd, "option %s does not apply to this command", argv[optind - 1]);
                unsigned long long v;
                switch (c) {
                case ARG_TYPE:
                        if (strcmp(optarg, "luks2") == 0)
                                o->type = DISK_FORMAT_LUKS2;
                        else if (strcmp(optarg, "luks1") == 0)
                                o->type = DISK_FORMAT_LUKS1;
                        else
                                return cli_usage_error(cmd, "--type must be luks2 or luks1, not '%s'", optarg);
                        break;
                case ARG_HEADER: o->header = optarg; break;
                case ARG_SECTOR:
                        if (strcmp(optarg, "512") == 0)
                                o->sector_size = 512;
                        else if (strcmp(optarg, "4096") == 0)
                                o->sector_size = 4096;
                        else
                                return cli_usage_error(cmd, "--sector-size must be 512 or 4096, not '%s'", optarg);
                        break;
                case ARG_KEY_FILE: o->key_file = optarg; break;
                case ARG_NEW_KEY_FILE: o->new_key_file = optarg; break;
                case ARG_RANDOM_KEY: o->random_key = true; break;
                case ARG_PBKDF_MEMORY:
                        if (parse_u32(optarg, &o->pbkdf_memory) < 0)
                                return cli_usage_error(cmd, "--pbkdf-memory takes a size in KiB, not '%s'", optarg);
                        break;
                case ARG_ITER_TIME:
                        if (parse_u32(optarg, &o->iter_time) < 0)
                                return cli_usage_error(cmd, "--iter-time takes milliseconds, not '%s'", optarg);
                        break;
                case ARG_MAX_RATE:
                        if (cli_parse_size(optarg, &v) < 0 || v == 0)
                                return cli_usage_error(cmd, "--max-rate takes bytes per second (suffixes K, M, G), not '%s'", optarg);
                        o->max_rate = v;
                        break;
                case ARG_PROGRESS:
                        if (strcmp(optarg, "auto") == 0) o->progress = PROGRESS_AUTO;
                        else if (strcmp(optarg, "bar") == 0) o->progress = PROGRESS_BAR;
                        else if (strcmp(optarg, "json") == 0) o->progress = PROGRESS_JSON;
                        else if (strcmp(optarg, "none") == 0) o->progress = PROGRESS_NONE;
                        else return cli_usage_error(cmd, "--progress must be auto, bar, json or none, not '%s'", optarg);
                        break;
                case ARG_YES: o->yes = true; break;
                case ARG_JSON: o->json = true; break;
                case ARG_PROVIDER: o->provider = optarg; break;
                case ARG_KEK: o->kek = optarg; break;
                case ARG_VM_NAME: o->vm_name = optarg; break;
                case ARG_VM_UUID: o->vm_uuid = optarg; break;
                case ARG_PROVIDERS: o->providers = optarg; break;
                case ARG_FORCE_RAW: o->force_raw = true; break;
                }
        }
        if (o->key_file && o->new_key_file)
                return cli_usage_error(cmd, "--key-file and --new-key-file exclude each other");
        if ((o->kek || o->vm_name || o->vm_uuid || (o->providers && (allowed & DOPT_PROVIDER))) && !o->provider)
                return cli_usage_error(cmd, "--kek, --vm-name, --vm-uuid and --providers go with --provider NAME");
        if (o->provider && (o->key_file || o->new_key_file))
                return cli_usage_error(cmd, "--provider makes the key itself: drop --key-file/--new-key-file");
        if (o->random_key && !o->key_file)
                return cli_usage_error(cmd, "--random-key qualifies --key-file: the file holds a random secret");
        if (o->type == DISK_FORMAT_LUKS1 && o->sector_size == 4096)
                return cli_usage_error(cmd, "LUKS1 supports only 512-byte sectors");
        if (o->progress == PROGRESS_AUTO)
                o->progress = cli_stderr_is_tty() ? PROGRESS_BAR : PROGRESS_JSON;
        o->n_args = argc - optind;
        o->args = argv + optind;
        if ((allowed & DOPT_ONE_TARGET) && o->n_args != 1)
                return cli_usage_error(cmd, "expected one IMAGE or DEVICE");
        return -1;
}

int disk_get_key(const char *cmd, const struct disk_opts *o, const char *target, bool new_slot,
                 struct secret **ret, enum engine_kdf *ret_kdf) {
        int r;
        *ret_kdf = ENGINE_KDF_SLOW;
        if (o->provider && new_slot)
                return disk_provider_get_key(o, target, ret, ret_kdf);
        if (o->new_key_file) {
                if (!new_slot)
                        return cli_usage_error(cmd, "--new-key-file only applies when a new keyslot is created");
                /* 64 hex digits: cryptsetup and QEMU (UTF-8 secrets) both take it. */
                r = key_input_new_hex_key_file(o->new_key_file, 32, ret);
                if (r == -EEXIST) {
                        log_error("key file %s already exists: refusing to overwrite it (choose another path)", o->new_key_file);
                        return EXIT_BUSY;
                }
                if (r < 0) {
                        log_error_errno(r, "cannot create key file %s: %m", o->new_key_file);
                        return cli_exit_code(r);
                }
                *ret_kdf = ENGINE_KDF_MINIMAL;
                return -1;
        }
        if (o->key_file) {
                r = key_input_read_file(o->key_file, ret);
                if (r == -EINVAL) {
                        log_error("key file %s is empty", o->key_file);
                        return EXIT_USAGE;
                }
                if (r < 0) {
                        log_error_errno(r, "cannot read key file %s: %m", o->key_file);
                        return cli_exit_code(r);
                }
                if (o->random_key)
                        *ret_kdf = ENGINE_KDF_MINIMAL;
                return -1;
        }
        if (!new_slot) {
                /* A disk bound to a key provider opens with what the provider releases,
                 * as `vmcrypt disk unlock` would: no key file, no prompt. */
                r = disk_provider_unlock_key(o, target, ret);
                if (r != -2)
                        return r;
        }
        if (isatty(STDIN_FILENO) != 1)
                return cli_usage_error(cmd, "no key given: use --key-file FILE (or - for a pipe on stdin)%s, or run on a terminal to type a passphrase",
                                       new_slot ? ", --new-key-file FILE" : "");
        char prompt[512];
        snprintf(prompt, sizeof(prompt), "Passphrase for %s: ", target);
        r = key_input_prompt(prompt, new_slot, ret);
        if (r == -EINVAL) {
                log_error("passphrases were empty or did not match");
                return EXIT_USAGE;
        }
        if (r < 0) {
                log_error_errno(r, "cannot read a passphrase: %m");
                return cli_exit_code(r);
        }
        return -1;
}

/* Progress display: a bar on a terminal, JSON lines otherwise. */
struct progress_state {
        enum progress_mode mode;
        uint64_t t0_ns;
        uint64_t done0;
        bool started;
        bool drew_bar;
        enum engine_operation op;
        uint64_t done, total;
};

static struct progress_state progress_state;

static uint64_t mono_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

static void rate_eta(const struct progress_state *s, double *rate, double *eta, double *elapsed) {
        *elapsed = (double) (mono_ns() - s->t0_ns) / 1e9;
        *rate = *elapsed > 0.05 ? (double) (s->done - s->done0) / *elapsed : 0;
        *eta = *rate > 0 ? (double) (s->total - s->done) / *rate : -1;
}

static void draw_bar(struct progress_state *s, double pct, double rate, double eta, double elapsed, bool finished) {
        char bar[31];
        int fill = (int) (pct * 30 / 100);
        for (int i = 0; i < 30; i++)
                bar[i] = i < fill ? '#' : '.';
        bar[30] = 0;
        bool gib = s->total >= (1ULL << 30);
        double unit = gib ? (double) (1 << 30) : (double) (1 << 20);
        fprintf(stderr, "\r%-9s [%s] %5.1f%%  %.1f/%.1f %s  %6.1f MiB/s  ", engine_operation_to_string(s->op), bar, pct,
                (double) s->done / unit, (double) s->total / unit, gib ? "GiB" : "MiB", rate / (1 << 20));
        if (finished)
                fprintf(stderr, "in %.1f s  ", elapsed);
        else if (eta < 0)
                fputs("ETA --:--  ", stderr);
        else
                fprintf(stderr, "ETA %02u:%02u  ", (unsigned) eta / 60, (unsigned) eta % 60);
        s->drew_bar = true;
}

static void progress_cb(const struct engine_progress *p, void *userdata) {
        struct progress_state *s = userdata;
        if (!s->started) {
                s->started = true;
                s->t0_ns = mono_ns();
                s->done0 = p->done;
        }
        s->op = p->operation;
        s->done = p->done;
        s->total = p->total;
        double rate, eta, elapsed;
        rate_eta(s, &rate, &eta, &elapsed);
        double pct = p->total ? 100.0 * (double) p->done / (double) p->total : 100.0;
        if (p->finished) {
                /* The bar ends full, with the average rate; JSON's "done" line comes
                 * from disk_finish, once the command has succeeded. */
                if (s->mode == PROGRESS_BAR)
                        draw_bar(s, 100.0, rate, -1, elapsed, true);
        } else if (s->mode == PROGRESS_JSON) {
                fprintf(stderr, "{\"event\":\"progress\",\"operation\":\"%s\",\"done\":%llu,\"total\":%llu,\"percent\":%.1f,\"rate_bps\":%.0f,\"eta_s\":%.0f}\n",
                        engine_operation_to_string(p->operation), (unsigned long long) p->done,
                        (unsigned long long) p->total, pct, rate, eta < 0 ? -1 : eta);
        } else if (s->mode == PROGRESS_BAR) {
                draw_bar(s, pct, rate, eta, elapsed, false);
        }
        fflush(stderr);
}

void disk_params_init(struct engine_params *p, const struct disk_opts *o, const char *path) {
        *p = (struct engine_params) {
                .path = path,
                .header_path = o->header,
                .format = o->type,
                .sector_size = o->sector_size,
                .pbkdf_memory_kib = o->pbkdf_memory,
                .iter_time_ms = o->iter_time,
                .max_rate = o->max_rate,
                .force_raw = o->force_raw,
        };
        if (o->provider)
                p->header_hook = disk_provider_hook;
        progress_state = (struct progress_state) { .mode = o->progress };
        if (o->progress != PROGRESS_NONE) {
                p->progress = progress_cb;
                p->progress_userdata = &progress_state;
        }
}

int disk_finish(const char *what, const struct disk_opts *o, int r) {
        struct progress_state *s = &progress_state;
        if (s->drew_bar)
                fputc('\n', stderr);
        if (r < 0) {
                const char *msg = engine_last_error();
                if (msg)
                        log_error("%s", msg);
                else
                        log_error_errno(r, "%s failed: %m", what);
                return cli_exit_code(r);
        }
        if (s->started && o->progress == PROGRESS_JSON) {
                double rate, eta, elapsed;
                rate_eta(s, &rate, &eta, &elapsed);
                fprintf(stderr, "{\"event\":\"done\",\"operation\":\"%s\",\"done\":%llu,\"total\":%llu,\"percent\":100,\"rate_bps\":%.0f,\"elapsed_s\":%.3f}\n",
                        engine_operation_to_string(s->op), (unsigned long long) s->total,
                        (unsigned long long) s->total, rate, elapsed);
        }
        return EXIT_OK;
}

/* The operation of the job in progress on target (with its detached header, if
 * any), or ENGINE_OP_NONE: no job, or the disk cannot be read. *ret_unstarted tells
 * of a job area whose job never changed the disk (rolled back by the next job). */
static enum engine_operation job_running(const char *target, const char *header, bool *ret_unstarted) {
        struct engine_status st;
        if (engine_status(target, header, NULL, &st) < 0) {
                *ret_unstarted = false;
                return ENGINE_OP_NONE;
        }
        *ret_unstarted = st.job_unstarted;
        return st.job;
}

bool disk_job_in_progress(const struct disk_opts *o, const char *path) {
        bool unstarted;
        return job_running(path, o->header, &unstarted) != ENGINE_OP_NONE;
}

/* The job recorded for target (its header into buf), started or not. A record
 * whose header holds no job any more (a crash after the job, before the record
 * went) is dropped when forget is set; display commands never drop it. */
static enum engine_operation recorded_job(const char *target, char *buf, size_t size, bool forget,
                                          bool *ret_unstarted) {
        *ret_unstarted = false;
        if (job_record_header(target, buf, size) < 0)
                return ENGINE_OP_NONE;
        enum engine_operation op = job_running(target, buf, ret_unstarted);
        if (op == ENGINE_OP_NONE && !*ret_unstarted && forget)
                (void) job_record_remove(target);
        return op;
}

int disk_job_begin(const char *cmd, const struct disk_opts *o, const char *target, enum engine_operation op) {
        if (!o->header)
                return -1;
        char recorded[PATH_MAX];
        bool unstarted;
        enum engine_operation running = recorded_job(target, recorded, sizeof(recorded), true, &unstarted);
        if (running != ENGINE_OP_NONE) {
                /* Starting over with another header would treat half-converted data as
                 * if untouched: encrypt it twice, or decrypt plaintext. */
                log_error("%s has an interrupted %s job whose state is in %s: finish it with "
                          "'vmcrypt disk resume %s' before starting another",
                          target, engine_operation_to_string(running), recorded, target);
                return EXIT_BUSY;
        }
        if (unstarted) {
                /* An earlier start that never touched the disk: undo it (its header
                 * file goes if the job made it) before this job takes its place. */
                struct engine_params rp = { .path = target, .header_path = recorded };
                int r = engine_resume(&rp);
                if (r < 0)
                        return disk_finish(cmd, o, r);
        }
        int r = job_record_add(target, o->header, op);
        if (r < 0)
                log_warning_errno(r, "%s: cannot record where this job's header is (%s/jobs): %m; "
                                  "if it is interrupted, resume it with --header %s", cmd, job_record_dir(),
                                  o->header);
        return -1;
}

int disk_job_find_header(struct disk_opts *o, const char *target, char *buf, size_t size, bool forget) {
        bool unstarted;
        if (o->header || (recorded_job(target, buf, size, forget, &unstarted) == ENGINE_OP_NONE && !unstarted))
                return 0;
        o->header = buf;
        return 1;
}

int disk_finish_job(const char *what, const struct disk_opts *o, const char *path, int r) {
        /* First the job's own message: reading the disk's status replaces the
         * engine's last error. Then read it once, for the record and for the hint. */
        int code = disk_finish(what, o, r);
        bool pending = (o->header || (r < 0 && r != -EINPROGRESS)) && disk_job_in_progress(o, path);
        if (o->header && !pending)
                (void) job_record_remove(path);
        if (r < 0 && r != -EINPROGRESS && pending)
                fprintf(stderr, "The %s job on %s is interrupted and the disk is unusable until it is finished: fix the cause, then run 'vmcrypt disk resume%s%s --key-file KEY %s'.\n",
                        what, path, o->header ? " --header " : "", o->header ? o->header : "", path);
        return code;
}

int disk_prepare(const char *cmd, const struct disk_opts *o, const char *target, bool new_slot,
                 struct engine_params *p, struct secret **ret_key) {
        disk_params_init(p, o, target);
        int r = disk_get_key(cmd, o, target, new_slot, ret_key, &p->kdf);
        if (r >= 0)
                return r;
        p->unlock = *ret_key;
        return -1;
}
