/*
 * sql_v6.h - schema step 5 -> 6: 1-hour rollups packed per chunk of
 * series (format and reasons in rollup_1h.h), and the statements that
 * read and write them.
 *
 * THREAD: any (constants only). See sql.h for how migrations run.
 *
 * rollup_1h: one row per (kind, field, hour, chunk) where chunk = series
 * id >> 12; n is the sum of the entries' n (events for field '', values
 * otherwise), so the planner's estimate still sums one column. stats
 * comes before sketches: a read of sums and counts stops before the
 * sketch bytes. A rowid table with a unique index, as rollup_1m: rows are
 * kilobytes. The step renames the old table; db.c then calls
 * te_rollup_1h_convert, which rewrites its rows and drops it, in the same
 * transaction.
 */
#ifndef TE_STORE_SQL_V6_H
#define TE_STORE_SQL_V6_H

#define TE_SQL_MIGRATION_6                                                              \
    "ALTER TABLE rollup_1h RENAME TO rollup_1h_v5;"                                     \
    "CREATE TABLE rollup_1h("                                                           \
    "  id INTEGER PRIMARY KEY, kind_id INTEGER NOT NULL, field TEXT NOT NULL,"          \
    "  bucket INTEGER NOT NULL, chunk INTEGER NOT NULL, n INTEGER NOT NULL,"            \
    "  stats BLOB NOT NULL, sketches BLOB, UNIQUE(kind_id, field, bucket, chunk));"

/* --- rollup_1h.c --- */
#define TE_SQL_ROLLUP_1H_INS                                                            \
    "INSERT INTO rollup_1h(kind_id, field, bucket, chunk, n, stats, sketches)"          \
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"                                               \
    " ON CONFLICT(kind_id, field, bucket, chunk) DO NOTHING"
#define TE_SQL_ROLLUP_1H_GET                                                            \
    "SELECT id, stats, sketches FROM rollup_1h"                                         \
    " WHERE kind_id = ?1 AND field = ?2 AND bucket = ?3 AND chunk = ?4"
#define TE_SQL_ROLLUP_1H_UPD "UPDATE rollup_1h SET n = ?2, stats = ?3, sketches = ?4 WHERE id = ?1"
/* the schema-5 rows in key order: chunks come out whole, sids ascending */
#define TE_SQL_ROLLUP_1H_V5_READ                                                        \
    "SELECT kind_id, field, bucket, series_id, n, sum, min, max, sketch FROM rollup_1h_v5" \
    " ORDER BY kind_id, field, bucket, series_id"
#define TE_SQL_ROLLUP_1H_V5_DROP "DROP TABLE rollup_1h_v5"

/* --- query_fold.c: one field of one kind over [?3, ?4) --- */
#define TE_SQL_ROLLUP_SCAN                                                              \
    "SELECT bucket, chunk, stats, sketches FROM rollup_1h"                              \
    " WHERE kind_id = ?1 AND field = ?2 AND bucket >= ?3 AND bucket < ?4"
#define TE_SQL_ROLLUP_SCAN_NOSK                                                         \
    "SELECT bucket, chunk, stats FROM rollup_1h"                                        \
    " WHERE kind_id = ?1 AND field = ?2 AND bucket >= ?3 AND bucket < ?4"

#endif
