/*
 * window.c - time-sliced ring for one windowed aggregate (see window.h).
 *
 * THREAD: any (one owner).
 *
 * Invariant: every slot's idx is either stale (< lo of the current clock)
 * or in [lo, hi], and the live indices are at most n consecutive values,
 * so two live slices never share a slot. Readers therefore just skip slots
 * whose idx is outside [lo, hi]; nothing is cleared when time advances.
 */
#include "rules/window.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rules/sketch.h"

#define NS_PER_SEC INT64_C(1000000000)
#define NO_SLICE INT64_MIN

typedef struct slot {
    int64_t idx; /* slice index held, NO_SLICE when never used */
    uint64_t count;
    double sum, min, max;
    double last_v;
    int64_t last_ts;
    te_sketch_t *sk; /* TE_WINDOW_QUANTILE only; made on first use */
} slot;

typedef struct dentry {
    uint64_t key;
    int64_t idx; /* newest slice the key was seen in; NO_SLICE = empty */
} dentry;

struct te_window {
    int64_t w_ns, s_ns, future_ns;
    int64_t n;      /* slices in the window */
    int64_t cap;    /* slots allocated: grows to n as live slices need */
    int64_t now;
    int64_t lo, hi; /* live slice range as of now, cached by set_now */
    unsigned flags;
    double accuracy;
    uint64_t late, future;
    slot *slots;
    te_sketch_t *scratch;
    /* distinct set: open addressing, linear probing, rebuilt (not deleted
     * from) to drop expired keys */
    dentry *tab;
    size_t tab_cap, used;
    uint32_t dcap;
    int64_t capped_until; /* capped while this slice is live */
    int64_t full_lo;      /* lo at the last rebuild that found the set full */
};

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t ceil_div(int64_t a, int64_t b)
{
    return -floor_div(-a, b);
}

/* Sets the clock and the oldest/newest live slice index it implies. The
 * clamp keeps now - W and the index arithmetic free of overflow. */
static void set_now(te_window_t *w, int64_t now)
{
    if (now < -TE_WINDOW_MAX_NOW_NS)
        now = -TE_WINDOW_MAX_NOW_NS;
    if (now > TE_WINDOW_MAX_NOW_NS)
        now = TE_WINDOW_MAX_NOW_NS;
    w->now = now;
    w->lo = ceil_div(now - w->w_ns, w->s_ns);
    w->hi = floor_div(now - 1, w->s_ns);
}

static int64_t live_lo(const te_window_t *w)
{
    return w->lo;
}

static int64_t live_hi(const te_window_t *w)
{
    return w->hi;
}

static int64_t auto_slice(int64_t w_ns)
{
    int64_t cand = (w_ns / 60 + NS_PER_SEC / 2) / NS_PER_SEC;
    if (cand < 1)
        cand = 1;
    if (w_ns % NS_PER_SEC == 0) {
        int64_t ws = w_ns / NS_PER_SEC;
        for (int64_t d = cand; d >= 1 && ws / d <= TE_WINDOW_MAX_SLICES; d--)
            if (ws % d == 0)
                return d * NS_PER_SEC;
    }
    return cand * NS_PER_SEC;
}

static int check_opts(const te_window_opts_t *o, int64_t *slice_ns, te_err_t *err)
{
    int64_t s = o->slice_ns;
    if (o->window_ns <= 0 || o->window_ns > TE_WINDOW_MAX_NS)
        return te_err_set(err, TE_EINVAL, "window: length %lld ns out of range (use 1ms to 400d)",
                          (long long)o->window_ns);
    if (s == 0) {
        if (o->window_ns < NS_PER_SEC)
            return te_err_set(err, TE_EINVAL,
                              "window: length %lld ns is under 1s (give an explicit slice)",
                              (long long)o->window_ns);
        s = auto_slice(o->window_ns);
    }
    if (s < TE_WINDOW_MIN_SLICE_NS || s > o->window_ns)
        return te_err_set(err, TE_EINVAL,
                          "window: slice %lld ns out of range (use 1ms to the window length)",
                          (long long)s);
    if (ceil_div(o->window_ns, s) > TE_WINDOW_MAX_SLICES)
        return te_err_set(err, TE_EINVAL,
                          "window: %lld slices of %lld ns exceed %d (use a longer slice)",
                          (long long)ceil_div(o->window_ns, s), (long long)s,
                          TE_WINDOW_MAX_SLICES);
    if (o->future_ns < 0)
        return te_err_set(err, TE_EINVAL, "window: negative future tolerance %lld ns",
                          (long long)o->future_ns);
    if (o->flags & ~(TE_WINDOW_QUANTILE | TE_WINDOW_DISTINCT))
        return te_err_set(err, TE_EINVAL, "window: unknown flags 0x%x", o->flags);
    if (o->distinct_cap > TE_WINDOW_MAX_DISTINCT_CAP)
        return te_err_set(err, TE_EINVAL, "window: distinct cap %u over %u", o->distinct_cap,
                          TE_WINDOW_MAX_DISTINCT_CAP);
    *slice_ns = s;
    return 0;
}

te_window_t *te_window_new(const te_window_opts_t *opts, int64_t now_ns, te_err_t *err)
{
    te_window_t *w = NULL;
    int64_t s = 0;
    if (check_opts(opts, &s, err) < 0)
        return NULL;
    w = calloc(1, sizeof(*w));
    if (!w)
        goto nomem;
    w->w_ns = opts->window_ns;
    w->s_ns = s;
    w->future_ns = opts->future_ns ? opts->future_ns : TE_WINDOW_DEFAULT_FUTURE_NS;
    w->n = ceil_div(w->w_ns, s);
    set_now(w, now_ns);
    w->flags = opts->flags;
    w->accuracy = opts->accuracy;
    w->dcap = opts->distinct_cap ? opts->distinct_cap : TE_WINDOW_DEFAULT_DISTINCT_CAP;
    w->capped_until = NO_SLICE;
    w->full_lo = NO_SLICE;
    /* slots come with the first event: a group seen once keeps 2, not n */
    if (w->flags & TE_WINDOW_QUANTILE) {
        w->scratch = te_sketch_new(w->accuracy, 0, err);
        if (!w->scratch)
            goto fail;
    }
    return w;
nomem:
    te_err_set(err, TE_ENOMEM, "window: cannot allocate");
fail:
    te_window_free(w);
    return NULL;
}

void te_window_free(te_window_t *w)
{
    if (!w)
        return;
    if (w->slots)
        for (int64_t i = 0; i < w->cap; i++)
            te_sketch_free(w->slots[i].sk);
    free(w->slots);
    te_sketch_free(w->scratch);
    free(w->tab);
    free(w);
}

void te_window_advance(te_window_t *w, int64_t now_ns)
{
    if (now_ns > w->now)
        set_now(w, now_ns);
}

int64_t te_window_now(const te_window_t *w)
{
    return w->now;
}

/* Slice index for an event at ts, or NO_SLICE when it is dropped (and
 * counted as late or future). */
static int64_t place(te_window_t *w, int64_t ts)
{
    int64_t k, hi;
    if (ts >= w->now) {
        /* unsigned: ts - now cannot overflow for any ts >= now */
        if ((uint64_t)ts - (uint64_t)w->now > (uint64_t)w->future_ns) {
            w->future++;
            return NO_SLICE;
        }
        return live_hi(w);
    }
    k = floor_div(ts, w->s_ns);
    if (k < live_lo(w)) {
        w->late++;
        return NO_SLICE;
    }
    hi = live_hi(w);
    return k > hi ? hi : k;
}

static int64_t slot_index(int64_t k, int64_t cap)
{
    int64_t i = k % cap;
    return i < 0 ? i + cap : i;
}

/* Makes the ring cap slots or more (doubling, at most n) so that slice k
 * and every live slice have a slot of their own; stale slots are dropped.
 * Live slices span at most n consecutive indices, so n slots always do.
 * Returns 0 or TE_ENOMEM (the ring is then unchanged). */
static int ring_grow(te_window_t *w, int64_t k)
{
    int64_t lo = live_lo(w), hi = live_hi(w), a = k, b = k;
    for (int64_t i = 0; i < w->cap; i++) {
        int64_t x = w->slots[i].idx;
        if (x != NO_SLICE && x >= lo && x <= hi) {
            a = x < a ? x : a;
            b = x > b ? x : b;
        }
    }
    /* indices of a span shorter than the ring never share a slot */
    int64_t ncap = w->cap ? w->cap : 1;
    do
        ncap = ncap * 2 < w->n ? ncap * 2 : w->n;
    while (ncap <= b - a && ncap < w->n);
    slot *ns = calloc((size_t)ncap, sizeof(*ns));
    if (!ns)
        return TE_ENOMEM;
    for (int64_t i = 0; i < ncap; i++)
        ns[i].idx = NO_SLICE;
    for (int64_t i = 0; i < w->cap; i++) {
        slot *o = &w->slots[i];
        if (o->idx != NO_SLICE && o->idx >= lo && o->idx <= hi)
            ns[slot_index(o->idx, ncap)] = *o;
        else
            te_sketch_free(o->sk);
    }
    free(w->slots);
    w->slots = ns;
    w->cap = ncap;
    return 0;
}

/* The slot of live slice k, recycled from a stale slice when needed; NULL
 * on ENOMEM. */
static slot *slot_for(te_window_t *w, int64_t k)
{
    slot *sl = w->cap ? &w->slots[slot_index(k, w->cap)] : NULL;
    if (!sl || (sl->idx != k && sl->idx != NO_SLICE && sl->idx >= live_lo(w) &&
                sl->idx <= live_hi(w))) {
        if (ring_grow(w, k) < 0)
            return NULL;
        sl = &w->slots[slot_index(k, w->cap)];
    }
    if (sl->idx != k) {
        sl->idx = k;
        sl->count = 0;
        sl->sum = 0.0;
        sl->min = INFINITY;
        sl->max = -INFINITY;
        sl->last_v = 0.0;
        sl->last_ts = INT64_MIN;
        if (sl->sk)
            te_sketch_reset(sl->sk);
    }
    return sl;
}

int te_window_add(te_window_t *w, int64_t ts_ns, double v)
{
    int64_t k;
    slot *sl;
    if (!isfinite(v))
        return TE_EINVAL;
    k = place(w, ts_ns);
    if (k == NO_SLICE)
        return 0;
    sl = slot_for(w, k);
    if (!sl)
        return TE_ENOMEM;
    sl->count++;
    sl->sum += v;
    if (v < sl->min)
        sl->min = v;
    if (v > sl->max)
        sl->max = v;
    if (ts_ns >= sl->last_ts) {
        sl->last_ts = ts_ns;
        sl->last_v = v;
    }
    if (w->flags & TE_WINDOW_QUANTILE) {
        if (!sl->sk) {
            sl->sk = te_sketch_new(w->accuracy, 0, NULL);
            if (!sl->sk)
                return TE_ENOMEM;
        }
        return te_sketch_add(sl->sk, v);
    }
    return 0;
}

/* ---- distinct set ------------------------------------------------------ */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

uint64_t te_window_key_hash(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return mix64(h);
}

static dentry *probe(dentry *tab, size_t cap, uint64_t key)
{
    size_t i = (size_t)mix64(key) & (cap - 1);
    while (tab[i].idx != NO_SLICE && tab[i].key != key)
        i = (i + 1) & (cap - 1);
    return &tab[i];
}

/* Rebuilds the table with only the keys live as of lo, sized for live + 1
 * keys at load <= 1/2. Returns the live count, or -1 on ENOMEM (then the
 * old table stays). */
static int64_t rebuild(te_window_t *w, int64_t lo)
{
    size_t live = 0, cap = 16;
    dentry *nt;
    for (size_t i = 0; i < w->tab_cap; i++)
        live += w->tab[i].idx != NO_SLICE && w->tab[i].idx >= lo;
    while (cap < 2 * (live + 1))
        cap *= 2;
    nt = malloc(cap * sizeof(*nt));
    if (!nt)
        return -1;
    for (size_t i = 0; i < cap; i++)
        nt[i].idx = NO_SLICE;
    for (size_t i = 0; i < w->tab_cap; i++)
        if (w->tab[i].idx != NO_SLICE && w->tab[i].idx >= lo)
            *probe(nt, cap, w->tab[i].key) = w->tab[i];
    free(w->tab);
    w->tab = nt;
    w->tab_cap = cap;
    w->used = live;
    return (int64_t)live;
}

int te_window_add_key(te_window_t *w, int64_t ts_ns, uint64_t key)
{
    int64_t k, lo;
    dentry *e;
    if (!(w->flags & TE_WINDOW_DISTINCT))
        return TE_EINVAL;
    k = place(w, ts_ns);
    if (k == NO_SLICE)
        return 0;
    if (w->tab) {
        e = probe(w->tab, w->tab_cap, key);
        if (e->idx != NO_SLICE) {
            if (k > e->idx)
                e->idx = k;
            return 0;
        }
    }
    /* A new key: make room first (drop expired keys, grow), then insert. */
    lo = live_lo(w);
    if (!w->tab || w->used >= w->dcap || 2 * (w->used + 1) > w->tab_cap) {
        int64_t live;
        if (w->used >= w->dcap && w->full_lo == lo) {
            w->capped_until = k > w->capped_until ? k : w->capped_until;
            return 0; /* still full: nothing expired since the last look */
        }
        live = rebuild(w, lo);
        if (live < 0) {
            w->capped_until = k > w->capped_until ? k : w->capped_until;
            return TE_ENOMEM;
        }
        if (live >= (int64_t)w->dcap) {
            w->full_lo = lo;
            w->capped_until = k > w->capped_until ? k : w->capped_until;
            return 0;
        }
    }
    e = probe(w->tab, w->tab_cap, key);
    e->key = key;
    e->idx = k;
    w->used++;
    return 0;
}

int te_window_distinct(const te_window_t *w, uint64_t *count, bool *capped)
{
    int64_t lo, hi;
    uint64_t n = 0;
    if (!(w->flags & TE_WINDOW_DISTINCT))
        return TE_EINVAL;
    lo = live_lo(w);
    hi = live_hi(w);
    for (size_t i = 0; i < w->tab_cap; i++)
        n += w->tab[i].idx != NO_SLICE && w->tab[i].idx >= lo && w->tab[i].idx <= hi;
    *count = n;
    *capped = w->capped_until != NO_SLICE && w->capped_until >= lo;
    return 0;
}

/* ---- readers ----------------------------------------------------------- */

/* Calls through the live slots: for (sl = first_live(..); sl; sl = next). */
static const slot *next_live(const te_window_t *w, int64_t *i, int64_t lo, int64_t hi)
{
    while (*i < w->cap) {
        const slot *sl = &w->slots[(*i)++];
        if (sl->idx >= lo && sl->idx <= hi && sl->count)
            return sl;
    }
    return NULL;
}

uint64_t te_window_count(const te_window_t *w)
{
    int64_t i = 0, lo = live_lo(w), hi = live_hi(w);
    uint64_t n = 0;
    for (const slot *sl = next_live(w, &i, lo, hi); sl; sl = next_live(w, &i, lo, hi))
        n += sl->count;
    return n;
}

double te_window_sum(const te_window_t *w)
{
    int64_t i = 0, lo = live_lo(w), hi = live_hi(w);
    double s = 0.0;
    for (const slot *sl = next_live(w, &i, lo, hi); sl; sl = next_live(w, &i, lo, hi))
        s += sl->sum;
    return s;
}

double te_window_rate(const te_window_t *w)
{
    return (double)te_window_count(w) / ((double)w->w_ns / (double)NS_PER_SEC);
}

int te_window_avg(const te_window_t *w, double *out)
{
    uint64_t n = te_window_count(w);
    if (!n)
        return TE_ENOTFOUND;
    *out = te_window_sum(w) / (double)n;
    return 0;
}

int te_window_min(const te_window_t *w, double *out)
{
    int64_t i = 0, lo = live_lo(w), hi = live_hi(w);
    double m = INFINITY;
    bool any = false;
    for (const slot *sl = next_live(w, &i, lo, hi); sl; sl = next_live(w, &i, lo, hi)) {
        any = true;
        if (sl->min < m)
            m = sl->min;
    }
    if (!any)
        return TE_ENOTFOUND;
    *out = m;
    return 0;
}

int te_window_max(const te_window_t *w, double *out)
{
    int64_t i = 0, lo = live_lo(w), hi = live_hi(w);
    double m = -INFINITY;
    bool any = false;
    for (const slot *sl = next_live(w, &i, lo, hi); sl; sl = next_live(w, &i, lo, hi)) {
        any = true;
        if (sl->max > m)
            m = sl->max;
    }
    if (!any)
        return TE_ENOTFOUND;
    *out = m;
    return 0;
}

int te_window_last(const te_window_t *w, double *value, int64_t *ts_ns)
{
    int64_t i = 0, lo = live_lo(w), hi = live_hi(w);
    const slot *best = NULL;
    for (const slot *sl = next_live(w, &i, lo, hi); sl; sl = next_live(w, &i, lo, hi))
        if (!best || sl->last_ts > best->last_ts ||
            (sl->last_ts == best->last_ts && sl->idx > best->idx))
            best = sl;
    if (!best)
        return TE_ENOTFOUND;
    *value = best->last_v;
    if (ts_ns)
        *ts_ns = best->last_ts;
    return 0;
}

int te_window_quantile(te_window_t *w, double q, double *out)
{
    int64_t i = 0, lo = live_lo(w), hi = live_hi(w);
    int rc;
    if (!(w->flags & TE_WINDOW_QUANTILE) || !(q >= 0.0 && q <= 1.0))
        return TE_EINVAL;
    te_sketch_reset(w->scratch);
    for (const slot *sl = next_live(w, &i, lo, hi); sl; sl = next_live(w, &i, lo, hi)) {
        if (!sl->sk)
            continue;
        rc = te_sketch_merge(w->scratch, sl->sk, NULL);
        if (rc < 0)
            return rc;
    }
    return te_sketch_quantile(w->scratch, q, out);
}

uint64_t te_window_late(const te_window_t *w)
{
    return w->late;
}

uint64_t te_window_future(const te_window_t *w)
{
    return w->future;
}

int64_t te_window_slice_ns(const te_window_t *w)
{
    return w->s_ns;
}

int64_t te_window_slices(const te_window_t *w)
{
    return w->n;
}
