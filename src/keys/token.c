/* The "vmcrypt" token: encoding, validation and the stores (LUKS2 header tokens;
 * LUKS1: the header's metadata area, or the sidecar file of detached headers and
 * of volumes bound by an older vmcrypt). See token.h. */
#include "keys/token.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "disk/luks1-meta.h"
#include "shared/b64.h"
#include "shared/fd-util.h"
#include "shared/log.h"
#include "shared/macro.h"

struct vmcrypt_token *token_new(void) {
        struct vmcrypt_token *t = calloc(1, sizeof(*t));
        if (t)
                t->keyslot = -1;
        return t;
}

void token_free(struct vmcrypt_token *t) {
        if (!t)
                return;
        free(t->provider);
        free(t->kek_id);
        free(t->method);
        free(t->cipher);
        free(t->wrapped);
        free(t->iv);
        free(t->tag);
        free(t->created);
        free(t->vm_name);
        free(t->vm_uuid);
        free(t);
}

static int dup_str(const char *s, char **ret) {
        *ret = NULL;
        if (!s)
                return 0;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

static int dup_bytes(const uint8_t *p, size_t n, uint8_t **ret) {
        *ret = NULL;
        if (!p)
                return 0;
        *ret = malloc(n ? n : 1);
        if (!*ret)
                return -ENOMEM;
        memcpy(*ret, p, n);
        return 0;
}

struct vmcrypt_token *token_dup(const struct vmcrypt_token *src) {
        _cleanup_(token_freep) struct vmcrypt_token *t = token_new();
        if (!t)
                return NULL;
        t->keyslot = src->keyslot;
        t->wrapped_size = src->wrapped_size;
        t->iv_size = src->iv_size;
        t->tag_size = src->tag_size;
        if (dup_str(src->provider, &t->provider) < 0 || dup_str(src->kek_id, &t->kek_id) < 0 ||
            dup_str(src->method, &t->method) < 0 || dup_str(src->cipher, &t->cipher) < 0 ||
            dup_str(src->created, &t->created) < 0 || dup_str(src->vm_name, &t->vm_name) < 0 ||
            dup_str(src->vm_uuid, &t->vm_uuid) < 0 ||
            dup_bytes(src->wrapped, src->wrapped_size, &t->wrapped) < 0 ||
            dup_bytes(src->iv, src->iv_size, &t->iv) < 0 ||
            dup_bytes(src->tag, src->tag_size, &t->tag) < 0)
                return NULL;
        return TAKE_PTR(t);
}

int token_stamp(struct vmcrypt_token *t) {
        char buf[32];
        time_t now = time(NULL);
        struct tm tm;
        if (!gmtime_r(&now, &tm) || strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                return -EINVAL;
        free(t->created);
        t->created = strdup(buf);
        return t->created ? 0 : -ENOMEM;
}

static int text_ok(const char *s, size_t max) {
        if (!s || !*s || strlen(s) > max)
                return 0;
        for (const char *p = s; *p; p++)
                if ((unsigned char) *p < 0x20)
                        return 0;
        return 1;
}

int token_validate(const struct vmcrypt_token *t) {
        if (!t || t->keyslot < 0 || t->keyslot >= 32)
                return -EBADMSG;
        if (!text_ok(t->provider, 128) || !text_ok(t->kek_id, 256) || !t->method)
                return -EBADMSG;
        if (!t->wrapped || t->wrapped_size == 0 || t->wrapped_size > TOKEN_WRAPPED_MAX)
                return -EBADMSG;
        if (t->iv_size > TOKEN_IV_MAX || t->tag_size > TOKEN_IV_MAX)
                return -EBADMSG;
        if (strcmp(t->method, TOKEN_METHOD_RFC5649) == 0) {
                /* RFC 5649 output is whole 64-bit blocks, at least two. */
                if (t->wrapped_size < 16 || t->wrapped_size % 8 != 0)
                        return -EBADMSG;
        } else if (strcmp(t->method, TOKEN_METHOD_KMIP_ENCRYPT) == 0) {
                if (!text_ok(t->cipher, 64))
                        return -EBADMSG;
        } else
                return -EBADMSG;
        if (t->vm_name && !text_ok(t->vm_name, 256))
                return -EBADMSG;
        if (t->vm_uuid && !text_ok(t->vm_uuid, 64))
                return -EBADMSG;
        return 0;
}

static int set_str(json_t *o, const char *key, const char *v) {
        if (!v)
                return 0;
        return json_object_set_new(o, key, json_string(v)) == 0 ? 0 : -ENOMEM;
}

static int set_b64(json_t *o, const char *key, const uint8_t *p, size_t n) {
        if (!p)
                return 0;
        _cleanup_(freep) char *s = b64_encode(p, n);
        if (!s)
                return -ENOMEM;
        return set_str(o, key, s);
}

static int token_to_object(const struct vmcrypt_token *t, json_t **ret) {
        int r = token_validate(t);
        if (r < 0)
                return r;
        _cleanup_(json_decrefp) json_t *o = json_object();
        char slot[16];
        snprintf(slot, sizeof(slot), "%d", t->keyslot);
        if (!o || json_object_set_new(o, "type", json_string(TOKEN_TYPE)) < 0 ||
            json_object_set_new(o, "keyslots", json_pack("[s]", slot)) < 0)
                return -ENOMEM;
        if ((r = set_str(o, "provider", t->provider)) < 0 || (r = set_str(o, "kek_id", t->kek_id)) < 0 ||
            (r = set_str(o, "method", t->method)) < 0 || (r = set_str(o, "cipher", t->cipher)) < 0 ||
            (r = set_b64(o, "wrapped", t->wrapped, t->wrapped_size)) < 0 ||
            (r = set_b64(o, "iv", t->iv, t->iv_size)) < 0 ||
            (r = set_b64(o, "tag", t->tag, t->tag_size)) < 0 ||
            (r = set_str(o, "created", t->created)) < 0 || (r = set_str(o, "vm_name", t->vm_name)) < 0 ||
            (r = set_str(o, "vm_uuid", t->vm_uuid)) < 0)
                return r;
        *ret = TAKE_PTR(o);
        return 0;
}

int token_to_json(const struct vmcrypt_token *t, char **ret) {
        _cleanup_(json_decrefp) json_t *o = NULL;
        int r = token_to_object(t, &o);
        if (r < 0)
                return r;
        char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* Optional string member: absent is fine, present must be a string. */
static int get_str(json_t *o, const char *key, int required, char **ret) {
        json_t *v = json_object_get(o, key);
        if (!v)
                return required ? -EBADMSG : 0;
        if (!json_is_string(v))
                return -EBADMSG;
        *ret = strdup(json_string_value(v));
        return *ret ? 0 : -ENOMEM;
}

static int get_b64(json_t *o, const char *key, int required, size_t max, uint8_t **ret, size_t *ret_size) {
        json_t *v = json_object_get(o, key);
        if (!v)
                return required ? -EBADMSG : 0;
        if (!json_is_string(v))
                return -EBADMSG;
        return b64_decode(json_string_value(v), max, ret, ret_size);
}

static int token_from_object(json_t *o, struct vmcrypt_token **ret) {
        if (!json_is_object(o))
                return -EBADMSG;
        json_t *type = json_object_get(o, "type");
        if (!json_is_string(type) || strcmp(json_string_value(type), TOKEN_TYPE) != 0)
                return -EBADMSG;
        /* Exactly one keyslot: one token opens one slot, which keeps rekey simple. */
        json_t *slots = json_object_get(o, "keyslots");
        if (!json_is_array(slots) || json_array_size(slots) != 1 || !json_is_string(json_array_get(slots, 0)))
                return -EBADMSG;
        const char *s = json_string_value(json_array_get(slots, 0));
        char *end = NULL;
        errno = 0;
        long slot = strtol(s, &end, 10);
        if (errno || end == s || *end || slot < 0 || slot >= 32)
                return -EBADMSG;

        _cleanup_(token_freep) struct vmcrypt_token *t = token_new();
        if (!t)
                return -ENOMEM;
        t->keyslot = (int) slot;
        int r;
        if ((r = get_str(o, "provider", 1, &t->provider)) < 0 || (r = get_str(o, "kek_id", 1, &t->kek_id)) < 0 ||
            (r = get_str(o, "method", 1, &t->method)) < 0 || (r = get_str(o, "cipher", 0, &t->cipher)) < 0 ||
            (r = get_b64(o, "wrapped", 1, TOKEN_WRAPPED_MAX, &t->wrapped, &t->wrapped_size)) < 0 ||
            (r = get_b64(o, "iv", 0, TOKEN_IV_MAX, &t->iv, &t->iv_size)) < 0 ||
            (r = get_b64(o, "tag", 0, TOKEN_IV_MAX, &t->tag, &t->tag_size)) < 0 ||
            (r = get_str(o, "created", 0, &t->created)) < 0 || (r = get_str(o, "vm_name", 0, &t->vm_name)) < 0 ||
            (r = get_str(o, "vm_uuid", 0, &t->vm_uuid)) < 0)
                return r;
        r = token_validate(t);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(t);
        return 0;
}

int token_from_json(const char *json, struct vmcrypt_token **ret) {
        if (!json)
                return -EBADMSG;
        _cleanup_(json_decrefp) json_t *o = json_loads(json, JSON_REJECT_DUPLICATES, NULL);
        if (!o)
                return -EBADMSG;
        return token_from_object(o, ret);
}

void token_list_free(struct token_list *l) {
        if (!l)
                return;
        for (size_t i = 0; i < l->n; i++)
                token_free(l->e[i].tok);
        free(l);
}

/* ---- LUKS2 header tokens ------------------------------------------------ */

static int luks2_list(struct crypt_device *cd, struct token_list *l) {
        int max = crypt_token_max(CRYPT_LUKS2);
        for (int id = 0; id < max && l->n < TOKEN_STORE_MAX; id++) {
                const char *type = NULL;
                crypt_token_info info = crypt_token_status(cd, id, &type);
                if (info == CRYPT_TOKEN_INVALID || info == CRYPT_TOKEN_INACTIVE)
                        continue;
                if (!type || strcmp(type, TOKEN_TYPE) != 0)
                        continue;
                const char *json = NULL;
                int r = crypt_token_json_get(cd, id, &json);
                struct token_entry *e = &l->e[l->n++];
                e->id = id;
                e->error = r < 0 ? -EBADMSG : token_from_json(json, &e->tok);
        }
        return 0;
}

/* ---- LUKS1 sidecar file -------------------------------------------------- */

char *token_sidecar_path(const char *header_path) {
        char *p = NULL;
        if (asprintf(&p, "%s%s", header_path, TOKEN_SIDECAR_SUFFIX) < 0)
                return NULL;
        return p;
}

/* The document is {"tokens":{"<id>":{token}, ...}, "pending":{...}}, in the LUKS1
 * metadata area or in the sidecar. A missing document means no tokens; an
 * unreadable one is an error for the whole store, since rewriting it would lose
 * what we could not parse. */
/* A sidecar holds a few tokens of a few hundred bytes each. */
#define TOKEN_SIDECAR_MAX (64U << 10)

static int doc_empty(json_t **ret) {
        json_t *root = json_pack("{s{}}", "tokens");
        if (!root)
                return -ENOMEM;
        *ret = root;
        return 0;
}

static int doc_parse(const char *text, size_t len, const char *where, json_t **ret) {
        json_error_t err;
        json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
        if (!root) {
                /* Position only: the document holds wrapped secrets, not for logs. */
                log_debug("%s: not valid JSON (line %d, column %d)", where, err.line, err.column);
                return -EBADMSG;
        }
        if (!json_is_object(root) || !json_is_object(json_object_get(root, "tokens"))) {
                json_decref(root);
                return -EBADMSG;
        }
        *ret = root;
        return 0;
}

static int sidecar_load(const char *header_path, json_t **ret) {
        if (!header_path)
                return doc_empty(ret);
        _cleanup_(freep) char *path = token_sidecar_path(header_path);
        if (!path)
                return -ENOMEM;
        _cleanup_(freep) char *text = NULL;
        size_t len;
        int r = read_file_bounded(path, TOKEN_SIDECAR_MAX, &text, &len);
        if (r == -ENOENT)
                return doc_empty(ret);
        if (r < 0)
                return r == -EFBIG || r == -EINVAL ? -EBADMSG : r;
        return doc_parse(text, len, path, ret);
}

static int sidecar_save(const char *header_path, json_t *root) {
        if (!header_path)
                return -EINVAL;
        _cleanup_(freep) char *path = token_sidecar_path(header_path);
        if (!path)
                return -ENOMEM;
        _cleanup_(freep) char *text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
        if (!text)
                return -ENOMEM;
        return write_file_atomic(path, text, strlen(text), 0600);
}

/* The sidecar beside header_path belongs to cd only when header_path is the file
 * cd's header is in: a header being built in memory for an image (encrypt) must
 * not inherit a stale sidecar that lies beside that image. */
static bool sidecar_is_ours(struct crypt_device *cd, const char *header_path) {
        const char *dev = crypt_get_metadata_device_name(cd) ? crypt_get_metadata_device_name(cd)
                                                               : crypt_get_device_name(cd);
        struct stat a, b;
        if (!header_path || !dev || stat(header_path, &a) < 0 || stat(dev, &b) < 0)
                return false;
        return a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_rdev == b.st_rdev;
}

static bool sidecar_exists(const char *header_path) {
        _cleanup_(freep) char *path = header_path ? token_sidecar_path(header_path) : NULL;
        return path && access(path, F_OK) == 0;
}

/* Remove the sidecar once the area holds its document (durably: the area was
 * flushed first, the directory is flushed after). */
static int sidecar_drop(const char *header_path) {
        _cleanup_(freep) char *path = token_sidecar_path(header_path);
        if (!path)
                return -ENOMEM;
        if (unlink(path) < 0)
                return errno == ENOENT ? 0 : -errno;
        return fsync_parent_dir(path);
}

/* The LUKS1 document: the metadata area when the header has one, else the
 * sidecar of an older vmcrypt (or of a detached header). */
static int luks1_load(struct crypt_device *cd, const char *header_path, json_t **ret) {
        _cleanup_(freep) char *text = NULL;
        int r = luks1_meta_read(cd, &text);
        if (r == 0)
                return doc_parse(text, strlen(text), "the vmcrypt metadata area", ret);
        if (r != -ENODATA && r != -ENOTSUP && r != -ENOSPC)
                return r;
        if (r == -ENOTSUP || sidecar_is_ours(cd, header_path))
                return sidecar_load(header_path, ret);
        return doc_empty(ret);
}

/* Every change of an embedded header's document goes to its area, and a sidecar
 * it was read from goes once the area holds it: bind and rekey migrate older
 * volumes. A header without room keeps a sidecar it already has (it worked
 * before); it gets no new one: a binding beside the image is lost with a copy. */
static int luks1_save(struct crypt_device *cd, const char *header_path, json_t *root) {
        uint64_t off;
        int r = luks1_meta_locate(cd, &off);
        if (r == -ENOTSUP)
                return sidecar_save(header_path, root);
        bool ours = sidecar_is_ours(cd, header_path);
        if (r == -ENOSPC && ours && sidecar_exists(header_path))
                return sidecar_save(header_path, root);
        if (r < 0)
                return r;
        _cleanup_(freep) char *text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
        if (!text)
                return -ENOMEM;
        r = luks1_meta_write(cd, text);
        if (r < 0)
                return r;
        return ours ? sidecar_drop(header_path) : 0;
}

int token_store_can_add(struct crypt_device *cd, const char *header_path) {
        const char *type = crypt_get_type(cd);
        if (!type || strcmp(type, CRYPT_LUKS1) != 0)
                return 0;
        uint64_t off;
        int r = luks1_meta_locate(cd, &off);
        if (r == -ENOSPC && sidecar_is_ours(cd, header_path) && sidecar_exists(header_path))
                return 0;
        return r == -ENOTSUP ? 0 : r;
}

int token_store_migrate(struct crypt_device *cd, const char *header_path) {
        uint64_t off;
        if (luks1_meta_locate(cd, &off) < 0 || !sidecar_is_ours(cd, header_path) || !sidecar_exists(header_path))
                return 0;
        _cleanup_(freep) char *text = NULL;
        int r = luks1_meta_read(cd, &text);
        if (r == 0) {
                /* The area won already (a crash after writing it, before the unlink). */
                r = sidecar_drop(header_path);
                return r < 0 ? r : 1;
        }
        if (r != -ENODATA)
                return r;
        _cleanup_(json_decrefp) json_t *root = NULL;
        r = sidecar_load(header_path, &root);
        if (r < 0)
                return r;
        r = luks1_save(cd, header_path, root);
        return r < 0 ? r : 1;
}

static int luks1_list(struct crypt_device *cd, const char *header_path, struct token_list *l) {
        _cleanup_(json_decrefp) json_t *root = NULL;
        int r = luks1_load(cd, header_path, &root);
        if (r < 0)
                return r;
        for (int id = 0; id < TOKEN_STORE_MAX && l->n < TOKEN_STORE_MAX; id++) {
                char key[16];
                snprintf(key, sizeof(key), "%d", id);
                json_t *o = json_object_get(json_object_get(root, "tokens"), key);
                if (!o)
                        continue;
                struct token_entry *e = &l->e[l->n++];
                e->id = id;
                e->error = token_from_object(o, &e->tok);
        }
        return 0;
}

static int luks1_add(struct crypt_device *cd, const char *header_path, const struct vmcrypt_token *t) {
        _cleanup_(json_decrefp) json_t *root = NULL;
        _cleanup_(json_decrefp) json_t *o = NULL;
        int r = luks1_load(cd, header_path, &root);
        if (r < 0)
                return r;
        r = token_to_object(t, &o);
        if (r < 0)
                return r;
        json_t *tokens = json_object_get(root, "tokens");
        for (int id = 0; id < TOKEN_STORE_MAX; id++) {
                char key[16];
                snprintf(key, sizeof(key), "%d", id);
                if (json_object_get(tokens, key))
                        continue;
                if (json_object_set(tokens, key, o) < 0)
                        return -ENOMEM;
                r = luks1_save(cd, header_path, root);
                return r < 0 ? r : id;
        }
        return -ENOSPC;
}

static int luks1_remove(struct crypt_device *cd, const char *header_path, int id) {
        _cleanup_(json_decrefp) json_t *root = NULL;
        int r = luks1_load(cd, header_path, &root);
        if (r < 0)
                return r;
        char key[16];
        snprintf(key, sizeof(key), "%d", id);
        if (json_object_del(json_object_get(root, "tokens"), key) < 0)
                return -ENOENT;
        return luks1_save(cd, header_path, root);
}

/* ---- the store ----------------------------------------------------------- */

static int is_luks2(struct crypt_device *cd) {
        const char *type = crypt_get_type(cd);
        if (!type)
                return -EINVAL;
        if (strcmp(type, CRYPT_LUKS2) == 0)
                return 1;
        if (strcmp(type, CRYPT_LUKS1) == 0)
                return 0;
        return -EINVAL;
}

int token_store_list(struct crypt_device *cd, const char *header_path, struct token_list **ret) {
        int v2 = is_luks2(cd);
        if (v2 < 0)
                return v2;
        struct token_list *l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        int r = v2 ? luks2_list(cd, l) : luks1_list(cd, header_path, l);
        if (r < 0) {
                token_list_free(l);
                return r;
        }
        *ret = l;
        return 0;
}

int token_store_add(struct crypt_device *cd, const char *header_path, const struct vmcrypt_token *t) {
        int v2 = is_luks2(cd);
        if (v2 < 0)
                return v2;
        if (!v2)
                return luks1_add(cd, header_path, t);
        _cleanup_(freep) char *json = NULL;
        int r = token_to_json(t, &json);
        if (r < 0)
                return r;
        /* crypt_token_json_set commits the header (both copies) before returning. */
        return crypt_token_json_set(cd, CRYPT_ANY_TOKEN, json);
}

int token_store_remove(struct crypt_device *cd, const char *header_path, int id) {
        int v2 = is_luks2(cd);
        if (v2 < 0)
                return v2;
        if (!v2)
                return luks1_remove(cd, header_path, id);
        const char *type = NULL;
        crypt_token_info info = crypt_token_status(cd, id, &type);
        if (info == CRYPT_TOKEN_INVALID || info == CRYPT_TOKEN_INACTIVE || !type ||
            strcmp(type, TOKEN_TYPE) != 0)
                return -ENOENT;
        return crypt_token_json_set(cd, id, NULL);
}

/* ---- pending-keyslot marker ---------------------------------------------- */

static int luks2_find_pending(struct crypt_device *cd) {
        int max = crypt_token_max(CRYPT_LUKS2);
        for (int id = 0; id < max; id++) {
                const char *type = NULL;
                crypt_token_info info = crypt_token_status(cd, id, &type);
                if (info != CRYPT_TOKEN_INVALID && info != CRYPT_TOKEN_INACTIVE && type &&
                    strcmp(type, TOKEN_PENDING_TYPE) == 0)
                        return id;
        }
        return -ENOENT;
}

static int slot_ok(json_int_t k) {
        return k >= 0 && k < 32;
}

int token_store_set_pending(struct crypt_device *cd, const char *header_path, int from, int to) {
        int v2 = is_luks2(cd);
        if (v2 < 0)
                return v2;
        if (!slot_ok(from) || !slot_ok(to))
                return -EINVAL;
        if (!v2) {
                json_auto_t *root = NULL;
                int r = luks1_load(cd, header_path, &root);
                if (r < 0)
                        return r;
                if (json_object_set_new(root, "pending", json_pack("{s:i,s:i}", "from", from, "to", to)) < 0)
                        return -ENOMEM;
                return luks1_save(cd, header_path, root);
        }
        /* The marker names no keyslot in "keyslots": `to` does not exist yet. */
        char json[160];
        snprintf(json, sizeof(json), "{\"type\":\"%s\",\"keyslots\":[],\"from\":\"%d\",\"to\":\"%d\"}",
                 TOKEN_PENDING_TYPE, from, to);
        int id = luks2_find_pending(cd);
        return crypt_token_json_set(cd, id >= 0 ? id : CRYPT_ANY_TOKEN, json) < 0 ? -EIO : 0;
}

static int slot_from_text(json_t *v, int *ret) {
        const char *k = json_string_value(v);
        char *end = NULL;
        long slot = k ? strtol(k, &end, 10) : -1;
        if (!k || end == k || *end || !slot_ok(slot))
                return -EBADMSG;
        *ret = (int) slot;
        return 0;
}

int token_store_get_pending(struct crypt_device *cd, const char *header_path, int *ret_from, int *ret_to) {
        int v2 = is_luks2(cd);
        if (v2 < 0)
                return v2;
        if (!v2) {
                json_auto_t *root = NULL;
                int r = luks1_load(cd, header_path, &root);
                if (r < 0)
                        return r;
                json_t *p = json_object_get(root, "pending");
                if (!p)
                        return -ENOENT;
                json_t *f = json_object_get(p, "from"), *t = json_object_get(p, "to");
                if (!json_is_integer(f) || !json_is_integer(t) || !slot_ok(json_integer_value(f)) ||
                    !slot_ok(json_integer_value(t)))
                        return -EBADMSG;
                *ret_from = (int) json_integer_value(f);
                *ret_to = (int) json_integer_value(t);
                return 0;
        }
        int id = luks2_find_pending(cd);
        if (id < 0)
                return id;
        const char *json = NULL;
        if (crypt_token_json_get(cd, id, &json) < 0)
                return -EBADMSG;
        json_auto_t *o = json_loads(json, 0, NULL);
        if (slot_from_text(json_object_get(o, "from"), ret_from) < 0 ||
            slot_from_text(json_object_get(o, "to"), ret_to) < 0)
                return -EBADMSG;
        return 0;
}

int token_store_clear_pending(struct crypt_device *cd, const char *header_path) {
        int v2 = is_luks2(cd);
        if (v2 < 0)
                return v2;
        if (!v2) {
                json_auto_t *root = NULL;
                int r = luks1_load(cd, header_path, &root);
                if (r < 0)
                        return r;
                if (!json_object_get(root, "pending"))
                        return 0;
                json_object_del(root, "pending");
                return luks1_save(cd, header_path, root);
        }
        int id = luks2_find_pending(cd);
        if (id < 0)
                return 0;
        return crypt_token_json_set(cd, id, NULL) < 0 ? -EIO : 0;
}
