/*
 * auth.c - bearer tokens (see auth.h). Only SHA-256 digests of tokens are
 * kept, so the configuration file holds no secret that opens the API.
 */
#include "auth.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

typedef struct token {
    char name[64];
    unsigned char digest[32];
    unsigned scopes;
} token_t;

struct te_auth {
    token_t *tokens;
    size_t n;
};

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int parse_token(const cJSON *t, size_t i, token_t *out, te_err_t *err)
{
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(t, "name"));
    const char *hex = cJSON_GetStringValue(cJSON_GetObjectItem(t, "sha256"));
    snprintf(out->name, sizeof(out->name), "%s", name ? name : "");
    if (!hex || strlen(hex) != 64)
        return te_err_set(err, TE_ECONFIG,
                          "auth.tokens[%zu]: sha256 must be 64 hex digits (sha256sum of the token)",
                          i + 1);
    for (size_t k = 0; k < 32; k++) {
        int hi = hexval(hex[2 * k]), lo = hexval(hex[2 * k + 1]);
        if (hi < 0 || lo < 0)
            return te_err_set(err, TE_ECONFIG, "auth.tokens[%zu]: sha256 is not hex", i + 1);
        out->digest[k] = (unsigned char)(hi << 4 | lo);
    }
    const cJSON *scopes = cJSON_GetObjectItem(t, "scopes"), *s;
    if (!scopes) {
        out->scopes = TE_SCOPE_READ; /* the least a token can do */
        return 0;
    }
    cJSON_ArrayForEach(s, scopes)
    {
        const char *v = cJSON_GetStringValue(s);
        if (v && strcmp(v, "ingest") == 0)
            out->scopes |= TE_SCOPE_INGEST;
        else if (v && strcmp(v, "read") == 0)
            out->scopes |= TE_SCOPE_READ;
        else if (v && strcmp(v, "admin") == 0)
            out->scopes |= TE_SCOPE_ADMIN | TE_SCOPE_READ | TE_SCOPE_INGEST;
        else
            return te_err_set(err, TE_ECONFIG,
                              "auth.tokens[%zu]: unknown scope \"%s\" (ingest, read or admin)",
                              i + 1, v ? v : "?");
    }
    return 0;
}

int te_auth_new(const char *auth_json, te_auth_t **out, te_err_t *err)
{
    *out = NULL;
    if (!auth_json)
        return 0;
    cJSON *root = cJSON_Parse(auth_json);
    const cJSON *tokens = root ? cJSON_GetObjectItem(root, "tokens") : NULL;
    int n = tokens ? cJSON_GetArraySize(tokens) : 0;
    if (n <= 0) {
        cJSON_Delete(root);
        return 0;
    }
    te_auth_t *a = calloc(1, sizeof(*a));
    if (a)
        a->tokens = calloc((size_t)n, sizeof(*a->tokens));
    if (!a || !a->tokens) {
        te_auth_free(a);
        cJSON_Delete(root);
        return te_err_set(err, TE_ENOMEM, "auth: out of memory");
    }
    for (int i = 0; i < n; i++) {
        int rc = parse_token(cJSON_GetArrayItem(tokens, i), (size_t)i, &a->tokens[i], err);
        if (rc < 0) {
            te_auth_free(a);
            cJSON_Delete(root);
            return rc;
        }
    }
    a->n = (size_t)n;
    cJSON_Delete(root);
    *out = a;
    return 0;
}

void te_auth_free(te_auth_t *a)
{
    if (!a)
        return;
    free(a->tokens);
    free(a);
}

static const char *scope_name(unsigned scope)
{
    return scope == TE_SCOPE_INGEST ? "ingest" : scope == TE_SCOPE_ADMIN ? "admin" : "read";
}

int te_auth_check(const te_auth_t *a, const char *authorization, unsigned scope, char *msg,
                  size_t cap)
{
    if (!a)
        return 0;
    if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0) {
        snprintf(msg, cap, "missing bearer token (send \"Authorization: Bearer TOKEN\")");
        return 401;
    }
    const char *tok = authorization + 7;
    while (*tok == ' ')
        tok++;
    unsigned char digest[32];
    unsigned int dlen = 0;
    if (!EVP_Digest(tok, strlen(tok), digest, &dlen, EVP_sha256(), NULL) || dlen != 32) {
        snprintf(msg, cap, "cannot hash the token");
        return 401;
    }
    for (size_t i = 0; i < a->n; i++) {
        if (CRYPTO_memcmp(digest, a->tokens[i].digest, 32) != 0)
            continue;
        if (a->tokens[i].scopes & scope)
            return 0;
        snprintf(msg, cap, "token \"%s\" lacks the \"%s\" scope", a->tokens[i].name,
                 scope_name(scope));
        return 403;
    }
    snprintf(msg, cap, "unknown token");
    return 401;
}
