/*
 * it_cli.c - the command line of the real binary (SPEC section 4): ingest
 * (files, stdin, per-line errors, exit codes), events in every format, query
 * JSON equal to HTTP /v1/query, db stats/check/backup (while serving and
 * being posted to), version, --help, usage errors.
 *
 * THREAD: main + the harness's poster threads.
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

#include <cmocka.h>

#include "harness.h"

typedef struct cli_run {
    int rc;
    char *out, *err;
} cli_run_t;

static cli_run_t cli(const char *stdin_data, size_t len, const char *const *args)
{
    cli_run_t r = {0};
    r.rc = te_it_run_cli(args, stdin_data, len, &r.out, &r.err);
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

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Count of kind in the last 30 days via `query --format json`. */
static long cli_count(const char *data, const char *kind)
{
    const char *const args[] = {"query", "--data", data, "--kind", kind, "--since", "30d",
                                "--agg", "count", "--format", "json", NULL};
    cli_run_t r = cli(NULL, 0, args);
    expect_rc(&r, 0);
    cJSON *j = cJSON_Parse(r.out);
    assert_non_null(j);
    cJSON *c = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "rows"), 0), "count");
    long n = cJSON_IsNumber(c) ? (long)c->valuedouble : -1;
    cJSON_Delete(j);
    cli_free(&r);
    return n;
}

static void ingest_file_reports_bad_lines_and_stores_good_ones(void **state)
{
    (void)state;
    te_it_srv_t s;
    assert_int_equal(te_it_init(&s), 0);
    size_t glen;
    char *gen = te_it_gen("--count 60 --seed 11 --kinds llm_call --rate 10", &glen);
    assert_non_null(gen);
    /* lines 3 and 10 are bad (1-based), 60 good lines around them */
    te_it_str_t f = {0};
    int line = 0;
    for (char *p = gen; *p;) {
        char *nl = strchr(p, '\n');
        line++;
        if (line == 3)
            te_it_str_add(&f, "{\"kind\":\"llm_call\",\"fields\":{\"latency_ms\":\"fast\"}}\n");
        if (line == 9)
            te_it_str_add(&f, "not json\n");
        te_it_str_addn(&f, p, (size_t)(nl - p + 1));
        p = nl + 1;
    }
    free(gen);
    char path[512];
    assert_int_equal(te_it_write_file(&s, "calls.ndjson", f.p, f.len, path, sizeof(path)), 0);
    te_it_str_free(&f);

    const char *const args[] = {"ingest", "--data", s.data, path, NULL};
    cli_run_t r = cli(NULL, 0, args);
    expect_rc(&r, 1);
    assert_non_null(strstr(r.out, "accepted 60, rejected 2"));
    char want[600];
    snprintf(want, sizeof(want), "%s:3: ", path);
    assert_non_null(strstr(r.err, want));
    snprintf(want, sizeof(want), "%s:10: ", path);
    assert_non_null(strstr(r.err, want));
    assert_non_null(strstr(r.err, "latency_ms"));
    cli_free(&r);
    assert_int_equal(cli_count(s.data, "llm_call"), 60);

    /* --data after the file, a clean file: exit 0 */
    const char clean[] = "{\"kind\":\"clean\",\"fields\":{\"x\":1}}\n{\"kind\":\"clean\"}\n";
    assert_int_equal(te_it_write_file(&s, "clean.ndjson", clean, strlen(clean), path,
                                      sizeof(path)), 0);
    const char *const args2[] = {"ingest", path, "--data", s.data, NULL};
    r = cli(NULL, 0, args2);
    expect_rc(&r, 0);
    assert_non_null(strstr(r.out, "accepted 2, rejected 0"));
    cli_free(&r);

    /* a missing file is a runtime failure naming the file */
    const char *const args3[] = {"ingest", "--data", s.data, "/nonexistent/x.ndjson", NULL};
    r = cli(NULL, 0, args3);
    expect_rc(&r, 1);
    assert_non_null(strstr(r.err, "/nonexistent/x.ndjson"));
    cli_free(&r);
    te_it_cleanup(&s);
}

static void ingest_stdin_with_kind_default(void **state)
{
    (void)state;
    te_it_srv_t s;
    assert_int_equal(te_it_init(&s), 0);
    const char in[] = "{\"fields\":{\"x\":1}}\n{\"fields\":{\"x\":2}}\n{\"kind\":\"other\"}\n";
    const char *const args[] = {"ingest", "--data", s.data, "--kind", "fromstdin", "-", NULL};
    cli_run_t r = cli(in, strlen(in), args);
    expect_rc(&r, 0);
    assert_non_null(strstr(r.out, "accepted 3, rejected 0"));
    cli_free(&r);
    assert_int_equal(cli_count(s.data, "fromstdin"), 2);
    assert_int_equal(cli_count(s.data, "other"), 1);
    te_it_cleanup(&s);
}

static void events_prints_table_json_and_csv(void **state)
{
    (void)state;
    te_it_srv_t s;
    assert_int_equal(te_it_init(&s), 0);
    size_t glen;
    char *gen = te_it_gen("--count 40 --seed 3 --kinds selector_op --rate 100", &glen);
    assert_non_null(gen);
    const char *const ia[] = {"ingest", "--data", s.data, "-", NULL};
    cli_run_t r = cli(gen, glen, ia);
    expect_rc(&r, 0);
    cli_free(&r);
    free(gen);

    const char *const js[] = {"events", "--data", s.data, "--kind", "selector_op", "--limit",
                              "5", "--format", "json", NULL};
    r = cli(NULL, 0, js);
    expect_rc(&r, 0);
    /* one JSON document: {"events":[...]} like GET /v1/events, or an array,
     * or NDJSON: accept each, count 5 events of the right kind */
    int n = 0;
    cJSON *j = cJSON_Parse(r.out);
    cJSON *arr = cJSON_IsArray(j) ? j : cJSON_GetObjectItemCaseSensitive(j, "events");
    if (arr) {
        cJSON *ev;
        cJSON_ArrayForEach(ev, arr)
        {
            assert_string_equal(cJSON_GetObjectItemCaseSensitive(ev, "kind")->valuestring,
                                "selector_op");
            n++;
        }
    } else {
        for (char *p = r.out; *p;) {
            char *nl = strchr(p, '\n');
            if (nl)
                *nl = '\0';
            cJSON *ev = cJSON_Parse(p);
            assert_non_null(ev);
            n++;
            cJSON_Delete(ev);
            p = nl ? nl + 1 : p + strlen(p);
        }
    }
    cJSON_Delete(j);
    assert_int_equal(n, 5);
    cli_free(&r);

    const char *const csv[] = {"events", "--data", s.data, "--kind", "selector_op", "--limit",
                               "7", "--format", "csv", NULL};
    r = cli(NULL, 0, csv);
    expect_rc(&r, 0);
    assert_int_equal(count_lines(r.out), 8);
    assert_non_null(strstr(r.out, "selector_op"));
    cli_free(&r);

    const char *const tab[] = {"events", "--data", s.data, "--kind", "selector_op", "--limit",
                               "4", NULL};
    r = cli(NULL, 0, tab);
    expect_rc(&r, 0);
    assert_true(count_lines(r.out) >= 5);
    assert_non_null(strstr(r.out, "selector_op"));
    cli_free(&r);

    const char *const bad[] = {"events", "--data", s.data, "--format", "xml", NULL};
    r = cli(NULL, 0, bad);
    expect_rc(&r, 2);
    assert_true(strlen(r.err) > 0);
    cli_free(&r);
    te_it_cleanup(&s);
}

static void query_json_equals_http_and_db_commands_work(void **state)
{
    (void)state;
    te_it_srv_t s;
    assert_int_equal(te_it_start_fresh(&s, NULL), 0);
    size_t glen;
    char *gen = te_it_gen("--count 2000 --seed 9 --kinds llm_call,host_sample --rate 20", &glen);
    assert_non_null(gen);
    te_it_resp_t hr;
    assert_int_equal(te_it_post(&s, gen, glen, &hr), 0);
    assert_int_equal(hr.status, 200);
    te_it_resp_free(&hr);
    free(gen);

    cJSON *http = te_it_get_json(&s, "/v1/query?kind=llm_call&since=2h&group_by=provider,tier&"
                                     "agg=count,sum:cost_usd,avg:latency_ms,p95:latency_ms,"
                                     "max:output_tokens,distinct:model");
    assert_non_null(http);
    const char *const qa[] = {"query", "--data", s.data, "--kind", "llm_call", "--since", "2h",
                              "--group-by", "provider,tier", "--agg",
                              "count,sum:cost_usd,avg:latency_ms,p95:latency_ms,"
                              "max:output_tokens,distinct:model",
                              "--format", "json", NULL};
    cli_run_t r = cli(NULL, 0, qa);
    expect_rc(&r, 0);
    cJSON *clij = cJSON_Parse(r.out);
    assert_non_null(clij);
    if (!cJSON_Compare(http, clij, 1)) {
        char *a = cJSON_PrintUnformatted(http), *b = cJSON_PrintUnformatted(clij);
        fprintf(stderr, "HTTP: %.2000s\nCLI:  %.2000s\n", a, b);
        free(a);
        free(b);
        fail_msg("query --format json differs from GET /v1/query");
    }
    assert_true(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(http, "rows")) >= 4);
    cJSON_Delete(clij);
    cJSON_Delete(http);
    cli_free(&r);

    /* every=1m through the CLI has "time" first */
    const char *const qe[] = {"query", "--data", s.data, "--kind", "host_sample", "--since",
                              "2h", "--every", "1m", "--agg", "avg:cpu_pct", "--format",
                              "json", NULL};
    r = cli(NULL, 0, qe);
    expect_rc(&r, 0);
    assert_non_null(strstr(r.out, "\"columns\":[\"time\",\"avg:cpu_pct\"]"));
    cli_free(&r);

    const char *const st[] = {"db", "stats", "--data", s.data, NULL};
    r = cli(NULL, 0, st);
    expect_rc(&r, 0);
    assert_non_null(strstr(r.out, "llm_call"));
    assert_non_null(strstr(r.out, "2000"));
    cli_free(&r);

    const char *const ck[] = {"db", "check", "--data", s.data, NULL};
    r = cli(NULL, 0, ck);
    expect_rc(&r, 0);
    cli_free(&r);

    /* db backup while serving and being posted to */
    te_it_load_t *l = te_it_load_start(&s, "bk", 2, 200);
    assert_true(te_it_load_wait_acked(l, 5, 20000) >= 5);
    int a0 = te_it_load_acked(l);
    char bdir[600], bfile[700];
    snprintf(bdir, sizeof(bdir), "%s/restore", s.root);
    assert_int_equal(mkdir(bdir, 0700), 0);
    snprintf(bfile, sizeof(bfile), "%s/telemetry.db", bdir);
    const char *const bk[] = {"db", "backup", bfile, "--data", s.data, NULL};
    r = cli(NULL, 0, bk);
    int a1 = te_it_load_acked(l);
    te_it_load_stop(l);
    expect_rc(&r, 0);
    cli_free(&r);
    const char *const ck2[] = {"db", "check", "--data", bdir, NULL};
    r = cli(NULL, 0, ck2);
    expect_rc(&r, 0);
    cli_free(&r);
    long n = cli_count(bdir, "bk");
    fprintf(stderr, "backup holds %ld bk events; %d batches acked before, %d after\n", n, a0, a1);
    assert_true(n >= (long)a0 * 200 && n <= (long)(a1 + 2) * 200);
    assert_int_equal(cli_count(bdir, "llm_call") + cli_count(bdir, "host_sample"), 2000);
    /* backing up again over an existing file replaces it (as cp does) */
    r = cli(NULL, 0, bk);
    expect_rc(&r, 0);
    cli_free(&r);
    r = cli(NULL, 0, ck2);
    expect_rc(&r, 0);
    cli_free(&r);

    assert_int_equal(te_it_stop(&s, SIGTERM, 10000), 0);
    te_it_load_free(l);
    te_it_cleanup(&s);
}

static void version_help_and_usage_errors(void **state)
{
    (void)state;
    const char *const v[] = {"version", NULL};
    cli_run_t r = cli(NULL, 0, v);
    expect_rc(&r, 0);
    assert_non_null(strstr(r.out, "0.1.0"));
    cli_free(&r);

    const char *const h[] = {"--help", NULL};
    r = cli(NULL, 0, h);
    expect_rc(&r, 0);
    assert_non_null(strstr(r.out, "ingest"));
    cli_free(&r);

    static const char *const cmds[] = {"serve", "ingest", "events", "query", "db", "version"};
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        const char *const ch[] = {cmds[i], "--help", NULL};
        r = cli(NULL, 0, ch);
        expect_rc(&r, 0);
        assert_true(strlen(r.out) > 10);
        cli_free(&r);
    }

    const char *const unk[] = {"frobnicate", NULL};
    r = cli(NULL, 0, unk);
    expect_rc(&r, 2);
    assert_non_null(strstr(r.err, "frobnicate"));
    cli_free(&r);

    const char *const flag[] = {"events", "--bogus", NULL};
    r = cli(NULL, 0, flag);
    expect_rc(&r, 2);
    assert_non_null(strstr(r.err, "--bogus"));
    cli_free(&r);

    const char *const noarg[] = {"query", "--data", "/tmp", "--kind", NULL};
    r = cli(NULL, 0, noarg);
    expect_rc(&r, 2);
    cli_free(&r);

    const char *const none[] = {NULL};
    r = cli(NULL, 0, none);
    expect_rc(&r, 2);
    cli_free(&r);

    const char *const baddb[] = {"db", "frob", NULL};
    r = cli(NULL, 0, baddb);
    expect_rc(&r, 2);
    cli_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ingest_file_reports_bad_lines_and_stores_good_ones),
        cmocka_unit_test(ingest_stdin_with_kind_default),
        cmocka_unit_test(events_prints_table_json_and_csv),
        cmocka_unit_test(query_json_equals_http_and_db_commands_work),
        cmocka_unit_test(version_help_and_usage_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
