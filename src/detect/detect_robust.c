/*
 * detect_robust.c - the median-based methods: mad and seasonal (see
 * detect.h for their arithmetic).
 *
 * THREAD: any (one owner).
 *
 * Medians come from quickselect on a scratch copy (O(window) per update,
 * no allocation): a 60-value window costs well under a microsecond.
 */
#include "detect/detect_int.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#define MAD_SCALE 1.4826   /* sigma of a normal from its MAD */
#define MEANABS_SCALE 1.2533 /* sigma of a normal from its mean absolute deviation */
#define SEASONAL_ALPHA 0.02

static void swap(double *v, ptrdiff_t a, ptrdiff_t b)
{
    double t = v[a];
    v[a] = v[b];
    v[b] = t;
}

/* k-th smallest of v[0..n) (quickselect, median-of-three pivot, Hoare
 * partition): afterwards v[0..k) <= v[k] <= v[k+1..n). */
static double select_k(double *v, size_t n, size_t k)
{
    ptrdiff_t lo = 0, hi = (ptrdiff_t)n - 1, kk = (ptrdiff_t)k;
    while (hi > lo) {
        ptrdiff_t mid = lo + (hi - lo) / 2;
        if (v[mid] < v[lo])
            swap(v, mid, lo);
        if (v[hi] < v[lo])
            swap(v, hi, lo);
        if (v[hi] < v[mid])
            swap(v, hi, mid);
        double x = v[mid];
        ptrdiff_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] < x)
                i++;
            while (x < v[j])
                j--;
            if (i <= j) {
                swap(v, i, j);
                i++;
                j--;
            }
        }
        if (kk <= j)
            hi = j;
        else if (kk >= i)
            lo = i;
        else
            break; /* j < k < i: v[k] == x */
    }
    return v[kk];
}

double te_detect_median(double *v, size_t n)
{
    double hi = select_k(v, n, n / 2);
    if (n % 2)
        return hi;
    double lo = v[0]; /* after the select, v[0..n/2) are <= hi: take their max */
    for (size_t i = 1; i < n / 2; i++)
        if (v[i] > lo)
            lo = v[i];
    return (lo + hi) / 2;
}

static double sd_floor(double m)
{
    return 1e-9 + 1e-3 * fabs(m);
}

/* Index of the first element of s[0..n) that is >= x. */
static size_t lower_bound(const double *s, size_t n, double x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void te_detect_mad_rebuild(te_detector_t *d)
{
    double *sorted = d->scratch;
    for (uint32_t i = 0; i < d->len; i++) { /* insertion sort: load time only */
        double x = d->ring[i];
        size_t at = lower_bound(sorted, i, x);
        memmove(sorted + at + 1, sorted + at, (i - at) * sizeof(double));
        sorted[at] = x;
    }
}

/* The k-th smallest |s[i] - med| of the sorted s[0..n), merging the two
 * runs that grow away from med (left of p going down, from p going up). */
static double kth_deviation(const double *s, size_t n, double med, size_t p, size_t k)
{
    ptrdiff_t i = (ptrdiff_t)p - 1;
    size_t j = p;
    double dev = 0;
    for (size_t c = 0; c <= k; c++) {
        double dl = i >= 0 ? med - s[i] : INFINITY;
        double dr = j < n ? s[j] - med : INFINITY;
        if (dl <= dr) {
            dev = dl;
            i--;
        } else {
            dev = dr;
            j++;
        }
    }
    return dev;
}

/* The sliding window is kept twice: in arrival order (ring, to know the
 * oldest) and sorted (scratch), updated by one binary search and one
 * memmove each for the value leaving and the one entering. Then the
 * median is an index and the MAD a merge of n/2 steps: no selection, no
 * unpredictable branches over the whole window. */
void te_detect_mad_update(te_detector_t *d, double x, te_detect_verdict_t *out)
{
    const te_detect_params_t *p = &d->p;
    uint32_t need = p->window / 2 > 5 ? p->window / 2 : 5;
    if (need > p->window)
        need = p->window;
    double *sorted = d->scratch;
    size_t n = d->len;
    if (n >= need) {
        double med = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
        size_t at = lower_bound(sorted, n, med);
        double mad = kth_deviation(sorted, n, med, at, n / 2);
        if (n % 2 == 0)
            mad = (mad + kth_deviation(sorted, n, med, at, n / 2 - 1)) / 2;
        double sigma = MAD_SCALE * mad;
        if (sigma <= 0) {
            double sumabs = 0;
            for (size_t i = 0; i < n; i++)
                sumabs += fabs(sorted[i] - med);
            sigma = MEANABS_SCALE * sumabs / (double)n;
        }
        if (sigma < sd_floor(med))
            sigma = sd_floor(med);
        if (d->n == need)
            d->slow = med;
        double z = (x - med) / sigma;
        double zs = te_detect_directed(p->direction, z);
        double gs = te_detect_directed(p->direction, (med - d->slow) / sigma) * p->threshold /
                    p->drift;
        double base = gs > zs && gs > p->threshold ? d->slow : med;
        out->ready = true;
        out->score = zs > gs ? zs : gs;
        out->anomalous = out->score > p->threshold;
        out->baseline = base;
        out->lower = base - p->threshold * sigma;
        out->upper = base + p->threshold * sigma;
        d->slow += 0.2 / (double)p->window * (med - d->slow); /* the long-run level */
    }
    if (d->len == d->cap) { /* the oldest leaves the sorted copy */
        size_t at = lower_bound(sorted, n, d->ring[d->head]);
        memmove(sorted + at, sorted + at + 1, (n - at - 1) * sizeof(double));
        n--;
    }
    size_t at = lower_bound(sorted, n, x);
    memmove(sorted + at + 1, sorted + at, (n - at) * sizeof(double));
    sorted[at] = x;
    d->ring[d->head] = x;
    d->head = (d->head + 1) % d->cap;
    if (d->len < d->cap)
        d->len++;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

void te_detect_seasonal_update(te_detector_t *d, double x, int64_t t_ns, te_detect_verdict_t *out)
{
    const te_detect_params_t *p = &d->p;
    int64_t period = floor_div(t_ns, p->period_ns);
    uint32_t slot = (uint32_t)(floor_div(t_ns, p->step_ns) % (int64_t)d->nslots);
    if (d->n == 0)
        d->first_ns = t_ns;
    bool warm = t_ns - d->first_ns >= p->period_ns;
    if (!warm) { /* the noise scale's first guess: successive differences */
        if (d->n > 0) {
            d->dsum += fabs(x - d->prev);
            d->dn++;
        }
        d->prev = x;
    } else if (d->sigma <= 0) {
        d->sigma = d->dn ? MEANABS_SCALE * (d->dsum / (double)d->dn) / sqrt(2.0) : 0;
    }
    /* the same slot in up to `seasons` previous periods */
    double prevs[TE_DETECT_MAX_SEASONS];
    size_t np = 0;
    for (uint32_t s = 0; s < p->seasons; s++) {
        size_t c = (size_t)s * d->nslots + slot;
        int64_t cp = d->cell_period[c];
        if (cp != INT64_MIN && cp < period && cp >= period - (int64_t)p->seasons)
            prevs[np++] = d->cells[c];
    }
    if (warm && np > 0) {
        double base = te_detect_median(prevs, np);
        double sigma = d->sigma;
        if (sigma < sd_floor(base))
            sigma = sd_floor(base);
        double r = x - base;
        double z = r / sigma;
        out->ready = true;
        out->score = te_detect_directed(p->direction, z);
        out->anomalous = out->score > p->threshold;
        out->baseline = base;
        out->lower = base - p->threshold * sigma;
        out->upper = base + p->threshold * sigma;
        if (fabs(z) <= 3.0) /* the scale follows ordinary residuals only */
            d->sigma += SEASONAL_ALPHA * (MEANABS_SCALE * fabs(r) - d->sigma);
    }
    size_t row = (size_t)(((period % (int64_t)p->seasons) + (int64_t)p->seasons) %
                          (int64_t)p->seasons);
    size_t c = row * d->nslots + slot;
    d->cells[c] = x;
    d->cell_period[c] = period;
}
