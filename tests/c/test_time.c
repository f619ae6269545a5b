/*
 * test_time.c - durations, RFC 3339 parsing/formatting, CLI times (core/time).
 *
 * THREAD: main only.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "core/time.h"

#define SEC TE_NS_PER_SEC

static int64_t dur_ok(const char *s)
{
    int64_t v = -1;
    te_err_t err = {0};
    int rc = te_duration_parse(s, &v, &err);
    if (rc != 0)
        fail_msg("te_duration_parse(%s): %s", s, err.msg);
    return v;
}

static void dur_err(const char *s, const char *msg)
{
    int64_t v = 12345;
    te_err_t err = {0};
    assert_int_equal(te_duration_parse(s, &v, &err), TE_EINVAL);
    assert_int_equal(v, 12345);
    if (msg)
        assert_string_equal(err.msg, msg);
}

static void duration_parse_each_unit_scales(void **state)
{
    (void)state;
    assert_true(dur_ok("7ns") == 7);
    assert_true(dur_ok("7us") == 7000);
    assert_true(dur_ok("7\xc2\xb5s") == 7000);
    assert_true(dur_ok("250ms") == 250 * TE_NS_PER_MS);
    assert_true(dur_ok("30s") == 30 * SEC);
    assert_true(dur_ok("5m") == 300 * SEC);
    assert_true(dur_ok("2h") == 7200 * SEC);
    assert_true(dur_ok("7d") == 7 * 86400 * SEC);
    assert_true(dur_ok("1w") == 7 * 86400 * SEC);
}

static void duration_parse_sums_and_zero_add_up(void **state)
{
    (void)state;
    assert_true(dur_ok("1h30m") == 5400 * SEC);
    assert_true(dur_ok("1d2h3m4s5ms") == ((86400 + 7200 + 180 + 4) * SEC + 5 * TE_NS_PER_MS));
    assert_true(dur_ok("0") == 0);
    assert_true(dur_ok("0s") == 0);
    assert_true(dur_ok("1.5h") == 5400 * SEC);
    assert_true(dur_ok("0.25s") == SEC / 4);
}

static void duration_parse_bad_text_names_it(void **state)
{
    (void)state;
    dur_err("", "duration is empty (use e.g. 30s, 5m, 2h, 7d, 1w; units: ns, us, ms, s, m, h, "
                "d, w)");
    dur_err("-5m", "duration \"-5m\": negative durations are not allowed");
    dur_err("5x", "duration \"5x\": unknown unit \"x\" (valid units: ns, us, ms, s, m, h, d, w)");
    dur_err("5", "duration \"5\": missing unit (valid units: ns, us, ms, s, m, h, d, w)");
    dur_err("1h30", "duration \"1h30\": missing unit (valid units: ns, us, ms, s, m, h, d, w)");
    dur_err("h", "duration \"h\": expected a number at \"h\" (e.g. 30s, 1h30m)");
    dur_err("5 m", NULL);
    dur_err("5M", NULL);
    dur_err("1.s", NULL);
    dur_err("99999999999999999999s", NULL);
    dur_err("300000w", "duration \"300000w\": too large (at most about 292 years)");
}

static void duration_format_compact_forms(void **state)
{
    (void)state;
    char buf[64];
    assert_int_equal(te_duration_format(90 * SEC, buf, sizeof(buf)), 5);
    assert_string_equal(buf, "1m30s");
    te_duration_format(0, buf, sizeof(buf));
    assert_string_equal(buf, "0s");
    te_duration_format(1500 * TE_NS_PER_MS, buf, sizeof(buf));
    assert_string_equal(buf, "1s500ms");
    te_duration_format(8 * 86400 * SEC, buf, sizeof(buf));
    assert_string_equal(buf, "1w1d");
    te_duration_format(-90 * SEC, buf, sizeof(buf));
    assert_string_equal(buf, "-1m30s");
    te_duration_format(INT64_MIN, buf, sizeof(buf));
    assert_true(buf[0] == '-');
    assert_int_equal(te_duration_format(90 * SEC, buf, 3), 2);
    assert_string_equal(buf, "1m");
    /* Formatting then parsing gives the same duration. */
    int64_t samples[] = {1, 999, 1000, 61 * SEC + 5, 3 * 86400 * SEC + 7, INT64_MAX / 2};
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        te_duration_format(samples[i], buf, sizeof(buf));
        assert_true(dur_ok(buf) == samples[i]);
    }
}

static int64_t rfc_ok(const char *s)
{
    int64_t v = -1;
    te_err_t err = {0};
    if (te_time_parse_rfc3339(s, strlen(s), &v, &err) != 0)
        fail_msg("te_time_parse_rfc3339(%s): %s", s, err.msg);
    return v;
}

static void rfc_err(const char *s, const char *msg)
{
    int64_t v = 7;
    te_err_t err = {0};
    assert_int_equal(te_time_parse_rfc3339(s, strlen(s), &v, &err), TE_EINVAL);
    assert_true(v == 7);
    if (msg)
        assert_string_equal(err.msg, msg);
}

static void rfc3339_parse_variants_agree(void **state)
{
    (void)state;
    int64_t base = INT64_C(1795168800) * SEC; /* 2026-11-20T10:00:00Z */
    assert_true(rfc_ok("2026-11-20T10:00:00Z") == base);
    assert_true(rfc_ok("2026-11-20t10:00:00z") == base);
    assert_true(rfc_ok("2026-11-20 10:00:00Z") == base);
    assert_true(rfc_ok("2026-11-20T12:00:00+02:00") == base);
    assert_true(rfc_ok("2026-11-20T04:30:00-05:30") == base);
    assert_true(rfc_ok("2026-11-20T10:00:00+00:00") == base);
    assert_true(rfc_ok("2026-11-20T10:00:00.123Z") == base + 123 * TE_NS_PER_MS);
    assert_true(rfc_ok("2026-11-20T10:00:00.1Z") == base + 100 * TE_NS_PER_MS);
    assert_true(rfc_ok("2026-11-20T10:00:00.123456789Z") == base + 123456789);
    assert_true(rfc_ok("2026-11-20T10:00:00.1234567891Z") == base + 123456789);
    assert_true(rfc_ok("1970-01-01T00:00:00Z") == 0);
    assert_true(rfc_ok("1969-12-31T23:59:59.5Z") == -SEC / 2);
    /* Leap second 60 is accepted and lands on the next minute. */
    assert_true(rfc_ok("2016-12-31T23:59:60Z") == rfc_ok("2017-01-01T00:00:00Z"));
}

static void rfc3339_parse_calendar_rules_enforced(void **state)
{
    (void)state;
    rfc_ok("2024-02-29T00:00:00Z");
    rfc_ok("2000-02-29T00:00:00Z");
    rfc_err("2023-02-29T00:00:00Z",
            "time \"2023-02-29T00:00:00Z\": day 29 is out of range for 2023-02 (01-28)");
    rfc_err("1900-02-29T00:00:00Z", NULL);
    rfc_err("2026-04-31T00:00:00Z", NULL);
    rfc_err("2026-13-01T00:00:00Z",
            "time \"2026-13-01T00:00:00Z\": month 13 is out of range (01-12)");
    rfc_err("2026-00-01T00:00:00Z", NULL);
    rfc_err("2026-01-00T00:00:00Z", NULL);
    rfc_err("2026-01-01T24:00:00Z",
            "time \"2026-01-01T24:00:00Z\": 24:00:00 is not a valid time of day");
    rfc_err("2026-01-01T23:60:00Z", NULL);
    rfc_err("2026-01-01T23:59:61Z", NULL);
}

static void rfc3339_parse_bad_syntax_rejected(void **state)
{
    (void)state;
    rfc_err("2026-11-20T10:00:00",
            "time \"2026-11-20T10:00:00\": not RFC 3339: missing time zone (add Z or an offset "
            "such as +02:00)");
    rfc_err("2026-11-20", NULL);
    rfc_err("2026-11-20T10:00Z", NULL);
    rfc_err("2026-11-20T10:00:00.Z", NULL);
    rfc_err("2026-11-20T10:00:00+0200", NULL);
    rfc_err("2026-11-20T10:00:00+24:00", NULL);
    rfc_err("2026-11-20T10:00:00Zjunk", NULL);
    rfc_err("26-11-20T10:00:00Z", NULL);
    rfc_err("", NULL);
    rfc_err("yesterday",
            "time \"yesterday\": not RFC 3339: expected YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM)");
    rfc_err("2300-01-01T00:00:00Z", "time \"2300-01-01T00:00:00Z\": out of range (supported: "
                                    "1677-09-22 to 2262-04-10)");
    /* Not NUL-terminated: only len bytes are read. */
    int64_t v;
    assert_int_equal(te_time_parse_rfc3339("2026-11-20T10:00:00Zxx", 20, &v, NULL), 0);
}

static void rfc3339_format_precision_and_round_trip(void **state)
{
    (void)state;
    char buf[40];
    int64_t base = INT64_C(1795168800) * SEC;
    assert_int_equal(te_time_format_rfc3339(base, buf, sizeof(buf)), 20);
    assert_string_equal(buf, "2026-11-20T10:00:00Z");
    te_time_format_rfc3339(base + 123 * TE_NS_PER_MS, buf, sizeof(buf));
    assert_string_equal(buf, "2026-11-20T10:00:00.123Z");
    te_time_format_rfc3339(base + 123456789, buf, sizeof(buf));
    assert_string_equal(buf, "2026-11-20T10:00:00.123456789Z");
    te_time_format_rfc3339(base + 1000, buf, sizeof(buf));
    assert_string_equal(buf, "2026-11-20T10:00:00.000001000Z");
    te_time_format_rfc3339(-1, buf, sizeof(buf));
    assert_string_equal(buf, "1969-12-31T23:59:59.999999999Z");
    te_time_format_rfc3339(INT64_C(951782400) * SEC, buf, sizeof(buf));
    assert_string_equal(buf, "2000-02-29T00:00:00Z");
    assert_int_equal(te_time_format_rfc3339(base, buf, 5), 4);
    assert_string_equal(buf, "2026");
    /* Pseudo-random instants across the supported range round-trip. */
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        /* 1678..2261: roughly +-9e9 s around the epoch. */
        uint64_t u = x % (UINT64_C(18000000000) * 1000000000u), mid = UINT64_C(9000000000000000000);
        int64_t ns = u >= mid ? (int64_t)(u - mid) : -(int64_t)(mid - u);
        if (i % 3 == 0)
            ns -= ns % SEC;
        else if (i % 3 == 1)
            ns -= ns % TE_NS_PER_MS;
        te_time_format_rfc3339(ns, buf, sizeof(buf));
        assert_true(rfc_ok(buf) == ns);
    }
}

static void time_parse_unix_and_rfc3339_accepted(void **state)
{
    (void)state;
    int64_t v;
    te_err_t err;
    assert_int_equal(te_time_parse("1700000000", &v, &err), 0);
    assert_true(v == INT64_C(1700000000) * SEC);
    assert_int_equal(te_time_parse("1700000000.123456789", &v, &err), 0);
    assert_true(v == INT64_C(1700000000) * SEC + 123456789);
    assert_int_equal(te_time_parse("-1.5", &v, &err), 0);
    assert_true(v == -3 * SEC / 2);
    assert_int_equal(te_time_parse("2026-11-20T10:00:00Z", &v, &err), 0);
    assert_true(v == INT64_C(1795168800) * SEC);
    assert_int_equal(te_time_parse("2026-11-20", &v, &err), 0);
    assert_true(v == INT64_C(1795132800) * SEC);
    assert_int_equal(te_time_parse("soon", &v, &err), TE_EINVAL);
    assert_string_equal(err.msg, "time \"soon\": expected RFC 3339 (e.g. 2026-11-20T10:00:00Z) or "
                                 "Unix seconds");
    assert_int_equal(te_time_parse("", &v, &err), TE_EINVAL);
    assert_int_equal(te_time_parse("1732096800123", &v, &err), TE_EINVAL);
    assert_string_equal(err.msg, "time \"1732096800123\": Unix seconds out of range (is it in "
                                 "milliseconds?)");
    assert_int_equal(te_time_parse("1.2.3", &v, &err), TE_EINVAL);
}

static void time_parse_since_duration_or_time(void **state)
{
    (void)state;
    int64_t now = INT64_C(1795168800) * SEC, v;
    te_err_t err;
    assert_int_equal(te_time_parse_since("24h", now, &v, &err), 0);
    assert_true(v == now - 86400 * SEC);
    assert_int_equal(te_time_parse_since("7d", now, &v, &err), 0);
    assert_true(v == now - 7 * 86400 * SEC);
    assert_int_equal(te_time_parse_since("2026-11-01T00:00:00Z", now, &v, &err), 0);
    assert_true(v == INT64_C(1793491200) * SEC);
    assert_int_equal(te_time_parse_since("1700000000", now, &v, &err), 0);
    assert_true(v == INT64_C(1700000000) * SEC);
    assert_int_equal(te_time_parse_since("7x", now, &v, &err), TE_EINVAL);
    assert_string_equal(err.msg, "\"7x\": expected a duration (30s, 5m, 2h, 7d, 1w; units: ns, "
                                 "us, ms, s, m, h, d, w), RFC 3339 time or Unix seconds");
    assert_int_equal(te_time_parse_since("-7d", now, &v, &err), TE_EINVAL);
    assert_int_equal(te_time_parse_since("2026-13-01T00:00:00Z", now, &v, &err), TE_EINVAL);
    assert_string_equal(err.msg, "time \"2026-13-01T00:00:00Z\": month 13 is out of range (01-12)");
}

static void time_clocks_move_forward(void **state)
{
    (void)state;
    int64_t a = te_time_mono_ns(), b = te_time_mono_ns();
    assert_true(b >= a);
    assert_true(te_time_now_ns() > INT64_C(1600000000) * SEC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(duration_parse_each_unit_scales),
        cmocka_unit_test(duration_parse_sums_and_zero_add_up),
        cmocka_unit_test(duration_parse_bad_text_names_it),
        cmocka_unit_test(duration_format_compact_forms),
        cmocka_unit_test(rfc3339_parse_variants_agree),
        cmocka_unit_test(rfc3339_parse_calendar_rules_enforced),
        cmocka_unit_test(rfc3339_parse_bad_syntax_rejected),
        cmocka_unit_test(rfc3339_format_precision_and_round_trip),
        cmocka_unit_test(time_parse_unix_and_rfc3339_accepted),
        cmocka_unit_test(time_parse_since_duration_or_time),
        cmocka_unit_test(time_clocks_move_forward),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
