/* libcryptsetup seam: see luks.h. */
#include "disk/luks.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libcryptsetup.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "disk/luks1-meta.h"
#include "shared/fd-util.h"
#include "shared/log.h"

static const uint8_t magic_primary[6] = { 'L', 'U', 'K', 'S', 0xba, 0xbe };
static const uint8_t magic_secondary[6] = { 'S', 'K', 'U', 'L', 0xba, 0xbe };

const uint64_t luks2_secondary_offsets[] = {
        0x4000, 0x8000, 0x10000, 0x20000, 0x40000, 0x80000, 0x100000, 0x200000, 0x400000,
};
const size_t luks2_n_secondary_offsets = ELEMENTSOF(luks2_secondary_offsets);

DEFINE_TRIVIAL_CLEANUP_FUNC(struct crypt_device *, crypt_free);

/* A memory file of size bytes and its /proc path for libcryptsetup. */
static int memfd_make(uint64_t size, int *ret_fd, char path[static 64]) {
        int fd = memfd_create("vmcrypt-luks", MFD_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        if (ftruncate(fd, (off_t) size) < 0) {
                int r = negative_errno();
                close(fd);
                return r;
        }
        snprintf(path, 64, "/proc/self/fd/%d", fd);
        *ret_fd = fd;
        return 0;
}

static void quiet_log(int level, const char *msg, void *usrptr) {
        (void) usrptr;
        if (level == CRYPT_LOG_ERROR)
                log_debug("libcryptsetup: %s", msg);
}

/* Process-wide: no lock files in /run/cryptsetup (we hold our own OFD lock and may
 * run without root), libcryptsetup's messages only at debug level. */
static void luks_setup_once(void) {
        static int done;
        if (done)
                return;
        done = 1;
        crypt_set_log_callback(NULL, quiet_log, NULL);
        (void) crypt_metadata_locking(NULL, 0);
}

/* The KDF of the new keyslot, also used for the volume-key digest: with the minimal
 * KDF nothing is benchmarked, so unlocking a KMS-bound disk costs milliseconds. */
static void pbkdf_for(const struct luks_new *n, struct crypt_pbkdf_type *pb) {
        *pb = (struct crypt_pbkdf_type) { .hash = "sha256" };
        if (n->kdf == ENGINE_KDF_MINIMAL) {
                /* A full-entropy 32-byte secret gains nothing from a slow KDF. */
                pb->type = CRYPT_KDF_PBKDF2;
                pb->iterations = 1000;
                pb->flags = CRYPT_PBKDF_NO_BENCHMARK;
        } else if (n->format == DISK_FORMAT_LUKS1) {
                pb->type = CRYPT_KDF_PBKDF2;
                pb->time_ms = n->iter_time_ms ? n->iter_time_ms : 2000;
        } else {
                pb->type = CRYPT_KDF_ARGON2ID;
                pb->time_ms = n->iter_time_ms ? n->iter_time_ms : 2000;
                pb->max_memory_kb = n->pbkdf_memory_kib ? n->pbkdf_memory_kib : 1048576;
                pb->parallel_threads = 4;
        }
}

/* Copy tokens of the old header, keeping only references to keyslots that exist in
 * the new one (a deep rekey keeps just the slot the user unlocked). */
static int copy_tokens(struct crypt_device *from, struct crypt_device *to) {
        for (int id = 0; id < ENGINE_MAX_SLOTS; id++) {
                const char *type = NULL;
                crypt_token_info ti = crypt_token_status(from, id, &type);
                if (ti != CRYPT_TOKEN_EXTERNAL && ti != CRYPT_TOKEN_EXTERNAL_UNKNOWN &&
                    ti != CRYPT_TOKEN_INTERNAL && ti != CRYPT_TOKEN_INTERNAL_UNKNOWN)
                        continue;
                const char *json = NULL;
                int r = crypt_token_json_get(from, id, &json);
                if (r < 0)
                        return r;
                json_error_t err;
                json_t *o = json_loads(json, 0, &err);
                if (!o)
                        return -EBADMSG;
                json_t *ks = json_object_get(o, "keyslots"), *keep = json_array();
                size_t i;
                json_t *v;
                if (json_is_array(ks))
                        json_array_foreach(ks, i, v) {
                                int slot = json_is_string(v) ? atoi(json_string_value(v)) : -1;
                                crypt_keyslot_info ki = crypt_keyslot_status(to, slot);
                                if (ki == CRYPT_SLOT_ACTIVE || ki == CRYPT_SLOT_ACTIVE_LAST)
                                        json_array_append(keep, v);
                        }
                json_object_set_new(o, "keyslots", keep);
                char *s = json_dumps(o, JSON_COMPACT);
                json_decref(o);
                if (!s)
                        return -ENOMEM;
                r = crypt_token_json_set(to, id, s);
                free(s);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* LUKS1 keeps vmcrypt's tokens in its metadata area (luks1-meta.h), which a new
 * header built for a deep rekey must carry over like LUKS2 tokens: the document of
 * the old header with the tokens whose keyslot no longer exists left out (a LUKS1
 * token opens exactly one keyslot) and no rekey marker (its keyslots are gone). */
static int copy_luks1_meta(struct crypt_device *from, struct crypt_device *to) {
        _cleanup_(freep) char *text = NULL;
        int r = luks1_meta_read(from, &text);
        if (r == -ENODATA || r == -ENOTSUP || r == -ENOSPC)
                return 0;
        if (r < 0)
                return r;
        json_t *doc = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
        json_t *tokens = json_object_get(doc, "tokens");
        if (!json_is_object(tokens)) {
                json_decref(doc);
                return -EBADMSG;
        }
        const char *id;
        json_t *t, *tmp;
        json_object_foreach_safe(tokens, tmp, id, t) {
                json_t *ks = json_object_get(t, "keyslots");
                const char *slot = json_string_value(json_array_get(ks, 0));
                crypt_keyslot_info ki = slot ? crypt_keyslot_status(to, atoi(slot)) : CRYPT_SLOT_INVALID;
                if (ki != CRYPT_SLOT_ACTIVE && ki != CRYPT_SLOT_ACTIVE_LAST)
                        json_object_del(tokens, id);
        }
        json_object_del(doc, "pending");
        char *s = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(doc);
        if (!s)
                return -ENOMEM;
        r = luks1_meta_write(to, s);
        free(s);
        return r;
}

static int region_end(struct crypt_device *cd, uint64_t *ret) {
        uint64_t end = 0;
        if (strcmp(crypt_get_type(cd), CRYPT_LUKS2) == 0) {
                uint64_t md = 0, ks = 0;
                int r = crypt_get_metadata_size(cd, &md, &ks);
                if (r < 0)
                        return r;
                end = 2 * md + ks;
        }
        for (int s = 0; s < crypt_keyslot_max(crypt_get_type(cd)); s++) {
                uint64_t off = 0, len = 0;
                if (crypt_keyslot_area(cd, s, &off, &len) == 0)
                        end = MAX(end, off + len);
        }
        *ret = ALIGN_UP(end, 4096);
        return 0;
}

int luks_region_size(struct crypt_device *cd, uint64_t *ret) {
        uint64_t off = crypt_get_data_offset(cd) * 512;
        if (off > 0 && !crypt_header_is_detached(cd)) {
                *ret = off;
                return 0;
        }
        return region_end(cd, ret);
}

/* The last block of an embedded header region holds the engine's finishing stamp
 * while a job ends (engine-io.c): no keyslot may reach into it. Unused keyslot
 * space is only filler (random bytes from libcryptsetup). */
int luks_tail_unused(struct crypt_device *cd, uint64_t region) {
        int max = crypt_keyslot_max(crypt_get_type(cd));
        for (int slot = 0; slot < max; slot++) {
                crypt_keyslot_info ki = crypt_keyslot_status(cd, slot);
                if (ki == CRYPT_SLOT_INACTIVE || ki == CRYPT_SLOT_INVALID)
                        continue;
                uint64_t off, len;
                if (crypt_keyslot_area(cd, slot, &off, &len) < 0)
                        return -EINVAL;
                if (off + len > region - 4096)
                        return -ENOSPC;
        }
        return 0;
}

int luks_build(const struct luks_new *n, uint8_t **ret_buf, size_t *ret_len) {
        luks_setup_once();
        bool luks1 = n->format == DISK_FORMAT_LUKS1;
        uint64_t data_offset = n->data_offset ? n->data_offset : luks1 ? 2 << 20 : 16 << 20;
        _cleanup_(closep) int hfd = -EBADF, dfd = -EBADF;
        char hpath[64], dpath[64];
        /* Sparse: a header region plus room, or a stand-in data device. */
        int r = memfd_make(n->detached ? data_offset : data_offset + (1 << 20), &hfd, hpath);
        if (r < 0)
                return r;
        if (n->detached) {
                r = memfd_make(MAX(n->data_size, (uint64_t) 1 << 20), &dfd, dpath);
                if (r < 0)
                        return r;
        }
        _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
        r = crypt_init(&cd, hpath);
        if (r < 0)
                return r;
        r = crypt_set_data_offset(cd, n->detached ? 0 : data_offset / 512);
        if (r < 0)
                return r;
        struct crypt_pbkdf_type pb;
        pbkdf_for(n, &pb);
        /* A deep rekey keeps the volume's UUID, as cryptsetup reencrypt does:
         * crypttab and fstab name volumes by it, and key providers record the disks
         * that use a KEK by it. */
        const char *uuid = n->tokens_from ? crypt_get_uuid(n->tokens_from) : NULL;
        if (luks1) {
                r = crypt_set_pbkdf_type(cd, &pb);
                if (r < 0)
                        return r;
                struct crypt_params_luks1 p1 = { .hash = "sha256",
                                                 .data_device = n->detached ? dpath : NULL };
                r = crypt_format(cd, CRYPT_LUKS1, "aes", "xts-plain64", uuid, (const char *) n->vk->data,
                                 n->vk->size, &p1);
        } else {
                struct crypt_params_luks2 p2 = { .pbkdf = &pb, .sector_size = n->sector_size ? n->sector_size : 512,
                                                 .data_device = n->detached ? dpath : NULL };
                r = crypt_format(cd, CRYPT_LUKS2, "aes", "xts-plain64", uuid, (const char *) n->vk->data,
                                 n->vk->size, &p2);
        }
        if (r < 0)
                return log_debug_errno(r, "crypt_format failed: %m");
        r = crypt_set_pbkdf_type(cd, &pb);
        if (r < 0)
                return r;
        int slot = crypt_keyslot_add_by_volume_key(cd, n->keyslot >= 0 ? n->keyslot : CRYPT_ANY_SLOT,
                                                   (const char *) n->vk->data, n->vk->size,
                                                   (const char *) n->unlock->data, n->unlock->size);
        if (slot < 0)
                return log_debug_errno(slot, "adding keyslot failed: %m");
        if (n->tokens_from) {
                r = luks1 ? copy_luks1_meta(n->tokens_from, cd) : copy_tokens(n->tokens_from, cd);
                if (r < 0)
                        return log_debug_errno(r, "copying tokens failed: %m");
        }
        if (n->hook) {
                r = n->hook(cd, slot, n->hook_userdata);
                if (r < 0)
                        return r;
        }
        uint64_t len;
        r = luks_region_size(cd, &len);
        if (r < 0)
                return r;
        if (!n->detached && len != data_offset)
                return -EINVAL;
        if (!n->detached && (r = luks_tail_unused(cd, len)) < 0)
                return log_debug_errno(r, "a keyslot reaches into the last block of the header region: %m");
        _cleanup_(freep) uint8_t *buf = malloc(len);
        if (!buf)
                return -ENOMEM;
        r = pread_full(hfd, buf, len, 0);
        if (r < 0)
                return r;
        *ret_buf = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

static int map_load_error(int r, const char *path) {
        /* libcryptsetup says -EINVAL both for "no LUKS here" and for a damaged header;
         * the magic tells them apart. */
        _cleanup_(closep) int fd = open(path, O_RDONLY | O_CLOEXEC);
        size_t n = 4 << 20;
        _cleanup_(freep) uint8_t *buf = malloc(n);
        if (fd < 0 || !buf)
                return r;
        ssize_t k = pread(fd, buf, n, 0);
        if (k <= 0)
                return -ENODEV;
        if (luks_magic_probe(buf, (size_t) k, NULL) != LUKS_MAGIC_REAL)
                return -ENODEV;
        /* A sound header on a file shorter than its data offset: truncated. Load the
         * same bytes from a memory file that is large enough to tell. */
        struct crypt_device *cd = NULL;
        int memfd = -EBADF;
        if (luks_load_buffer_sized(buf, (size_t) k, (uint64_t) 1 << 32, &cd, &memfd) == 0) {
                crypt_free(cd);
                close(memfd);
                return -ERANGE;
        }
        return -EUCLEAN;
}

int luks_load_path(const char *path, struct crypt_device **ret) {
        luks_setup_once();
        _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
        int r = crypt_init(&cd, path);
        if (r < 0)
                return r;
        r = crypt_load(cd, CRYPT_LUKS, NULL);
        if (r < 0)
                return map_load_error(r, path);
        *ret = TAKE_PTR(cd);
        return 0;
}

int luks_load_buffer(const uint8_t *buf, size_t len, struct crypt_device **ret, int *ret_memfd) {
        return luks_load_buffer_sized(buf, len, len, ret, ret_memfd);
}

int luks_load_buffer_sized(const uint8_t *buf, size_t len, uint64_t size, struct crypt_device **ret,
                           int *ret_memfd) {
        luks_setup_once();
        _cleanup_(closep) int fd = -EBADF;
        char path[64];
        int r = memfd_make(MAX(size, (uint64_t) len), &fd, path);
        if (r < 0)
                return r;
        r = pwrite_full(fd, buf, len, 0);
        if (r < 0)
                return r;
        _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
        r = crypt_init(&cd, path);
        if (r < 0)
                return r;
        r = crypt_load(cd, CRYPT_LUKS, NULL);
        if (r < 0)
                return -EUCLEAN;
        *ret = TAKE_PTR(cd);
        *ret_memfd = TAKE_FD(fd);
        return 0;
}

int luks_unlock(struct crypt_device *cd, const struct secret *unlock, struct secret **ret_vk, int *ret_slot) {
        int ks = crypt_get_volume_key_size(cd);
        if (ks <= 0)
                return -EINVAL;
        _cleanup_(secret_freep) struct secret *vk = secret_new((size_t) ks);
        if (!vk)
                return -ENOMEM;
        size_t len = vk->size;
        int slot = crypt_volume_key_get(cd, CRYPT_ANY_SLOT, (char *) vk->data, &len,
                                        (const char *) unlock->data, unlock->size);
        if (slot < 0)
                return slot == -ENOENT ? -EPERM : slot;
        secret_truncate(vk, len);
        *ret_vk = TAKE_PTR(vk);
        if (ret_slot)
                *ret_slot = slot;
        return 0;
}

/* What status shows of a token: its type, first keyslot and, for vmcrypt's
 * tokens, the binding (provider and KEK id; never the wrapped secret). */
static void token_summary(json_t *t, int id, struct engine_status *st) {
        unsigned i = st->n_tokens++;
        const char *type = json_string_value(json_object_get(t, "type"));
        const char *slot = json_string_value(json_array_get(json_object_get(t, "keyslots"), 0));
        const char *provider = json_string_value(json_object_get(t, "provider"));
        const char *kek = json_string_value(json_object_get(t, "kek_id"));
        st->tokens[i].id = id;
        st->tokens[i].keyslot = slot ? atoi(slot) : -1;
        snprintf(st->tokens[i].type, sizeof(st->tokens[i].type), "%s", type ? type : "");
        snprintf(st->tokens[i].provider, sizeof(st->tokens[i].provider), "%s", provider ? provider : "");
        snprintf(st->tokens[i].kek_id, sizeof(st->tokens[i].kek_id), "%s", kek ? kek : "");
}

/* The tokens of a LUKS1 header's metadata area, as status shows LUKS2 tokens (a
 * damaged area shows none: status reports what is there; unlock explains). */
static int luks1_fill_tokens(struct crypt_device *cd, struct engine_status *st) {
        _cleanup_(freep) char *text = NULL;
        int r = luks1_meta_read(cd, &text);
        if (r == -ENODATA || r == -ENOTSUP || r == -ENOSPC) {
                /* No area: a detached header's sidecar, or the sidecar of an image
                 * bound by an older vmcrypt (disk/token.h; its suffix is the key
                 * layer's TOKEN_SIDECAR_SUFFIX). */
                const char *dev = crypt_get_metadata_device_name(cd) ? crypt_get_metadata_device_name(cd)
                                                                      : crypt_get_device_name(cd);
                _cleanup_(freep) char *side = NULL;
                size_t len;
                if (!dev || asprintf(&side, "%s.vmcrypt.json", dev) < 0 ||
                    read_file_bounded(side, 64U << 10, &text, &len) < 0)
                        return 0;
        } else if (r < 0)
                return 0;
        json_t *doc = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
        json_t *tokens = json_object_get(doc, "tokens");
        for (int id = 0; json_is_object(tokens) && id < ENGINE_MAX_SLOTS; id++) {
                char key[16];
                snprintf(key, sizeof(key), "%d", id);
                json_t *t = json_object_get(tokens, key);
                if (t)
                        token_summary(t, id, st);
        }
        json_decref(doc);
        return 0;
}

int luks_fill_status(struct crypt_device *cd, struct engine_status *st) {
        const char *type = crypt_get_type(cd);
        st->format = strcmp(type, CRYPT_LUKS2) == 0 ? DISK_FORMAT_LUKS2 : DISK_FORMAT_LUKS1;
        snprintf(st->cipher, sizeof(st->cipher), "%s-%s", crypt_get_cipher(cd), crypt_get_cipher_mode(cd));
        st->key_bits = (unsigned) crypt_get_volume_key_size(cd) * 8;
        st->sector_size = st->format == DISK_FORMAT_LUKS2 ? (unsigned) crypt_get_sector_size(cd) : 512;
        st->data_offset = crypt_get_data_offset(cd) * 512;
        st->detached = crypt_header_is_detached(cd) > 0;
        st->n_keyslots = 0;
        for (int s = 0; s < crypt_keyslot_max(type) && s < ENGINE_MAX_SLOTS; s++) {
                crypt_keyslot_info ki = crypt_keyslot_status(cd, s);
                if (ki != CRYPT_SLOT_ACTIVE && ki != CRYPT_SLOT_ACTIVE_LAST)
                        continue;
                struct crypt_pbkdf_type pb = { 0 };
                unsigned i = st->n_keyslots++;
                st->keyslots[i].id = s;
                snprintf(st->keyslots[i].kdf, sizeof(st->keyslots[i].kdf), "%s",
                         crypt_keyslot_get_pbkdf(cd, s, &pb) == 0 && pb.type ? pb.type : "pbkdf2");
        }
        st->n_tokens = 0;
        if (st->format == DISK_FORMAT_LUKS1)
                return luks1_fill_tokens(cd, st);
        if (st->format == DISK_FORMAT_LUKS2)
                for (int id = 0; id < ENGINE_MAX_SLOTS; id++) {
                        const char *tt = NULL;
                        crypt_token_info ti = crypt_token_status(cd, id, &tt);
                        if (ti == CRYPT_TOKEN_INVALID || ti == CRYPT_TOKEN_INACTIVE)
                                continue;
                        const char *json = NULL;
                        json_t *t = crypt_token_json_get(cd, id, &json) >= 0 ? json_loads(json, 0, NULL) : NULL;
                        token_summary(t, id, st);
                        if (!t)
                                snprintf(st->tokens[st->n_tokens - 1].type, sizeof(st->tokens[0].type), "%s",
                                         tt ? tt : "");
                        json_decref(t);
                }
        return 0;
}

enum luks_magic luks_magic_probe(const uint8_t *buf, size_t len, char *ret_op) {
        if (len < 6)
                return LUKS_MAGIC_NONE;
        if (memcmp(buf, magic_primary, 6) == 0)
                return LUKS_MAGIC_REAL;
        if (memcmp(buf, "VMCJ", 4) == 0 && buf[5] == 0) {
                if (ret_op)
                        *ret_op = (char) buf[4];
                return LUKS_MAGIC_DISGUISED;
        }
        for (size_t i = 0; i < luks2_n_secondary_offsets; i++) {
                uint64_t o = luks2_secondary_offsets[i];
                if (o + 6 <= len && memcmp(buf + o, magic_secondary, 6) == 0)
                        return LUKS_MAGIC_REAL;
        }
        return LUKS_MAGIC_NONE;
}

void luks_disguise(uint8_t *buf, size_t len, char op) {
        if (len >= 6 && memcmp(buf, magic_primary, 6) == 0)
                memcpy(buf, (uint8_t[6]) { 'V', 'M', 'C', 'J', (uint8_t) op, 0 }, 6);
        for (size_t i = 0; i < luks2_n_secondary_offsets; i++) {
                uint64_t o = luks2_secondary_offsets[i];
                if (o + 6 <= len && memcmp(buf + o, magic_secondary, 6) == 0)
                        memcpy(buf + o, (uint8_t[6]) { 'V', 'M', 'C', 'K', (uint8_t) op, 0 }, 6);
        }
}

int luks_undisguise(uint8_t *buf, size_t len) {
        int n = 0;
        if (len >= 6 && memcmp(buf, "VMCJ", 4) == 0 && buf[5] == 0) {
                memcpy(buf, magic_primary, 6);
                n++;
        }
        for (size_t i = 0; i < luks2_n_secondary_offsets; i++) {
                uint64_t o = luks2_secondary_offsets[i];
                if (o + 6 <= len && memcmp(buf + o, "VMCK", 4) == 0 && buf[o + 5] == 0) {
                        memcpy(buf + o, magic_secondary, 6);
                        n++;
                }
        }
        return n;
}
