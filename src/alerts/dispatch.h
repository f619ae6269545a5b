/*
 * dispatch.h - delivery of queued notifications to the configured
 * notifiers: grouping (group_by, group_wait, group_interval, as in
 * Alertmanager), concurrency per notifier, and retries after a failed
 * delivery, with results reported so the outbox row can be updated.
 *
 * THREAD: loop.
 *
 * The one idea: every notification is an outbox row first (written by
 * the caller in the transaction of its transition); the dispatcher only
 * tries to deliver rows and says how each try ended. A row that failed
 * (after the notifier's own quick retries) is tried again later with a
 * doubling delay from 30 s to 10 min, and given up after max_age (24 h),
 * so a receiver that is down for an hour still gets every notification,
 * and one that is gone for good does not hold memory forever. Each
 * notifier has its own queue and at most 8 deliveries in flight: a slow or
 * failing notifier never delays the others.
 *
 * Grouping, per notifier: with group_wait or group_interval set, the rows
 * of one group (equal values of group_by tags; default the rule) wait
 * group_wait after the first of them, then go out as one message
 * (send_group; up to 1000 alerts a message); later rows of a group that
 * already notified wait until group_interval after its last message.
 * Without them every row goes out at once, alone, with the SPEC section 7
 * payload.
 */
#ifndef TE_ALERTS_DISPATCH_H
#define TE_ALERTS_DISPATCH_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "alerts/notify.h"
#include "rules/alert.h"

typedef struct te_dispatch te_dispatch_t;

/* How one delivery attempt of outbox row id ended: rc 0 delivered, else
 * the message; final is true when the row will not be tried again
 * (delivered, or given up: too old, or no such notifier). attempts counts
 * every try so far. */
typedef void (*te_dispatch_result_cb)(void *ud, int64_t id, int rc, const char *msg,
                                      int64_t attempts, bool final);

/* Per-notifier grouping (from the notifier block's group_by, group_wait
 * and group_interval keys; all zero: no grouping). */
typedef struct te_group_opts {
    char **group_by; /* NULL: {"rule"} */
    size_t ngroup_by;
    int64_t wait_ns, interval_ns;
} te_group_opts_t;

/* Creates a dispatcher over notifiers[0..n) (borrowed; they must outlive
 * it) with groups[i] for notifiers[i] (copied; may be NULL). max_age_ns 0
 * means 24 h. NULL on ENOMEM. */
te_dispatch_t *te_dispatch_new(uv_loop_t *loop, te_notifier_t *const *notifiers,
                               const te_group_opts_t *groups, size_t n, int64_t max_age_ns,
                               te_dispatch_result_cb cb, void *ud);

/* Sets the retry delay after a failed delivery: min_ns for the first,
 * doubling up to max_ns (defaults 30 s and 10 min; min_ns <= 0 restores
 * the default, max_ns below min_ns is min_ns). For tests and tuning. */
void te_dispatch_set_retry(te_dispatch_t *d, int64_t min_ns, int64_t max_ns);

/* Queues outbox row id for notifier name: alert a (copied) with status,
 * created at created_ns, tried attempts times already. Returns 0,
 * TE_ENOTFOUND (no such notifier: cb is not called; the caller marks the
 * row failed) or TE_ENOMEM. */
int te_dispatch_enqueue(te_dispatch_t *d, int64_t id, const char *notifier, const te_alert_t *a,
                        const char *status, int64_t created_ns, int64_t attempts);

/* Health of one notifier for /v1/status and /metrics. */
typedef struct te_notifier_health {
    const char *name, *type;
    uint64_t sent, failed;        /* deliveries / failed attempts */
    uint64_t consecutive_failures;
    size_t queued, in_flight;
    int64_t last_ok_ns, last_fail_ns;
    char last_error[256];
} te_notifier_health_t;

/* Number of notifiers; fills out[i] for i < min(n, cap). */
size_t te_dispatch_health(const te_dispatch_t *d, te_notifier_health_t *out, size_t cap);

/* Stops the timers (the notifiers' own close cancels deliveries in
 * flight; their done callbacks still come). Queued rows stay pending in
 * the outbox for the next start. Idempotent. */
void te_dispatch_close(te_dispatch_t *d);

/* Frees the dispatcher once the loop ran close callbacks. NULL-safe. */
void te_dispatch_free(te_dispatch_t *d);

#endif
