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

/* The caller, from its verified certificate. */
struct fleet_principal {
        char cn[128];
        char fingerprint[65];
        enum fleet_role role;
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

struct fleet_route {
        const char *method;
        const char *pattern;  /* "/vms/{name}/encrypt": {x} matches one path segment */
        unsigned roles;       /* 1U << enum fleet_role allowed */
        int (*handler)(struct fleet_store *s, const struct fleet_request *req, char args[][256],
                       struct fleet_response *resp, struct error *err);
};

/* The table, ending with a NULL method (the OpenAPI test reads it). */
extern const struct fleet_route fleet_routes[];

/* Handle one request; resp is always filled (errors as {"error": text} with a 4xx
 * or 5xx status). A refusal for lack of rights is written to the event log. */
void fleet_api_handle(struct fleet_store *s, const struct fleet_request *req, struct fleet_response *resp);
void fleet_response_clear(struct fleet_response *resp);

/* The HTTP status for a negative errno. */
int fleet_http_status(int r);

/* The value of key in an URL query ("a=1&b=x%20y"), percent-decoded, into buf;
 * -ENOENT absent, -EINVAL malformed or too long. */
int fleet_query_get(const char *query, const char *key, char *buf, size_t size);
