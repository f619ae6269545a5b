/*
 * redact.h - redaction of PII and secrets at ingest (SPEC section 10, the
 * `redact` block of section 6.0).
 *
 * THREAD: a compiled te_redact_t is read-only but for its counters (atomic),
 * so any number of threads may call te_redact_string / te_redact_event on
 * it at once. te_redact_install / te_redact_uninstall run at start-up and
 * shutdown, before ingest threads start and after they stop.
 *
 * The one idea: the block is compiled once (PCRE2 with JIT for the user's
 * patterns and the regex-shaped builtins, small hand scanners for the rest),
 * and every string is first run through one cheap pass that says which
 * detectors could match at all (no '@': no email; fewer than 13 digits: no
 * card; no run of 16 token characters: no API key ...), so the common string
 * costs one table-driven scan and no regex. Matches are replaced by
 * "[REDACTED:<type>]" (type: email, card, api_key, ipv4, jwt, pattern).
 * Redaction runs on every tag value and every string value of the body;
 * keys, kind, source and the ids are left alone (see docs/redaction.md).
 * Events are redacted where they are parsed (te_ndjson_add_event and the
 * HTTP single-object path), before any rule, hook or store sees them.
 */
#ifndef TE_INGEST_REDACT_H
#define TE_INGEST_REDACT_H

#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"
#include "../core/event.h"

/* What a redaction replaced; the names are the metric labels and the text
 * inside "[REDACTED:...]". */
typedef enum {
    TE_REDACT_EMAIL = 0,
    TE_REDACT_CARD,
    TE_REDACT_API_KEY,
    TE_REDACT_IPV4,
    TE_REDACT_JWT,
    TE_REDACT_PATTERN, /* any of the user's patterns */
    TE_REDACT_NTYPES
} te_redact_type_t;

typedef struct te_redact te_redact_t;

/* Name of a type ("email", ..., "pattern"), NULL when out of range. */
const char *te_redact_type_name(int type);

/* Compiles a redact block given as the JSON text config.c keeps
 * (cfg->redact_json: {"builtin":["email",...],"patterns":["re",...]}).
 * json NULL means no block: *out = NULL and 0. A malformed pattern is
 * TE_ECONFIG: `patterns[2] "secret-(": missing closing parenthesis (at
 * offset 8)`; an unknown builtin or a bad shape is TE_ECONFIG too. Returns 0
 * (caller owns *out: te_redact_free) or a negative code. */
int te_redact_compile(const char *json, te_redact_t **out, te_err_t *err);

/* Frees a redactor. NULL is a no-op. */
void te_redact_free(te_redact_t *r);

/* Redacts one string s (len bytes). When nothing matched: 0 and *out NULL.
 * Otherwise 0 and *out a malloc'd, NUL-terminated copy with every match
 * replaced (caller frees), *out_len its length; the counters of r grow by
 * the matches found. TE_ENOMEM when memory ran out. */
int te_redact_string(te_redact_t *r, const char *s, size_t len, char **out, size_t *out_len);

/* Redacts every tag value and every string value of the body of *ev. When
 * something matched, *ev is replaced by a rebuilt event (the old one is
 * freed) with the same time, kind, ids, tag keys, fields and size_bytes.
 * r NULL is a no-op. Returns 0, or TE_ENOMEM/TE_EINVAL with err set (*ev is
 * then untouched and still owned by the caller). */
int te_redact_event(te_redact_t *r, te_event_t **ev, te_err_t *err);

/* Copies the number of redactions so far, per type, into out. */
void te_redact_counts(const te_redact_t *r, uint64_t out[TE_REDACT_NTYPES]);

/* The process's ingest redactor: compiles json (see te_redact_compile) and
 * makes it the one te_redact_active returns; json NULL installs none.
 * serve and ingest call it once at start-up. Returns 0 or a negative code
 * (nothing installed). */
int te_redact_install(const char *json, te_err_t *err);

/* Frees the installed redactor; te_redact_active returns NULL afterwards. */
void te_redact_uninstall(void);

/* The installed redactor, NULL when none. */
te_redact_t *te_redact_active(void);

#endif
