/* A KMIP client over mutual TLS: a list of endpoints tried in order, a connection
 * kept open between calls, blocking sockets with connect and I/O timeouts, and the
 * operations vmcrypt needs. Not thread-safe: one client per thread.
 *
 * Every call returns 0 or a negative errno, and leaves a one-line explanation in
 * kmip_client_error() naming the endpoint and what failed. The errno says what kind
 * of failure it was, so callers can react without parsing text:
 *
 *   -ECONNREFUSED, -ETIMEDOUT, -EHOSTUNREACH, -ENETUNREACH, -ECONNRESET
 *                   no endpoint reachable (the last endpoint's reason)
 *   -EKEYEXPIRED    a certificate expired (ours, checked before connecting, or the
 *                   server's, or the server says ours has)
 *   -EKEYREJECTED   TLS trust failed (we do not trust the server, or it rejected our
 *                   certificate), or KMIP Authentication Not Successful
 *   -EACCES         the server said Permission Denied / Not Authorised
 *   -EXDEV          the server said Not Extractable (the key never leaves it)
 *   -ENOENT         no such object;   -EIDRM: destroyed
 *   -EKEYREVOKED    the key is revoked (Deactivated or Compromised)
 *   -ENOKEY         the key is not active yet (Pre-Active)
 *   -EPROTO         the server sent something that is not valid KMIP
 *   other results of kmip_reason_to_errno() (errors.h) for other Result Reasons.
 *
 * -EKEYREVOKED/-ENOKEY/-EIDRM for Get, Encrypt and Decrypt come from asking the
 * server for the object's State after it refused, since KMIP 1.x has no reason code
 * for "wrong state". */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kmip/attribute.h"
#include "kmip/message.h"
#include "kmip/tags.h"
#include "kmip/ttlv.h"
#include "shared/macro.h"
#include "shared/secret.h"

#define KMIP_DEFAULT_PORT "5696"
#define KMIP_CLIENT_MAX_SERVERS 16

struct kmip_client_config {
        /* "host", "host:port", "[v6addr]:port"; tried in this order. */
        const char *servers[KMIP_CLIENT_MAX_SERVERS];
        size_t n_servers;
        const char *cert_file; /* PEM client certificate (chain); NULL: no client cert */
        const char *key_file;  /* PEM private key of cert_file */
        const char *ca_file;   /* PEM CA bundle the server must chain to; NULL: system store */
        bool no_verify_name;   /* skip checking the server certificate names the host */
        unsigned connect_timeout_ms; /* per endpoint; 0: 5000 */
        unsigned io_timeout_ms;      /* per read/write; 0: 30000 */
        struct kmip_version version; /* 0.0: 1.4; use DiscoverVersions to pick one */
        size_t max_response_size;    /* 0: 1 MiB */
        /* Optional Username and Password credential sent in every request header, for
         * servers that want one besides the client certificate. The password is copied
         * into the client's own secret. */
        const char *username;
        const struct secret *password;
};

struct kmip_client;

/* KMIP 1.2 attestation on the client side. With an attester set, every request says
 * it can attest (Attestation Capable Indicator, Attestation Type TPM Quote); when
 * the server answers a single-item request with Attestation Required and a Nonce,
 * the client asks attest() for evidence over that nonce and sends the request once
 * more with an Attestation credential. What the server then releases (the Data of
 * a Decrypt) is wrapped to a key the evidence named, and unwrap() recovers it. */
struct kmip_attester {
        /* Evidence for operation op on object uid over nonce: malloc'ed measurement
         * and assertion; err gets one line on failure. */
        int (*attest)(void *userdata, uint32_t op, const char *uid, const uint8_t *nonce, size_t nonce_size,
                      uint8_t **ret_measurement, size_t *ret_m_size, uint8_t **ret_assertion, size_t *ret_a_size,
                      char *err, size_t errlen);
        int (*unwrap)(void *userdata, const uint8_t *wrapped, size_t size, struct secret **ret, char *err,
                      size_t errlen);
        void *userdata;
};

/* Validate cfg (copied) and make a client; nothing is connected yet. 0, -EINVAL
 * (with the reason in the log at debug level), -ENOMEM. */
int kmip_client_new(const struct kmip_client_config *cfg, struct kmip_client **ret);
/* Close the connection and free; NULL is fine. */
void kmip_client_free(struct kmip_client *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kmip_client *, kmip_client_free);

/* The explanation of the last failure ("" after success). */
const char *kmip_client_error(const struct kmip_client *c);
/* "host:port" of the open connection, or NULL. */
const char *kmip_client_endpoint(const struct kmip_client *c);
/* The protocol version requests are sent with. */
struct kmip_version kmip_client_version(const struct kmip_client *c);
/* Use version v from now on (e.g. after DiscoverVersions). */
void kmip_client_set_version(struct kmip_client *c, struct kmip_version v);
/* Attest when a server asks (a copy of *a is kept; NULL: never attest). */
void kmip_client_set_attester(struct kmip_client *c, const struct kmip_attester *a);

/* Close the connection now (the next call reconnects). */
void kmip_client_disconnect(struct kmip_client *c);

/* Send one request with a single batch item (operation op, payload a detached node of
 * arena a) and return its successful response payload in ret (in arena a; NULL if the
 * server sent none). For operations without a wrapper below. */
int kmip_client_call(struct kmip_client *c, struct ttlv_arena *a, uint32_t op, struct ttlv *payload,
                     struct ttlv **ret);

/* DiscoverVersions with our supported list; fills out[0..max) with the server's
 * answer in its order of preference. */
int kmip_client_discover_versions(struct kmip_client *c, struct kmip_version *out, size_t max,
                                  size_t *ret_n);
/* Ask with DiscoverVersions and switch to the best common version. */
int kmip_client_negotiate(struct kmip_client *c);

struct kmip_query_result {
        uint32_t *operations; /* in the arena */
        size_t n_operations;
        uint32_t *object_types;
        size_t n_object_types;
        const char *vendor; /* Vendor Identification, or NULL */
        struct ttlv *server_information; /* raw, or NULL */
};
/* Query operations, objects and server information; results live in arena a. */
int kmip_client_query(struct kmip_client *c, struct ttlv_arena *a, struct kmip_query_result *ret);

/* Create a symmetric key (alg KMIP_ALG_AES, bits 128/192/256, usage mask bits) with
 * an optional name and extra attributes (e.g. "x-..." ones); *ret_uid is malloc'ed. */
int kmip_client_create(struct kmip_client *c, uint32_t alg, int32_t bits, uint32_t usage_mask,
                       const char *name, const struct kmip_attr_list *extra, char **ret_uid);
/* Register key material: object_type KMIP_OBJECT_SYMMETRIC_KEY (alg, bits from the
 * size) or KMIP_OBJECT_SECRET_DATA (alg ignored); name/extra as for create. */
int kmip_client_register(struct kmip_client *c, uint32_t object_type, uint32_t alg,
                         uint32_t usage_mask, const struct secret *material, const char *name,
                         const struct kmip_attr_list *extra, char **ret_uid);

struct kmip_key_info {
        uint32_t object_type;
        uint32_t alg;        /* 0 when the server sent none */
        int32_t bits;        /* 0 when the server sent none */
        uint32_t key_format; /* as returned (Raw requested) */
};
/* Get the raw key material of a symmetric key or secret data object. info may be NULL. */
int kmip_client_get(struct kmip_client *c, const char *uid, struct secret **ret_key,
                    struct kmip_key_info *ret_info);

/* GetAttributes: names[0..n) (n 0: all) into list, in arena a. Missing attributes are
 * simply absent from the list (not an error). */
int kmip_client_get_attributes(struct kmip_client *c, const char *uid, const char *const *names,
                               size_t n, struct ttlv_arena *a, struct kmip_attr_list *ret);
/* State of an object (a GetAttributes shortcut). */
int kmip_client_get_state(struct kmip_client *c, const char *uid, uint32_t *ret_state);
/* AddAttribute for each attribute of list, in one batch (as vCenter does). */
int kmip_client_add_attributes(struct kmip_client *c, const char *uid, const struct kmip_attr_list *list);
/* ModifyAttribute: replace the value of attr (name, index) with attr->value. */
int kmip_client_modify_attribute(struct kmip_client *c, const char *uid, const struct kmip_attr *attr);
/* DeleteAttribute by name and index (index < 0: the first/only instance). */
int kmip_client_delete_attribute(struct kmip_client *c, const char *uid, const char *name, int32_t index);

struct kmip_locate_filter {
        const char *name;                   /* NULL: any */
        uint32_t object_type;               /* 0: any */
        uint32_t state;                     /* 0: any */
        const struct kmip_attr_list *attrs; /* more attributes to match exactly, or NULL */
        int32_t max_items;                  /* 0: server default */
        int32_t offset_items;               /* 1.3+: skip this many; 0: none */
};
/* Locate; *ret_uids is a malloc'ed NULL-terminated array of malloc'ed strings (free
 * with kmip_strv_free), *ret_n its length. */
int kmip_client_locate(struct kmip_client *c, const struct kmip_locate_filter *f, char ***ret_uids,
                       size_t *ret_n);
/* Free what kmip_client_locate() returned; NULL is fine. */
void kmip_strv_free(char **v);

/* Activate: Pre-Active -> Active (the key becomes usable). */
int kmip_client_activate(struct kmip_client *c, const char *uid);
/* Revoke with reason (KMIP_REVOKE_*), optional message; compromise_time (POSIX seconds,
 * 0: now) is sent for Key/CA Compromise. */
int kmip_client_revoke(struct kmip_client *c, const char *uid, uint32_t reason, const char *message,
                       int64_t compromise_time);
/* Destroy the key material (most servers want it revoked first: -EACCES otherwise). */
int kmip_client_destroy(struct kmip_client *c, const char *uid);

struct kmip_crypto_params {
        uint32_t mode;     /* KMIP_MODE_GCM, KMIP_MODE_AES_KEY_WRAP_PADDING, KMIP_MODE_CBC, ... */
        uint32_t padding;  /* KMIP_PADDING_*; 0: none sent */
        uint32_t alg;      /* 0: AES */
        int32_t tag_length; /* AEAD tag bytes; 0: 16 for GCM */
        bool random_iv;    /* ask the server to pick the IV (else: we send a random one
                            * when the mode needs one; servers such as vmcrypt-kms
                            * take it only from clients that may also Decrypt) */
};

#define KMIP_IV_MAX 32
#define KMIP_AEAD_TAG_MAX 16

struct kmip_ciphertext {
        uint8_t *data; /* malloc'ed */
        size_t size;
        uint8_t iv[KMIP_IV_MAX]; /* IV/Counter/Nonce, when the mode uses one */
        size_t iv_size;
        uint8_t tag[KMIP_AEAD_TAG_MAX]; /* AEAD tag, when the mode has one */
        size_t tag_size;
};
/* Free the data of a ciphertext and zero it. */
void kmip_ciphertext_done(struct kmip_ciphertext *ct);

/* Encrypt plaintext under key uid on the server (the key never leaves it); aad is
 * authenticated data for AEAD modes (may be NULL). */
int kmip_client_encrypt(struct kmip_client *c, const char *uid, const struct kmip_crypto_params *p,
                        const struct secret *plaintext, const uint8_t *aad, size_t aad_size,
                        struct kmip_ciphertext *ret);
/* Decrypt ct with key uid; -EBADMSG when the server reports a cryptographic failure
 * (wrong key, altered data). */
int kmip_client_decrypt(struct kmip_client *c, const char *uid, const struct kmip_crypto_params *p,
                        const struct kmip_ciphertext *ct, const uint8_t *aad, size_t aad_size,
                        struct secret **ret_plaintext);

/* Wrapping a secret under a server-side key, as one self-describing blob (version,
 * mode, IV, tag, ciphertext) that vmcrypt stores next to the key's id:
 * wrap = encrypt + serialise, unwrap = parse + decrypt. */
int kmip_client_wrap(struct kmip_client *c, const char *uid, const struct kmip_crypto_params *p,
                     const struct secret *plaintext, uint8_t **ret_blob, size_t *ret_size);
int kmip_client_unwrap(struct kmip_client *c, const char *uid, const uint8_t *blob, size_t size,
                       struct secret **ret_plaintext);
/* The blob format on its own (used by wrap/unwrap, and testable offline). parse fills
 * mode and points ct's fields into a copy; 0 or -EBADMSG. */
int kmip_wrap_blob_build(uint32_t mode, const struct kmip_ciphertext *ct, uint8_t **ret, size_t *ret_size);
int kmip_wrap_blob_parse(const uint8_t *blob, size_t size, uint32_t *ret_mode, struct kmip_ciphertext *ret);
