/*
 * query_int.h - the inside of te_store_query, shared by query.c (the
 * planner and entry point), query_acc.c (groups and accumulators),
 * query_scan.c (raw events and packed minutes) and query_fold.c (1-hour
 * rows, folded into per-series partials). Nothing outside src/store
 * includes it.
 *
 * THREAD: as store.h: one thread at a time per te_store_t (a reader's own
 * thread); a te_query_ctx_t lives for one query on that thread.
 *
 * The one idea: every read ends in the same accumulators. The readers
 * (query_scan.c, query_fold.c) know nothing of groups: they hand each raw
 * row or rollup value set, from SQLite or from the query cache, to
 * te_query_add_row / te_query_add_rollup (or merge partials into
 * te_query_acc_get's accumulator), and the accumulators know nothing of
 * where values came from.
 */
#ifndef TE_STORE_QUERY_INT_H
#define TE_STORE_QUERY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "query_cache.h"
#include "rollup.h"
#include "store.h"
#include "store_int.h"

/* Most aggregates one query may ask for (te_aggs_parse, te_store_query). */
#define TE_QUERY_MAX_AGGS 64

/* One field's values in one accumulator. */
typedef struct te_query_fstate {
    int64_t n;
    double sum, min, max;
    double *vals;           /* only when a percentile wants this field (raw plan) */
    size_t nvals, cap;
    te_qsketch_t *sk;       /* instead of vals when the plan reads rollups */
} te_query_fstate_t;

/* The aggregates of one (bucket, group): one result row. */
typedef struct te_query_acc {
    int64_t bucket;
    int64_t group;
    int64_t rank;           /* of group, for sorting */
    int64_t count;
    te_query_fstate_t *f;   /* nfields */
    te_idmap_t *dset;       /* ndistinct: value id + 1 -> 1 */
} te_query_acc_t;

/* One query, from te_store_query_cached to its end (query.c). */
typedef struct te_query_ctx {
    te_store_t *st;
    const te_query_t *q;
    /* distinct field names and which aggregates read them */
    const char *fields[TE_QUERY_MAX_AGGS];
    bool want_vals[TE_QUERY_MAX_AGGS];
    int agg_field[TE_QUERY_MAX_AGGS];    /* -1: none */
    int agg_dist[TE_QUERY_MAX_AGGS];     /* -1: none */
    const char *dtags[TE_QUERY_MAX_AGGS];
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
    te_query_acc_t *accs;
    size_t naccs, cap_accs;
    bool use_sketch;        /* the plan reads rollups: percentiles from sketches */
    te_qcache_t *cache;     /* rows read by earlier queries (NULL: none) */
    te_err_t *err;
} te_query_ctx_t;

/* One segment of the plan: [lo, hi) read at one level. */
typedef struct te_query_seg {
    int64_t lo, hi;
    int level;              /* 0 raw, 1 rollup_1m, 2 rollup_1h */
} te_query_seg_t;

/* --- query_acc.c: groups and accumulators --- */

/* Sets c->err to "query: out of memory". Returns TE_ENOMEM. */
int te_query_nomem(te_query_ctx_t *c);

/* te_store_series_scan's callback (ud: the context, tags: the series'
 * cJSON object): records series sid with its group (made when new) and
 * its interned distinct values. Returns 0 or TE_ENOMEM (c->err set). */
int te_query_add_series(int64_t sid, const void *tags, void *ud);

/* The accumulator of (bucket, group), made empty when new; valid until
 * the next call. NULL with c->err set: TE_ENOMEM, or TE_ETOOBIG past the
 * cap on result rows. */
te_query_acc_t *te_query_acc_get(te_query_ctx_t *c, int64_t bucket, int64_t group);

/* Adds one raw event (ts, series sid, fields blob of blen bytes; blob
 * NULL: no fields) to its accumulator; an unknown series (filtered out by
 * where) is skipped. Returns 0 or TE_E* (c->err set). */
int te_query_add_row(te_query_ctx_t *c, int64_t ts, int64_t sid, const unsigned char *blob,
                     size_t blen);

/* Merges one rollup value set of series sid into the accumulator of its
 * bucket: f < 0 is an event count n, else n values of field c->fields[f]
 * (sum, min, max, and for percentiles either the n values themselves,
 * vals, or a sketch blob). An unknown series is skipped. Returns 0 or
 * TE_E* (c->err set). */
int te_query_add_rollup(te_query_ctx_t *c, int f, int64_t bucket, int64_t sid, int64_t n,
                        double sum, double mn, double mx, const void *sketch, size_t sketch_len,
                        const double *vals);

/* Appends a's result row to r. Exact percentiles sort a's values in place
 * (call after the scans). Returns 0 or TE_ENOMEM (c->err set). */
int te_query_fill_row(te_query_ctx_t *c, te_result_t *r, te_query_acc_t *a);

/* --- query_scan.c: raw events and packed minutes --- */

/* Reads kind kid's raw events in [lo, hi) into the accumulators, from
 * the cache when it holds them (small reads are kept there). Returns 0 or
 * TE_E* (c->err set). */
int te_query_scan_raw(te_query_ctx_t *c, int64_t kid, int64_t lo, int64_t hi);

/* Reads the 1-minute cells inside sg (level 1) from the packed rows of the
 * hours that overlap it, cached as te_query_scan_raw does. Returns 0 or
 * TE_E* (c->err set). */
int te_query_scan_1m(te_query_ctx_t *c, int64_t kid, const te_query_seg_t *sg);

/* --- query_fold.c: 1-hour rows --- */

/* Reads the event counts' and each wanted field's 1-hour rows of sg
 * (level 2): folded into partials (kept in the cache) or streamed.
 * Returns 0 or TE_E* (c->err set). */
int te_query_scan_1h(te_query_ctx_t *c, int64_t kid, const te_query_seg_t *sg);

/* A lower bound of kind kid's events in segs[0, n): those of the 1-hour
 * segment, from its event-count partials (which the scan then reuses from
 * the cache); 0 when the query does not fold or gives up folding. Returns
 * 0 or TE_E* (c->err set). */
int te_query_hourly_events(te_query_ctx_t *c, int64_t kid, const te_query_seg_t *segs, size_t n,
                           int64_t *out);

#endif
