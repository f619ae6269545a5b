/*
 * alerts_history.h - reading the alert_history table (SPEC 7) as a stream
 * of transitions, for `alerts watch`.
 *
 * THREAD: the thread owning the store; works on read-only stores (a WAL
 * reader sees each transition once the writer has committed it).
 *
 * The one idea: alert_history.seq only grows (INTEGER PRIMARY KEY, rows are
 * never deleted or updated), so "everything after the last seq seen" is a
 * complete, duplicate-free stream. The group of a transition is not in the
 * history row; it comes from the alert's episode row (alerts.group_json,
 * written in the same savepoint as the history row).
 */
#ifndef TE_STORE_ALERTS_HISTORY_H
#define TE_STORE_ALERTS_HISTORY_H

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"
#include "store/store.h"

/* One stored transition. Strings are borrowed for the callback only;
 * summary and reason may be NULL; group_json is "{}" when the episode row
 * is missing. */
typedef struct te_alert_history_row {
    int64_t seq;
    int64_t at_ns;
    const char *alert_id;
    const char *rule;
    const char *fingerprint;
    const char *transition;   /* "pending" | "firing" | "repeat" | "resolved" | "cleared" */
    const char *state;        /* the alert's state after the transition */
    const char *severity;
    const char *group_json;   /* {"provider":"openai",...} in group_by order */
    bool has_value;
    double value;
    const char *summary;
    const char *reason;
} te_alert_history_row_t;

/* Called per row; a non-zero return stops the scan and is returned. */
typedef int (*te_alert_history_cb)(void *ud, const te_alert_history_row_t *row);

/* Calls cb for every history row with seq > after_seq, oldest first (by
 * seq). Returns 0, cb's code, or TE_ESQLITE. */
int te_store_alerts_history_since(te_store_t *st, int64_t after_seq, te_alert_history_cb cb,
                                  void *ud, te_err_t *err);

/* The largest seq in alert_history into *out (0 when the table is empty),
 * so a reader can start from the current end. Returns 0 or TE_ESQLITE. */
int te_store_alerts_history_last_seq(te_store_t *st, int64_t *out, te_err_t *err);

#endif
