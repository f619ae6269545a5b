/*
 * rule.h - declarations made by scripts (te.rule, te.on_event), as C data.
 *
 * THREAD: loop. A script's top level runs te.rule{...} / te.on_event{...};
 * the bindings (script/bind_rule.c) check each spec table and append a
 * te_rule_def_t to the script (script.h). The evaluator (rules/eval.h)
 * instantiates defs into live rules with per-group windows and alert state.
 * Lua functions (condition, value, severity, fn) stay in the script's
 * lua_State and are referenced through the registry (LUA_NOREF when
 * absent).
 */
#ifndef TE_RULES_RULE_H
#define TE_RULES_RULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A `where` matcher on one tag: equal to one of values, or a regex match
 * (te.match("re"), PCRE2, compiled by the binding; re is a pcre2_code *). */
typedef struct te_where {
    char *key;
    char **values;      /* NULL when regex */
    size_t nvalues;
    char *pattern;      /* regex source, NULL when values */
    void *re;           /* pcre2_code *, owned */
    void *md;           /* pcre2_match_data * for re, owned (the def's thread only) */
} te_where_t;

typedef enum {
    TE_RAGG_COUNT = 0, TE_RAGG_SUM, TE_RAGG_AVG, TE_RAGG_MIN, TE_RAGG_MAX,
    TE_RAGG_QUANTILE, TE_RAGG_RATE, TE_RAGG_DISTINCT, TE_RAGG_LAST
} te_ragg_op_t;

/* One named aggregate of a rule: aggs = { errors = te.count{status="error"} }. */
typedef struct te_rule_agg {
    char *name;          /* key in the aggs table */
    te_ragg_op_t op;
    char *field;         /* sum/avg/min/max/quantile/last: field; distinct: tag */
    double q;            /* quantile in [0, 1] */
    te_where_t *filter;  /* optional tag filter, ANDed */
    size_t nfilter;
} te_rule_agg_t;

typedef enum { TE_SEV_INFO = 0, TE_SEV_WARNING, TE_SEV_CRITICAL } te_severity_t;

/* TE_DEF_DETECTOR (te.detector, SPEC 6.3) is a rule whose one aggregate
 * (aggs[0], named "value", made from stat and field) feeds an anomaly
 * detection method per group instead of a condition (rules/eval_detect.c). */
typedef enum { TE_DEF_RULE = 0, TE_DEF_ON_EVENT, TE_DEF_DETECTOR } te_def_type_t;

struct te_detect_params;

typedef struct te_rule_def {
    te_def_type_t type;
    char *name;          /* unique across all loaded scripts */
    char *kind;          /* NULL: every kind (on_event only) */
    te_where_t *where;
    size_t nwhere;
    char **group_by;
    size_t ngroup;
    int64_t window_ns, every_ns, pending_ns, keep_firing_ns, repeat_every_ns;
    te_rule_agg_t *aggs;
    size_t naggs;
    int condition_ref;   /* rule: function(a) -> bool */
    int value_ref;       /* rule: function(a) -> number, or LUA_NOREF */
    int severity_ref;    /* function(a) -> "info"|"warning"|"critical", or LUA_NOREF */
    te_severity_t severity; /* when severity_ref is LUA_NOREF */
    char *summary;       /* template: "{{provider}} {{value|pct}}" */
    char **label_keys, **label_values;
    size_t nlabels;
    char **notify;       /* notifier names; default { "stdout" } */
    size_t nnotify;
    size_t max_groups;   /* cardinality limit, default 10,000 */
    int fn_ref;          /* on_event: function(ev, ctx) */
    int line;            /* line of the declaration in its file */
    /* detector only (detect/detect.h): a built-in method, or a Lua function */
    struct te_detect_params *method; /* owned (plain data); NULL with method_ref */
    int method_ref;      /* function(value, state, t) -> anomalous, score, baseline */
    char *stat;          /* as written: "p95", "avg", "count", ... */
} te_rule_def_t;

/* Frees a def and everything it owns (not the Lua refs: the script does).
 * NULL is a no-op. */
void te_rule_def_free(te_rule_def_t *def);

/* Puts def's aggs (by name), where matchers and agg filters (by key) in a
 * canonical order. Bindings collect them with lua_next, whose order
 * depends on each lua_State's hash seed; hot reload compares defs by
 * position, so an unchanged rule must come out the same every load.
 * Cannot fail. */
void te_rule_def_normalise(te_rule_def_t *def);

/* True when the event's tags satisfy every matcher (C-side, no Lua). */
struct te_event;
bool te_where_match(const te_where_t *where, size_t n, const struct te_event *ev);

/* Parses "info|warning|critical"; returns 0 or TE_EINVAL. */
int te_severity_parse(const char *s, te_severity_t *out);
const char *te_severity_name(te_severity_t s);

#endif
