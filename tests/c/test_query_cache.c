/*
 * test_query_cache.c - queries through the query cache (store/query_cache.h)
 * answer exactly what te_store_query answers: the same values bit for bit,
 * whatever earlier queries left in the cache (the fold step is a function
 * of the query alone), with a budget too small to keep anything, and after
 * the data changed through the same connection or another one (the stamp
 * empties the cache). Plus te_qsketch_merge_sketch: merged partial sketches
 * give the quantiles of the sketch of all values.
 *
 * THREAD: main only.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/event.h"
#include "core/result.h"
#include "store/query_cache.h"
#include "store/rollup.h"
#include "store/store.h"

#define SEC INT64_C(1000000000)
#define MIN (60 * SEC)
#define HOUR (3600 * SEC)
#define DAY (24 * HOUR)
#define T0 INT64_C(1763596800000000000) /* 2025-11-20T00:00:00Z */
#define SPAN (3 * DAY)

typedef struct fx {
    char dir[64];
    char db[128];
    te_store_t *st;
    uint64_t rng;
    int64_t n;
} fx_t;

static uint64_t rnd(fx_t *f)
{
    f->rng ^= f->rng << 13;
    f->rng ^= f->rng >> 7;
    f->rng ^= f->rng << 17;
    return f->rng;
}

static double unif(fx_t *f)
{
    return (double)(rnd(f) >> 11) / 9007199254740992.0;
}

static void open_store(const char *db, te_store_t **st)
{
    te_store_opts_t o = {.path = db};
    te_err_t err = {0};
    if (te_store_open(&o, st, &err) != 0)
        fail_msg("open: %s", err.msg);
}

/* One llm event at ts: a few series (provider x model, some without a
 * provider), latency on most events, cost on some. */
static void put(fx_t *f, te_store_t *st, int64_t ts)
{
    static const char *const prov[] = {"a", "b", "c", NULL};
    static const char *const model[] = {"x", "y", "z"};
    const char *p = prov[rnd(f) % 4];
    const char *m = model[rnd(f) % 3];
    char tags[128], fields[160], js[512];
    if (p)
        snprintf(tags, sizeof(tags), "{\"provider\":\"%s\",\"model\":\"%s\"}", p, m);
    else
        snprintf(tags, sizeof(tags), "{\"model\":\"%s\"}", m);
    size_t n = (size_t)snprintf(fields, sizeof(fields), "{");
    if (rnd(f) % 10)
        n += (size_t)snprintf(fields + n, sizeof(fields) - n, "\"latency\":%.6f,",
                              exp(unif(f) * 9.2));
    if (rnd(f) % 3)
        n += (size_t)snprintf(fields + n, sizeof(fields) - n, "\"cost\":%.9f,",
                              unif(f) * 0.05);
    snprintf(fields + n, sizeof(fields) - n, "\"tokens\":%d}", (int)(rnd(f) % 5000));
    snprintf(js, sizeof(js),
             "{\"kind\":\"llm\",\"ts\":%lld.%09lld,\"tags\":%s,\"fields\":%s}",
             (long long)(ts / SEC), (long long)(ts % SEC), tags, fields);
    te_event_opts_t o = {NULL, NULL, T0};
    te_event_t *ev = NULL;
    te_err_t err = {0};
    if (te_event_parse(js, strlen(js), &o, &ev, &err) != 0)
        fail_msg("parse %s: %s", js, err.msg);
    if (te_store_insert(st, ev, NULL, &err) != 0)
        fail_msg("insert: %s", err.msg);
    te_event_free(ev);
    f->n++;
}

/* Events ~15 s apart over [from, to), in order (rollups are written as the
 * watermarks move), 500 per transaction. */
static void load(fx_t *f, te_store_t *st, int64_t from, int64_t to)
{
    te_err_t err = {0};
    int64_t ts = from;
    while (ts < to) {
        if (te_store_begin(st, &err) != 0)
            fail_msg("begin: %s", err.msg);
        for (int i = 0; i < 500 && ts < to; i++) {
            put(f, st, ts);
            ts += (int64_t)(unif(f) * 30 * SEC) + 1;
        }
        if (te_store_commit(st, &err) != 0)
            fail_msg("commit: %s", err.msg);
    }
}

static int fx_setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    strcpy(f->dir, "/tmp/te-qcache-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->db, sizeof(f->db), "%s/telemetry.db", f->dir);
    f->rng = 0x9e3779b97f4a7c15u;
    open_store(f->db, &f->st);
    load(f, f->st, T0, T0 + SPAN);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fx_t *f = *state;
    te_store_close(f->st);
    DIR *d = opendir(f->dir);
    struct dirent *e;
    char p[512];
    while (d && (e = readdir(d)) != NULL) {
        snprintf(p, sizeof(p), "%s/%s", f->dir, e->d_name);
        if (e->d_name[0] != '.')
            unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* The questions of a report: one range, several shapes. */
typedef struct shape {
    const char *aggs;
    const char *group;      /* NULL: none */
    int64_t every;
    const char *where;      /* provider value, NULL: none */
} shape_t;

static const shape_t SHAPES[] = {
    {"count,sum:cost,avg:latency,p95:latency,sum:tokens", NULL, 0, NULL},
    {"count", "provider", 0, NULL},
    {"sum:cost,count", NULL, DAY, NULL},
    {"sum:cost,count,p95:latency", "provider", 0, NULL},
    {"sum:tokens,avg:latency", "model", 0, NULL},
    {"count,p99:latency,max:latency,min:cost", "model", DAY, NULL},
    {"count,sum:cost,p50:latency", NULL, 6 * HOUR, NULL},
    {"count,avg:latency", "model", HOUR, NULL},
    {"count,sum:cost", NULL, 15 * MIN, NULL},
    {"count,sum:cost,p95:latency", "model", 0, "a"},
    {"rate,max:cost", NULL, 0, "b"},
};
#define NSHAPES (sizeof(SHAPES) / sizeof(SHAPES[0]))

static te_result_t *ask(te_store_t *st, te_qcache_t *qc, const shape_t *s, int64_t since,
                        int64_t until)
{
    te_agg_t *aggs = NULL;
    size_t naggs = 0;
    te_err_t err = {0};
    if (te_aggs_parse(s->aggs, &aggs, &naggs, &err) != 0)
        fail_msg("aggs: %s", err.msg);
    const char *groups[1] = {s->group};
    const char *vals[1] = {s->where};
    te_tag_filter_t where = {.key = "provider", .values = vals, .nvalues = 1};
    te_query_t q = {.kind = "llm", .since_ns = since, .until_ns = until,
                    .where = s->where ? &where : NULL, .nwhere = s->where ? 1 : 0,
                    .group_by = groups, .ngroup = s->group ? 1 : 0, .aggs = aggs,
                    .naggs = naggs, .every_ns = s->every};
    te_result_t *r = NULL;
    int rc = qc ? te_store_query_cached(st, &q, qc, &r, &err) : te_store_query(st, &q, &r, &err);
    if (rc != 0)
        fail_msg("query %s: %s", s->aggs, err.msg);
    te_aggs_free(aggs, naggs);
    return r;
}

/* Same columns, rows and values (numbers bit for bit). */
static void same(const te_result_t *a, const te_result_t *b, const char *what)
{
    assert_int_equal(a->ncols, b->ncols);
    if (a->nrows != b->nrows)
        fail_msg("%s: %zu rows, want %zu", what, a->nrows, b->nrows);
    for (size_t i = 0; i < a->nrows * a->ncols; i++) {
        const te_val_t *x = &a->cells[i], *y = &b->cells[i];
        if (x->type != y->type)
            fail_msg("%s: cell %zu: type %d, want %d", what, i, (int)x->type, (int)y->type);
        if (x->type == TE_VAL_NUM && memcmp(&x->u.num, &y->u.num, sizeof(double)) != 0)
            fail_msg("%s: cell %zu (%s): %.17g, want %.17g", what, i,
                     a->columns[i % a->ncols], x->u.num, y->u.num);
        if (x->type == TE_VAL_INT && x->u.i != y->u.i)
            fail_msg("%s: cell %zu: %lld, want %lld", what, i, (long long)x->u.i,
                     (long long)y->u.i);
        if (x->type == TE_VAL_STR && strcmp(x->u.s, y->u.s) != 0)
            fail_msg("%s: cell %zu: %s, want %s", what, i, x->u.s, y->u.s);
    }
}

/* Ranges: unaligned edges (raw, 1-minute and 1-hour segments), whole
 * days, one past the data. */
static const int64_t RANGES[][2] = {
    {T0 + 7 * HOUR + 13 * MIN + 7 * SEC + 250000000, T0 + 2 * DAY + 19 * HOUR + 41 * MIN + 3},
    {T0, T0 + SPAN},
    {T0 - DAY, T0 + SPAN + DAY},
    {T0 + DAY + 10 * MIN, T0 + DAY + 3 * HOUR + 50 * MIN},
};
#define NRANGES (sizeof(RANGES) / sizeof(RANGES[0]))

/* Every shape through one cache, in order then in reverse with a fresh
 * cache, and each one twice: always te_store_query's answer. */
static void cached_answers_are_exact(void **state)
{
    fx_t *f = *state;
    for (size_t r = 0; r < NRANGES; r++) {
        te_result_t *want[NSHAPES];
        for (size_t i = 0; i < NSHAPES; i++)
            want[i] = ask(f->st, NULL, &SHAPES[i], RANGES[r][0], RANGES[r][1]);
        for (int pass = 0; pass < 2; pass++) {
            te_qcache_t *qc = te_qcache_new(TE_QCACHE_DEFAULT_BYTES);
            assert_non_null(qc);
            for (size_t k = 0; k < 2 * NSHAPES; k++) {
                size_t i = k % NSHAPES;
                if (pass == 1)
                    i = NSHAPES - 1 - i;
                te_result_t *got = ask(f->st, qc, &SHAPES[i], RANGES[r][0], RANGES[r][1]);
                char what[64];
                snprintf(what, sizeof(what), "range %zu shape %zu pass %d", r, i, pass);
                same(got, want[i], what);
                te_result_free(got);
            }
            te_qcache_free(qc);
        }
        for (size_t i = 0; i < NSHAPES; i++)
            te_result_free(want[i]);
    }
}

/* A budget that keeps nothing changes nothing but the reading. */
static void tiny_budget_still_exact(void **state)
{
    fx_t *f = *state;
    te_qcache_t *qc = te_qcache_new(256);
    assert_non_null(qc);
    for (size_t i = 0; i < NSHAPES; i++) {
        te_result_t *want = ask(f->st, NULL, &SHAPES[i], RANGES[0][0], RANGES[0][1]);
        te_result_t *got = ask(f->st, qc, &SHAPES[i], RANGES[0][0], RANGES[0][1]);
        same(got, want, SHAPES[i].aggs);
        te_result_free(want);
        te_result_free(got);
    }
    te_qcache_free(qc);
}

static int64_t total_count(te_store_t *st, te_qcache_t *qc, int64_t since, int64_t until)
{
    te_result_t *r = ask(st, qc, &SHAPES[0], since, until);
    int64_t n = r->cells[0].u.i;
    te_result_free(r);
    return n;
}

/* New events, through the same connection or another one: the cache
 * answers from the new data. */
static void changes_empty_the_cache(void **state)
{
    fx_t *f = *state;
    int64_t lo = T0, hi = T0 + SPAN + DAY;
    te_qcache_t *qc = te_qcache_new(TE_QCACHE_DEFAULT_BYTES);
    assert_non_null(qc);
    int64_t before = total_count(f->st, qc, lo, hi);
    assert_int_equal(before, f->n);
    assert_int_equal(total_count(f->st, qc, lo, hi), before);

    /* the same connection: more events, old hours (rows merged) and new */
    load(f, f->st, T0 + SPAN, T0 + SPAN + 2 * HOUR);
    te_err_t err = {0};
    assert_int_equal(te_store_begin(f->st, &err), 0);
    put(f, f->st, T0 + 5 * HOUR + 30 * MIN);
    assert_int_equal(te_store_commit(f->st, &err), 0);
    int64_t mid = total_count(f->st, qc, lo, hi);
    assert_int_equal(mid, f->n);
    assert_true(mid > before);

    /* another connection */
    te_store_t *other = NULL;
    open_store(f->db, &other);
    load(f, other, T0 + SPAN + 2 * HOUR, T0 + SPAN + 3 * HOUR);
    te_store_close(other);
    assert_int_equal(total_count(f->st, qc, lo, hi), f->n);
    assert_true(f->n > mid);
    for (size_t i = 0; i < NSHAPES; i++) {
        te_result_t *want = ask(f->st, NULL, &SHAPES[i], lo, hi);
        te_result_t *got = ask(f->st, qc, &SHAPES[i], lo, hi);
        same(got, want, SHAPES[i].aggs);
        te_result_free(want);
        te_result_free(got);
    }
    te_qcache_free(qc);
}

/* Partial sketches merged give the sketch of all the values: the same
 * quantiles, count, min and max. */
static void merged_sketches_equal_one_sketch(void **state)
{
    (void)state;
    fx_t g = {.rng = 12345};
    te_qsketch_t *all = te_qsketch_new(), *part[4], *merged = te_qsketch_new();
    assert_non_null(all);
    assert_non_null(merged);
    for (int k = 0; k < 4; k++)
        assert_non_null(part[k] = te_qsketch_new());
    for (int i = 0; i < 20000; i++) {
        /* both signs, zeros, a wide range: spans grow both ways */
        double v = exp(unif(&g) * 20.0 - 8.0);
        if (rnd(&g) % 5 == 0)
            v = -v;
        if (rnd(&g) % 50 == 0)
            v = 0;
        assert_int_equal(te_qsketch_add(all, v), 0);
        assert_int_equal(te_qsketch_add(part[rnd(&g) % 4], v), 0);
    }
    for (int k = 0; k < 4; k++) {
        assert_int_equal(te_qsketch_merge_sketch(merged, part[k]), 0);
        te_qsketch_free(part[k]);
    }
    assert_int_equal(te_qsketch_count(merged), te_qsketch_count(all));
    static const double P[] = {0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 1};
    for (size_t i = 0; i < sizeof(P) / sizeof(P[0]); i++) {
        double a = 0, b = 0;
        assert_int_equal(te_qsketch_quantile(all, P[i], &a), 0);
        assert_int_equal(te_qsketch_quantile(merged, P[i], &b), 0);
        if (a != b)
            fail_msg("p%g: merged %.17g, want %.17g", P[i] * 100, b, a);
    }
    te_qsketch_free(all);
    te_qsketch_free(merged);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(cached_answers_are_exact),
        T(tiny_budget_still_exact),
        T(changes_empty_the_cache),
        cmocka_unit_test(merged_sketches_equal_one_sketch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
