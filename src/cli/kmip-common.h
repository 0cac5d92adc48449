/* Shared by the `vmcrypt kms` subcommands: the connection options (servers, TLS
 * files, a JSON config file), the one error message at the edge with a hint on
 * what to do, and printing attribute values. */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "kmip/attribute.h"
#include "kmip/client.h"

/* Long options every kms subcommand accepts (getopt codes >= 0x1000). */
enum {
        KOPT_SERVER = 0x1000,
        KOPT_CERT,
        KOPT_KEY,
        KOPT_CA,
        KOPT_CONFIG,
        KOPT_KMIP_VERSION,
        KOPT_TIMEOUT,
        KOPT_NO_VERIFY_NAME,
        KOPT_DEBUG,
        KOPT_USERNAME,
        KOPT_PASSWORD_FILE,
        KOPT_PROVIDER,
        KOPT_PROVIDERS,
};

#define KMS_COMMON_LONG_OPTIONS                                             \
        { "server", required_argument, NULL, KOPT_SERVER },               \
        { "cert", required_argument, NULL, KOPT_CERT },                   \
        { "key", required_argument, NULL, KOPT_KEY },                     \
        { "ca", required_argument, NULL, KOPT_CA },                       \
        { "config", required_argument, NULL, KOPT_CONFIG },               \
        { "kmip-version", required_argument, NULL, KOPT_KMIP_VERSION },   \
        { "timeout", required_argument, NULL, KOPT_TIMEOUT },             \
        { "no-verify-name", no_argument, NULL, KOPT_NO_VERIFY_NAME },     \
        { "debug", no_argument, NULL, KOPT_DEBUG },                       \
        { "username", required_argument, NULL, KOPT_USERNAME },           \
        { "password-file", required_argument, NULL, KOPT_PASSWORD_FILE }, \
        { "provider", required_argument, NULL, KOPT_PROVIDER },           \
        { "providers", required_argument, NULL, KOPT_PROVIDERS },         \
        { "help", no_argument, NULL, 'h' }

/* The help text of the options above, for the subcommands' --help. */
extern const char kmip_common_help[];

struct kmip_conn_opts {
        const char *servers[KMIP_CLIENT_MAX_SERVERS];
        size_t n_servers;
        const char *cert, *key, *ca;
        const char *config;
        const char *provider, *providers; /* a kmip key provider of providers.json */
        const char *username, *password_file;
        const char *kmip_version; /* "1.0".."2.0" or "auto" */
        unsigned timeout_ms;
        bool no_verify_name;
};

/* Handle one common option; 1 if it was one (and valid), 0 if not a common option,
 * or an exit code < 0 (negated) after printing a usage error. */
int kmip_cmd_option(const char *cmd, struct kmip_conn_opts *o, int opt, const char *arg);

/* Merge the config file (if any) under the command-line options and connect lazily:
 * returns a client or prints the reason and returns an exit code (> 0). */
int kmip_cmd_connect(const char *cmd, const struct kmip_conn_opts *o, struct kmip_client **ret);

/* Print "<cmd>: <what failed> ... <hint>" for r < 0 and return its exit code. */
int kmip_cmd_fail(const char *cmd, struct kmip_client *c, int r);

/* Parse "x-NAME=VALUE" into a Text String attribute appended to list. */
int kmip_cmd_parse_attr(struct ttlv_arena *a, const char *spec, struct kmip_attr_list *list);

/* Print "Name: value" for one attribute (key material is never an attribute). */
void kmip_cmd_print_attr(FILE *f, const struct kmip_attr *attr);

/* Print the --help text and return EXIT_OK. */
int kmip_cmd_help(const char *text);

int kmip_create_main(int argc, char *argv[]);
int kmip_register_main(int argc, char *argv[]);
int kmip_get_main(int argc, char *argv[]);
int kmip_locate_main(int argc, char *argv[]);
int kmip_attrs_main(int argc, char *argv[]);
int kmip_activate_main(int argc, char *argv[]);
int kmip_revoke_main(int argc, char *argv[]);
int kmip_destroy_main(int argc, char *argv[]);
int kmip_wrap_main(int argc, char *argv[]);
int kmip_unwrap_main(int argc, char *argv[]);
int kmip_query_main(int argc, char *argv[]);
