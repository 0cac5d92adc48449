/* TLS setup and client identity: see tls.h. */
#include "tls/tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <stdbool.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <string.h>

#include "shared/hex.h"
#include "shared/log.h"

static int fp_index = -1;

static void fp_index_init(void) {
        fp_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/* Called for each certificate of the chain the peer presented, with OpenSSL's
 * verdict, which stands: it only notes the leaf's fingerprint. */
int tls_verify_note(int ok, X509_STORE_CTX *x) {
        SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
        char *fp = ssl && fp_index >= 0 ? SSL_get_ex_data(ssl, fp_index) : NULL;
        X509 *leaf = X509_STORE_CTX_get0_cert(x);
        if (fp && !fp[0] && leaf)
                (void) tls_fingerprint(leaf, fp);
        return ok;
}

void tls_record_peer(SSL *ssl, char fp[static TLS_FINGERPRINT_SIZE]) {
        fp[0] = 0;
        if (fp_index >= 0)
                (void) SSL_set_ex_data(ssl, fp_index, fp);
}

int tls_server_context(const char *cert, const char *key, const char *ca, const char *ciphers, SSL_CTX **ret) {
        SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
        if (!ctx)
                return -ENOMEM;
        int r = -EINVAL;
        SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
        /* TLS 1.2 without forward secrecy (static RSA key exchange) lets anyone who
         * later obtains the server key decrypt every recorded session, and with it
         * every key the server ever released: only ECDHE suites unless the
         * configuration asks otherwise. TLS 1.3 suites always use (EC)DHE. */
        if (SSL_CTX_set_cipher_list(ctx, ciphers ? ciphers : TLS_DEFAULT_CIPHERS) != 1) {
                log_openssl_errors("cipher list");
                r = -EINVAL;
                goto fail;
        }
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
        if (names) {
                /* Identities are CNs alone, whichever CA issued them: with several CAs
                 * in tls-ca each of them can name any identity. */
                if (sk_X509_NAME_num(names) > 1)
                        log_warning("%s holds %d CA certificates: each of them can issue a certificate for "
                                    "any client identity (CN). Use one CA for KMIP clients, or pin clients "
                                    "by fingerprint (sha256:HEX) in groups.", ca, sk_X509_NAME_num(names));
                SSL_CTX_set_client_CA_list(ctx, names);
        }
        /* Every KMIP client authenticates with its certificate: no certificate, no
         * connection. */
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        pthread_once(&once, fp_index_init);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, tls_verify_note);
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

int tls_fingerprint(X509 *cert, char fingerprint[static TLS_FINGERPRINT_SIZE]) {
        uint8_t md[32];
        unsigned len = sizeof(md);
        if (X509_digest(cert, EVP_sha256(), md, &len) != 1 || len != 32)
                return -EIO;
        hex_encode(md, 32, fingerprint);
        return 0;
}

/* Is s[0..n) UTF-8 (strict: no overlong forms, surrogates or values past U+10FFFF)
 * free of control characters (C0, DEL, C1)? NUL is a C0 control: a CN "host1\0x"
 * would otherwise read as "host1" once it is a C string. */
static bool utf8_printable(const uint8_t *s, size_t n) {
        size_t i = 0;
        while (i < n) {
                uint8_t c = s[i];
                if (c < 0x80) {
                        if (c < 0x20 || c == 0x7f)
                                return false;
                        i++;
                        continue;
                }
                size_t len;
                uint32_t cp, min;
                if ((c & 0xE0) == 0xC0)
                        len = 2, cp = c & 0x1F, min = 0x80;
                else if ((c & 0xF0) == 0xE0)
                        len = 3, cp = c & 0x0F, min = 0x800;
                else if ((c & 0xF8) == 0xF0)
                        len = 4, cp = c & 0x07, min = 0x10000;
                else
                        return false;
                if (n - i < len)
                        return false;
                for (size_t k = 1; k < len; k++) {
                        if ((s[i + k] & 0xC0) != 0x80)
                                return false;
                        cp = cp << 6 | (s[i + k] & 0x3F);
                }
                if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || cp <= 0x9F)
                        return false;
                i += len;
        }
        return true;
}

int tls_cert_identity(X509 *cert, char *cn, size_t cn_size, const char **ret_why) {
        const char *why = "no subject CN";
        X509_NAME *subject = X509_get_subject_name(cert);
        int i = subject ? X509_NAME_get_index_by_NID(subject, NID_commonName, -1) : -1;
        if (i < 0)
                goto refuse;
        /* One name, one identity: with two CNs, which one a peer (or an operator
         * reading the certificate) takes for the name is a matter of convention. */
        if (X509_NAME_get_index_by_NID(subject, NID_commonName, i) >= 0) {
                why = "more than one subject CN";
                goto refuse;
        }
        /* The CN's bytes are in the string type it was issued in (BMPString is
         * UTF-16): converted to UTF-8 the same name is the same identity whatever its
         * encoding, and the raw bytes of two different BMPString names no longer
         * both read as "" (they start with a zero byte). */
        unsigned char *utf8 = NULL;
        int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i)));
        if (n < 0) {
                why = "subject CN is not a valid string";
                goto refuse;
        }
        if (n == 0)
                why = "empty subject CN";
        else if (!utf8_printable(utf8, (size_t) n))
                why = "subject CN holds a NUL, a control character or invalid UTF-8";
        else if ((size_t) n >= cn_size)
                why = "subject CN too long";
        else {
                memcpy(cn, utf8, (size_t) n);
                cn[n] = 0;
                why = NULL;
        }
        OPENSSL_free(utf8);
        if (!why)
                return 0;
refuse:
        if (ret_why)
                *ret_why = why;
        return -EACCES;
}

int tls_peer_identity(SSL *ssl, char *cn, size_t cn_size, char fingerprint[static TLS_FINGERPRINT_SIZE],
                     const char **ret_why) {
        fingerprint[0] = 0;
        if (ret_why)
                *ret_why = "no verified client certificate";
        if (SSL_get_verify_result(ssl) != X509_V_OK)
                return -EACCES;
        X509 *peer = SSL_get1_peer_certificate(ssl);
        if (!peer)
                return -EACCES;
        /* The fingerprint first: a refused certificate is audited by it. */
        int r = -EACCES;
        if (tls_fingerprint(peer, fingerprint) == 0)
                r = tls_cert_identity(peer, cn, cn_size, ret_why);
        X509_free(peer);
        return r;
}
