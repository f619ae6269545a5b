/*
 * sketch.c - DDSketch-style quantile sketch: log buckets, dense stores.
 *
 * THREAD: any (one owner).
 *
 * Each sign has a "store": a dense uint64 array covering the bucket
 * indices [offset, offset + len), plus the range [lo, hi] that holds
 * non-zero counts. The array grows with some slack so a stream of new
 * magnitudes does not reallocate on every value, and never covers more
 * than max_buckets indices: that is the memory bound and the collapse rule
 * (see sketch.h).
 */
#include "rules/sketch.h"

#include "rules/sketch_key.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Extra buckets allocated on each side when a store grows. */
#define STORE_SLACK 32

typedef struct store {
    uint64_t *counts;
    int64_t offset; /* bucket index of counts[0] */
    int64_t len;    /* allocated buckets */
    int64_t lo, hi; /* non-zero range; valid when total > 0 */
    uint64_t total;
} store;

struct te_sketch {
    double accuracy;
    double gamma;
    double log_gamma;
    double mid_factor; /* 2 * gamma / (gamma + 1) */
    te_sketch_key_t key; /* the bucket index; key.idx_min/idx_max bound it */
    uint32_t max_buckets;
    bool collapsed;
    uint64_t count;
    uint64_t zero;
    double sum, min, max;
    store neg, pos;
};

static void set_params(te_sketch_t *s, double a, uint32_t max_buckets)
{
    s->accuracy = a;
    s->gamma = (1.0 + a) / (1.0 - a);
    s->log_gamma = log(s->gamma);
    s->mid_factor = 2.0 * s->gamma / (s->gamma + 1.0);
    te_sketch_key_init(&s->key, a);
    s->max_buckets = max_buckets;
}

static int check_params(double a, uint32_t max_buckets, te_err_t *err)
{
    if (!(a >= TE_SKETCH_MIN_ACCURACY && a <= TE_SKETCH_MAX_ACCURACY))
        return te_err_set(err, TE_EINVAL,
                          "sketch: relative accuracy %g out of range (use %g to %g)", a,
                          TE_SKETCH_MIN_ACCURACY, TE_SKETCH_MAX_ACCURACY);
    if (max_buckets < TE_SKETCH_MIN_BUCKETS || max_buckets > TE_SKETCH_MAX_BUCKETS)
        return te_err_set(err, TE_EINVAL, "sketch: max_buckets %u out of range (use %u to %u)",
                          max_buckets, TE_SKETCH_MIN_BUCKETS, TE_SKETCH_MAX_BUCKETS);
    return 0;
}

te_sketch_t *te_sketch_new(double rel_accuracy, uint32_t max_buckets, te_err_t *err)
{
    te_sketch_t *s;
    if (rel_accuracy == 0.0)
        rel_accuracy = TE_SKETCH_DEFAULT_ACCURACY;
    if (max_buckets == 0)
        max_buckets = TE_SKETCH_DEFAULT_MAX_BUCKETS;
    if (check_params(rel_accuracy, max_buckets, err) < 0)
        return NULL;
    s = calloc(1, sizeof(*s));
    if (!s) {
        te_err_set(err, TE_ENOMEM, "sketch: cannot allocate");
        return NULL;
    }
    set_params(s, rel_accuracy, max_buckets);
    s->min = INFINITY;
    s->max = -INFINITY;
    return s;
}

void te_sketch_free(te_sketch_t *s)
{
    if (!s)
        return;
    free(s->neg.counts);
    free(s->pos.counts);
    free(s);
}

/* Bucket index of a magnitude m >= DBL_MIN: every path goes through here
 * (or te_sketch_key on a copy of s->key), so single and bulk adds agree. */
static int64_t key_of(const te_sketch_t *s, double m)
{
    return te_sketch_key(&s->key, m);
}

/* Representative magnitude of bucket i: 2 gamma^i / (gamma + 1), computed
 * from gamma^(i-1) so the top bucket does not overflow. */
static double value_of(const te_sketch_t *s, int64_t i)
{
    return exp((double)(i - 1) * s->log_gamma) * s->mid_factor;
}

/*
 * Makes st's array cover [*lo_io, hi] (hi >= every stored index). When the
 * span is wider than max_buckets, *lo_io is raised to hi - max_buckets + 1
 * and the counts below it move into that bucket. On ENOMEM nothing changes.
 */
static int store_fit(te_sketch_t *s, store *st, int64_t *lo_io, int64_t hi, bool *collapsed)
{
    int64_t lo = *lo_io;
    int64_t maxb = s->max_buckets;
    int64_t span, new_len, new_off, j;
    uint64_t *nc;

    if (hi - lo + 1 > maxb) {
        lo = hi - maxb + 1;
        *collapsed = true;
    }
    *lo_io = lo;
    /* Already covered: then the array is at most max_buckets wide, so no
     * stored count lies below lo and nothing needs to move. */
    if (st->counts && lo >= st->offset && hi < st->offset + st->len)
        return 0;
    span = hi - lo + 1;
    /* an empty store (new, or reset for reuse) that is wide enough is only
     * re-centred: its cells are all zero */
    if (st->counts && !st->total && span <= st->len) {
        st->offset = lo - (st->len - span) / 2;
        return 0;
    }
    /* growing: at least double, so a widening stream of values copies
     * O(buckets) in all rather than on every few new buckets */
    new_len = span + 2 * STORE_SLACK;
    if (st->counts && new_len < 2 * st->len)
        new_len = 2 * st->len;
    if (new_len > maxb)
        new_len = maxb;
    new_off = lo - (new_len - span) / 2;
    nc = calloc((size_t)new_len, sizeof(*nc));
    if (!nc)
        return TE_ENOMEM;
    if (st->total) {
        for (j = st->lo; j <= st->hi; j++) {
            uint64_t c = st->counts[j - st->offset];
            if (c)
                nc[(j < lo ? lo : j) - new_off] += c;
        }
        if (st->lo < lo)
            st->lo = lo;
    }
    free(st->counts);
    st->counts = nc;
    st->offset = new_off;
    st->len = new_len;
    return 0;
}

/* Adds n at index idx (collapsed upward when below the kept range). */
static int store_add(te_sketch_t *s, store *st, int64_t idx, uint64_t n, bool *collapsed)
{
    int64_t lo = idx, hi = idx;
    int rc;
    if (st->total) {
        lo = idx < st->lo ? idx : st->lo;
        hi = idx > st->hi ? idx : st->hi;
    }
    if (!st->counts || idx < st->offset || idx >= st->offset + st->len || hi - lo + 1 > s->max_buckets) {
        rc = store_fit(s, st, &lo, hi, collapsed);
        if (rc < 0)
            return rc;
    }
    if (idx < lo)
        idx = lo;
    st->counts[idx - st->offset] += n;
    if (!st->total || idx < st->lo)
        st->lo = idx;
    if (!st->total || idx > st->hi)
        st->hi = idx;
    st->total += n;
    return 0;
}

int te_sketch_add(te_sketch_t *s, double v)
{
    int rc = 0;
    bool collapsed = false;
    if (!isfinite(v))
        return TE_EINVAL;
    if (v >= DBL_MIN)
        rc = store_add(s, &s->pos, key_of(s, v), 1, &collapsed);
    else if (v <= -DBL_MIN)
        rc = store_add(s, &s->neg, key_of(s, -v), 1, &collapsed);
    else
        s->zero++;
    if (rc < 0)
        return rc;
    s->collapsed = s->collapsed || collapsed;
    s->count++;
    s->sum += v;
    if (v < s->min)
        s->min = v;
    if (v > s->max)
        s->max = v;
    return 0;
}

/* te_sketch_add_all for values that are all positive normals (min >= DBL_MIN,
 * max finite) whose buckets fit the store without a collapse: the store is
 * fitted once, then each value costs its bucket index and an increment. Adds
 * the very counts, sum (same order), min and max the general loop would;
 * false (nothing changed) when the values do not qualify. */
static bool add_all_positive(te_sketch_t *s, const double *v, size_t n, int *rc)
{
    double mn = v[0], mx = v[0];
    for (size_t i = 1; i < n; i++) {
        mn = v[i] < mn ? v[i] : mn;
        mx = v[i] > mx ? v[i] : mx;
    }
    if (!(mn >= DBL_MIN) || !(mx <= DBL_MAX)) /* NaN fails both */
        return false;
    store *st = &s->pos;
    int64_t lo = key_of(s, mn), hi = key_of(s, mx);
    if (st->total) {
        lo = st->lo < lo ? st->lo : lo;
        hi = st->hi > hi ? st->hi : hi;
    }
    if (hi - lo + 1 > s->max_buckets)
        return false; /* the general loop collapses value by value */
    bool collapsed = false;
    if (store_fit(s, st, &lo, hi, &collapsed) < 0) {
        *rc = TE_ENOMEM;
        return true;
    }
    /* the index is monotone in the value, so every key lies in [lo, hi];
     * a local copy of the constants stays in registers across the stores */
    uint64_t *c = st->counts - st->offset;
    const te_sketch_key_t key = s->key;
    double sum = s->sum;
    for (size_t i = 0; i < n; i++) {
        c[te_sketch_key(&key, v[i])]++;
        sum += v[i];
    }
    st->lo = lo;
    st->hi = hi;
    st->total += n;
    s->count += n;
    s->sum = sum;
    s->min = mn < s->min ? mn : s->min;
    s->max = mx > s->max ? mx : s->max;
    *rc = 0;
    return true;
}

int te_sketch_add_all(te_sketch_t *s, const double *v, size_t n)
{
    int rc;
    /* the fast loop pays a min/max pass and two indices up front */
    if (n >= 16 && add_all_positive(s, v, n, &rc))
        return rc;
    bool collapsed = false;
    for (size_t i = 0; i < n; i++) {
        double x = v[i];
        if (!isfinite(x))
            continue;
        store *st = x >= DBL_MIN ? &s->pos : x <= -DBL_MIN ? &s->neg : NULL;
        if (st) {
            int64_t k = key_of(s, fabs(x));
            /* the common case inline: inside the array and the range */
            if (st->total && k >= st->lo && k <= st->hi) {
                st->counts[k - st->offset]++;
                st->total++;
            } else if (store_add(s, st, k, 1, &collapsed) < 0) {
                return TE_ENOMEM;
            }
        } else {
            s->zero++;
        }
        s->count++;
        s->sum += x;
        if (x < s->min)
            s->min = x;
        if (x > s->max)
            s->max = x;
    }
    s->collapsed = s->collapsed || collapsed;
    return 0;
}

/* Merges src's store into dst's; the fit happens first, so the only
 * failure (ENOMEM) leaves dst unchanged. */
static int store_merge(te_sketch_t *s, store *dst, const store *src, bool *collapsed)
{
    int64_t lo, hi, j;
    int rc;
    if (!src->total)
        return 0;
    lo = src->lo;
    hi = src->hi;
    if (dst->total) {
        lo = dst->lo < lo ? dst->lo : lo;
        hi = dst->hi > hi ? dst->hi : hi;
    }
    rc = store_fit(s, dst, &lo, hi, collapsed);
    if (rc < 0)
        return rc;
    for (j = src->lo; j <= src->hi; j++) {
        uint64_t c = src->counts[j - src->offset];
        int64_t t = j < lo ? lo : j;
        if (!c)
            continue;
        dst->counts[t - dst->offset] += c;
        if (!dst->total || t < dst->lo)
            dst->lo = t;
        if (!dst->total || t > dst->hi)
            dst->hi = t;
        dst->total += c;
    }
    return 0;
}

int te_sketch_merge(te_sketch_t *dst, const te_sketch_t *src, te_err_t *err)
{
    bool collapsed = src->collapsed;
    int rc;
    if (dst == src)
        return te_err_set(err, TE_EINVAL, "sketch: cannot merge a sketch into itself");
    if (dst->accuracy != src->accuracy)
        return te_err_set(err, TE_EINVAL,
                          "sketch: cannot merge accuracy %g into accuracy %g (rebuild with one "
                          "accuracy)",
                          src->accuracy, dst->accuracy);
    /* Grow both stores before touching any count so ENOMEM changes nothing. */
    if (src->neg.total) {
        int64_t lo = src->neg.lo, hi = src->neg.hi;
        if (dst->neg.total) {
            lo = dst->neg.lo < lo ? dst->neg.lo : lo;
            hi = dst->neg.hi > hi ? dst->neg.hi : hi;
        }
        rc = store_fit(dst, &dst->neg, &lo, hi, &collapsed);
        if (rc < 0)
            goto nomem;
    }
    rc = store_merge(dst, &dst->pos, &src->pos, &collapsed);
    if (rc < 0)
        goto nomem;
    rc = store_merge(dst, &dst->neg, &src->neg, &collapsed); /* already fitted: cannot fail */
    if (rc < 0)
        goto nomem;
    dst->collapsed = dst->collapsed || collapsed;
    dst->count += src->count;
    dst->zero += src->zero;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
    return 0;
nomem:
    return te_err_set(err, TE_ENOMEM, "sketch: cannot grow buckets while merging");
}

int te_sketch_quantile(const te_sketch_t *s, double q, double *out)
{
    double rank, v = 0.0;
    uint64_t cum = 0;
    int64_t j;
    if (!(q >= 0.0 && q <= 1.0))
        return TE_EINVAL;
    if (!s->count)
        return TE_ENOTFOUND;
    if (q == 0.0) {
        *out = s->min;
        return 0;
    }
    if (q == 1.0) {
        *out = s->max;
        return 0;
    }
    rank = q * (double)(s->count - 1);
    /* Ascending order: large negatives first, then zeros, then positives. */
    if (s->neg.total) {
        for (j = s->neg.hi; j >= s->neg.lo; j--) {
            cum += s->neg.counts[j - s->neg.offset];
            if ((double)cum > rank) {
                v = -value_of(s, j);
                goto done;
            }
        }
    }
    cum += s->zero;
    if ((double)cum > rank) {
        v = 0.0;
        goto done;
    }
    if (s->pos.total) {
        for (j = s->pos.lo; j <= s->pos.hi; j++) {
            cum += s->pos.counts[j - s->pos.offset];
            if ((double)cum > rank) {
                v = value_of(s, j);
                goto done;
            }
        }
    }
    v = s->max; /* rounding of rank near count: the top value */
done:
    /* The true quantile lies in [min, max]; clamping only tightens. */
    if (v < s->min)
        v = s->min;
    if (v > s->max)
        v = s->max;
    *out = v;
    return 0;
}

static void store_reset(store *st)
{
    /* cells outside [lo, hi] are zero (adds land inside, fits fold into lo) */
    if (st->counts && st->total)
        memset(st->counts + (st->lo - st->offset), 0,
               (size_t)(st->hi - st->lo + 1) * sizeof(*st->counts));
    st->total = 0;
    st->lo = st->hi = 0;
}

void te_sketch_reset(te_sketch_t *s)
{
    store_reset(&s->neg);
    store_reset(&s->pos);
    s->count = 0;
    s->zero = 0;
    s->sum = 0.0;
    s->min = INFINITY;
    s->max = -INFINITY;
    s->collapsed = false;
}

uint64_t te_sketch_count(const te_sketch_t *s)
{
    return s->count;
}

double te_sketch_sum(const te_sketch_t *s)
{
    return s->sum;
}

double te_sketch_min(const te_sketch_t *s)
{
    return s->min;
}

double te_sketch_max(const te_sketch_t *s)
{
    return s->max;
}

double te_sketch_accuracy(const te_sketch_t *s)
{
    return s->accuracy;
}

bool te_sketch_collapsed(const te_sketch_t *s)
{
    return s->collapsed;
}

/* ---- encoding ---------------------------------------------------------- */

#define MAGIC "TESK"
#define HEADER_BYTES 18 /* magic 4, version 1, flags 1, accuracy 8, max_buckets 4 */

typedef struct wbuf {
    unsigned char *p;
    size_t len, cap;
} wbuf;

static void put_u8(wbuf *b, unsigned v)
{
    b->p[b->len++] = (unsigned char)v;
}

static void put_u64le(wbuf *b, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        put_u8(b, (unsigned)((v >> (8 * i)) & 0xffu));
}

static void put_f64(wbuf *b, double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    put_u64le(b, u, 8);
}

static void put_varint(wbuf *b, uint64_t v)
{
    while (v >= 0x80) {
        put_u8(b, (unsigned)(v & 0x7f) | 0x80u);
        v >>= 7;
    }
    put_u8(b, (unsigned)v);
}

static uint64_t zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v < 0 ? -1 : 0);
}

static int64_t unzigzag(uint64_t u)
{
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

/* An upper bound on a store's non-zero buckets without counting them:
 * the indices they span, or the values they hold when fewer. */
static size_t store_span(const store *st)
{
    uint64_t span = st->total ? (uint64_t)(st->hi - st->lo + 1) : 0;
    return (size_t)(span < st->total ? span : st->total);
}

/* The store's non-zero buckets: their number, then per bucket the index
 * (zigzag for the first, the gap after) and the count. One pass: the
 * buckets are written 10 bytes on (the widest count varint), counted, and
 * moved down behind the count. */
static void put_store(wbuf *b, const store *st)
{
    size_t at = b->len, nbins = 0;
    int64_t prev = 0;
    b->len += 10;
    if (st->total)
        for (int64_t j = st->lo; j <= st->hi; j++) {
            uint64_t c = st->counts[j - st->offset];
            if (!c)
                continue;
            put_varint(b, nbins ? (uint64_t)(j - prev) : zigzag(j));
            put_varint(b, c);
            prev = j;
            nbins++;
        }
    size_t body = b->len - at - 10;
    b->len = at;
    put_varint(b, nbins);
    memmove(b->p + b->len, b->p + at + 10, body);
    b->len += body;
}

int te_sketch_encode(const te_sketch_t *s, unsigned char **out, size_t *out_len)
{
    /* Upper bound: header, 2 varints + 3 f64, per store a count (and the
     * 10 bytes put_store writes ahead) and up to two 10-byte varints per
     * bucket. */
    size_t cap = HEADER_BYTES + 2 * 10 + 3 * 8 + 2 * 20 +
                 20 * (store_span(&s->neg) + store_span(&s->pos));
    wbuf b = {malloc(cap), 0, cap};
    if (!b.p)
        return TE_ENOMEM;
    memcpy(b.p, MAGIC, 4);
    b.len = 4;
    put_u8(&b, TE_SKETCH_FORMAT_VERSION);
    put_u8(&b, s->collapsed ? 1u : 0u);
    put_f64(&b, s->accuracy);
    put_u64le(&b, s->max_buckets, 4);
    put_varint(&b, s->count);
    put_varint(&b, s->zero);
    put_f64(&b, s->sum);
    put_f64(&b, s->min);
    put_f64(&b, s->max);
    put_store(&b, &s->neg);
    put_store(&b, &s->pos);
    *out = b.p;
    *out_len = b.len;
    return 0;
}

typedef struct rbuf {
    const unsigned char *p;
    size_t len, pos;
} rbuf;

static int need(rbuf *r, size_t n, const char *what, te_err_t *err)
{
    if (r->len - r->pos < n)
        return te_err_set(err, TE_EPARSE, "sketch: blob truncated at byte %zu reading %s",
                          r->pos, what);
    return 0;
}

static int get_u64le(rbuf *r, int bytes, uint64_t *v, const char *what, te_err_t *err)
{
    uint64_t u = 0;
    if (need(r, (size_t)bytes, what, err) < 0)
        return TE_EPARSE;
    for (int i = 0; i < bytes; i++)
        u |= (uint64_t)r->p[r->pos + (size_t)i] << (8 * i);
    r->pos += (size_t)bytes;
    *v = u;
    return 0;
}

static int get_f64(rbuf *r, double *d, const char *what, te_err_t *err)
{
    uint64_t u;
    if (get_u64le(r, 8, &u, what, err) < 0)
        return TE_EPARSE;
    memcpy(d, &u, sizeof(*d));
    return 0;
}

static int get_varint(rbuf *r, uint64_t *v, const char *what, te_err_t *err)
{
    uint64_t u = 0;
    size_t start = r->pos;
    for (int shift = 0; shift < 64; shift += 7) {
        unsigned char c;
        if (need(r, 1, what, err) < 0)
            return TE_EPARSE;
        c = r->p[r->pos++];
        if (shift == 63 && c > 1)
            break;
        u |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = u;
            return 0;
        }
    }
    return te_err_set(err, TE_EPARSE, "sketch: varint too long at byte %zu reading %s", start,
                      what);
}

/* Reads one store into st of s. Two passes: the first validates the
 * indices and counts and finds the span (no allocation), the second fills. */
static int get_store(rbuf *r, te_sketch_t *s, store *st, const char *name, te_err_t *err)
{
    uint64_t n = 0, u = 0, c = 0, total = 0;
    int64_t idx = 0, first = 0;
    size_t start;
    if (get_varint(r, &n, name, err) < 0)
        return TE_EPARSE;
    if (n > s->max_buckets)
        return te_err_set(err, TE_EPARSE, "sketch: %s store has %llu buckets (max_buckets %u)",
                          name, (unsigned long long)n, s->max_buckets);
    if (!n)
        return 0;
    start = r->pos;
    for (uint64_t i = 0; i < n; i++) {
        if (get_varint(r, &u, name, err) < 0 || get_varint(r, &c, name, err) < 0)
            return TE_EPARSE;
        if (i == 0) {
            idx = unzigzag(u);
            first = idx;
        } else {
            if (u == 0 || u > (uint64_t)(s->key.idx_max - s->key.idx_min))
                return te_err_set(err, TE_EPARSE, "sketch: %s store: bad index gap at byte %zu",
                                  name, r->pos);
            idx += (int64_t)u;
        }
        if (idx < s->key.idx_min || idx > s->key.idx_max)
            return te_err_set(err, TE_EPARSE, "sketch: %s store: index %lld out of range",
                              name, (long long)idx);
        if (idx - first + 1 > (int64_t)s->max_buckets)
            return te_err_set(err, TE_EPARSE, "sketch: %s store spans more than %u buckets",
                              name, s->max_buckets);
        if (c == 0 || c > UINT64_MAX - total)
            return te_err_set(err, TE_EPARSE, "sketch: %s store: bad count at byte %zu", name,
                              r->pos);
        total += c;
    }
    st->len = idx - first + 1;
    st->offset = first;
    st->counts = calloc((size_t)st->len, sizeof(*st->counts));
    if (!st->counts)
        return te_err_set(err, TE_ENOMEM, "sketch: cannot allocate buckets");
    r->pos = start;
    for (uint64_t i = 0; i < n; i++) {
        get_varint(r, &u, name, err);
        get_varint(r, &c, name, err);
        idx = i == 0 ? unzigzag(u) : idx + (int64_t)u;
        st->counts[idx - first] = c;
    }
    st->lo = first;
    st->hi = idx;
    st->total = total;
    return 0;
}

te_sketch_t *te_sketch_decode(const void *blob, size_t len, te_err_t *err)
{
    rbuf r = {blob, len, 0};
    te_sketch_t *s = NULL;
    uint64_t u = 0, acc_bits = 0, mb = 0;
    double acc;
    unsigned version, flags;
    int rc = TE_EPARSE;

    if (!blob || need(&r, HEADER_BYTES, "header", err) < 0)
        goto fail_set;
    if (memcmp(r.p, MAGIC, 4) != 0) {
        rc = te_err_set(err, TE_EPARSE, "sketch: bad magic (not a sketch blob)");
        goto fail;
    }
    version = r.p[4];
    flags = r.p[5];
    r.pos = 6;
    if (version != TE_SKETCH_FORMAT_VERSION) {
        rc = te_err_set(err, TE_EPARSE, "sketch: unsupported format version %u (this build reads %d)",
                        version, TE_SKETCH_FORMAT_VERSION);
        goto fail;
    }
    if (flags & ~1u) {
        rc = te_err_set(err, TE_EPARSE, "sketch: unknown flags 0x%02x", flags);
        goto fail;
    }
    get_u64le(&r, 8, &acc_bits, "accuracy", err);
    memcpy(&acc, &acc_bits, sizeof(acc));
    get_u64le(&r, 4, &mb, "max_buckets", err);
    if (check_params(acc, (uint32_t)mb, NULL) < 0) {
        rc = te_err_set(err, TE_EPARSE, "sketch: parameters out of range (accuracy %g, max_buckets %u)",
                        acc, (unsigned)mb);
        goto fail;
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        rc = te_err_set(err, TE_ENOMEM, "sketch: cannot allocate");
        goto fail;
    }
    set_params(s, acc, (uint32_t)mb);
    s->collapsed = flags & 1u;
    if (get_varint(&r, &s->count, "count", err) < 0 || get_varint(&r, &s->zero, "zero count", err) < 0 ||
        get_f64(&r, &s->sum, "sum", err) < 0 || get_f64(&r, &s->min, "min", err) < 0 ||
        get_f64(&r, &s->max, "max", err) < 0)
        goto fail;
    rc = get_store(&r, s, &s->neg, "negative", err);
    if (rc < 0)
        goto fail;
    rc = get_store(&r, s, &s->pos, "positive", err);
    if (rc < 0)
        goto fail;
    rc = TE_EPARSE;
    if (r.pos != r.len) {
        rc = te_err_set(err, TE_EPARSE, "sketch: %zu trailing bytes after byte %zu", r.len - r.pos,
                        r.pos);
        goto fail;
    }
    u = s->zero;
    if (s->neg.total > UINT64_MAX - u || s->pos.total > UINT64_MAX - u - s->neg.total ||
        u + s->neg.total + s->pos.total != s->count) {
        rc = te_err_set(err, TE_EPARSE, "sketch: bucket counts do not add up to count %llu",
                        (unsigned long long)s->count);
        goto fail;
    }
    if (isnan(s->sum) || (s->count == 0 && (s->sum != 0.0 || s->min != INFINITY || s->max != -INFINITY)) ||
        (s->count > 0 && !(isfinite(s->min) && isfinite(s->max) && s->min <= s->max))) {
        rc = te_err_set(err, TE_EPARSE, "sketch: sum/min/max inconsistent with count %llu",
                        (unsigned long long)s->count);
        goto fail;
    }
    return s;
fail_set:
    te_err_set(err, TE_EPARSE, "sketch: blob truncated (%zu bytes, header needs %d)", len,
               HEADER_BYTES);
fail:
    (void)rc;
    te_sketch_free(s);
    return NULL;
}
