/*
 * sql_v4.h - schema step 3 -> 4: rollups (1 min, 1 h) per kind and series,
 * their per-kind watermarks and archive marks, and the statements of
 * rollup*.c, query_scan.c / query_fold.c and retention.c (retention.c builds its per-table
 * deletes from these shapes).
 *
 * THREAD: any (constants only). See sql.h for how migrations run.
 *
 * rollup_1h (as created here; schema 6 packs it per chunk of series,
 * sql_v6.h): one row per (kind, field, hour, series). field '' is the
 * event count row (n = events); every other row is one numeric field: n
 * values, their sum, min and max, and a DDSketch blob (rules/sketch.h,
 * te_sketch_encode) only when n > 2 (with n <= 2 the values are exactly
 * {min, max}). The primary key leads with (kind_id, field, bucket) so the
 * planner reads one field of one kind over a time range as one index
 * range; WITHOUT ROWID keeps the row in the key's b-tree.
 *
 * rollup_1m (as created here; schema 7 packs several series a row,
 * sql_v7.h): one row per (kind, hour, series) whose blob packs that hour's
 * minutes (format in rollup_row.c: per minute the event count and, per field,
 * the values when n <= 8, else sum, min, max and a sketch); n = events of
 * the hour. Minutes of sparse series would otherwise cost a row each. A
 * rowid table (with a unique index) rather than WITHOUT ROWID: its rows are
 * kilobytes, and an index b-tree spills anything over ~1 KB of a 4 KB page
 * into overflow pages.
 *
 * rollup_state, one row per kind:
 *   w1m, w1h         watermarks: every stored event of the kind with
 *                    ts < w is in rollup_1m / rollup_1h, none with ts >= w
 *                    is (a kind without a row: nothing is rolled up yet);
 *   archived_before  raw events before it were archived and deleted; their
 *                    contribution stays in the rollups, so an event
 *                    re-ingested from an archive (ts < archived_before) is
 *                    stored raw but not rolled up again.
 * A database that predates rollups gets no rows here: the first read-write
 * open rolls its raw events up, a day per transaction (rollup.c).
 */
#ifndef TE_STORE_SQL_V4_H
#define TE_STORE_SQL_V4_H

#define TE_SQL_MIGRATION_4                                                           \
    "CREATE TABLE rollup_1m("                                                        \
    "  id INTEGER PRIMARY KEY, kind_id INTEGER NOT NULL, bucket INTEGER NOT NULL,"   \
    "  series_id INTEGER NOT NULL, n INTEGER NOT NULL, data BLOB NOT NULL,"          \
    "  UNIQUE(kind_id, bucket, series_id));"                                         \
    "CREATE TABLE rollup_1h("                                                        \
    "  kind_id INTEGER NOT NULL, field TEXT NOT NULL, bucket INTEGER NOT NULL,"      \
    "  series_id INTEGER NOT NULL, n INTEGER NOT NULL, sum REAL, min REAL, max REAL," \
    "  sketch BLOB, PRIMARY KEY(kind_id, field, bucket, series_id)) WITHOUT ROWID;"  \
    "CREATE TABLE rollup_state(kind_id INTEGER PRIMARY KEY, w1m INTEGER NOT NULL,"   \
    " w1h INTEGER NOT NULL, archived_before INTEGER NOT NULL);"

/* --- rollup.c --- */
#define TE_SQL_ROLLUP_STATE_ALL "SELECT kind_id, w1m, w1h, archived_before FROM rollup_state"
#define TE_SQL_ROLLUP_STATE_OF                                                       \
    "SELECT w1m, w1h FROM rollup_state WHERE kind_id = ?1"
/* ?4 is INT64_MIN: a new row gets no archive mark */
#define TE_SQL_ROLLUP_SET_W                                                          \
    "INSERT INTO rollup_state(kind_id, w1m, w1h, archived_before) VALUES(?1, ?2, ?3, ?4)" \
    " ON CONFLICT(kind_id) DO UPDATE SET w1m = max(w1m, excluded.w1m),"              \
    " w1h = max(w1h, excluded.w1h)"
/* ?2 = ?3 = INT64_MIN for a new row */
#define TE_SQL_ARCHIVE_MARK_SET                                                      \
    "INSERT INTO rollup_state(kind_id, w1m, w1h, archived_before) VALUES(?1, ?3, ?3, ?2)" \
    " ON CONFLICT(kind_id) DO UPDATE SET archived_before ="                          \
    " max(archived_before, excluded.archived_before)"
/* raw events of a kind in [?2, ?3), for rolling them up */
#define TE_SQL_ROLLUP_RAW                                                            \
    "SELECT ts_ns, series_id, fields FROM events"                                    \
    " WHERE kind_id = ?1 AND ts_ns >= ?2 AND ts_ns < ?3 ORDER BY ts_ns"
/* ids are the rowid, in the index: a covering count */
#define TE_SQL_ROLLUP_RAW_SUM                                                        \
    "SELECT count(*), sum(id) FROM events"                                           \
    " WHERE kind_id = ?1 AND ts_ns >= ?2 AND ts_ns < ?3"
/* changes when another connection commits (https://sqlite.org/pragma.html#pragma_data_version) */
#define TE_SQL_DATA_VERSION "PRAGMA data_version"
#define TE_SQL_KIND_TS_RANGE                                                         \
    "SELECT min(ts_ns), max(ts_ns) FROM events WHERE kind_id = ?1"

/* events of a kind in whole hours [?2, ?3) (planner's cost estimate) */
#define TE_SQL_ROLLUP_ESTIMATE                                                       \
    "SELECT sum(n) FROM rollup_1h WHERE kind_id = ?1 AND field = '' AND bucket >= ?2" \
    " AND bucket < ?3"

/* --- retention.c --- */
#define TE_SQL_RET_OLDEST "SELECT min(ts_ns) FROM events WHERE kind_id = ?1"
#define TE_SQL_RET_READ                                                              \
    "SELECT id, ts_ns, series_id, source, eid, trace_id, span_id, parent_span_id,"   \
    " correlation_id, fields, body FROM events"                                      \
    " WHERE kind_id = ?1 AND ts_ns >= ?2 AND ts_ns < ?3 ORDER BY ts_ns, id"

#endif
