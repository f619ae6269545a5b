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

static void firing_rule_posts_to_its_webhook(void **state)
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
    char cfg_text[512], cfg[600], path[600], dir[400];
    assert_int_equal(te_it_init(&srv), 0);
    snprintf(dir, sizeof(dir), "%s/lua", srv.root);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof(path), "%s/lua/rules", srv.root);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(cfg_text, sizeof(cfg_text),
             "notifier \"hook\" { type = \"webhook\", url = \"http://127.0.0.1:%d/alerts\", "
             "timeout = \"2s\" }\n", r.port);
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

    int64_t deadline = te_it_now_ms() + 8000;
    int got = 0;
    while (te_it_now_ms() < deadline) {
        pthread_mutex_lock(&r.lock);
        got = r.requests;
        pthread_mutex_unlock(&r.lock);
        if (got)
            break;
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    assert_true(got >= 1);
    cJSON *j = cJSON_Parse(r.body);
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
    shutdown(r.lfd, SHUT_RDWR);
    close(r.lfd);
    pthread_join(r.thread, NULL);
    pthread_mutex_destroy(&r.lock);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(firing_rule_posts_to_its_webhook),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
