/*
 * it_notify.c - a rule that fires reaches a configured webhook notifier on
 * the real binary: telemetry.lua declares notifier "hook", the rule names
 * it, a loopback receiver in this test records the POST (SPEC 7 payload).
 */
#define _GNU_SOURCE /* strcasestr */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
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

static void firing_rule_posts_to_its_webhook(void **state)
{
    (void)state;
    te_it_recv_t *r = te_it_recv_start(false);
    assert_non_null(r);

    te_it_srv_t srv;
    char cfg_text[512], cfg[600], path[600], dir[400];
    assert_int_equal(te_it_init(&srv), 0);
    snprintf(dir, sizeof(dir), "%s/lua", srv.root);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof(path), "%s/lua/rules", srv.root);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(cfg_text, sizeof(cfg_text),
             "notifier \"hook\" { type = \"webhook\", url = \"http://127.0.0.1:%d/alerts\", "
             "timeout = \"2s\" }\n", te_it_recv_port(r));
    assert_int_equal(te_it_write_file(&srv, "telemetry.lua", cfg_text, strlen(cfg_text), cfg,
                                      sizeof(cfg)), 0);
    const char rule[] =
        "local te = require \"te\"\n"
        "te.rule { name = \"llm-errors\", kind = \"llm_call\", group_by = { \"provider\" },\n"
        "  window = \"5s\", every = \"1s\", keep_firing = \"10m\", severity = \"critical\",\n"
        "  aggs = { errors = te.count{ status = \"error\" } },\n"
        "  condition = function(a) return a.errors >= 2 end,\n"
        "  notify = { \"hook\", \"stdout\" }, summary = \"{{provider}} errors\" }\n";
    assert_int_equal(te_it_write_file(&srv, "lua/rules/err.lua", rule, strlen(rule), path,
                                      sizeof(path)), 0);
    const char *extra[] = {"--config", cfg, "--scripts", dir, NULL};
    assert_int_equal(te_it_start(&srv, extra), 0);

    const char body[] =
        "{\"kind\":\"llm_call\",\"tags\":{\"provider\":\"openai\",\"status\":\"error\"}}\n"
        "{\"kind\":\"llm_call\",\"tags\":{\"provider\":\"openai\",\"status\":\"error\"}}\n";
    te_it_resp_t resp;
    assert_int_equal(te_it_post(&srv, body, strlen(body), &resp), 0);
    assert_int_equal(resp.status, 200);
    te_it_resp_free(&resp);

    assert_true(te_it_recv_wait(r, 1, 8000) >= 1);
    char *first = te_it_recv_body(r, 0);
    cJSON *j = cJSON_Parse(first);
    free(first);
    assert_non_null(j);
    assert_int_equal(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "version")), 1);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(j, "status")), "firing");
    const cJSON *al = cJSON_GetObjectItem(j, "alert");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(al, "rule")), "llm-errors");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(al, "severity")), "critical");
    assert_string_equal(
        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(al, "group"), "provider")),
        "openai");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(al, "summary")), "openai errors");
    cJSON_Delete(j);
    assert_true(te_it_metric(&srv, "te_notifications_total") >= 1);

    assert_int_equal(te_it_stop(&srv, SIGTERM, 10000), 0);
    te_it_cleanup(&srv);
    te_it_recv_stop(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(firing_rule_posts_to_its_webhook),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
