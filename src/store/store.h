/*
 * store.h - the storage interface: SQLite (one file, WAL) by default.
 *
 * THREAD: a te_store_t is used by one thread at a time. The writer thread
 * owns the one read-write store of a process; readers (API, CLI) open their
 * own read-only stores. A server backend (PostgreSQL, ClickHouse) would
 * implement this same header.
 *
 * Schema (migrated with PRAGMA user_version, see store/sql.h):
 *   kinds(id, name)               small integer per kind
 *   series(id, kind_id, tags)     kind + canonical tag set (tags_json)
 *   events(id, ts_ns, kind_id, series_id, source, eid, trace_id, span_id,
 *          parent_span_id, correlation_id, fields BLOB, body TEXT)
 *     index (kind_id, ts_ns); unique (source, eid) where eid not null
 *   rollup_1m(kind_id, bucket, n, data): series' hours of minutes packed
 *          per (kind, hour); rollup_1h(kind_id, field, bucket, chunk, n, stats,
 *          sketches): an hour per field and chunk of 4096 series; both
 *          maintained at commit (store/rollup.h, rollup_1h.h, sql_v4/6/7.h)
 *   archive_marks(kind_id, before_ns): raw events before were archived
 *   alerts, alert_history, outbox: for later issues.
 */
#ifndef TE_STORE_STORE_H
#define TE_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"
#include "../core/event.h"
#include "../core/result.h"

typedef struct te_store te_store_t;

typedef enum { TE_DURABILITY_PROCESS = 0, TE_DURABILITY_POWER = 1 } te_durability_t;

typedef struct te_store_opts {
    const char *path;            /* database file; parent folder is created if missing */
    te_durability_t durability;  /* process: synchronous=NORMAL, power: FULL */
    bool readonly;               /* open an existing database read-only (WAL reader) */
    int busy_timeout_ms;         /* 0 means 5000 */
} te_store_opts_t;

/* Opens (and for read-write, creates and migrates) the database.
 * On success the caller owns *out (te_store_close); on failure *out is
 * untouched and err says why, e.g. "store: cannot open data/telemetry.db:
 * unable to open database file (is --data writable?)". */
int te_store_open(const te_store_opts_t *opts, te_store_t **out, te_err_t *err);

/* Closes the store. NULL is a no-op. */
void te_store_close(te_store_t *st);

/* --- writing (the writer thread) --- */

/* Starts a transaction. */
int te_store_begin(te_store_t *st, te_err_t *err);

/* Inserts one event inside the current transaction. Sets *stored to false
 * when (source, id) was already stored (idempotent re-send), true otherwise.
 * Does not take ev. */
int te_store_insert(te_store_t *st, const te_event_t *ev, bool *stored, te_err_t *err);

/* Commits the current transaction. On failure the transaction is rolled
 * back and nothing of it is stored. */
int te_store_commit(te_store_t *st, te_err_t *err);

/* Rolls back the current transaction. Cannot fail. */
void te_store_rollback(te_store_t *st);

/* --- reading --- */

/* A tag filter: events whose tag `key` equals one of values. Filters on
 * different keys AND together; repeated keys are merged into one OR list. */
typedef struct te_tag_filter {
    const char *key;
    const char *const *values;
    size_t nvalues;
} te_tag_filter_t;

typedef struct te_events_query {
    const char *kind;            /* NULL: every kind */
    int64_t since_ns;            /* inclusive */
    int64_t until_ns;            /* exclusive */
    const te_tag_filter_t *where;
    size_t nwhere;
    size_t limit;                /* 1..1000 */
    const char *cursor;          /* NULL or a cursor returned by a previous page */
} te_events_query_t;

/* Called per event, newest first (by event time). The event is borrowed for
 * the call. Return non-zero to stop early. */
typedef int (*te_event_cb)(const te_event_t *ev, void *ud);

/* Lists events newest first. When more remain, writes an opaque cursor into
 * next (NUL-terminated; empty when none). next_cap >= 64. */
int te_store_events(te_store_t *st, const te_events_query_t *q, te_event_cb cb, void *ud,
                    char *next, size_t next_cap, te_err_t *err);

typedef enum {
    TE_AGG_COUNT = 0, TE_AGG_SUM, TE_AGG_AVG, TE_AGG_MIN, TE_AGG_MAX,
    TE_AGG_P50, TE_AGG_P95, TE_AGG_P99, TE_AGG_RATE, TE_AGG_DISTINCT
} te_agg_op_t;

typedef struct te_agg {
    te_agg_op_t op;
    char *arg;   /* field (sum..p99) or tag (distinct); NULL for count/rate */
    char *name;  /* the aggregate spelled exactly as requested: "sum:cost_usd" */
} te_agg_t;

/* Parses "count,sum:cost_usd,p95:latency_ms,rate,distinct:model" into a
 * malloc'd array (te_aggs_free). Errors name the bad item. */
int te_aggs_parse(const char *spec, te_agg_t **out, size_t *n, te_err_t *err);
void te_aggs_free(te_agg_t *aggs, size_t n);

/* How te_store_query reads (see query.c): AUTO picks; RAW reads raw events
 * only; ROLLUPS uses rollups wherever they can answer, even for percentiles
 * over few events (tests compare the two). */
typedef enum { TE_PLAN_AUTO = 0, TE_PLAN_RAW, TE_PLAN_ROLLUPS } te_query_plan_t;

typedef struct te_query {
    const char *kind;            /* required */
    int64_t since_ns, until_ns;
    const te_tag_filter_t *where;
    size_t nwhere;
    const char *const *group_by; /* tag names */
    size_t ngroup;
    const te_agg_t *aggs;        /* at least one; count when none given by the user */
    size_t naggs;
    int64_t every_ns;            /* 0: no time buckets */
    te_query_plan_t plan;        /* TE_PLAN_AUTO unless testing */
} te_query_t;

/* Runs an aggregate query. Columns: "time" first when every_ns > 0, then the
 * group tags, then one per aggregate named as requested. Rows are ordered by
 * time then group values. rate = count per second over the bucket (or the
 * query range). The planner (query.c) reads 1-hour / 1-minute rollups for
 * the aligned part of the range when every aggregate allows it (not
 * distinct) and raw events for the edges: count, sum, min, max and avg are
 * then exact (sums up to floating-point summation order) and percentiles
 * are within 1% relative error; from raw events alone percentiles are exact
 * (AUTO reads raw events for percentiles over at most 100,000 events). */
int te_store_query(te_store_t *st, const te_query_t *q, te_result_t **out, te_err_t *err);

typedef struct te_store_stats {
    int64_t events;
    int64_t series;
    int64_t kinds;
    int64_t oldest_ts_ns, newest_ts_ns;
    int64_t file_bytes;          /* main db file */
    int64_t wal_bytes;
    int schema_version;
} te_store_stats_t;

/* Fills stats (COUNT(*) can take a moment on big databases). */
int te_store_stats(te_store_t *st, te_store_stats_t *out, te_err_t *err);

/* Per-kind event counts as a result table (columns kind, events, series). */
int te_store_kind_stats(te_store_t *st, te_result_t **out, te_err_t *err);

/* PRAGMA integrity_check (quick=false) or quick_check; returns 0 when "ok",
 * TE_ESQLITE with the first problems in err otherwise. */
int te_store_check(te_store_t *st, bool quick, te_err_t *err);

/* Copies the database into dest_path with the SQLite online backup API
 * (works while another process writes). progress may be NULL; it gets
 * (remaining, total) pages. */
int te_store_backup(te_store_t *st, const char *dest_path,
                    void (*progress)(int remaining, int total, void *ud), void *ud,
                    te_err_t *err);

/* Writes the rollup rows of every hour that is over and that rollup
 * maintenance still holds in memory, in a transaction of its own: with
 * the builder on its own thread (rollup.h), a commit writes the hours the
 * thread has ready and leaves the others to a later commit; this waits
 * for them. For the end of a load (`ingest`) and a clean shutdown: what is
 * not written then is rolled up from the raw events at the next open.
 * Queries answer the same either way (they read raw events past the
 * rollups). Returns 0, TE_EINVAL (read-only store, or inside a
 * transaction) or TE_E*. */
int te_store_rollup_sync(te_store_t *st, te_err_t *err);

/* Turns rollup maintenance on this read-write store on or off (default
 * on). Off is for benchmarks: it marks the rollups incomplete, so readers
 * answer from raw events until the next read-write open rebuilds them from
 * the raw events. Outside a transaction. Returns 0 or TE_EINVAL/TE_ESQLITE. */
int te_store_set_rollups(te_store_t *st, bool on, te_err_t *err);

/* --- retention and archive (store/retention.c) --- */

/* Called after each archived chunk: kind, events archived so far in this
 * call, and the day file (NULL when nothing was written yet). */
typedef void (*te_archive_progress_cb)(const char *kind, int64_t events, const char *file,
                                       void *ud);

typedef struct te_archive_opts {
    const char *kind;            /* NULL: every kind */
    int64_t before_ns;           /* raw events with ts < before_ns go */
    const char *dir;             /* archive folder (created); NULL: delete without archiving */
    size_t chunk;                /* events per delete transaction; 0: 5000 */
    te_archive_progress_cb progress;
    void *ud;
    const int *stop;             /* NULL, or non-zero (read atomically) to stop between chunks */
} te_archive_opts_t;

typedef struct te_archive_stats {
    int64_t events;              /* archived and deleted */
    int64_t files;               /* day files written or appended to */
} te_archive_stats_t;

/* Archives raw events older than before_ns to gzip NDJSON (one file per
 * kind and UTC day: DIR/KIND/YYYY-MM-DD.ndjson.gz, appended as further gzip
 * members when the file exists; events in the canonical JSON of the API, so
 * `ingest FILE.ndjson.gz` re-ingests them), then deletes them in chunks of
 * opts->chunk events, one short transaction per chunk; each file is fsynced
 * before its events are deleted. Sets the kind's archive mark (re-ingested
 * archive events are not rolled up twice). Rollups are kept. Read-write
 * store, outside a transaction. Returns 0 or TE_E* (what was deleted stays
 * archived). */
int te_store_archive(te_store_t *st, const te_archive_opts_t *opts, te_archive_stats_t *out,
                     te_err_t *err);

/* Deletes rollup rows of one resolution (res_ns TE_ROLLUP_1M_NS-style: 60e9
 * or 3600e9) whose bucket is before before_ns, for kind (NULL: every kind),
 * in bounded chunks. *deleted gets the row count (may be NULL). */
int te_store_rollup_expire(te_store_t *st, const char *kind, int64_t res_ns, int64_t before_ns,
                           int64_t *deleted, te_err_t *err);

/* Path of the database file. */
const char *te_store_path(const te_store_t *st);

/* Page size of the database file in bytes: 16384 for a database this
 * build created, what it was made with otherwise (4096 before). */
int te_store_page_size(const te_store_t *st);

/* --- WAL checkpoints off the commit path --- */

/* Turns SQLite's automatic checkpoint off on this (write) connection and
 * calls on_wal(ud, frames) after every commit with the number of frames in
 * the WAL, so that another thread can checkpoint without stalling commits
 * (te_store_checkpoint on its own connection). Cannot fail on an open
 * read-write store. */
int te_store_wal_notify(te_store_t *st, void (*on_wal)(void *ud, int frames), void *ud,
                        te_err_t *err);

/* Runs a PASSIVE checkpoint (never blocks writers or readers; copies what
 * it can). Returns 0 or TE_ESQLITE. */
int te_store_checkpoint(te_store_t *st, te_err_t *err);

#endif
