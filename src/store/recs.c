/*
 * recs.c - recommendation rows in SQLite (see recs.h).
 *
 * THREAD: the store's owner.
 *
 * Runs are rare (a recommender runs every minutes or hours), so statements
 * are prepared per call. The resolve step names this run's fingerprints
 * as one JSON array bound to json_each(), so one UPDATE closes every open
 * finding the run no longer returned, whatever their number.
 */
#include "store/recs.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "core/time.h"
#include "store/store_int.h"

#define SQL_UPSERT                                                                         \
    "INSERT INTO recommendations(name, fingerprint, severity, title, detail, action,"      \
    " evidence_json, first_seen_ns, last_seen_ns, count, state, resolved_ns)"              \
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, 1, 'open', NULL)"                         \
    " ON CONFLICT(fingerprint) DO UPDATE SET name = excluded.name,"                        \
    " severity = excluded.severity, title = excluded.title, detail = excluded.detail,"     \
    " action = excluded.action, evidence_json = excluded.evidence_json,"                   \
    " last_seen_ns = excluded.last_seen_ns, count = count + 1, state = 'open',"            \
    " resolved_ns = NULL"

#define SQL_STATE "SELECT state FROM recommendations WHERE fingerprint = ?1"

#define SQL_RESOLVE                                                                        \
    "UPDATE recommendations SET state = 'resolved', resolved_ns = ?2"                      \
    " WHERE name = ?1 AND state = 'open'"                                                  \
    " AND fingerprint NOT IN (SELECT value FROM json_each(?3))"

#define SQL_LIST                                                                           \
    "SELECT id, name, fingerprint, severity, title, detail, action, evidence_json,"        \
    " first_seen_ns, last_seen_ns, count, state, resolved_ns FROM recommendations"         \
    " WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR severity = ?2)"                  \
    " AND (?3 IS NULL OR name = ?3)"                                                       \
    " ORDER BY state = 'resolved',"                                                        \
    " CASE severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END,"              \
    " last_seen_ns DESC, id LIMIT ?4"

void te_rec_clear(te_rec_t *r)
{
    if (!r)
        return;
    free(r->name);
    free(r->title);
    free(r->detail);
    free(r->action);
    free(r->evidence_json);
    memset(r, 0, sizeof(*r));
}

void te_rec_fingerprint(const char *name, const char *key, char out[17])
{
    uint64_t h = 0xcbf29ce484222325ull;
    const char *parts[2] = {name ? name : "", key ? key : ""};
    for (int i = 0; i < 2; i++) {
        for (const unsigned char *p = (const unsigned char *)parts[i]; *p; p++) {
            h ^= *p;
            h *= 0x100000001b3ull;
        }
        h ^= 0xffu; /* a separator that cannot occur in UTF-8 text */
        h *= 0x100000001b3ull;
    }
    /* the murmur3 finaliser spreads FNV's weak low bits over all 64 */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    static const char hex[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--) {
        out[i] = hex[h & 15u];
        h >>= 4;
    }
    out[16] = '\0';
}

int te_store_recs_init(te_store_t *st, te_err_t *err)
{
    int rc = sqlite3_exec(st->db, "SELECT 1 FROM recommendations LIMIT 0", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return te_store_sqlerr(st, rc, err, "recommendations table");
    return 0;
}

static void bind_opt_text(sqlite3_stmt *q, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(q, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(q, i);
}

static bool seen_before(const te_rec_t *recs, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (strcmp(recs[j].fingerprint, recs[i].fingerprint) == 0)
            return true;
    return false;
}

int te_store_recs_save_run(te_store_t *st, const char *name, const te_rec_t *recs, size_t n,
                           int64_t now_ns, te_recs_run_stats_t *stats, te_err_t *err)
{
    te_recs_run_stats_t s = {0};
    sqlite3_stmt *up = NULL, *state = NULL, *res = NULL;
    cJSON *fps = NULL;
    char *fps_text = NULL;
    int rc = 0, sqlrc;
    bool in_sp = false;

    if (!name || !name[0])
        return te_err_set(err, TE_EINVAL, "store: a recommendation run needs a name");
    for (size_t i = 0; i < n; i++) {
        const te_rec_t *r = &recs[i];
        if (!r->name || strcmp(r->name, name) != 0 || !r->title || !r->title[0] ||
            !r->severity[0] || strlen(r->fingerprint) != 16)
            return te_err_set(err, TE_EINVAL,
                              "store: recommendation %zu of \"%s\" lacks a name, title, "
                              "severity or fingerprint", i + 1, name);
    }
    if (!(fps = cJSON_CreateArray()))
        goto nomem;
    for (size_t i = 0; i < n; i++) {
        cJSON *f = cJSON_CreateString(recs[i].fingerprint);
        if (!f)
            goto nomem;
        cJSON_AddItemToArray(fps, f);
    }
    if (!(fps_text = cJSON_PrintUnformatted(fps)))
        goto nomem;

    sqlrc = sqlite3_exec(st->db, "SAVEPOINT te_recs_save", NULL, NULL, NULL);
    if (sqlrc != SQLITE_OK)
        goto sqlfail;
    in_sp = true;
    sqlrc = sqlite3_prepare_v2(st->db, SQL_UPSERT, -1, &up, NULL);
    if (sqlrc == SQLITE_OK)
        sqlrc = sqlite3_prepare_v2(st->db, SQL_STATE, -1, &state, NULL);
    if (sqlrc == SQLITE_OK)
        sqlrc = sqlite3_prepare_v2(st->db, SQL_RESOLVE, -1, &res, NULL);
    if (sqlrc != SQLITE_OK)
        goto sqlfail;
    for (size_t i = 0; i < n; i++) {
        const te_rec_t *r = &recs[i];
        if (seen_before(recs, i))
            continue;
        sqlite3_reset(state);
        sqlite3_bind_text(state, 1, r->fingerprint, -1, SQLITE_STATIC);
        sqlrc = sqlite3_step(state);
        if (sqlrc == SQLITE_ROW) {
            const char *was = (const char *)sqlite3_column_text(state, 0);
            if (was && strcmp(was, "open") == 0)
                s.seen++;
            else
                s.reopened++;
        } else if (sqlrc == SQLITE_DONE) {
            s.opened++;
        } else {
            goto sqlfail;
        }
        sqlite3_reset(up);
        sqlite3_bind_text(up, 1, r->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(up, 2, r->fingerprint, -1, SQLITE_STATIC);
        sqlite3_bind_text(up, 3, r->severity, -1, SQLITE_STATIC);
        sqlite3_bind_text(up, 4, r->title, -1, SQLITE_STATIC);
        bind_opt_text(up, 5, r->detail);
        bind_opt_text(up, 6, r->action);
        bind_opt_text(up, 7, r->evidence_json);
        sqlite3_bind_int64(up, 8, now_ns);
        sqlrc = sqlite3_step(up);
        if (sqlrc != SQLITE_DONE)
            goto sqlfail;
    }
    sqlite3_bind_text(res, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(res, 2, now_ns);
    sqlite3_bind_text(res, 3, fps_text, -1, SQLITE_STATIC);
    sqlrc = sqlite3_step(res);
    if (sqlrc != SQLITE_DONE)
        goto sqlfail;
    s.resolved = (size_t)sqlite3_changes(st->db);
    sqlrc = sqlite3_exec(st->db, "RELEASE te_recs_save", NULL, NULL, NULL);
    if (sqlrc != SQLITE_OK)
        goto sqlfail;
    in_sp = false;
    if (stats)
        *stats = s;
    goto done;
nomem:
    rc = te_err_set(err, TE_ENOMEM, "store: out of memory saving recommendations of \"%s\"",
                    name);
    goto done;
sqlfail:
    rc = te_store_sqlerr(st, sqlrc, err, "save recommendations");
done:
    if (in_sp)
        sqlite3_exec(st->db, "ROLLBACK TO te_recs_save; RELEASE te_recs_save", NULL, NULL,
                     NULL);
    sqlite3_finalize(up);
    sqlite3_finalize(state);
    sqlite3_finalize(res);
    cJSON_free(fps_text);
    cJSON_Delete(fps);
    return rc;
}

int te_store_recs_filter_check(const char *state, const char *severity, te_err_t *err)
{
    if (state && strcmp(state, "open") != 0 && strcmp(state, "resolved") != 0 &&
        strcmp(state, "all") != 0)
        return te_err_set(err, TE_EINVAL, "state must be open, resolved or all, got \"%s\"",
                          state);
    if (severity && strcmp(severity, "info") != 0 && strcmp(severity, "warning") != 0 &&
        strcmp(severity, "critical") != 0)
        return te_err_set(err, TE_EINVAL,
                          "severity must be info, warning or critical, got \"%s\"", severity);
    return 0;
}

static char *col_dup(sqlite3_stmt *q, int i)
{
    const unsigned char *t = sqlite3_column_text(q, i);
    if (!t)
        return NULL;
    size_t n = (size_t)sqlite3_column_bytes(q, i);
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, t, n);
        p[n] = '\0';
    }
    return p;
}

static void col_copy(sqlite3_stmt *q, int i, char *out, size_t cap)
{
    const char *t = (const char *)sqlite3_column_text(q, i);
    snprintf(out, cap, "%s", t ? t : "");
}

int te_store_recs_list(te_store_t *st, const te_recs_filter_t *f, size_t limit, te_rec_cb cb,
                       void *ud, te_err_t *err)
{
    sqlite3_stmt *q = NULL;
    te_rec_t r;
    int rc = 0;
    const char *state = f ? f->state : NULL;
    if (state && strcmp(state, "all") == 0)
        state = NULL;
    memset(&r, 0, sizeof(r));
    int sqlrc = sqlite3_prepare_v2(st->db, SQL_LIST, -1, &q, NULL);
    if (sqlrc != SQLITE_OK)
        return te_store_sqlerr(st, sqlrc, err, "list recommendations");
    bind_opt_text(q, 1, state);
    bind_opt_text(q, 2, f ? f->severity : NULL);
    bind_opt_text(q, 3, f ? f->name : NULL);
    sqlite3_bind_int64(q, 4, limit ? (sqlite3_int64)limit : -1);
    while ((sqlrc = sqlite3_step(q)) == SQLITE_ROW) {
        r.id = sqlite3_column_int64(q, 0);
        r.name = col_dup(q, 1);
        col_copy(q, 2, r.fingerprint, sizeof(r.fingerprint));
        col_copy(q, 3, r.severity, sizeof(r.severity));
        r.title = col_dup(q, 4);
        r.detail = col_dup(q, 5);
        r.action = col_dup(q, 6);
        r.evidence_json = col_dup(q, 7);
        r.first_seen_ns = sqlite3_column_int64(q, 8);
        r.last_seen_ns = sqlite3_column_int64(q, 9);
        r.count = sqlite3_column_int64(q, 10);
        col_copy(q, 11, r.state, sizeof(r.state));
        r.resolved_ns = sqlite3_column_int64(q, 12);
        if (!r.name || !r.title || (sqlite3_column_type(q, 5) != SQLITE_NULL && !r.detail) ||
            (sqlite3_column_type(q, 6) != SQLITE_NULL && !r.action) ||
            (sqlite3_column_type(q, 7) != SQLITE_NULL && !r.evidence_json)) {
            rc = te_err_set(err, TE_ENOMEM, "store: out of memory listing recommendations");
            goto done;
        }
        rc = cb(ud, &r);
        te_rec_clear(&r);
        if (rc != 0)
            goto done;
    }
    if (sqlrc != SQLITE_DONE)
        rc = te_store_sqlerr(st, sqlrc, err, "list recommendations");
done:
    te_rec_clear(&r);
    sqlite3_finalize(q);
    return rc;
}

static bool add_time(cJSON *o, const char *key, int64_t ns)
{
    char buf[40];
    if (ns == 0)
        return cJSON_AddNullToObject(o, key) != NULL;
    te_time_format_rfc3339(ns, buf, sizeof(buf));
    return cJSON_AddStringToObject(o, key, buf) != NULL;
}

static bool add_opt_string(cJSON *o, const char *key, const char *s)
{
    return (s ? cJSON_AddStringToObject(o, key, s) : cJSON_AddNullToObject(o, key)) != NULL;
}

cJSON *te_rec_to_cjson(const te_rec_t *r)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON *ev = r->evidence_json ? cJSON_Parse(r->evidence_json) : cJSON_CreateNull();
    if (!ev) /* not JSON (written by hand?): keep the text */
        ev = cJSON_CreateString(r->evidence_json);
    if (!ev)
        goto fail;
    if (!cJSON_AddNumberToObject(o, "id", (double)r->id) ||
        !cJSON_AddStringToObject(o, "name", r->name ? r->name : "") ||
        !cJSON_AddStringToObject(o, "fingerprint", r->fingerprint) ||
        !cJSON_AddStringToObject(o, "severity", r->severity) ||
        !cJSON_AddStringToObject(o, "title", r->title ? r->title : "") ||
        !add_opt_string(o, "detail", r->detail) || !add_opt_string(o, "action", r->action)) {
        cJSON_Delete(ev);
        goto fail;
    }
    cJSON_AddItemToObject(o, "evidence", ev);
    if (!add_time(o, "first_seen", r->first_seen_ns) ||
        !add_time(o, "last_seen", r->last_seen_ns) ||
        !cJSON_AddNumberToObject(o, "count", (double)r->count) ||
        !cJSON_AddStringToObject(o, "state", r->state) ||
        !add_time(o, "resolved_at", r->resolved_ns))
        goto fail;
    return o;
fail:
    cJSON_Delete(o);
    return NULL;
}

static int add_json(void *ud, const te_rec_t *r)
{
    cJSON *o = te_rec_to_cjson(r);
    if (!o)
        return TE_ENOMEM;
    cJSON_AddItemToArray(ud, o);
    return 0;
}

int te_store_recs_list_json(te_store_t *st, const te_recs_filter_t *f, size_t limit,
                            cJSON **out, te_err_t *err)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = root ? cJSON_AddArrayToObject(root, "recommendations") : NULL;
    if (!arr) {
        cJSON_Delete(root);
        return te_err_set(err, TE_ENOMEM, "store: out of memory listing recommendations");
    }
    int rc = te_store_recs_list(st, f, limit, add_json, arr, err);
    if (rc == TE_ENOMEM) /* from add_json, which has no err */
        te_err_set(err, TE_ENOMEM, "store: out of memory listing recommendations");
    if (rc < 0) {
        cJSON_Delete(root);
        return rc;
    }
    *out = root;
    return 0;
}
