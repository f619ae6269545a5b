/*
 * test_ndjson.c - line splitting and batch building (src/ingest/ndjson.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ingest/ndjson.h"
#include "pipeline/writer.h"

typedef struct seen {
    char lines[16][64];
    uint64_t nos[16];
    char errors[16][160];
    size_t n;
    int stop_at;   /* return non-zero at this call (1-based), 0 never */
} seen_t;

static int on_line(void *ud, const char *line, size_t len, uint64_t no, const char *error)
{
    seen_t *s = ud;
    assert_true(s->n < 16);
    s->nos[s->n] = no;
    if (error) {
        snprintf(s->errors[s->n], sizeof(s->errors[0]), "%s", error);
        assert_null(line);
    } else {
        snprintf(s->lines[s->n], sizeof(s->lines[0]), "%.*s", (int)len, line);
    }
    s->n++;
    return s->stop_at && (int)s->n == s->stop_at ? 7 : 0;
}

static void feed_str(te_ndjson_t *nd, const char *s)
{
    assert_int_equal(te_ndjson_feed(nd, s, strlen(s)), 0);
}

static void ndjson_split_across_feeds_joins_lines(void **state)
{
    (void)state;
    seen_t s = {0};
    te_ndjson_t nd;
    te_ndjson_init(&nd, 0, on_line, &s);
    feed_str(&nd, "ab");
    feed_str(&nd, "c\n\n  \r\nde");
    feed_str(&nd, "f\r\n");
    assert_int_equal(te_ndjson_pending(&nd), 0);
    feed_str(&nd, "tail");
    assert_int_equal(te_ndjson_pending(&nd), 4);
    assert_int_equal(te_ndjson_finish(&nd), 0);
    te_ndjson_close(&nd);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.lines[0], "abc");
    assert_int_equal(s.nos[0], 1);
    assert_string_equal(s.lines[1], "def");   /* '\r' stripped; blank lines 2, 3 skipped */
    assert_int_equal(s.nos[1], 4);
    assert_string_equal(s.lines[2], "tail");
    assert_int_equal(s.nos[2], 5);
    assert_int_equal(te_ndjson_line_count(&nd), 5);
}

static void ndjson_line_at_limit_passes_over_limit_is_reported(void **state)
{
    (void)state;
    seen_t s = {0};
    te_ndjson_t nd;
    te_ndjson_init(&nd, 10, on_line, &s);
    feed_str(&nd, "0123456789\n");           /* exactly 10: fine */
    feed_str(&nd, "0123456789A\n");          /* 11, in one feed */
    feed_str(&nd, "01234567");               /* 8 + 5 across feeds */
    feed_str(&nd, "89ABC\nok\n");
    feed_str(&nd, "0123456789");             /* 10 carried + '\r' is still fine */
    feed_str(&nd, "\r\n");
    te_ndjson_close(&nd);
    assert_int_equal(s.n, 5);
    assert_string_equal(s.lines[0], "0123456789");
    assert_string_equal(s.errors[1], "line 2 is longer than 10 bytes (the event size limit)");
    assert_string_equal(s.errors[2], "line 3 is longer than 10 bytes (the event size limit)");
    assert_string_equal(s.lines[3], "ok");
    assert_int_equal(s.nos[3], 4);
    assert_string_equal(s.lines[4], "0123456789");
}

static void ndjson_over_long_last_line_is_reported_at_finish(void **state)
{
    (void)state;
    seen_t s = {0};
    te_ndjson_t nd;
    te_ndjson_init(&nd, 4, on_line, &s);
    feed_str(&nd, "abc");
    feed_str(&nd, "defgh");
    assert_int_equal(te_ndjson_finish(&nd), 0);
    te_ndjson_close(&nd);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.errors[0], "line 1 is longer than 4 bytes (the event size limit)");
}

static void ndjson_callback_nonzero_stops_feed(void **state)
{
    (void)state;
    seen_t s = {.stop_at = 2};
    te_ndjson_t nd;
    te_ndjson_init(&nd, 0, on_line, &s);
    assert_int_equal(te_ndjson_feed(&nd, "a\nb\nc\n", 6), 7);
    te_ndjson_close(&nd);
    assert_int_equal(s.n, 2);
}

static void ndjson_blank_detects_whitespace_only(void **state)
{
    (void)state;
    assert_true(te_ndjson_blank(" \t\r\n", 4));
    assert_true(te_ndjson_blank("", 0));
    assert_false(te_ndjson_blank("  x ", 4));
}

static void ndjson_add_event_builds_batch_and_rejects_bad_lines(void **state)
{
    (void)state;
    te_batch_t *b = NULL;
    te_err_t err;
    te_event_opts_t opts = {.recv_ts_ns = 1, .default_kind = "dflt"};
    const char *good = "{\"model\":\"m\",\"latency_ms\":3}";
    assert_int_equal(te_ndjson_add_event(&b, 4, good, strlen(good), &opts, &err), 0);
    assert_non_null(b);
    assert_int_equal(b->n, 1);
    assert_string_equal(b->events[0]->kind, "dflt");
    assert_int_equal(te_ndjson_add_event(&b, 4, "not json", 8, &opts, &err), TE_EPARSE);
    assert_true(strstr(err.msg, "invalid JSON") != NULL);
    const char *bad = "{\"kind\":\"x\",\"fields\":{\"a\":\"s\"}}";
    assert_true(te_ndjson_add_event(&b, 4, bad, strlen(bad), &opts, &err) < 0);
    assert_true(strstr(err.msg, "field \"a\"") != NULL);
    assert_int_equal(b->n, 1);
    te_batch_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ndjson_split_across_feeds_joins_lines),
        cmocka_unit_test(ndjson_line_at_limit_passes_over_limit_is_reported),
        cmocka_unit_test(ndjson_over_long_last_line_is_reported_at_finish),
        cmocka_unit_test(ndjson_callback_nonzero_stops_feed),
        cmocka_unit_test(ndjson_blank_detects_whitespace_only),
        cmocka_unit_test(ndjson_add_event_builds_batch_and_rejects_bad_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
