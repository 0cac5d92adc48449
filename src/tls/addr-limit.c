/* Pending connections per source address: see addr-limit.h. A hash table of
 * counts, chained, one entry per address that has a pending connection now (so its
 * size follows the pending connections, which max-unauthenticated bounds). */
#include "tls/addr-limit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS 4096

struct addr_slot {
        struct addr_slot *next;
        uint8_t key[8];
        uint8_t len;
        unsigned count;
};

struct addr_limit {
        pthread_mutex_t lock;
        unsigned per_address;
        struct addr_slot *bucket[BUCKETS];
};

int addr_limit_new(unsigned per_address, struct addr_limit **ret) {
        struct addr_limit *t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        pthread_mutex_init(&t->lock, NULL);
        t->per_address = per_address;
        *ret = t;
        return 0;
}

void addr_limit_free(struct addr_limit *t) {
        if (!t)
                return;
        for (size_t i = 0; i < BUCKETS; i++)
                while (t->bucket[i]) {
                        struct addr_slot *e = t->bucket[i];
                        t->bucket[i] = e->next;
                        free(e);
                }
        pthread_mutex_destroy(&t->lock);
        free(t);
}

static bool key_of(const struct sockaddr *sa, uint8_t key[static 8], uint8_t *len) {
        if (sa->sa_family == AF_INET) {
                memcpy(key, &((const struct sockaddr_in *) sa)->sin_addr, 4);
                *len = 4;
                return true;
        }
        if (sa->sa_family == AF_INET6) {
                const struct in6_addr *a = &((const struct sockaddr_in6 *) sa)->sin6_addr;
                if (IN6_IS_ADDR_V4MAPPED(a)) {
                        memcpy(key, a->s6_addr + 12, 4);
                        *len = 4;
                } else {
                        memcpy(key, a->s6_addr, 8);
                        *len = 8;
                }
                return true;
        }
        return false;
}

static size_t hash(const uint8_t *key, uint8_t len) {
        uint32_t h = 2166136261u; /* FNV-1a */
        for (uint8_t i = 0; i < len; i++)
                h = (h ^ key[i]) * 16777619u;
        return h % BUCKETS;
}

int addr_limit_acquire(struct addr_limit *t, const struct sockaddr *sa, struct addr_slot **ret) {
        uint8_t key[8], len;
        *ret = NULL;
        if (!key_of(sa, key, &len))
                return 0;
        struct addr_slot **head = &t->bucket[hash(key, len)];
        int r = 0;
        pthread_mutex_lock(&t->lock);
        struct addr_slot *e = *head;
        while (e && (e->len != len || memcmp(e->key, key, len) != 0))
                e = e->next;
        if (!e && (e = calloc(1, sizeof(*e)))) {
                memcpy(e->key, key, len);
                e->len = len;
                e->next = *head;
                *head = e;
        }
        if (!e)
                r = -ENOMEM;
        else if (e->count >= t->per_address)
                r = -EUSERS; /* never for a new entry: it starts at 0, the limit is >= 1 */
        else {
                e->count++;
                *ret = e;
        }
        pthread_mutex_unlock(&t->lock);
        return r;
}

void addr_limit_release(struct addr_limit *t, struct addr_slot *e) {
        if (!e)
                return;
        pthread_mutex_lock(&t->lock);
        if (--e->count == 0) {
                struct addr_slot **p = &t->bucket[hash(e->key, e->len)];
                while (*p != e)
                        p = &(*p)->next;
                *p = e->next;
                free(e);
        }
        pthread_mutex_unlock(&t->lock);
}

void addr_text(const struct sockaddr *sa, char *buf, size_t size) {
        char a[INET6_ADDRSTRLEN] = "?";
        if (sa->sa_family == AF_INET) {
                const struct sockaddr_in *in = (const struct sockaddr_in *) sa;
                inet_ntop(AF_INET, &in->sin_addr, a, sizeof(a));
                snprintf(buf, size, "%s:%u", a, (unsigned) ntohs(in->sin_port));
        } else if (sa->sa_family == AF_INET6) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) sa;
                inet_ntop(AF_INET6, &in6->sin6_addr, a, sizeof(a));
                snprintf(buf, size, "[%s]:%u", a, (unsigned) ntohs(in6->sin6_port));
        } else
                snprintf(buf, size, "?");
}
