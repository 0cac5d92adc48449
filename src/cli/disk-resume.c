/* `vmcrypt disk resume`: finish an interrupted in-place job. */
#include <limits.h>
#include <stdio.h>

#include "cli/cli.h"
#include "cli/disk-common.h"
#include "shared/log.h"

static const char help[] =
"Usage: vmcrypt disk resume [OPTIONS] IMAGE|DEVICE\n"
"\n"
"Finish an encrypt, decrypt, reencrypt or convert job that was interrupted (crash,\n"
"power cut, kill, I/O error). The job's state is read from the disk; the same key\n"
"that started the job unlocks it. A job that was only writing its new header (a\n"
"convert, or the last step of an encrypt or reencrypt) needs no key. Running\n"
"resume on a disk without a job does nothing.\n"
"A job with a detached header keeps its state in the header file; vmcrypt records\n"
"that file's path when the job starts, so --header is needed only if the record is\n"
"gone.\n"
"\n"
"Options:\n"
"  --header FILE            the job's detached header file (default: the recorded one)\n"
DISK_HELP_UNLOCK
DISK_HELP_RUN
"  --json                   on success, one JSON object on stdout (path, operation,\n"
"                           format, header_file, provider, kek) instead of the line\n"
"  -h, --help               show this help\n"
DISK_HELP_UNLOCK_NOTE
"\n"
"Examples:\n"
"  vmcrypt disk resume --key-file vm1.key vm1.img\n"
"\n"
"Exit status: 0 done (or nothing to do); 10 the job had not changed the disk yet\n"
"and was rolled back (run the command again); 2 usage; 3 wrong key; 5 in use;\n"
"8 state directory or job key not private; 9 job area or data damaged; 1 other\n"
"errors.\n"
"\n"
"Environment: VMCRYPT_STATE_DIR, where jobs/ records detached headers\n"
"(default /var/lib/vmcrypt).\n";

int disk_resume_main(int argc, char *argv[]) {
        const char *cmd = "vmcrypt disk resume";
        struct disk_opts o;
        int r = disk_opts_parse(cmd, DOPT_HEADER | DOPT_KEY | DOPT_PROVIDERS | DOPT_RUN | DOPT_JSON | DOPT_ONE_TARGET, help, argc, argv, &o);
        if (r >= 0)
                return r;
        struct volume_params p;
        struct volume_result res;
        struct error err;
        disk_volume_params(&o, o.args[0], &p);
        r = volume_resume(&p, &res, &err);
        int code = disk_report(cmd, "resume", &o, o.args[0], r, &res, &err);
        if (r == VOLUME_NOTHING)
                log_notice("no job in progress on %s: nothing to resume%s", o.args[0],
                           res.header[0] ? "" : " (a job with a detached header that was not recorded is found only with --header FILE)");
        /* Not "done" after a rollback: a script that runs `resume && next` must not
         * go on as if the job had finished. */
        if (r == VOLUME_ROLLED_BACK) {
                log_notice("the interrupted job had not changed %s yet: it was rolled back, the disk is as before; run the command again", o.args[0]);
                return EXIT_ROLLED_BACK;
        }
        return code;
}
