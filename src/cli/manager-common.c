/* The manager client's options and errors: see manager-common.h. */
#include "cli/manager-common.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "fleet/conf.h"
#include "fleet/fleet.h"
#include "shared/conf.h"
#include "shared/macro.h"
#include "shared/x509.h"

static int conf_set(const char *section, const char *key, const char *value, void *userdata, struct error *err) {
        if (!key || *section)
                return -ENOKEY; /* no sections */
        struct manager_opts *o = userdata;
        if (strcmp(key, "manager") == 0) {
                if (!o->url[0])
                        snprintf(o->url, sizeof(o->url), "%s", value);
        } else if (strcmp(key, "ca") == 0 || strcmp(key, "cert") == 0 || strcmp(key, "key") == 0 ||
                   strcmp(key, "token") == 0) {
                char *dst = key[0] == 'c' ? (key[1] == 'a' ? o->ca : o->cert) : key[0] == 'k' ? o->key : o->token;
                if (!dst[0])
                        fleet_conf_path(o->config, value, dst, 4096);
        } else
                return error_set(err, -EINVAL, "unknown setting '%s' (manager, ca, cert, key, token)", key);
        return 0;
}

bool manager_wanted(int argc, char *argv[]) {
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--") == 0)
                        break;
                if (strncmp(argv[i], "--manager", 9) == 0)
                        return true;
        }
        return false;
}

int manager_opts_parse(const char *cmd, unsigned allowed, const char *help, int min_args, int max_args, int argc,
                       char *argv[], struct manager_opts *o) {
        static const struct option opts[] = {
                { "manager", required_argument, NULL, 'm' }, { "manager-config", required_argument, NULL, 'C' },
                { "ca", required_argument, NULL, 'a' },      { "cert", required_argument, NULL, 'c' },
                { "key", required_argument, NULL, 'k' },     { "json", no_argument, NULL, 'j' },
                { "vm", required_argument, NULL, 'v' },      { "follow", no_argument, NULL, 'f' },
                { "wait", no_argument, NULL, 'w' },          { "deep", no_argument, NULL, 'D' },
                { "token", required_argument, NULL, 't' },   { "help", no_argument, NULL, 'h' },
                {},
        };
        memset(o, 0, sizeof(*o));
        optind = 1;
        int c;
        while ((c = getopt_long(argc, argv, "hf", opts, NULL)) >= 0) {
                unsigned need = c == 'j' ? MOPT_JSON : c == 'v' ? MOPT_VM : c == 'f' ? MOPT_FOLLOW
                                                     : c == 'w' ? MOPT_WAIT : c == 'D' ? MOPT_DEEP : 0;
                if (need && !(allowed & need))
                        return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
                switch (c) {
                case 'm': snprintf(o->url, sizeof(o->url), "%s", optarg); break;
                case 'C': o->config = optarg; break;
                case 'a': snprintf(o->ca, sizeof(o->ca), "%s", optarg); break;
                case 'c': snprintf(o->cert, sizeof(o->cert), "%s", optarg); break;
                case 'k': snprintf(o->key, sizeof(o->key), "%s", optarg); break;
                case 't': snprintf(o->token, sizeof(o->token), "%s", optarg); break;
                case 'j': o->json = true; break;
                case 'v': o->vm = optarg; break;
                case 'f': o->follow = true; break;
                case 'w': o->wait = true; break;
                case 'D': o->deep = true; break;
                case 'h': fputs(help, stdout); return EXIT_OK;
                default: return cli_usage_error(cmd, "bad option");
                }
        }
        o->n_args = argc - optind;
        o->args = argv + optind;
        if (o->n_args < min_args || (max_args >= 0 && o->n_args > max_args))
                return cli_usage_error(cmd, "wrong number of arguments");
        return -1;
}

int manager_connect(const char *cmd, const struct manager_opts *o_in, struct fleet_client **ret) {
        struct manager_opts o = *o_in;
        struct error err = { 0 };
        char def[4096];
        const char *home = getenv("HOME");
        if (o.token[0] && (o.cert[0] || o.key[0]))
                return cli_usage_error(cmd, "give a client certificate (--cert, --key) or a token (--token), "
                                       "not both");
        bool given = o.url[0] && o.ca[0] && ((o.cert[0] && o.key[0]) || o.token[0]);
        if (!o.config && home) {
                snprintf(def, sizeof(def), "%s/.config/vmcrypt/manager.conf", home);
                if (!given)
                        o.config = def;
        }
        bool token_given = o.token[0], cert_given = o.cert[0] || o.key[0];
        if (o.config && conf_read(o.config, conf_set, &o, &err) < 0 &&
            (o.config != def || err.code != -ENOENT)) {
                fprintf(stderr, "%s: %s\n", cmd, err.text);
                return EXIT_USAGE;
        }
        /* A credential on the command line replaces the file's, whichever kind. */
        if (token_given)
                o.cert[0] = o.key[0] = 0;
        else if (cert_given || (o.cert[0] && o.key[0]))
                o.token[0] = 0;
        if (!o.url[0] || !o.ca[0] || !((o.cert[0] && o.key[0]) || o.token[0])) {
                fprintf(stderr, "%s: which manager, and as whom? Give --manager-config FILE (see "
                                "'vmcrypt-manager init'), or --manager URL --ca and --cert --key or "
                                "--token\n", cmd);
                return EXIT_USAGE;
        }
        int r = fleet_client_new(o.url, o.ca, o.cert[0] ? o.cert : NULL, o.cert[0] ? o.key : NULL, ret, &err);
        if (r == 0 && o.token[0])
                r = fleet_client_use_token(*ret, o.token, &err);
        if (r < 0) {
                if (*ret) {
                        fleet_client_free(*ret);
                        *ret = NULL;
                }
                fprintf(stderr, "%s: %s\n", cmd, err.text);
                return cli_exit_code(r);
        }
        return -1;
}

static int status_errno(int status) {
        switch (status) {
        case 400: return -EINVAL;
        case 401: case 403: return -EACCES;
        case 404: return -ENOENT;
        case 409: return -EBUSY;
        default: return -EIO;
        }
}

int manager_show(const char *cmd, const char *help, const char *path, int argc, char *argv[], json_t **ret) {
        struct manager_opts o;
        int r = manager_opts_parse(cmd, MOPT_JSON, help, 0, 0, argc, argv, &o);
        if (r >= 0)
                return r;
        _cleanup_(fleet_client_freep) struct fleet_client *c = NULL;
        json_t *answer = NULL;
        if ((r = manager_connect(cmd, &o, &c)) >= 0 || (r = manager_call(cmd, c, "GET", path, NULL, &answer)) >= 0)
                return r;
        if (o.json) {
                json_dumpf(answer, stdout, JSON_COMPACT), putchar('\n');
                json_decref(answer);
                return EXIT_OK;
        }
        *ret = answer;
        return -1;
}

int manager_settings(const char *cmd, char *const *args, int n, const char *list_key, const char *known,
                     json_t *body) {
        for (int i = 0; i < n; i++) {
                const char *eq = strchr(args[i], '=');
                if (!eq || eq == args[i])
                        return cli_usage_error(cmd, "'%s' is not SETTING=VALUE (%s)", args[i], known);
                char key[32];
                snprintf(key, sizeof(key), "%.*s", (int) MIN((size_t) (eq - args[i]), sizeof(key) - 1), args[i]);
                if (strcmp(key, list_key) == 0) {
                        json_t *list = json_array();
                        for (const char *p = eq + 1; *p;) {
                                size_t len = strcspn(p, ",");
                                if (len)
                                        json_array_append_new(list, json_stringn(p, len));
                                p += len + (p[len] == ',');
                        }
                        json_object_set_new(body, key, list);
                } else
                        json_object_set_new(body, key, json_string(eq + 1));
        }
        return -1;
}

int manager_call(const char *cmd, struct fleet_client *c, const char *method, const char *path, json_t *body,
                 json_t **ret) {
        struct error err = { 0 };
        int status = 0;
        json_t *answer = NULL;
        int r = fleet_client_request(c, method, path, body, 60, &status, &answer, &err);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", cmd, err.text);
                return cli_exit_code(r);
        }
        if (status >= 300) {
                const char *e = json_string_value(json_object_get(answer, "error"));
                fprintf(stderr, "%s: the manager answered %d: %s\n", cmd, status, e ? e : "(no reason given)");
                json_decref(answer);
                return cli_exit_code(status_errno(status));
        }
        *ret = answer ? answer : json_null();
        return -1;
}

int manager_path(const char *cmd, const char *what, const char *prefix, const char *name, const char *suffix,
                 char *buf, size_t size) {
        /* Checked here so that a name the manager can never hold is a usage
         * error, not a 404, and never reaches the URL unescaped. */
        if (!fleet_valid_name(name))
                return cli_usage_error(cmd, "'%s' is not a %s name (1-200 printable characters without spaces, "
                                       "'/', '?', '&', '%%', '#', quotes or backslash)", name, what);
        if ((size_t) snprintf(buf, size, "%s/%s%s", prefix, name, suffix) >= size)
                return cli_usage_error(cmd, "the %s name '%s' is too long", what, name);
        return -1;
}

void manager_expiry_text(long long expires, char *buf, size_t size) {
        if (expires <= 0) {
                snprintf(buf, size, "-");
                return;
        }
        char day[16];
        time_t t = (time_t) expires;
        struct tm tm;
        strftime(day, sizeof(day), "%Y-%m-%d", gmtime_r(&t, &tm));
        int64_t now = (int64_t) time(NULL), days = x509_days_left(expires, now);
        if (days == 0)
                snprintf(buf, size, "! expired %s", day);
        else
                snprintf(buf, size, "%s%s (%lld days)", x509_ends_soon(expires, now) ? "! " : "", day,
                         (long long) days);
}
