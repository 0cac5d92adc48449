/* The data pass of an in-place job: read, transform (decrypt with the old key and/or
 * encrypt with the new one), write, commit. Two layouts:
 *
 * SHIFT (encrypt/decrypt of an image with the header in front): data moves by
 * d = |dst - src| bytes. Chunks are processed in the direction that writes over
 * source bytes already processed (backward when moving up, forward when moving
 * down), and a chunk may only overwrite source whose destination is durable and
 * checkpointed. Redoing a chunk after a crash is therefore idempotent: its source
 * is intact. The first bytes are special: encrypt reads them from the copy in the
 * job area (the marker covers them on disk); decrypt never writes them until the
 * finalisation (the marker stays until the very end).
 *
 * INPLACE (detached header, reencrypt): each hotzone's old block hashes are made
 * durable before any of its blocks is overwritten; after a crash each block is
 * classified old (hash matches: transform it), new (its inverse transform matches:
 * done) or torn (neither: refuse). Encrypt and reencrypt go forward, decrypt
 * backward, so a half-done disk never looks like the original at offset 0. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "disk/engine-internal.h"
#include "disk/testpoint.h"
#include "shared/fd-util.h"
#include "shared/log.h"

#define MAX_WORKERS 16

struct xform {
        struct xts_ctx *old;
        struct xts_ctx *new;
};

struct pass {
        struct job *j;
        unsigned ss;
        unsigned n_workers;
        int dfd;                  /* O_DIRECT descriptor of the data, or -1 */
        struct xform xf[MAX_WORKERS];
        struct timespec t0;
        uint64_t done_here;       /* bytes processed by this process (rate limit) */
};

/* forward: old-decrypt then new-encrypt; inverse: the other way round. */
static int xform_apply(const struct xform *x, unsigned ss, uint8_t *buf, size_t len, uint64_t off, bool inverse) {
        int r = 0;
        if (!inverse) {
                if (x->old && (r = xts_decrypt(x->old, buf, len, ss, off)) < 0)
                        return r;
                if (x->new)
                        r = xts_encrypt(x->new, buf, len, ss, off);
        } else {
                if (x->new && (r = xts_decrypt(x->new, buf, len, ss, off)) < 0)
                        return r;
                if (x->old)
                        r = xts_encrypt(x->old, buf, len, ss, off);
        }
        return r;
}

/* A slice of a buffer for one worker: transform it, or hash its units into
 * hashes[0..len/JOB_HASH_UNIT). */
struct slice {
        const struct xform *x;
        unsigned ss;
        uint8_t *buf;
        size_t len;
        uint64_t off;
        uint64_t *hashes;
        int r;
};

static void *slice_run(void *arg) {
        struct slice *s = arg;
        if (s->hashes) {
                for (size_t i = 0; i < s->len / JOB_HASH_UNIT; i++)
                        s->hashes[i] = job_block_hash(s->buf + i * JOB_HASH_UNIT, JOB_HASH_UNIT);
                s->r = 0;
        } else
                s->r = xform_apply(s->x, s->ss, s->buf, s->len, s->off, false);
        return NULL;
}

/* Transform a buffer (hashes == NULL) or hash its units, with all workers; one EVP
 * context each. */
static int pass_parallel(struct pass *ps, uint8_t *buf, size_t len, uint64_t off, uint64_t *hashes) {
        unsigned n = ps->n_workers;
        struct slice sl[MAX_WORKERS];
        if (n <= 1 || len < ((size_t) 1 << 20)) {
                sl[0] = (struct slice) { &ps->xf[0], ps->ss, buf, len, off, hashes, 0 };
                slice_run(&sl[0]);
                return sl[0].r;
        }
        pthread_t th[MAX_WORKERS];
        size_t per = ALIGN_UP(len / n, 4096), at = 0;
        unsigned used = 0;
        for (unsigned i = 0; i < n && at < len; i++) {
                size_t l = MIN(per, len - at);
                sl[i] = (struct slice) { &ps->xf[i], ps->ss, buf + at, l, off + at,
                                         hashes ? hashes + at / JOB_HASH_UNIT : NULL, 0 };
                at += l;
                used++;
        }
        bool spawned[MAX_WORKERS] = { false };
        for (unsigned i = 1; i < used; i++)
                spawned[i] = pthread_create(&th[i], NULL, slice_run, &sl[i]) == 0;
        slice_run(&sl[0]);
        int r = sl[0].r;
        for (unsigned i = 1; i < used; i++) {
                if (spawned[i])
                        pthread_join(th[i], NULL);
                else
                        slice_run(&sl[i]);
                if (sl[i].r < 0)
                        r = sl[i].r;
        }
        return r;
}

uint64_t engine_done_bytes(const struct job_super *sb, const struct job_ckpt *c) {
        uint64_t n = sb->data_size;
        if (c->phase == JOB_PHASE_FINALIZE)
                return n;
        bool backward = sb->layout == JOB_LAYOUT_SHIFT ? sb->dst_offset > sb->src_offset
                                                       : sb->op == ENGINE_OP_DECRYPT;
        uint64_t pos = c->pos;
        if (c->phase == JOB_PHASE_HOTZONE)
                pos = backward ? c->hz_start + c->hz_len : c->hz_start;
        pos = MIN(pos, n);
        return backward ? n - pos : pos;
}

/* Report progress after every chunk or hotzone (the callback decides how often to
 * show it); returns what the callback asks for. */
static enum engine_verdict pass_progress(struct pass *ps, uint64_t done) {
        const struct engine_params *p = ps->j->p;
        if (!p->progress)
                return ENGINE_CONTINUE;
        struct engine_progress pr = { .operation = ps->j->sb.op, .done = done, .total = ps->j->sb.data_size };
        return p->progress(&pr, p->progress_userdata);
}

/* Sleep as long as needed to stay under max_rate. */
static void pass_throttle(struct pass *ps, uint64_t bytes) {
        ps->done_here += bytes;
        uint64_t rate = ps->j->p->max_rate;
        if (!rate)
                return;
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        double elapsed = (double) (t.tv_sec - ps->t0.tv_sec) + (double) (t.tv_nsec - ps->t0.tv_nsec) / 1e9;
        double want = (double) ps->done_here / (double) rate;
        if (want > elapsed) {
                double s = want - elapsed;
                struct timespec ts = { (time_t) s, (long) ((s - (double) (time_t) s) * 1e9) };
                while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                        ;
        }
}

/* Ask the kernel to start reading a range we will need soon, so that reading
 * overlaps with encrypting, writing and the commits' fdatasync. */
static void prefetch(int fd, uint64_t off, uint64_t len) {
        if (len > 0)
                (void) posix_fadvise(fd, (off_t) off, (off_t) len, POSIX_FADV_WILLNEED);
}

static int data_sync(struct job *j) {
        return fdatasync(j->data_fd) < 0 ? negative_errno() : 0;
}

static int commit(struct pass *ps, uint32_t phase, uint64_t pos, uint64_t hs, uint64_t hl) {
        testpoint("before-commit");
        int r = engine_commit(ps->j, phase, pos, hs, hl);
        if (r < 0)
                return r;
        testpoint("after-commit");
        return 0;
}

/* The step of at most size bytes that a pass moving from pos in direction
 * backward takes next, within [0, n): [*a, *b). */
static void step(uint64_t pos, uint64_t size, uint64_t n, bool backward, uint64_t *a, uint64_t *b) {
        *a = backward ? (pos > size ? pos - size : 0) : pos;
        *b = backward ? pos : MIN(n, pos + size);
}

/* Reads the next chunk (shift) or hotzone (in place) into a spare buffer while
 * the current one is transformed, committed and written: the ranges never
 * overlap a write that is running or about to run. */
struct reader {
        pthread_t th;
        bool running;
        struct job *j;
        uint8_t *buf;
        uint64_t a, b;  /* positions in the data */
        bool shift;     /* read as shift_read does, else plain from src_offset + a */
        bool backward;
        int r;
};

/* The source of positions [a, b) of a shift job into buf: encrypt takes the
 * first bytes from the copy in the job area (the marker covers them on disk). */
static int shift_read(struct job *j, uint8_t *buf, uint64_t a, uint64_t b, bool backward) {
        uint64_t k = j->sb.head_len, src = j->sb.src_offset;
        size_t len = (size_t) (b - a);
        if (a < k && backward) {
                size_t from_head = (size_t) (MIN(b, k) - a);
                memcpy(buf, j->head + a, from_head);
                return from_head < len ? pread_full(j->data_fd, buf + from_head, len - from_head,
                                                    (off_t) (src + a + from_head))
                                       : 0;
        }
        return pread_full(j->data_fd, buf, len, (off_t) (src + a));
}

static void *reader_run(void *arg) {
        struct reader *rd = arg;
        struct job *j = rd->j;
        if (rd->shift)
                rd->r = shift_read(j, rd->buf, rd->a, rd->b, rd->backward);
        else
                rd->r = pread_full(j->data_fd, rd->buf, (size_t) (rd->b - rd->a), (off_t) (j->sb.src_offset + rd->a));
        /* Going backward the kernel reads nothing ahead by itself. */
        if (rd->r >= 0 && rd->shift && rd->backward && rd->a > 0) {
                uint64_t len = MIN(rd->a, 4 * (rd->b - rd->a));
                prefetch(j->data_fd, j->sb.src_offset + rd->a - len, len);
        }
        return NULL;
}

static void reader_start(struct reader *rd, struct job *j, uint8_t *buf, uint64_t a, uint64_t b, bool shift,
                         bool backward) {
        *rd = (struct reader) { .j = j, .buf = buf, .a = a, .b = b, .shift = shift, .backward = backward };
        rd->running = pthread_create(&rd->th, NULL, reader_run, rd) == 0;
}

/* The read of [a, b), when the reader was at it: 1 (buf filled), or -errno.
 * 0 when it was not (the caller reads itself). */
static int reader_take(struct reader *rd, uint64_t a, uint64_t b) {
        if (!rd->running)
                return 0;
        pthread_join(rd->th, NULL);
        rd->running = false;
        if (rd->a != a || rd->b != b)
                return 0;
        return rd->r < 0 ? rd->r : 1;
}

static void reader_stop(struct reader *rd) {
        if (rd->running)
                pthread_join(rd->th, NULL);
        rd->running = false;
}

/* Chunks rotate through three buffers: while one is written in the background,
 * the next is transformed in another and the one after it read into the third.
 * No chunk's source overlaps a running write (a write lands d bytes away, on
 * sources already processed), and a commit first waits for every write it
 * covers. */
static int shift_loop(struct pass *ps, uint8_t *bufs[3], struct engine_writer *wr, struct reader *rd) {
        struct job *j = ps->j;
        const struct job_super *sb = &j->sb;
        uint64_t n = sb->data_size, src = sb->src_offset, dst = sb->dst_offset, k = sb->head_len;
        bool backward = dst > src;
        uint64_t d = backward ? dst - src : src - dst;
        uint64_t c = ALIGN_DOWN(MIN(ENGINE_CHUNK, d / 2), 4096);
        uint64_t committed = j->ck.pos, cur = committed;
        unsigned nb = 0;
        int r;

        if (c == 0)
                return -EINVAL;
        while (backward ? cur > 0 : cur < n) {
                uint64_t a, b, next_a, next_b;
                step(cur, c, n, backward, &a, &b);
                size_t len = (size_t) (b - a);
                uint8_t *buf = bufs[nb % 3];
                if ((r = reader_take(rd, a, b)) < 0 || (r == 0 && (r = shift_read(j, buf, a, b, backward)) < 0))
                        return r;
                /* The next chunk's source is never written by this chunk's or the
                 * running write; its buffer's write (two chunks ago) is complete,
                 * as engine_writer_start waited for it. */
                if (backward ? a > 0 : b < n) {
                        step(backward ? a : b, c, n, backward, &next_a, &next_b);
                        reader_start(rd, j, bufs[(nb + 1) % 3], next_a, next_b, true, backward);
                }
                nb++;
                if ((r = pass_parallel(ps, buf, len, a, NULL)) < 0)
                        return r;
                uint64_t w = a;
                if (!backward && a < k)
                        w = MIN(k, b); /* decrypt: the first bytes are written last */
                /* The write to [a, b) + dst overwrites the source of positions
                 * [a, b) + dst - src: those must be done and checkpointed. Reading
                 * and transforming this chunk needed no commit, so they overlapped
                 * the previous write; only the write waits for the commit. */
                bool need = backward ? committed > a + d : committed + d < b;
                if (need) {
                        if ((r = engine_writer_wait(wr)) < 0 || (r = data_sync(j)) < 0)
                                return r;
                        if ((r = commit(ps, JOB_PHASE_DATA, cur, 0, 0)) < 0)
                                return r;
                        committed = cur;
                }
                /* start() waits for the previous write: the crash point below is
                 * reached with every write before this one complete. */
                if (w < b && (r = engine_writer_start(wr, ps->dfd, j->data_fd, buf + (w - a), (size_t) (b - w),
                                                      dst + w)) < 0)
                        return r;
                testpoint("after-data-write");
                cur = backward ? a : b;
                pass_throttle(ps, len);
                if (pass_progress(ps, backward ? n - cur : cur) != ENGINE_CONTINUE) {
                        /* Stop where a resume has nothing to redo: every write so far
                         * durable, and a checkpoint at the boundary. */
                        if ((r = engine_writer_wait(wr)) < 0 || (r = data_sync(j)) < 0 ||
                            (r = commit(ps, JOB_PHASE_DATA, cur, 0, 0)) < 0)
                                return r;
                        return -ECANCELED;
                }
        }
        if ((r = engine_writer_wait(wr)) < 0 || (r = data_sync(j)) < 0)
                return r;
        return commit(ps, JOB_PHASE_FINALIZE, cur, 0, 0);
}

static int shift_pass(struct pass *ps, uint8_t *buf) {
        uint8_t *spare = NULL;
        if (posix_memalign((void **) &spare, 4096, ENGINE_CHUNK) != 0)
                return -ENOMEM;
        uint8_t *third = NULL;
        if (posix_memalign((void **) &third, 4096, ENGINE_CHUNK) != 0) {
                free(spare);
                return -ENOMEM;
        }
        uint8_t *bufs[3] = { buf, spare, third };
        struct engine_writer wr = { .running = false };
        struct reader rd = { .running = false };
        int r = shift_loop(ps, bufs, &wr, &rd);
        /* never leave a read or write running on freed memory */
        reader_stop(&rd);
        (void) engine_writer_wait(&wr);
        secret_wipe(spare, ENGINE_CHUNK);
        secret_wipe(third, ENGINE_CHUNK);
        free(spare);
        free(third);
        return r;
}

/* After a crash inside hotzone [hs, hs+hl): bring every unit to its new state. XTS
 * without ciphertext stealing transforms each 16-byte block on its own (given the
 * sector's tweak), so transforming a whole sector that mixes old and new units
 * still gives the right result for each unit taken alone. */
static int hotzone_recover(struct pass *ps, uint8_t *buf, uint64_t *hashes) {
        struct job *j = ps->j;
        const struct job_super *sb = &j->sb;
        uint64_t hs = j->ck.hz_start, hl = j->ck.hz_len, off = sb->src_offset;
        if (hl > sb->hotzone || hs + hl > sb->data_size || hl % ps->ss || hs % ps->ss)
                return engine_fail(ps->j->p->err, -EBADMSG, "job checkpoint is inconsistent");
        int r = pread_full(j->data_fd, buf, hl, (off_t) (off + hs));
        if (r < 0)
                return r;
        size_t nu = (size_t) (hl / JOB_HASH_UNIT);
        r = pread_full(j->hold_fd, hashes, nu * 8, (off_t) (sb->jstart + sb->hash_off[j->ck.seq % 2]));
        if (r < 0)
                return r;
        uint8_t fwd[4096], inv[4096];
        for (uint64_t s = 0; s < hl; s += ps->ss) {
                uint8_t *sec = buf + s;
                memcpy(fwd, sec, ps->ss);
                memcpy(inv, sec, ps->ss);
                if ((r = xform_apply(&ps->xf[0], ps->ss, fwd, ps->ss, hs + s, false)) < 0 ||
                    (r = xform_apply(&ps->xf[0], ps->ss, inv, ps->ss, hs + s, true)) < 0)
                        break;
                for (unsigned u = 0; u < ps->ss; u += JOB_HASH_UNIT) {
                        uint64_t want = hashes[(s + u) / JOB_HASH_UNIT];
                        if (job_block_hash(sec + u, JOB_HASH_UNIT) == want)
                                memcpy(sec + u, fwd + u, JOB_HASH_UNIT);  /* old: transform */
                        else if (job_block_hash(inv + u, JOB_HASH_UNIT) != want) {
                                r = engine_fail(ps->j->p->err, -EUCLEAN, "data at offset %llu is neither its old nor its new content: the disk was changed outside vmcrypt",
                                                (unsigned long long) (hs + s + u));
                                break;
                        }                                                  /* else new: keep */
                }
                if (r < 0)
                        break;
        }
        secret_wipe(fwd, sizeof(fwd));
        secret_wipe(inv, sizeof(inv));
        if (r < 0)
                return r;
        if ((r = engine_data_write(ps->dfd, j->data_fd, buf, hl, off + hs)) < 0)
                return r;
        return data_sync(j);
}

static int inplace_loop(struct pass *ps, uint8_t *bufs[2], uint64_t *hashes, struct reader *rd,
                        struct engine_writer *wr) {
        struct job *j = ps->j;
        const struct job_super *sb = &j->sb;
        uint64_t n = sb->data_size, off = sb->src_offset, z = sb->hotzone;
        bool backward = sb->op == ENGINE_OP_DECRYPT;
        uint64_t pos = j->ck.pos;
        unsigned cur = 0;
        int r;
        if (j->ck.phase == JOB_PHASE_HOTZONE) {
                if ((r = hotzone_recover(ps, bufs[cur], hashes)) < 0)
                        return r;
                pos = backward ? j->ck.hz_start : j->ck.hz_start + j->ck.hz_len;
        }
        while (backward ? pos > 0 : pos < n) {
                uint64_t hs, he, nhs, nhe;
                step(pos, z, n, backward, &hs, &he);
                size_t hl = (size_t) (he - hs), nb = hl / JOB_HASH_UNIT;
                if ((r = reader_take(rd, hs, he)) < 0)
                        return r;
                if (r > 0)
                        cur = !cur; /* the reader filled the spare buffer */
                uint8_t *buf = bufs[cur];
                if (r == 0 && (r = pread_full(j->data_fd, buf, hl, (off_t) (off + hs))) < 0)
                        return r;
                if (backward ? hs > 0 : he < n) {
                        step(backward ? hs : he, z, n, backward, &nhs, &nhe);
                        reader_start(rd, j, bufs[!cur], nhs, nhe, false, backward);
                }
                if ((r = pass_parallel(ps, buf, hl, hs, hashes)) < 0)
                        return r;
                /* The previous hotzone's data is durable before the checkpoint that
                 * moves past it; syncing only now lets the kernel write it back while
                 * this hotzone was read. On one file the hashes' sync covers both. */
                if (j->data_fd != j->hold_fd && (r = data_sync(j)) < 0)
                        return r;
                /* Hashes durable before the checkpoint that points at them. */
                if ((r = pwrite_full(j->hold_fd, hashes, nb * 8,
                                     (off_t) (sb->jstart + sb->hash_off[(j->ck.seq + 1) % 2]))) < 0)
                        return r;
                if (fdatasync(j->hold_fd) < 0)
                        return negative_errno();
                if ((r = commit(ps, JOB_PHASE_HOTZONE, pos, hs, hl)) < 0)
                        return r;
                /* Transform and write in chunks, each write on the writer thread
                 * while the next chunk is transformed, in the pass's direction. Their
                 * order does not matter for safety: after a crash every block of the
                 * hotzone is classified alone. */
                size_t nc = (hl + ENGINE_CHUNK - 1) / ENGINE_CHUNK;
                for (size_t i = 0; i < nc && r >= 0; i++) {
                        size_t o = (backward ? nc - 1 - i : i) * ENGINE_CHUNK;
                        size_t l = (size_t) MIN(ENGINE_CHUNK, hl - o);
                        if ((r = pass_parallel(ps, buf + o, l, hs + o, NULL)) >= 0)
                                r = engine_writer_start(wr, ps->dfd, j->data_fd, buf + o, l, off + hs + o);
                }
                int wr_r = engine_writer_wait(wr);
                if (r < 0 || (r = wr_r) < 0)
                        return r;
                testpoint("after-data-write");
                pos = backward ? hs : he;
                pass_throttle(ps, hl);
                if (pass_progress(ps, backward ? n - pos : pos) != ENGINE_CONTINUE) {
                        if ((r = data_sync(j)) < 0 || (r = commit(ps, JOB_PHASE_DATA, pos, 0, 0)) < 0)
                                return r;
                        return -ECANCELED;
                }
        }
        if ((r = data_sync(j)) < 0)
                return r;
        return commit(ps, JOB_PHASE_FINALIZE, pos, 0, 0);
}

static int inplace_pass(struct pass *ps, uint8_t *buf, uint64_t *hashes) {
        size_t z = (size_t) ps->j->sb.hotzone;
        uint8_t *spare = NULL;
        if (posix_memalign((void **) &spare, 4096, z) != 0)
                return -ENOMEM;
        uint8_t *bufs[2] = { buf, spare };
        struct reader rd = { .running = false };
        struct engine_writer wr = { .running = false };
        int r = inplace_loop(ps, bufs, hashes, &rd, &wr);
        /* never leave a read or write running on freed memory */
        reader_stop(&rd);
        (void) engine_writer_wait(&wr);
        secret_wipe(spare, z);
        free(spare);
        return r;
}

int engine_pass(struct job *j) {
        struct pass ps = { .j = j, .ss = j->sb.sector_size, .dfd = engine_dio_open(j->data_fd) };
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        ps.n_workers = j->p->threads ? j->p->threads : (unsigned) (cpus > 0 ? cpus : 1);
        ps.n_workers = MIN(ps.n_workers, (unsigned) MAX_WORKERS);
        int r = 0;
        for (unsigned i = 0; i < ps.n_workers && r >= 0; i++) {
                if (j->old_vk)
                        r = xts_new(j->old_vk, &ps.xf[i].old);
                if (r >= 0 && j->new_vk)
                        r = xts_new(j->new_vk, &ps.xf[i].new);
        }
        size_t bufsize = (size_t) (j->sb.layout == JOB_LAYOUT_INPLACE ? j->sb.hotzone : ENGINE_CHUNK);
        uint8_t *buf = NULL;
        uint64_t *hashes = NULL;
        if (r >= 0 && posix_memalign((void **) &buf, 4096, bufsize) != 0)
                r = -ENOMEM;
        if (r >= 0 && j->sb.layout == JOB_LAYOUT_INPLACE &&
            !(hashes = calloc(j->sb.hotzone / JOB_HASH_UNIT + 1, sizeof(uint64_t))))
                r = -ENOMEM;
        if (r >= 0) {
                clock_gettime(CLOCK_MONOTONIC, &ps.t0);
                (void) pass_progress(&ps, engine_done_bytes(&j->sb, &j->ck));
                if (j->ck.phase != JOB_PHASE_FINALIZE)
                        r = j->sb.layout == JOB_LAYOUT_SHIFT ? shift_pass(&ps, buf) : inplace_pass(&ps, buf, hashes);
        }
        if (buf)
                secret_wipe(buf, bufsize);
        free(buf);
        free(hashes);
        for (unsigned i = 0; i < ps.n_workers; i++) {
                xts_free(ps.xf[i].old);
                xts_free(ps.xf[i].new);
        }
        if (ps.dfd >= 0)
                close(ps.dfd);
        return r;
}
