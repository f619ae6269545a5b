/*
 * it_report_notify.c - a scheduled report that names notifiers
 * (te.report notify = {..}) reaches them on the real binary: telemetry.lua
 * declares a webhook "hook" (a loopback receiver in this test) and a file
 * notifier "log"; the template runs "every 1m". The receiver gets the
 * report JSON (kind "report") whose url GETs the report from the engine,
 * the file notifier gets the same JSON as one line, and a bad notify value
 * is a file:line template error.
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

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = calloc(1, 65536);
    size_t n = buf ? fread(buf, 1, 65535, f) : 0;
    (void)n;
    fclose(f);
    return buf;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static void scheduled_report_reaches_its_notifiers(void **state)
{
    (void)state;
    te_it_recv_t *r = te_it_recv_start(false);
    assert_non_null(r);

    te_it_srv_t srv;
    char cfg_text[1024], cfg[600], path[600], dir[400], lines[600];
    assert_int_equal(te_it_init(&srv), 0);
    snprintf(dir, sizeof(dir), "%s/lua", srv.root);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof(path), "%s/lua/reports", srv.root);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(lines, sizeof(lines), "%s/report-notes.ndjson", srv.root);
    snprintf(cfg_text, sizeof(cfg_text),
             "notifier \"hook\" { type = \"webhook\", url = \"http://127.0.0.1:%d/reports\", "
             "timeout = \"2s\" }\n"
             "notifier \"log\" { type = \"file\", path = \"%s\" }\n",
             te_it_recv_port(r), lines);
    assert_int_equal(te_it_write_file(&srv, "telemetry.lua", cfg_text, strlen(cfg_text), cfg,
                                      sizeof(cfg)), 0);
    const char tmpl[] = "local te = require \"te\"\n"
                        "te.report { name = \"sched\", title = \"Every minute\",\n"
                        "  schedule = \"every 1m\", notify = { \"hook\", \"log\" },\n"
                        "  render = function(q, r, params)\n"
                        "    r:stat { label = \"calls\", value = 1 }\n"
                        "  end }\n";
    assert_int_equal(te_it_write_file(&srv, "lua/reports/sched.lua", tmpl, strlen(tmpl), path,
                                      sizeof(path)), 0);
    /* a notify that is not a list of names: a file:line error in the listing */
    const char bad[] = "local te = require \"te\"\n"
                       "te.report { name = \"bad\", notify = \"hook\",\n"
                       "  render = function(q, r) end }\n";
    assert_int_equal(te_it_write_file(&srv, "lua/reports/bad.lua", bad, strlen(bad), path,
                                      sizeof(path)), 0);
    const char *extra[] = {"--config", cfg, "--scripts", dir, NULL};
    assert_int_equal(te_it_start(&srv, extra), 0);

    cJSON *list = te_it_get_json(&srv, "/v1/reports");
    assert_non_null(list);
    const char *e0 =
        cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(list, "errors"), 0));
    assert_non_null(e0);
    assert_non_null(strstr(e0, "bad.lua:2: te.report: \"notify\" must be a list of notifier "
                               "names, got string"));
    cJSON_Delete(list);

    /* the next whole minute plus one 5 s tick at most */
    int got = te_it_recv_wait(r, 1, 80000);
    if (!got)
        te_it_dump_log(&srv);
    assert_true(got >= 1);
    char *first = te_it_recv_body(r, 0);
    cJSON *j = cJSON_Parse(first);
    free(first);
    assert_non_null(j);
    assert_int_equal(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "version")), 1);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(j, "kind")), "report");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(j, "report")), "sched");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(j, "title")), "Every minute");
    assert_non_null(cJSON_GetStringValue(cJSON_GetObjectItem(j, "generated_at")));
    const char *file = cJSON_GetStringValue(cJSON_GetObjectItem(j, "file"));
    assert_non_null(file);
    assert_non_null(strstr(file, "/reports/sched-"));
    char *html = read_all(file);
    assert_non_null(html);
    assert_non_null(strstr(html, "<title>Every minute</title>"));
    free(html);

    /* the url renders the same report from the engine */
    const char *url = cJSON_GetStringValue(cJSON_GetObjectItem(j, "url"));
    assert_non_null(url);
    char hostport[64];
    snprintf(hostport, sizeof(hostport), ":%d/v1/reports/sched?", srv.http_port);
    assert_non_null(strstr(url, hostport));
    assert_non_null(strstr(url, "format=html"));
    te_it_resp_t resp;
    assert_int_equal(te_it_http(&srv, "GET", strstr(url, "/v1/"), NULL, 0, NULL, &resp), 0);
    assert_int_equal(resp.status, 200);
    assert_non_null(strstr(resp.body, "<title>Every minute</title>"));
    te_it_resp_free(&resp);

    /* the file notifier: the same JSON as one line */
    char *text = NULL;
    int64_t deadline = te_it_now_ms() + 10000;
    while (te_it_now_ms() < deadline) {
        free(text);
        text = read_all(lines);
        if (text && strchr(text, '\n'))
            break;
        sleep_ms(50);
    }
    assert_non_null(text);
    char *nl = strchr(text, '\n');
    assert_non_null(nl);
    *nl = '\0';
    cJSON *line = cJSON_Parse(text);
    assert_non_null(line);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(line, "kind")), "report");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(line, "url")), url);
    cJSON_Delete(line);
    free(text);
    cJSON_Delete(j);

    assert_int_equal(te_it_stop(&srv, SIGTERM, 10000), 0);
    te_it_cleanup(&srv);
    te_it_recv_stop(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(scheduled_report_reaches_its_notifiers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
