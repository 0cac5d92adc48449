/* Provider dispatch: opening a provider by kind, and the wrappers that guarantee
 * an explanation accompanies every failure. */
#include "keys/provider.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "keys/native.h"
#include "shared/x509.h"

int provider_fail(struct provider *p, int r, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->error, sizeof(p->error), fmt, ap);
        va_end(ap);
        return r;
}

const char *provider_error(const struct provider *p) {
        return p ? p->error : "";
}

int provider_error_set(struct error *err, const struct provider *p, int r) {
        return error_set_fault(err, p ? p->fault : ERROR_FAULT_NONE, r, "%s", provider_error(p));
}

int provider_fault(const struct provider *p) {
        return p ? p->fault : ERROR_FAULT_NONE;
}

/* Each call starts without an error. */
static void reset(struct provider *p) {
        p->error[0] = 0;
        p->fault = ERROR_FAULT_NONE;
}

int provider_open(const struct provider_config *c, struct provider **ret) {
        struct provider *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->config = c;
        if (c->kind == PROVIDER_NATIVE)
                p->ops = &provider_native_ops;
        else {
#ifdef VMCRYPT_HAVE_KMIP
                p->ops = c->kind == PROVIDER_TRUSTED ? &provider_trusted_ops : &provider_kmip_ops;
#else
                free(p);
                return -EOPNOTSUPP;
#endif
        }
        *ret = p;
        return 0;
}

int provider_open_by_name(const struct provider_configs *cs, const char *name, struct provider **ret,
                          struct error *err) {
        const struct provider_config *c = provider_config_find(cs, name);
        if (!c && name)
                return error_set(err, -ENOENT, "no key provider named \"%s\" in %s: add it there or use one of the "
                                 "names it lists", name, cs->path ? cs->path : "the provider configuration");
        if (!c)
                return error_set(err, -ENOENT, "%s names several providers and no \"default\": pass --provider NAME",
                                 cs->path ? cs->path : "the provider configuration");
        return provider_open(c, ret);
}

void provider_free(struct provider *p) {
        if (!p)
                return;
        if (p->ops && p->ops->close)
                p->ops->close(p);
        free(p);
}

static int ensure_error(struct provider *p, int r, const char *what) {
        if (r < 0 && !p->error[0])
                provider_fail(p, r, "key provider \"%s\": %s failed: %s", p->config->name, what, strerror(-r));
        return r;
}

int provider_kek_create(struct provider *p, const struct kek_attrs *attrs, char **ret_id) {
        reset(p);
        return ensure_error(p, p->ops->kek_create(p, attrs, ret_id), "creating a KEK");
}

int provider_kek_use(struct provider *p, const char *kek_id, const char *disk, const char *place) {
        reset(p);
        if (!p->ops->kek_use)
                return 0;
        return ensure_error(p, p->ops->kek_use(p, kek_id, disk, place), "recording the disk that uses a KEK");
}

int provider_kek_unuse(struct provider *p, const char *kek_id, const char *disk, const char *place,
                       struct kek_usage *ret) {
        reset(p);
        *ret = (struct kek_usage) { 0 };
        if (!p->ops->kek_unuse)
                return 0;
        return ensure_error(p, p->ops->kek_unuse(p, kek_id, disk, place, ret), "releasing a disk's use of a KEK");
}

void provider_kek_place(const char *path, char *buf, size_t size) {
        char host[256] = "";
        char *abs = realpath(path, NULL);
        (void) gethostname(host, sizeof(host) - 1);
        snprintf(buf, size, "%s:%s", host, abs ? abs : path);
        free(abs);
}

int provider_kek_list(struct provider *p, struct kek_info **ret, size_t *ret_n) {
        reset(p);
        if (!p->ops->kek_list)
                return provider_fail(p, -EOPNOTSUPP, "key provider \"%s\" (%s) keeps no KEKs to list: its KEKs are "
                                     "derived from its primary key", p->config->name, p->ops->kind);
        return ensure_error(p, p->ops->kek_list(p, ret, ret_n), "listing KEKs");
}

int provider_kek_retire(struct provider *p, const char *kek_id) {
        reset(p);
        if (!p->ops->kek_retire)
                return 0;
        return ensure_error(p, p->ops->kek_retire(p, kek_id), "retiring a KEK");
}

int provider_wrap(struct provider *p, const char *kek_id, const struct secret *plain, struct vmcrypt_token *t) {
        reset(p);
        return ensure_error(p, p->ops->wrap(p, kek_id, plain, t), "wrapping the unlock secret");
}

int provider_unwrap(struct provider *p, const struct vmcrypt_token *t, struct secret **ret) {
        reset(p);
        return ensure_error(p, p->ops->unwrap(p, t, ret), "unwrapping the unlock secret");
}

int provider_probe(struct provider *p, unsigned timeout_ms) {
        reset(p);
        if (!p->ops->probe)
                return 0;
        return ensure_error(p, p->ops->probe(p, timeout_ms), "checking the key provider");
}

/* A report leaves the host: the paths providers.json names (certificates, keys,
 * state) become the name of their setting, and the text stays printable ASCII
 * whatever a key server put in it. */
static void redact(const struct provider_config *c, char *msg, size_t size) {
        const struct {
                const char *path, *name;
        } paths[] = {
                { c->key, "<key>" }, { c->cert, "<cert>" }, { c->ca, "<ca>" }, { c->key_file, "<key_file>" },
                { c->state_dir, "<state_dir>" }, { c->bk_cache, "<bk_cache>" },
        };
        for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
                if (!paths[i].path || !*paths[i].path)
                        continue;
                size_t plen = strlen(paths[i].path), nlen = strlen(paths[i].name);
                for (char *at = strstr(msg, paths[i].path); at; at = strstr(at + nlen, paths[i].path)) {
                        size_t tail = strlen(at + plen);
                        if ((size_t) (at - msg) + nlen + tail >= size)
                                break;
                        memmove(at + nlen, at + plen, tail + 1);
                        memcpy(at, paths[i].name, nlen);
                }
        }
        for (char *p = msg; *p; p++)
                if ((unsigned char) *p < 0x20 || (unsigned char) *p > 0x7e)
                        *p = '?';
}

/* One after the other: a host has a few providers, and each probe is bounded. */
int provider_report_all(const char *path, unsigned timeout_ms, struct provider_report **ret, size_t *ret_n,
                        struct error *err) {
        struct provider_configs *cs = NULL;
        int r = provider_config_load(path, &cs, err);
        if (r < 0)
                return r;
        struct provider_report *v = calloc(cs->n ? cs->n : 1, sizeof(*v));
        if (!v) {
                provider_configs_free(cs);
                return error_set(err, -ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < cs->n; i++) {
                const struct provider_config *c = &cs->p[i];
                struct provider_report *o = &v[i];
                snprintf(o->name, sizeof(o->name), "%s", c->name);
                o->kind = provider_kind_name(c->kind);
                o->is_default = cs->default_name && strcmp(cs->default_name, c->name) == 0;
                for (size_t e = 0; e < c->n_endpoints && e < PROVIDER_MAX_ENDPOINTS; e++)
                        provider_endpoint_text(&c->endpoints[e], o->endpoints[o->n_endpoints++],
                                               sizeof(o->endpoints[0]));
                if (c->kind != PROVIDER_NATIVE)
                        o->cert_expires = x509_file_end(c->cert);
                if (c->kind == PROVIDER_NATIVE) {
                        snprintf(o->state_dir, sizeof(o->state_dir), "%s", c->state_dir ? c->state_dir : "");
                        o->native_ready = native_backup_exported(c);
                }
                if (timeout_ms == 0)
                        continue;
                struct provider *p = NULL;
                o->probe = provider_open(c, &p);
                if (o->probe == -EOPNOTSUPP)
                        snprintf(o->message, sizeof(o->message), "this vmcrypt was built without KMIP support");
                else if (o->probe < 0)
                        snprintf(o->message, sizeof(o->message), "%s", strerror(-o->probe));
                else {
                        struct timespec t0, t1;
                        clock_gettime(CLOCK_MONOTONIC, &t0);
                        o->probe = provider_probe(p, timeout_ms);
                        o->fault = provider_fault(p);
                        clock_gettime(CLOCK_MONOTONIC, &t1);
                        o->probe_ms = (unsigned) ((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
                        snprintf(o->message, sizeof(o->message), "%s", o->probe < 0 ? provider_error(p) : "");
                }
                provider_free(p);
                redact(c, o->message, sizeof(o->message));
        }
        *ret_n = cs->n;
        *ret = v;
        provider_configs_free(cs);
        return 0;
}
