/* The KMIP client without a KMIP server: configuration checks, the errno and message
 * for a refused connection and for a silent peer (timeout), failover order in the
 * message, an expired client certificate caught before connecting, and the wrap blob
 * format, and that the TLS context wipes decrypted records. Talking to a real server
 * is tests/interop/kmip-client-pykmip.sh. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "kmip/client-internal.h"

/* A TCP port on 127.0.0.1: listening (backlog, never accepting) or closed. */
static int local_port(bool listening, int *ret_fd) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(fd >= 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        socklen_t len = sizeof(sa);
        assert_int_equal(getsockname(fd, (struct sockaddr *) &sa, &len), 0);
        if (listening) {
                assert_int_equal(listen(fd, 4), 0);
                *ret_fd = fd;
        } else
                close(fd);
        return ntohs(sa.sin_port);
}

static void test_config(void **state) {
        (void) state;
        struct kmip_client *c = NULL;
        struct kmip_client_config cfg = {};
        assert_int_equal(kmip_client_new(&cfg, &c), -EINVAL);
        cfg.servers[0] = "127.0.0.1";
        cfg.n_servers = 1;
        cfg.version = KMIP_VERSION(3, 0);
        assert_int_equal(kmip_client_new(&cfg, &c), -EPROTONOSUPPORT);
        cfg.version = KMIP_VERSION(0, 0);
        assert_int_equal(kmip_client_new(&cfg, &c), 0);
        assert_int_equal(kmip_client_version(c).minor, 4);
        assert_null(kmip_client_endpoint(c));
        kmip_client_free(c);
}

static void test_refused_then_timeout(void **state) {
        (void) state;
        char a[64], b[64];
        int lfd = -1;
        int closed = local_port(false, NULL);
        int silent = local_port(true, &lfd);
        snprintf(a, sizeof(a), "127.0.0.1:%d", closed);
        snprintf(b, sizeof(b), "127.0.0.1:%d", silent);

        struct kmip_client_config cfg = { .n_servers = 1, .io_timeout_ms = 300, .connect_timeout_ms = 300 };
        cfg.servers[0] = a;
        struct kmip_client *c;
        assert_int_equal(kmip_client_new(&cfg, &c), 0);
        assert_int_equal(kmip_client_activate(c, "1"), -ECONNREFUSED);
        assert_non_null(strstr(kmip_client_error(c), a));
        kmip_client_free(c);

        /* Failover in order: the refusal of the first, then the silence of the second;
         * the timeout is the more telling failure and both are named. */
        cfg.servers[1] = b;
        cfg.n_servers = 2;
        assert_int_equal(kmip_client_new(&cfg, &c), 0);
        assert_int_equal(kmip_client_destroy(c, "1"), -ETIMEDOUT);
        const char *e = kmip_client_error(c);
        assert_non_null(strstr(e, a));
        assert_non_null(strstr(e, b));
        assert_true(strstr(e, a) < strstr(e, b));
        kmip_client_free(c);
        close(lfd);

        /* A bad endpoint string is reported, not crashed on. */
        cfg.servers[0] = "[::1";
        cfg.n_servers = 1;
        assert_int_equal(kmip_client_new(&cfg, &c), 0);
        assert_int_equal(kmip_client_activate(c, "1"), -EINVAL);
        kmip_client_free(c);
}

/* Write a self-signed certificate valid from 2001 to 2002 and its key. */
static void write_expired_cert(const char *cert_path, const char *key_path) {
        EVP_PKEY *pkey = EVP_EC_gen("P-256");
        assert_non_null(pkey);
        X509 *x = X509_new();
        X509_set_version(x, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
        ASN1_TIME_set(X509_getm_notBefore(x), 978307200);  /* 2001-01-01 */
        ASN1_TIME_set(X509_getm_notAfter(x), 1009843200);  /* 2002-01-01 */
        X509_set_pubkey(x, pkey);
        X509_NAME *name = X509_get_subject_name(x);
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *) "old", -1, -1, 0);
        X509_set_issuer_name(x, name);
        assert_true(X509_sign(x, pkey, EVP_sha256()) > 0);
        FILE *f = fopen(cert_path, "w");
        assert_non_null(f);
        PEM_write_X509(f, x);
        fclose(f);
        f = fopen(key_path, "w");
        assert_non_null(f);
        PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL);
        fclose(f);
        X509_free(x);
        EVP_PKEY_free(pkey);
}

static void test_expired_client_cert(void **state) {
        (void) state;
        char dir[] = "/tmp/kmip-client-test-XXXXXX", cert[128], key[128];
        assert_non_null(mkdtemp(dir));
        snprintf(cert, sizeof(cert), "%s/c.pem", dir);
        snprintf(key, sizeof(key), "%s/k.pem", dir);
        write_expired_cert(cert, key);

        struct kmip_client_config cfg = { .n_servers = 1, .cert_file = cert, .key_file = key, .ca_file = cert };
        cfg.servers[0] = "127.0.0.1:1";
        struct kmip_client *c;
        assert_int_equal(kmip_client_new(&cfg, &c), 0);
        assert_int_equal(kmip_client_activate(c, "1"), -EKEYEXPIRED);
        assert_non_null(strstr(kmip_client_error(c), "expired"));
        kmip_client_free(c);

        /* A missing key file is a configuration error with the file named. */
        cfg.key_file = "/nonexistent/key.pem";
        assert_int_equal(kmip_client_new(&cfg, &c), 0);
        assert_int_equal(kmip_client_activate(c, "1"), -EINVAL);
        assert_non_null(strstr(kmip_client_error(c), cert));
        kmip_client_free(c);
        unlink(cert);
        unlink(key);
        rmdir(dir);
}

/* Answers carry unlock secrets (Decrypt) and KEKs (Get): libssl must wipe each
 * decrypted record once read, or the plaintext stays in its freed record buffers
 * for the life of the process (disk unlock waits there for its child). */
static void test_tls_context_cleanses(void **state) {
        (void) state;
        char addr[32];
        snprintf(addr, sizeof(addr), "127.0.0.1:%d", local_port(false, NULL));
        struct kmip_client_config cfg = { .n_servers = 1, .connect_timeout_ms = 500 };
        cfg.servers[0] = addr;
        struct kmip_client *c;
        assert_int_equal(kmip_client_new(&cfg, &c), 0);
        assert_int_equal(kmip_client_activate(c, "1"), -ECONNREFUSED);
        assert_non_null(c->ctx); /* made before connecting */
        assert_true(SSL_CTX_get_options(c->ctx) & SSL_OP_CLEANSE_PLAINTEXT);
        kmip_client_free(c);
}

static void test_wrap_blob(void **state) {
        (void) state;
        struct kmip_ciphertext ct = { .iv_size = 12, .tag_size = 16 }, back;
        uint8_t data[40];
        for (size_t i = 0; i < sizeof(data); i++)
                data[i] = (uint8_t) i;
        memset(ct.iv, 0x11, 12);
        memset(ct.tag, 0x22, 16);
        ct.data = data;
        ct.size = sizeof(data);
        uint8_t *blob;
        size_t n;
        uint32_t mode;
        assert_int_equal(kmip_wrap_blob_build(KMIP_MODE_GCM, &ct, &blob, &n), 0);
        assert_int_equal(n, 4 + 12 + 16 + 40);
        assert_int_equal(kmip_wrap_blob_parse(blob, n, &mode, &back), 0);
        assert_int_equal(mode, KMIP_MODE_GCM);
        assert_int_equal(back.size, 40);
        assert_memory_equal(back.data, data, 40);
        assert_memory_equal(back.iv, ct.iv, 12);
        assert_memory_equal(back.tag, ct.tag, 16);
        kmip_ciphertext_done(&back);
        assert_null(back.data);

        /* Truncated, wrong version, oversized IV: all -EBADMSG. */
        assert_int_equal(kmip_wrap_blob_parse(blob, 4 + 12 + 16, &mode, &back), -EBADMSG);
        blob[0] = 2;
        assert_int_equal(kmip_wrap_blob_parse(blob, n, &mode, &back), -EBADMSG);
        blob[0] = 1;
        blob[2] = 200;
        assert_int_equal(kmip_wrap_blob_parse(blob, n, &mode, &back), -EBADMSG);
        assert_int_equal(kmip_wrap_blob_parse(NULL, 0, &mode, &back), -EBADMSG);
        free(blob);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_config),
                cmocka_unit_test(test_refused_then_timeout),
                cmocka_unit_test(test_expired_client_cert),
                cmocka_unit_test(test_wrap_blob),
                cmocka_unit_test(test_tls_context_cleanses),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
