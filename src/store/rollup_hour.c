/*
 * rollup_hour.c - the hour builder: the rows of whole hours, from events
 * as they are stored (te_rollup_add) or from raw events read back in time
 * order (a watermark advance that cannot trust what it holds, rollup.c).
 *
 * THREAD: as rollup.h: the thread that owns the read-write store.
 *
 * One slot per (kind, series, hour) holds the hour as columns: per field,
 * its values and the minute of each; per minute, its events. A slot's
 * first two events stay raw (most series of a busy hour have one or two)
 * and go through columns only at the third or when written (a slot of one
 * event is written straight from its fields blob). When a
 * watermark passes an hour, that hour's slots are written at once, in
 * (kind, hour, series) order: each series' hour of minutes is encoded from
 * the columns into the 1-minute pack row of its hour, and each field's
 * 1-hour sketch is made from the same cells (small cells' values added,
 * big cells' sketches merged) into the 1-hour chunk row of its field. A
 * column that got a value out of minute order is put in order first (a
 * stable counting sort).
 *
 * Why columns and not the generic accumulators (te_rollup_ent: a hash
 * lookup per series, bucket, field and resolution, ~150 bytes each): an
 * hour's accumulators do not fit in cache, so an event cost some ten cache
 * misses, and writing needed a sort of every cell. Here an event costs
 * one slot lookup and an append per field; its fields are matched by their
 * position in the slot's previous event; sketches are built at write time,
 * one hot in cache at a time. The 1-hour sums add value by value as the
 * events came, as the generic path does.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/event.h"
#include "rollup_int.h"

typedef te_rollup_ent_t ent_t;
typedef te_rollup_slot_t slot_t;
typedef te_rollup_col_t col_t;

static uint64_t slot_hash(int64_t sid, int64_t hour)
{
    /* series ids are unique across kinds: the kind need not be hashed */
    uint64_t h = (uint64_t)sid * 0x9E3779B97F4A7C15ull ^ (uint64_t)hour;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

static void sidx_rebuild(struct te_rollup *r)
{
    if (!r->sidx)
        return;
    size_t mask = r->sidx_cap - 1;
    memset(r->sidx, 0, r->sidx_cap * sizeof(*r->sidx));
    for (size_t i = 0; i < r->nslots; i++) {
        size_t j = slot_hash(r->slots[i].sid, r->slots[i].hour) & mask;
        while (r->sidx[j])
            j = (j + 1) & mask;
        r->sidx[j] = (uint32_t)i + 1;
    }
}

/* A buffer p of *cap elements of sz bytes regrown to hold need (doubling,
 * from first), counted in r->hour_bytes: the new buffer, or NULL on
 * ENOMEM (p is then unchanged). */
static void *regrow(struct te_rollup *r, void *p, size_t *cap, size_t need, size_t sz,
                    size_t first)
{
    size_t ncap = *cap ? *cap * 2 : first;
    while (ncap < need)
        ncap *= 2;
    void *np = realloc(p, ncap * sz);
    if (np) {
        r->hour_bytes += (ncap - *cap) * sz;
        *cap = ncap;
    }
    return np;
}

/* Makes array p (capacity cap) hold need elements; false on ENOMEM. */
#define ENSURE(p, cap, need, first)                                                 \
    ((need) <= (cap) ||                                                             \
     ((tmp = regrow(r, (p), &(cap), (need), sizeof(*(p)), (first))) != NULL &&      \
      ((p) = tmp, true)))

static slot_t *slot_get(struct te_rollup *r, int64_t kid, int64_t sid, int64_t hour)
{
    if ((r->nslots + 1) * 2 > r->sidx_cap) {
        size_t ncap = r->sidx_cap ? r->sidx_cap * 2 : 256;
        uint32_t *ni = malloc(ncap * sizeof(*ni));
        if (!ni)
            return NULL;
        free(r->sidx);
        r->hour_bytes += (ncap - r->sidx_cap) * sizeof(*ni);
        r->sidx = ni;
        r->sidx_cap = ncap;
        sidx_rebuild(r);
    }
    size_t mask = r->sidx_cap - 1;
    size_t j = slot_hash(sid, hour) & mask;
    while (r->sidx[j]) {
        slot_t *s = &r->slots[r->sidx[j] - 1];
        if (s->sid == sid && s->hour == hour)
            return s;
        j = (j + 1) & mask;
    }
    if (r->nslots == r->cap_slots) {
        /* the capacity past init_slots is never touched (nor resident) */
        size_t ncap = r->cap_slots ? r->cap_slots * 2 : 128;
        slot_t *ns = realloc(r->slots, ncap * sizeof(slot_t));
        if (!ns)
            return NULL;
        r->slots = ns;
        r->cap_slots = ncap;
    }
    if (r->nslots == r->init_slots) {
        memset(&r->slots[r->init_slots++], 0, sizeof(slot_t));
        r->hour_bytes += sizeof(slot_t);
    }
    /* a spare slot keeps its buffers from an earlier hour */
    slot_t *s = &r->slots[r->nslots];
    s->kid = kid;
    s->sid = sid;
    s->hour = hour;
    s->nev = s->idsum = 0;
    s->ncols = s->norder = 0;
    s->nraw = s->raw_len = 0;
    r->sidx[j] = (uint32_t)++r->nslots;
    return s;
}

/* a == b for n bytes; field names are short: 8 to 16 bytes are two
 * overlapping word compares, not a call */
static bool same_bytes(const char *a, const char *b, size_t n)
{
    if (n < 8 || n > 16)
        return memcmp(a, b, n) == 0;
    uint64_t x0, y0, x1, y1;
    memcpy(&x0, a, 8);
    memcpy(&y0, b, 8);
    memcpy(&x1, a + n - 8, 8);
    memcpy(&y1, b + n - 8, 8);
    return x0 == y0 && x1 == y1;
}

/* The column of the field at blob position pos: the field at that
 * position in the slot's previous event, most times. */
static col_t *slot_col(struct te_rollup *r, slot_t *s, size_t pos, const char *key, size_t len)
{
    if (pos < s->norder) {
        col_t *c = &s->cols[s->order[pos]];
        if (r->flens[c->field] == len && same_bytes(r->fnames[c->field], key, len))
            return c;
    }
    uint32_t f;
    if (te_rollup_field(r, key, len, &f) < 0)
        return NULL;
    size_t j = 0;
    while (j < s->ncols && s->cols[j].field != f)
        j++;
    void *tmp;
    if (j == s->ncols) {
        size_t old = s->cap_cols;
        if (!ENSURE(s->cols, s->cap_cols, j + 1, 4))
            return NULL;
        memset(s->cols + old, 0, (s->cap_cols - old) * sizeof(col_t));
        col_t *c = &s->cols[j]; /* a spare column keeps its buffers */
        c->field = f;
        c->n = 0;
        c->sum = c->min = c->max = 0;
        c->sorted = true;
        c->dense = s->nev == 1; /* the first event's field */
        s->ncols++;
    }
    if (!ENSURE(s->order, s->cap_order, pos + 1, 4))
        return NULL;
    while (s->norder <= pos) /* positions skipped (NaN values) point at column 0 */
        s->order[s->norder++] = 0;
    s->order[pos] = (uint32_t)j;
    return &s->cols[j];
}

/* The minute of each of c's values. */
static inline const uint8_t *col_m(const slot_t *s, const col_t *c)
{
    return c->dense ? s->em : c->m;
}

/* Gives dense column c minutes of its own: its values are those of the
 * slot's first c->n events. false on ENOMEM. */
static bool col_undense(struct te_rollup *r, slot_t *s, col_t *c)
{
    void *tmp;
    if (!ENSURE(c->m, c->mcap, c->n + 1, 2))
        return false;
    memcpy(c->m, s->em, c->n);
    c->dense = false;
    return true;
}

/* Appends one event (minute m, its fields) to slot s's columns. */
static int slot_append(struct te_rollup *r, slot_t *s, uint8_t m, const unsigned char *fields,
                       size_t fields_len)
{
    void *tmp;
    if (!ENSURE(s->em, s->cap_em, (size_t)s->nev + 1, 4))
        return TE_ENOMEM;
    s->em[s->nev++] = m;
    size_t pos = 0, k = 0, klen;
    const char *key;
    double v;
    for (; fields && te_fields_blob_next(fields, fields_len, &pos, &key, &klen, &v); k++) {
        if (isnan(v))
            continue;
        col_t *c = slot_col(r, s, k, key, klen);
        if (!c)
            return TE_ENOMEM;
        /* an event went by without this field: no longer dense */
        if (c->dense && c->n + 1 != (size_t)s->nev && !col_undense(r, s, c))
            return TE_ENOMEM;
        if (c->n == c->cap && !ENSURE(c->v, c->cap, c->n + 1, 2))
            return TE_ENOMEM;
        if (!c->dense && c->n == c->mcap && !ENSURE(c->m, c->mcap, c->n + 1, 2))
            return TE_ENOMEM;
        if (c->n == 0 || v < c->min)
            c->min = v;
        if (c->n == 0 || v > c->max)
            c->max = v;
        if (c->n > 0 && m < col_m(s, c)[c->n - 1])
            c->sorted = false;
        c->v[c->n] = v;
        if (!c->dense)
            c->m[c->n] = m;
        c->n++;
        c->sum += v;
    }
    return 0;
}

/* Moves slot s's raw events into its columns. */
static int slot_unraw(struct te_rollup *r, slot_t *s)
{
    const unsigned char *p = s->raw;
    uint32_t n = s->nraw;
    s->nraw = 0;
    s->nev = 0;
    for (uint32_t i = 0; i < n; i++) {
        size_t len = (size_t)p[1] | (size_t)p[2] << 8;
        if (slot_append(r, s, p[0], len ? p + 3 : NULL, len) < 0)
            return TE_ENOMEM;
        p += 3 + len;
    }
    s->raw_len = 0;
    return 0;
}

/* events a slot keeps raw, and the largest fields blob it keeps so */
#define RAW_EVENTS 2u
#define RAW_FIELDS 1024u

int te_rollup_hour_add(struct te_rollup *r, int64_t kid, int64_t sid, int64_t ts, int64_t rowid,
                       const unsigned char *fields, size_t fields_len)
{
    int64_t hour = te_rollup_bucket(ts, TE_ROLLUP_1H_NS);
    uint8_t m = (uint8_t)((ts - hour) / TE_ROLLUP_1M_NS);
    slot_t *s = slot_get(r, kid, sid, hour);
    if (!s)
        return TE_ENOMEM;
    s->idsum = (int64_t)((uint64_t)s->idsum + (uint64_t)rowid);
    if (!fields)
        fields_len = 0;
    if (s->nraw == s->nev && s->nraw < RAW_EVENTS && fields_len <= RAW_FIELDS) {
        size_t need = s->raw_len + 3 + fields_len;
        if (need > s->raw_cap) {
            /* the first event's exact size (most slots get no other) */
            size_t cap = s->raw_cap ? s->raw_cap : (need + 15) & ~(size_t)15;
            while (cap < need)
                cap *= 2;
            unsigned char *np = realloc(s->raw, cap);
            if (!np)
                return TE_ENOMEM;
            r->hour_bytes += cap - s->raw_cap;
            s->raw = np;
            s->raw_cap = (uint32_t)cap;
        }
        unsigned char *p = s->raw + s->raw_len;
        p[0] = m;
        p[1] = (unsigned char)fields_len;
        p[2] = (unsigned char)(fields_len >> 8);
        if (fields_len)
            memcpy(p + 3, fields, fields_len);
        s->raw_len = (uint32_t)need;
        s->nraw++;
        s->nev++;
        return 0;
    }
    if (s->nraw && slot_unraw(r, s) < 0)
        return TE_ENOMEM;
    return slot_append(r, s, m, fields, fields_len);
}

void te_rollup_hour_sum(const struct te_rollup *r, int64_t kid, int64_t from, int64_t to,
                        int64_t *nev, int64_t *idsum)
{
    uint64_t n = 0, sum = 0;
    for (size_t i = 0; i < r->nslots; i++) {
        const slot_t *s = &r->slots[i];
        if (s->kid == kid && s->hour >= from && s->hour < to) {
            n += (uint64_t)s->nev;
            sum += (uint64_t)s->idsum;
        }
    }
    for (size_t i = 0; i < r->preps.n; i++) {
        const te_rollup_prep_t *p = &r->preps.v[i];
        if (p->kid == kid && p->hour >= from && p->hour < to) {
            n += (uint64_t)p->nev;
            sum += (uint64_t)p->idsum;
        }
    }
    *nev = (int64_t)n;
    *idsum = (int64_t)sum;
}

size_t te_rollup_hour_bytes(const struct te_rollup *r)
{
    return r->hour_bytes + atomic_load_explicit(&r->prep_bytes, memory_order_relaxed);
}

/* Encodes one field cell of n > TE_ROLLUP_VALS values v (sum, min, max,
 * sketch) into b and merges its sketch into hsk (when not NULL). */
static int big_cell(struct te_rollup *r, te_rollup_wbuf_t *b, const double *v, size_t n,
                    te_sketch_t *hsk, te_err_t *err)
{
    double sum = 0, min = v[0], max = v[0];
    for (size_t i = 0; i < n; i++) {
        sum += v[i];
        min = v[i] < min ? v[i] : min;
        max = v[i] > max ? v[i] : max;
    }
    te_sketch_t *sk = te_rollup_sketch_take(r);
    unsigned char *enc = NULL;
    size_t elen = 0;
    int rc = !sk || te_sketch_add_all(sk, v, n) < 0 || te_sketch_encode(sk, &enc, &elen) < 0
                 ? te_err_set(err, TE_ENOMEM, "rollup: out of memory")
                 : 0;
    if (rc == 0 && hsk)
        rc = te_sketch_merge(hsk, sk, err);
    te_rollup_sketch_give(r, sk);
    if (rc == 0) {
        te_rollup_wb_f64(b, sum);
        te_rollup_wb_f64(b, min);
        te_rollup_wb_f64(b, max);
        te_rollup_wb_varint(b, elen);
        te_rollup_wb_put(b, enc, elen);
    }
    free(enc);
    return rc;
}

/* Events per minute of slot s. */
static void minute_counts(const slot_t *s, uint32_t ev[60])
{
    memset(ev, 0, 60 * sizeof(*ev));
    for (int64_t i = 0; i < s->nev; i++)
        ev[s->em[i]]++;
}

/* Puts column c in minute order (stable: values of a minute keep the order
 * they came in), through the scratch buffer. */
static int col_sort(struct te_rollup *r, slot_t *s, col_t *c)
{
    if (c->dense && !col_undense(r, s, c))
        return TE_ENOMEM; /* its own minutes: the slot's stay as they came */
    size_t need = c->n * (sizeof(double) + 1);
    if (need > r->cap_scratch) {
        void *np = realloc(r->scratch, need);
        if (!np)
            return TE_ENOMEM;
        r->scratch = np;
        r->cap_scratch = need;
    }
    double *v = r->scratch;
    uint8_t *m = (uint8_t *)(v + c->n);
    size_t at[61] = {0};
    for (size_t i = 0; i < c->n; i++)
        at[c->m[i] + 1]++;
    for (int x = 0; x < 60; x++)
        at[x + 1] += at[x];
    for (size_t i = 0; i < c->n; i++) {
        size_t d = at[c->m[i]]++;
        v[d] = c->v[i];
        m[d] = c->m[i];
    }
    memcpy(c->v, v, c->n * sizeof(double));
    memcpy(c->m, m, c->n);
    c->sorted = true;
    return 0;
}

/* Writes the 1-hour rows being filled (rollup_int.h: hrows). */
static int hrows_flush(te_store_t *st, struct te_rollup *r, te_err_t *err)
{
    int rc = 0;
    te_rollup_prep_t *p = r->prep;
    if (p && r->nhrows > p->cap_hrows - p->nhrows) {
        size_t ncap = p->cap_hrows ? p->cap_hrows * 2 : 8;
        while (ncap - p->nhrows < r->nhrows)
            ncap *= 2;
        te_rollup_1h_row_t *nr = realloc(p->hrows, ncap * sizeof(*nr));
        if (!nr) {
            r->nhrows = 0;
            return te_err_set(err, TE_ENOMEM, "rollup: out of memory");
        }
        p->bytes += (ncap - p->cap_hrows) * sizeof(*nr);
        p->hrows = nr;
        p->cap_hrows = ncap;
    }
    for (size_t i = 0; rc == 0 && i < r->nhrows; i++) {
        if (!p) {
            rc = te_rollup_1h_write(st, &r->h1, &r->hrows[i], err);
            continue;
        }
        /* into the hour being prepared, buffers and all */
        te_rollup_1h_row_t *h = &r->hrows[i];
        p->bytes += h->st_cap + h->sk_cap;
        p->oom |= h->oom;
        p->hrows[p->nhrows++] = *h;
        *h = (te_rollup_1h_row_t){0};
    }
    r->nhrows = 0;
    return rc;
}

/* Points the 1-hour rows at slot s's (kind, hour, chunk), writing those of
 * the chunk before. Slots come in (kind, hour, series) order (sweep), so
 * each chunk row is written once. */
static int hrows_at(te_store_t *st, struct te_rollup *r, const slot_t *s, te_err_t *err)
{
    int64_t key[3] = {s->kid, s->hour, te_rollup_1h_chunk(s->sid)};
    if (r->nhrows && memcmp(key, r->hrow_key, sizeof(key)) == 0)
        return 0;
    int rc = hrows_flush(st, r, err);
    memcpy(r->hrow_key, key, sizeof(key));
    return rc;
}

/* The 1-hour row of field f (interned index) in the current chunk, begun
 * when new; NULL on ENOMEM. */
static te_rollup_1h_row_t *hrow(struct te_rollup *r, uint32_t f)
{
    for (size_t i = 0; i < r->nhrows; i++)
        if (r->hrows[i].field == r->fnames[f])
            return &r->hrows[i];
    if (r->nhrows == r->cap_hrows) {
        size_t ncap = r->cap_hrows ? r->cap_hrows * 2 : 8;
        te_rollup_1h_row_t *nr = realloc(r->hrows, ncap * sizeof(*nr));
        if (!nr)
            return NULL;
        memset(nr + r->cap_hrows, 0, (ncap - r->cap_hrows) * sizeof(*nr));
        r->hrows = nr;
        r->cap_hrows = ncap;
    }
    te_rollup_1h_row_t *h = &r->hrows[r->nhrows++]; /* a spare row keeps its buffers */
    te_rollup_1h_begin(h, r->hrow_key[0], r->fnames[f], r->flens[f], r->hrow_key[1],
                       r->hrow_key[2]);
    return h;
}

/* The cells of a column in minute order (sorted): their minutes and
 * value counts; returns how many (at most 60). */
static size_t col_cells(const uint8_t *cm, size_t n, uint8_t m[60], uint32_t cn[60])
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k == 0 || cm[i] != m[k - 1]) {
            m[k] = cm[i];
            cn[k++] = 0;
        }
        cn[k - 1]++;
    }
    return k;
}

/* Writes slot s's rows: its hour into the 1-minute pack row being filled
 * (version 5, rollup_row.c: column by column), and into the chunk's
 * 1-hour rows (hrows) the hour's event count and each column's n, sum,
 * min, max and sketch. */
static int slot_write(te_store_t *st, struct te_rollup *r, slot_t *s, te_err_t *err)
{
    te_rollup_wbuf_t *b = &r->hbuf;
    if (s->nraw && slot_unraw(r, s) < 0)
        return te_err_set(err, TE_ENOMEM, "rollup: out of memory");
    /* columns without values (r->wslot's, kept from an earlier slot) are
     * left out */
    size_t nw = 0;
    for (size_t j = 0; j < s->ncols; j++)
        nw += s->cols[j].n > 0;
    if (nw + 1 > TE_ROLLUP_MAX_ROW_NAMES)
        return te_err_set(err, TE_ETOOBIG, "rollup: more than %d fields in one series",
                          TE_ROLLUP_MAX_ROW_NAMES);
    for (size_t j = 0; j < s->ncols; j++)
        if (!s->cols[j].sorted && col_sort(r, s, &s->cols[j]) < 0)
            return te_err_set(err, TE_ENOMEM, "rollup: out of memory");
    /* per column, its 1-hour sketch, in a buffer kept from slot to slot */
    if (s->ncols * sizeof(te_sketch_t *) > r->cap_colbuf) {
        void *nb = realloc(r->colbuf, s->ncols * sizeof(te_sketch_t *));
        if (!nb)
            return te_err_set(err, TE_ENOMEM, "rollup: out of memory");
        r->colbuf = nb;
        r->cap_colbuf = s->ncols * sizeof(te_sketch_t *);
    }
    te_sketch_t **hsk = r->colbuf;
    int rc = 0;
    for (size_t j = 0; j < s->ncols; j++) {
        hsk[j] = NULL;
        if (s->cols[j].n > 2 && !(hsk[j] = te_rollup_sketch_take(r)))
            rc = te_err_set(err, TE_ENOMEM, "rollup: out of memory");
    }
    /* names: '' (index 0), then the columns */
    uint32_t fids[TE_ROLLUP_MAX_ROW_NAMES];
    for (size_t j = 0, k = 0; j < s->ncols; j++)
        if (s->cols[j].n)
            fids[k++] = s->cols[j].field;
    if (rc == 0)
        rc = te_rollup_1m_head(st, r, b, s->kid, s->hour, fids, nw, err);
    /* the event minutes and counts */
    uint32_t ev[60], en[60], cn[60];
    uint8_t em[60], m[60];
    minute_counts(s, ev);
    size_t ne = 0;
    for (int x = 0; x < 60; x++)
        if (ev[x]) {
            em[ne] = (uint8_t)x;
            en[ne++] = ev[x];
        }
    te_rollup_wb_varint(b, ne);
    for (size_t i = 0; i < ne; i++) {
        te_rollup_wb_put(b, &em[i], 1);
        te_rollup_wb_varint(b, en[i]);
    }
    for (size_t j = 0; rc == 0 && j < s->ncols; j++) {
        col_t *c = &s->cols[j];
        if (!c->n)
            continue;
        size_t nc = col_cells(col_m(s, c), c->n, m, cn);
        unsigned char own = nc != ne || memcmp(m, em, nc) != 0 ||
                            memcmp(cn, en, nc * sizeof(*cn)) != 0;
        te_rollup_wb_put(b, &own, 1);
        if (own) {
            te_rollup_wb_varint(b, nc);
            for (size_t i = 0; i < nc; i++) {
                te_rollup_wb_put(b, &m[i], 1);
                te_rollup_wb_varint(b, cn[i]);
            }
        }
        unsigned char e = (unsigned char)te_rollup_scale_of(c->v, c->n);
        te_rollup_wb_put(b, &e, 1);
        size_t small = te_rollup_v4_small(e);
        /* the values cell by cell; the small cells' values go into the
         * 1-hour sketch together (contiguous up to a big cell), a big
         * cell's sketch is merged */
        size_t at = 0, pend = 0;
        for (size_t i = 0; rc == 0 && i < nc; i++) {
            const double *v = c->v + at;
            size_t n = cn[i];
            at += n;
            if (n <= small) {
                if (te_rollup_wb_reserve(b, n * 10))
                    b->len += te_rollup_put_scaled(b->p + b->len, v, n, e);
                continue;
            }
            if (hsk[j] && te_sketch_add_all(hsk[j], c->v + pend, (size_t)(v - c->v) - pend) < 0)
                rc = te_err_set(err, TE_ENOMEM, "rollup: out of memory");
            else
                rc = big_cell(r, b, v, n, hsk[j], err);
            pend = at;
        }
        if (rc == 0 && hsk[j] && te_sketch_add_all(hsk[j], c->v + pend, c->n - pend) < 0)
            rc = te_err_set(err, TE_ENOMEM, "rollup: out of memory");
    }
    if (rc == 0 && b->oom)
        rc = te_err_set(err, TE_ENOMEM, "rollup: out of memory");
    if (rc == 0)
        rc = te_rollup_put_1m_blob(st, r, s->kid, s->sid, s->hour, s->nev, b->p, b->len, err);
    if (rc == 0)
        rc = hrows_at(st, r, s, err);
    te_rollup_1h_row_t *h = rc == 0 ? hrow(r, 0) : NULL;
    if (rc == 0 && !h)
        rc = te_err_set(err, TE_ENOMEM, "rollup: out of memory");
    if (rc == 0)
        te_rollup_1h_add(h, &(te_rollup_1h_entry_t){.sid = s->sid, .n = s->nev}, NULL);
    for (size_t j = 0; rc == 0 && j < s->ncols; j++) {
        col_t *c = &s->cols[j];
        if (!c->n)
            continue;
        if (!(h = hrow(r, c->field))) {
            rc = te_err_set(err, TE_ENOMEM, "rollup: out of memory");
            break;
        }
        te_rollup_1h_entry_t e = {.sid = s->sid, .n = (int64_t)c->n, .sum = c->sum,
                                  .min = c->min, .max = c->max};
        te_rollup_1h_add(h, &e, hsk[j]);
    }
    for (size_t j = 0; j < s->ncols; j++)
        te_rollup_sketch_give(r, hsk[j]);
    return rc;
}

/* slot_write for a slot whose one event is still raw (most slots of a
 * sparse series): the same rows straight from its fields blob, without
 * columns, minute lists or sketches (one minute, cells of one value). */
static int slot_write_one(te_store_t *st, struct te_rollup *r, const slot_t *s, te_err_t *err)
{
    const unsigned char *p = s->raw;
    size_t flen = (size_t)p[1] | (size_t)p[2] << 8;
    const unsigned char *fields = flen ? p + 3 : NULL;
    size_t pos = 0, klen, nw = 0;
    const char *key;
    double v;
    while (te_fields_blob_next(fields, flen, &pos, &key, &klen, &v))
        nw += !isnan(v);
    if (nw + 1 > TE_ROLLUP_MAX_ROW_NAMES)
        return te_err_set(err, TE_ETOOBIG, "rollup: more than %d fields in one series",
                          TE_ROLLUP_MAX_ROW_NAMES);
    te_rollup_wbuf_t *b = &r->hbuf;
    uint32_t fids[TE_ROLLUP_MAX_ROW_NAMES];
    nw = 0;
    for (pos = 0; te_fields_blob_next(fields, flen, &pos, &key, &klen, &v);)
        if (!isnan(v) && te_rollup_field(r, key, klen, &fids[nw++]) < 0)
            return te_err_set(err, TE_ENOMEM, "rollup: out of memory");
    int rc = te_rollup_1m_head(st, r, b, s->kid, s->hour, fids, nw, err);
    if (rc)
        return rc;
    unsigned char minute[3] = {1, p[0], 1};
    te_rollup_wb_put(b, minute, 3); /* one minute, one event */
    for (pos = 0; te_fields_blob_next(fields, flen, &pos, &key, &klen, &v);)
        if (!isnan(v) && te_rollup_wb_reserve(b, 12)) {
            int e = te_rollup_scale_of(&v, 1);
            b->p[b->len++] = 0; /* the event minutes */
            b->p[b->len++] = (unsigned char)e;
            b->len += te_rollup_put_scaled(b->p + b->len, &v, 1, e);
        }
    if (b->oom)
        return te_err_set(err, TE_ENOMEM, "rollup: out of memory");
    rc = te_rollup_put_1m_blob(st, r, s->kid, s->sid, s->hour, 1, b->p, b->len, err);
    if (rc == 0)
        rc = hrows_at(st, r, s, err);
    te_rollup_1h_row_t *h = rc == 0 ? hrow(r, 0) : NULL;
    if (rc == 0 && !h)
        return te_err_set(err, TE_ENOMEM, "rollup: out of memory");
    if (rc == 0)
        te_rollup_1h_add(h, &(te_rollup_1h_entry_t){.sid = s->sid, .n = 1}, NULL);
    size_t k = 0;
    for (pos = 0; rc == 0 && te_fields_blob_next(fields, flen, &pos, &key, &klen, &v);) {
        if (isnan(v))
            continue;
        if (!(h = hrow(r, fids[k++])))
            return te_err_set(err, TE_ENOMEM, "rollup: out of memory");
        te_rollup_1h_add(h, &(te_rollup_1h_entry_t){.sid = s->sid, .n = 1, .sum = v, .min = v,
                                                    .max = v},
                         NULL);
    }
    return rc;
}

/* Empties the columns of r->wslot but keeps them and their positions:
 * the sparse slots written through it come in (kind, hour, series) order,
 * and those of one kind mostly have the same fields in the same order, so
 * the next slot's fields find their columns without a name lookup. Past
 * WSLOT_KEEP columns (many kinds), they start over. */
#define WSLOT_KEEP 32

static void wslot_clear(slot_t *w)
{
    if (w->ncols > WSLOT_KEEP) {
        w->ncols = w->norder = 0;
        return;
    }
    for (size_t j = 0; j < w->ncols; j++) {
        col_t *c = &w->cols[j];
        c->n = 0;
        c->sum = c->min = c->max = 0;
        c->sorted = c->dense = true;
    }
}

/* Empties slot s (its buffers stay, for the next slot there). */
static void slot_reset(slot_t *s)
{
    s->ncols = s->norder = 0;
    s->nraw = s->raw_len = 0;
}

/* Frees slot s's columns (its raw buffer stays), uncounting them. */
static void slot_free_cols(struct te_rollup *r, slot_t *s)
{
    for (size_t j = 0; j < s->cap_cols; j++) {
        r->hour_bytes -= s->cols[j].cap * sizeof(double) + s->cols[j].mcap;
        free(s->cols[j].v);
        free(s->cols[j].m);
    }
    r->hour_bytes -= s->cap_cols * sizeof(col_t) + s->cap_order * sizeof(uint32_t) + s->cap_em;
    free(s->cols);
    free(s->order);
    free(s->em);
    s->cols = NULL;
    s->order = NULL;
    s->em = NULL;
    s->ncols = s->cap_cols = s->norder = s->cap_order = s->cap_em = 0;
}

/* Frees slot s's buffers, uncounting them. */
static void slot_free(struct te_rollup *r, slot_t *s)
{
    slot_free_cols(r, s);
    r->hour_bytes -= s->raw_cap;
    free(s->raw);
    *s = (slot_t){0};
}

/* Orders slots by (kind, hour, series): the 1-hour rows of a chunk are
 * then filled by consecutive slots. */
static int cmp_slot(const void *a, const void *b)
{
    const slot_t *x = a, *y = b;
    if (x->kid != y->kid)
        return x->kid < y->kid ? -1 : 1;
    if (x->hour != y->hour)
        return x->hour < y->hour ? -1 : 1;
    return x->sid < y->sid ? -1 : x->sid > y->sid;
}

/* Removes kind kid's slots (kid 0: every kind's) of hours in [from_hour,
 * before_hour), writing them first when write is set (to the database,
 * or to r->prep); the others stay, in place. Returns the first error;
 * every such slot is removed anyway. */
static int sweep(te_store_t *st, struct te_rollup *r, int64_t kid, int64_t from_hour,
                 int64_t before_hour, bool write, te_err_t *err)
{
    /* the slots that stay to the front, in place */
    size_t keep = 0;
    for (size_t i = 0; i < r->nslots; i++) {
        slot_t *s = &r->slots[i];
        if ((kid && s->kid != kid) || s->hour >= before_hour || s->hour < from_hour) {
            if (i != keep) {
                slot_t t = r->slots[keep];
                r->slots[keep] = *s;
                *s = t;
            }
            keep++;
        }
    }
    if (write && r->nslots > keep)
        qsort(r->slots + keep, r->nslots - keep, sizeof(slot_t), cmp_slot);
    int rc = 0;
    for (size_t i = keep; i < r->nslots; i++) {
        slot_t *s = &r->slots[i];
        if (write && rc == 0 && s->nraw == 1) {
            rc = slot_write_one(st, r, s, err);
        } else if (write && rc == 0 && s->nraw) {
            /* still raw (a sparse series): written through r->wslot, whose
             * columns serve one such slot after the other */
            slot_t *w = &r->wslot;
            w->kid = s->kid;
            w->sid = s->sid;
            w->hour = s->hour;
            w->nev = s->nev;
            w->idsum = s->idsum;
            w->raw = s->raw;
            w->nraw = s->nraw;
            w->raw_len = s->raw_len;
            wslot_clear(w);
            rc = slot_write(st, r, w, err);
            w->raw = NULL; /* s's */
            w->nraw = w->raw_len = 0;
        } else if (write && rc == 0) {
            rc = slot_write(st, r, s, err);
        }
        slot_reset(s);
    }
    if (write && rc == 0)
        rc = te_rollup_put_1m_end(st, r, err);
    if (write && rc == 0)
        rc = hrows_flush(st, r, err);
    r->pack.open = false; /* after an error: the transaction is rolled back */
    r->nhrows = 0;
    if (keep != r->nslots) {
        r->nslots = keep;
        sidx_rebuild(r);
    }
    return rc;
}

int te_rollup_hour_flush(te_store_t *st, int64_t kid, int64_t before_hour, te_err_t *err)
{
    struct te_rollup *r = st->rollup;
    int rc = te_rollup_preps_out(st, r, &r->preps, kid, before_hour, true, err);
    int rc2 = sweep(st, r, kid, INT64_MIN, before_hour, rc == 0, err);
    return rc ? rc : rc2;
}

void te_rollup_hour_drop(struct te_rollup *r, int64_t kid, int64_t before_hour)
{
    te_rollup_preps_out(NULL, r, &r->preps, kid, before_hour, true, NULL);
    sweep(NULL, r, kid, INT64_MIN, before_hour, false, NULL);
}

int te_rollup_prep_pack(struct te_rollup *r, te_err_t *err)
{
    te_rollup_pack_t *pk = &r->pack;
    te_rollup_prep_t *p = r->prep;
    if (!pk->open)
        return 0;
    pk->open = false;
    if (pk->b.oom)
        return te_err_set(err, TE_ENOMEM, "rollup: out of memory");
    if (p->nprows == p->cap_prows) {
        size_t ncap = p->cap_prows ? p->cap_prows * 2 : 4;
        te_rollup_prow_t *np = realloc(p->prows, ncap * sizeof(*np));
        if (!np)
            return te_err_set(err, TE_ENOMEM, "rollup: out of memory");
        p->bytes += (ncap - p->cap_prows) * sizeof(*np);
        p->prows = np;
        p->cap_prows = ncap;
    }
    unsigned char *copy = malloc(pk->b.len ? pk->b.len : 1);
    if (!copy)
        return te_err_set(err, TE_ENOMEM, "rollup: out of memory");
    memcpy(copy, pk->b.p, pk->b.len);
    p->prows[p->nprows++] = (te_rollup_prow_t){.n = pk->n, .p = copy, .len = pk->b.len};
    p->bytes += pk->b.len;
    return 0;
}

int te_rollup_hour_prepare(struct te_rollup *r, int64_t kid, int64_t before_hour, te_err_t *err)
{
    for (;;) {
        /* the kind's earliest hour before before_hour, and what it holds */
        int64_t h = INT64_MAX;
        for (size_t i = 0; i < r->nslots; i++)
            if (r->slots[i].kid == kid && r->slots[i].hour < h)
                h = r->slots[i].hour;
        if (h >= before_hour)
            return 0;
        int64_t end = h <= INT64_MAX - TE_ROLLUP_1H_NS ? h + TE_ROLLUP_1H_NS : INT64_MAX;
        uint64_t nev = 0, idsum = 0;
        for (size_t i = 0; i < r->nslots; i++)
            if (r->slots[i].kid == kid && r->slots[i].hour == h) {
                nev += (uint64_t)r->slots[i].nev;
                idsum += (uint64_t)r->slots[i].idsum;
            }
        te_rollup_prep_t *p = te_rollup_preps_add(&r->staged);
        if (!p) {
            sweep(NULL, r, kid, h, end, false, NULL);
            return te_err_set(err, TE_ENOMEM, "rollup: out of memory");
        }
        *p = (te_rollup_prep_t){.kid = kid, .hour = h, .nev = (int64_t)nev,
                                .idsum = (int64_t)idsum, .bytes = sizeof(*p)};
        r->prep = p;
        int rc = sweep(NULL, r, kid, h, end, true, err);
        r->prep = NULL;
        if (rc == 0 && p->oom)
            rc = te_err_set(err, TE_ENOMEM, "rollup: out of memory");
        if (rc < 0) {
            te_rollup_preps_out(NULL, r, &r->staged, kid, end, false, NULL);
            return rc;
        }
    }
}

void te_rollup_hour_trim(struct te_rollup *r)
{
    for (size_t i = r->nslots; i < r->init_slots; i++)
        slot_free(r, &r->slots[i]);
}

void te_rollup_hour_shrink(struct te_rollup *r)
{
    te_rollup_hour_trim(r);
    r->hour_bytes -= (r->init_slots - r->nslots) * sizeof(slot_t);
    r->init_slots = r->nslots;
    size_t cap = 128;
    while (cap < r->nslots)
        cap *= 2;
    if (cap < r->cap_slots) {
        slot_t *ns = realloc(r->slots, cap * sizeof(slot_t));
        if (ns) {
            r->slots = ns;
            r->cap_slots = cap;
        }
    }
    size_t icap = 256;
    while ((r->nslots + 1) * 2 > icap)
        icap *= 2;
    uint32_t *ni = icap < r->sidx_cap ? malloc(icap * sizeof(*ni)) : NULL;
    if (ni) {
        free(r->sidx);
        r->hour_bytes -= (r->sidx_cap - icap) * sizeof(*ni);
        r->sidx = ni;
        r->sidx_cap = icap;
        sidx_rebuild(r);
    }
}

void te_rollup_hour_free(struct te_rollup *r)
{
    te_rollup_preps_out(NULL, r, &r->preps, 0, INT64_MAX, true, NULL);
    te_rollup_preps_out(NULL, r, &r->staged, 0, INT64_MAX, false, NULL);
    free(r->preps.v);
    free(r->staged.v);
    r->preps = r->staged = (te_rollup_preps_t){0};
    for (size_t i = 0; i < r->init_slots; i++)
        slot_free(r, &r->slots[i]);
    slot_free(r, &r->wslot);
    for (size_t i = 0; i < r->cap_hrows; i++)
        te_rollup_1h_free(&r->hrows[i]);
    free(r->hrows);
    r->hrows = NULL;
    r->nhrows = r->cap_hrows = 0;
    free(r->slots);
    free(r->sidx);
    free(r->hbuf.p);
    free(r->scratch);
    free(r->colbuf);
    r->colbuf = NULL;
    r->cap_colbuf = 0;
    r->slots = NULL;
    r->sidx = NULL;
    r->scratch = NULL;
    r->hbuf = (te_rollup_wbuf_t){0};
    r->cap_slots = r->init_slots = r->sidx_cap = r->nslots = r->hour_bytes = r->cap_scratch = 0;
}
