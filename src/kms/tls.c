/* TLS setup and client identity: see tls.h. */
#include "kms/tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <string.h>

#include "shared/hex.h"
#include "shared/log.h"

int kms_tls_context(const char *cert, const char *key, const char *ca, SSL_CTX **ret) {
        SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
        if (!ctx)
                return -ENOMEM;
        int r = -EINVAL;
        SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
        if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
                log_openssl_errors("server certificate");
                r = -ENOENT;
                goto fail;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
                log_openssl_errors("server key");
                r = -EKEYREJECTED;
                goto fail;
        }
        if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
                log_openssl_errors("client CA");
                r = -ENOENT;
                goto fail;
        }
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca);
        if (names)
                SSL_CTX_set_client_CA_list(ctx, names);
        /* Every KMIP client authenticates with its certificate: no certificate, no
         * connection. */
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        /* No session resumption: every connection presents and verifies its client
         * certificate, so a certificate that expired (or a CA that was removed) stops
         * working at the next connection, not when a cached session runs out. KMIP
         * clients keep their connections open, so full handshakes are rare. */
        SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_num_tickets(ctx, 0);
        SSL_CTX_set_session_id_context(ctx, (const unsigned char *) "vmcrypt-kms", 11);
        /* Release per-connection buffers while idle: thousands of mostly idle
         * connections (ESXi hosts) should cost little memory. */
        SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
        /* Requests (Register) and answers (Get) carry key material: OpenSSL wipes
         * decrypted records once handed over; written records are encrypted in place. */
        SSL_CTX_set_options(ctx, SSL_OP_CLEANSE_PLAINTEXT);
        *ret = ctx;
        return 0;
fail:
        SSL_CTX_free(ctx);
        return r;
}

int kms_tls_fingerprint(X509 *cert, char fingerprint[static KMS_FINGERPRINT_SIZE]) {
        uint8_t md[32];
        unsigned len = sizeof(md);
        if (X509_digest(cert, EVP_sha256(), md, &len) != 1 || len != 32)
                return -EIO;
        hex_encode(md, 32, fingerprint);
        return 0;
}

int kms_tls_identity(SSL *ssl, char *cn, size_t cn_size, char fingerprint[static KMS_FINGERPRINT_SIZE]) {
        if (SSL_get_verify_result(ssl) != X509_V_OK)
                return -EACCES;
        X509 *peer = SSL_get1_peer_certificate(ssl);
        if (!peer)
                return -EACCES;
        int r = -EACCES;
        X509_NAME *subject = X509_get_subject_name(peer);
        int n = subject ? X509_NAME_get_text_by_NID(subject, NID_commonName, cn, (int) cn_size) : -1;
        if (n > 0 && (size_t) n < cn_size && kms_tls_fingerprint(peer, fingerprint) == 0)
                r = 0;
        X509_free(peer);
        return r;
}
