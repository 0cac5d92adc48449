/* The libcryptsetup seam: every LUKS header this engine reads or writes goes through
 * here. New headers are formatted into an anonymous memory file (memfd, opened by
 * libcryptsetup as /proc/self/fd/N), so nothing reaches the disk before the caller
 * decides where and when; existing headers are read from the disk or from a copy in
 * memory. Also the "disguise" of LUKS magics that keeps a half-done disk from being
 * recognised by cryptsetup, blkid or QEMU. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "disk/engine.h"
#include "shared/secret.h"

struct crypt_device;

/* Parameters of a header to build. */
struct luks_new {
        enum disk_format format;     /* LUKS2 or LUKS1 */
        unsigned sector_size;        /* 512 or 4096 */
        bool detached;               /* data offset 0 on a separate device */
        uint64_t data_offset;        /* embedded: bytes before the data; 0 = default */
        uint64_t data_size;          /* bytes of data (sizes the stand-in data device) */
        const struct secret *vk;     /* 64-byte volume key */
        const struct secret *unlock; /* the keyslot's passphrase/secret */
        int keyslot;                 /* slot id, or -1 for the first free one */
        enum engine_kdf kdf;
        uint32_t pbkdf_memory_kib;
        uint32_t iter_time_ms;
        struct crypt_device *tokens_from; /* copy tokens of this header (reencrypt), or NULL */
        engine_header_hook_t hook;
        void *hook_userdata;
};

/* Format a header in memory; returns its region (data offset bytes when embedded,
 * header + keyslot areas when detached) in a malloc'ed buffer. */
int luks_build(const struct luks_new *n, uint8_t **ret_buf, size_t *ret_len);

/* Load the LUKS header of a file/device (primary, or secondary if the primary is
 * damaged). -ENODEV when there is no LUKS magic, -EUCLEAN when there is a magic but
 * no usable header, -ERANGE when the header is sound but the file is shorter than it
 * needs (truncated). */
int luks_load_path(const char *path, struct crypt_device **ret);

/* Load a header from a copy in memory (magic restored by the caller). *ret_memfd
 * keeps the memory file alive and must be closed after crypt_free. */
int luks_load_buffer(const uint8_t *buf, size_t len, struct crypt_device **ret, int *ret_memfd);

/* The same in a memory file of size bytes (at least len): room for a header that
 * grows there (convert). */
int luks_load_buffer_sized(const uint8_t *buf, size_t len, uint64_t size, struct crypt_device **ret,
                           int *ret_memfd);

/* -ENOSPC when an active keyslot of cd reaches into the last 4 KiB of an embedded
 * header region of region bytes (the engine's finishing stamp goes there). */
int luks_tail_unused(struct crypt_device *cd, uint64_t region);

/* Recover the volume key with the unlock secret; -EPERM on a wrong key. Sets the
 * opening keyslot in *ret_slot. */
int luks_unlock(struct crypt_device *cd, const struct secret *unlock, struct secret **ret_vk, int *ret_slot);

/* Fill format, cipher, key size, sector size, data offset, keyslots and tokens. */
int luks_fill_status(struct crypt_device *cd, struct engine_status *st);

/* Size of the header region of a loaded header: the data offset when embedded, the
 * end of the last metadata/keyslot area when detached. */
int luks_region_size(struct crypt_device *cd, uint64_t *ret);

/* Convert the header region old[0,len) (magics real) of cd, the loaded volume, to
 * format `to` without a data pass: libcryptsetup's crypt_convert moves the
 * keyslots (PBKDF2 keyslots keep their secrets), and the vmcrypt tokens move
 * between LUKS2 header tokens and the LUKS1 metadata area. The data offset stays.
 * unlock (may be NULL): a key of the volume; an Argon2 keyslot it opens is rebuilt
 * with PBKDF2 (iter_time_ms, 0: 2 s) for LUKS1. Returns the new region in a
 * malloc'ed buffer, or -EMEDIUMTYPE (the volume uses something the target format
 * lacks), -ENOSPC (no room in the header region), -EBUSY (a rekey was
 * interrupted), -EPERM (unlock opens no keyslot), with the reason in why. */
int luks_convert(struct crypt_device *cd, const uint8_t *old, size_t len, enum disk_format to,
                 const struct secret *unlock, uint32_t iter_time_ms,
                 uint8_t **ret_buf, size_t *ret_len, char *why, size_t whylen);

/* Which magic the first bytes hold. */
enum luks_magic {
        LUKS_MAGIC_NONE = 0,
        LUKS_MAGIC_REAL,       /* "LUKS\xba\xbe" (or a LUKS2 secondary "SKUL\xba\xbe") */
        LUKS_MAGIC_DISGUISED,  /* written by this engine while finishing a job */
};
/* Inspect the primary magic and the LUKS2 secondary slots in buf[0,len);
 * for a disguised header also returns the operation letter in *ret_op (may be NULL). */
enum luks_magic luks_magic_probe(const uint8_t *buf, size_t len, char *ret_op);
/* Replace every LUKS magic in buf[0,len) with a disguised one tagged op. */
void luks_disguise(uint8_t *buf, size_t len, char op);
/* Restore the real magics; returns how many were restored. */
int luks_undisguise(uint8_t *buf, size_t len);

/* Offsets where a LUKS2 secondary header may start (the on-disk format fixes them). */
extern const uint64_t luks2_secondary_offsets[];
extern const size_t luks2_n_secondary_offsets;
