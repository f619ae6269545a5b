/*
 * test_detect.c - anomaly detection methods (detect/detect.h): each
 * method's arithmetic against hand-computed cases, warm-up, direction,
 * parameter checks, and state blobs (round trip, refusal of foreign or
 * truncated blobs); detectors in a live ruleset: alerts with the method's
 * labels, state kept across a reload of an unchanged detector (C and Lua
 * methods), reset by a changed one, and snapshot / restore (restarts).
 *
 * THREAD: main only. Virtual time only; a fixed-seed PRNG.
 */
#define _DEFAULT_SOURCE /* mkdtemp */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/event.h"
#include "detect/detect.h"
#include "rules/eval.h"
#include "script/script.h"

#define S INT64_C(1000000000)

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;

static double rng_unit(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return (double)(x >> 11) * (1.0 / 9007199254740992.0);
}

static double rng_normal(void)
{
    double u = rng_unit() + 1e-12, v = rng_unit();
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

static te_detector_t *mk(te_detect_params_t *p)
{
    te_err_t err = {0};
    te_detector_t *d = te_detect_new(p, &err);
    if (!d)
        fail_msg("te_detect_new: %s", err.msg);
    return d;
}

static te_detect_verdict_t up(te_detector_t *d, double x, int64_t t)
{
    te_detect_verdict_t v;
    assert_int_equal(te_detect_update(d, x, t, &v), 0);
    return v;
}

static void ewma_hand_computed(void **state)
{
    (void)state;
    te_detect_params_t p;
    te_detect_params_default(&p, TE_DETECT_EWMA);
    p.alpha = 0.5;
    p.threshold = 2;
    p.warmup = 2;
    p.drift = 1e9; /* the drift test below covers it */
    te_detector_t *d = mk(&p);
    te_detect_verdict_t v = up(d, 10, 1 * S);
    assert_false(v.ready);
    v = up(d, 12, 2 * S); /* mean 11, var 1 */
    assert_false(v.ready);
    v = up(d, 10, 3 * S);
    assert_true(v.ready);
    assert_false(v.anomalous);
    assert_float_equal(v.score, 1.0, 1e-12);
    assert_float_equal(v.baseline, 11.0, 1e-12);
    assert_float_equal(v.lower, 9.0, 1e-12);
    assert_float_equal(v.upper, 13.0, 1e-12);
    v = up(d, 20, 4 * S); /* mean 10.5, var 0.75 */
    assert_true(v.anomalous);
    assert_float_equal(v.baseline, 10.5, 1e-12);
    assert_float_equal(v.score, 9.5 / sqrt(0.75), 1e-9);
    assert_float_equal(v.upper, 10.5 + 2 * sqrt(0.75), 1e-9);
    /* the spike was folded in at the band edge: mean 10.5 + 0.5*2*sd */
    double m = 10.5 + sqrt(0.75);
    v = up(d, m, 5 * S);
    assert_float_equal(v.baseline, m, 1e-9);
    assert_float_equal(v.score, 0.0, 1e-6); /* the drift term: (m - L) / sd * 2 / 1e9 */
    assert_float_equal(v.upper - v.baseline, 2 * sqrt(1.125), 1e-9);
    assert_int_equal(te_detect_count(d), 5);
    te_detect_free(d);
}

static void ewma_direction_up_ignores_drops(void **state)
{
    (void)state;
    te_detect_params_t p;
    te_detect_params_default(&p, TE_DETECT_EWMA);
    p.warmup = 5;
    p.direction = TE_DETECT_UP;
    te_detector_t *d = mk(&p);
    for (int i = 0; i < 20; i++)
        up(d, 100 + (i % 2), i * S);
    te_detect_verdict_t v = up(d, 0, 21 * S);
    assert_true(v.ready);
    assert_false(v.anomalous);
    assert_true(v.score < 1); /* only the small upward drift of the mean counts */
    v = up(d, 1000, 22 * S);
    assert_true(v.anomalous);
    te_detect_free(d);
}

static void ewma_drift_of_the_fast_mean_from_the_slow_one(void **state)
{
    (void)state;
    te_detect_params_t p;
    te_detect_params_default(&p, TE_DETECT_EWMA);
    p.alpha = 0.5; /* the slow mean: alpha / 10 = 0.05 */
    p.threshold = 100;
    p.warmup = 2;
    p.drift = 1;
    te_detector_t *d = mk(&p);
    up(d, 10, 1 * S);                         /* m = L = 10 */
    up(d, 12, 2 * S);                         /* m 11, v 1, L 10.1 */
    te_detect_verdict_t v = up(d, 12, 3 * S); /* g = 0.9: score 90 */
    assert_false(v.anomalous);
    assert_float_equal(v.score, 90, 1e-9);
    v = up(d, 12, 4 * S); /* m 11.5, v 0.75, L 10.195: g = 1.305 / sd */
    assert_true(v.anomalous);
    assert_float_equal(v.score, 100 * (11.5 - 10.195) / sqrt(0.75), 1e-9);
    assert_float_equal(v.baseline, 10.195, 1e-12);
    te_detect_free(d);
}

static void median_odd_and_even(void **state)
{
    (void)state;
    double a[] = {4, 1, 3, 2};
    double b[] = {5, 9, 1, 7, 3};
    double c[] = {2, 2, 2, 1, 3, 2};
    assert_float_equal(te_detect_median(a, 4), 2.5, 0);
    assert_float_equal(te_detect_median(b, 5), 5, 0);
    assert_float_equal(te_detect_median(c, 6), 2, 0);
    /* against a sort on random data */
    for (int n = 1; n < 40; n++) {
        double v[40], s[40];
        for (int i = 0; i < n; i++)
            v[i] = s[i] = floor(rng_unit() * 10);
        for (int i = 0; i < n; i++)
            for (int j = i + 1; j < n; j++)
                if (s[j] < s[i]) {
                    double t = s[i];
                    s[i] = s[j];
                    s[j] = t;
                }
        double want = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
        assert_float_equal(te_detect_median(v, (size_t)n), want, 0);
    }
}

static void mad_hand_computed(void **state)
{
    (void)state;
    te_detect_params_t p;
    te_detect_params_default(&p, TE_DETECT_MAD);
    p.window = 5;
    p.threshold = 3.5;
    te_detector_t *d = mk(&p);
    double fill[] = {1, 2, 3, 4, 100};
    for (int i = 0; i < 5; i++)
        assert_false(up(d, fill[i], i * S).ready);
    te_detect_verdict_t v = up(d, 3, 5 * S); /* med 3, MAD 1 */
    assert_true(v.ready);
    assert_false(v.anomalous);
    assert_float_equal(v.baseline, 3, 0);
    assert_float_equal(v.score, 0, 0);
    assert_float_equal(v.upper, 3 + 3.5 * 1.4826, 1e-12);
    v = up(d, 10, 6 * S); /* ring {3,2,3,4,100}: med 3, MAD 1 */
    assert_true(v.anomalous);
    assert_float_equal(v.score, 7 / 1.4826, 1e-12);
    assert_float_equal(v.lower, 3 - 3.5 * 1.4826, 1e-12);
    te_detect_free(d);
}

static void mad_flat_series_uses_floor(void **state)
{
    (void)state;
    te_detect_params_t p;
    te_detect_params_default(&p, TE_DETECT_MAD);
    p.window = 5;
    te_detector_t *d = mk(&p);
    for (int i = 0; i < 5; i++)
        up(d, 5, i * S);
    te_detect_verdict_t v = up(d, 5, 5 * S);
    assert_false(v.anomalous);
    v = up(d, 6, 6 * S); /* sigma = 1e-9 + 5e-3 */
    assert_true(v.anomalous);
    assert_float_equal(v.score, 1 / (1e-9 + 5e-3), 1e-6);
    te_detect_free(d);
}

static void change_hand_computed(void **state)
{
    (void)state;
    te_detect_params_t p;
    te_detect_params_default(&p, TE_DETECT_CHANGE);
    p.pct = 50;
    p.window = 2;
    te_detector_t *d = mk(&p);
    assert_false(up(d, 10, 1 * S).ready);
    assert_false(up(d, 20, 2 * S).ready);
    te_detect_verdict_t v = up(d, 16, 3 * S); /* vs 10: +60% */
    assert_true(v.anomalous);
    assert_float_equal(v.score, 60, 1e-12);
    assert_float_equal(v.baseline, 10, 0);
    assert_float_equal(v.lower, 5, 0);
    assert_float_equal(v.upper, 15, 0);
    v = up(d, 12, 4 * S); /* vs 20: -40% */
    assert_false(v.anomalous);
    assert_float_equal(v.score, 40, 1e-12);
    v = up(d, 0, 5 * S); /* vs 16: -100% */
    assert_true(v.anomalous);
    te_detect_free(d);

    p.direction = TE_DETECT_UP;
    p.window = 1;
    d = mk(&p);
    up(d, 0, 1 * S);
    v = up(d, 1, 2 * S); /* from 0: the denominator is 1e-9 */
    assert_true(v.anomalous);
    assert_float_equal(v.score, 1e11, 1);
    v = up(d, 0.1, 3 * S); /* -90%, but only rises count */
    assert_false(v.anomalous);
    assert_float_equal(v.score, 0, 0);
    te_detect_free(d);
}

static void absent_hand_computed(void **state)
{
    (void)state;
    te_detect_params_t p;
    te_detect_params_default(&p, TE_DETECT_ABSENT);
    p.after_ns = 10 * S;
    te_detector_t *d = mk(&p);
    te_detect_verdict_t v = up(d, 1, 100 * S);
    assert_true(v.ready);
    assert_false(v.anomalous);
    assert_float_equal(v.score, 0, 0);
    v = up(d, 0, 105 * S);
    assert_false(v.anomalous);
    assert_float_equal(v.score, 0.5, 1e-12);
    assert_float_equal(v.baseline, 10, 0);
    te_detect_seen(d, 107 * S);
    v = up(d, 0, 116 * S);
    assert_false(v.anomalous);
    v = up(d, 0, 117 * S);
    assert_true(v.anomalous);
    assert_float_equal(v.score, 1.0, 1e-12);
    v = up(d, 3, 118 * S); /* events again */
    assert_false(v.anomalous);
    te_detect_free(d);
}

static void seasonal_hand_computed(void **state)
{
    (void)state;
    te_detect_params_t p;
    te_detect_params_default(&p, TE_DETECT_SEASONAL);
    p.period_ns = 4 * S;
    p.step_ns = 1 * S;
    p.seasons = 2;
    p.threshold = 3;
    te_detector_t *d = mk(&p);
    double first[] = {10, 20, 30, 40};
    for (int i = 0; i < 4; i++)
        assert_false(up(d, first[i], i * S).ready); /* warm-up: one full period */
    double sigma0 = 1.2533 * 10 / sqrt(2.0);
    te_detect_verdict_t v = up(d, 12, 4 * S); /* slot 0 of period 1 vs 10 */
    assert_true(v.ready);
    assert_false(v.anomalous);
    assert_float_equal(v.baseline, 10, 0);
    assert_float_equal(v.score, 2 / sigma0, 1e-9);
    double sigma1 = sigma0 + 0.02 * (1.2533 * 2 - sigma0);
    v = up(d, 100, 5 * S); /* slot 1 vs 20 */
    assert_true(v.anomalous);
    assert_float_equal(v.baseline, 20, 0);
    assert_float_equal(v.score, 80 / sigma1, 1e-9);
    assert_float_equal(v.upper, 20 + 3 * sigma1, 1e-9);
    up(d, 31, 6 * S);
    up(d, 41, 7 * S);
    /* period 2, slot 1: median of 20 (period 0) and 100 (period 1) */
    v = up(d, 60, 9 * S);
    assert_float_equal(v.baseline, 60, 0);
    assert_float_equal(v.score, 0, 0);
    /* a slot skipped for a whole period has no baseline: no verdict */
    te_detect_free(d);
}

static void params_check_names_the_problem(void **state)
{
    (void)state;
    te_err_t err = {0};
    te_detect_params_t p;
    te_detect_params_default(&p, TE_DETECT_SEASONAL);
    p.step_ns = 60 * S;
    assert_int_equal(te_detect_params_check(&p, &err), TE_EINVAL);
    assert_string_equal(err.msg, "seasonal: period is required (\"1d\" or \"1w\")");
    p.period_ns = 86400 * S;
    p.step_ns = 7 * S;
    assert_int_equal(te_detect_params_check(&p, &err), TE_EINVAL);
    assert_string_equal(err.msg, "seasonal: period must be a multiple of every");
    te_detect_params_default(&p, TE_DETECT_EWMA);
    p.alpha = 1.5;
    assert_int_equal(te_detect_params_check(&p, &err), TE_EINVAL);
    assert_string_equal(err.msg, "ewma_zscore: alpha must be in (0, 1], got 1.5");
    te_detect_params_default(&p, TE_DETECT_ABSENT);
    assert_int_equal(te_detect_params_check(&p, &err), TE_EINVAL);
    te_detect_params_default(&p, TE_DETECT_MAD);
    p.window = 2;
    assert_int_equal(te_detect_params_check(&p, &err), TE_EINVAL);
    te_detect_kind_t k;
    assert_int_equal(te_detect_kind_parse("mad", &k), 0);
    assert_int_equal(k, TE_DETECT_MAD);
    assert_int_equal(te_detect_kind_parse("nope", &k), TE_EINVAL);
    assert_string_equal(te_detect_kind_name(TE_DETECT_MULTIVARIATE), "multivariate");
}

static void update_rejects_nan(void **state)
{
    (void)state;
    te_detect_params_t p;
    te_detect_params_default(&p, TE_DETECT_EWMA);
    te_detector_t *d = mk(&p);
    te_detect_verdict_t v;
    assert_int_equal(te_detect_update(d, NAN, 0, &v), TE_EINVAL);
    assert_int_equal(te_detect_update(d, INFINITY, 0, &v), TE_EINVAL);
    assert_false(v.ready);
    assert_int_equal(te_detect_count(d), 0);
    te_detect_free(d);
}

static void multivariate_warms_up_then_flags_a_spike(void **state)
{
    (void)state;
    te_detect_params_t p;
    te_detect_params_default(&p, TE_DETECT_MULTIVARIATE);
    p.train_window = 60;
    p.train_every = 30;
    p.smooth = 3;
    te_detector_t *d = mk(&p);
    int i = 0, first_ready = -1, flagged = 0;
    for (; i < 300; i++) {
        double x = 50 + 5 * sin(i / 10.0) + rng_normal();
        te_detect_verdict_t v = up(d, x, i * S);
        if (v.ready && first_ready < 0)
            first_ready = i;
        flagged += v.anomalous;
    }
    /* smooth 3 + one diff + lag 2 + 60 training vectors */
    assert_int_equal(first_ready, 3 + 2 + 60);
    assert_true(flagged < 10);
    te_detect_verdict_t v = up(d, 120, i++ * S);
    v = up(d, 120, i++ * S);
    assert_true(v.anomalous);
    assert_true(v.score > p.threshold);
    assert_true(te_detect_anomaly_rate(d) > 0);
    te_detect_free(d);
}

/* Feeds a and b the same values and compares verdicts bit for bit. */
static void same_future(te_detector_t *a, te_detector_t *b, int64_t t0, int n)
{
    for (int i = 0; i < n; i++) {
        double x = 100 + 10 * rng_normal() + (i % 17 == 0 ? 80 : 0);
        int64_t t = t0 + i * 60 * S;
        te_detect_verdict_t va = up(a, x, t), vb = up(b, x, t);
        assert_int_equal(va.ready, vb.ready);
        assert_int_equal(va.anomalous, vb.anomalous);
        assert_memory_equal(&va.score, &vb.score, sizeof(double));
        assert_memory_equal(&va.baseline, &vb.baseline, sizeof(double));
    }
}

static void blob_round_trip_every_method(void **state)
{
    (void)state;
    for (int k = 0; k < TE_DETECT_NKINDS; k++) {
        te_detect_params_t p;
        te_detect_params_default(&p, (te_detect_kind_t)k);
        p.period_ns = 3600 * S;
        p.step_ns = 60 * S;
        p.after_ns = 300 * S;
        p.train_window = 40;
        p.train_every = 20;
        te_detector_t *a = mk(&p);
        int64_t t = 0;
        for (int i = 0; i < 150; i++, t += 60 * S)
            up(a, 100 + 10 * rng_normal(), t);
        unsigned char *blob = NULL;
        size_t len = 0;
        assert_int_equal(te_detect_save(a, &blob, &len), 0);
        te_err_t err = {0};
        te_detector_t *b = te_detect_load(&p, blob, len, &err);
        if (!b)
            fail_msg("%s: %s", te_detect_kind_name(p.kind), err.msg);
        assert_int_equal(te_detect_count(b), 150);
        same_future(a, b, t, 200);
        /* truncated, and made for other parameters */
        assert_null(te_detect_load(&p, blob, len - 1, &err));
        assert_int_equal(err.code, TE_EINVAL);
        te_detect_params_t q = p;
        q.threshold += 1;
        assert_null(te_detect_load(&q, blob, len, &err));
        te_detect_params_t other;
        te_detect_params_default(&other, (te_detect_kind_t)((k + 1) % TE_DETECT_NKINDS));
        other.period_ns = p.period_ns;
        other.step_ns = p.step_ns;
        other.after_ns = p.after_ns;
        assert_null(te_detect_load(&other, blob, len, &err));
        free(blob);
        te_detect_free(a);
        te_detect_free(b);
    }
}

static void params_equal_and_hash_follow_every_field(void **state)
{
    (void)state;
    te_detect_params_t a, b;
    te_detect_params_default(&a, TE_DETECT_MAD);
    b = a;
    assert_true(te_detect_params_equal(&a, &b));
    assert_true(te_detect_params_hash(&a) == te_detect_params_hash(&b));
    b.window = 61;
    assert_false(te_detect_params_equal(&a, &b));
    assert_true(te_detect_params_hash(&a) != te_detect_params_hash(&b));
}


/* ---- detectors in a ruleset (rules/eval_detect.c) ---- */

#define T0 (INT64_C(1800000000) * S)
#define AT(sec) (T0 + (int64_t)(sec) * S)

typedef struct fix {
    char dir[64];
    char paths[4][128];
    int npaths;
    te_script_t *s[4];
    te_ruleset_t *rs;
    int fired, resolved;
    char labels[256];
    double value;
} fix;

static void on_alert(void *ud, const te_alert_t *a, te_alert_transition_t t)
{
    fix *f = ud;
    if (t == TE_ALERT_T_FIRING) {
        f->fired++;
        f->value = a->value;
        size_t n = 0;
        f->labels[0] = '\0';
        for (size_t i = 0; i < a->nlabels; i++)
            n += (size_t)snprintf(f->labels + n, sizeof(f->labels) - n, "%s=%s ",
                                  a->label_keys[i], a->label_values[i]);
    }
    if (t == TE_ALERT_T_RESOLVED)
        f->resolved++;
}

static int setup(void **state)
{
    fix *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/te_detect_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    te_ruleset_opts_t o = {.id_seed = 7, .on_alert = on_alert, .alert_ud = f};
    f->rs = te_ruleset_new(&o, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fix *f = *state;
    te_ruleset_free(f->rs);
    for (int i = 0; i < 4; i++)
        te_script_free(f->s[i]);
    for (int i = 0; i < f->npaths; i++)
        unlink(f->paths[i]);
    rmdir(f->dir);
    free(f);
    return 0;
}

static te_script_t *load(fix *f, int slot, const char *src)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/d%d.lua", f->dir, slot);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(src, fp);
    fclose(fp);
    snprintf(f->paths[f->npaths++], 128, "%s", path);
    te_err_t err;
    te_script_t *s = NULL;
    if (te_script_load(path, NULL, NULL, &s, &err))
        fail_msg("load: %s", err.msg);
    f->s[slot] = s;
    return s;
}

static void feed(fix *f, int64_t at, double ms)
{
    char json[160];
    snprintf(json, sizeof(json), "{\"kind\":\"req\",\"tags\":{\"svc\":\"a\"},"
             "\"fields\":{\"ms\":%g}}", ms);
    te_event_t *ev = NULL;
    te_err_t err;
    te_event_opts_t o = {NULL, NULL, at};
    if (te_event_parse(json, strlen(json), &o, &ev, &err))
        fail_msg("event: %s", err.msg);
    te_ruleset_feed(f->rs, ev, at);
    te_event_free(ev);
}

/* One event per 10 s evaluation at value ms, from second `from`, n times. */
static void steady(fix *f, int from, int n, double ms)
{
    for (int i = 0; i < n; i++) {
        feed(f, AT(from + 10 * i + 5), ms);
        te_ruleset_tick(f->rs, AT(from + 10 * i + 10));
    }
}

#define MAD_DETECTOR(thr)                                                                  \
    "local te = require 'te'\n"                                                            \
    "te.detector { name = 'lat', kind = 'req', group_by = { 'svc' }, field = 'ms',\n"       \
    "  stat = 'max', window = '10s', every = '10s',\n"                                     \
    "  method = te.methods.mad { window = 5, threshold = " thr " } }\n"

#define LUA_DETECTOR(extra)                                                                \
    "local te = require 'te'\n"                                                            \
    "te.detector { name = 'lua', kind = 'req', group_by = { 'svc' }, field = 'ms',\n"       \
    "  stat = 'max', window = '10s', every = '10s',\n"                                     \
    "  method = function(v, st, t) st.n = (st.n or 0) + 1; st.tags = { last = v }\n"        \
    "    return st.n == 6, st.n, 0 end }\n" extra

static void detector_fires_with_method_labels(void **state)
{
    fix *f = *state;
    assert_int_equal(te_ruleset_add(f->rs, load(f, 0, MAD_DETECTOR("5")), AT(0), NULL), 0);
    steady(f, 0, 6, 100);
    assert_int_equal(f->fired, 0);
    steady(f, 60, 1, 1000);
    assert_int_equal(f->fired, 1);
    assert_float_equal(f->value, 1000, 0);
    assert_string_equal(f->labels, "method=mad score=9000 baseline=100 ");
    steady(f, 70, 1, 100);
    assert_int_equal(f->resolved, 1);
    te_rule_status_t st[2];
    assert_int_equal(te_ruleset_status(f->rs, NULL, st, 2), 1);
    assert_string_equal(st[0].type, "detector");
}

static void reload_keeps_unchanged_detector_state_and_resets_changed(void **state)
{
    fix *f = *state;
    te_err_t err;
    te_script_t *a = load(f, 0, MAD_DETECTOR("5") LUA_DETECTOR(""));
    assert_int_equal(te_ruleset_add(f->rs, a, AT(0), NULL), 0);
    steady(f, 0, 5, 100); /* the Lua method has counted 5 */
    /* unchanged: the mad baseline and the Lua table carry over */
    te_script_t *b = load(f, 1, MAD_DETECTOR("5") LUA_DETECTOR("-- edited\n"));
    assert_int_equal(te_ruleset_replace(f->rs, a, b, AT(50), &err), 0);
    steady(f, 50, 1, 1000); /* mad: a spike judged at once; lua: n == 6 */
    assert_int_equal(f->fired, 2);
    /* changed threshold: the mad state starts again (warm-up) */
    te_script_t *c = load(f, 2, MAD_DETECTOR("6") LUA_DETECTOR("-- again\n"));
    assert_int_equal(te_ruleset_replace(f->rs, b, c, AT(60), &err), 0);
    f->fired = 0;
    steady(f, 60, 1, 5000);
    assert_int_equal(f->fired, 0);
}

typedef struct saved {
    char rule[16];
    char key[16];
    size_t keylen;
    uint64_t sig;
    unsigned char blob[4096];
    size_t len;
} saved_t;

static int keep(void *ud, const te_detect_state_t *st)
{
    saved_t *v = ud;
    while (v->rule[0])
        v++;
    assert_true(st->bloblen <= sizeof(v->blob));
    snprintf(v->rule, sizeof(v->rule), "%s", st->rule);
    memcpy(v->key, st->key, st->keylen);
    v->keylen = st->keylen;
    v->sig = st->sig;
    memcpy(v->blob, st->blob, st->bloblen);
    v->len = st->bloblen;
    return 0;
}

static void snapshot_restore_brings_state_back(void **state)
{
    fix *f = *state;
    te_err_t err;
    assert_int_equal(te_ruleset_add(f->rs, load(f, 0, MAD_DETECTOR("5") LUA_DETECTOR("")),
                                    AT(0), NULL), 0);
    steady(f, 0, 5, 100);
    saved_t saved[4];
    memset(saved, 0, sizeof(saved));
    assert_int_equal(te_ruleset_detect_snapshot(f->rs, keep, saved), 0);
    assert_string_equal(saved[0].rule, "lat");
    assert_int_equal(saved[0].keylen, 2); /* "a\0" */
    assert_string_equal(saved[1].rule, "lua");

    /* a fresh ruleset, as after a restart */
    te_ruleset_free(f->rs);
    te_ruleset_opts_t o = {.id_seed = 7, .on_alert = on_alert, .alert_ud = f};
    f->rs = te_ruleset_new(&o, NULL);
    te_script_free(f->s[0]);
    f->s[0] = NULL;
    assert_int_equal(te_ruleset_add(f->rs, load(f, 1, MAD_DETECTOR("5") LUA_DETECTOR("")),
                                    AT(60), NULL), 0);
    for (int i = 0; i < 2; i++) {
        te_detect_state_t st = {saved[i].rule, saved[i].key, saved[i].keylen, saved[i].sig, 0,
                                saved[i].blob, saved[i].len};
        assert_int_equal(te_ruleset_detect_restore(f->rs, &st, AT(60), &err), 0);
    }
    te_detect_state_t stale = {"lat", saved[0].key, saved[0].keylen, saved[0].sig + 1, 0,
                               saved[0].blob, saved[0].len};
    assert_int_equal(te_ruleset_detect_restore(f->rs, &stale, AT(60), &err), TE_ENOTFOUND);
    steady(f, 60, 1, 1000);
    assert_int_equal(f->fired, 2); /* both judged with their old state */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ewma_hand_computed),
        cmocka_unit_test(ewma_direction_up_ignores_drops),
        cmocka_unit_test(ewma_drift_of_the_fast_mean_from_the_slow_one),
        cmocka_unit_test(median_odd_and_even),
        cmocka_unit_test(mad_hand_computed),
        cmocka_unit_test(mad_flat_series_uses_floor),
        cmocka_unit_test(change_hand_computed),
        cmocka_unit_test(absent_hand_computed),
        cmocka_unit_test(seasonal_hand_computed),
        cmocka_unit_test(params_check_names_the_problem),
        cmocka_unit_test(update_rejects_nan),
        cmocka_unit_test(multivariate_warms_up_then_flags_a_spike),
        cmocka_unit_test(blob_round_trip_every_method),
        cmocka_unit_test(params_equal_and_hash_follow_every_field),
        cmocka_unit_test_setup_teardown(detector_fires_with_method_labels, setup, teardown),
        cmocka_unit_test_setup_teardown(reload_keeps_unchanged_detector_state_and_resets_changed,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(snapshot_restore_brings_state_back, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
