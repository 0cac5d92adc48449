/* SQLite backend of the object store (see store.h).
 *
 * Durability: WAL journal with synchronous=FULL, so every COMMIT fsyncs the WAL
 * before it returns; synchronous=NORMAL would be faster but loses the last commits
 * on power failure, and a KMIP reply that says "created" must never be a lie.
 * To keep that fast, writers do not commit themselves: they queue their row and wait,
 * and one committer thread writes everything queued in a single transaction (group
 * commit), then wakes them all. Readers use a pool of separate connections, which
 * WAL lets run alongside the writer.
 *
 * Gets go first to a read cache of committed rows (store-cache.h), which the
 * committer keeps current: an SQLite read costs a B-tree walk, and after every
 * commit each reader connection drops its page cache and reads the pages again. */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/rand.h>

#include "kms/seal.h"
#include "kms/store-cache.h"
#include "kms/store.h"
#include "shared/log.h"

#define CHECK_ID "vmcrypt-kms:master-key-check"
#define CHECK_TEXT "vmcrypt-kms master key check v1"
#define GROUP_MAX 4096
#define CACHE_ROWS_DEFAULT 65536
/* Checkpoints: the committer wakes the checkpointer once the WAL holds this many
 * frames (about 4 MiB of 4 KiB pages), or it runs once a second anyway. */
#define CKPT_WAKE_FRAMES 1000
/* Rounds in a row whose PASSIVE checkpoint could not copy everything before a
 * RESTART is tried, and the WAL size (bytes) that, seen twice in a row, asks for a
 * TRUNCATE. */
#define CKPT_LAG_ROUNDS 3
#define CKPT_WAL_BOUND (32LL << 20) /* = journal_size_limit, the size a reset WAL keeps */
#define CKPT_BUSY_MS 200

struct ckpt_state {
        unsigned lagging, oversize;
        unsigned long rounds;
        int last_log, last_done;
};

struct pending {
        struct pending *next;
        char id[KMS_ID_MAX];
        char owner[KMS_OWNER_MAX];
        uint32_t object_type, state;
        char name[256];
        bool has_name;
        uint8_t *attrs;
        size_t attrs_len;
        uint8_t *blob;
        size_t blob_len;
        bool done;
        int r;
        /* The read cache's part (commit_group): the entry the id had before, and
         * whether another row of the same group decides the id's entry instead. */
        struct store_cache_row *was;
        bool superseded;
        pthread_cond_t cond; /* the writer waits on its own condition: no herd */
        /* Set for store_put_async: the committer reports here and frees the row;
         * otherwise the writer waits on cond and owns the row. */
        store_put_done_fn *done_fn;
        void *userdata;
};

struct rconn {
        struct rconn *next;
        sqlite3 *db;
        sqlite3_stmt *get;
};

struct sqlite_store {
        struct store base;
        char *path;
        struct secret *master;
        sqlite3 *wdb;
        sqlite3_stmt *put;

        pthread_mutex_t lock;
        pthread_cond_t work;   /* committer: something queued or stopping */
        struct pending *head, *tail;
        bool stopping;
        pthread_t committer;
        bool committer_running;

        pthread_mutex_t pool_lock;
        struct rconn *pool;

        struct store_cache *cache; /* NULL: none */
        store_commit_hook_fn *hook;
        void *hook_data;

        /* Checkpoints (copying the WAL into the database, with an fsync of its own)
         * run in their own thread, so a commit never waits behind one. */
        pthread_t checkpointer;
        bool checkpointer_running;
        pthread_cond_t ckpt_cond;
};

static int sqlite_err(sqlite3 *db, int rc, const char *what) {
        log_debug("sqlite %s: %s", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        switch (rc & 0xff) {
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_CANTOPEN:
        case SQLITE_PERM:
        case SQLITE_READONLY:
                return -EACCES;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
                return -EUCLEAN;
        default:
                return -EIO;
        }
}

static int exec(sqlite3 *db, const char *sql) {
        int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
        return rc == SQLITE_OK ? 0 : sqlite_err(db, rc, sql);
}

static int open_db(const char *path, bool create, sqlite3 **ret) {
        sqlite3 *db = NULL;
        int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
        int rc = sqlite3_open_v2(path, &db, flags, NULL);
        if (rc != SQLITE_OK) {
                int r = sqlite_err(db, rc, "open");
                sqlite3_close(db);
                return r;
        }
        sqlite3_busy_timeout(db, 10000);
        *ret = db;
        return 0;
}

const char *store_object_name(const struct kms_object *o, char *buf, size_t size) {
        const struct kms_attr *a = kms_object_find(o, "Name", 0);
        /* Name is a structure whose first child is Name Value (tag 0x420055, text). */
        if (!a || a->type != KMS_T_STRUCTURE || a->len < 8)
                return NULL;
        const uint8_t *p = a->value;
        if (p[0] != 0x42 || p[1] != 0x00 || p[2] != 0x55 || p[3] != KMS_T_TEXT)
                return NULL;
        size_t n = ((size_t) p[4] << 24) | ((size_t) p[5] << 16) | ((size_t) p[6] << 8) | p[7];
        if (n > a->len - 8 || n + 1 > size)
                return NULL;
        memcpy(buf, p + 8, n);
        buf[n] = 0;
        return buf;
}

/* ---- reads ---- */

static int rconn_get(struct sqlite_store *s, struct rconn **ret) {
        pthread_mutex_lock(&s->pool_lock);
        struct rconn *c = s->pool;
        if (c)
                s->pool = c->next;
        pthread_mutex_unlock(&s->pool_lock);
        if (c) {
                *ret = c;
                return 0;
        }
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        int r = open_db(s->path, false, &c->db);
        if (r < 0) {
                free(c);
                return r;
        }
        int rc = sqlite3_prepare_v3(c->db,
                "SELECT owner, type, state, attrs, sealed FROM objects WHERE id = ?",
                -1, SQLITE_PREPARE_PERSISTENT, &c->get, NULL);
        if (rc != SQLITE_OK) {
                r = sqlite_err(c->db, rc, "prepare get");
                sqlite3_close(c->db);
                free(c);
                return r;
        }
        *ret = c;
        return 0;
}

static void rconn_put(struct sqlite_store *s, struct rconn *c) {
        pthread_mutex_lock(&s->pool_lock);
        c->next = s->pool;
        s->pool = c;
        pthread_mutex_unlock(&s->pool_lock);
}

static void rconn_free(struct rconn *c) {
        sqlite3_finalize(c->get);
        sqlite3_close(c->db);
        free(c);
}

/* Build the object from its columns, wherever they come from (an SQLite row or the
 * cache), unsealing the key material only when asked. */
static int row_to_object(struct sqlite_store *s, const char *id, const struct store_row *v, bool unseal,
                         struct kms_object **ret) {
        _cleanup_(kms_object_freep) struct kms_object *o = kms_object_new();
        if (!o)
                return -ENOMEM;
        snprintf(o->id, sizeof(o->id), "%s", id);
        snprintf(o->owner, sizeof(o->owner), "%s", v->owner);
        o->object_type = v->object_type;
        o->state = v->state;
        int r = kms_attrs_decode(o, v->attrs, v->attrs_len);
        if (r < 0)
                return r;
        if (unseal && v->sealed) {
                r = seal_decrypt(s->master, id, v->sealed, v->sealed_len, &o->key);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(o);
        return 0;
}

/* The columns of st's current row; they point into it until the statement is reset. */
static int sqlite_row(sqlite3_stmt *st, struct store_row *ret) {
        /* Each value's size after its pointer: the order SQLite documents as safe. */
        struct store_row v = {
                .owner = (const char *) sqlite3_column_text(st, 0),
                .object_type = (uint32_t) sqlite3_column_int64(st, 1),
                .state = (uint32_t) sqlite3_column_int64(st, 2),
        };
        v.attrs = sqlite3_column_blob(st, 3);
        v.attrs_len = (size_t) sqlite3_column_bytes(st, 3);
        if (sqlite3_column_type(st, 4) == SQLITE_BLOB) {
                v.sealed = sqlite3_column_blob(st, 4);
                v.sealed_len = (size_t) sqlite3_column_bytes(st, 4);
        }
        /* The column is NOT NULL: no text means SQLite could not allocate it, and an
         * object with no owner must not reach the access checks. */
        if (!v.owner)
                return -ENOMEM;
        *ret = v;
        return 0;
}

static int get_common(struct store *base, const char *id, bool unseal, struct kms_object **ret) {
        struct sqlite_store *s = (struct sqlite_store *) base;
        /* The ticket is taken before the SQLite read below begins: see store-cache.h
         * for why a row read after it may be cached only if no write came between. */
        struct store_cache_ticket ticket;
        _cleanup_(store_cache_row_unrefp) struct store_cache_row *hit = store_cache_get(s->cache, id, &ticket);
        if (hit)
                return row_to_object(s, id, &hit->v, unseal, ret);

        struct rconn *c;
        int r = rconn_get(s, &c);
        if (r < 0)
                return r;
        sqlite3_bind_text(c->get, 1, id, -1, SQLITE_STATIC);
        int rc = sqlite3_step(c->get);
        if (rc == SQLITE_ROW) {
                struct store_row v;
                r = sqlite_row(c->get, &v);
                if (r == 0)
                        r = row_to_object(s, id, &v, unseal, ret);
                /* Only a row that decoded: a bad one keeps failing from disk. */
                if (r == 0 && ticket.valid) {
                        _cleanup_(store_cache_row_unrefp) struct store_cache_row *row = store_cache_row_new(id, &v);
                        if (row)
                                store_cache_fill(s->cache, &ticket, row);
                }
        } else if (rc == SQLITE_DONE)
                r = -ENOENT;
        else
                r = sqlite_err(c->db, rc, "get");
        sqlite3_reset(c->get);
        sqlite3_clear_bindings(c->get);
        rconn_put(s, c);
        return r;
}

static int sq_get(struct store *base, const char *id, struct kms_object **ret) {
        return get_common(base, id, true, ret);
}

static int sq_get_meta(struct store *base, const char *id, struct kms_object **ret) {
        return get_common(base, id, false, ret);
}

static int sq_list(struct store *base, const struct store_filter *f, store_id **ret, size_t *ret_n) {
        struct sqlite_store *s = (struct sqlite_store *) base;
        struct rconn *c;
        int r = rconn_get(s, &c);
        if (r < 0)
                return r;
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(c->db,
                "SELECT id FROM objects WHERE (?1 IS NULL OR owner = ?1) AND (?2 = 0 OR type = ?2) "
                "AND (?3 = 0 OR state = ?3) AND (?4 IS NULL OR name = ?4) ORDER BY seq",
                -1, &st, NULL);
        if (rc != SQLITE_OK) {
                r = sqlite_err(c->db, rc, "prepare list");
                rconn_put(s, c);
                return r;
        }
        if (f->owner)
                sqlite3_bind_text(st, 1, f->owner, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, f->object_type);
        sqlite3_bind_int64(st, 3, f->state);
        if (f->name)
                sqlite3_bind_text(st, 4, f->name, -1, SQLITE_STATIC);
        store_id *ids = NULL;
        size_t n = 0, cap = 0;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                if (n == cap) {
                        cap = cap ? cap * 2 : 16;
                        store_id *t = realloc(ids, cap * sizeof(*ids));
                        if (!t) {
                                r = -ENOMEM;
                                break;
                        }
                        ids = t;
                }
                snprintf(ids[n++], KMS_ID_MAX, "%s", (const char *) sqlite3_column_text(st, 0));
        }
        if (r == 0 && rc != SQLITE_DONE)
                r = sqlite_err(c->db, rc, "list");
        sqlite3_finalize(st);
        rconn_put(s, c);
        if (r < 0) {
                free(ids);
                return r;
        }
        *ret = ids;
        *ret_n = n;
        return 0;
}

static int sq_count(struct store *base, uint64_t *ret) {
        struct sqlite_store *s = (struct sqlite_store *) base;
        struct rconn *c;
        int r = rconn_get(s, &c);
        if (r < 0)
                return r;
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(c->db, "SELECT count(*) FROM objects", -1, &st, NULL);
        if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
                *ret = (uint64_t) sqlite3_column_int64(st, 0);
        else
                r = sqlite_err(c->db, rc, "count");
        sqlite3_finalize(st);
        rconn_put(s, c);
        return r;
}

/* ---- writes: group commit ---- */

/* Fill p from o: the columns, the encoded attributes, the sealed key material. */
static int pending_fill(struct sqlite_store *s, struct pending *p, const struct kms_object *o) {
        snprintf(p->id, sizeof(p->id), "%s", o->id);
        snprintf(p->owner, sizeof(p->owner), "%s", o->owner);
        p->object_type = o->object_type;
        p->state = o->state;
        p->has_name = store_object_name(o, p->name, sizeof(p->name)) != NULL;
        int r = kms_attrs_encode(o, &p->attrs, &p->attrs_len);
        if (r < 0)
                return r;
        if (o->key) {
                r = seal_encrypt(s->master, o->id, o->key, &p->blob, &p->blob_len);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The attributes are metadata and the key material is sealed, so a plain free. */
static void pending_free(struct pending *p) {
        free(p->attrs);
        free(p->blob);
        free(p);
}

/* Under s->lock: queue p for the committer, or -ESHUTDOWN once the store stops. */
static int pending_queue(struct sqlite_store *s, struct pending *p) {
        if (s->stopping)
                return -ESHUTDOWN;
        if (s->tail)
                s->tail->next = p;
        else
                s->head = p;
        s->tail = p;
        pthread_cond_signal(&s->work);
        return 0;
}

static int bind_pending(struct sqlite_store *s, struct pending *p) {
        sqlite3_stmt *st = s->put;
        sqlite3_bind_text(st, 1, p->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, p->owner, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, p->object_type);
        sqlite3_bind_int64(st, 4, p->state);
        if (p->has_name)
                sqlite3_bind_text(st, 5, p->name, -1, SQLITE_STATIC);
        else
                sqlite3_bind_null(st, 5);
        sqlite3_bind_blob(st, 6, p->attrs_len ? p->attrs : (const uint8_t *) "", (int) p->attrs_len, SQLITE_STATIC);
        if (p->blob)
                sqlite3_bind_blob(st, 7, p->blob, (int) p->blob_len, SQLITE_STATIC);
        else
                sqlite3_bind_null(st, 7);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return rc == SQLITE_DONE ? 0 : sqlite_err(s->wdb, rc, "put");
}

/* Per id of the group, leave one row not superseded: the last one whose statement
 * succeeded, which is what a COMMIT leaves on disk, or else the first, which holds
 * the id's old entry. false if out of memory (then nothing is known). */
static bool mark_superseded(struct pending *list, size_t n) {
        if (n < 2)
                return true;
        size_t size = 1;
        while (size < 2 * n)
                size <<= 1;
        _cleanup_(freep) struct pending **set = calloc(size, sizeof(*set));
        if (!set)
                return false;
        for (struct pending *p = list; p; p = p->next) {
                size_t i = store_cache_hash(p->id) & (size - 1);
                while (set[i] && strcmp(set[i]->id, p->id) != 0)
                        i = (i + 1) & (size - 1);
                if (!set[i])
                        set[i] = p;
                else if (p->r < 0)
                        p->superseded = true;
                else {
                        set[i]->superseded = true;
                        set[i] = p;
                }
        }
        return true;
}

/* After the COMMIT (r: its result, or BEGIN's): end every row's cache write. A row
 * that is durable now is cached; a row whose own statement failed changed nothing,
 * so the entry its id had stays; anything else leaves the id uncached, and the next
 * Get reads it from disk. This runs before any writer is told its row is done, so
 * a writer reads its own write at once. */
static void cache_committed(struct sqlite_store *s, struct pending *list, size_t n, int r) {
        bool known = s->cache && mark_superseded(list, n);
        for (struct pending *p = list; p; p = p->next) {
                _cleanup_(store_cache_row_unrefp) struct store_cache_row *was = TAKE_PTR(p->was);
                _cleanup_(store_cache_row_unrefp) struct store_cache_row *row = NULL;
                if (known && !p->superseded) {
                        if (p->r < 0)
                                row = TAKE_PTR(was);
                        else if (r == 0) {
                                struct store_row v = {
                                        .owner = p->owner,
                                        .object_type = p->object_type,
                                        .state = p->state,
                                        .attrs = p->attrs,
                                        .attrs_len = p->attrs_len,
                                        .sealed = p->blob,
                                        .sealed_len = p->blob_len,
                                };
                                row = store_cache_row_new(p->id, &v); /* NULL: the id stays uncached */
                        }
                }
                store_cache_end_write(s->cache, p->id, row);
        }
}

static void commit_group(struct sqlite_store *s, struct pending *list, size_t n) {
        /* From here until cache_committed these ids have no entry and cannot get one
         * (see store-cache.h). Before BEGIN, not just before COMMIT: a statement that
         * fails badly can end the transaction, and the statements after it would then
         * commit on their own. */
        for (struct pending *p = list; p; p = p->next)
                p->was = store_cache_begin_write(s->cache, p->id);
        int r = exec(s->wdb, "BEGIN IMMEDIATE");
        if (r == 0) {
                for (struct pending *p = list; p; p = p->next)
                        p->r = bind_pending(s, p);
                /* After the statements, so that the hook's own wait (an fsync)
                 * overlaps with nothing of ours and covers every row's audit line. */
                if (s->hook)
                        r = s->hook(s->hook_data);
                if (r == 0)
                        r = exec(s->wdb, "COMMIT");
                if (r < 0)
                        (void) exec(s->wdb, "ROLLBACK");
        }
        cache_committed(s, list, n, r);
        struct pending *async = NULL;
        pthread_mutex_lock(&s->lock);
        for (struct pending *p = list, *next; p; p = next) {
                next = p->next; /* p may vanish as soon as it is signalled */
                if (r < 0)
                        p->r = r;
                if (p->done_fn) {
                        p->next = async;
                        async = p;
                        continue;
                }
                p->done = true;
                pthread_cond_signal(&p->cond);
        }
        pthread_mutex_unlock(&s->lock);
        /* Outside the lock: a callback takes its caller's own locks. */
        for (struct pending *p = async, *next; p; p = next) {
                next = p->next;
                p->done_fn(p->r, p->userdata);
                pending_free(p);
        }
}

static void *committer_main(void *arg) {
        struct sqlite_store *s = arg;
        pthread_mutex_lock(&s->lock);
        for (;;) {
                while (!s->head && !s->stopping)
                        pthread_cond_wait(&s->work, &s->lock);
                if (!s->head && s->stopping)
                        break;
                /* Take up to GROUP_MAX rows; the rest go in the next transaction. */
                struct pending *list = s->head, *last = list;
                size_t n = 1;
                while (last->next && n < GROUP_MAX) {
                        last = last->next;
                        n++;
                }
                s->head = last->next;
                if (!s->head)
                        s->tail = NULL;
                last->next = NULL;
                pthread_mutex_unlock(&s->lock);
                commit_group(s, list, n);
                pthread_mutex_lock(&s->lock);
        }
        pthread_mutex_unlock(&s->lock);
        return NULL;
}

/* The writer connection, after each COMMIT: wake the checkpointer early once the
 * WAL holds CKPT_WAKE_FRAMES, instead of letting it grow for the rest of a second
 * under a heavy write load. Without s->lock, which rotation holds around its
 * COMMIT: a wake-up lost to the race only waits for the next second. */
static int on_wal_commit(void *arg, sqlite3 *db, const char *name, int frames) {
        (void) db;
        (void) name;
        struct sqlite_store *s = arg;
        if (frames >= CKPT_WAKE_FRAMES)
                pthread_cond_signal(&s->ckpt_cond);
        return SQLITE_OK;
}

static off_t wal_size(const struct sqlite_store *s) {
        char p[4096];
        struct stat st;
        if ((size_t) snprintf(p, sizeof(p), "%s-wal", s->path) >= sizeof(p) || stat(p, &st) < 0)
                return 0;
        return st.st_size;
}

/* One round. A PASSIVE checkpoint copies what it can without waiting for anyone,
 * but that alone does not bound the WAL: the file only starts over (from its first
 * frame) when a commit finds every frame copied and no reader on the WAL, and under
 * a steady write load the next commit always comes before the copy ends, so the WAL
 * grew by every commit for ever. So once the WAL holds CKPT_WAKE_FRAMES, a RESTART
 * follows the PASSIVE copy: it holds the next commit off for as long as it takes to
 * copy the few frames added meanwhile and for readers to leave the WAL (bounded by
 * the busy timeout), and that commit starts the WAL over. The frame counts are
 * checked too: when copying lags for several rounds (a reader holds an old snapshot)
 * a RESTART is tried; a file that stays over its bound is cut with TRUNCATE. */
static void checkpoint_round(struct sqlite_store *s, sqlite3 *db, struct ckpt_state *st) {
        int log_frames = -1, done_frames = -1;
        int rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log_frames, &done_frames);
        if (rc == SQLITE_OK && log_frames >= 0 && done_frames < log_frames)
                st->lagging++;
        else if (rc == SQLITE_OK)
                st->lagging = 0;
        off_t size = wal_size(s);
        st->oversize = size > CKPT_WAL_BOUND ? st->oversize + 1 : 0;
        int mode = st->oversize >= 2 ? SQLITE_CHECKPOINT_TRUNCATE
                 : st->lagging >= CKPT_LAG_ROUNDS || log_frames >= CKPT_WAKE_FRAMES ? SQLITE_CHECKPOINT_RESTART : -1;
        if (mode >= 0) {
                rc = sqlite3_wal_checkpoint_v2(db, NULL, mode, &log_frames, &done_frames);
                log_debug("WAL checkpoint %s: %s, %d of %d frames copied, WAL was %lld bytes",
                          mode == SQLITE_CHECKPOINT_TRUNCATE ? "TRUNCATE" : "RESTART",
                          rc == SQLITE_OK ? "done" : sqlite3_errstr(rc), done_frames, log_frames, (long long) size);
                if (rc == SQLITE_OK && done_frames == log_frames) {
                        st->lagging = 0;
                        if (mode == SQLITE_CHECKPOINT_TRUNCATE)
                                st->oversize = 0;
                }
        }
        st->rounds++;
        st->last_log = log_frames;
        st->last_done = done_frames;
}

static void *checkpointer_main(void *arg) {
        struct sqlite_store *s = arg;
        sqlite3 *db = NULL;
        if (open_db(s->path, false, &db) < 0)
                return NULL;
        /* A connection learns that the database is in WAL mode, and opens the WAL,
         * only when it first reads it: until then sqlite3_wal_checkpoint_v2 on it
         * checkpoints nothing and says so with -1 frame counts (this thread used to
         * ignore them, and the WAL grew to 1.1 GB over 530k Creates while the
         * database stayed at 4 KiB). Readers and the writer are never waited for
         * long: a RESTART or TRUNCATE that would wait gives up and comes again. */
        sqlite3_busy_timeout(db, CKPT_BUSY_MS);
        if (exec(db, "SELECT count(*) FROM meta") < 0)
                log_warning("WAL checkpointer cannot read the database %s; the WAL may grow", s->path);
        struct ckpt_state st = {};
        pthread_mutex_lock(&s->lock);
        while (!s->stopping) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += 1;
                pthread_cond_timedwait(&s->ckpt_cond, &s->lock, &ts);
                if (s->stopping)
                        break;
                pthread_mutex_unlock(&s->lock);
                checkpoint_round(s, db, &st);
                pthread_mutex_lock(&s->lock);
        }
        pthread_mutex_unlock(&s->lock);
        sqlite3_close(db);
        return NULL;
}

static int sq_put(struct store *base, const struct kms_object *o) {
        struct sqlite_store *s = (struct sqlite_store *) base;
        struct pending p = { .r = 0 };
        int r = pending_fill(s, &p, o);
        if (r < 0)
                goto out;
        pthread_cond_init(&p.cond, NULL);
        pthread_mutex_lock(&s->lock);
        r = pending_queue(s, &p);
        if (r == 0) {
                while (!p.done)
                        pthread_cond_wait(&p.cond, &s->lock);
                r = p.r;
        }
        pthread_mutex_unlock(&s->lock);
        pthread_cond_destroy(&p.cond);
out:
        free(p.attrs);
        free(p.blob);
        return r;
}

static int sq_put_async(struct store *base, const struct kms_object *o, store_put_done_fn *done, void *userdata) {
        struct sqlite_store *s = (struct sqlite_store *) base;
        struct pending *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->done_fn = done;
        p->userdata = userdata;
        int r = pending_fill(s, p, o);
        if (r == 0) {
                pthread_mutex_lock(&s->lock);
                r = pending_queue(s, p);
                pthread_mutex_unlock(&s->lock);
        }
        if (r < 0)
                pending_free(p);
        return r;
}

/* ---- master key ---- */

static int meta_get(sqlite3 *db, const char *k, uint8_t **ret, size_t *ret_len) {
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(db, "SELECT v FROM meta WHERE k = ?", -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sqlite_err(db, rc, "meta");
        sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
        int r;
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                size_t n = (size_t) sqlite3_column_bytes(st, 0);
                uint8_t *v = malloc(n ? n : 1);
                if (v) {
                        memcpy(v, sqlite3_column_blob(st, 0), n);
                        *ret = v;
                        *ret_len = n;
                        r = 0;
                } else
                        r = -ENOMEM;
        } else
                r = rc == SQLITE_DONE ? -ENOENT : sqlite_err(db, rc, "meta");
        sqlite3_finalize(st);
        return r;
}

static int meta_set(sqlite3 *db, const char *k, const uint8_t *v, size_t n) {
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)", -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sqlite_err(db, rc, "meta");
        sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 2, v, (int) n, SQLITE_STATIC);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        return rc == SQLITE_DONE ? 0 : sqlite_err(db, rc, "meta");
}

/* Turn a master_source into the key itself, creating a fresh salt when asked. */
static int derive_master(sqlite3 *db, const struct master_source *m, bool new_salt, struct secret **ret) {
        if (m->key) {
                if (m->key->size != SEAL_KEY_SIZE)
                        return -EINVAL;
                *ret = secret_new_copy(m->key->data, m->key->size);
                return *ret ? 0 : -ENOMEM;
        }
        if (!m->passphrase)
                return -EINVAL;
        uint8_t salt[SEAL_SALT_SIZE];
        struct seal_kdf kdf = SEAL_KDF_CURRENT;
        if (new_salt) {
                if (RAND_bytes(salt, sizeof(salt)) != 1)
                        return -EIO;
                int r = meta_set(db, "kdf-salt", salt, sizeof(salt));
                if (r < 0)
                        return r;
                char text[64];
                int n = seal_kdf_format(&kdf, text, sizeof(text));
                if (n < 0)
                        return n;
                r = meta_set(db, "kdf", (const uint8_t *) text, (size_t) n);
                if (r < 0)
                        return r;
        } else {
                _cleanup_(freep) uint8_t *v = NULL;
                size_t n;
                int r = meta_get(db, "kdf-salt", &v, &n);
                if (r == -ENOENT)
                        return -EKEYREJECTED; /* store was created with a key file */
                if (r < 0)
                        return r;
                if (n != sizeof(salt))
                        return -EUCLEAN;
                memcpy(salt, v, sizeof(salt));
                /* The cost the store was sealed with; stores from before costs were
                 * recorded have none and used the legacy one. */
                _cleanup_(freep) uint8_t *c = NULL;
                r = meta_get(db, "kdf", &c, &n);
                if (r == -ENOENT)
                        kdf = SEAL_KDF_LEGACY;
                else if (r < 0)
                        return r;
                else if (seal_kdf_parse((const char *) c, n, &kdf) < 0)
                        return -EUCLEAN;
                if (m->ret_weak_kdf)
                        *m->ret_weak_kdf = kdf.log2_n < SEAL_KDF_CURRENT.log2_n;
        }
        return seal_key_from_passphrase(m->passphrase, salt, &kdf, ret);
}

static int write_check(sqlite3 *db, const struct secret *master) {
        _cleanup_(secret_freep) struct secret *t = secret_new_copy(CHECK_TEXT, strlen(CHECK_TEXT));
        if (!t)
                return -ENOMEM;
        _cleanup_(freep) uint8_t *blob = NULL;
        size_t n;
        int r = seal_encrypt(master, CHECK_ID, t, &blob, &n);
        if (r < 0)
                return r;
        return meta_set(db, "check", blob, n);
}

static int verify_check(sqlite3 *db, const struct secret *master) {
        _cleanup_(freep) uint8_t *blob = NULL;
        size_t n;
        int r = meta_get(db, "check", &blob, &n);
        if (r < 0)
                return r;
        _cleanup_(secret_freep) struct secret *t = NULL;
        r = seal_decrypt(master, CHECK_ID, blob, n, &t);
        if (r == -EBADMSG)
                return -EKEYREJECTED;
        return r;
}

static int sq_rotate(struct store *base, const struct master_source *m) {
        struct sqlite_store *s = (struct sqlite_store *) base;
        /* Runs under the writer connection while no committer work is pending: the
         * daemon is not serving when rotate-master-key runs (it takes the store). */
        _cleanup_(secret_freep) struct secret *nk = NULL;
        pthread_mutex_lock(&s->lock);
        /* Every sealed blob changes: the cache stays empty until the new key is in
         * place, as a commit keeps its own rows out (see store-cache.h). */
        store_cache_begin_write_all(s->cache);
        int r = exec(s->wdb, "BEGIN IMMEDIATE");
        if (r < 0)
                goto out_unlock;
        r = derive_master(s->wdb, m, true, &nk);
        if (r < 0)
                goto rollback;
        if (m->key)
                (void) exec(s->wdb, "DELETE FROM meta WHERE k IN ('kdf-salt', 'kdf')");

        sqlite3_stmt *sel = NULL, *upd = NULL;
        if (sqlite3_prepare_v2(s->wdb, "SELECT id, sealed FROM objects WHERE sealed IS NOT NULL", -1, &sel, NULL) != SQLITE_OK ||
            sqlite3_prepare_v2(s->wdb, "UPDATE objects SET sealed = ? WHERE id = ?", -1, &upd, NULL) != SQLITE_OK) {
                r = sqlite_err(s->wdb, SQLITE_ERROR, "prepare rotate");
                sqlite3_finalize(sel);
                sqlite3_finalize(upd);
                goto rollback;
        }
        int rc;
        while (r == 0 && (rc = sqlite3_step(sel)) == SQLITE_ROW) {
                const char *id = (const char *) sqlite3_column_text(sel, 0);
                _cleanup_(secret_freep) struct secret *k = NULL;
                r = seal_decrypt(s->master, id, sqlite3_column_blob(sel, 1), (size_t) sqlite3_column_bytes(sel, 1), &k);
                if (r < 0)
                        break;
                _cleanup_(freep) uint8_t *blob = NULL;
                size_t n;
                r = seal_encrypt(nk, id, k, &blob, &n);
                if (r < 0)
                        break;
                sqlite3_bind_blob(upd, 1, blob, (int) n, SQLITE_STATIC);
                sqlite3_bind_text(upd, 2, id, -1, SQLITE_STATIC);
                rc = sqlite3_step(upd);
                sqlite3_reset(upd);
                if (rc != SQLITE_DONE)
                        r = sqlite_err(s->wdb, rc, "rotate update");
        }
        sqlite3_finalize(sel);
        sqlite3_finalize(upd);
        if (r < 0)
                goto rollback;
        r = write_check(s->wdb, nk);
        if (r < 0)
                goto rollback;
        r = exec(s->wdb, "COMMIT");
        if (r < 0)
                goto rollback;
        secret_free(s->master);
        s->master = TAKE_PTR(nk);
        store_cache_end_write_all(s->cache);
        pthread_mutex_unlock(&s->lock);
        return 0;
rollback:
        (void) exec(s->wdb, "ROLLBACK");
out_unlock:
        store_cache_end_write_all(s->cache);
        pthread_mutex_unlock(&s->lock);
        return r;
}

static void sq_free(struct store *base) {
        struct sqlite_store *s = (struct sqlite_store *) base;
        pthread_mutex_lock(&s->lock);
        s->stopping = true;
        pthread_cond_signal(&s->work);
        pthread_cond_signal(&s->ckpt_cond);
        pthread_mutex_unlock(&s->lock);
        if (s->committer_running)
                pthread_join(s->committer, NULL);
        if (s->checkpointer_running)
                pthread_join(s->checkpointer, NULL);
        while (s->pool) {
                struct rconn *c = s->pool;
                s->pool = c->next;
                rconn_free(c);
        }
        store_cache_free(s->cache);
        sqlite3_finalize(s->put);
        if (s->wdb) {
                /* Fold the WAL back into the database so a clean stop leaves one file. */
                (void) sqlite3_wal_checkpoint_v2(s->wdb, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
                sqlite3_close(s->wdb);
        }
        secret_free(s->master);
        pthread_mutex_destroy(&s->lock);
        pthread_mutex_destroy(&s->pool_lock);
        pthread_cond_destroy(&s->work);
        pthread_cond_destroy(&s->ckpt_cond);
        free(s->path);
        free(s);
}

static void sq_set_commit_hook(struct store *base, store_commit_hook_fn *fn, void *userdata) {
        struct sqlite_store *s = (struct sqlite_store *) base;
        pthread_mutex_lock(&s->lock);
        s->hook = fn;
        s->hook_data = userdata;
        pthread_mutex_unlock(&s->lock);
}

static const struct store_ops sqlite_ops = {
        .put = sq_put,
        .put_async = sq_put_async,
        .get = sq_get,
        .get_meta = sq_get_meta,
        .list = sq_list,
        .rotate = sq_rotate,
        .count = sq_count,
        .set_commit_hook = sq_set_commit_hook,
        .free = sq_free,
};

static const char schema[] =
        "CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v BLOB);"
        "CREATE TABLE IF NOT EXISTS objects ("
        "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  id TEXT UNIQUE NOT NULL, owner TEXT NOT NULL, type INTEGER NOT NULL,"
        "  state INTEGER NOT NULL, name TEXT, attrs BLOB NOT NULL, sealed BLOB);"
        "CREATE INDEX IF NOT EXISTS objects_owner ON objects (owner, type, state);"
        "CREATE INDEX IF NOT EXISTS objects_name ON objects (name);";

int store_sqlite_open_cache(const char *path, const struct master_source *master, size_t cache_rows,
                            struct store **ret) {
        struct sqlite_store *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->base.ops = &sqlite_ops;
        pthread_mutex_init(&s->lock, NULL);
        pthread_mutex_init(&s->pool_lock, NULL);
        pthread_cond_init(&s->work, NULL);
        pthread_cond_init(&s->ckpt_cond, NULL);
        _cleanup_(store_freep) struct store *st = &s->base;

        s->path = strdup(path);
        if (!s->path)
                return -ENOMEM;
        int r = store_cache_new(cache_rows, &s->cache);
        if (r < 0)
                return r;
        /* Owner-only from the start (SQLite gives its -wal and -shm files the same
         * mode): the file holds sealed keys and every object's metadata. */
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return negative_errno();
        close(fd);
        r = open_db(path, true, &s->wdb);
        if (r < 0)
                return r;
        r = exec(s->wdb, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA wal_autocheckpoint=0; "
                          "PRAGMA journal_size_limit=33554432;");
        if (r < 0)
                return r;
        r = exec(s->wdb, schema);
        if (r < 0)
                return r;

        _cleanup_(freep) uint8_t *chk = NULL;
        size_t n;
        r = meta_get(s->wdb, "check", &chk, &n);
        if (r == -ENOENT) {
                /* A new store: bind it to this master key. */
                r = exec(s->wdb, "BEGIN IMMEDIATE");
                if (r < 0)
                        return r;
                r = derive_master(s->wdb, master, true, &s->master);
                if (r == 0)
                        r = write_check(s->wdb, s->master);
                if (r == 0)
                        r = exec(s->wdb, "COMMIT");
                if (r < 0) {
                        (void) exec(s->wdb, "ROLLBACK");
                        return r;
                }
        } else if (r < 0) {
                return r;
        } else {
                r = derive_master(s->wdb, master, false, &s->master);
                if (r < 0)
                        return r;
                r = verify_check(s->wdb, s->master);
                if (r < 0)
                        return r;
        }

        int rc = sqlite3_prepare_v3(s->wdb,
                "INSERT INTO objects (id, owner, type, state, name, attrs, sealed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
                "ON CONFLICT(id) DO UPDATE SET owner = ?2, type = ?3, state = ?4, name = ?5, attrs = ?6, sealed = ?7",
                -1, SQLITE_PREPARE_PERSISTENT, &s->put, NULL);
        if (rc != SQLITE_OK)
                return sqlite_err(s->wdb, rc, "prepare put");
        sqlite3_wal_hook(s->wdb, on_wal_commit, s);

        if (pthread_create(&s->committer, NULL, committer_main, s) != 0)
                return -EAGAIN;
        s->committer_running = true;
        if (pthread_create(&s->checkpointer, NULL, checkpointer_main, s) != 0)
                return -EAGAIN;
        s->checkpointer_running = true;
        *ret = TAKE_PTR(st);
        return 0;
}

int store_sqlite_open(const char *path, const struct master_source *master, struct store **ret) {
        return store_sqlite_open_cache(path, master, CACHE_ROWS_DEFAULT, ret);
}
