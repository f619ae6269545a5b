/*
 * test_query.c - aggregate queries (store/query.c) against hand-computed
 * values: every aggregate, exact percentiles (linear interpolation), epoch-
 * aligned buckets, group_by with null for a missing tag, tag filters, empty
 * results, and te_aggs_parse with its exact error texts.
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
#include "store/store.h"

#define T0 INT64_C(1763632800000000000) /* 2025-11-20T10:00:00Z, a whole minute */
#define SEC INT64_C(1000000000)

typedef struct fx {
    char dir[64];
    char db[128];
    te_store_t *st;
} fx_t;

static void put(te_store_t *st, const char *js)
{
    te_event_opts_t o = {NULL, NULL, T0};
    te_event_t *ev = NULL;
    te_err_t err = {0};
    if (te_event_parse(js, strlen(js), &o, &ev, &err) != 0)
        fail_msg("parse %s: %s", js, err.msg);
    if (te_store_insert(st, ev, NULL, &err) != 0)
        fail_msg("insert: %s", err.msg);
    te_event_free(ev);
}

/* The data set (seconds after T0):
 *   0s  provider=a model=x latency 10 cost 1
 *  10s  provider=a model=y latency 20 cost 2
 *  70s  provider=b model=x latency 30
 *  80s  (none)     model=z latency 40 cost 4
 * 130s  provider=a model=x            cost 5
 * plus one event of another kind and one outside [T0, T0+180s). */
static int fx_setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    strcpy(f->dir, "/tmp/te-query-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->db, sizeof(f->db), "%s/telemetry.db", f->dir);
    te_store_opts_t o = {.path = f->db};
    te_err_t err = {0};
    if (te_store_open(&o, &f->st, &err) != 0)
        return -1;
    te_store_begin(f->st, &err);
    put(f->st, "{\"kind\":\"llm\",\"ts\":\"2025-11-20T10:00:00Z\",\"tags\":{\"provider\":\"a\","
               "\"model\":\"x\"},\"fields\":{\"latency\":10,\"cost\":1}}");
    put(f->st, "{\"kind\":\"llm\",\"ts\":\"2025-11-20T10:00:10Z\",\"tags\":{\"provider\":\"a\","
               "\"model\":\"y\"},\"fields\":{\"latency\":20,\"cost\":2}}");
    put(f->st, "{\"kind\":\"llm\",\"ts\":\"2025-11-20T10:01:10Z\",\"tags\":{\"provider\":\"b\","
               "\"model\":\"x\"},\"fields\":{\"latency\":30}}");
    put(f->st, "{\"kind\":\"llm\",\"ts\":\"2025-11-20T10:01:20Z\",\"tags\":{\"model\":\"z\"},"
               "\"fields\":{\"latency\":40,\"cost\":4}}");
    put(f->st, "{\"kind\":\"llm\",\"ts\":\"2025-11-20T10:02:10Z\",\"tags\":{\"provider\":\"a\","
               "\"model\":\"x\"},\"fields\":{\"cost\":5}}");
    put(f->st, "{\"kind\":\"other\",\"ts\":\"2025-11-20T10:00:05Z\",\"tags\":{\"provider\":\"a\"},"
               "\"fields\":{\"latency\":99,\"cost\":99}}");
    put(f->st, "{\"kind\":\"llm\",\"ts\":\"2025-11-20T10:03:00Z\",\"tags\":{\"provider\":\"a\"},"
               "\"fields\":{\"latency\":99,\"cost\":99}}");
    if (te_store_commit(f->st, &err) != 0)
        return -1;
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

static te_result_t *run(fx_t *f, const char *aggspec, const char *group, int64_t every,
                        const te_tag_filter_t *where, size_t nwhere, int64_t since,
                        int64_t until)
{
    te_agg_t *aggs = NULL;
    size_t naggs = 0;
    te_err_t err = {0};
    if (te_aggs_parse(aggspec, &aggs, &naggs, &err) != 0)
        fail_msg("aggs: %s", err.msg);
    const char *groups[1] = {group};
    te_query_t q = {.kind = "llm", .since_ns = since, .until_ns = until, .where = where,
                    .nwhere = nwhere, .group_by = groups, .ngroup = group ? 1 : 0,
                    .aggs = aggs, .naggs = naggs, .every_ns = every};
    te_result_t *r = NULL;
    if (te_store_query(f->st, &q, &r, &err) != 0)
        fail_msg("query: %s", err.msg);
    te_aggs_free(aggs, naggs);
    return r;
}

static const te_val_t *cell(const te_result_t *r, size_t row, const char *col)
{
    for (size_t c = 0; c < r->ncols; c++)
        if (strcmp(r->columns[c], col) == 0)
            return &r->cells[row * r->ncols + c];
    fail_msg("no column %s", col);
    return NULL;
}

static void num_is(const te_result_t *r, size_t row, const char *col, double want)
{
    const te_val_t *v = cell(r, row, col);
    assert_int_equal(v->type, TE_VAL_NUM);
    if (fabs(v->u.num - want) > 1e-9)
        fail_msg("%s row %zu: %.12g, want %.12g", col, row, v->u.num, want);
}

static void int_is(const te_result_t *r, size_t row, const char *col, int64_t want)
{
    const te_val_t *v = cell(r, row, col);
    assert_int_equal(v->type, TE_VAL_INT);
    assert_int_equal(v->u.i, want);
}

static void str_is(const te_result_t *r, size_t row, const char *col, const char *want)
{
    const te_val_t *v = cell(r, row, col);
    if (!want) {
        assert_int_equal(v->type, TE_VAL_NULL);
        return;
    }
    assert_int_equal(v->type, TE_VAL_STR);
    assert_string_equal(v->u.s, want);
}

static void is_null(const te_result_t *r, size_t row, const char *col)
{
    assert_int_equal(cell(r, row, col)->type, TE_VAL_NULL);
}

static void query_all_aggregates_match_hand_computed(void **state)
{
    fx_t *f = *state;
    te_result_t *r = run(f,
                         "count,sum:cost,avg:latency,min:latency,max:latency,p50:latency,"
                         "p95:latency,p99:latency,rate,distinct:model,distinct:provider",
                         NULL, 0, NULL, 0, T0, T0 + 180 * SEC);
    assert_int_equal(r->nrows, 1);
    assert_int_equal(r->ncols, 11);
    assert_string_equal(r->columns[0], "count");
    assert_string_equal(r->columns[1], "sum:cost");
    int_is(r, 0, "count", 5);
    num_is(r, 0, "sum:cost", 12);
    num_is(r, 0, "avg:latency", 25);
    num_is(r, 0, "min:latency", 10);
    num_is(r, 0, "max:latency", 40);
    num_is(r, 0, "p50:latency", 25);   /* rank 1.5 of [10,20,30,40] */
    num_is(r, 0, "p95:latency", 38.5); /* rank 2.85 */
    num_is(r, 0, "p99:latency", 39.7); /* rank 2.97 */
    num_is(r, 0, "rate", 5.0 / 180.0);
    int_is(r, 0, "distinct:model", 3);
    int_is(r, 0, "distinct:provider", 2); /* a missing tag is not a value */
    te_result_free(r);
}

static void query_group_by_puts_null_group_first(void **state)
{
    fx_t *f = *state;
    te_result_t *r = run(f, "count,sum:cost,p50:latency", "provider", 0, NULL, 0, T0,
                         T0 + 180 * SEC);
    assert_int_equal(r->nrows, 3);
    assert_string_equal(r->columns[0], "provider");
    str_is(r, 0, "provider", NULL);
    int_is(r, 0, "count", 1);
    num_is(r, 0, "sum:cost", 4);
    str_is(r, 1, "provider", "a");
    int_is(r, 1, "count", 3);
    num_is(r, 1, "sum:cost", 8);
    num_is(r, 1, "p50:latency", 15);
    str_is(r, 2, "provider", "b");
    int_is(r, 2, "count", 1);
    is_null(r, 2, "sum:cost"); /* no event of b has cost */
    num_is(r, 2, "p50:latency", 30);
    te_result_free(r);
}

static void query_every_buckets_align_to_epoch(void **state)
{
    fx_t *f = *state;
    te_result_t *r = run(f, "count,rate,max:latency", NULL, 60 * SEC, NULL, 0, T0,
                         T0 + 180 * SEC);
    assert_int_equal(r->nrows, 3);
    assert_string_equal(r->columns[0], "time");
    str_is(r, 0, "time", "2025-11-20T10:00:00Z");
    int_is(r, 0, "count", 2);
    num_is(r, 0, "rate", 2.0 / 60.0);
    str_is(r, 1, "time", "2025-11-20T10:01:00Z");
    int_is(r, 1, "count", 2);
    num_is(r, 1, "max:latency", 40);
    str_is(r, 2, "time", "2025-11-20T10:02:00Z");
    int_is(r, 2, "count", 1);
    is_null(r, 2, "max:latency");
    te_result_free(r);
    /* since in mid-bucket: the bucket still starts on the minute */
    r = run(f, "count", NULL, 60 * SEC, NULL, 0, T0 + 5 * SEC, T0 + 75 * SEC);
    assert_int_equal(r->nrows, 2);
    str_is(r, 0, "time", "2025-11-20T10:00:00Z");
    int_is(r, 0, "count", 1);
    int_is(r, 1, "count", 1);
    te_result_free(r);
}

static void query_every_floors_times_before_epoch(void **state)
{
    fx_t *f = *state;
    te_err_t err = {0};
    assert_int_equal(te_store_begin(f->st, &err), 0);
    put(f->st, "{\"kind\":\"neg\",\"ts\":\"1969-12-31T23:58:30Z\",\"fields\":{\"v\":1}}");
    put(f->st, "{\"kind\":\"neg\",\"ts\":\"1969-12-31T23:59:30Z\",\"fields\":{\"v\":2}}");
    put(f->st, "{\"kind\":\"neg\",\"ts\":\"1970-01-01T00:00:00Z\",\"fields\":{\"v\":3}}");
    assert_int_equal(te_store_commit(f->st, &err), 0);
    te_agg_t agg = {TE_AGG_SUM, (char *)"v", (char *)"sum:v"};
    te_query_t q = {.kind = "neg", .since_ns = -3600 * SEC, .until_ns = 3600 * SEC, .aggs = &agg,
                    .naggs = 1, .every_ns = 60 * SEC};
    te_result_t *r = NULL;
    assert_int_equal(te_store_query(f->st, &q, &r, &err), 0);
    assert_int_equal(r->nrows, 3);
    str_is(r, 0, "time", "1969-12-31T23:58:00Z");
    num_is(r, 0, "sum:v", 1);
    str_is(r, 1, "time", "1969-12-31T23:59:00Z");
    str_is(r, 2, "time", "1970-01-01T00:00:00Z");
    num_is(r, 2, "sum:v", 3);
    te_result_free(r);
}

static void query_every_and_group_sorted_by_time_then_group(void **state)
{
    fx_t *f = *state;
    te_result_t *r = run(f, "count", "provider", 60 * SEC, NULL, 0, T0, T0 + 180 * SEC);
    assert_int_equal(r->nrows, 4);
    assert_string_equal(r->columns[0], "time");
    assert_string_equal(r->columns[1], "provider");
    str_is(r, 0, "provider", "a");
    int_is(r, 0, "count", 2);
    str_is(r, 1, "time", "2025-11-20T10:01:00Z");
    str_is(r, 1, "provider", NULL);
    str_is(r, 2, "time", "2025-11-20T10:01:00Z");
    str_is(r, 2, "provider", "b");
    str_is(r, 3, "time", "2025-11-20T10:02:00Z");
    str_is(r, 3, "provider", "a");
    te_result_free(r);
}

static void query_where_filters(void **state)
{
    fx_t *f = *state;
    const char *a[] = {"a"}, *b[] = {"b"}, *x[] = {"x"};
    te_tag_filter_t w1[] = {{"provider", a, 1}};
    te_result_t *r = run(f, "count", NULL, 0, w1, 1, T0, T0 + 180 * SEC);
    int_is(r, 0, "count", 3);
    te_result_free(r);
    te_tag_filter_t w2[] = {{"provider", a, 1}, {"provider", b, 1}};
    r = run(f, "count", NULL, 0, w2, 2, T0, T0 + 180 * SEC);
    int_is(r, 0, "count", 4);
    te_result_free(r);
    te_tag_filter_t w3[] = {{"provider", a, 1}, {"model", x, 1}};
    r = run(f, "count,sum:cost", NULL, 0, w3, 2, T0, T0 + 180 * SEC);
    int_is(r, 0, "count", 2);
    num_is(r, 0, "sum:cost", 6);
    te_result_free(r);
}

static void query_empty_results(void **state)
{
    fx_t *f = *state;
    /* nothing in range, no group: one row, count 0, others null */
    te_result_t *r = run(f, "count,sum:cost,rate,distinct:model", NULL, 0, NULL, 0,
                         T0 - 100 * SEC, T0);
    assert_int_equal(r->nrows, 1);
    int_is(r, 0, "count", 0);
    is_null(r, 0, "sum:cost");
    num_is(r, 0, "rate", 0);
    int_is(r, 0, "distinct:model", 0);
    te_result_free(r);
    /* with group_by or every: no rows */
    r = run(f, "count", "provider", 0, NULL, 0, T0 - 100 * SEC, T0);
    assert_int_equal(r->nrows, 0);
    assert_int_equal(r->ncols, 2);
    te_result_free(r);
    r = run(f, "count", NULL, 60 * SEC, NULL, 0, T0 - 100 * SEC, T0);
    assert_int_equal(r->nrows, 0);
    te_result_free(r);
    /* until <= since */
    r = run(f, "count", NULL, 0, NULL, 0, T0, T0);
    int_is(r, 0, "count", 0);
    te_result_free(r);
    /* unknown kind */
    te_agg_t agg = {TE_AGG_COUNT, NULL, (char *)"count"};
    te_query_t q = {.kind = "nope", .since_ns = 0, .until_ns = INT64_MAX, .aggs = &agg,
                    .naggs = 1};
    te_err_t err = {0};
    assert_int_equal(te_store_query(f->st, &q, &r, &err), 0);
    int_is(r, 0, "count", 0);
    te_result_free(r);
}

static void query_bad_arguments_rejected(void **state)
{
    fx_t *f = *state;
    te_agg_t agg = {TE_AGG_COUNT, NULL, (char *)"count"};
    te_query_t q = {.kind = NULL, .since_ns = 0, .until_ns = INT64_MAX, .aggs = &agg,
                    .naggs = 1};
    te_result_t *r = NULL;
    te_err_t err = {0};
    assert_int_equal(te_store_query(f->st, &q, &r, &err), TE_EINVAL);
    assert_string_equal(err.msg, "query: kind is required (--kind K)");
    q.kind = "llm";
    q.naggs = 0;
    assert_int_equal(te_store_query(f->st, &q, &r, &err), TE_EINVAL);
    q.naggs = 1;
    q.every_ns = -1;
    assert_int_equal(te_store_query(f->st, &q, &r, &err), TE_EINVAL);
    q.every_ns = 0;
    const char *empty[] = {""};
    q.group_by = empty;
    q.ngroup = 1;
    assert_int_equal(te_store_query(f->st, &q, &r, &err), TE_EINVAL);
    assert_null(r);
}

static void aggs_parse_names_and_defaults(void **state)
{
    (void)state;
    te_agg_t *a = NULL;
    size_t n = 0;
    te_err_t err = {0};
    assert_int_equal(te_aggs_parse("", &a, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(a[0].op, TE_AGG_COUNT);
    assert_string_equal(a[0].name, "count");
    assert_null(a[0].arg);
    te_aggs_free(a, n);
    assert_int_equal(te_aggs_parse(NULL, &a, &n, &err), 0);
    te_aggs_free(a, n);
    assert_int_equal(te_aggs_parse(" count , p95:latency_ms,distinct:model,rate ", &a, &n, &err),
                     0);
    assert_int_equal(n, 4);
    assert_string_equal(a[1].name, "p95:latency_ms");
    assert_string_equal(a[1].arg, "latency_ms");
    assert_int_equal(a[1].op, TE_AGG_P95);
    assert_int_equal(a[2].op, TE_AGG_DISTINCT);
    assert_string_equal(a[2].arg, "model");
    assert_int_equal(a[3].op, TE_AGG_RATE);
    te_aggs_free(a, n);
}

static void aggs_parse_errors_name_the_item(void **state)
{
    (void)state;
    struct {
        const char *spec;
        const char *msg;
    } cases[] = {
        {"count,foo", "agg \"foo\": unknown aggregate (valid: count, sum:FIELD, avg:FIELD, "
                      "min:FIELD, max:FIELD, p50:FIELD, p95:FIELD, p99:FIELD, rate, distinct:TAG)"},
        {"sum", "agg \"sum\": sum needs a field (sum:FIELD)"},
        {"p99:", "agg \"p99:\": p99 needs a field (p99:FIELD)"},
        {"distinct", "agg \"distinct\": distinct needs a tag (distinct:TAG)"},
        {"count:x", "agg \"count:x\": count takes no argument (valid: count, sum:FIELD, "
                    "avg:FIELD, min:FIELD, max:FIELD, p50:FIELD, p95:FIELD, p99:FIELD, rate, "
                    "distinct:TAG)"},
        {"count,,sum:x", "agg: item 2 of \"count,,sum:x\" is empty (valid: count, sum:FIELD, "
                         "avg:FIELD, min:FIELD, max:FIELD, p50:FIELD, p95:FIELD, p99:FIELD, "
                         "rate, distinct:TAG)"},
        {"count,", "agg: item 2 of \"count,\" is empty"},
        {"sum:a,count,sum:a", "agg \"sum:a\" is listed twice"},
        {"P95:x", "agg \"P95:x\": unknown aggregate"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        te_agg_t *a = NULL;
        size_t n = 99;
        te_err_t err = {0};
        assert_int_equal(te_aggs_parse(cases[i].spec, &a, &n, &err), TE_EINVAL);
        assert_null(a);
        if (strncmp(err.msg, cases[i].msg, strlen(cases[i].msg)) != 0)
            fail_msg("spec %s: got '%s', want '%s'", cases[i].spec, err.msg, cases[i].msg);
    }
    /* 64 aggregates pass, 65 fail */
    char spec[2048] = "";
    for (int i = 0; i < 65; i++) {
        char item[32];
        snprintf(item, sizeof(item), "%ssum:f%d", i ? "," : "", i);
        strcat(spec, item);
        te_agg_t *a = NULL;
        size_t n = 0;
        te_err_t err = {0};
        int rc = te_aggs_parse(spec, &a, &n, &err);
        if (i < 64) {
            assert_int_equal(rc, 0);
            assert_int_equal(n, (size_t)i + 1);
            te_aggs_free(a, n);
        } else {
            assert_int_equal(rc, TE_EINVAL);
            assert_string_equal(err.msg, "agg: more than 64 aggregates");
        }
    }
}

static void query_result_renders_as_spec_json(void **state)
{
    fx_t *f = *state;
    te_result_t *r = run(f, "count,sum:cost", "provider", 0, NULL, 0, T0, T0 + 180 * SEC);
    char *js = te_result_to_json(r, NULL);
    assert_non_null(js);
    assert_non_null(strstr(js, "\"columns\":[\"provider\",\"count\",\"sum:cost\"]"));
    assert_non_null(strstr(js, "{\"provider\":null,\"count\":1,\"sum:cost\":4}"));
    assert_non_null(strstr(js, "{\"provider\":\"b\",\"count\":1,\"sum:cost\":null}"));
    free(js);
    te_result_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
        T(query_all_aggregates_match_hand_computed),
        T(query_group_by_puts_null_group_first),
        T(query_every_buckets_align_to_epoch),
        T(query_every_floors_times_before_epoch),
        T(query_every_and_group_sorted_by_time_then_group),
        T(query_where_filters),
        T(query_empty_results),
        T(query_bad_arguments_rejected),
        cmocka_unit_test(aggs_parse_names_and_defaults),
        cmocka_unit_test(aggs_parse_errors_name_the_item),
        T(query_result_renders_as_spec_json),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
