/* Hosts and PCR policies in SQLite (see attest-db.h). One connection, serialised by
 * a mutex: attestation is rare next to Get/Decrypt traffic. */
#include "kms/attest-db.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/log.h"

#define ATTEST_SCHEMA 2

struct attest_db {
        sqlite3 *db;
        pthread_mutex_t lock;
};

static const char *const state_names[] = {
        [ATTEST_HOST_ENROLLING] = "enrolling",
        [ATTEST_HOST_PENDING] = "pending",
        [ATTEST_HOST_APPROVED] = "approved",
        [ATTEST_HOST_REVOKED] = "revoked",
};

const char *attest_ek_cert_state_name(enum attest_ek_cert_state s) {
        switch (s) {
        case ATTEST_EK_CERT_PRESENT: return "present";
        case ATTEST_EK_CERT_VERIFIED: return "verified";
        default: return "none";
        }
}

const char *attest_host_state_name(enum attest_host_state s) {
        return (unsigned) s < ELEMENTSOF(state_names) ? state_names[s] : "unknown";
}

static int state_parse(const char *s) {
        for (size_t i = 0; i < ELEMENTSOF(state_names); i++)
                if (s && strcmp(s, state_names[i]) == 0)
                        return (int) i;
        return -EINVAL;
}

static int sql_err(struct attest_db *d, const char *what) {
        log_error("attestation store: %s: %s", what, sqlite3_errmsg(d->db));
        return -EIO;
}

/* migrations[v] takes the schema from version v to v + 1: 0 -> 1 the two tables,
 * 1 -> 2 the EK certificate. */
static const char *const migrations[] = {
        "CREATE TABLE IF NOT EXISTS attest_hosts ("
        " id TEXT PRIMARY KEY, cn TEXT UNIQUE NOT NULL, grp TEXT NOT NULL, state TEXT NOT NULL,"
        " ek BLOB NOT NULL, ak BLOB NOT NULL, ek_fpr TEXT NOT NULL, proof BLOB, pcrs BLOB,"
        " reset_count INTEGER, restart_count INTEGER, created INTEGER NOT NULL, updated INTEGER NOT NULL);"
        "CREATE TABLE IF NOT EXISTS attest_policies (grp TEXT PRIMARY KEY, mask INTEGER NOT NULL, vals BLOB NOT NULL);",
        "ALTER TABLE attest_hosts ADD COLUMN ek_cert BLOB;"
        "ALTER TABLE attest_hosts ADD COLUMN ek_cert_state INTEGER NOT NULL DEFAULT 0;",
};

int attest_db_open(const char *path, struct attest_db **ret) {
        struct attest_db *d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        pthread_mutex_init(&d->lock, NULL);
        if (sqlite3_open_v2(path, &d->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL) !=
            SQLITE_OK) {
                log_error("attestation store: cannot open %s: %s", path, d->db ? sqlite3_errmsg(d->db) : "no memory");
                attest_db_free(d);
                return -EIO;
        }
        sqlite3_busy_timeout(d->db, 10000);
        int r = 0;
        if (sqlite3_exec(d->db,
                         "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                         "CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v BLOB);",
                         NULL, NULL, NULL) != SQLITE_OK)
                r = sql_err(d, "setting up");
        sqlite3_stmt *st = NULL;
        int version = 0;
        if (r == 0 && sqlite3_prepare_v2(d->db, "SELECT CAST(v AS INTEGER) FROM meta WHERE k='attest_schema'", -1, &st,
                                         NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
                version = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        if (r == 0 && version > ATTEST_SCHEMA) {
                log_error("attestation store: schema %d is newer than this vmcrypt-kms knows (%d): upgrade it", version,
                          ATTEST_SCHEMA);
                r = -EPROTONOSUPPORT;
        }
        for (int v = version; r == 0 && v < ATTEST_SCHEMA; v++) {
                char sql[96];
                snprintf(sql, sizeof(sql), "INSERT OR REPLACE INTO meta VALUES ('attest_schema', %d);", v + 1);
                if (sqlite3_exec(d->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK ||
                    sqlite3_exec(d->db, migrations[v], NULL, NULL, NULL) != SQLITE_OK ||
                    sqlite3_exec(d->db, sql, NULL, NULL, NULL) != SQLITE_OK ||
                    sqlite3_exec(d->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
                        r = sql_err(d, "creating the attestation tables");
                        (void) sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
                }
        }
        if (r < 0) {
                attest_db_free(d);
                return r;
        }
        *ret = d;
        return 0;
}

void attest_db_free(struct attest_db *d) {
        if (!d)
                return;
        sqlite3_close(d->db);
        pthread_mutex_destroy(&d->lock);
        free(d);
}

#define HOST_COLUMNS \
        "id, cn, grp, state, ek, ak, ek_fpr, proof, pcrs, reset_count, restart_count, created, updated, ek_cert, ek_cert_state"

static void blob_to(sqlite3_stmt *st, int col, void *dst, size_t max, size_t *ret_n) {
        size_t n = (size_t) sqlite3_column_bytes(st, col);
        const void *p = sqlite3_column_blob(st, col);
        if (n > max || !p)
                n = 0;
        if (n)
                memcpy(dst, p, n);
        if (ret_n)
                *ret_n = n;
}

static void text_to(sqlite3_stmt *st, int col, char *dst, size_t max) {
        const unsigned char *t = sqlite3_column_text(st, col);
        snprintf(dst, max, "%s", t ? (const char *) t : "");
}

static void read_host(sqlite3_stmt *st, struct attest_host *h) {
        *h = (struct attest_host) {};
        text_to(st, 0, h->id, sizeof(h->id));
        text_to(st, 1, h->cn, sizeof(h->cn));
        text_to(st, 2, h->group, sizeof(h->group));
        int s = state_parse((const char *) sqlite3_column_text(st, 3));
        h->state = s < 0 ? ATTEST_HOST_REVOKED : (enum attest_host_state) s;
        blob_to(st, 4, h->ek, sizeof(h->ek), &h->ek_size);
        blob_to(st, 5, h->ak, sizeof(h->ak), &h->ak_size);
        text_to(st, 6, h->ek_fingerprint, sizeof(h->ek_fingerprint));
        blob_to(st, 7, h->proof, sizeof(h->proof), NULL);
        size_t n = 0;
        blob_to(st, 8, h->pcrs, sizeof(h->pcrs), &n);
        h->has_pcrs = n == sizeof(h->pcrs);
        h->has_clock = sqlite3_column_type(st, 9) != SQLITE_NULL;
        h->reset_count = (uint32_t) sqlite3_column_int64(st, 9);
        h->restart_count = (uint32_t) sqlite3_column_int64(st, 10);
        h->created = sqlite3_column_int64(st, 11);
        h->updated = sqlite3_column_int64(st, 12);
        blob_to(st, 13, h->ek_cert, sizeof(h->ek_cert), &h->ek_cert_size);
        h->ek_cert_state = (enum attest_ek_cert_state) sqlite3_column_int(st, 14);
}

int attest_db_host_put(struct attest_db *d, const struct attest_host *h) {
        pthread_mutex_lock(&d->lock);
        sqlite3_stmt *st = NULL;
        int r = 0;
        /* One host per client certificate: a new enrolment replaces the old one. */
        if (sqlite3_exec(d->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
                r = sql_err(d, "begin");
        if (r == 0 && sqlite3_prepare_v2(d->db, "DELETE FROM attest_hosts WHERE cn = ?1 AND id != ?2", -1, &st, NULL) == SQLITE_OK) {
                sqlite3_bind_text(st, 1, h->cn, -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 2, h->id, -1, SQLITE_STATIC);
                if (sqlite3_step(st) != SQLITE_DONE)
                        r = sql_err(d, "replacing a host");
        } else if (r == 0)
                r = sql_err(d, "prepare");
        sqlite3_finalize(st);
        st = NULL;
        if (r == 0 && sqlite3_prepare_v2(d->db, "INSERT OR REPLACE INTO attest_hosts (" HOST_COLUMNS ") VALUES "
                                                "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                                         -1, &st, NULL) == SQLITE_OK) {
                sqlite3_bind_text(st, 1, h->id, -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 2, h->cn, -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 3, h->group, -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 4, attest_host_state_name(h->state), -1, SQLITE_STATIC);
                sqlite3_bind_blob(st, 5, h->ek, (int) h->ek_size, SQLITE_STATIC);
                sqlite3_bind_blob(st, 6, h->ak, (int) h->ak_size, SQLITE_STATIC);
                sqlite3_bind_text(st, 7, h->ek_fingerprint, -1, SQLITE_STATIC);
                sqlite3_bind_blob(st, 8, h->proof, sizeof(h->proof), SQLITE_STATIC);
                if (h->has_pcrs)
                        sqlite3_bind_blob(st, 9, h->pcrs, sizeof(h->pcrs), SQLITE_STATIC);
                if (h->has_clock) {
                        sqlite3_bind_int64(st, 10, h->reset_count);
                        sqlite3_bind_int64(st, 11, h->restart_count);
                }
                sqlite3_bind_int64(st, 12, h->created);
                sqlite3_bind_int64(st, 13, h->updated);
                if (h->ek_cert_size)
                        sqlite3_bind_blob(st, 14, h->ek_cert, (int) h->ek_cert_size, SQLITE_STATIC);
                sqlite3_bind_int(st, 15, (int) h->ek_cert_state);
                if (sqlite3_step(st) != SQLITE_DONE)
                        r = sql_err(d, "storing a host");
        } else if (r == 0)
                r = sql_err(d, "prepare");
        sqlite3_finalize(st);
        if (sqlite3_exec(d->db, r == 0 ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK && r == 0)
                r = sql_err(d, "commit");
        pthread_mutex_unlock(&d->lock);
        return r;
}

static int host_query(struct attest_db *d, const char *sql, const char *key, struct attest_host *ret) {
        pthread_mutex_lock(&d->lock);
        sqlite3_stmt *st = NULL;
        int r;
        if (sqlite3_prepare_v2(d->db, sql, -1, &st, NULL) != SQLITE_OK)
                r = sql_err(d, "prepare");
        else {
                sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
                int s = sqlite3_step(st);
                if (s == SQLITE_ROW) {
                        read_host(st, ret);
                        r = 0;
                } else if (s == SQLITE_DONE)
                        r = -ENOENT;
                else
                        r = sql_err(d, "reading a host");
        }
        sqlite3_finalize(st);
        pthread_mutex_unlock(&d->lock);
        return r;
}

int attest_db_host_get(struct attest_db *d, const char *id, struct attest_host *ret) {
        return host_query(d, "SELECT " HOST_COLUMNS " FROM attest_hosts WHERE id = ?1", id, ret);
}

int attest_db_host_by_cn(struct attest_db *d, const char *cn, struct attest_host *ret) {
        return host_query(d, "SELECT " HOST_COLUMNS " FROM attest_hosts WHERE cn = ?1", cn, ret);
}

/* Every row of sql, each read into an element of size bytes by read: a malloc'ed
 * array in *ret (NULL when empty). */
static int list_rows(struct attest_db *d, const char *sql, const char *what, size_t size,
                     void (*read)(sqlite3_stmt *st, void *elem), void **ret, size_t *ret_n) {
        pthread_mutex_lock(&d->lock);
        sqlite3_stmt *st = NULL;
        uint8_t *v = NULL;
        size_t n = 0;
        int r = 0;
        if (sqlite3_prepare_v2(d->db, sql, -1, &st, NULL) != SQLITE_OK)
                r = sql_err(d, "prepare");
        while (r == 0) {
                int s = sqlite3_step(st);
                if (s == SQLITE_DONE)
                        break;
                if (s != SQLITE_ROW) {
                        r = sql_err(d, what);
                        break;
                }
                uint8_t *nv = realloc(v, (n + 1) * size);
                if (!nv) {
                        r = -ENOMEM;
                        break;
                }
                v = nv;
                memset(v + n * size, 0, size);
                read(st, v + n++ * size);
        }
        sqlite3_finalize(st);
        pthread_mutex_unlock(&d->lock);
        if (r < 0) {
                free(v);
                return r;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

static void read_host_row(sqlite3_stmt *st, void *elem) {
        read_host(st, elem);
}

int attest_db_host_list(struct attest_db *d, struct attest_host **ret, size_t *ret_n) {
        return list_rows(d, "SELECT " HOST_COLUMNS " FROM attest_hosts ORDER BY created, id", "listing hosts",
                         sizeof(**ret), read_host_row, (void **) ret, ret_n);
}

static int exec_changes(struct attest_db *d, sqlite3_stmt *st, const char *what) {
        int r = sqlite3_step(st) == SQLITE_DONE ? 0 : sql_err(d, what);
        if (r == 0 && sqlite3_changes(d->db) == 0)
                r = -ENOENT;
        return r;
}

int attest_db_host_set_state(struct attest_db *d, const char *id, enum attest_host_state s, const char *group) {
        pthread_mutex_lock(&d->lock);
        sqlite3_stmt *st = NULL;
        int r;
        if (sqlite3_prepare_v2(d->db,
                               "UPDATE attest_hosts SET state = ?2, grp = COALESCE(?3, grp), updated = strftime('%s','now') "
                               "WHERE id = ?1",
                               -1, &st, NULL) != SQLITE_OK)
                r = sql_err(d, "prepare");
        else {
                sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 2, attest_host_state_name(s), -1, SQLITE_STATIC);
                if (group)
                        sqlite3_bind_text(st, 3, group, -1, SQLITE_STATIC);
                r = exec_changes(d, st, "changing a host");
        }
        sqlite3_finalize(st);
        pthread_mutex_unlock(&d->lock);
        return r;
}

int attest_db_host_set_clock(struct attest_db *d, const char *id, uint32_t reset_count, uint32_t restart_count) {
        pthread_mutex_lock(&d->lock);
        sqlite3_stmt *st = NULL;
        int r;
        /* Only forward: a concurrent request that saw an older clock must not lower it. */
        if (sqlite3_prepare_v2(d->db,
                               "UPDATE attest_hosts SET reset_count = ?2, restart_count = ?3 WHERE id = ?1 AND "
                               "(reset_count IS NULL OR reset_count < ?2 OR (reset_count = ?2 AND restart_count < ?3))",
                               -1, &st, NULL) != SQLITE_OK)
                r = sql_err(d, "prepare");
        else {
                sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
                sqlite3_bind_int64(st, 2, reset_count);
                sqlite3_bind_int64(st, 3, restart_count);
                r = exec_changes(d, st, "recording the TPM clock");
                if (r == -ENOENT)
                        r = 0;
        }
        sqlite3_finalize(st);
        pthread_mutex_unlock(&d->lock);
        return r;
}

int attest_db_policy_put(struct attest_db *d, const struct attest_policy *p) {
        pthread_mutex_lock(&d->lock);
        sqlite3_stmt *st = NULL;
        int r;
        if (sqlite3_prepare_v2(d->db, "INSERT OR REPLACE INTO attest_policies (grp, mask, vals) VALUES (?1, ?2, ?3)", -1,
                               &st, NULL) != SQLITE_OK)
                r = sql_err(d, "prepare");
        else {
                sqlite3_bind_text(st, 1, p->group, -1, SQLITE_STATIC);
                sqlite3_bind_int64(st, 2, p->mask);
                sqlite3_bind_blob(st, 3, p->values, (int) (p->n_values * 32), SQLITE_STATIC);
                r = sqlite3_step(st) == SQLITE_DONE ? 0 : sql_err(d, "storing a policy");
        }
        sqlite3_finalize(st);
        pthread_mutex_unlock(&d->lock);
        return r;
}

static void read_policy(sqlite3_stmt *st, struct attest_policy *p) {
        *p = (struct attest_policy) {};
        text_to(st, 0, p->group, sizeof(p->group));
        p->mask = (uint32_t) sqlite3_column_int64(st, 1);
        size_t n = 0;
        blob_to(st, 2, p->values, sizeof(p->values), &n);
        p->n_values = n / 32;
}

int attest_db_policy_get(struct attest_db *d, const char *group, struct attest_policy *ret) {
        pthread_mutex_lock(&d->lock);
        sqlite3_stmt *st = NULL;
        int r;
        if (sqlite3_prepare_v2(d->db, "SELECT grp, mask, vals FROM attest_policies WHERE grp = ?1", -1, &st, NULL) !=
            SQLITE_OK)
                r = sql_err(d, "prepare");
        else {
                sqlite3_bind_text(st, 1, group, -1, SQLITE_STATIC);
                int s = sqlite3_step(st);
                if (s == SQLITE_ROW) {
                        read_policy(st, ret);
                        r = 0;
                } else
                        r = s == SQLITE_DONE ? -ENOENT : sql_err(d, "reading a policy");
        }
        sqlite3_finalize(st);
        pthread_mutex_unlock(&d->lock);
        return r;
}

static void read_policy_row(sqlite3_stmt *st, void *elem) {
        read_policy(st, elem);
}

int attest_db_policy_list(struct attest_db *d, struct attest_policy **ret, size_t *ret_n) {
        return list_rows(d, "SELECT grp, mask, vals FROM attest_policies ORDER BY grp", "listing policies",
                         sizeof(**ret), read_policy_row, (void **) ret, ret_n);
}

int attest_db_policy_capture(struct attest_db *d, const char *id, const char *group, uint32_t mask,
                             struct attest_policy *ret) {
        struct attest_host h;
        int r = attest_db_host_get(d, id, &h);
        if (r < 0)
                return r;
        if (!h.has_pcrs)
                return -ENODATA;
        if (mask == 0 || mask >= (1u << ATTEST_PCRS_ALL) || strlen(group) >= sizeof(ret->group))
                return -EINVAL;
        struct attest_policy p = { .mask = mask };
        snprintf(p.group, sizeof(p.group), "%s", group);
        for (int i = 0; i < ATTEST_PCRS_ALL; i++)
                if (mask & (1u << i))
                        memcpy(p.values[p.n_values++], h.pcrs[i], 32);
        r = attest_db_policy_put(d, &p);
        if (r < 0)
                return r;
        *ret = p;
        return 0;
}
