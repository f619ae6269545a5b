/*
 * silence.h - tag matchers and silences (SPEC section 7: "silences (tag
 * matchers, until) suppress notifications but keep state").
 *
 * THREAD: any (pure data; no clock reads: callers pass now_ns).
 *
 * A matcher is NAME=VALUE or NAME!=VALUE. NAME is a group tag or a label
 * of the alert, or one of the alert's own names: `rule` (also
 * `alertname`, as in Alertmanager) and `severity`. An alert lacking the
 * tag has "" for it, so `provider!=openai` matches an alert without a
 * provider and `provider=` matches only those. A silence matches an alert
 * when every one of its matchers does, between starts_at (inclusive) and
 * ends_at (exclusive).
 */
#ifndef TE_ALERTS_SILENCE_H
#define TE_ALERTS_SILENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "rules/alert.h"

struct cJSON;

typedef struct te_matcher {
    char *name, *value; /* owned */
    bool negate;        /* != */
} te_matcher_t;

typedef struct te_silence {
    char id[TE_ALERT_ID_LEN + 1];
    te_matcher_t *m; /* owned, nm entries (at least one) */
    size_t nm;
    int64_t starts_ns, ends_ns, created_ns;
    char *comment, *created_by; /* owned, may be NULL */
} te_silence_t;

/* Parses "name=value" / "name!=value" into out (strings copied). An empty
 * name or a missing operator is TE_EINVAL naming the text; TE_ENOMEM. */
int te_matcher_parse(const char *text, te_matcher_t *out, te_err_t *err);

/* True when every matcher of m[0..n) matches a (n == 0: true). */
bool te_matchers_match(const te_matcher_t *m, size_t n, const te_alert_t *a);

/* The value a shows for name ("" when it has none): rule/alertname,
 * severity, a group tag, then a label. Never NULL. */
const char *te_alert_tag(const te_alert_t *a, const char *name);

/* True when s is active at now and matches a. */
bool te_silence_matches(const te_silence_t *s, const te_alert_t *a, int64_t now_ns);

/* Frees what s owns and zeroes it. NULL-safe. */
void te_silence_clear(te_silence_t *s);

/* Deep copy (dst is overwritten, not freed). 0 or TE_ENOMEM (dst zeroed). */
int te_silence_copy(te_silence_t *dst, const te_silence_t *src);

/* The matchers as stored: [{"name":..,"value":..,"op":"="|"!="},...].
 * Malloc'd text (cJSON_free) or NULL on ENOMEM. */
char *te_matchers_to_json(const te_matcher_t *m, size_t n);

/* Parses matchers from JSON in any of the forms an API client may send:
 * an object {"provider":"openai"} (all "="), an array of "name=value"
 * strings, or an array of {"name","value","op"|"isEqual"} objects. At
 * least one matcher is required. On success *out (malloc'd) / *n are set.
 * Returns 0, TE_EINVAL naming the problem, or TE_ENOMEM. */
int te_matchers_from_cjson(const struct cJSON *j, te_matcher_t **out, size_t *n, te_err_t *err);

/* Frees n matchers and the array. NULL-safe. */
void te_matchers_free(te_matcher_t *m, size_t n);

/* The silence as GET /v1/silences lists it: {"id","matchers":[...],
 * "starts_at","ends_at","comment","created_by","created_at","state":
 * "active"|"pending"|"expired"}. NULL on ENOMEM. */
struct cJSON *te_silence_to_cjson(const te_silence_t *s, int64_t now_ns);

#endif
