/*
 * sql_v4.h - schema step 3 -> 4: rollups (1 min, 1 h) per kind and series,
 * archive marks, and the statements of rollup.c, query.c and retention.c
 * (retention.c builds its per-table deletes from these shapes).
 *
 * THREAD: any (constants only). See sql.h for how migrations run.
 *
 * rollup_1m / rollup_1h: one row per (kind, field, bucket start, series).
 * field '' is the event count row (n = events); every other row is one
 * numeric field: n values, their sum, min and max, and a DDSketch blob
 * (rules/sketch.h, te_sketch_encode) only when n > 2 (with n <= 2 the
 * values are exactly {min, max}). The primary key leads with (kind_id,
 * field, bucket) so the planner reads one field of one kind over a time
 * range as one index range; WITHOUT ROWID keeps the row in the key's b-tree.
 *
 * meta 'rollups': 'ok' when the rollup tables hold every stored event,
 * 'rebuild' when they must be rebuilt from raw events (set by this
 * migration for databases that predate rollups, and by a writer that ran
 * with rollups off); the next read-write open rebuilds them (rollup.c) and
 * readers use raw events meanwhile.
 *
 * archive_marks: per kind, raw events before before_ns were archived and
 * deleted; their contribution stays in the rollups, so an event re-ingested
 * from an archive (ts < before_ns) is stored raw but not rolled up again.
 */
#ifndef TE_STORE_SQL_V4_H
#define TE_STORE_SQL_V4_H

#define TE_SQL_ROLLUP_TABLE(T)                                                       \
    "CREATE TABLE " T "("                                                            \
    "  kind_id INTEGER NOT NULL, field TEXT NOT NULL, bucket INTEGER NOT NULL,"      \
    "  series_id INTEGER NOT NULL, n INTEGER NOT NULL, sum REAL, min REAL, max REAL," \
    "  sketch BLOB, PRIMARY KEY(kind_id, field, bucket, series_id)) WITHOUT ROWID;"

#define TE_SQL_MIGRATION_4                                                           \
    TE_SQL_ROLLUP_TABLE("rollup_1m")                                                 \
    TE_SQL_ROLLUP_TABLE("rollup_1h")                                                 \
    "CREATE TABLE archive_marks(kind_id INTEGER PRIMARY KEY, before_ns INTEGER NOT NULL);" \
    "INSERT OR REPLACE INTO meta(key, value) VALUES('rollups', 'rebuild');"

/* --- rollup.c --- */
#define TE_SQL_ROLLUP_GET(T)                                                         \
    "SELECT n, sum, min, max, sketch FROM " T                                        \
    " WHERE kind_id = ?1 AND field = ?2 AND bucket = ?3 AND series_id = ?4"
#define TE_SQL_ROLLUP_PUT(T)                                                         \
    "INSERT OR REPLACE INTO " T "(kind_id, field, bucket, series_id, n, sum, min, max, sketch)" \
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
#define TE_SQL_ROLLUP_STATE "SELECT value FROM meta WHERE key = 'rollups'"
#define TE_SQL_ROLLUP_SET_STATE "INSERT OR REPLACE INTO meta(key, value) VALUES('rollups', ?1)"
#define TE_SQL_ROLLUP_CLEAR "DELETE FROM rollup_1m; DELETE FROM rollup_1h;"
#define TE_SQL_ROLLUP_BACKFILL_SCAN                                                  \
    "SELECT id, ts_ns, kind_id, series_id, fields FROM events WHERE id > ?1 ORDER BY id LIMIT ?2"
#define TE_SQL_ARCHIVE_MARKS "SELECT kind_id, before_ns FROM archive_marks"
#define TE_SQL_ARCHIVE_MARK_SET                                                      \
    "INSERT INTO archive_marks(kind_id, before_ns) VALUES(?1, ?2)"                   \
    " ON CONFLICT(kind_id) DO UPDATE SET before_ns = max(before_ns, excluded.before_ns)"

/* --- query.c: one field of one kind over [?3, ?4) --- */
#define TE_SQL_ROLLUP_SCAN(T)                                                        \
    "SELECT bucket, series_id, n, sum, min, max, sketch FROM " T                     \
    " WHERE kind_id = ?1 AND field = ?2 AND bucket >= ?3 AND bucket < ?4"

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
