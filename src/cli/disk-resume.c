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
        int r = disk_opts_parse(cmd, DOPT_HEADER | DOPT_KEY | DOPT_PROVIDERS | DOPT_RUN | DOPT_ONE_TARGET, help, argc, argv, &o);
        if (r >= 0)
                return r;
        char recorded[PATH_MAX];
        if (disk_job_find_header(&o, o.args[0], recorded, sizeof(recorded), true))
                log_notice("%s: the job's state is in its detached header %s (recorded when it started)", o.args[0],
                         o.header);
        /* Only ask for a key when there is a job that needs one. */
        struct engine_status st;
        r = engine_status(o.args[0], o.header, NULL, &st);
        /* A job in its finishing step only writes the new header it holds: no key
         * (a convert never has one), except decrypt, which decrypts its first MiB. */
        bool need_key = r < 0 || (st.job != ENGINE_OP_NONE && st.job != ENGINE_OP_CONVERT &&
                                  !(st.job_finalizing && st.job != ENGINE_OP_DECRYPT));
        bool was_decrypt = r >= 0 && st.job == ENGINE_OP_DECRYPT;
        _cleanup_(secret_freep) struct secret *key = NULL;
        struct engine_params p;
        disk_params_init(&p, &o, o.args[0]);
        if (need_key) {
                r = disk_get_key(cmd, &o, o.args[0], false, &key, &p.kdf);
                if (r >= 0)
                        return r;
        }
        p.unlock = key;
        r = engine_resume(&p);
        if (r == 0 && was_decrypt)
                disk_drop_sidecar(o.header ? o.header : o.args[0]);
        if (r == 1) {
                log_notice("no job in progress on %s: nothing to resume%s", o.args[0],
                           o.header ? "" : " (a job with a detached header that was not recorded is found only with --header FILE)");
                r = 0;
        } else if (r == 2) {
                /* Not "done": a script that runs `resume && next` must not go on as
                 * if the job had finished. */
                log_notice("the interrupted job had not changed %s yet: it was rolled back, the disk is as before; run the command again", o.args[0]);
                (void) disk_finish_job("resume", &o, o.args[0], 0);
                return EXIT_ROLLED_BACK;
        }
        return disk_finish_job("resume", &o, o.args[0], r);
}
