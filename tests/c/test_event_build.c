/*
 * test_event_build.c - the way back (core/event_build.c): canonical JSON
 * output, rebuilding events from stored parts, and the fields blob.
 *
 * THREAD: main only.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/event.h"
#include "core/time.h"

static te_event_t *parse_ok(const char *js)
{
    te_event_opts_t opts = {NULL, NULL, INT64_C(1700000000000000000)};
    te_event_t *ev = NULL;
    te_err_t err = {0};
    int rc = te_event_parse(js, strlen(js), &opts, &ev, &err);
    if (rc != 0)
        fail_msg("te_event_parse(%.200s) = %d: %s", js, rc, err.msg);
    return ev;
}

static const char llm_call[] =
    "{\"ts\":\"2026-11-20T10:00:00.123Z\",\"kind\":\"llm_call\",\"source\":\"svc-a\","
    "\"id\":\"c-81f2\",\"trace_id\":\"4bf9\",\"span_id\":\"00f0\",\"parent_span_id\":\"00e0\","
    "\"correlation_id\":\"req-17\",\"tags\":{\"provider\":\"anthropic\",\"model\":\"m-large\","
    "\"tier\":\"capable\",\"workflow\":\"code-review\",\"status\":\"ok\"},"
    "\"fields\":{\"latency_ms\":812.5,\"cost_usd\":0.0123,\"input_tokens\":1200,"
    "\"output_tokens\":300},\"body\":{\"anything\": [\"json\", 1, true, null]}}";

static void to_json_canonical_and_reparses_equal(void **state)
{
    (void)state;
    te_event_t *ev = parse_ok(llm_call);
    size_t len = 0;
    char *js = te_event_to_json(ev, &len);
    assert_non_null(js);
    assert_int_equal(len, strlen(js));
    assert_string_equal(js,
                        "{\"ts\":\"2026-11-20T10:00:00.123Z\",\"kind\":\"llm_call\",\"source\":"
                        "\"svc-a\",\"id\":\"c-81f2\",\"trace_id\":\"4bf9\",\"span_id\":\"00f0\","
                        "\"parent_span_id\":\"00e0\",\"correlation_id\":\"req-17\",\"tags\":{"
                        "\"model\":\"m-large\",\"provider\":\"anthropic\",\"status\":\"ok\","
                        "\"tier\":\"capable\",\"workflow\":\"code-review\"},\"fields\":{"
                        "\"cost_usd\":0.0123,\"input_tokens\":1200,\"latency_ms\":812.5,"
                        "\"output_tokens\":300},\"body\":{\"anything\":[\"json\",1,true,null]}}");
    te_event_t *again = parse_ok(js);
    char *js2 = te_event_to_json(again, NULL);
    assert_string_equal(js, js2);
    free(js);
    free(js2);
    te_event_free(again);
    te_event_free(ev);
    ev = parse_ok("{\"kind\":\"x\",\"ts\":0.1}");
    js = te_event_to_json(ev, NULL);
    assert_string_equal(js, "{\"ts\":\"1970-01-01T00:00:00.100Z\",\"kind\":\"x\",\"tags\":{},"
                            "\"fields\":{}}");
    free(js);
    te_event_free(ev);
}

static void build_from_parts_equals_parsed(void **state)
{
    (void)state;
    te_event_t *ev = parse_ok(llm_call), *b = NULL;
    te_err_t err;
    assert_int_equal(te_event_build(ev->ts_ns, ev->kind, ev->source, ev->id, ev->trace_id,
                                    ev->span_id, ev->parent_span_id, ev->correlation_id,
                                    ev->tags_json, ev->tags_json_len, ev->fields_blob,
                                    ev->fields_blob_len, ev->body, ev->body_len, &b, &err),
                     0);
    char *a = te_event_to_json(ev, NULL), *c = te_event_to_json(b, NULL);
    assert_string_equal(a, c);
    assert_int_equal(b->ntags, 5);
    assert_string_equal(te_event_tag(b, "workflow"), "code-review");
    double v;
    assert_true(te_event_field(b, "latency_ms", &v) && v == 812.5);
    free(a);
    free(c);
    te_event_free(b);
    te_event_free(ev);

    /* Escapes in stored tags decode back. */
    ev = parse_ok("{\"kind\":\"x\",\"tags\":{\"q\\\"\":\"\\n\\u0001\xc3\xa9\\ud83d\\ude00\"}}");
    assert_int_equal(te_event_build(1, "x", NULL, NULL, NULL, NULL, NULL, NULL, ev->tags_json,
                                    ev->tags_json_len, NULL, 0, NULL, 0, &b, &err),
                     0);
    assert_string_equal(te_event_tag(b, "q\""), "\n\x01\xc3\xa9\xf0\x9f\x98\x80");
    assert_int_equal(b->nfields, 0);
    assert_int_equal(b->fields_blob_len, 1);
    te_event_free(b);
    te_event_free(ev);
    /* No tags at all. */
    assert_int_equal(te_event_build(1, "x", NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL, 0,
                                    NULL, 0, &b, &err),
                     0);
    assert_string_equal(b->tags_json, "{}");
    te_event_free(b);
}

static void build_bad_parts_rejected(void **state)
{
    (void)state;
    te_event_t *b = (te_event_t *)(uintptr_t)1;
    te_err_t err;
    const char *bad_tags[] = {"{",          "{\"a\":1}",       "{\"a\":\"b\",}",
                              "[]",         "{\"b\":\"1\",\"a\":\"2\"}",
                              "{\"a\":\"1\",\"a\":\"2\"}",
                              "{\"a\":\"\\u0000\"}", "{\"a\":\"\\ud800\"}", "{\"a\":\"b\"} x",
                              "{\"a\":\"\\x\"}"};
    for (size_t i = 0; i < sizeof(bad_tags) / sizeof(bad_tags[0]); i++) {
        int rc = te_event_build(1, "x", NULL, NULL, NULL, NULL, NULL, NULL, bad_tags[i],
                                strlen(bad_tags[i]), NULL, 0, NULL, 0, &b, &err);
        if (rc != TE_EINVAL)
            fail_msg("tags %s accepted", bad_tags[i]);
    }
    assert_int_equal(te_event_build(1, "Bad", NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL,
                                    0, NULL, 0, &b, &err),
                     TE_EINVAL);
    static const unsigned char short_blob[] = {1, 1, 'a', 0, 0};
    static const unsigned char count_blob[] = {2, 1, 'a', 0, 0, 0, 0, 0, 0, 0, 0};
    static const unsigned char order_blob[] = {2, 1, 'b', 0, 0, 0, 0, 0, 0, 0, 0,
                                               1, 'a', 0, 0, 0, 0, 0, 0, 0, 0};
    const unsigned char *blobs[] = {short_blob, count_blob, order_blob};
    size_t lens[] = {sizeof(short_blob), sizeof(count_blob), sizeof(order_blob)};
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(te_event_build(1, "x", NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0,
                                        blobs[i], lens[i], NULL, 0, &b, &err),
                         TE_EINVAL);
    assert_true(b == (te_event_t *)(uintptr_t)1);
}

static void fields_blob_iterates_in_key_order(void **state)
{
    (void)state;
    te_event_t *ev = parse_ok("{\"kind\":\"x\",\"fields\":{\"b\":2,\"a\":1,\"c\":-0.5}}");
    size_t pos = 0, kl;
    const char *k;
    double v;
    const char *want[] = {"a", "b", "c"};
    double wantv[] = {1, 2, -0.5};
    for (int i = 0; i < 3; i++) {
        assert_true(te_fields_blob_next(ev->fields_blob, ev->fields_blob_len, &pos, &k, &kl, &v));
        assert_int_equal(kl, 1);
        assert_memory_equal(k, want[i], 1);
        assert_true(v == wantv[i]);
    }
    assert_false(te_fields_blob_next(ev->fields_blob, ev->fields_blob_len, &pos, &k, &kl, &v));
    assert_int_equal(ev->fields_blob_len, 1 + 3 * 10);
    /* Little-endian double after the key. */
    assert_int_equal(ev->fields_blob[1], 1);
    assert_int_equal(ev->fields_blob[2], 'a');
    assert_int_equal(ev->fields_blob[10], 0x3f);
    assert_false(te_fields_blob_next(NULL, 0, &pos, &k, &kl, &v));
    pos = 0;
    assert_false(te_fields_blob_next(ev->fields_blob, 5, &pos, &k, &kl, &v));
    te_event_free(ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(to_json_canonical_and_reparses_equal),
        cmocka_unit_test(build_from_parts_equals_parsed),
        cmocka_unit_test(build_bad_parts_rejected),
        cmocka_unit_test(fields_blob_iterates_in_key_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
