/* Shared by the `vmcrypt vm` subcommands: options, the JSON and text shapes of
 * domains and disks, the progress display and the one error message at the edge. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "shared/macro.h"
#include "vm/vm.h"

/* Which options a subcommand accepts (--connect and --help always). */
enum {
        VOPT_JSON = 1U << 0,      /* --json */
        VOPT_RATE = 1U << 1,      /* --rate */
        VOPT_VOLUMES = 1U << 2,   /* --volume-type all|os|data */
        VOPT_KEK = 1U << 3,       /* --provider, --kek */
        VOPT_PROVIDERS = 1U << 4, /* --providers */
        VOPT_PROGRESS = 1U << 5,  /* --progress */
        VOPT_MAX_RATE = 1U << 6,  /* --max-rate */
        VOPT_ATTACH = 1U << 7,    /* --target, --encrypt, --persistent, --live */
        VOPT_DEEP = 1U << 8,      /* --deep */
        VOPT_AUTO = 1U << 9,      /* --auto-encrypt on|off */
};

#define VM_HELP_CONNECT \
        "  -c, --connect URI        the libvirt to talk to, as virsh takes it (default\n" \
        "                           qemu:///system; test:///path/node.xml for libvirt's\n" \
        "                           test driver)\n"
#define VM_HELP_MAX_RATE \
        "  --max-rate RATE          limit each disk's data pass (bytes/s; suffixes K,\n" \
        "                           M, G): leave I/O to the host's running VMs\n"
#define VM_HELP_PROVIDERS \
        "  --providers FILE         providers.json (default /etc/vmcrypt/providers.json)\n"

struct vm_opts {
        const char *uri;
        bool json;
        bool rate;
        enum vm_volume_type volumes;
        const char *provider;
        const char *kek;
        const char *providers;
        bool progress;           /* show progress on stderr */
        uint64_t max_rate;
        const char *target;
        bool encrypt;
        enum vm_attach_mode mode;
        bool deep;
        int auto_encrypt;        /* -1 not given, 0 off, 1 on */
        int n_args;
        char **args;
};

/* Parse argv for cmd; prints help on --help. Between min_args and max_args (-1: no
 * limit) arguments. Returns -1 to go on, or an exit code to return right away. */
int vm_opts_parse(const char *cmd, unsigned allowed, const char *help, int min_args, int max_args, int argc,
                  char *argv[], struct vm_opts *o);

/* The vm_params of the options, for the domain called name. */
void vm_opts_params(const struct vm_opts *o, const char *name, struct vm_params *p);

/* Print err for cmd and return the exit code of r. */
int vm_report(const char *cmd, int r, const struct error *err);

json_t *vm_disk_to_json(const struct vm_disk *d);
json_t *vm_summary_to_json(const struct vm_domain *d);
/* Print JSON compactly on stdout; an exit code. */
int vm_print_json(json_t *o);

/* The result of encrypt, decrypt, start: one line per disk. */
void vm_print_result(const char *verb, const struct vm_result *res);
/* vm_progress_fn of --progress: "VERB TARGET: NN.N%" on stderr, userdata the VERB. */
enum engine_verdict vm_progress_print(const struct vm_disk *d, const struct engine_progress *p, void *userdata);

int vm_list_main(int argc, char *argv[]);
int vm_show_main(int argc, char *argv[]);
int vm_status_main(int argc, char *argv[]);
int vm_encrypt_main(int argc, char *argv[]);
int vm_decrypt_main(int argc, char *argv[]);
int vm_start_main(int argc, char *argv[]);
int vm_check_main(int argc, char *argv[]);
int vm_attach_main(int argc, char *argv[]);
int vm_set_main(int argc, char *argv[]);
int vm_rekey_main(int argc, char *argv[]);
int vm_add_vtpm_main(int argc, char *argv[]);
int vm_remove_vtpm_main(int argc, char *argv[]);
