/*
 * query_scan.c - the plan's raw and 1-minute segments (query_int.h): raw
 * events through the (kind_id, ts_ns) index, and the cells of the packed
 * rollup_1m rows of the hours a segment overlaps, fed to the accumulators.
 *
 * THREAD: as query.c: one thread at a time per te_store_t.
 *
 * The one idea: what a statement reads is captured, as read, for the
 * query cache (query_cache.h) while it stays small, and a cached read is
 * replayed through the same accumulator calls: the next query of a report
 * gets the same answer, bit for bit, without reading the range's edges
 * again.
 */
#include <stdlib.h>
#include <string.h>

#include "query_int.h"
#include "sql.h"

typedef te_query_ctx_t qctx_t;
typedef te_query_seg_t seg_t;

/* Raw events and packed minutes read for a query are kept for the next
 * one up to this size: the edges of a range (sub-minute ends, the hour or
 * so past the rollup watermark) are small; a raw scan of a long range
 * (distinct, or no rollups yet) is not worth holding. */
#define CAPTURE_MAX_BYTES (4u << 20)

static size_t capture_room(const qctx_t *c)
{
    size_t room = te_qcache_room(c->cache);
    return room < CAPTURE_MAX_BYTES ? room : CAPTURE_MAX_BYTES;
}

/* Capture of a statement's rows for the cache (NULL: not kept, e.g. the
 * budget is spent); dropped as soon as it outgrows capture_room. */
static te_qcache_entry_t *capture_new(qctx_t *c, int level, int64_t kid, int64_t lo, int64_t hi)
{
    if (!capture_room(c))
        return NULL;
    return te_qcache_entry_new(level, kid, NULL, lo, hi, 0, false);
}

static void capture(qctx_t *c, te_qcache_entry_t **e, int64_t a, int64_t sid, const void *blob,
                    size_t len)
{
    te_qcache_row_t row = {.a = a, .sid = sid};
    if (*e && !te_qcache_entry_add(*e, &row, blob, len, capture_room(c))) {
        te_qcache_entry_free(*e);
        *e = NULL;
    }
}

static void capture_end(qctx_t *c, te_qcache_entry_t *e, int rc)
{
    if (rc < 0 || !te_qcache_keep(c->cache, e))
        te_qcache_entry_free(e);
}

/* Cells of one rollup_1m row inside [lo, hi). */
typedef struct cell_ctx {
    qctx_t *c;
    int64_t hour, sid, lo, hi;
} cell_ctx_t;

static int add_cell(const te_rollup_cell_t *cell, void *ud)
{
    cell_ctx_t *x = ud;
    int64_t t = x->hour + cell->minute * TE_ROLLUP_1M_NS;
    if (t < x->lo || t >= x->hi)
        return 0;
    int f = -1;
    if (cell->field_len > 0) {
        size_t i = 0;
        while (i < x->c->nfields && (strlen(x->c->fields[i]) != cell->field_len ||
                                     memcmp(x->c->fields[i], cell->field, cell->field_len) != 0))
            i++;
        if (i == x->c->nfields)
            return 0; /* a field the query does not want */
        f = (int)i;
    }
    return te_query_add_rollup(x->c, f, t, x->sid, cell->n, cell->sum, cell->min, cell->max,
                               cell->sketch, cell->sketch_len, cell->nvals ? cell->vals : NULL);
}

int te_query_scan_raw(qctx_t *c, int64_t kid, int64_t lo, int64_t hi)
{
    const te_qcache_entry_t *ce = te_qcache_find(c->cache, 0, kid, NULL, lo, hi, 0, false);
    if (ce) {
        for (size_t i = 0; i < ce->nrows; i++) {
            const te_qcache_row_t *r = &ce->rows[i];
            int rc = te_query_add_row(c, r->a, r->sid, r->len ? ce->arena + r->off : NULL, r->len);
            if (rc < 0)
                return rc;
        }
        return 0;
    }
    sqlite3_stmt *s = NULL;
    int src = sqlite3_prepare_v2(c->st->db, TE_SQL_QUERY_SCAN, -1, &s, NULL);
    if (src != SQLITE_OK)
        return te_store_sqlerr(c->st, src, c->err, "query");
    sqlite3_bind_int64(s, 1, kid);
    sqlite3_bind_int64(s, 2, lo);
    sqlite3_bind_int64(s, 3, hi);
    te_qcache_entry_t *e = capture_new(c, 0, kid, lo, hi);
    int rc = 0;
    while ((src = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t ts = sqlite3_column_int64(s, 0), sid = sqlite3_column_int64(s, 1);
        const void *blob = sqlite3_column_blob(s, 2);
        size_t blen = (size_t)sqlite3_column_bytes(s, 2);
        rc = te_query_add_row(c, ts, sid, blob, blen);
        if (rc < 0)
            break;
        capture(c, &e, ts, sid, blob, blen);
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = te_store_sqlerr(c->st, src, c->err, "query");
    capture_end(c, e, rc);
    sqlite3_finalize(s);
    return rc;
}

int te_query_scan_1m(qctx_t *c, int64_t kid, const seg_t *sg)
{
    int64_t from = te_rollup_bucket(sg->lo, TE_ROLLUP_1H_NS);
    const te_qcache_entry_t *ce = te_qcache_find(c->cache, 1, kid, NULL, from, sg->hi, 0, false);
    int rc = 0;
    if (ce) {
        for (size_t i = 0; rc == 0 && i < ce->nrows; i++) {
            const te_qcache_row_t *r = &ce->rows[i];
            cell_ctx_t x = {c, r->a, r->sid, sg->lo, sg->hi};
            int64_t si;
            if (!te_idmap_get(&c->sidx, x.sid, &si))
                continue;
            rc = te_rollup_1m_each(ce->arena + r->off, r->len, NULL, add_cell, &x, c->err);
        }
        return rc;
    }
    sqlite3_stmt *s = NULL;
    int src = sqlite3_prepare_v2(c->st->db, TE_SQL_ROLLUP_1M_SCAN, -1, &s, NULL);
    if (src != SQLITE_OK)
        return te_store_sqlerr(c->st, src, c->err, "query rollups");
    sqlite3_bind_int64(s, 1, kid);
    sqlite3_bind_int64(s, 2, from);
    sqlite3_bind_int64(s, 3, sg->hi);
    te_qcache_entry_t *e = capture_new(c, 1, kid, from, sg->hi);
    te_rollup_pack_names_t *pn = malloc(sizeof(*pn));
    unsigned char *xb = NULL; /* a captured blob with its names written out */
    size_t xcap = 0, xlen;
    if (!pn)
        rc = te_err_set(c->err, TE_ENOMEM, "query: out of memory");
    while (rc == 0 && (src = sqlite3_step(s)) == SQLITE_ROW) {
        /* a row packs series of one hour (sql_v7.h); each is captured and
         * added as if it had its own row */
        const void *data = sqlite3_column_blob(s, 1);
        size_t dlen = (size_t)sqlite3_column_bytes(s, 1), pos = 0;
        cell_ctx_t x = {c, sqlite3_column_int64(s, 0), 0, sg->lo, sg->hi};
        const void *blob;
        size_t blen;
        int more;
        while (rc == 0 &&
               (more = te_rollup_1m_pack_next(data, dlen, &pos, &x.sid, &blob, &blen, pn,
                                              c->err)) != 0) {
            if (more < 0) {
                rc = more;
                break;
            }
            if (e && blen && *(const unsigned char *)blob == TE_ROLLUP_1M_V5) {
                if ((rc = te_rollup_1m_expand(blob, blen, pn, &xb, &xcap, &xlen, c->err)) == 0)
                    capture(c, &e, x.hour, x.sid, xb, xlen);
            } else {
                capture(c, &e, x.hour, x.sid, blob, blen);
            }
            int64_t si;
            if (rc == 0 && te_idmap_get(&c->sidx, x.sid, &si))
                rc = te_rollup_1m_each(blob, blen, pn, add_cell, &x, c->err);
        }
    }
    free(xb);
    free(pn);
    if (rc == 0 && src != SQLITE_DONE)
        rc = te_store_sqlerr(c->st, src, c->err, "query rollups");
    capture_end(c, e, rc);
    sqlite3_finalize(s);
    return rc;
}

