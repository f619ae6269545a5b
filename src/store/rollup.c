/*
 * rollup.c - the write side of the 1-minute and 1-hour rollups:
 * per-transaction accumulators, the merge into rollup_1m / rollup_1h at
 * commit, the one-time rebuild from raw events, and the sketch helpers the
 * planner (query.c) shares.
 *
 * THREAD: one thread at a time per te_store_t (the writer for the write
 * side; any reader for the helpers).
 *
 * The one idea: an insert costs hash lookups, never SQL. Each stored event
 * adds to 2 * (1 + fields) accumulators keyed (resolution, series, bucket,
 * field): n, sum, min, max, and a sketch only once an accumulator holds a
 * third value (two values are exactly {min, max}, which is also how a row
 * with n <= 2 is stored: without a sketch blob). Commit turns each
 * accumulator into one read-merge-write of its row, so the cost per
 * transaction is proportional to the (series, bucket, field) triples it
 * touched, not to its events. Sketches come from a pool and are reset, not
 * freed, so a steady stream allocates nothing.
 *
 * Rebuild (meta 'rollups' = 'rebuild'): both tables are emptied and every
 * raw event is fed through the same accumulators in id order, flushed every
 * FLUSH_EVERY accumulators, inside one transaction that ends by setting
 * 'ok'. A crash in the middle rolls it all back and the next open retries.
 */
#include "rollup.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sql.h"
#include "store_int.h"

#define FLUSH_EVERY 20000u
/* sketches kept for reuse; more are freed */
#define POOL_MAX 4096u

typedef struct ent {
    int64_t kid, sid, bucket;
    uint32_t field;     /* interned name index; 0 = '' (event count) */
    uint8_t res;        /* 0: 1m, 1: 1h */
    int64_t n;
    double sum, min, max;
    te_sketch_t *sk;    /* when n > 2 */
} ent_t;

typedef struct mark {
    int64_t kid, before;
} mark_t;

struct te_rollup {
    /* interned field names; index 0 is "" */
    te_series_map_t fmap;
    char **fnames;
    size_t *flens;
    size_t nfields, cap_fields;
    /* accumulators: entries + open-addressing index (uint32 index + 1; 0 empty) */
    ent_t *ents;
    size_t nents, cap_ents;
    uint32_t *idx;
    size_t idx_cap;
    /* sketch pool */
    te_sketch_t **pool;
    size_t npool, cap_pool;
    /* archive marks of this transaction */
    mark_t *marks;
    size_t nmarks, cap_marks;
    sqlite3_stmt *get[2], *put[2], *marks_st;
    bool off;           /* te_store_set_rollups(false) */
};

int64_t te_rollup_bucket(int64_t ts, int64_t res_ns)
{
    int64_t b = ts / res_ns;
    if (ts % res_ns < 0)
        b--;
    return b * res_ns;
}

/* ---------- sketch helpers ---------- */

static int sk_add(te_sketch_t *sk, double v)
{
    if (!isfinite(v))
        return 0; /* counted in n/sum/min/max, not sketchable */
    return te_sketch_add(sk, v);
}

int te_rollup_sketch_merge(te_sketch_t *dst, int64_t n, double min, double max,
                           const void *blob, size_t blob_len, te_err_t *err)
{
    if (n <= 0)
        return 0;
    if (n <= 2 || !blob) {
        int rc = sk_add(dst, min);
        if (rc == 0 && n == 2)
            rc = sk_add(dst, max);
        return rc < 0 ? te_err_set(err, TE_ENOMEM, "rollup: cannot grow a sketch") : 0;
    }
    te_sketch_t *s = te_sketch_decode(blob, blob_len, err);
    if (!s)
        return err && err->code ? err->code : TE_EPARSE;
    int rc = te_sketch_merge(dst, s, err);
    te_sketch_free(s);
    return rc;
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
    uint64_t h = (uint64_t)sid * 0x9E3779B97F4A7C15ull;
    h ^= (uint64_t)bucket + 0x632BE59BD9B4E019ull + (h << 6) + (h >> 2);
    h ^= ((uint64_t)field << 1 | res) * 0xC2B2AE3D27D4EB4Full;
    h ^= h >> 29;
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

static ent_t *ent_get(struct te_rollup *r, int64_t kid, int64_t sid, int64_t bucket,
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

static te_sketch_t *sketch_take(struct te_rollup *r)
{
    if (r->npool)
        return r->pool[--r->npool];
    return te_sketch_new(TE_ROLLUP_ACCURACY, 0, NULL);
}

static void sketch_give(struct te_rollup *r, te_sketch_t *sk)
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

/* Adds one value to an accumulator (NaN never reaches here). */
static int ent_add(struct te_rollup *r, ent_t *e, double v)
{
    if (e->n == 2 && !e->sk) {
        e->sk = sketch_take(r);
        if (!e->sk || sk_add(e->sk, e->min) < 0 || sk_add(e->sk, e->max) < 0)
            return TE_ENOMEM;
    }
    if (e->sk && sk_add(e->sk, v) < 0)
        return TE_ENOMEM;
    if (e->n == 0 || v < e->min)
        e->min = v;
    if (e->n == 0 || v > e->max)
        e->max = v;
    e->n++;
    e->sum += v;
    return 0;
}

static int field_index(struct te_rollup *r, const char *name, size_t len, uint32_t *out)
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

static int add_event(struct te_rollup *r, int64_t kid, int64_t sid, int64_t ts,
                     const unsigned char *blob, size_t blen)
{
    static const int64_t res_ns[2] = {TE_ROLLUP_1M_NS, TE_ROLLUP_1H_NS};
    int64_t bk[2] = {te_rollup_bucket(ts, res_ns[0]), te_rollup_bucket(ts, res_ns[1])};
    for (uint8_t res = 0; res < 2; res++) {
        ent_t *e = ent_get(r, kid, sid, bk[res], 0, res);
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
        if (field_index(r, key, klen, &f) < 0)
            return TE_ENOMEM;
        for (uint8_t res = 0; res < 2; res++) {
            ent_t *e = ent_get(r, kid, sid, bk[res], f, res);
            if (!e || ent_add(r, e, v) < 0)
                return TE_ENOMEM;
        }
    }
    return 0;
}

/* ---------- flush ---------- */

static int flush_one(te_store_t *st, struct te_rollup *r, ent_t *e, te_err_t *err)
{
    sqlite3_stmt *g = r->get[e->res], *p = r->put[e->res];
    const char *fname = r->fnames[e->field];
    int flen = (int)r->flens[e->field];
    sqlite3_bind_int64(g, 1, e->kid);
    sqlite3_bind_text(g, 2, fname, flen, SQLITE_STATIC);
    sqlite3_bind_int64(g, 3, e->bucket);
    sqlite3_bind_int64(g, 4, e->sid);
    int rc = sqlite3_step(g);
    int ret = 0;
    if (rc == SQLITE_ROW) {
        int64_t n0 = sqlite3_column_int64(g, 0);
        if (e->field == 0) {
            e->n += n0;
        } else if (n0 > 0) {
            double sum0 = sqlite3_column_double(g, 1), min0 = sqlite3_column_double(g, 2),
                   max0 = sqlite3_column_double(g, 3);
            const void *blob = sqlite3_column_blob(g, 4);
            size_t blen = (size_t)sqlite3_column_bytes(g, 4);
            if (n0 <= 2 || !blob) {
                /* the stored values are exactly {min0, max0} */
                double s = e->sum;
                ret = ent_add(r, e, min0);
                if (ret == 0 && n0 == 2)
                    ret = ent_add(r, e, max0);
                e->sum = s + sum0;
                if (ret < 0)
                    ret = te_err_set(err, TE_ENOMEM, "rollup: out of memory");
            } else {
                te_sketch_t *old = te_sketch_decode(blob, blen, err);
                if (!old) {
                    ret = err && err->code ? err->code : TE_EPARSE;
                } else {
                    if (e->sk) {
                        ret = te_sketch_merge(old, e->sk, err);
                    } else {
                        if (e->n >= 1 && sk_add(old, e->min) < 0)
                            ret = TE_ENOMEM;
                        if (ret == 0 && e->n == 2 && sk_add(old, e->max) < 0)
                            ret = TE_ENOMEM;
                        if (ret < 0)
                            te_err_set(err, TE_ENOMEM, "rollup: out of memory");
                    }
                    sketch_give(r, e->sk);
                    e->sk = old;
                    if (ret == 0) {
                        e->min = e->n == 0 || min0 < e->min ? min0 : e->min;
                        e->max = e->n == 0 || max0 > e->max ? max0 : e->max;
                        e->n += n0;
                        e->sum += sum0;
                    }
                }
            }
        }
        rc = SQLITE_DONE;
    }
    sqlite3_reset(g);
    if (rc != SQLITE_DONE)
        return te_store_sqlerr(st, rc, err, "read rollup");
    if (ret < 0)
        return ret;
    unsigned char *blob = NULL;
    size_t blen = 0;
    if (e->field != 0 && e->n > 2 && e->sk && te_sketch_encode(e->sk, &blob, &blen) < 0)
        return te_err_set(err, TE_ENOMEM, "rollup: cannot encode a sketch");
    sqlite3_bind_int64(p, 1, e->kid);
    sqlite3_bind_text(p, 2, fname, flen, SQLITE_STATIC);
    sqlite3_bind_int64(p, 3, e->bucket);
    sqlite3_bind_int64(p, 4, e->sid);
    sqlite3_bind_int64(p, 5, e->n);
    if (e->field == 0) {
        for (int i = 6; i <= 9; i++)
            sqlite3_bind_null(p, i);
    } else {
        sqlite3_bind_double(p, 6, e->sum);
        sqlite3_bind_double(p, 7, e->min);
        sqlite3_bind_double(p, 8, e->max);
        if (blob)
            sqlite3_bind_blob(p, 9, blob, (int)blen, free);
        else
            sqlite3_bind_null(p, 9);
    }
    rc = sqlite3_step(p);
    sqlite3_reset(p);
    sqlite3_clear_bindings(p);
    return rc == SQLITE_DONE ? 0 : te_store_sqlerr(st, rc, err, "write rollup");
}

static void clear_ents(struct te_rollup *r)
{
    for (size_t i = 0; i < r->nents; i++)
        sketch_give(r, r->ents[i].sk);
    r->nents = 0;
    if (r->idx)
        memset(r->idx, 0, r->idx_cap * sizeof(*r->idx));
}

int te_rollup_flush(te_store_t *st, te_err_t *err)
{
    struct te_rollup *r = st->rollup;
    if (!r || r->nents == 0)
        return 0;
    int rc = 0;
    for (size_t i = 0; i < r->nents && rc == 0; i++)
        rc = flush_one(st, r, &r->ents[i], err);
    clear_ents(r);
    return rc;
}

void te_rollup_discard(te_store_t *st)
{
    if (st && st->rollup)
        clear_ents(st->rollup);
}

/* ---------- marks, add ---------- */

int te_rollup_begin(te_store_t *st, te_err_t *err)
{
    struct te_rollup *r = st->rollup;
    if (!r)
        return 0;
    r->nmarks = 0;
    int rc;
    while ((rc = sqlite3_step(r->marks_st)) == SQLITE_ROW) {
        if (r->nmarks == r->cap_marks) {
            size_t ncap = r->cap_marks ? r->cap_marks * 2 : 8;
            mark_t *nm = realloc(r->marks, ncap * sizeof(*nm));
            if (!nm) {
                sqlite3_reset(r->marks_st);
                return te_err_set(err, TE_ENOMEM, "rollup: out of memory");
            }
            r->marks = nm;
            r->cap_marks = ncap;
        }
        r->marks[r->nmarks++] = (mark_t){sqlite3_column_int64(r->marks_st, 0),
                                         sqlite3_column_int64(r->marks_st, 1)};
    }
    sqlite3_reset(r->marks_st);
    return rc == SQLITE_DONE ? 0 : te_store_sqlerr(st, rc, err, "read archive marks");
}

int te_rollup_add(te_store_t *st, int64_t kid, int64_t sid, int64_t ts,
                  const unsigned char *fields, size_t fields_len, te_err_t *err)
{
    struct te_rollup *r = st->rollup;
    if (!r || r->off)
        return 0;
    for (size_t i = 0; i < r->nmarks; i++)
        if (r->marks[i].kid == kid && ts < r->marks[i].before)
            return 0;
    if (add_event(r, kid, sid, ts, fields, fields_len) < 0)
        return te_err_set(err, TE_ENOMEM, "rollup: out of memory");
    return 0;
}

/* ---------- state, rebuild, open/close ---------- */

static int get_state(te_store_t *st, char *buf, size_t cap, te_err_t *err)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(st->db, TE_SQL_ROLLUP_STATE, -1, &s, NULL);
    if (rc != SQLITE_OK)
        return te_store_sqlerr(st, rc, err, "read rollup state");
    buf[0] = '\0';
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(s, 0);
        snprintf(buf, cap, "%s", v ? v : "");
        rc = SQLITE_DONE;
    }
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? 0 : te_store_sqlerr(st, rc, err, "read rollup state");
}

static int set_state(te_store_t *st, const char *v, te_err_t *err)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(st->db, TE_SQL_ROLLUP_SET_STATE, -1, &s, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(s, 1, v, -1, SQLITE_STATIC);
        rc = sqlite3_step(s);
    }
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? 0 : te_store_sqlerr(st, rc, err, "set rollup state");
}

int te_rollup_ready(te_store_t *st, bool *ok, te_err_t *err)
{
    char v[16];
    int rc = get_state(st, v, sizeof(v), err);
    if (rc == 0)
        *ok = strcmp(v, "ok") == 0;
    return rc;
}

static int rebuild(te_store_t *st, te_err_t *err)
{
    struct te_rollup *r = st->rollup;
    int rc = sqlite3_exec(st->db, TE_SQL_BEGIN, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return te_store_sqlerr(st, rc, err, "begin rollup rebuild");
    char v[16];
    int ret = get_state(st, v, sizeof(v), err); /* again, under the write lock */
    if (ret < 0 || strcmp(v, "rebuild") != 0)
        goto end;
    rc = sqlite3_exec(st->db, TE_SQL_ROLLUP_CLEAR, NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        ret = te_store_sqlerr(st, rc, err, "clear rollups");
        goto end;
    }
    sqlite3_stmt *s = NULL;
    rc = sqlite3_prepare_v2(st->db, TE_SQL_ROLLUP_BACKFILL_SCAN, -1, &s, NULL);
    if (rc != SQLITE_OK) {
        ret = te_store_sqlerr(st, rc, err, "rebuild rollups");
        goto end;
    }
    int64_t last = 0;
    for (;;) {
        sqlite3_bind_int64(s, 1, last);
        sqlite3_bind_int64(s, 2, 50000);
        size_t got = 0;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            got++;
            last = sqlite3_column_int64(s, 0);
            if (add_event(r, sqlite3_column_int64(s, 2), sqlite3_column_int64(s, 3),
                          sqlite3_column_int64(s, 1), sqlite3_column_blob(s, 4),
                          (size_t)sqlite3_column_bytes(s, 4)) < 0) {
                ret = te_err_set(err, TE_ENOMEM, "rollup: out of memory");
                break;
            }
        }
        sqlite3_reset(s);
        if (ret == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
            ret = te_store_sqlerr(st, rc, err, "rebuild rollups");
        if (ret == 0 && (r->nents >= FLUSH_EVERY || got == 0))
            ret = te_rollup_flush(st, err);
        if (ret < 0 || got == 0)
            break;
    }
    sqlite3_finalize(s);
    if (ret == 0)
        ret = set_state(st, "ok", err);
end:
    clear_ents(r);
    if (ret == 0) {
        rc = sqlite3_exec(st->db, TE_SQL_COMMIT, NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            ret = te_store_sqlerr(st, rc, err, "commit rollup rebuild");
    }
    if (ret < 0)
        sqlite3_exec(st->db, TE_SQL_ROLLBACK, NULL, NULL, NULL);
    return ret;
}

int te_rollup_open(te_store_t *st, te_err_t *err)
{
    struct te_rollup *r = calloc(1, sizeof(*r));
    if (!r)
        return te_err_set(err, TE_ENOMEM, "rollup: out of memory");
    st->rollup = r;
    uint32_t f;
    if (field_index(r, "", 0, &f) < 0)
        return te_err_set(err, TE_ENOMEM, "rollup: out of memory");
    const char *sql[] = {TE_SQL_ROLLUP_GET("rollup_1m"), TE_SQL_ROLLUP_GET("rollup_1h"),
                         TE_SQL_ROLLUP_PUT("rollup_1m"), TE_SQL_ROLLUP_PUT("rollup_1h"),
                         TE_SQL_ARCHIVE_MARKS};
    sqlite3_stmt **slot[] = {&r->get[0], &r->get[1], &r->put[0], &r->put[1], &r->marks_st};
    for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
        int rc = sqlite3_prepare_v3(st->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, slot[i], NULL);
        if (rc != SQLITE_OK)
            return te_store_sqlerr(st, rc, err, "prepare rollup statement");
    }
    char v[16];
    int rc = get_state(st, v, sizeof(v), err);
    if (rc == 0 && strcmp(v, "rebuild") == 0)
        rc = rebuild(st, err);
    return rc;
}

void te_rollup_close(te_store_t *st)
{
    struct te_rollup *r = st ? st->rollup : NULL;
    if (!r)
        return;
    clear_ents(r);
    for (size_t i = 0; i < r->npool; i++)
        te_sketch_free(r->pool[i]);
    free(r->pool);
    free(r->ents);
    free(r->idx);
    free(r->marks);
    for (size_t i = 0; i < r->nfields; i++)
        free(r->fnames[i]);
    free(r->fnames);
    free(r->flens);
    te_series_map_free(&r->fmap);
    for (int i = 0; i < 2; i++) {
        sqlite3_finalize(r->get[i]);
        sqlite3_finalize(r->put[i]);
    }
    sqlite3_finalize(r->marks_st);
    free(r);
    st->rollup = NULL;
}

int te_store_set_rollups(te_store_t *st, bool on, te_err_t *err)
{
    if (!st || st->readonly || !st->rollup)
        return te_err_set(err, TE_EINVAL, "store: rollups apply to a read-write store");
    if (st->in_txn)
        return te_err_set(err, TE_EINVAL, "store: cannot switch rollups inside a transaction");
    if (on == !st->rollup->off)
        return 0;
    st->rollup->off = !on;
    if (on)
        return 0;
    /* events stored from now on miss the rollups: readers use raw events and
     * the next read-write open rebuilds them */
    return set_state(st, "rebuild", err);
}
