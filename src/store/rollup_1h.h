/*
 * rollup_1h.h - the 1-hour rollup rows: one row per (kind, field, hour,
 * chunk of series ids) packing, per series, n, sum, min, max and a sketch.
 * Encoding (rollup.c, rollup_hour.c), decoding (query_fold.c) and merging
 * (rollup_1h.c); writing a row over or merged with the one stored, and
 * converting the one-row-per-series table of schema 5 (db.c's migration
 * to 6: rollup_1h_db.c).
 *
 * THREAD: as rollup.h: writers on the read-write store's thread; the
 * iterator on any thread (it only reads the bytes it is given).
 *
 * Why chunks: a row per (series, hour, field) cost an SQLite insert
 * (~10,000 instructions) per series, field and hour: with 96 series and
 * four fields, a quarter of what rollups cost at ingest, and the planner
 * read ~70,000 rows for a field over 30 days. A chunk holds the series
 * whose ids share sid >> TE_ROLLUP_1H_CHUNK_BITS: a handful of rows per
 * hour, a deterministic key (a late event finds its row by key), and a
 * bounded row size (4096 series). Why 4096 and not fewer: ids are given
 * out across kinds and over months, so the series active in one hour are
 * sparse in id space; with 256-id chunks, 1,000,000 events of 162,000
 * series over 30 days (examples/gen.lua) still made a row per ~3 values.
 * Per-field rows stay: a query of one
 * field reads only that field's bytes, and sums and counts read only the
 * stats column, never the sketches.
 *
 * Row (sql_v6.h): n = the sum of the entries' n (events for field '',
 * values otherwise), stats, sketches:
 *   stats    = u8 format | varint entries | entries x (varint sid delta,
 *              varint n [, f64 sum, f64 min, f64 max | f64 value])
 *   sketches = (varint length, te_sketch_encode blob) per entry with
 *              n > 2, in entry order; NULL when no entry has one
 * Format 1 (field '': event counts) has no sum/min/max; format 3 has them,
 * as one f64 for an entry with n = 1 (sum = min = max: most entries of
 * sparse series), else three; format 2 (read only) always has three.
 * Sids ascend; the first delta is from the chunk's first id. Integers are
 * LEB128 varints, doubles 8 bytes little-endian. With n <= 2 the values
 * are exactly {min, max}: no sketch, as in every rollup row.
 */
#ifndef TE_STORE_ROLLUP_1H_H
#define TE_STORE_ROLLUP_1H_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "../core/err.h"
#include "../rules/sketch.h"
#include "store_int.h"

/* Series ids per chunk: 1 << TE_ROLLUP_1H_CHUNK_BITS. */
#define TE_ROLLUP_1H_CHUNK_BITS 12

/* The chunk of a series id. Cannot fail. */
static inline int64_t te_rollup_1h_chunk(int64_t sid)
{
    return sid >> TE_ROLLUP_1H_CHUNK_BITS; /* arithmetic for negative ids too */
}

/* One series' values in a row; sketch (when n > 2 and the sketches were
 * read) points into the row's sketches column. */
typedef struct te_rollup_1h_entry {
    int64_t sid, n;
    double sum, min, max;
    const void *sketch;
    size_t sketch_len;
} te_rollup_1h_entry_t;

/* Walks the entries of one row (it copies nothing: the bytes must stay
 * valid while it is used). */
typedef struct te_rollup_1h_iter {
    const unsigned char *st, *sk;
    size_t st_len, st_pos, sk_len, sk_pos;
    uint64_t left;
    int64_t base, sid;          /* the chunk's first id; the last entry's */
    bool values, one, seen;     /* one: format 3 (a single value stored once) */
} te_rollup_1h_iter_t;

/* Starts a walk of a row of chunk `chunk` (stats and, to get sketches, the
 * sketches column; NULL to skip them). Returns 0 or TE_EPARSE. */
int te_rollup_1h_iter_init(te_rollup_1h_iter_t *it, int64_t chunk, const void *stats,
                           size_t stats_len, const void *sketches, size_t sketches_len,
                           te_err_t *err);

/* The next entry: 1 (*e set), 0 at the end, or TE_EPARSE for a malformed
 * row (the message names it). */
int te_rollup_1h_next(te_rollup_1h_iter_t *it, te_rollup_1h_entry_t *e, te_err_t *err);

/* A row being built: entries added in ascending sid order. The buffers
 * are kept from row to row (te_rollup_1h_reset to empty it). */
typedef struct te_rollup_1h_row {
    int64_t kid, bucket, chunk;
    const char *field;          /* not owned; "" = event counts */
    size_t field_len;
    unsigned char *st, *sk;
    size_t st_len, st_cap, sk_len, sk_cap;
    int64_t entries, n, last_sid;
    bool oom;                   /* an append failed: te_rollup_1h_write reports it */
} te_rollup_1h_row_t;

/* Empties row and gives it its key (field: NUL-free bytes, kept by the
 * caller until the row is written). Cannot fail. */
void te_rollup_1h_begin(te_rollup_1h_row_t *row, int64_t kid, const char *field, size_t field_len,
                        int64_t bucket, int64_t chunk);

/* Appends an entry (e->sid above the last one, in the row's chunk); for a
 * values row with e->n > 2, its sketch: sk when not NULL (encoded here),
 * else e->sketch's bytes. Failures latch in row->oom. */
void te_rollup_1h_add(te_rollup_1h_row_t *row, const te_rollup_1h_entry_t *e,
                      const te_sketch_t *sk);

/* Frees row's buffers. NULL-safe. */
void te_rollup_1h_free(te_rollup_1h_row_t *row);

/* The stats bytes of row to store (*len bytes, inside row's buffer): its
 * entry count is written just before the entries. Cannot fail. */
const unsigned char *te_rollup_1h_bytes(te_rollup_1h_row_t *row, size_t *len);

/* The entries of a stored row (st0, sk0: its stats and sketches columns)
 * and of row merged by sid into out (begun with row's key): counts and
 * sums add, min and max combine, sketches merge (an entry of n <= 2 adds
 * its min and max). Returns 0, TE_ENOMEM or TE_EPARSE for a malformed
 * stored row. */
int te_rollup_1h_merge(te_rollup_1h_row_t *out, const void *st0, size_t st0_len, const void *sk0,
                       size_t sk0_len, te_rollup_1h_row_t *row, te_err_t *err);

/* The statements that write rows, prepared for one connection. */
typedef struct te_rollup_1h_stmts {
    sqlite3_stmt *ins, *get, *upd;
} te_rollup_1h_stmts_t;

/* Prepares s on st's connection. Returns 0 or TE_ESQLITE. */
int te_rollup_1h_prepare(te_store_t *st, te_rollup_1h_stmts_t *s, te_err_t *err);

/* Finalizes s. NULL-safe. */
void te_rollup_1h_finalize(te_rollup_1h_stmts_t *s);

/* Writes row (nothing when it has no entries): inserted, or when a row
 * with its key exists, merged with it entry by entry (counts and sums
 * add, sketches merge). Returns 0 or TE_E*. */
int te_rollup_1h_write(te_store_t *st, te_rollup_1h_stmts_t *s, te_rollup_1h_row_t *row,
                       te_err_t *err);

/* Schema 5 -> 6: rewrites the per-series rows of rollup_1h_v5 (the old
 * table, renamed by the migration's SQL) as chunk rows of rollup_1h, then
 * drops it. Inside the migration's transaction. Returns 0 or TE_E*. */
int te_rollup_1h_convert(te_store_t *st, te_err_t *err);

#endif
