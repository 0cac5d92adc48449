/* The "vmcrypt" token: what a disk stores about its key, and nothing secret. It
 * holds the unlock secret only in wrapped form, plus the provider name and KEK id
 * needed to unwrap it. LUKS2 keeps it in a header token of type "vmcrypt". LUKS1
 * has no tokens: an embedded LUKS1 header keeps them in vmcrypt's metadata area
 * inside the header region (disk/luks1-meta.h), so a copied or renamed image keeps
 * its binding. A detached LUKS1 header, and a volume bound by an older vmcrypt,
 * have them in HEADER.vmcrypt.json beside the header (written atomically); the
 * next change (bind, rekey) or token_store_migrate() moves an image's sidecar into
 * its area. All stores are reached through token_store_*(). */
#pragma once

#include <libcryptsetup.h>

#include "shared/macro.h"
#include <stddef.h>
#include <stdint.h>

#define TOKEN_TYPE "vmcrypt"
#define TOKEN_SIDECAR_SUFFIX ".vmcrypt.json"
/* Bounds that reject nonsense before it reaches a provider. */
#define TOKEN_WRAPPED_MAX 1024
#define TOKEN_IV_MAX 64
#define TOKEN_STORE_MAX 32

/* Wrap methods: the KMS encrypted the secret (the KEK never left it), or we
 * wrapped it locally with RFC 5649 under a KEK fetched into memory. */
#define TOKEN_METHOD_KMIP_ENCRYPT "kmip-encrypt"
#define TOKEN_METHOD_RFC5649 "rfc5649"

struct vmcrypt_token {
        int keyslot;            /* LUKS keyslot the unwrapped secret opens */
        char *provider;         /* provider name in providers.json */
        char *kek_id;           /* KMIP unique identifier or native KEK id */
        char *method;           /* TOKEN_METHOD_* */
        char *cipher;           /* for kmip-encrypt: e.g. "aes-256-gcm"; else NULL */
        uint8_t *wrapped;
        size_t wrapped_size;
        uint8_t *iv;            /* kmip-encrypt IV/nonce; NULL when none */
        size_t iv_size;
        uint8_t *tag;           /* AEAD tag; NULL when none */
        size_t tag_size;
        char *created;          /* UTC, ISO 8601 */
        char *vm_name;          /* optional */
        char *vm_uuid;          /* optional */
};

/* A new token with keyslot -1 and every field empty; NULL on ENOMEM. */
struct vmcrypt_token *token_new(void);
/* Free a token (all fields); NULL is fine. */
void token_free(struct vmcrypt_token *t);
static inline void token_freep(struct vmcrypt_token **t) {
        token_free(*t);
}

/* Deep copy of src; NULL on ENOMEM. */
struct vmcrypt_token *token_dup(const struct vmcrypt_token *src);

/* Set t->created to the current UTC time; 0 or -ENOMEM. */
int token_stamp(struct vmcrypt_token *t);

/* Check that all required fields are present and sane; 0 or -EBADMSG. */
int token_validate(const struct vmcrypt_token *t);

/* Compact JSON text of a valid token (caller frees); 0, -EBADMSG or -ENOMEM. */
int token_to_json(const struct vmcrypt_token *t, char **ret);
/* Parse and validate JSON text; -EBADMSG when it is damaged or incomplete. */
int token_from_json(const char *json, struct vmcrypt_token **ret);

/* One token found on a disk. tok is NULL when the stored bytes are damaged, and
 * error then says why (-EBADMSG). */
struct token_entry {
        int id;
        int error;
        struct vmcrypt_token *tok;
};

struct token_list {
        size_t n;
        struct token_entry e[TOKEN_STORE_MAX];
};

void token_list_free(struct token_list *l);
static inline void token_list_freep(struct token_list **l) {
        if (*l)
                token_list_free(*l);
}

/* The sidecar path for a LUKS1 header at header_path (caller frees). */
char *token_sidecar_path(const char *header_path);

/* All vmcrypt tokens of a loaded device, in id order. LUKS2: header tokens;
 * LUKS1: the metadata area, else the sidecar beside header_path (none when it does
 * not exist; a sidecar counts only when header_path is the file cd's header is
 * in). 0 or -errno. */
int token_store_list(struct crypt_device *cd, const char *header_path, struct token_list **ret);

/* Store a new token and return its id (>= 0), or -errno. An embedded LUKS1
 * header without room for the metadata area (and no sidecar already) gives
 * -ENOSPC; a document too large for the area -E2BIG. */
int token_store_add(struct crypt_device *cd, const char *header_path, const struct vmcrypt_token *t);

/* 0 when a token can be stored, -ENOSPC when the store has no room for one: an
 * embedded LUKS1 header without room for the metadata area (and no sidecar it
 * already has). Asked before a keyslot is added for the token, so that a refusal
 * changes nothing. */
int token_store_can_add(struct crypt_device *cd, const char *header_path);

/* Remove the token with this id; -ENOENT when there is none. */
int token_store_remove(struct crypt_device *cd, const char *header_path, int id);

/* Move the sidecar of an embedded LUKS1 header (header_path is its image) into the
 * header's metadata area, then remove the sidecar. 1 when a sidecar was moved or
 * found already moved, 0 when there is nothing to do (LUKS2, detached, no sidecar,
 * no room), -errno. Callers hold the volume's metadata lock. */
int token_store_migrate(struct crypt_device *cd, const char *header_path);

/* The rotation marker of `rekey --secret`: keyslot `from` is being replaced by
 * keyslot `to`. Written before `to` is added, cleared after `from` is destroyed;
 * after a crash in between, the next rekey keeps whichever of the two it could
 * unlock and removes the other with its tokens, so no keyslot is left behind.
 * LUKS2: a token of type "vmcrypt-pending"; LUKS1: a member of the document. */
#define TOKEN_PENDING_TYPE "vmcrypt-pending"
int token_store_set_pending(struct crypt_device *cd, const char *header_path, int from, int to);
/* 0 and the two keyslots, or -ENOENT when there is no marker (-EBADMSG: damaged). */
int token_store_get_pending(struct crypt_device *cd, const char *header_path, int *ret_from, int *ret_to);
/* Remove the marker; 0 also when there was none. */
int token_store_clear_pending(struct crypt_device *cd, const char *header_path);
