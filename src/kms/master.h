/* Opening the store with the configured master key (key file or passphrase), and
 * replacing the key file crash-safely when the master key is rotated. */
#pragma once

#include "kms/config.h"
#include "kms/store.h"

#include <stdbool.h>

/* Shortest new master passphrase, in characters. */
#define KMS_PASSPHRASE_MIN 12

/* Read a master passphrase file ("-": standard input): the file must pass the
 * ownership rules of perms.h; exactly one trailing newline ("\n" or "\r\n") is
 * dropped, as the prompt drops the Enter of a typed line; then it must be non-empty
 * and one line, and, when new (it is about to seal a store), KMS_PASSPHRASE_MIN
 * characters at least. Logs what is wrong. */
int kms_master_read_passphrase(const char *path, bool new, struct secret **ret);

/* Open the configured store (every failure logged). With a key file, finishes an interrupted rotation (a
 * "<key file>.new" that matches the store replaces the old file). With a passphrase
 * file, reads the passphrase from it; if none is configured and prompt is set, asks
 * on the terminal. */
int kms_master_open_store(const struct kms_config *c, int prompt, struct store **ret);

/* Rotate: new_key_file NULL means generate a fresh random key into the configured key
 * file; passphrase non-NULL switches to that passphrase. */
int kms_master_rotate(const struct kms_config *c, const struct secret *new_passphrase, struct store *s);
