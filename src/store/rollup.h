/*
 * rollup.h - 1-minute and 1-hour rollups maintained by the write path, and
 * the helpers the query planner shares with it (inside src/store only).
 *
 * THREAD: as store.h: one thread at a time per te_store_t. The write-path
 * functions run on the thread that owns the read-write store (the writer).
 *
 * Per (resolution, series, bucket, field) a rollup row holds n, sum, min,
 * max and, when n > 2, a DDSketch (rules/sketch.h, 1% relative error); the
 * field '' row counts events. te_store_insert feeds every newly stored event
 * into in-memory accumulators (te_rollup_add: hash lookups, no SQL); commit
 * merges each touched (series, bucket, field) into its row once
 * (te_rollup_flush: read, merge, write), then COMMIT makes raw rows and
 * rollups visible together. A rollback drops the accumulators. Schema and
 * the rebuild flag: sql_v4.h.
 */
#ifndef TE_STORE_ROLLUP_H
#define TE_STORE_ROLLUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"
#include "../rules/sketch.h"
#include "store.h"

#define TE_ROLLUP_1M_NS INT64_C(60000000000)
#define TE_ROLLUP_1H_NS INT64_C(3600000000000)
/* Relative accuracy of every rollup sketch (rules/sketch.h). */
#define TE_ROLLUP_ACCURACY 0.01

/* Bucket start of ts for a resolution (floor to a multiple of res_ns since
 * the epoch, also for negative ts). Cannot fail. */
int64_t te_rollup_bucket(int64_t ts, int64_t res_ns);

/* Prepares the write-path state of a read-write store and, when meta
 * 'rollups' is 'rebuild', rebuilds both rollup tables from the raw events
 * (one transaction). Called by te_store_writer_prepare. Returns 0 or TE_E*. */
int te_rollup_open(te_store_t *st, te_err_t *err);

/* Frees the write-path state. NULL-safe; cannot fail. */
void te_rollup_close(te_store_t *st);

/* Reads the archive marks for the transaction that just began. Returns 0 or
 * TE_ESQLITE. */
int te_rollup_begin(te_store_t *st, te_err_t *err);

/* Adds one newly stored event (kind kid, series sid) to the accumulators.
 * An event older than its kind's archive mark is skipped (its contribution
 * is already rolled up). Returns 0 or TE_ENOMEM. */
int te_rollup_add(te_store_t *st, int64_t kid, int64_t sid, int64_t ts,
                  const unsigned char *fields, size_t fields_len, te_err_t *err);

/* Merges the accumulators into rollup_1m / rollup_1h inside the current
 * transaction and empties them. Returns 0 or TE_E*. */
int te_rollup_flush(te_store_t *st, te_err_t *err);

/* Drops the accumulators (rollback). Cannot fail. */
void te_rollup_discard(te_store_t *st);

/* Sets *ok to whether the rollup tables are complete (meta 'rollups' is
 * 'ok'); readers call it before planning. Returns 0 or TE_ESQLITE. */
int te_rollup_ready(te_store_t *st, bool *ok, te_err_t *err);

/* Merges one stored rollup value set (n, min, max, sketch blob or NULL when
 * n <= 2) into the sketch dst. Returns 0, TE_EPARSE for a bad blob, or
 * TE_ENOMEM. */
int te_rollup_sketch_merge(te_sketch_t *dst, int64_t n, double min, double max,
                           const void *blob, size_t blob_len, te_err_t *err);

/* The p-quantile (p in [0, 1]) with the raw query's definition (linear
 * interpolation between the closest ranks, rank = p * (n - 1)), estimated
 * from a sketch: each of the two ranks is within the sketch's relative
 * error, hence so is the interpolation for same-sign values. Returns 0 or
 * TE_ENOTFOUND when the sketch is empty. */
int te_rollup_quantile(const te_sketch_t *sk, double p, double *out);

#endif
