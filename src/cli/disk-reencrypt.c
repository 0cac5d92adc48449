/* `vmcrypt disk reencrypt`: deep rekey in place with a new volume key. */
#include "cli/cli.h"
#include "cli/disk-common.h"
#include "shared/log.h"

static const char help[] =
"Usage: vmcrypt disk reencrypt [OPTIONS] IMAGE|DEVICE\n"
"\n"
"Deep rekey: re-encrypt all data in place under a new random volume key and write\n"
"a new header. The keyslot that the given key opens is recreated in the new header\n"
"(same slot number, same kind of KDF), so the same key opens the volume afterwards;\n"
"other keyslots are dropped. Tokens of the old header are kept. The image keeps its\n"
"size (a job area is appended while the job runs).\n"
"The job is crash-safe: after a crash or power cut run 'vmcrypt disk resume'.\n"
"\n"
"Options:\n"
"  --header FILE            the volume's detached header\n"
DISK_HELP_UNLOCK
DISK_HELP_RUN
"  --json                   on success, one JSON object on stdout (path, operation,\n"
"                           format, header_file, provider, kek) instead of the line\n"
"  -h, --help               show this help\n"
DISK_HELP_UNLOCK_NOTE
"\n"
"Examples:\n"
"  vmcrypt disk reencrypt --key-file vm1.key vm1.img\n"
"\n"
"Exit status: 0 done; 2 usage; 3 wrong key; 4 not a LUKS volume; 5 in use or a\n"
"job in progress; 6 not enough space; 9 truncated or corrupted; 1 other errors.\n";

int disk_reencrypt_main(int argc, char *argv[]) {
        const char *cmd = "vmcrypt disk reencrypt";
        struct disk_opts o;
        int r = disk_opts_parse(cmd, DOPT_HEADER | DOPT_KEY | DOPT_PROVIDERS | DOPT_RUN | DOPT_JSON | DOPT_ONE_TARGET, help, argc, argv, &o);
        if (r >= 0)
                return r;
        struct volume_params p;
        struct volume_result res;
        struct error err;
        disk_volume_params(&o, o.args[0], &p);
        r = volume_reencrypt(&p, &res, &err);
        return disk_report(cmd, "reencrypt", &o, o.args[0], r, &res, &err);
}
