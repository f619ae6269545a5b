/*
 * it_rules.c - SPEC 6.7 and 7 on the real binary: rule files are picked up,
 * reloaded and reported in GET /v1/rules within 1 s while events flow; a
 * broken edit keeps the previous version running; SIGHUP and POST
 * /v1/rules/reload reload everything; a runaway condition disables its
 * script while the engine keeps answering; a firing alert is printed by
 * the stdout notifier, stored, and still firing (same id) after kill -9.
 *
 * THREAD: main + the harness's poster threads. Real time: rules use
 * every = "1s", and every wait polls a condition with a deadline.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
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

/* ---- helpers ---- */

static void scripts_dir(const te_it_srv_t *srv, char *out, size_t n)
{
    snprintf(out, n, "%s/lua", srv->root);
}

/* A fresh engine with ROOT/lua as its scripts dir (rules in lua/rules). */
static void start_with_scripts(te_it_srv_t *srv)
{
    char dir[400], rules[420];
    assert_int_equal(te_it_init(srv), 0);
    scripts_dir(srv, dir, sizeof(dir));
    snprintf(rules, sizeof(rules), "%s/rules", dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(mkdir(rules, 0700), 0);
}

static int restart(te_it_srv_t *srv)
{
    char dir[400];
    scripts_dir(srv, dir, sizeof(dir));
    const char *const extra[] = {"--scripts", dir, NULL};
    return te_it_start(srv, extra);
}

/* Writes lua/rules/NAME atomically (temp file + rename), as editors do. */
static void put_rule(const te_it_srv_t *srv, const char *name, const char *src)
{
    char tmpname[300], path[600], final[600];
    snprintf(tmpname, sizeof(tmpname), "lua/rules/.%s.tmp", name);
    assert_int_equal(te_it_write_file(srv, tmpname, src, strlen(src), path, sizeof(path)), 0);
    snprintf(final, sizeof(final), "%s/lua/rules/%s", srv->root, name);
    assert_int_equal(rename(path, final), 0);
}

static void del_rule(const te_it_srv_t *srv, const char *name)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/lua/rules/%s", srv->root, name);
    assert_int_equal(unlink(path), 0);
}

/* The /v1/rules entry of the script whose file ends with /NAME (a copy,
 * cJSON_Delete it), or NULL. */
static cJSON *script_entry(const te_it_srv_t *srv, const char *name)
{
    cJSON *all = te_it_get_json(srv, "/v1/rules");
    if (!all)
        return NULL;
    cJSON *found = NULL, *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItem(all, "scripts"))
    {
        const char *file = cJSON_GetStringValue(cJSON_GetObjectItem(s, "file"));
        size_t fl = file ? strlen(file) : 0, nl = strlen(name);
        if (fl > nl && strcmp(file + fl - nl, name) == 0 && file[fl - nl - 1] == '/')
            found = cJSON_Duplicate(s, 1);
    }
    cJSON_Delete(all);
    return found;
}

static const char *str_of(const cJSON *o, const char *key)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(o, key));
    return s ? s : "";
}

static const cJSON *rule_of(const cJSON *script, const char *name)
{
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(script, "rules"))
    {
        if (strcmp(str_of(r, "name"), name) == 0)
            return r;
    }
    return NULL;
}

typedef bool (*script_pred)(const cJSON *entry, const void *arg);

/* Polls /v1/rules until pred(entry of NAME) holds (entry may be NULL) or
 * timeout_ms passes. Returns the entry that satisfied it (NULL with found
 * false when the deadline passed). */
static cJSON *wait_script(const te_it_srv_t *srv, const char *name, script_pred pred,
                          const void *arg, int timeout_ms, bool *found)
{
    int64_t deadline = te_it_now_ms() + timeout_ms;
    for (;;) {
        cJSON *e = script_entry(srv, name);
        if (pred(e, arg)) {
            *found = true;
            return e;
        }
        cJSON_Delete(e);
        if (te_it_now_ms() >= deadline) {
            *found = false;
            return NULL;
        }
        struct timespec ts = {0, 10 * 1000000}; /* poll interval, not a guess */
        nanosleep(&ts, NULL);
    }
}

static bool is_ok(const cJSON *e, const void *arg)
{
    (void)arg;
    return e && strcmp(str_of(e, "status"), "ok") == 0;
}

static bool is_gone(const cJSON *e, const void *arg)
{
    (void)arg;
    return e == NULL;
}

static bool version_differs(const cJSON *e, const void *arg)
{
    return e && strcmp(str_of(e, "status"), "ok") == 0 &&
           strcmp(str_of(e, "version"), (const char *)arg) != 0;
}

static bool loaded_at_differs(const cJSON *e, const void *arg)
{
    return e && strcmp(str_of(e, "loaded_at"), (const char *)arg) != 0;
}

static bool is_error(const cJSON *e, const void *arg)
{
    (void)arg;
    return e && strcmp(str_of(e, "status"), "error") == 0;
}

static bool is_disabled(const cJSON *e, const void *arg)
{
    const cJSON *r = e ? rule_of(e, (const char *)arg) : NULL;
    return r && strcmp(str_of(r, "status"), "disabled") == 0;
}

static bool evals_at_least(const cJSON *e, const void *arg)
{
    const long *want = arg;
    const cJSON *r = e ? cJSON_GetArrayItem(cJSON_GetObjectItem(e, "rules"), 0) : NULL;
    return r && cJSON_GetNumberValue(cJSON_GetObjectItem(r, "evals")) >= (double)*want;
}

static const char RULE_V1[] = "local te = require \"te\"\n"
                              "te.rule {\n"
                              "  name = \"bg-volume\", kind = \"bg\", window = \"5s\", every = \"1s\",\n"
                              "  aggs = { n = te.count() },\n"
                              "  condition = function(a) return a.n > 1000000 end,\n"
                              "}\n";

/* ---- tests ---- */

/* GET path and the integer at key (a "a.b" path into the JSON answer). */
static long json_int_at(const te_it_srv_t *srv, const char *path, const char *obj, const char *key)
{
    te_it_resp_t resp;
    assert_int_equal(te_it_http(srv, "GET", path, NULL, 0, NULL, &resp), 0);
    assert_int_equal(resp.status, 200);
    cJSON *j = cJSON_Parse(resp.body);
    te_it_resp_free(&resp);
    assert_non_null(j);
    const cJSON *o = cJSON_GetObjectItem(j, obj);
    long v = (long)cJSON_GetNumberValue(cJSON_GetObjectItem(o, key));
    cJSON_Delete(j);
    return v;
}

static void rule_files_reload_within_1s_while_events_flow(void **state)
{
    (void)state;
    te_it_srv_t srv;
    bool ok;
    start_with_scripts(&srv);
    assert_int_equal(restart(&srv), 0);
    te_it_load_t *l = te_it_load_start(&srv, "bg", 2, 50);
    assert_true(te_it_load_wait_acked(l, 5, 10000) >= 5);

    /* a new file */
    int64_t t0 = te_it_now_ms();
    put_rule(&srv, "vol.lua", RULE_V1);
    cJSON *e = wait_script(&srv, "vol.lua", is_ok, NULL, 1000, &ok);
    assert_true(ok);
    fprintf(stderr, "picked up in %lld ms\n", (long long)(te_it_now_ms() - t0));
    assert_non_null(rule_of(e, "bg-volume"));
    char v1[64];
    snprintf(v1, sizeof(v1), "%s", str_of(e, "version"));
    assert_true(strlen(v1) > 0);
    cJSON_Delete(e);
    long two = 2;
    cJSON_Delete(wait_script(&srv, "vol.lua", evals_at_least, &two, 4000, &ok));
    assert_true(ok);

    /* an edit: a new version, same rule */
    char src[1024];
    snprintf(src, sizeof(src), "%s-- edited\n", RULE_V1);
    t0 = te_it_now_ms();
    put_rule(&srv, "vol.lua", src);
    e = wait_script(&srv, "vol.lua", version_differs, v1, 1000, &ok);
    assert_true(ok);
    fprintf(stderr, "edit picked up in %lld ms\n", (long long)(te_it_now_ms() - t0));
    char v2[64];
    snprintf(v2, sizeof(v2), "%s", str_of(e, "version"));
    cJSON_Delete(e);

    /* a broken edit: error with file:line, the previous version runs on */
    put_rule(&srv, "vol.lua", "local te = require \"te\"\n\nte.rule { name = \"bg-volume\",\n");
    e = wait_script(&srv, "vol.lua", is_error, NULL, 1000, &ok);
    assert_true(ok);
    const char *err = str_of(e, "error");
    fprintf(stderr, "broken: %s\n", err);
    assert_non_null(strstr(err, "vol.lua:"));
    assert_string_equal(str_of(e, "version"), v2);
    assert_int_equal(json_int_at(&srv, "/v1/status", "scripts", "errors"), 1);
    const cJSON *r = rule_of(e, "bg-volume");
    assert_non_null(r);
    long evals = (long)cJSON_GetNumberValue(cJSON_GetObjectItem(r, "evals")) + 2;
    cJSON_Delete(e);
    cJSON_Delete(wait_script(&srv, "vol.lua", evals_at_least, &evals, 4000, &ok));
    assert_true(ok); /* still evaluated every second */

    /* a bad declaration names its line too */
    put_rule(&srv, "typo.lua", "local te = require \"te\"\n"
                               "te.rule { name = \"t\", kind = \"k\", windw = \"5m\" }\n");
    e = wait_script(&srv, "typo.lua", is_error, NULL, 1000, &ok);
    assert_true(ok);
    assert_non_null(strstr(str_of(e, "error"), "typo.lua:2:"));
    assert_non_null(strstr(str_of(e, "error"), "windw"));
    cJSON_Delete(e);

    /* fixed, then deleted */
    put_rule(&srv, "vol.lua", RULE_V1);
    cJSON_Delete(wait_script(&srv, "vol.lua", is_ok, NULL, 1000, &ok));
    assert_true(ok);
    del_rule(&srv, "vol.lua");
    del_rule(&srv, "typo.lua");
    cJSON_Delete(wait_script(&srv, "vol.lua", is_gone, NULL, 1000, &ok));
    assert_true(ok);
    cJSON_Delete(wait_script(&srv, "typo.lua", is_gone, NULL, 1000, &ok));
    assert_true(ok);

    /* ingest never stopped and lost nothing */
    int before = te_it_load_acked(l);
    assert_true(te_it_load_wait_acked(l, before + 5, 10000) >= before + 5);
    te_it_load_stop(l);
    assert_int_equal(te_it_load_verify(l, &srv), 0);
    te_it_load_free(l);
    assert_int_equal(te_it_stop(&srv, SIGTERM, 10000), 0);
    te_it_cleanup(&srv);
}

static void sighup_and_post_reload_reload_every_file(void **state)
{
    (void)state;
    te_it_srv_t srv;
    bool ok;
    start_with_scripts(&srv);
    put_rule(&srv, "vol.lua", RULE_V1);
    assert_int_equal(restart(&srv), 0);
    cJSON *e = script_entry(&srv, "vol.lua"); /* loaded before "ready" */
    assert_non_null(e);
    assert_string_equal(str_of(e, "status"), "ok");
    char at[64];
    snprintf(at, sizeof(at), "%s", str_of(e, "loaded_at"));
    cJSON_Delete(e);

    /* POST answers after the reload, with the new state */
    te_it_resp_t resp;
    assert_int_equal(te_it_http(&srv, "POST", "/v1/rules/reload", NULL, 0, NULL, &resp), 0);
    assert_int_equal(resp.status, 200);
    cJSON *body = cJSON_Parse(resp.body);
    te_it_resp_free(&resp);
    assert_non_null(body);
    const cJSON *s0 = cJSON_GetArrayItem(cJSON_GetObjectItem(body, "scripts"), 0);
    assert_non_null(s0);
    assert_string_not_equal(str_of(s0, "loaded_at"), at);
    snprintf(at, sizeof(at), "%s", str_of(s0, "loaded_at"));
    cJSON_Delete(body);

    /* GET on the reload path is refused with the allowed method */
    assert_int_equal(te_it_http(&srv, "GET", "/v1/rules/reload", NULL, 0, NULL, &resp), 0);
    assert_int_equal(resp.status, 405);
    te_it_resp_free(&resp);

    /* SIGHUP */
    assert_int_equal(kill(srv.pid, SIGHUP), 0);
    cJSON_Delete(wait_script(&srv, "vol.lua", loaded_at_differs, at, 1000, &ok));
    assert_true(ok);
    assert_int_equal(te_it_stop(&srv, SIGTERM, 10000), 0);
    te_it_cleanup(&srv);
}

static void runaway_condition_is_disabled_engine_keeps_answering(void **state)
{
    (void)state;
    te_it_srv_t srv;
    bool ok;
    start_with_scripts(&srv);
    put_rule(&srv, "spin.lua", "local te = require \"te\"\n"
                               "te.rule {\n"
                               "  name = \"spin\", kind = \"spin\", window = \"5s\", every = \"1s\",\n"
                               "  aggs = { n = te.count() },\n"
                               "  condition = function(a) while true do end end,\n"
                               "}\n");
    put_rule(&srv, "toplevel.lua", "while true do end\n");
    assert_int_equal(restart(&srv), 0);
    cJSON *e = script_entry(&srv, "toplevel.lua");
    assert_non_null(e);
    assert_string_equal(str_of(e, "status"), "error");
    fprintf(stderr, "top level: %s\n", str_of(e, "error"));
    assert_non_null(strstr(str_of(e, "error"), "budget"));
    cJSON_Delete(e);

    const char ev[] = "{\"kind\":\"spin\"}\n";
    te_it_resp_t resp;
    assert_int_equal(te_it_post(&srv, ev, strlen(ev), &resp), 0);
    assert_int_equal(resp.status, 200);
    te_it_resp_free(&resp);
    e = wait_script(&srv, "spin.lua", is_disabled, "spin", 5000, &ok);
    assert_true(ok);
    const cJSON *r = rule_of(e, "spin");
    fprintf(stderr, "disabled: %s\n", str_of(r, "error"));
    assert_non_null(strstr(str_of(r, "error"), "budget"));
    assert_string_equal(str_of(e, "status"), "disabled");
    cJSON_Delete(e);
    assert_int_equal(json_int_at(&srv, "/v1/status", "scripts", "disabled"), 1);

    /* the engine answers at once and goes on ingesting */
    int64_t t0 = te_it_now_ms();
    for (int i = 0; i < 5; i++) {
        assert_int_equal(te_it_post(&srv, ev, strlen(ev), &resp), 0);
        assert_int_equal(resp.status, 200);
        te_it_resp_free(&resp);
    }
    assert_true(te_it_now_ms() - t0 < 2000);
    assert_int_equal(te_it_wait_count(&srv, "spin", NULL, 6, 5000), 6);
    assert_int_equal(te_it_stop(&srv, SIGTERM, 10000), 0);
    te_it_cleanup(&srv);
}

/* Reads the engine's stdout until a line containing needle (deadline). */
static bool wait_stdout(const te_it_srv_t *srv, const char *needle, int timeout_ms, char *line,
                        size_t cap)
{
    static char buf[8192];
    static size_t used;
    int64_t deadline = te_it_now_ms() + timeout_ms;
    for (;;) {
        char *nl;
        while ((nl = memchr(buf, '\n', used)) != NULL) {
            size_t len = (size_t)(nl - buf);
            snprintf(line, cap, "%.*s", (int)len, buf);
            memmove(buf, nl + 1, used - len - 1);
            used -= len + 1;
            if (strstr(line, needle))
                return true;
        }
        int64_t left = deadline - te_it_now_ms();
        if (left <= 0)
            return false;
        struct pollfd p = {.fd = srv->out_fd, .events = POLLIN};
        int pr = poll(&p, 1, (int)left);
        if (pr <= 0)
            continue;
        ssize_t r = read(srv->out_fd, buf + used, sizeof(buf) - 1 - used);
        if (r <= 0)
            return false;
        used += (size_t)r;
    }
}

/* SELECT one text column of the alerts table. */
static bool alert_row(const te_it_srv_t *srv, const char *rule, char *id, size_t idn,
                      char *st, size_t stn)
{
    char path[400];
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    bool found = false;
    snprintf(path, sizeof(path), "%s/telemetry.db", srv->data);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        goto out;
    sqlite3_busy_timeout(db, 2000);
    if (sqlite3_prepare_v2(db,
                           "SELECT id, state FROM alerts WHERE rule = ?1 "
                           "ORDER BY active_at_ns DESC LIMIT 1",
                           -1, &q, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(q, 1, rule, -1, SQLITE_STATIC);
    if (sqlite3_step(q) == SQLITE_ROW) {
        snprintf(id, idn, "%s", (const char *)sqlite3_column_text(q, 0));
        snprintf(st, stn, "%s", (const char *)sqlite3_column_text(q, 1));
        found = true;
    }
out:
    sqlite3_finalize(q);
    sqlite3_close(db);
    return found;
}

static long history_count(const te_it_srv_t *srv, const char *id, const char *transition)
{
    char path[400];
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    long n = -1;
    snprintf(path, sizeof(path), "%s/telemetry.db", srv->data);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db,
                           "SELECT count(*) FROM alert_history WHERE alert_id = ?1 "
                           "AND transition = ?2",
                           -1, &q, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(db, 2000);
        sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, transition, -1, SQLITE_STATIC);
        if (sqlite3_step(q) == SQLITE_ROW)
            n = sqlite3_column_int(q, 0);
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    return n;
}

#define ERR_RULE                                                                          \
    "local te = require \"te\"\n"                                                          \
    "te.rule {\n"                                                                          \
    "  name = \"llm-errors\", kind = \"llm_call\", group_by = { \"provider\" },\n"           \
    "  window = \"5s\", every = \"1s\", keep_firing = \"10m\", severity = \"critical\",\n"   \
    "  aggs = { errors = te.count{ status = \"error\" }, total = te.count(),\n"              \
    "           p95 = te.quantile(\"latency_ms\", 0.95) },\n"                                \
    "  condition = function(a) return a.errors >= 2 end,\n"                                \
    "  value = function(a) return a.errors / a.total end,\n"                               \
    "  summary = \"{{provider}} error rate {{value|pct}}\",\n"                              \
    "}\n"

static void firing_alert_is_notified_and_survives_kill9(void **state)
{
    (void)state;
    te_it_srv_t srv;
    bool ok;
    char line[1024], id[64] = "", st[32] = "";
    start_with_scripts(&srv);
    put_rule(&srv, "err.lua", ERR_RULE);
    assert_int_equal(restart(&srv), 0);
    const char body[] =
        "{\"kind\":\"llm_call\",\"tags\":{\"provider\":\"openai\",\"status\":\"error\"}}\n"
        "{\"kind\":\"llm_call\",\"tags\":{\"provider\":\"openai\",\"status\":\"error\"}}\n"
        "{\"kind\":\"llm_call\",\"tags\":{\"provider\":\"openai\",\"status\":\"ok\"}}\n"
        "{\"kind\":\"llm_call\",\"tags\":{\"provider\":\"openai\",\"status\":\"ok\"}}\n";
    te_it_resp_t resp;
    assert_int_equal(te_it_post(&srv, body, strlen(body), &resp), 0);
    assert_int_equal(resp.status, 200);
    te_it_resp_free(&resp);

    /* the stdout notifier: one line per transition (no colour: a pipe) */
    assert_true(wait_stdout(&srv, "[FIRING]", 4000, line, sizeof(line)));
    fprintf(stderr, "stdout: %s\n", line);
    assert_string_equal(line, "[FIRING] critical llm-errors provider=openai value=0.5: openai "
                              "error rate 50.0%");

    /* stored in the writer's transaction */
    int64_t deadline = te_it_now_ms() + 3000;
    while (!(alert_row(&srv, "llm-errors", id, sizeof(id), st, sizeof(st)) &&
             strcmp(st, "firing") == 0) &&
           te_it_now_ms() < deadline) {
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    assert_string_equal(st, "firing");
    assert_int_equal(history_count(&srv, id, "firing"), 1);

    /* listed over HTTP and by the CLI (a read-only store while serving) */
    assert_int_equal(te_it_http(&srv, "GET", "/v1/alerts?state=firing", NULL, 0, NULL, &resp), 0);
    assert_int_equal(resp.status, 200);
    cJSON *list = cJSON_Parse(resp.body);
    te_it_resp_free(&resp);
    const cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItem(list, "alerts"), 0);
    assert_non_null(first);
    assert_string_equal(str_of(first, "id"), id);
    assert_string_equal(str_of(first, "state"), "firing");
    assert_string_equal(str_of(first, "rule"), "llm-errors");
    cJSON_Delete(list);
    assert_int_equal(te_it_http(&srv, "GET", "/v1/alerts?state=acked", NULL, 0, NULL, &resp), 0);
    assert_int_equal(resp.status, 200); /* nothing acknowledged yet */
    assert_non_null(strstr(resp.body, "\"alerts\":[]"));
    te_it_resp_free(&resp);
    assert_int_equal(te_it_http(&srv, "GET", "/v1/alerts?state=acknowledged", NULL, 0, NULL,
                                &resp), 0);
    assert_int_equal(resp.status, 400);
    te_it_resp_free(&resp);
    char *out = NULL;
    const char *cli[] = {"alerts", "list", "--data", srv.data, "--state", "firing", "--format",
                         "json", NULL};
    assert_int_equal(te_it_run_cli(cli, NULL, 0, &out, NULL), 0);
    assert_non_null(strstr(out, id));
    free(out);

    te_it_kill9(&srv);
    assert_int_equal(restart(&srv), 0);
    /* the window is empty after the restart: keep_firing holds it firing;
     * wait for two evaluations of the restored rule */
    long two = 2;
    cJSON_Delete(wait_script(&srv, "err.lua", evals_at_least, &two, 5000, &ok));
    assert_true(ok);
    char id2[64] = "", st2[32] = "";
    assert_true(alert_row(&srv, "llm-errors", id2, sizeof(id2), st2, sizeof(st2)));
    assert_string_equal(id2, id);
    assert_string_equal(st2, "firing");
    assert_int_equal(history_count(&srv, id, "firing"), 1); /* not fired twice */

    /* an edit that keeps the rule's shape (two aggregates, group_by) keeps
     * its alert: same id, still firing, never resolved */
    cJSON *e = script_entry(&srv, "err.lua");
    assert_non_null(e);
    char v1[64];
    snprintf(v1, sizeof(v1), "%s", str_of(e, "version"));
    cJSON_Delete(e);
    put_rule(&srv, "err.lua", ERR_RULE "-- summary and severity may change freely\n");
    cJSON_Delete(wait_script(&srv, "err.lua", version_differs, v1, 1000, &ok));
    assert_true(ok);
    long evals = 0;
    e = script_entry(&srv, "err.lua");
    evals = (long)cJSON_GetNumberValue(
                cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(e, "rules"), 0),
                                    "evals")) + 1;
    assert_true(evals >= 3); /* counters carried over: the rule was kept */
    cJSON_Delete(e);
    cJSON_Delete(wait_script(&srv, "err.lua", evals_at_least, &evals, 3000, &ok));
    assert_true(ok);
    assert_true(alert_row(&srv, "llm-errors", id2, sizeof(id2), st2, sizeof(st2)));
    assert_string_equal(id2, id);
    assert_string_equal(st2, "firing");
    assert_int_equal(history_count(&srv, id, "resolved"), 0);

    /* a rule removed while its alert fires: resolved, notified, stored */
    del_rule(&srv, "err.lua");
    assert_true(wait_stdout(&srv, "[RESOLVED]", 3000, line, sizeof(line)));
    fprintf(stderr, "stdout: %s\n", line);
    assert_non_null(strstr(line, "llm-errors provider=openai"));
    assert_non_null(strstr(line, "(rule removed)"));
    assert_int_equal(te_it_stop(&srv, SIGTERM, 10000), 0);
    assert_true(alert_row(&srv, "llm-errors", id2, sizeof(id2), st2, sizeof(st2)));
    assert_string_equal(st2, "resolved");
    assert_int_equal(history_count(&srv, id, "resolved"), 1);
    te_it_cleanup(&srv);
}

static void hook_alert_and_derived_event_are_committed_then_fed(void **state)
{
    (void)state;
    te_it_srv_t srv;
    char line[1024];
    start_with_scripts(&srv);
    put_rule(&srv, "hook.lua",
             "local te = require \"te\"\n"
             "te.on_event { name = \"slow\", kind = \"llm_call\",\n"
             "  fn = function(ev, ctx)\n"
             "    if (ev.fields.latency_ms or 0) > 1000 then\n"
             "      ctx.emit { kind = \"slow_call\", tags = { model = ev.tags.model } }\n"
             "      ctx.alert { severity = \"warning\", group = { model = ev.tags.model },\n"
             "                  value = ev.fields.latency_ms, summary = \"{{model}} slow\" }\n"
             "    end\n"
             "  end }\n"
             "te.rule { name = \"slow-calls\", kind = \"slow_call\", window = \"5s\",\n"
             "  every = \"1s\", aggs = { n = te.count() },\n"
             "  condition = function(a) return a.n >= 1 end, summary = \"{{value}}\" }\n");
    assert_int_equal(restart(&srv), 0);
    const char body[] = "{\"kind\":\"llm_call\",\"tags\":{\"model\":\"m\"},"
                        "\"fields\":{\"latency_ms\":5000}}\n";
    te_it_resp_t resp;
    assert_int_equal(te_it_post(&srv, body, strlen(body), &resp), 0);
    assert_int_equal(resp.status, 200);
    te_it_resp_free(&resp);
    assert_true(wait_stdout(&srv, "[FIRING] warning slow model=m", 3000, line, sizeof(line)));
    /* the derived event is stored, then fed to the rule on its kind */
    assert_int_equal(te_it_wait_count(&srv, "slow_call", NULL, 1, 3000), 1);
    assert_true(wait_stdout(&srv, "slow-calls", 4000, line, sizeof(line)));
    fprintf(stderr, "stdout: %s\n", line);
    assert_non_null(strstr(line, "[FIRING]"));
    assert_int_equal(te_it_stop(&srv, SIGTERM, 10000), 0);
    te_it_cleanup(&srv);
}

static void rules_cli_check_and_list(void **state)
{
    (void)state;
    te_it_srv_t srv;
    char *out = NULL, *err = NULL, dir[400], rules[420];
    start_with_scripts(&srv);
    scripts_dir(&srv, dir, sizeof(dir));
    snprintf(rules, sizeof(rules), "%s/rules", dir);
    put_rule(&srv, "good.lua", RULE_V1);
    put_rule(&srv, "bad.lua", "local te = require \"te\"\n"
                              "te.rule { name = \"t\", kind = \"k\", windw = \"5m\" }\n");
    const char *const check[] = {"rules", "check", rules, NULL};
    int rc = te_it_run_cli(check, NULL, 0, &out, &err);
    fprintf(stderr, "check -> %d\n%s%s", rc, out, err);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "bad.lua:2: te.rule: unknown key \"windw\""));
    assert_non_null(strstr(out, "ok "));
    assert_non_null(strstr(out, "good.lua (1 rules)"));
    free(out);
    free(err);

    char good[600];
    snprintf(good, sizeof(good), "%s/good.lua", rules);
    const char *const check1[] = {"rules", "check", good, NULL};
    assert_int_equal(te_it_run_cli(check1, NULL, 0, &out, &err), 0);
    free(out);
    free(err);

    const char *const list[] = {"rules", "list", rules, "--format", "json", NULL};
    assert_int_equal(te_it_run_cli(list, NULL, 0, &out, &err), 0);
    cJSON *j = cJSON_Parse(out);
    assert_non_null(j);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "scripts")), 2);
    cJSON_Delete(j);
    free(out);
    free(err);

    const char *const bad[] = {"rules", "frob", NULL};
    assert_int_equal(te_it_run_cli(bad, NULL, 0, &out, &err), 2);
    free(out);
    free(err);
    te_it_cleanup(&srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rule_files_reload_within_1s_while_events_flow),
        cmocka_unit_test(sighup_and_post_reload_reload_every_file),
        cmocka_unit_test(runaway_condition_is_disabled_engine_keeps_answering),
        cmocka_unit_test(firing_alert_is_notified_and_survives_kill9),
        cmocka_unit_test(hook_alert_and_derived_event_are_committed_then_fed),
        cmocka_unit_test(rules_cli_check_and_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
