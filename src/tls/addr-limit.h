/* How many unauthenticated connections each source address holds, so that one
 * address cannot take every handshake slot (max-unauthenticated-per-address). An
 * IPv4 address counts whole (also as a mapped IPv6 address), an IPv6 address by its
 * /64, which one host usually holds entirely. Thread-safe: the network loops share
 * one table. Used by vmcrypt-kms and vmcrypt-manager. */
#pragma once

#include <stddef.h>
#include <sys/socket.h>

struct addr_limit;
struct addr_slot; /* one address's count */

int addr_limit_new(unsigned per_address, struct addr_limit **ret);
void addr_limit_free(struct addr_limit *t);
/* Count one more connection from sa: 0 with *ret set (NULL for an address family
 * that is not limited), -EUSERS when sa already has per_address, -ENOMEM. */
int addr_limit_acquire(struct addr_limit *t, const struct sockaddr *sa, struct addr_slot **ret);
/* One connection fewer; NULL is fine. */
void addr_limit_release(struct addr_limit *t, struct addr_slot *slot);

/* "ADDR:PORT" or "[V6]:PORT", for logs and the audit. */
void addr_text(const struct sockaddr *sa, char *buf, size_t size);
