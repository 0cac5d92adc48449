/* Between the kmip provider and its trusted variant (not a public interface). */
#pragma once

#include "keys/provider.h"
#include "kmip/client.h"

#define TRUSTED_ATTR_REQUIRE_ATTESTATION "x-vmcrypt-Require-Attestation"

struct trusted_state;

/* The KMIP client of a kmip or trusted provider (connecting lazily); NULL on
 * failure, with the reason in p's error. */
struct kmip_client *provider_kmip_client(struct provider *p);
/* Make client attest with this host's TPM when the KMS asks (trusted providers). */
int trusted_attach(struct provider *p, struct kmip_client *client, struct trusted_state **ret);
/* Release the TPM; NULL is fine. */
void trusted_detach(struct trusted_state *t);
