/* The store's schema as migrations: entry v takes a store from version v to v+1.
 * Released entries never change; a change of schema is a new entry. */
#pragma once

extern const char *const fleet_schema_sqlite[];
extern const char *const fleet_schema_postgresql[];
extern const int fleet_schema_count;
