/* The store's SQL seam: one small interface over SQLite and PostgreSQL, so that
 * store.c holds every query once. Statements use '?' placeholders; arguments are
 * described by fmt: 's' text (NULL binds NULL), 'i' int64. Results come as JSON
 * arrays of objects named by the columns; a column called "data" holds a JSON
 * object whose members join the row's. Write transactions are serialized (SQLite:
 * BEGIN IMMEDIATE; PostgreSQL: a transaction-scoped advisory lock), which is what
 * makes a job claimed by one of several managers sharing a database run once. */
#pragma once

#include <jansson.h>
#include <stdarg.h>

#include "fleet/fleet.h"

enum fleet_db_kind { FLEET_DB_SQLITE = 0, FLEET_DB_POSTGRESQL };

struct fleet_db;

struct fleet_db_ops {
        int (*exec)(struct fleet_db *db, struct error *err, const char *sql, const char *fmt, va_list ap);
        int (*query)(struct fleet_db *db, struct error *err, json_t **ret, const char *sql, const char *fmt,
                     va_list ap);
        int (*script)(struct fleet_db *db, struct error *err, const char *sql);
        void (*close)(struct fleet_db *db);
};

struct fleet_db {
        enum fleet_db_kind kind;
        const struct fleet_db_ops *ops;
};

/* target: a PostgreSQL URI (postgresql://...) or a SQLite file path. */
int fleet_db_open(const char *target, struct fleet_db **ret, struct error *err);
int fleet_db_open_sqlite(const char *path, struct fleet_db **ret, struct error *err);
int fleet_db_open_postgresql(const char *uri, struct fleet_db **ret, struct error *err);
void fleet_db_close(struct fleet_db *db);

/* A statement without rows: the number of rows it changed. */
int fleet_db_exec(struct fleet_db *db, struct error *err, const char *sql, const char *fmt, ...);
/* A statement with rows, as a JSON array. */
int fleet_db_query(struct fleet_db *db, struct error *err, json_t **ret, const char *sql, const char *fmt,
                   ...);
/* Several statements without arguments (a migration). */
int fleet_db_script(struct fleet_db *db, struct error *err, const char *sql);
int fleet_db_begin(struct fleet_db *db, struct error *err);
int fleet_db_commit(struct fleet_db *db, struct error *err);
/* Roll back and return r. */
int fleet_db_rollback(struct fleet_db *db, int r);
