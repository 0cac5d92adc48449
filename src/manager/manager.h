/* vmcrypt-manager: the fleet's control plane. init.c makes a quick-start
 * directory (PKI and configuration), config.c reads manager.conf, server.c serves
 * the API of src/fleet/api.h over HTTPS with mutual TLS. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "fleet/fleet.h"

#define MANAGER_MAX_CLIENTS 1024

/* A client of the manager and its role: "client = CN ROLE" (a certificate of
 * the CA with that CN), or "token = NAME ROLE SHA256 EXPIRES" (a bearer token,
 * for administrators where a certificate is awkward: scripts, CI; the manager
 * keeps only its SHA-256). One name, one client. */
struct manager_client {
        char cn[128];             /* the certificate's CN, or the token's name */
        char role[64];
        unsigned privs;           /* the role's, once the whole file is read */
        bool token;
        unsigned char hash[32];   /* token: SHA-256 of its text */
        long long expires;        /* token: its end, seconds since the epoch */
};

struct manager_config {
        char path[4096];
        char listen[256];
        char cert[4096], key[4096], ca[4096], database[4096];
        bool encrypt_new_disks;   /* new-data-disk = encrypt */
        struct fleet_roles roles; /* built in, and "role NAME = PRIV ..." lines */
        size_t n_clients;
        struct manager_client clients[MANAGER_MAX_CLIENTS];
        size_t n_tokens;          /* how many clients are tokens */
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

struct manager_renewal {
        bool token;
        char base[300];               /* the new files: BASE.crt and BASE.key, or the token file BASE */
        char old_fingerprint[65];     /* the certificate it replaces ("" unknown), to revoke later */
};
/* A new certificate (or token) for client name of DIR/manager.conf, same role:
 * new files under a new name, then DIR/NAME.conf switched to them in one
 * rename; a token's line gets the new hash and end (the old token stops at the
 * manager's next reload), a certificate's old one stays valid until revoked. */
int manager_renew(const char *dir, const char *name, int days, struct manager_renewal *ret, struct error *err);

/* Serve until SIGTERM/SIGINT. */
int manager_serve(const struct manager_config *c, struct error *err);
