/* `vmcrypt disk decrypt`: in-place decryption back to the original bytes. */
#include "cli/cli.h"
#include "cli/disk-common.h"

static const char help[] =
"Usage: vmcrypt disk decrypt [OPTIONS] IMAGE|DEVICE\n"
"\n"
"Decrypt a LUKS volume in place back to the exact original bytes. For an image\n"
"with the header in front, the data moves down over the header and the file\n"
"shrinks back to its original size. With --header, the data is decrypted where it\n"
"is and the header file is removed at the end.\n"
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
"  vmcrypt disk decrypt --key-file vm1.key vm1.img\n"
"  vmcrypt disk decrypt --header sdb.hdr --key-file - /dev/sdb < key\n"
"\n"
"Exit status: 0 done; 2 usage; 3 wrong key; 4 not a LUKS volume; 5 in use or a\n"
"job in progress; 6 not enough space; 9 truncated or corrupted; 1 other errors.\n";

int disk_decrypt_main(int argc, char *argv[]) {
        const char *cmd = "vmcrypt disk decrypt";
        struct disk_opts o;
        int r = disk_opts_parse(cmd, DOPT_HEADER | DOPT_KEY | DOPT_PROVIDERS | DOPT_RUN | DOPT_JSON | DOPT_ONE_TARGET, help, argc, argv, &o);
        if (r >= 0)
                return r;
        struct volume_params p;
        struct volume_result res;
        struct error err;
        disk_volume_params(&o, o.args[0], &p);
        r = volume_decrypt(&p, &res, &err);
        return disk_report(cmd, "decrypt", &o, o.args[0], r, &res, &err);
}
