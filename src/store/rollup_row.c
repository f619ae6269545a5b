/*
 * rollup_row.c - writing the rows of the rollup tables: the generic
 * accumulators' 1-hour rows (rollup_1h.c packs them), a series' hour of
 * minutes encoded (formats: rollup_fmt.c) and packed into 1-minute rows.
 *
 * THREAD: as rollup.h (the read-write store's thread).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rollup_int.h"
#include "sql.h"

/* ---------- 1-hour rows: per (field, chunk of series) ---------- */

int te_rollup_put_1h_ents(te_store_t *st, struct te_rollup *r, te_rollup_ent_t *ents, size_t n,
                          te_err_t *err)
{
    te_rollup_1h_row_t row = {0};
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n;) {
        const te_rollup_ent_t *e0 = &ents[i];
        int64_t chunk = te_rollup_1h_chunk(e0->sid);
        te_rollup_1h_begin(&row, e0->kid, r->fnames[e0->field], r->flens[e0->field], e0->bucket,
                           chunk);
        size_t j = i;
        for (; rc == 0 && j < n && ents[j].kid == e0->kid && ents[j].field == e0->field &&
               ents[j].bucket == e0->bucket && te_rollup_1h_chunk(ents[j].sid) == chunk;
             j++) {
            te_rollup_ent_t *x = &ents[j];
            bool sk = x->field != 0 && x->n > 2;
            te_rollup_1h_entry_t en = {.sid = x->sid, .n = x->n, .sum = x->sum, .min = x->min,
                                       .max = x->max};
            if (sk && te_rollup_ent_sketch(r, x) < 0)
                rc = te_err_set(err, TE_ENOMEM, "rollup: out of memory");
            else
                te_rollup_1h_add(&row, &en, sk ? x->sk : NULL);
        }
        if (rc == 0)
            rc = te_rollup_1h_write(st, &r->h1, &row, err);
        i = j;
    }
    te_rollup_1h_free(&row);
    return rc;
}

/* ---------- a series' hour of minutes (format: rollup_fmt.c) ---------- */

/* v as v * 10^k exactly, reading back bit for bit; false if not. */
static inline bool scaled(double v, int k, int64_t *out)
{
    double x = v * te_rollup_pow10(k);
    if (!(x > -9007199254740992.0 && x < 9007199254740992.0)) /* 2^53; NaN fails */
        return false;
    int64_t i = (int64_t)x;
    double back = (double)i / te_rollup_pow10(k);
    uint64_t a, b;
    memcpy(&a, &back, sizeof(a));
    memcpy(&b, &v, sizeof(b));
    if ((double)i != x || a != b) /* -0.0 stays f64 */
        return false;
    *out = i;
    return true;
}

/* The scale all of v[0, n) take, trying *hint first (a column keeps its
 * format from cell to cell: one check per value, most times), else the
 * smallest; TE_ROLLUP_MAX_SCALE + 1 for none. Sets *hint and q. */
static int pick_scale(const double *v, size_t n, int *hint, int64_t *q)
{
    int h = *hint;
    if (h > TE_ROLLUP_MAX_SCALE)
        return h; /* not decimals earlier in this column: no more tries */
    size_t i = 0;
    if (h >= 0) {
        while (i < n && scaled(v[i], h, &q[i]))
            i++;
        if (i == n)
            return h;
    }
    int k = 0;
    for (i = 0; i < n && k <= TE_ROLLUP_MAX_SCALE;) {
        if (scaled(v[i], k, &q[i]))
            i++;
        else if (++k <= TE_ROLLUP_MAX_SCALE)
            i = 0; /* a finer scale: the values before are checked again */
    }
    *hint = k;
    return k;
}

/* q as a zigzag varint at p; returns the bytes written. One or two bytes
 * (the common case) inline. */
static inline size_t put_zigzag(unsigned char *p, int64_t q)
{
    uint64_t z = ((uint64_t)q << 1) ^ (uint64_t)(q >> 63);
    if (z >= 0x4000)
        return te_rollup_put_varint(p, z);
    p[0] = (unsigned char)(z | (z > 0x7f ? 0x80 : 0));
    p[1] = (unsigned char)(z >> 7);
    return 1 + (z > 0x7f);
}

size_t te_rollup_put_vals(unsigned char *p, const double *v, size_t n, int *hint)
{
    int64_t q[TE_ROLLUP_VALS];
    int none = -1;
    int k = n <= TE_ROLLUP_VALS ? pick_scale(v, n, hint ? hint : &none, q)
                                : TE_ROLLUP_MAX_SCALE + 1;
    if (k > TE_ROLLUP_MAX_SCALE) {
        p[0] = 0;
        return 1 + te_rollup_put_f64s(p + 1, v, n);
    }
    size_t len = 1;
    p[0] = (unsigned char)(1 + k);
    for (size_t i = 0; i < n; i++)
        len += put_zigzag(p + len, q[i]);
    return len;
}

int te_rollup_scale_of(const double *v, size_t n)
{
    int64_t q;
    for (int k = 0; k <= TE_ROLLUP_MAX_SCALE; k++) {
        size_t i = 0;
        while (i < n && scaled(v[i], k, &q))
            i++;
        if (i == n)
            return 1 + k;
    }
    return 0;
}

size_t te_rollup_put_scaled(unsigned char *p, const double *v, size_t n, int e)
{
    if (e == 0)
        return te_rollup_put_f64s(p, v, n);
    size_t len = 0;
    double m = te_rollup_pow10(e - 1);
    for (size_t i = 0; i < n; i++) /* exact: te_rollup_scale_of checked it */
        len += put_zigzag(p + len, (int64_t)(v[i] * m));
    return len;
}

int te_rollup_put_1m(te_store_t *st, struct te_rollup *r, int64_t kid, int64_t sid, int64_t hour,
                     const te_rollup_ent_t *cells, size_t n, te_err_t *err)
{
    te_rollup_wbuf_t b = {0};
    uint32_t map[TE_ROLLUP_MAX_ROW_NAMES];  /* row name index -> field */
    size_t nn = 0;
    int64_t events = 0;
    unsigned char v = TE_ROLLUP_1M_VERSION;
    for (size_t k = 0; k < n; k++) {
        const te_rollup_ent_t *e = &cells[k];
        size_t x = 0;
        while (x < nn && map[x] != e->field)
            x++;
        if (x == nn) {
            if (nn == TE_ROLLUP_MAX_ROW_NAMES)
                return te_err_set(err, TE_ETOOBIG, "rollup: more than %d fields in one series",
                                  TE_ROLLUP_MAX_ROW_NAMES);
            map[nn++] = e->field;
        }
        if (e->field == 0)
            events += e->n;
    }
    te_rollup_wb_put(&b, &v, 1);
    te_rollup_wb_varint(&b, nn);
    for (size_t x = 0; x < nn; x++) {
        te_rollup_wb_varint(&b, r->flens[map[x]]);
        te_rollup_wb_put(&b, r->fnames[map[x]], r->flens[map[x]]);
    }
    te_rollup_wb_varint(&b, n);
    for (size_t k = 0; k < n; k++) {
        const te_rollup_ent_t *e = &cells[k];
        size_t x = 0;
        while (map[x] != e->field)
            x++;
        unsigned char minute = (unsigned char)((e->bucket - hour) / TE_ROLLUP_1M_NS);
        te_rollup_wb_put(&b, &minute, 1);
        te_rollup_wb_varint(&b, x);
        te_rollup_wb_varint(&b, (uint64_t)e->n);
        if (e->field == 0)
            continue;
        if (e->n <= TE_ROLLUP_VALS && !e->sk) {
            unsigned char t[1 + TE_ROLLUP_VALS * 10];
            te_rollup_wb_put(&b, t, te_rollup_put_vals(t, e->v, (size_t)e->n, NULL));
            continue;
        }
        if (e->n <= TE_ROLLUP_VALS) { /* never: a sketch comes with n > VALS */
            free(b.p);
            return te_err_set(err, TE_EINVAL, "rollup: internal: sketch with %lld values",
                              (long long)e->n);
        }
        unsigned char *sk = NULL;
        size_t sl = 0;
        if (!e->sk || te_sketch_encode(e->sk, &sk, &sl) < 0) {
            free(b.p);
            return te_err_set(err, TE_ENOMEM, "rollup: cannot encode a sketch");
        }
        te_rollup_wb_f64(&b, e->sum);
        te_rollup_wb_f64(&b, e->min);
        te_rollup_wb_f64(&b, e->max);
        te_rollup_wb_varint(&b, sl);
        te_rollup_wb_put(&b, sk, sl);
        free(sk);
    }
    if (b.oom) {
        free(b.p);
        return te_err_set(err, TE_ENOMEM, "rollup: out of memory");
    }
    int rc = te_rollup_put_1m_blob(st, r, kid, sid, hour, events, b.p, b.len, err);
    free(b.p);
    return rc;
}

/* ---------- 1-minute pack rows: series of one (kind, hour) ---------- */

/* Rows hold series up to PACK_BYTES (format: rollup_fmt.c). */
#define PACK_BYTES (32u << 10)

static int pack_out(te_store_t *st, struct te_rollup *r, te_err_t *err);

static void pack_open(te_rollup_pack_t *p, int64_t kid, int64_t hour)
{
    p->kid = kid;
    p->hour = hour;
    p->n = 0;
    p->b.len = 0;
    p->b.oom = false;
    p->ndefs = 0;
    unsigned char f = TE_ROLLUP_PACK_FORMAT;
    te_rollup_wb_put(&p->b, &f, 1);
    p->open = true;
}

void te_rollup_pack_add(te_rollup_pack_t *p, int64_t kid, int64_t hour, int64_t sid,
                        int64_t events, const void *blob, size_t len)
{
    if (!p->open)
        pack_open(p, kid, hour);
    te_rollup_wb_varint(&p->b, (uint64_t)sid << 1);
    te_rollup_wb_varint(&p->b, len);
    te_rollup_wb_put(&p->b, blob, len);
    p->n += events;
}

static inline bool pack_has(const te_rollup_pack_t *p, uint32_t f)
{
    return f < p->cap_ref && p->ref[f] < p->ndefs && p->defs[p->ref[f]] == f;
}

int te_rollup_1m_head(te_store_t *st, struct te_rollup *r, te_rollup_wbuf_t *b, int64_t kid,
                      int64_t hour, const uint32_t *fids, size_t n, te_err_t *err)
{
    te_rollup_pack_t *p = &r->pack;
    int rc = 0;
    size_t fresh = 0;
    if (p->open && (p->kid != kid || p->hour != hour))
        rc = pack_out(st, r, err);
    for (size_t i = 0; p->open && i < n; i++)
        fresh += !pack_has(p, fids[i]);
    if (rc == 0 && p->open && p->ndefs + fresh > TE_ROLLUP_PACK_NAMES && n <= TE_ROLLUP_PACK_NAMES)
        rc = pack_out(st, r, err); /* a fresh row has room */
    if (rc)
        return rc;
    if (!p->open)
        pack_open(p, kid, hour);
    b->len = 0;
    b->oom = false;
    unsigned char v = n <= TE_ROLLUP_PACK_NAMES ? TE_ROLLUP_1M_V5 : TE_ROLLUP_1M_V4;
    te_rollup_wb_put(b, &v, 1);
    te_rollup_wb_varint(b, n + 1);
    te_rollup_wb_varint(b, 0);
    for (size_t i = 0; i < n; i++) {
        uint32_t f = fids[i];
        if (v == TE_ROLLUP_1M_V4) {
            te_rollup_wb_varint(b, r->flens[f]);
            te_rollup_wb_put(b, r->fnames[f], r->flens[f]);
            continue;
        }
        if (!pack_has(p, f)) {
            if (f >= p->cap_ref) {
                size_t ncap = r->cap_fields > f ? r->cap_fields : (size_t)f + 1;
                uint16_t *nr = realloc(p->ref, ncap * sizeof(*nr));
                if (!nr)
                    return te_err_set(err, TE_ENOMEM, "rollup: out of memory");
                p->ref = nr;
                p->cap_ref = ncap;
            }
            p->ref[f] = (uint16_t)p->ndefs;
            p->defs[p->ndefs++] = f;
            te_rollup_wb_varint(&p->b, (uint64_t)r->flens[f] << 1 | 1);
            te_rollup_wb_put(&p->b, r->fnames[f], r->flens[f]);
        }
        te_rollup_wb_varint(b, (uint64_t)p->ref[f] + 1);
    }
    return 0;
}

int te_rollup_1m_insert(te_store_t *st, sqlite3_stmt *ins, int64_t kid, int64_t hour, int64_t n,
                        const void *p, size_t len, te_err_t *err)
{
    if (len > INT32_MAX)
        return te_err_set(err, TE_ETOOBIG, "rollup: a 1-minute row of %zu bytes", len);
    sqlite3_bind_int64(ins, 1, kid);
    sqlite3_bind_int64(ins, 2, hour);
    sqlite3_bind_int64(ins, 3, n);
    sqlite3_bind_blob(ins, 4, p, (int)len, SQLITE_STATIC);
    int rc = sqlite3_step(ins);
    sqlite3_reset(ins);
    sqlite3_clear_bindings(ins);
    return rc == SQLITE_DONE ? 0 : te_store_sqlerr(st, rc, err, "write rollup");
}

int te_rollup_pack_write(te_store_t *st, sqlite3_stmt *ins, te_rollup_pack_t *p, te_err_t *err)
{
    if (!p->open)
        return 0;
    p->open = false;
    if (p->b.oom)
        return te_err_set(err, TE_ENOMEM, "rollup: out of memory");
    return te_rollup_1m_insert(st, ins, p->kid, p->hour, p->n, p->b.p, p->b.len, err);
}

/* r->pack to the database, or to the hour being prepared (r->prep). */
static int pack_out(te_store_t *st, struct te_rollup *r, te_err_t *err)
{
    return r->prep ? te_rollup_prep_pack(r, err) : te_rollup_pack_write(st, r->put1m, &r->pack, err);
}

int te_rollup_put_1m_blob(te_store_t *st, struct te_rollup *r, int64_t kid, int64_t sid,
                          int64_t hour, int64_t events, const void *blob, size_t len,
                          te_err_t *err)
{
    te_rollup_pack_t *p = &r->pack;
    int rc = 0;
    if (p->open && (p->kid != kid || p->hour != hour))
        rc = pack_out(st, r, err);
    te_rollup_pack_add(p, kid, hour, sid, events, blob, len);
    if (rc == 0 && p->b.len >= PACK_BYTES)
        rc = pack_out(st, r, err);
    return rc;
}

int te_rollup_put_1m_end(te_store_t *st, struct te_rollup *r, te_err_t *err)
{
    return pack_out(st, r, err);
}

/* ---------- schema 6 -> 7 ---------- */

int te_rollup_1m_convert(te_store_t *st, te_err_t *err)
{
    sqlite3_stmt *q = NULL, *ins = NULL;
    te_rollup_pack_t p = {0};
    int rc = 0, src = sqlite3_prepare_v2(st->db, TE_SQL_ROLLUP_1M_V6_READ, -1, &q, NULL);
    if (src == SQLITE_OK)
        src = sqlite3_prepare_v2(st->db, TE_SQL_ROLLUP_1M_INS, -1, &ins, NULL);
    if (src != SQLITE_OK)
        rc = te_store_sqlerr(st, src, err, "convert schema-6 1-minute rollups");
    while (rc == 0 && (src = sqlite3_step(q)) == SQLITE_ROW) {
        int64_t kid = sqlite3_column_int64(q, 0), hour = sqlite3_column_int64(q, 1);
        if (p.open && (p.kid != kid || p.hour != hour || p.b.len >= PACK_BYTES))
            rc = te_rollup_pack_write(st, ins, &p, err);
        te_rollup_pack_add(&p, kid, hour, sqlite3_column_int64(q, 2), sqlite3_column_int64(q, 3),
                           sqlite3_column_blob(q, 4), (size_t)sqlite3_column_bytes(q, 4));
        src = SQLITE_OK;
    }
    if (rc == 0 && src != SQLITE_DONE && src != SQLITE_OK)
        rc = te_store_sqlerr(st, src, err, "read schema-6 1-minute rollups");
    if (rc == 0)
        rc = te_rollup_pack_write(st, ins, &p, err);
    sqlite3_finalize(q);
    sqlite3_finalize(ins);
    free(p.b.p);
    if (rc == 0 && (src = sqlite3_exec(st->db, TE_SQL_ROLLUP_1M_V6_DROP, NULL, NULL, NULL)) !=
                       SQLITE_OK)
        rc = te_store_sqlerr(st, src, err, "drop schema-6 1-minute rollups");
    return rc;
}
