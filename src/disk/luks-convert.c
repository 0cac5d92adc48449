/* Header-only conversion between LUKS2 and LUKS1 (see luks.h, luks_convert, and
 * docs/engine.md "Convert"). The region is converted in a memory file: nothing
 * reaches the disk here; the engine writes the result with its job machinery. */
#include "disk/luks.h"

#include <errno.h>
#include <jansson.h>
#include <libcryptsetup.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "disk/luks1-meta.h"
#include "shared/fd-util.h"
#include "shared/log.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct crypt_device *, crypt_free);

/* The token types of the key layer (keys' token.h), named here without depending
 * on it: the disk layer only moves them between the formats. */
#define VMCRYPT_TOKEN "vmcrypt"
#define VMCRYPT_PENDING_TOKEN "vmcrypt-pending"

static int refuse(int r, char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int refuse(int r, char *why, size_t whylen, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, whylen, fmt, ap);
        va_end(ap);
        return r;
}

static bool slot_active(struct crypt_device *cd, int slot) {
        crypt_keyslot_info ki = crypt_keyslot_status(cd, slot);
        return ki == CRYPT_SLOT_ACTIVE || ki == CRYPT_SLOT_ACTIVE_LAST;
}

/* What LUKS1 cannot hold, named before anything is converted: crypt_convert
 * would refuse most of it too, but with a message only in libcryptsetup's log. */
static int check_for_luks1(struct crypt_device *cd, int rebuild, json_t *doc, char *why, size_t whylen) {
        if (crypt_get_sector_size(cd) != 512)
                return refuse(-EMEDIUMTYPE, why, whylen,
                              "the volume uses %d-byte sectors and LUKS1 has only 512-byte sectors: it cannot "
                              "become LUKS1 without re-encrypting its data",
                              crypt_get_sector_size(cd));
        for (int s = 0; s < crypt_keyslot_max(CRYPT_LUKS2); s++) {
                if (!slot_active(cd, s))
                        continue;
                if (s >= 8)
                        return refuse(-EMEDIUMTYPE, why, whylen,
                                      "keyslot %d is in use and LUKS1 has only keyslots 0-7: add its passphrase to a "
                                      "free keyslot below 8 and remove keyslot %d first (cryptsetup luksAddKey, "
                                      "luksKillSlot)", s, s);
                struct crypt_pbkdf_type pb = { 0 };
                if (s == rebuild)
                        continue; /* its key was given: rebuilt with PBKDF2 below */
                if (crypt_keyslot_get_pbkdf(cd, s, &pb) < 0 || !pb.type || strcmp(pb.type, CRYPT_KDF_PBKDF2) != 0)
                        return refuse(-EMEDIUMTYPE, why, whylen,
                                      "keyslot %d uses %s, and LUKS1 keyslots use only PBKDF2; a keyslot's secret "
                                      "cannot be derived again without its passphrase: pass that keyslot's key "
                                      "(--key-file) to rebuild it with PBKDF2, convert it first with 'cryptsetup "
                                      "luksConvertKey --pbkdf pbkdf2 --key-slot %d IMAGE', or remove it",
                                      s, pb.type ? pb.type : "an unknown KDF", s);
        }
        for (int id = 0; id < crypt_token_max(CRYPT_LUKS2); id++) {
                const char *type = NULL;
                crypt_token_info ti = crypt_token_status(cd, id, &type);
                if (ti == CRYPT_TOKEN_INVALID || ti == CRYPT_TOKEN_INACTIVE)
                        continue;
                if (type && strcmp(type, VMCRYPT_PENDING_TOKEN) == 0)
                        return refuse(-EBUSY, why, whylen,
                                      "a 'vmcrypt disk rekey --secret' was interrupted on this volume: run "
                                      "'vmcrypt disk rekey' to finish it first");
                if (!type || strcmp(type, VMCRYPT_TOKEN) != 0)
                        return refuse(-EMEDIUMTYPE, why, whylen,
                                      "token %d (type %s) has no LUKS1 counterpart: LUKS1 keeps only vmcrypt's "
                                      "tokens; remove it first (cryptsetup token remove --token-id %d)",
                                      id, type ? type : "?", id);
                const char *json = NULL;
                json_t *t = crypt_token_json_get(cd, id, &json) >= 0 ? json_loads(json, 0, NULL) : NULL;
                char key[16];
                snprintf(key, sizeof(key), "%d", id);
                if (!t || json_object_set_new(json_object_get(doc, "tokens"), key, t) < 0)
                        return refuse(-EBADMSG, why, whylen, "token %d of the volume is damaged", id);
        }
        return 0;
}

/* The LUKS1 document of vmcrypt's tokens; a rekey marker stops the conversion. */
static int read_luks1_doc(struct crypt_device *cd, json_t **doc, char *why, size_t whylen) {
        _cleanup_(freep) char *text = NULL;
        int r = luks1_meta_read(cd, &text);
        if (r == -ENODATA || r == -ENOTSUP || r == -ENOSPC) {
                /* A binding in a sidecar file (a detached header's, or an image's
                 * from an older vmcrypt) would be left behind. */
                const char *dev = crypt_get_metadata_device_name(cd) ? crypt_get_metadata_device_name(cd)
                                                                      : crypt_get_device_name(cd);
                _cleanup_(freep) char *side = NULL;
                if (dev && asprintf(&side, "%s.vmcrypt.json", dev) >= 0 && access(side, F_OK) == 0)
                        return refuse(-EMEDIUMTYPE, why, whylen,
                                      "the volume's binding is in %s, beside the header, and convert carries only "
                                      "bindings inside it: %s", side,
                                      r == -ENODATA ? "move it into the header first ('vmcrypt disk unlock --check "
                                                      "IMAGE' or 'vmcrypt disk rekey IMAGE' does)"
                                                    : "bind the converted volume again (vmcrypt disk bind)");
                return 0;
        }
        if (r < 0)
                return refuse(r == -EBADMSG ? -EBADMSG : r, why, whylen,
                              "the vmcrypt metadata area of the LUKS1 header is damaged: %s", strerror(-r));
        json_decref(*doc);
        *doc = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(json_object_get(*doc, "tokens")))
                return refuse(-EBADMSG, why, whylen, "the vmcrypt metadata area of the LUKS1 header is damaged");
        if (json_object_get(*doc, "pending"))
                return refuse(-EBUSY, why, whylen,
                              "a 'vmcrypt disk rekey --secret' was interrupted on this volume: run 'vmcrypt "
                              "disk rekey' to finish it first");
        return 0;
}

static int store_luks2_tokens(struct crypt_device *cd, json_t *doc, char *why, size_t whylen) {
        const char *key;
        json_t *t;
        json_object_foreach(json_object_get(doc, "tokens"), key, t) {
                _cleanup_(freep) char *s = json_dumps(t, JSON_COMPACT);
                int r = s ? crypt_token_json_set(cd, atoi(key), s) : -ENOMEM;
                if (r < 0)
                        return refuse(r, why, whylen, "cannot store token %s in the LUKS2 header: %s", key,
                                      strerror(-r));
        }
        return 0;
}

/* With the key of an Argon2 keyslot, LUKS2 -> LUKS1 can keep that keyslot: the
 * same secret, the same slot id, the volume key it opens put back under PBKDF2
 * (libcryptsetup's benchmark, iter_time_ms or its default), in the copy in
 * memory before crypt_convert. */
static int rebuild_pbkdf2(struct crypt_device *mc, int slot, const struct secret *unlock, uint32_t iter_time_ms,
                          char *why, size_t whylen) {
        struct crypt_pbkdf_type pb = { .type = CRYPT_KDF_PBKDF2, .hash = "sha256",
                                       .time_ms = iter_time_ms ? iter_time_ms : 2000 };
        int r = crypt_set_pbkdf_type(mc, &pb);
        if (r >= 0)
                r = crypt_keyslot_change_by_passphrase(mc, slot, slot, (const char *) unlock->data, unlock->size,
                                                       (const char *) unlock->data, unlock->size);
        return r < 0 ? refuse(r, why, whylen, "cannot rebuild keyslot %d with PBKDF2: %s", slot, strerror(-r)) : 0;
}

int luks_convert(struct crypt_device *cd, const uint8_t *old, size_t len, enum disk_format to,
                 const struct secret *unlock, uint32_t iter_time_ms,
                 uint8_t **ret_buf, size_t *ret_len, char *why, size_t whylen) {
        uint64_t region = crypt_get_data_offset(cd) * 512;
        /* A header file loaded alone is not "detached" to libcryptsetup; its data
         * offset 0 says it is. */
        bool detached = region == 0 || crypt_header_is_detached(cd) > 0;
        _cleanup_(json_decrefp) json_t *doc = json_pack("{s{}}", "tokens");
        if (!doc)
                return -ENOMEM;
        /* The keyslot the given key opens (checked, nothing activated). */
        int rebuild = -1;
        if (unlock && to == DISK_FORMAT_LUKS1) {
                rebuild = crypt_activate_by_passphrase(cd, NULL, CRYPT_ANY_SLOT, (const char *) unlock->data,
                                                       unlock->size, 0);
                if (rebuild < 0)
                        return refuse(rebuild == -ENOENT ? -EPERM : rebuild, why, whylen,
                                      "wrong key: no keyslot of the volume opens with it");
                struct crypt_pbkdf_type pb = { 0 };
                if (crypt_keyslot_get_pbkdf(cd, rebuild, &pb) == 0 && pb.type && strcmp(pb.type, CRYPT_KDF_PBKDF2) == 0)
                        rebuild = -1; /* nothing to rebuild */
        }
        int r = to == DISK_FORMAT_LUKS1 ? check_for_luks1(cd, rebuild, doc, why, whylen)
                                        : read_luks1_doc(cd, &doc, why, whylen);
        if (r < 0)
                return r;
        if (detached && json_object_size(json_object_get(doc, "tokens")) > 0)
                return refuse(-EMEDIUMTYPE, why, whylen,
                              "the volume is bound to a key provider and its header is detached: a detached LUKS1 "
                              "header keeps its binding in a sidecar file, which convert does not write; convert "
                              "it before binding it (vmcrypt disk bind)");

        /* The copy in memory, with room for a LUKS2 header that grows (detached). */
        _cleanup_(crypt_freep) struct crypt_device *mc = NULL;
        _cleanup_(closep) int memfd = -EBADF;
        uint64_t room = detached ? MAX((uint64_t) len, (uint64_t) 16 << 20) : len;
        r = luks_load_buffer_sized(old, len, room, &mc, &memfd);
        if (r < 0)
                return refuse(r, why, whylen, "cannot load the header in memory: %s", strerror(-r));
        if (to == DISK_FORMAT_LUKS1)
                /* crypt_convert refuses LUKS2 headers with tokens: ours go to the
                 * metadata area afterwards. */
                for (int id = 0; id < crypt_token_max(CRYPT_LUKS2); id++) {
                        crypt_token_info ti = crypt_token_status(mc, id, NULL);
                        if (ti != CRYPT_TOKEN_INVALID && ti != CRYPT_TOKEN_INACTIVE &&
                            (r = crypt_token_json_set(mc, id, NULL)) < 0)
                                return refuse(r, why, whylen, "cannot drop token %d in memory: %s", id, strerror(-r));
                }
        if (rebuild >= 0 && (r = rebuild_pbkdf2(mc, rebuild, unlock, iter_time_ms, why, whylen)) < 0)
                return r;
        r = crypt_convert(mc, to == DISK_FORMAT_LUKS1 ? CRYPT_LUKS1 : CRYPT_LUKS2, NULL);
        if (r < 0 && to == DISK_FORMAT_LUKS2)
                return refuse(-ENOSPC, why, whylen,
                              "libcryptsetup cannot convert this LUKS1 header (%s): LUKS2 needs 28 KiB more "
                              "metadata in front of the keyslots, and the header leaves no room before the data "
                              "(qemu-img's LUKS1 images put their data right after the keyslots)",
                              strerror(-r));
        if (r < 0)
                return refuse(-EMEDIUMTYPE, why, whylen, "libcryptsetup cannot convert this LUKS2 header to LUKS1 (%s)",
                              strerror(-r));
        if (to == DISK_FORMAT_LUKS1 && !detached) {
                _cleanup_(freep) char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
                if (!text)
                        return -ENOMEM;
                /* Written even when empty: it supersedes a stale area of an earlier
                 * LUKS1 life of the same volume (same UUID) left in the region. */
                r = luks1_meta_write(mc, text);
                if (r == -ENOSPC || r == -E2BIG)
                        return refuse(-ENOSPC, why, whylen,
                                      "no room for vmcrypt's metadata area (the volume's tokens) in the LUKS1 header");
                if (r < 0)
                        return refuse(r, why, whylen, "cannot write the LUKS1 metadata area: %s", strerror(-r));
        } else if (to == DISK_FORMAT_LUKS2 && (r = store_luks2_tokens(mc, doc, why, whylen)) < 0)
                return r;

        uint64_t hn;
        if ((r = luks_region_size(mc, &hn)) < 0)
                return r;
        if (!detached && (hn != region || hn != len))
                return refuse(-EINVAL, why, whylen, "the converted header moved the data (offset %llu, was %llu)",
                              (unsigned long long) hn, (unsigned long long) region);
        if (!detached && luks_tail_unused(mc, hn) < 0) {
                int slot = -1;
                for (int s = crypt_keyslot_max(crypt_get_type(mc)) - 1; s >= 0 && slot < 0; s--)
                        if (slot_active(mc, s))
                                slot = s;
                return refuse(-ENOSPC, why, whylen,
                              "in the converted header keyslot %d would reach into the last 4 KiB before the data, "
                              "which vmcrypt needs while it rewrites a header: move that keyslot's passphrase to a "
                              "lower free keyslot first (cryptsetup luksAddKey, luksKillSlot)", slot);
        }
        _cleanup_(freep) uint8_t *buf = malloc(hn);
        if (!buf)
                return -ENOMEM;
        if ((r = pread_full(memfd, buf, hn, 0)) < 0)
                return r;
        *ret_buf = TAKE_PTR(buf);
        *ret_len = hn;
        return 0;
}
