/*
 * alerts_life.h - the lifecycle tables of schema v3 (store/sql_v3.h):
 * acknowledgements, silences, the action journal and the notification
 * outbox.
 *
 * THREAD: the thread owning the store. The engine calls the writers from
 * batch `apply` hooks (inside the writer's transaction); the CLI calls
 * them on its own read-write store (SQLite's busy timeout waits for a
 * running engine's writer).
 *
 * How a CLI action reaches a running engine: every ack, silence and
 * unsilence appends a row to alert_actions in the same transaction as the
 * change itself; the engine reads the journal past the last sequence it
 * saw, about once a second, and applies the rows it did not make.
 */
#ifndef TE_STORE_ALERTS_LIFE_H
#define TE_STORE_ALERTS_LIFE_H

#include <stdint.h>

#include "alerts/silence.h"
#include "core/err.h"
#include "store/store.h"

/* ---- acknowledgements ---- */

/* Acknowledges the active (pending or firing) episode id: sets acked_by,
 * ack_comment, acked_at_ns and journals an "ack". Returns 0, TE_ENOTFOUND
 * (no alert with that id), TE_EINVAL (it is resolved: nothing to
 * acknowledge; the message says so) or TE_ESQLITE. */
int te_store_alert_ack(te_store_t *st, const char *id, const char *by, const char *comment,
                       int64_t at_ns, te_err_t *err);

/* ---- silences ---- */

/* Inserts s (id, matchers, times, comment, created_by) and journals a
 * "silence". Returns 0, TE_EEXISTS (same id) or TE_ESQLITE. */
int te_store_silence_add(te_store_t *st, const te_silence_t *s, te_err_t *err);

/* Ends silence id at now (ends_at_ns = now when it is later) and journals
 * an "unsilence". Returns 0, TE_ENOTFOUND, TE_EINVAL (already expired) or
 * TE_ESQLITE. */
int te_store_silence_expire(te_store_t *st, const char *id, const char *by, int64_t now_ns,
                            te_err_t *err);

/* Called per silence; s is borrowed for the call. Non-zero stops. */
typedef int (*te_silence_cb)(void *ud, const te_silence_t *s);

/* Calls cb for the silences that have not ended at now_ns (all: every
 * silence, newest first). Returns 0, cb's code, TE_EPARSE or TE_ESQLITE. */
int te_store_silences_list(te_store_t *st, int64_t now_ns, bool all, te_silence_cb cb, void *ud,
                           te_err_t *err);

/* Loads silence id into *out (caller te_silence_clear). Returns 0,
 * TE_ENOTFOUND, TE_EPARSE or TE_ESQLITE. */
int te_store_silence_get(te_store_t *st, const char *id, te_silence_t *out, te_err_t *err);

/* ---- the action journal ---- */

typedef struct te_alert_action {
    int64_t seq;
    const char *kind;   /* "ack" | "silence" | "unsilence" */
    const char *target; /* alert id or silence id */
    const char *by, *comment; /* may be NULL */
    int64_t at_ns;
} te_alert_action_t;

typedef int (*te_action_cb)(void *ud, const te_alert_action_t *a);

/* Calls cb for every journal row with seq > after, in order. Returns 0,
 * cb's code or TE_ESQLITE. */
int te_store_actions_since(te_store_t *st, int64_t after, te_action_cb cb, void *ud,
                           te_err_t *err);

/* The last journal sequence (0 when empty) into *out. 0 or TE_ESQLITE. */
int te_store_actions_last(te_store_t *st, int64_t *out, te_err_t *err);

/* ---- the outbox ---- */

typedef struct te_outbox_row {
    int64_t id;             /* chosen by the engine: unique and increasing */
    const char *alert_id, *notifier;
    const char *status;     /* "firing" | "resolved" | "flapping" */
    const char *payload;    /* the SPEC section 7 JSON of the alert */
    const char *state;      /* "pending" | "delivered" | "failed" | "suppressed" */
    const char *reason;     /* why suppressed, or NULL */
    int64_t attempts, created_ns, updated_ns;
    const char *last_error; /* NULL when none */
} te_outbox_row_t;

/* Inserts r. Returns 0 or TE_ESQLITE. */
int te_store_outbox_add(te_store_t *st, const te_outbox_row_t *r, te_err_t *err);

/* Sets state, attempts, last_error (NULL clears) and updated_ns of row id.
 * Returns 0 or TE_ESQLITE (a missing row is not an error). */
int te_store_outbox_update(te_store_t *st, int64_t id, const char *state, int64_t attempts,
                           const char *last_error, int64_t now_ns, te_err_t *err);

typedef int (*te_outbox_cb)(void *ud, const te_outbox_row_t *r);

/* Calls cb for every pending row, oldest first. Returns 0, cb's code or
 * TE_ESQLITE. */
int te_store_outbox_pending(te_store_t *st, te_outbox_cb cb, void *ud, te_err_t *err);

/* The largest outbox id (0 when empty). 0 or TE_ESQLITE. */
int te_store_outbox_last(te_store_t *st, int64_t *out, te_err_t *err);

/* The delivery status of alert id per notifier (its latest row for each):
 * [{"notifier","status","state","reason","attempts","last_error",
 * "updated_at"}], a new cJSON array in *out. 0, TE_ENOMEM or TE_ESQLITE. */
struct cJSON;
int te_store_outbox_deliveries(te_store_t *st, const char *alert_id, struct cJSON **out,
                               te_err_t *err);

#endif
