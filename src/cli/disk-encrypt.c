/* `vmcrypt disk encrypt`: in-place encryption of an image file or device. */
#include <unistd.h>

#include "cli/cli.h"
#include "cli/disk-common.h"

static const char help[] =
"Usage: vmcrypt disk encrypt [OPTIONS] IMAGE|DEVICE\n"
"\n"
"Encrypt a raw disk image or block device in place into a LUKS volume\n"
"(aes-xts-plain64, 512-bit volume key). For an image file the LUKS header goes in\n"
"front and the data moves up by the header size (16 MiB for LUKS2, 2 MiB for LUKS1):\n"
"the file grows by that much. With --header the header is written to a separate\n"
"file and the data stays where it is (block devices, whole disks).\n"
"The job is crash-safe: after a crash or power cut run 'vmcrypt disk resume'.\n"
"While it runs the disk cannot be opened by cryptsetup, QEMU or a guest.\n"
"\n"
"Options:\n"
"  --type luks2|luks1       format (default luks2; QEMU's native driver needs luks1)\n"
"  --sector-size 512|4096   encryption sector size (default 512; 4096 LUKS2 only)\n"
"  --header FILE            detached header in FILE (must not exist, or be empty)\n"
"  --key-file FILE|-        unlock key from FILE, or from a pipe on stdin with -\n"
DISK_HELP_NEW_SLOT
"  --new-key-file FILE      generate a random 32-byte key into FILE (mode 0600;\n"
"                           refused if FILE exists)\n"
DISK_HELP_KDF
DISK_HELP_RUN
"  --force-raw              encrypt the disk as raw even though it starts (or ends)\n"
"                           like a qcow2, VMDK, VHD, VHDX, VDI or QED image\n"
"  --json                   on success, one JSON object on stdout (path, operation,\n"
"                           format, header_file, provider, kek) instead of the line\n"
"  -h, --help               show this help\n"
"Without a key option, a passphrase is asked twice on the terminal.\n"
"\n"
"Only raw disks are encrypted. An image in a container format (qcow2, VMDK, VHD,\n"
"VHDX, VDI, QED) is refused with exit status 11: convert it first with\n"
"'qemu-img convert -O raw IMAGE IMAGE.raw' and encrypt the raw copy. The check\n"
"reads the disk's first bytes (and VHD's footer in its last 512), which a guest\n"
"of a raw disk controls: if a raw disk is refused, --force-raw encrypts it.\n"
"\n"
"Examples:\n"
"  vmcrypt disk encrypt --new-key-file vm1.key vm1.img\n"
"  vmcrypt disk encrypt --type luks1 --key-file - vm2.img < key\n"
"  vmcrypt disk encrypt --header /var/lib/vmcrypt/sdb.hdr --key-file k /dev/sdb\n"
"\n"
"Exit status: 0 done; 2 usage; 3 wrong key; 5 in use, already encrypted or a job\n"
"in progress; 6 not enough space; 9 bad or corrupted data; 11 not a raw disk\n"
"(qcow2, VMDK, ...); 1 other errors.\n";

int disk_encrypt_main(int argc, char *argv[]) {
        const char *cmd = "vmcrypt disk encrypt";
        struct disk_opts o;
        int r = disk_opts_parse(cmd, DOPT_TYPE | DOPT_HEADER | DOPT_KEY | DOPT_NEWKEY | DOPT_RUN | DOPT_PROVIDER | DOPT_JSON | DOPT_ONE_TARGET | DOPT_FORCE_RAW, help, argc, argv, &o);
        if (r >= 0)
                return r;
        struct volume_params p;
        struct volume_result res;
        struct error err;
        disk_volume_params(&o, o.args[0], &p);
        r = volume_encrypt(&p, &res, &err);
        return disk_report(cmd, "encrypt", &o, o.args[0], r, &res, &err);
}
