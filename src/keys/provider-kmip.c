/* The kmip key provider: KEKs live in a KMIP server cluster. The unlock secret is
 * wrapped by the server itself (KMIP Encrypt, AES-GCM; the KEK never leaves it)
 * when the server can, else locally with RFC 5649 after a KMIP Get; the method used
 * is recorded in the token, so either kind of server can unwrap later.
 *
 * Errors from the client arrive as -errno plus a line naming the endpoint; here
 * they get the second half of the message: what to do about it. */
#include "keys/provider.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/keywrap.h"
#include "keys/provider-internal.h"
#include "kmip/client.h"
#include "shared/log.h"

#define GCM_IV_SIZE 12
#define GCM_TAG_SIZE 16
#define CIPHER_GCM "aes-gcm"
/* Bound into the GCM tag: a ciphertext made for another purpose does not pass. */
#define WRAP_AAD "vmcrypt unlock secret v1"

struct kmip_provider {
        struct kmip_client *client;
        struct trusted_state *trusted; /* trusted providers: the TPM side */
        /* auto mode: once the server refused Encrypt (or its Query did not list
         * it), go straight to RFC 5649. */
        bool encrypt_unsupported;
        bool queried;
};

/* The KMIP client settings of provider c (eps holds the endpoints' text). */
static void kp_client_config(const struct provider_config *c, struct kmip_client_config *cfg,
                             char eps[][300]) {
        *cfg = (struct kmip_client_config) {
                .n_servers = c->n_endpoints,
                .cert_file = c->cert,
                .key_file = c->key,
                .ca_file = c->ca,
                .connect_timeout_ms = c->connect_timeout_ms,
                .io_timeout_ms = c->timeout_ms,
        };
        for (size_t i = 0; i < c->n_endpoints && i < KMIP_CLIENT_MAX_SERVERS; i++) {
                provider_endpoint_text(&c->endpoints[i], eps[i], 300);
                cfg->servers[i] = eps[i];
        }
}

static int kp_get(struct provider *p, struct kmip_provider **ret) {
        if (p->data) {
                *ret = p->data;
                return 0;
        }
        const struct provider_config *c = p->config;
        struct kmip_client_config cfg;
        char eps[PROVIDER_MAX_ENDPOINTS][300];
        kp_client_config(c, &cfg, eps);
        struct kmip_provider *k = calloc(1, sizeof(*k));
        if (!k)
                return -ENOMEM;
        int r = kmip_client_new(&cfg, &k->client);
        if (r < 0) {
                free(k);
                return provider_fail(p, r, "key provider \"%s\": invalid KMIP client settings (check endpoints, cert, key and ca)",
                                     c->name);
        }
        if (c->kind == PROVIDER_TRUSTED) {
                r = trusted_attach(p, k->client, &k->trusted);
                if (r < 0) {
                        kmip_client_free(k->client);
                        free(k);
                        return r;
                }
        }
        *ret = p->data = k;
        return 0;
}

struct kmip_client *provider_kmip_client(struct provider *p) {
        struct kmip_provider *k;
        return kp_get(p, &k) < 0 ? NULL : k->client;
}

/* Which of vSphere's key errors a KMIP failure is. A dropped connection counts
 * as unreachable: a server that goes away mid-call is the common case, a server
 * that drops untrusted clients the rarer one (the text names both). */
static int kp_fault(int r) {
        switch (-r) {
        case ECONNRESET:
        case ECONNREFUSED:
        case ETIMEDOUT:
        case EHOSTUNREACH:
        case ENETUNREACH:
                return ERROR_FAULT_KEY_UNREACHABLE;
        case EKEYEXPIRED:
        case EKEYREJECTED:
        case EACCES:
        case EXDEV:
                return ERROR_FAULT_KEY_DENIED;
        case ENOENT:
        case EIDRM:
        case EKEYREVOKED:
        case ENOKEY:
                return ERROR_FAULT_KEY_MISSING;
        default:
                return ERROR_FAULT_NONE;
        }
}

/* The one place where a KMIP failure becomes a sentence with a remedy. kek_id may
 * be NULL (connection-level failures). */
static int kp_fail(struct provider *p, struct kmip_provider *k, int r, const char *what, const char *kek_id) {
        const struct provider_config *c = p->config;
        const char *detail = kmip_client_error(k->client);
        if (!detail || !*detail)
                detail = strerror(-r);
        const char *id = kek_id ? kek_id : "?";
        p->fault = kp_fault(r);
        switch (-r) {
        case ECONNRESET:
                /* Under TLS 1.3 a server that rejects our certificate often just drops
                 * the connection after the handshake; the client cannot tell. */
                return provider_fail(p, r, "%s: the KMS of provider \"%s\" dropped the connection (%s); if it does so "
                                     "right after connecting, it does not trust our client certificate: check that "
                                     "the KMS trusts the issuer of %s", what, c->name, detail, c->cert);
        case ECONNREFUSED:
        case ETIMEDOUT:
        case EHOSTUNREACH:
        case ENETUNREACH:
                return provider_fail(p, r, "%s: no KMS of provider \"%s\" is reachable (%s); check that the KMS is running and "
                                     "that the endpoints in the provider configuration are right", what, c->name, detail);
        case EKEYEXPIRED:
                return provider_fail(p, r, "%s: a certificate has expired (%s); renew the client certificate %s (or the "
                                     "KMS certificate) and check the clock", what, detail, c->cert);
        case EKEYREJECTED:
                /* TLS or KMIP authentication: an identity problem, not a wrong key. */
                return provider_fail(p, -EACCES, "%s: the KMS and this host do not trust each other (%s); check that %s "
                                     "is the CA of the KMS certificate and that the KMS trusts the issuer of %s",
                                     what, detail, c->ca, c->cert);
        case EACCES:
                if (c->kind == PROVIDER_TRUSTED)
                        return provider_fail(p, r, "%s: the KMS of trusted provider \"%s\" does not release KEK %s to "
                                             "this host (%s); see 'vmcrypt host enroll' and docs/attestation.md", what,
                                             c->name, id, detail);
                return provider_fail(p, r, "%s: the KMS denies this client's identity (%s) access to KEK %s (%s); grant "
                                     "it on the KMS, or use the identity that owns the KEK", what, c->cert, id, detail);
        case ENOENT:
        case EIDRM:
                return provider_fail(p, r, "%s: KEK %s does not exist on provider \"%s\" for this client's identity "
                                     "(%s): it was destroyed, never created, or belongs to another identity than %s; "
                                     "restore it on the KMS, use the identity that owns it, or open the disk with its "
                                     "recovery passphrase", what, id, c->name, detail, c->cert);
        case EKEYREVOKED:
                return provider_fail(p, r, "%s: KEK %s on provider \"%s\" is revoked (%s); it no longer releases disks: "
                                     "bind the disk again with its recovery passphrase ('vmcrypt disk bind IMAGE' asks for it; the new binding replaces this one)", what, id, c->name,
                                     detail);
        case ENOKEY:
                return provider_fail(p, r, "%s: KEK %s on provider \"%s\" is not active (%s); activate it on the KMS",
                                     what, id, c->name, detail);
        case EXDEV:
                return provider_fail(p, -EACCES, "%s: KEK %s on provider \"%s\" is not extractable (%s): it wraps only on "
                                     "the KMS; use it with 'wrap': \"auto\" or \"kmip-encrypt\"", what, id, c->name,
                                     detail);
        case EBADMSG:
                return provider_fail(p, -EKEYREJECTED, "%s: KEK %s does not unwrap this disk's secret (%s): the token "
                                     "names the wrong KEK or was altered", what, id, detail);
        default:
                return provider_fail(p, r, "%s: provider \"%s\" failed: %s", what, c->name, detail);
        }
}

static void arena_freep(struct ttlv_arena **a) {
        ttlv_arena_free(*a);
}

/* A KEK made by vmcrypt records each disk that uses it as a custom attribute
 * KEK_DISK_ATTR + the disk's LUKS UUID (value: host and path, for admins), so that
 * the last disk to stop using it can retire it, even when the disks are on other
 * hosts. Only KEKs tagged KEK_TRACKING_ATTR at creation count their users: a KEK
 * made before (or given by an admin, or on a server without AddAttribute) may be
 * used by disks nobody recorded, and is never retired automatically. */
#define KEK_TRACKING_ATTR "x-vmcrypt-Tracking"
#define KEK_DISK_ATTR "x-vmcrypt-Disk-"

/* vSphere tags VM KEKs with these custom attributes; KMS admins search by them.
 * Sent after Create with AddAttribute (as vCenter does); servers that lack
 * AddAttribute (PyKMIP) still get a working KEK, only untagged. */
static void kp_tag(struct kmip_provider *k, const char *uid, const struct kek_attrs *attrs) {
        _cleanup_(arena_freep) struct ttlv_arena *a = ttlv_arena_new();
        if (!a)
                return;
        struct kmip_attr_list l = { 0 };
        int r = kmip_attr_list_add_text(a, &l, "x-Vendor", "vmcrypt project");
        if (r >= 0)
                r = kmip_attr_list_add_text(a, &l, "x-Product", "vmcrypt");
        if (r >= 0)
                r = kmip_attr_list_add_text(a, &l, "x-Product_Version", VMCRYPT_VERSION);
        if (r >= 0)
                r = kmip_attr_list_add_text(a, &l, "x-Component", "Virtual Machine");
        if (r >= 0 && attrs && attrs->vm_name)
                r = kmip_attr_list_add_text(a, &l, "x-Name", attrs->vm_name);
        if (r >= 0 && attrs && attrs->vm_uuid)
                r = kmip_attr_list_add_text(a, &l, "x-Identifier", attrs->vm_uuid);
        /* In the same batch as the tags: a KEK either tracks its disks from the
         * start or never (see kp_kek_use). */
        if (r >= 0)
                r = kmip_attr_list_add_text(a, &l, KEK_TRACKING_ATTR, "disks");
        if (r >= 0)
                r = kmip_client_add_attributes(k->client, uid, &l);
        if (r < 0)
                log_debug("KEK %s left without custom attributes: %s", uid, kmip_client_error(k->client));
}

static void attr_text(const struct kmip_attr_list *l, const char *name, char *buf, size_t size) {
        for (size_t i = 0; i < l->n; i++) {
                const struct ttlv *v = l->items[i].value;
                if (strcmp(l->items[i].name, name) != 0 || !v)
                        continue;
                if (v->type == TTLV_STRUCTURE) /* Name: its Name Value */
                        v = ttlv_find(v, KMIP_TAG_NAME_VALUE);
                if (v && v->type == TTLV_TEXT_STRING)
                        snprintf(buf, size, "%.*s", (int) v->v.bytes.size, (const char *) v->v.bytes.data);
                else if (v && v->type == TTLV_ENUMERATION && strcmp(name, "State") == 0)
                        snprintf(buf, size, "%s", kmip_state_name(v->v.enumeration));
                return;
        }
}

/* Whether l (a KEK's attributes) tracks its disks; *ret_users the disks recorded. */
static bool usage_count(const struct kmip_attr_list *l, unsigned *ret_users) {
        bool tracked = false;
        unsigned users = 0;
        for (size_t i = 0; i < l->n; i++) {
                const char *name = l->items[i].name;
                if (strcmp(name, KEK_TRACKING_ATTR) == 0)
                        tracked = true;
                else if (strncmp(name, KEK_DISK_ATTR, strlen(KEK_DISK_ATTR)) == 0)
                        users++;
        }
        *ret_users = users;
        return tracked;
}

/* The record's name: the volume's UUID and a digest of its place, so that copies
 * of one image (same UUID, another place) are recorded and released apart. */
static int disk_attr_name(const char *disk, const char *place, char *buf, size_t size) {
        /* A LUKS UUID; anything else would let a crafted header name other records. */
        size_t n = strlen(disk);
        if (n == 0 || n > 64 || strspn(disk, "0123456789abcdefABCDEF-") != n)
                return -EINVAL;
        uint8_t md[SHA256_DIGEST_LENGTH];
        SHA256((const uint8_t *) place, strlen(place), md);
        snprintf(buf, size, "%s%s-%02x%02x%02x%02x%02x%02x", KEK_DISK_ATTR, disk, md[0], md[1], md[2], md[3],
                 md[4], md[5]);
        return 0;
}

static bool has_attr(const struct kmip_attr_list *l, const char *name) {
        for (size_t i = 0; i < l->n; i++)
                if (strcmp(l->items[i].name, name) == 0)
                        return true;
        return false;
}

/* The KEKs this identity sees whose Name says vmcrypt made them (kp_kek_create). */
static int kp_kek_list(struct provider *p, struct kek_info **ret, size_t *ret_n) {
        struct kmip_provider *k;
        int r = kp_get(p, &k);
        if (r < 0)
                return r;
        char **uids = NULL;
        size_t n = 0;
        const struct kmip_locate_filter f = { .object_type = KMIP_OBJECT_SYMMETRIC_KEY };
        r = kmip_client_locate(k->client, &f, &uids, &n);
        if (r < 0)
                return kp_fail(p, k, r, "listing KEKs", NULL);
        struct kek_info *v = calloc(n ? n : 1, sizeof(*v));
        size_t m = 0;
        for (size_t i = 0; v && i < n; i++) {
                _cleanup_(arena_freep) struct ttlv_arena *a = ttlv_arena_new();
                struct kmip_attr_list l = { 0 };
                /* All of them: the disk records have one name per disk. */
                if (!a || kmip_client_get_attributes(k->client, uids[i], NULL, 0, a, &l) < 0)
                        continue;
                struct kek_info *e = &v[m];
                attr_text(&l, "Name", e->name, sizeof(e->name));
                if (strncmp(e->name, "vmcrypt-kek-", 12) != 0)
                        continue;
                snprintf(e->id, sizeof(e->id), "%s", uids[i]);
                attr_text(&l, "State", e->state, sizeof(e->state));
                attr_text(&l, "x-Name", e->vm_name, sizeof(e->vm_name));
                attr_text(&l, "x-Identifier", e->vm_uuid, sizeof(e->vm_uuid));
                e->tracked = usage_count(&l, &e->users);
                for (size_t j = 0; j < l.n; j++) {
                        const struct ttlv *val = l.items[j].value;
                        if (strncmp(l.items[j].name, KEK_DISK_ATTR, strlen(KEK_DISK_ATTR)) != 0 || !val ||
                            val->type != TTLV_TEXT_STRING)
                                continue;
                        size_t len = strlen(e->user_list);
                        snprintf(e->user_list + len, sizeof(e->user_list) - len, "%s%.*s", len ? ", " : "",
                                 (int) val->v.bytes.size, (const char *) val->v.bytes.data);
                }
                m++;
        }
        kmip_strv_free(uids);
        if (!v)
                return -ENOMEM;
        *ret = v;
        *ret_n = m;
        return 0;
}

/* The KEK's attributes into *l (in arena a), and the name of the record of disk at
 * place; -ENOENT when the KEK is gone. */
static int usage_read(struct provider *p, const char *kek_id, const char *disk, const char *place,
                      struct ttlv_arena *a, struct kmip_attr_list *l, char name[static 160]) {
        struct kmip_provider *k;
        int r = kp_get(p, &k);
        if (r < 0)
                return r;
        if (disk_attr_name(disk, place, name, 160) < 0)
                return provider_fail(p, -EINVAL, "the volume's UUID \"%s\" is not a LUKS UUID", disk);
        r = kmip_client_get_attributes(k->client, kek_id, NULL, 0, a, l);
        if (r == -ENOENT)
                return r;
        if (r < 0)
                return kp_fail(p, k, r, "reading the KEK's attributes", kek_id);
        return 0;
}

static int kp_kek_use(struct provider *p, const char *kek_id, const char *disk, const char *place) {
        _cleanup_(arena_freep) struct ttlv_arena *a = ttlv_arena_new();
        if (!a)
                return -ENOMEM;
        struct kmip_attr_list l = { 0 };
        char name[160];
        /* A failure here fails the binding: a tracked KEK that misses a user could
         * be retired while that disk still needs it. */
        int r = usage_read(p, kek_id, disk, place, a, &l, name);
        if (r == -ENOENT)
                return kp_fail(p, p->data, r, "reading the KEK's attributes", kek_id);
        if (r < 0)
                return r;
        unsigned users;
        if (!usage_count(&l, &users) || has_attr(&l, name))
                return 0;
        struct kmip_attr_list add = { 0 };
        r = kmip_attr_list_add_text(a, &add, name, place);
        if (r >= 0)
                r = kmip_client_add_attributes(((struct kmip_provider *) p->data)->client, kek_id, &add);
        if (r < 0)
                return kp_fail(p, p->data, r, "recording this disk among the KEK's users", kek_id);
        return 0;
}

static int kp_kek_unuse(struct provider *p, const char *kek_id, const char *disk, const char *place,
                        struct kek_usage *ret) {
        _cleanup_(arena_freep) struct ttlv_arena *a = ttlv_arena_new();
        if (!a)
                return -ENOMEM;
        struct kmip_attr_list l = { 0 };
        char name[160];
        int r = usage_read(p, kek_id, disk, place, a, &l, name);
        if (r == -ENOENT) {
                ret->gone = true;
                return 0;
        }
        if (r < 0)
                return r;
        unsigned users;
        ret->tracked = usage_count(&l, &users);
        if (has_attr(&l, name)) {
                r = kmip_client_delete_attribute(((struct kmip_provider *) p->data)->client, kek_id, name, 0);
                if (r < 0)
                        return kp_fail(p, p->data, r, "removing this disk from the KEK's users", kek_id);
                ret->found = true;
                users--;
        }
        ret->users = users;
        /* The same volume recorded at another place: say where, so that an admin
         * can tell a moved disk (the record is stale) from a copy (it is not). */
        char prefix[160];
        snprintf(prefix, sizeof(prefix), "%s%s-", KEK_DISK_ATTR, disk);
        for (size_t i = 0; i < l.n && !ret->elsewhere[0]; i++) {
                const struct ttlv *v = l.items[i].value;
                if (strncmp(l.items[i].name, prefix, strlen(prefix)) == 0 && strcmp(l.items[i].name, name) != 0 && v &&
                    v->type == TTLV_TEXT_STRING)
                        snprintf(ret->elsewhere, sizeof(ret->elsewhere), "%.*s", (int) v->v.bytes.size,
                                 (const char *) v->v.bytes.data);
        }
        return 0;
}

/* Revoked first: servers (vmcrypt-kms among them) refuse to destroy an active key. */
static int kp_kek_retire(struct provider *p, const char *kek_id) {
        struct kmip_provider *k;
        int r = kp_get(p, &k);
        if (r < 0)
                return r;
        r = kmip_client_revoke(k->client, kek_id, KMIP_REVOKE_CESSATION_OF_OPERATION, "retired by vmcrypt", 0);
        if (r < 0)
                return kp_fail(p, k, r, "revoking the KEK", kek_id);
        r = kmip_client_destroy(k->client, kek_id);
        if (r < 0)
                return kp_fail(p, k, r, "destroying the KEK", kek_id);
        return 0;
}

/* Whether new KEKs will wrap locally (RFC 5649 after a Get). In auto mode a
 * server whose Query does not list Encrypt is taken at its word; one whose Query
 * fails is tried with Encrypt (a refusal still falls back in kp_wrap). */
static bool kp_wraps_locally(struct provider *p, struct kmip_provider *k) {
        enum provider_wrap_mode mode = p->config->wrap;
        if (mode != WRAP_AUTO)
                return mode == WRAP_RFC5649;
        if (!k->queried && !k->encrypt_unsupported) {
                k->queried = true;
                _cleanup_(arena_freep) struct ttlv_arena *a = ttlv_arena_new();
                struct kmip_query_result q = { 0 };
                if (a && kmip_client_query(k->client, a, &q) >= 0 && q.n_operations > 0) {
                        bool found = false;
                        for (size_t i = 0; i < q.n_operations; i++)
                                found |= q.operations[i] == KMIP_OP_ENCRYPT;
                        k->encrypt_unsupported = !found;
                }
        }
        return k->encrypt_unsupported;
}

/* A KEK that wraps on the server never has to leave it, so it is made unable to:
 * usage Encrypt|Decrypt only, and Extractable = false (KMIP 1.4), which a server
 * that knows it enforces for every identity, the owner included. Servers that
 * refuse the attribute get the KEK without it (still usable; its protection is
 * then the server's access policy alone). A KEK for local wrapping must be
 * fetched with Get, so it is extractable, with usage Wrap/Unwrap Key too: the
 * weaker setup, used only where the server cannot Encrypt (docs/keys.md). */
static int kp_create_kek(struct kmip_provider *k, bool local, const char *group, const char *name,
                         char **ret_uid) {
        uint32_t usage = KMIP_USAGE_ENCRYPT | KMIP_USAGE_DECRYPT;
        if (local)
                usage |= KMIP_USAGE_WRAP_KEY | KMIP_USAGE_UNWRAP_KEY;
        _cleanup_(arena_freep) struct ttlv_arena *a = ttlv_arena_new();
        struct kmip_attr_list extra = { 0 };
        if (!a || (!local && kmip_attr_list_add_bool(a, &extra, KMIP_ATTR_EXTRACTABLE, false) < 0))
                return -ENOMEM;
        /* A trusted provider's KEK is born requiring attestation: there is no moment
         * at which it could be released without. No fallback either. */
        if (group)
                return kmip_attr_list_add_text(a, &extra, TRUSTED_ATTR_REQUIRE_ATTESTATION, group) < 0
                               ? -ENOMEM
                               : kmip_client_create(k->client, KMIP_ALG_AES, 256, usage, name, &extra, ret_uid);
        int r = kmip_client_create(k->client, KMIP_ALG_AES, 256, usage, name, &extra, ret_uid);
        if (!local && (r == -EINVAL || r == -EOPNOTSUPP || r == -EPROTO || r == -ENOSYS)) {
                log_debug("KMS refused a non-extractable KEK (%s); creating it without Extractable",
                          kmip_client_error(k->client));
                r = kmip_client_create(k->client, KMIP_ALG_AES, 256, usage, name, NULL, ret_uid);
        }
        return r;
}

static int kp_kek_create(struct provider *p, const struct kek_attrs *attrs, char **ret_id) {
        struct kmip_provider *k;
        int r = kp_get(p, &k);
        if (r < 0)
                return r;
        /* A readable, unique Name: several disks of one VM each get a KEK. */
        uint8_t rnd[4];
        if (RAND_bytes(rnd, sizeof(rnd)) != 1)
                return -EIO;
        char name[180];
        snprintf(name, sizeof(name), "vmcrypt-kek-%.128s-%02x%02x%02x%02x",
                 attrs && attrs->vm_name ? attrs->vm_name : "disk", rnd[0], rnd[1], rnd[2], rnd[3]);
        _cleanup_(freep) char *uid = NULL;
        r = kp_create_kek(k, kp_wraps_locally(p, k), p->config->kind == PROVIDER_TRUSTED ? p->config->group : NULL, name,
                          &uid);
        if (r < 0)
                return kp_fail(p, k, r, "creating a KEK", NULL);
        r = kmip_client_activate(k->client, uid);
        if (r < 0)
                return kp_fail(p, k, r, "activating the new KEK", uid);
        kp_tag(k, uid, attrs);
        *ret_id = TAKE_PTR(uid);
        return 0;
}

static int set_method(struct vmcrypt_token *t, const char *method, const char *cipher) {
        free(t->method);
        free(t->cipher);
        t->method = strdup(method);
        t->cipher = cipher ? strdup(cipher) : NULL;
        return t->method && (!cipher || t->cipher) ? 0 : -ENOMEM;
}

static int dup_into(uint8_t **dst, size_t *dst_size, const uint8_t *src, size_t n) {
        free(*dst);
        *dst = NULL;
        *dst_size = 0;
        if (n == 0)
                return 0;
        *dst = malloc(n);
        if (!*dst)
                return -ENOMEM;
        memcpy(*dst, src, n);
        *dst_size = n;
        return 0;
}

static const struct kmip_crypto_params gcm_params = {
        .mode = KMIP_MODE_GCM,
        .alg = KMIP_ALG_AES,
        .tag_length = GCM_TAG_SIZE,
};

/* Wrapping lets the server pick the IV (Random IV, none sent) and keeps the one it
 * answers with. A server must not take IVs from clients that may only Encrypt (a
 * chosen GCM IV makes Encrypt a decryption oracle), so asking for one works for
 * every identity; tokens made before, with vmcrypt's own random IV, carry that IV
 * and unwrap as ever. */
static const struct kmip_crypto_params gcm_wrap_params = {
        .mode = KMIP_MODE_GCM,
        .alg = KMIP_ALG_AES,
        .tag_length = GCM_TAG_SIZE,
        .random_iv = true,
};

static int wrap_encrypt(struct provider *p, struct kmip_provider *k, const char *kek_id, const struct secret *plain,
                        struct vmcrypt_token *t) {
        struct kmip_ciphertext ct = { 0 };
        int r = kmip_client_encrypt(k->client, kek_id, &gcm_wrap_params, plain, (const uint8_t *) WRAP_AAD,
                                    strlen(WRAP_AAD), &ct);
        if (r < 0)
                return r;
        if (ct.iv_size == 0 || ct.tag_size == 0 || ct.size != plain->size)
                r = provider_fail(p, -EPROTO, "KMS Encrypt with AES-GCM returned no IV or tag");
        if (r >= 0)
                r = set_method(t, TOKEN_METHOD_KMIP_ENCRYPT, CIPHER_GCM);
        if (r >= 0)
                r = dup_into(&t->wrapped, &t->wrapped_size, ct.data, ct.size);
        if (r >= 0)
                r = dup_into(&t->iv, &t->iv_size, ct.iv, ct.iv_size);
        if (r >= 0)
                r = dup_into(&t->tag, &t->tag_size, ct.tag, ct.tag_size);
        kmip_ciphertext_done(&ct);
        return r;
}

/* Fetch the KEK for local wrapping, refusing keys that are not Active: a server may
 * still hand out a revoked key on Get, but a revoked KEK must not open disks. */
static int fetch_kek(struct provider *p, struct kmip_provider *k, const char *kek_id, struct secret **ret) {
        uint32_t state = 0;
        int r = kmip_client_get_state(k->client, kek_id, &state);
        if (r < 0)
                return r;
        if (state == KMIP_STATE_PRE_ACTIVE)
                return -ENOKEY;
        if (state == KMIP_STATE_DEACTIVATED || state == KMIP_STATE_COMPROMISED)
                return -EKEYREVOKED;
        if (state != KMIP_STATE_ACTIVE)
                return -EIDRM;
        struct kmip_key_info info = { 0 };
        _cleanup_(secret_freep) struct secret *kek = NULL;
        r = kmip_client_get(k->client, kek_id, &kek, &info);
        if (r < 0)
                return r;
        if (kek->size != 32 && kek->size != 24 && kek->size != 16)
                return provider_fail(p, -EINVAL, "KEK %s is not an AES key (%zu bytes): use an AES-256 key as KEK",
                                     kek_id, kek->size);
        *ret = TAKE_PTR(kek);
        return 0;
}

static int wrap_local(struct provider *p, struct kmip_provider *k, const char *kek_id, const struct secret *plain,
                      struct vmcrypt_token *t) {
        _cleanup_(secret_freep) struct secret *kek = NULL;
        int r = fetch_kek(p, k, kek_id, &kek);
        if (r < 0)
                return r;
        size_t size = keywrap_wrapped_size(plain->size), len = 0;
        uint8_t out[KEYWRAP_MAX_INPUT + 8];
        r = keywrap_wrap(kek, plain, out, sizeof(out), &len);
        if (r >= 0 && len != size)
                r = -EIO;
        if (r >= 0)
                r = set_method(t, TOKEN_METHOD_RFC5649, NULL);
        if (r >= 0)
                r = dup_into(&t->wrapped, &t->wrapped_size, out, len);
        if (r >= 0) {
                r = dup_into(&t->iv, &t->iv_size, NULL, 0);
                (void) dup_into(&t->tag, &t->tag_size, NULL, 0);
        }
        OPENSSL_cleanse(out, sizeof(out));
        return r;
}

/* Failures that mean "this server does not do Encrypt/GCM", as opposed to failures
 * about the key or the connection, which fallback must not paper over. */
static bool encrypt_unsupported(int r) {
        return r == -ENOSYS || r == -EOPNOTSUPP || r == -EINVAL || r == -ENODATA || r == -EIO || r == -EPERM;
}

static int kp_wrap(struct provider *p, const char *kek_id, const struct secret *plain, struct vmcrypt_token *t) {
        struct kmip_provider *k;
        int r = kp_get(p, &k);
        if (r < 0)
                return r;
        enum provider_wrap_mode mode = p->config->wrap;
        if (mode == WRAP_KMIP_ENCRYPT || (mode == WRAP_AUTO && !k->encrypt_unsupported)) {
                r = wrap_encrypt(p, k, kek_id, plain, t);
                if (r >= 0)
                        return 0;
                if (mode == WRAP_KMIP_ENCRYPT || !encrypt_unsupported(r))
                        return p->error[0] ? r : kp_fail(p, k, r, "wrapping with KMIP Encrypt", kek_id);
                log_debug("KMS refused Encrypt (%s); wrapping locally with RFC 5649", kmip_client_error(k->client));
                k->encrypt_unsupported = true;
                p->error[0] = 0;
                p->fault = ERROR_FAULT_NONE;
        }
        r = wrap_local(p, k, kek_id, plain, t);
        if (r < 0)
                return p->error[0] ? r : kp_fail(p, k, r, "wrapping with a fetched KEK", kek_id);
        return 0;
}

static int kp_unwrap(struct provider *p, const struct vmcrypt_token *t, struct secret **ret) {
        struct kmip_provider *k;
        int r = kp_get(p, &k);
        if (r < 0)
                return r;
        if (strcmp(t->method, TOKEN_METHOD_KMIP_ENCRYPT) == 0) {
                if (!t->cipher || strcmp(t->cipher, CIPHER_GCM) != 0 || t->iv_size > KMIP_IV_MAX ||
                    t->tag_size > KMIP_AEAD_TAG_MAX || t->iv_size == 0 || t->tag_size == 0)
                        return provider_fail(p, -EBADMSG, "the disk's token has a kmip-encrypt entry this version "
                                             "cannot use (cipher \"%s\")", t->cipher ? t->cipher : "");
                struct kmip_ciphertext ct = { .data = t->wrapped, .size = t->wrapped_size,
                                              .iv_size = t->iv_size, .tag_size = t->tag_size };
                memcpy(ct.iv, t->iv, t->iv_size);
                memcpy(ct.tag, t->tag, t->tag_size);
                r = kmip_client_decrypt(k->client, t->kek_id, &gcm_params, &ct, (const uint8_t *) WRAP_AAD,
                                        strlen(WRAP_AAD), ret);
                if (r < 0)
                        return kp_fail(p, k, r, "unwrapping with KMIP Decrypt", t->kek_id);
                return 0;
        }
        if (strcmp(t->method, TOKEN_METHOD_RFC5649) != 0)
                return provider_fail(p, -EBADMSG, "unknown wrap method \"%s\" in the disk's token", t->method);
        _cleanup_(secret_freep) struct secret *kek = NULL;
        r = fetch_kek(p, k, t->kek_id, &kek);
        if (r < 0)
                return p->error[0] ? r : kp_fail(p, k, r, "fetching the KEK", t->kek_id);
        r = keywrap_unwrap(kek, t->wrapped, t->wrapped_size, ret);
        if (r == -EBADMSG)
                return provider_fail(p, -EKEYREJECTED, "KEK %s does not unwrap this disk's secret: the token names "
                                     "the wrong KEK or was altered", t->kek_id);
        return r;
}

/* A new connection of its own (not the provider's, which may be open) with
 * the host's certificate, and the one request every KMIP server answers. A
 * trusted provider's TPM stays out of it: this shows that the key servers
 * answer and accept this host, not that they would release its keys. */
static int kp_probe(struct provider *p, unsigned timeout_ms) {
        struct kmip_client_config cfg;
        char eps[PROVIDER_MAX_ENDPOINTS][300];
        kp_client_config(p->config, &cfg, eps);
        if (timeout_ms > 0) {
                cfg.connect_timeout_ms = cfg.connect_timeout_ms ? MIN(cfg.connect_timeout_ms, timeout_ms) : timeout_ms;
                cfg.io_timeout_ms = cfg.io_timeout_ms ? MIN(cfg.io_timeout_ms, timeout_ms) : timeout_ms;
        }
        struct kmip_provider k = { 0 };
        int r = kmip_client_new(&cfg, &k.client);
        if (r < 0)
                return provider_fail(p, r, "key provider \"%s\": invalid KMIP client settings (check endpoints, "
                                     "cert, key and ca)", p->config->name);
        struct kmip_version v[8];
        size_t n = 0;
        r = kmip_client_discover_versions(k.client, v, ELEMENTSOF(v), &n);
        if (r < 0)
                r = kp_fail(p, &k, r, "checking the key servers", NULL);
        kmip_client_free(k.client);
        return r;
}

static void kp_close(struct provider *p) {
        struct kmip_provider *k = p->data;
        if (!k)
                return;
        kmip_client_free(k->client);
        trusted_detach(k->trusted);
        free(k);
        p->data = NULL;
}

const struct provider_ops provider_kmip_ops = {
        .kind = "kmip",
        .kek_create = kp_kek_create,
        .kek_retire = kp_kek_retire,
        .kek_list = kp_kek_list,
        .kek_use = kp_kek_use,
        .kek_unuse = kp_kek_unuse,
        .wrap = kp_wrap,
        .unwrap = kp_unwrap,
        .probe = kp_probe,
        .close = kp_close,
};

/* The same operations; the configuration's kind switches attestation on. */
const struct provider_ops provider_trusted_ops = {
        .kind = "trusted",
        .kek_create = kp_kek_create,
        .kek_retire = kp_kek_retire,
        .kek_list = kp_kek_list,
        .kek_use = kp_kek_use,
        .kek_unuse = kp_kek_unuse,
        .wrap = kp_wrap,
        .unwrap = kp_unwrap,
        .probe = kp_probe,
        .close = kp_close,
};
