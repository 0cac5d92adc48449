/* vmcrypt-manager: the fleet's control plane. init.c makes a quick-start
 * directory (PKI and configuration), config.c reads manager.conf, server.c serves
 * the API of src/fleet/api.h over HTTPS with mutual TLS. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "fleet/fleet.h"

#define MANAGER_MAX_CLIENTS 1024

struct manager_client {
        char cn[128];
        char role[64];
        unsigned privs;           /* the role's, once the whole file is read */
};

/* A bearer token ("token = NAME ROLE SHA256 EXPIRES"): an administrator's
 * credential where a certificate is awkward (scripts, CI). The manager keeps
 * only the token's SHA-256. */
#define MANAGER_MAX_TOKENS 256

struct manager_token {
        char name[128];
        char role[64];
        unsigned privs;           /* the role's, once the whole file is read */
        unsigned char hash[32];   /* SHA-256 of the token's text */
        long long expires;        /* seconds since the epoch */
};

struct manager_config {
        char path[4096];
        char listen[256];
        char cert[4096], key[4096], ca[4096], database[4096];
        bool encrypt_new_disks;   /* new-data-disk = encrypt */
        struct fleet_roles roles; /* built in, and "role NAME = PRIV ..." lines */
        size_t n_clients;
        struct manager_client clients[MANAGER_MAX_CLIENTS];
        size_t n_tokens;
        struct manager_token tokens[MANAGER_MAX_TOKENS];
        size_t n_revoked;
        char revoked[64][65];   /* certificate SHA-256 fingerprints refused */
        /* Limits (docs/fleet.md): connections in all; those still in their TLS
         * handshake, in all and per address; the handshake's deadline; what one
         * event-stream reader may leave unread before it is dropped. */
        unsigned max_connections, max_unauthenticated, max_unauthenticated_per_address;
        unsigned handshake_timeout;
        size_t max_stream_buffer;
};

int manager_config_read(const char *path, struct manager_config *c, struct error *err);

struct manager_init_options {
        const char *dir;
        const char *listen;       /* default 127.0.0.1:8443 */
        const char *hostname;
        const char **addresses;   /* extra server addresses (IP) for the certificate */
        size_t n_addresses;
        const char **agents;      /* agent host names */
        size_t n_agents;
        int days;
};

int manager_init(const struct manager_init_options *o, struct error *err);
/* One more client certificate from DIR's CA with role (built in, or defined in
 * DIR/manager.conf), and its line in manager.conf. */
int manager_issue(const char *dir, const char *cn, const char *role, int days, struct error *err);
/* A bearer token instead: DIR/token-NAME (0600, the only copy of the secret),
 * 'token = NAME ROLE SHA256 EXPIRES' in manager.conf and DIR/NAME.conf. The role
 * may not hold the agent privilege (an agent is its host's certificate). */
int manager_issue_token(const char *dir, const char *name, const char *role, int days, struct error *err);

/* Serve until SIGTERM/SIGINT. */
int manager_serve(const struct manager_config *c, struct error *err);
