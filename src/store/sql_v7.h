/*
 * sql_v7.h - schema step 6 -> 7: 1-minute rollups packed per (kind, hour)
 * across series, and the statements that read and write them.
 *
 * THREAD: any (constants only). See sql.h for how migrations run.
 *
 * rollup_1m: rows of (kind, hour) packing the packed hour of one or more
 * series (format in rollup_row.c, "1-minute pack rows"); n is the events
 * of its entries. No unique key: a series' hour may come in several rows
 * (an hour written in parts, late events), which readers add up like any
 * other partial aggregates. One row per series and hour cost an SQLite
 * insert each: with series active once or twice an hour (thousands of
 * runs, hosts, selectors), as many inserts as events. The step renames
 * the old table; db.c then calls te_rollup_1m_convert, which packs its
 * rows and drops it, in the same transaction.
 */
#ifndef TE_STORE_SQL_V7_H
#define TE_STORE_SQL_V7_H

#define TE_SQL_MIGRATION_7                                                              \
    "ALTER TABLE rollup_1m RENAME TO rollup_1m_v6;"                                     \
    "CREATE TABLE rollup_1m("                                                           \
    "  id INTEGER PRIMARY KEY, kind_id INTEGER NOT NULL, bucket INTEGER NOT NULL,"      \
    "  n INTEGER NOT NULL, data BLOB NOT NULL);"                                        \
    "CREATE INDEX rollup_1m_kind_bucket ON rollup_1m(kind_id, bucket);"

#define TE_SQL_ROLLUP_1M_INS                                                            \
    "INSERT INTO rollup_1m(kind_id, bucket, n, data) VALUES(?1, ?2, ?3, ?4)"
/* the schema-6 rows (one per series and hour) in key order */
#define TE_SQL_ROLLUP_1M_V6_READ                                                        \
    "SELECT kind_id, bucket, series_id, n, data FROM rollup_1m_v6"                      \
    " ORDER BY kind_id, bucket, series_id"
#define TE_SQL_ROLLUP_1M_V6_DROP "DROP TABLE rollup_1m_v6"

/* --- query_scan.c: 1-minute rows of hours in [?2, ?3) --- */
#define TE_SQL_ROLLUP_1M_SCAN                                                           \
    "SELECT bucket, data FROM rollup_1m WHERE kind_id = ?1 AND bucket >= ?2 AND bucket < ?3"

#endif
