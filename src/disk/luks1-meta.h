/* vmcrypt's metadata area in a LUKS1 header. LUKS1 has no tokens, so vmcrypt keeps
 * its own small document (the vmcrypt tokens: provider, KEK id, wrapped secret; the
 * rekey marker) inside the header region, in the gap between the end of the keyslot
 * material and the data, before the last 4 KiB (the engine's finishing stamp):
 *
 *   ... keyslot 7 material | gap | copy 0 (8 KiB) | copy 1 (8 KiB) | stamp (4 KiB) | data
 *
 * A copied, renamed or backed-up image (or `cryptsetup luksHeaderBackup`) carries
 * it. cryptsetup and QEMU never read or write those bytes. Each copy is a record
 * {magic, version, length, sequence, own offset, volume UUID, SHA-256} followed by
 * the document (JSON text); an update writes the copy that does not hold the newest
 * valid record, with the next sequence number, and flushes it, so a crash at any
 * point leaves the old document or the new one. The UUID ties the area to this
 * header: the area of an earlier volume on the same bytes (reformatted by
 * cryptsetup) is ignored. The document is not secret (the secret is wrapped by a KEK
 * that never leaves the key provider) and not authenticated: whoever can write the
 * header can also replace the whole LUKS header, as with LUKS2 tokens.
 *
 * Only embedded headers (data offset > 0) have the area; a detached LUKS1 header
 * keeps the sidecar file (disk/token.h). */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct crypt_device;

#define LUKS1_META_COPY 8192U
#define LUKS1_META_SIZE (2 * LUKS1_META_COPY)
#define LUKS1_META_TAIL 4096U /* the engine's finishing stamp lives there */
#define LUKS1_META_RECORD 104U
#define LUKS1_META_TEXT_MAX (LUKS1_META_COPY - LUKS1_META_RECORD)

/* Where the area of an embedded LUKS1 header would start (copy 0): before the last
 * 4 KiB of the header region, clear of every keyslot's material (all 8 slots, in
 * use or not: a free slot's area is where the next keyslot goes). -ENOTSUP when cd
 * is not LUKS1 or its header is detached; -ENOSPC when the gap is too small. */
int luks1_meta_locate(struct crypt_device *cd, uint64_t *ret_off);

/* Parse the two copies in buf[0,len) (the area read at offset off of a header
 * with this uuid). Copies that do not fit in len are ignored. Returns 0 with the
 * newest valid document (NUL-terminated, malloc'ed) and its sequence number;
 * -ENODATA when no copy carries the magic and this UUID; -EBADMSG when some copy
 * does but none is valid. ret_copy (may be NULL) gets the index of the copy used. */
int luks1_meta_parse(const uint8_t *buf, size_t len, uint64_t off, const char *uuid, char **ret_text,
                     uint64_t *ret_seq, int *ret_copy);

/* Read the document of cd's header: 0, -ENODATA (no area yet), -EBADMSG (damaged),
 * -ENOTSUP/-ENOSPC as luks1_meta_locate, or I/O errors. */
int luks1_meta_read(struct crypt_device *cd, char **ret_text);

/* Store text as the next generation of the document, durably (fdatasync).
 * -E2BIG when it does not fit in a copy. Test points (VMCRYPT_TEST_CRASH_POINT):
 * luks1-meta-half (all but the first sector of the copy written and flushed: a
 * torn copy), luks1-meta-written. */
int luks1_meta_write(struct crypt_device *cd, const char *text);
