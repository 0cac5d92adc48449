/* The native key provider's own operations (beyond the provider vtable): creating
 * its primary key, exporting and restoring the password-protected backup bundle.
 * The primary key rests in STATE_DIR/primary.json, AES-256-GCM under a key derived
 * from the provider's key file (HKDF) or a passphrase (scrypt). KEKs are derived
 * from it per KEK id (HKDF), so nothing but the primary key needs storing. Like
 * vSphere's native key provider, it refuses to wrap or unwrap until a backup has
 * been exported (STATE_DIR/backup-exported), so losing the host never loses disks. */
#pragma once

#include "shared/error.h"
#include "keys/provider.h"

#define NATIVE_BACKUP_FORMAT "vmcrypt-native-backup"

/* Create the primary key (and the key file when configured and missing);
 * -EEXIST when the provider already has one. */
int native_init(const struct provider_config *c, struct error *err);

/* Write the primary key to out_path (created 0600, must not exist), encrypted
 * under passphrase (scrypt + AES-256-GCM), and record that a backup exists. */
int native_backup(const struct provider_config *c, const struct secret *passphrase, const char *out_path,
                  struct error *err);

/* Install the primary key from a backup bundle; -EKEYREJECTED on a wrong
 * passphrase, -EEXIST when a different primary key is already installed. */
int native_restore(const struct provider_config *c, const struct secret *passphrase, const char *in_path,
                   struct error *err);

/* 1 when a backup was exported, 0 when not, -ENOENT when not initialised. */
int native_backup_exported(const struct provider_config *c);
