/*
 * query.c - aggregate queries (te_store_query): the planner that reads
 * rollups where they answer and raw events elsewhere, the entry point that
 * runs it and orders the result rows, and the aggregate list parser
 * (te_aggs_parse). What the plan reads goes through query_int.h: raw
 * events and packed minutes (query_scan.c), 1-hour rows (query_fold.c),
 * all merged into the accumulators of query_acc.c.
 *
 * THREAD: one thread at a time per te_store_t (a reader's own thread).
 *
 * The one idea: tags belong to series, so every tag question (where, group
 * by, distinct) is answered once per series, before any scan; rollups are
 * kept per series, so a where/group_by on tags is answerable from them too.
 * The raw scan reads only (ts_ns, series_id, fields) through the (kind_id,
 * ts_ns) index and, per row, does two hash lookups (series -> precomputed
 * info, (bucket, group) -> accumulator) and one blob lookup per wanted
 * field; a rollup row is merged into the same accumulators.
 *
 * Planner (docs/storage.md, "Rollups and the planner"):
 *   - rollups answer a query when every aggregate is count, sum, avg, min,
 *     max, rate or pNN (not distinct: values per event are gone) and, for
 *     each resolution R (1 h, then 1 min), `every` is 0 or a multiple of R
 *     (its buckets are then unions of R-buckets; every = 90s reads raw).
 *   - the range [since, until) is covered recursively: the largest
 *     R-aligned interior [ceil_R(since), min(floor_R(until), w_R)) from the
 *     coarsest allowed resolution, the edges with the next finer one, and
 *     what is left (sub-minute edges, everything at or after the kind's
 *     watermark w, see rollup.c) from raw events. At most 7 segments.
 *   - count, sum, min, max and avg are then exact (a sum up to the order of
 *     the floating-point additions); pNN is read from merged sketches
 *     (within 1% relative error of the raw definition below, for values of
 *     one sign) and raw values on the edges go into the same sketch.
 *   - TE_PLAN_AUTO still reads raw events alone for a query with
 *     percentiles when the 1-hour count rows say the range holds at most
 *     RAW_PERCENTILE_MAX events: cheap, and exact. TE_PLAN_RAW and
 *     TE_PLAN_ROLLUPS force the choice (tests compare them).
 *   - all reads happen in one read transaction (one snapshot), so the
 *     watermark, the rollup rows and the raw rows agree.
 *   - 1-hour rows fold into per-(series, step) partials before they meet
 *     the groups (step: every > 1 h, or a day without every), see
 *     query_fold.c; with every = 1 h they stream into the groups.
 *   - te_store_query_cached (query_cache.h) keeps the partials, the event
 *     estimate and small raw / 1-minute reads for the next query of a
 *     report: the same answer, bit for bit, without reading again.
 *
 * Semantics (documented in docs/storage.md):
 *   - buckets align to multiples of every since the Unix epoch (like a
 *     Prometheus step): bucket = floor(ts / every) * every; "time" is its
 *     start, so the first bucket may start before since. Only buckets that
 *     hold events produce rows.
 *   - without every and group_by there is always exactly one row (count 0
 *     when nothing matched), as SQL's SELECT count(*) does.
 *   - an event without a field does not contribute to that field's
 *     aggregates; sum/avg/min/max/pNN over no values are null; count and
 *     distinct are integers (0 when empty).
 *   - pNN: linear interpolation between the closest ranks (numpy's default):
 *     rank = p * (n - 1) over the sorted values.
 *   - rate = count / seconds of the bucket (every) or of [since, until).
 */
#include "store.h"

#include <stdlib.h>
#include <string.h>

#include "query_cache.h"
#include "query_int.h"
#include "rollup.h"
#include "sql.h"
#include "store_int.h"

#define MAX_GROUP_TAGS 32

typedef te_query_ctx_t qctx_t;
typedef te_query_acc_t acc_t;
typedef te_query_seg_t seg_t;

static const char VALID_AGGS[] =
    "count, sum:FIELD, avg:FIELD, min:FIELD, max:FIELD, p50:FIELD, p95:FIELD, p99:FIELD, rate, "
    "distinct:TAG";

/* ---------- te_aggs_parse ---------- */

static const struct {
    const char *word;
    te_agg_op_t op;
    int arg; /* 0 none, 1 field, 2 tag */
} OPS[] = {
    {"count", TE_AGG_COUNT, 0}, {"sum", TE_AGG_SUM, 1}, {"avg", TE_AGG_AVG, 1},
    {"min", TE_AGG_MIN, 1},     {"max", TE_AGG_MAX, 1}, {"p50", TE_AGG_P50, 1},
    {"p95", TE_AGG_P95, 1},     {"p99", TE_AGG_P99, 1}, {"rate", TE_AGG_RATE, 0},
    {"distinct", TE_AGG_DISTINCT, 2},
};

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

void te_aggs_free(te_agg_t *aggs, size_t n)
{
    if (!aggs)
        return;
    for (size_t i = 0; i < n; i++) {
        free(aggs[i].arg);
        free(aggs[i].name);
    }
    free(aggs);
}

static int parse_item(const char *it, size_t len, te_agg_t *a, te_err_t *err)
{
    const char *colon = memchr(it, ':', len);
    size_t wlen = colon ? (size_t)(colon - it) : len;
    const char *arg = colon ? colon + 1 : NULL;
    size_t alen = colon ? len - wlen - 1 : 0;
    int len_i = (int)len;
    for (size_t i = 0; i < sizeof(OPS) / sizeof(OPS[0]); i++) {
        if (strlen(OPS[i].word) != wlen || memcmp(OPS[i].word, it, wlen) != 0)
            continue;
        if (OPS[i].arg == 0 && colon)
            return te_err_set(err, TE_EINVAL, "agg \"%.*s\": %s takes no argument (valid: %s)",
                              len_i, it, OPS[i].word, VALID_AGGS);
        if (OPS[i].arg && alen == 0)
            return te_err_set(err, TE_EINVAL, "agg \"%.*s\": %s needs a %s (%s:%s)", len_i, it,
                              OPS[i].word, OPS[i].arg == 1 ? "field" : "tag", OPS[i].word,
                              OPS[i].arg == 1 ? "FIELD" : "TAG");
        a->op = OPS[i].op;
        a->name = dup_n(it, len);
        a->arg = OPS[i].arg ? dup_n(arg, alen) : NULL;
        if (!a->name || (OPS[i].arg && !a->arg))
            return te_err_set(err, TE_ENOMEM, "agg: cannot allocate");
        return 0;
    }
    return te_err_set(err, TE_EINVAL, "agg \"%.*s\": unknown aggregate (valid: %s)", len_i, it,
                      VALID_AGGS);
}

int te_aggs_parse(const char *spec, te_agg_t **out, size_t *n, te_err_t *err)
{
    te_agg_t *aggs = calloc(TE_QUERY_MAX_AGGS, sizeof(*aggs));
    size_t na = 0;
    int rc = 0;
    if (!aggs)
        return te_err_set(err, TE_ENOMEM, "agg: cannot allocate");
    const char *p = spec ? spec : "";
    while (*p == ' ' || *p == '\t')
        p++;
    if (!*p) { /* empty: count */
        rc = parse_item("count", 5, &aggs[na++], err);
        if (rc < 0)
            goto fail;
        *out = aggs;
        *n = na;
        return 0;
    }
    for (size_t pos = 1;; pos++) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *it = p;
        while (len && (*it == ' ' || *it == '\t')) {
            it++;
            len--;
        }
        while (len && (it[len - 1] == ' ' || it[len - 1] == '\t'))
            len--;
        if (len == 0) {
            rc = te_err_set(err, TE_EINVAL, "agg: item %zu of \"%.200s\" is empty (valid: %s)",
                            pos, spec, VALID_AGGS);
            goto fail;
        }
        if (na == TE_QUERY_MAX_AGGS) {
            rc = te_err_set(err, TE_EINVAL, "agg: more than %d aggregates", TE_QUERY_MAX_AGGS);
            goto fail;
        }
        rc = parse_item(it, len, &aggs[na], err);
        na++;
        if (rc < 0)
            goto fail;
        for (size_t i = 0; i + 1 < na; i++) {
            if (strcmp(aggs[i].name, aggs[na - 1].name) == 0) {
                rc = te_err_set(err, TE_EINVAL, "agg \"%s\" is listed twice", aggs[i].name);
                goto fail;
            }
        }
        if (!end)
            break;
        p = end + 1;
    }
    *out = aggs;
    *n = na;
    return 0;
fail:
    te_aggs_free(aggs, na);
    return rc;
}

/* ---------- result order ---------- */

/* Sorting (no globals: queries run on many threads): groups are ranked by
 * their values (null first), rows are ordered by (bucket, group rank). */
typedef struct gsort {
    char *const *vals;      /* ngroup values of this group */
    size_t ng;
    size_t idx;
} gsort_t;

static int cmp_groups(const void *a, const void *b)
{
    const gsort_t *x = a, *y = b;
    for (size_t g = 0; g < x->ng; g++) {
        const char *u = x->vals[g], *v = y->vals[g];
        if (!u || !v) {
            if (u != v)
                return u ? 1 : -1;
            continue;
        }
        int r = strcmp(u, v);
        if (r)
            return r;
    }
    return 0;
}

static int cmp_accs(const void *a, const void *b)
{
    const acc_t *x = a, *y = b;
    if (x->bucket != y->bucket)
        return x->bucket < y->bucket ? -1 : 1;
    return x->rank < y->rank ? -1 : x->rank > y->rank;
}

/* ---------- planner ---------- */

#define MAX_SEGS 8
/* AUTO plan: percentiles over at most this many events read raw (exact) */
#define RAW_PERCENTILE_MAX 100000

static const int64_t LEVEL_NS[3] = {0, TE_ROLLUP_1M_NS, TE_ROLLUP_1H_NS};

/* Covers [lo, hi) with the coarsest allowed level whose aligned interior is
 * not empty, recursing into the unaligned edges with finer levels. */
static void cover(seg_t *segs, size_t *n, int64_t lo, int64_t hi, int level,
                  const bool allowed[3], const int64_t wm[3])
{
    if (lo >= hi)
        return;
    for (; level > 0; level--) {
        int64_t r = LEVEL_NS[level];
        if (!allowed[level])
            continue;
        int64_t a = te_rollup_bucket(lo, r), b = te_rollup_bucket(hi, r);
        if (b > wm[level])
            b = wm[level]; /* rolled up only below the watermark */
        if (a < lo) {
            if (a > INT64_MAX - r)
                continue;
            a += r;
        }
        if (a >= b)
            continue;
        cover(segs, n, lo, a, level - 1, allowed, wm);
        segs[(*n)++] = (seg_t){a, b, level};
        cover(segs, n, b, hi, level - 1, allowed, wm);
        return;
    }
    segs[(*n)++] = (seg_t){lo, hi, 0};
}

/* Upper bound of the kind's events in [lo, hi) from the 1-hour count rows
 * (whole hours around the range). */
static int estimate_events(qctx_t *c, int64_t kid, int64_t lo, int64_t hi, int64_t *out)
{
    if (te_qcache_estimate_get(c->cache, kid, lo, hi, out))
        return 0;
    sqlite3_stmt *s = NULL;
    int src = sqlite3_prepare_v2(c->st->db, TE_SQL_ROLLUP_ESTIMATE, -1, &s, NULL);
    if (src != SQLITE_OK)
        return te_store_sqlerr(c->st, src, c->err, "query rollups");
    sqlite3_bind_int64(s, 1, kid);
    sqlite3_bind_int64(s, 2, te_rollup_bucket(lo, TE_ROLLUP_1H_NS));
    sqlite3_bind_int64(s, 3, hi);
    src = sqlite3_step(s);
    *out = src == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_finalize(s);
    if (src != SQLITE_ROW && src != SQLITE_DONE)
        return te_store_sqlerr(c->st, src, c->err, "query rollups");
    te_qcache_estimate_put(c->cache, kid, lo, hi, *out);
    return 0;
}

/* Picks the segments (see the top comment) and reads them. */
static int run_plan(qctx_t *c, int64_t kid)
{
    const te_query_t *q = c->q;
    bool allowed[3] = {true, false, false};
    int64_t wm[3] = {0, INT64_MIN, INT64_MIN};
    bool rollups = q->plan != TE_PLAN_RAW && c->ndist == 0;
    if (rollups) {
        int rc = te_rollup_watermarks(c->st, kid, &wm[1], &wm[2], c->err);
        if (rc < 0)
            return rc;
    }
    for (int l = 1; rollups && l <= 2; l++)
        allowed[l] = q->every_ns <= 0 || q->every_ns % LEVEL_NS[l] == 0;
    seg_t segs[MAX_SEGS];
    size_t n = 0;
    cover(segs, &n, q->since_ns, q->until_ns, 2, allowed, wm);
    for (size_t i = 0; i < n; i++)
        if (segs[i].level > 0)
            c->use_sketch = true;
    bool pct = false;
    for (size_t f = 0; f < c->nfields; f++)
        pct = pct || c->want_vals[f];
    if (c->use_sketch && pct && q->plan == TE_PLAN_AUTO) {
        /* percentiles stay exact while the raw scan is cheap */
        int64_t est = 0;
        int rc = te_query_hourly_events(c, kid, segs, n, &est);
        if (rc == 0 && est <= RAW_PERCENTILE_MAX)
            rc = estimate_events(c, kid, q->since_ns, q->until_ns, &est);
        if (rc < 0)
            return rc;
        if (est <= RAW_PERCENTILE_MAX) {
            c->use_sketch = false;
            n = 0;
            segs[n++] = (seg_t){q->since_ns, q->until_ns, 0};
        }
    }
    for (size_t i = 0; i < n; i++) {
        int rc = segs[i].level == 0   ? te_query_scan_raw(c, kid, segs[i].lo, segs[i].hi)
                 : segs[i].level == 1 ? te_query_scan_1m(c, kid, &segs[i])
                                      : te_query_scan_1h(c, kid, &segs[i]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int check_query(const te_query_t *q, te_err_t *err)
{
    if (!q || !q->kind || !*q->kind)
        return te_err_set(err, TE_EINVAL, "query: kind is required (--kind K)");
    if (!q->aggs || q->naggs == 0)
        return te_err_set(err, TE_EINVAL, "query: no aggregate given (e.g. count)");
    if (q->naggs > TE_QUERY_MAX_AGGS)
        return te_err_set(err, TE_EINVAL, "query: more than %d aggregates", TE_QUERY_MAX_AGGS);
    if (q->every_ns < 0)
        return te_err_set(err, TE_EINVAL, "query: every must be positive");
    if (q->ngroup > MAX_GROUP_TAGS)
        return te_err_set(err, TE_EINVAL, "query: more than %d group_by tags", MAX_GROUP_TAGS);
    for (size_t g = 0; g < q->ngroup; g++)
        if (!q->group_by || !q->group_by[g] || !*q->group_by[g])
            return te_err_set(err, TE_EINVAL, "query: empty group_by tag name");
    for (size_t i = 0; i < q->naggs; i++)
        if (!q->aggs[i].name || (q->aggs[i].op != TE_AGG_COUNT && q->aggs[i].op != TE_AGG_RATE &&
                                 (!q->aggs[i].arg || !*q->aggs[i].arg)))
            return te_err_set(err, TE_EINVAL, "query: aggregate %zu lacks its name or argument",
                              i + 1);
    return te_store_filters_check(q->where, q->nwhere, err);
}

static void plan_aggs(qctx_t *c)
{
    const te_query_t *q = c->q;
    for (size_t i = 0; i < q->naggs; i++) {
        const te_agg_t *a = &q->aggs[i];
        c->agg_field[i] = c->agg_dist[i] = -1;
        if (a->op == TE_AGG_COUNT || a->op == TE_AGG_RATE)
            continue;
        if (a->op == TE_AGG_DISTINCT) {
            size_t d = 0;
            while (d < c->ndist && strcmp(c->dtags[d], a->arg) != 0)
                d++;
            if (d == c->ndist)
                c->dtags[c->ndist++] = a->arg;
            c->agg_dist[i] = (int)d;
            continue;
        }
        size_t f = 0;
        while (f < c->nfields && strcmp(c->fields[f], a->arg) != 0)
            f++;
        if (f == c->nfields)
            c->fields[c->nfields++] = a->arg;
        c->agg_field[i] = (int)f;
        if (a->op == TE_AGG_P50 || a->op == TE_AGG_P95 || a->op == TE_AGG_P99)
            c->want_vals[f] = true;
    }
}

static te_result_t *new_result(const te_query_t *q)
{
    const char *cols[1 + MAX_GROUP_TAGS + TE_QUERY_MAX_AGGS];
    size_t n = 0;
    if (q->every_ns > 0)
        cols[n++] = "time";
    for (size_t g = 0; g < q->ngroup; g++)
        cols[n++] = q->group_by[g];
    for (size_t i = 0; i < q->naggs; i++)
        cols[n++] = q->aggs[i].name;
    return te_result_new(cols, n);
}

static void ctx_free(qctx_t *c)
{
    for (size_t i = 0; i < c->naccs; i++) {
        acc_t *a = &c->accs[i];
        for (size_t f = 0; a->f && f < c->nfields; f++) {
            free(a->f[f].vals);
            te_qsketch_free(a->f[f].sk);
        }
        for (size_t d = 0; a->dset && d < c->ndist; d++)
            te_idmap_free(&a->dset[d]);
        free(a->f);
        free(a->dset);
    }
    free(c->accs);
    for (size_t i = 0; i < c->ngroups * c->q->ngroup; i++)
        free(c->gvals[i]);
    free(c->gvals);
    free(c->sinfo);
    te_idmap_free(&c->sidx);
    te_series_map_clear(&c->gmap);
    te_series_map_clear(&c->vmap);
    te_series_map_clear(&c->amap);
    free(c->gmap.slots);
    free(c->vmap.slots);
    free(c->amap.slots);
}

/* The cache's stamp (query_cache.h), read inside the query's snapshot. */
static int stamp_cache(te_store_t *st, te_qcache_t *cache, te_err_t *err)
{
    sqlite3_stmt *s = NULL;
    int src = sqlite3_prepare_v2(st->db, TE_SQL_DATA_VERSION, -1, &s, NULL);
    if (src == SQLITE_OK)
        src = sqlite3_step(s);
    int64_t version = src == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_finalize(s);
    if (src != SQLITE_ROW)
        return te_store_sqlerr(st, src, err, "query");
    te_qcache_stamp(cache, version, (int64_t)sqlite3_total_changes64(st->db));
    return 0;
}

int te_store_query(te_store_t *st, const te_query_t *q, te_result_t **out, te_err_t *err)
{
    return te_store_query_cached(st, q, NULL, out, err);
}

int te_store_query_cached(te_store_t *st, const te_query_t *q, te_qcache_t *cache,
                          te_result_t **out, te_err_t *err)
{
    int rc = check_query(q, err);
    if (rc < 0)
        return rc;
    qctx_t c;
    memset(&c, 0, sizeof(c));
    c.st = st;
    c.q = q;
    c.err = err;
    c.cache = cache;
    plan_aggs(&c);
    bool own_txn = false;
    gsort_t *order = NULL;
    int64_t *rank = NULL;
    te_result_t *r = new_result(q);
    if (!r) {
        rc = te_query_nomem(&c);
        goto done;
    }
    /* one read snapshot: watermarks, rollups and raw rows agree */
    own_txn = sqlite3_get_autocommit(st->db) &&
              sqlite3_exec(st->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK;
    if (cache) {
        rc = stamp_cache(st, cache, err);
        if (rc < 0)
            goto done;
    }
    int64_t kid = 0;
    rc = te_store_kind_find(st, q->kind, &kid, err);
    if (rc < 0)
        goto done;
    if (kid && q->until_ns > q->since_ns) {
        rc = te_store_series_scan(st, kid, q->where, q->nwhere, te_query_add_series, &c, err);
        if (rc < 0)
            goto done;
    }
    if (c.nseries > 0) {
        rc = run_plan(&c, kid);
        if (rc < 0)
            goto done;
    }
    if (c.naccs == 0 && q->every_ns <= 0 && q->ngroup == 0 && !te_query_acc_get(&c, 0, 0)) {
        rc = c.err && c.err->code ? c.err->code : TE_ENOMEM;
        goto done;
    }
    /* rank groups by their values, then order rows by (bucket, rank) */
    order = malloc((c.ngroups ? c.ngroups : 1) * sizeof(*order));
    if (!order) {
        rc = te_query_nomem(&c);
        goto done;
    }
    for (size_t g = 0; g < c.ngroups; g++)
        order[g] = (gsort_t){.vals = c.gvals + g * q->ngroup, .ng = q->ngroup, .idx = g};
    if (c.ngroups > 1)
        qsort(order, c.ngroups, sizeof(*order), cmp_groups);
    rank = malloc((c.ngroups ? c.ngroups : 1) * sizeof(*rank));
    if (!rank) {
        rc = te_query_nomem(&c);
        goto done;
    }
    for (size_t g = 0; g < c.ngroups; g++)
        rank[order[g].idx] = (int64_t)g;
    for (size_t i = 0; i < c.naccs; i++)
        c.accs[i].rank = c.ngroups ? rank[c.accs[i].group] : 0;
    if (c.naccs > 1)
        qsort(c.accs, c.naccs, sizeof(acc_t), cmp_accs);
    for (size_t i = 0; i < c.naccs; i++) {
        rc = te_query_fill_row(&c, r, &c.accs[i]);
        if (rc < 0)
            goto done;
    }
    *out = r;
    r = NULL;
    rc = 0;
done:
    if (own_txn)
        sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
    free(order);
    free(rank);
    te_result_free(r);
    ctx_free(&c);
    return rc;
}
