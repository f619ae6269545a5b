/*
 * test_otlp.c - OTLP/HTTP JSON -> events (src/ingest/otlp.c), the mapping of
 * docs/otlp.md: spans (GenAI -> llm_call), logs, metric data points, and
 * bad input (request-level 400s and per-item rejections).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/event.h"
#include "ingest/otlp.h"

#define RECV 1700000000000000000LL
#define T0 "1763900000123456789"
#define T0_NS 1763900000123456789LL
#define T1 "1763900000935956789" /* T0 + 812.5 ms */

static const char *RES = "{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
                         "\"value\":{\"stringValue\":\"svc-a\"}}]},";

static int convert(te_otlp_signal_t sig, const char *json, te_otlp_result_t *r, te_err_t *err)
{
    return te_otlp_convert(sig, json, strlen(json), RECV, r, err);
}

static char *spans(const char *items)
{
    size_t n = strlen(RES) + strlen(items) + 128;
    char *s = malloc(n);
    assert_non_null(s);
    snprintf(s, n, "{\"resourceSpans\":[%s\"scopeSpans\":[{\"spans\":[%s]}]}]}", RES, items);
    return s;
}

static double field(const te_event_t *ev, const char *key)
{
    double v = -1;
    assert_true(te_event_field(ev, key, &v));
    return v;
}

static void trace_with_genai_and_plain_span(void **state)
{
    (void)state;
    te_otlp_result_t r;
    te_err_t err;
    char *req = spans(
        "{\"traceId\":\"5B8EFFF798038103D269B633813FC60C\",\"spanId\":\"eee19b7ec3c1b174\","
        "\"name\":\"chat m-large\",\"kind\":3,\"startTimeUnixNano\":\"" T0 "\","
        "\"endTimeUnixNano\":\"" T1 "\",\"status\":{\"code\":\"STATUS_CODE_ERROR\","
        "\"message\":\"overloaded\"},\"attributes\":["
        "{\"key\":\"gen_ai.provider.name\",\"value\":{\"stringValue\":\"anthropic\"}},"
        "{\"key\":\"gen_ai.request.model\",\"value\":{\"stringValue\":\"m-large\"}},"
        "{\"key\":\"gen_ai.response.model\",\"value\":{\"stringValue\":\"m-large-2\"}},"
        "{\"key\":\"gen_ai.operation.name\",\"value\":{\"stringValue\":\"chat\"}},"
        "{\"key\":\"gen_ai.usage.input_tokens\",\"value\":{\"intValue\":\"1200\"}},"
        "{\"key\":\"gen_ai.usage.output_tokens\",\"value\":{\"intValue\":300}},"
        "{\"key\":\"gen_ai.request.temperature\",\"value\":{\"doubleValue\":0.5}},"
        "{\"key\":\"workflow\",\"value\":{\"stringValue\":\"code-review\"}}]},"
        "{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b175\","
        "\"parentSpanId\":\"eee19b7ec3c1b174\",\"name\":\"GET /x\",\"kind\":\"SPAN_KIND_SERVER\","
        "\"startTimeUnixNano\":\"" T0 "\",\"endTimeUnixNano\":\"" T1 "\","
        "\"attributes\":[{\"key\":\"http.status_code\",\"value\":{\"intValue\":\"200\"}},"
        "{\"key\":\"cached\",\"value\":{\"boolValue\":false}},"
        "{\"key\":\"name\",\"value\":{\"stringValue\":\"other\"}},"
        "{\"key\":\"labels\",\"value\":{\"kvlistValue\":{\"values\":[{\"key\":\"a\","
        "\"value\":{\"intValue\":\"1\"}}]}}}]}");
    assert_int_equal(convert(TE_OTLP_TRACES, req, &r, &err), 0);
    free(req);
    assert_int_equal(r.rejected, 0);
    assert_int_equal(r.n, 2);

    const te_event_t *llm = r.events[0];
    assert_string_equal(llm->kind, "llm_call");
    assert_true(llm->ts_ns == T0_NS);
    assert_string_equal(llm->source, "svc-a");
    assert_string_equal(llm->trace_id, "5b8efff798038103d269b633813fc60c");
    assert_string_equal(llm->span_id, "eee19b7ec3c1b174");
    assert_null(llm->parent_span_id);
    assert_string_equal(te_event_tag(llm, "provider"), "anthropic");
    assert_string_equal(te_event_tag(llm, "model"), "m-large");
    assert_string_equal(te_event_tag(llm, "gen_ai.response.model"), "m-large-2");
    assert_string_equal(te_event_tag(llm, "operation"), "chat");
    assert_string_equal(te_event_tag(llm, "status"), "error");
    assert_string_equal(te_event_tag(llm, "workflow"), "code-review");
    assert_string_equal(te_event_tag(llm, "service.name"), "svc-a");
    assert_null(te_event_tag(llm, "gen_ai.provider.name"));
    assert_null(te_event_tag(llm, "gen_ai.request.model"));
    assert_true(field(llm, "input_tokens") == 1200);
    assert_true(field(llm, "output_tokens") == 300);
    assert_true(field(llm, "latency_ms") == 812.5);
    assert_true(field(llm, "gen_ai.request.temperature") == 0.5);
    assert_false(te_event_field(llm, "gen_ai.usage.input_tokens", &(double){0}));
    assert_non_null(llm->body);
    assert_non_null(strstr(llm->body, "overloaded"));

    const te_event_t *sp = r.events[1];
    assert_string_equal(sp->kind, "span");
    assert_string_equal(sp->parent_span_id, "eee19b7ec3c1b174");
    assert_string_equal(te_event_tag(sp, "name"), "GET /x");
    assert_string_equal(te_event_tag(sp, "attr.name"), "other");
    assert_string_equal(te_event_tag(sp, "span.kind"), "server");
    assert_string_equal(te_event_tag(sp, "status"), "unset");
    assert_string_equal(te_event_tag(sp, "cached"), "false");
    assert_string_equal(te_event_tag(sp, "labels"), "{\"a\":1}");
    assert_true(field(sp, "duration_ms") == 812.5);
    assert_true(field(sp, "http.status_code") == 200);
    assert_string_equal(sp->id, "5b8efff798038103d269b633813fc60c-eee19b7ec3c1b175");
    te_otlp_result_free(&r);
    assert_int_equal(r.n, 0);
}

static void genai_status_ok_timeout_and_legacy_names(void **state)
{
    (void)state;
    te_otlp_result_t r;
    te_err_t err;
    char *req =
        spans("{\"traceId\":\"00000000000000000000000000000001\",\"spanId\":\"0000000000000001\","
              "\"name\":\"chat\",\"startTimeUnixNano\":\"" T0 "\",\"attributes\":["
              "{\"key\":\"gen_ai.system\",\"value\":{\"stringValue\":\"openai\"}},"
              "{\"key\":\"gen_ai.response.model\",\"value\":{\"stringValue\":\"gpt-x\"}},"
              "{\"key\":\"gen_ai.usage.prompt_tokens\",\"value\":{\"intValue\":\"7\"}}]},"
              "{\"traceId\":\"00000000000000000000000000000001\",\"spanId\":\"0000000000000002\","
              "\"name\":\"chat\",\"startTimeUnixNano\":\"" T0 "\",\"endTimeUnixNano\":\"" T1 "\","
              "\"attributes\":[{\"key\":\"gen_ai.system\",\"value\":{\"stringValue\":\"openai\"}},"
              "{\"key\":\"error.type\",\"value\":{\"stringValue\":\"APITimeoutError\"}}]}");
    assert_int_equal(convert(TE_OTLP_TRACES, req, &r, &err), 0);
    free(req);
    assert_int_equal(r.n, 2);
    assert_string_equal(te_event_tag(r.events[0], "status"), "ok");
    assert_string_equal(te_event_tag(r.events[0], "provider"), "openai");
    assert_string_equal(te_event_tag(r.events[0], "model"), "gpt-x");
    assert_true(field(r.events[0], "input_tokens") == 7);
    assert_false(te_event_field(r.events[0], "latency_ms", &(double){0})); /* no end time */
    assert_string_equal(te_event_tag(r.events[1], "status"), "timeout");
    assert_string_equal(te_event_tag(r.events[1], "error.type"), "APITimeoutError");
    te_otlp_result_free(&r);
}

static void logs_map_severity_body_and_ids(void **state)
{
    (void)state;
    te_otlp_result_t r;
    te_err_t err;
    const char *req =
        "{\"resourceLogs\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
        "\"value\":{\"stringValue\":\"svc-l\"}}]},\"scopeLogs\":[{\"logRecords\":["
        "{\"timeUnixNano\":\"" T0 "\",\"severityText\":\"WARN\",\"severityNumber\":13,"
        "\"body\":{\"stringValue\":\"disk almost "
        "full\"},\"traceId\":\"5b8efff798038103d269b633813fc60c\","
        "\"spanId\":\"eee19b7ec3c1b174\",\"attributes\":[{\"key\":\"disk\",\"value\":"
        "{\"stringValue\":\"/dev/"
        "sda\"}},{\"key\":\"free_pct\",\"value\":{\"doubleValue\":\"3.5\"}}]},"
        "{\"observedTimeUnixNano\":\"" T1 "\",\"severityNumber\":\"SEVERITY_NUMBER_ERROR2\","
        "\"body\":{\"kvlistValue\":{\"values\":[{\"key\":\"msg\",\"value\":{\"stringValue\":\"x\"}}"
        "]}}},"
        "{}]}]}]}";
    assert_int_equal(convert(TE_OTLP_LOGS, req, &r, &err), 0);
    assert_int_equal(r.rejected, 0);
    assert_int_equal(r.n, 3);
    const te_event_t *a = r.events[0];
    assert_string_equal(a->kind, "log");
    assert_true(a->ts_ns == T0_NS);
    assert_string_equal(a->source, "svc-l");
    assert_string_equal(te_event_tag(a, "service.name"), "svc-l");
    assert_string_equal(te_event_tag(a, "severity_text"), "WARN");
    assert_string_equal(te_event_tag(a, "disk"), "/dev/sda");
    assert_true(field(a, "severity_number") == 13);
    assert_true(field(a, "free_pct") == 3.5);
    assert_string_equal(a->body, "\"disk almost full\"");
    assert_string_equal(a->trace_id, "5b8efff798038103d269b633813fc60c");
    assert_string_equal(a->span_id, "eee19b7ec3c1b174");
    const te_event_t *b = r.events[1];
    assert_string_equal(te_event_tag(b, "severity_text"), "ERROR");
    assert_true(field(b, "severity_number") == 18);
    assert_string_equal(b->body, "{\"msg\":\"x\"}");
    assert_null(b->trace_id);
    assert_true(r.events[2]->ts_ns == RECV); /* no time at all: receive time */
    te_otlp_result_free(&r);
}

static void metrics_gauge_sum_histogram_summary(void **state)
{
    (void)state;
    te_otlp_result_t r;
    te_err_t err;
    const char *req =
        "{\"resourceMetrics\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
        "\"value\":{\"stringValue\":\"host-1\"}}]},\"scopeMetrics\":[{\"metrics\":["
        "{\"name\":\"cpu.util\",\"unit\":\"1\",\"gauge\":{\"dataPoints\":["
        "{\"timeUnixNano\":\"" T0 "\",\"asDouble\":0.75,\"attributes\":[{\"key\":\"cpu\","
        "\"value\":{\"stringValue\":\"0\"}}]},"
        "{\"timeUnixNano\":\"" T1 "\",\"asInt\":\"-3\"}]}},"
        "{\"name\":\"requests\",\"sum\":{\"isMonotonic\":true,\"dataPoints\":[{\"asInt\":\"42\"}]}}"
        ","
        "{\"name\":\"latency\",\"histogram\":{\"dataPoints\":[{\"timeUnixNano\":\"" T0 "\","
        "\"count\":\"10\",\"sum\":123.5,\"min\":1,\"max\":40,\"bucketCounts\":[\"5\",\"5\"],"
        "\"explicitBounds\":[10]}]}},"
        "{\"name\":\"rt\",\"summary\":{\"dataPoints\":[{\"count\":\"4\",\"sum\":8,"
        "\"quantileValues\":[{\"value\":1},{\"quantile\":0.99,\"value\":3.5}]}]}}]}]}]}";
    assert_int_equal(convert(TE_OTLP_METRICS, req, &r, &err), 0);
    assert_int_equal(r.rejected, 0);
    assert_int_equal(r.n, 5);
    const te_event_t *g = r.events[0];
    assert_string_equal(g->kind, "metric");
    assert_true(g->ts_ns == T0_NS);
    assert_string_equal(te_event_tag(g, "name"), "cpu.util");
    assert_string_equal(te_event_tag(g, "service.name"), "host-1");
    assert_string_equal(te_event_tag(g, "cpu"), "0");
    assert_true(field(g, "value") == 0.75);
    assert_true(field(r.events[1], "value") == -3);
    assert_true(field(r.events[2], "value") == 42);
    assert_true(r.events[2]->ts_ns == RECV);
    const te_event_t *h = r.events[3];
    assert_string_equal(te_event_tag(h, "name"), "latency");
    assert_true(field(h, "count") == 10);
    assert_true(field(h, "sum") == 123.5);
    assert_true(field(h, "min") == 1);
    assert_true(field(h, "max") == 40);
    assert_false(te_event_field(h, "value", &(double){0}));
    const te_event_t *s = r.events[4];
    assert_true(field(s, "count") == 4);
    assert_true(field(s, "p0") == 1);
    assert_true(field(s, "p99") == 3.5);
    te_otlp_result_free(&r);
}

/* Request-level problems: the whole body is refused with a message. */
static void bad_requests_are_parse_errors(void **state)
{
    (void)state;
    static const struct {
        te_otlp_signal_t sig;
        const char *json, *want;
    } cases[] = {
        {TE_OTLP_TRACES, "junk", "not valid JSON"},
        {TE_OTLP_TRACES, "{\"resourceSpans\":[]} x", "unexpected text"},
        {TE_OTLP_TRACES, "[1,2]", "expected an OTLP JSON object"},
        {TE_OTLP_TRACES, "{\"resourceSpans\":\"no\"}",
         "\"resourceSpans\" must be an array, got string"},
        {TE_OTLP_TRACES, "{\"resourceSpans\":[7]}", "resourceSpans[0]: expected an object"},
        {TE_OTLP_TRACES, "{\"resourceSpans\":[{\"scopeSpans\":{}}]}",
         "\"scopeSpans\" must be an array"},
        {TE_OTLP_TRACES, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":1}]}]}",
         "\"spans\" must be an array"},
        {TE_OTLP_TRACES, "{\"resourceLogs\":[]}", "POST it to /v1/logs"},
        {TE_OTLP_LOGS,
         "{\"resourceLogs\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
         "\"value\":{\"intValue\":\"1\"}}]}}]}",
         "\"service.name\" must be a stringValue"},
        {TE_OTLP_METRICS, "{\"resourceMetrics\":[{\"resource\":[]}]}",
         "\"resource\" must be an object"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        te_otlp_result_t r;
        te_err_t err;
        int rc = convert(cases[i].sig, cases[i].json, &r, &err);
        if (rc != TE_EPARSE || !strstr(err.msg, cases[i].want))
            fail_msg("case %zu: rc %d msg \"%s\", want \"%s\"", i, rc, err.msg, cases[i].want);
        te_otlp_result_free(&r);
    }
    /* an empty request is a valid request with nothing in it */
    te_otlp_result_t r;
    te_err_t err;
    assert_int_equal(convert(TE_OTLP_METRICS, "{}", &r, &err), 0);
    assert_int_equal(r.n + r.rejected, 0);
    te_otlp_result_free(&r);
}

/* Item-level problems: that span is rejected with its path, the others kept. */
static void bad_spans_are_rejected_alone(void **state)
{
    (void)state;
    static const char *const GOOD =
        "{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\","
        "\"name\":\"ok\",\"startTimeUnixNano\":\"" T0 "\"}";
    static const struct {
        const char *span, *want;
    } cases[] = {
        {"{\"traceId\":\"5b8efff798038103d269b633813fc60c00\",\"spanId\":\"eee19b7ec3c1b174\","
         "\"name\":\"x\",\"startTimeUnixNano\":\"1\"}",
         "\"traceId\": \"5b8efff798038103d269b633813fc60c00\" is not 32 hex"},
        {"{\"traceId\":\"zz8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\","
         "\"name\":\"x\",\"startTimeUnixNano\":\"1\"}",
         "is not 32 hex digits"},
        {"{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":12,\"name\":\"x\","
         "\"startTimeUnixNano\":\"1\"}",
         "\"spanId\": expected a hex string, got number"},
        {"{\"spanId\":\"eee19b7ec3c1b174\",\"name\":\"x\",\"startTimeUnixNano\":\"1\"}",
         "span has no \"traceId\""},
        {"{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\","
         "\"startTimeUnixNano\":\"1\"}",
         "\"name\" must be a string, got nothing"},
        {"{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\","
         "\"name\":\"x\"}",
         "no \"startTimeUnixNano\""},
        {"{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\","
         "\"name\":\"x\",\"startTimeUnixNano\":\"12x\"}",
         "\"startTimeUnixNano\": \"12x\" is not"},
        {"{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\","
         "\"name\":\"x\",\"startTimeUnixNano\":\"99999999999999999999\"}",
         "not a non-negative 64-bit"},
        {"{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\","
         "\"name\":\"x\",\"startTimeUnixNano\":\"5\",\"endTimeUnixNano\":\"4\"}",
         "before it starts"},
        {"{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\","
         "\"name\":\"x\",\"startTimeUnixNano\":\"5\",\"attributes\":[{\"key\":\"n\",\"value\":"
         "{\"intValue\":\"12.5\"}}]}",
         "attribute \"n\": intValue: \"12.5\" is not a 64-bit integer"},
        {"{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\","
         "\"name\":\"x\",\"startTimeUnixNano\":\"5\",\"attributes\":[{\"key\":\"n\",\"value\":"
         "{\"stringValue\":3}}]}",
         "stringValue must be a string, got number"},
        {"{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\","
         "\"name\":\"x\",\"startTimeUnixNano\":\"5\",\"attributes\":[{\"value\":{}}]}",
         "attributes[0] needs a non-empty string \"key\""},
        {"{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\","
         "\"name\":\"x\",\"startTimeUnixNano\":\"5\",\"attributes\":{}}",
         "\"attributes\" must be an array"},
        {"{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\","
         "\"name\":\"x\",\"startTimeUnixNano\":\"5\",\"attributes\":[{\"key\":\"d\",\"value\":"
         "{\"doubleValue\":\"NaN\"}}]}",
         "NaN is not a finite number"},
        {"{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\","
         "\"name\":\"x\",\"startTimeUnixNano\":\"5\",\"kind\":9}",
         "\"kind\": 9 is not a known value"},
        {"{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\","
         "\"name\":\"x\",\"startTimeUnixNano\":\"5\",\"attributes\":[{\"key\":\"gen_ai.system\","
         "\"value\":{\"stringValue\":\"o\"}},{\"key\":\"gen_ai.usage.input_tokens\",\"value\":"
         "{\"stringValue\":\"many\"}}]}",
         "expected an intValue or doubleValue"},
        {"\"span\"", "expected a span object, got string"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        te_otlp_result_t r;
        te_err_t err;
        char items[2048];
        snprintf(items, sizeof(items), "%s,%s", GOOD, cases[i].span);
        char *req = spans(items);
        int rc = convert(TE_OTLP_TRACES, req, &r, &err);
        free(req);
        assert_int_equal(rc, 0);
        if (r.n != 1 || r.rejected != 1 || !strstr(r.error, cases[i].want) ||
            !strstr(r.error, "resourceSpans[0].scopeSpans[0].spans[1]: "))
            fail_msg("case %zu: n %zu rejected %zu error \"%s\", want \"%s\"", i, r.n, r.rejected,
                     r.error, cases[i].want);
        te_otlp_result_free(&r);
    }
}

/* SPEC 2 limits apply: 65 tags or a tag value over 1024 bytes rejects the
 * item (never truncates it). */
static void event_limits_reject_items(void **state)
{
    (void)state;
    te_otlp_result_t r;
    te_err_t err;
    size_t cap = 1 << 16, n = 0;
    char *req = malloc(cap);
    assert_non_null(req);
    n += (size_t)snprintf(
        req + n, cap - n,
        "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":["
        "{\"name\":\"m\",\"gauge\":{\"dataPoints\":[{\"asDouble\":1,\"attributes\":[");
    for (int i = 0; i < 64; i++) /* + tag "name" = 65 */
        n += (size_t)snprintf(req + n, cap - n,
                              "%s{\"key\":\"k%d\",\"value\":{\"stringValue\":\"v\"}}", i ? "," : "",
                              i);
    n += (size_t)snprintf(req + n, cap - n,
                          "]},{\"asDouble\":2,\"attributes\":[{\"key\":\"big\","
                          "\"value\":{\"stringValue\":\"");
    memset(req + n, 'x', 1100);
    n += 1100;
    n += (size_t)snprintf(req + n, cap - n,
                          "\"}}]},{\"asDouble\":3},{\"attributes\":[]}]}},"
                          "{\"name\":\"empty\"},{\"gauge\":{}}]}]}]}");
    assert_int_equal(te_otlp_convert(TE_OTLP_METRICS, req, n, RECV, &r, &err), 0);
    free(req);
    assert_int_equal(r.n, 1);
    assert_true(field(r.events[0], "value") == 3);
    assert_int_equal(r.rejected, 5);
    assert_non_null(
        strstr(r.error, "resourceMetrics[0].scopeMetrics[0].metrics[0].gauge.dataPoints[0]: "));
    assert_non_null(strstr(r.error, "64"));
    te_otlp_result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(trace_with_genai_and_plain_span),
        cmocka_unit_test(genai_status_ok_timeout_and_legacy_names),
        cmocka_unit_test(logs_map_severity_body_and_ids),
        cmocka_unit_test(metrics_gauge_sum_histogram_summary),
        cmocka_unit_test(bad_requests_are_parse_errors),
        cmocka_unit_test(bad_spans_are_rejected_alone),
        cmocka_unit_test(event_limits_reject_items),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
