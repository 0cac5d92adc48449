/* The SQL seam on PostgreSQL (libpq): see db.h. Arguments travel as text
 * parameters, never inside the SQL; '?' placeholders become $1, $2, ... */
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet/db.h"
#include "shared/macro.h"

#define MAX_PARAMS 16

/* Type OIDs of the columns the store reads (pg_type.h). */
enum { OID_BOOL = 16, OID_INT8 = 20, OID_INT2 = 21, OID_INT4 = 23, OID_FLOAT4 = 700, OID_FLOAT8 = 701,
       OID_NUMERIC = 1700 };

struct db_pg {
        struct fleet_db db;
        PGconn *conn;
};

static PGconn *conn(struct fleet_db *db) {
        return ((struct db_pg *) db)->conn;
}

static int fail(struct fleet_db *db, struct error *err, const char *what, PGresult *res) {
        const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(conn(db));
        char line[300];
        snprintf(line, sizeof(line), "%s", msg && *msg ? msg : "unknown error");
        line[strcspn(line, "\n")] = 0;
        int r = error_set(err, PQstatus(conn(db)) == CONNECTION_OK ? -EIO : -ECONNRESET,
                                "manager database (PostgreSQL): %s: %s", what, line);
        PQclear(res);
        return r;
}

struct params {
        char sql[4096];
        int n;
        const char *values[MAX_PARAMS];
        char ints[MAX_PARAMS][24];
};

static int prepare(const char *sql, const char *fmt, va_list ap, struct params *p) {
        size_t o = 0;
        int k = 0;
        for (const char *s = sql; *s; s++) {
                if (o + 8 >= sizeof(p->sql))
                        return -E2BIG;
                if (*s == '?')
                        o += (size_t) snprintf(p->sql + o, sizeof(p->sql) - o, "$%d", ++k);
                else
                        p->sql[o++] = *s;
        }
        p->sql[o] = 0;
        p->n = fmt ? (int) strlen(fmt) : 0;
        if (p->n != k || p->n > MAX_PARAMS)
                return -EINVAL;
        for (int i = 0; i < p->n; i++) {
                if (fmt[i] == 's')
                        p->values[i] = va_arg(ap, const char *);
                else {
                        snprintf(p->ints[i], sizeof(p->ints[i]), "%" PRId64, va_arg(ap, int64_t));
                        p->values[i] = p->ints[i];
                }
        }
        return 0;
}

/* A connection PostgreSQL dropped (a server restart, a failover) is made again
 * before the next statement; the statement that met the drop has failed. */
static void reconnect(struct fleet_db *db) {
        if (PQstatus(conn(db)) == CONNECTION_BAD)
                PQreset(conn(db));
}

static PGresult *run(struct fleet_db *db, const char *sql, const char *fmt, va_list ap, int *r) {
        reconnect(db);
        struct params p;
        *r = prepare(sql, fmt, ap, &p);
        if (*r < 0)
                return NULL;
        return PQexecParams(conn(db), p.sql, p.n, NULL, p.values, NULL, NULL, 0);
}

static int db_exec(struct fleet_db *db, struct error *err, const char *sql, const char *fmt, va_list ap) {
        int r;
        PGresult *res = run(db, sql, fmt, ap, &r);
        if (r < 0)
                return error_set(err, r, "manager database: a statement's arguments do not match");
        ExecStatusType st = PQresultStatus(res);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
                return fail(db, err, "write", res);
        r = atoi(PQcmdTuples(res));
        PQclear(res);
        return r;
}

static int db_query(struct fleet_db *db, struct error *err, json_t **ret, const char *sql, const char *fmt,
                    va_list ap) {
        int r;
        PGresult *res = run(db, sql, fmt, ap, &r);
        if (r < 0)
                return error_set(err, r, "manager database: a statement's arguments do not match");
        if (PQresultStatus(res) != PGRES_TUPLES_OK)
                return fail(db, err, "read", res);
        json_t *rows = json_array();
        for (int i = 0; i < PQntuples(res); i++) {
                json_t *o = json_object();
                for (int c = 0; c < PQnfields(res); c++) {
                        const char *name = PQfname(res, c), *v = PQgetvalue(res, i, c);
                        json_t *j;
                        if (PQgetisnull(res, i, c))
                                j = json_null();
                        else switch (PQftype(res, c)) {
                        case OID_INT2: case OID_INT4: case OID_INT8:
                                j = json_integer(strtoll(v, NULL, 10));
                                break;
                        case OID_FLOAT4: case OID_FLOAT8: case OID_NUMERIC:
                                j = json_real(strtod(v, NULL));
                                break;
                        case OID_BOOL:
                                j = json_boolean(v[0] == 't');
                                break;
                        default:
                                if (strcmp(name, "data") == 0) {
                                        json_t *d = json_loads(v, 0, NULL);
                                        if (json_is_object(d))
                                                json_object_update_missing(o, d);
                                        json_decref(d);
                                        continue;
                                }
                                j = json_string(v);
                        }
                        json_object_set_new(o, name, j);
                }
                json_array_append_new(rows, o);
        }
        PQclear(res);
        *ret = rows;
        return 0;
}

static int db_script(struct fleet_db *db, struct error *err, const char *sql) {
        reconnect(db);
        PGresult *res = PQexec(conn(db), sql);
        ExecStatusType st = PQresultStatus(res);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
                return fail(db, err, "statement", res);
        PQclear(res);
        return 0;
}

static void db_close(struct fleet_db *db) {
        PQfinish(conn(db));
        free(db);
}

static void quiet(void *arg, const char *message) {
        (void) arg;
        (void) message;
}

static const struct fleet_db_ops ops = {
        .exec = db_exec, .query = db_query, .script = db_script, .close = db_close,
};

int fleet_db_open_postgresql(const char *uri, struct fleet_db **ret, struct error *err) {
        struct db_pg *d = calloc(1, sizeof(*d));
        if (!d)
                return error_set(err, -ENOMEM, "out of memory");
        d->db.kind = FLEET_DB_POSTGRESQL;
        d->db.ops = &ops;
        d->conn = PQconnectdb(uri);
        if (!d->conn || PQstatus(d->conn) != CONNECTION_OK) {
                char line[300];
                snprintf(line, sizeof(line), "%s", d->conn ? PQerrorMessage(d->conn) : "out of memory");
                line[strcspn(line, "\n")] = 0;
                db_close(&d->db);
                /* The URI may hold a password: it is not repeated here. */
                return error_set(err, -ECONNREFUSED, "cannot connect to the PostgreSQL database named in the "
                                       "configuration: %s", line);
        }
        /* Notices (e.g. "relation already exists, skipping") are not errors. */
        PQsetNoticeProcessor(d->conn, quiet, NULL);
        *ret = &d->db;
        return 0;
}
