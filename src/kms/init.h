/* `vmcrypt-kms init DIR`: a ready-to-run state directory for a quick start: a CA, the
 * server certificate, client certificates, a master key and a config file. */
#pragma once

#include <stddef.h>

struct kms_init_options {
        const char *dir;
        const char *const *clients; /* client certificate CNs */
        size_t n_clients;
        const char *hostname;       /* extra SAN; NULL: gethostname() */
        const char *listen;         /* NULL: 0.0.0.0:5696 */
        int days;                   /* client/server certificate lifetime */
        int rsa;                    /* RSA 3072 keys instead of EC P-256 */
};

/* Create everything; -EEXIST if DIR already holds a CA. */
int kms_init(const struct kms_init_options *o);
/* Issue one more client certificate from DIR's CA into DIR (client-CN.crt/.key),
 * valid from now + not_before_days for days (negative values make expired
 * certificates, for tests). */
int kms_init_issue_client(const char *dir, const char *cn, int not_before_days, int days);
