/*
 * rollup_feed.c - the hour builder on a thread of its own: it takes the
 * events in and writes each hour's rows into memory once the hour is
 * over, while the owner goes on inserting raw events; an advance then
 * only inserts those rows.
 *
 * THREAD: te_rollup_feed_* and te_rollup_preps_* from the thread that owns
 * the read-write store (the writer); the feed's thread runs feed_main.
 *
 * Who owns what. The owner copies each event (kind, series, time, rowid,
 * fields blob) into a buffer; a full buffer goes to the thread while the
 * owner fills the other (two buffers of FEED_BYTES). The thread owns the
 * hour builder (slots, their index, the interned field names,
 * hour_bytes, r->staged) until te_rollup_feed_own, which waits for it to
 * finish what it was given and hands everything back (the mutex orders
 * the memory); rollup.c calls it before anything that reads or changes
 * the builder: a late event, a rollback, the bound, an advance that must
 * check or read back raw rows. What the two share under the lock: the
 * prepared hours r->preps and, per kind, the hour before which the
 * thread has prepared every event it was given (ready).
 *
 * Preparing. After each buffer, for each kind, the thread computes the
 * hour the next advance will reach (the newest event it saw, or now,
 * less the grace: rollup.c's rule) and writes its slots of hours before
 * it into memory (te_rollup_hour_prepare); an event that comes later for
 * such an hour (out of order) is prepared again after its buffer, as a
 * second entry (rows add up). It then publishes them, with ready.
 *
 * Taking (te_rollup_feed_take): an advance that trusts the builder (no
 * check against raw rows due, nothing lost at the bound) takes the
 * prepared hours of its kind without waiting, up to the least of its
 * target, the kind's ready hour, and the hour of the oldest event of
 * that kind still in a buffer (the owner notes each buffer's oldest per
 * kind): every event of the hours taken is then in what it takes. The
 * rest waits for a later advance.
 *
 * The builder's size (the bound, rollup.c) is read through an atomic copy
 * the thread updates after each buffer, plus the prepared bytes: it lags
 * by the events not added yet, and the owner takes the builder back
 * before acting on it.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/time.h"
#include "rollup_int.h"

/* Bytes of one buffer of events (records of FEED_HEAD bytes and a fields
 * blob, 8-aligned): ~2,500 events of a few fields. Each buffer costs a
 * wake of the thread, which a virtual machine makes expensive (tens of
 * microseconds); with the advance not waiting, larger is better. */
#define FEED_BYTES (256u << 10)

typedef struct feed_rec {
    int64_t kid, sid, ts, rowid;
    uint32_t flen;
} feed_rec_t;

#define FEED_HEAD ((sizeof(feed_rec_t) + 7) & ~(size_t)7)

/* Kinds a buffer notes its oldest event of; past them, its oldest event
 * of any kind stands for all. */
#define BUF_KINDS 8

typedef struct feed_buf {
    unsigned char *p;
    size_t len;
    int64_t kid[BUF_KINDS], oldest[BUF_KINDS];
    size_t nk;
    int64_t oldest_any;
} feed_buf_t;

/* What the thread saw of a kind: its newest event, the hour before which
 * its slots are prepared, and whether an event came since for an hour
 * before it. */
typedef struct feed_kind {
    int64_t kid, max_ts, upto;
    bool below;
} feed_kind_t;

/* Kinds the thread prepares (the first ones it sees; the others are
 * written by the advance, as without a feed). */
#define FEED_KINDS 64

struct te_rollup_feed {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t work_cv, idle_cv;
    feed_buf_t buf[2];
    feed_buf_t *fill;   /* the owner's */
    feed_buf_t *work;   /* handed to the thread; NULL when it is idle */
    bool stop;
    bool lost;          /* an add or a prepare failed since te_rollup_feed_own */
    feed_kind_t kinds[FEED_KINDS]; /* the thread's */
    size_t nkinds;
    /* under mu: per kind, the hour before which every event given is
     * prepared (published after each buffer) */
    int64_t ready_kid[FEED_KINDS], ready[FEED_KINDS];
    size_t nready;
    /* written once a buffer, read at every push: a cache line of its own,
     * or each push would wait for the thread's core */
    _Alignas(64) _Atomic size_t bytes;
    char pad[64 - sizeof(size_t)];
};

static void buf_clear(feed_buf_t *b)
{
    b->len = 0;
    b->nk = 0;
    b->oldest_any = INT64_MAX;
}

/* ---------- prepared hours ---------- */

te_rollup_prep_t *te_rollup_preps_add(te_rollup_preps_t *l)
{
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 8;
        te_rollup_prep_t *nv = realloc(l->v, ncap * sizeof(*nv));
        if (!nv)
            return NULL;
        l->v = nv;
        l->cap = ncap;
    }
    te_rollup_prep_t *p = &l->v[l->n++];
    *p = (te_rollup_prep_t){0};
    return p;
}

int te_rollup_preps_out(te_store_t *st, struct te_rollup *r, te_rollup_preps_t *l, int64_t kid,
                        int64_t before_hour, bool counted, te_err_t *err)
{
    int rc = 0;
    size_t keep = 0;
    for (size_t i = 0; i < l->n; i++) {
        te_rollup_prep_t *p = &l->v[i];
        if ((kid && p->kid != kid) || p->hour >= before_hour) {
            l->v[keep++] = *p;
            continue;
        }
        if (st && rc == 0 && p->oom)
            rc = te_err_set(err, TE_ENOMEM, "rollup: out of memory");
        for (size_t j = 0; j < p->nprows; j++) {
            te_rollup_prow_t *w = &p->prows[j];
            if (st && rc == 0)
                rc = te_rollup_1m_insert(st, r->put1m, p->kid, p->hour, w->n, w->p, w->len, err);
            free(w->p);
        }
        for (size_t j = 0; j < p->nhrows; j++) {
            if (st && rc == 0)
                rc = te_rollup_1h_write(st, &r->h1, &p->hrows[j], err);
            te_rollup_1h_free(&p->hrows[j]);
        }
        free(p->prows);
        free(p->hrows);
        if (counted)
            atomic_fetch_sub_explicit(&r->prep_bytes, p->bytes, memory_order_relaxed);
    }
    l->n = keep;
    return rc;
}

/* Makes room in l for more entries; false on ENOMEM. */
static bool preps_reserve(te_rollup_preps_t *l, size_t more)
{
    if (l->cap - l->n >= more)
        return true;
    size_t ncap = l->cap ? l->cap : 8;
    while (ncap - l->n < more)
        ncap *= 2;
    te_rollup_prep_t *nv = realloc(l->v, ncap * sizeof(*nv));
    if (!nv)
        return false;
    l->v = nv;
    l->cap = ncap;
    return true;
}

/* Moves src's entries to the end of dst; false (nothing moved) on
 * ENOMEM. */
static bool preps_move(te_rollup_preps_t *dst, te_rollup_preps_t *src)
{
    if (!preps_reserve(dst, src->n))
        return false;
    if (src->n)
        memcpy(dst->v + dst->n, src->v, src->n * sizeof(*src->v));
    dst->n += src->n;
    src->n = 0;
    return true;
}

/* ---------- the thread ---------- */

/* The thread's record of kind kid; NULL past FEED_KINDS kinds. */
static feed_kind_t *feed_kind(struct te_rollup_feed *f, int64_t kid)
{
    for (size_t i = 0; i < f->nkinds; i++)
        if (f->kinds[i].kid == kid)
            return &f->kinds[i];
    if (f->nkinds == FEED_KINDS)
        return NULL;
    f->kinds[f->nkinds] = (feed_kind_t){.kid = kid, .max_ts = INT64_MIN, .upto = INT64_MIN};
    return &f->kinds[f->nkinds++];
}

/* Adds buffer b's events to the builder and prepares the hours that are
 * over, into r->staged; *lost on a failure (the builder then lacks
 * events: the owner has them read back). */
static void feed_run(struct te_rollup *r, feed_buf_t *b, bool *lost)
{
    struct te_rollup_feed *f = r->feed;
    feed_kind_t *k = NULL;
    for (size_t pos = 0; pos < b->len;) {
        feed_rec_t h;
        memcpy(&h, b->p + pos, sizeof(h));
        const unsigned char *fields = h.flen ? b->p + pos + FEED_HEAD : NULL;
        pos += FEED_HEAD + ((h.flen + 7) & ~(size_t)7);
        /* after a failure the owner empties the builder: no more adds */
        if (!*lost && te_rollup_hour_add(r, h.kid, h.sid, h.ts, h.rowid, fields, h.flen) < 0)
            *lost = true;
        if (!k || k->kid != h.kid)
            k = feed_kind(f, h.kid);
        if (k && h.ts > k->max_ts)
            k->max_ts = h.ts;
        if (k && h.ts < k->upto)
            k->below = true;
    }
    int64_t now = te_time_now_ns();
    for (size_t i = 0; !*lost && i < f->nkinds; i++) {
        k = &f->kinds[i];
        int64_t newest = k->max_ts < now ? k->max_ts : now;
        if (newest < INT64_MIN + TE_ROLLUP_GRACE_NS)
            continue;
        int64_t t = te_rollup_bucket(newest - TE_ROLLUP_GRACE_NS, TE_ROLLUP_1H_NS);
        if (t <= k->upto && !k->below)
            continue;
        if (t < k->upto)
            t = k->upto;
        te_err_t err = {0};
        if (te_rollup_hour_prepare(r, k->kid, t, &err) < 0)
            *lost = true; /* its slots are gone: the owner has them read back */
        k->upto = t;
        k->below = false;
    }
    atomic_store_explicit(&f->bytes, r->hour_bytes, memory_order_relaxed);
}

/* Under f->mu: publishes the staged hours and the kinds' ready hours.
 * On ENOMEM the staged hours are dropped and *lost set. */
static void feed_publish(struct te_rollup *r, bool *lost)
{
    struct te_rollup_feed *f = r->feed;
    size_t bytes = 0;
    for (size_t i = 0; i < r->staged.n; i++)
        bytes += r->staged.v[i].bytes;
    if (preps_move(&r->preps, &r->staged)) {
        atomic_fetch_add_explicit(&r->prep_bytes, bytes, memory_order_relaxed);
    } else {
        te_rollup_preps_out(NULL, r, &r->staged, 0, INT64_MAX, false, NULL);
        *lost = true;
    }
    f->nready = f->nkinds;
    for (size_t i = 0; i < f->nkinds; i++) {
        f->ready_kid[i] = f->kinds[i].kid;
        f->ready[i] = *lost ? INT64_MIN : f->kinds[i].upto;
    }
}

static void *feed_main(void *arg)
{
    struct te_rollup *r = arg;
    struct te_rollup_feed *f = r->feed;
    pthread_mutex_lock(&f->mu);
    for (;;) {
        while (!f->work && !f->stop)
            pthread_cond_wait(&f->work_cv, &f->mu);
        if (!f->work)
            break; /* stop, and nothing left */
        feed_buf_t *b = f->work;
        bool lost = f->lost;
        pthread_mutex_unlock(&f->mu);
        feed_run(r, b, &lost);
        pthread_mutex_lock(&f->mu);
        feed_publish(r, &lost);
        f->lost = lost;
        buf_clear(b);
        f->work = NULL;
        pthread_cond_signal(&f->idle_cv);
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

/* Hands the filled buffer to the thread once it is idle; the owner fills
 * the other one. */
static void feed_hand(struct te_rollup_feed *f)
{
    pthread_mutex_lock(&f->mu);
    while (f->work)
        pthread_cond_wait(&f->idle_cv, &f->mu);
    f->work = f->fill;
    f->fill = f->fill == &f->buf[0] ? &f->buf[1] : &f->buf[0];
    pthread_cond_signal(&f->work_cv);
    pthread_mutex_unlock(&f->mu);
}

/* ---------- the owner's side ---------- */

bool te_rollup_feed_wanted(void)
{
    const char *e = getenv("TE_ROLLUP_THREAD");
    if (e && *e)
        return strcmp(e, "0") != 0;
    return sysconf(_SC_NPROCESSORS_ONLN) > 1;
}

int te_rollup_feed_start(struct te_rollup *r)
{
    if (r->feed)
        return 0;
    struct te_rollup_feed *f = calloc(1, sizeof(*f));
    if (!f)
        return TE_ENOMEM;
    f->buf[0].p = malloc(FEED_BYTES);
    f->buf[1].p = malloc(FEED_BYTES);
    buf_clear(&f->buf[0]);
    buf_clear(&f->buf[1]);
    f->fill = &f->buf[0];
    atomic_init(&f->bytes, r->hour_bytes);
    bool mu = false, cv1 = false, cv2 = false;
    if (f->buf[0].p && f->buf[1].p && (mu = pthread_mutex_init(&f->mu, NULL) == 0) &&
        (cv1 = pthread_cond_init(&f->work_cv, NULL) == 0) &&
        (cv2 = pthread_cond_init(&f->idle_cv, NULL) == 0)) {
        r->feed = f;
        if (pthread_create(&f->thread, NULL, feed_main, r) == 0)
            return 0;
        r->feed = NULL;
    }
    if (cv2)
        pthread_cond_destroy(&f->idle_cv);
    if (cv1)
        pthread_cond_destroy(&f->work_cv);
    if (mu)
        pthread_mutex_destroy(&f->mu);
    free(f->buf[0].p);
    free(f->buf[1].p);
    free(f);
    return TE_ENOMEM;
}

bool te_rollup_feed_push(struct te_rollup *r, int64_t kid, int64_t sid, int64_t ts,
                         int64_t rowid, const unsigned char *fields, size_t fields_len)
{
    struct te_rollup_feed *f = r->feed;
    if (!fields)
        fields_len = 0;
    size_t need = FEED_HEAD + ((fields_len + 7) & ~(size_t)7);
    if (need > FEED_BYTES)
        return false; /* the owner adds it itself */
    if (f->fill->len + need > FEED_BYTES)
        feed_hand(f);
    feed_buf_t *b = f->fill;
    feed_rec_t h = {.kid = kid, .sid = sid, .ts = ts, .rowid = rowid, .flen = (uint32_t)fields_len};
    unsigned char *p = b->p + b->len;
    memcpy(p, &h, sizeof(h));
    if (fields_len)
        memcpy(p + FEED_HEAD, fields, fields_len);
    b->len += need;
    /* the buffer's oldest event of this kind (te_rollup_feed_take) */
    if (ts < b->oldest_any)
        b->oldest_any = ts;
    size_t i = 0;
    while (i < b->nk && b->kid[i] != kid)
        i++;
    if (i == b->nk && i < BUF_KINDS) {
        b->kid[b->nk] = kid;
        b->oldest[b->nk++] = ts;
    } else if (i < b->nk && ts < b->oldest[i]) {
        b->oldest[i] = ts;
    }
    return true;
}

size_t te_rollup_feed_bytes(const struct te_rollup *r)
{
    size_t prep = atomic_load_explicit(&r->prep_bytes, memory_order_relaxed);
    return (r->feed ? atomic_load_explicit(&r->feed->bytes, memory_order_relaxed) : r->hour_bytes) +
           prep;
}

/* The oldest event of kind kid in buffer b (INT64_MAX: none). */
static int64_t buf_oldest(const feed_buf_t *b, int64_t kid)
{
    if (b->len == 0)
        return INT64_MAX;
    for (size_t i = 0; i < b->nk; i++)
        if (b->kid[i] == kid)
            return b->oldest[i];
    return b->nk < BUF_KINDS ? INT64_MAX : b->oldest_any;
}

int64_t te_rollup_feed_take(struct te_rollup *r, int64_t kid, int64_t to, te_rollup_preps_t *out)
{
    struct te_rollup_feed *f = r->feed;
    int64_t upto = INT64_MIN;
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < f->nready; i++)
        if (f->ready_kid[i] == kid)
            upto = f->ready[i];
    if (upto > to)
        upto = to;
    /* not past an hour that has an event still in a buffer */
    int64_t oldest = buf_oldest(f->fill, kid);
    if (f->work) {
        int64_t w = buf_oldest(f->work, kid);
        if (w < oldest)
            oldest = w;
    }
    if (oldest != INT64_MAX && te_rollup_bucket(oldest, TE_ROLLUP_1H_NS) < upto)
        upto = te_rollup_bucket(oldest, TE_ROLLUP_1H_NS);
    /* its prepared hours before upto, out of the shared list */
    size_t want = 0;
    for (size_t i = 0; i < r->preps.n; i++)
        want += r->preps.v[i].kid == kid && r->preps.v[i].hour < upto;
    if (!preps_reserve(out, want))
        upto = INT64_MIN; /* ENOMEM: nothing taken */
    size_t keep = 0;
    for (size_t i = 0; i < r->preps.n; i++) {
        te_rollup_prep_t *p = &r->preps.v[i];
        if (p->kid == kid && p->hour < upto)
            out->v[out->n++] = *p;
        else
            r->preps.v[keep++] = *p;
    }
    r->preps.n = keep;
    pthread_mutex_unlock(&f->mu);
    return upto;
}

void te_rollup_feed_kick(struct te_rollup *r)
{
    struct te_rollup_feed *f = r->feed;
    if (!f || f->fill->len == 0)
        return;
    pthread_mutex_lock(&f->mu);
    if (!f->work) {
        f->work = f->fill;
        f->fill = f->fill == &f->buf[0] ? &f->buf[1] : &f->buf[0];
        pthread_cond_signal(&f->work_cv);
    }
    pthread_mutex_unlock(&f->mu);
}

bool te_rollup_feed_own(struct te_rollup *r)
{
    struct te_rollup_feed *f = r->feed;
    if (!f)
        return true;
    if (f->fill->len)
        feed_hand(f);
    pthread_mutex_lock(&f->mu);
    while (f->work)
        pthread_cond_wait(&f->idle_cv, &f->mu);
    bool ok = !f->lost;
    f->lost = false;
    pthread_mutex_unlock(&f->mu);
    return ok;
}

void te_rollup_feed_stop(struct te_rollup *r)
{
    struct te_rollup_feed *f = r->feed;
    if (!f)
        return;
    buf_clear(f->fill); /* what was not handed over is dropped (closing) */
    pthread_mutex_lock(&f->mu);
    f->stop = true;
    pthread_cond_signal(&f->work_cv);
    pthread_mutex_unlock(&f->mu);
    pthread_join(f->thread, NULL);
    pthread_cond_destroy(&f->idle_cv);
    pthread_cond_destroy(&f->work_cv);
    pthread_mutex_destroy(&f->mu);
    free(f->buf[0].p);
    free(f->buf[1].p);
    free(f);
    r->feed = NULL;
}
