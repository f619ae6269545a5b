/*
 * events.c - the insert path (kind and series caches, reused statements)
 * and the newest-first event listing with its cursor.
 *
 * THREAD: one thread at a time per te_store_t (the writer thread for
 * inserts, a reader's own thread for listings).
 *
 * The one idea: in the steady state an insert is one hash lookup and one
 * sqlite3_step of a prepared INSERT OR IGNORE with SQLITE_STATIC binds: no
 * malloc, no SQL text, no parse. sqlite3_changes() then tells a new event
 * from an idempotent re-send (the events_idem unique index ignored it).
 *
 * Listing: the cursor is "<ts_ns>.<id>" of the last row returned; the next
 * page continues strictly below that (ts_ns, id) pair, so equal timestamps
 * never repeat or skip rows. With a kind the (kind_id, ts_ns) index is walked
 * backwards; without one, every kind's ordered statement is merged in C (a
 * k-way merge: kinds are few, each step picks the newest head).
 */
#include "store.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "rollup.h"
#include "sql.h"
#include "store_int.h"

/* ---------- caches and statements ---------- */

void te_store_caches_reset(te_store_t *st)
{
    for (size_t i = 0; i < st->nkinds; i++)
        free(st->kinds[i].name);
    st->nkinds = 0;
    st->last_kind = 0;
    te_series_map_clear(&st->series);
    te_series_map_clear(&st->series_old);
    /* a read inside the lost transaction may have cached its ids too */
    te_idstr_free(&st->names);
    te_idstr_free(&st->tagsof);
    te_rollup_discard(st);
}

void te_store_caches_free(te_store_t *st)
{
    te_store_caches_reset(st);
    te_rollup_close(st);
    free(st->kinds);
    st->kinds = NULL;
    st->cap_kinds = 0;
    te_series_map_free(&st->series);
    te_series_map_free(&st->series_old);
    te_idstr_free(&st->names);
    te_idstr_free(&st->tagsof);
    sqlite3_stmt **all[] = {&st->st_begin,      &st->st_commit,      &st->st_rollback,
                            &st->st_kind_get,   &st->st_kind_add,    &st->st_series_get,
                            &st->st_series_add, &st->st_event_add,   &st->st_kind_name,
                            &st->st_series_tags};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        sqlite3_finalize(*all[i]);
        *all[i] = NULL;
    }
}

static int prep(te_store_t *st, sqlite3_stmt **s, const char *sql, te_err_t *err)
{
    int rc = sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, s, NULL);
    return rc == SQLITE_OK ? 0 : te_store_sqlerr(st, rc, err, "prepare statement");
}

int te_store_writer_prepare(te_store_t *st, te_err_t *err)
{
    int rc = prep(st, &st->st_begin, TE_SQL_BEGIN, err);
    if (rc == 0)
        rc = prep(st, &st->st_commit, TE_SQL_COMMIT, err);
    if (rc == 0)
        rc = prep(st, &st->st_rollback, TE_SQL_ROLLBACK, err);
    if (rc == 0)
        rc = prep(st, &st->st_kind_get, TE_SQL_KIND_GET, err);
    if (rc == 0)
        rc = prep(st, &st->st_kind_add, TE_SQL_KIND_ADD, err);
    if (rc == 0)
        rc = prep(st, &st->st_series_get, TE_SQL_SERIES_GET, err);
    if (rc == 0)
        rc = prep(st, &st->st_series_add, TE_SQL_SERIES_ADD, err);
    if (rc == 0)
        rc = prep(st, &st->st_event_add, TE_SQL_EVENT_ADD, err);
    if (rc == 0)
        rc = te_rollup_open(st, err);
    return rc;
}

/* Runs a one-shot statement (no row expected). */
static int step_done(te_store_t *st, sqlite3_stmt *s, te_err_t *err, const char *what)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : te_store_sqlerr(st, rc, err, what);
}

/* Steps a lookup that yields one integer; *id = 0 when no row. */
static int step_id(te_store_t *st, sqlite3_stmt *s, int64_t *id, te_err_t *err, const char *what)
{
    int rc = sqlite3_step(s);
    *id = 0;
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(s, 0);
        rc = SQLITE_DONE;
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : te_store_sqlerr(st, rc, err, what);
}

int te_store_kind_find(te_store_t *st, const char *name, int64_t *id, te_err_t *err)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(st->db, TE_SQL_KIND_GET, -1, &s, NULL);
    if (rc != SQLITE_OK)
        return te_store_sqlerr(st, rc, err, "look up kind");
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    rc = step_id(st, s, id, err, "look up kind");
    sqlite3_finalize(s);
    return rc;
}

/* Kind id for the writer, created when new. Kinds are few: a linear scan
 * that starts at the last hit. */
static int kind_id(te_store_t *st, const char *name, int64_t *out, te_err_t *err)
{
    size_t len = strlen(name);
    if (st->last_kind < st->nkinds) {
        te_kind_entry_t *k = &st->kinds[st->last_kind];
        if (k->len == len && memcmp(k->name, name, len) == 0) {
            *out = k->id;
            return 0;
        }
    }
    for (size_t i = 0; i < st->nkinds; i++) {
        if (st->kinds[i].len == len && memcmp(st->kinds[i].name, name, len) == 0) {
            st->last_kind = i;
            *out = st->kinds[i].id;
            return 0;
        }
    }
    int64_t id;
    sqlite3_bind_text(st->st_kind_get, 1, name, (int)len, SQLITE_STATIC);
    int rc = step_id(st, st->st_kind_get, &id, err, "look up kind");
    if (rc < 0)
        return rc;
    if (!id) {
        sqlite3_bind_text(st->st_kind_add, 1, name, (int)len, SQLITE_STATIC);
        rc = step_done(st, st->st_kind_add, err, "add kind");
        if (rc < 0)
            return rc;
        id = sqlite3_last_insert_rowid(st->db);
    }
    if (st->nkinds == st->cap_kinds) {
        size_t ncap = st->cap_kinds ? st->cap_kinds * 2 : 16;
        te_kind_entry_t *nk = realloc(st->kinds, ncap * sizeof(*nk));
        if (!nk)
            return te_err_set(err, TE_ENOMEM, "store: cannot allocate kind cache");
        st->kinds = nk;
        st->cap_kinds = ncap;
    }
    char *copy = strdup(name);
    if (!copy)
        return te_err_set(err, TE_ENOMEM, "store: cannot allocate kind cache");
    st->kinds[st->nkinds] = (te_kind_entry_t){.name = copy, .len = len, .id = id};
    st->last_kind = st->nkinds++;
    *out = id;
    return 0;
}

static int series_id(te_store_t *st, int64_t kid, const te_event_t *ev, int64_t *out,
                     te_err_t *err)
{
    const char *tags = ev->tags_json ? ev->tags_json : "{}";
    size_t len = ev->tags_json ? ev->tags_json_len : 2;
    uint64_t h = te_store_hash(tags, len, (uint64_t)kid);
    te_series_slot_t *slot = te_series_map_find(&st->series, kid, tags, len, h);
    if (slot) {
        *out = slot->id;
        return 0;
    }
    int64_t id = 0;
    slot = te_series_map_find(&st->series_old, kid, tags, len, h);
    if (slot) {
        id = slot->id;
        goto cache;
    }
    sqlite3_bind_int64(st->st_series_get, 1, kid);
    sqlite3_bind_text(st->st_series_get, 2, tags, (int)len, SQLITE_STATIC);
    int rc = step_id(st, st->st_series_get, &id, err, "look up series");
    if (rc < 0)
        return rc;
    if (!id) {
        sqlite3_bind_int64(st->st_series_add, 1, kid);
        sqlite3_bind_text(st->st_series_add, 2, tags, (int)len, SQLITE_STATIC);
        sqlite3_bind_int64(st->st_series_add, 3, ev->ts_ns);
        rc = step_done(st, st->st_series_add, err, "add series");
        if (rc < 0)
            return rc;
        id = sqlite3_last_insert_rowid(st->db);
    }
cache:
    /* two generations: short-lived series (a run's steps) would keep one
     * map growing; when the current one is full the previous is dropped,
     * and a series still in use moves up from it on its next event */
    if (st->series.n >= TE_WRITER_SERIES_MAX) {
        te_series_map_free(&st->series_old);
        st->series_old = st->series;
        st->series = (te_series_map_t){0};
    }
    if (te_series_map_put(&st->series, kid, tags, len, h, id) < 0)
        return te_err_set(err, TE_ENOMEM, "store: cannot allocate series cache");
    *out = id;
    return 0;
}

/* ---------- write path ---------- */

static int need_writable(te_store_t *st, te_err_t *err)
{
    if (st->readonly)
        return te_err_set(err, TE_EINVAL, "store: %s is open read-only", st->path);
    return 0;
}

int te_store_begin(te_store_t *st, te_err_t *err)
{
    int rc = need_writable(st, err);
    if (rc < 0)
        return rc;
    if (st->in_txn)
        return te_err_set(err, TE_EINVAL, "store: a transaction is already open");
    rc = step_done(st, st->st_begin, err, "begin transaction");
    if (rc == 0)
        st->in_txn = true;
    if (rc == 0 && (rc = te_rollup_begin(st, err)) < 0)
        te_store_rollback(st);
    return rc;
}

void te_store_rollback(te_store_t *st)
{
    if (!st || st->readonly)
        return;
    if (!sqlite3_get_autocommit(st->db)) {
        sqlite3_step(st->st_rollback);
        sqlite3_reset(st->st_rollback);
    }
    st->in_txn = false;
    /* kinds/series added by the lost transaction are gone: forget all */
    te_store_caches_reset(st);
}

int te_store_commit(te_store_t *st, te_err_t *err)
{
    int rc = need_writable(st, err);
    if (rc < 0)
        return rc;
    if (!st->in_txn)
        return te_err_set(err, TE_EINVAL, "store: commit without a transaction");
    rc = te_rollup_flush(st, err);
    if (rc < 0) {
        te_store_rollback(st);
        return rc;
    }
    rc = step_done(st, st->st_commit, err, "commit");
    if (rc < 0) {
        te_store_rollback(st);
        return rc;
    }
    st->in_txn = false;
    return 0;
}

static void bind_opt(sqlite3_stmt *s, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, i);
}

int te_store_insert(te_store_t *st, const te_event_t *ev, bool *stored, te_err_t *err)
{
    int rc = need_writable(st, err);
    if (rc < 0)
        return rc;
    if (!st->in_txn)
        return te_err_set(err, TE_EINVAL, "store: insert outside a transaction");
    if (!ev || !ev->kind)
        return te_err_set(err, TE_EINVAL, "store: insert: event without a kind");
    int64_t kid = 0, sid = 0;
    rc = kind_id(st, ev->kind, &kid, err);
    if (rc == 0)
        rc = series_id(st, kid, ev, &sid, err);
    if (rc < 0)
        return rc;
    sqlite3_stmt *s = st->st_event_add;
    sqlite3_bind_int64(s, 1, ev->ts_ns);
    sqlite3_bind_int64(s, 2, kid);
    sqlite3_bind_int64(s, 3, sid);
    bind_opt(s, 4, ev->source);
    bind_opt(s, 5, ev->id);
    bind_opt(s, 6, ev->trace_id);
    bind_opt(s, 7, ev->span_id);
    bind_opt(s, 8, ev->parent_span_id);
    bind_opt(s, 9, ev->correlation_id);
    /* a blob with no fields ("\0") is stored as NULL: leaner rows */
    if (ev->fields_blob && ev->fields_blob_len > 1)
        sqlite3_bind_blob(s, 10, ev->fields_blob, (int)ev->fields_blob_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, 10);
    if (ev->body)
        sqlite3_bind_text(s, 11, ev->body, (int)ev->body_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, 11);
    int src = sqlite3_step(s);
    sqlite3_reset(s);
    if (src != SQLITE_DONE)
        return te_store_sqlerr(st, src, err, "insert event");
    bool is_new = sqlite3_changes(st->db) > 0;
    if (stored)
        *stored = is_new;
    if (is_new)
        return te_rollup_add(st, kid, sid, ev->ts_ns, sqlite3_last_insert_rowid(st->db),
                             ev->fields_blob,
                             ev->fields_blob ? ev->fields_blob_len : 0, err);
    return 0;
}

/* ---------- read path ---------- */

/* Looks id up with stmt (one text column) and caches the answer in m. */
static te_idstr_slot_t *idstr_load(te_store_t *st, te_idstr_map_t *m, sqlite3_stmt **stmt,
                                   const char *sql, int64_t id, const char *what, te_err_t *err)
{
    te_idstr_slot_t *slot = te_idstr_find(m, id);
    if (slot)
        return slot;
    int rc = SQLITE_OK;
    if (!*stmt)
        rc = sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, stmt, NULL);
    if (rc != SQLITE_OK) {
        te_store_sqlerr(st, rc, err, what);
        return NULL;
    }
    sqlite3_bind_int64(*stmt, 1, id);
    rc = sqlite3_step(*stmt);
    if (rc == SQLITE_ROW) {
        const char *s = (const char *)sqlite3_column_text(*stmt, 0);
        slot = te_idstr_put(m, id, s ? s : "", s ? (size_t)sqlite3_column_bytes(*stmt, 0) : 0);
        if (!slot)
            te_err_set(err, TE_ENOMEM, "store: cannot allocate %s cache", what);
    } else if (rc == SQLITE_DONE) {
        te_err_set(err, TE_ESQLITE, "store: %s %" PRId64 " is missing (run `db check`)", what, id);
    } else {
        te_store_sqlerr(st, rc, err, what);
    }
    sqlite3_reset(*stmt);
    return slot;
}

const char *te_store_kind_name(te_store_t *st, int64_t id, te_err_t *err)
{
    te_idstr_slot_t *s = idstr_load(st, &st->names, &st->st_kind_name, TE_SQL_KIND_NAME, id,
                                    "kind", err);
    return s ? s->s : NULL;
}

const char *te_store_series_tags(te_store_t *st, int64_t id, size_t *len, te_err_t *err)
{
    te_idstr_slot_t *s = idstr_load(st, &st->tagsof, &st->st_series_tags, TE_SQL_SERIES_TAGS,
                                    id, "series", err);
    if (!s)
        return NULL;
    *len = s->len;
    return s->s;
}

/* ---------- tag filters ---------- */

int te_store_filters_check(const te_tag_filter_t *where, size_t nwhere, te_err_t *err)
{
    for (size_t i = 0; i < nwhere; i++) {
        if (!where[i].key || !*where[i].key)
            return te_err_set(err, TE_EINVAL, "where: empty tag name (use TAG:VALUE)");
        if (where[i].nvalues == 0 || !where[i].values)
            return te_err_set(err, TE_EINVAL, "where: tag \"%s\" has no value (use %s:VALUE)",
                              where[i].key, where[i].key);
        for (size_t j = 0; j < where[i].nvalues; j++)
            if (!where[i].values[j])
                return te_err_set(err, TE_EINVAL, "where: tag \"%s\" has a NULL value",
                                  where[i].key);
    }
    return 0;
}

static bool tags_match(const cJSON *tags, const te_tag_filter_t *where, size_t nwhere)
{
    for (size_t i = 0; i < nwhere; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(where[j].key, where[i].key) == 0;
        if (seen)
            continue; /* key already decided with its merged OR list */
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(tags, where[i].key);
        const char *v = cJSON_IsString(t) ? t->valuestring : NULL;
        if (!v)
            return false;
        bool ok = false;
        for (size_t j = i; j < nwhere && !ok; j++) {
            if (strcmp(where[j].key, where[i].key) != 0)
                continue;
            for (size_t k = 0; k < where[j].nvalues && !ok; k++)
                ok = strcmp(where[j].values[k], v) == 0;
        }
        if (!ok)
            return false;
    }
    return true;
}

int te_store_series_scan(te_store_t *st, int64_t kind_id, const te_tag_filter_t *where,
                         size_t nwhere, te_series_cb cb, void *ud, te_err_t *err)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(st->db, TE_SQL_SERIES_OF_KIND, -1, &s, NULL);
    if (rc != SQLITE_OK)
        return te_store_sqlerr(st, rc, err, "read series");
    sqlite3_bind_int64(s, 1, kind_id);
    int ret = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t sid = sqlite3_column_int64(s, 0);
        const char *txt = (const char *)sqlite3_column_text(s, 1);
        cJSON *tags = txt ? cJSON_ParseWithLength(txt, (size_t)sqlite3_column_bytes(s, 1)) : NULL;
        if (!cJSON_IsObject(tags)) {
            cJSON_Delete(tags);
            ret = te_err_set(err, TE_ESQLITE, "store: series %" PRId64 " has bad tags (run `db check`)",
                             sid);
            break;
        }
        if (tags_match(tags, where, nwhere))
            ret = cb(sid, tags, ud);
        cJSON_Delete(tags);
        if (ret)
            break;
    }
    if (!ret && rc != SQLITE_DONE)
        ret = te_store_sqlerr(st, rc, err, "read series");
    sqlite3_finalize(s);
    return ret;
}

/* ---------- listing ---------- */

typedef struct head {
    sqlite3_stmt *s;
    int64_t kid;
    bool live;              /* s sits on a row */
    int64_t ts, id;
} head_t;

static int add_series(int64_t sid, const void *tags, void *ud)
{
    (void)tags;
    return te_idmap_put(ud, sid, 1);
}

static int parse_cursor(const char *c, int64_t *ts, int64_t *id, te_err_t *err)
{
    char *end = NULL;
    errno = 0;
    long long t = strtoll(c, &end, 10);
    if (errno || end == c || *end != '.' || !(end[1] >= '0' && end[1] <= '9'))
        goto bad;
    const char *p = end + 1;
    long long i = strtoll(p, &end, 10);
    if (errno || *end != '\0' || i <= 0)
        goto bad;
    *ts = t;
    *id = i;
    return 0;
bad:
    return te_err_set(err, TE_EINVAL,
                      "events: bad cursor \"%.64s\" (pass the \"next\" value of the previous "
                      "page unchanged)",
                      c);
}

/* Moves h to its next row whose series passes the filter. */
static int head_next(te_store_t *st, head_t *h, const te_idmap_t *only, te_err_t *err)
{
    int rc;
    while ((rc = sqlite3_step(h->s)) == SQLITE_ROW) {
        if (only && !te_idmap_get(only, sqlite3_column_int64(h->s, 2), NULL))
            continue;
        h->id = sqlite3_column_int64(h->s, 0);
        h->ts = sqlite3_column_int64(h->s, 1);
        h->live = true;
        return 0;
    }
    h->live = false;
    return rc == SQLITE_DONE ? 0 : te_store_sqlerr(st, rc, err, "read events");
}

static const char *col_text(sqlite3_stmt *s, int i)
{
    return (const char *)sqlite3_column_text(s, i);
}

static int emit(te_store_t *st, head_t *h, te_event_cb cb, void *ud, int *stop, te_err_t *err)
{
    sqlite3_stmt *s = h->s;
    const char *kind = te_store_kind_name(st, h->kid, err);
    size_t tlen = 0;
    const char *tags = kind ? te_store_series_tags(st, sqlite3_column_int64(s, 2), &tlen, err)
                            : NULL;
    if (!tags)
        return err && err->code ? err->code : TE_ESQLITE;
    const unsigned char *fields = sqlite3_column_blob(s, 9);
    size_t flen = (size_t)sqlite3_column_bytes(s, 9);
    const char *body = col_text(s, 10);
    size_t blen = (size_t)sqlite3_column_bytes(s, 10);
    te_event_t *ev = NULL;
    int rc = te_event_build(h->ts, kind, col_text(s, 3), col_text(s, 4), col_text(s, 5),
                            col_text(s, 6), col_text(s, 7), col_text(s, 8), tags, tlen,
                            fields, fields ? flen : 0, body, body ? blen : 0, &ev, err);
    if (rc < 0)
        return rc;
    *stop = cb(ev, ud);
    te_event_free(ev);
    return 0;
}

int te_store_events(te_store_t *st, const te_events_query_t *q, te_event_cb cb, void *ud,
                    char *next, size_t next_cap, te_err_t *err)
{
    if (!st || !q || !cb || !next || next_cap < 64)
        return te_err_set(err, TE_EINVAL, "events: bad arguments (next_cap must be >= 64)");
    next[0] = '\0';
    if (q->limit < 1 || q->limit > 1000)
        return te_err_set(err, TE_EINVAL, "events: limit %zu is out of range (1..1000)",
                          q->limit);
    int rc = te_store_filters_check(q->where, q->nwhere, err);
    if (rc < 0)
        return rc;
    int64_t cts = INT64_MAX, cid = INT64_MAX;
    if (q->cursor && *q->cursor) {
        rc = parse_cursor(q->cursor, &cts, &cid, err);
        if (rc < 0)
            return rc;
    }
    if (q->until_ns <= q->since_ns)
        return 0;
    int64_t hi = q->until_ns - 1 < cts ? q->until_ns - 1 : cts;

    head_t *heads = NULL;
    size_t nheads = 0;
    te_idmap_t only = {0};
    bool filter = q->nwhere > 0;
    sqlite3_stmt *ks = NULL;
    if (q->kind) {
        int64_t kid = 0;
        rc = te_store_kind_find(st, q->kind, &kid, err);
        if (rc < 0 || !kid)
            return rc;
        heads = calloc(1, sizeof(*heads));
        if (!heads)
            return te_err_set(err, TE_ENOMEM, "events: cannot allocate");
        heads[nheads++].kid = kid;
    } else {
        int src = sqlite3_prepare_v2(st->db, TE_SQL_KINDS_ALL, -1, &ks, NULL);
        size_t cap = 0;
        while (src == SQLITE_OK && (src = sqlite3_step(ks)) == SQLITE_ROW) {
            if (nheads == cap) {
                cap = cap ? cap * 2 : 16;
                head_t *nh = realloc(heads, cap * sizeof(*nh));
                if (!nh) {
                    rc = te_err_set(err, TE_ENOMEM, "events: cannot allocate");
                    goto done;
                }
                heads = nh;
            }
            heads[nheads++] = (head_t){.kid = sqlite3_column_int64(ks, 0)};
            src = SQLITE_OK;
        }
        if (src != SQLITE_DONE) {
            rc = te_store_sqlerr(st, src, err, "list kinds");
            goto done;
        }
    }
    for (size_t i = 0; i < nheads; i++) {
        if (filter) {
            rc = te_store_series_scan(st, heads[i].kid, q->where, q->nwhere, add_series, &only,
                                      err);
            if (rc > 0 || rc == TE_ENOMEM)
                rc = te_err_set(err, TE_ENOMEM, "events: cannot allocate");
            if (rc < 0)
                goto done;
        }
    }
    if (filter && only.n == 0)
        goto done; /* no series matches: nothing to read */
    for (size_t i = 0; i < nheads; i++) {
        head_t *h = &heads[i];
        int src = sqlite3_prepare_v2(st->db, TE_SQL_EVENTS_PAGE, -1, &h->s, NULL);
        if (src != SQLITE_OK) {
            rc = te_store_sqlerr(st, src, err, "read events");
            goto done;
        }
        sqlite3_bind_int64(h->s, 1, h->kid);
        sqlite3_bind_int64(h->s, 2, q->since_ns);
        sqlite3_bind_int64(h->s, 3, hi);
        sqlite3_bind_int64(h->s, 4, cts);
        sqlite3_bind_int64(h->s, 5, cid);
        rc = head_next(st, h, filter ? &only : NULL, err);
        if (rc < 0)
            goto done;
    }
    size_t count = 0;
    int64_t last_ts = 0, last_id = 0;
    for (;;) {
        head_t *best = NULL;
        for (size_t i = 0; i < nheads; i++) {
            head_t *h = &heads[i];
            if (h->live && (!best || h->ts > best->ts || (h->ts == best->ts && h->id > best->id)))
                best = h;
        }
        if (!best)
            break;
        if (count == q->limit) {
            snprintf(next, next_cap, "%" PRId64 ".%" PRId64, last_ts, last_id);
            break;
        }
        int stop = 0;
        rc = emit(st, best, cb, ud, &stop, err);
        if (rc < 0)
            goto done;
        count++;
        last_ts = best->ts;
        last_id = best->id;
        if (stop) {
            snprintf(next, next_cap, "%" PRId64 ".%" PRId64, last_ts, last_id);
            break;
        }
        rc = head_next(st, best, filter ? &only : NULL, err);
        if (rc < 0)
            goto done;
    }
    rc = 0;
done:
    if (rc < 0)
        next[0] = '\0';
    sqlite3_finalize(ks);
    for (size_t i = 0; i < nheads; i++)
        sqlite3_finalize(heads[i].s);
    free(heads);
    te_idmap_free(&only);
    return rc;
}
