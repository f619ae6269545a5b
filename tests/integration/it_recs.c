/*
 * it_recs.c - SPEC 6.4 on the real binary: the shipped recommenders
 * (lua/rules/recommend_*.lua) find what crafted data shows, exactly once
 * across runs, and resolve it once the data no longer shows it;
 * `recommendations run/list` and GET /v1/recommendations; a te.recommend
 * with every = "1s" runs on its schedule inside serve; a recommender that
 * returns a bad finding fails with its file:line and the engine keeps
 * going.
 *
 * THREAD: main. Events carry no ts (receive time) or ts relative to now;
 * alert episodes for the noisy-rule recommender are written straight into
 * the alerts table (what the rules would have stored). Every wait polls a
 * condition with a deadline.
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "harness.h"

#define SEC_NS INT64_C(1000000000)

/* ---- helpers ---- */

static const char *src_dir(void)
{
    const char *d = getenv("TE_SOURCE_DIR");
    return d ? d : ".";
}

/* A fresh engine with ROOT/lua (empty rules folder, or one file) as its
 * scripts dir, so that serve itself runs only what a test puts there. */
static void start_with_scripts(te_it_srv_t *srv, const char *file, const char *src)
{
    char dir[400], rules[420];
    assert_int_equal(te_it_init(srv), 0);
    snprintf(dir, sizeof(dir), "%s/lua", srv->root);
    snprintf(rules, sizeof(rules), "%s/rules", dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(mkdir(rules, 0700), 0);
    if (file) {
        char name[300], path[600];
        snprintf(name, sizeof(name), "lua/rules/%s", file);
        assert_int_equal(te_it_write_file(srv, name, src, strlen(src), path, sizeof(path)), 0);
    }
    const char *const extra[] = {"--scripts", dir, NULL};
    assert_int_equal(te_it_start(srv, extra), 0);
}

static void post(const te_it_srv_t *srv, te_it_str_t *body, long want)
{
    te_it_resp_t r;
    assert_int_equal(te_it_post(srv, body->p, body->len, &r), 0);
    if (r.status != 200)
        fail_msg("POST /v1/events: %ld %s", r.status, r.body);
    cJSON *j = cJSON_Parse(r.body);
    assert_non_null(j);
    assert_int_equal((long)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "accepted")), want);
    cJSON_Delete(j);
    te_it_resp_free(&r);
    te_it_str_free(body);
}

static void llm(te_it_str_t *b, int times, const char *model, const char *tier,
                const char *workflow, const char *status, int out_tokens, double cost)
{
    for (int i = 0; i < times; i++)
        te_it_str_add(b,
                      "{\"kind\":\"llm_call\",\"source\":\"it\",\"tags\":{\"provider\":\"p1\","
                      "\"model\":\"%s\",\"tier\":\"%s\",\"workflow\":\"%s\",\"status\":\"%s\"},"
                      "\"fields\":{\"latency_ms\":900,\"cost_usd\":%.6f,\"input_tokens\":500,"
                      "\"output_tokens\":%d}}\n",
                      model, tier, workflow, status, cost, out_tokens);
}

static void selector(te_it_str_t *b, int times, const char *strategy, const char *outcome)
{
    for (int i = 0; i < times; i++)
        te_it_str_add(b,
                      "{\"kind\":\"selector_op\",\"source\":\"it\",\"tags\":{\"app\":\"shop\","
                      "\"strategy\":\"%s\",\"outcome\":\"%s\",\"page\":\"login\"},"
                      "\"fields\":{\"duration_ms\":50,\"confidence\":0.9,\"retries\":0}}\n",
                      strategy, outcome);
}

/* A finished run_step at now + at_s (seconds, <= 0), host NULL for none. */
static void step(te_it_str_t *b, const char *run, const char *name, double dur_s, int at_s,
                 const char *host)
{
    char ts[40], hosttag[64] = "";
    te_it_rfc3339((int64_t)at_s * 1000, ts, sizeof(ts));
    if (host)
        snprintf(hosttag, sizeof(hosttag), ",\"host\":\"%s\"", host);
    te_it_str_add(b,
                  "{\"ts\":\"%s\",\"kind\":\"run_step\",\"source\":\"it\",\"tags\":{"
                  "\"run_id\":\"%s\",\"pipeline\":\"train\",\"step\":\"%s\","
                  "\"status\":\"succeeded\"%s},\"fields\":{\"duration_s\":%.1f}}\n",
                  ts, run, name, hosttag, dur_s);
}

static void sample(te_it_str_t *b, int at_s, double cpu, double mem)
{
    char ts[40];
    te_it_rfc3339((int64_t)at_s * 1000, ts, sizeof(ts));
    te_it_str_add(b,
                  "{\"ts\":\"%s\",\"kind\":\"host_sample\",\"source\":\"it\",\"tags\":{"
                  "\"host\":\"gpu-1\",\"region\":\"eu\"},\"fields\":{\"cpu_pct\":%.1f,"
                  "\"mem_pct\":%.1f}}\n",
                  ts, cpu, mem);
}

static sqlite3 *open_db(const te_it_srv_t *srv)
{
    char path[400];
    sqlite3 *db = NULL;
    snprintf(path, sizeof(path), "%s/telemetry.db", srv->data);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    return db;
}

/* One resolved alert episode as the rules store it. */
static void episode(sqlite3 *db, const char *id, const char *rule, const char *fp,
                    int64_t start_ns, int64_t end_ns, int64_t acked_ns)
{
    sqlite3_stmt *q = NULL;
    const char *sql =
        "INSERT INTO alerts(id, rule, fingerprint, state, severity, group_json, labels_json,"
        " notify_json, value, summary, reason, active_at_ns, starts_at_ns, ends_at_ns,"
        " updated_ns, last_notified_ns, false_since_ns, acked_by, acked_at_ns)"
        " VALUES(?1, ?2, ?3, 'resolved', 'warning', '{}', '{}', '[]', 1, 's', NULL, ?4, ?4,"
        " ?5, ?5, 0, 0, ?6, ?7)";
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, rule, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, fp, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 4, start_ns);
    sqlite3_bind_int64(q, 5, end_ns);
    if (acked_ns)
        sqlite3_bind_text(q, 6, "oncall", -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(q, 6);
    sqlite3_bind_int64(q, 7, acked_ns);
    int rc = sqlite3_step(q);
    if (rc != SQLITE_DONE)
        fail_msg("insert alert: %s", sqlite3_errmsg(db));
    sqlite3_finalize(q);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * SEC_NS + ts.tv_nsec;
}

/* `recommendations ARGS... --data DATA --format json`; returns the parsed
 * output and the exit status in *rc. */
static cJSON *cli_json(const te_it_srv_t *srv, const char *const *args, int *rc)
{
    const char *argv[24];
    size_t n = 0;
    argv[n++] = "recommendations";
    for (size_t i = 0; args[i]; i++)
        argv[n++] = args[i];
    argv[n++] = "--data";
    argv[n++] = srv->data;
    argv[n++] = "--format";
    argv[n++] = "json";
    argv[n] = NULL;
    char *out = NULL, *err = NULL;
    *rc = te_it_run_cli(argv, NULL, 0, &out, &err);
    cJSON *j = out ? cJSON_Parse(out) : NULL;
    if (!j || *rc != 0)
        fprintf(stderr, "recommendations: rc %d, stdout: %s\nstderr: %s\n", *rc,
                out ? out : "", err ? err : "");
    free(out);
    free(err);
    return j;
}

static cJSON *run_shipped(const te_it_srv_t *srv)
{
    char lua[400];
    snprintf(lua, sizeof(lua), "%s/lua", src_dir());
    const char *const args[] = {"run", "--scripts", lua, NULL};
    int rc;
    cJSON *j = cli_json(srv, args, &rc);
    assert_int_equal(rc, 0);
    assert_non_null(j);
    return j;
}

typedef struct expected {
    const char *name, *title, *severity;
} expected_t;

static const expected_t want[] = {
    {"premium-downgrade", "workflow wf-a: move premium calls to the fast tier", NULL},
    {"model-error-rate", "model p1/m-bad fails more often than its capable peers", "critical"},
    {"selector-strategy-order", "app shop: selector strategy xpath mostly falls back", "warning"},
    {"pipeline-dominant-step", "pipeline train: step train dominates run time", "warning"},
    {"step-resource-bound", "pipeline train: step train is cpu-bound", "warning"},
    {"noisy-rule", "rule flappy flaps", "warning"},
    {"noisy-rule", "alerts of rule acked-rule are acknowledged and come back", "info"},
};
#define NWANT (sizeof(want) / sizeof(want[0]))

static const char *str_of(const cJSON *o, const char *key)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(o, key));
    return s ? s : "";
}

/* Checks that list (a "recommendations" array) holds each expected finding
 * exactly once, in state, counted count times, and nothing else. */
static void check_all(const cJSON *list, const char *state, int count)
{
    const cJSON *o;
    int seen[NWANT] = {0};
    cJSON_ArrayForEach(o, list)
    {
        size_t i = 0;
        while (i < NWANT && !(strcmp(str_of(o, "name"), want[i].name) == 0 &&
                              strcmp(str_of(o, "title"), want[i].title) == 0))
            i++;
        if (i == NWANT)
            fail_msg("unexpected finding %s: %s (%s)", str_of(o, "name"), str_of(o, "title"),
                     str_of(o, "detail"));
        seen[i]++;
        assert_string_equal(str_of(o, "state"), state);
        assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(o, "count")), count);
        if (want[i].severity)
            assert_string_equal(str_of(o, "severity"), want[i].severity);
        assert_true(str_of(o, "action")[0] != '\0');
        assert_true(cJSON_IsObject(cJSON_GetObjectItem(o, "evidence")));
    }
    for (size_t i = 0; i < NWANT; i++)
        if (seen[i] != 1)
            fail_msg("%s: \"%s\" listed %d times", want[i].name, want[i].title, seen[i]);
}

/* ---- the shipped recommenders ---- */

static void shipped_recommenders_find_dedup_and_resolve(void **state)
{
    (void)state;
    te_it_srv_t srv;
    start_with_scripts(&srv, NULL, NULL);
    te_it_str_t b = {0};

    /* premium-downgrade: wf-a's short premium calls also succeed on fast */
    llm(&b, 30, "m-prem", "premium", "wf-a", "ok", 200, 0.05);
    llm(&b, 40, "m-fast", "fast", "wf-a", "ok", 200, 0.001);
    /* model-error-rate: m-bad fails 20% of calls, its capable peer 2% */
    llm(&b, 80, "m-bad", "capable", "wf-b", "ok", 300, 0.01);
    llm(&b, 20, "m-bad", "capable", "wf-b", "error", 0, 0.002);
    llm(&b, 98, "m-good", "capable", "wf-b", "ok", 300, 0.01);
    llm(&b, 2, "m-good", "capable", "wf-b", "timeout", 0, 0.002);
    post(&srv, &b, 270);
    /* selector-strategy-order: xpath falls back 75% of the time in shop */
    selector(&b, 30, "xpath", "fallback");
    selector(&b, 10, "xpath", "found");
    selector(&b, 38, "css", "found");
    selector(&b, 2, "css", "fallback");
    post(&srv, &b, 80);
    /* pipeline-dominant-step and step-resource-bound: train takes 100 of
     * 120 s per run, on gpu-1 at 92% CPU */
    for (int k = 1; k <= 3; k++) {
        char run[16];
        int end = -(4 - k) * 1000; /* the train step's end, seconds from now */
        snprintf(run, sizeof(run), "r%d", k);
        step(&b, run, "fetch", 10, end - 100, NULL);
        step(&b, run, "train", 100, end, "gpu-1");
        step(&b, run, "eval", 10, end + 10, NULL);
        sample(&b, end - 80, 92, 50);
        sample(&b, end - 20, 92, 50);
    }
    post(&srv, &b, 15);
    /* noisy-rule: six short episodes of one alert, and acked episodes that
     * keep coming back */
    sqlite3 *db = open_db(&srv);
    int64_t t0 = now_ns() - 6 * 3600 * SEC_NS;
    for (int i = 0; i < 6; i++) {
        char id[32]; /* ids and fingerprints are 16 hex digits */
        snprintf(id, sizeof(id), "00000000000f1a%02d", i);
        int64_t s = t0 + i * 1800 * SEC_NS;
        episode(db, id, "flappy", "00000000000000f1", s, s + 120 * SEC_NS, 0);
    }
    for (int i = 0; i < 4; i++) {
        char id[32];
        snprintf(id, sizeof(id), "00000000000ac%03d", i);
        int64_t s = t0 + 600 * SEC_NS + i * 3600 * SEC_NS;
        episode(db, id, "acked-rule", "00000000000000a1", s, s + 1200 * SEC_NS, s + 300 * SEC_NS);
    }

    /* two runs: every finding once, counted twice */
    cJSON *r1 = run_shipped(&srv);
    check_all(cJSON_GetObjectItem(r1, "recommendations"), "open", 1);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(r1, "runs")), 6);
    cJSON_Delete(r1);
    cJSON *r2 = run_shipped(&srv);
    check_all(cJSON_GetObjectItem(r2, "recommendations"), "open", 2);
    cJSON_Delete(r2);
    const char *const list_all[] = {"list", "--state", "all", NULL};
    int rc;
    cJSON *l = cli_json(&srv, list_all, &rc);
    assert_int_equal(rc, 0);
    check_all(cJSON_GetObjectItem(l, "recommendations"), "open", 2);
    cJSON_Delete(l);
    /* the API lists the same */
    cJSON *api = te_it_get_json(&srv, "/v1/recommendations");
    assert_non_null(api);
    check_all(cJSON_GetObjectItem(api, "recommendations"), "open", 2);
    cJSON_Delete(api);
    api = te_it_get_json(&srv, "/v1/recommendations?severity=critical");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(api, "recommendations")), 1);
    cJSON_Delete(api);

    /* the data no longer shows any of them */
    llm(&b, 30, "m-prem", "premium", "wf-a", "ok", 5000, 0.05);  /* long answers now */
    llm(&b, 900, "m-bad", "capable", "wf-b", "ok", 300, 0.01);   /* 2%, as its peer */
    post(&srv, &b, 930);
    selector(&b, 200, "xpath", "found");                          /* 12.5% fall back */
    step(&b, "r4", "fetch", 150, -300, NULL);                     /* train: 45%, */
    step(&b, "r4", "eval", 150, -50, NULL);                       /* the others 27% */
    for (int k = 1; k <= 3; k++) {
        int end = -(4 - k) * 1000;
        sample(&b, end - 70, 10, 50);                             /* 51% CPU on average */
        sample(&b, end - 30, 10, 50);
    }
    post(&srv, &b, 208);
    assert_int_equal(sqlite3_exec(db, "DELETE FROM alerts WHERE rule IN ('flappy', 'acked-rule')",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    cJSON *r3 = run_shipped(&srv);
    const cJSON *left;
    cJSON_ArrayForEach(left, cJSON_GetObjectItem(r3, "recommendations"))
        fail_msg("still open: %s: %s (%s)", str_of(left, "name"), str_of(left, "title"),
                 str_of(left, "detail"));
    cJSON_Delete(r3);
    const char *const list_resolved[] = {"list", "--state", "resolved", NULL};
    l = cli_json(&srv, list_resolved, &rc);
    assert_int_equal(rc, 0);
    check_all(cJSON_GetObjectItem(l, "recommendations"), "resolved", 2);
    cJSON_Delete(l);
    api = te_it_get_json(&srv, "/v1/recommendations");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(api, "recommendations")), 0);
    cJSON_Delete(api);

    assert_int_equal(te_it_stop(&srv, SIGTERM, 10000), 0);
    te_it_cleanup(&srv);
}

/* ---- serve runs them on schedule ---- */

static const char probe_rec[] =
    "local te = require \"te\"\n"
    "te.recommend { name = \"probe-rec\", every = \"1s\", fn = function(q)\n"
    "  local row = q.query { kind = \"probe\", since = \"1h\", aggs = { n = \"count\" } }[1]\n"
    "  local n = row and row.n or 0\n"
    "  if n >= 3 and n < 10 then\n"
    "    return { { severity = \"warning\", title = \"probes are few\", key = \"probes\",\n"
    "               detail = \"seen \" .. n, evidence = { n = n, list = te.array{} } } }\n"
    "  end\n"
    "  return {}\n"
    "end }\n"
    "te.recommend { name = \"bad-rec\", every = \"1s\", fn = function(q)\n"
    "  return { { severity = \"high\", title = \"x\" } }\n"
    "end }\n";

typedef bool (*list_pred)(const cJSON *list);

static cJSON *wait_list(const te_it_srv_t *srv, const char *path, list_pred pred, int ms)
{
    int64_t deadline = te_it_now_ms() + ms;
    for (;;) {
        cJSON *j = te_it_get_json(srv, path);
        if (j && pred(cJSON_GetObjectItem(j, "recommendations")))
            return j;
        cJSON_Delete(j);
        if (te_it_now_ms() >= deadline)
            return NULL;
        struct timespec ts = {0, 20 * 1000000}; /* poll interval, not a guess */
        nanosleep(&ts, NULL);
    }
}

static bool counted_twice(const cJSON *list)
{
    const cJSON *o = cJSON_GetArrayItem(list, 0);
    return cJSON_GetArraySize(list) == 1 &&
           cJSON_GetNumberValue(cJSON_GetObjectItem(o, "count")) >= 2;
}

static bool one(const cJSON *list)
{
    return cJSON_GetArraySize(list) == 1;
}

static void probes(const te_it_srv_t *srv, int n)
{
    te_it_str_t b = {0};
    for (int i = 0; i < n; i++)
        te_it_str_add(&b, "{\"kind\":\"probe\",\"source\":\"it\",\"tags\":{\"i\":\"%d\"}}\n", i);
    post(srv, &b, n);
}

static void serve_runs_recommenders_on_schedule(void **state)
{
    (void)state;
    te_it_srv_t srv;
    start_with_scripts(&srv, "probe.lua", probe_rec);
    probes(&srv, 3);
    cJSON *j = wait_list(&srv, "/v1/recommendations", counted_twice, 15000);
    if (!j) {
        te_it_dump_log(&srv);
        fail_msg("probe-rec was not saved twice as one finding");
    }
    const cJSON *o = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "recommendations"), 0);
    assert_string_equal(str_of(o, "name"), "probe-rec");
    assert_string_equal(str_of(o, "title"), "probes are few");
    assert_string_equal(str_of(o, "detail"), "seen 3");
    assert_string_equal(str_of(o, "state"), "open");
    const cJSON *ev = cJSON_GetObjectItem(o, "evidence");
    assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(ev, "n")), 3);
    assert_true(cJSON_IsArray(cJSON_GetObjectItem(ev, "list")));
    cJSON_Delete(j);

    /* enough probes: the next run resolves it */
    probes(&srv, 10);
    j = wait_list(&srv, "/v1/recommendations?state=resolved", one, 15000);
    if (!j) {
        te_it_dump_log(&srv);
        fail_msg("probe-rec was not resolved");
    }
    cJSON_Delete(j);
    j = te_it_get_json(&srv, "/v1/recommendations");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "recommendations")), 0);
    cJSON_Delete(j);
    j = te_it_get_json(&srv, "/v1/recommendations?state=all&name=probe-rec");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "recommendations")), 1);
    cJSON_Delete(j);

    /* bad parameters */
    te_it_resp_t r;
    assert_int_equal(te_it_http(&srv, "GET", "/v1/recommendations?state=closed", NULL, 0, NULL,
                                &r), 0);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "state must be open, resolved or all"));
    te_it_resp_free(&r);
    assert_int_equal(te_it_http(&srv, "GET", "/v1/recommendations?severity=high", NULL, 0, NULL,
                                &r), 0);
    assert_int_equal(r.status, 400);
    te_it_resp_free(&r);

    /* bad-rec fails every second with its file:line; the engine keeps
     * answering and saved nothing of it */
    j = te_it_get_json(&srv, "/v1/recommendations?state=all&name=bad-rec");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "recommendations")), 0);
    cJSON_Delete(j);
    assert_int_equal(te_it_stop(&srv, SIGTERM, 10000), 0);
    FILE *f = fopen(srv.log, "r");
    assert_non_null(f);
    char line[1024];
    bool logged = false;
    while (fgets(line, sizeof(line), f))
        if (strstr(line, "probe.lua:11: te.recommend \"bad-rec\": finding #1: \"severity\" must "
                         "be \"info\", \"warning\" or \"critical\", got \"high\""))
            logged = true;
    fclose(f);
    assert_true(logged);
    te_it_cleanup(&srv);
}

/* ---- a slow recommender does not stall ingest ---- */

static const char slow_rec[] =
    "local te = require \"te\"\n"
    "te.recommend { name = \"slow-rec\", fn = function(q)\n"
    "  local t0 = te.now()\n"
    "  while te.now() < t0 + 2 do end\n"
    "  return { { severity = \"info\", title = \"slow done\" } }\n"
    "end }\n";

static void slow_recommender_does_not_stall_ingest(void **state)
{
    (void)state;
    te_it_srv_t srv;
    char dir[400], rules[420], cfgpath[600], path[600];
    assert_int_equal(te_it_init(&srv), 0);
    snprintf(dir, sizeof(dir), "%s/lua", srv.root);
    snprintf(rules, sizeof(rules), "%s/rules", dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(mkdir(rules, 0700), 0);
    assert_int_equal(te_it_write_file(&srv, "lua/rules/slow.lua", slow_rec, strlen(slow_rec),
                                      path, sizeof(path)), 0);
    /* enough instructions for 2 s of spinning: only the clock stops it */
    const char cfg[] = "scripts { instructions = 2000000000 }\n";
    assert_int_equal(te_it_write_file(&srv, "telemetry.lua", cfg, strlen(cfg), cfgpath,
                                      sizeof(cfgpath)), 0);
    const char *const extra[] = {"--config", cfgpath, "--scripts", dir, NULL};
    assert_int_equal(te_it_start(&srv, extra), 0);

    /* it runs at start; while it spins, posts are answered at once */
    int posts_while_running = 0;
    int64_t worst_ms = 0, deadline = te_it_now_ms() + 20000;
    for (;;) {
        cJSON *j = te_it_get_json(&srv, "/v1/recommendations");
        assert_non_null(j);
        int n = cJSON_GetArraySize(cJSON_GetObjectItem(j, "recommendations"));
        cJSON_Delete(j);
        if (n == 1)
            break;
        assert_true(te_it_now_ms() < deadline);
        te_it_str_t b = {0};
        te_it_str_add(&b, "{\"kind\":\"tick\",\"source\":\"it\"}\n");
        int64_t t0 = te_it_now_ms();
        post(&srv, &b, 1);
        int64_t dt = te_it_now_ms() - t0;
        if (dt > worst_ms)
            worst_ms = dt;
        posts_while_running++;
    }
    if (worst_ms >= 1000)
        fail_msg("a POST took %lld ms while the recommender ran", (long long)worst_ms);
    assert_true(posts_while_running >= 5);
    assert_int_equal(te_it_stop(&srv, SIGTERM, 10000), 0);
    te_it_cleanup(&srv);
}

/* ---- the CLI's errors ---- */

static void cli_errors_and_exit_codes(void **state)
{
    (void)state;
    te_it_srv_t srv;
    start_with_scripts(&srv, "probe.lua", probe_rec);
    assert_int_equal(te_it_stop(&srv, SIGTERM, 10000), 0);
    char lua[400];
    snprintf(lua, sizeof(lua), "%s/lua", srv.root);
    int rc;
    char *out = NULL, *err = NULL;

    /* run: bad-rec fails (exit 1), probe-rec still ran */
    const char *const run_all[] = {"recommendations", "run", "--data", srv.data, "--scripts",
                                   lua, NULL};
    rc = te_it_run_cli(run_all, NULL, 0, &out, &err);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(err, "probe.lua:11: te.recommend \"bad-rec\": finding #1:"));
    assert_non_null(strstr(out, "probe-rec: 0 finding(s)"));
    free(out);
    free(err);

    const char *const run_one[] = {"recommendations", "run", "probe-rec", "--data", srv.data,
                                   "--scripts", lua, NULL};
    rc = te_it_run_cli(run_one, NULL, 0, &out, &err);
    assert_int_equal(rc, 0);
    free(out);
    free(err);

    const char *const run_missing[] = {"recommendations", "run", "nope", "--data", srv.data,
                                       "--scripts", lua, NULL};
    rc = te_it_run_cli(run_missing, NULL, 0, &out, &err);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(err, "no recommender \"nope\""));
    free(out);
    free(err);

    const char *const bad_state[] = {"recommendations", "--state", "closed", "--data", srv.data,
                                     NULL};
    rc = te_it_run_cli(bad_state, NULL, 0, &out, &err);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(err, "--state must be open, resolved or all, got \"closed\""));
    free(out);
    free(err);

    const char *const bad_sub[] = {"recommendations", "frobnicate", NULL};
    rc = te_it_run_cli(bad_sub, NULL, 0, &out, &err);
    assert_int_equal(rc, 2);
    free(out);
    free(err);

    const char *const help[] = {"recommendations", "--help", NULL};
    rc = te_it_run_cli(help, NULL, 0, &out, &err);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "recommendations run [NAME]"));
    free(out);
    free(err);
    te_it_cleanup(&srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(shipped_recommenders_find_dedup_and_resolve),
        cmocka_unit_test(serve_runs_recommenders_on_schedule),
        cmocka_unit_test(slow_recommender_does_not_stall_ingest),
        cmocka_unit_test(cli_errors_and_exit_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
