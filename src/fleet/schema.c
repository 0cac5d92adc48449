/* The store's schema, one migration per entry: see schema.h. Events are
 * append-only, and the database itself refuses to change or delete one. */
#include "fleet/schema.h"

const char *const fleet_schema_sqlite[] = {
        /* 1: hosts, VMs, jobs, events */
        "CREATE TABLE hosts (name TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, version TEXT NOT NULL,"
        "  registered INTEGER NOT NULL, last_seen INTEGER NOT NULL);"
        "CREATE TABLE vms (host TEXT NOT NULL REFERENCES hosts (name), name TEXT NOT NULL,"
        "  uuid TEXT NOT NULL, data TEXT NOT NULL, updated INTEGER NOT NULL, PRIMARY KEY (host, name));"
        "CREATE INDEX vms_name ON vms (name);"
        "CREATE TABLE jobs (id INTEGER PRIMARY KEY, vm TEXT NOT NULL, host TEXT NOT NULL, op TEXT NOT NULL,"
        "  state TEXT NOT NULL, request TEXT NOT NULL DEFAULT '', disk TEXT NOT NULL DEFAULT '',"
        "  done INTEGER NOT NULL DEFAULT 0, total INTEGER NOT NULL DEFAULT 0,"
        "  attempts INTEGER NOT NULL DEFAULT 0, message TEXT NOT NULL DEFAULT '', actor TEXT NOT NULL,"
        "  created INTEGER NOT NULL, updated INTEGER NOT NULL);"
        "CREATE INDEX jobs_host_state ON jobs (host, state);"
        "CREATE INDEX jobs_vm ON jobs (vm, host);"
        "CREATE TABLE events (id INTEGER PRIMARY KEY, time INTEGER NOT NULL, actor TEXT NOT NULL,"
        "  host TEXT NOT NULL, vm TEXT NOT NULL, job INTEGER NOT NULL, kind TEXT NOT NULL,"
        "  message TEXT NOT NULL);"
        "CREATE INDEX events_vm ON events (vm, id);"
        "CREATE TRIGGER events_no_update BEFORE UPDATE ON events"
        "  BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;"
        "CREATE TRIGGER events_no_delete BEFORE DELETE ON events"
        "  BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;",
};

const int fleet_schema_count = sizeof(fleet_schema_sqlite) / sizeof(fleet_schema_sqlite[0]);
