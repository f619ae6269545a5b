/*
 * it_alerts_tools.c - `alerts test`, `alerts trigger` and `alerts watch` on
 * the real binary.
 *
 * test:    events stored with `ingest`, a rule in a temp scripts dir; the
 *          command prints the firing group (and the pending one of a rule
 *          with a long `pending`), nothing lands in the alerts table, --at
 *          before the events says nothing fires, an unknown rule gets a
 *          "did you mean".
 * trigger: a loopback webhook receiver in this test gets the SPEC 7 payload
 *          with the --group values; a notifier that refuses connections
 *          makes the command exit 1.
 * watch:   started as a child while serve runs; a rule that fires shows up
 *          as one NDJSON line; SIGTERM ends it with status 0.
 */
#define _GNU_SOURCE /* strcasestr */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "harness_recv.h"

/* A loopback port nothing listens on (bound, then closed). */
static int dead_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t alen = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &alen);
    close(fd);
    return ntohs(a.sin_port);
}

/* ---------- setup: telemetry.lua + lua/rules/<file> under the temp root ---------- */

static void write_setup(te_it_srv_t *srv, const char *cfg_extra, const char *rule, char *cfg,
                        size_t cap)
{
    char dir[400], text[2048], path[600];
    snprintf(dir, sizeof(dir), "%s/lua", srv->root);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(dir, sizeof(dir), "%s/lua/rules", srv->root);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(text, sizeof(text), "scripts { dir = \"lua\" }\n%s", cfg_extra ? cfg_extra : "");
    assert_int_equal(te_it_write_file(srv, "telemetry.lua", text, strlen(text), cfg, cap), 0);
    assert_int_equal(te_it_write_file(srv, "lua/rules/r.lua", rule, strlen(rule), path,
                                      sizeof(path)), 0);
}

static cJSON *find_group(const cJSON *alerts, const char *key, const char *value)
{
    const cJSON *o;
    cJSON_ArrayForEach(o, alerts)
    {
        const char *v =
            cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "group"), key));
        if (v && strcmp(v, value) == 0)
            return (cJSON *)o;
    }
    return NULL;
}

static const char *str_of(const cJSON *o, const char *key)
{
    return cJSON_GetStringValue(cJSON_GetObjectItem(o, key));
}

/* ---------- alerts test ---------- */

static const char test_rules[] =
    "local te = require \"te\"\n"
    "te.rule { name = \"llm-errors\", kind = \"llm_call\", group_by = { \"provider\" },\n"
    "  window = \"10m\", every = \"1s\", severity = \"critical\",\n"
    "  aggs = { errors = te.count{ status = \"error\" } },\n"
    "  condition = function(a) return a.errors >= 2 end,\n"
    "  value = function(a) return a.errors end,\n"
    "  summary = \"{{provider}} errors {{value}}\" }\n"
    "te.rule { name = \"llm-errors-slow\", kind = \"llm_call\", group_by = { \"provider\" },\n"
    "  window = \"10m\", every = \"1s\", pending = \"1h\",\n"
    "  aggs = { errors = te.count{ status = \"error\" } },\n"
    "  condition = function(a) return a.errors >= 2 end }\n";

static void alerts_test_evaluates_stored_events(void **state)
{
    (void)state;
    te_it_srv_t srv;
    char cfg[600], ts[40];
    assert_int_equal(te_it_init(&srv), 0);
    write_setup(&srv, NULL, test_rules, cfg, sizeof(cfg));

    te_it_str_t ev = {0};
    te_it_rfc3339(-30000, ts, sizeof(ts));
    for (int i = 0; i < 3; i++)
        te_it_str_add(&ev, "{\"ts\":\"%s\",\"kind\":\"llm_call\",\"tags\":{\"provider\":\"openai\","
                           "\"status\":\"error\"}}\n", ts);
    te_it_str_add(&ev, "{\"ts\":\"%s\",\"kind\":\"llm_call\",\"tags\":{\"provider\":\"anthropic\","
                       "\"status\":\"error\"}}\n", ts);
    const char *ingest[] = {"ingest", "--data", srv.data, "-", NULL};
    assert_int_equal(te_it_run_cli(ingest, ev.p, ev.len, NULL, NULL), 0);
    te_it_str_free(&ev);

    /* json: openai fires with its value, anthropic is ok */
    char *out = NULL, *err = NULL;
    const char *t1[] = {"alerts", "test", "llm-errors", "--config", cfg, "--data", srv.data,
                        "--format", "json", NULL};
    assert_int_equal(te_it_run_cli(t1, NULL, 0, &out, &err), 0);
    cJSON *j = cJSON_Parse(out);
    if (!j)
        fprintf(stderr, "stdout: %s\nstderr: %s\n", out, err);
    assert_non_null(j);
    assert_string_equal(str_of(j, "rule"), "llm-errors");
    const cJSON *alerts = cJSON_GetObjectItem(j, "alerts");
    assert_int_equal(cJSON_GetArraySize(alerts), 2);
    const cJSON *o = find_group(alerts, "provider", "openai");
    assert_non_null(o);
    assert_string_equal(str_of(o, "state"), "firing");
    assert_string_equal(str_of(o, "severity"), "critical");
    assert_true(cJSON_GetNumberValue(cJSON_GetObjectItem(o, "value")) == 3);
    assert_string_equal(str_of(o, "summary"), "openai errors 3");
    o = find_group(alerts, "provider", "anthropic");
    assert_non_null(o);
    assert_string_equal(str_of(o, "state"), "ok");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(o, "value")));
    cJSON_Delete(j);
    free(out);
    free(err);

    /* table */
    const char *t2[] = {"alerts", "test", "llm-errors", "--config", cfg, "--data", srv.data,
                        NULL};
    assert_int_equal(te_it_run_cli(t2, NULL, 0, &out, NULL), 0);
    assert_non_null(strstr(out, "provider=openai"));
    assert_non_null(strstr(out, "1 firing, 0 pending, 1 ok"));
    free(out);

    /* a rule with pending = 1h is pending, with the time it still needs */
    const char *t3[] = {"alerts", "test", "llm-errors-slow", "--config", cfg, "--data", srv.data,
                        "--format", "json", NULL};
    assert_int_equal(te_it_run_cli(t3, NULL, 0, &out, NULL), 0);
    j = cJSON_Parse(out);
    assert_non_null(j);
    o = find_group(cJSON_GetObjectItem(j, "alerts"), "provider", "openai");
    assert_non_null(o);
    assert_string_equal(str_of(o, "state"), "pending");
    assert_non_null(str_of(o, "fires_in"));
    assert_string_equal(str_of(o, "severity"), "warning");
    cJSON_Delete(j);
    free(out);

    /* at a time before the events, nothing fires */
    const char *t4[] = {"alerts", "test", "llm-errors", "--at", "5m", "--config", cfg, "--data",
                        srv.data, "--format", "json", NULL};
    assert_int_equal(te_it_run_cli(t4, NULL, 0, &out, NULL), 0);
    j = cJSON_Parse(out);
    assert_non_null(j);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "alerts")), 0);
    cJSON_Delete(j);
    free(out);

    /* nothing stored */
    const char *list[] = {"alerts", "list", "--data", srv.data, "--format", "json", NULL};
    assert_int_equal(te_it_run_cli(list, NULL, 0, &out, NULL), 0);
    j = cJSON_Parse(out);
    assert_non_null(j);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "alerts")), 0);
    cJSON_Delete(j);
    free(out);

    /* unknown rule: the known ones and a did-you-mean */
    const char *t5[] = {"alerts", "test", "llm-error", "--config", cfg, "--data", srv.data, NULL};
    assert_int_equal(te_it_run_cli(t5, NULL, 0, NULL, &err), 1);
    assert_non_null(strstr(err, "did you mean \"llm-errors\""));
    assert_non_null(strstr(err, "llm-errors-slow"));
    free(err);
    te_it_cleanup(&srv);
}

/* ---------- alerts trigger ---------- */

static void alerts_trigger_reaches_the_webhook(void **state)
{
    (void)state;
    te_it_recv_t *r = te_it_recv_start(false);
    assert_non_null(r);
    te_it_srv_t srv;
    char cfg[600], extra[512];
    assert_int_equal(te_it_init(&srv), 0);
    snprintf(extra, sizeof(extra),
             "notifier \"hook\" { type = \"webhook\", url = \"http://127.0.0.1:%d/alerts\", "
             "timeout = \"2s\" }\n"
             "notifier \"dead\" { type = \"webhook\", url = \"http://127.0.0.1:%d/alerts\", "
             "timeout = \"2s\", retries = 0 }\n",
             te_it_recv_port(r), dead_port());
    const char rule[] =
        "local te = require \"te\"\n"
        "te.rule { name = \"llm-errors\", kind = \"llm_call\", group_by = { \"provider\", \"model\" },\n"
        "  severity = \"critical\", labels = { team = \"llm\" },\n"
        "  aggs = { errors = te.count{ status = \"error\" } },\n"
        "  condition = function(a) return a.errors >= 2 end,\n"
        "  notify = { \"hook\", \"stdout\" }, summary = \"{{provider}}/{{model}} errors\" }\n"
        "te.rule { name = \"to-dead\", kind = \"llm_call\",\n"
        "  aggs = { n = te.count() }, condition = function(a) return a.n > 0 end,\n"
        "  notify = { \"dead\" } }\n";
    write_setup(&srv, extra, rule, cfg, sizeof(cfg));

    char *out = NULL, *err = NULL;
    const char *t1[] = {"alerts", "trigger", "llm-errors", "--group", "provider=openai",
                        "--group", "model=m", "--config", cfg, "--data", srv.data, NULL};
    int rc = te_it_run_cli(t1, NULL, 0, &out, &err);
    if (rc != 0)
        fprintf(stderr, "stdout: %s\nstderr: %s\n", out, err);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "hook (webhook): delivered"));
    assert_non_null(strstr(out, "[FIRING] critical llm-errors provider=openai model=m: "
                                "openai/m errors"));
    free(out);
    free(err);
    assert_int_equal(te_it_recv_count(r, NULL), 1); /* the command waited for the delivery */

    char *b0 = te_it_recv_body(r, 0);
    cJSON *j = cJSON_Parse(b0);
    free(b0);
    assert_non_null(j);
    assert_int_equal(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "version")), 1);
    assert_string_equal(str_of(j, "status"), "firing");
    const cJSON *al = cJSON_GetObjectItem(j, "alert");
    assert_int_equal(strlen(str_of(al, "id")), 16);
    assert_int_equal(strlen(str_of(al, "fingerprint")), 16);
    assert_string_equal(str_of(al, "rule"), "llm-errors");
    assert_string_equal(str_of(al, "severity"), "critical");
    const cJSON *g = cJSON_GetObjectItem(al, "group");
    assert_string_equal(str_of(g, "provider"), "openai");
    assert_string_equal(str_of(g, "model"), "m");
    assert_string_equal(str_of(cJSON_GetObjectItem(al, "labels"), "team"), "llm");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(al, "value")));
    assert_string_equal(str_of(al, "summary"), "openai/m errors");
    assert_non_null(str_of(al, "starts_at"));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(al, "ends_at")));
    char fp[17];
    snprintf(fp, sizeof(fp), "%s", str_of(al, "fingerprint"));
    cJSON_Delete(j);

    /* resolved: same fingerprint (same rule + group), a new id, an end */
    const char *t2[] = {"alerts", "trigger", "llm-errors", "--group", "provider=openai",
                        "--group", "model=m", "--status", "resolved", "--config", cfg,
                        "--data", srv.data, NULL};
    assert_int_equal(te_it_run_cli(t2, NULL, 0, NULL, NULL), 0);
    assert_int_equal(te_it_recv_count(r, NULL), 2);
    char *b1 = te_it_recv_body(r, 1);
    j = cJSON_Parse(b1);
    free(b1);
    assert_non_null(j);
    assert_string_equal(str_of(j, "status"), "resolved");
    al = cJSON_GetObjectItem(j, "alert");
    assert_string_equal(str_of(al, "fingerprint"), fp);
    assert_non_null(str_of(al, "ends_at"));
    cJSON_Delete(j);

    /* a notifier that cannot deliver: exit 1, the error printed */
    const char *t3[] = {"alerts", "trigger", "to-dead", "--config", cfg, "--data", srv.data,
                        NULL};
    assert_int_equal(te_it_run_cli(t3, NULL, 0, &out, NULL), 1);
    assert_non_null(strstr(out, "dead (webhook): failed"));
    free(out);

    /* a group key the rule does not have: usage error naming its keys */
    const char *t4[] = {"alerts", "trigger", "llm-errors", "--group", "providr=x", "--config",
                        cfg, "--data", srv.data, NULL};
    assert_int_equal(te_it_run_cli(t4, NULL, 0, NULL, &err), 2);
    assert_non_null(strstr(err, "did you mean \"provider\""));
    free(err);
    assert_int_equal(te_it_recv_count(r, NULL), 2);

    te_it_cleanup(&srv);
    te_it_recv_stop(r);
}

/* ---------- alerts watch ---------- */

/* Reads from fd into buf (appending, NUL-terminated) until needle appears
 * or deadline_ms (monotonic) passes. Returns true when found. */
static bool read_until(int fd, char *buf, size_t cap, size_t *len, const char *needle,
                       int64_t deadline_ms)
{
    while (!strstr(buf, needle)) {
        int64_t left = deadline_ms - te_it_now_ms();
        if (left <= 0 || *len >= cap - 1)
            return false;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        ssize_t k = read(fd, buf + *len, cap - 1 - *len);
        if (k <= 0)
            return false;
        *len += (size_t)k;
        buf[*len] = '\0';
    }
    return true;
}

static void alerts_watch_streams_transitions(void **state)
{
    (void)state;
    te_it_srv_t srv;
    char cfg[600], dir[400];
    assert_int_equal(te_it_init(&srv), 0);
    const char rule[] =
        "local te = require \"te\"\n"
        "te.rule { name = \"llm-errors\", kind = \"llm_call\", group_by = { \"provider\" },\n"
        "  window = \"5s\", every = \"1s\", keep_firing = \"10m\", severity = \"critical\",\n"
        "  aggs = { errors = te.count{ status = \"error\" } },\n"
        "  condition = function(a) return a.errors >= 2 end,\n"
        "  value = function(a) return a.errors end,\n"
        "  notify = { \"stdout\" }, summary = \"{{provider}} errors\" }\n";
    write_setup(&srv, NULL, rule, cfg, sizeof(cfg));
    snprintf(dir, sizeof(dir), "%s/lua", srv.root);
    const char *extra[] = {"--config", cfg, "--scripts", dir, NULL};
    assert_int_equal(te_it_start(&srv, extra), 0);

    int o[2], e[2];
    assert_int_equal(pipe(o), 0);
    assert_int_equal(pipe(e), 0);
    const char *bin = getenv("TE_BIN");
    assert_non_null(bin);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(o[1], 1);
        dup2(e[1], 2);
        close(o[0]);
        close(o[1]);
        close(e[0]);
        close(e[1]);
        execl(bin, bin, "alerts", "watch", "--format", "json", "--config", cfg, "--data",
              srv.data, (char *)NULL);
        _exit(127);
    }
    close(o[1]);
    close(e[1]);
    static char out[65536], err[8192];
    size_t olen = 0, elen = 0;
    out[0] = err[0] = '\0';
    bool ready = read_until(e[0], err, sizeof(err), &elen, "watching", te_it_now_ms() + 10000);
    if (!ready)
        fprintf(stderr, "watch stderr: %s\n", err);
    assert_true(ready);

    const char body[] =
        "{\"kind\":\"llm_call\",\"tags\":{\"provider\":\"openai\",\"status\":\"error\"}}\n"
        "{\"kind\":\"llm_call\",\"tags\":{\"provider\":\"openai\",\"status\":\"error\"}}\n";
    te_it_resp_t resp;
    assert_int_equal(te_it_post(&srv, body, strlen(body), &resp), 0);
    assert_int_equal(resp.status, 200);
    te_it_resp_free(&resp);

    bool got = read_until(o[0], out, sizeof(out), &olen, "\"transition\":\"firing\"",
                          te_it_now_ms() + 10000);
    if (!got) {
        fprintf(stderr, "watch stdout: %s\nstderr: %s\n", out, err);
        te_it_dump_log(&srv);
    }
    assert_true(got);
    /* make sure the whole line is there, then parse it */
    char *start = strstr(out, "\"transition\":\"firing\"");
    while (start > out && start[-1] != '\n')
        start--;
    assert_true(read_until(o[0], out, sizeof(out), &olen, "\n", te_it_now_ms() + 5000));
    char *nl = strchr(start, '\n');
    assert_non_null(nl);
    *nl = '\0';
    cJSON *j = cJSON_Parse(start);
    assert_non_null(j);
    assert_string_equal(str_of(j, "rule"), "llm-errors");
    assert_string_equal(str_of(j, "severity"), "critical");
    assert_string_equal(str_of(j, "state"), "firing");
    assert_string_equal(str_of(cJSON_GetObjectItem(j, "group"), "provider"), "openai");
    assert_true(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "value")) == 2);
    assert_string_equal(str_of(j, "summary"), "openai errors");
    assert_int_equal(strlen(str_of(j, "id")), 16);
    cJSON_Delete(j);

    /* SIGTERM: exit 0 */
    assert_int_equal(kill(pid, SIGTERM), 0);
    int status = -1;
    int64_t deadline = te_it_now_ms() + 5000;
    pid_t w = 0;
    while ((w = waitpid(pid, &status, WNOHANG)) == 0 && te_it_now_ms() < deadline) {
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    if (w == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    assert_int_equal(w, pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    close(o[0]);
    close(e[0]);

    assert_int_equal(te_it_stop(&srv, SIGTERM, 10000), 0);
    te_it_cleanup(&srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(alerts_test_evaluates_stored_events),
        cmocka_unit_test(alerts_trigger_reaches_the_webhook),
        cmocka_unit_test(alerts_watch_streams_transitions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
