/*
 * detect.c - detector parameters, life cycle, the simple methods
 * (ewma_zscore, change, absent) and state blobs (see detect.h).
 *
 * THREAD: any (one owner).
 *
 * The blob is the struct's state written field by field after a header
 * (magic, version, kind, parameter hash, array sizes); loading makes a
 * fresh detector from the parameters and reads into it, so a blob made
 * for other parameters fails the header check instead of being misread.
 */
#include "detect/detect_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BLOB_MAGIC 0x31444554u /* "TED1" */
#define BLOB_VERSION 2u

static const char *const kind_names[TE_DETECT_NKINDS] = {
    "ewma_zscore", "mad", "seasonal", "change", "absent", "multivariate"};

const char *te_detect_kind_name(te_detect_kind_t k)
{
    return (unsigned)k < TE_DETECT_NKINDS ? kind_names[k] : "?";
}

int te_detect_kind_parse(const char *s, te_detect_kind_t *out)
{
    for (unsigned i = 0; i < TE_DETECT_NKINDS; i++)
        if (strcmp(s, kind_names[i]) == 0) {
            *out = (te_detect_kind_t)i;
            return 0;
        }
    return TE_EINVAL;
}

void te_detect_params_default(te_detect_params_t *p, te_detect_kind_t kind)
{
    memset(p, 0, sizeof(*p));
    p->kind = kind;
    switch (kind) {
    case TE_DETECT_EWMA:
        p->threshold = 4.2;
        p->alpha = 0.03;
        p->warmup = 30;
        p->drift = 3.0;
        break;
    case TE_DETECT_MAD:
        p->threshold = 5.0;
        p->window = 60;
        p->drift = 3.0;
        break;
    case TE_DETECT_SEASONAL:
        p->threshold = 4.0;
        p->seasons = 3;
        break;
    case TE_DETECT_CHANGE:
        p->pct = 50.0;
        p->window = 1;
        break;
    case TE_DETECT_MULTIVARIATE:
        p->threshold = 2.0;
        p->k = 2;
        p->lag = 2;
        p->smooth = 1;
        p->train_window = 120;
        p->train_every = 240;
        p->models = 5;
        p->percentile = 99.0;
        break;
    default:
        break;
    }
}

int te_detect_params_check(te_detect_params_t *p, te_err_t *err)
{
    te_detect_params_t def;
    if ((unsigned)p->kind >= TE_DETECT_NKINDS)
        return te_err_set(err, TE_EINVAL, "detector: unknown method");
    te_detect_params_default(&def, p->kind);
    const char *m = te_detect_kind_name(p->kind);
#define DFLT(f) if (p->f == 0) p->f = def.f
    DFLT(threshold);
    DFLT(alpha);
    DFLT(drift);
    DFLT(warmup);
    DFLT(window);
    DFLT(seasons);
    DFLT(pct);
    DFLT(k);
    DFLT(lag);
    DFLT(smooth);
    DFLT(train_window);
    DFLT(train_every);
    DFLT(models);
    DFLT(percentile);
#undef DFLT
    if ((unsigned)p->direction > TE_DETECT_DOWN)
        return te_err_set(err, TE_EINVAL, "%s: direction must be up, down or both", m);
    if (!(p->threshold >= 0) || !isfinite(p->threshold))
        return te_err_set(err, TE_EINVAL, "%s: threshold must be a number >= 0", m);
    if (!(p->drift >= 0) || !isfinite(p->drift))
        return te_err_set(err, TE_EINVAL, "%s: drift must be a number > 0", m);
    switch (p->kind) {
    case TE_DETECT_EWMA:
        if (!(p->alpha > 0 && p->alpha <= 1))
            return te_err_set(err, TE_EINVAL, "%s: alpha must be in (0, 1], got %g", m, p->alpha);
        if (p->warmup > 1000000)
            return te_err_set(err, TE_EINVAL, "%s: warmup must be at most 1000000", m);
        break;
    case TE_DETECT_MAD:
    case TE_DETECT_CHANGE:
        if (p->window > TE_DETECT_MAX_WINDOW || (p->kind == TE_DETECT_MAD && p->window < 3))
            return te_err_set(err, TE_EINVAL, "%s: window must be in [%u, %u] values, got %u", m,
                              p->kind == TE_DETECT_MAD ? 3u : 1u, TE_DETECT_MAX_WINDOW,
                              p->window);
        if (p->kind == TE_DETECT_CHANGE && !(p->pct > 0 && isfinite(p->pct)))
            return te_err_set(err, TE_EINVAL, "%s: pct must be a number > 0", m);
        break;
    case TE_DETECT_SEASONAL:
        if (p->period_ns <= 0)
            return te_err_set(err, TE_EINVAL, "%s: period is required (\"1d\" or \"1w\")", m);
        if (p->step_ns <= 0 || p->period_ns % p->step_ns != 0)
            return te_err_set(err, TE_EINVAL, "%s: period must be a multiple of every", m);
        if (p->period_ns / p->step_ns < 2 || p->period_ns / p->step_ns > TE_DETECT_MAX_SLOTS)
            return te_err_set(err, TE_EINVAL,
                              "%s: period / every must be in [2, %u] slots, got %lld", m,
                              TE_DETECT_MAX_SLOTS, (long long)(p->period_ns / p->step_ns));
        if (p->seasons > TE_DETECT_MAX_SEASONS)
            return te_err_set(err, TE_EINVAL, "%s: seasons must be in [1, %u]", m,
                              TE_DETECT_MAX_SEASONS);
        break;
    case TE_DETECT_ABSENT:
        if (p->after_ns <= 0)
            return te_err_set(err, TE_EINVAL, "%s: after is required (a duration like \"10m\")",
                              m);
        break;
    case TE_DETECT_MULTIVARIATE:
        if (p->k > TE_DETECT_MAX_K || p->lag > TE_DETECT_MAX_LAG || p->smooth > 100 ||
            p->models > TE_DETECT_MAX_MODELS)
            return te_err_set(err, TE_EINVAL, "%s: k <= %u, lag <= %u, smooth <= 100, models <= %u",
                              m, TE_DETECT_MAX_K, TE_DETECT_MAX_LAG, TE_DETECT_MAX_MODELS);
        if (p->train_window < 4 * p->k || p->train_window > TE_DETECT_MAX_WINDOW)
            return te_err_set(err, TE_EINVAL, "%s: train_window must be in [4*k, %u], got %u", m,
                              TE_DETECT_MAX_WINDOW, p->train_window);
        if (!(p->percentile > 0 && p->percentile <= 100))
            return te_err_set(err, TE_EINVAL, "%s: percentile must be in (0, 100]", m);
        break;
    default:
        break;
    }
    return 0;
}

bool te_detect_params_equal(const te_detect_params_t *a, const te_detect_params_t *b)
{
    return a->kind == b->kind && a->direction == b->direction && a->threshold == b->threshold &&
           a->alpha == b->alpha && a->drift == b->drift && a->warmup == b->warmup && a->window == b->window &&
           a->period_ns == b->period_ns && a->step_ns == b->step_ns &&
           a->seasons == b->seasons && a->pct == b->pct && a->after_ns == b->after_ns &&
           a->k == b->k && a->lag == b->lag && a->smooth == b->smooth &&
           a->train_window == b->train_window && a->train_every == b->train_every &&
           a->models == b->models && a->percentile == b->percentile;
}

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h *= 0xff51afd7ed558ccdull;
    return h ^ (h >> 33);
}

static uint64_t dbits(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof(u));
    return u;
}

uint64_t te_detect_params_hash(const te_detect_params_t *p)
{
    uint64_t h = 0x7465646574656374ull;
    h = mix(h, (uint64_t)p->kind);
    h = mix(h, (uint64_t)p->direction);
    h = mix(h, dbits(p->threshold));
    h = mix(h, dbits(p->alpha));
    h = mix(h, dbits(p->drift));
    h = mix(h, p->warmup);
    h = mix(h, p->window);
    h = mix(h, (uint64_t)p->period_ns);
    h = mix(h, (uint64_t)p->step_ns);
    h = mix(h, p->seasons);
    h = mix(h, dbits(p->pct));
    h = mix(h, (uint64_t)p->after_ns);
    h = mix(h, p->k);
    h = mix(h, p->lag);
    h = mix(h, p->smooth);
    h = mix(h, p->train_window);
    h = mix(h, p->train_every);
    h = mix(h, p->models);
    return mix(h, dbits(p->percentile));
}

te_detector_t *te_detect_new(const te_detect_params_t *p, te_err_t *err)
{
    te_detect_params_t chk = *p;
    if (te_detect_params_check(&chk, err))
        return NULL;
    te_detector_t *d = calloc(1, sizeof(*d));
    if (!d)
        goto nomem;
    d->p = chk;
    switch (chk.kind) {
    case TE_DETECT_MAD:
        d->cap = chk.window;
        d->scratch = malloc((size_t)d->cap * sizeof(double));
        if (!d->scratch)
            goto nomem;
        break;
    case TE_DETECT_CHANGE:
        d->cap = chk.window;
        break;
    case TE_DETECT_SEASONAL: {
        d->nslots = (uint32_t)(chk.period_ns / chk.step_ns);
        size_t n = (size_t)d->nslots * chk.seasons;
        d->cells = malloc(n * sizeof(double));
        d->cell_period = malloc(n * sizeof(int64_t));
        if (!d->cells || !d->cell_period)
            goto nomem;
        for (size_t i = 0; i < n; i++) {
            d->cells[i] = 0;
            d->cell_period[i] = INT64_MIN;
        }
        break;
    }
    case TE_DETECT_MULTIVARIATE:
        d->cap = chk.smooth;
        if (te_detect_mv_alloc(d))
            goto nomem;
        break;
    default:
        break;
    }
    if (d->cap && !(d->ring = calloc(d->cap, sizeof(double))))
        goto nomem;
    return d;
nomem:
    te_detect_free(d);
    te_err_set(err, TE_ENOMEM, "detector: out of memory");
    return NULL;
}

void te_detect_free(te_detector_t *d)
{
    if (!d)
        return;
    free(d->ring);
    free(d->scratch);
    free(d->cells);
    free(d->cell_period);
    free(d->pairs);
    free(d->feat);
    free(d->models);
    free(d->work);
    free(d);
}

const te_detect_params_t *te_detect_params(const te_detector_t *d)
{
    return &d->p;
}

uint64_t te_detect_count(const te_detector_t *d)
{
    return d->n;
}

double te_detect_anomaly_rate(const te_detector_t *d)
{
    return d->rate;
}

double te_detect_directed(te_detect_dir_t dir, double z)
{
    if (dir == TE_DETECT_UP)
        return z > 0 ? z : 0;
    if (dir == TE_DETECT_DOWN)
        return z < 0 ? -z : 0;
    return fabs(z);
}

static double sd_floor(double m)
{
    return 1e-9 + 1e-3 * fabs(m);
}

static void ewma_update(te_detector_t *d, double x, te_detect_verdict_t *out)
{
    const te_detect_params_t *p = &d->p;
    if (d->n == 0) {
        d->mean = d->slow = x;
        d->var = 0;
        return;
    }
    double sd = sqrt(d->var);
    if (sd < sd_floor(d->mean))
        sd = sd_floor(d->mean);
    double z = (x - d->mean) / sd;
    double g = (d->mean - d->slow) / sd;
    double fold = x;
    if (d->n >= p->warmup) {
        double zs = te_detect_directed(p->direction, z);
        double gs = te_detect_directed(p->direction, g) * p->threshold / p->drift;
        out->ready = true;
        out->score = zs > gs ? zs : gs;
        out->anomalous = out->score > p->threshold;
        out->baseline = gs > zs && gs > p->threshold ? d->slow : d->mean;
        out->lower = out->baseline - p->threshold * sd;
        out->upper = out->baseline + p->threshold * sd;
        if (fabs(z) > p->threshold) /* clip to the band edge */
            fold = z > 0 ? d->mean + p->threshold * sd : d->mean - p->threshold * sd;
    }
    double diff = fold - d->mean;
    double incr = p->alpha * diff;
    d->mean += incr;
    d->var = (1 - p->alpha) * (d->var + diff * incr);
    d->slow += p->alpha / 10 * (fold - d->slow);
}

static void change_update(te_detector_t *d, double x, te_detect_verdict_t *out)
{
    const te_detect_params_t *p = &d->p;
    if (d->len == d->cap) {
        double old = d->ring[d->head]; /* the value `window` updates ago */
        double den = fabs(old) > 1e-9 ? fabs(old) : 1e-9;
        double c = 100.0 * (x - old) / den;
        out->ready = true;
        out->score = te_detect_directed(p->direction, c);
        out->anomalous = out->score >= p->pct;
        out->baseline = old;
        out->lower = old - fabs(old) * p->pct / 100.0;
        out->upper = old + fabs(old) * p->pct / 100.0;
    } else {
        d->len++;
    }
    d->ring[d->head] = x;
    d->head = (d->head + 1) % d->cap;
}

static void absent_update(te_detector_t *d, double x, int64_t t_ns, te_detect_verdict_t *out)
{
    if (x > 0 && t_ns > d->last_seen_ns)
        d->last_seen_ns = t_ns;
    if (d->last_seen_ns == 0 && d->first_ns == 0)
        d->first_ns = t_ns; /* never seen: silence counts from the first update */
    int64_t since = d->last_seen_ns ? d->last_seen_ns : d->first_ns;
    double after = (double)d->p.after_ns;
    double silent = (double)(t_ns - since);
    out->ready = true;
    out->score = silent > 0 ? silent / after : 0;
    out->anomalous = t_ns - since >= d->p.after_ns;
    out->baseline = after / 1e9;
    out->lower = 0;
    out->upper = after / 1e9;
}

void te_detect_seen(te_detector_t *d, int64_t t_ns)
{
    if (t_ns > d->last_seen_ns)
        d->last_seen_ns = t_ns;
}

int te_detect_update(te_detector_t *d, double value, int64_t t_ns, te_detect_verdict_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!isfinite(value))
        return TE_EINVAL;
    switch (d->p.kind) {
    case TE_DETECT_EWMA: ewma_update(d, value, out); break;
    case TE_DETECT_MAD: te_detect_mad_update(d, value, out); break;
    case TE_DETECT_SEASONAL: te_detect_seasonal_update(d, value, t_ns, out); break;
    case TE_DETECT_CHANGE: change_update(d, value, out); break;
    case TE_DETECT_ABSENT: absent_update(d, value, t_ns, out); break;
    case TE_DETECT_MULTIVARIATE: te_detect_mv_update(d, value, out); break;
    default: return TE_EINVAL;
    }
    d->n++;
    return 0;
}

/* --- blobs --- */

void te_detect_put(te_detect_wbuf_t *w, const void *src, size_t n)
{
    if (w->oom)
        return;
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap < w->len + n)
            cap *= 2;
        unsigned char *q = realloc(w->p, cap);
        if (!q) {
            w->oom = true;
            return;
        }
        w->p = q;
        w->cap = cap;
    }
    memcpy(w->p + w->len, src, n);
    w->len += n;
}

void te_detect_get(te_detect_rbuf_t *r, void *dst, size_t n)
{
    if (r->bad || r->len - r->off < n) {
        r->bad = true;
        memset(dst, 0, n);
        return;
    }
    memcpy(dst, r->p + r->off, n);
    r->off += n;
}

/* Sizes of the arrays, in elements: the header carries them so a blob of
 * another shape is refused. */
static void array_sizes(const te_detector_t *d, uint32_t sz[6])
{
    sz[0] = d->cap;
    sz[1] = d->nslots * (d->p.kind == TE_DETECT_SEASONAL ? d->p.seasons : 0);
    sz[2] = d->dim ? (d->p.lag + 1) * 2 : 0;
    sz[3] = d->dim ? d->p.train_window * d->dim : 0;
    sz[4] = d->dim ? (uint32_t)(d->p.models * te_detect_mv_model_size(&d->p)) : 0;
    sz[5] = d->dim;
}

/* Reads (rd) or writes (wr) every state field in one order. */
#define STATE_FIELDS(X, A)                                                                    \
    X(n) X(mean) X(var) X(slow) X(len) X(head) X(first_ns) X(sigma) X(dsum) X(prev) X(dn)            \
    X(last_seen_ns) X(npairs) X(phead) X(s_prev) X(have_s) X(nfeat) X(fhead) X(nmodels)      \
    X(mhead) X(since_train) X(trained) X(rate)                                               \
    A(ring, sz[0]) A(cells, sz[1]) A(cell_period, sz[1]) A(pairs, sz[2]) A(feat, sz[3])      \
    A(models, sz[4])

int te_detect_save(const te_detector_t *d, unsigned char **blob, size_t *len)
{
    te_detect_wbuf_t w = {0};
    uint32_t hdr[3] = {BLOB_MAGIC, BLOB_VERSION, (uint32_t)d->p.kind};
    uint64_t h = te_detect_params_hash(&d->p);
    uint32_t sz[6];
    array_sizes(d, sz);
    te_detect_put(&w, hdr, sizeof(hdr));
    te_detect_put(&w, &h, sizeof(h));
    te_detect_put(&w, sz, sizeof(sz));
#define WX(f) te_detect_put(&w, &d->f, sizeof(d->f));
#define WA(f, n) if (n) te_detect_put(&w, d->f, (size_t)(n) * sizeof(*d->f));
    STATE_FIELDS(WX, WA)
#undef WX
#undef WA
    if (w.oom) {
        free(w.p);
        return TE_ENOMEM;
    }
    *blob = w.p;
    *len = w.len;
    return 0;
}

te_detector_t *te_detect_load(const te_detect_params_t *p, const void *blob, size_t len,
                              te_err_t *err)
{
    te_detector_t *d = te_detect_new(p, err);
    if (!d)
        return NULL;
    te_detect_rbuf_t r = {.p = blob, .len = len, .off = 0, .bad = false};
    uint32_t hdr[3], sz[6], want[6];
    uint64_t h;
    te_detect_get(&r, hdr, sizeof(hdr));
    te_detect_get(&r, &h, sizeof(h));
    te_detect_get(&r, sz, sizeof(sz));
    array_sizes(d, want);
    if (r.bad || hdr[0] != BLOB_MAGIC || hdr[1] != BLOB_VERSION || hdr[2] != (uint32_t)d->p.kind ||
        h != te_detect_params_hash(&d->p) || memcmp(sz, want, sizeof(sz)) != 0) {
        te_detect_free(d);
        te_err_set(err, TE_EINVAL, "detector: state blob is for another method or version");
        return NULL;
    }
#define RX(f) te_detect_get(&r, &d->f, sizeof(d->f));
#define RA(f, n) if (n) te_detect_get(&r, d->f, (size_t)(n) * sizeof(*d->f));
    STATE_FIELDS(RX, RA)
#undef RX
#undef RA
    if (r.bad || r.off != r.len || d->len > d->cap || (d->cap && d->head >= d->cap) ||
        d->nfeat > want[3] / (d->dim ? d->dim : 1) || d->nmodels > d->p.models ||
        d->npairs > d->p.lag + 1) {
        te_detect_free(d);
        te_err_set(err, TE_EINVAL, "detector: state blob is truncated or corrupt");
        return NULL;
    }
    if (d->p.kind == TE_DETECT_MAD)
        te_detect_mad_rebuild(d);
    return d;
}
