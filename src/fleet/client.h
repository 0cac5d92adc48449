/* A small HTTPS client for the manager's API (vmcrypt-agent and the CLI): mutual
 * TLS with the caller's certificate (or a bearer token), the manager's certificate verified against
 * the CA and the URL's host name or address; one connection per request. */
#pragma once

#include <jansson.h>

#include "fleet/fleet.h"

struct fleet_client;

/* url: https://HOST:PORT (IPv6 as [addr]); ca, cert, key: PEM files (cert and
 * key NULL: no certificate, for a client with a bearer token). */
int fleet_client_new(const char *url, const char *ca, const char *cert, const char *key, struct fleet_client **ret,
                     struct error *err);
void fleet_client_free(struct fleet_client *c);
/* Send the bearer token in path (the caller's own file, mode 0600, one line)
 * with every request. */
int fleet_client_use_token(struct fleet_client *c, const char *path, struct error *err);
static inline void fleet_client_freep(struct fleet_client **c) {
        if (*c)
                fleet_client_free(*c);
}

/* method path with body (NULL: none), waiting at most timeout seconds for the
 * answer: its HTTP status and its JSON body (NULL when empty). A 4xx/5xx is not
 * an error of the call: the caller reads body's "error". */
int fleet_client_request(struct fleet_client *c, const char *method, const char *path, json_t *body, int timeout,
                         int *ret_status, json_t **ret_body, struct error *err);

/* GET path whose answer is a stream of JSON values, one per line: line(value)
 * for each until the server ends it or line returns non-zero. */
int fleet_client_stream(struct fleet_client *c, const char *path, int (*line)(json_t *value, void *userdata),
                        void *userdata, int *ret_status, struct error *err);

/* Poll job id once a second until it ends: done, failed, cancelled, or paused by
 * an operator (a job paused for its key server, request key-wait, goes on by
 * itself and is waited through). A manager that cannot be reached (restarting)
 * is asked again for up to patience seconds at a time. *ret: the job's last
 * answer. */
int fleet_client_job_wait(struct fleet_client *c, long long id, int patience, json_t **ret, struct error *err);
