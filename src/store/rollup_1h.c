/*
 * rollup_1h.c - the 1-hour rollup rows (format and reasons in rollup_1h.h):
 * building a chunk row, walking one, merging two. No SQLite here (that is
 * rollup_1h_db.c): rows come in as bytes, and tests/fuzz/fuzz_rollup_1h.c
 * feeds hostile ones.
 *
 * THREAD: see rollup_1h.h.
 */
#include "rollup_1h.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rollup_int.h"

#define FORMAT_COUNTS 1
#define FORMAT_VALUES 2 /* read only: written by the first schema-6 build */
#define FORMAT_VALUES_1 3 /* an entry of one value stores it once */

/* ---------- building ---------- */

/* Makes room for n more bytes in (*p, *len, *cap); false on ENOMEM. */
static bool grow(unsigned char **p, size_t len, size_t *cap, size_t n)
{
    if (len + n <= *cap)
        return true;
    size_t ncap = *cap ? *cap * 2 : 256;
    while (ncap < len + n)
        ncap *= 2;
    unsigned char *np = realloc(*p, ncap);
    if (!np)
        return false;
    *p = np;
    *cap = ncap;
    return true;
}

void te_rollup_1h_begin(te_rollup_1h_row_t *row, int64_t kid, const char *field, size_t field_len,
                        int64_t bucket, int64_t chunk)
{
    row->kid = kid;
    row->field = field;
    row->field_len = field_len;
    row->bucket = bucket;
    row->chunk = chunk;
    row->st_len = row->sk_len = 0;
    row->entries = row->n = 0;
    row->last_sid = chunk * ((int64_t)1 << TE_ROLLUP_1H_CHUNK_BITS);
    row->oom = false;
    /* the header: format, then the entry count (patched at write time:
     * 10 bytes reserved, see te_rollup_1h_bytes) */
    if (!grow(&row->st, 0, &row->st_cap, 11)) {
        row->oom = true;
        return;
    }
    row->st[0] = field_len ? FORMAT_VALUES_1 : FORMAT_COUNTS;
    row->st_len = 11;
}

void te_rollup_1h_add(te_rollup_1h_row_t *row, const te_rollup_1h_entry_t *e,
                      const te_sketch_t *sk)
{
    if (row->oom || !grow(&row->st, row->st_len, &row->st_cap, 10 + 10 + 24)) {
        row->oom = true;
        return;
    }
    unsigned char *p = row->st + row->st_len;
    p += te_rollup_put_varint(p, (uint64_t)(e->sid - row->last_sid));
    p += te_rollup_put_varint(p, (uint64_t)e->n);
    bool values = row->field_len > 0;
    if (values && e->n == 1) { /* sum = min = max: most series-hours of sparse series */
        p += te_rollup_put_f64s(p, &e->sum, 1);
    } else if (values) {
        double three[3] = {e->sum, e->min, e->max};
        p += te_rollup_put_f64s(p, three, 3);
    }
    row->st_len = (size_t)(p - row->st);
    row->last_sid = e->sid;
    row->entries++;
    row->n += e->n;
    if (!values || e->n <= 2)
        return;
    unsigned char *enc = NULL;
    size_t elen = e->sketch_len;
    const void *src = e->sketch;
    if (sk) {
        if (te_sketch_encode(sk, &enc, &elen) < 0) {
            row->oom = true;
            return;
        }
        src = enc;
    }
    if (!grow(&row->sk, row->sk_len, &row->sk_cap, 10 + elen)) {
        row->oom = true;
    } else {
        row->sk_len += te_rollup_put_varint(row->sk + row->sk_len, elen);
        if (elen)
            memcpy(row->sk + row->sk_len, src, elen);
        row->sk_len += elen;
    }
    free(enc);
}

void te_rollup_1h_free(te_rollup_1h_row_t *row)
{
    if (!row)
        return;
    free(row->st);
    free(row->sk);
    row->st = row->sk = NULL;
    row->st_cap = row->sk_cap = row->st_len = row->sk_len = 0;
}

const unsigned char *te_rollup_1h_bytes(te_rollup_1h_row_t *row, size_t *len)
{
    unsigned char t[10];
    size_t k = te_rollup_put_varint(t, (uint64_t)row->entries);
    unsigned char *start = row->st + 11 - k - 1;
    start[0] = row->st[0];
    memcpy(start + 1, t, k);
    *len = row->st_len - (size_t)(start - row->st);
    return start;
}

/* ---------- walking ---------- */

static int bad(te_err_t *err, size_t at)
{
    return te_err_set(err, TE_EPARSE, "rollup: bad 1-hour row at byte %zu (run `db check`)", at);
}

int te_rollup_1h_iter_init(te_rollup_1h_iter_t *it, int64_t chunk, const void *stats,
                           size_t stats_len, const void *sketches, size_t sketches_len,
                           te_err_t *err)
{
    *it = (te_rollup_1h_iter_t){.st = stats, .st_len = stats ? stats_len : 0, .sk = sketches,
                                .sk_len = sketches ? sketches_len : 0};
    it->base = it->sid = chunk * ((int64_t)1 << TE_ROLLUP_1H_CHUNK_BITS);
    if (it->st_len < 2 || it->st[0] < FORMAT_COUNTS || it->st[0] > FORMAT_VALUES_1)
        return bad(err, 0);
    it->values = it->st[0] != FORMAT_COUNTS;
    it->one = it->st[0] == FORMAT_VALUES_1;
    it->st_pos = 1;
    if (!te_rollup_get_varint(it->st, it->st_len, &it->st_pos, &it->left) ||
        it->left > it->st_len)
        return bad(err, it->st_pos);
    return 0;
}

int te_rollup_1h_next(te_rollup_1h_iter_t *it, te_rollup_1h_entry_t *e, te_err_t *err)
{
    if (it->left == 0)
        return it->st_pos == it->st_len ? 0 : bad(err, it->st_pos);
    uint64_t d, n;
    if (!te_rollup_get_varint(it->st, it->st_len, &it->st_pos, &d) ||
        d >= ((uint64_t)1 << TE_ROLLUP_1H_CHUNK_BITS) ||
        !te_rollup_get_varint(it->st, it->st_len, &it->st_pos, &n) || n > TE_ROLLUP_MAX_N)
        return bad(err, it->st_pos);
    int64_t sid = it->sid + (int64_t)d;
    /* ascending (a zero delta only for the first entry) and in the chunk */
    if (sid - it->base >= ((int64_t)1 << TE_ROLLUP_1H_CHUNK_BITS) || (d == 0 && it->seen))
        return bad(err, it->st_pos);
    *e = (te_rollup_1h_entry_t){.sid = sid, .n = (int64_t)n};
    if (it->values && it->one && n == 1) {
        if (!te_rollup_get_f64(it->st, it->st_len, &it->st_pos, &e->sum))
            return bad(err, it->st_pos);
        e->min = e->max = e->sum;
    } else if (it->values && (!te_rollup_get_f64(it->st, it->st_len, &it->st_pos, &e->sum) ||
                              !te_rollup_get_f64(it->st, it->st_len, &it->st_pos, &e->min) ||
                              !te_rollup_get_f64(it->st, it->st_len, &it->st_pos, &e->max))) {
        return bad(err, it->st_pos);
    }
    if (it->values && n > 2 && it->sk) {
        uint64_t l;
        if (!te_rollup_get_varint(it->sk, it->sk_len, &it->sk_pos, &l) ||
            l > it->sk_len - it->sk_pos)
            return te_err_set(err, TE_EPARSE,
                              "rollup: bad 1-hour row sketches at byte %zu (run `db check`)",
                              it->sk_pos);
        e->sketch = it->sk + it->sk_pos;
        e->sketch_len = (size_t)l;
        it->sk_pos += (size_t)l;
    }
    it->sid = sid;
    it->seen = true;
    it->left--;
    return 1;
}

/* ---------- merging ---------- */

static int sk_add(te_sketch_t *sk, double v)
{
    if (!isfinite(v))
        return 0; /* counted in n/sum/min/max, not sketchable */
    return te_sketch_add(sk, v);
}

/* Adds a stored entry's values (n, min, max and its sketch's bytes when n
 * > 2) to dst: with n <= 2 the values are exactly {min, max}. Returns 0,
 * TE_ENOMEM or TE_EPARSE (a damaged sketch). */
static int sketch_merge(te_sketch_t *dst, int64_t n, double min, double max, const void *blob,
                        size_t blob_len, te_err_t *err)
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

/* a and b (the same sid) as one entry into out; sketches merged when the
 * sum has more than two values. */
static int merge_entry(te_rollup_1h_row_t *out, const te_rollup_1h_entry_t *a,
                       const te_rollup_1h_entry_t *b, te_err_t *err)
{
    te_rollup_1h_entry_t m = {.sid = a->sid, .n = a->n + b->n, .sum = a->sum + b->sum,
                              .min = b->min < a->min ? b->min : a->min,
                              .max = b->max > a->max ? b->max : a->max};
    if (a->n <= 0 || b->n <= 0) { /* no values on one side: the other's stats */
        const te_rollup_1h_entry_t *x = a->n > 0 ? a : b;
        m.sum = x->sum;
        m.min = x->min;
        m.max = x->max;
    }
    if (out->field_len == 0 || m.n <= 2) {
        te_rollup_1h_add(out, &m, NULL);
        return 0;
    }
    te_sketch_t *sk = te_sketch_new(TE_ROLLUP_ACCURACY, 0, err);
    if (!sk)
        return err && err->code ? err->code : TE_ENOMEM;
    int rc = sketch_merge(sk, a->n, a->min, a->max, a->sketch, a->sketch_len, err);
    if (rc == 0)
        rc = sketch_merge(sk, b->n, b->min, b->max, b->sketch, b->sketch_len, err);
    if (rc == 0)
        te_rollup_1h_add(out, &m, sk);
    te_sketch_free(sk);
    return rc;
}

int te_rollup_1h_merge(te_rollup_1h_row_t *out, const void *st0, size_t st0_len, const void *sk0,
                       size_t sk0_len, te_rollup_1h_row_t *row, te_err_t *err)
{
    te_rollup_1h_iter_t a, b;
    size_t blen;
    const unsigned char *bst = te_rollup_1h_bytes(row, &blen);
    int rc = te_rollup_1h_iter_init(&a, row->chunk, st0, st0_len, sk0, sk0_len, err);
    if (rc == 0)
        rc = te_rollup_1h_iter_init(&b, row->chunk, bst, blen, row->sk, row->sk_len, err);
    te_rollup_1h_entry_t ea, eb;
    int ha = rc == 0 ? te_rollup_1h_next(&a, &ea, err) : rc;
    int hb = ha >= 0 ? te_rollup_1h_next(&b, &eb, err) : ha;
    while (ha > 0 || hb > 0) {
        if (hb <= 0 || (ha > 0 && ea.sid < eb.sid)) {
            te_rollup_1h_add(out, &ea, NULL);
            ha = te_rollup_1h_next(&a, &ea, err);
        } else if (ha <= 0 || eb.sid < ea.sid) {
            te_rollup_1h_add(out, &eb, NULL);
            hb = te_rollup_1h_next(&b, &eb, err);
        } else {
            if ((rc = merge_entry(out, &ea, &eb, err)) < 0)
                return rc;
            ha = te_rollup_1h_next(&a, &ea, err);
            hb = ha >= 0 ? te_rollup_1h_next(&b, &eb, err) : ha;
        }
        if (ha < 0 || hb < 0)
            return ha < 0 ? ha : hb;
    }
    return ha < 0 ? ha : hb < 0 ? hb : 0;
}
