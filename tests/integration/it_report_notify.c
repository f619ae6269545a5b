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

typedef struct receiver {
    int lfd, port;
    pthread_t thread;
    pthread_mutex_t lock;
    int requests;
    char body[8192];
} receiver_t;

/* Answers 200 to every POST and keeps the first body. */
static void *serve(void *arg)
{
    receiver_t *r = arg;
    for (;;) {
        int fd = accept(r->lfd, NULL, NULL);
        if (fd < 0)
            return NULL;
        char buf[16384];
        size_t len = 0;
        long want = -1;
        char *body = NULL;
        while (len < sizeof(buf) - 1) {
            ssize_t k = read(fd, buf + len, sizeof(buf) - 1 - len);
            if (k <= 0)
                break;
            len += (size_t)k;
            buf[len] = '\0';
            char *end = strstr(buf, "\r\n\r\n");
            if (end && want < 0) {
                char *cl = strcasestr(buf, "content-length:");
                want = cl ? strtol(cl + 15, NULL, 10) : 0;
                body = end + 4;
            }
            if (body && (long)(len - (size_t)(body - buf)) >= want)
                break;
        }
        pthread_mutex_lock(&r->lock);
        if (body && r->requests++ == 0)
            snprintf(r->body, sizeof(r->body), "%s", body);
        pthread_mutex_unlock(&r->lock);
        const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        ssize_t w = write(fd, ok, sizeof(ok) - 1);
        (void)w;
        close(fd);
    }
}

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
    receiver_t r = {0};
    pthread_mutex_init(&r.lock, NULL);
    r.lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(r.lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t alen = sizeof(a);
    getsockname(r.lfd, (struct sockaddr *)&a, &alen);
    r.port = ntohs(a.sin_port);
    assert_int_equal(listen(r.lfd, 16), 0);
    pthread_create(&r.thread, NULL, serve, &r);

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
             r.port, lines);
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
    int64_t deadline = te_it_now_ms() + 80000;
    int got = 0;
    while (te_it_now_ms() < deadline) {
        pthread_mutex_lock(&r.lock);
        got = r.requests;
        pthread_mutex_unlock(&r.lock);
        if (got)
            break;
        sleep_ms(100);
    }
    if (!got)
        te_it_dump_log(&srv);
    assert_true(got >= 1);
    cJSON *j = cJSON_Parse(r.body);
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
    deadline = te_it_now_ms() + 10000;
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
    shutdown(r.lfd, SHUT_RDWR);
    close(r.lfd);
    pthread_join(r.thread, NULL);
    pthread_mutex_destroy(&r.lock);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(scheduled_report_reaches_its_notifiers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
