/*
 * test_window.c - time-sliced window (rules/window): hand-computed cases,
 * exact expiry boundaries, late/future events, rate, distinct, last,
 * quantile within the sketch bound, large time jumps.
 *
 * THREAD: main only. Virtual time only; a fixed-seed PRNG.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/window.h"

#define S INT64_C(1000000000)
#define MS INT64_C(1000000)

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;

static uint64_t rng_next(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static double rng_unit(void)
{
    return (double)(rng_next() >> 11) * (1.0 / 9007199254740992.0);
}

static te_window_t *mk(int64_t w_ns, int64_t s_ns, unsigned flags, int64_t now)
{
    te_window_opts_t o = {.window_ns = w_ns, .slice_ns = s_ns, .flags = flags};
    te_err_t err = {0};
    te_window_t *w = te_window_new(&o, now, &err);
    if (!w)
        fail_msg("te_window_new: %s", err.msg);
    return w;
}

static void check_auto(int64_t w_ns, int64_t want_slice, int64_t want_n)
{
    te_window_t *w = mk(w_ns, 0, 0, 0);
    if (te_window_slice_ns(w) != want_slice || te_window_slices(w) != want_n)
        fail_msg("W=%lld: slice %lld x %lld, want %lld x %lld", (long long)w_ns,
                 (long long)te_window_slice_ns(w), (long long)te_window_slices(w),
                 (long long)want_slice, (long long)want_n);
    te_window_free(w);
}

static void window_new_auto_slice_divides_window(void **state)
{
    (void)state;
    check_auto(300 * S, 5 * S, 60);
    check_auto(90 * S, 2 * S, 45);
    check_auto(70 * S, 1 * S, 70);
    check_auto(150 * S, 3 * S, 50);
    check_auto(3600 * S, 60 * S, 60);
    check_auto(7 * S, 1 * S, 7);
    check_auto(1 * S, 1 * S, 1);
    check_auto(86400 * S, 1440 * S, 60);
    check_auto(400 * 86400 * S, 576000 * S, 60);
    check_auto(4099 * S, 68 * S, 61); /* prime: no divisor fits, rounded kept */
    check_auto(1500 * MS, 1 * S, 2); /* not whole seconds */
}

static void expect_bad_opts(te_window_opts_t o, const char *msg)
{
    te_err_t err = {0};
    te_window_t *w = te_window_new(&o, 0, &err);
    if (w) {
        te_window_free(w);
        fail_msg("accepted bad options (expected %s)", msg);
    }
    assert_int_equal(err.code, TE_EINVAL);
    assert_string_equal(err.msg, msg);
}

static void window_new_bad_options_named_both_sides(void **state)
{
    te_window_opts_t o = {.window_ns = 4096 * MS, .slice_ns = MS};
    te_window_t *w;
    (void)state;
    w = te_window_new(&o, 0, NULL); /* exactly the slice limit */
    assert_non_null(w);
    assert_int_equal(te_window_slices(w), 4096);
    te_window_free(w);
    o.window_ns = TE_WINDOW_MAX_NS;
    o.slice_ns = 0;
    w = te_window_new(&o, 0, NULL);
    assert_non_null(w);
    te_window_free(w);
    expect_bad_opts((te_window_opts_t){.window_ns = 4097 * MS, .slice_ns = MS},
                    "window: 4097 slices of 1000000 ns exceed 4096 (use a longer slice)");
    expect_bad_opts((te_window_opts_t){.window_ns = 0},
                    "window: length 0 ns out of range (use 1ms to 400d)");
    expect_bad_opts((te_window_opts_t){.window_ns = TE_WINDOW_MAX_NS + 1},
                    "window: length 34560000000000001 ns out of range (use 1ms to 400d)");
    expect_bad_opts((te_window_opts_t){.window_ns = S - 1},
                    "window: length 999999999 ns is under 1s (give an explicit slice)");
    expect_bad_opts((te_window_opts_t){.window_ns = S, .slice_ns = MS - 1},
                    "window: slice 999999 ns out of range (use 1ms to the window length)");
    expect_bad_opts((te_window_opts_t){.window_ns = S, .slice_ns = S + 1},
                    "window: slice 1000000001 ns out of range (use 1ms to the window length)");
    expect_bad_opts((te_window_opts_t){.window_ns = S, .future_ns = -1},
                    "window: negative future tolerance -1 ns");
    expect_bad_opts((te_window_opts_t){.window_ns = S, .flags = 4}, "window: unknown flags 0x4");
    expect_bad_opts((te_window_opts_t){.window_ns = S, .distinct_cap = TE_WINDOW_MAX_DISTINCT_CAP + 1},
                    "window: distinct cap 1000001 over 1000000");
    expect_bad_opts((te_window_opts_t){.window_ns = S, .flags = TE_WINDOW_QUANTILE, .accuracy = 0.9},
                    "sketch: relative accuracy 0.9 out of range (use 0.0001 to 0.5)");
    te_window_free(NULL);
}

static void window_readers_hand_computed(void **state)
{
    te_window_t *w = mk(10 * S, S, 0, 100 * S);
    double v = 0;
    int64_t ts = 0;
    (void)state;
    assert_int_equal(te_window_count(w), 0);
    assert_true(te_window_sum(w) == 0.0);
    assert_true(te_window_rate(w) == 0.0);
    assert_int_equal(te_window_avg(w, &v), TE_ENOTFOUND);
    assert_int_equal(te_window_min(w, &v), TE_ENOTFOUND);
    assert_int_equal(te_window_max(w, &v), TE_ENOTFOUND);
    assert_int_equal(te_window_last(w, &v, &ts), TE_ENOTFOUND);
    assert_int_equal(te_window_add(w, 95 * S, 1.0), 0);
    assert_int_equal(te_window_add(w, 96 * S + 500 * MS, 5.0), 0);
    assert_int_equal(te_window_add(w, 100 * S - 1, -2.0), 0);
    assert_int_equal(te_window_add(w, 91 * S, 0.5), 0); /* older ts added later */
    assert_int_equal(te_window_count(w), 4);
    assert_true(te_window_sum(w) == 4.5);
    assert_true(te_window_rate(w) == 0.4);
    assert_int_equal(te_window_avg(w, &v), 0);
    assert_true(v == 4.5 / 4);
    assert_int_equal(te_window_min(w, &v), 0);
    assert_true(v == -2.0);
    assert_int_equal(te_window_max(w, &v), 0);
    assert_true(v == 5.0);
    assert_int_equal(te_window_last(w, &v, &ts), 0); /* greatest ts, not last added */
    assert_true(v == -2.0);
    assert_int_equal(ts, 100 * S - 1);
    assert_int_equal(te_window_last(w, &v, NULL), 0);
    assert_int_equal(te_window_add(w, 99 * S, NAN), TE_EINVAL);
    assert_int_equal(te_window_add(w, 99 * S, INFINITY), TE_EINVAL);
    assert_int_equal(te_window_count(w), 4);
    assert_int_equal(te_window_late(w) + te_window_future(w), 0);
    te_window_free(w);
}

static void window_expiry_exact_boundaries_both_sides(void **state)
{
    te_window_t *w = mk(10 * S, S, 0, 100 * S);
    double v = 0;
    (void)state;
    /* [90s, 100s): 90s is in, 90s - 1ns is late. */
    assert_int_equal(te_window_add(w, 90 * S, 7.0), 0);
    assert_int_equal(te_window_add(w, 90 * S - 1, 8.0), 0);
    assert_int_equal(te_window_count(w), 1);
    assert_int_equal(te_window_late(w), 1);
    assert_int_equal(te_window_add(w, 99 * S, 1.0), 0);
    /* The 90s event stays through now = 100s and leaves at 100s + 1ns. */
    te_window_advance(w, 100 * S);
    assert_int_equal(te_window_count(w), 2);
    te_window_advance(w, 100 * S + 1);
    assert_int_equal(te_window_count(w), 1);
    assert_int_equal(te_window_min(w, &v), 0);
    assert_true(v == 1.0);
    /* The 99s event: in through now = 109s, out at 109s + 1ns. */
    te_window_advance(w, 109 * S);
    assert_int_equal(te_window_count(w), 1);
    te_window_advance(w, 109 * S + 1);
    assert_int_equal(te_window_count(w), 0);
    assert_int_equal(te_window_max(w, &v), TE_ENOTFOUND);
    te_window_free(w);
}

static void window_unaligned_now_drops_oldest_partial_slice(void **state)
{
    te_window_t *w = mk(10 * S, S, 0, 100 * S + 500 * MS);
    (void)state;
    /* now = 100.5s: live slices 91..100 cover [91s, 100.5s). */
    assert_int_equal(te_window_add(w, 90 * S + 600 * MS, 1.0), 0); /* >= now-W, partial slice */
    assert_int_equal(te_window_late(w), 1);
    assert_int_equal(te_window_add(w, 91 * S, 1.0), 0);
    assert_int_equal(te_window_add(w, 100 * S + 400 * MS, 1.0), 0);
    assert_int_equal(te_window_count(w), 2);
    te_window_free(w);
}

static void window_future_events_to_newest_slice_within_tolerance(void **state)
{
    te_window_opts_t o = {.window_ns = 10 * S, .slice_ns = S, .future_ns = 5 * S};
    te_window_t *w = te_window_new(&o, 100 * S, NULL);
    double v = 0;
    int64_t ts = 0;
    (void)state;
    assert_non_null(w);
    assert_int_equal(te_window_add(w, 100 * S, 1.0), 0); /* at now: visible at once */
    assert_int_equal(te_window_add(w, 105 * S, 2.0), 0); /* exactly the tolerance */
    assert_int_equal(te_window_add(w, 105 * S + 1, 3.0), 0); /* beyond: dropped */
    assert_int_equal(te_window_future(w), 1);
    assert_int_equal(te_window_count(w), 2);
    assert_int_equal(te_window_last(w, &v, &ts), 0);
    assert_true(v == 2.0);
    assert_int_equal(ts, 105 * S);
    /* They live in slice 99 (the newest), so they leave with it. */
    te_window_advance(w, 109 * S);
    assert_int_equal(te_window_count(w), 2);
    te_window_advance(w, 109 * S + 1);
    assert_int_equal(te_window_count(w), 0);
    te_window_free(w);

    w = mk(10 * S, S, 0, 0); /* default tolerance 60 s */
    assert_int_equal(te_window_add(w, TE_WINDOW_DEFAULT_FUTURE_NS, 1.0), 0);
    assert_int_equal(te_window_add(w, TE_WINDOW_DEFAULT_FUTURE_NS + 1, 1.0), 0);
    assert_int_equal(te_window_count(w), 1);
    assert_int_equal(te_window_future(w), 1);
    te_window_free(w);
}

static void window_large_jumps_expire_everything_at_once(void **state)
{
    te_window_t *w = mk(60 * S, S, 0, 60 * S);
    double v = 0;
    (void)state;
    for (int64_t t = 0; t < 60; t++)
        assert_int_equal(te_window_add(w, t * S, (double)t), 0);
    assert_int_equal(te_window_count(w), 60);
    assert_true(te_window_sum(w) == 1770.0);
    /* Exactly one full turn of the ring: all gone; the same slots reused. */
    te_window_advance(w, 120 * S);
    assert_int_equal(te_window_count(w), 0);
    assert_int_equal(te_window_add(w, 119 * S, 5.0), 0);
    assert_int_equal(te_window_count(w), 1);
    assert_int_equal(te_window_min(w, &v), 0);
    assert_true(v == 5.0);
    /* A jump of a year. */
    te_window_advance(w, 365 * 86400 * S);
    assert_int_equal(te_window_count(w), 0);
    assert_int_equal(te_window_last(w, &v, NULL), TE_ENOTFOUND);
    /* Half a turn: the older half leaves, the newer half stays. */
    for (int64_t t = 0; t < 60; t++)
        assert_int_equal(te_window_add(w, 365 * 86400 * S - 60 * S + t * S, 1.0), 0);
    te_window_advance(w, 365 * 86400 * S + 30 * S);
    assert_int_equal(te_window_count(w), 30);
    /* Time going back is ignored. */
    te_window_advance(w, 0);
    assert_int_equal(te_window_now(w), 365 * 86400 * S + 30 * S);
    assert_int_equal(te_window_count(w), 30);
    te_window_free(w);
}

static void window_negative_times_virtual_clock(void **state)
{
    te_window_t *w = mk(10 * S, S, 0, 0);
    (void)state;
    assert_int_equal(te_window_add(w, -10 * S, 1.0), 0);
    assert_int_equal(te_window_add(w, -10 * S - 1, 1.0), 0);
    assert_int_equal(te_window_add(w, -1, 1.0), 0);
    assert_int_equal(te_window_count(w), 2);
    assert_int_equal(te_window_late(w), 1);
    te_window_advance(w, 1);
    assert_int_equal(te_window_count(w), 1);
    te_window_free(w);
}

static void window_extreme_times_no_overflow(void **state)
{
    te_window_t *w = mk(300 * S, 0, TE_WINDOW_QUANTILE | TE_WINDOW_DISTINCT, INT64_MAX);
    (void)state;
    assert_int_equal(te_window_now(w), TE_WINDOW_MAX_NOW_NS);
    assert_int_equal(te_window_add(w, INT64_MAX, 1.0), 0); /* beyond tolerance */
    assert_int_equal(te_window_add(w, INT64_MIN, 1.0), 0); /* late */
    assert_int_equal(te_window_add_key(w, INT64_MAX, 1), 0);
    assert_int_equal(te_window_add(w, TE_WINDOW_MAX_NOW_NS - 1, 2.0), 0);
    assert_int_equal(te_window_count(w), 1);
    assert_int_equal(te_window_future(w), 2);
    assert_int_equal(te_window_late(w), 1);
    te_window_free(w);
    w = mk(300 * S, 0, 0, INT64_MIN);
    assert_int_equal(te_window_now(w), -TE_WINDOW_MAX_NOW_NS);
    assert_int_equal(te_window_add(w, INT64_MAX, 1.0), 0);
    assert_int_equal(te_window_add(w, INT64_MIN, 1.0), 0);
    assert_int_equal(te_window_add(w, -TE_WINDOW_MAX_NOW_NS - 1, 1.0), 0);
    assert_int_equal(te_window_count(w), 1);
    te_window_advance(w, INT64_MAX);
    assert_int_equal(te_window_count(w), 0);
    te_window_free(w);
}

static int64_t ref_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* The ring grows as live slices need slots (from two up to n): against a
 * brute-force model of the same rules (slice of an event, late, future
 * clamped to the newest slice, live range as of now), over random events
 * spread, bunched, late and early, with the clock jumping by small and
 * large steps. */
static void window_sparse_ring_matches_model(void **state)
{
    (void)state;
    enum { MAXEV = 4000 };
    static int64_t ek[MAXEV];
    static double ev[MAXEV];
    uint64_t rng = 0x243F6A8885A308D3ull;
    for (int round = 0; round < 40; round++) {
        int64_t W = (1 + (int64_t)(round % 7)) * 60 * S, slice = 0;
        te_window_opts_t o = {.window_ns = W};
        int64_t now = (int64_t)(round * 7919) * S - 1000 * S;
        te_window_t *w = te_window_new(&o, now, NULL);
        assert_non_null(w);
        slice = te_window_slice_ns(w);
        int nev = 0;
        for (int step = 0; step < 300 && nev < MAXEV - 20; step++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            int burst = 1 + (int)(rng >> 60);
            for (int b = 0; b < burst; b++) {
                rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                /* most inside the window, some late, some a little ahead */
                int64_t off = (int64_t)((rng >> 20) % (uint64_t)(W + W / 2)) - W - W / 4;
                int64_t ts = now + off;
                double v = (double)((rng >> 8) % 1000) - 300.0;
                assert_int_equal(te_window_add(w, ts, v), 0);
                int64_t lo = -ref_floor_div(-(now - W), slice), hi = ref_floor_div(now - 1, slice);
                int64_t k;
                if (ts >= now)
                    k = ts - now > 60 * S ? INT64_MIN : hi;
                else {
                    k = ref_floor_div(ts, slice);
                    if (k < lo)
                        k = INT64_MIN;
                    else if (k > hi)
                        k = hi;
                }
                if (k != INT64_MIN) {
                    ek[nev] = k;
                    ev[nev++] = v;
                }
            }
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            int64_t jump = (rng >> 61) == 7 ? W + (int64_t)((rng >> 30) % 1000) * S
                                            : (int64_t)((rng >> 30) % 20) * S / 3;
            now += jump;
            te_window_advance(w, now);
            int64_t lo = -ref_floor_div(-(now - W), slice), hi = ref_floor_div(now - 1, slice);
            uint64_t n = 0;
            double sum = 0, mn = INFINITY, mx = -INFINITY;
            for (int i = 0; i < nev; i++)
                if (ek[i] >= lo && ek[i] <= hi) {
                    n++;
                    sum += ev[i];
                    mn = ev[i] < mn ? ev[i] : mn;
                    mx = ev[i] > mx ? ev[i] : mx;
                }
            assert_int_equal(te_window_count(w), n);
            assert_true(fabs(te_window_sum(w) - sum) < 1e-6);
            double x = 0;
            if (n) {
                assert_int_equal(te_window_min(w, &x), 0);
                assert_true(x == mn);
                assert_int_equal(te_window_max(w, &x), 0);
                assert_true(x == mx);
            }
        }
        te_window_free(w);
    }
}

static void window_rate_is_count_per_second_over_w(void **state)
{
    te_window_t *w = mk(60 * S, 0, 0, 60 * S);
    (void)state;
    assert_int_equal(te_window_slice_ns(w), S);
    for (int i = 0; i < 120; i++)
        assert_int_equal(te_window_add(w, (int64_t)i * 500 * MS, 1.0), 0);
    assert_true(te_window_rate(w) == 2.0);
    te_window_advance(w, 90 * S);
    assert_true(te_window_rate(w) == 1.0);
    te_window_free(w);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void check_quantiles(te_window_t *w, double *vals, size_t n)
{
    static const double qs[] = {0.0, 0.01, 0.5, 0.9, 0.95, 0.99, 1.0};
    qsort(vals, n, sizeof(*vals), cmp_double);
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        double est = 0, truth = vals[(size_t)floor(qs[i] * (double)(n - 1))];
        assert_int_equal(te_window_quantile(w, qs[i], &est), 0);
        if (fabs(est - truth) > 0.01 * fabs(truth) * (1 + 1e-9))
            fail_msg("q=%g est %g truth %g", qs[i], est, truth);
    }
}

static void window_quantile_within_sketch_bound(void **state)
{
    enum { N = 60000 };
    te_window_t *w = mk(60 * S, 0, TE_WINDOW_QUANTILE, 60 * S);
    double *all = malloc(N * sizeof(*all)), *newer = malloc(N * sizeof(*newer)), v = 0;
    size_t n_newer = 0;
    (void)state;
    assert_int_equal(te_window_quantile(w, 0.5, &v), TE_ENOTFOUND);
    for (int i = 0; i < N; i++) {
        int64_t ts = (int64_t)i * (60 * S / N);
        all[i] = exp(2.0 + 3.0 * rng_unit());
        assert_int_equal(te_window_add(w, ts, all[i]), 0);
        if (ts >= 30 * S)
            newer[n_newer++] = all[i];
    }
    check_quantiles(w, all, N);
    te_window_advance(w, 90 * S);
    check_quantiles(w, newer, n_newer);
    assert_int_equal(te_window_quantile(w, 1.5, &v), TE_EINVAL);
    assert_int_equal(te_window_quantile(w, -0.1, &v), TE_EINVAL);
    free(all);
    free(newer);
    te_window_free(w);

    w = mk(60 * S, 0, 0, 0);
    assert_int_equal(te_window_quantile(w, 0.5, &v), TE_EINVAL);
    te_window_free(w);
}

static uint64_t key(const char *s)
{
    return te_window_key_hash(s, strlen(s));
}

static void window_distinct_counts_exactly_and_expires(void **state)
{
    te_window_t *w = mk(10 * S, S, TE_WINDOW_DISTINCT, 100 * S);
    uint64_t n = 99;
    bool capped = true;
    char name[32];
    (void)state;
    assert_int_equal(te_window_distinct(w, &n, &capped), 0);
    assert_int_equal(n, 0);
    assert_false(capped);
    assert_int_equal(te_window_add_key(w, 90 * S, key("alice")), 0);
    assert_int_equal(te_window_add_key(w, 91 * S, key("bob")), 0);
    assert_int_equal(te_window_add_key(w, 95 * S, key("alice")), 0); /* seen again later */
    assert_int_equal(te_window_add_key(w, 92 * S, key("alice")), 0); /* older sighting */
    assert_int_equal(te_window_add_key(w, 80 * S, key("carol")), 0); /* late */
    assert_int_equal(te_window_late(w), 1);
    assert_int_equal(te_window_distinct(w, &n, &capped), 0);
    assert_int_equal(n, 2);
    te_window_advance(w, 101 * S + 1); /* slices 90, 91 gone; alice seen at 95 */
    assert_int_equal(te_window_distinct(w, &n, &capped), 0);
    assert_int_equal(n, 1);
    te_window_advance(w, 105 * S + 1);
    assert_int_equal(te_window_distinct(w, &n, &capped), 0);
    assert_int_equal(n, 0);
    /* Many keys: tables grow and expired keys get purged on rebuilds. */
    for (int round = 0; round < 5; round++) {
        int64_t now = (200 + 20 * round) * S;
        te_window_advance(w, now);
        for (int i = 0; i < 3000; i++) {
            snprintf(name, sizeof(name), "r%d-user-%d", round, i);
            assert_int_equal(te_window_add_key(w, now - 1 - (i % 10) * S / 10, key(name)), 0);
        }
        assert_int_equal(te_window_distinct(w, &n, &capped), 0);
        assert_int_equal(n, 3000);
        assert_false(capped);
    }
    assert_int_equal(te_window_add(w, 0, 1.0), 0); /* add() works alongside */
    te_window_free(w);

    w = mk(10 * S, S, 0, 0);
    assert_int_equal(te_window_add_key(w, 0, 1), TE_EINVAL);
    assert_int_equal(te_window_distinct(w, &n, &capped), TE_EINVAL);
    te_window_free(w);
}

static void window_distinct_cap_both_sides(void **state)
{
    te_window_opts_t o = {.window_ns = 10 * S, .slice_ns = S, .flags = TE_WINDOW_DISTINCT,
                          .distinct_cap = 100};
    te_window_t *w = te_window_new(&o, 100 * S, NULL);
    uint64_t n = 0;
    bool capped = true;
    (void)state;
    assert_non_null(w);
    for (uint64_t k = 1; k <= 100; k++)
        assert_int_equal(te_window_add_key(w, 92 * S, k), 0);
    assert_int_equal(te_window_distinct(w, &n, &capped), 0);
    assert_int_equal(n, 100); /* exactly at the cap: exact */
    assert_false(capped);
    assert_int_equal(te_window_add_key(w, 92 * S, 50), 0); /* known key: fine */
    assert_int_equal(te_window_distinct(w, &n, &capped), 0);
    assert_false(capped);
    assert_int_equal(te_window_add_key(w, 95 * S, 101), 0); /* one over */
    assert_int_equal(te_window_add_key(w, 95 * S, 102), 0);
    assert_int_equal(te_window_distinct(w, &n, &capped), 0);
    assert_int_equal(n, 100);
    assert_true(capped);
    /* Slice 92 leaves: room again, but the drop at slice 95 still flags. */
    te_window_advance(w, 102 * S + 1);
    assert_int_equal(te_window_add_key(w, 102 * S, 103), 0);
    assert_int_equal(te_window_distinct(w, &n, &capped), 0);
    assert_int_equal(n, 1);
    assert_true(capped);
    te_window_advance(w, 105 * S + 1); /* slice 95 gone: exact again */
    assert_int_equal(te_window_distinct(w, &n, &capped), 0);
    assert_int_equal(n, 1);
    assert_false(capped);
    te_window_free(w);
}

static void window_key_hash_stable_and_spread(void **state)
{
    (void)state;
    assert_true(key("a") != key("b"));
    assert_true(key("openai") == te_window_key_hash("openai", 6));
    assert_true(te_window_key_hash("", 0) != 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(window_new_auto_slice_divides_window),
        cmocka_unit_test(window_new_bad_options_named_both_sides),
        cmocka_unit_test(window_readers_hand_computed),
        cmocka_unit_test(window_expiry_exact_boundaries_both_sides),
        cmocka_unit_test(window_unaligned_now_drops_oldest_partial_slice),
        cmocka_unit_test(window_future_events_to_newest_slice_within_tolerance),
        cmocka_unit_test(window_large_jumps_expire_everything_at_once),
        cmocka_unit_test(window_negative_times_virtual_clock),
        cmocka_unit_test(window_extreme_times_no_overflow),
        cmocka_unit_test(window_rate_is_count_per_second_over_w),
        cmocka_unit_test(window_sparse_ring_matches_model),
        cmocka_unit_test(window_quantile_within_sketch_bound),
        cmocka_unit_test(window_distinct_counts_exactly_and_expires),
        cmocka_unit_test(window_distinct_cap_both_sides),
        cmocka_unit_test(window_key_hash_stable_and_spread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
