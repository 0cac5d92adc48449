/* The manager's REST/JSON API as a function of (who, method, path, query, body):
 * the route table, role checks, input validation and the store calls, with no
 * network in sight. The daemon (src/manager) feeds it requests and sends back
 * what it answers; a fuzz target feeds it bytes. */
#pragma once

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "fleet/fleet.h"
#include "fleet/store.h"

#define FLEET_API_MAX_BODY (4 << 20)

/* The caller, from its verified certificate: its CN, and the role (and that
 * role's privileges) manager.conf gives that CN; role "" and no privileges
 * for a CN it does not list. */
struct fleet_principal {
        char cn[128];
        char fingerprint[65];
        char role[64];
        unsigned privs;       /* 1U << enum fleet_priv */
        bool token;           /* authenticated by a bearer token, not a certificate */
        int64_t cert_expires; /* the certificate's end, seconds since the epoch (0: none) */
};

struct fleet_request {
        const char *method;   /* "GET", "POST", ... */
        const char *path;     /* without the query */
        const char *query;    /* after '?', or NULL */
        const char *body;     /* NULL or body_len bytes */
        size_t body_len;
        const struct fleet_principal *who;
};

/* What to do with the answer. */
enum fleet_reply_kind {
        FLEET_REPLY = 0,     /* send status and body */
        FLEET_WAIT_JOB,      /* GET /agent/jobs found none: ask again until wait_seconds pass, then 204 */
        FLEET_STREAM_EVENTS, /* GET /events?follow=1: send body's events, then each new one as it comes */
};

struct fleet_response {
        enum fleet_reply_kind kind;
        int status;          /* HTTP status */
        json_t *body;        /* owned; NULL for none */
        int wait_seconds;    /* FLEET_WAIT_JOB */
        char vm[256];        /* FLEET_STREAM_EVENTS: filter ("" all) */
        int64_t after;       /* ... and the last event id sent */
};

/* What a route needs besides a privilege: any client the manager knows (GET
 * /me), or the privilege of the job the path names (cancel, pause, resume: the
 * handler looks the job up). */
#define FLEET_ROUTE_ANY_CLIENT (-1)
#define FLEET_ROUTE_JOB_OP (-2)

struct fleet_route {
        const char *method;
        const char *pattern;  /* "/vms/{name}/encrypt": {x} matches one path segment */
        int privilege;        /* enum fleet_priv, or FLEET_ROUTE_ANY_CLIENT, FLEET_ROUTE_JOB_OP */
        int (*handler)(struct fleet_store *s, const struct fleet_request *req, char args[][256],
                       struct fleet_response *resp, struct error *err);
};

/* The table, ending with a NULL method (the OpenAPI test reads it). */
extern const struct fleet_route fleet_routes[];
/* What route r needs, in words: a privilege's name, "any" or
 * "encrypt|decrypt|rekey" (the job's). */
const char *fleet_route_needs(const struct fleet_route *r);

/* Handle one request; resp is always filled (errors as {"error": text} with a 4xx
 * or 5xx status). A refusal for lack of rights is written to the event log. */
void fleet_api_handle(struct fleet_store *s, const struct fleet_request *req, struct fleet_response *resp);
void fleet_response_clear(struct fleet_response *resp);

/* The HTTP status for a negative errno. */
int fleet_http_status(int r);

/* The value of key in an URL query ("a=1&b=x%20y"), percent-decoded, into buf;
 * -ENOENT absent, -EINVAL malformed or too long. */
int fleet_query_get(const char *query, const char *key, char *buf, size_t size);
