/*
 * it_runs.c - SPEC 8 on the real binary: run and run_step events posted
 * over HTTP (a succeeded run, a failed one, a running one and a stale one
 * with old timestamps) show up in `runs list/show/watch/export` and in
 * GET /v1/runs and /v1/runs/{id}, with the right status, X/Y, steps and
 * ETA; unknown ids and bad options fail with the documented codes.
 *
 * THREAD: main. Timestamps are relative to now (the tracker's clock is the
 * wall clock); the stale run was last heard an hour ago, far beyond the
 * 10-minute default, and every other run within the last minutes. POST
 * answers after commit, so nothing here waits.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

#define MIN_MS (60 * 1000)

static void run_ev(te_it_str_t *b, int64_t off_ms, const char *id, const char *status, int total)
{
    char ts[40];
    te_it_rfc3339(off_ms, ts, sizeof(ts));
    te_it_str_add(b,
                  "{\"ts\":\"%s\",\"kind\":\"run\",\"source\":\"ml\",\"tags\":{\"run_id\":\"%s\","
                  "\"pipeline\":\"train\",\"status\":\"%s\"},\"fields\":{\"steps_total\":%d}}\n",
                  ts, id, status, total);
}

static void step_ev(te_it_str_t *b, int64_t off_ms, const char *id, const char *step, int ord,
                    const char *status, double dur)
{
    char ts[40], d[48] = "";
    te_it_rfc3339(off_ms, ts, sizeof(ts));
    if (dur >= 0)
        snprintf(d, sizeof(d), ",\"duration_s\":%.1f", dur);
    te_it_str_add(b,
                  "{\"ts\":\"%s\",\"kind\":\"run_step\",\"source\":\"ml\",\"tags\":{\"run_id\":"
                  "\"%s\",\"pipeline\":\"train\",\"step\":\"%s\",\"status\":\"%s\"},\"fields\":{"
                  "\"step_ordinal\":%d%s}}\n",
                  ts, id, step, status, ord, d);
}

static int cli(const char *const *args, char **out, char **err)
{
    int rc = te_it_run_cli(args, NULL, 0, out, err);
    if (!*out || !*err)
        fail_msg("cannot run the CLI");
    return rc;
}

static const cJSON *find_run(const cJSON *runs, const char *id)
{
    const cJSON *r;
    cJSON_ArrayForEach(r, runs)
    {
        if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(r, "id")), id) == 0)
            return r;
    }
    fail_msg("run %s not listed", id);
    return NULL;
}

static const char *str(const cJSON *o, const char *key)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(o, key));
    return s ? s : "(null)";
}

static void post_runs(te_it_srv_t *srv)
{
    te_it_str_t b = {0};
    /* ok-1: succeeded, 3 steps of 60 s */
    run_ev(&b, -10 * MIN_MS, "ok-1", "started", 3);
    step_ev(&b, -9 * MIN_MS, "ok-1", "fetch", 1, "succeeded", 60);
    step_ev(&b, -8 * MIN_MS, "ok-1", "fit", 2, "succeeded", 60);
    step_ev(&b, -7 * MIN_MS, "ok-1", "push", 3, "succeeded", 60);
    run_ev(&b, -7 * MIN_MS + 500, "ok-1", "succeeded", 3);
    /* bad-1: failed at step 2 */
    run_ev(&b, -6 * MIN_MS, "bad-1", "started", 3);
    step_ev(&b, -5 * MIN_MS, "bad-1", "fetch", 1, "succeeded", 60);
    step_ev(&b, -4 * MIN_MS, "bad-1", "fit", 2, "failed", 30);
    run_ev(&b, -4 * MIN_MS + 500, "bad-1", "failed", 3);
    /* live-1: running, step 2 started 5 s ago */
    run_ev(&b, -70 * 1000, "live-1", "started", 3);
    step_ev(&b, -10 * 1000, "live-1", "fetch", 1, "succeeded", 60);
    step_ev(&b, -5 * 1000, "live-1", "fit", 2, "started", -1);
    /* old-1: started 2 h ago, last heard 1 h ago */
    run_ev(&b, -120 * MIN_MS, "old-1", "started", 3);
    step_ev(&b, -60 * MIN_MS, "old-1", "fetch", 1, "succeeded", 3600);

    te_it_resp_t r;
    assert_int_equal(te_it_post(srv, b.p, b.len, &r), 0);
    if (r.status != 200 || !strstr(r.body, "\"accepted\":14"))
        fail_msg("POST /v1/events: %ld %s", r.status, r.body);
    te_it_resp_free(&r);
    te_it_str_free(&b);
}

static void runs_cli_and_http(void **state)
{
    (void)state;
    te_it_srv_t srv;
    assert_int_equal(te_it_start_fresh(&srv, NULL), 0);
    post_runs(&srv);
    char *out = NULL, *err = NULL;

    /* list --format json: the GET /v1/runs object */
    const char *const list[] = {"runs", "list", "--data", srv.data, "--format", "json", NULL};
    assert_int_equal(cli(list, &out, &err), 0);
    cJSON *j = cJSON_Parse(out);
    assert_non_null(j);
    const cJSON *runs = cJSON_GetObjectItem(j, "runs");
    assert_int_equal(cJSON_GetArraySize(runs), 4);
    assert_string_equal(str(cJSON_GetArrayItem(runs, 0), "id"), "live-1"); /* newest first */
    assert_string_equal(str(find_run(runs, "ok-1"), "status"), "succeeded");
    assert_string_equal(str(find_run(runs, "ok-1"), "progress"), "3/3");
    assert_string_equal(str(find_run(runs, "bad-1"), "status"), "failed");
    assert_string_equal(str(find_run(runs, "bad-1"), "progress"), "1/3");
    assert_string_equal(str(find_run(runs, "bad-1"), "current_step"), "fit");
    const cJSON *live = find_run(runs, "live-1");
    assert_string_equal(str(live, "status"), "running");
    assert_string_equal(str(live, "progress"), "1/3");
    assert_string_equal(str(live, "current_step"), "fit");
    /* fit and push of ok-1 took 60 s each, pace 1: 55 s left of fit + 60 */
    double eta = cJSON_GetNumberValue(cJSON_GetObjectItem(live, "eta_s"));
    if (!(eta > 110 && eta <= 115.5))
        fail_msg("live-1 eta_s %f, expected about 115", eta);
    assert_string_equal(str(find_run(runs, "old-1"), "status"), "stale");
    cJSON_Delete(j);
    free(out);
    free(err);

    /* filters */
    const char *const stale[] = {"runs", "list", "--data", srv.data, "--status", "stale",
                                 "--format", "json", NULL};
    assert_int_equal(cli(stale, &out, &err), 0);
    j = cJSON_Parse(out);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "runs")), 1);
    assert_string_equal(str(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "runs"), 0), "id"),
                        "old-1");
    cJSON_Delete(j);
    free(out);
    free(err);
    const char *const patient[] = {"runs", "list", "--data", srv.data, "--status", "stale",
                                   "--stale-after", "3h", "--format", "json", NULL};
    assert_int_equal(cli(patient, &out, &err), 0);
    assert_non_null(strstr(out, "{\"runs\":[]}"));
    free(out);
    free(err);
    const char *const table[] = {"runs", "--data", srv.data, "--since", "30m", "--limit", "2",
                                 NULL};
    assert_int_equal(cli(table, &out, &err), 0);
    assert_non_null(strstr(out, "live-1"));
    assert_non_null(strstr(out, "bad-1"));
    assert_null(strstr(out, "ok-1"));
    assert_null(strstr(out, "old-1"));
    free(out);
    free(err);

    /* show: table and json with steps */
    const char *const show[] = {"runs", "show", "live-1", "--data", srv.data, NULL};
    assert_int_equal(cli(show, &out, &err), 0);
    assert_non_null(strstr(out, "status      running"));
    assert_non_null(strstr(out, "steps       1/3"));
    assert_non_null(strstr(out, "current     2 fit"));
    free(out);
    free(err);
    const char *const showj[] = {"runs", "show", "bad-1", "--data", srv.data, "--format", "json",
                                 NULL};
    assert_int_equal(cli(showj, &out, &err), 0);
    j = cJSON_Parse(out);
    assert_non_null(j);
    const cJSON *steps = cJSON_GetObjectItem(j, "steps");
    assert_int_equal(cJSON_GetArraySize(steps), 2);
    assert_string_equal(str(cJSON_GetArrayItem(steps, 1), "status"), "failed");
    assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetArrayItem(steps, 1),
                                                                   "duration_s")),
                     30);
    cJSON_Delete(j);
    free(out);
    free(err);

    /* export */
    const char *const md[] = {"runs", "export", "bad-1", "--format", "md", "--data", srv.data,
                              NULL};
    assert_int_equal(cli(md, &out, &err), 0);
    assert_non_null(strstr(out, "# Run bad-1\n"));
    assert_non_null(strstr(out, "| Status | failed |"));
    assert_non_null(strstr(out, "| Steps | 1/3 |"));
    assert_non_null(strstr(out, "| 2 | fit | failed | 30.00 |"));
    free(out);
    free(err);
    const char *const ej[] = {"runs", "export", "ok-1", "--format", "json", "--data", srv.data,
                              NULL};
    assert_int_equal(cli(ej, &out, &err), 0);
    j = cJSON_Parse(out);
    assert_string_equal(str(j, "status"), "succeeded");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "steps")), 3);
    cJSON_Delete(j);
    free(out);
    free(err);

    /* watch a finished run: one plain line (piped), exit by its outcome */
    const char *const w_ok[] = {"runs", "watch", "ok-1", "--data", srv.data, NULL};
    assert_int_equal(cli(w_ok, &out, &err), 0);
    assert_non_null(strstr(out, "ok-1 train succeeded step 3/3"));
    assert_null(strchr(out, '\r'));
    free(out);
    free(err);
    const char *const w_bad[] = {"runs", "watch", "bad-1", "--data", srv.data, NULL};
    assert_int_equal(cli(w_bad, &out, &err), 1);
    assert_non_null(strstr(out, "bad-1 train failed step 1/3"));
    free(out);
    free(err);

    /* errors */
    const char *const nope[] = {"runs", "show", "nope", "--data", srv.data, NULL};
    assert_int_equal(cli(nope, &out, &err), 1);
    assert_non_null(strstr(err, "no run \"nope\""));
    free(out);
    free(err);
    const char *const badst[] = {"runs", "list", "--status", "done", "--data", srv.data, NULL};
    assert_int_equal(cli(badst, &out, &err), 2);
    assert_non_null(strstr(err, "unknown status \"done\""));
    free(out);
    free(err);
    const char *const badsub[] = {"runs", "frobnicate", "--data", srv.data, NULL};
    assert_int_equal(cli(badsub, &out, &err), 2);
    free(out);
    free(err);
    const char *const noid[] = {"runs", "show", "--data", srv.data, NULL};
    assert_int_equal(cli(noid, &out, &err), 2);
    assert_non_null(strstr(err, "show needs a run id"));
    free(out);
    free(err);
    const char *const badfmt[] = {"runs", "export", "ok-1", "--format", "html", "--data",
                                  srv.data, NULL};
    assert_int_equal(cli(badfmt, &out, &err), 2);
    free(out);
    free(err);

    /* HTTP */
    j = te_it_get_json(&srv, "/v1/runs");
    assert_non_null(j);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "runs")), 4);
    assert_null(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "runs"), 0),
                                    "steps"));
    cJSON_Delete(j);
    j = te_it_get_json(&srv, "/v1/runs?status=failed");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "runs")), 1);
    cJSON_Delete(j);
    j = te_it_get_json(&srv, "/v1/runs?limit=2&since=30m");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "runs")), 2);
    cJSON_Delete(j);
    j = te_it_get_json(&srv, "/v1/runs?status=running&stale_after=3h");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "runs")), 2);
    cJSON_Delete(j);
    j = te_it_get_json(&srv, "/v1/runs/live-1");
    assert_non_null(j);
    assert_string_equal(str(j, "status"), "running");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "steps")), 2);
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(j, "eta_s")));
    assert_true(cJSON_IsString(cJSON_GetObjectItem(j, "eta_at")));
    cJSON_Delete(j);

    te_it_resp_t r;
    assert_int_equal(te_it_http(&srv, "GET", "/v1/runs/nope", NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 404);
    assert_non_null(strstr(r.body, "no run \\\"nope\\\""));
    te_it_resp_free(&r);
    assert_int_equal(te_it_http(&srv, "GET", "/v1/runs?status=done", NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 400);
    te_it_resp_free(&r);
    assert_int_equal(te_it_http(&srv, "GET", "/v1/runs?limit=0", NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 400);
    te_it_resp_free(&r);

    assert_int_equal(te_it_stop(&srv, SIGTERM, 10000), 0);
    te_it_cleanup(&srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(runs_cli_and_http),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
