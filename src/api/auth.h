/*
 * auth.h - bearer tokens for the HTTP API (SPEC section 10).
 *
 * THREAD: loop (built at start-up, read-only afterwards).
 * Tokens are configured as SHA-256 hex digests (auth { tokens = { { name,
 * sha256, scopes } } }); a request's "Authorization: Bearer TOKEN" is
 * hashed and compared in constant time. Scopes: ingest (POST events),
 * read (GET queries, events, rules, alerts, status, metrics), admin
 * (reloads; admin also grants read and ingest). /v1/health needs none.
 * Without an auth block every request is allowed (loopback by default).
 */
#ifndef TE_API_AUTH_H
#define TE_API_AUTH_H

#include <stddef.h>

#include "../core/err.h"

#define TE_SCOPE_INGEST 1u
#define TE_SCOPE_READ 2u
#define TE_SCOPE_ADMIN 4u

typedef struct te_auth te_auth_t;

/* Builds the token table from the auth block's JSON (te_config_t
 * auth_json). NULL or a block with no tokens sets *out to NULL: auth off.
 * Returns 0, TE_ECONFIG naming the bad token, or TE_ENOMEM. */
int te_auth_new(const char *auth_json, te_auth_t **out, te_err_t *err);

/* Frees the table. NULL is a no-op. */
void te_auth_free(te_auth_t *a);

/* Checks an Authorization header value (may be NULL) for scope. Returns 0
 * when allowed (always when a is NULL), 401 when the token is missing or
 * unknown, 403 when it lacks the scope; msg gets the reason. */
int te_auth_check(const te_auth_t *a, const char *authorization, unsigned scope, char *msg,
                  size_t cap);

#endif
