/*
 * test_runs.c - the run tracker (store/runs.c, SPEC 8): status from the
 * last run event, stale after the heartbeat timeout, step X/Y, the current
 * step, the ETA estimator, the list filters and the JSON objects. Hand-made
 * run / run_step events in a real SQLite store in a mkdtemp folder; the
 * clock is a fixed "now" passed to the query.
 *
 * THREAD: main.
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

#include <cjson/cJSON.h>

#include "core/event.h"
#include "core/time.h"
#include "store/runs.h"
#include "store/store.h"

#define T0 INT64_C(1763632800000000000) /* 2025-11-20T10:00:00Z */
#define SEC INT64_C(1000000000)
#define NOW (T0 + 3600 * SEC)

typedef struct fx {
    char dir[64];
    char db[128];
    te_store_t *st;
} fx_t;

static int fx_setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    strcpy(f->dir, "/tmp/te-runs-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->db, sizeof(f->db), "%s/data/telemetry.db", f->dir);
    te_store_opts_t o = {.path = f->db};
    te_err_t err = {0};
    if (te_store_open(&o, &f->st, &err) != 0)
        return -1;
    *state = f;
    return 0;
}

static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        if (unlink(p) < 0)
            rm_tree(p);
    }
    closedir(d);
    rmdir(dir);
}

static int fx_teardown(void **state)
{
    fx_t *f = *state;
    te_store_close(f->st);
    rm_tree(f->dir);
    free(f);
    return 0;
}

static void put(te_store_t *st, const char *js)
{
    te_event_opts_t o = {NULL, NULL, T0};
    te_event_t *ev = NULL;
    te_err_t err = {0};
    bool stored = false;
    if (te_event_parse(js, strlen(js), &o, &ev, &err) != 0)
        fail_msg("parse %s: %s", js, err.msg);
    assert_int_equal(te_store_begin(st, &err), 0);
    if (te_store_insert(st, ev, &stored, &err) != 0)
        fail_msg("insert: %s", err.msg);
    assert_int_equal(te_store_commit(st, &err), 0);
    te_event_free(ev);
}

/* A run event at ts; steps_total < 0: no field. */
static void run_ev(te_store_t *st, int64_t ts, const char *id, const char *pipeline,
                   const char *status, int total)
{
    char js[512], t[40], fields[64] = "{}";
    te_time_format_rfc3339(ts, t, sizeof(t));
    if (total >= 0)
        snprintf(fields, sizeof(fields), "{\"steps_total\":%d}", total);
    snprintf(js, sizeof(js),
             "{\"ts\":\"%s\",\"kind\":\"run\",\"tags\":{\"run_id\":\"%s\",\"pipeline\":\"%s\","
             "\"status\":\"%s\"},\"fields\":%s}",
             t, id, pipeline, status, fields);
    put(st, js);
}

/* A run_step event at ts; duration < 0: no field. */
static void step_ev(te_store_t *st, int64_t ts, const char *id, const char *step, int ordinal,
                    const char *status, double duration)
{
    char js[512], t[40], dur[48] = "";
    te_time_format_rfc3339(ts, t, sizeof(t));
    if (duration >= 0)
        snprintf(dur, sizeof(dur), ",\"duration_s\":%.3f", duration);
    snprintf(js, sizeof(js),
             "{\"ts\":\"%s\",\"kind\":\"run_step\",\"tags\":{\"run_id\":\"%s\",\"step\":\"%s\","
             "\"status\":\"%s\"},\"fields\":{\"step_ordinal\":%d%s}}",
             t, id, step, status, ordinal, dur);
    put(st, js);
}

static te_run_t *one(fx_t *f, const char *id, int64_t stale_ns)
{
    te_runs_query_t q = {.id = id, .now_ns = NOW, .stale_after_ns = stale_ns};
    te_run_t *v = NULL;
    size_t n = 0;
    te_err_t err = {0};
    if (te_store_runs(f->st, &q, &v, &n, &err) != 0)
        fail_msg("runs %s: %s", id, err.msg);
    if (n != 1)
        fail_msg("run %s: got %zu runs", id, n);
    return v;
}

static size_t list(fx_t *f, const char *status, int64_t since, size_t limit, te_run_t **v)
{
    te_runs_query_t q = {.status = status, .since_ns = since, .limit = limit, .now_ns = NOW};
    size_t n = 0;
    te_err_t err = {0};
    if (te_store_runs(f->st, &q, v, &n, &err) != 0)
        fail_msg("runs list: %s", err.msg);
    return n;
}

/* Three finished runs of "train": steps a, b, c of 10/20/30 s, 12/22/32 s,
 * 14/24/34 s (medians 12, 22, 32). */
static void history(te_store_t *st)
{
    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof(id), "h%d", i);
        int64_t t = T0 + i * 100 * SEC;
        run_ev(st, t, id, "train", "started", 3);
        step_ev(st, t + 10 * SEC, id, "a", 1, "succeeded", 10 + 2 * i);
        step_ev(st, t + 30 * SEC, id, "b", 2, "succeeded", 20 + 2 * i);
        step_ev(st, t + 60 * SEC, id, "c", 3, "succeeded", 30 + 2 * i);
        run_ev(st, t + 61 * SEC, id, "train", "succeeded", 3);
    }
}

static void status_follows_last_run_event(void **state)
{
    fx_t *f = *state;
    history(f->st);
    int64_t t = T0 + 1000 * SEC;
    run_ev(f->st, t, "bad", "train", "started", 3);
    step_ev(f->st, t + 10 * SEC, "bad", "a", 1, "succeeded", 10);
    step_ev(f->st, t + 20 * SEC, "bad", "b", 2, "started", -1);
    step_ev(f->st, t + 25 * SEC, "bad", "b", 2, "failed", -1);
    run_ev(f->st, t + 26 * SEC, "bad", "train", "failed", -1);
    run_ev(f->st, t + 30 * SEC, "stop", "etl", "started", 5);
    run_ev(f->st, t + 40 * SEC, "stop", "etl", "aborted", -1);

    te_run_t *r = one(f, "h1", 0);
    assert_string_equal(r->status, "succeeded");
    assert_string_equal(r->pipeline, "train");
    assert_int_equal(r->steps_total, 3);
    assert_int_equal(r->steps_done, 3);
    assert_int_equal(r->nsteps, 3);
    assert_string_equal(r->steps[1].name, "b");
    assert_int_equal(r->steps[1].ordinal, 2);
    assert_true(fabs(r->steps[1].duration_s - 22) < 1e-9);
    assert_null(r->current_step);
    assert_true(fabs(r->elapsed_s - 61) < 1e-9);
    assert_true(isnan(r->eta_s));
    assert_int_equal(r->ended_ns, T0 + 161 * SEC);
    te_runs_free(r, 1);

    r = one(f, "bad", 0);
    assert_string_equal(r->status, "failed");
    assert_int_equal(r->steps_done, 1);
    assert_string_equal(r->steps[1].status, "failed");
    /* no duration_s field: finished - started */
    assert_true(fabs(r->steps[1].duration_s - 5) < 1e-9);
    assert_string_equal(r->current_step, "b");
    assert_int_equal(r->current_ordinal, 2);
    cJSON *o = te_run_json(r, true, NOW);
    assert_non_null(o);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(o, "progress")), "1/3");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(o, "eta_s")));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "steps")), 2);
    cJSON_Delete(o);
    te_runs_free(r, 1);

    r = one(f, "stop", 0);
    assert_string_equal(r->status, "aborted");
    assert_int_equal(r->steps_done, 0);
    te_runs_free(r, 1);

    te_runs_query_t q = {.id = "nope", .now_ns = NOW};
    te_run_t *v = NULL;
    size_t n = 9;
    assert_int_equal(te_store_runs(f->st, &q, &v, &n, NULL), 0);
    assert_int_equal(n, 0);
    te_runs_free(v, n);
}

static void running_turns_stale_after_heartbeat_timeout(void **state)
{
    fx_t *f = *state;
    /* last heard 15 min before NOW */
    run_ev(f->st, NOW - 20 * 60 * SEC, "quiet", "etl", "started", 4);
    step_ev(f->st, NOW - 15 * 60 * SEC, "quiet", "x", 1, "succeeded", 300);
    /* last heard 5 min before NOW */
    run_ev(f->st, NOW - 6 * 60 * SEC, "busy", "etl", "started", 4);
    step_ev(f->st, NOW - 5 * 60 * SEC, "busy", "x", 1, "succeeded", 60);

    te_run_t *r = one(f, "quiet", 0);
    assert_string_equal(r->status, "stale");
    assert_int_equal(r->last_event_ns, NOW - 15 * 60 * SEC);
    assert_true(fabs(r->elapsed_s - 300) < 1e-9); /* up to the last event */
    assert_true(isnan(r->eta_s));
    te_runs_free(r, 1);
    r = one(f, "quiet", 30 * 60 * SEC);           /* a longer heartbeat timeout */
    assert_string_equal(r->status, "running");
    assert_true(fabs(r->elapsed_s - 1200) < 1e-9);
    te_runs_free(r, 1);
    r = one(f, "busy", 0);
    assert_string_equal(r->status, "running");
    assert_true(fabs(r->eta_s - 3 * 60) < 1e-6); /* no history: its own median step */
    te_runs_free(r, 1);

    te_run_t *v = NULL;
    size_t n = list(f, "stale", 0, 0, &v);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].id, "quiet");
    te_runs_free(v, n);
    n = list(f, "running", 0, 0, &v);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].id, "busy");
    te_runs_free(v, n);
}

static void eta_from_history_and_this_runs_pace(void **state)
{
    fx_t *f = *state;
    history(f->st);
    /* step a took 18 s where the history's median is 12: pace 1.5; step b
     * started 10 s ago (typical 22 -> 33 - 10 = 23 left), c typical 32 ->
     * 48: ETA 71 s */
    run_ev(f->st, NOW - 30 * SEC, "cur", "train", "started", 3);
    step_ev(f->st, NOW - 11 * SEC, "cur", "a", 1, "succeeded", 18);
    step_ev(f->st, NOW - 10 * SEC, "cur", "b", 2, "started", -1);
    te_run_t *r = one(f, "cur", 0);
    assert_string_equal(r->status, "running");
    assert_int_equal(r->steps_done, 1);
    assert_string_equal(r->current_step, "b");
    assert_int_equal(r->current_ordinal, 2);
    assert_true(fabs(r->elapsed_s - 30) < 1e-9);
    assert_true(fabs(r->eta_s - 71) < 1e-6);
    cJSON *o = te_run_json(r, false, NOW);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(o, "eta_at")),
                        "2025-11-20T11:01:11Z");
    assert_null(cJSON_GetObjectItem(o, "steps"));
    cJSON_Delete(o);
    te_runs_free(r, 1);

    /* between steps: the next step's name comes from the history; the pace
     * is clamped to 2 (a took 60 s, typical 12) */
    run_ev(f->st, NOW - 70 * SEC, "slow", "train", "started", 3);
    step_ev(f->st, NOW - 5 * SEC, "slow", "a", 1, "succeeded", 60);
    r = one(f, "slow", 0);
    assert_string_equal(r->current_step, "b");
    assert_true(fabs(r->eta_s - 2 * (22 + 32)) < 1e-6);
    te_runs_free(r, 1);

    /* a pipeline without history: the median of this run's finished steps */
    run_ev(f->st, NOW - 40 * SEC, "new", "fresh", "started", 4);
    step_ev(f->st, NOW - 30 * SEC, "new", "p", 1, "succeeded", 10);
    step_ev(f->st, NOW - 10 * SEC, "new", "q", 2, "succeeded", 20);
    r = one(f, "new", 0);
    assert_null(r->current_step);   /* step 3's name is not known yet */
    assert_int_equal(r->current_ordinal, 3);
    assert_true(fabs(r->eta_s - 2 * 15) < 1e-6);
    te_runs_free(r, 1);

    /* nothing to learn from, or no steps_total: unknown */
    run_ev(f->st, NOW - 5 * SEC, "blank", "other", "started", 2);
    r = one(f, "blank", 0);
    assert_true(isnan(r->eta_s));
    te_runs_free(r, 1);
    run_ev(f->st, NOW - 5 * SEC, "nototal", "train", "started", -1);
    r = one(f, "nototal", 0);
    assert_int_equal(r->steps_total, -1);
    assert_true(isnan(r->eta_s));
    o = te_run_json(r, false, NOW);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(o, "progress")), "0/?");
    cJSON_Delete(o);
    te_runs_free(r, 1);
}

static void list_orders_filters_and_limits(void **state)
{
    fx_t *f = *state;
    history(f->st); /* h0, h1, h2 started at T0, +100 s, +200 s */
    run_ev(f->st, NOW - 60 * SEC, "live", "train", "started", 3);
    step_ev(f->st, NOW - 50 * SEC, "live", "a", 1, "succeeded", 12);

    te_run_t *v = NULL;
    size_t n = list(f, NULL, 0, 0, &v);
    assert_int_equal(n, 4);
    assert_string_equal(v[0].id, "live");
    assert_string_equal(v[1].id, "h2");
    assert_string_equal(v[3].id, "h0");
    assert_int_equal(v[1].steps_done, 3);
    assert_int_equal(v[0].steps_done, 1);
    assert_false(isnan(v[0].eta_s));
    cJSON *o = te_runs_list_json(v, n, NOW);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "runs")), 4);
    cJSON_Delete(o);
    te_runs_free(v, n);

    n = list(f, NULL, 0, 2, &v);
    assert_int_equal(n, 2);
    assert_string_equal(v[1].id, "h2");
    te_runs_free(v, n);

    n = list(f, "succeeded", 0, 2, &v);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].id, "h2");
    assert_string_equal(v[1].id, "h1");
    te_runs_free(v, n);

    /* since: h1 ended at T0 + 161 s, h2 at T0 + 261 s */
    n = list(f, NULL, T0 + 200 * SEC, 0, &v);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].id, "live");
    assert_string_equal(v[1].id, "h2");
    te_runs_free(v, n);

    n = list(f, "failed", 0, 0, &v);
    assert_int_equal(n, 0);
    te_runs_free(v, n);

    te_err_t err = {0};
    te_runs_query_t q = {.status = "done", .now_ns = NOW};
    assert_int_equal(te_store_runs(f->st, &q, &v, &n, &err), TE_EINVAL);
    assert_non_null(strstr(err.msg, "unknown status \"done\""));
}

static void empty_store_has_no_runs(void **state)
{
    fx_t *f = *state;
    te_run_t *v = NULL;
    size_t n = 7;
    assert_int_equal(list(f, NULL, 0, 0, &v), 0);
    te_runs_free(v, 0);
    /* run events without any step kind stored yet */
    run_ev(f->st, NOW - 5 * SEC, "solo", "p", "started", 2);
    n = list(f, NULL, 0, 0, &v);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].status, "running");
    assert_int_equal(v[0].nsteps, 0);
    te_runs_free(v, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
        T(status_follows_last_run_event),
        T(running_turns_stale_after_heartbeat_timeout),
        T(eta_from_history_and_this_runs_pace),
        T(list_orders_filters_and_limits),
        T(empty_store_has_no_runs),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
