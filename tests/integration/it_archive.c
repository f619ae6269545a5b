/*
 * it_archive.c - retention and archive on the real binary (SPEC 4 `db
 * archive`, 6.0 storage.retention, 9): old-dated events ingested, `db
 * archive --before 30d` writes one gzip NDJSON file per kind and day and
 * deletes the rows, queries still answer from rollups, `ingest FILE.gz`
 * brings the rows back without counting them twice in the rollups; and the
 * automatic retention pass of `serve` does the same from telemetry.lua.
 *
 * THREAD: main only.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "harness.h"

#define DAY_S 86400

typedef struct cli_run {
    int rc;
    char *out, *err;
} cli_run_t;

static cli_run_t cli(const char *const *args)
{
    cli_run_t r = {0};
    r.rc = te_it_run_cli(args, NULL, 0, &r.out, &r.err);
    return r;
}

static void cli_free(cli_run_t *r)
{
    free(r->out);
    free(r->err);
}

static void expect_rc(const cli_run_t *r, int want)
{
    if (r->rc != want)
        fprintf(stderr, "exit %d, wanted %d\nstdout:\n%s\nstderr:\n%s\n", r->rc, want, r->out,
                r->err);
    assert_int_equal(r->rc, want);
}

/* events stored (raw rows), from `db stats --format json` */
static long raw_events(const char *data)
{
    const char *const a[] = {"db", "stats", "--data", data, "--format", "json", NULL};
    cli_run_t r = cli(a);
    expect_rc(&r, 0);
    cJSON *j = cJSON_Parse(r.out);
    assert_non_null(j);
    long n = (long)cJSON_GetObjectItemCaseSensitive(j, "events")->valuedouble;
    cJSON_Delete(j);
    cli_free(&r);
    return n;
}

/* `query --agg AGG --since 60d` row 0 value of AGG */
static double query_one(const char *data, const char *agg)
{
    const char *const a[] = {"query", "--data", data, "--kind", "llm_call", "--since", "60d",
                             "--agg", agg, "--format", "json", NULL};
    cli_run_t r = cli(a);
    expect_rc(&r, 0);
    cJSON *j = cJSON_Parse(r.out);
    assert_non_null(j);
    cJSON *v = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "rows"), 0), agg);
    double d = cJSON_IsNumber(v) ? v->valuedouble : -1;
    cJSON_Delete(j);
    cli_free(&r);
    return d;
}

/* NDJSON: per day d in days[] n events at noon UTC + i seconds, plus 5
 * recent ones. Returns the number of events older than 30 days in *old. */
static char *make_events(time_t now, long *total, long *old, time_t *old_day)
{
    static const int days[] = {40, 35, 2};
    te_it_str_t b = {0};
    long n = 0, o = 0;
    for (size_t d = 0; d < sizeof(days) / sizeof(days[0]); d++) {
        time_t noon = (now / DAY_S - days[d]) * DAY_S + 12 * 3600;
        if (d == 0)
            *old_day = noon;
        for (int i = 0; i < 50; i++) {
            te_it_str_add(&b,
                          "{\"ts\":%lld,\"kind\":\"llm_call\",\"source\":\"t\",\"id\":\"e%d-%d\","
                          "\"tags\":{\"model\":\"m%d\"},\"fields\":{\"latency_ms\":%d,"
                          "\"cost_usd\":0.5},\"body\":{\"note\":\"x\\u00e9\"}}\n",
                          (long long)(noon + i * 7), (int)d, i, i % 3, 100 + i);
            n++;
            o += days[d] > 30;
        }
    }
    *total = n;
    *old = o;
    return b.p;
}

static long gz_lines(const char *path, const char *must_contain)
{
    gzFile gz = gzopen(path, "rb");
    if (!gz)
        return -1;
    char line[8192];
    long n = 0;
    while (gzgets(gz, line, sizeof(line))) {
        cJSON *j = cJSON_Parse(line);
        assert_non_null(j);
        assert_non_null(strstr(line, must_contain));
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "kind")->valuestring, "llm_call");
        cJSON_Delete(j);
        n++;
    }
    gzclose(gz);
    return n;
}

static void day_file(const char *dir, time_t day, char *out, size_t n)
{
    struct tm tm;
    gmtime_r(&day, &tm);
    snprintf(out, n, "%s/llm_call/%04d-%02d-%02d.ndjson.gz", dir, tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday);
}

static void cli_archive_and_reingest(void **state)
{
    (void)state;
    te_it_srv_t s;
    assert_int_equal(te_it_init(&s), 0);
    time_t now = time(NULL), old_day;
    long total, old;
    char *nd = make_events(now, &total, &old, &old_day);
    char path[512];
    assert_int_equal(te_it_write_file(&s, "ev.ndjson", nd, strlen(nd), path, sizeof(path)), 0);
    free(nd);
    const char *const in[] = {"ingest", "--data", s.data, path, NULL};
    cli_run_t r = cli(in);
    expect_rc(&r, 0);
    cli_free(&r);
    assert_int_equal(raw_events(s.data), total);
    double sum0 = query_one(s.data, "sum:latency_ms");
    assert_true(query_one(s.data, "count") == (double)total);

    /* usage errors */
    const char *const bad1[] = {"db", "archive", "--data", s.data, NULL};
    r = cli(bad1);
    expect_rc(&r, 2);
    assert_non_null(strstr(r.err, "--before"));
    cli_free(&r);
    const char *const bad2[] = {"db", "archive", "--before", "soon", "--data", s.data, NULL};
    r = cli(bad2);
    expect_rc(&r, 2);
    cli_free(&r);

    char adir[512];
    snprintf(adir, sizeof(adir), "%s/arch", s.root);
    const char *const ar[] = {"db", "archive", "--before", "30d", "--to", adir, "--data", s.data,
                              NULL};
    r = cli(ar);
    expect_rc(&r, 0);
    char want[64];
    snprintf(want, sizeof(want), "archived %ld events", old);
    assert_non_null(strstr(r.out, want));
    cli_free(&r);
    assert_int_equal(raw_events(s.data), total - old);
    /* rollups keep the aggregates of what was archived */
    assert_true(query_one(s.data, "count") == (double)total);
    assert_true(query_one(s.data, "sum:latency_ms") == sum0);

    char f40[600], f35[600];
    day_file(adir, old_day, f40, sizeof(f40));
    day_file(adir, old_day + 5 * DAY_S, f35, sizeof(f35));
    assert_int_equal(gz_lines(f40, "\"latency_ms\":"), 50);
    assert_int_equal(gz_lines(f35, "\"body\":{\"note\":"), 50);

    /* again: nothing left to archive */
    r = cli(ar);
    expect_rc(&r, 0);
    assert_non_null(strstr(r.out, "archived 0 events"));
    cli_free(&r);

    /* re-ingest both files: rows back, rollups not counted twice */
    const char *const re[] = {"ingest", "--data", s.data, f40, f35, NULL};
    r = cli(re);
    expect_rc(&r, 0);
    assert_non_null(strstr(r.out, "accepted 100"));
    cli_free(&r);
    assert_int_equal(raw_events(s.data), total);
    assert_true(query_one(s.data, "count") == (double)total);
    assert_true(query_one(s.data, "sum:latency_ms") == sum0);
    /* same ids: a second ingest stores nothing new */
    r = cli(re);
    expect_rc(&r, 0);
    cli_free(&r);
    assert_int_equal(raw_events(s.data), total);

    /* a truncated gzip file is an error naming the file */
    FILE *f = fopen(f40, "rb");
    assert_non_null(f);
    char buf[4096];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    assert_true(n > 40);
    assert_int_equal(te_it_write_file(&s, "cut.gz", buf, n / 2, path, sizeof(path)), 0);
    const char *const cut[] = {"ingest", "--data", s.data, path, NULL};
    r = cli(cut);
    expect_rc(&r, 1);
    assert_non_null(strstr(r.err, "cut.gz"));
    cli_free(&r);
    te_it_cleanup(&s);
}

/* serve with storage.retention.raw = "30d": its first pass archives. */
static void serve_retention_pass(void **state)
{
    (void)state;
    te_it_srv_t s;
    assert_int_equal(te_it_init(&s), 0);
    time_t now = time(NULL), old_day;
    long total, old;
    char *nd = make_events(now, &total, &old, &old_day);
    char path[512];
    assert_int_equal(te_it_write_file(&s, "ev.ndjson", nd, strlen(nd), path, sizeof(path)), 0);
    free(nd);
    const char *const in[] = {"ingest", "--data", s.data, path, NULL};
    cli_run_t r = cli(in);
    expect_rc(&r, 0);
    cli_free(&r);
    const char *conf = "storage { retention = { raw = \"30d\", [\"1m\"] = \"90d\","
                       " [\"1h\"] = \"400d\" } }\n";
    char cpath[512];
    assert_int_equal(te_it_write_file(&s, "telemetry.lua", conf, strlen(conf), cpath,
                                      sizeof(cpath)),
                     0);
    const char *const extra[] = {"--config", cpath, NULL};
    assert_int_equal(te_it_start(&s, extra), 0);
    char adir[512], f40[600];
    snprintf(adir, sizeof(adir), "%s/archive", s.data);
    day_file(adir, old_day, f40, sizeof(f40));
    /* wait (deadline 20 s) until the raw rows older than 30 days are gone */
    char q[256];
    snprintf(q, sizeof(q), "/v1/events?kind=llm_call&since=%lld&until=%lld&limit=1000",
             (long long)(now - 60 * DAY_S), (long long)(now - 30 * DAY_S));
    int left = -1;
    for (int64_t end = te_it_now_ms() + 20000; te_it_now_ms() < end;) {
        cJSON *j = te_it_get_json(&s, q);
        assert_non_null(j);
        left = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "events"));
        cJSON_Delete(j);
        if (left == 0)
            break;
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (left != 0)
        te_it_dump_log(&s);
    assert_int_equal(left, 0);
    assert_int_equal(gz_lines(f40, "\"kind\":\"llm_call\""), 50);
    /* the recent events stay; the aggregate still counts everything */
    cJSON *j = te_it_get_json(&s, "/v1/query?kind=llm_call&agg=count&since=60d");
    assert_non_null(j);
    cJSON *c = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "rows"), 0), "count");
    assert_true(cJSON_IsNumber(c) && c->valuedouble == (double)total);
    cJSON_Delete(j);
    assert_int_equal(te_it_stop(&s, SIGTERM, 10000), 0);
    assert_int_equal(raw_events(s.data), total - old);
    te_it_cleanup(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cli_archive_and_reingest),
        cmocka_unit_test(serve_retention_pass),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
