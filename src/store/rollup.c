/*
 * rollup.c - the write side of the 1-minute and 1-hour rollups: per-kind
 * watermarks, rolling raw events up when a watermark advances, merging
 * late events into existing rows, the catch-up of a database that predates
 * rollups, and the sketch helpers the planner (query.c) shares.
 *
 * THREAD: one thread at a time per te_store_t (the writer for the write
 * side; any reader for the helpers).
 *
 * The one idea: a bucket's row is written once, when its hour is closed.
 * Per kind, watermarks w1m / w1h (rollup_state, sql_v4.h) split time:
 * events before w are in the rollup tables, events at or after w are not
 * (the planner reads raw events there). At commit, for each kind the
 * transaction touched, the watermark moves up to min(newest event, now) -
 * GRACE, floored to the hour, and the hours it passes are written as
 * whole rows in the same transaction as the new watermark.
 *
 * Where those rows come from: each stored event at or after w also goes
 * into the hour builder (rollup_hour.c), so closing an hour reads nothing
 * back. Memory is only trusted when the database agrees: before writing
 * [w, new w) from memory, the advance counts the raw events there and
 * sums their rowids (one covering index range); any difference (a second
 * writer process such as `ingest` while `serve` runs, a rollback, events
 * stored before this process opened, memory dropped over its bound) makes
 * it read those hours back raw, in time order, through the same builder.
 * So a crash, a rollback or another writer cannot lose or double
 * anything: whoever advances a watermark does it under the write lock
 * from what is committed.
 *
 * Late events (ts below a watermark: out-of-order delivery, re-ingest,
 * backfill) are accumulated per transaction (n, sum, min, max, and a
 * sketch once an accumulator holds a third value; two values are exactly
 * {min, max}, which is also how a row with n <= 2 is stored: without a
 * sketch blob) and written at commit: their 1-minute cells as new pack
 * rows, which readers add to the rows already there (sql_v7.h), their
 * 1-hour values merged into their chunk rows (rollup_1h.h): one
 * read-merge-write per touched (kind, field, hour, chunk), not per event.
 * A rollback drops them. An event older than its kind's archive mark is not rolled up: it
 * comes back from an archive and its contribution is already there.
 *
 * Catch-up: at every read-write open, each kind whose watermark lags its
 * raw events by more than GRACE + a minute (a database from before
 * rollups, a writer that ran with rollups off) is rolled up a day per
 * transaction, so the write lock is never held for long and an interrupted
 * catch-up resumes where it stopped.
 */
#include "rollup.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/time.h"
#include "rollup_int.h"
#include "sql.h"

/* the hour builder's memory bound: past it, what the inserts gave it is
 * dropped (read back raw), and a raw read writes its hours in parts (they
 * add up: 1-minute rows are summed by readers, 1-hour rows merge) */
#define HOUR_BYTES (4u << 20)
/* the same bound for a raw read-back inside one advance (transient: the
 * slots are written and trimmed before the advance returns). An hour that
 * fits is written whole; past it, in parts */
#define RAW_HOUR_BYTES (16u << 20)
/* catch-up: at most this much event time per transaction */
#define CATCHUP_STEP_NS (24 * TE_ROLLUP_1H_NS)
/* sketches kept for reuse; more are freed */
#define POOL_MAX 16384u

typedef te_rollup_ent_t ent_t;
typedef te_rollup_kstate_t kstate_t;

/* ---------- sketch helpers ---------- */

static int sk_add(te_sketch_t *sk, double v)
{
    if (!isfinite(v))
        return 0; /* counted in n/sum/min/max, not sketchable */
    return te_sketch_add(sk, v);
}

/* Value of the 0-based rank r (lower nearest rank) of n values. */
static double rank_value(const te_sketch_t *sk, uint64_t n, uint64_t r)
{
    double q = r + 1 >= n ? 1.0 : ((double)r + 0.5) / (double)(n - 1);
    double v = 0;
    te_sketch_quantile(sk, q > 1.0 ? 1.0 : q, &v);
    return v;
}

int te_rollup_quantile(const te_sketch_t *sk, double p, double *out)
{
    uint64_t n = te_sketch_count(sk);
    if (n == 0)
        return TE_ENOTFOUND;
    double rank = p * (double)(n - 1);
    uint64_t lo = (uint64_t)floor(rank), hi = (uint64_t)ceil(rank);
    double vlo = rank_value(sk, n, lo);
    double vhi = hi == lo ? vlo : rank_value(sk, n, hi);
    *out = vlo + (vhi - vlo) * (rank - (double)lo);
    return 0;
}

/* ---------- accumulators ---------- */

static uint64_t ent_hash(int64_t sid, int64_t bucket, uint32_t field, uint8_t res)
{
    /* murmur3's fmix64 over a mix of the key: buckets are multiples of a
     * minute (their low bits are zero), so everything must be stirred */
    uint64_t h = (uint64_t)sid * 0x9E3779B97F4A7C15ull ^ (uint64_t)bucket ^
                 ((uint64_t)field << 1 | res) * 0xC2B2AE3D27D4EB4Full;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

static int idx_grow(struct te_rollup *r)
{
    size_t ncap = r->idx_cap ? r->idx_cap * 2 : 1024;
    uint32_t *ni = calloc(ncap, sizeof(*ni));
    if (!ni)
        return TE_ENOMEM;
    free(r->idx);
    r->idx = ni;
    r->idx_cap = ncap;
    for (size_t i = 0; i < r->nents; i++) {
        ent_t *e = &r->ents[i];
        size_t j = ent_hash(e->sid, e->bucket, e->field, e->res) & (ncap - 1);
        while (r->idx[j])
            j = (j + 1) & (ncap - 1);
        r->idx[j] = (uint32_t)i + 1;
    }
    return 0;
}

/* Re-indexes the entries after they were reordered. */
static void idx_rebuild(struct te_rollup *r)
{
    if (!r->idx)
        return;
    size_t mask = r->idx_cap - 1;
    memset(r->idx, 0, r->idx_cap * sizeof(*r->idx));
    for (size_t i = 0; i < r->nents; i++) {
        ent_t *e = &r->ents[i];
        size_t j = ent_hash(e->sid, e->bucket, e->field, e->res) & mask;
        while (r->idx[j])
            j = (j + 1) & mask;
        r->idx[j] = (uint32_t)i + 1;
    }
}

ent_t *te_rollup_ent(struct te_rollup *r, int64_t kid, int64_t sid, int64_t bucket,
                      uint32_t field, uint8_t res)
{
    if ((r->nents + 1) * 2 > r->idx_cap && idx_grow(r) < 0)
        return NULL;
    size_t mask = r->idx_cap - 1;
    size_t j = ent_hash(sid, bucket, field, res) & mask;
    while (r->idx[j]) {
        ent_t *e = &r->ents[r->idx[j] - 1];
        if (e->sid == sid && e->bucket == bucket && e->field == field && e->res == res)
            return e;
        j = (j + 1) & mask;
    }
    if (r->nents == r->cap_ents) {
        size_t ncap = r->cap_ents ? r->cap_ents * 2 : 512;
        ent_t *ne = realloc(r->ents, ncap * sizeof(*ne));
        if (!ne)
            return NULL;
        r->ents = ne;
        r->cap_ents = ncap;
    }
    ent_t *e = &r->ents[r->nents];
    *e = (ent_t){.kid = kid, .sid = sid, .bucket = bucket, .field = field, .res = res};
    r->idx[j] = (uint32_t)++r->nents;
    return e;
}

te_sketch_t *te_rollup_sketch_take(struct te_rollup *r)
{
    if (r->npool)
        return r->pool[--r->npool];
    return te_sketch_new(TE_ROLLUP_ACCURACY, 0, NULL);
}

void te_rollup_sketch_give(struct te_rollup *r, te_sketch_t *sk)
{
    if (!sk)
        return;
    if (r->npool >= POOL_MAX) {
        te_sketch_free(sk);
        return;
    }
    if (r->npool == r->cap_pool) {
        size_t ncap = r->cap_pool ? r->cap_pool * 2 : 64;
        te_sketch_t **np = realloc(r->pool, ncap * sizeof(*np));
        if (!np) {
            te_sketch_free(sk);
            return;
        }
        r->pool = np;
        r->cap_pool = ncap;
    }
    te_sketch_reset(sk);
    r->pool[r->npool++] = sk;
}

int te_rollup_ent_sketch(struct te_rollup *r, ent_t *e)
{
    if (e->sk)
        return 0;
    e->sk = te_rollup_sketch_take(r);
    if (!e->sk)
        return TE_ENOMEM;
    for (int64_t i = 0; i < e->n && i < TE_ROLLUP_VALS; i++)
        if (sk_add(e->sk, e->v[i]) < 0)
            return TE_ENOMEM;
    return 0;
}

int te_rollup_ent_add(struct te_rollup *r, ent_t *e, double v)
{
    if (!e->sk && e->n < TE_ROLLUP_VALS)
        e->v[e->n] = v;
    else if (te_rollup_ent_sketch(r, e) < 0 || sk_add(e->sk, v) < 0)
        return TE_ENOMEM;
    if (e->n == 0 || v < e->min)
        e->min = v;
    if (e->n == 0 || v > e->max)
        e->max = v;
    e->n++;
    e->sum += v;
    return 0;
}

int te_rollup_field(struct te_rollup *r, const char *name, size_t len, uint32_t *out)
{
    uint64_t h = te_store_hash(name, len, 11);
    te_series_slot_t *s = te_series_map_find(&r->fmap, 0, name, len, h);
    if (s) {
        *out = (uint32_t)s->id;
        return 0;
    }
    if (r->nfields == r->cap_fields) {
        size_t ncap = r->cap_fields ? r->cap_fields * 2 : 32;
        char **nn = realloc(r->fnames, ncap * sizeof(*nn));
        if (!nn)
            return TE_ENOMEM;
        r->fnames = nn;
        size_t *nl = realloc(r->flens, ncap * sizeof(*nl));
        if (!nl)
            return TE_ENOMEM;
        r->flens = nl;
        r->cap_fields = ncap;
    }
    char *copy = malloc(len + 1);
    if (!copy)
        return TE_ENOMEM;
    memcpy(copy, name, len);
    copy[len] = '\0';
    if (te_series_map_put(&r->fmap, 0, name, len, h, (int64_t)r->nfields) < 0) {
        free(copy);
        return TE_ENOMEM;
    }
    r->fnames[r->nfields] = copy;
    r->flens[r->nfields] = len;
    *out = (uint32_t)r->nfields++;
    return 0;
}

static const int64_t RES_NS[2] = {TE_ROLLUP_1M_NS, TE_ROLLUP_1H_NS};

/* Adds one event to the accumulators of the resolutions in mask (bit 0:
 * 1m, bit 1: 1h). */
static int add_event(struct te_rollup *r, int64_t kid, int64_t sid, int64_t ts,
                     const unsigned char *blob, size_t blen, unsigned mask)
{
    int64_t bk[2] = {te_rollup_bucket(ts, RES_NS[0]), te_rollup_bucket(ts, RES_NS[1])};
    for (uint8_t res = 0; res < 2; res++) {
        if (!(mask & (1u << res)))
            continue;
        ent_t *e = te_rollup_ent(r, kid, sid, bk[res], 0, res);
        if (!e)
            return TE_ENOMEM;
        e->n++;
    }
    size_t pos = 0;
    const char *key;
    size_t klen;
    double v;
    while (blob && te_fields_blob_next(blob, blen, &pos, &key, &klen, &v)) {
        if (isnan(v))
            continue;
        uint32_t f;
        if (te_rollup_field(r, key, klen, &f) < 0)
            return TE_ENOMEM;
        for (uint8_t res = 0; res < 2; res++) {
            if (!(mask & (1u << res)))
                continue;
            ent_t *e = te_rollup_ent(r, kid, sid, bk[res], f, res);
            if (!e || te_rollup_ent_add(r, e, v) < 0)
                return TE_ENOMEM;
        }
    }
    return 0;
}

/* Orders 1-minute entries by (kind, series, bucket, field). */
static int cmp_ent(const void *a, const void *b)
{
    const ent_t *x = a, *y = b;
    if (x->res != y->res)
        return x->res < y->res ? -1 : 1;
    if (x->kid != y->kid)
        return x->kid < y->kid ? -1 : 1;
    int64_t hx = te_rollup_bucket(x->bucket, TE_ROLLUP_1H_NS);
    int64_t hy = te_rollup_bucket(y->bucket, TE_ROLLUP_1H_NS);
    if (hx != hy) /* a (kind, hour)'s series together: one pack row */
        return hx < hy ? -1 : 1;
    if (x->sid != y->sid)
        return x->sid < y->sid ? -1 : 1;
    if (x->bucket != y->bucket)
        return x->bucket < y->bucket ? -1 : 1;
    return x->field < y->field ? -1 : x->field > y->field;
}

/* Orders 1-hour entries by (kind, field, bucket, series): chunk rows. */
static int cmp_1h(const void *a, const void *b)
{
    const ent_t *x = a, *y = b;
    if (x->kid != y->kid)
        return x->kid < y->kid ? -1 : 1;
    if (x->field != y->field)
        return x->field < y->field ? -1 : 1;
    if (x->bucket != y->bucket)
        return x->bucket < y->bucket ? -1 : 1;
    return x->sid < y->sid ? -1 : x->sid > y->sid;
}

static bool same_row(const ent_t *a, const ent_t *b)
{
    return a->res == 0 && b->res == 0 && a->kid == b->kid && a->sid == b->sid &&
           te_rollup_bucket(a->bucket, TE_ROLLUP_1H_NS) ==
               te_rollup_bucket(b->bucket, TE_ROLLUP_1H_NS);
}

/* Writes every 1-minute accumulator as its series' hour, packed with the
 * others of the same (kind, hour) (rollup_row.c). Rows already there are
 * left alone: readers add up a series' hour across rows (sql_v7.h), so
 * late events cost no read-merge-write. */
static int flush_1m(te_store_t *st, struct te_rollup *r, te_err_t *err)
{
    int rc = 0;
    qsort(r->ents, r->nents, sizeof(ent_t), cmp_ent);
    idx_rebuild(r);
    for (size_t i = 0; rc == 0 && i < r->nents;) {
        size_t j = i + 1;
        if (r->ents[i].res != 0) {
            i++;
            continue;
        }
        while (j < r->nents && same_row(&r->ents[i], &r->ents[j]))
            j++;
        rc = te_rollup_put_1m(st, r, r->ents[i].kid, r->ents[i].sid,
                              te_rollup_bucket(r->ents[i].bucket, TE_ROLLUP_1H_NS), &r->ents[i],
                              j - i, err);
        i = j;
    }
    if (rc == 0)
        return te_rollup_put_1m_end(st, r, err);
    r->pack.open = false; /* the transaction is rolled back */
    return rc;
}

static void clear_ents(struct te_rollup *r)
{
    for (size_t i = 0; i < r->nents; i++)
        te_rollup_sketch_give(r, r->ents[i].sk);
    r->nents = 0;
    if (r->idx)
        memset(r->idx, 0, r->idx_cap * sizeof(*r->idx));
}

/* Writes every accumulator (rollup_int.h). */
int te_rollup_flush_ents(te_store_t *st, te_err_t *err)
{
    struct te_rollup *r = st->rollup;
    if (r->nents == 0)
        return 0;
    int rc = flush_1m(st, r, err);
    /* flush_1m sorted them: the 1-hour entries come last */
    size_t h = 0;
    while (h < r->nents && r->ents[h].res == 0)
        h++;
    qsort(r->ents + h, r->nents - h, sizeof(ent_t), cmp_1h);
    if (rc == 0)
        rc = te_rollup_put_1h_ents(st, r, r->ents + h, r->nents - h, err);
    clear_ents(r);
    return rc;
}

/* Hours up to that of ts (inclusive) need checking against the raw rows. */
static void verify_through(struct te_rollup *r, int64_t ts)
{
    int64_t h = te_rollup_bucket(ts, TE_ROLLUP_1H_NS);
    h = h <= INT64_MAX - TE_ROLLUP_1H_NS ? h + TE_ROLLUP_1H_NS : INT64_MAX;
    if (h > r->verify_upto)
        r->verify_upto = h;
}

/* Hours up to that of ts (inclusive) lost events at the builder's bound:
 * they are read back, so the builder takes no more of them. */
static void lose_through(struct te_rollup *r, int64_t ts)
{
    if (ts == INT64_MIN)
        return;
    int64_t h = te_rollup_bucket(ts, TE_ROLLUP_1H_NS);
    h = h <= INT64_MAX - TE_ROLLUP_1H_NS ? h + TE_ROLLUP_1H_NS : INT64_MAX;
    if (h > r->lost_upto)
        r->lost_upto = h;
}

/* Empties the hour builder; the hours it held must then be checked. */
static void hour_forget(struct te_rollup *r)
{
    te_rollup_hour_drop(r, 0, INT64_MAX);
    te_rollup_hour_shrink(r);
    if (r->mem_max_ts != INT64_MIN)
        verify_through(r, r->mem_max_ts);
}

/* Takes the hour builder back from its thread (rollup_feed.c) before
 * reading or changing it. An add that failed there (ENOMEM) empties it as
 * a failed add here does (te_rollup_add). */
static void own(struct te_rollup *r)
{
    if (te_rollup_feed_own(r) || r->hour_full)
        return;
    hour_forget(r);
    r->hour_full = true;
    lose_through(r, r->mem_max_ts);
}

void te_rollup_discard(te_store_t *st)
{
    if (st && st->rollup) {
        own(st->rollup);
        st->rollup->late.len = 0;
        clear_ents(st->rollup);
        hour_forget(st->rollup); /* may hold rolled-back events */
    }
}

/* ---------- per-kind state ---------- */

static kstate_t *kstate(struct te_rollup *r, int64_t kid)
{
    for (size_t i = 0; i < r->nks; i++)
        if (r->ks[i].kid == kid)
            return &r->ks[i];
    if (r->nks == r->cap_ks) {
        size_t ncap = r->cap_ks ? r->cap_ks * 2 : 8;
        kstate_t *nk = realloc(r->ks, ncap * sizeof(*nk));
        if (!nk)
            return NULL;
        r->ks = nk;
        r->cap_ks = ncap;
    }
    kstate_t *k = &r->ks[r->nks++];
    *k = (kstate_t){.kid = kid, .w = {INT64_MIN, INT64_MIN}, .archived_before = INT64_MIN,
                    .max_ts = INT64_MIN};
    return k;
}

/* Every hour up to each kind's newest stored event needs checking: the
 * database holds events this process did not see. */
static int verify_all(te_store_t *st, te_err_t *err)
{
    struct te_rollup *r = st->rollup;
    sqlite3_stmt *ks = NULL, *rs = NULL;
    int rc = sqlite3_prepare_v2(st->db, TE_SQL_KINDS_ALL, -1, &ks, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(st->db, TE_SQL_KIND_TS_RANGE, -1, &rs, NULL);
    while (rc == SQLITE_OK && (rc = sqlite3_step(ks)) == SQLITE_ROW) {
        sqlite3_bind_int64(rs, 1, sqlite3_column_int64(ks, 0));
        rc = sqlite3_step(rs);
        if (rc == SQLITE_ROW && sqlite3_column_type(rs, 1) != SQLITE_NULL)
            verify_through(r, sqlite3_column_int64(rs, 1));
        sqlite3_reset(rs);
        rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    sqlite3_finalize(ks);
    sqlite3_finalize(rs);
    return rc == SQLITE_DONE ? 0 : te_store_sqlerr(st, rc, err, "read newest events");
}

/* Notices commits by other connections since the last check. */
static int check_data_version(te_store_t *st, te_err_t *err)
{
    struct te_rollup *r = st->rollup;
    int rc = sqlite3_step(r->dv_st);
    int64_t v = rc == SQLITE_ROW ? sqlite3_column_int64(r->dv_st, 0) : 0;
    sqlite3_reset(r->dv_st);
    if (rc != SQLITE_ROW)
        return te_store_sqlerr(st, rc, err, "read data_version");
    if (v == r->data_version)
        return 0;
    r->data_version = v;
    return verify_all(st, err);
}

int te_rollup_begin(te_store_t *st, te_err_t *err)
{
    struct te_rollup *r = st->rollup;
    if (!r)
        return 0;
    r->nks = 0;
    r->early = false;
    int rc;
    while ((rc = sqlite3_step(r->state_st)) == SQLITE_ROW) {
        kstate_t *k = kstate(r, sqlite3_column_int64(r->state_st, 0));
        if (!k) {
            sqlite3_reset(r->state_st);
            return te_err_set(err, TE_ENOMEM, "rollup: out of memory");
        }
        k->w[0] = sqlite3_column_int64(r->state_st, 1);
        k->w[1] = sqlite3_column_int64(r->state_st, 2);
        k->archived_before = sqlite3_column_int64(r->state_st, 3);
    }
    sqlite3_reset(r->state_st);
    if (rc != SQLITE_DONE)
        return te_store_sqlerr(st, rc, err, "read rollup state");
    return check_data_version(st, err);
}

/* A late event's record while the builder has a thread: the mask
 * (add_event's), then the fields blob. */
typedef struct late_rec {
    int64_t kid, sid, ts;
    uint32_t flen, mask;
} late_rec_t;

/* A late event (resolutions in mask) into the generic accumulators: at
 * once without a feed; with one, recorded until the commit (late_replay),
 * since the accumulators share the interned names and sketches with the
 * builder's thread and taking the builder back for each event would cost
 * two thread wakes. Returns 0 or TE_ENOMEM. */
static int late_event(struct te_rollup *r, int64_t kid, int64_t sid, int64_t ts,
                      const unsigned char *fields, size_t fields_len, unsigned mask)
{
    if (!r->feed)
        return add_event(r, kid, sid, ts, fields, fields_len, mask);
    if (!fields || fields_len > UINT32_MAX)
        fields_len = 0;
    late_rec_t h = {.kid = kid, .sid = sid, .ts = ts, .flen = (uint32_t)fields_len, .mask = mask};
    te_rollup_wb_put(&r->late, &h, sizeof(h));
    if (fields_len)
        te_rollup_wb_put(&r->late, fields, fields_len);
    if (r->late.oom) {
        r->late.len = 0;
        r->late.oom = false;
        return TE_ENOMEM;
    }
    return 0;
}

/* The late events recorded by late_event into the accumulators, the
 * builder taken back first. Returns 0 or TE_ENOMEM. */
static int late_replay(struct te_rollup *r)
{
    if (r->late.len == 0)
        return 0;
    own(r);
    int rc = 0;
    for (size_t pos = 0; rc == 0 && pos < r->late.len;) {
        late_rec_t h;
        memcpy(&h, r->late.p + pos, sizeof(h));
        pos += sizeof(h);
        rc = add_event(r, h.kid, h.sid, h.ts, h.flen ? r->late.p + pos : NULL, h.flen, h.mask);
        pos += h.flen;
    }
    r->late.len = 0;
    return rc;
}

/* One event into the hour builder: through its thread when it has one
 * (started here, the first time), else added here. Returns 0 or
 * TE_ENOMEM. */
static int feed(struct te_rollup *r, int64_t kid, int64_t sid, int64_t ts, int64_t rowid,
                const unsigned char *fields, size_t fields_len)
{
    if (!r->feed_tried) {
        r->feed_tried = true;
        if (te_rollup_feed_wanted())
            te_rollup_feed_start(r); /* none: added here */
    }
    if (r->feed && te_rollup_feed_push(r, kid, sid, ts, rowid, fields, fields_len))
        return 0;
    bool fed = r->feed != NULL; /* and too big for its buffers */
    own(r);
    if (r->hour_full) /* an add on the thread failed: emptied */
        return TE_ENOMEM;
    /* an event the thread did not see is not in what it writes ahead: the
     * advance of its hour checks the builder (and writes it) instead */
    if (fed)
        verify_through(r, ts);
    return te_rollup_hour_add(r, kid, sid, ts, rowid, fields, fields_len);
}

int te_rollup_add(te_store_t *st, int64_t kid, int64_t sid, int64_t ts, int64_t rowid,
                  const unsigned char *fields, size_t fields_len, te_err_t *err)
{
    struct te_rollup *r = st->rollup;
    if (!r)
        return 0;
    kstate_t *k = kstate(r, kid);
    if (!k)
        return te_err_set(err, TE_ENOMEM, "rollup: out of memory");
    if (ts < k->archived_before)
        return 0;
    k->touched = true;
    if (ts > k->max_ts)
        k->max_ts = ts;
    unsigned late = (ts < k->w[0] ? 1u : 0u) | (ts < k->w[1] ? 2u : 0u);
    if (late && late_event(r, kid, sid, ts, fields, fields_len, late) < 0)
        return te_err_set(err, TE_ENOMEM, "rollup: out of memory");
    if (late || r->off)
        return 0;
    /* an hour whose events the builder dropped at its bound is read back
     * at its advance whatever the builder holds of it: more appends would
     * only be thrown away */
    if (ts < r->lost_upto) {
        verify_through(r, ts);
        return 0;
    }
    /* the bound: the builder's size as its thread last saw it; at the
     * bound, the builder is taken back and its exact size decides */
    size_t bytes = te_rollup_feed_bytes(r);
    if (!r->hour_full && bytes >= HOUR_BYTES) {
        own(r);
        bytes = te_rollup_hour_bytes(r);
    }
    /* into the hour builder, for the advance that passes its hour. At the
     * memory bound, the hours that are over are written now, inside this
     * transaction (a long transaction of a backfill spans many hours);
     * past the bound all the same (many series in one hour), the builder
     * is emptied and left alone until an advance: those hours are checked
     * (and read back raw) then */
    if (!r->hour_full && k->w[0] == k->w[1] && bytes >= HOUR_BYTES && !r->early) {
        int rc = te_rollup_flush(st, err);
        te_rollup_hour_trim(r);
        if (rc < 0)
            return rc;
        /* the open hours alone fill it: no more tries in this transaction
         * (te_rollup_begin clears it) */
        r->early = te_rollup_hour_bytes(r) >= HOUR_BYTES / 2;
        k = kstate(r, kid);
        if (!k)
            return te_err_set(err, TE_ENOMEM, "rollup: out of memory");
        k->touched = true;
        if (ts > k->max_ts)
            k->max_ts = ts;
        /* that advance may have passed this event's hour (one an earlier
         * commit left short): it is late now */
        late = (ts < k->w[0] ? 1u : 0u) | (ts < k->w[1] ? 2u : 0u);
        if (late)
            return late_event(r, kid, sid, ts, fields, fields_len, late) < 0
                       ? te_err_set(err, TE_ENOMEM, "rollup: out of memory")
                       : 0;
        bytes = te_rollup_hour_bytes(r);
    }
    /* at the bound with spare slots (an earlier hour's, more than this one
     * reuses): they go before the builder gives up */
    if (!r->hour_full && bytes >= HOUR_BYTES) {
        te_rollup_hour_shrink(r);
        bytes = te_rollup_hour_bytes(r);
    }
    if (!r->hour_full && k->w[0] == k->w[1] && bytes < HOUR_BYTES &&
        feed(r, kid, sid, ts, rowid, fields, fields_len) == 0) {
        if (ts > r->mem_max_ts)
            r->mem_max_ts = ts;
        return 0;
    }
    if (!r->hour_full && k->w[0] == k->w[1]) {
        hour_forget(r);
        r->hour_full = true;
        lose_through(r, r->mem_max_ts);
    }
    if (r->hour_full)
        lose_through(r, ts);
    verify_through(r, ts);
    return 0;
}

/* The generic path of an advance: raw events of [from, to) into the
 * generic accumulators, for watermarks that differ. */
static int advance_ents(te_store_t *st, kstate_t *k, int64_t from, int64_t to, te_err_t *err)
{
    struct te_rollup *r = st->rollup;
    /* rows at or above the old watermark do not exist until this advance
     * writes them */
    sqlite3_stmt *s = r->raw_st;
    sqlite3_bind_int64(s, 1, k->kid);
    sqlite3_bind_int64(s, 2, from);
    sqlite3_bind_int64(s, 3, to);
    int rc = 0, src = SQLITE_DONE;
    while (rc == 0 && (src = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t ts = sqlite3_column_int64(s, 0);
        unsigned mask = (ts >= k->w[0] ? 1u : 0u) | (ts >= k->w[1] ? 2u : 0u);
        if (ts < k->archived_before || !mask)
            continue;
        if (add_event(r, k->kid, sqlite3_column_int64(s, 1), ts, sqlite3_column_blob(s, 2),
                      (size_t)sqlite3_column_bytes(s, 2), mask) < 0)
            rc = te_err_set(err, TE_ENOMEM, "rollup: out of memory");
        else if (r->nents >= TE_ROLLUP_FLUSH_EVERY) {
            rc = te_rollup_flush_ents(st, err);
        }
    }
    sqlite3_reset(s);
    if (rc == 0 && src != SQLITE_DONE)
        rc = te_store_sqlerr(st, src, err, "roll up raw events");
    return rc == 0 ? te_rollup_flush_ents(st, err) : rc;
}

/* The hour builder fed from the raw events of [from, to) (whole hours),
 * read in time order: an hour is written when the scan passes it. */
static int advance_raw(te_store_t *st, kstate_t *k, int64_t from, int64_t to, te_err_t *err)
{
    struct te_rollup *r = st->rollup;
    /* an hour over the bound is written in parts: they add up. need: the
     * most bytes the hour being read has taken in the builder, the spare
     * slots it reused (n0..i0 at its start) counted too */
    int64_t cur = INT64_MIN;
    te_rollup_hour_trim(r);
    size_t base = te_rollup_hour_bytes(r), need = 0, n0 = r->nslots, i0 = r->init_slots;
    sqlite3_stmt *s = r->raw_st;
    sqlite3_bind_int64(s, 1, k->kid);
    sqlite3_bind_int64(s, 2, from);
    sqlite3_bind_int64(s, 3, to);
    int rc = 0, src = SQLITE_DONE;
    while (rc == 0 && (src = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t ts = sqlite3_column_int64(s, 0);
        if (ts < k->archived_before)
            continue;
        int64_t hour = te_rollup_bucket(ts, TE_ROLLUP_1H_NS);
        if (hour > cur) {
            rc = te_rollup_hour_flush(st, k->kid, hour, err);
            te_rollup_hour_trim(r);
            base = te_rollup_hour_bytes(r);
            need = 0;
            n0 = r->nslots;
            i0 = r->init_slots;
            cur = hour;
        }
        if (rc == 0 && te_rollup_hour_add(r, k->kid, sqlite3_column_int64(s, 1), ts, 0,
                                          sqlite3_column_blob(s, 2),
                                          (size_t)sqlite3_column_bytes(s, 2)) < 0)
            rc = te_err_set(err, TE_ENOMEM, "rollup: out of memory");
        size_t reused = (r->nslots < i0 ? r->nslots : i0) - n0;
        size_t took = te_rollup_hour_bytes(r) - base + reused * sizeof(r->slots[0]);
        if (took > need)
            need = took;
        if (rc == 0 && te_rollup_hour_bytes(r) >= base + RAW_HOUR_BYTES) {
            rc = te_rollup_hour_flush(st, k->kid, to, err);
            te_rollup_hour_trim(r);
            base = te_rollup_hour_bytes(r);
            n0 = r->nslots;
            i0 = r->init_slots;
        }
    }
    sqlite3_reset(s);
    if (rc == 0 && src != SQLITE_DONE)
        rc = te_store_sqlerr(st, src, err, "roll up raw events");
    if (rc == 0)
        rc = te_rollup_hour_flush(st, k->kid, to, err);
    te_rollup_hour_trim(r); /* the read's buffers do not count against the live bound */
    /* the hour just before to did not fit the builder (its kinds read back
     * so far together): the hour now open will most likely not either, so
     * it is read back too rather than fed until the bound throws its
     * events away (an hour that fits ends this: the next one is fed) */
    if (rc == 0 && cur == to - TE_ROLLUP_1H_NS) { /* the kinds of one hour add up */
        if (r->need_hour != cur)
            r->need_hour = cur, r->need_bytes = 0;
        r->need_bytes += need;
    }
    if (rc == 0 && cur == to - TE_ROLLUP_1H_NS && r->need_bytes >= HOUR_BYTES) {
        lose_through(r, to);
        verify_through(r, to);
        te_rollup_hour_drop(r, k->kid, /* what it took of it */
                            to <= INT64_MAX - TE_ROLLUP_1H_NS ? to + TE_ROLLUP_1H_NS : INT64_MAX);
        te_rollup_hour_trim(r);
    }
    return rc;
}

/* Events and rowid sum the database holds for kind kid in [from, to). */
static int raw_sum(te_store_t *st, int64_t kid, int64_t from, int64_t to, int64_t *n,
                   int64_t *idsum, te_err_t *err)
{
    sqlite3_stmt *s = st->rollup->sum_st;
    sqlite3_bind_int64(s, 1, kid);
    sqlite3_bind_int64(s, 2, from);
    sqlite3_bind_int64(s, 3, to);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *n = sqlite3_column_int64(s, 0);
        *idsum = sqlite3_column_int64(s, 1);
        rc = SQLITE_DONE;
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : te_store_sqlerr(st, rc, err, "count raw events");
}

/* Notes that kind kid's watermarks should reach `to` at a later advance.
 * Returns 0 or TE_ENOMEM. */
static int pend_note(struct te_rollup *r, int64_t kid, int64_t to)
{
    for (size_t i = 0; i < r->npend; i++)
        if (r->pend[i].kid == kid) {
            if (to > r->pend[i].to)
                r->pend[i].to = to;
            return 0;
        }
    if (r->npend == r->cap_pend) {
        size_t ncap = r->cap_pend ? r->cap_pend * 2 : 8;
        void *np = realloc(r->pend, ncap * sizeof(*r->pend));
        if (!np)
            return TE_ENOMEM;
        r->pend = np;
        r->cap_pend = ncap;
    }
    r->pend[r->npend].kid = kid;
    r->pend[r->npend++].to = to;
    return 0;
}

/* Rolls the events of kind k between its watermarks and `to` (a whole
 * hour) up into both resolutions and moves both watermarks to `to`,
 * inside the current transaction.
 *
 * The hour builder already holds the events this process stored since
 * it opened (te_rollup_add); it is trusted for [from, to) only when the
 * database holds exactly those events there: the same count and the same
 * sum of rowids (another process's events, a rolled-back transaction, an
 * event stored before this process opened or over the memory bound all
 * show). Otherwise the hours are read back raw. */
static int advance(te_store_t *st, kstate_t *k, int64_t to, bool sync, te_err_t *err)
{
    struct te_rollup *r = st->rollup;
    int64_t from = k->w[0] < k->w[1] ? k->w[0] : k->w[1], got;
    if (to <= from)
        return 0;
    int rc = late_replay(r) < 0 ? te_err_set(err, TE_ENOMEM, "rollup: out of memory") : 0;
    if (rc == 0)
        rc = te_rollup_flush_ents(st, err); /* late events first */
    if (rc == 0 && k->w[0] != k->w[1]) {
        /* only a database left half-way by an older version */
        own(r);
        rc = advance_ents(st, k, from, to, err);
    } else if (rc == 0 && r->feed && !sync && !r->hour_full && from >= r->verify_upto &&
               from >= r->lost_upto &&
               (got = te_rollup_feed_take(r, k->kid, to, &r->taken)) != INT64_MIN) {
        /* the builder is trusted here: the hours its thread has written
         * ahead, as far as it has them all (te_rollup_feed_take); the
         * rest waits for a later advance (pending) */
        rc = te_rollup_preps_out(st, r, &r->taken, 0, INT64_MAX, true, err);
        if (rc == 0 && got < to && pend_note(r, k->kid, to) < 0)
            rc = te_err_set(err, TE_ENOMEM, "rollup: out of memory");
        to = got;
        if (rc == 0 && to <= from)
            return 0;
    } else if (rc == 0) {
        own(r);
        int64_t mn = 0, ms = 0, dn = 0, ds = 0;
        te_rollup_hour_drop(r, k->kid, from); /* rolled up by another process */
        if (from < r->verify_upto) {
            te_rollup_hour_sum(r, k->kid, from, to, &mn, &ms);
            /* nothing held (the builder was emptied at its bound): the
             * read-back is the answer whatever the count, so no count */
            if (mn > 0)
                rc = raw_sum(st, k->kid, from, to, &dn, &ds, err);
            else
                dn = 1;
        }
        if (rc == 0 && mn == dn && ms == ds) {
            rc = te_rollup_hour_flush(st, k->kid, to, err);
        } else if (rc == 0) {
            te_rollup_hour_drop(r, k->kid, to);
            rc = advance_raw(st, k, from, to, err);
        }
        r->hour_full = false; /* the hours it could not hold are behind */
    }
    if (rc < 0) {
        own(r);
        hour_forget(r);
        return rc;
    }
    for (int res = 0; res < 2; res++)
        if (k->w[res] < to)
            k->w[res] = to;
    sqlite3_stmt *w = r->set_w;
    sqlite3_bind_int64(w, 1, k->kid);
    sqlite3_bind_int64(w, 2, k->w[0]);
    sqlite3_bind_int64(w, 3, k->w[1]);
    sqlite3_bind_int64(w, 4, INT64_MIN);
    int src = sqlite3_step(w);
    sqlite3_reset(w);
    return src == SQLITE_DONE ? 0 : te_store_sqlerr(st, src, err, "write rollup state");
}

int te_rollup_flush(te_store_t *st, te_err_t *err)
{
    struct te_rollup *r = st->rollup;
    if (!r)
        return 0;
    if (late_replay(r) < 0)
        return te_err_set(err, TE_ENOMEM, "rollup: out of memory");
    int rc = te_rollup_flush_ents(st, err); /* late events */
    if (r->off)
        return rc;
    if (r->sync)
        own(r);
    else
        te_rollup_feed_kick(r); /* this transaction's events, for the next advance */
    int64_t now = te_time_now_ns();
    for (size_t i = 0; rc == 0 && i < r->nks; i++) {
        kstate_t *k = &r->ks[i];
        if (!k->touched)
            continue;
        /* whole hours only: a row is written once, when its hour is over */
        int64_t cand = (k->max_ts < now ? k->max_ts : now) - TE_ROLLUP_GRACE_NS;
        rc = advance(st, k, te_rollup_bucket(cand, TE_ROLLUP_1H_NS), r->sync, err);
        k->touched = false;
    }
    /* the kinds an earlier advance left short of its target (their
     * hours were not all written ahead yet) */
    struct te_rollup_pend *pend = r->pend;
    size_t npend = r->npend;
    r->pend = NULL; /* advance notes a kind again when still short */
    r->npend = r->cap_pend = 0;
    for (size_t i = 0; i < npend; i++) {
        kstate_t *k = rc == 0 ? kstate(r, pend[i].kid) : NULL;
        if (rc == 0 && !k)
            rc = te_err_set(err, TE_ENOMEM, "rollup: out of memory");
        if (rc == 0)
            rc = advance(st, k, pend[i].to, r->sync, err);
    }
    free(pend);
    return rc;
}

int te_store_rollup_sync(te_store_t *st, te_err_t *err)
{
    if (!st || st->readonly || st->in_txn)
        return te_err_set(err, TE_EINVAL,
                          "store: rollup sync needs a read-write store outside a transaction");
    struct te_rollup *r = st->rollup;
    if (!r || (!r->feed && r->npend == 0))
        return 0;
    int rc = te_store_begin(st, err);
    if (rc < 0)
        return rc;
    r->sync = true;
    rc = te_store_commit(st, err);
    r->sync = false;
    return rc;
}

int te_rollup_materialize(te_store_t *st, int64_t kid, int64_t before_ns, te_err_t *err)
{
    struct te_rollup *r = st->rollup;
    if (!r)
        return te_err_set(err, TE_EINVAL, "rollup: read-write store needed");
    own(r);
    kstate_t *k = kstate(r, kid);
    if (!k)
        return te_err_set(err, TE_ENOMEM, "rollup: out of memory");
    int64_t to = te_rollup_bucket(before_ns, TE_ROLLUP_1H_NS);
    if (to < before_ns && to <= INT64_MAX - TE_ROLLUP_1H_NS)
        to += TE_ROLLUP_1H_NS;
    return advance(st, k, to, true, err);
}

int te_rollup_watermarks(te_store_t *st, int64_t kid, int64_t *w1m, int64_t *w1h,
                         te_err_t *err)
{
    sqlite3_stmt *s = NULL;
    *w1m = *w1h = INT64_MIN;
    int rc = sqlite3_prepare_v2(st->db, TE_SQL_ROLLUP_STATE_OF, -1, &s, NULL);
    if (rc != SQLITE_OK)
        return te_store_sqlerr(st, rc, err, "read rollup state");
    sqlite3_bind_int64(s, 1, kid);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *w1m = sqlite3_column_int64(s, 0);
        *w1h = sqlite3_column_int64(s, 1);
        rc = SQLITE_DONE;
    }
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? 0 : te_store_sqlerr(st, rc, err, "read rollup state");
}

/* ---------- catch-up, open/close ---------- */

/* Rolls up kinds whose watermarks lag their raw events, a day of event
 * time per transaction. */
static int catch_up(te_store_t *st, te_err_t *err)
{
    sqlite3_stmt *ks = NULL, *rs = NULL;
    int64_t *kids = NULL;
    size_t nk = 0, cap = 0;
    int rc = 0;
    int src = sqlite3_prepare_v2(st->db, TE_SQL_KINDS_ALL, -1, &ks, NULL);
    while (src == SQLITE_OK && (src = sqlite3_step(ks)) == SQLITE_ROW) {
        if (nk == cap) {
            cap = cap ? cap * 2 : 16;
            int64_t *nkp = realloc(kids, cap * sizeof(*nkp));
            if (!nkp) {
                rc = te_err_set(err, TE_ENOMEM, "rollup: out of memory");
                break;
            }
            kids = nkp;
        }
        kids[nk++] = sqlite3_column_int64(ks, 0);
        src = SQLITE_OK;
    }
    sqlite3_finalize(ks);
    if (rc == 0 && src != SQLITE_DONE)
        rc = te_store_sqlerr(st, src, err, "list kinds");
    if (rc == 0 && (src = sqlite3_prepare_v2(st->db, TE_SQL_KIND_TS_RANGE, -1, &rs, NULL)) !=
                       SQLITE_OK)
        rc = te_store_sqlerr(st, src, err, "catch up rollups");
    int64_t now = te_time_now_ns();
    for (size_t i = 0; rc == 0 && i < nk; i++) {
        sqlite3_bind_int64(rs, 1, kids[i]);
        src = sqlite3_step(rs);
        bool any = src == SQLITE_ROW && sqlite3_column_type(rs, 0) != SQLITE_NULL;
        int64_t lo = any ? sqlite3_column_int64(rs, 0) : 0;
        int64_t hi = any ? sqlite3_column_int64(rs, 1) : 0;
        sqlite3_reset(rs);
        if (!any)
            continue;
        int64_t target = (hi < now ? hi : now) - TE_ROLLUP_GRACE_NS;
        for (;;) {
            int64_t w1m, w1h;
            rc = te_rollup_watermarks(st, kids[i], &w1m, &w1h, err);
            int64_t w = w1m < w1h ? w1m : w1h;
            if (rc < 0 || w >= te_rollup_bucket(target, TE_ROLLUP_1H_NS))
                break;
            int64_t from = w > lo ? w : lo;
            int64_t to = from < target - CATCHUP_STEP_NS ? from + CATCHUP_STEP_NS : target;
            rc = te_store_begin(st, err);
            if (rc < 0)
                break;
            kstate_t *k = kstate(st->rollup, kids[i]);
            if (!k) {
                te_store_rollback(st);
                rc = te_err_set(err, TE_ENOMEM, "rollup: out of memory");
                break;
            }
            /* a watermark below the first event jumps to its bucket */
            for (int res = 0; res < 2; res++)
                if (k->w[res] < te_rollup_bucket(lo, TE_ROLLUP_1H_NS))
                    k->w[res] = te_rollup_bucket(lo, TE_ROLLUP_1H_NS);
            rc = advance(st, k, te_rollup_bucket(to, TE_ROLLUP_1H_NS), true, err);
            if (rc < 0) {
                te_store_rollback(st);
                break;
            }
            rc = te_store_commit(st, err);
            if (rc < 0)
                break;
            if (to >= target)
                break;
        }
    }
    sqlite3_finalize(rs);
    free(kids);
    return rc;
}

int te_rollup_open(te_store_t *st, te_err_t *err)
{
    struct te_rollup *r = calloc(1, sizeof(*r));
    if (!r)
        return te_err_set(err, TE_ENOMEM, "rollup: out of memory");
    st->rollup = r;
    r->verify_upto = r->mem_max_ts = r->lost_upto = r->need_hour = INT64_MIN;
    r->data_version = INT64_MIN; /* the first check always finds a change */
    uint32_t f;
    if (te_rollup_field(r, "", 0, &f) < 0)
        return te_err_set(err, TE_ENOMEM, "rollup: out of memory");
    const char *sql[] = {TE_SQL_ROLLUP_1M_INS, TE_SQL_ROLLUP_STATE_ALL, TE_SQL_ROLLUP_SET_W,
                         TE_SQL_ROLLUP_RAW,    TE_SQL_ROLLUP_RAW_SUM,   TE_SQL_DATA_VERSION};
    sqlite3_stmt **slot[] = {&r->put1m,  &r->state_st, &r->set_w,
                             &r->raw_st, &r->sum_st,   &r->dv_st};
    for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
        int rc = sqlite3_prepare_v3(st->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, slot[i], NULL);
        if (rc != SQLITE_OK)
            return te_store_sqlerr(st, rc, err, "prepare rollup statement");
    }
    int rc = te_rollup_1h_prepare(st, &r->h1, err);
    if (rc < 0)
        return rc;
    rc = catch_up(st, err);
    /* what is stored already was not seen by the builder */
    return rc < 0 ? rc : check_data_version(st, err);
}

void te_rollup_close(te_store_t *st)
{
    struct te_rollup *r = st ? st->rollup : NULL;
    if (!r)
        return;
    te_rollup_feed_stop(r);
    clear_ents(r);
    te_rollup_preps_out(NULL, r, &r->taken, 0, INT64_MAX, true, NULL);
    free(r->taken.v);
    free(r->pend);
    free(r->late.p);
    te_rollup_hour_free(r); /* gives its sketches to the pool first */
    for (size_t i = 0; i < r->npool; i++)
        te_sketch_free(r->pool[i]);
    free(r->pool);
    free(r->ents);
    free(r->idx);
    free(r->ks);
    for (size_t i = 0; i < r->nfields; i++)
        free(r->fnames[i]);
    free(r->fnames);
    free(r->flens);
    te_series_map_free(&r->fmap);
    sqlite3_finalize(r->put1m);
    free(r->pack.b.p);
    free(r->pack.ref);
    te_rollup_1h_finalize(&r->h1);
    sqlite3_finalize(r->state_st);
    sqlite3_finalize(r->set_w);
    sqlite3_finalize(r->raw_st);
    sqlite3_finalize(r->sum_st);
    sqlite3_finalize(r->dv_st);
    free(r);
    st->rollup = NULL;
}

int te_store_set_rollups(te_store_t *st, bool on, te_err_t *err)
{
    if (!st || st->readonly || !st->rollup)
        return te_err_set(err, TE_EINVAL, "store: rollups apply to a read-write store");
    if (st->in_txn)
        return te_err_set(err, TE_EINVAL, "store: cannot switch rollups inside a transaction");
    struct te_rollup *r = st->rollup;
    own(r);
    if (!on && !r->off)
        hour_forget(r); /* what it misses while off is found by verify_all */
    bool was_off = r->off;
    r->off = !on;
    return on && was_off ? verify_all(st, err) : 0;
}
