/*
 * alerts_history.c - the alert_history table read as a stream (see
 * alerts_history.h).
 *
 * THREAD: the store's owner.
 *
 * Statements are prepared per call: a watcher polls a few times a second
 * and a poll usually returns nothing, so there is nothing worth caching.
 */
#include "store/alerts_history.h"

#include <sqlite3.h>

#include "store/store_int.h"

#define SQL_SINCE                                                                          \
    "SELECT h.seq, h.at_ns, h.alert_id, h.rule, h.fingerprint, h.transition, h.state,"     \
    " h.severity, ifnull(a.group_json, '{}'), h.value, h.summary, h.reason"                \
    " FROM alert_history h LEFT JOIN alerts a ON a.id = h.alert_id"                        \
    " WHERE h.seq > ?1 ORDER BY h.seq"

static const char *text_at(sqlite3_stmt *q, int i)
{
    return (const char *)sqlite3_column_text(q, i);
}

static const char *text_or(sqlite3_stmt *q, int i, const char *dflt)
{
    const char *s = text_at(q, i);
    return s ? s : dflt;
}

int te_store_alerts_history_since(te_store_t *st, int64_t after_seq, te_alert_history_cb cb,
                                  void *ud, te_err_t *err)
{
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(st->db, SQL_SINCE, -1, &q, NULL);
    if (rc != SQLITE_OK)
        return te_store_sqlerr(st, rc, err, "read alert history");
    sqlite3_bind_int64(q, 1, after_seq);
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        te_alert_history_row_t r = {
            .seq = sqlite3_column_int64(q, 0),
            .at_ns = sqlite3_column_int64(q, 1),
            .alert_id = text_or(q, 2, ""),
            .rule = text_or(q, 3, ""),
            .fingerprint = text_or(q, 4, ""),
            .transition = text_or(q, 5, ""),
            .state = text_or(q, 6, ""),
            .severity = text_or(q, 7, ""),
            .group_json = text_or(q, 8, "{}"),
            .has_value = sqlite3_column_type(q, 9) != SQLITE_NULL,
            .value = sqlite3_column_double(q, 9),
            .summary = text_at(q, 10),
            .reason = text_at(q, 11),
        };
        int stop = cb(ud, &r);
        if (stop) {
            sqlite3_finalize(q);
            return stop;
        }
    }
    if (rc != SQLITE_DONE) {
        rc = te_store_sqlerr(st, rc, err, "read alert history");
        sqlite3_finalize(q);
        return rc;
    }
    sqlite3_finalize(q);
    return 0;
}

int te_store_alerts_history_last_seq(te_store_t *st, int64_t *out, te_err_t *err)
{
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(st->db, "SELECT ifnull(max(seq), 0) FROM alert_history", -1, &q,
                                NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(q);
    if (rc != SQLITE_ROW) {
        rc = te_store_sqlerr(st, rc, err, "read alert history");
        sqlite3_finalize(q);
        return rc;
    }
    *out = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return 0;
}
