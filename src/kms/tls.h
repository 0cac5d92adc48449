/* TLS for the KMIP listener: TLS 1.2 or 1.3, client certificates mandatory and
 * verified against the configured CA, and the client identity taken from the
 * verified certificate. */
#pragma once

#include <openssl/ssl.h>

#define KMS_FINGERPRINT_SIZE 65 /* SHA-256 hex + NUL */

/* Server context from PEM files (certificate chain, key, client CA). */
int kms_tls_context(const char *cert, const char *key, const char *ca, SSL_CTX **ret);
/* Have the verification of ssl's peer certificate record that certificate's
 * SHA-256 hex into fp (which must outlive ssl's handshake), whether or not it
 * verifies: the audit log names refused certificates too. fp stays "" when the peer
 * presented none. */
void kms_tls_record_peer(SSL *ssl, char fp[static KMS_FINGERPRINT_SIZE]);
/* The verified peer's subject CN (into cn[cn_size]) and certificate SHA-256 hex;
 * -EACCES if there is no verified certificate or it has no CN. */
int kms_tls_identity(SSL *ssl, char *cn, size_t cn_size, char fingerprint[static KMS_FINGERPRINT_SIZE]);
