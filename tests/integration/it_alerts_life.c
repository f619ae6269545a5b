/*
 * it_alerts_life.c - the alert lifecycle on the real binary (issue 4):
 *   - a webhook that fails keeps its notification pending in the outbox;
 *     after kill -9 and a restart with the receiver back, it is delivered
 *     and `alerts list` shows it delivered (at-least-once across restarts);
 *   - an ack over HTTP holds the repeats (the outbox shows why);
 *   - a silence made with the CLI holds a new alert's notification while
 *     serve runs; unsilence releases it.
 * The receiver is a loopback HTTP server in this test.
 */
#define _GNU_SOURCE /* strcasestr */
#include <arpa/inet.h>
#include <netinet/in.h>
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "harness_recv.h"

/* The bodies answered 200 so far, into bodies[cap] (when not NULL); returns
 * all requests and sets *ok to those answered 200. */
static int snap(te_it_recv_t *r, int *ok, char *bodies, size_t cap)
{
    int n = te_it_recv_count(r, ok);
    if (bodies) {
        char *all = te_it_recv_bodies(r);
        snprintf(bodies, cap, "%s", all ? all : "");
        free(all);
    }
    return n;
}

static void nap(void)
{
    struct timespec ts = {0, 25 * 1000000};
    nanosleep(&ts, NULL);
}

static void setup_engine(te_it_srv_t *srv, int port, const char *rule_extra, char *cfg,
                         size_t cfgcap, char *dir, size_t dircap)
{
    char cfg_text[600], path[600];
    assert_int_equal(te_it_init(srv), 0);
    snprintf(dir, dircap, "%s/lua", srv->root);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof(path), "%s/lua/rules", srv->root);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(cfg_text, sizeof(cfg_text),
             "notifier \"hook\" { type = \"webhook\", url = \"http://127.0.0.1:%d/alerts\", "
             "timeout = \"2s\", retries = 0 }\n"
             "alerts { poll = \"100ms\" }\n", port);
    assert_int_equal(te_it_write_file(srv, "telemetry.lua", cfg_text, strlen(cfg_text), cfg,
                                      cfgcap), 0);
    char rule[1024];
    snprintf(rule, sizeof(rule),
             "local te = require \"te\"\n"
             "te.rule { name = \"llm-errors\", kind = \"llm_call\", group_by = { \"provider\" },\n"
             "  window = \"5s\", every = \"1s\", keep_firing = \"10m\", severity = \"critical\",\n"
             "  aggs = { errors = te.count{ status = \"error\" } },\n"
             "  condition = function(a) return a.errors >= 1 end,\n"
             "  notify = { \"hook\" }, summary = \"{{provider}} errors\"%s }\n",
             rule_extra);
    assert_int_equal(te_it_write_file(srv, "lua/rules/err.lua", rule, strlen(rule), path,
                                      sizeof(path)), 0);
}

static void post_error(te_it_srv_t *srv, const char *provider)
{
    char body[256];
    snprintf(body, sizeof(body),
             "{\"kind\":\"llm_call\",\"tags\":{\"provider\":\"%s\",\"status\":\"error\"}}\n",
             provider);
    te_it_resp_t resp;
    assert_int_equal(te_it_post(srv, body, strlen(body), &resp), 0);
    assert_int_equal(resp.status, 200);
    te_it_resp_free(&resp);
}

/* The latest delivery of notifier "hook" for the alert of provider, or NULL
 * (caller cJSON_Delete(*root)). */
static const cJSON *delivery(te_it_srv_t *srv, const char *provider, cJSON **root,
                             const cJSON **alert)
{
    *root = te_it_get_json(srv, "/v1/alerts?state=firing");
    const cJSON *a;
    cJSON_ArrayForEach(a, cJSON_GetObjectItem(*root, "alerts"))
    {
        const char *p = cJSON_GetStringValue(
            cJSON_GetObjectItem(cJSON_GetObjectItem(a, "group"), "provider"));
        if (!p || strcmp(p, provider) != 0)
            continue;
        if (alert)
            *alert = a;
        const cJSON *d;
        cJSON_ArrayForEach(d, cJSON_GetObjectItem(a, "deliveries"))
        {
            const char *n = cJSON_GetStringValue(cJSON_GetObjectItem(d, "notifier"));
            if (n && strcmp(n, "hook") == 0)
                return d;
        }
    }
    return NULL;
}

/* Waits until the hook delivery of provider's alert is in state (and its
 * reason contains reason_part when given). */
static bool wait_delivery(te_it_srv_t *srv, const char *provider, const char *state,
                          const char *reason_part, int timeout_ms)
{
    int64_t deadline = te_it_now_ms() + timeout_ms;
    while (te_it_now_ms() < deadline) {
        cJSON *root = NULL;
        const cJSON *d = delivery(srv, provider, &root, NULL);
        const char *s = d ? cJSON_GetStringValue(cJSON_GetObjectItem(d, "state")) : NULL;
        const char *why = d ? cJSON_GetStringValue(cJSON_GetObjectItem(d, "reason")) : NULL;
        bool ok = s && strcmp(s, state) == 0 &&
                  (!reason_part || (why && strstr(why, reason_part)));
        cJSON_Delete(root);
        if (ok)
            return true;
        nap();
    }
    return false;
}

static void undelivered_webhook_is_delivered_after_restart(void **state)
{
    (void)state;
    te_it_recv_t *r = te_it_recv_start(true);
    assert_non_null(r);
    te_it_srv_t srv;
    char cfg[600], dir[400];
    setup_engine(&srv, te_it_recv_port(r), "", cfg, sizeof(cfg), dir, sizeof(dir));
    const char *extra[] = {"--config", cfg, "--scripts", dir, NULL};
    assert_int_equal(te_it_start(&srv, extra), 0);
    post_error(&srv, "openai");

    /* the receiver answers 500: the row stays pending with an attempt and the error */
    assert_true(wait_delivery(&srv, "openai", "pending", NULL, 10000));
    int64_t deadline = te_it_now_ms() + 10000;
    bool tried = false;
    while (!tried && te_it_now_ms() < deadline) {
        cJSON *root = NULL;
        const cJSON *d = delivery(&srv, "openai", &root, NULL);
        tried = d && cJSON_GetNumberValue(cJSON_GetObjectItem(d, "attempts")) >= 1 &&
                cJSON_GetStringValue(cJSON_GetObjectItem(d, "last_error"));
        cJSON_Delete(root);
        if (!tried)
            nap();
    }
    assert_true(tried);
    assert_true(snap(r, NULL, NULL, 0) >= 1);

    /* /v1/status reports the failing notifier */
    cJSON *st = te_it_get_json(&srv, "/v1/status");
    const cJSON *n0 = cJSON_GetArrayItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(st, "notifications"), "notifiers"), 0);
    assert_non_null(n0);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(n0, "name")), "hook");
    assert_true(cJSON_GetNumberValue(cJSON_GetObjectItem(n0, "failed")) >= 1);
    assert_non_null(cJSON_GetStringValue(cJSON_GetObjectItem(n0, "last_error")));
    cJSON_Delete(st);

    te_it_kill9(&srv);
    te_it_recv_set_fail(r, false);
    assert_int_equal(te_it_start(&srv, extra), 0);

    /* delivered from the outbox: the rule itself does not fire again */
    deadline = te_it_now_ms() + 10000;
    int ok = 0;
    char bodies[16384];
    while (te_it_now_ms() < deadline) {
        snap(r, &ok, bodies, sizeof(bodies));
        if (ok)
            break;
        nap();
    }
    assert_true(ok >= 1);
    assert_non_null(strstr(bodies, "\"status\":\"firing\""));
    assert_non_null(strstr(bodies, "\"provider\":\"openai\""));
    assert_true(wait_delivery(&srv, "openai", "delivered", NULL, 10000));

    assert_int_equal(te_it_stop(&srv, SIGTERM, 10000), 0);
    te_it_cleanup(&srv);
    te_it_recv_stop(r);
}

static void ack_holds_repeats_and_silence_holds_notifications(void **state)
{
    (void)state;
    te_it_recv_t *r = te_it_recv_start(false);
    assert_non_null(r);
    te_it_srv_t srv;
    char cfg[600], dir[400];
    setup_engine(&srv, te_it_recv_port(r), ", repeat_every = \"1s\"", cfg, sizeof(cfg), dir, sizeof(dir));
    const char *extra[] = {"--config", cfg, "--scripts", dir, NULL};
    assert_int_equal(te_it_start(&srv, extra), 0);
    post_error(&srv, "openai");
    assert_true(wait_delivery(&srv, "openai", "delivered", NULL, 10000));

    /* ack over HTTP: repeats are held with the reason */
    cJSON *root = NULL;
    const cJSON *al = NULL;
    assert_non_null(delivery(&srv, "openai", &root, &al));
    char id[32];
    snprintf(id, sizeof(id), "%s", cJSON_GetStringValue(cJSON_GetObjectItem(al, "id")));
    cJSON_Delete(root);
    char path[128];
    snprintf(path, sizeof(path), "/v1/alerts/%s/ack", id);
    const char ack[] = "{\"by\":\"alice\",\"comment\":\"on it\"}";
    te_it_resp_t resp;
    assert_int_equal(te_it_http(&srv, "POST", path, ack, strlen(ack), NULL, &resp), 0);
    assert_int_equal(resp.status, 200);
    assert_non_null(strstr(resp.body, "\"acked_by\":\"alice\""));
    te_it_resp_free(&resp);
    assert_int_equal(te_it_http(&srv, "POST", "/v1/alerts/0000000000000000/ack", ack,
                                strlen(ack), NULL, &resp), 0);
    assert_int_equal(resp.status, 404);
    te_it_resp_free(&resp);
    assert_true(wait_delivery(&srv, "openai", "suppressed", "acknowledged by alice", 10000));
    cJSON *acked = te_it_get_json(&srv, "/v1/alerts?state=acked");
    char *acked_text = cJSON_PrintUnformatted(acked);
    assert_non_null(strstr(acked_text, id));
    free(acked_text);
    cJSON_Delete(acked);

    /* a silence from the CLI while serve runs */
    char *out = NULL;
    const char *sil[] = {"alerts", "silence", "--config", cfg, "--data", srv.data, "--match",
                         "provider=anthropic", "--for", "1h", "--comment", "maintenance", NULL};
    assert_int_equal(te_it_run_cli(sil, NULL, 0, &out, NULL), 0);
    char sid[32] = "";
    sscanf(out, "%31s", sid);
    free(out);
    assert_int_equal(strlen(sid), 16);
    cJSON *sl = te_it_get_json(&srv, "/v1/silences");
    const cJSON *s0 = cJSON_GetArrayItem(cJSON_GetObjectItem(sl, "silences"), 0);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(s0, "id")), sid);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(s0, "state")), "active");
    cJSON_Delete(sl);
    /* let the engine read the journal (poll = 100ms) before the alert fires */
    int64_t until = te_it_now_ms() + 400;
    while (te_it_now_ms() < until)
        nap();
    int before_ok = 0;
    snap(r, &before_ok, NULL, 0);
    post_error(&srv, "anthropic");
    assert_true(wait_delivery(&srv, "anthropic", "suppressed", "silenced by", 10000));
    char bodies[16384];
    snap(r, NULL, bodies, sizeof(bodies));
    assert_null(strstr(bodies, "anthropic"));
    cJSON *silenced = te_it_get_json(&srv, "/v1/alerts?state=silenced");
    char *text = cJSON_PrintUnformatted(silenced);
    assert_non_null(strstr(text, "anthropic"));
    assert_null(strstr(text, "\"provider\":\"openai\""));
    free(text);
    cJSON_Delete(silenced);

    /* unsilence over HTTP: the firing alert is notified */
    snprintf(path, sizeof(path), "/v1/silences/%s", sid);
    assert_int_equal(te_it_http(&srv, "DELETE", path, NULL, 0, NULL, &resp), 0);
    assert_int_equal(resp.status, 200);
    assert_non_null(strstr(resp.body, "\"state\":\"expired\""));
    te_it_resp_free(&resp);
    int64_t deadline = te_it_now_ms() + 10000;
    bool seen = false;
    while (!seen && te_it_now_ms() < deadline) {
        snap(r, NULL, bodies, sizeof(bodies));
        seen = strstr(bodies, "anthropic") != NULL;
        if (!seen)
            nap();
    }
    assert_true(seen);

    assert_int_equal(te_it_stop(&srv, SIGTERM, 10000), 0);
    te_it_cleanup(&srv);
    te_it_recv_stop(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(undelivered_webhook_is_delivered_after_restart),
        cmocka_unit_test(ack_holds_repeats_and_silence_holds_notifications),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
