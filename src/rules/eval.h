/*
 * eval.h - the live rules of all loaded scripts: per-group windows fed by
 * events, evaluated on ticks, driving alert instances (SPEC 6.1, 6.2, 7).
 *
 * THREAD: loop. No clock reads for logic: every function takes now_ns, so
 * the engine's clock or a test's virtual clock drives it the same way
 * (time per rule, cpu_ns, is measured with CLOCK_MONOTONIC, for status
 * only).
 *
 * The one idea: events never touch Lua on the rule path. te_ruleset_feed
 * matches kind and `where` in C, finds the group in an open-addressing map
 * keyed by a 64-bit hash of the group values (full-key compare), and adds
 * to each aggregate's time-sliced window (rules/window.h). Lua runs only at
 * ticks, once per group of a due rule: condition(a, g), value(a, g),
 * severity(a, g), where `a` maps aggregate names to numbers (nil when the
 * window has no data; count, rate and distinct are always numbers) and `g`
 * maps group_by tags to their values. on_event hooks are the exception:
 * they run per matching event by design (SPEC 6.2).
 *
 * Groups: fingerprint = rule name + group_by tag values (a missing tag is
 * ""). At most max_groups live groups per rule (default 10,000); an event
 * that would make one more is not counted in any group, groups_dropped
 * increments and the rule logs `group limit reached (N)` once (also shown
 * as its warning). A group with no event for two windows that is not
 * pending or firing expires at a tick.
 *
 * Schedule: a rule evaluates at every multiple of its `every` (epoch
 * aligned); te_ruleset_tick evaluates each rule whose time has come once,
 * as of now_ns (a late tick does not replay missed evaluations).
 */
#ifndef TE_RULES_EVAL_H
#define TE_RULES_EVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/event.h"
#include "rules/alert.h"
#include "script/script.h"

typedef struct te_ruleset te_ruleset_t;

/* Called for every alert transition (from tick, feed's ctx.alert, replace,
 * remove). a is borrowed for the call; the engine persists it
 * (te_store_alerts_save) and notifies (not for TE_ALERT_T_CLEARED). It
 * must not add, replace or remove scripts, nor feed or tick. */
typedef void (*te_alert_cb)(void *ud, const te_alert_t *a, te_alert_transition_t t);

/* Called by ctx.emit{kind=..., tags={...}, fields={...}} in an on_event
 * hook with a new event (the callee takes it: te_event_free). Return 0, or
 * non-zero to make ctx.emit return nil, "emit refused". It must not call
 * te_ruleset_feed (queue the event; feed it after the current feed). */
typedef int (*te_emit_cb)(void *ud, te_event_t *ev);

typedef struct te_ruleset_opts {
    uint64_t id_seed;          /* seed of alert ids (the engine passes random bits) */
    te_alert_cb on_alert;      /* may be NULL */
    void *alert_ud;
    te_emit_cb on_emit;        /* may be NULL: ctx.emit then raises an error */
    void *emit_ud;
    int64_t hook_alert_ns;     /* lifetime of a ctx.alert without re-raise; 0 = 5 min */
} te_ruleset_opts_t;

/* Per-rule status for /v1/rules and `rules list`. Strings point into the
 * ruleset and stay valid until the next call that changes it. */
typedef struct te_rule_status {
    const char *name;
    const char *type;          /* "rule" | "on_event" | "detector" */
    const char *status;        /* "ok" | "error" | "disabled" */
    const char *error;         /* last error, "" when none */
    const char *warning;       /* e.g. "group limit reached (10000)", "" when none */
    int64_t last_eval_ns;      /* 0: never */
    uint64_t evals;            /* rule: evaluations (per tick); on_event: hook calls */
    uint64_t errors;
    uint64_t cpu_ns;           /* CPU time spent in evaluations / hook calls */
    size_t groups;
    uint64_t groups_dropped;
} te_rule_status_t;

/* Makes an empty ruleset (opts may be NULL). NULL on ENOMEM with err set. */
te_ruleset_t *te_ruleset_new(const te_ruleset_opts_t *opts, te_err_t *err);

/* Frees every live rule and group (no callbacks). Scripts are not freed,
 * and must still be alive (hook contexts are unreferenced in their
 * states): free the ruleset first, then the scripts. NULL is a no-op. */
void te_ruleset_free(te_ruleset_t *rs);

/* Instantiates every TE_DEF_RULE / TE_DEF_ON_EVENT def of s (s must
 * outlive its rules: te_ruleset_remove first). A name already live in the
 * ruleset gives TE_EEXISTS ("rules: rule \"x\" of a.lua is already defined
 * by b.lua"), a bad window TE_EINVAL; on failure nothing is added. */
int te_ruleset_add(te_ruleset_t *rs, te_script_t *s, int64_t now_ns, te_err_t *err);

/* Hot reload: swaps old's rules for new's. A rule whose name is in both and
 * whose def is unchanged in what shapes its state (kind, where, group_by,
 * window, aggs; type) keeps its groups, windows and alert instances and
 * takes the new functions, timing, severity, summary, labels and notify.
 * A changed rule starts fresh and a rule gone is dropped; their pending or
 * firing alerts are resolved now with reason "rule changed" / "rule
 * removed" (cb called). On failure (TE_EEXISTS, TE_EINVAL, TE_ENOMEM) old's
 * rules are untouched. */
int te_ruleset_replace(te_ruleset_t *rs, te_script_t *old_s, te_script_t *new_s, int64_t now_ns,
                       te_err_t *err);

/* Drops every rule of s, resolving its active alerts with reason "rule
 * removed" (cb called). Unknown s is a no-op. */
void te_ruleset_remove(te_ruleset_t *rs, te_script_t *s, int64_t now_ns);

/* Feeds one event (ev->ts_ns is its time; now_ns the engine clock): rules
 * of the event's kind whose where matches get it in their group's windows;
 * matching on_event hooks run fn(ev, ctx). Cannot fail (errors are counted
 * per rule). */
void te_ruleset_feed(te_ruleset_t *rs, const te_event_t *ev, int64_t now_ns);

/* Evaluates every rule due at now_ns, expires idle groups and hook alerts
 * past their lifetime. Returns the number of rules evaluated. */
int te_ruleset_tick(te_ruleset_t *rs, int64_t now_ns);

/* The earliest time a rule or hook alert needs a tick (INT64_MAX: none). */
int64_t te_ruleset_next_tick(const te_ruleset_t *rs);

/* Re-attaches a persisted pending/firing alert (from
 * te_store_alerts_load_active) to its rule's group by fingerprint. Returns
 * 0; TE_ENOTFOUND when no live rule has that name or the group keys differ
 * from its group_by (the alert is then left for the caller to resolve);
 * TE_EINVAL for an inactive/resolved alert; TE_ENOMEM. */
int te_ruleset_restore(te_ruleset_t *rs, const te_alert_t *a, int64_t now_ns, te_err_t *err);

/* Fills out[0..cap) with the status of s's rules in declaration order
 * (s NULL: every live rule, in load order). Returns the number of rules
 * (which may exceed cap). */
size_t te_ruleset_status(const te_ruleset_t *rs, const te_script_t *s, te_rule_status_t *out,
                         size_t cap);

/* The live alert of rule `name` with fingerprint fp (borrowed), or NULL. */
const te_alert_t *te_ruleset_alert(const te_ruleset_t *rs, const char *name, const char *fp);

/* --- detector state persistence (rules/eval_detect.c, SPEC 6.7) --- */

/* One detector group's state, as te_ruleset_detect_snapshot hands it out
 * and te_ruleset_detect_restore takes it back. key is the group's packed
 * items ("a\0b\0", keylen bytes); sig the signature of the detector's
 * definition (a changed definition does not take an old state); blob the
 * method state (te_detect_save, or the encoded table of a Lua method). */
typedef struct te_detect_state {
    const char *rule;
    const char *key;
    size_t keylen;
    uint64_t sig;
    int64_t seen_ns;     /* last event of the group (0: unknown) */
    const unsigned char *blob;
    size_t bloblen;
} te_detect_state_t;

/* Calls cb once per detector group with a state (strings and blob are
 * borrowed for the call). A non-zero return from cb stops the walk and is
 * returned. Lua method states are encoded in their script's state, so
 * this runs on the loop thread. Returns 0, TE_ENOMEM or cb's value. */
int te_ruleset_detect_snapshot(te_ruleset_t *rs, int (*cb)(void *ud, const te_detect_state_t *st),
                               void *ud);

/* Gives a persisted state to the group of live detector st->rule (making
 * the group when needed, as te_ruleset_restore does for alerts). The state
 * is decoded at the group's next evaluation. Returns 0; TE_ENOTFOUND when
 * no live detector has that name or its signature differs (the state is
 * then stale: the caller drops it); TE_ENOMEM. */
int te_ruleset_detect_restore(te_ruleset_t *rs, const te_detect_state_t *st, int64_t now_ns,
                              te_err_t *err);

/* Number of events dropped because a group limit was reached (all rules). */
uint64_t te_ruleset_groups_dropped(const te_ruleset_t *rs);

#endif
