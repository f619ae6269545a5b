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

/* k-th smallest of v[0..n) (Wirth's selection): afterwards v[0..k) <=
 * v[k] <= v[k+1..n). */
static double select_k(double *v, size_t n, size_t k)
{
    ptrdiff_t l = 0, m = (ptrdiff_t)n - 1, kk = (ptrdiff_t)k;
    while (l < m) {
        double x = v[kk];
        ptrdiff_t i = l, j = m;
        do {
            while (v[i] < x)
                i++;
            while (x < v[j])
                j--;
            if (i <= j) {
                double t = v[i];
                v[i] = v[j];
                v[j] = t;
                i++;
                j--;
            }
        } while (i <= j);
        if (j < kk)
            l = i;
        if (kk < i)
            m = j;
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

void te_detect_mad_update(te_detector_t *d, double x, te_detect_verdict_t *out)
{
    const te_detect_params_t *p = &d->p;
    uint32_t need = p->window / 2 > 5 ? p->window / 2 : 5;
    if (need > p->window)
        need = p->window;
    if (d->len >= need) {
        size_t n = d->len;
        double *a = d->scratch, *b = d->scratch + d->cap;
        memcpy(a, d->ring, n * sizeof(double));
        double med = te_detect_median(a, n);
        double sumabs = 0;
        for (size_t i = 0; i < n; i++) {
            b[i] = fabs(d->ring[i] - med);
            sumabs += b[i];
        }
        double sigma = MAD_SCALE * te_detect_median(b, n);
        if (sigma <= 0)
            sigma = MEANABS_SCALE * sumabs / (double)n;
        if (sigma < sd_floor(med))
            sigma = sd_floor(med);
        double z = (x - med) / sigma;
        out->ready = true;
        out->score = te_detect_directed(p->direction, z);
        out->anomalous = out->score > p->threshold;
        out->baseline = med;
        out->lower = med - p->threshold * sigma;
        out->upper = med + p->threshold * sigma;
    }
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
        if (fabs(z) <= p->threshold) /* the scale follows normal residuals only */
            d->sigma += SEASONAL_ALPHA * (MEANABS_SCALE * fabs(r) - d->sigma);
    }
    size_t row = (size_t)(((period % (int64_t)p->seasons) + (int64_t)p->seasons) %
                          (int64_t)p->seasons);
    size_t c = row * d->nslots + slot;
    d->cells[c] = x;
    d->cell_period[c] = period;
}
