/* vmcrypt-agent: parse the options, read agent.conf, run the loop (agent.c). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "agent/agent.h"
#include "shared/log.h"

static const char help[] =
        "Usage: vmcrypt-agent --config FILE [--log-level LEVEL]\n"
        "\n"
        "The host agent of a vmcrypt fleet, one per KVM host. It connects out to\n"
        "vmcrypt-manager over mutual TLS (it works behind NAT: nothing connects to it),\n"
        "registers with the host's certificate (its CN is the host's name in the\n"
        "fleet), reports the host's VMs from libvirt with every disk's state read\n"
        "from the disk, and runs the encrypt and decrypt jobs the manager queues for\n"
        "this host through the VM library, reporting progress each second. Pause and\n"
        "cancel take effect at the next checkpoint of the disk job. Keys come from the\n"
        "host's own key providers (providers.json): the manager never sees one.\n"
        "Killed or restarted mid-job, the agent takes the job up again at its next\n"
        "start and the disk job resumes where it stopped.\n"
        "\n"
        "agent.conf (paths relative to the file; 'vmcrypt-manager init --agent HOST'\n"
        "writes HOST.conf with the first four):\n"
        "  manager = https://HOST:PORT    the manager\n"
        "  ca = FILE                      the manager's CA certificate\n"
        "  cert = FILE, key = FILE        this host's certificate and key\n"
        "  state-dir = DIR                where the agent keeps its current job\n"
        "  libvirt = URI                  the libvirt to manage (default qemu:///system)\n"
        "  providers = FILE               providers.json (default\n"
        "                                 /etc/vmcrypt/providers.json)\n"
        "  max-rate = BYTES               limit each disk's data pass (bytes/s)\n"
        "  poll-seconds = N               long poll for jobs (default 20)\n"
        "  inventory-seconds = N          report the VMs at least this often (30)\n"
        "  nice = N                       CPU priority of the agent and its data passes,\n"
        "                                 0 to 19 (default 10: the VMs come first)\n"
        "\n"
        "Options:\n"
        "  --config FILE      agent.conf (required)\n"
        "  --log-level LEVEL  error, warning, notice, info (default), debug\n"
        "\n"
        "Exit status: 0 stopped by SIGTERM/SIGINT; 1 the manager refused the\n"
        "certificate or a setup failed; 2 usage or configuration errors.\n";

int main(int argc, char *argv[]) {
        log_set_program("vmcrypt-agent");
        log_set_level(LOG_LEVEL_INFO);
        static const struct option opts[] = {
                { "config", required_argument, NULL, 'c' },
                { "log-level", required_argument, NULL, 'L' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *config = NULL;
        int c;
        while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) >= 0)
                switch (c) {
                case 'c': config = optarg; break;
                case 'L': {
                        enum log_level l;
                        if (log_level_from_string(optarg, &l) < 0)
                                return log_error("unknown log level '%s'", optarg), 2;
                        log_set_level(l);
                        break;
                }
                case 'h': fputs(help, stdout); return 0;
                default: return 2;
                }
        if (!config || optind != argc)
                return log_error("vmcrypt-agent needs --config FILE; try 'vmcrypt-agent --help'"), 2;
        static struct agent_config conf;
        struct error err = { 0 };
        if (agent_config_read(config, &conf, &err) < 0)
                return log_error("%s", err.text), 2;
        /* Keys pass through this process on their way to the disks. */
        prctl(PR_SET_DUMPABLE, 0);
        /* A data pass is background work: the host's VMs (and, on a host that runs
         * it, the manager) come first, as cryptsetup reencrypt is best run niced. */
        if (conf.nice > 0 && setpriority(PRIO_PROCESS, 0, conf.nice) < 0)
                log_warning("cannot lower the agent's CPU priority to nice %d: %m", conf.nice);
        if (agent_run(&conf, &err) < 0)
                return log_error("%s", err.text), 1;
        return 0;
}
