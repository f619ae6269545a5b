/*
 * test_event.c - the event model of SPEC section 2 (core/event): canonical
 * and flat forms, every limit on both sides, timestamps, UTF-8, NUL, depth,
 * duplicates, exact error texts, to_json, build and the fields blob.
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

#define RECV_NS INT64_C(1700000000000000000)

static const te_event_opts_t no_opts = {NULL, NULL, RECV_NS};

static te_event_t *parse_len_opts(const char *js, size_t len, const te_event_opts_t *o)
{
    te_event_t *ev = NULL;
    te_err_t err = {0};
    int rc = te_event_parse(js, len, o, &ev, &err);
    if (rc != 0)
        fail_msg("te_event_parse(%.200s) = %d: %s", js, rc, err.msg);
    assert_non_null(ev);
    return ev;
}

static te_event_t *parse_ok(const char *js)
{
    return parse_len_opts(js, strlen(js), &no_opts);
}

static void parse_err_len(const char *js, size_t len, int code, const char *msg)
{
    te_event_t *ev = (te_event_t *)(uintptr_t)1;
    te_err_t err = {0};
    int rc = te_event_parse(js, len, &no_opts, &ev, &err);
    if (rc != code)
        fail_msg("te_event_parse(%.200s) = %d (%s), want %d", js, rc, err.msg, code);
    assert_true(ev == (te_event_t *)(uintptr_t)1); /* untouched on failure */
    if (msg)
        assert_string_equal(err.msg, msg);
}

static void parse_err(const char *js, int code, const char *msg)
{
    parse_err_len(js, strlen(js), code, msg);
}

/* A malloc'd string of n copies of c. */
static char *rep(char c, size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* A malloc'd printf. */
static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(NULL, 0, f, ap);
    va_end(ap);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    va_start(ap, f);
    vsnprintf(s, (size_t)n + 1, f, ap);
    va_end(ap);
    return s;
}

static const char llm_call[] =
    "{\"ts\":\"2026-11-20T10:00:00.123Z\",\"kind\":\"llm_call\",\"source\":\"svc-a\","
    "\"id\":\"c-81f2\",\"trace_id\":\"4bf9\",\"span_id\":\"00f0\",\"parent_span_id\":\"00e0\","
    "\"correlation_id\":\"req-17\",\"tags\":{\"provider\":\"anthropic\",\"model\":\"m-large\","
    "\"tier\":\"capable\",\"workflow\":\"code-review\",\"status\":\"ok\"},"
    "\"fields\":{\"latency_ms\":812.5,\"cost_usd\":0.0123,\"input_tokens\":1200,"
    "\"output_tokens\":300},\"body\":{\"anything\": [\"json\", 1, true, null]}}";

static void parse_canonical_keeps_every_part(void **state)
{
    (void)state;
    te_event_t *ev = parse_ok(llm_call);
    assert_true(ev->ts_ns == INT64_C(1795168800123000000));
    assert_string_equal(ev->kind, "llm_call");
    assert_string_equal(ev->source, "svc-a");
    assert_string_equal(ev->id, "c-81f2");
    assert_string_equal(ev->trace_id, "4bf9");
    assert_string_equal(ev->span_id, "00f0");
    assert_string_equal(ev->parent_span_id, "00e0");
    assert_string_equal(ev->correlation_id, "req-17");
    assert_int_equal(ev->ntags, 5);
    assert_string_equal(ev->tags[0].key, "model");
    assert_string_equal(ev->tags[4].key, "workflow");
    assert_string_equal(ev->tags_json, "{\"model\":\"m-large\",\"provider\":\"anthropic\","
                                       "\"status\":\"ok\",\"tier\":\"capable\","
                                       "\"workflow\":\"code-review\"}");
    assert_int_equal(ev->tags_json_len, strlen(ev->tags_json));
    assert_int_equal(ev->nfields, 4);
    assert_string_equal(ev->fields[0].key, "cost_usd");
    assert_true(ev->fields[2].value == 812.5);
    assert_string_equal(ev->body, "{\"anything\":[\"json\",1,true,null]}");
    assert_int_equal(ev->body_len, strlen(ev->body));
    assert_int_equal(ev->size_bytes, strlen(llm_call));
    assert_string_equal(te_event_tag(ev, "tier"), "capable");
    assert_null(te_event_tag(ev, "nope"));
    double v = 0;
    assert_true(te_event_field(ev, "input_tokens", &v));
    assert_true(v == 1200);
    assert_false(te_event_field(ev, "nope", &v));
    assert_true(te_fields_blob_get(ev->fields_blob, ev->fields_blob_len, "latency_ms", &v));
    assert_true(v == 812.5);
    assert_false(te_fields_blob_get(ev->fields_blob, ev->fields_blob_len, "latency", &v));
    te_event_free(ev);
    te_event_free(NULL);
}

static void parse_minimal_event_uses_defaults(void **state)
{
    (void)state;
    te_event_t *ev = parse_ok("{\"kind\":\"x\",\"tags\":{}}");
    assert_true(ev->ts_ns == RECV_NS);
    assert_null(ev->source);
    assert_null(ev->id);
    assert_null(ev->body);
    assert_int_equal(ev->ntags, 0);
    assert_null(ev->tags);
    assert_string_equal(ev->tags_json, "{}");
    assert_int_equal(ev->fields_blob_len, 1);
    assert_int_equal(ev->fields_blob[0], 0);
    te_event_free(ev);

    te_event_opts_t o = {"llm_call", "tail:llm", 42};
    const char *js = "{\"tags\":{\"a\":\"b\"}}";
    ev = parse_len_opts(js, strlen(js), &o);
    assert_string_equal(ev->kind, "llm_call");
    assert_string_equal(ev->source, "tail:llm");
    assert_true(ev->ts_ns == 42);
    te_event_free(ev);
    /* The event's own kind and source win over the defaults. */
    js = "{\"kind\":\"run\",\"source\":\"s\",\"fields\":{}}";
    ev = parse_len_opts(js, strlen(js), &o);
    assert_string_equal(ev->kind, "run");
    assert_string_equal(ev->source, "s");
    te_event_free(ev);
}

static void parse_missing_or_bad_kind_rejected(void **state)
{
    (void)state;
    parse_err("{\"tags\":{}}", TE_EINVAL, "missing \"kind\" (set it in the event or pass --kind)");
    parse_err("{\"kind\":\"Bad Kind\",\"tags\":{}}", TE_EINVAL,
              "kind \"Bad Kind\": must match [a-z][a-z0-9_.-]{0,63}");
    parse_err("{\"kind\":\"1x\",\"tags\":{}}", TE_EINVAL, NULL);
    parse_err("{\"kind\":\"\",\"tags\":{}}", TE_EINVAL, NULL);
    parse_err("{\"kind\":3,\"tags\":{}}", TE_EINVAL,
              "kind \"3\": must match [a-z][a-z0-9_.-]{0,63}");
    parse_err("{\"kind\":true,\"tags\":{}}", TE_EINVAL, "kind: expected a string, got bool");
    char *k64 = rep('a', 64), *k65 = rep('a', 65);
    char *ok = fmt("{\"kind\":\"%s\",\"tags\":{}}", k64);
    char *bad = fmt("{\"kind\":\"%s\",\"tags\":{}}", k65);
    te_event_free(parse_ok(ok));
    parse_err(bad, TE_EINVAL, NULL);
    free(k64);
    free(k65);
    free(ok);
    free(bad);
    te_event_opts_t o = {"Nope", NULL, 0};
    te_event_t *ev;
    te_err_t err;
    assert_int_equal(te_event_parse("{\"tags\":{}}", 11, &o, &ev, &err), TE_EINVAL);
    assert_string_equal(err.msg, "kind \"Nope\": must match [a-z][a-z0-9_.-]{0,63}");
}

static void kind_valid_matches_rule(void **state)
{
    (void)state;
    assert_true(te_kind_valid("a", 1));
    assert_true(te_kind_valid("llm_call.v2-x", 13));
    assert_false(te_kind_valid("", 0));
    assert_false(te_kind_valid("A", 1));
    assert_false(te_kind_valid("_a", 2));
    assert_false(te_kind_valid("a b", 3));
    assert_false(te_kind_valid(NULL, 0));
}

static void parse_tag_scalars_stringified_null_ignored(void **state)
{
    (void)state;
    te_event_t *ev = parse_ok("{\"kind\":\"x\",\"tags\":{\"i\":1200,\"f\":1.5,\"t\":0.1,"
                              "\"b\":true,\"c\":false,\"n\":null,\"e\":1e21,\"neg\":-3,"
                              "\"z\":-0.0}}");
    assert_string_equal(ev->tags_json, "{\"b\":\"true\",\"c\":\"false\",\"e\":\"1e+21\","
                                       "\"f\":\"1.5\",\"i\":\"1200\",\"neg\":\"-3\","
                                       "\"t\":\"0.1\",\"z\":\"0\"}");
    assert_null(te_event_tag(ev, "n"));
    te_event_free(ev);
}

static void parse_tag_nested_value_rejected(void **state)
{
    (void)state;
    parse_err("{\"kind\":\"x\",\"tags\":{\"x\":{}}}", TE_EINVAL,
              "tag \"x\": expected a string, number or bool, got object");
    parse_err("{\"kind\":\"x\",\"tags\":{\"x\":[1]}}", TE_EINVAL,
              "tag \"x\": expected a string, number or bool, got array");
    parse_err("{\"kind\":\"x\",\"tags\":[]}", TE_EINVAL, "tags: expected an object, got array");
    parse_err("{\"kind\":\"x\",\"fields\":\"a\"}", TE_EINVAL,
              "fields: expected an object, got string");
    parse_err("{\"kind\":\"x\",\"tags\":{\"\":\"v\"}}", TE_EINVAL, "tag key is empty");
}

static void parse_tags_json_escapes_specials(void **state)
{
    (void)state;
    te_event_t *ev = parse_ok("{\"kind\":\"x\",\"tags\":{\"q\\\"k\":\"a\\\\b\\n\\u0001\\/\"}}");
    assert_string_equal(te_event_tag(ev, "q\"k"), "a\\b\n\x01/");
    assert_string_equal(ev->tags_json, "{\"q\\\"k\":\"a\\\\b\\n\\u0001/\"}");
    cJSON *back = cJSON_Parse(ev->tags_json);
    assert_non_null(back);
    assert_string_equal(cJSON_GetObjectItem(back, "q\"k")->valuestring, "a\\b\n\x01/");
    cJSON_Delete(back);
    te_event_free(ev);
    /* Raw control characters (accepted as cJSON does) are stored escaped. */
    te_event_t *raw = NULL;
    te_err_t err;
    const char *js = "{\"kind\":\"x\",\"tags\":{\"a\":\"b\tc\x01\"}}";
    assert_int_equal(te_event_parse(js, strlen(js), NULL, &raw, &err), 0); /* opts may be NULL */
    assert_string_equal(raw->tags_json, "{\"a\":\"b\\tc\\u0001\"}");
    assert_true(raw->ts_ns == 0);
    te_event_free(raw);
}

/* {"kind":"x","tags":{"k000":"v",...}} with n tags. */
static char *many_tags(size_t n)
{
    size_t cap = 64 + n * 32;
    char *s = malloc(cap);
    assert_non_null(s);
    size_t o = (size_t)snprintf(s, cap, "{\"kind\":\"x\",\"tags\":{");
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(s + o, cap - o, "%s\"k%03zu\":\"v\"", i ? "," : "", i);
    snprintf(s + o, cap - o, "}}");
    return s;
}

static void parse_tag_count_64_accepted_65_rejected(void **state)
{
    (void)state;
    char *s = many_tags(64);
    te_event_t *ev = parse_ok(s);
    assert_int_equal(ev->ntags, 64);
    te_event_free(ev);
    free(s);
    s = many_tags(65);
    parse_err(s, TE_EINVAL, "event has 65 tags, over the 64-tag limit");
    free(s);
    s = many_tags(100);
    parse_err(s, TE_EINVAL, "event has 100 tags, over the 64-tag limit");
    free(s);
}

static void parse_tag_key_128_accepted_129_rejected(void **state)
{
    (void)state;
    char *k = rep('k', 128), *s = fmt("{\"kind\":\"x\",\"tags\":{\"%s\":\"v\"}}", k);
    te_event_t *ev = parse_ok(s);
    assert_int_equal(strlen(ev->tags[0].key), 128);
    te_event_free(ev);
    free(k);
    free(s);
    k = rep('k', 129);
    s = fmt("{\"kind\":\"x\",\"tags\":{\"%s\":\"v\"}}", k);
    parse_err(s, TE_EINVAL,
              "tag key \"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk...\" is 129 bytes, over the "
              "128-byte limit");
    free(k);
    free(s);
}

static void parse_tag_value_1024_accepted_1025_rejected(void **state)
{
    (void)state;
    char *v = rep('v', 1024), *s = fmt("{\"kind\":\"x\",\"tags\":{\"model\":\"%s\"}}", v);
    te_event_t *ev = parse_ok(s);
    assert_int_equal(strlen(te_event_tag(ev, "model")), 1024);
    te_event_free(ev);
    free(v);
    free(s);
    v = rep('v', 1025);
    s = fmt("{\"kind\":\"x\",\"tags\":{\"model\":\"%s\"}}", v);
    parse_err(s, TE_EINVAL, "tag \"model\": value is 1025 bytes, over the 1024-byte limit");
    free(v);
    free(s);
    /* The limit counts decoded bytes: 1024 x "é" escaped is 2048 bytes. */
    char buf[6200] = "{\"kind\":\"x\",\"tags\":{\"m\":\"";
    for (int i = 0; i < 512; i++)
        strcat(buf, "\\u00e9");
    strcat(buf, "\"}}");
    ev = parse_ok(buf);
    assert_int_equal(strlen(te_event_tag(ev, "m")), 1024);
    te_event_free(ev);
}

static void parse_field_non_number_rejected_naming_field(void **state)
{
    (void)state;
    parse_err("{\"kind\":\"x\",\"fields\":{\"latency_ms\":\"812\"}}", TE_EINVAL,
              "field \"latency_ms\": expected a number, got string");
    parse_err("{\"kind\":\"x\",\"fields\":{\"a\":{}}}", TE_EINVAL,
              "field \"a\": expected a number, got object");
    parse_err("{\"kind\":\"x\",\"fields\":{\"a\":1e999}}", TE_EINVAL,
              "field \"a\": number out of range");
    parse_err("{\"kind\":\"x\",\"fields\":{\"\":1}}", TE_EINVAL, "field key is empty");
}

static void parse_field_bool_is_0_or_1_null_ignored(void **state)
{
    (void)state;
    te_event_t *ev = parse_ok("{\"kind\":\"x\",\"fields\":{\"ok\":true,\"bad\":false,\"n\":null,"
                              "\"neg\":-2.5e-3}}");
    assert_int_equal(ev->nfields, 3);
    double v;
    assert_true(te_event_field(ev, "ok", &v) && v == 1.0);
    assert_true(te_event_field(ev, "bad", &v) && v == 0.0);
    assert_true(te_event_field(ev, "neg", &v) && v == -2.5e-3);
    assert_false(te_event_field(ev, "n", &v));
    te_event_free(ev);
}

static char *many_fields(size_t n)
{
    size_t cap = 64 + n * 32;
    char *s = malloc(cap);
    assert_non_null(s);
    size_t o = (size_t)snprintf(s, cap, "{\"kind\":\"x\",\"fields\":{");
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(s + o, cap - o, "%s\"f%03zu\":%zu", i ? "," : "", i, i);
    snprintf(s + o, cap - o, "}}");
    return s;
}

static void parse_field_count_255_accepted_256_rejected(void **state)
{
    (void)state;
    char *s = many_fields(255);
    te_event_t *ev = parse_ok(s);
    assert_int_equal(ev->nfields, 255);
    assert_int_equal(ev->fields_blob[0], 255);
    double v;
    assert_true(te_fields_blob_get(ev->fields_blob, ev->fields_blob_len, "f254", &v) && v == 254);
    te_event_free(ev);
    free(s);
    s = many_fields(256);
    parse_err(s, TE_EINVAL, "event has 256 fields, over the 255-field limit");
    free(s);
}

static void parse_field_key_128_accepted_129_rejected(void **state)
{
    (void)state;
    char *k = rep('f', 128), *s = fmt("{\"kind\":\"x\",\"fields\":{\"%s\":1}}", k);
    te_event_t *ev = parse_ok(s);
    double v;
    assert_true(te_fields_blob_get(ev->fields_blob, ev->fields_blob_len, k, &v) && v == 1);
    te_event_free(ev);
    free(k);
    free(s);
    k = rep('f', 129);
    s = fmt("{\"kind\":\"x\",\"fields\":{\"%s\":1}}", k);
    parse_err(s, TE_EINVAL, NULL);
    free(k);
    free(s);
}

static void parse_duplicate_keys_last_wins(void **state)
{
    (void)state;
    te_event_t *ev = parse_ok("{\"kind\":\"a\",\"kind\":\"b\",\"tags\":{\"m\":\"1\",\"m\":\"2\"},"
                              "\"fields\":{\"x\":1,\"x\":2}}");
    assert_string_equal(ev->kind, "b");
    te_event_free(ev);
    ev = parse_ok("{\"kind\":\"a\",\"ts\":1,\"time\":2,\"tags\":{\"m\":\"1\",\"m\":\"2\"},"
                  "\"fields\":{\"x\":1,\"x\":2}}");
    assert_true(ev->ts_ns == 2 * TE_NS_PER_SEC);
    assert_int_equal(ev->ntags, 1);
    assert_string_equal(te_event_tag(ev, "m"), "2");
    assert_string_equal(ev->tags_json, "{\"m\":\"2\"}");
    assert_int_equal(ev->nfields, 1);
    assert_true(ev->fields[0].value == 2);
    te_event_free(ev);
    /* Flat form: the last member decides the category too. */
    ev = parse_ok("{\"kind\":\"a\",\"x\":\"s\",\"y\":{\"a\":1},\"x\":3,\"y\":\"t\"}");
    assert_int_equal(ev->ntags, 1);
    assert_string_equal(te_event_tag(ev, "y"), "t");
    assert_int_equal(ev->nfields, 1);
    assert_string_equal(ev->fields[0].key, "x");
    assert_null(ev->body);
    te_event_free(ev);
}

static void parse_canonical_unknown_key_rejected(void **state)
{
    (void)state;
    parse_err("{\"kind\":\"x\",\"tags\":{},\"model\":\"m\"}", TE_EINVAL,
              "unknown top-level key \"model\" (put it in tags, fields or body)");
}

static void parse_canonical_aliases_and_null_body(void **state)
{
    (void)state;
    te_event_t *ev = parse_ok("{\"type\":\"x\",\"time\":1,\"tags\":{},\"body\":null}");
    assert_string_equal(ev->kind, "x");
    assert_true(ev->ts_ns == TE_NS_PER_SEC);
    assert_null(ev->body);
    te_event_free(ev);
    ev = parse_ok("{\"event\":\"x\",\"timestamp\":\"1970-01-01T00:00:02Z\",\"fields\":{},"
                  "\"body\":\"text\"}");
    assert_string_equal(ev->kind, "x");
    assert_true(ev->ts_ns == 2 * TE_NS_PER_SEC);
    assert_string_equal(ev->body, "\"text\"");
    te_event_free(ev);
}

static void parse_flat_form_normalised(void **state)
{
    (void)state;
    te_event_t *ev = parse_ok(
        "{\"timestamp\":\"2026-11-20T10:00:00Z\",\"type\":\"llm_call\",\"source\":\"s\","
        "\"provider\":\"openai\",\"cached\":true,\"retried\":false,\"latency_ms\":812.5,"
        "\"tokens\":12,\"gone\":null,\"metadata\":{\"user\":\"u\",\"n\":[1,2]},"
        "\"messages\":[{\"role\":\"user\"}],\"body\":{\"b\":1}}");
    assert_true(ev->ts_ns == INT64_C(1795168800) * TE_NS_PER_SEC);
    assert_string_equal(ev->kind, "llm_call");
    assert_string_equal(ev->source, "s");
    assert_string_equal(ev->tags_json,
                        "{\"cached\":\"true\",\"provider\":\"openai\",\"retried\":\"false\"}");
    assert_int_equal(ev->nfields, 2);
    assert_string_equal(ev->fields[0].key, "latency_ms");
    assert_string_equal(ev->fields[1].key, "tokens");
    assert_string_equal(ev->body, "{\"metadata\":{\"user\":\"u\",\"n\":[1,2]},"
                                  "\"messages\":[{\"role\":\"user\"}],\"body\":{\"b\":1}}");
    te_event_free(ev);
}

static void parse_flat_numbers_under_reserved_keys_not_fields(void **state)
{
    (void)state;
    te_event_t *ev = parse_ok("{\"kind\":\"x\",\"ts\":1700000000.25,\"id\":123,\"trace_id\":7,"
                              "\"source\":1.5,\"span_id\":\"\",\"n\":1}");
    assert_true(ev->ts_ns == INT64_C(1700000000250000000));
    assert_string_equal(ev->id, "123");
    assert_string_equal(ev->trace_id, "7");
    assert_string_equal(ev->source, "1.5");
    assert_null(ev->span_id); /* "" means absent */
    assert_int_equal(ev->nfields, 1);
    te_event_free(ev);
    parse_err("{\"kind\":\"x\",\"id\":{}}", TE_EINVAL, "id: expected a string, got object");
    parse_err("{\"kind\":\"x\",\"source\":false}", TE_EINVAL,
              "source: expected a string, got bool");
    /* A flat event with nothing but a kind is valid. */
    ev = parse_ok("{\"kind\":\"ping\"}");
    assert_int_equal(ev->ntags + ev->nfields, 0);
    assert_null(ev->body);
    te_event_free(ev);
}

static void parse_id_256_accepted_257_rejected(void **state)
{
    (void)state;
    char *v = rep('i', 256), *s = fmt("{\"kind\":\"x\",\"id\":\"%s\"}", v);
    te_event_t *ev = parse_ok(s);
    assert_int_equal(strlen(ev->id), 256);
    te_event_free(ev);
    free(v);
    free(s);
    v = rep('i', 257);
    s = fmt("{\"kind\":\"x\",\"trace_id\":\"%s\"}", v);
    parse_err(s, TE_EINVAL, "trace_id is 257 bytes, over the 256-byte limit");
    free(v);
    free(s);
}

static void parse_timestamps_all_forms(void **state)
{
    (void)state;
    struct {
        const char *ts;
        int64_t want;
    } cases[] = {
        {"\"2026-11-20T10:00:00Z\"", INT64_C(1795168800000000000)},
        {"\"2026-11-20T12:00:00.5+02:00\"", INT64_C(1795168800500000000)},
        {"\"2026-11-20T10:00:00.000000001Z\"", INT64_C(1795168800000000001)},
        {"1795168800", INT64_C(1795168800000000000)},
        {"1795168800.123", INT64_C(1795168800123000000)},
        {"-1.5", -INT64_C(1500000000)},
        {"\"1795168800\"", INT64_C(1795168800000000000)},
        {"null", RECV_NS},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *s = fmt("{\"kind\":\"x\",\"ts\":%s,\"tags\":{}}", cases[i].ts);
        te_event_t *ev = parse_ok(s);
        /* Unix float seconds are exact to about a microsecond. */
        int64_t d = ev->ts_ns - cases[i].want;
        if (d < -1000 || d > 1000)
            fail_msg("ts %s: got %lld", cases[i].ts, (long long)ev->ts_ns);
        te_event_free(ev);
        free(s);
    }
    parse_err("{\"kind\":\"x\",\"ts\":\"yesterday\"}", TE_EINVAL,
              "ts: time \"yesterday\": expected RFC 3339 (e.g. 2026-11-20T10:00:00Z) or Unix "
              "seconds");
    parse_err("{\"kind\":\"x\",\"ts\":\"2026-02-30T00:00:00Z\"}", TE_EINVAL,
              "ts: time \"2026-02-30T00:00:00Z\": day 30 is out of range for 2026-02 (01-28)");
    parse_err("{\"kind\":\"x\",\"time\":true}", TE_EINVAL,
              "time: expected an RFC 3339 string or Unix seconds, got bool");
    parse_err("{\"kind\":\"x\",\"ts\":1732096800123}", TE_EINVAL,
              "ts: 1732096800123 is out of range for Unix seconds (is it in milliseconds?)");
}

static void parse_unicode_kept_and_surrogates_decoded(void **state)
{
    (void)state;
    te_event_t *ev = parse_ok("{\"kind\":\"x\",\"tags\":{\"m\xc3\xa9t\":\"\xe6\x97\xa5\xe6\x9c\xac"
                              "\",\"e\":\"\\ud83d\\ude00\"},\"body\":{\"s\":\"\\u00e9\"}}");
    assert_string_equal(te_event_tag(ev, "m\xc3\xa9t"), "\xe6\x97\xa5\xe6\x9c\xac");
    assert_string_equal(te_event_tag(ev, "e"), "\xf0\x9f\x98\x80");
    assert_string_equal(ev->tags_json, "{\"e\":\"\xf0\x9f\x98\x80\",\"m\xc3\xa9t\":\"\xe6\x97\xa5"
                                       "\xe6\x9c\xac\"}");
    assert_string_equal(ev->body, "{\"s\":\"\xc3\xa9\"}");
    te_event_free(ev);
    /* A lone surrogate escape is not valid JSON text for us. */
    parse_err("{\"kind\":\"x\",\"tags\":{\"e\":\"\\ud83d\"}}", TE_EPARSE, NULL);
    parse_err("{\"kind\":\"x\",\"tags\":{\"e\":\"\\ude00\"}}", TE_EPARSE, NULL);
}

static void parse_invalid_utf8_rejected_naming_place(void **state)
{
    (void)state;
    parse_err("{\"kind\":\"x\",\"tags\":{\"a\":\"\xff\"}}", TE_EINVAL,
              "invalid UTF-8 in tag \"a\"");
    parse_err("{\"kind\":\"x\",\"tags\":{\"\xc3\":\"v\"}}", TE_EINVAL,
              "invalid UTF-8 in a tag key");
    parse_err("{\"kind\":\"x\",\"fields\":{\"\xc0\x80\":1}}", TE_EINVAL,
              "invalid UTF-8 in a field key");
    parse_err("{\"kind\":\"x\",\"source\":\"\xed\xa0\x80\",\"tags\":{}}", TE_EINVAL,
              "invalid UTF-8 in source");
    parse_err("{\"kind\":\"x\",\"tags\":{},\"body\":{\"a\":[\"\xf5\x80\x80\x80\"]}}", TE_EINVAL,
              "invalid UTF-8 in body");
    parse_err("{\"kind\":\"x\",\"meta\":{\"\xfe\":1}}", TE_EINVAL,
              "invalid UTF-8 in body.meta");
    parse_err("{\"kind\":\"x\",\"tags\":{},\"\xe2\x82\":null}", TE_EINVAL, NULL);
    parse_err("{\"kind\":\"x\",\"n\xe2\x82\":null}", TE_EINVAL,
              "invalid UTF-8 in event at byte 14");
    parse_err("{\"kind\":\"x\xff\"}", TE_EINVAL, "kind \"x?\": must match [a-z][a-z0-9_.-]{0,63}");
    /* Truncated 4-byte sequence at the very end of a string. */
    parse_err("{\"kind\":\"x\",\"tags\":{\"a\":\"\xf0\x9f\x98\"}}", TE_EINVAL,
              "invalid UTF-8 in tag \"a\"");
}

static void parse_nul_bytes_and_escapes_rejected(void **state)
{
    (void)state;
    static const char raw[] = "{\"kind\":\"x\",\"tags\":{\"a\":\"b\0c\"}}";
    parse_err_len(raw, sizeof(raw) - 1, TE_EINVAL, "NUL byte at byte 26: not allowed in events");
    parse_err("{\"kind\":\"x\",\"tags\":{\"a\":\"b\\u0000c\"}}", TE_EINVAL,
              "\\u0000 (NUL) escape at byte 26: not allowed in events");
    parse_err("{\"kind\":\"x\",\"tags\":{\"a\\u0000\":\"v\"}}", TE_EINVAL, NULL);
    parse_err("{\"kind\":\"x\",\"id\":\"\\u0000\"}", TE_EINVAL, NULL);
    /* An escaped backslash followed by the letters u0000 is fine. */
    te_event_t *ev = parse_ok("{\"kind\":\"x\",\"tags\":{\"a\":\"\\\\u0000\"}}");
    assert_string_equal(te_event_tag(ev, "a"), "\\u0000");
    te_event_free(ev);
    ev = parse_ok("{\"kind\":\"x\",\"tags\":{\"a\":\"\\u0001\"}}");
    te_event_free(ev);
}

static char *nested(size_t depth_arrays)
{
    char *open = rep('[', depth_arrays), *close = rep(']', depth_arrays);
    char *s = fmt("{\"kind\":\"x\",\"tags\":{},\"body\":%s%s}", open, close);
    free(open);
    free(close);
    return s;
}

static void parse_nesting_64_accepted_65_rejected(void **state)
{
    (void)state;
    char *s = nested(63); /* the event object is level 1 */
    te_event_t *ev = parse_ok(s);
    assert_int_equal(ev->body_len, 126);
    te_event_free(ev);
    free(s);
    s = nested(64);
    parse_err(s, TE_EINVAL, "event nests deeper than 64 levels");
    free(s);
    s = nested(5000);
    parse_err(s, TE_EINVAL, "event nests deeper than 64 levels");
    free(s);
    /* Brackets inside strings do not count. */
    char *br = rep('[', 200);
    s = fmt("{\"kind\":\"x\",\"tags\":{},\"body\":\"%s\"}", br);
    ev = parse_ok(s);
    te_event_free(ev);
    free(br);
    free(s);
}

/* An event of exactly total bytes: {"kind":"x","tags":{},"body":"aaa..."} */
static char *sized_event(size_t total)
{
    const char *pre = "{\"kind\":\"x\",\"tags\":{},\"body\":\"", *post = "\"}";
    size_t fill = total - strlen(pre) - strlen(post);
    char *s = malloc(total + 1);
    assert_non_null(s);
    strcpy(s, pre);
    memset(s + strlen(pre), 'a', fill);
    strcpy(s + strlen(pre) + fill, post);
    assert_int_equal(strlen(s), total);
    return s;
}

static void parse_size_1mib_accepted_1mib_plus_1_rejected(void **state)
{
    (void)state;
    char *s = sized_event(TE_EVENT_MAX_BYTES);
    te_event_t *ev = parse_ok(s);
    assert_int_equal(ev->size_bytes, TE_EVENT_MAX_BYTES);
    assert_int_equal(ev->body_len, TE_EVENT_MAX_BYTES - 30);
    te_event_free(ev);
    free(s);
    s = sized_event(TE_EVENT_MAX_BYTES + 1);
    parse_err(s, TE_ETOOBIG, "event is 1048577 bytes, over the 1048576-byte limit");
    free(s);
}

static void parse_bad_json_rejected(void **state)
{
    (void)state;
    parse_err("", TE_EPARSE, "empty input: expected a JSON object");
    parse_err("  \n", TE_EPARSE, "empty input: expected a JSON object");
    parse_err("{\"kind\":", TE_EPARSE, NULL);
    parse_err("{\"kind\":\"x\"} {}", TE_EPARSE,
              "unexpected text after the JSON object at byte 13");
    parse_err("[{\"kind\":\"x\"}]", TE_EINVAL, "expected a JSON object, got array");
    parse_err("\"x\"", TE_EINVAL, "expected a JSON object, got string");
    te_event_t *ev = parse_ok("  {\"kind\":\"x\"}\r\n");
    te_event_free(ev);
    /* Only len bytes are read: the rest of the buffer is not part of it. */
    ev = parse_len_opts("{\"kind\":\"x\"}garbage", 12, &no_opts);
    te_event_free(ev);
}

static void from_cjson_matches_parse_and_checks(void **state)
{
    (void)state;
    cJSON *root = cJSON_Parse(llm_call);
    te_event_t *a = NULL, *b = parse_ok(llm_call);
    te_err_t err;
    assert_int_equal(te_event_from_cjson(root, strlen(llm_call), &no_opts, &a, &err), 0);
    char *ja = te_event_to_json(a, NULL), *jb = te_event_to_json(b, NULL);
    assert_string_equal(ja, jb);
    free(ja);
    free(jb);
    te_event_free(a);
    te_event_free(b);
    assert_int_equal(te_event_from_cjson(root, TE_EVENT_MAX_BYTES + 1, &no_opts, &a, &err),
                     TE_ETOOBIG);
    cJSON_Delete(root);

    root = cJSON_CreateArray();
    assert_int_equal(te_event_from_cjson(root, 2, &no_opts, &a, &err), TE_EINVAL);
    assert_string_equal(err.msg, "expected a JSON object, got array");
    cJSON_Delete(root);

    root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "kind", "x");
    cJSON *tags = cJSON_AddObjectToObject(root, "tags");
    cJSON_AddStringToObject(tags, "a", "\xff");
    assert_int_equal(te_event_from_cjson(root, 40, &no_opts, &a, &err), TE_EINVAL);
    assert_string_equal(err.msg, "invalid UTF-8 in tag \"a\"");
    cJSON_DeleteItemFromObject(root, "tags");
    cJSON *deep = cJSON_AddArrayToObject(root, "deep");
    for (int i = 0; i < 70; i++) {
        cJSON *next = cJSON_CreateArray();
        cJSON_AddItemToArray(deep, next);
        deep = next;
    }
    assert_int_equal(te_event_from_cjson(root, 200, &no_opts, &a, &err), TE_EINVAL);
    assert_string_equal(err.msg, "event nests deeper than 64 levels");
    cJSON_Delete(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_canonical_keeps_every_part),
        cmocka_unit_test(parse_minimal_event_uses_defaults),
        cmocka_unit_test(parse_missing_or_bad_kind_rejected),
        cmocka_unit_test(kind_valid_matches_rule),
        cmocka_unit_test(parse_tag_scalars_stringified_null_ignored),
        cmocka_unit_test(parse_tag_nested_value_rejected),
        cmocka_unit_test(parse_tags_json_escapes_specials),
        cmocka_unit_test(parse_tag_count_64_accepted_65_rejected),
        cmocka_unit_test(parse_tag_key_128_accepted_129_rejected),
        cmocka_unit_test(parse_tag_value_1024_accepted_1025_rejected),
        cmocka_unit_test(parse_field_non_number_rejected_naming_field),
        cmocka_unit_test(parse_field_bool_is_0_or_1_null_ignored),
        cmocka_unit_test(parse_field_count_255_accepted_256_rejected),
        cmocka_unit_test(parse_field_key_128_accepted_129_rejected),
        cmocka_unit_test(parse_duplicate_keys_last_wins),
        cmocka_unit_test(parse_canonical_unknown_key_rejected),
        cmocka_unit_test(parse_canonical_aliases_and_null_body),
        cmocka_unit_test(parse_flat_form_normalised),
        cmocka_unit_test(parse_flat_numbers_under_reserved_keys_not_fields),
        cmocka_unit_test(parse_id_256_accepted_257_rejected),
        cmocka_unit_test(parse_timestamps_all_forms),
        cmocka_unit_test(parse_unicode_kept_and_surrogates_decoded),
        cmocka_unit_test(parse_invalid_utf8_rejected_naming_place),
        cmocka_unit_test(parse_nul_bytes_and_escapes_rejected),
        cmocka_unit_test(parse_nesting_64_accepted_65_rejected),
        cmocka_unit_test(parse_size_1mib_accepted_1mib_plus_1_rejected),
        cmocka_unit_test(parse_bad_json_rejected),
        cmocka_unit_test(from_cjson_matches_parse_and_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
