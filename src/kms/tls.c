/* TLS setup and client identity: see tls.h. */
#include "kms/tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <string.h>

#include "shared/hex.h"
#include "shared/log.h"

static int fp_index = -1;

static void fp_index_init(void) {
        fp_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

static void fingerprint(X509 *x, char fp[static KMS_FINGERPRINT_SIZE]) {
        uint8_t md[32];
        unsigned len = sizeof(md);
        if (X509_digest(x, EVP_sha256(), md, &len) == 1 && len == 32)
                hex_encode(md, 32, fp);
}

/* Called for each certificate of the chain the peer presented, with OpenSSL's
 * verdict, which stands: it only notes the leaf's fingerprint. */
static int verify_note(int ok, X509_STORE_CTX *x) {
        SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
        char *fp = ssl && fp_index >= 0 ? SSL_get_ex_data(ssl, fp_index) : NULL;
        X509 *leaf = X509_STORE_CTX_get0_cert(x);
        if (fp && !fp[0] && leaf)
                fingerprint(leaf, fp);
        return ok;
}

void kms_tls_record_peer(SSL *ssl, char fp[static KMS_FINGERPRINT_SIZE]) {
        fp[0] = 0;
        if (fp_index >= 0)
                (void) SSL_set_ex_data(ssl, fp_index, fp);
}

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
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        pthread_once(&once, fp_index_init);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_note);
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

int kms_tls_identity(SSL *ssl, char *cn, size_t cn_size, char fp[static KMS_FINGERPRINT_SIZE]) {
        if (SSL_get_verify_result(ssl) != X509_V_OK)
                return -EACCES;
        X509 *peer = SSL_get1_peer_certificate(ssl);
        if (!peer)
                return -EACCES;
        int r = -EACCES;
        X509_NAME *subject = X509_get_subject_name(peer);
        int n = subject ? X509_NAME_get_text_by_NID(subject, NID_commonName, cn, (int) cn_size) : -1;
        if (n > 0 && (size_t) n < cn_size) {
                fp[0] = 0;
                fingerprint(peer, fp);
                r = fp[0] ? 0 : -EACCES;
        }
        X509_free(peer);
        return r;
}
