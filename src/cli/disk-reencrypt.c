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
        int r = disk_opts_parse(cmd, DOPT_HEADER | DOPT_KEY | DOPT_PROVIDERS | DOPT_RUN | DOPT_ONE_TARGET, help, argc, argv, &o);
        if (r >= 0)
                return r;
        _cleanup_(secret_freep) struct secret *key = NULL;
        struct engine_params p;
        r = disk_prepare(cmd, &o, o.args[0], false, &p, &key);
        if (r >= 0)
                return r;

        /* Keyslots we cannot open (a recovery passphrase, another host's secret) cannot
         * follow the new volume key: say so before they go, not after. */
        struct engine_status st;
        if (engine_status(o.args[0], o.header, NULL, &st) >= 0 && st.n_keyslots > 1)
                log_warning("%s has %u keyslots; only the one this key opens survives the new volume key. "
                            "Add a recovery passphrase again afterwards with 'vmcrypt disk recovery-key add'.",
                            o.args[0], st.n_keyslots);
        r = disk_job_begin(cmd, &o, o.args[0], ENGINE_OP_REENCRYPT);
        if (r >= 0)
                return r;
        return disk_finish_job("reencrypt", &o, o.args[0], engine_reencrypt(&p));
}
