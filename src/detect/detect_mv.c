/*
 * detect_mv.c - the multivariate method: k-means over feature vectors with
 * a consensus of rolling models, in the spirit of Netdata's ML (see
 * detect.h for the arithmetic).
 *
 * THREAD: any (one owner).
 *
 * A model is stored flat as doubles: mean[dim], std[dim] (standardisation
 * of its training set), centroids[k * dim], radius. Training is the only
 * expensive step (train_window * k * dim * rounds flops, about 20 us for
 * the defaults) and runs once per train_every updates, so the amortised
 * cost per update stays well under a microsecond. The scratch it needs is
 * allocated with the detector: updates never allocate.
 */
#include "detect/detect_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MV_RATE_ALPHA 0.05
#define MV_MAX_ROUNDS 20
#define MV_MIN_RADIUS 1e-3

size_t te_detect_mv_model_size(const te_detect_params_t *p)
{
    size_t dim = 2 * ((size_t)p->lag + 1);
    return 2 * dim + (size_t)p->k * dim + 1;
}

int te_detect_mv_alloc(te_detector_t *d)
{
    const te_detect_params_t *p = &d->p;
    d->dim = 2 * (p->lag + 1);
    size_t n = p->train_window;
    d->pairs = calloc(2 * ((size_t)p->lag + 1), sizeof(double));
    d->feat = calloc(n * d->dim, sizeof(double));
    d->models = calloc((size_t)p->models * te_detect_mv_model_size(p), sizeof(double));
    /* standardised set, distances, assignments, sums, counts */
    d->work = calloc(n * d->dim + 2 * n + (size_t)p->k * (d->dim + 1), sizeof(double));
    return d->pairs && d->feat && d->models && d->work ? 0 : TE_ENOMEM;
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double unit(uint64_t *s)
{
    return (double)(splitmix(s) >> 11) / 9007199254740992.0;
}

static double dist2(const double *a, const double *b, size_t dim)
{
    double s = 0;
    for (size_t i = 0; i < dim; i++) {
        double t = a[i] - b[i];
        s += t * t;
    }
    return s;
}

/* Index of the centroid nearest to x and the squared distance. */
static size_t nearest(const double *cent, size_t k, const double *x, size_t dim, double *d2)
{
    size_t best = 0;
    double bd = dist2(cent, x, dim);
    for (size_t c = 1; c < k; c++) {
        double t = dist2(cent + c * dim, x, dim);
        if (t < bd) {
            bd = t;
            best = c;
        }
    }
    *d2 = bd;
    return best;
}

/* Trains one model on the feature ring into m. */
static void train(te_detector_t *d, double *m)
{
    const te_detect_params_t *p = &d->p;
    size_t n = p->train_window, dim = d->dim, k = p->k;
    double *mean = m, *sd = m + dim, *cent = m + 2 * dim, *radius = cent + k * dim;
    double *x = d->work, *dist = x + n * dim, *assign = dist + n, *sums = assign + n,
           *counts = sums + k * dim;
    double scale = 0;
    for (size_t j = 0; j < dim; j++) {
        double s = 0, s2 = 0;
        for (size_t i = 0; i < n; i++)
            s += d->feat[i * dim + j];
        mean[j] = s / (double)n;
        for (size_t i = 0; i < n; i++) {
            double t = d->feat[i * dim + j] - mean[j];
            s2 += t * t;
        }
        sd[j] = sqrt(s2 / (double)n);
        if (j % 2 == 0)
            scale += fabs(mean[j]);
    }
    double floor = 1e-6 + 1e-3 * scale / (double)(dim / 2);
    for (size_t j = 0; j < dim; j++)
        if (sd[j] < floor)
            sd[j] = floor;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < dim; j++)
            x[i * dim + j] = (d->feat[i * dim + j] - mean[j]) / sd[j];
    /* k-means++ seeding from a seed that depends only on the model count */
    uint64_t rng = 0x6b6d65616e73ull + d->trained;
    size_t first = (size_t)(unit(&rng) * (double)n);
    memcpy(cent, x + (first < n ? first : n - 1) * dim, dim * sizeof(double));
    for (size_t c = 1; c < k; c++) {
        double total = 0;
        for (size_t i = 0; i < n; i++) {
            nearest(cent, c, x + i * dim, dim, &dist[i]);
            total += dist[i];
        }
        double r = unit(&rng) * total;
        size_t pick = n - 1;
        for (size_t i = 0; i < n; i++) {
            r -= dist[i];
            if (r < 0) {
                pick = i;
                break;
            }
        }
        memcpy(cent + c * dim, x + pick * dim, dim * sizeof(double));
    }
    /* Lloyd rounds until the assignment is stable */
    for (size_t i = 0; i < n; i++)
        assign[i] = -1;
    for (int round = 0; round < MV_MAX_ROUNDS; round++) {
        bool moved = false;
        memset(sums, 0, k * (dim + 1) * sizeof(double));
        for (size_t i = 0; i < n; i++) {
            size_t c = nearest(cent, k, x + i * dim, dim, &dist[i]);
            if (assign[i] != (double)c) {
                assign[i] = (double)c;
                moved = true;
            }
            counts[c] += 1;
            for (size_t j = 0; j < dim; j++)
                sums[c * dim + j] += x[i * dim + j];
        }
        if (!moved)
            break;
        for (size_t c = 0; c < k; c++)
            if (counts[c] > 0) /* an empty cluster keeps its centroid */
                for (size_t j = 0; j < dim; j++)
                    cent[c * dim + j] = sums[c * dim + j] / counts[c];
    }
    for (size_t i = 0; i < n; i++) {
        nearest(cent, k, x + i * dim, dim, &dist[i]);
        dist[i] = sqrt(dist[i]);
    }
    size_t idx = (size_t)ceil(p->percentile / 100.0 * (double)n);
    idx = idx > 0 ? idx - 1 : 0;
    if (idx >= n)
        idx = n - 1;
    memcpy(assign, dist, n * sizeof(double)); /* keep dist intact */
    double *v = assign;
    /* the idx-th smallest: partial selection sort is enough for the top tail */
    for (size_t a = n - 1; a > idx; a--) {
        size_t mx = 0;
        for (size_t b = 1; b <= a; b++)
            if (v[b] > v[mx])
                mx = b;
        double t = v[mx];
        v[mx] = v[a];
        v[a] = t;
    }
    double rad = v[0];
    for (size_t b = 1; b <= idx; b++)
        if (v[b] > rad)
            rad = v[b];
    *radius = rad > MV_MIN_RADIUS ? rad : MV_MIN_RADIUS;
    d->trained++;
}

/* Score of vector f under model m (distance / radius) and the s value of
 * the nearest centroid in the series' units. */
static double score_model(const te_detector_t *d, const double *m, const double *f, double *base)
{
    size_t dim = d->dim, k = d->p.k;
    const double *mean = m, *sd = m + dim, *cent = m + 2 * dim;
    double x[2 * (TE_DETECT_MAX_LAG + 1)];
    for (size_t j = 0; j < dim; j++)
        x[j] = (f[j] - mean[j]) / sd[j];
    double d2;
    size_t c = nearest(cent, k, x, dim, &d2);
    *base = cent[c * dim] * sd[0] + mean[0];
    return sqrt(d2) / m[2 * dim + k * dim];
}

void te_detect_mv_update(te_detector_t *d, double x, te_detect_verdict_t *out)
{
    const te_detect_params_t *p = &d->p;
    size_t dim = d->dim, np = p->lag + 1, msz = te_detect_mv_model_size(p);
    d->ring[d->head] = x;
    d->head = (d->head + 1) % d->cap;
    if (d->len < d->cap)
        d->len++;
    if (d->len < d->cap)
        return;
    double s = 0;
    for (size_t i = 0; i < d->cap; i++)
        s += d->ring[i];
    s /= (double)d->cap;
    if (!d->have_s) {
        d->have_s = true;
        d->s_prev = s;
        return;
    }
    d->pairs[2 * d->phead] = s;
    d->pairs[2 * d->phead + 1] = s - d->s_prev;
    d->s_prev = s;
    d->phead = (uint32_t)((d->phead + 1) % np);
    if (d->npairs < np)
        d->npairs++;
    if (d->npairs < np)
        return;
    double *f = d->feat + (size_t)d->fhead * dim; /* newest lag first */
    for (size_t i = 0; i < np; i++) {
        size_t at = (d->phead + np - 1 - i) % np;
        f[2 * i] = d->pairs[2 * at];
        f[2 * i + 1] = d->pairs[2 * at + 1];
    }
    d->fhead = (d->fhead + 1) % p->train_window;
    if (d->nfeat < p->train_window)
        d->nfeat++;
    if (d->nmodels > 0) {
        double score = INFINITY, base = 0, sd0 = 1, rad = 1;
        for (uint32_t i = 0; i < d->nmodels; i++) {
            const double *m = d->models + i * msz;
            double b;
            double sc = score_model(d, m, f, &b);
            if (sc < score) {
                score = sc;
                base = b;
                sd0 = m[dim];
                rad = m[2 * dim + p->k * dim];
            }
        }
        out->ready = true;
        out->score = score;
        out->anomalous = score > p->threshold;
        out->baseline = base;
        out->lower = base - p->threshold * rad * sd0;
        out->upper = base + p->threshold * rad * sd0;
        d->rate += MV_RATE_ALPHA * ((out->anomalous ? 1.0 : 0.0) - d->rate);
    }
    d->since_train++;
    if (d->nfeat == p->train_window && (d->nmodels == 0 || d->since_train >= p->train_every)) {
        train(d, d->models + (size_t)d->mhead * msz);
        d->mhead = (d->mhead + 1) % p->models;
        if (d->nmodels < p->models)
            d->nmodels++;
        d->since_train = 0;
    }
}
