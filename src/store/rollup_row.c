/*
 * rollup_row.c - the rows of the rollup tables: writing the generic
 * accumulators' 1-hour rows (rollup_1h.c packs them), encoding and writing
 * a packed 1-minute row (one per series and hour), and walking the cells
 * of a stored one.
 *
 * THREAD: as rollup.h (writers: the read-write store's thread; the walk:
 * any reader).
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

/* ---------- a series' hour of minutes (packed in rollup_1m rows, below) ---------- */

/* Blob (integers LEB128 varints, doubles 8 bytes little-endian):
 *   u8 version | varint nnames | nnames x (varint len, bytes) | varint ncells |
 *   ncells x (u8 minute, varint name index, varint n, values)
 * sorted by (minute, name); name '' is the event count (no values); other
 * cells hold n <= TE_ROLLUP_VALS: the n values themselves, else f64 sum,
 * f64 min, f64 max, varint sketch length, sketch blob (te_sketch_encode).
 * Most minutes of most series hold a few events, and a value costs 8 bytes
 * or less where a sketch costs ~50.
 *
 * How a small cell's values are written: version 1, n f64; version 2 (what
 * the generic accumulators write), a byte e, then for e = 0 n f64, for e = 1 + k
 * (k <= TE_ROLLUP_MAX_SCALE) n zigzag varints of v * 10^k. Telemetry
 * values are mostly integers (tokens, bytes, counts) or short decimals
 * (milliseconds to 0.1, confidences to 0.01): 1 to 3 bytes instead of 8.
 * A cell is scaled only when every value reads back bit for bit
 * ((double)i / 10^k, what the walk computes); anything else stays f64.
 *
 * Version 3 (what the hour builder wrote first) holds the same cells by
 * column, the minutes and their event counts once:
 *   u8 3 | varint nnames | nnames x (varint len, bytes) |
 *   varint nmin | nmin x (u8 minute, varint events) |
 *   per name after '' (index 0): u8 own | [varint ncells |
 *     ncells x (u8 minute, varint n)] | u8 e | its cells' values
 * Minutes ascend. own = 0: the field's cells are the event minutes with
 * the same n (a value in every event: the usual case), so the list is not
 * repeated. e is the scale code of version 2 for every small cell of the
 * field; a big cell is written as in version 2. For a busy series' hour
 * this is ~30 % fewer bytes than version 2: a cell there costs 3 to 4
 * bytes before its values.
 *
 * Version 4 is version 3 where a cell of a field with e > 0 is small up
 * to TE_ROLLUP_CELL_VALS values, not TE_ROLLUP_VALS (te_rollup_v4_small):
 * 9 to 32 scaled integers take fewer bytes than a sketch with its sum, min
 * and max, cost a fraction of building and encoding one, and read back
 * exactly. The hour builder writes it for a series' hour with more names
 * than a pack row holds.
 *
 * Version 5 (what the hour builder writes) is version 4 whose names are
 * numbers into its pack row's names (format 2, below):
 *   u8 5 | varint nnames | nnames x varint (0: '', i: the row's name i) |
 *   the rest as version 4. */

#define MAX_SCALE 6 /* 10^6: microseconds in milliseconds, 6-digit fractions */

static const double POW10[MAX_SCALE + 1] = {1, 10, 100, 1000, 10000, 100000, 1000000};

/* v as v * 10^k exactly, reading back bit for bit; false if not. */
static inline bool scaled(double v, int k, int64_t *out)
{
    double x = v * POW10[k];
    if (!(x > -9007199254740992.0 && x < 9007199254740992.0)) /* 2^53; NaN fails */
        return false;
    int64_t i = (int64_t)x;
    double back = (double)i / POW10[k];
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
 * smallest; MAX_SCALE + 1 for none. Sets *hint and q. */
static int pick_scale(const double *v, size_t n, int *hint, int64_t *q)
{
    int h = *hint;
    if (h > MAX_SCALE)
        return h; /* not decimals earlier in this column: no more tries */
    size_t i = 0;
    if (h >= 0) {
        while (i < n && scaled(v[i], h, &q[i]))
            i++;
        if (i == n)
            return h;
    }
    int k = 0;
    for (i = 0; i < n && k <= MAX_SCALE;) {
        if (scaled(v[i], k, &q[i]))
            i++;
        else if (++k <= MAX_SCALE)
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
    int k = n <= TE_ROLLUP_VALS ? pick_scale(v, n, hint ? hint : &none, q) : MAX_SCALE + 1;
    if (k > MAX_SCALE) {
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
    for (int k = 0; k <= MAX_SCALE; k++) {
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
    double m = POW10[e - 1];
    for (size_t i = 0; i < n; i++) /* exact: te_rollup_scale_of checked it */
        len += put_zigzag(p + len, (int64_t)(v[i] * m));
    return len;
}

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

void te_rollup_wb_grow_put(te_rollup_wbuf_t *b, const void *src, size_t n)
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

/* Reads the values of field cell c (c->n set) under scale code e (version
 * 2 to 4 cells; version 1: e = 0), a small cell when n <= small (values),
 * else a big one (sketch), and sets sum, min, max. */
static bool rb_cell_values(rbuf_t *b, te_rollup_cell_t *c, unsigned e, uint64_t small)
{
    uint64_t n = (uint64_t)c->n;
    if (n <= small) {
        for (uint64_t k = 0; k < n; k++) {
            uint64_t z;
            if (e == 0 && !rb_f64(b, &c->vals[k]))
                return false;
            if (e > 0 && !rb_varint(b, &z))
                return false;
            if (e > 0)
                c->vals[k] = (double)(int64_t)((z >> 1) ^ -(z & 1)) / POW10[e - 1];
            c->sum += c->vals[k];
            if (k == 0 || c->vals[k] < c->min)
                c->min = c->vals[k];
            if (k == 0 || c->vals[k] > c->max)
                c->max = c->vals[k];
        }
        c->nvals = (int)n;
        return true;
    }
    uint64_t sl;
    if (!rb_f64(b, &c->sum) || !rb_f64(b, &c->min) || !rb_f64(b, &c->max) ||
        !rb_varint(b, &sl) || sl > b->len - b->pos)
        return false;
    c->sketch = b->p + b->pos;
    c->sketch_len = (size_t)sl;
    b->pos += sl;
    return true;
}

/* Reads a version-3 list of (minute, n): at most 60, minutes ascending,
 * n >= 1. */
static bool rb_minutes(rbuf_t *b, uint8_t *m, uint64_t *n, size_t *count)
{
    uint64_t k;
    if (!rb_varint(b, &k) || k > 60)
        return false;
    for (uint64_t i = 0; i < k; i++) {
        if (b->pos >= b->len)
            return false;
        m[i] = b->p[b->pos++];
        if (m[i] >= 60 || (i > 0 && m[i] <= m[i - 1]) || !rb_varint(b, &n[i]) || n[i] == 0 ||
            n[i] > INT64_MAX)
            return false;
    }
    *count = (size_t)k;
    return true;
}

/* The cells of a version-3, 4 or 5 blob after its names (format above): 0,
 * cb's code, or 0 with *bad set for a malformed blob. */
static int each_v3(rbuf_t *b, int version, const char *const *names, const size_t *lens,
                   size_t nn, te_rollup_cell_cb cb, void *ud, bool *bad)
{
    *bad = true;
    uint8_t em[60], fm[60];
    uint64_t en[60], fn[60];
    size_t ne, nf;
    if (nn < 1 || lens[0] != 0 || !rb_minutes(b, em, en, &ne))
        return 0;
    for (size_t i = 0; i < ne; i++) {
        te_rollup_cell_t c = {.minute = em[i], .field = names[0], .n = (int64_t)en[i]};
        int rc = cb(&c, ud);
        if (rc)
            return rc;
    }
    for (size_t f = 1; f < nn; f++) {
        if (lens[f] == 0 || b->pos >= b->len || b->p[b->pos] > 1)
            return 0;
        const uint8_t *cm = em;
        const uint64_t *cn = en;
        size_t nc = ne;
        if (b->p[b->pos++] == 1) {
            if (!rb_minutes(b, fm, fn, &nf))
                return 0;
            cm = fm;
            cn = fn;
            nc = nf;
        }
        if (b->pos >= b->len || b->p[b->pos] > 1 + MAX_SCALE)
            return 0;
        unsigned e = b->p[b->pos++];
        uint64_t small = version >= TE_ROLLUP_1M_V4 ? te_rollup_v4_small(e) : TE_ROLLUP_VALS;
        for (size_t i = 0; i < nc; i++) {
            te_rollup_cell_t c = {.minute = cm[i], .field = names[f], .field_len = lens[f],
                                  .n = (int64_t)cn[i]};
            if (!rb_cell_values(b, &c, e, small))
                return 0;
            int rc = cb(&c, ud);
            if (rc)
                return rc;
        }
    }
    *bad = b->pos != b->len;
    return 0;
}

/* The names of a blob of version v at b (b->pos after the version byte):
 * written out, or for version 5 indexes into pn ('' is 0, pn's names 1
 * on). False for a malformed list. */
static bool rb_names(rbuf_t *b, int v, const te_rollup_pack_names_t *pn, const char **names,
                     size_t *lens, uint64_t *nn)
{
    if (!rb_varint(b, nn) || *nn > TE_ROLLUP_MAX_ROW_NAMES || (v == TE_ROLLUP_1M_V5 && !pn))
        return false;
    for (uint64_t i = 0; i < *nn; i++) {
        uint64_t l;
        if (!rb_varint(b, &l))
            return false;
        if (v == TE_ROLLUP_1M_V5) {
            if (l > pn->n)
                return false;
            names[i] = l ? pn->name[l - 1] : "";
            lens[i] = l ? pn->len[l - 1] : 0;
            continue;
        }
        if (l > b->len - b->pos)
            return false;
        names[i] = (const char *)b->p + b->pos;
        lens[i] = (size_t)l;
        b->pos += l;
    }
    return true;
}

int te_rollup_1m_each(const void *blob, size_t len, const te_rollup_pack_names_t *pn,
                      te_rollup_cell_cb cb, void *ud, te_err_t *err)
{
    rbuf_t b = {blob, len, 0};
    uint64_t nn, nc;
    const char *names[TE_ROLLUP_MAX_ROW_NAMES];
    size_t lens[TE_ROLLUP_MAX_ROW_NAMES];
    if (len >= 1 && b.p[0] > TE_ROLLUP_1M_V5 && b.p[0] < 0x80)
        return te_err_set(err, TE_EPARSE,
                          "rollup: 1-minute row of format %d, newer than this build's %d "
                          "(written by a newer telemetry-engine: upgrade)",
                          b.p[0], TE_ROLLUP_1M_V5);
    if (len < 1 || b.p[0] < 1 || b.p[0] > TE_ROLLUP_1M_V5)
        goto bad;
    int version = b.p[0];
    b.pos = 1;
    if (!rb_names(&b, version, pn, names, lens, &nn))
        goto bad;
    if (version >= TE_ROLLUP_1M_V3) {
        bool malformed;
        int rc = each_v3(&b, version, names, lens, (size_t)nn, cb, ud, &malformed);
        if (rc || !malformed)
            return rc;
        goto bad;
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
            unsigned e = 0;
            if (n == 0)
                goto bad;
            if (n <= TE_ROLLUP_VALS && version >= 2) {
                if (b.pos >= b.len || b.p[b.pos] > 1 + MAX_SCALE)
                    goto bad;
                e = b.p[b.pos++];
            }
            if (!rb_cell_values(&b, &c, e, TE_ROLLUP_VALS))
                goto bad;
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

/* data = u8 format | entries to the end. Format 1: varint series id,
 * varint length, that series' packed hour (the blob above). Format 2
 * (what this build writes): varint tag; tag & 1 = 0: a series, id tag >>
 * 1, then varint length and blob as in format 1; tag & 1 = 1: a field
 * name of tag >> 1 bytes (1 or more) follows, the row's next name (1, 2,
 * ...; at most TE_ROLLUP_PACK_NAMES). A version-5 blob names its fields
 * by those numbers (0 is ''): a series of a sparse kind, one event in its
 * hour, no longer carries ~50 bytes of names it shares with the rest of
 * the row. Rows hold series up to PACK_BYTES; a series' hour may be in
 * several rows (readers add them up: sql_v7.h). */
#define PACK_FORMAT 2
#define PACK_BYTES (32u << 10)

static void pack_open(te_rollup_pack_t *p, int64_t kid, int64_t hour)
{
    p->kid = kid;
    p->hour = hour;
    p->n = 0;
    p->b.len = 0;
    p->b.oom = false;
    p->ndefs = 0;
    unsigned char f = PACK_FORMAT;
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
        rc = te_rollup_pack_write(st, r->put1m, p, err);
    for (size_t i = 0; p->open && i < n; i++)
        fresh += !pack_has(p, fids[i]);
    if (rc == 0 && p->open && p->ndefs + fresh > TE_ROLLUP_PACK_NAMES && n <= TE_ROLLUP_PACK_NAMES)
        rc = te_rollup_pack_write(st, r->put1m, p, err); /* a fresh row has room */
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

int te_rollup_pack_write(te_store_t *st, sqlite3_stmt *ins, te_rollup_pack_t *p, te_err_t *err)
{
    if (!p->open)
        return 0;
    p->open = false;
    if (p->b.oom)
        return te_err_set(err, TE_ENOMEM, "rollup: out of memory");
    if (p->b.len > INT32_MAX)
        return te_err_set(err, TE_ETOOBIG, "rollup: a 1-minute row of %zu bytes", p->b.len);
    sqlite3_bind_int64(ins, 1, p->kid);
    sqlite3_bind_int64(ins, 2, p->hour);
    sqlite3_bind_int64(ins, 3, p->n);
    sqlite3_bind_blob(ins, 4, p->b.p, (int)p->b.len, SQLITE_STATIC);
    int rc = sqlite3_step(ins);
    sqlite3_reset(ins);
    sqlite3_clear_bindings(ins);
    return rc == SQLITE_DONE ? 0 : te_store_sqlerr(st, rc, err, "write rollup");
}

int te_rollup_put_1m_blob(te_store_t *st, struct te_rollup *r, int64_t kid, int64_t sid,
                          int64_t hour, int64_t events, const void *blob, size_t len,
                          te_err_t *err)
{
    te_rollup_pack_t *p = &r->pack;
    int rc = 0;
    if (p->open && (p->kid != kid || p->hour != hour))
        rc = te_rollup_pack_write(st, r->put1m, p, err);
    te_rollup_pack_add(p, kid, hour, sid, events, blob, len);
    if (rc == 0 && p->b.len >= PACK_BYTES)
        rc = te_rollup_pack_write(st, r->put1m, p, err);
    return rc;
}

int te_rollup_put_1m_end(te_store_t *st, struct te_rollup *r, te_err_t *err)
{
    return te_rollup_pack_write(st, r->put1m, &r->pack, err);
}

int te_rollup_1m_pack_next(const void *data, size_t len, size_t *pos, int64_t *sid,
                           const void **blob, size_t *blob_len, te_rollup_pack_names_t *pn,
                           te_err_t *err)
{
    rbuf_t b = {data, len, *pos};
    if (b.pos == 0) {
        if (len >= 1 && b.p[0] > PACK_FORMAT && b.p[0] < 0x80)
            return te_err_set(err, TE_EPARSE,
                              "rollup: 1-minute row of format %d, newer than this build's %d "
                              "(written by a newer telemetry-engine: upgrade)",
                              b.p[0], PACK_FORMAT);
        if (len < 1 || b.p[0] < 1 || b.p[0] > PACK_FORMAT)
            goto bad;
        pn->format = b.p[0];
        pn->n = 0;
        b.pos = 1;
    }
    for (;;) {
        if (b.pos == b.len) {
            *pos = b.pos;
            return 0;
        }
        uint64_t tag, l;
        if (!rb_varint(&b, &tag))
            goto bad;
        if (pn->format == 1 || !(tag & 1)) {
            if (pn->format > 1)
                tag >>= 1;
            if (tag > INT64_MAX || !rb_varint(&b, &l) || l > b.len - b.pos)
                goto bad;
            *sid = (int64_t)tag;
            *blob = b.p + b.pos;
            *blob_len = (size_t)l;
            *pos = b.pos + (size_t)l;
            return 1;
        }
        l = tag >> 1; /* a name */
        if (l == 0 || l > b.len - b.pos || pn->n == TE_ROLLUP_PACK_NAMES)
            goto bad;
        pn->name[pn->n] = (const char *)b.p + b.pos;
        pn->len[pn->n++] = (size_t)l;
        b.pos += (size_t)l;
    }
bad:
    return te_err_set(err, TE_EPARSE, "rollup: bad 1-minute row at byte %zu (run `db check`)",
                      b.pos);
}

int te_rollup_1m_expand(const void *blob, size_t len, const te_rollup_pack_names_t *pn,
                        unsigned char **buf, size_t *cap, size_t *out_len, te_err_t *err)
{
    rbuf_t b = {blob, len, 1};
    te_rollup_wbuf_t w = {.p = *buf, .cap = *cap};
    const char *names[TE_ROLLUP_MAX_ROW_NAMES];
    size_t lens[TE_ROLLUP_MAX_ROW_NAMES];
    uint64_t nn = 0;
    if (len >= 1 && b.p[0] != TE_ROLLUP_1M_V5) {
        te_rollup_wb_put(&w, blob, len);
    } else if (len >= 1 && rb_names(&b, TE_ROLLUP_1M_V5, pn, names, lens, &nn)) {
        unsigned char v = TE_ROLLUP_1M_V4;
        te_rollup_wb_put(&w, &v, 1);
        te_rollup_wb_varint(&w, nn);
        for (uint64_t i = 0; i < nn; i++) {
            te_rollup_wb_varint(&w, lens[i]);
            te_rollup_wb_put(&w, names[i], lens[i]);
        }
        te_rollup_wb_put(&w, b.p + b.pos, b.len - b.pos);
    } else {
        return te_err_set(err, TE_EPARSE, "rollup: bad 1-minute row at byte %zu (run `db check`)",
                          len ? b.pos : 0);
    }
    *buf = w.p; /* grown or not: the caller's to free */
    *cap = w.cap;
    if (w.oom)
        return te_err_set(err, TE_ENOMEM, "rollup: out of memory");
    *out_len = w.len;
    return 0;
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
