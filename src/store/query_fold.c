/*
 * query_fold.c - the plan's 1-hour segments (query_int.h): each field's
 * (and the event counts') rollup_1h rows, folded into partial aggregates
 * that the query cache keeps for the next query of a report, or streamed
 * straight into the accumulators.
 *
 * THREAD: as query.c: one thread at a time per te_store_t.
 *
 * The one idea (fold_1h_field): a field's 1-hour rows become partials per
 * (step, series) before they meet the groups, and the partials are kept:
 * the next query over the same range merges a few thousand partials
 * instead of reading ~70,000 series-hours again. The step is the query's every, or
 * a day without every: a function of the query alone, so an answer (its
 * summation order) never depends on what earlier queries left in the
 * cache, and a day lets the usual "totals" and "per day" questions share
 * one read. Fields with percentiles fold only without every (one sketch
 * per series then; per (day, series) they would cost thousands of
 * sketches); with every they stream, as everything does with every = 1 h
 * (one row per bucket and series: nothing to fold).
 */
#include <stdint.h>

#include "query_int.h"
#include "rollup_1h.h"
#include "sql.h"

typedef te_query_ctx_t qctx_t;
typedef te_query_acc_t acc_t;
typedef te_query_fstate_t fstate_t;
typedef te_query_seg_t seg_t;

/* the fold step without every (see the top comment) */
#define FOLD_DAY_NS (24 * TE_ROLLUP_1H_NS)
/* more partials than this (e.g. thousands of series over a year): the
 * field streams instead, holding only the groups' accumulators */
#define FOLD_MAX_PARTIALS (1u << 18)
#define FOLD_GAVE_UP 1
/* A long fold reads each page once (30 days of a field: ~13 MB). On a
 * read-only connection it hands SQLite's unpinned pages back every 1024
 * rows once it has read 8192: otherwise the page cache grows to its
 * 16 MiB with pages never read again, and a short-lived reader (the CLI)
 * pays a fresh-memory fault for each (~4,000: a quarter of the overview
 * report's time); freed pages are reused by the next ones instead. Shorter
 * folds and read-write connections (ingest keeps series/index pages hot)
 * are left alone. */
#define FOLD_RELEASE_AFTER 8192u
#define FOLD_RELEASE_EVERY 1024u

static bool folds(const qctx_t *c, int f)
{
    int64_t every = c->q->every_ns;
    if (every <= 0)
        return true;
    return every > TE_ROLLUP_1H_NS && (f < 0 || !c->want_vals[f]);
}

static int64_t fold_step(const qctx_t *c)
{
    return c->q->every_ns > 0 ? c->q->every_ns : FOLD_DAY_NS;
}

/* Starts the walk of the current row of q (bucket, chunk, stats[,
 * sketches]: rollup_1h.h). */
static int row_iter(qctx_t *c, sqlite3_stmt *q, bool sk, te_rollup_1h_iter_t *it)
{
    return te_rollup_1h_iter_init(it, sqlite3_column_int64(q, 1), sqlite3_column_blob(q, 2),
                                  (size_t)sqlite3_column_bytes(q, 2),
                                  sk ? sqlite3_column_blob(q, 3) : NULL,
                                  sk ? (size_t)sqlite3_column_bytes(q, 3) : 0, c->err);
}

/* One field's (f < 0: event counts') rollup_1h rows of sg, streamed into
 * the accumulators (every = 1 h: one row per bucket and series, nothing to
 * fold). */
static int stream_1h_field(qctx_t *c, int f, sqlite3_stmt *q)
{
    bool sk = f >= 0 && c->want_vals[f];
    int rc = 0, src;
    while (rc == 0 && (src = sqlite3_step(q)) == SQLITE_ROW) {
        int64_t bucket = sqlite3_column_int64(q, 0);
        te_rollup_1h_iter_t it;
        te_rollup_1h_entry_t e;
        rc = row_iter(c, q, sk, &it);
        while (rc == 0 && (rc = te_rollup_1h_next(&it, &e, c->err)) > 0)
            rc = te_query_add_rollup(c, f, bucket, e.sid, e.n, e.sum, e.min, e.max, e.sketch,
                                     e.sketch_len, NULL);
    }
    if (rc < 0)
        return rc;
    return src == SQLITE_DONE ? 0 : te_store_sqlerr(c->st, src, c->err, "query rollups");
}

/* Folds one field's rollup_1h rows of sg into e: one partial aggregate per
 * (bucket of the fold step, series), a partial created for every row read
 * (even n = 0: the bucket then holds events, like te_query_add_rollup's
 * accumulator). Rows come in bucket order, so a series' newest partial is
 * the only one its next row can join; sketches (e->sketch) go to the
 * series' first partial. Returns 0, FOLD_GAVE_UP (too many partials; e is
 * then incomplete) or TE_E*. */
static int fold_1h_field(qctx_t *c, int f, sqlite3_stmt *q, te_qcache_entry_t *e)
{
    int64_t step = fold_step(c);
    te_idmap_t last = {0};  /* series -> index of its newest partial */
    te_idmap_t first = {0}; /* series -> index of its first partial */
    int rc = 0, src;
    size_t nread = 0;
    te_rollup_1h_iter_t it;
    te_rollup_1h_entry_t en;
    int more = 0;
    src = SQLITE_ROW;
    for (;;) {
        if (more == 0) { /* the next row */
            if ((src = sqlite3_step(q)) != SQLITE_ROW)
                break;
            if ((rc = row_iter(c, q, e->sketch, &it)) < 0)
                break;
        }
        if ((more = te_rollup_1h_next(&it, &en, c->err)) < 0) {
            rc = more;
            break;
        }
        if (more == 0)
            continue;
        if (++nread >= FOLD_RELEASE_AFTER && nread % FOLD_RELEASE_EVERY == 0 && c->st->readonly)
            sqlite3_db_release_memory(c->st->db);
        int64_t bucket = te_rollup_bucket(sqlite3_column_int64(q, 0), step);
        int64_t sid = en.sid, n = en.n;
        int64_t idx;
        te_qcache_row_t *p;
        if (te_idmap_get(&last, sid, &idx) && e->rows[idx].a == bucket) {
            p = &e->rows[idx];
        } else {
            if (e->nrows >= FOLD_MAX_PARTIALS) {
                rc = FOLD_GAVE_UP;
                break;
            }
            te_qcache_row_t row = {.a = bucket, .sid = sid};
            int64_t had;
            idx = (int64_t)e->nrows;
            if (!(p = te_qcache_entry_add(e, &row, NULL, 0, SIZE_MAX)) ||
                te_idmap_put(&last, sid, idx) < 0 ||
                (e->sketch && !te_idmap_get(&first, sid, &had) &&
                 te_idmap_put(&first, sid, idx) < 0)) {
                rc = te_query_nomem(c);
                break;
            }
        }
        if (f < 0 || n <= 0) {
            p->n += f < 0 ? n : 0;
            continue;
        }
        double sum = en.sum, mn = en.min, mx = en.max;
        if (p->n == 0 || mn < p->min)
            p->min = mn;
        if (p->n == 0 || mx > p->max)
            p->max = mx;
        p->n += n;
        p->sum += sum;
        if (!e->sketch)
            continue;
        te_idmap_get(&first, sid, &idx);
        te_qsketch_t **sk = &e->sk[idx];
        if (!*sk) {
            if (!(*sk = te_qsketch_new())) {
                rc = te_query_nomem(c);
                break;
            }
            e->bytes += TE_QCACHE_SKETCH_BYTES;
        }
        rc = te_qsketch_merge(*sk, n, mn, mx, en.sketch, en.sketch_len, c->err);
        if (rc < 0)
            break;
    }
    te_idmap_free(&last);
    te_idmap_free(&first);
    if (rc == 0 && src != SQLITE_DONE)
        rc = te_store_sqlerr(c->st, src, c->err, "query rollups");
    return rc;
}

/* Merges e's partial aggregates of field f (< 0: event counts) into the
 * query's accumulators. */
static int apply_partials(qctx_t *c, int f, const te_qcache_entry_t *e)
{
    int64_t every = c->q->every_ns;
    for (size_t i = 0; i < e->nrows; i++) {
        const te_qcache_row_t *p = &e->rows[i];
        int64_t si;
        if (!te_idmap_get(&c->sidx, p->sid, &si))
            continue; /* series filtered out by where */
        const int64_t *info = c->sinfo + (size_t)si * (1 + c->ndist);
        acc_t *a = te_query_acc_get(c, every > 0 ? te_rollup_bucket(p->a, every) : 0, info[0]);
        if (!a)
            return c->err && c->err->code ? c->err->code : TE_ENOMEM;
        if (f < 0) {
            a->count += p->n;
            continue;
        }
        if (p->n <= 0)
            continue;
        fstate_t *fs = &a->f[f];
        if (fs->n == 0 || p->min < fs->min)
            fs->min = p->min;
        if (fs->n == 0 || p->max > fs->max)
            fs->max = p->max;
        fs->n += p->n;
        fs->sum += p->sum;
        if (!c->want_vals[f] || !e->sk || !e->sk[i])
            continue;
        if (!fs->sk && !(fs->sk = te_qsketch_new()))
            return te_query_nomem(c);
        if (te_qsketch_merge_sketch(fs->sk, e->sk[i]) < 0)
            return te_query_nomem(c);
    }
    return 0;
}

/* Prepares stmts[sk] (sk: with the sketch column) unless done, and binds
 * field f's range sg. */
static int bind_1h(qctx_t *c, int64_t kid, const seg_t *sg, int f, sqlite3_stmt **stmts)
{
    bool sk = f >= 0 && c->want_vals[f];
    sqlite3_stmt **q = &stmts[sk];
    if (!*q) {
        int src = sqlite3_prepare_v2(c->st->db, sk ? TE_SQL_ROLLUP_SCAN : TE_SQL_ROLLUP_SCAN_NOSK,
                                     -1, q, NULL);
        if (src != SQLITE_OK)
            return te_store_sqlerr(c->st, src, c->err, "query rollups");
    }
    sqlite3_bind_int64(*q, 1, kid);
    sqlite3_bind_text(*q, 2, f < 0 ? "" : c->fields[f], -1, SQLITE_STATIC);
    sqlite3_bind_int64(*q, 3, sg->lo);
    sqlite3_bind_int64(*q, 4, sg->hi);
    return 0;
}

/* The partials of field f (< 0: event counts) over sg (folds(c, f)): from
 * the cache, else read now and kept there; *own is set (the caller frees
 * it) when the cache cannot keep them. Returns 0, FOLD_GAVE_UP (*out NULL)
 * or TE_E*. */
static int partials_of(qctx_t *c, int64_t kid, const seg_t *sg, int f, sqlite3_stmt **stmts,
                       const te_qcache_entry_t **out, te_qcache_entry_t **own)
{
    const char *field = f < 0 ? "" : c->fields[f];
    bool sk = f >= 0 && c->want_vals[f];
    *own = NULL;
    *out = te_qcache_find(c->cache, 2, kid, field, sg->lo, sg->hi, fold_step(c), sk);
    if (*out)
        return 0;
    int rc = bind_1h(c, kid, sg, f, stmts);
    if (rc < 0)
        return rc;
    te_qcache_entry_t *e = te_qcache_entry_new(2, kid, field, sg->lo, sg->hi, fold_step(c), sk);
    rc = e ? fold_1h_field(c, f, stmts[sk], e) : te_query_nomem(c);
    sqlite3_reset(stmts[sk]);
    if (rc != 0) {
        te_qcache_entry_free(e);
        return rc;
    }
    if (!te_qcache_keep(c->cache, e))
        *own = e;
    *out = e;
    return 0;
}

/* One field's (f < 0: event counts') rollup_1h rows of sg: folded into
 * partials (kept in the cache: the next query over the same range merges a
 * few thousand partials instead of reading ~70,000 series-hours again), or
 * streamed (see folds). */
static int scan_1h_field(qctx_t *c, int64_t kid, const seg_t *sg, int f, sqlite3_stmt **stmts)
{
    if (folds(c, f)) {
        const te_qcache_entry_t *e = NULL;
        te_qcache_entry_t *own = NULL;
        int rc = partials_of(c, kid, sg, f, stmts, &e, &own);
        if (rc == 0)
            rc = apply_partials(c, f, e);
        te_qcache_entry_free(own);
        if (rc != FOLD_GAVE_UP)
            return rc;
    }
    int rc = bind_1h(c, kid, sg, f, stmts);
    if (rc < 0)
        return rc;
    bool sk = f >= 0 && c->want_vals[f];
    rc = stream_1h_field(c, f, stmts[sk]);
    sqlite3_reset(stmts[sk]);
    return rc;
}

int te_query_scan_1h(qctx_t *c, int64_t kid, const seg_t *sg)
{
    /* [0]: without the sketch column (the row's last and largest), for
     * fields that need no percentile; [1]: with it */
    sqlite3_stmt *stmts[2] = {NULL, NULL};
    int rc = 0;
    for (int f = -1; rc == 0 && f < (int)c->nfields; f++)
        rc = scan_1h_field(c, kid, sg, f, stmts);
    sqlite3_finalize(stmts[0]);
    sqlite3_finalize(stmts[1]);
    return rc;
}

int te_query_hourly_events(qctx_t *c, int64_t kid, const seg_t *segs, size_t n,
                           int64_t *out)
{
    *out = 0;
    for (size_t i = 0; i < n && folds(c, -1); i++) {
        if (segs[i].level != 2)
            continue;
        sqlite3_stmt *stmts[2] = {NULL, NULL};
        const te_qcache_entry_t *e = NULL;
        te_qcache_entry_t *own = NULL;
        int rc = partials_of(c, kid, &segs[i], -1, stmts, &e, &own);
        for (size_t j = 0; rc == 0 && j < e->nrows; j++)
            *out += e->rows[j].n;
        te_qcache_entry_free(own);
        sqlite3_finalize(stmts[0]);
        sqlite3_finalize(stmts[1]);
        if (rc < 0)
            return rc; /* FOLD_GAVE_UP: 0, the estimate decides */
    }
    return 0;
}
