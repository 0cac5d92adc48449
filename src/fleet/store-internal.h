/* Between the store's files (store.c: hosts, VMs, jobs, policies, events;
 * store-providers.c: key providers). Not a public interface. */
#pragma once

#include "fleet/db.h"
#include "fleet/store.h"

/* The store's database connection. */
struct fleet_db *fleet_store_db(struct fleet_store *s);
/* Marks host seen now, with its agent certificate's end when known (> 0);
 * -ENOENT with a sentence when it never registered. */
int fleet_store_host_touch(struct fleet_store *s, const char *host, int64_t cert_expires, struct error *err);
/* row's column holds a JSON array as text (hosts, endpoints): make it the array
 * ([] when the text is not one). */
void fleet_store_array_column(json_t *row, const char *column);
