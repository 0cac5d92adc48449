/* The network side of vmcrypt-kms: one libevent loop that accepts TLS connections,
 * frames KMIP messages and writes responses, and a pool of worker threads that run
 * the operations (so a slow disk commit never stalls the loop). */
#pragma once

#include <openssl/ssl.h>

#include "kms/config.h"
#include "kms/kms.h"
#include "kms/revocation.h"

struct kms_server;

/* Bind the listener and start the workers; -EADDRINUSE etc. */
int kms_server_new(const struct kms_config *c, struct kms_dispatcher *e, SSL_CTX *ctx, struct kms_server **ret);
/* Serve until SIGTERM or SIGINT, then finish in-flight requests (at most 10 s),
 * close every connection and return 0. */
int kms_server_run(struct kms_server *s);
/* Check client certificates against r: at the first request of every connection,
 * and again at the next request after r changed (a certificate revoked while its
 * connection is open loses it). r must outlive s. */
void kms_server_set_revocation(struct kms_server *s, struct kms_revocation *r);
/* Call reload(userdata) in the main loop on SIGHUP. */
void kms_server_on_reload(struct kms_server *s, void (*reload)(void *userdata), void *userdata);
/* The port actually bound (useful with port 0). */
int kms_server_port(const struct kms_server *s);
void kms_server_free(struct kms_server *s);
