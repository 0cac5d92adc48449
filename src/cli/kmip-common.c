/* Connection options, config file, errors and attribute printing for `vmcrypt kms`. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli/cli.h"
#include "cli/kmip-common.h"
#include "kmip/tags.h"
#include "keys/provider-config.h"
#include "shared/key-input.h"
#include "shared/fd-util.h"
#include "shared/log.h"

const char kmip_common_help[] =
        "Connection options (all subcommands):\n"
        "  --server HOST[:PORT]  KMIP server; repeat for failover, tried in order\n"
        "                        (port 5696 when omitted)\n"
        "  --cert FILE           client certificate (PEM) for mutual TLS\n"
        "  --key FILE            private key of --cert (PEM)\n"
        "  --ca FILE             CA certificate(s) the server must chain to (PEM)\n"
        "  --provider NAME       the endpoints, certificate, key and CA of key provider NAME\n"
        "                        (type kmip) in providers.json: the KMS a disk's KEK lives on\n"
        "  --providers FILE      providers.json for --provider (default /etc/vmcrypt/providers.json)\n"
        "  --config FILE         JSON file with any of: \"servers\": [\"host:port\", ...],\n"
        "                        \"cert\", \"key\", \"ca\", \"kmip_version\", \"timeout_ms\",\n"
        "                        \"verify_name\", \"username\", \"password_file\";\n"
        "                        command-line options win; relative file names are\n"
        "                        relative to the config file\n"
        "  --kmip-version V      protocol version to speak: 1.0 ... 1.4, 2.0, or auto\n"
        "                        (ask the server with DiscoverVersions); default 1.4\n"
        "  --timeout MS          connect and I/O timeout per server (default 5000/30000)\n"
        "  --no-verify-name      do not check that the server certificate names the host\n"
        "  --username NAME       send a Username and Password credential (for servers that\n"
        "                        want one besides the certificate)\n"
        "  --password-file FILE  its password (first line of FILE; - for standard input)\n"
        "  --debug               explain each step on standard error\n"
        "  -h, --help            show this help\n"
        "\n"
        "Exit status: 0 success, 2 usage, 4 no such object, 7 no server reachable,\n"
        "8 denied (permission, expired or revoked), 3 certificate or credentials rejected,\n"
        "9 bad data, 1 other failures.\n";

int kmip_cmd_help(const char *text) {
        fputs(text, stdout);
        fputs("\n", stdout);
        fputs(kmip_common_help, stdout);
        return EXIT_OK;
}

int kmip_cmd_option(const char *cmd, struct kmip_conn_opts *o, int opt, const char *arg) {
        switch (opt) {
        case KOPT_SERVER:
                if (o->n_servers >= KMIP_CLIENT_MAX_SERVERS)
                        return -cli_usage_error(cmd, "at most %d --server options", KMIP_CLIENT_MAX_SERVERS);
                o->servers[o->n_servers++] = arg;
                return 1;
        case KOPT_CERT:
                o->cert = arg;
                return 1;
        case KOPT_KEY:
                o->key = arg;
                return 1;
        case KOPT_CA:
                o->ca = arg;
                return 1;
        case KOPT_CONFIG:
                o->config = arg;
                return 1;
        case KOPT_PROVIDER:
                o->provider = arg;
                return 1;
        case KOPT_PROVIDERS:
                o->providers = arg;
                return 1;
        case KOPT_KMIP_VERSION:
                o->kmip_version = arg;
                return 1;
        case KOPT_TIMEOUT: {
                char *end;
                unsigned long ms = strtoul(arg, &end, 10);
                if (*end || ms == 0 || ms > 600000)
                        return -cli_usage_error(cmd, "--timeout wants milliseconds (1..600000), not '%s'", arg);
                o->timeout_ms = (unsigned) ms;
                return 1;
        }
        case KOPT_NO_VERIFY_NAME:
                o->no_verify_name = true;
                return 1;
        case KOPT_DEBUG:
                log_set_level(LOG_LEVEL_DEBUG);
                return 1;
        case KOPT_USERNAME:
                o->username = arg;
                return 1;
        case KOPT_PASSWORD_FILE:
                o->password_file = arg;
                return 1;
        default:
                return 0;
        }
}

static int parse_version(const char *s, struct kmip_version *ret, bool *ret_auto) {
        *ret_auto = false;
        if (!s)
                return 0;
        if (strcmp(s, "auto") == 0) {
                *ret_auto = true;
                return 0;
        }
        int ma, mi;
        char extra;
        if (sscanf(s, "%d.%d%c", &ma, &mi, &extra) != 2 || !kmip_version_supported(KMIP_VERSION(ma, mi)))
                return -EINVAL;
        *ret = KMIP_VERSION(ma, mi);
        return 0;
}

/* Strings from the config file live as long as the process (the JSON is kept). */
static json_t *config_json;
static char *config_paths[8];
static size_t n_config_paths;

/* A file named in the config file: relative names are relative to the config file's
 * directory, so that a config and its certificates can move together. */
static const char *config_path(const char *config, const char *name) {
        const char *slash = strrchr(config, '/');
        if (name[0] == '/' || !slash || n_config_paths >= ELEMENTSOF(config_paths))
                return name;
        char *p;
        if (asprintf(&p, "%.*s/%s", (int) (slash - config), config, name) < 0)
                return name;
        config_paths[n_config_paths++] = p;
        return p;
}

static int load_config(const char *cmd, const char *path, struct kmip_conn_opts *o) {
        json_error_t err;
        _cleanup_(freep) char *text = NULL;
        size_t len;
        int r = read_file_bounded(path, 1U << 20, &text, &len);
        if (r < 0) {
                fprintf(stderr, "%s: cannot read config file %s: %s\n", cmd, path,
                        r == -EFBIG ? "larger than 1 MiB" : r == -EINVAL ? "not a regular file" : strerror(-r));
                return r == -ENOENT ? EXIT_NOT_FOUND : EXIT_USAGE;
        }
        config_json = json_loadb(text, len, 0, &err);
        if (!config_json) {
                fprintf(stderr, "%s: config file %s is not valid JSON (line %d, column %d)\n", cmd, path, err.line,
                        err.column);
                return EXIT_USAGE;
        }
        if (!json_is_object(config_json)) {
                fprintf(stderr, "%s: config file %s: expected a JSON object\n", cmd, path);
                return EXIT_USAGE;
        }
        const char *k;
        json_t *v;
        json_object_foreach(config_json, k, v) {
                const char **target = NULL;
                if (strcmp(k, "servers") == 0) {
                        if (!json_is_array(v))
                                goto bad;
                        size_t i;
                        json_t *s;
                        if (o->n_servers > 0)
                                continue; /* --server given: it wins */
                        json_array_foreach(v, i, s) {
                                if (!json_is_string(s) || o->n_servers >= KMIP_CLIENT_MAX_SERVERS)
                                        goto bad;
                                o->servers[o->n_servers++] = json_string_value(s);
                        }
                        continue;
                }
                if (strcmp(k, "timeout_ms") == 0) {
                        if (!json_is_integer(v) || json_integer_value(v) <= 0 || json_integer_value(v) > 600000)
                                goto bad;
                        if (!o->timeout_ms)
                                o->timeout_ms = (unsigned) json_integer_value(v);
                        continue;
                }
                if (strcmp(k, "verify_name") == 0) {
                        if (!json_is_boolean(v))
                                goto bad;
                        if (!json_boolean_value(v))
                                o->no_verify_name = true;
                        continue;
                }
                if (strcmp(k, "cert") == 0)
                        target = &o->cert;
                else if (strcmp(k, "key") == 0)
                        target = &o->key;
                else if (strcmp(k, "ca") == 0)
                        target = &o->ca;
                else if (strcmp(k, "kmip_version") == 0)
                        target = &o->kmip_version;
                else if (strcmp(k, "username") == 0)
                        target = &o->username;
                else if (strcmp(k, "password_file") == 0)
                        target = &o->password_file;
                else {
                        fprintf(stderr, "%s: config file %s: unknown setting \"%s\"\n", cmd, path, k);
                        return EXIT_USAGE;
                }
                if (!json_is_string(v))
                        goto bad;
                if (!*target)
                        *target = target == &o->kmip_version || target == &o->username
                                          ? json_string_value(v)
                                          : config_path(path, json_string_value(v));
                continue;
        bad:
                fprintf(stderr, "%s: config file %s: bad value for \"%s\"\n", cmd, path, k);
                return EXIT_USAGE;
        }
        return 0;
}

/* The provider configuration stays loaded for the life of the process: the
 * options point into it. */
static struct provider_configs *provider_cs;
static char provider_eps[KMIP_CLIENT_MAX_SERVERS][300];

/* One schema for a KMIP endpoint: a key provider of providers.json serves as the
 * connection settings too, so the KEK a disk command printed can be revoked without
 * writing a kms.json. Command-line options win. */
static int load_provider(const char *cmd, struct kmip_conn_opts *o) {
        struct error err = { 0 };
        int r = provider_config_load(o->providers, &provider_cs, &err);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", cmd, err.text);
                return cli_exit_code(r);
        }
        const struct provider_config *c = provider_config_find(provider_cs, o->provider);
        if (!c) {
                fprintf(stderr, "%s: key provider \"%s\" is not in %s\n", cmd, o->provider, provider_cs->path);
                return EXIT_NOT_FOUND;
        }
        if (c->kind != PROVIDER_KMIP && c->kind != PROVIDER_TRUSTED) {
                fprintf(stderr, "%s: key provider \"%s\" is not a KMIP server (its KEKs are not on a key server)\n", cmd,
                        o->provider);
                return EXIT_USAGE;
        }
        if (o->n_servers == 0)
                for (size_t i = 0; i < c->n_endpoints && i < KMIP_CLIENT_MAX_SERVERS; i++) {
                        provider_endpoint_text(&c->endpoints[i], provider_eps[i], sizeof(provider_eps[i]));
                        o->servers[o->n_servers++] = provider_eps[i];
                }
        if (!o->cert)
                o->cert = c->cert;
        if (!o->key)
                o->key = c->key;
        if (!o->ca)
                o->ca = c->ca;
        if (!o->timeout_ms)
                o->timeout_ms = c->timeout_ms;
        return 0;
}

int kmip_cmd_connect(const char *cmd, const struct kmip_conn_opts *opts, struct kmip_client **ret) {
        struct kmip_conn_opts o = *opts;
        if (o.providers && !o.provider)
                return cli_usage_error(cmd, "--providers goes with --provider NAME");
        if (o.provider && o.config)
                return cli_usage_error(cmd, "--provider and --config exclude each other");
        if (o.provider) {
                int k = load_provider(cmd, &o);
                if (k)
                        return k;
        }
        if (o.config) {
                int k = load_config(cmd, o.config, &o);
                if (k)
                        return k;
        }
        if (o.n_servers == 0)
                return cli_usage_error(cmd, "no KMIP server: give --server HOST[:PORT], --provider NAME or --config FILE");
        if (!!o.cert != !!o.key)
                return cli_usage_error(cmd, "--cert and --key go together");

        struct kmip_client_config cfg = {
                .n_servers = o.n_servers,
                .cert_file = o.cert,
                .key_file = o.key,
                .ca_file = o.ca,
                .no_verify_name = o.no_verify_name,
                .connect_timeout_ms = o.timeout_ms,
                .io_timeout_ms = o.timeout_ms,
        };
        memcpy(cfg.servers, o.servers, sizeof(cfg.servers));
        if (o.password_file && !o.username)
                return cli_usage_error(cmd, "--password-file needs --username");
        _cleanup_(secret_freep) struct secret *password = NULL;
        if (o.password_file) {
                int k = key_input_read_file(o.password_file, &password);
                if (k < 0) {
                        fprintf(stderr, "%s: cannot read the password from %s: %s\n", cmd, o.password_file,
                                k == -EINVAL ? "empty file" : strerror(-k));
                        return cli_exit_code(k);
                }
                /* A password file ends at its first line break. */
                void *nl = memchr(password->data, '\n', password->size);
                if (nl)
                        secret_truncate(password, (size_t) ((uint8_t *) nl - password->data));
        }
        cfg.username = o.username;
        cfg.password = password;
        bool negotiate;
        if (parse_version(o.kmip_version, &cfg.version, &negotiate) < 0)
                return cli_usage_error(cmd, "unsupported KMIP version '%s' (1.0 ... 1.4, 2.0 or auto)",
                                       o.kmip_version);
        struct kmip_client *c;
        int r = kmip_client_new(&cfg, &c);
        if (r < 0)
                return cli_usage_error(cmd, "invalid connection settings");
        if (negotiate) {
                r = kmip_client_negotiate(c);
                if (r < 0) {
                        int k = kmip_cmd_fail(cmd, c, r);
                        kmip_client_free(c);
                        return k;
                }
                log_debug("%s: speaking KMIP %d.%d", cmd, kmip_client_version(c).major, kmip_client_version(c).minor);
        }
        *ret = c;
        return 0;
}

static const char *hint(int r) {
        switch (-r) {
        case ECONNREFUSED:
        case EHOSTUNREACH:
        case ENETUNREACH:
        case ECONNRESET:
                return "Check that the KMS is running and that --server names it.";
        case ETIMEDOUT:
                return "The KMS did not answer in time; check the network or raise --timeout.";
        case EKEYEXPIRED:
                return "Renew the expired certificate (or check the clock).";
        case EKEYREJECTED:
                return "The TLS peers do not trust each other: --ca must hold the server's CA, and the "
                       "server must trust the CA of --cert.";
        case EACCES:
                return "The KMS does not allow this client to do that.";
        case ENOENT:
                return "No such object on the KMS.";
        case EIDRM:
                return "The key was destroyed.";
        case EKEYREVOKED:
                return "The key is revoked; use another key.";
        case ENOKEY:
                return "The key is not active yet: vmcrypt kms activate UID.";
        case ENOSYS:
        case EOPNOTSUPP:
                return "The KMS does not support this; try another --kmip-version or mode.";
        default:
                return NULL;
        }
}

int kmip_cmd_fail(const char *cmd, struct kmip_client *c, int r) {
        if (r >= 0)
                return EXIT_OK;
        const char *detail = c ? kmip_client_error(c) : "";
        const char *h = hint(r);
        fprintf(stderr, "%s: %s%s%s\n", cmd, *detail ? detail : strerror(-r), h ? "\n  " : "", h ? h : "");
        return cli_exit_code(r);
}

int kmip_cmd_parse_attr(struct ttlv_arena *a, const char *spec, struct kmip_attr_list *list) {
        const char *eq = strchr(spec, '=');
        if (!eq || eq == spec)
                return -EINVAL;
        char name[256];
        size_t n = (size_t) (eq - spec);
        if (n >= sizeof(name))
                return -EINVAL;
        memcpy(name, spec, n);
        name[n] = '\0';
        if (!kmip_attr_name_is_custom(name))
                return -EINVAL;
        return kmip_attr_list_add_text(a, list, name, eq + 1);
}

static void print_time(FILE *f, int64_t t) {
        time_t tt = (time_t) t;
        struct tm tm;
        char buf[64];
        if (gmtime_r(&tt, &tm) && strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm))
                fputs(buf, f);
        else
                fprintf(f, "%" PRId64, t);
}

static void print_value(FILE *f, const char *name, const struct ttlv *v) {
        switch (v->type) {
        case TTLV_TEXT_STRING:
                fputs((const char *) v->v.bytes.data, f);
                break;
        case TTLV_INTEGER:
                if (strcmp(name, KMIP_ATTR_CRYPTOGRAPHIC_USAGE_MASK) == 0)
                        fprintf(f, "0x%" PRIx32, (uint32_t) v->v.integer);
                else
                        fprintf(f, "%" PRId32, v->v.integer);
                break;
        case TTLV_LONG_INTEGER:
                fprintf(f, "%" PRId64, v->v.long_integer);
                break;
        case TTLV_ENUMERATION:
                if (strcmp(name, KMIP_ATTR_STATE) == 0)
                        fputs(kmip_state_name(v->v.enumeration), f);
                else if (strcmp(name, KMIP_ATTR_OBJECT_TYPE) == 0)
                        fputs(kmip_object_type_name(v->v.enumeration), f);
                else if (strcmp(name, KMIP_ATTR_CRYPTOGRAPHIC_ALGORITHM) == 0)
                        fputs(kmip_crypto_alg_name(v->v.enumeration), f);
                else
                        fprintf(f, "0x%08" PRIx32, v->v.enumeration);
                break;
        case TTLV_BOOLEAN:
                fputs(v->v.boolean ? "true" : "false", f);
                break;
        case TTLV_DATE_TIME:
                print_time(f, v->v.date_time);
                break;
        case TTLV_DATE_TIME_EXTENDED:
                print_time(f, v->v.date_time / 1000000);
                break;
        case TTLV_INTERVAL:
                fprintf(f, "%" PRIu32 "s", v->v.interval);
                break;
        case TTLV_BYTE_STRING:
        case TTLV_BIG_INTEGER:
                for (size_t i = 0; i < v->v.bytes.size; i++)
                        fprintf(f, "%02x", v->v.bytes.data[i]);
                break;
        case TTLV_STRUCTURE: {
                const char *nv;
                if (strcmp(name, KMIP_ATTR_NAME) == 0 && ttlv_get_text(v, KMIP_TAG_NAME_VALUE, &nv, NULL) >= 0) {
                        fputs(nv, f);
                        break;
                }
                fputs("{", f);
                bool first = true;
                TTLV_FOREACH_CHILD(c, v) {
                        fprintf(f, "%s%s: ", first ? "" : ", ", kmip_tag_name(c->tag));
                        print_value(f, "", c);
                        first = false;
                }
                fputs("}", f);
                break;
        }
        }
}

void kmip_cmd_print_attr(FILE *f, const struct kmip_attr *attr) {
        fprintf(f, "%s: ", attr->name);
        print_value(f, attr->name, attr->value);
        fputs("\n", f);
}
