/*
 * rollup.h - 1-minute and 1-hour rollups maintained by the write path, and
 * the helpers the query planner shares with it (inside src/store only).
 *
 * THREAD: as store.h: one thread at a time per te_store_t. The write-path
 * functions run on the thread that owns the read-write store (the writer).
 *
 * Per (resolution, series, bucket, field) a rollup row holds n, sum, min,
 * max and, when n > 2, a DDSketch (rules/sketch.h, 1% relative error); the
 * field '' row counts events (1-minute rows pack an hour of minutes per
 * series). Per kind, watermarks w1m / w1h say how far the tables reach:
 * events before w are rolled up, events from w on are read raw (see
 * rollup.c for how they move; schema in sql_v4.h).
 */
#ifndef TE_STORE_ROLLUP_H
#define TE_STORE_ROLLUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../core/err.h"
#include "../rules/sketch.h"
#include "store.h"

#define TE_ROLLUP_1M_NS INT64_C(60000000000)
#define TE_ROLLUP_1H_NS INT64_C(3600000000000)
/* Up to this many values an accumulator (and a 1-minute cell) keeps the
 * values themselves; beyond, a sketch. */
#define TE_ROLLUP_VALS 8
/* The most values a 1-minute cell carries: versions 4 and 5 (the hour
 * builder's) keep up to this many values of a field whose values are scaled
 * integers (1 to 3 bytes each, where a sketch and its sum, min and max
 * take ~60), TE_ROLLUP_VALS of an f64 field. */
#define TE_ROLLUP_CELL_VALS 32
/* The largest count a stored rollup cell or entry holds (an hour of one
 * series at 10^9 events a second is 3.6 * 10^12); a larger one is a
 * damaged row, refused before sums of counts could overflow. */
#define TE_ROLLUP_MAX_N ((uint64_t)1 << 48)
/* Relative accuracy of every rollup sketch (rules/sketch.h). */
#define TE_ROLLUP_ACCURACY 0.01

/* Bucket start of ts for a resolution (floor to a multiple of res_ns since
 * the epoch, also for negative ts). Cannot fail. */
static inline int64_t te_rollup_bucket(int64_t ts, int64_t res_ns)
{
    /* inline: with a constant res_ns the divisions become multiplications */
    int64_t b = ts / res_ns;
    if (ts % res_ns < 0)
        b--;
    return b * res_ns;
}

/* Reads a LEB128 varint (at most 10 bytes) at p[*pos], p being len bytes,
 * into *v and moves *pos past it; false (nothing read) at the end of p or
 * for one too long. The rollup blobs' readers share it. */
static inline bool te_rollup_get_varint(const unsigned char *p, size_t len, size_t *pos,
                                        uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*pos >= len)
            return false;
        unsigned char c = p[(*pos)++];
        x |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = x;
            return true;
        }
    }
    return false;
}

/* Reads a little-endian f64 at p[*pos] as te_rollup_get_varint reads a
 * varint. */
static inline bool te_rollup_get_f64(const unsigned char *p, size_t len, size_t *pos, double *d)
{
    if (*pos > len || len - *pos < 8)
        return false;
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u |= (uint64_t)p[*pos + (size_t)i] << (8 * i);
    memcpy(d, &u, 8);
    *pos += 8;
    return true;
}

/* Prepares the write-path state of a read-write store and rolls up the raw
 * events of kinds whose watermarks lag (a database from before rollups), a
 * day per transaction. Called by te_store_writer_prepare. Returns 0 or
 * TE_E*. */
int te_rollup_open(te_store_t *st, te_err_t *err);

/* Frees the write-path state. NULL-safe; cannot fail. */
void te_rollup_close(te_store_t *st);

/* Reads the per-kind watermarks and archive marks for the transaction that
 * just began (under the write lock). Returns 0, TE_ENOMEM or TE_ESQLITE. */
int te_rollup_begin(te_store_t *st, te_err_t *err);

/* Notes one newly stored event (kind kid, series sid, its rowid): below a
 * watermark it goes into the late accumulators, otherwise into the hour
 * builder (rollup_hour.c), whose rows the advance past its hour writes.
 * An event older than its kind's archive mark is skipped (its
 * contribution is already rolled up). Returns 0 or TE_ENOMEM. */
int te_rollup_add(te_store_t *st, int64_t kid, int64_t sid, int64_t ts, int64_t rowid,
                  const unsigned char *fields, size_t fields_len, te_err_t *err);

/* Before COMMIT: merges the late accumulators into their rows, then moves
 * the watermarks of the kinds this transaction touched, rolling up the raw
 * events they pass. Returns 0 or TE_E*. */
int te_rollup_flush(te_store_t *st, te_err_t *err);

/* Drops the accumulators (rollback). Cannot fail. */
void te_rollup_discard(te_store_t *st);

/* Rolls up every raw event of kind kid before before_ns (watermarks move
 * to before_ns rounded up to each resolution), inside the current
 * transaction: called before raw events are archived and deleted. Returns
 * 0 or TE_E*. */
int te_rollup_materialize(te_store_t *st, int64_t kid, int64_t before_ns, te_err_t *err);

/* Reads kind kid's watermarks (INT64_MIN when nothing is rolled up): any
 * store, readers included. Returns 0 or TE_ESQLITE. */
int te_rollup_watermarks(te_store_t *st, int64_t kid, int64_t *w1m, int64_t *w1h,
                         te_err_t *err);

/* One cell of a packed 1-minute row: minute 0..59 of the row's hour;
 * field "" (field_len 0) is the event count n; otherwise n values with
 * sum, min, max and either the values themselves (nvals = n, when
 * n <= TE_ROLLUP_VALS, or TE_ROLLUP_CELL_VALS in versions 4-5) or a sketch
 * blob (nvals = 0). */
typedef struct te_rollup_cell {
    int minute;
    const char *field;      /* not NUL-terminated */
    size_t field_len;
    int64_t n;
    double sum, min, max;
    double vals[TE_ROLLUP_CELL_VALS];
    int nvals;
    const void *sketch;
    size_t sketch_len;
} te_rollup_cell_t;

/* The version (first byte) of a series' hour whose names are indexes
 * into its row's names (te_rollup_pack_names_t, te_rollup_1m_expand). */
#define TE_ROLLUP_1M_V5 5

/* Most field names one rollup_1m row defines for its series (pack format
 * 2, rollup_row.c). */
#define TE_ROLLUP_PACK_NAMES 256

/* The names a rollup_1m row has defined so far, as te_rollup_1m_pack_next
 * passes them (pointers into the row's data, not NUL-terminated); the
 * series' hours of that row name their fields by index into them
 * (version 5). */
typedef struct te_rollup_pack_names {
    int format;
    size_t n;
    const char *name[TE_ROLLUP_PACK_NAMES];
    size_t len[TE_ROLLUP_PACK_NAMES];
} te_rollup_pack_names_t;

/* Walks the series of a rollup_1m row's data (schema 7: one or more
 * series' hours of one kind and hour): call with *pos = 0 and the same pn
 * throughout; returns 1 and sets *sid and the series' blob (for
 * te_rollup_1m_each with pn), 0 at the end, or TE_EPARSE for a malformed
 * row or one of a later format. */
int te_rollup_1m_pack_next(const void *data, size_t len, size_t *pos, int64_t *sid,
                           const void **blob, size_t *blob_len, te_rollup_pack_names_t *pn,
                           te_err_t *err);

/* Called per cell; a non-zero return stops te_rollup_1m_each with it. */
typedef int (*te_rollup_cell_cb)(const te_rollup_cell_t *c, void *ud);

/* Walks the cells of a rollup_1m data blob in (minute, field) order; pn:
 * the names of the row it came from (te_rollup_1m_pack_next), NULL for a
 * blob that holds its own names (versions 1 to 4, te_rollup_1m_expand).
 * Returns 0, cb's code, or TE_EPARSE for a malformed blob. */
int te_rollup_1m_each(const void *blob, size_t len, const te_rollup_pack_names_t *pn,
                      te_rollup_cell_cb cb, void *ud, te_err_t *err);

/* The same cells as a blob that holds its own names, for a copy that
 * outlives its row (the query cache): a version-5 blob (names by index
 * into pn) rewritten as version 4, others copied, into *buf (*cap bytes,
 * grown with realloc; the caller frees it, also after a failure), *out_len
 * bytes. Returns 0, TE_ENOMEM or TE_EPARSE. */
int te_rollup_1m_expand(const void *blob, size_t len, const te_rollup_pack_names_t *pn,
                        unsigned char **buf, size_t *cap, size_t *out_len, te_err_t *err);

/* The p-quantile (p in [0, 1]) with the raw query's definition (linear
 * interpolation between the closest ranks, rank = p * (n - 1)), estimated
 * from a sketch: each of the two ranks is within the sketch's relative
 * error, hence so is the interpolation for same-sign values. Returns 0 or
 * TE_ENOTFOUND when the sketch is empty. */
int te_rollup_quantile(const te_sketch_t *sk, double p, double *out);

/* The planner's quantile accumulator (rollup_qsketch.c): the buckets of a
 * TE_ROLLUP_ACCURACY sketch, merged straight from encoded blobs. */
typedef struct te_qsketch te_qsketch_t;

/* Makes an empty accumulator; NULL on ENOMEM. Free with te_qsketch_free. */
te_qsketch_t *te_qsketch_new(void);

/* Frees q. NULL is a no-op. */
void te_qsketch_free(te_qsketch_t *q);

/* Values added or merged. Cannot fail. */
uint64_t te_qsketch_count(const te_qsketch_t *q);

/* Adds one value (non-finite values are ignored). Returns 0 or TE_ENOMEM. */
int te_qsketch_add(te_qsketch_t *q, double v);

/* Merges a blob made by te_sketch_encode with accuracy TE_ROLLUP_ACCURACY.
 * Returns 0, or TE_EPARSE for another format/accuracy or a bad blob (q is
 * then unusable). */
int te_qsketch_merge_blob(te_qsketch_t *q, const void *blob, size_t len, te_err_t *err);

/* Merges one stored rollup value set: n values, exactly {min, max} when
 * n <= 2, else the sketch blob. Returns 0, TE_EPARSE or TE_ENOMEM. */
int te_qsketch_merge(te_qsketch_t *q, int64_t n, double min, double max, const void *blob,
                     size_t blob_len, te_err_t *err);

/* Merges sketch from into q (defined in rollup_qsketch.c: bucket counts
 * add, so merging partial sketches gives the sketch of all their values).
 * Returns 0 or TE_ENOMEM. */
int te_qsketch_merge_sketch(te_qsketch_t *q, const te_qsketch_t *from);

/* The p-quantile with the raw query's definition (interpolation between
 * the closest ranks), each rank estimated as te_sketch_quantile does (exact
 * at the first and last rank). Returns 0 or TE_ENOTFOUND when empty. */
int te_qsketch_quantile(const te_qsketch_t *q, double p, double *out);

#endif
