/*
 * it_report.c - reports on the real binary (SPEC 4 `report`, 5
 * GET /v1/reports/{name}, 6.5): generated events are posted, every shipped
 * template runs in every format through the CLI and HTTP, and the numbers
 * (total LLM cost, calls, success rate, selector operations, runs) are
 * checked against a computation made here from the generated lines.
 * Also: unknown names (404 / exit 2 with a suggestion), bad parameters,
 * a template that raises (500 / exit 1 with file:line), and hot reload of
 * an edited template without a restart.
 *
 * THREAD: main.
 */
#define _GNU_SOURCE
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>

#include "harness.h"

static const char *const REPORTS[] = {"overview", "selectors", "runs", "health", "alerts"};
static const char *const FORMATS[] = {"md", "html", "json", "csv"};

typedef struct expect {
    long llm_calls, llm_ok, selector_ops, runs;
    double cost;
} expect_t;

typedef struct fixture {
    te_it_srv_t srv;
    char scripts[512];
    expect_t want;
} fixture_t;

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    if (p)
        p[n] = '\0';
    fclose(f);
    return p;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* The numbers the reports must show, from the NDJSON lines themselves. */
static void compute(const char *ndjson, expect_t *e)
{
    memset(e, 0, sizeof(*e));
    cJSON *seen_runs = cJSON_CreateObject();
    for (const char *p = ndjson; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        cJSON *ev = cJSON_ParseWithLength(p, len);
        assert_non_null(ev);
        const char *kind = cJSON_GetStringValue(cJSON_GetObjectItem(ev, "kind"));
        cJSON *tags = cJSON_GetObjectItem(ev, "tags"), *fields = cJSON_GetObjectItem(ev, "fields");
        if (strcmp(kind, "llm_call") == 0) {
            e->llm_calls++;
            e->cost += cJSON_GetNumberValue(cJSON_GetObjectItem(fields, "cost_usd"));
            if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(tags, "status")), "ok") == 0)
                e->llm_ok++;
        } else if (strcmp(kind, "selector_op") == 0) {
            e->selector_ops++;
        } else if (strcmp(kind, "run") == 0) {
            const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(tags, "run_id"));
            if (!cJSON_GetObjectItem(seen_runs, id)) {
                cJSON_AddTrueToObject(seen_runs, id);
                e->runs++;
            }
        }
        cJSON_Delete(ev);
        p = nl ? nl + 1 : p + len;
    }
    cJSON_Delete(seen_runs);
}

static void copy_template(const char *src_root, const char *dst_dir, const char *name)
{
    char src[1024], dst[1024];
    snprintf(src, sizeof(src), "%s/lua/reports/%s.lua", src_root, name);
    snprintf(dst, sizeof(dst), "%s/%s.lua", dst_dir, name);
    char *text = read_file(src);
    assert_non_null(text);
    write_text(dst, text);
    free(text);
}

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    assert_int_equal(te_it_init(&fx->srv), 0);
    /* ROOT/lua/reports: the shipped templates plus the test's own */
    char reports[600];
    snprintf(fx->scripts, sizeof(fx->scripts), "%s/lua", fx->srv.root);
    snprintf(reports, sizeof(reports), "%s/reports", fx->scripts);
    assert_int_equal(mkdir(fx->scripts, 0755), 0);
    assert_int_equal(mkdir(reports, 0755), 0);
    const char *src_root = getenv("TE_SOURCE_DIR");
    assert_non_null(src_root);
    for (size_t i = 0; i < sizeof(REPORTS) / sizeof(REPORTS[0]); i++)
        copy_template(src_root, reports, REPORTS[i]);
    const char *const extra[] = {"--scripts", fx->scripts, NULL};
    assert_int_equal(te_it_start(&fx->srv, extra), 0);

    size_t len = 0;
    char *gen = te_it_gen("--count 4000 --seed 5 --rate 2", &len);
    assert_non_null(gen);
    compute(gen, &fx->want);
    te_it_resp_t resp;
    assert_int_equal(te_it_post(&fx->srv, gen, len, &resp), 0);
    assert_int_equal(resp.status, 200);
    assert_non_null(strstr(resp.body, "\"accepted\":4000"));
    te_it_resp_free(&resp);
    free(gen);
    assert_true(fx->want.llm_calls > 100 && fx->want.runs > 5 && fx->want.selector_ops > 100);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    te_it_cleanup(&fx->srv);
    free(fx);
    return 0;
}

/* The value of stat `label` in a JSON report document. */
static double stat_value(const cJSON *doc, const char *label)
{
    const cJSON *b;
    cJSON_ArrayForEach(b, cJSON_GetObjectItem(doc, "blocks")) {
        const char *l = cJSON_GetStringValue(cJSON_GetObjectItem(b, "label"));
        if (l && strcmp(l, label) == 0) {
            const cJSON *v = cJSON_GetObjectItem(b, "value");
            assert_true(cJSON_IsNumber(v));
            return v->valuedouble;
        }
    }
    fail_msg("no stat \"%s\" in the report", label);
    return NAN;
}

static cJSON *cli_json(const fixture_t *fx, const char *name)
{
    const char *const args[] = {"report", name, "--data", fx->srv.data, "--scripts",
                                fx->scripts, "--since", "7d", "--format", "json", NULL};
    char *out = NULL, *err = NULL;
    int rc = te_it_run_cli(args, NULL, 0, &out, &err);
    if (rc != 0)
        fprintf(stderr, "report %s: exit %d\n%s\n", name, rc, err);
    assert_int_equal(rc, 0);
    cJSON *doc = cJSON_Parse(out);
    assert_non_null(doc);
    free(out);
    free(err);
    return doc;
}

static cJSON *http_json(const fixture_t *fx, const char *name)
{
    char path[256];
    snprintf(path, sizeof(path), "/v1/reports/%s?since=7d&format=json", name);
    cJSON *doc = te_it_get_json(&fx->srv, path);
    assert_non_null(doc);
    return doc;
}

static void check_numbers(const fixture_t *fx, cJSON *overview, cJSON *selectors, cJSON *runs)
{
    const expect_t *w = &fx->want;
    assert_true(fabs(stat_value(overview, "Total cost") - w->cost) < 1e-6);
    assert_int_equal((long)stat_value(overview, "Calls"), w->llm_calls);
    double rate = (double)w->llm_ok / (double)w->llm_calls;
    assert_true(fabs(stat_value(overview, "Success rate") - rate) < 1e-9);
    assert_int_equal((long)stat_value(selectors, "Selector operations"), w->selector_ops);
    assert_int_equal((long)stat_value(runs, "Runs seen"), w->runs);
}

static void reports_show_the_independently_computed_numbers(void **state)
{
    fixture_t *fx = *state;
    cJSON *o = cli_json(fx, "overview"), *s = cli_json(fx, "selectors"), *r = cli_json(fx, "runs");
    check_numbers(fx, o, s, r);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(o, "title")),
                        "LLM usage overview");
    cJSON_Delete(o);
    cJSON_Delete(s);
    cJSON_Delete(r);
    o = http_json(fx, "overview");
    s = http_json(fx, "selectors");
    r = http_json(fx, "runs");
    check_numbers(fx, o, s, r);
    cJSON_Delete(o);
    cJSON_Delete(s);
    cJSON_Delete(r);
}

static void every_report_renders_in_every_format(void **state)
{
    fixture_t *fx = *state;
    static const char *const ctypes[] = {"text/markdown", "text/html", "application/json",
                                         "text/csv"};
    for (size_t i = 0; i < sizeof(REPORTS) / sizeof(REPORTS[0]); i++) {
        for (size_t f = 0; f < 4; f++) {
            const char *const args[] = {"report", REPORTS[i], "--data", fx->srv.data,
                                        "--scripts", fx->scripts, "--format", FORMATS[f], NULL};
            char *out = NULL, *err = NULL;
            int rc = te_it_run_cli(args, NULL, 0, &out, &err);
            if (rc != 0)
                fprintf(stderr, "report %s --format %s: exit %d\n%s\n", REPORTS[i], FORMATS[f],
                        rc, err);
            assert_int_equal(rc, 0);
            assert_true(strlen(out) > 20);
            if (f == 1) {
                assert_non_null(strstr(out, "<!DOCTYPE html>"));
                assert_non_null(strstr(out, "</html>"));
                assert_null(strstr(out, "<script"));
            }
            free(out);
            free(err);

            char path[256];
            snprintf(path, sizeof(path), "/v1/reports/%s?since=2d&format=%s", REPORTS[i],
                     FORMATS[f]);
            te_it_resp_t resp;
            assert_int_equal(te_it_http(&fx->srv, "GET", path, NULL, 0, NULL, &resp), 0);
            if (resp.status != 200)
                fprintf(stderr, "GET %s: %ld %s\n", path, resp.status, resp.body);
            assert_int_equal(resp.status, 200);
            assert_non_null(strcasestr(resp.headers, ctypes[f]));
            assert_true(resp.len > 20);
            te_it_resp_free(&resp);
        }
    }
    /* -o picks the format from the extension */
    char file[600];
    snprintf(file, sizeof(file), "%s/out.html", fx->srv.root);
    const char *const args[] = {"report", "alerts", "--data", fx->srv.data, "--scripts",
                                fx->scripts, "-o", file, NULL};
    assert_int_equal(te_it_run_cli(args, NULL, 0, NULL, NULL), 0);
    char *html = read_file(file);
    assert_non_null(html);
    assert_non_null(strstr(html, "<!DOCTYPE html>"));
    free(html);
}

static void listing_and_unknown_names(void **state)
{
    fixture_t *fx = *state;
    cJSON *list = te_it_get_json(&fx->srv, "/v1/reports");
    assert_non_null(list);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(list, "reports")), 5);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(
                            cJSON_GetArrayItem(cJSON_GetObjectItem(list, "reports"), 0), "name")),
                        "alerts");
    cJSON_Delete(list);

    te_it_resp_t resp;
    assert_int_equal(te_it_http(&fx->srv, "GET", "/v1/reports/ovrview", NULL, 0, NULL, &resp), 0);
    assert_int_equal(resp.status, 404);
    assert_non_null(strstr(resp.body, "did you mean \\\"overview\\\""));
    te_it_resp_free(&resp);
    assert_int_equal(te_it_http(&fx->srv, "GET", "/v1/reports/overview?param.tpo=3", NULL, 0,
                                NULL, &resp), 0);
    assert_int_equal(resp.status, 400);
    assert_non_null(strstr(resp.body, "did you mean \\\"top\\\""));
    te_it_resp_free(&resp);
    assert_int_equal(te_it_http(&fx->srv, "GET", "/v1/reports/overview?since=soon", NULL, 0,
                                NULL, &resp), 0);
    assert_int_equal(resp.status, 400);
    te_it_resp_free(&resp);
    assert_int_equal(te_it_http(&fx->srv, "GET", "/v1/reports/overview?format=pdf", NULL, 0,
                                NULL, &resp), 0);
    assert_int_equal(resp.status, 400);
    te_it_resp_free(&resp);

    const char *const args[] = {"report", "ovrview", "--data", fx->srv.data, "--scripts",
                                fx->scripts, NULL};
    char *out = NULL, *err = NULL;
    assert_int_equal(te_it_run_cli(args, NULL, 0, &out, &err), 2);
    assert_non_null(strstr(err, "unknown report \"ovrview\" (did you mean \"overview\"?); "
                                "available: alerts, health, overview, runs, selectors"));
    free(out);
    free(err);
}

static void edited_template_applies_without_restart(void **state)
{
    fixture_t *fx = *state;
    char path[700];
    snprintf(path, sizeof(path), "%s/reports/custom.lua", fx->scripts);
    write_text(path, "local te = require \"te\"\n"
                     "te.report { name = \"custom\", title = \"Custom v1\",\n"
                     "  render = function(q, r, params)\n"
                     "    local n = q.query { kind = \"llm_call\" }[1].count\n"
                     "    r:stat { label = \"calls\", value = n }\n"
                     "  end }\n");
    cJSON *doc = http_json(fx, "custom");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(doc, "title")), "Custom v1");
    assert_int_equal((long)stat_value(doc, "calls"), fx->want.llm_calls);
    cJSON_Delete(doc);

    write_text(path, "local te = require \"te\"\n"
                     "te.report { name = \"custom\", title = \"Custom v2\",\n"
                     "  render = function(q, r, params)\n"
                     "    r:text(\"edited\")\n"
                     "    local x = nil\n"
                     "    return x.field\n"
                     "  end }\n");
    te_it_resp_t resp;
    assert_int_equal(te_it_http(&fx->srv, "GET", "/v1/reports/custom?format=md", NULL, 0, NULL,
                                &resp), 0);
    assert_int_equal(resp.status, 500);
    assert_non_null(strstr(resp.body, "custom.lua:6: attempt to index a nil value"));
    te_it_resp_free(&resp);

    const char *const args[] = {"report", "custom", "--data", fx->srv.data, "--scripts",
                                fx->scripts, NULL};
    char *out = NULL, *err = NULL;
    assert_int_equal(te_it_run_cli(args, NULL, 0, &out, &err), 1);
    assert_non_null(strstr(err, "custom.lua:6: attempt to index a nil value"));
    free(out);
    free(err);

    /* a template that does not even load keeps the others listed */
    write_text(path, "local te = require \"te\"\nte.report { name = \"custom\", rendr = 1 }\n");
    cJSON *list = te_it_get_json(&fx->srv, "/v1/reports");
    assert_non_null(list);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(list, "reports")), 5);
    const cJSON *errors = cJSON_GetObjectItem(list, "errors");
    const char *e0 = cJSON_GetStringValue(cJSON_GetArrayItem(errors, 0));
    assert_non_null(e0);
    assert_non_null(strstr(e0, "custom.lua:2: te.report: unknown key \"rendr\" (did you mean "
                               "\"render\"?)"));
    cJSON_Delete(list);
    remove(path);
}


/* The path of the first DIR/PREFIX*.html, or "" when none yet. */
static void find_report_file(const char *dir, const char *prefix, char *out, size_t n)
{
    out[0] = '\0';
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (strncmp(de->d_name, prefix, strlen(prefix)) == 0 && l > 5 &&
            strcmp(de->d_name + l - 5, ".html") == 0) {
            snprintf(out, n, "%s/%s", dir, de->d_name);
            break;
        }
    }
    closedir(d);
}

static void scheduled_report_is_written_under_data_reports(void **state)
{
    fixture_t *fx = *state;
    char path[700], dir[700], found[1200] = "";
    snprintf(path, sizeof(path), "%s/reports/sched.lua", fx->scripts);
    write_text(path, "local te = require \"te\"\n"
                     "te.report { name = \"sched\", title = \"Every minute\",\n"
                     "  schedule = \"every 1m\",\n"
                     "  render = function(q, r, params)\n"
                     "    local n = q.query { kind = \"llm_call\" }[1].count\n"
                     "    r:stat { label = \"calls\", value = n }\n"
                     "  end }\n");
    snprintf(dir, sizeof(dir), "%s/reports", fx->srv.data);
    /* the next whole minute plus one 5 s tick at most */
    int64_t deadline = te_it_now_ms() + 80000;
    while (!found[0] && te_it_now_ms() < deadline) {
        find_report_file(dir, "sched-", found, sizeof(found));
        if (!found[0]) {
            struct timespec ts = {0, 200 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    if (!found[0])
        te_it_dump_log(&fx->srv);
    assert_true(found[0] != '\0');
    /* NAME-YYYYmmddTHHMM.html */
    const char *base = strrchr(found, '/') + 1;
    assert_int_equal(strlen(base), strlen("sched-20261120T1000.html"));
    assert_int_equal(base[14], 'T');
    char *html = read_file(found);
    assert_non_null(html);
    assert_non_null(strstr(html, "<title>Every minute</title>"));
    free(html);
    remove(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reports_show_the_independently_computed_numbers),
        cmocka_unit_test(every_report_renders_in_every_format),
        cmocka_unit_test(listing_and_unknown_names),
        cmocka_unit_test(edited_template_applies_without_restart),
        cmocka_unit_test(scheduled_report_is_written_under_data_reports),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
