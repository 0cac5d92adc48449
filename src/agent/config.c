/* agent.conf: see agent.h and docs/fleet.md. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "fleet/conf.h"
#include "shared/conf.h"

static int set(const char *section, const char *key, const char *value, void *userdata, struct error *err) {
        if (!key || *section)
                return -ENOKEY; /* no sections */
        struct agent_config *c = userdata;
        char *end;
        if (strcmp(key, "manager") == 0)
                snprintf(c->manager, sizeof(c->manager), "%s", value);
        else if (strcmp(key, "ca") == 0)
                fleet_conf_path(c->path, value, c->ca, sizeof(c->ca));
        else if (strcmp(key, "cert") == 0)
                fleet_conf_path(c->path, value, c->cert, sizeof(c->cert));
        else if (strcmp(key, "key") == 0)
                fleet_conf_path(c->path, value, c->key, sizeof(c->key));
        else if (strcmp(key, "libvirt") == 0)
                snprintf(c->libvirt, sizeof(c->libvirt), "%s", value);
        else if (strcmp(key, "providers") == 0)
                fleet_conf_path(c->path, value, c->providers, sizeof(c->providers));
        else if (strcmp(key, "state-dir") == 0)
                fleet_conf_path(c->path, value, c->state_dir, sizeof(c->state_dir));
        else if (strcmp(key, "max-rate") == 0) {
                c->max_rate = strtoull(value, &end, 10);
                if (!*value || *end)
                        return error_set(err, -EINVAL, "max-rate is bytes per second");
        } else if (strcmp(key, "nice") == 0) {
                unsigned long v;
                if (conf_uint(value, 0, 19, &v) < 0)
                        return error_set(err, -EINVAL, "nice is 0 (none) to 19");
                c->nice = (int) v;
        } else if (strcmp(key, "poll-seconds") == 0 || strcmp(key, "inventory-seconds") == 0) {
                unsigned long v;
                if (conf_uint(value, 1, 300, &v) < 0)
                        return error_set(err, -EINVAL, "%s is 1 to 300 seconds", key);
                *(key[0] == 'p' ? &c->poll_seconds : &c->inventory_seconds) = (int) v;
        } else
                return -ENOKEY;
        return 0;
}

int agent_config_read(const char *path, struct agent_config *c, struct error *err) {
        memset(c, 0, sizeof(*c));
        snprintf(c->path, sizeof(c->path), "%s", path);
        c->poll_seconds = 20;
        c->inventory_seconds = 30;
        c->nice = 10;
        int r = conf_read(path, set, c, err);
        if (r < 0)
                return r;
        if (!c->manager[0] || !c->ca[0] || !c->cert[0] || !c->key[0])
                return error_set(err, -EINVAL, "%s needs manager, ca, cert and key", path);
        if (!c->state_dir[0])
                return error_set(err, -EINVAL, "%s needs state-dir (where the agent keeps its job)", path);
        return 0;
}
