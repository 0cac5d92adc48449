/* Mutual TLS for vmcrypt's servers (the KMIP listener today; the manager and its
 * agents next): TLS 1.2 or 1.3, client certificates mandatory and verified against
 * the configured CA, and the client identity taken from the verified certificate. */
#pragma once

#include <openssl/ssl.h>

#define TLS_FINGERPRINT_SIZE 65 /* SHA-256 hex + NUL */

/* TLS 1.2 suites when the configuration names none (OpenSSL syntax): ECDHE key
 * exchange only, AEAD first, CBC with SHA-2 for older KMIP clients. */
#define TLS_DEFAULT_CIPHERS "ECDHE+AESGCM:ECDHE+CHACHA20:ECDHE+AES+SHA256:ECDHE+AES+SHA384"

/* Server context from PEM files (certificate chain, key, client CA) and the TLS 1.2
 * cipher list (NULL: TLS_DEFAULT_CIPHERS); -EINVAL for a cipher list OpenSSL
 * does not accept. */
int tls_server_context(const char *cert, const char *key, const char *ca, const char *ciphers, SSL_CTX **ret);

/* The identity a certificate names: its subject CN in UTF-8 (into cn[cn_size]).
 * -EACCES, with *ret_why saying why (static text), when the subject has no CN, more
 * than one, an empty one, or one holding NUL, control characters or invalid text. */
int tls_cert_identity(X509 *cert, char *cn, size_t cn_size, const char **ret_why);

/* The verified peer's identity (tls_cert_identity) and certificate SHA-256 hex;
 * -EACCES if there is no verified certificate or it names no usable identity, with
 * *ret_why set. The fingerprint is set whenever there is a certificate, "" if not. */
int tls_peer_identity(SSL *ssl, char *cn, size_t cn_size, char fingerprint[static TLS_FINGERPRINT_SIZE],
                     const char **ret_why);

/* The SHA-256 fingerprint of cert in lowercase hex (the client's fingerprint in
 * the audit log, in [group] members and in revoked-client). */
int tls_fingerprint(X509 *cert, char fingerprint[static TLS_FINGERPRINT_SIZE]);
/* Have the verification of ssl's peer certificate record that certificate's
 * SHA-256 hex into fp (which must outlive ssl's handshake), whether or not it
 * verifies: the audit log names refused certificates too. fp stays "" when the peer
 * presented none. */
void tls_record_peer(SSL *ssl, char fp[static TLS_FINGERPRINT_SIZE]);
/* The context's verify callback that does the recording (returns ok unchanged);
 * a callback installed in its place calls it first. */
int tls_verify_note(int ok, X509_STORE_CTX *x);
