/* A lock for changes to a volume's key metadata (keyslots and tokens) that leave the
 * data alone: rekey, bind, recovery keys. Two such changes at once could each remove
 * the keyslot the other just added; a data job (encrypt, decrypt, reencrypt) must not
 * run under one either. A running VM is not disturbed: QEMU's own OFD locks sit on
 * bytes this lock does not cover, so a shallow rekey works while the VM runs. */
#pragma once

/* Lock path (image, device or detached header) for a key-metadata change; *ret_fd
 * holds the lock until closed. -EBUSY when another vmcrypt change or data job holds
 * it; other negative errno when path cannot be opened. */
int disk_meta_lock(const char *path, int *ret_fd);
