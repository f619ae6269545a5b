/*
 * test_sketch.c - quantile sketch (rules/sketch): error bound against exact
 * sorted quantiles, merge, encode/decode, hostile blobs, bucket cap; the
 * log-free bucket index (rules/sketch_key) against the log formula.
 *
 * THREAD: main only. Deterministic: a fixed-seed xorshift PRNG.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/sketch.h"
#include "rules/sketch_key.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng_next(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

/* Uniform in [0, 1). */
static double rng_unit(void)
{
    return (double)(rng_next() >> 11) * (1.0 / 9007199254740992.0);
}

static double rng_normal(void)
{
    double u1 = rng_unit(), u2 = rng_unit();
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static te_sketch_t *new_sketch(double a, uint32_t maxb)
{
    te_err_t err = {0};
    te_sketch_t *s = te_sketch_new(a, maxb, &err);
    if (!s)
        fail_msg("te_sketch_new: %s", err.msg);
    return s;
}

static const double QS[] = {0.0, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0};

/* Checks every q in QS against the exact lower-nearest-rank value. */
static void check_bound(const te_sketch_t *s, double *vals, size_t n, double a)
{
    qsort(vals, n, sizeof(*vals), cmp_double);
    assert_int_equal(te_sketch_count(s), n);
    assert_true(te_sketch_min(s) == vals[0]);
    assert_true(te_sketch_max(s) == vals[n - 1]);
    for (size_t i = 0; i < sizeof(QS) / sizeof(QS[0]); i++) {
        double est = 0, truth = vals[(size_t)floor(QS[i] * (double)(n - 1))];
        assert_int_equal(te_sketch_quantile(s, QS[i], &est), 0);
        if (fabs(est - truth) > a * fabs(truth) * (1.0 + 1e-9))
            fail_msg("q=%g: estimate %.17g, truth %.17g, rel err %g > %g", QS[i], est, truth,
                     fabs(est - truth) / fabs(truth), a);
    }
}

static void run_distribution(double (*gen)(void), size_t n, double a, uint32_t maxb)
{
    te_sketch_t *s = new_sketch(a, maxb);
    double *vals = malloc(n * sizeof(*vals));
    double sum = 0;
    assert_non_null(vals);
    for (size_t i = 0; i < n; i++) {
        vals[i] = gen();
        sum += vals[i];
        assert_int_equal(te_sketch_add(s, vals[i]), 0);
    }
    assert_false(te_sketch_collapsed(s));
    assert_true(fabs(te_sketch_sum(s) - sum) <= 1e-9 * fabs(sum) + 1e-9);
    check_bound(s, vals, n, a);
    free(vals);
    te_sketch_free(s);
}

static double gen_uniform(void)
{
    return rng_unit() * 1000.0;
}

static double gen_lognormal(void)
{
    return exp(3.0 + 2.0 * rng_normal());
}

/* A third negative, a tenth exactly zero, the rest positive, wide range. */
static double gen_mixed(void)
{
    double u = rng_unit();
    if (u < 0.1)
        return 0.0;
    if (u < 0.43)
        return -exp(4.0 * rng_normal());
    return exp(4.0 * rng_normal());
}

static double gen_tiny(void)
{
    return 1e-300 * (1.0 + rng_unit()) * (rng_unit() < 0.5 ? -1.0 : 1.0);
}

static void sketch_quantile_uniform_within_bound(void **state)
{
    (void)state;
    run_distribution(gen_uniform, 20000, 0.01, 0);
    run_distribution(gen_uniform, 7, 0.01, 0);
    run_distribution(gen_uniform, 20000, 0.001, TE_SKETCH_MAX_BUCKETS);
}

static void sketch_quantile_lognormal_within_bound(void **state)
{
    (void)state;
    run_distribution(gen_lognormal, 50000, 0.01, 0);
    run_distribution(gen_lognormal, 50000, 0.05, 0);
}

static void sketch_quantile_negatives_and_zeros_within_bound(void **state)
{
    (void)state;
    run_distribution(gen_mixed, 50000, 0.01, 0);
    run_distribution(gen_tiny, 1000, 0.01, 0);
}

static void sketch_quantile_single_and_constant_values_exactish(void **state)
{
    te_sketch_t *s = new_sketch(0, 0);
    double v = 0;
    (void)state;
    assert_int_equal(te_sketch_add(s, 42.5), 0);
    assert_int_equal(te_sketch_quantile(s, 0.5, &v), 0);
    assert_true(v == 42.5); /* clamped to [min, max] */
    te_sketch_reset(s);
    for (int i = 0; i < 100; i++)
        assert_int_equal(te_sketch_add(s, 0.0), 0);
    assert_int_equal(te_sketch_quantile(s, 0.99, &v), 0);
    assert_true(v == 0.0);
    assert_true(te_sketch_sum(s) == 0.0);
    te_sketch_free(s);
}

static void sketch_new_params_checked_at_both_limits(void **state)
{
    te_err_t err = {0};
    te_sketch_t *s;
    (void)state;
    s = te_sketch_new(TE_SKETCH_MIN_ACCURACY, TE_SKETCH_MIN_BUCKETS, &err);
    assert_non_null(s);
    te_sketch_free(s);
    s = te_sketch_new(TE_SKETCH_MAX_ACCURACY, TE_SKETCH_MAX_BUCKETS, &err);
    assert_non_null(s);
    assert_true(te_sketch_accuracy(s) == TE_SKETCH_MAX_ACCURACY);
    te_sketch_free(s);
    assert_null(te_sketch_new(0.00009, 0, &err));
    assert_int_equal(err.code, TE_EINVAL);
    assert_string_equal(err.msg, "sketch: relative accuracy 9e-05 out of range (use 0.0001 to 0.5)");
    assert_null(te_sketch_new(0.51, 0, &err));
    assert_null(te_sketch_new(NAN, 0, &err));
    assert_null(te_sketch_new(0.01, TE_SKETCH_MIN_BUCKETS - 1, &err));
    assert_string_equal(err.msg, "sketch: max_buckets 15 out of range (use 16 to 65536)");
    assert_null(te_sketch_new(0.01, TE_SKETCH_MAX_BUCKETS + 1, NULL));
    s = te_sketch_new(0, 0, NULL);
    assert_true(te_sketch_accuracy(s) == TE_SKETCH_DEFAULT_ACCURACY);
    te_sketch_free(s);
    te_sketch_free(NULL);
}

static void sketch_add_nonfinite_rejected_unchanged(void **state)
{
    te_sketch_t *s = new_sketch(0, 0);
    double v = 0;
    (void)state;
    assert_int_equal(te_sketch_add(s, NAN), TE_EINVAL);
    assert_int_equal(te_sketch_add(s, INFINITY), TE_EINVAL);
    assert_int_equal(te_sketch_add(s, -INFINITY), TE_EINVAL);
    assert_int_equal(te_sketch_count(s), 0);
    assert_int_equal(te_sketch_quantile(s, 0.5, &v), TE_ENOTFOUND);
    assert_int_equal(te_sketch_add(s, 1.0), 0);
    assert_int_equal(te_sketch_quantile(s, -0.01, &v), TE_EINVAL);
    assert_int_equal(te_sketch_quantile(s, 1.01, &v), TE_EINVAL);
    assert_int_equal(te_sketch_quantile(s, NAN, &v), TE_EINVAL);
    assert_int_equal(te_sketch_add(s, 1e308), 0);
    assert_int_equal(te_sketch_add(s, -1e308), 0);
    assert_int_equal(te_sketch_add(s, 2.2250738585072014e-308), 0);
    /* DBL_MIN..1e308 spans more than 2048 buckets: the low end collapses,
     * the extremes stay exact. */
    assert_true(te_sketch_collapsed(s));
    assert_int_equal(te_sketch_quantile(s, 0.0, &v), 0);
    assert_true(v == -1e308);
    assert_int_equal(te_sketch_quantile(s, 1.0, &v), 0);
    assert_true(v == 1e308);
    te_sketch_free(s);
}

static void sketch_merge_equals_single_adds(void **state)
{
    te_sketch_t *all = new_sketch(0, 0), *a = new_sketch(0, 0), *b = new_sketch(0, 0);
    te_sketch_t *empty = new_sketch(0, 0);
    te_err_t err = {0};
    (void)state;
    for (int i = 0; i < 30000; i++) {
        double v = gen_mixed();
        assert_int_equal(te_sketch_add(all, v), 0);
        assert_int_equal(te_sketch_add(i % 3 ? a : b, v), 0);
    }
    assert_int_equal(te_sketch_merge(a, b, &err), 0);
    assert_int_equal(te_sketch_merge(a, empty, &err), 0);
    assert_int_equal(te_sketch_merge(empty, all, &err), 0);
    assert_int_equal(te_sketch_count(a), te_sketch_count(all));
    assert_true(te_sketch_min(a) == te_sketch_min(all));
    assert_true(te_sketch_max(a) == te_sketch_max(all));
    assert_true(fabs(te_sketch_sum(a) - te_sketch_sum(all)) <= 1e-9 * fabs(te_sketch_sum(all)) + 1e-6);
    for (double q = 0; q <= 1.0; q += 0.001) {
        double x = 0, y = 0, z = 0;
        assert_int_equal(te_sketch_quantile(a, q, &x), 0);
        assert_int_equal(te_sketch_quantile(all, q, &y), 0);
        assert_int_equal(te_sketch_quantile(empty, q, &z), 0);
        assert_true(x == y);
        assert_true(z == y);
    }
    te_sketch_free(all);
    te_sketch_free(a);
    te_sketch_free(b);
    te_sketch_free(empty);
}

/* The bulk add encodes byte for byte like one te_sketch_add per value,
 * skipping what te_sketch_add refuses (NaN, infinities), also when values
 * stretch and collapse a small store. */
static void sketch_add_all_equals_single_adds(void **state)
{
    (void)state;
    for (int round = 0; round < 2; round++) {
        uint32_t cap = round ? 64 : 0;
        te_sketch_t *one = new_sketch(0, cap), *bulk = new_sketch(0, cap);
        double v[1000];
        for (int i = 0; i < 1000; i++) {
            v[i] = i % 97 == 0 ? NAN : i % 89 == 0 ? -INFINITY : i % 83 == 0 ? 0.0 : gen_mixed();
            if (round && i % 7 == 0)
                v[i] = ldexp(1.0, (i % 200) - 100); /* far apart: collapses */
            te_sketch_add(one, v[i]);
        }
        assert_int_equal(te_sketch_add_all(bulk, v, 400), 0);
        assert_int_equal(te_sketch_add_all(bulk, v + 400, 600), 0);
        unsigned char *a = NULL, *b = NULL;
        size_t al = 0, bl = 0;
        assert_int_equal(te_sketch_encode(one, &a, &al), 0);
        assert_int_equal(te_sketch_encode(bulk, &b, &bl), 0);
        assert_int_equal(al, bl);
        assert_memory_equal(a, b, al);
        assert_int_equal(te_sketch_collapsed(one), te_sketch_collapsed(bulk));
        assert_true(te_sketch_sum(one) == te_sketch_sum(bulk));
        free(a);
        free(b);
        te_sketch_free(one);
        te_sketch_free(bulk);
    }
}

/* The bulk path's fast loop (every value a positive normal, fitting the
 * store without a collapse) must leave the sketch a value-by-value add
 * would: runs of positives into empty and non-empty sketches, runs that
 * widen the range both ways, and a run too wide for the cap (the general
 * loop's collapse). */
static void sketch_add_all_positive_runs_equal_single_adds(void **state)
{
    (void)state;
    for (int round = 0; round < 2; round++) {
        uint32_t cap = round ? 64 : 0;
        te_sketch_t *one = new_sketch(0, cap), *bulk = new_sketch(0, cap);
        double v[3000];
        for (int i = 0; i < 3000; i++) {
            v[i] = exp(rng_normal() * 2.0 + (i / 500) * 1.5 - 3.0);
            if (i % 500 == 7)
                v[i] = round ? ldexp(1.0, (i / 500) * 40 - 120) : 1e-6;
            te_sketch_add(one, v[i]);
        }
        for (size_t at = 0, k = 1; at < 3000; at += k, k = k * 3 % 257 + 1)
            assert_int_equal(te_sketch_add_all(bulk, v + at, at + k > 3000 ? 3000 - at : k), 0);
        unsigned char *a = NULL, *b = NULL;
        size_t al = 0, bl = 0;
        assert_int_equal(te_sketch_encode(one, &a, &al), 0);
        assert_int_equal(te_sketch_encode(bulk, &b, &bl), 0);
        assert_int_equal(al, bl);
        assert_memory_equal(a, b, al);
        assert_int_equal(te_sketch_collapsed(one), round == 1);
        assert_int_equal(te_sketch_collapsed(bulk), round == 1);
        assert_true(te_sketch_sum(one) == te_sketch_sum(bulk));
        assert_true(te_sketch_min(one) == te_sketch_min(bulk));
        assert_true(te_sketch_max(one) == te_sketch_max(bulk));
        free(a);
        free(b);
        te_sketch_free(one);
        te_sketch_free(bulk);
    }
}

static void sketch_merge_accuracy_mismatch_rejected(void **state)
{
    te_sketch_t *a = new_sketch(0.01, 0), *b = new_sketch(0.02, 0);
    te_err_t err = {0};
    (void)state;
    assert_int_equal(te_sketch_add(b, 3.0), 0);
    assert_int_equal(te_sketch_merge(a, b, &err), TE_EINVAL);
    assert_string_equal(err.msg,
                        "sketch: cannot merge accuracy 0.02 into accuracy 0.01 (rebuild with one accuracy)");
    assert_int_equal(te_sketch_count(a), 0);
    assert_int_equal(te_sketch_merge(b, b, &err), TE_EINVAL);
    assert_string_equal(err.msg, "sketch: cannot merge a sketch into itself");
    assert_int_equal(te_sketch_count(b), 1);
    te_sketch_free(a);
    te_sketch_free(b);
}

static void assert_same_sketch(const te_sketch_t *x, const te_sketch_t *y)
{
    assert_int_equal(te_sketch_count(x), te_sketch_count(y));
    assert_true(te_sketch_sum(x) == te_sketch_sum(y));
    assert_true(te_sketch_min(x) == te_sketch_min(y));
    assert_true(te_sketch_max(x) == te_sketch_max(y));
    assert_true(te_sketch_accuracy(x) == te_sketch_accuracy(y));
    assert_int_equal(te_sketch_collapsed(x), te_sketch_collapsed(y));
    for (double q = 0; q <= 1.0 && te_sketch_count(x); q += 0.0005) {
        double a = 0, b = 0;
        assert_int_equal(te_sketch_quantile(x, q, &a), 0);
        assert_int_equal(te_sketch_quantile(y, q, &b), 0);
        assert_true(a == b);
    }
}

static te_sketch_t *round_trip(const te_sketch_t *s, size_t *blob_len)
{
    unsigned char *blob = NULL;
    te_err_t err = {0};
    te_sketch_t *d;
    assert_int_equal(te_sketch_encode(s, &blob, blob_len), 0);
    d = te_sketch_decode(blob, *blob_len, &err);
    if (!d)
        fail_msg("decode: %s", err.msg);
    free(blob);
    return d;
}

static void sketch_encode_decode_round_trip(void **state)
{
    te_sketch_t *s = new_sketch(0, 0), *d;
    size_t len = 0;
    (void)state;
    d = round_trip(s, &len); /* empty */
    assert_same_sketch(s, d);
    assert_int_equal(len, 18 + 2 + 24 + 2);
    te_sketch_free(d);
    for (int i = 0; i < 100000; i++)
        assert_int_equal(te_sketch_add(s, gen_mixed()), 0);
    d = round_trip(s, &len);
    assert_same_sketch(s, d);
    /* Compact: a 1% sketch of 100k wide-ranging values fits in a few KiB. */
    assert_true(len < 8192);
    /* A decoded sketch keeps working: add and merge into it. */
    assert_int_equal(te_sketch_add(d, 5.0), 0);
    assert_int_equal(te_sketch_merge(d, s, NULL), 0);
    assert_int_equal(te_sketch_count(d), 2 * te_sketch_count(s) + 1);
    te_sketch_free(d);
    te_sketch_free(s);

    s = new_sketch(0.05, TE_SKETCH_MIN_BUCKETS); /* collapsed flag survives */
    for (int i = 0; i < 1000; i++)
        assert_int_equal(te_sketch_add(s, gen_lognormal()), 0);
    assert_true(te_sketch_collapsed(s));
    d = round_trip(s, &len);
    assert_same_sketch(s, d);
    te_sketch_free(d);
    te_sketch_free(s);
}

static unsigned char *valid_blob(size_t *len)
{
    te_sketch_t *s = new_sketch(0, 0);
    unsigned char *blob = NULL;
    for (int i = 0; i < 500; i++)
        assert_int_equal(te_sketch_add(s, gen_mixed()), 0);
    assert_int_equal(te_sketch_encode(s, &blob, len), 0);
    te_sketch_free(s);
    return blob;
}

static void expect_decode_error(const unsigned char *b, size_t len, const char *msg)
{
    te_err_t err = {0};
    te_sketch_t *s = te_sketch_decode(b, len, &err);
    if (s) {
        te_sketch_free(s);
        fail_msg("decode accepted a bad blob (expected: %s)", msg);
    }
    assert_int_equal(err.code, TE_EPARSE);
    if (!strstr(err.msg, msg))
        fail_msg("error \"%s\" lacks \"%s\"", err.msg, msg);
}

static void sketch_decode_truncated_blobs_fail_cleanly(void **state)
{
    size_t len = 0;
    unsigned char *blob = valid_blob(&len);
    (void)state;
    expect_decode_error(NULL, 0, "truncated");
    for (size_t cut = 0; cut < len; cut++) {
        unsigned char *copy = malloc(cut ? cut : 1); /* exact size: ASan catches overreads */
        memcpy(copy, blob, cut);
        expect_decode_error(copy, cut, cut < 18 ? "truncated (" : "");
        free(copy);
    }
    free(blob);
}

static void sketch_decode_bad_fields_named(void **state)
{
    size_t len = 0;
    unsigned char *blob = valid_blob(&len), *b = malloc(len + 1);
    double acc = 0.7;
    (void)state;
#define RESET() memcpy(b, blob, len)
    RESET();
    b[0] = 'X';
    expect_decode_error(b, len, "bad magic");
    RESET();
    b[4] = 2;
    expect_decode_error(b, len, "unsupported format version 2 (this build reads 1)");
    RESET();
    b[5] = 2;
    expect_decode_error(b, len, "unknown flags 0x02");
    RESET();
    memcpy(b + 6, &acc, 8); /* little-endian host assumed by this test only */
    expect_decode_error(b, len, "parameters out of range");
    RESET();
    b[14] = 0xff, b[15] = 0xff, b[16] = 0xff, b[17] = 0xff;
    expect_decode_error(b, len, "parameters out of range");
    RESET();
    b[18] ^= 1; /* count no longer matches the buckets */
    expect_decode_error(b, len, "");
    RESET();
    b[len] = 0;
    expect_decode_error(b, len + 1, "trailing bytes");
    free(b);
    free(blob);

    { /* a store claiming more buckets than max_buckets, and a huge span */
        te_sketch_t *s = new_sketch(0, TE_SKETCH_MIN_BUCKETS);
        unsigned char *e = NULL;
        size_t n = 0;
        assert_int_equal(te_sketch_add(s, 1.0), 0);
        assert_int_equal(te_sketch_add(s, 1.5), 0);
        assert_int_equal(te_sketch_encode(s, &e, &n), 0);
        /* layout: header 18, count 1, zero 1, 24 f64, neg n=0 (1), pos n */
        assert_int_equal(e[44], 0);
        assert_int_equal(e[45], 2);
        e[45] = 17;
        expect_decode_error(e, n, "17 buckets (max_buckets 16)");
        e[45] = 2;
        e[48] = 40; /* gap between the two indices: 40 > 16 buckets */
        expect_decode_error(e, n, "spans more than 16 buckets");
        e[48] = 0;
        expect_decode_error(e, n, "bad index gap");
        e[48] = 0xff; /* unterminated varint runs into the end */
        expect_decode_error(e, n, "");
        free(e);
        te_sketch_free(s);
    }
}

static void sketch_decode_random_and_flipped_bytes_never_crash(void **state)
{
    size_t len = 0;
    unsigned char *blob = valid_blob(&len);
    static unsigned char buf[16384];
    int accepted = 0;
    (void)state;
    for (int round = 0; round < 20000; round++) {
        size_t n = (size_t)(rng_next() % 512);
        te_sketch_t *s;
        if (round % 2) { /* bit flips of a valid blob keep the magic */
            assert_true(len <= sizeof(buf));
            n = len;
            memcpy(buf, blob, n);
            for (int k = 0; k < (round % 4 == 1 ? 1 : 3); k++)
                buf[rng_next() % n] ^= (unsigned char)(1u << (rng_next() % 8));
        } else {
            for (size_t i = 0; i < n; i++)
                buf[i] = (unsigned char)rng_next();
            if (n >= 6)
                memcpy(buf, "TESK\1\0", 6);
        }
        s = te_sketch_decode(buf, n, NULL);
        if (s) { /* whatever was accepted must be usable */
            double v;
            accepted++;
            (void)te_sketch_quantile(s, 0.5, &v);
            assert_int_equal(te_sketch_add(s, 1.0), 0);
            te_sketch_free(s);
        }
    }
    assert_true(accepted > 0); /* harmless flips (sum, min, a gap) do decode */
    free(blob);
}

/* Values at bucket centres: v = gamma^(i - 0.5) lands in bucket i. */
static double centre(double a, int i)
{
    double g = (1 + a) / (1 - a);
    return pow(g, i - 0.5);
}

static void sketch_bucket_cap_collapses_lowest(void **state)
{
    const double a = 0.01;
    te_sketch_t *s = new_sketch(a, TE_SKETCH_MIN_BUCKETS);
    double v = 0;
    (void)state;
    for (int i = 1; i <= 16; i++) /* exactly 16 buckets: no collapse */
        assert_int_equal(te_sketch_add(s, centre(a, i)), 0);
    assert_false(te_sketch_collapsed(s));
    assert_int_equal(te_sketch_quantile(s, 1.0 / 15.0, &v), 0); /* rank 1: bucket 2 */
    assert_true(fabs(v - centre(a, 2)) <= a * centre(a, 2));
    assert_int_equal(te_sketch_add(s, centre(a, 17)), 0); /* 17th: bucket 1 folds into 2 */
    assert_true(te_sketch_collapsed(s));
    assert_int_equal(te_sketch_count(s), 17);
    assert_true(te_sketch_min(s) == centre(a, 1)); /* min/max stay exact */
    assert_int_equal(te_sketch_quantile(s, 1.0 / 16.0, &v), 0); /* rank 1: still bucket 2 */
    assert_true(fabs(v - centre(a, 2)) <= a * centre(a, 2));
    assert_int_equal(te_sketch_quantile(s, 0.5, &v), 0); /* rank 8: bucket 9, bound holds */
    assert_true(fabs(v - centre(a, 9)) <= a * centre(a, 9));
    /* A value below the kept range goes to the lowest kept bucket. */
    assert_int_equal(te_sketch_add(s, 1e-9), 0);
    assert_int_equal(te_sketch_quantile(s, 1.0 / 17.0, &v), 0);
    assert_true(v > 1.0);
    /* Memory stays bounded whatever the spread: 1e-300 .. 1e300. */
    for (int e = -300; e <= 300; e++)
        assert_int_equal(te_sketch_add(s, pow(10.0, e)), 0);
    assert_int_equal(te_sketch_quantile(s, 1.0, &v), 0);
    assert_true(v == 1e300);
    /* rank 617 of 619 is 1e299, 115 buckets below the top: collapsed, so
     * overestimated in magnitude, yet never above the true max. */
    assert_int_equal(te_sketch_quantile(s, 0.999, &v), 0);
    assert_true(v >= 1e299 && v <= 1e300);
    {
        unsigned char *blob = NULL;
        size_t len = 0;
        assert_int_equal(te_sketch_encode(s, &blob, &len), 0);
        assert_true(len < 18 + 44 + 2 * 16 * 20);
        free(blob);
    }
    te_sketch_reset(s);
    assert_false(te_sketch_collapsed(s));
    assert_int_equal(te_sketch_count(s), 0);
    assert_true(te_sketch_min(s) == INFINITY);
    te_sketch_free(s);
}

/* ---- the bucket index (rules/sketch_key.h) ------------------------------ */

/* The formula the index must reproduce: ceil(ln m / ln gamma) as sketches
 * have always computed it (with gamma, 1 / ln gamma rounded as in
 * te_sketch_new). */
static int64_t ref_key(double a, double m)
{
    double inv = 1.0 / log((1.0 + a) / (1.0 - a));
    return (int64_t)ceil(log(m) * inv);
}

typedef struct key_stats {
    uint64_t values;   /* compared */
    uint64_t near;     /* within 2^-12 bucket of a boundary: the exact path */
} key_stats;

static void expect_key(const te_sketch_key_t *k, double a, double m, key_stats *st)
{
    int64_t want = ref_key(a, m), got = te_sketch_key(k, m);
    double y = log(m) * k->inv_log_gamma;
    st->values++;
    if (fabs(y - nearbyint(y)) < 1.0 / 4096)
        st->near++;
    if (got != want)
        fail_msg("accuracy %g: index of %.17g is %lld, log formula says %lld (%.3g from "
                 "gamma^%lld relative)",
                 a, m, (long long)got, (long long)want,
                 m / exp((double)want / k->inv_log_gamma) - 1.0, (long long)want);
}

/* A positive normal double with uniformly random bits. */
static double rng_normal_bits(void)
{
    uint64_t u = rng_next() & UINT64_C(0x000fffffffffffff);
    u |= (uint64_t)(1 + rng_next() % 2046) << 52;
    double m;
    memcpy(&m, &u, sizeof(m));
    return m;
}

static const double KEY_ACCURACIES[] = {0.01, 0.005, 0.02, 0.05, TE_SKETCH_MIN_ACCURACY,
                                        TE_SKETCH_MAX_ACCURACY, 1.0 / 3.0 /* gamma ~ 2 */};

/* Random bits over the whole normal range, realistic magnitudes 1e-6 ..
 * 1e9, the range's ends, 1.0, powers of 2 and 10: the index equals the
 * log formula for each (the guard band makes it exact, not only within
 * one near a boundary). */
static void sketch_key_equals_log_formula_on_random_values(void **state)
{
    (void)state;
    for (size_t ai = 0; ai < sizeof(KEY_ACCURACIES) / sizeof(KEY_ACCURACIES[0]); ai++) {
        double a = KEY_ACCURACIES[ai];
        te_sketch_key_t k;
        key_stats st = {0, 0};
        te_sketch_key_init(&k, a);
        for (int i = 0; i < 400000; i++) {
            expect_key(&k, a, rng_normal_bits(), &st);
            expect_key(&k, a, 1e-6 * pow(1e15, rng_unit()), &st);
            expect_key(&k, a, 1.0 + floor(rng_unit() * 1e6), &st); /* integer counts */
        }
        const double ends[] = {DBL_MIN, nextafter(DBL_MIN, 1.0), DBL_MAX, nextafter(DBL_MAX, 0.0),
                               1.0, nextafter(1.0, 0.0), nextafter(1.0, 2.0), 1e-6, 1e9};
        for (size_t i = 0; i < sizeof(ends) / sizeof(ends[0]); i++)
            expect_key(&k, a, ends[i], &st);
        for (int e = -1022; e <= 1023; e++)
            expect_key(&k, a, ldexp(1.0, e), &st);
        for (int e = -307; e <= 308; e++)
            expect_key(&k, a, pow(10.0, e), &st);
        print_message("sketch_key accuracy %g: %llu values, %llu near a boundary, 0 mismatches\n", a,
                      (unsigned long long)st.values, (unsigned long long)st.near);
    }
}

/* Values at and around every bucket boundary gamma^k of the normal range
 * (a sample of them at the finest accuracy): a few ulps and 1e-15 ..
 * 1e-6 relative either side, where an estimate of the logarithm would
 * round the wrong way, and 1e-5 .. 0.49 buckets either side, across the
 * edge of the band that takes the exact path. The index equals the log
 * formula there too, and never decreases along the consecutive doubles
 * around a boundary. */
static void sketch_key_equals_log_formula_at_boundaries(void **state)
{
    static const double rel[] = {1e-15, 1e-14, 1e-13, 1e-12, 1e-10, 1e-8, 1e-6};
    /* distances in buckets: inside, at the edge of and outside the guard
     * band of 2^-12 ~ 2.44e-4 buckets */
    static const double buckets[] = {1e-5, 2.4e-4, 2.5e-4, 3e-4, 1e-3, 0.01, 0.1, 0.49};
    (void)state;
    for (size_t ai = 0; ai < sizeof(KEY_ACCURACIES) / sizeof(KEY_ACCURACIES[0]); ai++) {
        double a = KEY_ACCURACIES[ai];
        double log_gamma = log((1.0 + a) / (1.0 - a));
        te_sketch_key_t k;
        key_stats st = {0, 0};
        te_sketch_key_init(&k, a);
        int64_t lo = (int64_t)ceil(log(DBL_MIN) / log_gamma) + 1;
        int64_t hi = (int64_t)floor(log(DBL_MAX) / log_gamma) - 1;
        int64_t step = (hi - lo) / 60000 + 1;
        for (int64_t b = lo; b <= hi; b += step) {
            double g = exp((double)b * log_gamma); /* gamma^b within ~1e-13 */
            expect_key(&k, a, g, &st);
            for (size_t r = 0; r < sizeof(rel) / sizeof(rel[0]); r++) {
                expect_key(&k, a, g * (1.0 + rel[r]), &st);
                expect_key(&k, a, g * (1.0 - rel[r]), &st);
            }
            for (size_t d = 0; d < sizeof(buckets) / sizeof(buckets[0]); d++) {
                expect_key(&k, a, g * exp(buckets[d] * log_gamma), &st);
                expect_key(&k, a, g * exp(-buckets[d] * log_gamma), &st);
            }
            /* 33 consecutive doubles: the index moves up by at most one */
            double m = g;
            for (int i = 0; i < 16; i++)
                m = nextafter(m, 0.0);
            int64_t first = te_sketch_key(&k, m), prev = first;
            for (int i = 0; i <= 32; i++, m = nextafter(m, INFINITY)) {
                expect_key(&k, a, m, &st);
                int64_t cur = te_sketch_key(&k, m);
                assert_true(cur >= prev);
                prev = cur;
            }
            assert_true(prev - first <= 1);
        }
        print_message("sketch_key accuracy %g: %llu values around boundaries, %llu near one, "
                      "0 mismatches\n",
                      a, (unsigned long long)st.values, (unsigned long long)st.near);
        assert_true(st.near > st.values / 2); /* the exact path really ran */
    }
}

/* Over sorted values the index never decreases (the bulk add sizes its
 * array from the indices of the smallest and largest value). */
static void sketch_key_monotone_over_sorted_values(void **state)
{
    enum { N = 300000 };
    double *v = malloc(N * sizeof(*v));
    (void)state;
    assert_non_null(v);
    for (size_t ai = 0; ai < 4; ai++) { /* the four ordinary accuracies */
        double a = KEY_ACCURACIES[ai];
        te_sketch_key_t k;
        te_sketch_key_init(&k, a);
        for (int i = 0; i < N; i++) {
            double x = i % 3 ? rng_normal_bits() : 1e-6 * pow(1e15, rng_unit());
            if (i % 5 == 0) /* next to a boundary */
                x = exp(floor(log(x) * k.inv_log_gamma) / k.inv_log_gamma) *
                    (1.0 + (rng_unit() - 0.5) * 1e-13);
            v[i] = x;
        }
        qsort(v, N, sizeof(*v), cmp_double);
        for (int i = 1; i < N; i++)
            if (te_sketch_key(&k, v[i]) < te_sketch_key(&k, v[i - 1]))
                fail_msg("accuracy %g: index of %.17g below that of %.17g", a, v[i], v[i - 1]);
    }
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sketch_quantile_uniform_within_bound),
        cmocka_unit_test(sketch_quantile_lognormal_within_bound),
        cmocka_unit_test(sketch_quantile_negatives_and_zeros_within_bound),
        cmocka_unit_test(sketch_quantile_single_and_constant_values_exactish),
        cmocka_unit_test(sketch_new_params_checked_at_both_limits),
        cmocka_unit_test(sketch_add_nonfinite_rejected_unchanged),
        cmocka_unit_test(sketch_merge_equals_single_adds),
        cmocka_unit_test(sketch_add_all_equals_single_adds),
        cmocka_unit_test(sketch_add_all_positive_runs_equal_single_adds),
        cmocka_unit_test(sketch_merge_accuracy_mismatch_rejected),
        cmocka_unit_test(sketch_encode_decode_round_trip),
        cmocka_unit_test(sketch_decode_truncated_blobs_fail_cleanly),
        cmocka_unit_test(sketch_decode_bad_fields_named),
        cmocka_unit_test(sketch_decode_random_and_flipped_bytes_never_crash),
        cmocka_unit_test(sketch_bucket_cap_collapses_lowest),
        cmocka_unit_test(sketch_key_equals_log_formula_on_random_values),
        cmocka_unit_test(sketch_key_equals_log_formula_at_boundaries),
        cmocka_unit_test(sketch_key_monotone_over_sorted_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
