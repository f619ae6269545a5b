/*
 * alert.h - one alert instance (SPEC section 7) and its state machine.
 *
 * THREAD: loop (no clock reads: every function takes now_ns, so a virtual
 * clock drives it exactly like the real one).
 *
 * Identity: the fingerprint is the hex of a 64-bit hash of the rule name
 * and the group values, so one group of one rule has one instance, never
 * two. An episode (pending -> firing -> resolved) keeps one id; the first
 * true evaluation after a resolution starts a new episode with a new id
 * drawn from a seedable generator (tests are deterministic).
 *
 * States and transitions, per evaluation of the condition c at now:
 *   inactive|resolved, c     -> pending (TE_ALERT_T_PENDING), or firing
 *                               (TE_ALERT_T_FIRING) when pending_ns is 0
 *   pending, c, now - active_at >= pending_ns -> firing (TE_ALERT_T_FIRING)
 *   pending, !c              -> inactive (TE_ALERT_T_CLEARED: recorded in
 *                               history, never notified)
 *   firing, !c for keep_firing_ns (0: the first false evaluation)
 *                            -> resolved (TE_ALERT_T_RESOLVED)
 *   firing, now - last_notified >= repeat_every_ns (> 0)
 *                            -> firing (TE_ALERT_T_REPEAT: notify again)
 * A step yields at most one transition.
 */
#ifndef TE_RULES_ALERT_H
#define TE_RULES_ALERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "rules/rule.h"

typedef enum {
    TE_ALERT_INACTIVE = 0,
    TE_ALERT_PENDING,
    TE_ALERT_FIRING,
    TE_ALERT_RESOLVED
} te_alert_state_t;

typedef enum {
    TE_ALERT_T_NONE = 0,
    TE_ALERT_T_PENDING,  /* inactive -> pending */
    TE_ALERT_T_FIRING,   /* inactive|pending -> firing */
    TE_ALERT_T_REPEAT,   /* still firing, repeat_every elapsed */
    TE_ALERT_T_RESOLVED, /* firing -> resolved */
    TE_ALERT_T_CLEARED   /* pending -> inactive (condition false before pending elapsed) */
} te_alert_transition_t;

#define TE_ALERT_ID_LEN 16 /* hex digits */

/* An alert instance. Every pointer is owned by the alert (te_alert_clear). */
typedef struct te_alert {
    char id[TE_ALERT_ID_LEN + 1];          /* "" while inactive and never active */
    char fingerprint[TE_ALERT_ID_LEN + 1];
    char *rule;
    te_alert_state_t state;
    te_severity_t severity;
    char **group_keys, **group_values;    /* group_by order; a missing tag is "" */
    size_t ngroup;
    char **label_keys, **label_values;
    size_t nlabels;
    char **notify;
    size_t nnotify;
    bool has_value;
    double value;
    char *summary;                        /* rendered; NULL when none */
    char *reason;                         /* why it resolved: NULL (condition), "rule removed", ... */
    int64_t active_at_ns;                 /* pending (or firing) start of the episode */
    int64_t starts_at_ns;                 /* firing start; active_at while pending */
    int64_t ends_at_ns;                   /* resolution time; 0 while active */
    int64_t updated_ns;                   /* last transition or evaluation that changed it */
    int64_t last_notified_ns;             /* last FIRING / REPEAT */
    int64_t false_since_ns;               /* first false evaluation while firing; 0 = none */
    /* lifecycle, set by the engine (never by te_alert_step): */
    char *acked_by, *ack_comment;         /* NULL: not acknowledged */
    int64_t acked_at_ns;                  /* 0: not acknowledged */
    bool flapping;                        /* flap detection holds its notifications */
} te_alert_t;

/* Timing of a rule (from its te_rule_def_t). */
typedef struct te_alert_policy {
    int64_t pending_ns, keep_firing_ns, repeat_every_ns;
} te_alert_policy_t;

/* Clears a (all zero: inactive, no strings). Cannot fail. */
void te_alert_init(te_alert_t *a);

/* Frees what a owns and re-initialises it. NULL is a no-op. */
void te_alert_clear(te_alert_t *a);

/* Deep-copies src into dst (dst is cleared first). Returns 0 or TE_ENOMEM
 * (then dst is left initialised and empty). */
int te_alert_copy(te_alert_t *dst, const te_alert_t *src);

/* Sets the identity of a: rule name and group keys/values (copied; NULL
 * values are stored as ""), and computes the fingerprint. Returns 0 or
 * TE_ENOMEM (then a's identity is unchanged). */
int te_alert_set_identity(te_alert_t *a, const char *rule, const char *const *keys,
                          const char *const *values, size_t n);

/* Replaces labels / notify list / summary (copies). Return 0 or TE_ENOMEM
 * (then the previous value is kept). */
int te_alert_set_labels(te_alert_t *a, char *const *keys, char *const *values, size_t n);
int te_alert_set_notify(te_alert_t *a, char *const *names, size_t n);
int te_alert_set_summary(te_alert_t *a, const char *summary);

/* The fingerprint of (rule, values) as 16 hex digits into out[17]. A NULL
 * value hashes like "". Cannot fail. */
void te_alert_fingerprint(const char *rule, const char *const *values, size_t n, char out[17]);

/* Draws the next id from *rng (splitmix64) as 16 hex digits into out[17].
 * The same seed gives the same sequence. Cannot fail. */
void te_alert_new_id(uint64_t *rng, char out[17]);

/* Applies one evaluation (cond) at now_ns under p; see the table at the
 * top. A new episode takes its id from *rng and clears value, reason and
 * ends_at. Returns the transition (TE_ALERT_T_NONE when nothing to report).
 * Cannot fail. */
te_alert_transition_t te_alert_step(te_alert_t *a, const te_alert_policy_t *p, bool cond,
                                    int64_t now_ns, uint64_t *rng);

/* Forces an active alert to resolved at now_ns with reason (copied; e.g.
 * "rule removed"). Returns TE_ALERT_T_RESOLVED when it was firing,
 * TE_ALERT_T_CLEARED when it was pending, TE_ALERT_T_NONE otherwise. */
te_alert_transition_t te_alert_force_resolve(te_alert_t *a, const char *reason, int64_t now_ns);

/* Records an acknowledgement of a's episode (copies by and comment; NULL
 * by becomes "unknown", NULL comment stays NULL). Returns 0 or TE_ENOMEM
 * (then a is unchanged). */
int te_alert_set_ack(te_alert_t *a, const char *by, const char *comment, int64_t at_ns);

/* Renders a summary template into a malloc'd string (caller frees):
 *   {{name}}         the group value of tag `name` ("" when the tag is not a
 *                    group key or the event lacked it)
 *   {{labels.name}}  a label value
 *   {{rule}} {{severity}} {{fingerprint}}
 *   {{value}}        the value with %g (6 significant digits; "" when none)
 *   {{value|pct}}    value * 100 with one decimal and a % (0.083 -> "8.3%")
 *   {{value|round}}  the value rounded to an integer ("12")
 * Spaces inside the braces are ignored. An unknown name or filter, or an
 * unclosed "{{", returns NULL with TE_EINVAL naming it ("summary: unknown
 * filter \"pc\" in {{value|pc}}"); TE_ENOMEM. */
char *te_alert_render(const char *tmpl, const te_alert_t *a, te_err_t *err);

/* "inactive" | "pending" | "firing" | "resolved" and back (parse returns 0
 * or TE_EINVAL). */
const char *te_alert_state_name(te_alert_state_t s);
int te_alert_state_parse(const char *s, te_alert_state_t *out);

/* "pending" | "firing" | "repeat" | "resolved" | "cleared" | "none". */
const char *te_alert_transition_name(te_alert_transition_t t);

/* The alert as listed by GET /v1/alerts and `alerts list`: the "alert"
 * object of te_alert_to_json plus "state", "reason", "active_at",
 * "updated_at", "acked_by", "ack_comment", "acked_at" (null when not
 * acknowledged) and "flapping". Caller owns the result (cJSON_Delete); NULL on ENOMEM. */
struct cJSON *te_alert_to_cjson(const te_alert_t *a);

/* The SPEC section 7 webhook payload of a, compact, keys in this order:
 * {"version":1,"status":STATUS,"alert":{"id","rule","fingerprint","severity",
 * "group":{...},"labels":{...},"value":N|null,"summary":S|null,
 * "starts_at":RFC3339,"ends_at":RFC3339|null}}. status NULL means the
 * alert's state name. Returns a malloc'd string (caller frees) or NULL on
 * allocation failure. */
char *te_alert_to_json(const te_alert_t *a, const char *status);

/* Rebuilds an alert from its SPEC section 7 payload (te_alert_to_json's
 * output): identity, severity, group, labels, value, summary, starts_at,
 * ends_at, and state firing or resolved from "status" (copied into
 * status[status_cap] when not NULL). Returns 0, TE_EPARSE (not such a
 * payload) or TE_ENOMEM; out is initialised either way. */
int te_alert_from_json(const char *json, te_alert_t *out, char *status, size_t status_cap);

#endif
