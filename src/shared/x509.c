/* Certificates: see x509.h. */
#include "shared/x509.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <time.h>

int64_t x509_end(const X509 *x) {
        struct tm tm;
        return x && ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1 ? (int64_t) timegm(&tm) : 0;
}

int64_t x509_file_end(const char *path) {
        FILE *f = path ? fopen(path, "re") : NULL;
        if (!f)
                return 0;
        X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
        fclose(f);
        int64_t end = x509_end(x);
        X509_free(x);
        ERR_clear_error();
        return end;
}

bool x509_ends_soon(int64_t end, int64_t now) {
        return end > 0 && end - now < (int64_t) X509_WARN_DAYS * 86400;
}

int64_t x509_days_left(int64_t end, int64_t now) {
        return end > now ? (end - now + 86399) / 86400 : 0;
}
