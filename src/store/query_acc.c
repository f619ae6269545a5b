/*
 * query_acc.c - the groups and accumulators of a query (query_int.h):
 * the group each series' rows go to, the (bucket, group) accumulator every
 * read merges into, and the result row each accumulator becomes.
 *
 * THREAD: as query.c: one thread at a time per te_store_t.
 *
 * The one idea: tags are looked at once per series. te_query_add_series
 * turns a series' tags into its group index and interned distinct values
 * (c->sinfo) before any scan, so a raw row or a rollup value set costs two
 * hash lookups (series -> info, (bucket, group) -> accumulator) and no
 * tag parsing. Raw values and rollup value sets merge into the same
 * fstate: kept values for exact percentiles when the plan reads raw
 * events only, a sketch when it reads rollups.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "../core/time.h"
#include "query_int.h"

#define MAX_ROWS 1000000

typedef te_query_ctx_t qctx_t;
typedef te_query_acc_t acc_t;
typedef te_query_fstate_t fstate_t;

int te_query_nomem(qctx_t *c)
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

int te_query_add_series(int64_t sid, const void *vtags, void *ud)
{
    qctx_t *c = ud;
    const cJSON *tags = vtags;
    const te_query_t *q = c->q;
    size_t stride = 1 + c->ndist;
    if (grow((void **)&c->sinfo, &c->cap_series, (c->nseries + 1) * stride, sizeof(int64_t)) < 0)
        return te_query_nomem(c);
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
        return te_query_nomem(c);
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
        return te_query_nomem(c);
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
                return te_query_nomem(c);
            info[1 + d] = c->nvalues++;
        }
    }
    if (te_idmap_put(&c->sidx, sid, (int64_t)c->nseries) < 0)
        return te_query_nomem(c);
    c->nseries++;
    return 0;
}

acc_t *te_query_acc_get(qctx_t *c, int64_t bucket, int64_t group)
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
        te_query_nomem(c);
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
        te_query_nomem(c);
        return NULL;
    }
    return a;
}

int te_query_add_row(qctx_t *c, int64_t ts, int64_t sid, const unsigned char *blob,
                     size_t blen)
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
    acc_t *a = te_query_acc_get(c, bucket, info[0]);
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
                return te_query_nomem(c);
            if (te_qsketch_add(fs->sk, v) < 0)
                return te_query_nomem(c);
        } else if (c->want_vals[f]) {
            if (grow((void **)&fs->vals, &fs->cap, fs->nvals + 1, sizeof(double)) < 0)
                return te_query_nomem(c);
            fs->vals[fs->nvals++] = v;
        }
    }
    for (size_t d = 0; d < c->ndist; d++)
        if (info[1 + d] >= 0 && te_idmap_put(&a->dset[d], info[1 + d] + 1, 1) < 0)
            return te_query_nomem(c);
    return 0;
}

int te_query_add_rollup(qctx_t *c, int f, int64_t bucket, int64_t sid, int64_t n, double sum,
                        double mn, double mx, const void *sketch, size_t sketch_len,
                        const double *vals)
{
    int64_t si;
    if (!te_idmap_get(&c->sidx, sid, &si))
        return 0; /* series filtered out by where */
    const int64_t *info = c->sinfo + (size_t)si * (1 + c->ndist);
    int64_t every = c->q->every_ns;
    acc_t *a = te_query_acc_get(c, every > 0 ? te_rollup_bucket(bucket, every) : 0, info[0]);
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
        return te_query_nomem(c);
    if (vals) { /* the n values themselves (n <= TE_ROLLUP_VALS) */
        for (int64_t i = 0; i < n; i++)
            if (te_qsketch_add(fs->sk, vals[i]) < 0)
                return te_query_nomem(c);
        return 0;
    }
    return te_qsketch_merge(fs->sk, n, mn, mx, sketch, sketch_len, c->err);
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

int te_query_fill_row(qctx_t *c, te_result_t *r, acc_t *a)
{
    const te_query_t *q = c->q;
    te_val_t *row = te_result_add_row(r);
    if (!row)
        return te_query_nomem(c);
    size_t col = 0;
    if (q->every_ns > 0) {
        char ts[40];
        size_t n = te_time_format_rfc3339(a->bucket, ts, sizeof(ts));
        if (te_val_set_str(&row[col++], ts, n) < 0)
            return te_query_nomem(c);
    }
    for (size_t g = 0; g < q->ngroup; g++, col++) {
        const char *v = c->ngroups ? c->gvals[(size_t)a->group * q->ngroup + g] : NULL;
        if (v && te_val_set_str(&row[col], v, strlen(v)) < 0)
            return te_query_nomem(c);
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
