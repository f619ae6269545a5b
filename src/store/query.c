/*
 * query.c - aggregate queries (te_store_query): the planner that reads
 * rollups where they answer and raw events elsewhere, the executor, and the
 * aggregate list parser (te_aggs_parse).
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
 *     the groups (step: every > 1 h, or a day without every), see folds
 *     and fold_1h_field; with every = 1 h they stream into the groups.
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

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "../core/time.h"
#include "../rules/sketch.h"
#include "query_cache.h"
#include "rollup.h"
#include "sql.h"
#include "store_int.h"

#define MAX_AGGS 64
#define MAX_GROUP_TAGS 32
#define MAX_ROWS 1000000

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
    te_agg_t *aggs = calloc(MAX_AGGS, sizeof(*aggs));
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
        if (na == MAX_AGGS) {
            rc = te_err_set(err, TE_EINVAL, "agg: more than %d aggregates", MAX_AGGS);
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

/* ---------- executor ---------- */

typedef struct fstate {
    int64_t n;
    double sum, min, max;
    double *vals;           /* only when a percentile wants this field (raw plan) */
    size_t nvals, cap;
    te_qsketch_t *sk;       /* instead of vals when the plan reads rollups */
} fstate_t;

typedef struct acc {
    int64_t bucket;
    int64_t group;
    int64_t rank;           /* of group, for sorting */
    int64_t count;
    fstate_t *f;            /* nfields */
    te_idmap_t *dset;       /* ndistinct: value id + 1 -> 1 */
} acc_t;

typedef struct qctx {
    te_store_t *st;
    const te_query_t *q;
    /* distinct field names and which aggregates read them */
    const char *fields[MAX_AGGS];
    bool want_vals[MAX_AGGS];
    int agg_field[MAX_AGGS];    /* -1: none */
    int agg_dist[MAX_AGGS];     /* -1: none */
    const char *dtags[MAX_AGGS];
    size_t nfields, ndist;
    /* series id -> index into sinfo (stride 1 + ndist: group, value ids) */
    te_idmap_t sidx;
    int64_t *sinfo;
    size_t nseries, cap_series;
    /* groups: key text -> index; values per group (ngroup each, NULL = absent) */
    te_series_map_t gmap;
    char **gvals;
    size_t ngroups, cap_groups;
    /* distinct values interned per distinct aggregate (kind_id = index) */
    te_series_map_t vmap;
    int64_t nvalues;
    /* accumulators keyed by (group, bucket) */
    te_series_map_t amap;
    acc_t *accs;
    size_t naccs, cap_accs;
    bool use_sketch;        /* the plan reads rollups: percentiles from sketches */
    te_qcache_t *cache;     /* rows read by earlier queries (NULL: none) */
    te_err_t *err;
} qctx_t;

static int nomem(qctx_t *c)
{
    return te_err_set(c->err, TE_ENOMEM, "query: out of memory");
}

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 16;
    while (ncap < need)
        ncap *= 2;
    void *np = realloc(*p, ncap * size);
    if (!np)
        return TE_ENOMEM;
    *p = np;
    *cap = ncap;
    return 0;
}

static const char *tag_of(const cJSON *tags, const char *key)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(tags, key);
    return cJSON_IsString(t) ? t->valuestring : NULL;
}

/* Per series: group index and interned distinct values. */
static int on_series(int64_t sid, const void *vtags, void *ud)
{
    qctx_t *c = ud;
    const cJSON *tags = vtags;
    const te_query_t *q = c->q;
    size_t stride = 1 + c->ndist;
    if (grow((void **)&c->sinfo, &c->cap_series, (c->nseries + 1) * stride, sizeof(int64_t)) < 0)
        return nomem(c);
    int64_t *info = c->sinfo + c->nseries * stride;
    /* group key: per tag \1 (absent) or \2 value \0 */
    size_t klen = 0;
    for (size_t g = 0; g < q->ngroup; g++) {
        const char *v = tag_of(tags, q->group_by[g]);
        klen += v ? strlen(v) + 2 : 1;
    }
    char small[512];
    char *key = klen <= sizeof(small) ? small : malloc(klen);
    if (!key)
        return nomem(c);
    char *k = key;
    for (size_t g = 0; g < q->ngroup; g++) {
        const char *v = tag_of(tags, q->group_by[g]);
        if (!v) {
            *k++ = '\1';
            continue;
        }
        *k++ = '\2';
        size_t vl = strlen(v);
        memcpy(k, v, vl + 1);
        k += vl + 1;
    }
    uint64_t h = te_store_hash(key, klen, 7);
    te_series_slot_t *slot = te_series_map_find(&c->gmap, 0, key, klen, h);
    int rc = 0;
    if (slot) {
        info[0] = slot->id;
    } else {
        size_t gi = c->ngroups;
        rc = grow((void **)&c->gvals, &c->cap_groups, (gi + 1) * (q->ngroup ? q->ngroup : 1),
                  sizeof(char *));
        if (rc == 0)
            rc = te_series_map_put(&c->gmap, 0, key, klen, h, (int64_t)gi);
        for (size_t g = 0; rc == 0 && g < q->ngroup; g++) {
            const char *v = tag_of(tags, q->group_by[g]);
            c->gvals[gi * q->ngroup + g] = v ? strdup(v) : NULL;
            if (v && !c->gvals[gi * q->ngroup + g])
                rc = TE_ENOMEM;
        }
        if (rc == 0) {
            c->ngroups++;
            info[0] = (int64_t)gi;
        }
    }
    if (key != small)
        free(key);
    if (rc < 0)
        return nomem(c);
    for (size_t d = 0; d < c->ndist; d++) {
        const char *v = tag_of(tags, c->dtags[d]);
        info[1 + d] = -1;
        if (!v)
            continue;
        size_t vl = strlen(v);
        uint64_t vh = te_store_hash(v, vl, 100 + d);
        te_series_slot_t *vs = te_series_map_find(&c->vmap, (int64_t)d, v, vl, vh);
        if (vs) {
            info[1 + d] = vs->id;
        } else {
            if (te_series_map_put(&c->vmap, (int64_t)d, v, vl, vh, c->nvalues) < 0)
                return nomem(c);
            info[1 + d] = c->nvalues++;
        }
    }
    if (te_idmap_put(&c->sidx, sid, (int64_t)c->nseries) < 0)
        return nomem(c);
    c->nseries++;
    return 0;
}

static acc_t *acc_get(qctx_t *c, int64_t bucket, int64_t group)
{
    uint64_t h = te_store_hash(&bucket, sizeof(bucket), (uint64_t)group);
    te_series_slot_t *s =
        te_series_map_find(&c->amap, group, (const char *)&bucket, sizeof(bucket), h);
    if (s)
        return &c->accs[s->id];
    if (c->naccs >= MAX_ROWS) {
        te_err_set(c->err, TE_ETOOBIG,
                   "query: more than %d result rows (narrow the range, use a larger every or "
                   "fewer group_by tags)",
                   MAX_ROWS);
        return NULL;
    }
    if (grow((void **)&c->accs, &c->cap_accs, c->naccs + 1, sizeof(acc_t)) < 0 ||
        te_series_map_put(&c->amap, group, (const char *)&bucket, sizeof(bucket), h,
                          (int64_t)c->naccs) < 0) {
        nomem(c);
        return NULL;
    }
    acc_t *a = &c->accs[c->naccs];
    memset(a, 0, sizeof(*a));
    a->bucket = bucket;
    a->group = group;
    a->f = c->nfields ? calloc(c->nfields, sizeof(fstate_t)) : NULL;
    a->dset = c->ndist ? calloc(c->ndist, sizeof(te_idmap_t)) : NULL;
    c->naccs++; /* counted even when the callocs failed, so cleanup frees them */
    if ((c->nfields && !a->f) || (c->ndist && !a->dset)) {
        nomem(c);
        return NULL;
    }
    return a;
}

static int add_row(qctx_t *c, int64_t ts, int64_t sid, const unsigned char *blob, size_t blen)
{
    int64_t si;
    if (!te_idmap_get(&c->sidx, sid, &si))
        return 0; /* series filtered out by where */
    const int64_t *info = c->sinfo + (size_t)si * (1 + c->ndist);
    int64_t bucket = 0, every = c->q->every_ns;
    if (every > 0) {
        int64_t b = ts / every;
        if (ts % every < 0)
            b--;
        bucket = b * every;
    }
    acc_t *a = acc_get(c, bucket, info[0]);
    if (!a)
        return c->err && c->err->code ? c->err->code : TE_ENOMEM;
    a->count++;
    for (size_t f = 0; f < c->nfields; f++) {
        double v;
        if (!blob || !te_fields_blob_get(blob, blen, c->fields[f], &v) || isnan(v))
            continue;
        fstate_t *fs = &a->f[f];
        if (fs->n == 0 || v < fs->min)
            fs->min = v;
        if (fs->n == 0 || v > fs->max)
            fs->max = v;
        fs->n++;
        fs->sum += v;
        if (c->want_vals[f] && c->use_sketch) {
            if (!fs->sk && !(fs->sk = te_qsketch_new()))
                return nomem(c);
            if (te_qsketch_add(fs->sk, v) < 0)
                return nomem(c);
        } else if (c->want_vals[f]) {
            if (grow((void **)&fs->vals, &fs->cap, fs->nvals + 1, sizeof(double)) < 0)
                return nomem(c);
            fs->vals[fs->nvals++] = v;
        }
    }
    for (size_t d = 0; d < c->ndist; d++)
        if (info[1 + d] >= 0 && te_idmap_put(&a->dset[d], info[1 + d] + 1, 1) < 0)
            return nomem(c);
    return 0;
}

/* Merges one rollup value set into the accumulator of (bucket, series):
 * f < 0 is an event count, else field c->fields[f]. */
static int add_rollup(qctx_t *c, int f, int64_t bucket, int64_t sid, int64_t n, double sum,
                      double mn, double mx, const void *sketch, size_t sketch_len,
                      const double *vals)
{
    int64_t si;
    if (!te_idmap_get(&c->sidx, sid, &si))
        return 0; /* series filtered out by where */
    const int64_t *info = c->sinfo + (size_t)si * (1 + c->ndist);
    int64_t every = c->q->every_ns;
    acc_t *a = acc_get(c, every > 0 ? te_rollup_bucket(bucket, every) : 0, info[0]);
    if (!a)
        return c->err && c->err->code ? c->err->code : TE_ENOMEM;
    if (f < 0) {
        a->count += n;
        return 0;
    }
    if (n <= 0)
        return 0;
    fstate_t *fs = &a->f[f];
    if (fs->n == 0 || mn < fs->min)
        fs->min = mn;
    if (fs->n == 0 || mx > fs->max)
        fs->max = mx;
    fs->n += n;
    fs->sum += sum;
    if (!c->want_vals[f])
        return 0;
    if (!fs->sk && !(fs->sk = te_qsketch_new()))
        return nomem(c);
    if (vals) { /* the n values themselves (n <= TE_ROLLUP_VALS) */
        for (int64_t i = 0; i < n; i++)
            if (te_qsketch_add(fs->sk, vals[i]) < 0)
                return nomem(c);
        return 0;
    }
    return te_qsketch_merge(fs->sk, n, mn, mx, sketch, sketch_len, c->err);
}

/* Cells of one rollup_1m row inside [lo, hi). */
typedef struct cell_ctx {
    qctx_t *c;
    int64_t hour, sid, lo, hi;
} cell_ctx_t;

static int add_cell(const te_rollup_cell_t *cell, void *ud)
{
    cell_ctx_t *x = ud;
    int64_t t = x->hour + cell->minute * TE_ROLLUP_1M_NS;
    if (t < x->lo || t >= x->hi)
        return 0;
    int f = -1;
    if (cell->field_len > 0) {
        size_t i = 0;
        while (i < x->c->nfields && (strlen(x->c->fields[i]) != cell->field_len ||
                                     memcmp(x->c->fields[i], cell->field, cell->field_len) != 0))
            i++;
        if (i == x->c->nfields)
            return 0; /* a field the query does not want */
        f = (int)i;
    }
    return add_rollup(x->c, f, t, x->sid, cell->n, cell->sum, cell->min, cell->max, cell->sketch,
                      cell->sketch_len, cell->nvals ? cell->vals : NULL);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double percentile(fstate_t *fs, double p)
{
    double rank = p * (double)(fs->nvals - 1);
    size_t lo = (size_t)floor(rank), hi = (size_t)ceil(rank);
    return fs->vals[lo] + (fs->vals[hi] - fs->vals[lo]) * (rank - (double)lo);
}

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

static int fill_row(qctx_t *c, te_result_t *r, acc_t *a)
{
    const te_query_t *q = c->q;
    te_val_t *row = te_result_add_row(r);
    if (!row)
        return nomem(c);
    size_t col = 0;
    if (q->every_ns > 0) {
        char ts[40];
        size_t n = te_time_format_rfc3339(a->bucket, ts, sizeof(ts));
        if (te_val_set_str(&row[col++], ts, n) < 0)
            return nomem(c);
    }
    for (size_t g = 0; g < q->ngroup; g++, col++) {
        const char *v = c->ngroups ? c->gvals[(size_t)a->group * q->ngroup + g] : NULL;
        if (v && te_val_set_str(&row[col], v, strlen(v)) < 0)
            return nomem(c);
    }
    double secs = q->every_ns > 0 ? (double)q->every_ns / 1e9
                                  : ((double)q->until_ns - (double)q->since_ns) / 1e9;
    for (size_t i = 0; i < q->naggs; i++, col++) {
        te_val_t *v = &row[col];
        const te_agg_t *ag = &q->aggs[i];
        fstate_t *fs = c->agg_field[i] >= 0 && a->f ? &a->f[c->agg_field[i]] : NULL;
        switch (ag->op) {
        case TE_AGG_COUNT:
            v->type = TE_VAL_INT;
            v->u.i = a->count;
            continue;
        case TE_AGG_RATE:
            v->type = TE_VAL_NUM;
            v->u.num = secs > 0 ? (double)a->count / secs : 0;
            continue;
        case TE_AGG_DISTINCT:
            v->type = TE_VAL_INT;
            v->u.i = a->dset ? (int64_t)a->dset[c->agg_dist[i]].n : 0;
            continue;
        default:
            break;
        }
        if (!fs || fs->n == 0)
            continue; /* null */
        v->type = TE_VAL_NUM;
        switch (ag->op) {
        case TE_AGG_SUM: v->u.num = fs->sum; break;
        case TE_AGG_AVG: v->u.num = fs->sum / (double)fs->n; break;
        case TE_AGG_MIN: v->u.num = fs->min; break;
        case TE_AGG_MAX: v->u.num = fs->max; break;
        default: {
            double p = ag->op == TE_AGG_P50 ? 0.50 : ag->op == TE_AGG_P95 ? 0.95 : 0.99;
            if (fs->sk) {
                if (te_qsketch_quantile(fs->sk, p, &v->u.num) < 0)
                    v->type = TE_VAL_NULL;
                break;
            }
            if (fs->cap != SIZE_MAX) {
                qsort(fs->vals, fs->nvals, sizeof(double), cmp_double);
                fs->cap = SIZE_MAX; /* marks sorted; no more appends after the scan */
            }
            v->u.num = percentile(fs, p);
        }
        }
    }
    return 0;
}

/* ---------- planner ---------- */

typedef struct seg {
    int64_t lo, hi;
    int level;              /* 0 raw, 1 rollup_1m, 2 rollup_1h */
} seg_t;

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

/* Raw events and packed minutes read for a query are kept for the next
 * one up to this size: the edges of a range (sub-minute ends, the hour or
 * so past the rollup watermark) are small; a raw scan of a long range
 * (distinct, or no rollups yet) is not worth holding. */
#define CAPTURE_MAX_BYTES (4u << 20)

static size_t capture_room(const qctx_t *c)
{
    size_t room = te_qcache_room(c->cache);
    return room < CAPTURE_MAX_BYTES ? room : CAPTURE_MAX_BYTES;
}

/* Capture of a statement's rows for the cache (NULL: not kept, e.g. the
 * budget is spent); dropped as soon as it outgrows capture_room. */
static te_qcache_entry_t *capture_new(qctx_t *c, int level, int64_t kid, int64_t lo, int64_t hi)
{
    if (!capture_room(c))
        return NULL;
    return te_qcache_entry_new(level, kid, NULL, lo, hi, 0, false);
}

static void capture(qctx_t *c, te_qcache_entry_t **e, int64_t a, int64_t sid, const void *blob,
                    size_t len)
{
    te_qcache_row_t row = {.a = a, .sid = sid};
    if (*e && !te_qcache_entry_add(*e, &row, blob, len, capture_room(c))) {
        te_qcache_entry_free(*e);
        *e = NULL;
    }
}

static void capture_end(qctx_t *c, te_qcache_entry_t *e, int rc)
{
    if (rc < 0 || !te_qcache_keep(c->cache, e))
        te_qcache_entry_free(e);
}

static int scan_raw(qctx_t *c, int64_t kid, int64_t lo, int64_t hi)
{
    const te_qcache_entry_t *ce = te_qcache_find(c->cache, 0, kid, NULL, lo, hi, 0, false);
    if (ce) {
        for (size_t i = 0; i < ce->nrows; i++) {
            const te_qcache_row_t *r = &ce->rows[i];
            int rc = add_row(c, r->a, r->sid, r->len ? ce->arena + r->off : NULL, r->len);
            if (rc < 0)
                return rc;
        }
        return 0;
    }
    sqlite3_stmt *s = NULL;
    int src = sqlite3_prepare_v2(c->st->db, TE_SQL_QUERY_SCAN, -1, &s, NULL);
    if (src != SQLITE_OK)
        return te_store_sqlerr(c->st, src, c->err, "query");
    sqlite3_bind_int64(s, 1, kid);
    sqlite3_bind_int64(s, 2, lo);
    sqlite3_bind_int64(s, 3, hi);
    te_qcache_entry_t *e = capture_new(c, 0, kid, lo, hi);
    int rc = 0;
    while ((src = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t ts = sqlite3_column_int64(s, 0), sid = sqlite3_column_int64(s, 1);
        const void *blob = sqlite3_column_blob(s, 2);
        size_t blen = (size_t)sqlite3_column_bytes(s, 2);
        rc = add_row(c, ts, sid, blob, blen);
        if (rc < 0)
            break;
        capture(c, &e, ts, sid, blob, blen);
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = te_store_sqlerr(c->st, src, c->err, "query");
    capture_end(c, e, rc);
    sqlite3_finalize(s);
    return rc;
}

/* Packed minutes: rows of the hours that overlap sg. */
static int scan_1m(qctx_t *c, int64_t kid, const seg_t *sg)
{
    int64_t from = te_rollup_bucket(sg->lo, TE_ROLLUP_1H_NS);
    const te_qcache_entry_t *ce = te_qcache_find(c->cache, 1, kid, NULL, from, sg->hi, 0, false);
    int rc = 0;
    if (ce) {
        for (size_t i = 0; rc == 0 && i < ce->nrows; i++) {
            const te_qcache_row_t *r = &ce->rows[i];
            cell_ctx_t x = {c, r->a, r->sid, sg->lo, sg->hi};
            int64_t si;
            if (!te_idmap_get(&c->sidx, x.sid, &si))
                continue;
            rc = te_rollup_1m_each(ce->arena + r->off, r->len, add_cell, &x, c->err);
        }
        return rc;
    }
    sqlite3_stmt *s = NULL;
    int src = sqlite3_prepare_v2(c->st->db, TE_SQL_ROLLUP_1M_SCAN, -1, &s, NULL);
    if (src != SQLITE_OK)
        return te_store_sqlerr(c->st, src, c->err, "query rollups");
    sqlite3_bind_int64(s, 1, kid);
    sqlite3_bind_int64(s, 2, from);
    sqlite3_bind_int64(s, 3, sg->hi);
    te_qcache_entry_t *e = capture_new(c, 1, kid, from, sg->hi);
    while (rc == 0 && (src = sqlite3_step(s)) == SQLITE_ROW) {
        cell_ctx_t x = {c, sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1), sg->lo,
                        sg->hi};
        const void *blob = sqlite3_column_blob(s, 2);
        size_t blen = (size_t)sqlite3_column_bytes(s, 2);
        capture(c, &e, x.hour, x.sid, blob, blen);
        int64_t si;
        if (!te_idmap_get(&c->sidx, x.sid, &si))
            continue;
        rc = te_rollup_1m_each(blob, blen, add_cell, &x, c->err);
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = te_store_sqlerr(c->st, src, c->err, "query rollups");
    capture_end(c, e, rc);
    sqlite3_finalize(s);
    return rc;
}

/* One field's (f < 0: event counts') rollup_1h rows of sg, streamed into
 * the accumulators (every = 1 h: one row per bucket and series, nothing to
 * fold). */
static int stream_1h_field(qctx_t *c, int f, sqlite3_stmt *q)
{
    bool sk = f >= 0 && c->want_vals[f];
    int rc = 0, src;
    while ((src = sqlite3_step(q)) == SQLITE_ROW) {
        rc = add_rollup(c, f, sqlite3_column_int64(q, 0), sqlite3_column_int64(q, 1),
                        sqlite3_column_int64(q, 2), sqlite3_column_double(q, 3),
                        sqlite3_column_double(q, 4), sqlite3_column_double(q, 5),
                        sk ? sqlite3_column_blob(q, 6) : NULL,
                        sk ? (size_t)sqlite3_column_bytes(q, 6) : 0, NULL);
        if (rc < 0)
            return rc;
    }
    return src == SQLITE_DONE ? 0 : te_store_sqlerr(c->st, src, c->err, "query rollups");
}

/* Folding (fold_1h_field): a field's 1-hour rows become partials per
 * (step, series) before they meet the groups. The step is the query's
 * every, or a day without every: a function of the query alone, so an
 * answer (its summation order) never depends on what earlier queries left
 * in the cache, and a day lets the usual "totals" and "per day" questions
 * share one read. Fields with percentiles fold only without every (one
 * sketch per series then; per (day, series) they would cost thousands of
 * sketches); with every they stream, as everything does with every = 1 h
 * (one row per bucket and series: nothing to fold). */
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

/* Folds one field's rollup_1h rows of sg into e: one partial aggregate per
 * (bucket of the fold step, series), a partial created for every row read
 * (even n = 0: the bucket then holds events, like add_rollup's
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
    while ((src = sqlite3_step(q)) == SQLITE_ROW) {
        if (++nread >= FOLD_RELEASE_AFTER && nread % FOLD_RELEASE_EVERY == 0 && c->st->readonly)
            sqlite3_db_release_memory(c->st->db);
        int64_t bucket = te_rollup_bucket(sqlite3_column_int64(q, 0), step);
        int64_t sid = sqlite3_column_int64(q, 1), n = sqlite3_column_int64(q, 2);
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
                rc = nomem(c);
                break;
            }
        }
        if (f < 0 || n <= 0) {
            p->n += f < 0 ? n : 0;
            continue;
        }
        double sum = sqlite3_column_double(q, 3), mn = sqlite3_column_double(q, 4),
               mx = sqlite3_column_double(q, 5);
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
                rc = nomem(c);
                break;
            }
            e->bytes += TE_QCACHE_SKETCH_BYTES;
        }
        rc = te_qsketch_merge(*sk, n, mn, mx, sqlite3_column_blob(q, 6),
                              (size_t)sqlite3_column_bytes(q, 6), c->err);
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
        acc_t *a = acc_get(c, every > 0 ? te_rollup_bucket(p->a, every) : 0, info[0]);
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
            return nomem(c);
        if (te_qsketch_merge_sketch(fs->sk, e->sk[i]) < 0)
            return nomem(c);
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
    rc = e ? fold_1h_field(c, f, stmts[sk], e) : nomem(c);
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
 * few thousand partials instead of reading ~70,000 rows again), or
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

static int scan_rollup(qctx_t *c, int64_t kid, const seg_t *sg)
{
    if (sg->level == 1)
        return scan_1m(c, kid, sg);
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

/* A lower bound of the events in segs: those of the 1-hour segment, from
 * its event-count partials (which the scan then reuses from the cache).
 * 0 when the query does not fold. */
static int hourly_events(qctx_t *c, int64_t kid, const seg_t *segs, size_t n, int64_t *out)
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
        int rc = hourly_events(c, kid, segs, n, &est);
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
        int rc = segs[i].level == 0 ? scan_raw(c, kid, segs[i].lo, segs[i].hi)
                                    : scan_rollup(c, kid, &segs[i]);
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
    if (q->naggs > MAX_AGGS)
        return te_err_set(err, TE_EINVAL, "query: more than %d aggregates", MAX_AGGS);
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
    const char *cols[1 + MAX_GROUP_TAGS + MAX_AGGS];
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
        rc = nomem(&c);
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
        rc = te_store_series_scan(st, kid, q->where, q->nwhere, on_series, &c, err);
        if (rc < 0)
            goto done;
    }
    if (c.nseries > 0) {
        rc = run_plan(&c, kid);
        if (rc < 0)
            goto done;
    }
    if (c.naccs == 0 && q->every_ns <= 0 && q->ngroup == 0 && !acc_get(&c, 0, 0)) {
        rc = c.err && c.err->code ? c.err->code : TE_ENOMEM;
        goto done;
    }
    /* rank groups by their values, then order rows by (bucket, rank) */
    order = malloc((c.ngroups ? c.ngroups : 1) * sizeof(*order));
    if (!order) {
        rc = nomem(&c);
        goto done;
    }
    for (size_t g = 0; g < c.ngroups; g++)
        order[g] = (gsort_t){.vals = c.gvals + g * q->ngroup, .ng = q->ngroup, .idx = g};
    if (c.ngroups > 1)
        qsort(order, c.ngroups, sizeof(*order), cmp_groups);
    rank = malloc((c.ngroups ? c.ngroups : 1) * sizeof(*rank));
    if (!rank) {
        rc = nomem(&c);
        goto done;
    }
    for (size_t g = 0; g < c.ngroups; g++)
        rank[order[g].idx] = (int64_t)g;
    for (size_t i = 0; i < c.naccs; i++)
        c.accs[i].rank = c.ngroups ? rank[c.accs[i].group] : 0;
    if (c.naccs > 1)
        qsort(c.accs, c.naccs, sizeof(acc_t), cmp_accs);
    for (size_t i = 0; i < c.naccs; i++) {
        rc = fill_row(&c, r, &c.accs[i]);
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
