/* Audit log: see audit.h. Lines are formatted by hand (no JSON library on the hot
 * path: one line per operation); every string is escaped. */
#include "kms/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "kms/seal.h"
#include "shared/fd-util.h"
#include "shared/hex.h"
#include "shared/key-input.h"
#include "shared/macro.h"
#include "shared/secret.h"

#define MAC_HEX 64
#define LINE_MAX_SIZE 4096
/* What "mac" follows, and how a line ends: ,"mac":"<64 hex>"}\n */
#define MAC_PREFIX ",\"mac\":\""
#define MAC_SUFFIX_LEN (sizeof(MAC_PREFIX) - 1 + MAC_HEX + 3)

struct audit {
        int fd;
        pthread_mutex_t lock;
        bool shared;      /* other processes write the log too */
        EVP_MAC_CTX *mac; /* keyed once; re-initialised per line */
        char prev[MAC_HEX + 1];
        uint64_t seq;
        off_t size;       /* written so far; atomic for readers outside lock */
        unsigned long failures;

        /* The syncer thread (see audit_sync), under sync_lock. */
        pthread_mutex_t sync_lock;
        pthread_cond_t sync_wake, synced_cond;
        pthread_t syncer;
        bool syncer_running, stopping;
        off_t sync_wanted; /* fdatasync until this offset is durable */
        off_t synced;      /* durable up to here */
        int broken;        /* an fdatasync failed: nothing is durable from then on */
};

/* fdatasync in a thread of its own, started as soon as a change's line is written
 * (audit_sync_soon), so that it runs while the store is still busy (its statements,
 * the previous group's commit) and the store's wait before its COMMIT (audit_sync)
 * is short or none: on ext4 the two files' syncs then share journal commits. Run in
 * the committer instead, in series with the WAL's, it cost 45% of durable Creates. */
static void *syncer_main(void *arg) {
        struct audit *a = arg;
        pthread_mutex_lock(&a->sync_lock);
        for (;;) {
                while (!a->stopping && !a->broken && a->sync_wanted <= a->synced)
                        pthread_cond_wait(&a->sync_wake, &a->sync_lock);
                if (a->stopping || a->broken)
                        break;
                off_t target = __atomic_load_n(&a->size, __ATOMIC_ACQUIRE);
                pthread_mutex_unlock(&a->sync_lock);
                int r = fdatasync(a->fd) < 0 ? negative_errno() : 0;
                pthread_mutex_lock(&a->sync_lock);
                /* After a failed fdatasync Linux may report the next one as a success
                 * although the data is lost: the log stays failed until restarted. */
                if (r < 0)
                        __atomic_store_n(&a->broken, r, __ATOMIC_RELAXED);
                else if (target > a->synced)
                        a->synced = target;
                pthread_cond_broadcast(&a->synced_cond);
        }
        pthread_cond_broadcast(&a->synced_cond);
        pthread_mutex_unlock(&a->sync_lock);
        return NULL;
}

static int mac_new(const struct secret *key, EVP_MAC_CTX **ret) {
        EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
        if (!m)
                return -EIO;
        EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(m);
        EVP_MAC_free(m);
        if (!ctx)
                return -ENOMEM;
        OSSL_PARAM params[] = {
                OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *) "SHA256", 0),
                OSSL_PARAM_construct_end(),
        };
        if (EVP_MAC_init(ctx, key->data, key->size, params) != 1) {
                EVP_MAC_CTX_free(ctx);
                return -EIO;
        }
        *ret = ctx;
        return 0;
}

/* HMAC(key, prev || line[0..n)) as hex into out[MAC_HEX + 1]. */
static int mac_line(EVP_MAC_CTX *ctx, const char *prev, const char *line, size_t n, char *out) {
        uint8_t md[32];
        size_t len = 0;
        if (EVP_MAC_init(ctx, NULL, 0, NULL) != 1 || EVP_MAC_update(ctx, (const uint8_t *) prev, MAC_HEX) != 1 ||
            EVP_MAC_update(ctx, (const uint8_t *) line, n) != 1 || EVP_MAC_final(ctx, md, &len, sizeof(md)) != 1 ||
            len != sizeof(md))
                return -EIO;
        hex_encode(md, sizeof(md), out);
        return 0;
}

static int load_key(const char *key_path, EVP_MAC_CTX **ret) {
        _cleanup_(secret_freep) struct secret *k = NULL;
        int r = seal_key_load_file(key_path, &k);
        if (r == -ENOENT)
                r = key_input_new_key_file(key_path, AUDIT_KEY_SIZE, &k);
        if (r < 0)
                return r;
        return mac_new(k, ret);
}

/* A whole line's "seq" and "mac"; false if it has none (not chained, or cut). */
static bool parse_tail(const char *line, size_t n, uint64_t *seq, char mac[static MAC_HEX + 1]) {
        if (n < MAC_SUFFIX_LEN || memcmp(line + n - MAC_SUFFIX_LEN, MAC_PREFIX, sizeof(MAC_PREFIX) - 1) != 0 ||
            memcmp(line + n - 3, "\"}\n", 3) != 0)
                return false;
        memcpy(mac, line + n - MAC_HEX - 3, MAC_HEX);
        mac[MAC_HEX] = 0;
        const char *s = strstr(line, "{\"seq\":");
        if (s != line)
                return false;
        char *end;
        *seq = strtoull(line + 7, &end, 10);
        return end > line + 7 && *end == ',';
}

/* Go on from the last whole line of the log: its seq and mac. A log that ends in a
 * cut line gets a newline, so the next line is whole. */
static int resume_chain(struct audit *a) {
        memset(a->prev, '0', MAC_HEX);
        a->prev[MAC_HEX] = 0;
        struct stat st;
        if (fstat(a->fd, &st) < 0)
                return negative_errno();
        a->size = st.st_size;
        if (st.st_size == 0)
                return 0;
        char buf[2 * LINE_MAX_SIZE + 1];
        off_t from = st.st_size > (off_t) (sizeof(buf) - 1) ? st.st_size - (off_t) (sizeof(buf) - 1) : 0;
        ssize_t n = pread(a->fd, buf, (size_t) (st.st_size - from), from);
        if (n < 0)
                return negative_errno();
        buf[n] = 0;
        if (n > 0 && buf[n - 1] != '\n') {
                if (write(a->fd, "\n", 1) != 1)
                        return -EIO;
                a->size++;
                buf[n++] = '\n';
                buf[n] = 0;
        }
        /* The last line that carries a mac (a cut one does not). */
        for (ssize_t end = n; end > 0;) {
                ssize_t start = end - 1;
                while (start > 0 && buf[start - 1] != '\n')
                        start--;
                if (parse_tail(buf + start, (size_t) (end - start), &a->seq, a->prev))
                        return 0;
                end = start;
        }
        return 0;
}

static int open_log(const char *path, const char *key_path, bool shared, struct audit **ret) {
        struct audit *a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        a->shared = shared;
        pthread_mutex_init(&a->lock, NULL);
        pthread_mutex_init(&a->sync_lock, NULL);
        pthread_cond_init(&a->sync_wake, NULL);
        pthread_cond_init(&a->synced_cond, NULL);
        int r = load_key(key_path, &a->mac);
        if (r < 0)
                goto fail;
        /* O_RDWR: the tail is read back to go on with the chain. */
        a->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (a->fd < 0) {
                r = negative_errno();
                goto fail;
        }
        r = shared && flock(a->fd, LOCK_EX) < 0 ? negative_errno() : resume_chain(a);
        if (shared)
                (void) flock(a->fd, LOCK_UN);
        if (r < 0)
                goto fail;
        a->synced = a->sync_wanted = a->size;
        if (pthread_create(&a->syncer, NULL, syncer_main, a) != 0) {
                r = -EAGAIN;
                goto fail;
        }
        a->syncer_running = true;
        *ret = a;
        return 0;
fail:
        audit_close(a);
        return r;
}

int audit_open(const char *path, const char *key_path, struct audit **ret) {
        return open_log(path, key_path, false, ret);
}

int audit_open_shared(const char *path, const char *key_path, struct audit **ret) {
        return open_log(path, key_path, true, ret);
}

void audit_close(struct audit *a) {
        if (!a)
                return;
        if (a->syncer_running) {
                pthread_mutex_lock(&a->sync_lock);
                a->stopping = true;
                pthread_cond_signal(&a->sync_wake);
                pthread_mutex_unlock(&a->sync_lock);
                pthread_join(a->syncer, NULL);
        }
        if (a->fd > 0) {
                (void) fsync(a->fd);
                close(a->fd);
        }
        EVP_MAC_CTX_free(a->mac);
        pthread_mutex_destroy(&a->lock);
        pthread_mutex_destroy(&a->sync_lock);
        pthread_cond_destroy(&a->sync_wake);
        pthread_cond_destroy(&a->synced_cond);
        free(a);
}

static const char *result_name(uint32_t status) {
        switch (status) {
        case 0:
                return "success";
        case 1:
                return "failed";
        case 2:
                return "pending";
        default:
                return "undone";
        }
}

static bool valid_utf8(const unsigned char *s) {
        while (*s) {
                size_t n = *s < 0x80 ? 0 : (*s & 0xe0) == 0xc0 ? 1 : (*s & 0xf0) == 0xe0 ? 2 : (*s & 0xf8) == 0xf0 ? 3 : 4;
                if (n == 4)
                        return false;
                s++;
                for (size_t i = 0; i < n; i++, s++)
                        if ((*s & 0xc0) != 0x80)
                                return false;
        }
        return true;
}

/* Append "key":"escaped value" to buf at *o (bounded by size). Control characters,
 * quotes and backslashes are escaped; bytes of invalid UTF-8 become \u00XX so that
 * the line is always valid JSON whatever a certificate's CN holds. */
static void put_string(char *buf, size_t size, size_t *o, const char *key, const char *value) {
        bool utf8 = valid_utf8((const unsigned char *) value);
        *o += (size_t) snprintf(buf + *o, size > *o ? size - *o : 0, ",\"%s\":\"", key);
        for (const unsigned char *p = (const unsigned char *) value; *p && *o + 8 < size; p++) {
                if (*p == '"' || *p == '\\') {
                        buf[(*o)++] = '\\';
                        buf[(*o)++] = (char) *p;
                } else if (*p < 0x20 || *p == 0x7f || (*p >= 0x80 && !utf8))
                        *o += (size_t) snprintf(buf + *o, size - *o, "\\u%04x", *p);
                else
                        buf[(*o)++] = (char) *p;
        }
        if (*o + 1 < size)
                buf[(*o)++] = '"';
}

static bool set(const char *s) {
        return s && *s;
}

int audit_record(struct audit *a, const struct audit_event *ev) {
        if (!a)
                return 0;
        struct timeval tv;
        gettimeofday(&tv, NULL);
        struct tm tm;
        gmtime_r(&tv.tv_sec, &tm);
        char line[LINE_MAX_SIZE];
        /* The body is built before the lock; seq goes in front of it under the lock. */
        char body[LINE_MAX_SIZE - 64];
        size_t o = (size_t) snprintf(body, sizeof(body), ",\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ\"",
                                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                                     (long) tv.tv_usec);
        put_string(body, sizeof(body), &o, "client", set(ev->identity) ? ev->identity : "");
        put_string(body, sizeof(body), &o, "client_sha256", set(ev->fingerprint) ? ev->fingerprint : "");
        if (set(ev->peer))
                put_string(body, sizeof(body), &o, "peer", ev->peer);
        put_string(body, sizeof(body), &o, "operation", ev->operation);
        put_string(body, sizeof(body), &o, "result", result_name(ev->status));
        if (set(ev->object_id))
                put_string(body, sizeof(body), &o, "object", ev->object_id);
        if (ev->status != 0 && ev->reason != 0 && o < sizeof(body))
                o += (size_t) snprintf(body + o, sizeof(body) - o, ",\"reason\":%" PRIu32, ev->reason);
        if (set(ev->message))
                put_string(body, sizeof(body), &o, "message", ev->message);
        if (o + 1 >= sizeof(body)) {
                __atomic_add_fetch(&a->failures, 1, __ATOMIC_RELAXED);
                return -E2BIG;
        }
        body[o] = 0; /* put_string appends bytes, not a terminated string */

        pthread_mutex_lock(&a->lock);
        int r = __atomic_load_n(&a->broken, __ATOMIC_RELAXED);
        /* A log other processes append to as well (the operator's commands):
         * the file lock keeps each line's read of the chain and its write
         * together, and a log that grew under us is read again. The server's
         * own log has one writer and skips this (it costs a fifth of its Gets). */
        bool locked = r == 0 && a->shared && flock(a->fd, LOCK_EX) == 0;
        if (r == 0 && a->shared && !locked)
                r = negative_errno();
        struct stat st;
        if (locked && fstat(a->fd, &st) == 0 && st.st_size != a->size)
                r = resume_chain(a);
        uint64_t seq = a->seq + 1;
        size_t n = (size_t) snprintf(line, sizeof(line), "{\"seq\":%" PRIu64 "%s", seq, body);
        char mac[MAC_HEX + 1];
        if (r < 0)
                ; /* a failed fdatasync: no line is durable any more (syncer_main) */
        else if (n + MAC_SUFFIX_LEN >= sizeof(line))
                r = -E2BIG;
        else
                r = mac_line(a->mac, a->prev, line, n, mac);
        if (r == 0) {
                n += (size_t) snprintf(line + n, sizeof(line) - n, MAC_PREFIX "%s\"}\n", mac);
                ssize_t w = write(a->fd, line, n);
                if (w == (ssize_t) n) {
                        a->seq = seq;
                        __atomic_store_n(&a->size, a->size + (off_t) n, __ATOMIC_RELEASE);
                        memcpy(a->prev, mac, sizeof(mac));
                } else {
                        r = w < 0 ? negative_errno() : -ENOSPC;
                        /* A line cut short by a full file system: take it back off, so
                         * that the log holds whole lines only. */
                        if (w > 0 && ftruncate(a->fd, a->size) < 0)
                                r = -EIO;
                }
        }
        if (locked)
                (void) flock(a->fd, LOCK_UN);
        pthread_mutex_unlock(&a->lock);
        if (r < 0)
                __atomic_add_fetch(&a->failures, 1, __ATOMIC_RELAXED);
        return r;
}

/* Ask the syncer to make everything written so far durable; under sync_lock. */
static off_t want_sync(struct audit *a) {
        off_t target = __atomic_load_n(&a->size, __ATOMIC_ACQUIRE);
        if (target > a->sync_wanted) {
                a->sync_wanted = target;
                pthread_cond_signal(&a->sync_wake);
        }
        return target;
}

void audit_sync_soon(struct audit *a) {
        if (!a)
                return;
        pthread_mutex_lock(&a->sync_lock);
        (void) want_sync(a);
        pthread_mutex_unlock(&a->sync_lock);
}

int audit_sync(struct audit *a) {
        if (!a)
                return 0;
        pthread_mutex_lock(&a->sync_lock);
        off_t target = want_sync(a);
        while (a->synced < target && !a->broken && !a->stopping)
                pthread_cond_wait(&a->synced_cond, &a->sync_lock);
        int r = a->synced >= target ? 0 : a->broken ? a->broken : -ESHUTDOWN;
        pthread_mutex_unlock(&a->sync_lock);
        return r;
}

unsigned long audit_failures(const struct audit *a) {
        return a ? __atomic_load_n(&a->failures, __ATOMIC_RELAXED) : 0;
}

int audit_verify(const char *path, const char *key_path, audit_finding_fn report, void *userdata,
                 unsigned long *ret_lines) {
        _cleanup_(secret_freep) struct secret *k = NULL;
        int r = seal_key_load_file(key_path, &k);
        if (r < 0)
                return r;
        EVP_MAC_CTX *ctx = NULL;
        r = mac_new(k, &ctx);
        if (r < 0)
                return r;
        FILE *f = fopen(path, "re");
        if (!f) {
                r = negative_errno();
                EVP_MAC_CTX_free(ctx);
                return r;
        }
        char prev[MAC_HEX + 1];
        memset(prev, '0', MAC_HEX);
        prev[MAC_HEX] = 0;
        uint64_t last_seq = 0;
        unsigned long lineno = 0, breaks = 0;
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while ((n = getline(&line, &cap, f)) > 0) {
                lineno++;
                uint64_t seq;
                char mac[MAC_HEX + 1], want[MAC_HEX + 1];
                if (line[n - 1] != '\n') {
                        report(lineno, "cut short (no end of line): the log was truncated here", userdata);
                        breaks++;
                        continue;
                }
                if (!parse_tail(line, (size_t) n, &seq, mac)) {
                        report(lineno, "no seq/mac: cut short, edited, or written before lines were chained", userdata);
                        breaks++;
                        continue;
                }
                if (mac_line(ctx, prev, line, (size_t) n - MAC_SUFFIX_LEN, want) < 0) {
                        r = -EIO;
                        break;
                }
                bool ok = CRYPTO_memcmp(want, mac, MAC_HEX) == 0;
                if (!ok && seq == 1) {
                        /* A chain that starts again (a new log continued in this file,
                         * or after lines that were never chained): not an edit. */
                        char zero[MAC_HEX + 1];
                        memset(zero, '0', MAC_HEX);
                        zero[MAC_HEX] = 0;
                        if (mac_line(ctx, zero, line, (size_t) n - MAC_SUFFIX_LEN, want) == 0 &&
                            CRYPTO_memcmp(want, mac, MAC_HEX) == 0) {
                                report(lineno, "a new chain starts here (seq 1)", userdata);
                                ok = true;
                        }
                }
                if (!ok) {
                        char what[160];
                        if (seq > last_seq + 1)
                                snprintf(what, sizeof(what), "seq %" PRIu64 " follows seq %" PRIu64 ": %" PRIu64
                                         " line(s) before it were removed", seq, last_seq, seq - last_seq - 1);
                        else
                                snprintf(what, sizeof(what), "MAC does not match: this line (seq %" PRIu64 ") was "
                                         "edited, or moved", seq);
                        report(lineno, what, userdata);
                        breaks++;
                }
                /* Go on from this line: one edit is reported once, not on every
                 * line after it. */
                memcpy(prev, mac, sizeof(prev));
                last_seq = seq;
        }
        free(line);
        fclose(f);
        EVP_MAC_CTX_free(ctx);
        if (ret_lines)
                *ret_lines = lineno;
        if (r < 0)
                return r;
        return breaks ? -EBADMSG : 0;
}
