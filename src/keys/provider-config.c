/* providers.json parsing: see provider-config.h for the format. Every error names
 * the file, the provider and the field, so a typo is fixed in one go. */
#include "keys/provider-config.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/macro.h"

static void config_clear(struct provider_config *c) {
        free(c->name);
        for (size_t i = 0; i < c->n_endpoints; i++)
                free(c->endpoints[i].host);
        free(c->ca);
        free(c->cert);
        free(c->key);
        free(c->state_dir);
        free(c->key_file);
        free(c->tcti);
        free(c->group);
        free(c->bk_cache);
}

void provider_configs_free(struct provider_configs *cs) {
        if (!cs)
                return;
        for (size_t i = 0; i < cs->n; i++)
                config_clear(&cs->p[i]);
        free(cs->path);
        free(cs->default_name);
        free(cs);
}

static int resolve_path(const char *base_dir, const char *p, char **ret) {
        if (p[0] == '/' || !base_dir)
                *ret = strdup(p);
        else if (asprintf(ret, "%s/%s", base_dir, p) < 0)
                *ret = NULL;
        return *ret ? 0 : -ENOMEM;
}

/* "host:port" or "[v6]:port"; the port defaults to KMIP's 5696. */
static int parse_endpoint(const char *s, struct provider_endpoint *e) {
        const char *host = s, *colon;
        size_t hlen;
        if (s[0] == '[') {
                const char *close = strchr(s, ']');
                if (!close)
                        return -EINVAL;
                host = s + 1;
                hlen = (size_t) (close - host);
                colon = close[1] == ':' ? close + 1 : (close[1] ? NULL : close + 1);
                if (!colon)
                        return -EINVAL;
        } else {
                colon = strrchr(s, ':');
                hlen = colon ? (size_t) (colon - s) : strlen(s);
        }
        if (hlen == 0 || hlen > 253)
                return -EINVAL;
        unsigned long port = 5696;
        if (colon && *colon == ':') {
                char *end = NULL;
                errno = 0;
                port = strtoul(colon + 1, &end, 10);
                if (errno || end == colon + 1 || *end || port == 0 || port > 65535)
                        return -EINVAL;
        }
        e->host = strndup(host, hlen);
        if (!e->host)
                return -ENOMEM;
        e->port = (unsigned) port;
        return 0;
}

/* Optional path member: a non-empty string, resolved against base_dir. */
static int get_path(json_t *o, const char *key, const char *base_dir, char **ret) {
        json_t *v = json_object_get(o, key);
        if (!v)
                return 0;
        if (!json_is_string(v) || json_string_length(v) == 0)
                return -EINVAL;
        return resolve_path(base_dir, json_string_value(v), ret);
}

static int get_ms(json_t *o, const char *key, unsigned dflt, unsigned *ret) {
        json_t *v = json_object_get(o, key);
        if (!v) {
                *ret = dflt;
                return 0;
        }
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 600000)
                return -EINVAL;
        *ret = (unsigned) json_integer_value(v);
        return 0;
}

static int parse_kmip(json_t *o, const char *base_dir, struct provider_config *c, const char *where,
                      struct error *err) {
        json_t *eps = json_object_get(o, "endpoints");
        if (!json_is_array(eps) || json_array_size(eps) == 0)
                return error_set(err, -EBADMSG, "%s: \"endpoints\" must be a non-empty list of \"host:port\"", where);
        if (json_array_size(eps) > PROVIDER_MAX_ENDPOINTS)
                return error_set(err, -EBADMSG, "%s: at most %d endpoints", where, PROVIDER_MAX_ENDPOINTS);
        size_t i;
        json_t *ep;
        json_array_foreach(eps, i, ep) {
                if (!json_is_string(ep) || parse_endpoint(json_string_value(ep), &c->endpoints[i]) < 0)
                        return error_set(err, -EBADMSG, "%s: endpoint %zu is not \"host:port\"", where, i + 1);
                c->n_endpoints = i + 1;
        }
        static const char *const files[] = { "ca", "cert", "key" };
        char **dst[] = { &c->ca, &c->cert, &c->key };
        for (size_t k = 0; k < ELEMENTSOF(files); k++) {
                if (get_path(o, files[k], base_dir, dst[k]) < 0)
                        return error_set(err, -EBADMSG, "%s: \"%s\" must be a file name", where, files[k]);
                if (!*dst[k])
                        return error_set(err, -EBADMSG,
                                    "%s: \"%s\" is missing (KMIP needs mutual TLS: ca, cert and key)", where, files[k]);
        }
        if (get_ms(o, "connect_timeout_ms", 3000, &c->connect_timeout_ms) < 0 ||
            get_ms(o, "timeout_ms", 10000, &c->timeout_ms) < 0)
                return error_set(err, -EBADMSG, "%s: timeouts must be integers from 1 to 600000 (ms)", where);
        json_t *w = json_object_get(o, "wrap");
        const char *ws = w ? json_string_value(w) : "auto";
        if (!ws)
                return error_set(err, -EBADMSG, "%s: \"wrap\" must be a string", where);
        if (strcmp(ws, "auto") == 0)
                c->wrap = WRAP_AUTO;
        else if (strcmp(ws, "kmip-encrypt") == 0)
                c->wrap = WRAP_KMIP_ENCRYPT;
        else if (strcmp(ws, "rfc5649") == 0)
                c->wrap = WRAP_RFC5649;
        else
                return error_set(err, -EBADMSG,
                            "%s: \"wrap\" is \"%s\"; use \"auto\", \"kmip-encrypt\" or \"rfc5649\"", where, ws);
        return 0;
}

static int parse_native(json_t *o, const char *base_dir, struct provider_config *c, const char *where,
                        struct error *err) {
        if (get_path(o, "state_dir", base_dir, &c->state_dir) < 0 || !c->state_dir)
                return error_set(err, -EBADMSG, "%s: \"state_dir\" (a directory for the encrypted primary key) is missing", where);
        if (get_path(o, "key_file", base_dir, &c->key_file) < 0)
                return error_set(err, -EBADMSG, "%s: \"key_file\" must be a file name", where);
        return 0;
}

static const char *const kmip_keys[] = { "type", "endpoints", "ca", "cert", "key", "connect_timeout_ms",
                                         "timeout_ms", "wrap", NULL };
static const char *const native_keys[] = { "type", "state_dir", "key_file", NULL };
static const char *const trusted_keys[] = { "type", "endpoints", "ca", "cert", "key", "connect_timeout_ms",
                                            "timeout_ms", "wrap", "tcti", "pcrs", "group", "bk_cache", NULL };

/* "0,7,16" -> bit mask of PCRs 0-23; 0 when malformed. */
static uint32_t parse_pcrs(const char *s) {
        uint32_t m = 0;
        while (s && *s) {
                char *end;
                if (*s < '0' || *s > '9')
                        return 0;
                unsigned long v = strtoul(s, &end, 10);
                if (v > 23 || (m & (1u << v)) || (*end && *end != ','))
                        return 0;
                m |= 1u << v;
                s = *end ? end + 1 : end;
                if (*end && !*s)
                        return 0;
        }
        return m;
}

/* A kmip provider whose KEKs only attested hosts get: the TPM, the PCRs its quotes
 * cover and the host group. Wrapping is always the server's Encrypt: the KEK must
 * never leave the KMS, only what it unwraps, to the TPM. */
static int parse_trusted(json_t *o, const char *base_dir, struct provider_config *c, const char *where,
                         struct error *err) {
        int r = parse_kmip(o, base_dir, c, where, err);
        if (r < 0)
                return r;
        if (json_object_get(o, "wrap") && c->wrap != WRAP_KMIP_ENCRYPT)
                return error_set(err, -EBADMSG, "%s: a trusted provider wraps with \"kmip-encrypt\" only", where);
        c->wrap = WRAP_KMIP_ENCRYPT;
        const char *tcti = json_string_value(json_object_get(o, "tcti"));
        const char *pcrs = json_string_value(json_object_get(o, "pcrs"));
        json_t *g = json_object_get(o, "group");
        const char *group = g ? json_string_value(g) : "default";
        if (!tcti || !*tcti)
                return error_set(err, -EBADMSG,
                                 "%s: \"tcti\" names the TPM, e.g. \"device:/dev/tpmrm0\" or \"swtpm:host=127.0.0.1,port=2321\"", where);
        if (!pcrs || !(c->pcrs = parse_pcrs(pcrs)))
                return error_set(err, -EBADMSG,
                                 "%s: \"pcrs\" must list PCR numbers 0-23, e.g. \"0,2,4,7\" (the KMS policy's PCRs)", where);
        if (!group || !*group || strlen(group) > 63)
                return error_set(err, -EBADMSG, "%s: \"group\" must be a host group name (1-63 characters)", where);
        if (!(c->tcti = strdup(tcti)) || !(c->group = strdup(group)))
                return -ENOMEM;
        if (get_path(o, "bk_cache", base_dir, &c->bk_cache) < 0)
                return error_set(err, -EBADMSG, "%s: \"bk_cache\" must be a directory name", where);
        return 0;
}

/* Unknown members are errors: a misspelt "endpionts" must not be silently ignored. */
static const char *unknown_member(json_t *o, const char *const *known) {
        const char *k;
        json_t *v;
        json_object_foreach(o, k, v) {
                size_t i = 0;
                while (known[i] && strcmp(known[i], k) != 0)
                        i++;
                if (!known[i])
                        return k;
        }
        return NULL;
}

static int name_ok(const char *s) {
        if (!*s || strlen(s) > 64)
                return 0;
        for (; *s; s++)
                if (!(('a' <= *s && *s <= 'z') || ('A' <= *s && *s <= 'Z') || ('0' <= *s && *s <= '9') ||
                      *s == '-' || *s == '_' || *s == '.'))
                        return 0;
        return 1;
}

int provider_config_parse(const char *text, const char *base_dir, struct provider_configs **ret,
                          struct error *err) {
        json_error_t je;
        _cleanup_(json_decrefp) json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &je);
        if (!root)
                return error_set(err, -EBADMSG, "line %d, column %d: %s", je.line, je.column, je.text);
        json_t *provs = json_object_get(root, "providers");
        if (!json_is_object(provs) || json_object_size(provs) == 0)
                return error_set(err, -EBADMSG, "\"providers\" must be an object with at least one provider");
        if (json_object_size(provs) > PROVIDER_MAX)
                return error_set(err, -EBADMSG, "at most %d providers", PROVIDER_MAX);
        const char *bad = unknown_member(root, (const char *const[]) { "providers", "default", NULL });
        if (bad)
                return error_set(err, -EBADMSG, "unknown member \"%s\" at top level", bad);

        _cleanup_(provider_configs_freep) struct provider_configs *cs = calloc(1, sizeof(*cs));
        if (!cs)
                return -ENOMEM;
        const char *name;
        json_t *o;
        json_object_foreach(provs, name, o) {
                char where[96];
                snprintf(where, sizeof(where), "provider \"%.64s\"", name);
                if (!name_ok(name))
                        return error_set(err, -EBADMSG, "%s: names use letters, digits, '-', '_' and '.'", where);
                if (!json_is_object(o))
                        return error_set(err, -EBADMSG, "%s: must be an object", where);
                struct provider_config *c = &cs->p[cs->n++];
                if (!(c->name = strdup(name)))
                        return -ENOMEM;
                const char *type = json_string_value(json_object_get(o, "type"));
                int r;
                if (type && strcmp(type, "kmip") == 0) {
                        c->kind = PROVIDER_KMIP;
                        bad = unknown_member(o, kmip_keys);
                        r = bad ? 0 : parse_kmip(o, base_dir, c, where, err);
                } else if (type && strcmp(type, "native") == 0) {
                        c->kind = PROVIDER_NATIVE;
                        bad = unknown_member(o, native_keys);
                        r = bad ? 0 : parse_native(o, base_dir, c, where, err);
                } else if (type && strcmp(type, "trusted") == 0) {
                        c->kind = PROVIDER_TRUSTED;
                        bad = unknown_member(o, trusted_keys);
                        r = bad ? 0 : parse_trusted(o, base_dir, c, where, err);
                } else
                        return error_set(err, -EBADMSG, "%s: \"type\" must be \"kmip\", \"native\" or \"trusted\"",
                                         where);
                if (bad)
                        return error_set(err, -EBADMSG, "%s: unknown member \"%s\"", where, bad);
                if (r < 0)
                        return r;
        }
        json_t *d = json_object_get(root, "default");
        if (d) {
                if (!json_is_string(d) || !provider_config_find(cs, json_string_value(d)))
                        return error_set(err, -EBADMSG, "\"default\" must name one of the providers");
                if (!(cs->default_name = strdup(json_string_value(d))))
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(cs);
        return 0;
}

int provider_config_load(const char *path, struct provider_configs **ret, struct error *err) {
        if (!path)
                path = PROVIDERS_DEFAULT_PATH;
        FILE *f = fopen(path, "re");
        if (!f)
                return error_set(err, -errno, "%s: %s%s", path, strerror(errno),
                            errno == ENOENT ? " (create it as docs/keys.md describes, or pass --providers FILE)" : "");
        char *text = NULL;
        size_t size = 0;
        FILE *m = open_memstream(&text, &size);
        char buf[4096];
        size_t n;
        while (m && (n = fread(buf, 1, sizeof(buf), f)) > 0 && size < (1U << 20))
                fwrite(buf, 1, n, m);
        fclose(f);
        if (!m || fclose(m) != 0) {
                free(text);
                return -ENOMEM;
        }
        if (size >= (1U << 20)) {
                free(text);
                return error_set(err, -EFBIG, "%s: larger than 1 MiB", path);
        }
        _cleanup_(freep) char *dir = strdup(path);
        if (!dir) {
                free(text);
                return -ENOMEM;
        }
        char *slash = strrchr(dir, '/');
        if (slash)
                *slash = 0;
        struct error inner = { 0 };
        int r = provider_config_parse(text, slash ? (dir[0] ? dir : "/") : ".", ret, &inner);
        free(text);
        if (r < 0)
                return error_set(err, r, "%s: %s", path, inner.text);
        if (!((*ret)->path = strdup(path))) {
                provider_configs_free(*ret);
                *ret = NULL;
                return -ENOMEM;
        }
        return 0;
}

const struct provider_config *provider_config_find(const struct provider_configs *cs, const char *name) {
        if (!name)
                name = cs->default_name;
        if (!name)
                return cs->n == 1 ? &cs->p[0] : NULL;
        for (size_t i = 0; i < cs->n; i++)
                if (strcmp(cs->p[i].name, name) == 0)
                        return &cs->p[i];
        return NULL;
}

const char *provider_kind_name(enum provider_kind k) {
        return k == PROVIDER_NATIVE ? "native" : k == PROVIDER_TRUSTED ? "trusted" : "kmip";
}

void provider_endpoint_text(const struct provider_endpoint *e, char *buf, size_t size) {
        snprintf(buf, size, strchr(e->host, ':') ? "[%s]:%u" : "%s:%u", e->host, e->port);
}
