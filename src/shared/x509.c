/* Certificates in PEM files: see x509.h. */
#include "shared/x509.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <time.h>

int64_t x509_file_end(const char *path) {
        FILE *f = path ? fopen(path, "re") : NULL;
        if (!f)
                return 0;
        X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
        fclose(f);
        struct tm tm;
        int64_t end = x && ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1 ? (int64_t) timegm(&tm) : 0;
        X509_free(x);
        ERR_clear_error();
        return end;
}
