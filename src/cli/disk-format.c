/* `vmcrypt disk format`: a new empty encrypted volume, without a data pass. */
#include <unistd.h>

#include "cli/cli.h"
#include "cli/disk-common.h"

static const char help[] =
"Usage: vmcrypt disk format [OPTIONS] IMAGE|DEVICE\n"
"\n"
"Write a new LUKS header on IMAGE or DEVICE without encrypting its contents: the\n"
"disk becomes a new, empty encrypted volume (the fast path for new or wiped disks).\n"
"Existing data is lost, so a target that is not empty (any non-zero byte in its\n"
"first MiB, e.g. a partition table, file system or LUKS header) needs --yes.\n"
"\n"
"Options:\n"
"  --type luks2|luks1       format (default luks2)\n"
"  --sector-size 512|4096   encryption sector size (default 512; 4096 LUKS2 only)\n"
"  --header FILE            detached header in FILE; the data starts at offset 0\n"
"  --key-file FILE|-        unlock key from FILE, or from a pipe on stdin with -\n"
DISK_HELP_NEW_SLOT
"  --new-key-file FILE      generate a random 32-byte key into FILE (mode 0600)\n"
DISK_HELP_KDF
"  --yes                    destroy existing contents without asking\n"
"  --json                   on success, one JSON object on stdout (path, operation,\n"
"                           format, header_file, provider, kek) instead of the line\n"
"  -h, --help               show this help\n"
"\n"
"Examples:\n"
"  vmcrypt disk format --new-key-file data.key --yes /dev/vdb\n"
"\n"
"Exit status: 0 done; 2 usage; 5 target not empty (no --yes) or in use;\n"
"1 other errors.\n";

int disk_format_main(int argc, char *argv[]) {
        const char *cmd = "vmcrypt disk format";
        struct disk_opts o;
        int r = disk_opts_parse(cmd, DOPT_TYPE | DOPT_HEADER | DOPT_KEY | DOPT_NEWKEY | DOPT_YES | DOPT_PROVIDER | DOPT_JSON | DOPT_ONE_TARGET, help, argc, argv, &o);
        if (r >= 0)
                return r;
        o.progress = PROGRESS_NONE;
        struct volume_params p;
        struct volume_result res;
        struct error err;
        disk_volume_params(&o, o.args[0], &p);
        r = volume_format(&p, o.yes, &res, &err);
        return disk_report(cmd, "format", &o, o.args[0], r, &res, &err);
}
