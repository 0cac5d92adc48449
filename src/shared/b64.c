/* Base64 through OpenSSL's block coder; see b64.h. */
#include "shared/b64.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "shared/macro.h"
#include "shared/secret.h"

char *b64_encode(const uint8_t *p, size_t n) {
        char *out = malloc(4 * ((n + 2) / 3) + 1);
        if (out)
                EVP_EncodeBlock((unsigned char *) out, p, (int) n);
        return out;
}

/* EVP_DecodeBlock knows nothing of padding: it returns whole 3-byte groups, so
 * the '=' count is subtracted here, and the round trip check catches the rest
 * (stray characters, non-canonical trailing bits). */
int b64_decode(const char *s, size_t max, uint8_t **ret, size_t *ret_size) {
        size_t len = s ? strlen(s) : 0;
        if (len == 0 || len % 4 != 0 || len / 4 * 3 > max + 2)
                return -EBADMSG;
        _cleanup_(freep) uint8_t *buf = malloc(len / 4 * 3);
        if (!buf)
                return -ENOMEM;
        int n = EVP_DecodeBlock(buf, (const unsigned char *) s, (int) len);
        if (n < 0)
                return -EBADMSG;
        size_t pad = (s[len - 1] == '=') + (s[len - 2] == '=');
        size_t size = (size_t) n - pad;
        if (size == 0 || size > max)
                return -EBADMSG;
        _cleanup_(freep) char *again = b64_encode(buf, size);
        if (!again)
                return -ENOMEM;
        if (strcmp(again, s) != 0)
                return -EBADMSG;
        *ret = TAKE_PTR(buf);
        *ret_size = size;
        return 0;
}

int b64_decode_exact(const char *s, uint8_t *out, size_t n) {
        uint8_t *buf = NULL;
        size_t size = 0;
        int r = b64_decode(s, n, &buf, &size);
        if (r < 0)
                return r;
        if (size == n)
                memcpy(out, buf, n);
        secret_wipe(buf, size);
        free(buf);
        return size == n ? 0 : -EBADMSG;
}
