/*
 * it_detect.c - SPEC 6.3 and 6.7 on the real binary: a te.detector fed by
 * posted events learns a baseline, the state is saved at shutdown and
 * restored at the next start (a spike posted right after the restart
 * fires at once, which a fresh mad state could not do before its
 * warm-up), the alert carries the method, score and baseline labels, and
 * an absent detector fires when a source goes silent with no event at all.
 *
 * THREAD: main. Real time: detectors use every = "1s"; every wait polls a
 * condition with a deadline.
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

#define DETECTORS                                                                          \
    "local te = require \"te\"\n"                                                          \
    "te.detector {\n"                                                                      \
    "  name = \"lat\", kind = \"llm_call\", group_by = { \"model\" }, field = \"latency_ms\",\n" \
    "  stat = \"max\", window = \"2s\", every = \"1s\", severity = \"critical\",\n"         \
    "  method = te.methods.mad { window = 5, threshold = 5 },\n"                           \
    "  summary = \"{{model}} latency {{value}} vs {{labels.baseline}}\",\n"                \
    "}\n"                                                                                  \
    "te.detector {\n"                                                                      \
    "  name = \"silent\", group_by = { \"source\" }, every = \"1s\", window = \"2s\",\n"      \
    "  method = te.methods.absent { after = \"3s\" },\n"                                    \
    "}\n"

static int64_t now_ms(void)
{
    return te_it_now_ms();
}

static void pause_ms(long ms) /* the pace of a load generator, not a wait */
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static int start(te_it_srv_t *srv)
{
    char dir[400];
    snprintf(dir, sizeof(dir), "%s/lua", srv->root);
    const char *const extra[] = {"--scripts", dir, NULL};
    return te_it_start(srv, extra);
}

static void post(const te_it_srv_t *srv, const char *model, int latency)
{
    char body[256];
    snprintf(body, sizeof(body),
             "{\"kind\":\"llm_call\",\"tags\":{\"model\":\"%s\",\"source\":\"s1\"},"
             "\"fields\":{\"latency_ms\":%d}}\n",
             model, latency);
    te_it_resp_t resp;
    assert_int_equal(te_it_post(srv, body, strlen(body), &resp), 0);
    assert_int_equal(resp.status, 200);
    te_it_resp_free(&resp);
}

/* evals of detector name in /v1/rules (-1 when not listed). */
static long evals_of(const te_it_srv_t *srv, const char *name)
{
    long n = -1;
    cJSON *all = te_it_get_json(srv, "/v1/rules");
    const cJSON *s, *r;
    cJSON_ArrayForEach(s, cJSON_GetObjectItem(all, "scripts"))
    {
        cJSON_ArrayForEach(r, cJSON_GetObjectItem(s, "rules"))
        {
            const char *nm = cJSON_GetStringValue(cJSON_GetObjectItem(r, "name"));
            if (nm && strcmp(nm, name) == 0)
                n = (long)cJSON_GetNumberValue(cJSON_GetObjectItem(r, "evals"));
        }
    }
    cJSON_Delete(all);
    return n;
}

/* Reads the engine's stdout until a line containing needle (deadline). */
static bool wait_stdout(const te_it_srv_t *srv, const char *needle, int timeout_ms, char *line,
                        size_t cap)
{
    static char buf[8192];
    static size_t used;
    int64_t deadline = now_ms() + timeout_ms;
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
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return false;
        struct pollfd p = {.fd = srv->out_fd, .events = POLLIN};
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        ssize_t r = read(srv->out_fd, buf + used, sizeof(buf) - 1 - used);
        if (r <= 0)
            return false;
        used += (size_t)r;
    }
}

/* Rows of detector_state for detector (-1 on error). */
static long state_rows(const te_it_srv_t *srv, const char *detector)
{
    char path[400];
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    long n = -1;
    snprintf(path, sizeof(path), "%s/telemetry.db", srv->data);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db,
                           "SELECT count(*) FROM detector_state WHERE detector = ?1 AND "
                           "length(state) > 0",
                           -1, &q, NULL) == SQLITE_OK) {
        sqlite3_bind_text(q, 1, detector, -1, SQLITE_STATIC);
        if (sqlite3_step(q) == SQLITE_ROW)
            n = sqlite3_column_int(q, 0);
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    return n;
}

/* The first firing alert of rule in GET /v1/alerts (a copy) or NULL. */
static cJSON *firing_alert(const te_it_srv_t *srv, const char *rule)
{
    cJSON *list = te_it_get_json(srv, "/v1/alerts?state=firing");
    cJSON *found = NULL, *a;
    cJSON_ArrayForEach(a, cJSON_GetObjectItem(list, "alerts"))
    {
        const char *r = cJSON_GetStringValue(cJSON_GetObjectItem(a, "rule"));
        if (!found && r && strcmp(r, rule) == 0)
            found = cJSON_Duplicate(a, 1);
    }
    cJSON_Delete(list);
    return found;
}

static void detector_baseline_survives_restart_and_spike_fires(void **state)
{
    (void)state;
    te_it_srv_t srv;
    char dir[400], line[1024];
    assert_int_equal(te_it_init(&srv), 0);
    snprintf(dir, sizeof(dir), "%s/lua", srv.root);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(dir, sizeof(dir), "%s/lua/rules", srv.root);
    assert_int_equal(mkdir(dir, 0700), 0);
    char path[600];
    assert_int_equal(te_it_write_file(&srv, "lua/rules/det.lua", DETECTORS,
                                      strlen(DETECTORS), path, sizeof(path)), 0);
    assert_int_equal(start(&srv), 0);

    /* a steady latency until the detector has judged 8 windows */
    long e0 = evals_of(&srv, "lat");
    assert_true(e0 >= 0);
    int64_t deadline = now_ms() + 20000;
    while (evals_of(&srv, "lat") < e0 + 8 && now_ms() < deadline) {
        post(&srv, "m1", 100);
        pause_ms(100);
    }
    assert_true(evals_of(&srv, "lat") >= e0 + 8);
    assert_int_equal(te_it_stop(&srv, SIGTERM, 10000), 0);
    assert_int_equal(state_rows(&srv, "lat"), 1); /* saved at shutdown */

    /* after a restart, one spike fires at once: the baseline came back */
    assert_int_equal(start(&srv), 0);
    post(&srv, "m1", 1000);
    bool fired = wait_stdout(&srv, "[FIRING] critical lat", 5000, line, sizeof(line));
    if (!fired)
        te_it_dump_log(&srv);
    assert_true(fired);
    fprintf(stderr, "stdout: %s\n", line);
    assert_string_equal(line, "[FIRING] critical lat model=m1 value=1000: m1 latency 1000 vs 100");
    cJSON *a = NULL;
    deadline = now_ms() + 3000;
    while (!(a = firing_alert(&srv, "lat")) && now_ms() < deadline)
        pause_ms(20);
    assert_non_null(a);
    const cJSON *labels = cJSON_GetObjectItem(a, "labels");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(labels, "method")), "mad");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(labels, "baseline")), "100");
    assert_true(atof(cJSON_GetStringValue(cJSON_GetObjectItem(labels, "score"))) > 5);
    assert_int_equal(cJSON_GetNumberValue(cJSON_GetObjectItem(a, "value")), 1000);
    cJSON_Delete(a);

    /* the source s1 is now silent: absent fires with no event at all */
    fired = wait_stdout(&srv, "[FIRING] warning silent source=s1", 8000, line, sizeof(line));
    assert_true(fired);
    fprintf(stderr, "stdout: %s\n", line);
    assert_int_equal(te_it_stop(&srv, SIGTERM, 10000), 0);
    te_it_cleanup(&srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(detector_baseline_survives_restart_and_spike_fires),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
