/*
 * engine_alerts.h - the notification side of a running engine: the
 * policy (silences, inhibition, acks, flaps), the persistent outbox, the
 * dispatcher over the configured notifiers, the stdout notifier, and the
 * operator actions (ack, silence, unsilence) from HTTP and the CLI.
 *
 * THREAD: loop, except te_engine_alerts_open (start-up, before the writer
 * thread owns the store).
 *
 * The path of a transition: the ruleset reports it (engine_rules.c) ->
 * te_engine_alerts_transition asks the policy who hears about it -> one
 * writer batch saves the alert row, its history row and one outbox row
 * per notifier it names (pending, or suppressed with the reason) in the
 * writer's transaction -> once committed, the pending rows go to the
 * dispatcher -> each delivery's end updates its row (delivered, pending
 * with attempts and error, failed). A restart sends the pending rows
 * again: at-least-once.
 *
 * The CLI changes acks and silences in the database directly; about once
 * a second (alerts { poll = "1s" }) the engine reads the action journal
 * and applies what it did not do itself.
 */
#ifndef TE_ENGINE_ALERTS_H
#define TE_ENGINE_ALERTS_H

#include <stdint.h>

#include "alerts/dispatch.h"
#include "alerts/silence.h"
#include "core/err.h"
#include "rules/alert.h"

struct te_engine;
struct te_store;
typedef struct te_engine_alerts te_engine_alerts_t;

/* Reads, on the write store st before the writer starts, the active
 * silences, the pending outbox rows and the journal position. Returns the
 * state in *out, or TE_ENOMEM / TE_ESQLITE / TE_ECONFIG (a bad alerts
 * block, naming the key). */
int te_engine_alerts_open(struct te_engine *e, struct te_store *st, te_engine_alerts_t **out,
                          te_err_t *err);

/* Builds the notifiers and the dispatcher, queues the pending outbox rows
 * and starts the journal poll. A notifier that cannot be built is logged
 * and its rows fail with that message. Returns 0 or TE_ENOMEM. */
int te_engine_alerts_start(te_engine_alerts_t *A, te_err_t *err);

/* Registers an alert restored at start-up (its firing was notified). */
void te_engine_alerts_restored(te_engine_alerts_t *A, const te_alert_t *a);

/* Handles one transition of a (see the top). Cannot fail: a failure to
 * save or queue is logged and counted. */
void te_engine_alerts_transition(te_engine_alerts_t *A, const te_alert_t *a,
                                 te_alert_transition_t t);

/* Answer of an operator action, on the loop once it is committed: rc 0
 * with json (malloc'd, taken: the alert or silence object), or an error
 * code with msg. */
typedef void (*te_engine_action_cb)(void *ud, int rc, const char *msg, char *json);

/* Acknowledges active episode id. Errors: TE_ENOTFOUND (no active alert
 * with that id), TE_ECLOSED, TE_ENOMEM. Returns 0 when cb will be
 * called, else the error (cb is not called). */
int te_engine_alerts_ack(te_engine_alerts_t *A, const char *id, const char *by,
                         const char *comment, te_engine_action_cb cb, void *ud);

/* Adds silence s (taken, also on failure). Same contract as ack. */
int te_engine_alerts_silence(te_engine_alerts_t *A, te_silence_t *s, te_engine_action_cb cb,
                             void *ud);

/* Ends silence id now. TE_ENOTFOUND comes through cb (the database
 * decides). Same contract as ack. */
int te_engine_alerts_unsilence(te_engine_alerts_t *A, const char *id, const char *by,
                               te_engine_action_cb cb, void *ud);

/* Counters and notifier health for /v1/status and /metrics. */
typedef struct te_engine_alerts_counts {
    uint64_t notify_sent, notify_failed, notify_held, save_failed;
    size_t outbox_pending, silences;
} te_engine_alerts_counts_t;
void te_engine_alerts_counts(const te_engine_alerts_t *A, te_engine_alerts_counts_t *out);
size_t te_engine_alerts_health(const te_engine_alerts_t *A, te_notifier_health_t *out,
                               size_t cap);

/* The configured notifier called name (borrowed; valid until
 * te_engine_alerts_close), or NULL when none is (unknown, failed to build,
 * or the engine is stopping). For deliveries outside the outbox, such as
 * scheduled reports (engine_reports.c). */
te_notifier_t *te_engine_alerts_notifier(te_engine_alerts_t *A, const char *name);

/* Stops timers and notifiers (before the writer drains). Idempotent. */
void te_engine_alerts_close(te_engine_alerts_t *A);

/* Frees everything, after the loop ran its close callbacks. NULL-safe. */
void te_engine_alerts_free(te_engine_alerts_t *A);

#endif
