/* A small PKI for mutual TLS, as the key server's quick start and (later) the
 * manager and its agents need it: a CA, server and client certificates with the
 * right extensions, keys written once and never overwritten. */
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>

enum pki_kind { PKI_CA, PKI_SERVER, PKI_CLIENT };

void pki_pkey_freep(EVP_PKEY **p);
void pki_x509_freep(X509 **p);

/* A new key: EC P-256, or RSA 3072 for peers that only negotiate RSA suites. */
EVP_PKEY *pki_new_key(bool rsa);
/* A certificate of kind for key and cn, signed by issuer/issuer_key (NULL: self-
 * signed), valid from now + not_before_days for days; san for servers. */
int pki_make_cert(enum pki_kind kind, EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
                  const char *san, long not_before_days, long days, X509 **ret);
/* DIR/NAME in PEM: the key (mode 0600) or the certificate, exactly mode, created
 * O_EXCL (never overwritten) and synced. */
int pki_write_pem(const char *dir, const char *name, mode_t mode, EVP_PKEY *key, X509 *cert);
/* A new key and certificate of kind for cn, signed by ca: DIR/BASE.key, DIR/BASE.crt. */
int pki_issue(const char *dir, enum pki_kind kind, const char *cn, const char *base, X509 *ca, EVP_PKEY *ca_key,
              const char *san, long not_before_days, long days);
/* DIR/ca.crt and DIR/ca.key. */
int pki_load_ca(const char *dir, X509 **ret_cert, EVP_PKEY **ret_key);
/* A CN vmcrypt issues: 1-64 of [A-Za-z0-9._@-]. */
bool pki_valid_cn(const char *cn);
