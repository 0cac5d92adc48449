/* Between the API's files (api.c: routes and most handlers; api-providers.c:
 * the key provider resources). Not a public interface. */
#pragma once

#include "fleet/api.h"

/* The request body as a JSON object ({} when there is none). */
int fleet_api_body_object(const struct fleet_request *req, json_t **ret, struct error *err);
/* Whether value is one of the |-separated words of allowed ("a|b|c"). */
bool fleet_api_one_of(const char *value, const char *allowed);
/* Fill resp with status and body (owned); returns 0. */
int fleet_api_reply(struct fleet_response *resp, int status, json_t *body);

/* An agent's report of its host's key providers: an array of {name, kind,
 * endpoints, default, state, message} and nothing else. */
int fleet_api_valid_host_providers(json_t *providers, struct error *err);

int fleet_api_get_providers(struct fleet_store *s, const struct fleet_request *req, char a[][256],
                            struct fleet_response *resp, struct error *err);
int fleet_api_put_provider(struct fleet_store *s, const struct fleet_request *req, char a[][256],
                           struct fleet_response *resp, struct error *err);
int fleet_api_delete_provider(struct fleet_store *s, const struct fleet_request *req, char a[][256],
                              struct fleet_response *resp, struct error *err);
