/* The SQL seam on SQLite: see db.h. WAL with synchronous=FULL: a job state the
 * API has answered survives a power cut. */
#include <errno.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fleet/db.h"
#include "shared/macro.h"

#define STMT_CACHE 64

struct db_sqlite {
        struct fleet_db db;
        sqlite3 *h;
        /* Prepared statements by their SQL text's address: every statement is a
         * string literal in store.c, and preparing costs more than most of them
         * take to run. */
        struct { const char *sql; sqlite3_stmt *st; } cache[STMT_CACHE];
};

static sqlite3 *handle(struct fleet_db *db) {
        return ((struct db_sqlite *) db)->h;
}

static int fail(struct fleet_db *db, struct error *err, const char *what) {
        return error_set(err, -EIO, "manager database: %s: %s; check the disk and the database file", what,
                               sqlite3_errmsg(handle(db)));
}

static int bind_va(sqlite3_stmt *st, const char *fmt, va_list ap) {
        for (int i = 0; fmt && fmt[i]; i++) {
                int rc;
                if (fmt[i] == 's') {
                        const char *v = va_arg(ap, const char *);
                        rc = v ? sqlite3_bind_text(st, i + 1, v, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, i + 1);
                } else
                        rc = sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
                if (rc != SQLITE_OK)
                        return -EIO;
        }
        return 0;
}

/* A ready statement for sql; release() gives it back. */
static sqlite3_stmt *acquire(struct fleet_db *db, const char *sql) {
        struct db_sqlite *d = (struct db_sqlite *) db;
        size_t slot = ((uintptr_t) sql >> 3) % STMT_CACHE;
        if (d->cache[slot].sql == sql && d->cache[slot].st) {
                sqlite3_stmt *st = d->cache[slot].st;
                d->cache[slot].st = NULL; /* in use: a nested call prepares its own */
                return st;
        }
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v3(d->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
                return NULL;
        return st;
}

static void release(struct fleet_db *db, const char *sql, sqlite3_stmt *st) {
        struct db_sqlite *d = (struct db_sqlite *) db;
        size_t slot = ((uintptr_t) sql >> 3) % STMT_CACHE;
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        if (d->cache[slot].st && d->cache[slot].sql != sql) {
                sqlite3_finalize(d->cache[slot].st);
                d->cache[slot].st = NULL;
        }
        if (!d->cache[slot].st) {
                d->cache[slot].sql = sql;
                d->cache[slot].st = st;
        } else
                sqlite3_finalize(st);
}

static int db_exec(struct fleet_db *db, struct error *err, const char *sql, const char *fmt, va_list ap) {
        sqlite3_stmt *st = acquire(db, sql);
        if (!st)
                return fail(db, err, "prepare");
        int r = bind_va(st, fmt, ap);
        int rc = r == 0 ? sqlite3_step(st) : SQLITE_ERROR;
        while (rc == SQLITE_ROW)
                rc = sqlite3_step(st);
        if (rc != SQLITE_DONE) {
                r = fail(db, err, "write");
                release(db, sql, st);
                return r;
        }
        release(db, sql, st);
        return sqlite3_changes(handle(db));
}

static int db_query(struct fleet_db *db, struct error *err, json_t **ret, const char *sql, const char *fmt,
                    va_list ap) {
        sqlite3_stmt *st = acquire(db, sql);
        if (!st)
                return fail(db, err, "prepare");
        int r = bind_va(st, fmt, ap);
        json_t *rows = json_array();
        int rc = SQLITE_ERROR;
        while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
                json_t *o = json_object();
                for (int c = 0; c < sqlite3_column_count(st); c++) {
                        const char *name = sqlite3_column_name(st, c);
                        switch (sqlite3_column_type(st, c)) {
                        case SQLITE_INTEGER:
                                json_object_set_new(o, name, json_integer(sqlite3_column_int64(st, c)));
                                break;
                        case SQLITE_FLOAT:
                                json_object_set_new(o, name, json_real(sqlite3_column_double(st, c)));
                                break;
                        case SQLITE_NULL:
                                json_object_set_new(o, name, json_null());
                                break;
                        default: {
                                const char *t = (const char *) sqlite3_column_text(st, c);
                                if (strcmp(name, "data") == 0) {
                                        json_t *d = json_loads(t ? t : "{}", 0, NULL);
                                        if (json_is_object(d))
                                                json_object_update_missing(o, d);
                                        json_decref(d);
                                } else
                                        json_object_set_new(o, name, json_string(t ? t : ""));
                        }
                        }
                }
                json_array_append_new(rows, o);
        }
        if (r < 0 || rc != SQLITE_DONE) {
                json_decref(rows);
                r = fail(db, err, "read");
                release(db, sql, st);
                return r;
        }
        release(db, sql, st);
        *ret = rows;
        return 0;
}

static int db_script(struct fleet_db *db, struct error *err, const char *sql) {
        return sqlite3_exec(handle(db), sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : fail(db, err, "statement");
}

static void db_close(struct fleet_db *db) {
        struct db_sqlite *d = (struct db_sqlite *) db;
        for (size_t i = 0; i < STMT_CACHE; i++)
                sqlite3_finalize(d->cache[i].st);
        sqlite3_close(handle(db));
        free(db);
}

static const struct fleet_db_ops ops = {
        .exec = db_exec, .query = db_query, .script = db_script, .close = db_close,
};

int fleet_db_open_sqlite(const char *path, struct fleet_db **ret, struct error *err) {
        struct db_sqlite *d = calloc(1, sizeof(*d));
        if (!d)
                return error_set(err, -ENOMEM, "out of memory");
        d->db.kind = FLEET_DB_SQLITE;
        d->db.ops = &ops;
        if (sqlite3_open_v2(path, &d->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOFOLLOW, NULL) !=
            SQLITE_OK) {
                int r = error_set(err, -EIO, "cannot open the manager database %s: %s", path,
                                        d->h ? sqlite3_errmsg(d->h) : "out of memory");
                db_close(&d->db);
                return r;
        }
        sqlite3_busy_timeout(d->h, 10000);
        if (sqlite3_exec(d->h, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;", NULL,
                         NULL, NULL) != SQLITE_OK) {
                int r = fail(&d->db, err, "setup");
                db_close(&d->db);
                return r;
        }
        *ret = &d->db;
        return 0;
}
