/*
 * engine_rules.h - the rules side of a running engine: the ruleset, the
 * script set with hot reload, the tick timer, alert persistence through
 * the writer and the stdout notifier.
 *
 * THREAD: loop, except te_engine_rules_open (start-up, before the writer
 * thread owns the store).
 *
 * The one idea: rules only see committed events. te_engine_rules_batch is
 * called from the one place where finished batches come back to the loop
 * (engine.c, complete()), so an event counts once, and only once stored;
 * alert transitions go back to the writer as event-less batches whose
 * `apply` saves the alert and its history row in the writer's transaction.
 */
#ifndef TE_ENGINE_RULES_H
#define TE_ENGINE_RULES_H

#include "core/err.h"
#include "pipeline/writer.h"

struct te_engine;
struct te_store;
struct te_ruleset;
struct te_reload;

/* Creates the alert tables on the write store st (before the writer
 * starts) and reads the pending/firing alerts to restore once the rules
 * are loaded. Allocates e->rules. Returns 0, TE_ESQLITE or TE_ENOMEM. */
int te_engine_rules_open(struct te_engine *e, struct te_store *st, te_err_t *err);

/* Loads the scripts of e->cfg->scripts_dir (rules/ and lib/), restores the
 * persisted alerts, starts watching and the tick timer. Scripts that fail
 * to load are logged and shown in /v1/rules; they do not stop the engine.
 * Returns 0 or TE_ENOMEM / TE_EIO. */
int te_engine_rules_start(struct te_engine *e, te_err_t *err);

/* Feeds a finished batch's committed events to the rules (a failed batch
 * feeds nothing; idempotent re-sends are skipped). Cannot fail. */
void te_engine_rules_batch(struct te_engine *e, const te_batch_t *b);

/* Reloads every script (SIGHUP, POST /v1/rules/reload); cb(ud) runs on
 * the loop once done (or at shutdown). Returns 0 or TE_ENOMEM / TE_ECLOSED
 * (then cb is not called). */
int te_engine_rules_reload(struct te_engine *e, void (*cb)(void *ud), void *ud);

/* The ruleset and the script set for /v1/rules (NULL before start). */
struct te_ruleset *te_engine_rules_set(const struct te_engine *e);
struct te_reload *te_engine_rules_scripts(const struct te_engine *e);

/* The notification side (engine_alerts.h; NULL before open). */
struct te_engine_alerts;
struct te_engine_alerts *te_engine_rules_alerts(const struct te_engine *e);

/* Stops the timer and the watchers (before the writer stops, so that the
 * last alert transitions commit in the drain). Idempotent. */
void te_engine_rules_close(struct te_engine *e);

/* Counters of the rules side for /v1/status and /metrics. */
typedef struct te_engine_rules_counts {
    size_t files;             /* script files known */
    size_t file_errors;       /* files whose last load failed */
    size_t disabled;          /* live scripts disabled (budget or memory cap) */
    size_t rules;             /* live rules and hooks */
    uint64_t rule_errors;     /* run-time errors of rules and hooks, total */
    uint64_t groups_dropped;  /* events not counted: group limits reached */
    uint64_t reloads, load_failures;
    uint64_t notify_sent, notify_failed; /* deliveries of configured notifiers */
} te_engine_rules_counts_t;

/* Fills out (all zero when rules are not running). Cannot fail. */
void te_engine_rules_counts(const struct te_engine *e, te_engine_rules_counts_t *out);

/* Frees everything, after the loop ran its close callbacks. NULL-safe. */
void te_engine_rules_free(struct te_engine *e);

#endif
