/*
 * alerts.c - alert rows and alert history in SQLite (see alerts.h).
 *
 * THREAD: the store's owner.
 *
 * Transitions are rare (a few per rule and episode), so statements are
 * prepared per call; the write is a savepoint so an alert row and its
 * history row land together whether or not a batch transaction is open.
 */
#include "store/alerts.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "core/time.h"
#include "store/alerts_life.h"
#include "store/store_int.h"

#define SQL_UPSERT                                                                        \
    "INSERT INTO alerts(id, rule, fingerprint, state, severity, group_json, labels_json," \
    " notify_json, value, summary, reason, active_at_ns, starts_at_ns, ends_at_ns,"       \
    " updated_ns, last_notified_ns, false_since_ns, acked_by, ack_comment, acked_at_ns,"  \
    " flapping) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15," \
    " ?16, ?17, ?18, ?19, ?20, ?21)"                                                      \
    " ON CONFLICT(id) DO UPDATE SET rule = excluded.rule,"                                \
    " fingerprint = excluded.fingerprint, state = excluded.state,"                        \
    " severity = excluded.severity, group_json = excluded.group_json,"                    \
    " labels_json = excluded.labels_json, notify_json = excluded.notify_json,"            \
    " value = excluded.value, summary = excluded.summary, reason = excluded.reason,"      \
    " active_at_ns = excluded.active_at_ns, starts_at_ns = excluded.starts_at_ns,"        \
    " ends_at_ns = excluded.ends_at_ns, updated_ns = excluded.updated_ns,"                \
    " last_notified_ns = excluded.last_notified_ns,"                                      \
    " false_since_ns = excluded.false_since_ns, flapping = excluded.flapping,"            \
    " acked_by = coalesce(excluded.acked_by, alerts.acked_by),"                           \
    " ack_comment = CASE WHEN excluded.acked_by IS NULL THEN alerts.ack_comment"          \
    "   ELSE excluded.ack_comment END,"                                                   \
    " acked_at_ns = max(excluded.acked_at_ns, alerts.acked_at_ns)"

#define SQL_HISTORY                                                                       \
    "INSERT INTO alert_history(alert_id, rule, fingerprint, transition, state, severity," \
    " value, summary, reason, at_ns) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"

#define SQL_COLUMNS                                                                       \
    "SELECT id, rule, fingerprint, state, severity, group_json, labels_json,"             \
    " notify_json, value, summary, reason, active_at_ns, starts_at_ns, ends_at_ns,"       \
    " updated_ns, last_notified_ns, false_since_ns, acked_by, ack_comment, acked_at_ns,"  \
    " flapping FROM alerts"
#define SQL_ACTIVE SQL_COLUMNS " WHERE state IN ('pending', 'firing') ORDER BY active_at_ns, id"
/* newest change first; ?1 NULL: every state; "acked": active and acked;
 * "silenced": every active alert (the caller filters by silence) */
#define SQL_LIST                                                                          \
    SQL_COLUMNS " WHERE ?1 IS NULL OR state = ?1"                                         \
    " OR (?1 = 'acked' AND state IN ('pending', 'firing') AND acked_by IS NOT NULL)"      \
    " OR (?1 = 'silenced' AND state IN ('pending', 'firing'))"                            \
    " ORDER BY updated_ns DESC, id LIMIT ?2"

int te_store_alerts_init(te_store_t *st, te_err_t *err)
{
    /* the tables come with schema v2 (store/sql.h); this only checks */
    int rc = sqlite3_exec(st->db, "SELECT 1 FROM alerts, alert_history LIMIT 0", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return te_store_sqlerr(st, rc, err, "alert tables");
    return 0;
}

static char *kv_json(char *const *keys, char *const *values, size_t n)
{
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; o && i < n; i++)
        if (!cJSON_AddStringToObject(o, keys[i], values[i])) {
            cJSON_Delete(o);
            return NULL;
        }
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return s;
}

static char *list_json(char *const *v, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; i++) {
        cJSON *s = cJSON_CreateString(v[i]);
        if (!s) {
            cJSON_Delete(a);
            return NULL;
        }
        cJSON_AddItemToArray(a, s);
    }
    char *s = a ? cJSON_PrintUnformatted(a) : NULL;
    cJSON_Delete(a);
    return s;
}

static void bind_opt_text(sqlite3_stmt *q, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(q, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(q, i);
}

static int run(te_store_t *st, const char *sql, te_err_t *err, const char *what)
{
    int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : te_store_sqlerr(st, rc, err, what);
}

int te_store_alerts_save(te_store_t *st, const te_alert_t *a, te_alert_transition_t t,
                         te_err_t *err)
{
    if (!a->id[0] || !a->rule)
        return te_err_set(err, TE_EINVAL, "store: alert without id or rule cannot be saved");
    int rc = 0, sqlrc;
    sqlite3_stmt *up = NULL, *hist = NULL;
    char *group = kv_json(a->group_keys, a->group_values, a->ngroup);
    char *labels = kv_json(a->label_keys, a->label_values, a->nlabels);
    char *notify = list_json(a->notify, a->nnotify);
    const char *state = te_alert_state_name(a->state);
    const char *sev = te_severity_name(a->severity);
    if (!group || !labels || !notify) {
        rc = te_err_set(err, TE_ENOMEM, "store: cannot encode alert %s", a->id);
        goto done;
    }
    rc = run(st, "SAVEPOINT te_alert_save", err, "save alert");
    if (rc)
        goto done;
    sqlrc = sqlite3_prepare_v2(st->db, SQL_UPSERT, -1, &up, NULL);
    if (sqlrc != SQLITE_OK)
        goto sqlfail;
    sqlite3_bind_text(up, 1, a->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(up, 2, a->rule, -1, SQLITE_STATIC);
    sqlite3_bind_text(up, 3, a->fingerprint, -1, SQLITE_STATIC);
    sqlite3_bind_text(up, 4, state, -1, SQLITE_STATIC);
    sqlite3_bind_text(up, 5, sev, -1, SQLITE_STATIC);
    sqlite3_bind_text(up, 6, group, -1, SQLITE_STATIC);
    sqlite3_bind_text(up, 7, labels, -1, SQLITE_STATIC);
    sqlite3_bind_text(up, 8, notify, -1, SQLITE_STATIC);
    if (a->has_value)
        sqlite3_bind_double(up, 9, a->value);
    else
        sqlite3_bind_null(up, 9);
    bind_opt_text(up, 10, a->summary);
    bind_opt_text(up, 11, a->reason);
    sqlite3_bind_int64(up, 12, a->active_at_ns);
    sqlite3_bind_int64(up, 13, a->starts_at_ns);
    sqlite3_bind_int64(up, 14, a->ends_at_ns);
    sqlite3_bind_int64(up, 15, a->updated_ns);
    sqlite3_bind_int64(up, 16, a->last_notified_ns);
    sqlite3_bind_int64(up, 17, a->false_since_ns);
    bind_opt_text(up, 18, a->acked_by);
    bind_opt_text(up, 19, a->acked_by ? a->ack_comment : NULL);
    sqlite3_bind_int64(up, 20, a->acked_at_ns);
    sqlite3_bind_int(up, 21, a->flapping);
    sqlrc = sqlite3_step(up);
    if (sqlrc != SQLITE_DONE)
        goto sqlfail;
    if (t != TE_ALERT_T_NONE) {
        sqlrc = sqlite3_prepare_v2(st->db, SQL_HISTORY, -1, &hist, NULL);
        if (sqlrc != SQLITE_OK)
            goto sqlfail;
        sqlite3_bind_text(hist, 1, a->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(hist, 2, a->rule, -1, SQLITE_STATIC);
        sqlite3_bind_text(hist, 3, a->fingerprint, -1, SQLITE_STATIC);
        sqlite3_bind_text(hist, 4, te_alert_transition_name(t), -1, SQLITE_STATIC);
        sqlite3_bind_text(hist, 5, state, -1, SQLITE_STATIC);
        sqlite3_bind_text(hist, 6, sev, -1, SQLITE_STATIC);
        if (a->has_value)
            sqlite3_bind_double(hist, 7, a->value);
        else
            sqlite3_bind_null(hist, 7);
        bind_opt_text(hist, 8, a->summary);
        bind_opt_text(hist, 9, a->reason);
        sqlite3_bind_int64(hist, 10, a->updated_ns);
        sqlrc = sqlite3_step(hist);
        if (sqlrc != SQLITE_DONE)
            goto sqlfail;
    }
    rc = run(st, "RELEASE te_alert_save", err, "save alert");
    goto done;
sqlfail:
    rc = te_store_sqlerr(st, sqlrc, err, "save alert");
    sqlite3_exec(st->db, "ROLLBACK TO te_alert_save; RELEASE te_alert_save", NULL, NULL, NULL);
done:
    sqlite3_finalize(up);
    sqlite3_finalize(hist);
    cJSON_free(group);
    cJSON_free(labels);
    cJSON_free(notify);
    return rc;
}

/* Parses a JSON object of strings into parallel arrays (malloc'd). */
static int parse_kv(const char *json, char ***keys, char ***values, size_t *n)
{
    cJSON *o = cJSON_Parse(json ? json : "");
    int rc = TE_EPARSE;
    *keys = *values = NULL;
    *n = 0;
    if (!cJSON_IsObject(o))
        goto done;
    size_t cnt = (size_t)cJSON_GetArraySize(o);
    if (cnt == 0) {
        rc = 0;
        goto done;
    }
    *keys = calloc(cnt, sizeof(char *));
    *values = calloc(cnt, sizeof(char *));
    rc = TE_ENOMEM;
    if (!*keys || !*values)
        goto done;
    const cJSON *it;
    cJSON_ArrayForEach(it, o) {
        if (!cJSON_IsString(it)) {
            rc = TE_EPARSE;
            goto done;
        }
        (*keys)[*n] = strdup(it->string);
        (*values)[*n] = strdup(it->valuestring);
        (*n)++;
        if (!(*keys)[*n - 1] || !(*values)[*n - 1])
            goto done;
    }
    rc = 0;
done:
    cJSON_Delete(o);
    return rc;
}

static int parse_list(const char *json, char ***v, size_t *n)
{
    cJSON *a = cJSON_Parse(json ? json : "");
    int rc = TE_EPARSE;
    *v = NULL;
    *n = 0;
    if (!cJSON_IsArray(a))
        goto done;
    size_t cnt = (size_t)cJSON_GetArraySize(a);
    rc = 0;
    if (cnt == 0)
        goto done;
    rc = TE_ENOMEM;
    *v = calloc(cnt, sizeof(char *));
    if (!*v)
        goto done;
    const cJSON *it;
    cJSON_ArrayForEach(it, a) {
        if (!cJSON_IsString(it)) {
            rc = TE_EPARSE;
            goto done;
        }
        (*v)[(*n)++] = strdup(it->valuestring);
        if (!(*v)[*n - 1])
            goto done;
    }
    rc = 0;
done:
    cJSON_Delete(a);
    return rc;
}

static const char *col(sqlite3_stmt *q, int i)
{
    return (const char *)sqlite3_column_text(q, i);
}

static char *dup_col(sqlite3_stmt *q, int i)
{
    const char *s = col(q, i);
    return s ? strdup(s) : NULL;
}

static int row_to_alert(sqlite3_stmt *q, te_alert_t *a, te_err_t *err)
{
    const char *id = col(q, 0), *fp = col(q, 2);
    if (!id || strlen(id) != TE_ALERT_ID_LEN || !fp || strlen(fp) != TE_ALERT_ID_LEN ||
        te_alert_state_parse(col(q, 3), &a->state) != 0 ||
        te_severity_parse(col(q, 4), &a->severity) != 0)
        return te_err_set(err, TE_EPARSE, "store: alert row %s is corrupt (id, fingerprint, "
                          "state or severity)", id ? id : "?");
    memcpy(a->id, id, TE_ALERT_ID_LEN + 1);
    memcpy(a->fingerprint, fp, TE_ALERT_ID_LEN + 1);
    a->rule = dup_col(q, 1);
    int rc = a->rule ? 0 : TE_ENOMEM;
    if (!rc)
        rc = parse_kv(col(q, 5), &a->group_keys, &a->group_values, &a->ngroup);
    if (!rc)
        rc = parse_kv(col(q, 6), &a->label_keys, &a->label_values, &a->nlabels);
    if (!rc)
        rc = parse_list(col(q, 7), &a->notify, &a->nnotify);
    if (rc)
        return te_err_set(err, rc, "store: alert row %s: %s", id,
                          rc == TE_EPARSE ? "bad group, labels or notify JSON" : "out of memory");
    a->has_value = sqlite3_column_type(q, 8) != SQLITE_NULL;
    a->value = a->has_value ? sqlite3_column_double(q, 8) : 0;
    a->summary = dup_col(q, 9);
    a->reason = dup_col(q, 10);
    a->active_at_ns = sqlite3_column_int64(q, 11);
    a->starts_at_ns = sqlite3_column_int64(q, 12);
    a->ends_at_ns = sqlite3_column_int64(q, 13);
    a->updated_ns = sqlite3_column_int64(q, 14);
    a->last_notified_ns = sqlite3_column_int64(q, 15);
    a->false_since_ns = sqlite3_column_int64(q, 16);
    if (col(q, 17) && te_alert_set_ack(a, col(q, 17), col(q, 18), sqlite3_column_int64(q, 19)))
        return te_err_set(err, TE_ENOMEM, "store: alert row %s: out of memory", id);
    a->flapping = sqlite3_column_int(q, 20) != 0;
    return 0;
}

/* Steps q (prepared and bound), handing each row to cb as an alert. */
static int each_alert(te_store_t *st, sqlite3_stmt *q, te_alert_load_cb cb, void *ud,
                      te_err_t *err)
{
    int rc;
    for (;;) {
        int s = sqlite3_step(q);
        if (s == SQLITE_DONE) {
            rc = 0;
            break;
        }
        if (s != SQLITE_ROW) {
            rc = te_store_sqlerr(st, s, err, "load alerts");
            break;
        }
        te_alert_t a;
        te_alert_init(&a);
        rc = row_to_alert(q, &a, err);
        if (!rc)
            rc = cb(ud, &a);
        te_alert_clear(&a);
        if (rc)
            break;
    }
    sqlite3_finalize(q);
    return rc;
}

int te_store_alerts_load_active(te_store_t *st, te_alert_load_cb cb, void *ud, te_err_t *err)
{
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(st->db, SQL_ACTIVE, -1, &q, NULL);
    if (rc != SQLITE_OK)
        return te_store_sqlerr(st, rc, err, "load alerts");
    return each_alert(st, q, cb, ud, err);
}

int te_store_alerts_list(te_store_t *st, const char *state, size_t limit, te_alert_load_cb cb,
                         void *ud, te_err_t *err)
{
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(st->db, SQL_LIST, -1, &q, NULL);
    if (rc != SQLITE_OK)
        return te_store_sqlerr(st, rc, err, "list alerts");
    if (state)
        sqlite3_bind_text(q, 1, state, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, limit ? (sqlite3_int64)limit : -1);
    return each_alert(st, q, cb, ud, err);
}

int te_store_alerts_history_count(te_store_t *st, const char *id, int64_t *out, te_err_t *err)
{
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(st->db, "SELECT count(*) FROM alert_history WHERE alert_id = ?1",
                                -1, &q, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
        rc = sqlite3_step(q);
    }
    if (rc != SQLITE_ROW) {
        rc = te_store_sqlerr(st, rc, err, "count alert history");
        sqlite3_finalize(q);
        return rc;
    }
    *out = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return 0;
}

int te_store_alerts_state_check(const char *state, te_err_t *err)
{
    static const char *const ok[] = {"pending", "firing", "resolved", "acked", "silenced"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (strcmp(state, ok[i]) == 0)
            return 0;
    return te_err_set(err, TE_EINVAL,
                      "state must be pending, firing, resolved, acked or silenced, got \"%s\"",
                      state);
}

typedef struct list_ctx {
    te_store_t *st;
    cJSON *arr;
    const char *state;
    size_t limit, n;
    te_silence_t *sil; /* active silences */
    size_t nsil;
    int64_t now;
    te_err_t *err;
} list_ctx_t;

static int collect_silence(void *ud, const te_silence_t *s)
{
    list_ctx_t *c = ud;
    te_silence_t *v = realloc(c->sil, (c->nsil + 1) * sizeof(*v));
    if (!v)
        return TE_ENOMEM;
    c->sil = v;
    if (te_silence_copy(&v[c->nsil], s) < 0)
        return TE_ENOMEM;
    c->nsil++;
    return 0;
}

static int collect_json(void *ud, const te_alert_t *a)
{
    list_ctx_t *c = ud;
    bool active = a->state == TE_ALERT_PENDING || a->state == TE_ALERT_FIRING;
    cJSON *by = cJSON_CreateArray();
    if (!by)
        return TE_ENOMEM;
    for (size_t i = 0; active && i < c->nsil; i++)
        if (te_silence_matches(&c->sil[i], a, c->now))
            cJSON_AddItemToArray(by, cJSON_CreateString(c->sil[i].id));
    if (c->state && strcmp(c->state, "silenced") == 0 && cJSON_GetArraySize(by) == 0) {
        cJSON_Delete(by);
        return 0;
    }
    if (c->limit && c->n >= c->limit) {
        cJSON_Delete(by);
        return 1; /* enough */
    }
    cJSON *o = te_alert_to_cjson(a);
    cJSON *deliveries = NULL;
    int rc = o ? te_store_outbox_deliveries(c->st, a->id, &deliveries, c->err) : TE_ENOMEM;
    if (rc < 0) {
        cJSON_Delete(o);
        cJSON_Delete(by);
        return rc;
    }
    cJSON_AddItemToObject(o, "silenced_by", by);
    cJSON_AddItemToObject(o, "deliveries", deliveries);
    cJSON_AddItemToArray(c->arr, o);
    c->n++;
    return 0;
}

int te_store_alerts_list_json(te_store_t *st, const char *state, size_t limit, cJSON **out,
                              te_err_t *err)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = root ? cJSON_AddArrayToObject(root, "alerts") : NULL;
    if (!arr) {
        cJSON_Delete(root);
        return te_err_set(err, TE_ENOMEM, "out of memory");
    }
    list_ctx_t c = {.st = st, .arr = arr, .state = state, .limit = limit,
                    .now = te_time_now_ns(), .err = err};
    int rc = te_store_silences_list(st, c.now, false, collect_silence, &c, err);
    if (!rc) {
        bool filtered = state && strcmp(state, "silenced") == 0;
        rc = te_store_alerts_list(st, state, filtered ? 0 : limit, collect_json, &c, err);
        if (rc == 1)
            rc = 0;
    }
    for (size_t i = 0; i < c.nsil; i++)
        te_silence_clear(&c.sil[i]);
    free(c.sil);
    if (rc < 0) {
        if (rc == TE_ENOMEM)
            te_err_set(err, TE_ENOMEM, "out of memory");
        cJSON_Delete(root);
        return rc;
    }
    *out = root;
    return 0;
}
