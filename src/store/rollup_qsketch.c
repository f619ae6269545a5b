/*
 * rollup_qsketch.c - the planner's quantile accumulator: merges encoded
 * rollup sketches straight from their blobs, without decoding each into a
 * te_sketch_t (no allocation per row: a 30-day hourly query merges ~70,000
 * blobs).
 *
 * THREAD: any (one owner).
 *
 * The one idea: same buckets, same walk. It keeps exactly what a
 * rules/sketch.c sketch of accuracy TE_ROLLUP_ACCURACY keeps (bucket i =
 * ceil(ln|v| / ln gamma) for |v| >= DBL_MIN, a zero count, exact count,
 * min, max) and answers a rank with the same walk and the same
 * representative value 2 gamma^i / (gamma + 1), so its estimates carry the
 * bound documented in rules/sketch.h. It reads the blob format of
 * te_sketch_encode (version 1, documented in sketch.h) and checks it as it
 * goes; a blob of another accuracy or version is merged through
 * te_sketch_decode instead. The dense bucket span per sign is capped like
 * a sketch's (2048): beyond it the lowest magnitudes collapse into the
 * lowest kept bucket.
 */
#include "rollup.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SPAN_MAX 2048

/* The dense span [off, off + len) grows exactly as a sketch's store does
 * (that decides what collapses), but inside a larger zeroed buffer: most
 * growth is then a change of off/len, not a new array and a copy (partial
 * sketches start small and widen a few buckets at a time). */
typedef struct qstore {
    uint64_t *c;            /* c[0] is bucket off; points into buf */
    int64_t off, len;
    uint64_t total;
    uint64_t *buf;          /* buf[0] is bucket boff; zero outside the span */
    int64_t boff, blen;
} qstore_t;

struct te_qsketch {
    double gamma, log_gamma, inv_log_gamma, mid;
    int64_t idx_min, idx_max;
    uint64_t count, zero;
    double min, max;
    qstore_t neg, pos;
};

te_qsketch_t *te_qsketch_new(void)
{
    te_qsketch_t *q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    double a = TE_ROLLUP_ACCURACY;
    q->gamma = (1.0 + a) / (1.0 - a);
    q->log_gamma = log(q->gamma);
    q->inv_log_gamma = 1.0 / q->log_gamma;
    q->mid = 2.0 * q->gamma / (q->gamma + 1.0);
    q->idx_min = (int64_t)floor(log(DBL_MIN) * q->inv_log_gamma) - 1;
    q->idx_max = (int64_t)ceil(log(DBL_MAX) * q->inv_log_gamma) + 1;
    q->min = INFINITY;
    q->max = -INFINITY;
    return q;
}

void te_qsketch_free(te_qsketch_t *q)
{
    if (!q)
        return;
    free(q->neg.buf);
    free(q->pos.buf);
    free(q);
}

uint64_t te_qsketch_count(const te_qsketch_t *q)
{
    return q->count;
}

/* Makes the span [lo, hi] (containing the current one unless collapse)
 * with the cells of the current span moved in, those below lo added to
 * bucket lo. */
static int qs_span(qstore_t *s, int64_t lo, int64_t hi, bool collapse)
{
    int64_t nlen = hi - lo + 1;
    if (!collapse && s->buf && lo >= s->boff && hi < s->boff + s->blen) {
        s->c = s->buf + (lo - s->boff);
        s->off = lo;
        s->len = nlen;
        return 0;
    }
    /* a new buffer: exact when first made or collapsing, else with room on
     * both sides */
    int64_t room = collapse || s->len == 0 ? 0 : nlen / 2 + 16;
    int64_t blo = lo - room, blen = nlen + 2 * room;
    uint64_t *nb = calloc((size_t)blen, sizeof(*nb));
    if (!nb)
        return TE_ENOMEM;
    for (int64_t j = 0; j < s->len; j++) {
        if (!s->c[j])
            continue;
        int64_t k = s->off + j;
        nb[(k < lo ? lo : k) - blo] += s->c[j];
    }
    free(s->buf);
    s->buf = nb;
    s->boff = blo;
    s->blen = blen;
    s->c = nb + (lo - blo);
    s->off = lo;
    s->len = nlen;
    return 0;
}

/* Adds n to bucket i of s, growing (or collapsing) the dense span. */
static int qs_add(qstore_t *s, int64_t i, uint64_t n)
{
    if (s->len == 0 && qs_span(s, i - 32, i + 31, false) < 0)
        return TE_ENOMEM;
    if (i < s->off || i >= s->off + s->len) {
        int64_t lo = i < s->off ? i - 16 : s->off;
        int64_t hi = i >= s->off + s->len ? i + 16 : s->off + s->len - 1;
        bool collapse = hi - lo + 1 > SPAN_MAX;
        if (collapse) {
            /* keep the top SPAN_MAX buckets; lower ones collapse upward */
            int64_t top = hi > s->off + s->len - 1 ? hi : s->off + s->len - 1;
            lo = top - SPAN_MAX + 1;
            hi = top;
        }
        if (qs_span(s, lo, hi, collapse) < 0)
            return TE_ENOMEM;
    }
    if (i < s->off)
        i = s->off;
    s->c[i - s->off] += n;
    s->total += n;
    return 0;
}

static int64_t key_of(const te_qsketch_t *q, double m)
{
    int64_t i = (int64_t)ceil(log(m) * q->inv_log_gamma);
    return i < q->idx_min ? q->idx_min : i > q->idx_max ? q->idx_max : i;
}

int te_qsketch_add(te_qsketch_t *q, double v)
{
    if (!isfinite(v))
        return 0;
    int rc = 0;
    if (v >= DBL_MIN)
        rc = qs_add(&q->pos, key_of(q, v), 1);
    else if (v <= -DBL_MIN)
        rc = qs_add(&q->neg, key_of(q, -v), 1);
    else
        q->zero++;
    if (rc < 0)
        return rc;
    q->count++;
    if (v < q->min)
        q->min = v;
    if (v > q->max)
        q->max = v;
    return 0;
}

/* ---------- blob reading (sketch.h, format version 1) ---------- */

typedef struct rd {
    const unsigned char *p;
    size_t len, pos;
} rd_t;

static bool rd_varint(rd_t *r, uint64_t *v)
{
    return te_rollup_get_varint(r->p, r->len, &r->pos, v);
}

static bool rd_le(rd_t *r, int bytes, uint64_t *v)
{
    if (r->len - r->pos < (size_t)bytes)
        return false;
    *v = 0;
    for (int i = 0; i < bytes; i++)
        *v |= (uint64_t)r->p[r->pos + i] << (8 * i);
    r->pos += (size_t)bytes;
    return true;
}

static bool rd_store(te_qsketch_t *q, rd_t *r, qstore_t *s, uint64_t *total)
{
    uint64_t n, u, c;
    int64_t idx = 0;
    if (!rd_varint(r, &n) || n > 65536)
        return false;
    for (uint64_t i = 0; i < n; i++) {
        if (!rd_varint(r, &u) || !rd_varint(r, &c) || c == 0)
            return false;
        if (i == 0)
            idx = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
        else if (u == 0 || u > (uint64_t)(q->idx_max - q->idx_min))
            return false;
        else
            idx += (int64_t)u;
        if (idx < q->idx_min || idx > q->idx_max || qs_add(s, idx, c) < 0)
            return false;
        *total += c;
    }
    return true;
}

int te_qsketch_merge_blob(te_qsketch_t *q, const void *blob, size_t len, te_err_t *err)
{
    rd_t r = {blob, len, 0};
    uint64_t acc_bits, mb, count, zero, b_min, b_max, b_sum, total = 0;
    double acc;
    if (len < 18 || memcmp(blob, "TESK", 4) != 0 || r.p[4] != 1 || (r.p[5] & ~1u))
        goto slow;
    r.pos = 6;
    rd_le(&r, 8, &acc_bits);
    memcpy(&acc, &acc_bits, 8);
    rd_le(&r, 4, &mb);
    if (acc != TE_ROLLUP_ACCURACY)
        goto slow;
    if (!rd_varint(&r, &count) || !rd_varint(&r, &zero) || !rd_le(&r, 8, &b_sum) ||
        !rd_le(&r, 8, &b_min) || !rd_le(&r, 8, &b_max))
        goto bad;
    /* the stores go straight into q; a bad blob fails the whole query, so
     * a half-merged q is never read */
    if (!rd_store(q, &r, &q->neg, &total) || !rd_store(q, &r, &q->pos, &total) ||
        r.pos != r.len || total + zero != count)
        goto bad;
    double mn, mx;
    memcpy(&mn, &b_min, 8);
    memcpy(&mx, &b_max, 8);
    q->zero += zero;
    q->count += count;
    if (count && mn < q->min)
        q->min = mn;
    if (count && mx > q->max)
        q->max = mx;
    return 0;
slow:
    return te_err_set(err, TE_EPARSE,
                      "rollup: sketch blob of another format or accuracy (run `db check`)");
bad:
    return te_err_set(err, TE_EPARSE, "rollup: bad sketch blob (run `db check`)");
}

int te_qsketch_merge(te_qsketch_t *q, int64_t n, double min, double max, const void *blob,
                     size_t blob_len, te_err_t *err)
{
    if (n <= 0)
        return 0;
    if (n <= 2 || !blob) {
        int rc = te_qsketch_add(q, min);
        if (rc == 0 && n == 2)
            rc = te_qsketch_add(q, max);
        return rc < 0 ? te_err_set(err, TE_ENOMEM, "rollup: out of memory") : 0;
    }
    return te_qsketch_merge_blob(q, blob, blob_len, err);
}

/* The planner folds a field's rows into one partial sketch per series and
 * merges those. Bucket counts add, so the result is the sketch of all the
 * values, as if each row had been merged here (barring the span cap's
 * collapse, which keeps the same bound either way). */
int te_qsketch_merge_sketch(te_qsketch_t *q, const te_qsketch_t *from)
{
    const qstore_t *src[2] = {&from->neg, &from->pos};
    qstore_t *dst[2] = {&q->neg, &q->pos};
    for (int k = 0; k < 2; k++)
        for (int64_t j = 0; j < src[k]->len; j++)
            if (src[k]->c[j] && qs_add(dst[k], src[k]->off + j, src[k]->c[j]) < 0)
                return TE_ENOMEM;
    q->zero += from->zero;
    q->count += from->count;
    if (from->min < q->min)
        q->min = from->min;
    if (from->max > q->max)
        q->max = from->max;
    return 0;
}

/* ---------- quantiles (the walk of te_sketch_quantile) ---------- */

static double value_of(const te_qsketch_t *q, int64_t i)
{
    return exp((double)(i - 1) * q->log_gamma) * q->mid;
}

/* Value of 0-based rank r (lower nearest rank). */
static double rank_value(const te_qsketch_t *q, uint64_t r)
{
    if (r == 0)
        return q->min;
    if (r + 1 >= q->count)
        return q->max;
    uint64_t cum = 0;
    double v = q->max;
    for (int64_t j = q->neg.len - 1; j >= 0; j--) {
        cum += q->neg.c[j];
        if (cum > r) {
            v = -value_of(q, q->neg.off + j);
            goto done;
        }
    }
    cum += q->zero;
    if (cum > r) {
        v = 0.0;
        goto done;
    }
    for (int64_t j = 0; j < q->pos.len; j++) {
        cum += q->pos.c[j];
        if (cum > r) {
            v = value_of(q, q->pos.off + j);
            goto done;
        }
    }
done:
    return v < q->min ? q->min : v > q->max ? q->max : v;
}

int te_qsketch_quantile(const te_qsketch_t *q, double p, double *out)
{
    if (q->count == 0)
        return TE_ENOTFOUND;
    double rank = p * (double)(q->count - 1);
    uint64_t lo = (uint64_t)floor(rank), hi = (uint64_t)ceil(rank);
    double vlo = rank_value(q, lo);
    double vhi = hi == lo ? vlo : rank_value(q, hi);
    *out = vlo + (vhi - vlo) * (rank - (double)lo);
    return 0;
}
