/*
 * detect_state.c - the detector_state table (see detect_state.h).
 *
 * THREAD: the connection's owner.
 *
 * Saves are snapshots of every live detector group, upserted by primary
 * key; a group whose row is not refreshed for a while (its detector was
 * removed, or the group expired) ages out with stale_before_ns, so a
 * script that fails to load for a moment does not wipe its baselines.
 */
#include "store/detect_state.h"

#include <sqlite3.h>

#include "store/store_int.h"

#define SQL_UPSERT                                                                         \
    "INSERT INTO detector_state(detector, group_key, sig, seen_ns, state, updated_ns) "     \
    "VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(detector, group_key) DO UPDATE SET "       \
    "sig = excluded.sig, seen_ns = excluded.seen_ns, state = excluded.state, "            \
    "updated_ns = excluded.updated_ns"
#define SQL_STALE "DELETE FROM detector_state WHERE updated_ns < ?1"
#define SQL_LOAD "SELECT detector, group_key, sig, seen_ns, state FROM detector_state"

int te_store_detect_save(struct te_store *st, const te_store_detect_row_t *rows, size_t n,
                         int64_t now_ns, int64_t stale_before_ns, te_err_t *err)
{
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(st->db, SQL_UPSERT, -1, &q, NULL);
    for (size_t i = 0; i < n && rc == SQLITE_OK; i++) {
        const te_store_detect_row_t *r = &rows[i];
        sqlite3_bind_text(q, 1, r->detector, -1, SQLITE_STATIC);
        sqlite3_bind_blob(q, 2, r->group_key, (int)r->group_key_len, SQLITE_STATIC);
        sqlite3_bind_int64(q, 3, (sqlite3_int64)r->sig);
        sqlite3_bind_int64(q, 4, r->seen_ns);
        sqlite3_bind_blob(q, 5, r->state, (int)r->state_len, SQLITE_STATIC);
        sqlite3_bind_int64(q, 6, now_ns);
        rc = sqlite3_step(q);
        rc = rc == SQLITE_DONE ? sqlite3_reset(q) : rc;
    }
    sqlite3_finalize(q);
    if (rc == SQLITE_OK && stale_before_ns > 0) {
        rc = sqlite3_prepare_v2(st->db, SQL_STALE, -1, &q, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_int64(q, 1, stale_before_ns);
            rc = sqlite3_step(q);
            rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
        }
        sqlite3_finalize(q);
    }
    if (rc != SQLITE_OK)
        return te_store_sqlerr(st, rc, err, "save detector state");
    return 0;
}

int te_store_detect_load(struct te_store *st,
                         int (*cb)(void *ud, const te_store_detect_row_t *row), void *ud,
                         te_err_t *err)
{
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(st->db, SQL_LOAD, -1, &q, NULL);
    if (rc != SQLITE_OK)
        return te_store_sqlerr(st, rc, err, "load detector state");
    int out = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        te_store_detect_row_t r = {
            .detector = (const char *)sqlite3_column_text(q, 0),
            .group_key = sqlite3_column_blob(q, 1),
            .group_key_len = (size_t)sqlite3_column_bytes(q, 1),
            .sig = (uint64_t)sqlite3_column_int64(q, 2),
            .seen_ns = sqlite3_column_int64(q, 3),
            .state = sqlite3_column_blob(q, 4),
            .state_len = (size_t)sqlite3_column_bytes(q, 4),
        };
        if (!r.detector || (!r.group_key && r.group_key_len) || !r.state)
            continue;
        if (!r.group_key)
            r.group_key = "";
        out = cb(ud, &r);
        if (out)
            break;
    }
    if (!out && rc != SQLITE_DONE) {
        int e = te_store_sqlerr(st, rc, err, "load detector state");
        sqlite3_finalize(q);
        return e;
    }
    sqlite3_finalize(q);
    return out;
}
