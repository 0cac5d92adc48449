/* The native key provider: see native.h for the model. This file holds the at-rest
 * and backup encryption of the primary key, the per-KEK derivation and the
 * provider vtable. */
#include "keys/native.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

#include "crypto/keywrap.h"
#include "shared/b64.h"
#include "shared/fd-util.h"
#include "shared/key-input.h"
#include "shared/log.h"

#define PRIMARY_SIZE 32
#define NONCE_SIZE 12
#define TAG_SIZE 16
#define SALT_SIZE 16
/* scrypt N=2^15, r=8, p=1: 32 MiB and ~0.1 s; a passphrase needs the cost. */
#define SCRYPT_N (1U << 15)
#define SCRYPT_R 8U
#define SCRYPT_P 1U

static char *state_path(const struct provider_config *c, const char *file) {
        char *p = NULL;
        return asprintf(&p, "%s/%s", c->state_dir, file) < 0 ? NULL : p;
}

/* ---- primitives ---------------------------------------------------------- */

static int hkdf(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt, size_t salt_len, const char *info,
                uint8_t *out, size_t out_len) {
        EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
        EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
        EVP_KDF_free(kdf);
        if (!ctx)
                return -EIO;
        OSSL_PARAM params[] = {
                OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *) "SHA256", 0),
                OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *) ikm, ikm_len),
                OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *) info, strlen(info)),
                /* No salt means HKDF's default (zeros); OpenSSL wants the parameter absent. */
                salt_len ? OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *) salt, salt_len)
                         : OSSL_PARAM_construct_end(),
                OSSL_PARAM_construct_end(),
        };
        int ok = EVP_KDF_derive(ctx, out, out_len, params);
        EVP_KDF_CTX_free(ctx);
        if (ok != 1) {
                log_openssl_errors("HKDF");
                return -EIO;
        }
        return 0;
}

static int scrypt(const struct secret *pass, const uint8_t *salt, uint64_t n, uint8_t *out, size_t out_len) {
        if (EVP_PBE_scrypt((const char *) pass->data, pass->size, salt, SALT_SIZE, n, SCRYPT_R, SCRYPT_P,
                           256ULL << 20, out, out_len) != 1) {
                log_openssl_errors("scrypt");
                return -EIO;
        }
        return 0;
}

/* AES-256-GCM with the purpose bound in as associated data, so an at-rest file
 * cannot be passed off as a backup bundle or vice versa. */
static int gcm(int enc, const uint8_t key[static 32], const char *aad, const uint8_t nonce[static NONCE_SIZE],
               const uint8_t *in, size_t n, uint8_t *out, uint8_t tag[static TAG_SIZE]) {
        EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
        int len = 0, ok = ctx != NULL;
        ok = ok && EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) == 1;
        ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_SIZE, NULL) == 1;
        ok = ok && EVP_CipherInit_ex(ctx, NULL, NULL, key, nonce, enc) == 1;
        ok = ok && EVP_CipherUpdate(ctx, NULL, &len, (const uint8_t *) aad, (int) strlen(aad)) == 1;
        ok = ok && EVP_CipherUpdate(ctx, out, &len, in, (int) n) == 1;
        if (ok && !enc)
                ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_SIZE, tag) == 1;
        int fin_ok = ok && EVP_CipherFinal_ex(ctx, out + len, &len) == 1;
        if (fin_ok && enc)
                fin_ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_SIZE, tag) == 1;
        EVP_CIPHER_CTX_free(ctx);
        if (!fin_ok) {
                log_openssl_errors("AES-GCM");
                /* Only the tag check can fail once setup succeeded. */
                return ok && !enc ? -EKEYREJECTED : -EIO;
        }
        return 0;
}

/* ---- sealed primary key (on disk and in bundles) ------------------------- */

/* A JSON object holding the primary key encrypted under a key derived from a key
 * file (hkdf) or passphrase (scrypt). */
static int seal(const struct secret *primary, const struct secret *wrap_secret, int use_scrypt, const char *aad,
                json_t **ret) {
        uint8_t salt[SALT_SIZE], nonce[NONCE_SIZE], tag[TAG_SIZE], ct[PRIMARY_SIZE], key[32];
        if (RAND_bytes(salt, sizeof(salt)) != 1 || RAND_bytes(nonce, sizeof(nonce)) != 1)
                return -EIO;
        int r = use_scrypt ? scrypt(wrap_secret, salt, SCRYPT_N, key, sizeof(key))
                           : hkdf(wrap_secret->data, wrap_secret->size, salt, sizeof(salt),
                                  "vmcrypt native at-rest key", key, sizeof(key));
        if (r >= 0)
                r = gcm(1, key, aad, nonce, primary->data, PRIMARY_SIZE, ct, tag);
        secret_wipe(key, sizeof(key));
        if (r < 0)
                return r;
        _cleanup_(freep) char *s_salt = b64_encode(salt, sizeof(salt));
        _cleanup_(freep) char *s_nonce = b64_encode(nonce, sizeof(nonce));
        _cleanup_(freep) char *s_ct = b64_encode(ct, sizeof(ct));
        _cleanup_(freep) char *s_tag = b64_encode(tag, sizeof(tag));
        if (!s_salt || !s_nonce || !s_ct || !s_tag)
                return -ENOMEM;
        json_t *o = use_scrypt
                ? json_pack("{s:s,s:I,s:I,s:I,s:s,s:s,s:s,s:s}", "kdf", "scrypt", "scrypt_n", (json_int_t) SCRYPT_N,
                            "scrypt_r", (json_int_t) SCRYPT_R, "scrypt_p", (json_int_t) SCRYPT_P, "salt", s_salt,
                            "nonce", s_nonce, "ciphertext", s_ct, "tag", s_tag)
                : json_pack("{s:s,s:s,s:s,s:s,s:s}", "kdf", "hkdf-sha256", "salt", s_salt, "nonce", s_nonce,
                            "ciphertext", s_ct, "tag", s_tag);
        if (!o)
                return -ENOMEM;
        *ret = o;
        return 0;
}

static int unseal(json_t *o, const struct secret *wrap_secret, const char *aad, struct secret **ret) {
        uint8_t salt[SALT_SIZE], nonce[NONCE_SIZE], tag[TAG_SIZE], ct[PRIMARY_SIZE], key[32];
        const char *kdf = json_string_value(json_object_get(o, "kdf"));
        if (!kdf || b64_decode_exact(json_string_value(json_object_get(o, "salt")), salt, sizeof(salt)) < 0 ||
            b64_decode_exact(json_string_value(json_object_get(o, "nonce")), nonce, sizeof(nonce)) < 0 ||
            b64_decode_exact(json_string_value(json_object_get(o, "ciphertext")), ct, sizeof(ct)) < 0 ||
            b64_decode_exact(json_string_value(json_object_get(o, "tag")), tag, sizeof(tag)) < 0)
                return -EBADMSG;
        int r;
        if (strcmp(kdf, "scrypt") == 0) {
                json_int_t n = json_integer_value(json_object_get(o, "scrypt_n"));
                /* Bounded so a crafted bundle cannot ask for gigabytes. */
                if (n < 1024 || n > (1 << 20) || (n & (n - 1)) != 0 ||
                    json_integer_value(json_object_get(o, "scrypt_r")) != SCRYPT_R ||
                    json_integer_value(json_object_get(o, "scrypt_p")) != SCRYPT_P)
                        return -EBADMSG;
                r = scrypt(wrap_secret, salt, (uint64_t) n, key, sizeof(key));
        } else if (strcmp(kdf, "hkdf-sha256") == 0)
                r = hkdf(wrap_secret->data, wrap_secret->size, salt, sizeof(salt), "vmcrypt native at-rest key",
                         key, sizeof(key));
        else
                return -EBADMSG;
        _cleanup_(secret_freep) struct secret *primary = secret_new(PRIMARY_SIZE);
        if (!primary)
                r = -ENOMEM;
        if (r >= 0)
                r = gcm(0, key, aad, nonce, ct, sizeof(ct), primary->data, tag);
        secret_wipe(key, sizeof(key));
        if (r < 0)
                return r;
        *ret = TAKE_PTR(primary);
        return 0;
}

/* The secret that protects the primary key at rest: the key file, or a passphrase
 * typed at the terminal when no key file is configured. */
static int at_rest_secret(const struct provider_config *c, int create, int *ret_scrypt, struct secret **ret) {
        *ret_scrypt = c->key_file == NULL;
        if (!c->key_file)
                return key_input_prompt("Passphrase protecting the native key provider: ", create, ret);
        if (create && access(c->key_file, F_OK) < 0 && errno == ENOENT)
                return key_input_new_key_file(c->key_file, 32, ret);
        return key_input_read_file(c->key_file, ret);
}

static char *aad_for(const char *purpose, const char *name) {
        char *s = NULL;
        return asprintf(&s, "vmcrypt-native-v1/%s/%s", purpose, name) < 0 ? NULL : s;
}

/* primary.json and backup bundles are a few hundred bytes. */
#define NATIVE_FILE_MAX (64U << 10)

/* The state directory holds the sealed primary key and the record that a backup was
 * made: another user who could write it could swap in a primary of their own (and
 * read every disk bound later) or fake the backup record. It must be a directory,
 * not a link, of the user running vmcrypt (or root), closed to writes by others. */
static int check_state_dir(const struct provider_config *c, struct error *err) {
        struct stat st;
        if (lstat(c->state_dir, &st) < 0)
                return errno == ENOENT ? 0 : error_set(err, -errno, "cannot read %s: %s", c->state_dir, strerror(errno));
        if (!S_ISDIR(st.st_mode))
                return error_set(err, -EACCES, "native key provider \"%s\": %s is %s, not a directory", c->name,
                            c->state_dir, S_ISLNK(st.st_mode) ? "a symlink" : "a file");
        if (st.st_uid != geteuid() && st.st_uid != 0)
                return error_set(err, -EACCES, "native key provider \"%s\": %s belongs to uid %u: chown it to the "
                            "user running vmcrypt", c->name, c->state_dir, (unsigned) st.st_uid);
        if (st.st_mode & 022)
                return error_set(err, -EACCES, "native key provider \"%s\": %s can be written by others (mode %04o): "
                            "chmod 700 %s", c->name, c->state_dir, (unsigned) (st.st_mode & 07777), c->state_dir);
        return 0;
}

static int load_primary(const struct provider_config *c, struct secret **ret, struct error *err) {
        int cr = check_state_dir(c, err);
        if (cr < 0)
                return cr;
        _cleanup_(freep) char *path = state_path(c, "primary.json");
        _cleanup_(freep) char *aad = aad_for("at-rest", c->name);
        if (!path || !aad)
                return -ENOMEM;
        json_error_t je = { .line = -1 };
        _cleanup_(freep) char *text = NULL;
        size_t len;
        int rr = read_file_bounded(path, NATIVE_FILE_MAX, &text, &len);
        _cleanup_(json_decrefp) json_t *o = rr < 0 ? NULL : json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
        if (!o) {
                if (rr == -ENOENT)
                        return error_set(err, -ENOENT,
                                    "native key provider \"%s\" has no primary key in %s: run 'vmcrypt provider init %s' "
                                    "(or 'vmcrypt provider restore %s --input BUNDLE')",
                                    c->name, c->state_dir, c->name, c->name);
                return error_set(err, -EBADMSG, "%s is damaged (%s, line %d): restore it with 'vmcrypt provider restore %s'",
                            path, rr < 0 ? strerror(-rr) : "not valid JSON", je.line, c->name);
        }
        _cleanup_(secret_freep) struct secret *ws = NULL;
        int use_scrypt;
        int r = at_rest_secret(c, 0, &use_scrypt, &ws);
        if (r < 0)
                return error_set(err, r, "native key provider \"%s\": cannot read %s: %s", c->name,
                            c->key_file ? c->key_file : "the passphrase", strerror(-r));
        r = unseal(o, ws, aad, ret);
        if (r == -EKEYREJECTED)
                return error_set(err, r, "native key provider \"%s\": %s does not open %s (wrong key file or passphrase)",
                            c->name, c->key_file ? c->key_file : "the passphrase", path);
        if (r < 0)
                return error_set(err, r, "native key provider \"%s\": %s is damaged: %s", c->name, path, strerror(-r));
        return 0;
}

static int store_primary(const struct provider_config *c, const struct secret *primary, int create_key,
                         struct error *err) {
        _cleanup_(freep) char *path = state_path(c, "primary.json");
        _cleanup_(freep) char *aad = aad_for("at-rest", c->name);
        if (!path || !aad)
                return -ENOMEM;
        if (mkdir(c->state_dir, 0700) < 0 && errno != EEXIST)
                return error_set(err, -errno, "cannot create %s: %s", c->state_dir, strerror(errno));
        int cr = check_state_dir(c, err);
        if (cr < 0)
                return cr;
        _cleanup_(secret_freep) struct secret *ws = NULL;
        int use_scrypt;
        int r = at_rest_secret(c, create_key, &use_scrypt, &ws);
        if (r < 0)
                return error_set(err, r, "native key provider \"%s\": cannot get %s: %s", c->name,
                            c->key_file ? c->key_file : "a passphrase", strerror(-r));
        _cleanup_(json_decrefp) json_t *o = NULL;
        r = seal(primary, ws, use_scrypt, aad, &o);
        if (r < 0)
                return error_set(err, r, "cannot encrypt the primary key: %s", strerror(-r));
        json_object_set_new(o, "version", json_integer(1));
        json_object_set_new(o, "provider", json_string(c->name));
        _cleanup_(freep) char *text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
        if (!text)
                return -ENOMEM;
        r = write_file_atomic(path, text, strlen(text), 0600);
        if (r < 0)
                return error_set(err, r, "cannot write %s: %s", path, strerror(-r));
        return 0;
}

int native_backup_exported(const struct provider_config *c) {
        _cleanup_(freep) char *primary = state_path(c, "primary.json");
        _cleanup_(freep) char *marker = state_path(c, "backup-exported");
        if (!primary || !marker)
                return -ENOMEM;
        if (access(primary, F_OK) < 0)
                return -ENOENT;
        return access(marker, F_OK) == 0;
}

static int mark_backup(const struct provider_config *c, const char *what) {
        _cleanup_(freep) char *marker = state_path(c, "backup-exported");
        if (!marker)
                return -ENOMEM;
        char line[128];
        int n = snprintf(line, sizeof(line), "%s %lld\n", what, (long long) time(NULL));
        return write_file_atomic(marker, line, (size_t) n, 0600);
}

int native_init(const struct provider_config *c, struct error *err) {
        _cleanup_(freep) char *path = state_path(c, "primary.json");
        if (!path)
                return -ENOMEM;
        if (access(path, F_OK) == 0)
                return error_set(err, -EEXIST, "native key provider \"%s\" already has a primary key (%s)", c->name, path);
        _cleanup_(secret_freep) struct secret *primary = NULL;
        int r = secret_new_random(PRIMARY_SIZE, &primary);
        if (r < 0)
                return r;
        return store_primary(c, primary, 1, err);
}

int native_backup(const struct provider_config *c, const struct secret *passphrase, const char *out_path,
                  struct error *err) {
        _cleanup_(secret_freep) struct secret *primary = NULL;
        int r = load_primary(c, &primary, err);
        if (r < 0)
                return r;
        _cleanup_(freep) char *aad = aad_for("backup", "bundle");
        if (!aad)
                return -ENOMEM;
        _cleanup_(json_decrefp) json_t *o = NULL;
        r = seal(primary, passphrase, 1, aad, &o);
        if (r < 0)
                return error_set(err, r, "cannot encrypt the backup: %s", strerror(-r));
        json_object_set_new(o, "format", json_string(NATIVE_BACKUP_FORMAT));
        json_object_set_new(o, "version", json_integer(1));
        json_object_set_new(o, "provider", json_string(c->name));
        _cleanup_(freep) char *text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
        if (!text)
                return -ENOMEM;
        int fd = open(out_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
                return error_set(err, -errno, "cannot create %s: %s%s", out_path, strerror(errno),
                            errno == EEXIST ? " (choose a new file name; an existing backup is never overwritten)" : "");
        r = write_full(fd, text, strlen(text));
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        close(fd);
        if (r < 0) {
                unlink(out_path);
                return error_set(err, r, "cannot write %s: %s", out_path, strerror(-r));
        }
        (void) fsync_parent_dir(out_path);
        r = mark_backup(c, "exported");
        if (r < 0)
                return error_set(err, r, "backup written, but cannot record it in %s: %s", c->state_dir, strerror(-r));
        return 0;
}

int native_restore(const struct provider_config *c, const struct secret *passphrase, const char *in_path,
                   struct error *err) {
        json_error_t je = { .line = -1 };
        _cleanup_(freep) char *text = NULL;
        size_t len;
        int rr = read_file_bounded(in_path, NATIVE_FILE_MAX, &text, &len);
        _cleanup_(json_decrefp) json_t *o = rr < 0 ? NULL : json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
        if (!o)
                return error_set(err, rr < 0 && rr != -EFBIG ? rr : -EBADMSG, "cannot read backup %s: %s",
                            in_path, rr == -EFBIG ? "larger than 64 KiB: not a backup" : rr < 0 ? strerror(-rr) : "not valid JSON");
        const char *fmt = json_string_value(json_object_get(o, "format"));
        if (!fmt || strcmp(fmt, NATIVE_BACKUP_FORMAT) != 0)
                return error_set(err, -EBADMSG, "%s is not a vmcrypt native key provider backup", in_path);
        _cleanup_(freep) char *aad = aad_for("backup", "bundle");
        if (!aad)
                return -ENOMEM;
        _cleanup_(secret_freep) struct secret *primary = NULL;
        int r = unseal(o, passphrase, aad, &primary);
        if (r == -EKEYREJECTED)
                return error_set(err, r, "the passphrase does not open backup %s", in_path);
        if (r < 0)
                return error_set(err, r, "backup %s is damaged", in_path);
        /* Never replace a different primary key: disks wrapped under it would be lost. */
        _cleanup_(secret_freep) struct secret *current = NULL;
        struct error inner = { 0 };
        r = load_primary(c, &current, &inner);
        if (r >= 0)
                return secret_equal(current, primary) ? mark_backup(c, "restored")
                                                       : error_set(err, -EEXIST,
                                                              "native key provider \"%s\" already holds a different primary key; "
                                                              "restore into a new provider (new state_dir) instead", c->name);
        if (r != -ENOENT)
                return error_set(err, r, "%s", inner.text);
        r = store_primary(c, primary, 1, err);
        if (r < 0)
                return r;
        return mark_backup(c, "restored");
}

/* ---- the provider vtable ------------------------------------------------- */

struct native {
        struct secret *primary;
};

static int native_get(struct provider *p, struct native **ret) {
        if (p->data) {
                *ret = p->data;
                return 0;
        }
        const struct provider_config *c = p->config;
        int r = native_backup_exported(c);
        if (r == 0)
                return provider_fail(p, -EACCES,
                                     "native key provider \"%s\" is not usable until its primary key is backed up: run "
                                     "'vmcrypt provider backup %s --output FILE' and keep FILE safe",
                                     c->name, c->name);
        struct native *n = calloc(1, sizeof(*n));
        if (!n)
                return -ENOMEM;
        struct error e = { 0 };
        r = load_primary(c, &n->primary, &e);
        if (r < 0)
                snprintf(p->error, sizeof(p->error), "%.*s", (int) sizeof(p->error) - 1, e.text);
        if (r < 0) {
                free(n);
                return r;
        }
        *ret = p->data = n;
        return 0;
}

static int kek_id_ok(const char *id) {
        size_t n = strlen(id);
        if (n < 8 || n > 128)
                return 0;
        for (const char *s = id; *s; s++)
                if (!(('a' <= *s && *s <= 'z') || ('0' <= *s && *s <= '9') || *s == '-'))
                        return 0;
        return 1;
}

static int derive_kek(struct native *n, const char *kek_id, struct secret **ret) {
        _cleanup_(secret_freep) struct secret *kek = secret_new(32);
        if (!kek)
                return -ENOMEM;
        char info[192];
        snprintf(info, sizeof(info), "vmcrypt native KEK %s", kek_id);
        int r = hkdf(n->primary->data, n->primary->size, NULL, 0, info, kek->data, kek->size);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(kek);
        return 0;
}

static int native_kek_create(struct provider *p, const struct kek_attrs *attrs, char **ret_id) {
        (void) attrs; /* nothing to tag: native KEKs are derived, not stored */
        struct native *n;
        int r = native_get(p, &n);
        if (r < 0)
                return r;
        uint8_t rnd[16];
        if (RAND_bytes(rnd, sizeof(rnd)) != 1)
                return -EIO;
        char hex[33];
        for (size_t i = 0; i < sizeof(rnd); i++)
                snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
        char *id = NULL;
        if (asprintf(&id, "native-%s", hex) < 0)
                return -ENOMEM;
        *ret_id = id;
        return 0;
}

static int native_wrap(struct provider *p, const char *kek_id, const struct secret *plain, struct vmcrypt_token *t) {
        struct native *n;
        int r = native_get(p, &n);
        if (r < 0)
                return r;
        if (!kek_id_ok(kek_id))
                return provider_fail(p, -EINVAL, "\"%s\" is not a native KEK id (lowercase letters, digits, '-')", kek_id);
        _cleanup_(secret_freep) struct secret *kek = NULL;
        r = derive_kek(n, kek_id, &kek);
        if (r < 0)
                return r;
        size_t size = keywrap_wrapped_size(plain->size), len = 0;
        _cleanup_(freep) uint8_t *out = malloc(size);
        if (!out)
                return -ENOMEM;
        r = keywrap_wrap(kek, plain, out, size, &len);
        if (r < 0)
                return r;
        free(t->method);
        free(t->wrapped);
        t->method = strdup(TOKEN_METHOD_RFC5649);
        t->wrapped = TAKE_PTR(out);
        t->wrapped_size = len;
        return t->method ? 0 : -ENOMEM;
}

static int native_unwrap(struct provider *p, const struct vmcrypt_token *t, struct secret **ret) {
        struct native *n;
        int r = native_get(p, &n);
        if (r < 0)
                return r;
        if (strcmp(t->method, TOKEN_METHOD_RFC5649) != 0)
                return provider_fail(p, -EBADMSG, "token uses wrap method \"%s\", which the native provider does not make",
                                     t->method);
        if (!kek_id_ok(t->kek_id))
                return provider_fail(p, -EBADMSG, "token names KEK \"%s\", which is not a native KEK id", t->kek_id);
        _cleanup_(secret_freep) struct secret *kek = NULL;
        r = derive_kek(n, t->kek_id, &kek);
        if (r < 0)
                return r;
        r = keywrap_unwrap(kek, t->wrapped, t->wrapped_size, ret);
        if (r == -EBADMSG)
                return provider_fail(p, -EKEYREJECTED,
                                     "KEK %s of native provider \"%s\" does not unwrap this disk's secret: the disk was "
                                     "bound with another primary key (restore that provider's backup) or the token is damaged",
                                     t->kek_id, p->config->name);
        return r;
}

/* Usable when its primary key is there and backed up: the key file (or the
 * passphrase) is not tried, which the first wrap does. */
static int native_probe(struct provider *p, unsigned timeout_ms _unused_) {
        const struct provider_config *c = p->config;
        int r = native_backup_exported(c);
        if (r == -ENOENT)
                return provider_fail(p, r, "native key provider \"%s\" has no primary key yet: run 'vmcrypt "
                                     "provider init %s'", c->name, c->name);
        if (r == 0)
                return provider_fail(p, -EACCES, "native key provider \"%s\" is not usable until its primary key "
                                     "is backed up: run 'vmcrypt provider backup %s --output FILE'", c->name,
                                     c->name);
        return r < 0 ? provider_fail(p, r, "native key provider \"%s\": %s", c->name, strerror(-r)) : 0;
}

static void native_close(struct provider *p) {
        struct native *n = p->data;
        if (!n)
                return;
        secret_free(n->primary);
        free(n);
        p->data = NULL;
}

const struct provider_ops provider_native_ops = {
        .kind = "native",
        .kek_create = native_kek_create,
        .wrap = native_wrap,
        .unwrap = native_unwrap,
        .probe = native_probe,
        .close = native_close,
};
