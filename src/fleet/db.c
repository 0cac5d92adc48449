/* The SQL seam's dispatch: see db.h. */
#include "fleet/db.h"

#include <string.h>

int fleet_db_open(const char *target, struct fleet_db **ret, struct error *err) {
        if (strncmp(target, "postgresql://", 13) == 0 || strncmp(target, "postgres://", 11) == 0)
                return fleet_db_open_postgresql(target, ret, err);
        return fleet_db_open_sqlite(target, ret, err);
}

void fleet_db_close(struct fleet_db *db) {
        if (db)
                db->ops->close(db);
}

int fleet_db_exec(struct fleet_db *db, struct error *err, const char *sql, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = db->ops->exec(db, err, sql, fmt, ap);
        va_end(ap);
        return r;
}

int fleet_db_query(struct fleet_db *db, struct error *err, json_t **ret, const char *sql, const char *fmt,
                   ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = db->ops->query(db, err, ret, sql, fmt, ap);
        va_end(ap);
        return r;
}

int fleet_db_script(struct fleet_db *db, struct error *err, const char *sql) {
        return db->ops->script(db, err, sql);
}

int fleet_db_begin(struct fleet_db *db, struct error *err) {
        int r = fleet_db_script(db, err, db->kind == FLEET_DB_SQLITE ? "BEGIN IMMEDIATE" : "BEGIN");
        /* One writer at a time across every manager on the database, as SQLite has
         * it by nature. */
        if (r == 0 && db->kind == FLEET_DB_POSTGRESQL) {
                r = fleet_db_script(db, err, "SELECT pg_advisory_xact_lock(7305180001)");
                if (r < 0)
                        (void) fleet_db_script(db, NULL, "ROLLBACK");
        }
        return r;
}

int fleet_db_commit(struct fleet_db *db, struct error *err) {
        int r = fleet_db_script(db, err, "COMMIT");
        if (r < 0)
                (void) fleet_db_script(db, NULL, "ROLLBACK");
        return r;
}

int fleet_db_rollback(struct fleet_db *db, int r) {
        (void) fleet_db_script(db, NULL, "ROLLBACK");
        return r;
}
