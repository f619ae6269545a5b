/*
 * rollup_row.c - the rows of the rollup tables: writing a 1-hour row (one
 * per series, hour and field), encoding and writing a packed 1-minute row
 * (one per series and hour), and walking the cells of a stored one.
 *
 * THREAD: as rollup.h (writers: the read-write store's thread; the walk:
 * any reader).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rollup_int.h"
#include "sql.h"

/* ---------- 1-hour rows: one per field ---------- */

int te_rollup_put_1h(te_store_t *st, struct te_rollup *r, te_rollup_ent_t *e, bool merge,
                     te_err_t *err)
{
    sqlite3_stmt *g = r->get1h, *p = r->put1h;
    const char *fname = r->fnames[e->field];
    int flen = (int)r->flens[e->field];
    int rc = SQLITE_DONE, ret = 0;
    if (!merge)
        goto put;
    sqlite3_bind_int64(g, 1, e->kid);
    sqlite3_bind_text(g, 2, fname, flen, SQLITE_STATIC);
    sqlite3_bind_int64(g, 3, e->bucket);
    sqlite3_bind_int64(g, 4, e->sid);
    rc = sqlite3_step(g);
    if (rc == SQLITE_ROW) {
        ret = te_rollup_ent_merge_stored(r, e, sqlite3_column_int64(g, 0), sqlite3_column_double(g, 1),
                               sqlite3_column_double(g, 2), sqlite3_column_double(g, 3),
                               sqlite3_column_blob(g, 4), (size_t)sqlite3_column_bytes(g, 4), err);
        rc = SQLITE_DONE;
    }
    sqlite3_reset(g);
    if (rc != SQLITE_DONE)
        return te_store_sqlerr(st, rc, err, "read rollup");
    if (ret < 0)
        return ret;
put:;
    unsigned char *blob = NULL;
    size_t blen = 0;
    if (e->field != 0 && e->n > 2 &&
        (te_rollup_ent_sketch(r, e) < 0 || te_sketch_encode(e->sk, &blob, &blen) < 0))
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

/* ---------- 1-minute rows: one per (series, hour), minutes packed ---------- */

/* Blob (version 1; integers LEB128 varints, doubles 8 bytes little-endian):
 *   u8 1 | varint nnames | nnames x (varint len, bytes) | varint ncells |
 *   ncells x (u8 minute, varint name index, varint n, values)
 * sorted by (minute, name); name '' is the event count (no values); other
 * cells hold n <= TE_ROLLUP_VALS: the n values themselves (f64 each), else
 * f64 sum, f64 min, f64 max, varint sketch length, sketch blob
 * (te_sketch_encode). Most minutes of most series hold a few events, and
 * a value costs 8 bytes where a sketch costs ~50. */

bool te_rollup_wb_reserve(te_rollup_wbuf_t *b, size_t n)
{
    if (b->oom)
        return false;
    if (b->len + n > b->cap) {
        size_t ncap = b->cap ? b->cap * 2 : 256;
        while (ncap < b->len + n)
            ncap *= 2;
        unsigned char *np = realloc(b->p, ncap);
        if (!np) {
            b->oom = true;
            return false;
        }
        b->p = np;
        b->cap = ncap;
    }
    return true;
}

size_t te_rollup_put_varint(unsigned char *p, uint64_t v)
{
    size_t n = 0;
    do {
        p[n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return n;
}

size_t te_rollup_put_f64s(unsigned char *p, const double *v, size_t n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(p, v, n * 8);
#else
    for (size_t k = 0; k < n; k++) {
        uint64_t u;
        memcpy(&u, &v[k], 8);
        for (int i = 0; i < 8; i++)
            p[8 * k + (size_t)i] = (unsigned char)(u >> (8 * i));
    }
#endif
    return n * 8;
}

void te_rollup_wb_put(te_rollup_wbuf_t *b, const void *src, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n > b->cap) {
        size_t ncap = b->cap ? b->cap * 2 : 256;
        while (ncap < b->len + n)
            ncap *= 2;
        unsigned char *np = realloc(b->p, ncap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

void te_rollup_wb_varint(te_rollup_wbuf_t *b, uint64_t v)
{
    unsigned char t[10];
    te_rollup_wb_put(b, t, te_rollup_put_varint(t, v));
}

void te_rollup_wb_f64(te_rollup_wbuf_t *b, double d)
{
    unsigned char t[8];
    te_rollup_wb_put(b, t, te_rollup_put_f64s(t, &d, 1));
}

typedef struct rbuf {
    const unsigned char *p;
    size_t len, pos;
} rbuf_t;

static bool rb_varint(rbuf_t *b, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (b->pos >= b->len)
            return false;
        unsigned char c = b->p[b->pos++];
        *v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            return true;
    }
    return false;
}

static bool rb_f64(rbuf_t *b, double *d)
{
    if (b->len - b->pos < 8)
        return false;
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u |= (uint64_t)b->p[b->pos + i] << (8 * i);
    b->pos += 8;
    memcpy(d, &u, 8);
    return true;
}

int te_rollup_1m_each(const void *blob, size_t len, te_rollup_cell_cb cb, void *ud,
                      te_err_t *err)
{
    rbuf_t b = {blob, len, 0};
    uint64_t nn, nc;
    const char *names[TE_ROLLUP_MAX_ROW_NAMES];
    size_t lens[TE_ROLLUP_MAX_ROW_NAMES];
    if (len < 1 || b.p[0] != 1)
        goto bad;
    b.pos = 1;
    if (!rb_varint(&b, &nn) || nn > TE_ROLLUP_MAX_ROW_NAMES)
        goto bad;
    for (uint64_t i = 0; i < nn; i++) {
        uint64_t l;
        if (!rb_varint(&b, &l) || l > b.len - b.pos)
            goto bad;
        names[i] = (const char *)b.p + b.pos;
        lens[i] = (size_t)l;
        b.pos += l;
    }
    if (!rb_varint(&b, &nc))
        goto bad;
    for (uint64_t i = 0; i < nc; i++) {
        te_rollup_cell_t c = {0};
        uint64_t ni, n;
        if (b.pos >= b.len)
            goto bad;
        c.minute = b.p[b.pos++];
        if (c.minute >= 60 || !rb_varint(&b, &ni) || ni >= nn || !rb_varint(&b, &n) ||
            n > INT64_MAX)
            goto bad;
        c.field = names[ni];
        c.field_len = lens[ni];
        c.n = (int64_t)n;
        if (c.field_len > 0) {
            if (n == 0)
                goto bad;
            if (n <= TE_ROLLUP_VALS) {
                for (uint64_t k = 0; k < n; k++) {
                    if (!rb_f64(&b, &c.vals[k]))
                        goto bad;
                    c.sum += c.vals[k];
                    if (k == 0 || c.vals[k] < c.min)
                        c.min = c.vals[k];
                    if (k == 0 || c.vals[k] > c.max)
                        c.max = c.vals[k];
                }
                c.nvals = (int)n;
            } else {
                uint64_t sl;
                if (!rb_f64(&b, &c.sum) || !rb_f64(&b, &c.min) || !rb_f64(&b, &c.max) ||
                    !rb_varint(&b, &sl) || sl > b.len - b.pos)
                    goto bad;
                c.sketch = b.p + b.pos;
                c.sketch_len = (size_t)sl;
                b.pos += sl;
            }
        }
        int rc = cb(&c, ud);
        if (rc)
            return rc;
    }
    if (b.pos != b.len)
        goto bad;
    return 0;
bad:
    return te_err_set(err, TE_EPARSE, "rollup: bad 1-minute row at byte %zu (run `db check`)",
                      b.pos);
}

int te_rollup_put_1m(te_store_t *st, struct te_rollup *r, int64_t kid, int64_t sid, int64_t hour,
                     const te_rollup_ent_t *cells, size_t n, te_err_t *err)
{
    te_rollup_wbuf_t b = {0};
    uint32_t map[TE_ROLLUP_MAX_ROW_NAMES];  /* row name index -> field */
    size_t nn = 0;
    int64_t events = 0;
    unsigned char v = 1;
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
            for (int64_t vi = 0; vi < e->n; vi++)
                te_rollup_wb_f64(&b, e->v[vi]);
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

int te_rollup_put_1m_blob(te_store_t *st, struct te_rollup *r, int64_t kid, int64_t sid,
                          int64_t hour, int64_t events, const void *blob, size_t len,
                          te_err_t *err)
{
    if (len > INT32_MAX)
        return te_err_set(err, TE_ETOOBIG, "rollup: a 1-minute row of %zu bytes", len);
    sqlite3_stmt *p = r->put1m;
    sqlite3_bind_int64(p, 1, kid);
    sqlite3_bind_int64(p, 2, hour);
    sqlite3_bind_int64(p, 3, sid);
    sqlite3_bind_int64(p, 4, events);
    sqlite3_bind_blob(p, 5, blob, (int)len, SQLITE_STATIC);
    int rc = sqlite3_step(p);
    sqlite3_reset(p);
    sqlite3_clear_bindings(p);
    return rc == SQLITE_DONE ? 0 : te_store_sqlerr(st, rc, err, "write rollup");
}
