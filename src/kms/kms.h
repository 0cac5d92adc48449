/* The KMIP side of vmcrypt-kms: the dispatcher that turns one request message into one
 * response message (kms_process), and what every operation handler (op-*.c) shares.
 * It knows nothing about sockets; server.c feeds it from worker threads. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "kmip/attribute.h"
#include "kmip/message.h"
#include "kmip/tags.h"
#include "kmip/ttlv.h"
#include "kms/attest.h"
#include "kms/audit.h"
#include "kms/config.h"
#include "kms/object.h"
#include "kms/store.h"
#include "tls/tls.h"

#define KMS_LOCK_STRIPES 256

struct kms_client {
        char cn[256];
        char fingerprint[TLS_FINGERPRINT_SIZE];
        char peer[64]; /* "ADDR:PORT" or "[V6]:PORT" of the TCP peer; "" when unknown */
};

struct kms_dispatcher {
        const struct kms_config *config;
        struct store *store;
        struct audit *audit;
        struct kms_attest *attest; /* attested release and host enrolment */
        /* Read-modify-write of one object (AddAttribute, Activate, ...) happens under
         * the stripe lock of its id, so concurrent changes never lose each other. */
        pthread_mutex_t stripes[KMS_LOCK_STRIPES];
};

struct kms_op {
        struct kms_dispatcher *dispatcher;
        const struct kms_client *client;
        struct ttlv_arena *a;
        struct kmip_version v;
        uint32_t operation;
        const struct ttlv *req;      /* Request Payload, may be NULL */
        struct ttlv *resp;           /* Response Payload to fill (detached) */
        char *placeholder;           /* ID Placeholder of the batch (KMS_ID_MAX) */
        struct kms_defer *defer;     /* set: store without waiting (see kms_process) */
        bool audited;                /* its success line was written before its write */
        const char *message;         /* Result Message on failure (static text or message_buf) */
        char message_buf[320];       /* for messages made per request (attestation) */
        uint32_t reason;             /* Result Reason on failure; 0: from the errno */
        /* Request header's attestation fields; the Nonce to answer with. */
        const struct kmip_header *header;
        bool nonce_set;
        uint8_t nonce_id[16];
        uint8_t nonce_value[32];
        char object_id[KMS_ID_MAX];  /* for the audit log */
};

typedef int kms_op_fn(struct kms_op *op);

/* Initialise a dispatcher over an open store (audit may be NULL); the attestation
 * state is opened over the same database. */
int kms_dispatcher_init(struct kms_dispatcher *e, const struct kms_config *c, struct store *s, struct audit *audit);
void kms_dispatcher_done(struct kms_dispatcher *e);

/* A reply held back until its write is durable: the inline mode of kms_process. */
struct kms_defer {
        store_put_done_fn *done;   /* caller: called once the write is durable or failed */
        void *userdata;            /* caller: passed to done */
        bool deferred;             /* kms_process: the reply must wait for done */
        /* For the audit record, written by kms_defer_finish once the outcome is known. */
        struct kmip_version v;
        uint32_t operation;
        bool audited; /* its success line was written before the write was queued */
        char object_id[KMS_ID_MAX];
};

/* Handle one encoded request; *ret is a malloc'ed encoded response (always set on
 * 0). -ENOMEM only: protocol errors are answered, not returned.
 * With defer NULL, everything runs here and writes wait for their commit (worker
 * threads). With defer set (the network loop, which must never wait), quick reads
 * are answered; a request of a single Create or Register queues its write and
 * answers at once with defer->deferred set: the reply (and the return value) must
 * then be held until defer->done reports, and dropped on failure (run the request
 * again with defer NULL for the real answer). Any other request is left untouched
 * and -EWOULDBLOCK returned. */
int kms_process(struct kms_dispatcher *e, const struct kms_client *client, const uint8_t *req, size_t n,
                struct kms_defer *defer, uint8_t **ret, size_t *ret_n);
/* Write the audit record of a deferred item, with the outcome r its done reported. */
void kms_defer_finish(struct kms_dispatcher *e, const struct kms_client *client, const struct kms_defer *d, int r);

/* ---- shared by the operation handlers (ops-common.c) ---- */

/* Fail with a Result Message; returns err so handlers can `return kms_fail(...)`. */
int kms_fail(struct kms_op *op, int err, const char *message);
/* Write an audit line for client; 0 or why it could not be written. */
int kms_audit(struct kms_dispatcher *e, const struct kms_client *client, const char *operation, const char *object_id,
              uint32_t status, uint32_t reason, const char *message);
/* Whether a request must be refused when its audit line cannot be written. */
bool kms_audit_refuses(const struct kms_dispatcher *e);
#define KMS_AUDIT_REFUSED "The audit log cannot be written: refused, nothing changed (audit-failure = refuse)"
/* Store o for op (insert or replace; op->defer set: queued, see kms_process), its
 * audit line first: a change whose line cannot be written is refused (-EIO, General
 * Failure) unless audit-failure = continue. Failures set the Result Message. */
int kms_store_object(struct kms_op *op, const struct kms_object *o);
/* Unique Identifier of the request (or the batch's ID Placeholder). */
int kms_op_uid(struct kms_op *op, const char **ret);
/* Load an object the client may use for op->operation. Absent objects and objects of
 * other owners without a policy grant are both -ENOENT: a client cannot learn that a
 * key it may not use exists. */
int kms_load(struct kms_op *op, const char *uid, struct kms_object **ret);
/* Apply the transitions that dates make by themselves (KMIP 1.4 §3.22): a Pre-Active
 * object whose Activation Date has come is Active; an Active one whose Deactivation
 * Date has come is Deactivated. Updates o->state in memory. */
void kms_object_apply_dates(struct kms_object *o, int64_t now);
/* 0 when o's key material may be used now: the object is Active (or, with
 * allow_pre_active, Pre-Active); else fails op with -EKEYREVOKED (Deactivated,
 * Compromised), -ENOKEY (Pre-Active) or -EIDRM (destroyed). */
int kms_require_active(struct kms_op *op, const struct kms_object *o, bool allow_pre_active);
/* Stripe lock for read-modify-write of object id. */
pthread_mutex_t *kms_lock(struct kms_dispatcher *e, const char *id);
/* Current time, POSIX seconds. */
int64_t kms_now(void);
/* A fresh random UUID (text). */
void kms_new_id(char id[static KMS_ID_MAX]);

/* Convert between stored attributes and TTLV values. */
struct ttlv *kms_attr_to_ttlv(struct ttlv_arena *a, const struct kms_attr *attr);
int kms_attr_from_ttlv(struct kms_object *o, const char *name, uint32_t index, const struct ttlv *value);
/* The attributes a client sees: stored ones plus Unique Identifier, Object Type and
 * State (kept in columns). names NULL: all. Appended to list. */
int kms_attrs_collect(struct kms_op *op, const struct kms_object *o, const char *const *names, size_t n_names,
                      struct kmip_attr_list *list);
/* Apply client-supplied attributes at Create/Register (refuses server-only ones). */
int kms_attrs_apply_client(struct kms_op *op, struct kms_object *o, const struct kmip_attr_list *list);
/* Set Last Change Date to now. */
int kms_touch(struct kms_object *o);

/* Shared by Create and Register (op-create.c): read the request's attributes
 * (Template-Attribute in 1.x, Attributes in 2.0) into a fresh object owned by the
 * client, with the server's own attributes; then store it durably and answer. */
int create_common(struct kms_op *op, struct kms_object *o, struct kmip_attr_list *attrs);
int create_finish(struct kms_op *op, struct kms_object *o);

/* Handlers, one file each. */
kms_op_fn op_discover_versions, op_query, op_create, op_register, op_get, op_get_attributes,
        op_get_attribute_list, op_add_attribute, op_modify_attribute, op_delete_attribute,
        op_set_attribute, op_locate, op_activate, op_revoke, op_destroy, op_encrypt, op_decrypt, op_enroll_host;

/* ---- attestation (ops-attest.c) ---- */

/* For an operation on o that releases key material: 0 with *ret_attested false when
 * o requires no attestation; 0 with *ret_attested true and *ret_bk set when the
 * request's Attestation credential passed every check (the material must then
 * leave wrapped to *ret_bk). Else fails op: Attestation Required with a fresh Nonce
 * when the request had no credential, Attestation Failed with the reason when it
 * did not pass. */
int kms_attest_gate(struct kms_op *op, const struct kms_object *o, bool *ret_attested, TPMT_PUBLIC *ret_bk);
/* Whether o carries the attestation requirement; its group in ret (may be NULL). */
bool kms_attest_required(const struct kms_object *o, char *group, size_t size);
