/*
 * bench_detect.c - the anomaly detectors measured on labelled data
 * generated here (issue 6): precision, recall and detection delay per
 * method and anomaly type, false alarms per series per week on clean data,
 * and ns per update. Prints a table; asserts nothing (bench/run.sh).
 *
 * The data set (fixed seed, so every run prints the same quality figures):
 * each method runs on the domain its shipped detector watches, at that
 * detector's `every`:
 *   ewma_zscore   LLM p95 latency, 1 min: 800 ms, +-10% daily wave, 5% noise
 *   mad           selector confidence, 1 min: 0.92 +- 0.01
 *   seasonal      LLM cost per workflow per hour: $2 x (1 + 0.6 sin(day)), 8% noise
 *   change        step duration (30 min means): 20 s +- 1 s
 *   multivariate  host CPU, 1 min: 40% + 10% daily wave + AR(1) noise (sd 3)
 *   absent        a heartbeat source, 1 min
 * Each labelled series has a clean warm-up (2 days at 1 min; 192 points at
 * 30 min and 1 h) and then one injected anomaly of known start and end, in
 * units of the domain's noise sigma:
 *   spike     +8 sigma for 1 point
 *   shift     +5 sigma (scored over 2 h at 1 min, 12 points otherwise)
 *   drift     a ramp to +8 sigma over 4 h (1 min) or 24 points, held a quarter more
 *   seasonal  (cost only) the daily wave is gone for one day
 *   dropout   the value falls to 0 for 30 min (1 min) or 4 points (absent: no events)
 * Shifts and drifts stay to the end of the series (their end is only the
 * scoring horizon). A detection is an anomalous verdict in [start, end + 5
 * points]; precision
 * counts alert episodes (rising edges) inside that span over all episodes
 * after warm-up; delay is first detection - start. Clean series run one
 * week after warm-up and count episodes.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "detect/detect.h"

#define S INT64_C(1000000000)
#define MIN (60 * S)
#define NSERIES 100
#define NCLEAN 20
#define GRACE 5

enum { A_SPIKE, A_SHIFT, A_DRIFT, A_SEASON, A_DROPOUT, A_N };
static const char *const anames[A_N] = {"spike", "shift", "drift", "season", "dropout"};

enum { D_LATENCY, D_CONF, D_COST, D_STEP, D_CPU, D_HEART };

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static double unit(void)
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (double)((z ^ (z >> 31)) >> 11) / 9007199254740992.0;
}

static double normal(void)
{
    double u = unit() + 1e-12, v = unit();
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

typedef struct {
    const char *method;
    int domain;
    int64_t step_ns;
    int warm;        /* points of clean warm-up */
    unsigned types;  /* anomaly types that apply */
    te_detect_params_t p;
} mcase_t;

/* Noise sigma of a domain (anomaly magnitudes are in these units). */
static double sigma_of(int domain)
{
    switch (domain) {
    case D_LATENCY: return 40;
    case D_CONF: return 0.01;
    case D_COST: return 0.16;
    case D_STEP: return 1.0;
    case D_CPU: return 3.0 / sqrt(1 - 0.64);
    default: return 1;
    }
}

/* The clean value of domain at point i (t = i * step); ar is AR(1) state. */
static double clean(int domain, int64_t t, double *ar)
{
    double day = 2 * 3.141592653589793 * (double)(t % (86400 * S)) / (double)(86400 * S);
    switch (domain) {
    case D_LATENCY: return 800 * (1 + 0.1 * sin(day)) + 40 * normal();
    case D_CONF: {
        double v = 0.92 + 0.01 * normal();
        return v > 1 ? 1 : v;
    }
    case D_COST: return 2.0 * (1 + 0.6 * sin(day)) + 0.16 * normal();
    case D_STEP: return 20 + normal();
    case D_CPU:
        *ar = 0.8 * *ar + 3 * normal();
        return 40 + 10 * sin(day) + *ar;
    default: return 30 + 5 * normal(); /* heartbeat: events per minute */
    }
}

/* Anomaly value of type a at k points after its start; *len: its span in
 * points (1-minute domains: shift 2 h, drift 4 h + 1 h held, dropout 30
 * min; coarser domains: shift 12 points, drift 24 + 6, dropout 4). */
static double inject(int a, int domain, int64_t step_ns, int k, int64_t t, double v, int *len)
{
    double sg = sigma_of(domain);
    bool fine = step_ns <= MIN;
    int ramp = fine ? 240 : 24;
    switch (a) {
    case A_SPIKE:
        *len = 1;
        return v + 8 * sg;
    case A_SHIFT:
        *len = fine ? 120 : 12;
        return v + 5 * sg;
    case A_DRIFT:
        *len = ramp + ramp / 4;
        return v + 8 * sg * (k < ramp ? (double)k / ramp : 1.0);
    case A_SEASON: {
        *len = 24;
        double day = 2 * 3.141592653589793 * (double)(t % (86400 * S)) / (double)(86400 * S);
        return v - 2.0 * 0.6 * sin(day); /* the wave is gone for a day */
    }
    default:
        *len = fine ? 30 : 4;
        return 0;
    }
}

typedef struct {
    long series, detected, episodes, true_episodes;
    double delay_sum;
} score_t;

/* Runs one series; returns the number of episodes after warm-up, and for
 * a labelled one whether/when it was detected. */
static void run_series(const mcase_t *mc, int a, int total, score_t *sc)
{
    te_detector_t *d = te_detect_new(&mc->p, NULL);
    if (!d) {
        fprintf(stderr, "bench_detect: cannot make %s\n", mc->method);
        exit(1);
    }
    double ar = 0;
    int start = a < 0 ? -1 : mc->warm + (int)(unit() * 200);
    int len = 1;
    bool prev = false, found = false;
    int64_t t0 = (int64_t)(unit() * 86400) * S / mc->step_ns * mc->step_ns;
    for (int i = 0; i < total; i++) {
        int64_t t = t0 + (int64_t)i * mc->step_ns;
        double v = clean(mc->domain, t, &ar);
        bool in = start >= 0 && i >= start && i < start + len;
        if (start >= 0 && i >= start) {
            int l2 = 1;
            inject(a, mc->domain, mc->step_ns, 0, t, v, &l2);
            len = l2;
            in = i < start + len;
            /* a shift or a drift stays: its end is only the scoring
             * horizon, so a return to normal cannot count as a detection */
            if (in || a == A_SHIFT || a == A_DRIFT)
                v = inject(a, mc->domain, mc->step_ns, i - start, t, v, &l2);
        }
        te_detect_verdict_t vd;
        if (mc->domain == D_HEART) {
            if (!in)
                te_detect_seen(d, t - mc->step_ns / 2);
            te_detect_update(d, 0, t, &vd);
        } else {
            te_detect_update(d, v, t, &vd);
        }
        bool an = vd.ready && vd.anomalous;
        /* a labelled series is scored up to its horizon: a shift or a
         * drift that stays may alert again later, rightly */
        bool scored = start < 0 || i <= start + len + GRACE;
        if (i >= mc->warm && scored && an && !prev) {
            sc->episodes++;
            if (start >= 0 && i >= start && i <= start + len + GRACE)
                sc->true_episodes++;
        }
        if (start >= 0 && an && !found && i >= start && i <= start + len + GRACE) {
            found = true;
            sc->detected++;
            sc->delay_sum += (double)(i - start) * (double)mc->step_ns / (double)MIN;
        }
        prev = an;
    }
    sc->series++;
    te_detect_free(d);
}

static double ns_per_update(const mcase_t *mc)
{
    te_detector_t *d = te_detect_new(&mc->p, NULL);
    double ar = 0;
    int n = 200000;
    double *v = malloc((size_t)n * sizeof(double));
    for (int i = 0; i < n; i++)
        v[i] = clean(mc->domain, (int64_t)i * mc->step_ns, &ar);
    struct timespec a, b;
    te_detect_verdict_t vd;
    long hits = 0;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < n; i++) {
        if (mc->domain == D_HEART)
            te_detect_seen(d, (int64_t)i * mc->step_ns);
        te_detect_update(d, v[i], (int64_t)i * mc->step_ns, &vd);
        hits += vd.anomalous;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    free(v);
    te_detect_free(d);
    double ns = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
    return hits >= 0 ? ns / n : 0;
}

int main(void)
{
    mcase_t cases[6];
    memset(cases, 0, sizeof(cases));
    unsigned common = 1u << A_SPIKE | 1u << A_SHIFT | 1u << A_DRIFT | 1u << A_DROPOUT;
    cases[0] = (mcase_t){"ewma_zscore", D_LATENCY, MIN, 2880, common, {0}};
    te_detect_params_default(&cases[0].p, TE_DETECT_EWMA);
    cases[1] = (mcase_t){"mad", D_CONF, MIN, 2880, common, {0}};
    te_detect_params_default(&cases[1].p, TE_DETECT_MAD);
    cases[2] = (mcase_t){"seasonal", D_COST, 60 * MIN, 192, common | 1u << A_SEASON, {0}};
    te_detect_params_default(&cases[2].p, TE_DETECT_SEASONAL);
    cases[2].p.period_ns = 86400 * S;
    cases[2].p.step_ns = 60 * MIN;
    cases[3] = (mcase_t){"change", D_STEP, 30 * MIN, 192, common, {0}};
    te_detect_params_default(&cases[3].p, TE_DETECT_CHANGE);
    cases[3].p.pct = 25;
    cases[3].p.window = 4;
    cases[4] = (mcase_t){"multivariate", D_CPU, MIN, 2880, common, {0}};
    te_detect_params_default(&cases[4].p, TE_DETECT_MULTIVARIATE);
    cases[5] = (mcase_t){"absent", D_HEART, MIN, 60, 1u << A_DROPOUT, {0}};
    te_detect_params_default(&cases[5].p, TE_DETECT_ABSENT);
    cases[5].p.after_ns = 5 * MIN;

    printf("%-13s %-8s %7s %9s %7s %11s\n", "method", "anomaly", "recall", "precision",
           "delay", "fa/ser/week");
    for (int c = 0; c < 6; c++) {
        const mcase_t *mc = &cases[c];
        int week = (int)(7 * 86400 * S / mc->step_ns);
        score_t clean_sc = {0};
        for (int k = 0; k < NCLEAN; k++)
            run_series(mc, -1, mc->warm + week, &clean_sc);
        double fa = (double)clean_sc.episodes / NCLEAN;
        for (int a = 0; a < A_N; a++) {
            if (!(mc->types & (1u << a)))
                continue;
            score_t sc = {0};
            for (int k = 0; k < NSERIES; k++)
                run_series(mc, a, mc->warm + 600, &sc);
            double recall = (double)sc.detected / (double)sc.series;
            double prec = sc.episodes ? (double)sc.true_episodes / (double)sc.episodes : 1.0;
            char delay[32];
            if (sc.detected)
                snprintf(delay, sizeof(delay), "%.0fm", sc.delay_sum / (double)sc.detected);
            else
                snprintf(delay, sizeof(delay), "-");
            printf("%-13s %-8s %7.2f %9.2f %7s %11.2f\n", mc->method, anames[a], recall, prec,
                   delay, fa);
        }
    }
    printf("\nparameters: ewma_zscore, mad, seasonal{1d}, multivariate: defaults; "
           "change{pct=25, window=4}; absent{after=5m}\n");
    printf("\n%-13s %12s\n", "method", "ns/update");
    for (int c = 0; c < 6; c++)
        printf("%-13s %12.0f\n", cases[c].method, ns_per_update(&cases[c]));
    return 0;
}
