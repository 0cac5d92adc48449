/* Certificates, as far as every program needs them: when one ends. Servers,
 * agents and the CLI tell of certificates before they expire. */
#pragma once

#include <openssl/x509.h>
#include <stdbool.h>
#include <stdint.h>

/* A certificate ending within this many days is told of (warnings, events, '!'). */
#define X509_WARN_DAYS 30

/* x's notAfter in seconds since the epoch; 0 when it cannot be read. */
int64_t x509_end(const X509 *x);
/* The notAfter of the first certificate in the PEM file at path; 0 when there
 * is none or it cannot be read. */
int64_t x509_file_end(const char *path);
/* Whether a known end (> 0) is within X509_WARN_DAYS of now, or past. */
bool x509_ends_soon(int64_t end, int64_t now);
/* The days from now to end, counting a part day as one (0 once it has ended). */
int64_t x509_days_left(int64_t end, int64_t now);
