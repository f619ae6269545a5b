/*
 * alerts_life.c - acks, silences, the action journal and the outbox in
 * SQLite (see alerts_life.h).
 *
 * THREAD: the store's owner.
 *
 * All of it is rare next to event inserts (a few rows per transition or
 * operator action), so statements are prepared per call. Each change and
 * its journal row share a savepoint: both or neither, inside or outside a
 * batch transaction.
 */
#include "store/alerts_life.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "core/time.h"
#include "store/store_int.h"

static void bind_opt(sqlite3_stmt *q, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(q, i, s, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(q, i);
}

static const char *col(sqlite3_stmt *q, int i)
{
    return (const char *)sqlite3_column_text(q, i);
}

static int prep(te_store_t *st, const char *sql, sqlite3_stmt **q, te_err_t *err,
                const char *what)
{
    int rc = sqlite3_prepare_v2(st->db, sql, -1, q, NULL);
    return rc == SQLITE_OK ? 0 : te_store_sqlerr(st, rc, err, what);
}

/* Steps a statement that returns no rows and finalizes it. */
static int done(te_store_t *st, sqlite3_stmt *q, te_err_t *err, const char *what)
{
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    return rc == SQLITE_DONE ? 0 : te_store_sqlerr(st, rc, err, what);
}

static int exec(te_store_t *st, const char *sql, te_err_t *err, const char *what)
{
    int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : te_store_sqlerr(st, rc, err, what);
}

static int journal(te_store_t *st, const char *kind, const char *target, const char *by,
                   const char *comment, int64_t at_ns, te_err_t *err)
{
    sqlite3_stmt *q;
    int rc = prep(st, "INSERT INTO alert_actions(kind, target, by, comment, at_ns)"
                      " VALUES(?1, ?2, ?3, ?4, ?5)", &q, err, "journal action");
    if (rc)
        return rc;
    sqlite3_bind_text(q, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, target, -1, SQLITE_TRANSIENT);
    bind_opt(q, 3, by);
    bind_opt(q, 4, comment);
    sqlite3_bind_int64(q, 5, at_ns);
    return done(st, q, err, "journal action");
}

/* Runs body inside a savepoint named sp; rolls back on failure. */
#define IN_SAVEPOINT(st, err, what, body)                                                  \
    do {                                                                                   \
        int sp_rc_ = exec(st, "SAVEPOINT te_life", err, what);                             \
        if (sp_rc_)                                                                        \
            return sp_rc_;                                                                 \
        sp_rc_ = (body);                                                                   \
        if (sp_rc_) {                                                                      \
            sqlite3_exec((st)->db, "ROLLBACK TO te_life; RELEASE te_life", NULL, NULL,     \
                         NULL);                                                            \
            return sp_rc_;                                                                 \
        }                                                                                  \
        return exec(st, "RELEASE te_life", err, what);                                     \
    } while (0)

/* ---- acks ---- */

static int ack_body(te_store_t *st, const char *id, const char *by, const char *comment,
                    int64_t at_ns, te_err_t *err)
{
    sqlite3_stmt *q;
    int rc = prep(st, "SELECT state FROM alerts WHERE id = ?1", &q, err, "ack alert");
    if (rc)
        return rc;
    sqlite3_bind_text(q, 1, id, -1, SQLITE_TRANSIENT);
    int s = sqlite3_step(q);
    if (s != SQLITE_ROW) {
        sqlite3_finalize(q);
        if (s == SQLITE_DONE)
            return te_err_set(err, TE_ENOTFOUND, "no alert with id \"%s\" (see 'alerts list')",
                              id);
        return te_store_sqlerr(st, s, err, "ack alert");
    }
    bool active = strcmp(col(q, 0), "pending") == 0 || strcmp(col(q, 0), "firing") == 0;
    sqlite3_finalize(q);
    if (!active)
        return te_err_set(err, TE_EINVAL, "alert %s is resolved: there is nothing to "
                                          "acknowledge", id);
    rc = prep(st, "UPDATE alerts SET acked_by = ?2, ack_comment = ?3, acked_at_ns = ?4"
                  " WHERE id = ?1", &q, err, "ack alert");
    if (rc)
        return rc;
    sqlite3_bind_text(q, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, 2, by ? by : "unknown", -1, SQLITE_TRANSIENT);
    bind_opt(q, 3, comment);
    sqlite3_bind_int64(q, 4, at_ns);
    rc = done(st, q, err, "ack alert");
    return rc ? rc : journal(st, "ack", id, by ? by : "unknown", comment, at_ns, err);
}

int te_store_alert_ack(te_store_t *st, const char *id, const char *by, const char *comment,
                       int64_t at_ns, te_err_t *err)
{
    IN_SAVEPOINT(st, err, "ack alert", ack_body(st, id, by, comment, at_ns, err));
}

/* ---- silences ---- */

static int silence_add_body(te_store_t *st, const te_silence_t *s, te_err_t *err)
{
    char *mj = te_matchers_to_json(s->m, s->nm);
    if (!mj)
        return te_err_set(err, TE_ENOMEM, "out of memory");
    sqlite3_stmt *q;
    int rc = prep(st, "INSERT INTO silences(id, matchers_json, starts_at_ns, ends_at_ns,"
                      " comment, created_by, created_at_ns) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                  &q, err, "add silence");
    if (rc) {
        cJSON_free(mj);
        return rc;
    }
    sqlite3_bind_text(q, 1, s->id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, 2, mj, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(q, 3, s->starts_ns);
    sqlite3_bind_int64(q, 4, s->ends_ns);
    bind_opt(q, 5, s->comment);
    bind_opt(q, 6, s->created_by);
    sqlite3_bind_int64(q, 7, s->created_ns);
    cJSON_free(mj);
    int sr = sqlite3_step(q);
    sqlite3_finalize(q);
    if (sr == SQLITE_CONSTRAINT)
        return te_err_set(err, TE_EEXISTS, "a silence with id %s exists", s->id);
    if (sr != SQLITE_DONE)
        return te_store_sqlerr(st, sr, err, "add silence");
    return journal(st, "silence", s->id, s->created_by, s->comment, s->created_ns, err);
}

int te_store_silence_add(te_store_t *st, const te_silence_t *s, te_err_t *err)
{
    IN_SAVEPOINT(st, err, "add silence", silence_add_body(st, s, err));
}

static int row_to_silence(sqlite3_stmt *q, te_silence_t *s, te_err_t *err)
{
    memset(s, 0, sizeof(*s));
    const char *id = col(q, 0);
    if (!id || strlen(id) > TE_ALERT_ID_LEN)
        return te_err_set(err, TE_EPARSE, "store: silence row with a bad id");
    memcpy(s->id, id, strlen(id) + 1);
    cJSON *j = cJSON_Parse(col(q, 1) ? col(q, 1) : "");
    int rc = te_matchers_from_cjson(j, &s->m, &s->nm, err);
    cJSON_Delete(j);
    if (rc < 0)
        return te_err_set(err, TE_EPARSE, "store: silence %s has bad matchers", id);
    s->starts_ns = sqlite3_column_int64(q, 2);
    s->ends_ns = sqlite3_column_int64(q, 3);
    s->comment = col(q, 4) ? strdup(col(q, 4)) : NULL;
    s->created_by = col(q, 5) ? strdup(col(q, 5)) : NULL;
    s->created_ns = sqlite3_column_int64(q, 6);
    if ((col(q, 4) && !s->comment) || (col(q, 5) && !s->created_by)) {
        te_silence_clear(s);
        return te_err_set(err, TE_ENOMEM, "out of memory");
    }
    return 0;
}

#define SILENCE_COLUMNS                                                                   \
    "SELECT id, matchers_json, starts_at_ns, ends_at_ns, comment, created_by,"           \
    " created_at_ns FROM silences"

int te_store_silences_list(te_store_t *st, int64_t now_ns, bool all, te_silence_cb cb, void *ud,
                           te_err_t *err)
{
    sqlite3_stmt *q;
    int rc = prep(st, SILENCE_COLUMNS " WHERE ?1 OR ends_at_ns > ?2"
                                      " ORDER BY created_at_ns DESC, id",
                  &q, err, "list silences");
    if (rc)
        return rc;
    sqlite3_bind_int(q, 1, all);
    sqlite3_bind_int64(q, 2, now_ns);
    for (;;) {
        int s = sqlite3_step(q);
        if (s == SQLITE_DONE)
            break;
        if (s != SQLITE_ROW) {
            rc = te_store_sqlerr(st, s, err, "list silences");
            break;
        }
        te_silence_t sil;
        rc = row_to_silence(q, &sil, err);
        if (rc)
            break;
        rc = cb(ud, &sil);
        te_silence_clear(&sil);
        if (rc)
            break;
    }
    sqlite3_finalize(q);
    return rc;
}

int te_store_silence_get(te_store_t *st, const char *id, te_silence_t *out, te_err_t *err)
{
    sqlite3_stmt *q;
    int rc = prep(st, SILENCE_COLUMNS " WHERE id = ?1", &q, err, "read silence");
    if (rc)
        return rc;
    sqlite3_bind_text(q, 1, id, -1, SQLITE_TRANSIENT);
    int s = sqlite3_step(q);
    if (s == SQLITE_ROW)
        rc = row_to_silence(q, out, err);
    else if (s == SQLITE_DONE)
        rc = te_err_set(err, TE_ENOTFOUND, "no silence with id \"%s\" (see 'alerts silences')",
                        id);
    else
        rc = te_store_sqlerr(st, s, err, "read silence");
    sqlite3_finalize(q);
    return rc;
}

static int expire_body(te_store_t *st, const char *id, const char *by, int64_t now_ns,
                       te_err_t *err)
{
    te_silence_t s;
    int rc = te_store_silence_get(st, id, &s, err);
    if (rc)
        return rc;
    int64_t ends = s.ends_ns;
    te_silence_clear(&s);
    if (ends <= now_ns)
        return te_err_set(err, TE_EINVAL, "silence %s has already expired", id);
    sqlite3_stmt *q;
    rc = prep(st, "UPDATE silences SET ends_at_ns = ?2 WHERE id = ?1", &q, err,
              "expire silence");
    if (rc)
        return rc;
    sqlite3_bind_text(q, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(q, 2, now_ns);
    rc = done(st, q, err, "expire silence");
    return rc ? rc : journal(st, "unsilence", id, by, NULL, now_ns, err);
}

int te_store_silence_expire(te_store_t *st, const char *id, const char *by, int64_t now_ns,
                            te_err_t *err)
{
    IN_SAVEPOINT(st, err, "expire silence", expire_body(st, id, by, now_ns, err));
}

/* ---- the journal ---- */

int te_store_actions_since(te_store_t *st, int64_t after, te_action_cb cb, void *ud,
                           te_err_t *err)
{
    sqlite3_stmt *q;
    int rc = prep(st, "SELECT seq, kind, target, by, comment, at_ns FROM alert_actions"
                      " WHERE seq > ?1 ORDER BY seq", &q, err, "read actions");
    if (rc)
        return rc;
    sqlite3_bind_int64(q, 1, after);
    for (;;) {
        int s = sqlite3_step(q);
        if (s == SQLITE_DONE)
            break;
        if (s != SQLITE_ROW) {
            rc = te_store_sqlerr(st, s, err, "read actions");
            break;
        }
        te_alert_action_t a = {
            .seq = sqlite3_column_int64(q, 0),
            .kind = col(q, 1) ? col(q, 1) : "",
            .target = col(q, 2) ? col(q, 2) : "",
            .by = col(q, 3),
            .comment = col(q, 4),
            .at_ns = sqlite3_column_int64(q, 5),
        };
        rc = cb(ud, &a);
        if (rc)
            break;
    }
    sqlite3_finalize(q);
    return rc;
}

static int scalar(te_store_t *st, const char *sql, int64_t *out, te_err_t *err, const char *what)
{
    sqlite3_stmt *q;
    int rc = prep(st, sql, &q, err, what);
    if (rc)
        return rc;
    int s = sqlite3_step(q);
    if (s == SQLITE_ROW)
        *out = sqlite3_column_int64(q, 0);
    else
        rc = te_store_sqlerr(st, s, err, what);
    sqlite3_finalize(q);
    return rc;
}

int te_store_actions_last(te_store_t *st, int64_t *out, te_err_t *err)
{
    return scalar(st, "SELECT ifnull(max(seq), 0) FROM alert_actions", out, err, "read actions");
}

/* ---- the outbox ---- */

int te_store_outbox_add(te_store_t *st, const te_outbox_row_t *r, te_err_t *err)
{
    sqlite3_stmt *q;
    int rc = prep(st, "INSERT INTO outbox(id, alert_id, notifier, status, payload, state,"
                      " reason, attempts, created_ns, updated_ns, last_error)"
                      " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                  &q, err, "queue notification");
    if (rc)
        return rc;
    sqlite3_bind_int64(q, 1, r->id);
    sqlite3_bind_text(q, 2, r->alert_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, r->notifier, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 4, r->status, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 5, r->payload, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 6, r->state, -1, SQLITE_STATIC);
    bind_opt(q, 7, r->reason);
    sqlite3_bind_int64(q, 8, r->attempts);
    sqlite3_bind_int64(q, 9, r->created_ns);
    sqlite3_bind_int64(q, 10, r->updated_ns);
    bind_opt(q, 11, r->last_error);
    return done(st, q, err, "queue notification");
}

int te_store_outbox_update(te_store_t *st, int64_t id, const char *state, int64_t attempts,
                           const char *last_error, int64_t now_ns, te_err_t *err)
{
    sqlite3_stmt *q;
    int rc = prep(st, "UPDATE outbox SET state = ?2, attempts = ?3, last_error = ?4,"
                      " updated_ns = ?5 WHERE id = ?1", &q, err, "update notification");
    if (rc)
        return rc;
    sqlite3_bind_int64(q, 1, id);
    sqlite3_bind_text(q, 2, state, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 3, attempts);
    bind_opt(q, 4, last_error);
    sqlite3_bind_int64(q, 5, now_ns);
    return done(st, q, err, "update notification");
}

int te_store_outbox_pending(te_store_t *st, te_outbox_cb cb, void *ud, te_err_t *err)
{
    sqlite3_stmt *q;
    int rc = prep(st, "SELECT id, alert_id, notifier, status, payload, state, reason,"
                      " attempts, created_ns, updated_ns, last_error FROM outbox"
                      " WHERE state = 'pending' ORDER BY id", &q, err, "read outbox");
    if (rc)
        return rc;
    for (;;) {
        int s = sqlite3_step(q);
        if (s == SQLITE_DONE)
            break;
        if (s != SQLITE_ROW) {
            rc = te_store_sqlerr(st, s, err, "read outbox");
            break;
        }
        te_outbox_row_t r = {
            .id = sqlite3_column_int64(q, 0),
            .alert_id = col(q, 1) ? col(q, 1) : "",
            .notifier = col(q, 2) ? col(q, 2) : "",
            .status = col(q, 3) ? col(q, 3) : "firing",
            .payload = col(q, 4) ? col(q, 4) : "{}",
            .state = col(q, 5) ? col(q, 5) : "pending",
            .reason = col(q, 6),
            .attempts = sqlite3_column_int64(q, 7),
            .created_ns = sqlite3_column_int64(q, 8),
            .updated_ns = sqlite3_column_int64(q, 9),
            .last_error = col(q, 10),
        };
        rc = cb(ud, &r);
        if (rc)
            break;
    }
    sqlite3_finalize(q);
    return rc;
}

int te_store_outbox_last(te_store_t *st, int64_t *out, te_err_t *err)
{
    return scalar(st, "SELECT ifnull(max(id), 0) FROM outbox", out, err, "read outbox");
}

int te_store_outbox_deliveries(te_store_t *st, const char *alert_id, cJSON **out, te_err_t *err)
{
    sqlite3_stmt *q;
    int rc = prep(st, "SELECT notifier, status, state, reason, attempts, last_error, updated_ns"
                      " FROM outbox WHERE id IN (SELECT max(id) FROM outbox WHERE alert_id = ?1"
                      " GROUP BY notifier) ORDER BY notifier", &q, err, "read deliveries");
    if (rc)
        return rc;
    sqlite3_bind_text(q, 1, alert_id, -1, SQLITE_TRANSIENT);
    cJSON *arr = cJSON_CreateArray();
    if (!arr) {
        sqlite3_finalize(q);
        return te_err_set(err, TE_ENOMEM, "out of memory");
    }
    for (;;) {
        int s = sqlite3_step(q);
        if (s == SQLITE_DONE)
            break;
        if (s != SQLITE_ROW) {
            rc = te_store_sqlerr(st, s, err, "read deliveries");
            break;
        }
        char at[40];
        te_time_format_rfc3339(sqlite3_column_int64(q, 6), at, sizeof(at));
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddStringToObject(o, "notifier", col(q, 0) ? col(q, 0) : "") ||
            !cJSON_AddStringToObject(o, "status", col(q, 1) ? col(q, 1) : "") ||
            !cJSON_AddStringToObject(o, "state", col(q, 2) ? col(q, 2) : "") ||
            !(col(q, 3) ? cJSON_AddStringToObject(o, "reason", col(q, 3))
                        : cJSON_AddNullToObject(o, "reason")) ||
            !cJSON_AddNumberToObject(o, "attempts", (double)sqlite3_column_int64(q, 4)) ||
            !(col(q, 5) ? cJSON_AddStringToObject(o, "last_error", col(q, 5))
                        : cJSON_AddNullToObject(o, "last_error")) ||
            !cJSON_AddStringToObject(o, "updated_at", at)) {
            cJSON_Delete(o);
            rc = te_err_set(err, TE_ENOMEM, "out of memory");
            break;
        }
        cJSON_AddItemToArray(arr, o);
    }
    sqlite3_finalize(q);
    if (rc) {
        cJSON_Delete(arr);
        return rc;
    }
    *out = arr;
    return 0;
}
