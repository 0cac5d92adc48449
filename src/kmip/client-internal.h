/* Shared between the client's files: the client object and the transport. Not part
 * of the library's interface. */
#pragma once

#include <signal.h>
#include <stdbool.h>

#include <openssl/ssl.h>

#include "kmip/client.h"

#define KMIP_CLIENT_ERROR_MAX 1024

struct kmip_client {
        char *servers[KMIP_CLIENT_MAX_SERVERS];
        size_t n_servers;
        char *cert_file, *key_file, *ca_file;
        bool no_verify_name;
        unsigned connect_timeout_ms, io_timeout_ms;
        size_t max_response_size;
        struct kmip_version version;
        char *username;
        struct secret *password;

        SSL_CTX *ctx;
        SSL *ssl;
        int fd;
        size_t connected;   /* index of the open endpoint */
        bool reused;        /* the connection already carried a request */
        uint32_t next_id;   /* Unique Batch Item IDs */
        char error[KMIP_CLIENT_ERROR_MAX];
        struct kmip_attester attester;
        bool has_attester;
        bool attested; /* the last request carried an Attestation credential */
};

/* Writing to a socket the peer closed raises SIGPIPE, which would kill the program;
 * a library must not change the process's signal handling, so SIGPIPE is blocked in
 * the calling thread while the client talks, and a SIGPIPE it caused is discarded. */
struct sigpipe_state {
        sigset_t old;
        bool was_pending;
};
void sigpipe_block(struct sigpipe_state *s);
void sigpipe_restore(struct sigpipe_state *s);

/* Record the explanation of a failure and return err. */
int client_fail(struct kmip_client *c, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Connect to the first endpoint that answers, trying them in order. 0 or -errno
 * (the most telling failure of all endpoints; c->error lists each). */
int conn_open(struct kmip_client *c);
void conn_close(struct kmip_client *c);
/* Send a whole message; receive one whole message (malloc'ed, free with
 * ttlv_buffer_free). -ECONNRESET when the peer closed before sending anything. */
int conn_send(struct kmip_client *c, const uint8_t *buf, size_t size);
int conn_recv(struct kmip_client *c, uint8_t **ret, size_t *ret_size);
/* After the first request on a fresh connection failed because the server hung up:
 * read the TLS alert it may have sent (TLS 1.3 reports a rejected client certificate
 * only after the handshake) and classify it; without one, -EKEYREJECTED. */
int conn_probe_alert(struct kmip_client *c);

/* One request with n batch items (payloads: detached nodes of a), one response;
 * resp->items[i] is the answer to items[i]. Returns 0 when every item succeeded,
 * else the -errno of the first failed item (with c->error explaining it). */
int client_batch(struct kmip_client *c, struct ttlv_arena *a, struct kmip_batch_item *items, size_t n,
                 struct kmip_message *resp);
/* A single operation; *ret = its response payload (may be NULL). */
int client_call(struct kmip_client *c, struct ttlv_arena *a, uint32_t op, struct ttlv *payload,
                struct ttlv **ret);
/* After Get/Encrypt/Decrypt was refused, ask for the key's state to tell revoked,
 * not-yet-active and destroyed apart; returns the refined -errno (or r). */
int client_refine_state_error(struct kmip_client *c, const char *uid, int r);
