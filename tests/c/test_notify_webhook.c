#define _GNU_SOURCE /* strcasestr */
/*
 * test_notify_webhook.c - webhook and slack notifiers against a real HTTP
 * receiver on loopback (a thread of this test): delivery with the exact
 * SPEC 7 body, retries after failures, a receiver that never answers, the
 * Slack message shape, rate limiting, clean shutdown of the loop.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "alerts/notify.h"

typedef enum { ANSWER_OK, ANSWER_FAIL_TWICE, ANSWER_NEVER } mode_t_;

typedef struct receiver {
    int lfd, port;
    mode_t_ mode;
    pthread_t thread;
    pthread_mutex_t lock;
    int requests;
    char last_body[8192];
    char last_head[4096];
    volatile int stop;
} receiver_t;

static void *serve(void *arg)
{
    receiver_t *r = arg;
    while (!r->stop) {
        int fd = accept(r->lfd, NULL, NULL);
        if (fd < 0)
            break;
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
        int n = ++r->requests;
        if (body) {
            snprintf(r->last_body, sizeof(r->last_body), "%s", body);
            snprintf(r->last_head, sizeof(r->last_head), "%.*s", (int)(body - buf), buf);
        }
        pthread_mutex_unlock(&r->lock);
        if (r->mode == ANSWER_NEVER) {
            while (!r->stop && read(fd, buf, sizeof(buf)) > 0) /* hold it open */
                ;
            close(fd);
            continue;
        }
        const char *answer = r->mode == ANSWER_FAIL_TWICE && n <= 2
                                 ? "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n"
                                   "Connection: close\r\n\r\noops"
                                 : "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                                   "Connection: close\r\n\r\nok";
        ssize_t w = write(fd, answer, strlen(answer));
        (void)w;
        close(fd);
    }
    return NULL;
}

static void receiver_start(receiver_t *r, mode_t_ mode)
{
    memset(r, 0, sizeof(*r));
    r->mode = mode;
    pthread_mutex_init(&r->lock, NULL);
    r->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(r->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t alen = sizeof(a);
    getsockname(r->lfd, (struct sockaddr *)&a, &alen);
    r->port = ntohs(a.sin_port);
    assert_int_equal(listen(r->lfd, 16), 0);
    pthread_create(&r->thread, NULL, serve, r);
}

static void receiver_stop(receiver_t *r)
{
    r->stop = 1;
    shutdown(r->lfd, SHUT_RDWR);
    close(r->lfd);
    pthread_join(r->thread, NULL);
    pthread_mutex_destroy(&r->lock);
}

typedef struct outcome {
    int calls, rc;
    char msg[600];
} outcome_t;

static void on_done(int rc, const char *msg, void *ud)
{
    outcome_t *o = ud;
    o->calls++;
    o->rc = rc;
    snprintf(o->msg, sizeof(o->msg), "%s", msg ? msg : "");
}

static void make_alert(te_alert_t *a)
{
    const char *keys[] = {"provider", "model"}, *vals[] = {"openai", "m"};
    te_alert_init(a);
    assert_int_equal(te_alert_set_identity(a, "llm-error-rate", keys, vals, 2), 0);
    snprintf(a->id, sizeof(a->id), "%s", "0123456789abcdef");
    a->state = TE_ALERT_FIRING;
    a->severity = TE_SEV_WARNING;
    a->has_value = true;
    a->value = 0.083;
    a->summary = strdup("openai/m error rate 8.3% (5m)");
    a->starts_at_ns = INT64_C(1795423800) * 1000000000;
}

static te_notifier_t *notifier(uv_loop_t *loop, const char *type, const char *json)
{
    te_config_notifier_t cfg = {.name = (char *)"hook", .type = (char *)type, .json = (char *)json};
    te_err_t err = {0};
    te_notifier_t *n = te_notifier_new(loop, &cfg, &err);
    if (!n)
        fail_msg("notifier: %s", err.msg);
    return n;
}

static void run_until(uv_loop_t *loop, const outcome_t *o)
{
    while (o->calls == 0)
        uv_run(loop, UV_RUN_ONCE);
}

static void finish_loop(uv_loop_t *loop, te_notifier_t *n)
{
    te_notifier_free(n);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

/* One receiver, loop, notifier and alert per test: the notifier's block is
 * {"url":"http://127.0.0.1:PORT" path, then the extra keys}. */
typedef struct fx {
    receiver_t r;
    uv_loop_t loop;
    te_notifier_t *n;
    te_alert_t a;
} fx_t;

static void fx_open(fx_t *f, mode_t_ mode, const char *type, const char *path, const char *extra)
{
    char json[256];
    receiver_start(&f->r, mode);
    uv_loop_init(&f->loop);
    snprintf(json, sizeof(json), "{\"url\":\"http://127.0.0.1:%d%s\"%s}", f->r.port, path, extra);
    f->n = notifier(&f->loop, type, json);
    make_alert(&f->a);
}

/* Sends one "firing" notification and runs the loop until it is done. */
static void fx_send(fx_t *f, outcome_t *o)
{
    assert_int_equal(f->n->send(f->n, &f->a, "firing", on_done, o), 0);
    assert_int_equal(o->calls, 0); /* never inside send */
    run_until(&f->loop, o);
}

static void fx_close(fx_t *f)
{
    te_alert_clear(&f->a);
    finish_loop(&f->loop, f->n);
    receiver_stop(&f->r);
}

static void webhook_delivers_spec_payload(void **state)
{
    (void)state;
    fx_t f;
    outcome_t o = {0};
    fx_open(&f, ANSWER_OK, "webhook", "/alerts",
            ",\"type\":\"webhook\",\"headers\":{\"X-Team\":\"llm\"}");
    fx_send(&f, &o);
    assert_int_equal(o.rc, 0);
    char *want = te_alert_to_json(&f.a, "firing");
    assert_string_equal(f.r.last_body, want);
    assert_non_null(strcasestr(f.r.last_head, "content-type: application/json"));
    assert_non_null(strstr(f.r.last_head, "X-Team: llm"));
    assert_non_null(strstr(f.r.last_head, "POST /alerts HTTP/1.1"));
    free(want);
    fx_close(&f);
}

static void webhook_retries_after_two_failures(void **state)
{
    (void)state;
    fx_t f;
    outcome_t o = {0};
    fx_open(&f, ANSWER_FAIL_TWICE, "webhook", "/", ",\"retries\":3");
    uint64_t t0 = uv_hrtime();
    fx_send(&f, &o);
    assert_int_equal(o.rc, 0);
    assert_int_equal(f.r.requests, 3);
    assert_true(uv_hrtime() - t0 >= 1500u * 1000000u); /* backoff 0.5 s + 1 s */
    fx_close(&f);
}

static void webhook_gives_up_on_a_silent_receiver(void **state)
{
    (void)state;
    fx_t f;
    outcome_t o = {0};
    fx_open(&f, ANSWER_NEVER, "webhook", "/", ",\"timeout\":\"200ms\",\"retries\":1");
    fx_send(&f, &o);
    assert_int_equal(o.rc, TE_EIO);
    assert_non_null(strstr(o.msg, "notifier \"hook\""));
    assert_non_null(strstr(o.msg, "timed out"));
    assert_non_null(strstr(o.msg, "after 2 attempts"));
    fx_close(&f);
}

static void slack_message_has_blocks_and_severity_colour(void **state)
{
    (void)state;
    fx_t f;
    outcome_t o = {0};
    fx_open(&f, ANSWER_OK, "slack", "/slack", "");
    fx_send(&f, &o);
    assert_int_equal(o.rc, 0);
    cJSON *m = cJSON_Parse(f.r.last_body);
    assert_non_null(m);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(m, "text")),
                        "openai/m error rate 8.3% (5m)");
    cJSON *att = cJSON_GetArrayItem(cJSON_GetObjectItem(m, "attachments"), 0);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(att, "color")), "#e8a200");
    cJSON *b0 = cJSON_GetArrayItem(cJSON_GetObjectItem(att, "blocks"), 0);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(b0, "type")), "section");
    const char *head = cJSON_GetStringValue(
        cJSON_GetObjectItem(cJSON_GetObjectItem(b0, "text"), "text"));
    assert_string_equal(head, "*[FIRING] warning* `llm-error-rate` provider=openai model=m");
    cJSON_Delete(m);
    fx_close(&f);
}

static void webhook_rate_limit_refuses_past_the_rate(void **state)
{
    (void)state;
    fx_t f;
    outcome_t o1 = {0}, o2 = {0};
    fx_open(&f, ANSWER_OK, "webhook", "/", ",\"rate_limit\":\"2/h\"");
    assert_int_equal(f.n->send(f.n, &f.a, "firing", on_done, &o1), 0);
    assert_int_equal(f.n->send(f.n, &f.a, "firing", on_done, &o2), 0);
    run_until(&f.loop, &o1);
    run_until(&f.loop, &o2);
    assert_int_equal(o1.rc + o2.rc, TE_EFULL); /* one delivered, one refused */
    assert_non_null(strstr(o1.rc ? o1.msg : o2.msg, "rate limited"));
    fx_close(&f);
}

static void webhook_bad_blocks_are_named(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    const char *bad[][2] = {
        {"{}", "notifier \"hook\": webhook needs a \"url\" (http:// or https://)"},
        {"{\"url\":\"http://x\",\"timeout\":\"soon\"}", "notifier \"hook\": bad timeout \"soon\""},
        {"{\"url\":\"http://x\",\"rate_limit\":\"lots\"}",
         "notifier \"hook\": bad rate_limit \"lots\" (like \"30/m\", \"2/s\", \"100/h\")"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        te_config_notifier_t cfg = {.name = (char *)"hook", .type = (char *)"webhook",
                                    .json = (char *)bad[i][0]};
        te_err_t err = {0};
        assert_null(te_notifier_new(&loop, &cfg, &err));
        assert_string_equal(err.msg, bad[i][1]);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(webhook_delivers_spec_payload),
        cmocka_unit_test(webhook_retries_after_two_failures),
        cmocka_unit_test(webhook_gives_up_on_a_silent_receiver),
        cmocka_unit_test(slack_message_has_blocks_and_severity_colour),
        cmocka_unit_test(webhook_rate_limit_refuses_past_the_rate),
        cmocka_unit_test(webhook_bad_blocks_are_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
