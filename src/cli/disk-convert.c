/* `vmcrypt disk convert`: move a volume between LUKS2 and LUKS1, header only. */
#include "cli/cli.h"
#include "cli/disk-common.h"
#include "shared/log.h"

static const char help[] =
"Usage: vmcrypt disk convert --type luks1|luks2 [OPTIONS] IMAGE|DEVICE\n"
"\n"
"Convert a LUKS volume between LUKS2 and LUKS1 (QEMU's native luks driver reads\n"
"LUKS1 only) by rewriting its header: no data pass, no key needed. The data stays\n"
"where it is (a LUKS2 volume's data offset, 16 MiB, becomes the LUKS1 payload\n"
"offset), and so does the volume key. Keyslots move with libcryptsetup; a disk's\n"
"binding to a key provider moves between the LUKS2 'vmcrypt' tokens and the LUKS1\n"
"header's metadata area.\n"
"Refused, with the reason and nothing changed, when the volume uses what the other\n"
"format lacks: 4096-byte sectors, keyslots above 7 or with Argon2 (LUKS1 keyslots\n"
"use PBKDF2, and a keyslot's secret cannot be derived again without its key:\n"
"give the key of such a keyslot with --key-file and it is rebuilt with PBKDF2, or\n"
"convert it first with 'cryptsetup luksConvertKey --pbkdf pbkdf2 --key-slot N'),\n"
"tokens other than vmcrypt's; LUKS1 headers without room for LUKS2's larger\n"
"metadata (qemu-img's).\n"
"Crash-safe: the new header is built in memory and written with a job area like\n"
"reencrypt's; after a crash run 'vmcrypt disk resume' (no key needed) or the same\n"
"convert again.\n"
"\n"
"Options:\n"
"  --type luks1|luks2       the format to convert to (required)\n"
"  --header FILE            the volume's detached header (converted in place)\n"
"  --key-file FILE|-        a key of the volume (optional): checked to give the same\n"
"                           volume key afterwards; an Argon2 keyslot it opens is\n"
"                           rebuilt with PBKDF2 for LUKS1\n"
"  --iter-time MS           PBKDF2 time for that rebuilt keyslot (default 2000)\n"
"  -h, --help               show this help\n"
"\n"
"Examples:\n"
"  vmcrypt disk convert --type luks1 vm1.img\n"
"  vmcrypt disk convert --type luks2 --header sdb.hdr /dev/sdb\n"
"\n"
"Exit status: 0 converted (or already in that format); 2 usage; 3 wrong key; 4 not a LUKS\n"
"volume; 5 in use or another job in progress; 6 no room in the header region;\n"
"9 truncated or corrupted; 11 the volume uses what the other format lacks;\n"
"1 other errors.\n";

int disk_convert_main(int argc, char *argv[]) {
        const char *cmd = "vmcrypt disk convert";
        struct disk_opts o;
        int r = disk_opts_parse(cmd, DOPT_TYPE | DOPT_HEADER | DOPT_KEY | DOPT_NEWKEY | DOPT_JSON | DOPT_ONE_TARGET, help, argc, argv, &o);
        if (r >= 0)
                return r;
        if (o.type == DISK_FORMAT_NONE || o.sector_size)
                return cli_usage_error(cmd, "--type luks1|luks2 is required (and --sector-size does not apply)");
        if (o.new_key_file || o.random_key || o.pbkdf_memory)
                return cli_usage_error(cmd, "of the key options, convert takes --key-file and --iter-time only");
        o.progress = PROGRESS_NONE;
        struct volume_params p;
        struct volume_result res;
        struct error err;
        disk_volume_params(&o, o.args[0], &p);
        r = volume_convert(&p, o.type, &res, &err);
        if (r == 1)
                log_notice("%s is already a %s volume: nothing to convert", o.args[0], disk_format_to_string(o.type));
        return disk_report(cmd, "convert", &o, o.args[0], r < 0 ? r : 0, &res, &err);
}
