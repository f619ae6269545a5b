/*
 * test_rollup.c - rollups (store/rollup.c) and the planner (store/query.c):
 * over random data written in transactions of random sizes, the answers
 * read from rollups (TE_PLAN_ROLLUPS) equal the raw answers (TE_PLAN_RAW)
 * for random ranges with unaligned edges, every, group_by and where:
 * counts, min and max exactly, sums and averages up to summation order,
 * percentiles within the sketch's 1% relative error; data written in
 * order (watermarks move, rows written once) and at random (late events
 * merged into rows). Plus: rollups really are read (raw rows deleted behind
 * the planner's back), catch-up from raw events (rollups turned off, a
 * database from before rollups), archive + re-ingest round trip without
 * double counting, rollup expiry.
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
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "core/event.h"
#include "core/result.h"
#include "store/rollup.h"
#include "store/rollup_1h.h"
#include "store/rollup_int.h"
#include "store/store.h"
#include "store/store_int.h"

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

static void open_store(fx_t *f)
{
    te_store_opts_t o = {.path = f->db};
    te_err_t err = {0};
    if (te_store_open(&o, &f->st, &err) != 0)
        fail_msg("open: %s", err.msg);
}

static void insert_json(te_store_t *st, const char *js)
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

/* One random llm event with nanoseconds: ts in [T0, T0 + SPAN) at random,
 * or, when ordered, the next one of an in-order stream (f->clock). */
static int64_t clock_ns;
static bool ordered;

static void random_event(fx_t *f, char *buf, size_t cap)
{
    static const char *const prov[] = {"a", "b", "c", NULL};
    static const char *const model[] = {"x", "y", "z", "w"};
    int64_t ts = T0 + (int64_t)(unif(f) * (double)SPAN);
    if (ordered) {
        clock_ns += (int64_t)(unif(f) * 40 * SEC); /* ~20 s apart: sparse minutes */
        ts = clock_ns;
    }
    const char *p = prov[rnd(f) % 4];
    const char *m = model[rnd(f) % 4];
    char tags[128], fields[256];
    if (p)
        snprintf(tags, sizeof(tags), "{\"provider\":\"%s\",\"model\":\"%s\"}", p, m);
    else
        snprintf(tags, sizeof(tags), "{\"model\":\"%s\"}", m);
    size_t n = (size_t)snprintf(fields, sizeof(fields), "{");
    if (rnd(f) % 10) /* latency: log-normal-ish, 1..10000 */
        n += (size_t)snprintf(fields + n, sizeof(fields) - n, "\"latency\":%.6f,",
                              exp(unif(f) * 9.2));
    if (rnd(f) % 3)
        n += (size_t)snprintf(fields + n, sizeof(fields) - n, "\"cost\":%.9f,",
                              unif(f) * 0.05);
    n += (size_t)snprintf(fields + n, sizeof(fields) - n, "\"tokens\":%d}",
                          (int)(rnd(f) % 5000));
    /* an id on some events, re-sent below: idempotent, counted once */
    snprintf(buf, cap,
             "{\"kind\":\"llm\",\"ts\":%lld.%09lld,\"source\":\"s\",\"id\":\"e%lld\","
             "\"tags\":%s,\"fields\":%s}",
             (long long)(ts / SEC), (long long)(ts % SEC), (long long)f->n, tags, fields);
    f->n++;
}

static int64_t other_ts;

static void fill(fx_t *f, int events)
{
    if (clock_ns == 0)
        clock_ns = T0;
    te_err_t err = {0};
    char buf[512], last[512] = "";
    int left = events;
    while (left > 0) {
        int txn = 1 + (int)(rnd(f) % 600); /* 1..600 events per transaction */
        if (txn > left)
            txn = left;
        assert_int_equal(te_store_begin(f->st, &err), 0);
        for (int i = 0; i < txn; i++) {
            random_event(f, buf, sizeof(buf));
            insert_json(f->st, buf);
            if (rnd(f) % 50 == 0 && last[0])
                insert_json(f->st, last); /* duplicate (source, id): ignored */
            memcpy(last, buf, sizeof(buf));
        }
        /* an event of another kind: never in llm answers */
        other_ts += 10 * 60;
        snprintf(buf, sizeof(buf),
                 "{\"kind\":\"other\",\"ts\":%lld,\"fields\":{\"latency\":1e9}}",
                 (long long)(T0 / SEC + other_ts));
        insert_json(f->st, buf);
        if (te_store_commit(f->st, &err) != 0)
            fail_msg("commit: %s", err.msg);
        left -= txn;
    }
    /* the hours over, all written (the builder's thread may have left
     * some to a later commit) */
    if (te_store_rollup_sync(f->st, &err) != 0)
        fail_msg("rollup sync: %s", err.msg);
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    strcpy(f->dir, "/tmp/te-rollup-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->db, sizeof(f->db), "%s/telemetry.db", f->dir);
    f->rng = 0x9E3779B97F4A7C15ull;
    ordered = false;
    clock_ns = T0;
    open_store(f);
    *state = f;
    return 0;
}

static void rm_rf(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return;
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char p[1024];
            snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
            rm_rf(p);
        }
        if (d)
            closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static int teardown(void **state)
{
    fx_t *f = *state;
    te_store_close(f->st);
    rm_rf(f->dir);
    free(f);
    return 0;
}

/* ---------- comparing answers ---------- */

static const char *run_kind = "llm"; /* the kind run() asks about */

static te_result_t *run(te_store_t *st, te_query_plan_t plan, const char *aggs, int64_t since,
                        int64_t until, int64_t every, const char *const *group, size_t ngroup,
                        const te_tag_filter_t *where, size_t nwhere)
{
    te_agg_t *a = NULL;
    size_t na = 0;
    te_err_t err = {0};
    assert_int_equal(te_aggs_parse(aggs, &a, &na, &err), 0);
    te_query_t q = {.kind = run_kind, .since_ns = since, .until_ns = until, .where = where,
                    .nwhere = nwhere, .group_by = group, .ngroup = ngroup, .aggs = a,
                    .naggs = na, .every_ns = every, .plan = plan};
    te_result_t *r = NULL;
    if (te_store_query(st, &q, &r, &err) != 0)
        fail_msg("query: %s", err.msg);
    te_aggs_free(a, na);
    return r;
}

static bool is_pct(const char *col)
{
    return col[0] == 'p' && col[1] >= '0' && col[1] <= '9';
}

/* Every cell of the rollup answer against the raw one. */
static void compare(const te_result_t *raw, const te_result_t *ru, const char *what)
{
    if (raw->nrows != ru->nrows)
        fail_msg("%s: %zu raw rows, %zu rollup rows", what, raw->nrows, ru->nrows);
    assert_int_equal(raw->ncols, ru->ncols);
    for (size_t i = 0; i < raw->nrows; i++) {
        for (size_t c = 0; c < raw->ncols; c++) {
            const te_val_t *x = &raw->cells[i * raw->ncols + c];
            const te_val_t *y = &ru->cells[i * ru->ncols + c];
            const char *col = raw->columns[c];
            if (x->type != y->type)
                fail_msg("%s: row %zu %s: type %d vs %d", what, i, col, x->type, y->type);
            if (x->type == TE_VAL_STR) {
                if (strcmp(x->u.s, y->u.s) != 0)
                    fail_msg("%s: row %zu %s: %s vs %s", what, i, col, x->u.s, y->u.s);
            } else if (x->type == TE_VAL_INT) {
                if (x->u.i != y->u.i)
                    fail_msg("%s: row %zu %s: %lld vs %lld", what, i, col, (long long)x->u.i,
                             (long long)y->u.i);
            } else if (x->type == TE_VAL_NUM) {
                double a = x->u.num, b = y->u.num;
                bool exact = strncmp(col, "min:", 4) == 0 || strncmp(col, "max:", 4) == 0;
                double tol = is_pct(col) ? 0.01 * fabs(a) * (1 + 1e-9) + 1e-12
                             : exact     ? 0
                                         : 1e-9 * fabs(a) + 1e-12;
                if (fabs(a - b) > tol)
                    fail_msg("%s: row %zu %s: raw %.17g rollup %.17g", what, i, col, a, b);
            }
        }
    }
}

static void test_rollup_equals_raw(void **state)
{
    fx_t *f = *state;
    /* in order first (watermarks move, rows written once), then at random
     * (mostly late: read-merge-write into existing rows) */
    ordered = true;
    clock_ns = T0;
    fill(f, 10000);
    ordered = false;
    fill(f, 10000);
    static const char *const aggsets[] = {
        "count,sum:latency,avg:latency,min:latency,max:latency,p50:latency,p95:latency,"
        "p99:latency,rate",
        "count,sum:cost,min:cost,max:cost,p95:cost,sum:tokens,max:tokens",
        "p50:latency",
    };
    static const int64_t everies[] = {0, MIN, 5 * MIN, HOUR, 2 * HOUR, DAY, 90 * SEC, 7 * SEC};
    static const char *const g_prov[] = {"provider"};
    static const char *const g_both[] = {"model", "provider"};
    static const char *const va[] = {"a"};
    static const char *const vbc[] = {"b", "c"};
    static const char *const vx[] = {"x", "w"};
    te_tag_filter_t w1[] = {{"provider", va, 1}};
    te_tag_filter_t w2[] = {{"provider", vbc, 2}, {"model", vx, 2}};
    char what[256];
    for (int it = 0; it < 150; it++) {
        int64_t since, until;
        switch (it % 3) {
        case 0: /* unaligned both sides */
            since = T0 - HOUR + (int64_t)(unif(f) * (double)(SPAN / 2));
            until = since + (int64_t)(unif(f) * (double)SPAN);
            break;
        case 1: /* whole hours */
            since = T0 + (int64_t)(rnd(f) % 30) * HOUR;
            until = since + (int64_t)(1 + rnd(f) % 40) * HOUR;
            break;
        default: /* whole minutes, one edge off by nanoseconds */
            since = T0 + (int64_t)(rnd(f) % 3000) * MIN;
            until = since + (int64_t)(1 + rnd(f) % 2000) * MIN + (int64_t)(rnd(f) % 1000);
        }
        int64_t every = everies[rnd(f) % 8];
        size_t ng = rnd(f) % 3;
        const char *const *group = ng == 1 ? g_prov : g_both;
        int wk = (int)(rnd(f) % 3);
        const te_tag_filter_t *where = wk == 1 ? w1 : wk == 2 ? w2 : NULL;
        size_t nw = wk == 1 ? 1 : wk == 2 ? 2 : 0;
        const char *aggs = aggsets[rnd(f) % 3];
        snprintf(what, sizeof(what), "it %d [%lld, %lld) every %lld group %zu where %d %s", it,
                 (long long)since, (long long)until, (long long)every, ng, wk, aggs);
        te_result_t *raw = run(f->st, TE_PLAN_RAW, aggs, since, until, every, group, ng, where, nw);
        te_result_t *ru =
            run(f->st, TE_PLAN_ROLLUPS, aggs, since, until, every, group, ng, where, nw);
        te_result_t *au = run(f->st, TE_PLAN_AUTO, aggs, since, until, every, group, ng, where, nw);
        compare(raw, ru, what);
        compare(raw, au, what);
        te_result_free(raw);
        te_result_free(ru);
        te_result_free(au);
    }
}

static const char *const g_model[] = {"model"};

static int64_t count_of(te_store_t *st, te_query_plan_t plan, int64_t since, int64_t until)
{
    te_result_t *r = run(st, plan, "count", since, until, 0, NULL, 0, NULL, 0);
    assert_int_equal(r->nrows, 1);
    int64_t n = r->cells[0].u.i;
    te_result_free(r);
    return n;
}

static int64_t sql_int(te_store_t *st, const char *sql)
{
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(st->db, sql, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

static void exec_sql(te_store_t *st, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
}

/* The planner reads rollups for aligned ranges: with the raw rows gone the
 * rollup answer stays, the raw one drops to 0. */
static void test_rollups_are_read(void **state)
{
    fx_t *f = *state;
    fill(f, 3000);
    int64_t lo = T0 + HOUR, hi = T0 + 2 * DAY;
    int64_t before = count_of(f->st, TE_PLAN_RAW, lo, hi);
    assert_true(before > 1000);
    assert_int_equal(count_of(f->st, TE_PLAN_AUTO, lo, hi), before);
    exec_sql(f->st, "DELETE FROM events");
    assert_int_equal(count_of(f->st, TE_PLAN_RAW, lo, hi), 0);
    assert_int_equal(count_of(f->st, TE_PLAN_AUTO, lo, hi), before);
    /* distinct needs raw events: answered from them */
    te_result_t *r = run(f->st, TE_PLAN_AUTO, "count,distinct:model", lo, hi, 0, NULL, 0, NULL,
                         0);
    assert_int_equal(r->cells[0].u.i, 0);
    te_result_free(r);
}

static void watermarks(te_store_t *st, int64_t *w1m, int64_t *w1h)
{
    sqlite3_stmt *s = NULL;
    *w1m = *w1h = INT64_MIN;
    assert_int_equal(sqlite3_prepare_v2(st->db, "SELECT w1m, w1h FROM rollup_state WHERE "
                                                "kind_id = (SELECT id FROM kinds WHERE name = "
                                                "'llm')",
                                        -1, &s, NULL),
                     SQLITE_OK);
    if (sqlite3_step(s) == SQLITE_ROW) {
        *w1m = sqlite3_column_int64(s, 0);
        *w1h = sqlite3_column_int64(s, 1);
    }
    sqlite3_finalize(s);
}

/* Written with rollups off (or before rollups existed): queries read raw
 * events above the watermark meanwhile; the next read-write open catches
 * up from the raw events. */
static void test_catch_up(void **state)
{
    fx_t *f = *state;
    te_err_t err = {0};
    ordered = true;
    clock_ns = T0;
    fill(f, 1000);
    int64_t w1m0, w1h0, w1m, w1h;
    watermarks(f->st, &w1m0, &w1h0);
    assert_true(w1m0 > T0 && w1m0 <= clock_ns - 2 * MIN && w1m0 % MIN == 0);
    assert_true(w1h0 > T0 && w1h0 <= w1m0 && w1h0 % HOUR == 0);
    assert_int_equal(te_store_set_rollups(f->st, false, &err), 0);
    fill(f, 3000);
    watermarks(f->st, &w1m, &w1h);
    assert_true(w1m == w1m0 && w1h == w1h0); /* stood still */
    int64_t lo = T0, hi = clock_ns + MIN;
    int64_t raw = count_of(f->st, TE_PLAN_RAW, lo, hi);
    assert_int_equal(count_of(f->st, TE_PLAN_ROLLUPS, lo, hi), raw);
    assert_int_equal(sql_int(f->st, "SELECT max(bucket) FROM rollup_1m WHERE kind_id = "
                                    "(SELECT id FROM kinds WHERE name = 'llm')") < w1m0,
                     1);
    te_store_close(f->st);
    open_store(f);
    watermarks(f->st, &w1m, &w1h);
    assert_true(w1m > w1m0 && w1m >= clock_ns - 2 * MIN - HOUR - MIN);
    assert_int_equal(count_of(f->st, TE_PLAN_ROLLUPS, lo, hi), raw);
    te_result_t *a = run(f->st, TE_PLAN_RAW, "count,sum:latency,max:latency,p95:latency", lo, hi,
                         HOUR, NULL, 0, NULL, 0);
    te_result_t *b = run(f->st, TE_PLAN_ROLLUPS, "count,sum:latency,max:latency,p95:latency", lo,
                         hi, HOUR, NULL, 0, NULL, 0);
    compare(a, b, "after catch-up");
    te_result_free(a);
    te_result_free(b);
    /* a database from before rollups: no state, no rows */
    exec_sql(f->st, "DELETE FROM rollup_state; DELETE FROM rollup_1m; DELETE FROM rollup_1h");
    assert_int_equal(count_of(f->st, TE_PLAN_ROLLUPS, lo, hi), raw); /* all raw */
    te_store_close(f->st);
    open_store(f);
    assert_int_equal(sql_int(f->st, "SELECT sum(n) FROM rollup_1h WHERE field = '' AND "
                                    "kind_id = (SELECT id FROM kinds WHERE name = 'llm')") > 0,
                     1);
    a = run(f->st, TE_PLAN_RAW, "count,sum:latency,min:cost,p99:latency", lo, hi, 0, g_model, 1,
            NULL, 0);
    b = run(f->st, TE_PLAN_ROLLUPS, "count,sum:latency,min:cost,p99:latency", lo, hi, 0, g_model,
            1, NULL, 0);
    compare(a, b, "after catch-up from nothing");
    te_result_free(a);
    te_result_free(b);
}

/* Archive the first day, re-ingest the file: raw rows back, rollups not
 * counted twice. */
/* Rollup and raw answers agree over the whole span, per hour and model. */
static void check_span(fx_t *f, const char *what)
{
    static const char *const aggs = "count,sum:latency,min:latency,max:latency,p95:latency,"
                                    "sum:tokens";
    te_result_t *raw = run(f->st, TE_PLAN_RAW, aggs, T0, T0 + SPAN, HOUR, g_model, 1, NULL, 0);
    te_result_t *ru = run(f->st, TE_PLAN_ROLLUPS, aggs, T0, T0 + SPAN, HOUR, g_model, 1, NULL, 0);
    compare(raw, ru, what);
    te_result_free(raw);
    te_result_free(ru);
}

/* The hour builder is only trusted where the database agrees with it: a
 * reopen in the middle of an hour, a second writer on the same file and
 * a rolled-back transaction all leave hours it must not write alone. */
static void test_builder_trust(void **state)
{
    fx_t *f = *state;
    te_err_t err = {0};
    ordered = true;
    clock_ns = T0;
    fill(f, 1500);
    /* a reopen: the open hour's first events are not in the new builder */
    te_store_close(f->st);
    open_store(f);
    fill(f, 1500);
    check_span(f, "reopen");
    /* a second writer, interleaved transaction by transaction */
    te_store_t *a = f->st, *b = NULL;
    te_store_opts_t o = {.path = f->db};
    assert_int_equal(te_store_open(&o, &b, &err), 0);
    for (int i = 0; i < 20; i++) {
        f->st = i % 2 ? b : a;
        fill(f, 100);
    }
    te_store_close(b);
    f->st = a;
    fill(f, 1500);
    check_span(f, "two writers");
    /* a rolled-back transaction in the middle of an hour */
    char buf[512];
    assert_int_equal(te_store_begin(f->st, &err), 0);
    for (int i = 0; i < 50; i++) {
        random_event(f, buf, sizeof(buf));
        insert_json(f->st, buf);
    }
    te_store_rollback(f->st);
    fill(f, 1500);
    check_span(f, "rollback");
    /* the answers above came from rollups, not raw reads */
    assert_true(sql_int(f->st, "SELECT count(*) FROM rollup_1h") > 0);
}

static void test_archive_round_trip(void **state)
{
    fx_t *f = *state;
    te_err_t err = {0};
    fill(f, 3000);
    int64_t lo = T0, hi = T0 + SPAN;
    int64_t total = count_of(f->st, TE_PLAN_RAW, lo, hi);
    int64_t day1 = count_of(f->st, TE_PLAN_RAW, T0, T0 + DAY);
    te_result_t *before = run(f->st, TE_PLAN_ROLLUPS, "count,sum:latency,min:cost,p95:latency",
                              lo, hi, HOUR, NULL, 0, NULL, 0);
    char adir[128];
    snprintf(adir, sizeof(adir), "%s/archive", f->dir);
    te_archive_opts_t ao = {.kind = "llm", .before_ns = T0 + DAY, .dir = adir, .chunk = 100};
    te_archive_stats_t as = {0};
    if (te_store_archive(f->st, &ao, &as, &err) != 0)
        fail_msg("archive: %s", err.msg);
    assert_int_equal(as.events, day1);
    assert_int_equal(count_of(f->st, TE_PLAN_RAW, lo, hi), total - day1);
    te_result_t *mid = run(f->st, TE_PLAN_ROLLUPS, "count,sum:latency,min:cost,p95:latency", lo,
                           hi, HOUR, NULL, 0, NULL, 0);
    compare(before, mid, "after archive (rollups kept)");
    te_result_free(mid);

    char path[256];
    snprintf(path, sizeof(path), "%s/llm/2025-11-20.ndjson.gz", adir);
    gzFile gz = gzopen(path, "rb");
    assert_non_null(gz);
    char line[4096];
    int64_t lines = 0;
    assert_int_equal(te_store_begin(f->st, &err), 0);
    while (gzgets(gz, line, sizeof(line))) {
        size_t len = strlen(line);
        assert_true(len > 1 && line[len - 1] == '\n');
        line[len - 1] = '\0';
        insert_json(f->st, line);
        lines++;
    }
    gzclose(gz);
    assert_int_equal(te_store_commit(f->st, &err), 0);
    assert_int_equal(lines, day1);
    assert_int_equal(count_of(f->st, TE_PLAN_RAW, lo, hi), total);
    te_result_t *after = run(f->st, TE_PLAN_ROLLUPS, "count,sum:latency,min:cost,p95:latency",
                             lo, hi, HOUR, NULL, 0, NULL, 0);
    compare(before, after, "after re-ingest (not counted twice)");
    te_result_t *raw = run(f->st, TE_PLAN_RAW, "count,sum:latency,min:cost,p95:latency", lo, hi,
                           HOUR, NULL, 0, NULL, 0);
    compare(raw, after, "re-ingested raw vs rollups");
    te_result_free(before);
    te_result_free(after);
    te_result_free(raw);
}

static void test_rollup_expire(void **state)
{
    fx_t *f = *state;
    te_err_t err = {0};
    fill(f, 2000);
    int64_t cut = T0 + DAY + 7 * MIN;
    int64_t old1m = sql_int(f->st, "SELECT count(*) FROM rollup_1m WHERE bucket < "
                                   "1763683200000000000");
    assert_true(old1m > 0);
    int64_t n1h = sql_int(f->st, "SELECT count(*) FROM rollup_1h");
    int64_t del = 0;
    assert_int_equal(te_store_rollup_expire(f->st, NULL, TE_ROLLUP_1M_NS, cut, &del, &err), 0);
    assert_int_equal(del, old1m);
    assert_int_equal(sql_int(f->st, "SELECT count(*) FROM rollup_1m WHERE bucket < "
                                    "1763683200000000000"),
                     0);
    assert_int_equal(sql_int(f->st, "SELECT count(*) FROM rollup_1h"), n1h);
    assert_int_equal(te_store_rollup_expire(f->st, "llm", TE_ROLLUP_1H_NS, T0 + SPAN, &del, &err),
                     0);
    assert_int_equal(sql_int(f->st, "SELECT count(*) FROM rollup_1h WHERE kind_id = "
                                    "(SELECT id FROM kinds WHERE name = 'llm')"),
                     0);
    assert_true(sql_int(f->st, "SELECT count(*) FROM rollup_1h") > 0); /* kind other kept */
}

/* The interpolated sketch quantile is within 1% of numpy's definition. */
typedef struct {
    double vals[TE_ROLLUP_CELL_VALS];
    int nvals, cells;
} walked_t;

static int keep_cell(const te_rollup_cell_t *c, void *ud)
{
    walked_t *w = ud;
    w->cells++;
    if (c->field_len) {
        memcpy(w->vals, c->vals, sizeof(w->vals));
        w->nvals = c->nvals;
    }
    return 0;
}

/* A small cell's values read back bit for bit from the version-2 encoding
 * (scaled integers where exact, f64 otherwise), and version-1 rows (raw
 * f64, written by earlier builds) still read. */
static void test_cell_values_round_trip(void **state)
{
    (void)state;
    static const double cases[][TE_ROLLUP_VALS] = {
        {1, 2, 3, 4000, 0, 7, 9, 123456},            /* integers: k = 0 */
        {1234.5, 0.1, 99.9, 3, 0, 0, 0, 0},          /* tenths */
        {0.123456, 1e-6, 5, 0, 0, 0, 0, 0},          /* millionths: k = 6 */
        {0.0123456789, 1, 2, 0, 0, 0, 0, 0},         /* not a short decimal: f64 */
        {-0.0, 1, 0, 0, 0, 0, 0, 0},                 /* the sign of zero: f64 */
        {-17.25, -3, 2.5, 0, 0, 0, 0, 0},            /* negatives */
        {9007199254740993.0, 1, 0, 0, 0, 0, 0, 0},   /* past 2^53: f64 */
        {1e300, 1e-300, 0, 0, 0, 0, 0, 0},           /* extremes: f64 */
        {0.30000000000000004, 0.1, 0, 0, 0, 0, 0, 0} /* 0.1 + 0.2: f64 */
    };
    static const int ns[] = {8, 4, 3, 3, 2, 3, 2, 2, 2};
    for (size_t t = 0; t < sizeof(ns) / sizeof(ns[0]); t++) {
        for (int version = 1; version <= 2; version++) {
            unsigned char blob[256];
            size_t len = 0;
            blob[len++] = (unsigned char)version;
            blob[len++] = 2; /* names: "", "x" */
            blob[len++] = 0;
            blob[len++] = 1;
            blob[len++] = 'x';
            blob[len++] = 2; /* cells: the count, then x */
            blob[len++] = 5, blob[len++] = 0, blob[len++] = (unsigned char)ns[t];
            blob[len++] = 5, blob[len++] = 1, blob[len++] = (unsigned char)ns[t];
            if (version == 2) {
                len += te_rollup_put_vals(blob + len, cases[t], (size_t)ns[t], NULL);
            } else {
                memcpy(blob + len, cases[t], (size_t)ns[t] * 8); /* little-endian host */
                len += (size_t)ns[t] * 8;
            }
            walked_t w = {0};
            te_err_t err = {0};
            assert_int_equal(te_rollup_1m_each(blob, len, NULL, keep_cell, &w, &err), 0);
            assert_int_equal(w.cells, 2);
            assert_int_equal(w.nvals, ns[t]);
            assert_memory_equal(w.vals, cases[t], (size_t)ns[t] * sizeof(double));
            if (version == 2 && t < 3) /* short decimals take under 8 bytes a value */
                assert_true(len - 12 < (size_t)ns[t] * 8);
            /* a truncated row is an error, never a read past the end */
            assert_int_equal(te_rollup_1m_each(blob, len - 1, NULL, keep_cell, &w, &err),
                             TE_EPARSE);
        }
    }
    unsigned char bad[] = {2, 2, 0, 1, 'x', 1, 5, 1, 1, 9, 0};
    te_err_t err = {0};
    walked_t w = {0};
    assert_int_equal(te_rollup_1m_each(bad, sizeof(bad), NULL, keep_cell, &w, &err), TE_EPARSE);
}

/* Collects the cells of a walk as "minute:field:n:sum" lines. */
typedef struct {
    char text[512];
    size_t len;
} cells_t;

static int note_cell(const te_rollup_cell_t *c, void *ud)
{
    cells_t *w = ud;
    int k = snprintf(w->text + w->len, sizeof(w->text) - w->len, "%d:%.*s:%lld:%g:%d\n",
                     c->minute, (int)c->field_len, c->field, (long long)c->n, c->sum, c->nvals);
    if (k > 0 && (size_t)k < sizeof(w->text) - w->len)
        w->len += (size_t)k;
    return 0;
}

/* te_sketch_encode of the n values v into out (cap bytes); returns its length. */
static size_t encode_sketch(const double *v, size_t n, unsigned char *out, size_t cap)
{
    te_err_t err = {0};
    te_sketch_t *sk = te_sketch_new(TE_ROLLUP_ACCURACY, 2048, &err);
    assert_non_null(sk);
    assert_int_equal(te_sketch_add_all(sk, v, n), 0);
    unsigned char *enc = NULL;
    size_t len = 0;
    assert_int_equal(te_sketch_encode(sk, &enc, &len), 0);
    assert_true(len < cap);
    memcpy(out, enc, len);
    free(enc);
    te_sketch_free(sk);
    return len;
}

/* Every truncation of the 1-minute blob (len bytes, at most 512) is an
 * error; a byte changed anywhere reads as an error or as some cells,
 * never past the end. */
static void check_damaged_blobs(const unsigned char *blob, size_t len)
{
    te_err_t err = {0};
    for (size_t cut = 0; cut < len; cut++) {
        cells_t t = {0};
        assert_int_equal(te_rollup_1m_each(blob, cut, NULL, note_cell, &t, &err), TE_EPARSE);
    }
    static const unsigned char repl[] = {0, 1, 2, 9, 32, 33, 59, 60, 0x7f, 0x80, 0xff};
    unsigned char copy[512];
    assert_true(len <= sizeof(copy));
    for (size_t at = 0; at < len; at++) {
        for (size_t k = 0; k < sizeof(repl); k++) {
            memcpy(copy, blob, len);
            copy[at] = repl[k];
            cells_t t = {0};
            int rc = te_rollup_1m_each(copy, len, NULL, note_cell, &t, &err);
            assert_true(rc == 0 || rc == TE_EPARSE);
        }
    }
}

/* Version 3 (by column, the minutes once): a field with a value in every
 * event shares the event minutes, one with its own list does not; its
 * scale code covers all its small cells; a big cell carries its sketch.
 * Every truncation and a byte changed anywhere read as an error or as
 * some cells, never past the end. */
static void test_1m_v3_format(void **state)
{
    (void)state;
    unsigned char sk_blob[256];
    size_t sk_len =
        encode_sketch((const double[]){1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 10, sk_blob, sizeof(sk_blob));
    unsigned char blob[512];
    size_t len = 0;
    blob[len++] = 3;
    blob[len++] = 3; /* names: "", "x", "y" */
    blob[len++] = 0;
    blob[len++] = 1, blob[len++] = 'x';
    blob[len++] = 1, blob[len++] = 'y';
    blob[len++] = 2; /* event minutes: 3 (2 events), 7 (10 events) */
    blob[len++] = 3, blob[len++] = 2;
    blob[len++] = 7, blob[len++] = 10;
    /* x: the event minutes; tenths; minute 3: 1.5, 2.5; minute 7: big */
    blob[len++] = 0;
    blob[len++] = 2;
    len += te_rollup_put_scaled(blob + len, (const double[]){1.5, 2.5}, 2, 2);
    double big[3] = {55, 1, 10};
    memcpy(blob + len, big, sizeof(big)); /* little-endian host */
    len += sizeof(big);
    blob[len++] = (unsigned char)sk_len;
    memcpy(blob + len, sk_blob, sk_len);
    len += sk_len;
    /* y: its own list, minute 7 only, one f64 */
    blob[len++] = 1;
    blob[len++] = 1, blob[len++] = 7, blob[len++] = 1;
    blob[len++] = 0;
    memcpy(blob + len, &(double){0.0123456789}, 8);
    len += 8;
    cells_t w = {0};
    te_err_t err = {0};
    assert_int_equal(te_rollup_1m_each(blob, len, NULL, note_cell, &w, &err), 0);
    assert_string_equal(w.text, "3::2:0:0\n7::10:0:0\n3:x:2:4:2\n7:x:10:55:0\n"
                                "7:y:1:0.0123457:1\n");
    check_damaged_blobs(blob, len);
    /* minutes out of order, a zero count, a field named '' */
    static const unsigned char bad[][12] = {
        {3, 1, 0, 2, 7, 1, 3, 1},
        {3, 1, 0, 1, 7, 0},
        {3, 2, 0, 0, 1, 7, 1, 0, 0},
    };
    static const size_t bad_len[] = {8, 6, 9};
    for (size_t i = 0; i < sizeof(bad_len) / sizeof(bad_len[0]); i++) {
        cells_t t = {0};
        assert_int_equal(te_rollup_1m_each(bad[i], bad_len[i], NULL, note_cell, &t, &err),
                         TE_EPARSE);
    }
}

/* Version 4: version 3 where a field of scaled values keeps up to
 * TE_ROLLUP_CELL_VALS values in a cell (read back exactly), an f64 field
 * up to TE_ROLLUP_VALS as before; the same bytes read as version 3 put a
 * cell of 10 scaled values in a sketch, so they differ from there on. */
static void test_1m_v4_format(void **state)
{
    (void)state;
    double ten[10], tenf[10];
    for (int i = 0; i < 10; i++) {
        ten[i] = 0.5 + i;                /* tenths: scale code 2 */
        tenf[i] = 0.0123456789 * (i + 1); /* f64 */
    }
    unsigned char sk_blob[256];
    size_t sk_len = encode_sketch(tenf, 10, sk_blob, sizeof(sk_blob));
    unsigned char blob[512];
    size_t len = 0;
    blob[len++] = 4;
    blob[len++] = 3; /* names: "", "x", "y" */
    blob[len++] = 0;
    blob[len++] = 1, blob[len++] = 'x';
    blob[len++] = 1, blob[len++] = 'y';
    blob[len++] = 1; /* event minutes: 7 (10 events) */
    blob[len++] = 7, blob[len++] = 10;
    /* x: the event minutes, ten tenths: a small cell */
    blob[len++] = 0;
    blob[len++] = 2;
    len += te_rollup_put_scaled(blob + len, ten, 10, 2);
    /* y: the event minutes, ten f64: a big cell */
    blob[len++] = 0;
    blob[len++] = 0;
    double sum = 0;
    for (int i = 0; i < 10; i++)
        sum += tenf[i];
    double big[3] = {sum, tenf[0], tenf[9]};
    memcpy(blob + len, big, sizeof(big)); /* little-endian host */
    len += sizeof(big);
    blob[len++] = (unsigned char)sk_len;
    memcpy(blob + len, sk_blob, sk_len);
    len += sk_len;
    walked_t w = {0};
    cells_t t = {0};
    te_err_t err = {0};
    assert_int_equal(te_rollup_1m_each(blob, len, NULL, note_cell, &t, &err), 0);
    assert_string_equal(t.text, "7::10:0:0\n7:x:10:50:10\n7:y:10:0.679012:0\n");
    /* the small cell's values themselves, bit for bit */
    unsigned char one[512] = {4, 2, 0, 1, 'x', 1, 7, 10, 0, 2}; /* names "", "x" */
    size_t ol = 10;
    ol += te_rollup_put_scaled(one + ol, ten, 10, 2);
    assert_int_equal(te_rollup_1m_each(one, ol, NULL, keep_cell, &w, &err), 0);
    assert_int_equal(w.nvals, 10);
    for (int i = 0; i < 10; i++)
        assert_memory_equal(&w.vals[i], &ten[i], sizeof(double));
    /* as version 3 the same bytes are read another way: an error or other cells */
    blob[0] = 3;
    cells_t t3 = {0};
    int rc = te_rollup_1m_each(blob, len, NULL, note_cell, &t3, &err);
    assert_true(rc == TE_EPARSE || strcmp(t3.text, t.text) != 0);
    blob[0] = 4;
    check_damaged_blobs(blob, len);
    /* a later format is named as such, not as a damaged row */
    blob[0] = 6;
    assert_int_equal(te_rollup_1m_each(blob, len, NULL, note_cell, &t3, &err), TE_EPARSE);
    assert_non_null(strstr(err.msg, "format 6, newer than this build's 5"));
    /* an event count past TE_ROLLUP_MAX_N is a damaged row; 2^48 is not */
    unsigned char huge[] = {4, 1, 0, 1, 7, 0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40};
    assert_int_equal(te_rollup_1m_each(huge, sizeof(huge), NULL, note_cell, &t3, &err), TE_EPARSE);
    huge[5] = 0x80;
    cells_t tm = {0};
    assert_int_equal(te_rollup_1m_each(huge, sizeof(huge), NULL, note_cell, &tm, &err), 0);
    assert_string_equal(tm.text, "7::281474976710656:0:0\n");
}

/* One long transaction (a backfill) of sparse series fills the hour
 * builder's bound: the hours already over are written inside the
 * transaction, and the answers still equal raw ones. */
static void test_builder_bound_in_one_transaction(void **state)
{
    fx_t *f = *state;
    te_err_t err = {0};
    char buf[256];
    assert_int_equal(te_store_begin(f->st, &err), 0);
    for (int i = 0; i < 60000; i++) {
        int64_t ts = T0 + (int64_t)i * (12 * HOUR / 60000);
        snprintf(buf, sizeof(buf),
                 "{\"kind\":\"llm\",\"ts\":%lld.%09lld,\"tags\":{\"run\":\"r%d\"},"
                 "\"fields\":{\"latency\":%d,\"tokens\":%d}}",
                 (long long)(ts / SEC), (long long)(ts % SEC), i % 25000,
                 (int)(1 + rnd(f) % 900), (int)(rnd(f) % 50));
        insert_json(f->st, buf);
    }
    assert_int_equal(te_store_commit(f->st, &err), 0);
    int64_t w1m, w1h;
    watermarks(f->st, &w1m, &w1h);
    assert_true(w1h >= T0 + 11 * HOUR);
    static const char *const aggs = "count,sum:latency,min:latency,max:latency,p95:latency,"
                                    "sum:tokens";
    te_result_t *raw = run(f->st, TE_PLAN_RAW, aggs, T0, T0 + 11 * HOUR, HOUR, NULL, 0, NULL, 0);
    te_result_t *ru = run(f->st, TE_PLAN_ROLLUPS, aggs, T0, T0 + 11 * HOUR, HOUR, NULL, 0, NULL,
                          0);
    assert_int_equal(raw->nrows, 11);
    compare(raw, ru, "one long transaction");
    te_result_free(raw);
    te_result_free(ru);
    assert_int_equal(sql_int(f->st, "SELECT sum(n) FROM rollup_1h WHERE field = ''"),
                     sql_int(f->st, "SELECT count(*) FROM events WHERE ts_ns < (SELECT w1h FROM"
                                    " rollup_state WHERE kind_id = 1)"));
}

/* Past the builder's bound, an hour that lost events is read back at its
 * advance, and the builder takes no more of it. Hour 0 (30,000 series)
 * goes over; hour 1's first events came while the builder was full, so
 * hour 1 (30,000 series again) is read back without being fed; its
 * read-back did not fit either, so hour 2 is read back too without being
 * fed; hour 2 (200 series) fits, so hour 3 is fed again, and stays under
 * the bound: the 30,000 slots hour 1's read-back left spare are given
 * back when it reaches it. The answers equal raw ones. */
static void test_builder_lost_hours(void **state)
{
    fx_t *f = *state;
    te_err_t err = {0};
    char buf[256];
    struct te_rollup *r = f->st->rollup;
    clock_ns = T0 + 24 * HOUR;
    int checked[4] = {0};
    static const int64_t per_hour[4] = {30000, 30000, 6000, 6000};
    int64_t h = 0, i_h = 0;
    while (h < 4) {
        int64_t ts = 0;
        assert_int_equal(te_store_begin(f->st, &err), 0);
        for (int i = 0; i < 500 && h < 4; i++) {
            ts = T0 + h * HOUR + i_h * (HOUR / per_hour[h]);
            /* the big hours: a series an event; then 200 series */
            int run = per_hour[h] > 6000 ? (int)(h * 100000 + i_h) : (int)(i_h % 200);
            snprintf(buf, sizeof(buf),
                     "{\"kind\":\"llm\",\"ts\":%lld.%09lld,\"tags\":{\"run\":\"r%d\"},"
                     "\"fields\":{\"latency\":%d}}",
                     (long long)(ts / SEC), (long long)(ts % SEC), run, (int)(1 + rnd(f) % 900));
            insert_json(f->st, buf);
            if (++i_h == per_hour[h])
                h++, i_h = 0;
        }
        assert_int_equal(te_store_commit(f->st, &err), 0);
        assert_true(te_rollup_feed_own(r)); /* its thread's, else (rollup_feed.c) */
        int64_t in = (ts - T0) / HOUR, at = (ts - T0) % HOUR;
        if (at < 10 * MIN)
            continue;
        if (in == 1 || in == 2) { /* read back at the advance, not fed */
            assert_true(r->lost_upto == T0 + (in + 1) * HOUR);
            assert_int_equal(r->nslots, 0);
            checked[in]++;
        }
        if (in == 3) {
            assert_true(r->lost_upto <= T0 + 3 * HOUR && r->nslots > 0);
            /* hour 1's 30,000 slots, spare, were given back at the bound */
            assert_true(te_rollup_hour_bytes(r) < 1024 * 1024);
            assert_false(r->hour_full);
            checked[in]++;
        }
    }
    assert_true(checked[1] > 3 && checked[2] > 3 && checked[3] > 3);
    snprintf(buf, sizeof(buf), "{\"kind\":\"llm\",\"ts\":%lld,\"tags\":{\"run\":\"late\"}}",
             (long long)((T0 + 6 * HOUR) / SEC));
    assert_int_equal(te_store_begin(f->st, &err), 0);
    insert_json(f->st, buf);
    assert_int_equal(te_store_commit(f->st, &err), 0);
    static const char *const aggs = "count,sum:latency,min:latency,max:latency,p95:latency";
    static const char *const g_run[] = {"run"};
    te_result_t *raw = run(f->st, TE_PLAN_RAW, aggs, T0, T0 + 4 * HOUR, HOUR, NULL, 0, NULL, 0);
    te_result_t *ru = run(f->st, TE_PLAN_ROLLUPS, aggs, T0, T0 + 4 * HOUR, HOUR, NULL, 0, NULL, 0);
    assert_int_equal(raw->nrows, 4);
    compare(raw, ru, "hours lost at the bound");
    te_result_free(raw);
    te_result_free(ru);
    raw = run(f->st, TE_PLAN_RAW, "count,sum:latency", T0 + 2 * HOUR, T0 + 4 * HOUR, 0, g_run, 1,
              NULL, 0);
    ru = run(f->st, TE_PLAN_ROLLUPS, "count,sum:latency", T0 + 2 * HOUR, T0 + 4 * HOUR, 0, g_run, 1,
             NULL, 0);
    assert_int_equal(raw->nrows, 200);
    compare(raw, ru, "per series, hours 2 and 3");
    te_result_free(raw);
    te_result_free(ru);
}

/* ---------- 1-hour chunk rows (rollup_1h.h) ---------- */

/* Same answers bit for bit: every cell equal. */
static void same_result(const te_result_t *a, const te_result_t *b, const char *what)
{
    assert_int_equal(a->nrows, b->nrows);
    assert_int_equal(a->ncols, b->ncols);
    for (size_t i = 0; i < a->nrows * a->ncols; i++) {
        const te_val_t *x = &a->cells[i], *y = &b->cells[i];
        assert_int_equal(x->type, y->type);
        if (x->type == TE_VAL_NUM && memcmp(&x->u.num, &y->u.num, sizeof(double)) != 0)
            fail_msg("%s: cell %zu: %.17g vs %.17g", what, i, x->u.num, y->u.num);
        if (x->type == TE_VAL_INT && x->u.i != y->u.i)
            fail_msg("%s: cell %zu: %lld vs %lld", what, i, (long long)x->u.i, (long long)y->u.i);
        if (x->type == TE_VAL_STR && strcmp(x->u.s, y->u.s) != 0)
            fail_msg("%s: cell %zu: %s vs %s", what, i, x->u.s, y->u.s);
    }
}

/* Commits with no sync: what the builder's thread has not written ahead
 * yet waits for a later commit (TE_ROLLUP_THREAD=1), and meanwhile the
 * answers still equal raw ones (the planner reads raw events past the
 * watermarks). After te_store_rollup_sync the watermarks reach the last
 * whole hour before the newest event less the grace, and the rollup rows
 * alone answer for the hours before it. */
static void test_commit_lag(void **state)
{
    fx_t *f = *state;
    te_err_t err = {0};
    char buf[512];
    ordered = true;
    clock_ns = T0;
    const char *aggs = "count,sum:tokens,min:tokens,max:tokens";
    for (int txn = 0; txn < 30; txn++) {
        assert_int_equal(te_store_begin(f->st, &err), 0);
        for (int i = 0; i < 150; i++) { /* ~50 minutes of events */
            random_event(f, buf, sizeof(buf));
            insert_json(f->st, buf);
        }
        assert_int_equal(te_store_commit(f->st, &err), 0);
        int64_t w1m, w1h;
        watermarks(f->st, &w1m, &w1h);
        int64_t newest_hour = te_rollup_bucket(clock_ns - 2 * MIN, HOUR);
        assert_true(w1h <= newest_hour && w1m <= newest_hour);
        te_result_t *raw = run(f->st, TE_PLAN_RAW, aggs, T0, clock_ns + MIN, HOUR, g_model, 1,
                               NULL, 0);
        te_result_t *au = run(f->st, TE_PLAN_AUTO, aggs, T0, clock_ns + MIN, HOUR, g_model, 1,
                              NULL, 0);
        same_result(raw, au, "after a commit");
        te_result_free(raw);
        te_result_free(au);
    }
    assert_int_equal(te_store_rollup_sync(f->st, &err), 0);
    int64_t w1m, w1h;
    watermarks(f->st, &w1m, &w1h);
    int64_t to = te_rollup_bucket(clock_ns - 2 * MIN, HOUR);
    assert_int_equal(w1h, to);
    assert_int_equal(w1m, to);
    te_result_t *raw = run(f->st, TE_PLAN_RAW, aggs, T0, to, HOUR, g_model, 1, NULL, 0);
    char del[128];
    snprintf(del, sizeof(del), "DELETE FROM events WHERE ts_ns < %lld", (long long)to);
    exec_sql(f->st, del);
    assert_int_equal(count_of(f->st, TE_PLAN_RAW, T0, to), 0);
    te_result_t *ru = run(f->st, TE_PLAN_ROLLUPS, aggs, T0, to, HOUR, g_model, 1, NULL, 0);
    same_result(raw, ru, "rollups alone after the sync");
    te_result_free(raw);
    te_result_free(ru);
    /* a sync with nothing held: nothing to do, and not inside a transaction */
    assert_int_equal(te_store_rollup_sync(f->st, &err), 0);
    assert_int_equal(te_store_begin(f->st, &err), 0);
    assert_int_equal(te_store_rollup_sync(f->st, &err), TE_EINVAL);
    te_store_rollback(f->st);
}

static int count_events(const te_rollup_cell_t *c, void *ud)
{
    if (c->field_len == 0)
        *(int64_t *)ud += c->n;
    return 0;
}

/* A database of schema 5 (one 1-hour and one 1-minute row per series and
 * hour) is converted at the first read-write open (5 -> 6: 1-hour chunk
 * rows, 6 -> 7: 1-minute pack rows): the same answers, bit for bit. The
 * old tables are made here from the current rows, series by series. */
static void test_schema5_conversion(void **state)
{
    fx_t *f = *state;
    ordered = true;
    clock_ns = T0;
    fill(f, 4000);
    static const char *const aggs = "count,sum:latency,min:cost,max:cost,p95:latency,p50:tokens";
    int64_t lo = T0, hi = te_rollup_bucket(clock_ns, HOUR) - HOUR;
    te_result_t *before = run(f->st, TE_PLAN_ROLLUPS, aggs, lo, hi, 0, g_model, 1, NULL, 0);
    te_result_t *before_h = run(f->st, TE_PLAN_ROLLUPS, aggs, lo, hi, HOUR, NULL, 0, NULL, 0);
    te_result_t *before_m = run(f->st, TE_PLAN_ROLLUPS, aggs, lo + 7 * MIN, lo + 5 * HOUR,
                                5 * MIN, g_model, 1, NULL, 0);
    /* rollup_1m as schema 6 had it: a row per series and hour */
    exec_sql(f->st, "CREATE TABLE old1m(id INTEGER PRIMARY KEY, kind_id INTEGER NOT NULL,"
                    " bucket INTEGER NOT NULL, series_id INTEGER NOT NULL, n INTEGER NOT NULL,"
                    " data BLOB NOT NULL, UNIQUE(kind_id, bucket, series_id))");
    {
        sqlite3_stmt *q1 = NULL, *i1 = NULL;
        assert_int_equal(sqlite3_prepare_v2(f->st->db, "SELECT kind_id, bucket, data FROM rollup_1m",
                                            -1, &q1, NULL),
                         SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(f->st->db,
                                            "INSERT INTO old1m(kind_id, bucket, series_id, n, data)"
                                            " VALUES(?1, ?2, ?3, ?4, ?5)",
                                            -1, &i1, NULL),
                         SQLITE_OK);
        te_err_t e1 = {0};
        te_rollup_pack_names_t pn;
        unsigned char *xb = NULL;
        size_t xcap = 0;
        while (sqlite3_step(q1) == SQLITE_ROW) {
            const void *data = sqlite3_column_blob(q1, 2), *blob;
            size_t dlen = (size_t)sqlite3_column_bytes(q1, 2), pos = 0, blen;
            int64_t sid;
            int more;
            while ((more = te_rollup_1m_pack_next(data, dlen, &pos, &sid, &blob, &blen, &pn,
                                                  &e1)) > 0) {
                int64_t n = 0;
                /* events in time order: every hour from the builder (version 5) */
                assert_int_equal(((const unsigned char *)blob)[0], 5);
                assert_int_equal(te_rollup_1m_each(blob, blen, &pn, count_events, &n, &e1), 0);
                /* schema 6 kept an hour per row, its names written out */
                assert_int_equal(te_rollup_1m_expand(blob, blen, &pn, &xb, &xcap, &blen, &e1), 0);
                blob = xb;
                sqlite3_bind_int64(i1, 1, sqlite3_column_int64(q1, 0));
                sqlite3_bind_int64(i1, 2, sqlite3_column_int64(q1, 1));
                sqlite3_bind_int64(i1, 3, sid);
                sqlite3_bind_int64(i1, 4, n);
                sqlite3_bind_blob(i1, 5, blob, (int)blen, SQLITE_TRANSIENT);
                assert_int_equal(sqlite3_step(i1), SQLITE_DONE);
                sqlite3_reset(i1);
            }
            assert_int_equal(more, 0);
        }
        sqlite3_finalize(q1);
        sqlite3_finalize(i1);
        free(xb);
    }
    int64_t rows1m = sql_int(f->st, "SELECT count(*) FROM rollup_1m");
    assert_true(sql_int(f->st, "SELECT count(*) FROM old1m") > rows1m); /* series a row */
    exec_sql(f->st, "DROP TABLE rollup_1m; ALTER TABLE old1m RENAME TO rollup_1m");
    int64_t rows = sql_int(f->st, "SELECT count(*) FROM rollup_1h");
    exec_sql(f->st, "CREATE TABLE old(kind_id INTEGER NOT NULL, field TEXT NOT NULL,"
                    " bucket INTEGER NOT NULL, series_id INTEGER NOT NULL, n INTEGER NOT NULL,"
                    " sum REAL, min REAL, max REAL, sketch BLOB,"
                    " PRIMARY KEY(kind_id, field, bucket, series_id)) WITHOUT ROWID");
    sqlite3_stmt *q = NULL, *ins = NULL;
    assert_int_equal(sqlite3_prepare_v2(f->st->db,
                                        "SELECT kind_id, field, bucket, chunk, stats, sketches"
                                        " FROM rollup_1h",
                                        -1, &q, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(f->st->db,
                                        "INSERT INTO old VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                                        -1, &ins, NULL),
                     SQLITE_OK);
    int64_t entries = 0;
    te_err_t err = {0};
    while (sqlite3_step(q) == SQLITE_ROW) {
        te_rollup_1h_iter_t it;
        te_rollup_1h_entry_t e;
        bool counts = sqlite3_column_bytes(q, 1) == 0;
        assert_int_equal(te_rollup_1h_iter_init(&it, sqlite3_column_int64(q, 3),
                                                sqlite3_column_blob(q, 4),
                                                (size_t)sqlite3_column_bytes(q, 4),
                                                sqlite3_column_blob(q, 5),
                                                (size_t)sqlite3_column_bytes(q, 5), &err),
                         0);
        int more;
        while ((more = te_rollup_1h_next(&it, &e, &err)) > 0) {
            sqlite3_bind_int64(ins, 1, sqlite3_column_int64(q, 0));
            sqlite3_bind_text(ins, 2, (const char *)sqlite3_column_text(q, 1), -1,
                              SQLITE_TRANSIENT);
            sqlite3_bind_int64(ins, 3, sqlite3_column_int64(q, 2));
            sqlite3_bind_int64(ins, 4, e.sid);
            sqlite3_bind_int64(ins, 5, e.n);
            for (int c = 6; c <= 9; c++)
                sqlite3_bind_null(ins, c);
            if (!counts) {
                sqlite3_bind_double(ins, 6, e.sum);
                sqlite3_bind_double(ins, 7, e.min);
                sqlite3_bind_double(ins, 8, e.max);
                if (e.sketch)
                    sqlite3_bind_blob(ins, 9, e.sketch, (int)e.sketch_len, SQLITE_TRANSIENT);
            }
            assert_int_equal(sqlite3_step(ins), SQLITE_DONE);
            sqlite3_reset(ins);
            entries++;
        }
        assert_int_equal(more, 0);
    }
    sqlite3_finalize(q);
    sqlite3_finalize(ins);
    assert_true(entries > rows); /* several series per chunk row */
    exec_sql(f->st, "DROP TABLE rollup_1h; ALTER TABLE old RENAME TO rollup_1h;"
                    " PRAGMA user_version = 5");
    te_store_close(f->st);
    open_store(f); /* migrates */
    assert_int_equal(sql_int(f->st, "PRAGMA user_version"), 7);
    assert_int_equal(sql_int(f->st, "SELECT count(*) FROM sqlite_master WHERE name IN"
                                    " ('rollup_1h_v5', 'rollup_1m_v6')"),
                     0);
    assert_int_equal(sql_int(f->st, "SELECT count(*) FROM rollup_1m"), rows1m);
    assert_int_equal(sql_int(f->st, "SELECT count(*) FROM rollup_1h"), rows);
    te_result_t *after = run(f->st, TE_PLAN_ROLLUPS, aggs, lo, hi, 0, g_model, 1, NULL, 0);
    te_result_t *after_h = run(f->st, TE_PLAN_ROLLUPS, aggs, lo, hi, HOUR, NULL, 0, NULL, 0);
    same_result(before, after, "by model");
    same_result(before_h, after_h, "per hour");
    te_result_t *after_m = run(f->st, TE_PLAN_ROLLUPS, aggs, lo + 7 * MIN, lo + 5 * HOUR, 5 * MIN,
                               g_model, 1, NULL, 0);
    same_result(before_m, after_m, "per 5 minutes");
    te_result_free(before_m);
    te_result_free(after_m);
    te_result_free(before);
    te_result_free(after);
    te_result_free(before_h);
    te_result_free(after_h);
}

/* More series than a chunk holds (9,000), written in order and then late: rows
 * per chunk, answers equal to raw ones per series. */
static void test_many_series_chunks(void **state)
{
    fx_t *f = *state;
    te_err_t err = {0};
    char buf[256];
    for (int pass = 0; pass < 2; pass++) {
        /* pass 0: hours 0..2 in order; pass 1: late events into them */
        assert_int_equal(te_store_begin(f->st, &err), 0);
        for (int i = 0; i < 12000; i++) {
            int64_t ts = pass == 0 ? T0 + (int64_t)i * (3 * HOUR / 12000)
                                   : T0 + (int64_t)(rnd(f) % (3 * HOUR));
            snprintf(buf, sizeof(buf),
                     "{\"kind\":\"llm\",\"ts\":%lld.%09lld,\"tags\":{\"s\":\"s%d\"},"
                     "\"fields\":{\"latency\":%d,\"tokens\":%d}}",
                     (long long)(ts / SEC), (long long)(ts % SEC), (int)(rnd(f) % 9000),
                     (int)(1 + rnd(f) % 900), (int)(rnd(f) % 50));
            insert_json(f->st, buf);
        }
        /* a newer event moves the watermark past the three hours */
        snprintf(buf, sizeof(buf), "{\"kind\":\"llm\",\"ts\":%lld,\"tags\":{\"s\":\"late\"}}",
                 (long long)((T0 + 5 * HOUR) / SEC));
        insert_json(f->st, buf);
        assert_int_equal(te_store_commit(f->st, &err), 0);
    }
    assert_int_equal(te_store_rollup_sync(f->st, &err), 0);
    assert_true(sql_int(f->st, "SELECT count(DISTINCT chunk) FROM rollup_1h") >= 3);
    assert_int_equal(sql_int(f->st, "SELECT sum(n) FROM rollup_1h WHERE field = ''"), 24000);
    static const char *const g_s[] = {"s"};
    static const char *const aggs = "count,sum:latency,min:latency,max:latency,p95:latency,"
                                    "sum:tokens";
    for (int every = 0; every < 2; every++) {
        te_result_t *raw =
            run(f->st, TE_PLAN_RAW, aggs, T0, T0 + 3 * HOUR, every ? HOUR : 0, g_s, 1, NULL, 0);
        te_result_t *ru = run(f->st, TE_PLAN_ROLLUPS, aggs, T0, T0 + 3 * HOUR, every ? HOUR : 0,
                              g_s, 1, NULL, 0);
        assert_true(raw->nrows >= 5000);
        compare(raw, ru, every ? "per series and hour" : "per series");
        te_result_free(raw);
        te_result_free(ru);
    }
}

/* Sparse series of two kinds with different fields, some events without
 * some fields: written one after the other through the same reused
 * columns (rollup_hour.c, wslot_clear), every answer still equals the raw
 * one, per kind, field and series. */
static void test_sparse_mixed_fields(void **state)
{
    fx_t *f = *state;
    te_err_t err = {0};
    char buf[256];
    assert_int_equal(te_store_begin(f->st, &err), 0);
    for (int i = 0; i < 6000; i++) {
        int64_t ts = T0 + (int64_t)i * (3 * HOUR / 6000);
        int sid = (int)(rnd(f) % 3000), shape = (int)(rnd(f) % 4);
        if (rnd(f) % 3 == 0)
            snprintf(buf, sizeof(buf),
                     "{\"kind\":\"ui\",\"ts\":%lld.%09lld,\"tags\":{\"s\":\"u%d\"},"
                     "\"fields\":{\"confidence\":0.%02d,\"ms\":%d}}",
                     (long long)(ts / SEC), (long long)(ts % SEC), sid, (int)(rnd(f) % 100),
                     (int)(rnd(f) % 5000));
        else if (shape == 0) /* no latency */
            snprintf(buf, sizeof(buf),
                     "{\"kind\":\"llm\",\"ts\":%lld.%09lld,\"tags\":{\"s\":\"s%d\"},"
                     "\"fields\":{\"tokens\":%d}}",
                     (long long)(ts / SEC), (long long)(ts % SEC), sid, (int)(rnd(f) % 50));
        else if (shape == 1) /* a third field */
            snprintf(buf, sizeof(buf),
                     "{\"kind\":\"llm\",\"ts\":%lld.%09lld,\"tags\":{\"s\":\"s%d\"},"
                     "\"fields\":{\"cost\":%d.25,\"latency\":%d,\"tokens\":%d}}",
                     (long long)(ts / SEC), (long long)(ts % SEC), sid, (int)(rnd(f) % 9),
                     (int)(1 + rnd(f) % 900), (int)(rnd(f) % 50));
        else
            snprintf(buf, sizeof(buf),
                     "{\"kind\":\"llm\",\"ts\":%lld.%09lld,\"tags\":{\"s\":\"s%d\"},"
                     "\"fields\":{\"latency\":%d,\"tokens\":%d}}",
                     (long long)(ts / SEC), (long long)(ts % SEC), sid, (int)(1 + rnd(f) % 900),
                     (int)(rnd(f) % 50));
        insert_json(f->st, buf);
    }
    for (int k = 0; k < 2; k++) { /* newer events move both watermarks past the hours */
        snprintf(buf, sizeof(buf), "{\"kind\":\"%s\",\"ts\":%lld,\"tags\":{\"s\":\"late\"}}",
                 k ? "ui" : "llm", (long long)((T0 + 5 * HOUR) / SEC));
        insert_json(f->st, buf);
    }
    assert_int_equal(te_store_commit(f->st, &err), 0);
    assert_true(sql_int(f->st, "SELECT count(*) FROM rollup_1m") > 0);
    static const char *const g_s[] = {"s"};
    static const char *const aggs[2] = {
        "count,sum:latency,min:latency,max:latency,p95:latency,sum:tokens,max:tokens,"
        "sum:cost,min:cost",
        "count,sum:confidence,min:confidence,p50:ms,max:ms"};
    for (int k = 0; k < 2; k++) {
        run_kind = k ? "ui" : "llm";
        for (int every = 0; every < 3; every++) {
            int64_t ev = every == 0 ? 0 : every == 1 ? HOUR : 20 * MIN;
            te_result_t *raw = run(f->st, TE_PLAN_RAW, aggs[k], T0, T0 + 3 * HOUR, ev, g_s, 1,
                                   NULL, 0);
            te_result_t *ru = run(f->st, TE_PLAN_ROLLUPS, aggs[k], T0, T0 + 3 * HOUR, ev, g_s, 1,
                                  NULL, 0);
            assert_true(raw->nrows >= 500);
            compare(raw, ru, k ? "ui per series" : "llm per series");
            te_result_free(raw);
            te_result_free(ru);
        }
    }
    run_kind = "llm";
}

/* Malformed rows are errors that name the row, never reads past the end;
 * a row written twice under one key merges entry by entry. */
static void test_1h_row_format(void **state)
{
    fx_t *f = *state;
    te_err_t err = {0};
    te_rollup_1h_iter_t it;
    te_rollup_1h_entry_t e;
    /* format 2, two entries: sid 4096 + 3 (n 1), then + 2 (n 5, sketch) */
    te_rollup_1h_row_t row = {0};
    te_sketch_t *sk = te_sketch_new(TE_ROLLUP_ACCURACY, 0, NULL);
    for (int i = 1; i <= 5; i++)
        te_sketch_add(sk, i * 10.0);
    te_rollup_1h_begin(&row, 1, "x", 1, T0, 1);
    te_rollup_1h_add(&row, &(te_rollup_1h_entry_t){.sid = 4099, .n = 1, .sum = 7, .min = 7,
                                                    .max = 7},
                     NULL);
    te_rollup_1h_add(&row, &(te_rollup_1h_entry_t){.sid = 4101, .n = 5, .sum = 150, .min = 10,
                                                    .max = 50},
                     sk);
    assert_false(row.oom);
    assert_int_equal(te_store_begin(f->st, &err), 0);
    assert_int_equal(te_rollup_1h_write(f->st, &f->st->rollup->h1, &row, &err), 0);
    /* the same key again, sids 4099 (merged) and 4140 (new) */
    te_rollup_1h_begin(&row, 1, "x", 1, T0, 1);
    te_rollup_1h_add(&row, &(te_rollup_1h_entry_t){.sid = 4099, .n = 2, .sum = 3, .min = 1,
                                                    .max = 2},
                     NULL);
    te_rollup_1h_add(&row, &(te_rollup_1h_entry_t){.sid = 4140, .n = 1, .sum = 4, .min = 4,
                                                    .max = 4},
                     NULL);
    assert_int_equal(te_rollup_1h_write(f->st, &f->st->rollup->h1, &row, &err), 0);
    assert_int_equal(te_store_commit(f->st, &err), 0);
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_prepare_v2(f->st->db,
                                        "SELECT n, stats, sketches FROM rollup_1h WHERE"
                                        " kind_id = 1 AND field = 'x' AND chunk = 1",
                                        -1, &q, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int64(q, 0), 9);
    const unsigned char *stats = sqlite3_column_blob(q, 1);
    size_t slen = (size_t)sqlite3_column_bytes(q, 1);
    assert_int_equal(te_rollup_1h_iter_init(&it, 1, stats, slen, sqlite3_column_blob(q, 2),
                                            (size_t)sqlite3_column_bytes(q, 2), &err),
                     0);
    int64_t sids[3], ns[3];
    double sums[3], mins[3];
    size_t k = 0;
    while (te_rollup_1h_next(&it, &e, &err) > 0 && k < 3) {
        sids[k] = e.sid, ns[k] = e.n, sums[k] = e.sum, mins[k] = e.min;
        if (e.sid == 4099) { /* 7 + {1, 2}: three values, a sketch of them */
            te_sketch_t *m = te_sketch_decode(e.sketch, e.sketch_len, &err);
            assert_non_null(m);
            assert_int_equal(te_sketch_count(m), 3);
            te_sketch_free(m);
        }
        k++;
    }
    assert_int_equal(k, 3);
    assert_int_equal(sids[0], 4099);
    assert_int_equal(ns[0], 3);
    assert_true(sums[0] == 10 && mins[0] == 1);
    assert_true(sids[1] == 4101 && ns[1] == 5 && sums[1] == 150);
    assert_true(sids[2] == 4140 && ns[2] == 1 && sums[2] == 4);
    /* hostile copies of the stats column */
    unsigned char bad[256];
    assert_true(slen < sizeof(bad));
    for (size_t cut = 0; cut < slen; cut++) { /* truncated anywhere */
        int rc = te_rollup_1h_iter_init(&it, 1, stats, cut, NULL, 0, &err);
        while (rc >= 0 && (rc = te_rollup_1h_next(&it, &e, &err)) > 0)
            ;
        assert_int_equal(rc, TE_EPARSE);
    }
    memcpy(bad, stats, slen);
    bad[slen] = 0; /* a trailing byte */
    int rc = te_rollup_1h_iter_init(&it, 1, bad, slen + 1, NULL, 0, &err);
    while (rc >= 0 && (rc = te_rollup_1h_next(&it, &e, &err)) > 0)
        ;
    assert_int_equal(rc, TE_EPARSE);
    assert_non_null(strstr(err.msg, "1-hour row"));
    bad[0] = 9; /* unknown format */
    assert_int_equal(te_rollup_1h_iter_init(&it, 1, bad, slen, NULL, 0, &err), TE_EPARSE);
    /* a delta that leaves the chunk */
    const unsigned char out_of_chunk[] = {1, 1, 0x80, 0x20, 1}; /* delta 4096 */
    assert_int_equal(te_rollup_1h_iter_init(&it, 1, out_of_chunk, sizeof(out_of_chunk), NULL, 0,
                                            &err),
                     0);
    assert_int_equal(te_rollup_1h_next(&it, &e, &err), TE_EPARSE);
    /* a repeated sid (zero delta after the first entry) */
    const unsigned char repeat[] = {1, 2, 3, 1, 0, 1};
    assert_int_equal(te_rollup_1h_iter_init(&it, 1, repeat, sizeof(repeat), NULL, 0, &err), 0);
    assert_int_equal(te_rollup_1h_next(&it, &e, &err), 1);
    assert_int_equal(te_rollup_1h_next(&it, &e, &err), TE_EPARSE);
    /* format 2 (the first schema-6 build): three doubles even for one value;
     * format 3: one double for one value. Both read the same. */
    {
        double v = 2.5, three[3] = {2.5, 2.5, 2.5};
        unsigned char f2[4 + 24] = {2, 1, 5, 1}, f3[4 + 8] = {3, 1, 5, 1};
        memcpy(f2 + 4, three, 24); /* little-endian host */
        memcpy(f3 + 4, &v, 8);
        const unsigned char *blobs[2] = {f2, f3};
        size_t lens[2] = {sizeof(f2), sizeof(f3)};
        for (int b = 0; b < 2; b++) {
            assert_int_equal(te_rollup_1h_iter_init(&it, 0, blobs[b], lens[b], NULL, 0, &err), 0);
            assert_int_equal(te_rollup_1h_next(&it, &e, &err), 1);
            assert_true(e.sid == 5 && e.n == 1 && e.sum == 2.5 && e.min == 2.5 && e.max == 2.5);
            assert_int_equal(te_rollup_1h_next(&it, &e, &err), 0);
            /* one byte short: an error */
            assert_int_equal(te_rollup_1h_iter_init(&it, 0, blobs[b], lens[b] - 1, NULL, 0, &err),
                             0);
            assert_int_equal(te_rollup_1h_next(&it, &e, &err), TE_EPARSE);
        }
    }
    /* a count past TE_ROLLUP_MAX_N: damaged, refused before counts add up
     * past INT64_MAX (a merge would) */
    {
        const unsigned char huge[] = {1, 1, 5, 0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40};
        assert_int_equal(te_rollup_1h_iter_init(&it, 0, huge, sizeof(huge), NULL, 0, &err), 0);
        assert_int_equal(te_rollup_1h_next(&it, &e, &err), TE_EPARSE);
        unsigned char at_max[sizeof(huge)];
        memcpy(at_max, huge, sizeof(huge));
        at_max[3] = 0x80; /* exactly 2^48 */
        assert_int_equal(te_rollup_1h_iter_init(&it, 0, at_max, sizeof(at_max), NULL, 0, &err), 0);
        assert_int_equal(te_rollup_1h_next(&it, &e, &err), 1);
        assert_true(e.n == (int64_t)TE_ROLLUP_MAX_N);
    }
    /* a sketch length past the sketches column */
    const unsigned char sks[] = {40, 1};
    assert_int_equal(te_rollup_1h_iter_init(&it, 1, stats, slen, sks, sizeof(sks), &err), 0);
    rc = 0;
    while ((rc = te_rollup_1h_next(&it, &e, &err)) > 0)
        ;
    assert_int_equal(rc, TE_EPARSE);
    sqlite3_finalize(q);
    te_rollup_1h_free(&row);
    te_sketch_free(sk);
}

/* 1-minute pack rows: series walked in order, names defined in the row
 * (format 2) and referred to by version-5 blobs; format 1 still read;
 * malformed rows are errors. */
static void test_1m_pack_format(void **state)
{
    (void)state;
    te_rollup_pack_t p = {0};
    te_rollup_pack_names_t pn;
    const unsigned char a[] = {1, 2, 3}, b[] = {9};
    te_rollup_pack_add(&p, 1, 0, 7, 2, a, sizeof(a));
    te_rollup_pack_add(&p, 1, 0, 300, 1, b, sizeof(b));
    assert_true(p.open && !p.b.oom);
    assert_int_equal(p.n, 3);
    assert_int_equal(p.b.p[0], 2);
    size_t pos = 0, blen;
    int64_t sid;
    const void *blob;
    te_err_t err = {0};
    assert_int_equal(
        te_rollup_1m_pack_next(p.b.p, p.b.len, &pos, &sid, &blob, &blen, &pn, &err), 1);
    assert_true(sid == 7 && blen == 3 && memcmp(blob, a, 3) == 0);
    assert_int_equal(
        te_rollup_1m_pack_next(p.b.p, p.b.len, &pos, &sid, &blob, &blen, &pn, &err), 1);
    assert_true(sid == 300 && blen == 1 && memcmp(blob, b, 1) == 0);
    assert_int_equal(
        te_rollup_1m_pack_next(p.b.p, p.b.len, &pos, &sid, &blob, &blen, &pn, &err), 0);
    for (size_t cut = 0; cut + 1 < p.b.len; cut++) { /* truncated: never a read past the end */
        int rc;
        pos = 0;
        while ((rc = te_rollup_1m_pack_next(p.b.p, cut + 1, &pos, &sid, &blob, &blen, &pn,
                                            &err)) > 0)
            ;
        /* the cuts after the format byte and after the first series are whole rows */
        if (cut + 1 != 1 && cut + 1 != 1 + 1 + 1 + 3)
            assert_int_equal(rc, TE_EPARSE);
    }
    /* format 2 by hand: names "x" and "lat" defined, a version-5 blob
     * naming '' and "lat" (events at minute 7: one; lat 42), then one
     * naming "x" (minute 3: one; x 5) */
    unsigned char row[64] = {2, 1 << 1 | 1, 'x', 3 << 1 | 1, 'l', 'a', 't', 7 << 1, 10,
                             5, 2, 0, 2, 1, 7, 1, 0, 1, 84,
                             9 << 1, 10, 5, 2, 0, 1, 1, 3, 1, 0, 1, 10};
    size_t rl = 31;
    const char *want[2] = {"7::1:0:0\n7:lat:1:42:1\n", "3::1:0:0\n3:x:1:5:1\n"};
    unsigned char *xb = NULL;
    size_t xcap = 0, xlen;
    pos = 0;
    for (int k = 0; k < 2; k++) {
        assert_int_equal(te_rollup_1m_pack_next(row, rl, &pos, &sid, &blob, &blen, &pn, &err), 1);
        assert_true(sid == (k ? 9 : 7) && pn.n == 2);
        cells_t t = {0}, tx = {0};
        assert_int_equal(te_rollup_1m_each(blob, blen, &pn, note_cell, &t, &err), 0);
        assert_string_equal(t.text, want[k]);
        /* without the row's names: an error, never a guess */
        assert_int_equal(te_rollup_1m_each(blob, blen, NULL, note_cell, &tx, &err), TE_EPARSE);
        /* written out as version 4: the same cells on its own */
        assert_int_equal(te_rollup_1m_expand(blob, blen, &pn, &xb, &xcap, &xlen, &err), 0);
        assert_int_equal(xb[0], 4);
        memset(&tx, 0, sizeof(tx));
        assert_int_equal(te_rollup_1m_each(xb, xlen, NULL, note_cell, &tx, &err), 0);
        assert_string_equal(tx.text, want[k]);
    }
    assert_int_equal(te_rollup_1m_pack_next(row, rl, &pos, &sid, &blob, &blen, &pn, &err), 0);
    /* a reference past the names defined so far, an empty name */
    row[12] = 3;
    pos = 0;
    assert_int_equal(te_rollup_1m_pack_next(row, rl, &pos, &sid, &blob, &blen, &pn, &err), 1);
    cells_t t = {0};
    assert_int_equal(te_rollup_1m_each(blob, blen, &pn, note_cell, &t, &err), TE_EPARSE);
    assert_int_equal(te_rollup_1m_expand(blob, blen, &pn, &xb, &xcap, &xlen, &err), TE_EPARSE);
    row[12] = 2;
    unsigned char empty[] = {2, 0 << 1 | 1, 7 << 1, 1, 5};
    pos = 0;
    assert_int_equal(te_rollup_1m_pack_next(empty, sizeof(empty), &pos, &sid, &blob, &blen, &pn,
                                            &err),
                     TE_EPARSE);
    for (size_t cut = 1; cut < rl; cut++) { /* truncations, with names in them */
        int rc;
        pos = 0;
        while ((rc = te_rollup_1m_pack_next(row, cut, &pos, &sid, &blob, &blen, &pn, &err)) > 0)
            ;
        /* whole: the format byte, names without a series yet, the first series */
        if (cut != 1 && cut != 3 && cut != 7 && cut != 19)
            assert_int_equal(rc, TE_EPARSE);
    }
    /* at most TE_ROLLUP_PACK_NAMES names a row */
    unsigned char many[1 + 2 * (TE_ROLLUP_PACK_NAMES + 1)];
    many[0] = 2;
    for (int i = 0; i <= TE_ROLLUP_PACK_NAMES; i++)
        many[1 + 2 * i] = 1 << 1 | 1, many[2 + 2 * i] = 'n';
    pos = 0;
    assert_int_equal(te_rollup_1m_pack_next(many, sizeof(many) - 2, &pos, &sid, &blob, &blen, &pn,
                                            &err),
                     0);
    assert_int_equal(pn.n, TE_ROLLUP_PACK_NAMES);
    pos = 0;
    assert_int_equal(te_rollup_1m_pack_next(many, sizeof(many), &pos, &sid, &blob, &blen, &pn,
                                            &err),
                     TE_EPARSE);
    /* format 1 (rows written before 2026-11-24): series ids untagged */
    const unsigned char f1[] = {1, 7, 3, 1, 2, 3};
    pos = 0;
    assert_int_equal(te_rollup_1m_pack_next(f1, sizeof(f1), &pos, &sid, &blob, &blen, &pn, &err),
                     1);
    assert_true(sid == 7 && blen == 3 && memcmp(blob, a, 3) == 0);
    /* a later format is named as such */
    unsigned char later = 3;
    pos = 0;
    assert_int_equal(te_rollup_1m_pack_next(&later, 1, &pos, &sid, &blob, &blen, &pn, &err),
                     TE_EPARSE);
    assert_non_null(strstr(err.msg, "format 3, newer than this build's 2"));
    unsigned char bad = 0;
    pos = 0;
    assert_int_equal(te_rollup_1m_pack_next(&bad, 1, &pos, &sid, &blob, &blen, &pn, &err),
                     TE_EPARSE);
    assert_non_null(strstr(err.msg, "bad 1-minute row"));
    free(xb);
    free(p.b.p);
}

/* Names shared by the series of a pack row: a sparse kind's rows define
 * each field once; many distinct names start new rows; a series' hour
 * with more names than a row holds writes them itself (version 4). The
 * answers equal raw ones throughout. */
static void test_pack_shared_names(void **state)
{
    fx_t *f = *state;
    te_err_t err = {0};
    char *buf = malloc(16384);
    assert_non_null(buf);
    assert_int_equal(te_store_begin(f->st, &err), 0);
    /* hour 0: 2,000 sparse series of two fields; 600 series of a field
     * each (f0..f599); one series of 400 fields over two events */
    for (int i = 0; i < 2600; i++) {
        int64_t ts = T0 + (int64_t)i * (HOUR / 2600);
        if (i < 2000)
            snprintf(buf, 16384,
                     "{\"kind\":\"llm\",\"ts\":%lld.%09lld,\"tags\":{\"s\":\"s%d\"},"
                     "\"fields\":{\"latency\":%d.5,\"tokens\":%d}}",
                     (long long)(ts / SEC), (long long)(ts % SEC), i, i % 700, i % 50);
        else
            snprintf(buf, 16384,
                     "{\"kind\":\"llm\",\"ts\":%lld.%09lld,\"tags\":{\"s\":\"w%d\"},"
                     "\"fields\":{\"f%d\":%d}}",
                     (long long)(ts / SEC), (long long)(ts % SEC), i, i - 2000, i);
        insert_json(f->st, buf);
    }
    for (int e = 0; e < 2; e++) {
        int64_t ts = T0 + 10 * MIN + e * MIN;
        int n = snprintf(buf, 16384, "{\"kind\":\"llm\",\"ts\":%lld,\"tags\":{\"s\":\"wide\"},"
                                     "\"fields\":{",
                         (long long)(ts / SEC));
        for (int k = 0; k < 200; k++)
            n += snprintf(buf + n, 16384 - (size_t)n, "%s\"%c%d\":%d", k ? "," : "", e ? 'b' : 'a',
                          k, k + e);
        snprintf(buf + n, 16384 - (size_t)n, "}}");
        insert_json(f->st, buf);
    }
    snprintf(buf, 16384, "{\"kind\":\"llm\",\"ts\":%lld,\"tags\":{\"s\":\"late\"}}",
             (long long)((T0 + 3 * HOUR) / SEC));
    insert_json(f->st, buf);
    assert_int_equal(te_store_commit(f->st, &err), 0);
    assert_int_equal(te_store_rollup_sync(f->st, &err), 0);
    /* walk every row: names within the bound, each defined once a row;
     * one version-4 blob (the wide series), the rest version 5 */
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_prepare_v2(f->st->db, "SELECT data FROM rollup_1m", -1, &q, NULL),
                     SQLITE_OK);
    te_rollup_pack_names_t pn;
    int rows = 0, v4 = 0, v5 = 0;
    int64_t events = 0;
    while (sqlite3_step(q) == SQLITE_ROW) {
        const void *data = sqlite3_column_blob(q, 0), *blob;
        size_t dlen = (size_t)sqlite3_column_bytes(q, 0), pos = 0, blen;
        int64_t sid;
        int more;
        rows++;
        while ((more = te_rollup_1m_pack_next(data, dlen, &pos, &sid, &blob, &blen, &pn, &err)) >
               0) {
            int v = ((const unsigned char *)blob)[0];
            v4 += v == 4;
            v5 += v == 5;
            assert_int_equal(te_rollup_1m_each(blob, blen, &pn, count_events, &events, &err), 0);
        }
        assert_int_equal(more, 0);
        assert_true(pn.n <= TE_ROLLUP_PACK_NAMES);
        for (size_t i = 0; i < pn.n; i++)
            for (size_t j = 0; j < i; j++)
                assert_false(pn.len[i] == pn.len[j] &&
                             memcmp(pn.name[i], pn.name[j], pn.len[i]) == 0);
    }
    sqlite3_finalize(q);
    assert_int_equal(events, 2602);
    assert_int_equal(v4, 1);
    assert_int_equal(v5, 2600);
    assert_true(rows >= 3); /* 600 + 2 names: past one row's 256 */
    /* the two-field series: names a few bytes, not ~20 a series */
    assert_true(sql_int(f->st, "SELECT sum(length(data)) FROM rollup_1m") < 2600 * 24);
    static const char *const g_s[] = {"s"};
    static const char *const aggs = "count,sum:latency,p95:latency,sum:tokens,sum:f7,max:f599,"
                                    "sum:a5,sum:b199,min:a0";
    for (int every = 0; every < 2; every++) {
        te_result_t *raw =
            run(f->st, TE_PLAN_RAW, aggs, T0, T0 + HOUR, every ? 20 * MIN : 0, g_s, 1, NULL, 0);
        te_result_t *ru =
            run(f->st, TE_PLAN_ROLLUPS, aggs, T0, T0 + HOUR, every ? 20 * MIN : 0, g_s, 1, NULL, 0);
        assert_true(raw->nrows >= 2601);
        compare(raw, ru, every ? "per series, 20 min" : "per series");
        te_result_free(raw);
        te_result_free(ru);
    }
    free(buf);
}

static void test_quantile_definition(void **state)
{
    (void)state;
    te_sketch_t *sk = te_sketch_new(TE_ROLLUP_ACCURACY, 0, NULL);
    double v[101];
    for (int i = 0; i < 101; i++) {
        v[i] = 1.0 + i * i;
        te_sketch_add(sk, v[i]);
    }
    for (double p = 0; p <= 1.0001; p += 0.01) {
        double pp = p > 1 ? 1 : p, rank = pp * 100, out = 0;
        int lo = (int)floor(rank), hi = (int)ceil(rank);
        double want = v[lo] + (v[hi] - v[lo]) * (rank - lo);
        assert_int_equal(te_rollup_quantile(sk, pp, &out), 0);
        assert_true(fabs(out - want) <= 0.01 * want * (1 + 1e-9));
    }
    /* the planner's accumulator: the blob merged in three parts (a blob,
     * a pair of values, single values) answers within the same bound */
    unsigned char *blob = NULL;
    size_t blen = 0;
    te_sketch_t *part = te_sketch_new(TE_ROLLUP_ACCURACY, 0, NULL);
    for (int i = 0; i < 98; i++)
        te_sketch_add(part, v[i]);
    assert_int_equal(te_sketch_encode(part, &blob, &blen), 0);
    te_qsketch_t *q = te_qsketch_new();
    te_err_t err = {0};
    assert_int_equal(te_qsketch_merge(q, 98, v[0], v[97], blob, blen, &err), 0);
    assert_int_equal(te_qsketch_merge(q, 2, v[98], v[99], NULL, 0, &err), 0);
    assert_int_equal(te_qsketch_add(q, v[100]), 0);
    assert_int_equal(te_qsketch_count(q), 101);
    for (double p = 0; p <= 1.0001; p += 0.01) {
        double pp = p > 1 ? 1 : p, rank = pp * 100, out = 0;
        int lo = (int)floor(rank), hi = (int)ceil(rank);
        double want = v[lo] + (v[hi] - v[lo]) * (rank - lo);
        assert_int_equal(te_qsketch_quantile(q, pp, &out), 0);
        if (fabs(out - want) > 0.01 * want * (1 + 1e-9))
            fail_msg("p %g: %g vs %g", pp, out, want);
    }
    /* a damaged blob is an error, not a crash */
    blob[blen / 2] ^= 0xff;
    te_qsketch_t *q2 = te_qsketch_new();
    blob[4] = 9; /* unknown version */
    assert_int_equal(te_qsketch_merge_blob(q2, blob, blen, &err), TE_EPARSE);
    assert_int_equal(te_qsketch_merge_blob(q2, blob, 10, &err), TE_EPARSE);
    te_qsketch_free(q2);
    free(blob);
    te_qsketch_free(q);
    te_sketch_free(part);
    te_sketch_free(sk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rollup_equals_raw, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollups_are_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catch_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_builder_trust, setup, teardown),
        cmocka_unit_test_setup_teardown(test_archive_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollup_expire, setup, teardown),
        cmocka_unit_test_setup_teardown(test_builder_bound_in_one_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema5_conversion, setup, teardown),
        cmocka_unit_test_setup_teardown(test_builder_lost_hours, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_series_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_lag, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sparse_mixed_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_1h_row_format, setup, teardown),
        cmocka_unit_test(test_1m_pack_format),
        cmocka_unit_test_setup_teardown(test_pack_shared_names, setup, teardown),
        cmocka_unit_test(test_quantile_definition),
        cmocka_unit_test(test_cell_values_round_trip),
        cmocka_unit_test(test_1m_v3_format),
        cmocka_unit_test(test_1m_v4_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
