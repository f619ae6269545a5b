/*
 * alerts.h - persistence of alert instances and their transitions (SPEC 7).
 *
 * THREAD: the thread owning the store (the writer thread in the engine).
 *
 * Tables (schema v2, the 1 -> 2 migration of store/sql.h):
 *   alerts(id TEXT PRIMARY KEY, rule, fingerprint, state, severity,
 *          group_json, labels_json, notify_json, value, summary, reason,
 *          active_at_ns, starts_at_ns, ends_at_ns, updated_ns,
 *          last_notified_ns, false_since_ns)
 *     one row per episode (id), upserted at each transition;
 *     index alerts_active (state, fingerprint) for the restart scan
 *   alert_history(seq INTEGER PRIMARY KEY, alert_id, rule, fingerprint,
 *          transition, state, severity, value, summary, reason, at_ns)
 *     one row per transition, never updated
 */
#ifndef TE_STORE_ALERTS_H
#define TE_STORE_ALERTS_H

#include <stdint.h>

#include "core/err.h"
#include "rules/alert.h"
#include "store/store.h"

/* Checks that the alert tables are there (te_store_open migrates any
 * database to schema v2, which creates them). Idempotent, any store.
 * Returns 0 or TE_ESQLITE. */
int te_store_alerts_init(te_store_t *st, te_err_t *err);

/* Upserts a's row (by id) and, when t is not TE_ALERT_T_NONE, appends a
 * history row at a->updated_ns; both or neither (a savepoint, so it works
 * inside or outside the writer's transaction). An alert without an id is
 * refused (TE_EINVAL). Returns 0, TE_EINVAL, TE_ENOMEM or TE_ESQLITE. */
int te_store_alerts_save(te_store_t *st, const te_alert_t *a, te_alert_transition_t t,
                         te_err_t *err);

/* Called per loaded alert; a is borrowed for the call. Non-zero stops the
 * scan and becomes the return value. */
typedef int (*te_alert_load_cb)(void *ud, const te_alert_t *a);

/* Calls cb for every pending or firing alert, oldest first (a restart
 * re-attaches them with te_ruleset_restore). Returns 0, cb's code,
 * TE_EPARSE (a corrupt row, naming its id), TE_ENOMEM or TE_ESQLITE. */
int te_store_alerts_load_active(te_store_t *st, te_alert_load_cb cb, void *ud, te_err_t *err);

/* Calls cb for the alert episodes in state ("pending", "firing",
 * "resolved", "acked": active and acknowledged, "silenced": every active
 * one, for the caller to match against silences; NULL: all), the most recently changed first, at most limit
 * (0: no limit). Works on read-only stores. A non-zero cb return stops
 * and is returned. */
int te_store_alerts_list(te_store_t *st, const char *state, size_t limit, te_alert_load_cb cb,
                         void *ud, te_err_t *err);

/* Checks a state filter of GET /v1/alerts and `alerts list`: 0 for
 * pending, firing, resolved, acked, silenced; TE_EINVAL naming them
 * otherwise. */
int te_store_alerts_state_check(const char *state, te_err_t *err);

/* {"alerts":[te_alert_to_cjson objects + "silenced_by":[silence ids
 * matching it now] + "deliveries":te_store_outbox_deliveries...]} for
 * te_store_alerts_list's arguments ("silenced" keeps only the active
 * alerts an active silence matches). On success the caller owns *out (cJSON_Delete). Returns 0,
 * TE_ENOMEM, TE_EPARSE or TE_ESQLITE. */
struct cJSON;
int te_store_alerts_list_json(te_store_t *st, const char *state, size_t limit,
                              struct cJSON **out, te_err_t *err);

/* Number of history rows of alert id into *out. Returns 0 or TE_ESQLITE. */
int te_store_alerts_history_count(te_store_t *st, const char *id, int64_t *out, te_err_t *err);

#endif
