/*
 * it_otlp.c - OTLP/HTTP JSON receivers on the real binary (SPEC section 5,
 * docs/otlp.md): POST /v1/traces, /v1/logs, /v1/metrics store mapped events
 * that GET /v1/events and /v1/query then show (trace ids kept, GenAI spans
 * as llm_call); partial success, 400 on junk, 415 on protobuf, gzip, auth.
 *
 * THREAD: main.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "harness.h"

static te_it_srv_t srv; /* one engine for the group */

static int setup(void **state)
{
    (void)state;
    return te_it_start_fresh(&srv, NULL);
}

static int teardown(void **state)
{
    (void)state;
    int rc = te_it_stop(&srv, SIGTERM, 10000);
    if (rc != 0)
        te_it_dump_log(&srv);
    te_it_cleanup(&srv);
    return rc == 0 ? 0 : -1;
}

static unsigned long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec;
}

/* POSTs body to path; returns the answer (caller frees). */
static te_it_resp_t post(const char *path, const void *body, size_t len, const char *const *hdrs)
{
    te_it_resp_t r;
    static const char *const json[] = {"Content-Type: application/json", NULL};
    assert_int_equal(te_it_http(&srv, "POST", path, body, len, hdrs ? hdrs : json, &r), 0);
    return r;
}

static void post_expect(const char *path, const char *body, long status, const char *want)
{
    te_it_resp_t r = post(path, body, strlen(body), NULL);
    if (r.status != status || !r.body || !strstr(r.body, want))
        fail_msg("POST %s -> %ld %s, want %ld with \"%s\"", path, r.status, r.body, status, want);
    te_it_resp_free(&r);
}

/* GET path, expecting exactly one event; returns it (caller deletes root). */
static const cJSON *one_event(const char *path, cJSON **root)
{
    *root = te_it_get_json(&srv, path);
    assert_non_null(*root);
    const cJSON *evs = cJSON_GetObjectItemCaseSensitive(*root, "events");
    if (cJSON_GetArraySize(evs) != 1) {
        char *t = cJSON_PrintUnformatted(*root);
        fail_msg("GET %s: want 1 event, got %s", path, t);
    }
    return cJSON_GetArrayItem(evs, 0);
}

static const char *str(const cJSON *o, const char *path1, const char *path2)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, path1);
    if (path2)
        v = cJSON_GetObjectItemCaseSensitive(v, path2);
    if (!cJSON_IsString(v))
        fail_msg("%s%s%s is not a string", path1, path2 ? "." : "", path2 ? path2 : "");
    return v->valuestring;
}

static double num(const cJSON *o, const char *path1, const char *path2)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, path1);
    v = cJSON_GetObjectItemCaseSensitive(v, path2);
    if (!cJSON_IsNumber(v))
        fail_msg("%s.%s is not a number", path1, path2);
    return v->valuedouble;
}

static char *traces_body(unsigned long long t0)
{
    te_it_str_t s = {0};
    te_it_str_add(
        &s,
        "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
        "\"value\":{\"stringValue\":\"agent-svc\"}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"t\"},"
        "\"spans\":["
        "{\"traceId\":\"4BF92F3577B34DA6A3CE929D0E0E4736\",\"spanId\":\"00f067aa0ba902b7\","
        "\"parentSpanId\":\"00f067aa0ba902b6\",\"name\":\"chat m-large\",\"kind\":3,"
        "\"startTimeUnixNano\":\"%llu\",\"endTimeUnixNano\":\"%llu\","
        "\"attributes\":[{\"key\":\"gen_ai.provider.name\",\"value\":{\"stringValue\":"
        "\"anthropic\"}},"
        "{\"key\":\"gen_ai.request.model\",\"value\":{\"stringValue\":\"m-large\"}},"
        "{\"key\":\"gen_ai.operation.name\",\"value\":{\"stringValue\":\"chat\"}},"
        "{\"key\":\"gen_ai.usage.input_tokens\",\"value\":{\"intValue\":\"1200\"}},"
        "{\"key\":\"gen_ai.usage.output_tokens\",\"value\":{\"intValue\":\"300\"}}]},"
        "{\"traceId\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"spanId\":\"00f067aa0ba902b6\","
        "\"name\":\"plan\",\"kind\":1,\"startTimeUnixNano\":\"%llu\",\"endTimeUnixNano\":\"%llu\","
        "\"status\":{\"code\":2},\"attributes\":[{\"key\":\"agent\",\"value\":"
        "{\"stringValue\":\"planner\"}},{\"key\":\"step\",\"value\":{\"intValue\":\"3\"}}]}]}]}]}",
        t0 + 1000000, t0 + 813500000, t0, t0 + 900000000);
    return s.p;
}

static void traces_become_llm_call_and_span_events(void **state)
{
    (void)state;
    char *body = traces_body(now_ns() - 5000000000ULL);
    te_it_resp_t r = post("/v1/traces", body, strlen(body), NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{}\n");
    te_it_resp_free(&r);

    cJSON *root;
    const cJSON *ev = one_event("/v1/events?kind=llm_call", &root);
    assert_string_equal(str(ev, "trace_id", NULL), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(str(ev, "span_id", NULL), "00f067aa0ba902b7");
    assert_string_equal(str(ev, "parent_span_id", NULL), "00f067aa0ba902b6");
    assert_string_equal(str(ev, "source", NULL), "agent-svc");
    assert_string_equal(str(ev, "tags", "provider"), "anthropic");
    assert_string_equal(str(ev, "tags", "model"), "m-large");
    assert_string_equal(str(ev, "tags", "operation"), "chat");
    assert_string_equal(str(ev, "tags", "status"), "ok");
    assert_true(num(ev, "fields", "input_tokens") == 1200);
    assert_true(num(ev, "fields", "output_tokens") == 300);
    assert_true(num(ev, "fields", "latency_ms") == 812.5);
    cJSON_Delete(root);

    ev = one_event("/v1/events?kind=span&where=agent:planner", &root);
    assert_string_equal(str(ev, "trace_id", NULL), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(str(ev, "tags", "name"), "plan");
    assert_string_equal(str(ev, "tags", "status"), "error");
    assert_string_equal(str(ev, "tags", "span.kind"), "internal");
    assert_true(num(ev, "fields", "duration_ms") == 900);
    assert_true(num(ev, "fields", "step") == 3);
    cJSON_Delete(root);

    /* the rules' view: grouped by provider/model with a latency quantile */
    cJSON *q = te_it_get_json(&srv, "/v1/query?kind=llm_call&since=1h&group_by=provider,model"
                                    "&agg=count,sum:input_tokens,max:latency_ms");
    assert_non_null(q);
    const cJSON *row = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(q, "rows"), 0);
    assert_string_equal(str(row, "provider", NULL), "anthropic");
    assert_true(cJSON_GetObjectItemCaseSensitive(row, "count")->valuedouble == 1);
    assert_true(cJSON_GetObjectItemCaseSensitive(row, "sum:input_tokens")->valuedouble == 1200);
    cJSON_Delete(q);

    /* an exporter's retry (here gzip'd) is accepted and not stored twice */
    size_t zlen = 0;
    unsigned char *z = te_it_gzip(body, strlen(body), &zlen);
    static const char *const gz[] = {"Content-Type: application/json", "Content-Encoding: gzip",
                                     NULL};
    r = post("/v1/traces", z, zlen, gz);
    assert_int_equal(r.status, 200);
    te_it_resp_free(&r);
    free(z);
    free(body);
    assert_int_equal(te_it_count(&srv, "llm_call", NULL), 1);
    assert_int_equal(te_it_count(&srv, "span", NULL), 1);
}

static void logs_keep_body_severity_and_trace(void **state)
{
    (void)state;
    te_it_str_t s = {0};
    te_it_str_add(
        &s,
        "{\"resourceLogs\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
        "\"value\":{\"stringValue\":\"api\"}}]},\"scopeLogs\":[{\"logRecords\":["
        "{\"timeUnixNano\":\"%llu\",\"severityNumber\":17,\"severityText\":\"ERROR\","
        "\"body\":{\"stringValue\":\"upstream refused\"},"
        "\"traceId\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"spanId\":\"00f067aa0ba902b7\","
        "\"attributes\":[{\"key\":\"http.route\",\"value\":{\"stringValue\":\"/chat\"}},"
        "{\"key\":\"retry\",\"value\":{\"intValue\":\"2\"}}]}]}]}]}",
        now_ns() - 3000000000ULL);
    post_expect("/v1/logs", s.p, 200, "{}");
    te_it_str_free(&s);

    cJSON *root;
    const cJSON *ev = one_event("/v1/events?kind=log", &root);
    assert_string_equal(str(ev, "body", NULL), "upstream refused");
    assert_string_equal(str(ev, "tags", "severity_text"), "ERROR");
    assert_string_equal(str(ev, "tags", "service.name"), "api");
    assert_string_equal(str(ev, "tags", "http.route"), "/chat");
    assert_true(num(ev, "fields", "retry") == 2);
    assert_string_equal(str(ev, "trace_id", NULL), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(str(ev, "span_id", NULL), "00f067aa0ba902b7");
    cJSON_Delete(root);
}

static void metrics_store_one_event_per_point(void **state)
{
    (void)state;
    unsigned long long t = now_ns() - 2000000000ULL;
    te_it_str_t s = {0};
    te_it_str_add(
        &s,
        "{\"resourceMetrics\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
        "\"value\":{\"stringValue\":\"host-a\"}}]},\"scopeMetrics\":[{\"metrics\":["
        "{\"name\":\"gpu.util\",\"gauge\":{\"dataPoints\":["
        "{\"timeUnixNano\":\"%llu\",\"asDouble\":0.5,\"attributes\":[{\"key\":\"gpu\","
        "\"value\":{\"stringValue\":\"0\"}}]},"
        "{\"timeUnixNano\":\"%llu\",\"asDouble\":0.9,\"attributes\":[{\"key\":\"gpu\","
        "\"value\":{\"stringValue\":\"1\"}}]}]}},"
        "{\"name\":\"req.latency\",\"histogram\":{\"aggregationTemporality\":2,\"dataPoints\":["
        "{\"timeUnixNano\":\"%llu\",\"count\":\"12\",\"sum\":600.5,\"min\":3,\"max\":120,"
        "\"bucketCounts\":[\"6\",\"6\"],\"explicitBounds\":[50]}]}}]}]}]}",
        t, t, t);
    post_expect("/v1/metrics", s.p, 200, "{}");
    te_it_str_free(&s);

    assert_int_equal(te_it_count(&srv, "metric", "where=name:gpu.util"), 2);
    cJSON *root;
    const cJSON *ev = one_event("/v1/events?kind=metric&where=name:gpu.util&where=gpu:1", &root);
    assert_true(num(ev, "fields", "value") == 0.9);
    assert_string_equal(str(ev, "tags", "service.name"), "host-a");
    cJSON_Delete(root);
    ev = one_event("/v1/events?kind=metric&where=name:req.latency", &root);
    assert_true(num(ev, "fields", "count") == 12);
    assert_true(num(ev, "fields", "sum") == 600.5);
    assert_true(num(ev, "fields", "min") == 3);
    assert_true(num(ev, "fields", "max") == 120);
    cJSON_Delete(root);
}

static void bad_items_and_bodies(void **state)
{
    (void)state;
    /* one good span, one with a huge trace id: partial success */
    te_it_str_t s = {0};
    te_it_str_add(
        &s,
        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":["
        "{\"traceId\":\"11111111111111111111111111111111\",\"spanId\":\"1111111111111111\","
        "\"name\":\"kept\",\"startTimeUnixNano\":\"%llu\"},"
        "{\"traceId\":\"",
        now_ns());
    for (int i = 0; i < 500; i++)
        te_it_str_add(&s, "ab");
    te_it_str_add(&s, "\",\"spanId\":\"1111111111111112\",\"name\":\"x\","
                      "\"startTimeUnixNano\":\"1\"}]}]}]}");
    te_it_resp_t r = post("/v1/traces", s.p, s.len, NULL);
    te_it_str_free(&s);
    assert_int_equal(r.status, 200);
    cJSON *j = cJSON_Parse(r.body);
    assert_non_null(j);
    const cJSON *ps = cJSON_GetObjectItemCaseSensitive(j, "partialSuccess");
    assert_true(cJSON_GetObjectItemCaseSensitive(ps, "rejectedSpans")->valuedouble == 1);
    const char *msg = str(ps, "errorMessage", NULL);
    assert_non_null(strstr(msg, "spans[1]: \"traceId\""));
    assert_true(strlen(msg) < 300);
    cJSON_Delete(j);
    te_it_resp_free(&r);
    assert_int_equal(te_it_count(&srv, "span", "where=name:kept"), 1);

    post_expect("/v1/traces", "junk", 400, "not valid JSON");
    post_expect("/v1/logs", "{\"resourceLogs\":{}}", 400, "\\\"resourceLogs\\\" must be an array");
    post_expect("/v1/metrics", "{\"resourceSpans\":[]}", 400, "POST it to /v1/traces");

    /* protobuf: 415 naming the way out */
    static const unsigned char pb[] = {
        0x0a, 0x2c, 0x0a, 0x1e, 0x0a, 0x1c, 0x0a, 0x0c, 's', 'e', 'r', 'v', 'i', 'c', 'e', '.',
        'n',  'a',  'm',  'e',  0x12, 0x0c, 0x0a, 0x0a, 'c', 'h', 'e', 'c', 'k', 'o', 'u', 't'};
    static const char *const proto[] = {"Content-Type: application/x-protobuf", NULL};
    r = post("/v1/traces", pb, sizeof(pb), proto);
    assert_int_equal(r.status, 415);
    assert_non_null(strstr(r.body, "protobuf is not supported"));
    te_it_resp_free(&r);

    static const char *const gz[] = {"Content-Encoding: gzip", NULL};
    r = post("/v1/logs", "not gzip", 8, gz);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "gzip"));
    te_it_resp_free(&r);

    assert_int_equal(te_it_http(&srv, "GET", "/v1/traces", NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 405);
    te_it_resp_free(&r);
}

/* sha256("s3cret-ingest"), sha256("s3cret-read") */
#define AUTH_CONFIG                                                                                \
    "auth { tokens = {\n"                                                                          \
    "  { name = \"ci\", scopes = { \"ingest\" },\n"                                                \
    "    sha256 = \"da3fbea56517ee2226eece5e0c1a99d0bc00ad63f189f6d978399ff5bea30efc\" },\n"       \
    "  { name = \"grafana\", scopes = { \"read\" },\n"                                             \
    "    sha256 = \"41a911a03893b2693decbf93c67853dcbf7098053fd81f66d17511b12ba61f81\" },\n"       \
    "} }\n"

static void otlp_posts_need_the_ingest_scope(void **state)
{
    (void)state;
    te_it_srv_t a;
    char cfg[512];
    assert_int_equal(te_it_init(&a), 0);
    assert_int_equal(
        te_it_write_file(&a, "telemetry.lua", AUTH_CONFIG, strlen(AUTH_CONFIG), cfg, sizeof(cfg)),
        0);
    const char *extra[] = {"--config", cfg, NULL};
    assert_int_equal(te_it_start(&a, extra), 0);
    static const char *paths[] = {"/v1/traces", "/v1/logs", "/v1/metrics"};
    static const char *const ingest[] = {"Authorization: Bearer s3cret-ingest", NULL};
    static const char *const read[] = {"Authorization: Bearer s3cret-read", NULL};
    for (int i = 0; i < 3; i++) {
        te_it_resp_t r;
        assert_int_equal(te_it_http(&a, "POST", paths[i], "{}", 2, ingest, &r), 0);
        assert_int_equal(r.status, 200);
        te_it_resp_free(&r);
        assert_int_equal(te_it_http(&a, "POST", paths[i], "{}", 2, read, &r), 0);
        assert_int_equal(r.status, 403);
        te_it_resp_free(&r);
        assert_int_equal(te_it_http(&a, "POST", paths[i], "{}", 2, NULL, &r), 0);
        assert_int_equal(r.status, 401);
        te_it_resp_free(&r);
    }
    assert_int_equal(te_it_stop(&a, SIGTERM, 10000), 0);
    te_it_cleanup(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(traces_become_llm_call_and_span_events),
        cmocka_unit_test(logs_keep_body_severity_and_trace),
        cmocka_unit_test(metrics_store_one_event_per_point),
        cmocka_unit_test(bad_items_and_bodies),
        cmocka_unit_test(otlp_posts_need_the_ingest_scope),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
