/* Certificates in PEM files, as far as every program needs them: when one
 * ends. Servers and agents tell of certificates before they expire. */
#pragma once

#include <stdint.h>

/* The notAfter of the first certificate in the PEM file at path, in seconds
 * since the epoch; 0 when there is none or it cannot be read. */
int64_t x509_file_end(const char *path);
