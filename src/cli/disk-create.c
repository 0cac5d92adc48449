/* `vmcrypt disk create`: a new sparse, formatted, encrypted image file. */
#include <unistd.h>

#include "cli/cli.h"
#include "cli/disk-common.h"

static const char help[] =
"Usage: vmcrypt disk create [OPTIONS] SIZE IMAGE\n"
"\n"
"Create IMAGE (it must not exist) as a sparse file holding a new LUKS volume whose\n"
"data area is SIZE bytes (suffixes K, M, G, T; a multiple of the sector size). The\n"
"file is SIZE plus the header (16 MiB for LUKS2, 2 MiB for LUKS1).\n"
"\n"
"Options:\n"
"  --type luks2|luks1       format (default luks2)\n"
"  --sector-size 512|4096   encryption sector size (default 512; 4096 LUKS2 only)\n"
"  --key-file FILE|-        unlock key from FILE, or from a pipe on stdin with -\n"
DISK_HELP_NEW_SLOT
"  --new-key-file FILE      generate a random 32-byte key into FILE (mode 0600)\n"
DISK_HELP_KDF
"  --json                   on success, one JSON object on stdout (path, operation,\n"
"                           format, header_file, provider, kek) instead of the line\n"
"  -h, --help               show this help\n"
"\n"
"Examples:\n"
"  vmcrypt disk create --new-key-file vm3.key 20G vm3.img\n"
"\n"
"Exit status: 0 done; 2 usage; 5 IMAGE exists; 6 not enough space; 1 other errors.\n";

int disk_create_main(int argc, char *argv[]) {
        const char *cmd = "vmcrypt disk create";
        struct disk_opts o;
        int r = disk_opts_parse(cmd, DOPT_TYPE | DOPT_KEY | DOPT_NEWKEY | DOPT_PROVIDER | DOPT_JSON, help, argc, argv, &o);
        if (r >= 0)
                return r;
        if (o.n_args != 2)
                return cli_usage_error(cmd, "expected SIZE and IMAGE");
        unsigned long long size;
        if (cli_parse_size(o.args[0], &size) < 0 || size == 0)
                return cli_usage_error(cmd, "invalid SIZE '%s'", o.args[0]);
        o.progress = PROGRESS_NONE;
        struct volume_params p;
        struct volume_result res;
        struct error err;
        disk_volume_params(&o, o.args[1], &p);
        r = volume_create(&p, size, &res, &err);
        return disk_report(cmd, "create", &o, o.args[1], r, &res, &err);
}
