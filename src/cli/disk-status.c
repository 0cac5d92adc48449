/* `vmcrypt disk status`: the encryption state, read from the disk itself. */
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "cli/disk-common.h"
#include "disk/job-key.h"

static const char help[] =
"Usage: vmcrypt disk status [OPTIONS] IMAGE|DEVICE\n"
"\n"
"Show what the disk says about itself: plain, encrypted, or in the middle of an\n"
"encrypt/decrypt/reencrypt job (with the position reached); the format, cipher,\n"
"key size, sector size, data offset and size, header mode, keyslots and tokens\n"
"(for a disk bound to a key provider: the provider and KEK id of each vmcrypt\n"
"token, LUKS2 header tokens and LUKS1 metadata area alike).\n"
"No key is needed.\n"
"\n"
"Options:\n"
"  --header FILE            the volume's detached header (default: the one recorded\n"
"                           for an interrupted job, see 'vmcrypt disk resume --help')\n"
"  --json                   one JSON object on stdout:\n"
"      {\"path\",\"state\":\"plain|encrypted|encrypting|decrypting|reencrypting|\n"
"                converting\",\n"
"       \"format\":\"luks2|luks1|none\",\"cipher\",\"key_bits\",\"sector_size\",\n"
"       \"data_offset\",\"data_size\",\"header\":\"embedded|detached\",\n"
"       \"header_file\":null|PATH,\n"
"       \"keyslots\":[{\"id\",\"kdf\"}],\n"
"       \"tokens\":[{\"id\",\"type\",\"keyslot\",\"provider\",\"kek_id\"}],\n"
"       \"job\":null|{\"operation\",\"position\",\"done\",\"total\",\"percent\"}}\n"
"  -h, --help               show this help\n"
"\n"
"Examples:\n"
"  vmcrypt disk status vm1.img\n"
"  vmcrypt disk status --json --header sdb.hdr /dev/sdb\n"
"\n"
"Exit status: 0 state shown; 2 usage; 4 no such file; 9 damaged header or job\n"
"area; 1 other errors.\n";

static const char *state_name(const struct engine_status *st) {
        switch (st->job) {
        case ENGINE_OP_ENCRYPT: return "encrypting";
        case ENGINE_OP_DECRYPT: return "decrypting";
        case ENGINE_OP_REENCRYPT: return "reencrypting";
        case ENGINE_OP_CONVERT: return "converting";
        default: return st->format == DISK_FORMAT_NONE ? "plain" : "encrypted";
        }
}

static double percent(const struct engine_status *st) {
        return st->job_total ? 100.0 * (double) st->job_done / (double) st->job_total : 100.0;
}

static int print_json(const char *path, const char *header, const struct engine_status *st) {
        bool luks = st->format != DISK_FORMAT_NONE;
        json_t *o = json_object();
        json_object_set_new(o, "path", json_string(path));
        json_object_set_new(o, "state", json_string(state_name(st)));
        json_object_set_new(o, "format", json_string(disk_format_to_string(st->format)));
        json_object_set_new(o, "cipher", luks ? json_string(st->cipher) : json_null());
        json_object_set_new(o, "key_bits", luks ? json_integer(st->key_bits) : json_null());
        json_object_set_new(o, "sector_size", luks ? json_integer(st->sector_size) : json_null());
        json_object_set_new(o, "data_offset", json_integer((json_int_t) st->data_offset));
        json_object_set_new(o, "data_size", json_integer((json_int_t) st->data_size));
        /* A plain disk has no header; only a detached one has a header file. */
        json_object_set_new(o, "header", !luks ? json_null() : json_string(st->detached ? "detached" : "embedded"));
        json_object_set_new(o, "header_file", header && st->detached ? json_string(header) : json_null());
        json_t *ks = json_array(), *tk = json_array();
        for (unsigned i = 0; i < st->n_keyslots; i++)
                json_array_append_new(ks, json_pack("{s:i,s:s}", "id", st->keyslots[i].id, "kdf", st->keyslots[i].kdf));
        for (unsigned i = 0; i < st->n_tokens; i++) {
                json_t *t = json_pack("{s:i,s:s}", "id", st->tokens[i].id, "type", st->tokens[i].type);
                if (st->tokens[i].keyslot >= 0)
                        json_object_set_new(t, "keyslot", json_integer(st->tokens[i].keyslot));
                if (st->tokens[i].provider[0]) {
                        json_object_set_new(t, "provider", json_string(st->tokens[i].provider));
                        json_object_set_new(t, "kek_id", json_string(st->tokens[i].kek_id));
                }
                json_array_append_new(tk, t);
        }
        json_object_set_new(o, "keyslots", ks);
        json_object_set_new(o, "tokens", tk);
        if (st->job != ENGINE_OP_NONE)
                json_object_set_new(o, "job", json_pack("{s:s,s:I,s:I,s:I,s:f,s:b}",
                                                        "operation", engine_operation_to_string(st->job),
                                                        "position", (json_int_t) st->job_position,
                                                        "done", (json_int_t) st->job_done,
                                                        "total", (json_int_t) st->job_total,
                                                        "percent", percent(st),
                                                        "finalizing", st->job_finalizing));
        else
                json_object_set_new(o, "job", json_null());
        json_object_set_new(o, "foreign_job", json_boolean(st->foreign_job));
        char *s = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        if (!s)
                return EXIT_FAILURE_GENERAL;
        puts(s);
        free(s);
        return EXIT_OK;
}

static void print_human(const char *path, const char *header, const struct engine_status *st) {
        printf("path:        %s\n", path);
        printf("state:       %s\n", state_name(st));
        printf("format:      %s\n", disk_format_to_string(st->format));
        if (st->format != DISK_FORMAT_NONE) {
                printf("cipher:      %s, %u-bit key, %u-byte sectors\n", st->cipher, st->key_bits, st->sector_size);
                printf("header:      %s%s%s\n", st->detached ? "detached" : "embedded", header ? ", " : "",
                       header ? header : "");
                printf("data offset: %llu\n", (unsigned long long) st->data_offset);
        }
        printf("data size:   %llu\n", (unsigned long long) st->data_size);
        for (unsigned i = 0; i < st->n_keyslots; i++)
                printf("keyslot %d:   %s\n", st->keyslots[i].id, st->keyslots[i].kdf);
        for (unsigned i = 0; i < st->n_tokens; i++) {
                printf("token %d:     %s", st->tokens[i].id, st->tokens[i].type);
                if (st->tokens[i].provider[0])
                        printf(", keyslot %d, provider %s, KEK %s", st->tokens[i].keyslot, st->tokens[i].provider,
                               st->tokens[i].kek_id);
                putchar('\n');
        }
        if (st->job != ENGINE_OP_NONE)
                printf("job:         %s %.1f%% (%llu of %llu bytes)%s — run 'vmcrypt disk resume' if it is not running\n",
                       engine_operation_to_string(st->job), percent(st), (unsigned long long) st->job_done,
                       (unsigned long long) st->job_total, st->job_finalizing ? ", finishing" : "");
        if (st->foreign_job)
                printf("note:        this disk holds vmcrypt job state not written by this host (a job area,\n"
                       "             marker or disguised header): a guest can write such bytes, so vmcrypt\n"
                       "             takes them for data. A job started on another host resumes there, or\n"
                       "             here with a copy of its job key (%s/%s).\n", job_key_state_dir(), JOB_KEY_FILE);
}

int disk_status_main(int argc, char *argv[]) {
        const char *cmd = "vmcrypt disk status";
        struct disk_opts o;
        int r = disk_opts_parse(cmd, DOPT_HEADER | DOPT_JSON | DOPT_ONE_TARGET, help, argc, argv, &o);
        if (r >= 0)
                return r;
        struct volume_params p;
        struct volume_result res;
        struct error err;
        disk_volume_params(&o, o.args[0], &p);
        r = volume_status(&p, &res, &err);
        if (r < 0)
                return disk_report(cmd, "status", &o, o.args[0], r, &res, &err);
        const struct engine_status st = res.status;
        if (res.header[0])
                o.header = res.header;
        if (o.json)
                return print_json(o.args[0], o.header, &st);
        print_human(o.args[0], o.header, &st);
        return EXIT_OK;
}
