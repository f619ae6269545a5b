/*
 * rollup_fmt.c - the formats of a 1-minute rollup row: the byte buffers
 * both sides use, walking the cells of a stored row, and rewriting a
 * series' hour so that it holds its own names. No SQLite here: rows come
 * in as bytes (and tests/fuzz/fuzz_rollup_1m.c feeds hostile ones).
 *
 * THREAD: any; the writers (rollup_row.c) on the read-write store's
 * thread, the walk on any reader.
 */
#include <stdlib.h>
#include <string.h>

#include "rollup_int.h"

/* ---------- a series' hour of minutes ---------- */

/* Blob (integers LEB128 varints, doubles 8 bytes little-endian):
 *   u8 version | varint nnames | nnames x (varint len, bytes) | varint ncells |
 *   ncells x (u8 minute, varint name index, varint n, values)
 * sorted by (minute, name); name '' is the event count (no values); other
 * cells hold n <= TE_ROLLUP_VALS: the n values themselves, else f64 sum,
 * f64 min, f64 max, varint sketch length, sketch blob (te_sketch_encode).
 * Most minutes of most series hold a few events, and a value costs 8 bytes
 * or less where a sketch costs ~50.
 *
 * How a small cell's values are written: version 1, n f64; version 2
 * (what the generic accumulators write), a byte e, then for e = 0 n f64,
 * for e = 1 + k (k <= TE_ROLLUP_MAX_SCALE) n zigzag varints of v * 10^k.
 * Telemetry values are mostly integers (tokens, bytes, counts) or short
 * decimals (milliseconds to 0.1, confidences to 0.01): 1 to 3 bytes
 * instead of 8.
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

/* ---------- byte buffers ---------- */

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
    if (!te_rollup_wb_reserve(b, n))
        return;
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

/* The format byte at p (len bytes) of a row's data or a series' hour: 0
 * for 1 to newest; TE_EPARSE, said so, for a later format (a newer build
 * wrote it: not damage); 1 for anything else (the caller reports a
 * damaged row). */
static int first_byte(const unsigned char *p, size_t len, int newest, te_err_t *err)
{
    if (len >= 1 && p[0] > newest && p[0] < 0x80)
        return te_err_set(err, TE_EPARSE,
                          "rollup: 1-minute row of format %d, newer than this build's %d "
                          "(written by a newer telemetry-engine: upgrade)",
                          p[0], newest);
    return len < 1 || p[0] < 1 || p[0] > newest;
}

static bool rb_varint(rbuf_t *b, uint64_t *v)
{
    return te_rollup_get_varint(b->p, b->len, &b->pos, v);
}

static bool rb_f64(rbuf_t *b, double *d)
{
    return te_rollup_get_f64(b->p, b->len, &b->pos, d);
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
                c->vals[k] = (double)(int64_t)((z >> 1) ^ -(z & 1)) / te_rollup_pow10(e - 1);
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
            n[i] > TE_ROLLUP_MAX_N)
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
        if (b->pos >= b->len || b->p[b->pos] > 1 + TE_ROLLUP_MAX_SCALE)
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
    int fb = first_byte(b.p, len, TE_ROLLUP_1M_V5, err);
    if (fb < 0)
        return fb;
    if (fb > 0)
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
            n > TE_ROLLUP_MAX_N)
            goto bad;
        c.field = names[ni];
        c.field_len = lens[ni];
        c.n = (int64_t)n;
        if (c.field_len > 0) {
            unsigned e = 0;
            if (n == 0)
                goto bad;
            if (n <= TE_ROLLUP_VALS && version >= 2) {
                if (b.pos >= b.len || b.p[b.pos] > 1 + TE_ROLLUP_MAX_SCALE)
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

/* ---------- 1-minute pack rows: series of one (kind, hour) ---------- */

/* data = u8 format | entries to the end. Format 1: varint series id,
 * varint length, that series' packed hour (the blob above). Format 2
 * (what this build writes): varint tag; tag & 1 = 0: a series, id tag >>
 * 1, then varint length and blob as in format 1; tag & 1 = 1: a field
 * name of tag >> 1 bytes (1 or more) follows, the row's next name (1, 2,
 * ...; at most TE_ROLLUP_PACK_NAMES). A version-5 blob names its fields
 * by those numbers (0 is ''): a series of a sparse kind, one event in its
 * hour, no longer carries ~50 bytes of names it shares with the rest of
 * the row. Rows hold series up to 32 KiB (rollup_row.c); a series' hour
 * may be in several rows (readers add them up: sql_v7.h). */
int te_rollup_1m_pack_next(const void *data, size_t len, size_t *pos, int64_t *sid,
                           const void **blob, size_t *blob_len, te_rollup_pack_names_t *pn,
                           te_err_t *err)
{
    rbuf_t b = {data, len, *pos};
    if (b.pos == 0) {
        int fb = first_byte(b.p, len, TE_ROLLUP_PACK_FORMAT, err);
        if (fb < 0)
            return fb;
        if (fb > 0)
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

