/* Helpers shared by the `vmcrypt disk` subcommands: see disk-common.h. */
#include "cli/disk-common.h"

#include <errno.h>
#include <limits.h>
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/disk-keys.h"
#include "shared/key-input.h"
#include "volume/job-record.h"
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
        const char *why;
        if (o->sector_size && disk_sector_size_check(o->type, o->sector_size, &why) < 0)
                return cli_usage_error(cmd, "%s", why);
        if (o->progress == PROGRESS_AUTO)
                o->progress = cli_stderr_is_tty() ? PROGRESS_BAR : PROGRESS_JSON;
        o->n_args = argc - optind;
        o->args = argv + optind;
        if ((allowed & DOPT_ONE_TARGET) && o->n_args != 1)
                return cli_usage_error(cmd, "expected one IMAGE or DEVICE");
        return -1;
}

/* The passphrase prompt on the terminal, for the volume layer. */
static int ask_passphrase(const char *target, bool new_slot, struct secret **ret, void *userdata) {
        (void) userdata;
        char prompt[512];
        snprintf(prompt, sizeof(prompt), "Passphrase for %s: ", target);
        return key_input_prompt(prompt, new_slot, ret);
}

/* Progress display: a bar on a terminal, JSON lines otherwise. */
struct progress_state {
        enum progress_mode mode;
        uint64_t t0_ns;
        uint64_t done0;
        bool started;
        bool drew_bar;
        uint64_t last_ns;         /* last line or bar drawn: at most five a second */
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

static enum engine_verdict progress_cb(const struct engine_progress *p, void *userdata) {
        struct progress_state *s = userdata;
        if (!s->started) {
                s->started = true;
                s->t0_ns = mono_ns();
                s->done0 = p->done;
        }
        s->op = p->operation;
        s->done = p->done;
        s->total = p->total;
        uint64_t t = mono_ns();
        if (!p->finished && s->last_ns && t - s->last_ns < 200000000ULL)
                return ENGINE_CONTINUE;
        s->last_ns = t;
        double rate, eta, elapsed;
        rate_eta(s, &rate, &eta, &elapsed);
        double pct = p->total ? 100.0 * (double) p->done / (double) p->total : 100.0;
        if (p->finished) {
                /* The bar ends full, with the average rate; JSON's "done" line comes
                 * from disk_report, once the command has succeeded. */
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
        return ENGINE_CONTINUE;
}

void disk_volume_params(const struct disk_opts *o, const char *path, struct volume_params *p) {
        *p = (struct volume_params) {
                .path = path,
                .header = o->header,
                .format = o->type,
                .sector_size = o->sector_size,
                .pbkdf_memory_kib = o->pbkdf_memory,
                .iter_time_ms = o->iter_time,
                .max_rate = o->max_rate,
                .force_raw = o->force_raw,
                .key = {
                        .provider = o->provider,
                        .kek = o->kek,
                        .vm_name = o->vm_name,
                        .vm_uuid = o->vm_uuid,
                        .providers = o->providers,
                        .new_file = o->new_key_file,
                        .file = o->key_file,
                        .random = o->random_key,
                        .ask = isatty(STDIN_FILENO) == 1 ? ask_passphrase : NULL,
                },
        };
        progress_state = (struct progress_state) { .mode = o->progress };
        if (o->progress != PROGRESS_NONE) {
                p->progress = progress_cb;
                p->progress_userdata = &progress_state;
        }
}

void disk_report_release(const struct kek_release *k) {
        if (k->error < 0)
                log_warning("KEK %s on provider \"%s\" no longer wraps this disk's secret, but it could not be "
                            "released: %s; it stays as it was ('vmcrypt provider keks %s' shows its disks)",
                            k->kek, k->provider, k->text, k->provider);
        else if (k->retired)
                log_notice("KEK %s on provider \"%s\" retired (revoked, then destroyed): no disk uses it any more",
                           k->kek, k->provider);
        else if (k->tracked && k->elsewhere[0])
                log_notice("KEK %s on provider \"%s\" stays: %u disk(s) still use it, among them this volume at %s "
                           "(a copy of this image, or the image before it moved: if nothing is left there, retire "
                           "the KEK once 'vmcrypt provider keks %s' names no other disk)", k->kek, k->provider,
                           k->users, k->elsewhere, k->provider);
        else if (k->tracked)
                log_notice("KEK %s on provider \"%s\" stays: %u other disk(s) still use it ('vmcrypt provider keks "
                           "%s' names them)", k->kek, k->provider, k->users, k->provider);
        else
                log_notice("KEK %s on provider \"%s\" no longer wraps this disk's secret; it does not record which "
                           "disks use it (made before vmcrypt tracked them, or by another tool), so it stays: if no "
                           "other disk uses it, retire it ('vmcrypt provider keks --orphans %s IMAGE...' lists the "
                           "unused ones)", k->kek, k->provider, k->provider);
}

/* What the volume layer found out on the way, as the notes the commands printed
 * before it moved there. */
static void print_notes(const char *path, const struct volume_result *res) {
        if (res->header_recorded)
                log_notice("%s: the job's state is in its detached header %s (recorded when it started)", path,
                           res->header);
        if (res->kek[0] && res->kek_retired)
                log_notice("KEK %s, created for this command, was revoked and destroyed again", res->kek);
        else if (res->kek[0] && res->kek_left)
                log_warning("KEK %s was created for this command and could not be retired: revoke and destroy it "
                            "on the key server", res->kek);
        if (res->key_released)
                log_info("unlock secret released by the key provider (keyslot %d)", res->keyslot);
        if (res->sidecar_removed[0])
                log_info("removed %s (the vmcrypt metadata of the LUKS1 volume)", res->sidecar_removed);
        for (unsigned i = 0; i < res->n_released; i++)
                disk_report_release(&res->released[i]);
        if (res->dropped_keyslots)
                log_warning("%s: %u keyslot(s) that this key does not open did not survive the new volume key; "
                            "add a recovery passphrase again with 'vmcrypt disk recovery-key add'", path,
                            res->dropped_keyslots);
}

static const char *past_tense(const char *what) {
        static const char *const t[][2] = {
                { "encrypt", "encrypted" }, { "decrypt", "decrypted" }, { "reencrypt", "reencrypted" },
                { "resume", "finished the job on" }, { "format", "formatted" }, { "create", "created" },
                { "convert", "converted" },
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++)
                if (strcmp(t[i][0], what) == 0)
                        return t[i][1];
        return what;
}

/* One line on standard output saying what happened, or with --json one object:
 * the KEK a new binding uses is what an admin needs later (to rekey, to revoke). */
static void print_summary(const char *what, const struct disk_opts *o, const char *path,
                          const struct volume_result *res) {
        bool plain = strcmp(what, "decrypt") == 0;
        const char *format = plain ? "plain" : o->type == DISK_FORMAT_LUKS1 ? "luks1" : "luks2";
        bool new_volume = strcmp(what, "encrypt") == 0 || strcmp(what, "format") == 0 || strcmp(what, "create") == 0;
        if (o->json) {
                json_t *j = json_pack("{s:s,s:s,s:s*,s:s*,s:s*,s:s*}", "path", path, "operation", what,
                                      "format", new_volume || plain || strcmp(what, "convert") == 0 ? format : NULL,
                                      "header_file", res->header[0] ? res->header : NULL,
                                      "provider", res->kek[0] ? res->provider : NULL,
                                      "kek", res->kek[0] ? res->kek : NULL);
                char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
                if (text)
                        puts(text);
                free(text);
                json_decref(j);
                return;
        }
        printf("%s %s", past_tense(what), path);
        if (new_volume)
                printf(": %s, header %s%s", format, res->header[0] ? "in " : "in front", res->header[0] ? res->header : "");
        else if (plain)
                printf(": plain data again");
        else if (strcmp(what, "convert") == 0)
                printf(": now %s", format);
        if (res->kek[0])
                printf("; unlock secret wrapped by KEK %s of key provider \"%s\"", res->kek, res->provider);
        putchar('\n');
}

int disk_report(const char *cmd, const char *what, const struct disk_opts *o, const char *path, int r,
                const struct volume_result *res, const struct error *err) {
        struct progress_state *s = &progress_state;
        if (s->drew_bar) {
                fputc('\n', stderr);
                s->drew_bar = false;
        }
        print_notes(path, res);
        if (r < 0) {
                if (res->no_key)
                        return cli_usage_error(cmd, "no key given: use --key-file FILE (or - for a pipe on stdin)%s, or run on a terminal to type a passphrase",
                                               strcmp(what, "encrypt") == 0 || strcmp(what, "format") == 0 ||
                                                               strcmp(what, "create") == 0
                                                       ? ", --new-key-file FILE"
                                                       : "");
                if (err->text[0])
                        log_error("%s", err->text);
                else
                        log_error_errno(r, "%s failed: %m", what);
                if (res->interrupted && !res->paused)
                        fprintf(stderr, "The %s job on %s is interrupted and the disk is unusable until it is finished: fix the cause, then run 'vmcrypt disk resume%s%s --key-file KEY %s'.\n",
                                what, path, res->header[0] ? " --header " : "", res->header, path);
                return cli_exit_code(r);
        }
        if (s->started && o->progress == PROGRESS_JSON) {
                double rate, eta, elapsed;
                rate_eta(s, &rate, &eta, &elapsed);
                fprintf(stderr, "{\"event\":\"done\",\"operation\":\"%s\",\"done\":%llu,\"total\":%llu,\"percent\":100,\"rate_bps\":%.0f,\"elapsed_s\":%.3f}\n",
                        engine_operation_to_string(s->op), (unsigned long long) s->total,
                        (unsigned long long) s->total, rate, elapsed);
        }
        if (strcmp(what, "status") != 0 && r == 0)
                print_summary(what, o, path, res);
        return EXIT_OK;
}
