/* Checking that a secret opens a LUKS2 keyslot, without libcryptsetup's keyslot
 * code: the boot-storm path checks hundreds of disks per second, and libcryptsetup
 * (OpenSSL 3 backend) spends ~5 ms per check re-fetching the hash for each of the
 * 8000 anti-forensic diffusion steps. This does the same computation with one
 * fetched digest: PBKDF2 the secret, decrypt the keyslot area (aes-xts-plain64),
 * merge the anti-forensic stripes, and compare the volume key's PBKDF2 digest.
 * Only the keyslot kind vmcrypt creates (pbkdf2, luks1 AF, aes-xts-plain64) is
 * handled; anything else is left to libcryptsetup. */
#pragma once

#include <libcryptsetup.h>

#include "shared/secret.h"

/* 0 when secret opens keyslot of the loaded LUKS2 device cd; -EPERM when it does
 * not; -EOPNOTSUPP for LUKS1 or a keyslot kind not handled here (use
 * crypt_activate_by_passphrase); other -errno on I/O or malformed metadata. */
int keyslot_check(struct crypt_device *cd, int keyslot, const struct secret *secret);
