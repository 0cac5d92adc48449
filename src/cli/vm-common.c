/* Helpers shared by the `vmcrypt vm` subcommands. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/vm-common.h"
#include "shared/log.h"

enum { OPT_JSON = 256, OPT_RATE, OPT_VOLUMES, OPT_PROVIDER, OPT_KEK, OPT_PROVIDERS, OPT_PROGRESS, OPT_MAX_RATE,
       OPT_TARGET, OPT_ENCRYPT, OPT_PERSISTENT, OPT_LIVE, OPT_DEEP, OPT_AUTO };

static const struct option opts[] = {
        { "help", no_argument, NULL, 'h' },
        { "connect", required_argument, NULL, 'c' },
        { "json", no_argument, NULL, OPT_JSON },
        { "rate", no_argument, NULL, OPT_RATE },
        { "volume-type", required_argument, NULL, OPT_VOLUMES },
        { "provider", required_argument, NULL, OPT_PROVIDER },
        { "kek", required_argument, NULL, OPT_KEK },
        { "providers", required_argument, NULL, OPT_PROVIDERS },
        { "progress", required_argument, NULL, OPT_PROGRESS },
        { "max-rate", required_argument, NULL, OPT_MAX_RATE },
        { "target", required_argument, NULL, OPT_TARGET },
        { "encrypt", no_argument, NULL, OPT_ENCRYPT },
        { "persistent", no_argument, NULL, OPT_PERSISTENT },
        { "live", no_argument, NULL, OPT_LIVE },
        { "deep", no_argument, NULL, OPT_DEEP },
        { "auto-encrypt", required_argument, NULL, OPT_AUTO },
        { NULL, 0, NULL, 0 },
};

static bool allowed_opt(int c, unsigned allowed) {
        switch (c) {
        case OPT_JSON: return allowed & VOPT_JSON;
        case OPT_RATE: return allowed & VOPT_RATE;
        case OPT_VOLUMES: return allowed & VOPT_VOLUMES;
        case OPT_PROVIDER:
        case OPT_KEK: return allowed & VOPT_KEK;
        case OPT_PROVIDERS: return allowed & VOPT_PROVIDERS;
        case OPT_PROGRESS: return allowed & VOPT_PROGRESS;
        case OPT_MAX_RATE: return allowed & VOPT_MAX_RATE;
        case OPT_TARGET:
        case OPT_ENCRYPT:
        case OPT_PERSISTENT:
        case OPT_LIVE: return allowed & VOPT_ATTACH;
        case OPT_DEEP: return allowed & VOPT_DEEP;
        case OPT_AUTO: return allowed & VOPT_AUTO;
        default: return true;
        }
}

int vm_opts_parse(const char *cmd, unsigned allowed, const char *help, int min_args, int max_args, int argc,
                  char *argv[], struct vm_opts *o) {
        memset(o, 0, sizeof *o);
        o->auto_encrypt = -1;
        o->progress = cli_stderr_is_tty();
        int c;
        while ((c = getopt_long(argc, argv, "hc:", opts, NULL)) >= 0) {
                if (c != '?' && !allowed_opt(c, allowed))
                        return cli_usage_error(cmd, "option '%s' is not accepted here", argv[optind - 1]);
                switch (c) {
                case 'h':
                        fputs(help, stdout);
                        return EXIT_OK;
                case 'c': o->uri = optarg; break;
                case OPT_JSON: o->json = true; break;
                case OPT_RATE: o->rate = true; break;
                case OPT_VOLUMES:
                        if (strcmp(optarg, "all") == 0)
                                o->volumes = VM_VOLUMES_ALL;
                        else if (strcmp(optarg, "os") == 0)
                                o->volumes = VM_VOLUMES_OS;
                        else if (strcmp(optarg, "data") == 0)
                                o->volumes = VM_VOLUMES_DATA;
                        else
                                return cli_usage_error(cmd, "--volume-type takes all, os or data, not '%s'", optarg);
                        break;
                case OPT_PROVIDER: o->provider = optarg; break;
                case OPT_KEK: o->kek = optarg; break;
                case OPT_PROVIDERS: o->providers = optarg; break;
                case OPT_PROGRESS:
                        if (strcmp(optarg, "auto") != 0 && strcmp(optarg, "bar") != 0 && strcmp(optarg, "none") != 0)
                                return cli_usage_error(cmd, "--progress takes auto, bar or none, not '%s'", optarg);
                        o->progress = strcmp(optarg, "none") != 0 && (strcmp(optarg, "bar") == 0 || o->progress);
                        break;
                case OPT_MAX_RATE: {
                        unsigned long long v;
                        if (cli_parse_size(optarg, &v) < 0 || v == 0)
                                return cli_usage_error(cmd, "--max-rate takes a rate in bytes/s such as 50M, not '%s'",
                                                       optarg);
                        o->max_rate = v;
                        break;
                }
                case OPT_TARGET:
                        if (strncmp(optarg, "vd", 2) != 0 || !optarg[2] || strlen(optarg) > 8 ||
                            strspn(optarg + 2, "abcdefghijklmnopqrstuvwxyz") != strlen(optarg + 2))
                                return cli_usage_error(cmd, "--target takes a virtio disk name such as vdc, not '%s'",
                                                       optarg);
                        o->target = optarg;
                        break;
                case OPT_ENCRYPT: o->encrypt = true; break;
                case OPT_PERSISTENT:
                case OPT_LIVE: {
                        enum vm_attach_mode m = c == OPT_LIVE ? VM_ATTACH_LIVE : VM_ATTACH_PERSISTENT;
                        if (o->mode != VM_ATTACH_DEFAULT && o->mode != m)
                                return cli_usage_error(cmd, "--persistent and --live exclude each other (neither: "
                                                       "both places)");
                        o->mode = m;
                        break;
                }
                case OPT_DEEP: o->deep = true; break;
                case OPT_AUTO:
                        if (strcmp(optarg, "on") != 0 && strcmp(optarg, "off") != 0)
                                return cli_usage_error(cmd, "--auto-encrypt takes on or off, not '%s'", optarg);
                        o->auto_encrypt = strcmp(optarg, "on") == 0;
                        break;
                default:
                        return cli_usage_error(cmd, "bad option");
                }
        }
        o->n_args = argc - optind;
        o->args = argv + optind;
        if (o->n_args < min_args)
                return cli_usage_error(cmd, o->n_args == 0 ? "missing the domain (a name or UUID)"
                                                           : "missing an argument (see --help)");
        if (max_args >= 0 && o->n_args > max_args)
                return cli_usage_error(cmd, "too many arguments: '%s'", o->args[max_args]);
        return -1;
}

void vm_opts_params(const struct vm_opts *o, const char *name, struct vm_params *p) {
        memset(p, 0, sizeof *p);
        p->uri = o->uri;
        p->name = name;
        p->volumes = o->volumes;
        p->provider = o->provider;
        p->kek = o->kek;
        p->providers = o->providers;
        p->max_rate = o->max_rate;
}

int vm_report(const char *cmd, int r, const struct vm_error *err) {
        log_error("%s: %s", cmd, err->text[0] ? err->text : "failed");
        return cli_exit_code(r);
}

json_t *vm_disk_to_json(const struct vm_disk *d) {
        const struct engine_status *st = &d->status;
        json_t *o = json_object();
        json_object_set_new(o, "target", json_string(d->target));
        json_object_set_new(o, "type", json_string(d->source_type));
        json_object_set_new(o, "path", d->path ? json_string(d->path) : json_null());
        json_object_set_new(o, "format", d->format[0] ? json_string(d->format) : json_null());
        json_object_set_new(o, "os", json_boolean(d->os));
        json_object_set_new(o, "readonly", json_boolean(d->readonly));
        json_object_set_new(o, "state", json_string(vm_disk_state_name(d->state)));
        json_object_set_new(o, "luks", d->state == VM_DISK_UNKNOWN || st->format == DISK_FORMAT_NONE
                                ? json_null() : json_string(disk_format_to_string(st->format)));
        json_object_set_new(o, "xml_encryption", json_boolean(d->xml_encrypted));
        json_object_set_new(o, "secret", d->secret_uuid[0] ? json_string(d->secret_uuid) : json_null());
        if (d->state == VM_DISK_UNKNOWN)
                json_object_set_new(o, "error", json_string(d->status_text));
        if (st->job != ENGINE_OP_NONE && d->state != VM_DISK_UNKNOWN) {
                json_t *j = json_pack("{s:s,s:I,s:I,s:f,s:b}", "operation", engine_operation_to_string(st->job),
                                      "done", (json_int_t) st->job_done, "total", (json_int_t) st->job_total,
                                      "percent", vm_disk_percent(d), "finalizing", st->job_finalizing);
                json_object_set_new(j, "rate", d->rate > 0 ? json_real(d->rate) : json_null());
                json_object_set_new(j, "eta_seconds", d->eta >= 0 ? json_real(d->eta) : json_null());
                json_object_set_new(o, "job", j);
        } else {
                json_object_set_new(o, "job", json_null());
        }
        if (d->kek[0]) {
                json_object_set_new(o, "provider", json_string(d->provider));
                json_object_set_new(o, "kek", json_string(d->kek));
        }
        json_object_set_new(o, "note", d->note[0] ? json_string(d->note) : json_null());
        return o;
}

json_t *vm_summary_to_json(const struct vm_domain *d) {
        json_t *disks = json_array();
        for (size_t i = 0; i < d->n_disks; i++) {
                const struct vm_disk *k = &d->disks[i];
                json_t *j = json_pack("{s:s,s:b,s:s,s:f}", "target", k->target, "os", k->os, "state",
                                      vm_disk_state_name(k->state), "percent", vm_disk_percent(k));
                json_object_set_new(j, "rate", k->rate > 0 ? json_real(k->rate) : json_null());
                json_object_set_new(j, "eta_seconds", k->eta >= 0 ? json_real(k->eta) : json_null());
                json_array_append_new(disks, j);
        }
        return json_pack("{s:s,s:s,s:s,s:s,s:s,s:o}", "name", d->name, "uuid", d->uuid, "OsVolumeEncrypted",
                         vm_volume_status_name(d->summary.os), "DataVolumesEncrypted",
                         vm_volume_status_name(d->summary.data), "ProgressMessage", d->summary.message, "disks",
                         disks);
}

int vm_print_json(json_t *o) {
        char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        if (!s)
                return EXIT_FAILURE_GENERAL;
        puts(s);
        free(s);
        return EXIT_OK;
}

static const char *action_name(enum vm_disk_action a, const char *verb) {
        switch (a) {
        case VM_ACTION_DONE: return verb;
        case VM_ACTION_RESUMED: return "interrupted job finished";
        case VM_ACTION_ALREADY: return "already done";
        case VM_ACTION_XML: return "already done, domain XML fixed";
        case VM_ACTION_UNLOCKED: return "key released to QEMU";
        case VM_ACTION_ATTACHED: return "attached";
        default: return "left alone";
        }
}

void vm_print_result(const char *verb, const struct vm_result *res) {
        for (size_t i = 0; i < res->n; i++) {
                const struct vm_disk_result *d = &res->disks[i];
                printf("%s: %s %s%s%s\n", res->name, d->target, action_name(d->action, verb),
                       d->note[0] ? ": " : "", d->note);
        }
}
