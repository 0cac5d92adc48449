/* The key-related subcommands of `vmcrypt disk` (unlock, bind, rekey,
 * recovery-key) and the `vmcrypt provider` command group. */
#pragma once

struct kek_release;

int disk_unlock_main(int argc, char *argv[]);
int disk_bind_main(int argc, char *argv[]);
int disk_unbind_main(int argc, char *argv[]);
int disk_rekey_main(int argc, char *argv[]);
int disk_recovery_key_main(int argc, char *argv[]);
int provider_main(int argc, char *argv[]);

/* Long options every key command takes, for getopt_long tables. */
#define KEYS_OPT_PROVIDERS 0x1000

/* Say what became of a KEK a disk stopped using (rekey, unbind, decrypt). */
void disk_report_release(const struct kek_release *k);
