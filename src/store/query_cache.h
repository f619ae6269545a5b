/*
 * query_cache.h - what te_store_query read, kept in memory for the next
 * queries of the same reader (a report's q.query calls).
 *
 * THREAD: one thread at a time per cache, and the cache is used with one
 * te_store_t only (the connection its stamps describe).
 *
 * Why: a report asks several questions of the same kind over the same
 * range (totals, by status, by provider, per day, ...). Each query would
 * read the same rollup_1h rows (one b-tree range per field: ~70,000 series-hours
 * for 30 days of 100 series), the same packed rollup_1m rows and the same
 * raw edge events; reading them through SQLite costs far more than merging
 * them. The cache keeps:
 *   - level 2 (rollup_1h): the per-(step, series) partial aggregates the
 *     planner folds a field's rows into (query_fold.c, fold_1h_field), with one
 *     merged sketch per series for percentiles;
 *   - levels 0 and 1 (raw events, packed minutes): the rows as read, in
 *     order, while small (query_scan.c caps them);
 *   - the planner's event estimates.
 * A later query that needs the same piece merges it into its own
 * accumulators exactly as if it had read it: its answer is bit-for-bit
 * the one te_store_query gives (the fold step is a function of the query,
 * so sums add in the same order; sketches merge the same counts).
 *
 * Consistency: every query stamps the cache with the connection's
 * PRAGMA data_version (commits by other connections) and
 * sqlite3_total_changes64 (its own writes), read inside the query's read
 * transaction; a different stamp empties the cache first. A cached piece
 * is therefore only used while the database is what it was when it was
 * read.
 *
 * Memory: at most max_bytes in all (sketches counted at a flat estimate);
 * a piece that would not fit is not kept (the next query reads again).
 */
#ifndef TE_STORE_QUERY_CACHE_H
#define TE_STORE_QUERY_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rollup.h"
#include "store.h"

typedef struct te_qcache te_qcache_t;

/* Default budget for a report run: the overview report over 30 days of
 * 96 series keeps ~8 MB. */
#define TE_QCACHE_DEFAULT_BYTES (96u << 20)

/* What one merged sketch of an entry is counted as (a few hundred
 * buckets); whoever creates one adds it to the entry's bytes. */
#define TE_QCACHE_SKETCH_BYTES 2048

/* A new, empty cache holding at most max_bytes; NULL when out of memory. */
te_qcache_t *te_qcache_new(size_t max_bytes);

/* Frees the cache and its rows (NULL is fine). */
void te_qcache_free(te_qcache_t *qc);

/* te_store_query that reads through (and fills) cache; cache NULL is
 * te_store_query itself. Same results, same errors. */
int te_store_query_cached(te_store_t *st, const te_query_t *q, te_qcache_t *cache,
                          te_result_t **out, te_err_t *err);

/* ---- used by query.c, query_scan.c and query_fold.c ---- */

/* One row: a = bucket (rollups) or ts_ns (raw); blob = packed minutes
 * (rollup_1m) or fields (raw), kept as read. Level-2 entries hold partial
 * aggregates instead (see te_qcache_entry_t). */
typedef struct te_qcache_row {
    int64_t a, sid, n;
    double sum, min, max;
    size_t off, len;        /* blob bytes in the entry's arena */
} te_qcache_row_t;

/* What one statement run read, keyed by level (0 raw, 1 rollup_1m,
 * 2 rollup_1h), kind, field (level 2; "" = event counts), the bound range
 * [lo, hi) and every (level 2: the fold step, see query_fold.c; 0 otherwise).
 * Levels 0 and 1 keep the rows as read, in order. Level 2 keeps one
 * partial aggregate per (bucket of the step, series), in order of first
 * row, and when sketch one merged sketch per series: sk[i] at the series'
 * first partial i, NULL elsewhere (enough for queries without every, the
 * only ones that fold a field with percentiles). */
typedef struct te_qcache_entry {
    int level;
    int64_t kid, lo, hi, every;
    char *field;
    bool sketch;
    te_qcache_row_t *rows;
    size_t nrows, cap_rows;
    te_qsketch_t **sk;      /* cap_rows entries when sketch, else NULL */
    unsigned char *arena;
    size_t alen, acap;
    size_t bytes;           /* allocated (sketches counted as above), for the budget */
    struct te_qcache_entry *next;
} te_qcache_entry_t;

/* Empties the cache when stamp differs from the last one. */
void te_qcache_stamp(te_qcache_t *qc, int64_t data_version, int64_t changes);

/* The entry for the key, with sketches when need_sketch (qc NULL:
 * none). */
const te_qcache_entry_t *te_qcache_find(const te_qcache_t *qc, int level, int64_t kid,
                                        const char *field, int64_t lo, int64_t hi, int64_t every,
                                        bool need_sketch);

/* Bytes an entry may still grow to and be kept (0 for qc NULL). */
size_t te_qcache_room(const te_qcache_t *qc);

/* A new, empty entry owned by the caller; NULL when out of memory. */
te_qcache_entry_t *te_qcache_entry_new(int level, int64_t kid, const char *field, int64_t lo,
                                       int64_t hi, int64_t every, bool sketch);

/* Appends row (and a copy of blob) to e while e stays within max_bytes.
 * Returns the new row, or NULL (out of memory or over max_bytes; e is
 * unchanged). */
te_qcache_row_t *te_qcache_entry_add(te_qcache_entry_t *e, const te_qcache_row_t *row,
                                     const void *blob, size_t blob_len, size_t max_bytes);

/* Frees e and its rows and sketches (NULL is fine). */
void te_qcache_entry_free(te_qcache_entry_t *e);

/* Keeps e (complete) when the budget allows, replacing a same-key entry
 * without sketches: true, the cache owns e now. False (qc NULL, no room):
 * the caller still owns e. */
bool te_qcache_keep(te_qcache_t *qc, te_qcache_entry_t *e);

/* Memo of the planner's event estimate for (kid, lo, hi). */
bool te_qcache_estimate_get(const te_qcache_t *qc, int64_t kid, int64_t lo, int64_t hi,
                            int64_t *est);
void te_qcache_estimate_put(te_qcache_t *qc, int64_t kid, int64_t lo, int64_t hi, int64_t est);

#endif
