/*
 * sql.h - every SQL text of the SQLite store: the schema, its migrations and
 * the statements that db.c, events.c and query*.c prepare.
 *
 * THREAD: any (constants only).
 *
 * The one idea: the raw event row is lean and the hot columns are integers.
 * A kind becomes a small integer (kinds), a kind plus its canonical tag set
 * becomes a series id (series), and an event row holds ts_ns, kind_id,
 * series_id, the optional ids, the fields blob exactly as te_event_t carries
 * it, and body only when the event had one. Tags are never repeated per row:
 * they live once in series.tags (the canonical tags_json text).
 *
 *   events_kind_ts  (kind_id, ts_ns) plus the implicit rowid: serves both the
 *                   query scan (kind + range) and the newest-first listing
 *                   (ORDER BY ts_ns DESC, id DESC walks the index backwards,
 *                   no sort).
 *   events_idem     UNIQUE (ifnull(source,''), eid) WHERE eid IS NOT NULL:
 *                   the idempotency key of SPEC section 2. The expression
 *                   makes an event without a source collide with another
 *                   without a source (a plain UNIQUE would treat NULLs as
 *                   distinct) while keeping NULL in the source column. Only
 *                   events with a client id pay for this index. The key lives
 *                   as long as the row (SPEC promises at least 24 h;
 *                   retention deletes the row and with it the key).
 *
 * Migrations: te_sql_migrations[i] moves a database from user_version i to
 * i + 1, inside one transaction together with the PRAGMA user_version bump.
 * Later issues append steps here (rollup_1m/rollup_1h keyed by series_id and
 * bucket, alerts, alert_history, outbox); a step is never edited once shipped.
 */
#ifndef TE_STORE_SQL_H
#define TE_STORE_SQL_H

#include <stddef.h>

/* Schema version this build writes; user_version above it is refused. */
#include "store/sql_v3.h" /* alert lifecycle: acks, silences, outbox */
#include "store/sql_v4.h" /* rollups */
#include "store/sql_v5.h" /* detector state, recommendations */
#include "store/sql_v6.h" /* 1-hour rollups per chunk of series */
#include "store/sql_v7.h" /* 1-minute rollups packed across series */

#define TE_SQL_SCHEMA_VERSION 7

static const char *const te_sql_migrations[TE_SQL_SCHEMA_VERSION] = {
    /* 0 -> 1: the spine */
    "CREATE TABLE meta("
    "  key TEXT PRIMARY KEY NOT NULL,"
    "  value TEXT);"
    "CREATE TABLE kinds("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT UNIQUE NOT NULL);"
    "CREATE TABLE series("
    "  id INTEGER PRIMARY KEY,"
    "  kind_id INTEGER NOT NULL,"
    "  tags TEXT NOT NULL,"
    "  first_ns INTEGER,"
    "  UNIQUE(kind_id, tags));"
    "CREATE TABLE events("
    "  id INTEGER PRIMARY KEY,"
    "  ts_ns INTEGER NOT NULL,"
    "  kind_id INTEGER NOT NULL,"
    "  series_id INTEGER NOT NULL,"
    "  source TEXT,"
    "  eid TEXT,"
    "  trace_id TEXT,"
    "  span_id TEXT,"
    "  parent_span_id TEXT,"
    "  correlation_id TEXT,"
    "  fields BLOB,"
    "  body TEXT);"
    "CREATE INDEX events_kind_ts ON events(kind_id, ts_ns);"
    "CREATE UNIQUE INDEX events_idem ON events(ifnull(source, ''), eid) WHERE eid IS NOT NULL;"
    "INSERT INTO meta(key, value) VALUES('schema_created', strftime('%Y-%m-%dT%H:%M:%SZ','now'));",
    /* 1 -> 2: alert instances (one row per episode) and their transitions */
    "CREATE TABLE alerts("
    "  id TEXT PRIMARY KEY NOT NULL, rule TEXT NOT NULL, fingerprint TEXT NOT NULL,"
    "  state TEXT NOT NULL, severity TEXT NOT NULL, group_json TEXT NOT NULL,"
    "  labels_json TEXT NOT NULL, notify_json TEXT NOT NULL, value REAL, summary TEXT,"
    "  reason TEXT, active_at_ns INTEGER NOT NULL, starts_at_ns INTEGER NOT NULL,"
    "  ends_at_ns INTEGER NOT NULL, updated_ns INTEGER NOT NULL,"
    "  last_notified_ns INTEGER NOT NULL, false_since_ns INTEGER NOT NULL);"
    "CREATE INDEX alerts_active ON alerts(state, fingerprint);"
    "CREATE TABLE alert_history("
    "  seq INTEGER PRIMARY KEY, alert_id TEXT NOT NULL, rule TEXT NOT NULL,"
    "  fingerprint TEXT NOT NULL, transition TEXT NOT NULL, state TEXT NOT NULL,"
    "  severity TEXT NOT NULL, value REAL, summary TEXT, reason TEXT,"
    "  at_ns INTEGER NOT NULL);"
    "CREATE INDEX alert_history_alert ON alert_history(alert_id, seq);",
    /* 2 -> 3 */
    TE_SQL_MIGRATION_3,
    /* 3 -> 4 */
    TE_SQL_MIGRATION_4,
    /* 4 -> 5 */
    TE_SQL_MIGRATION_5,
    /* 5 -> 6: 1-hour rollups per chunk of series (then te_rollup_1h_convert) */
    TE_SQL_MIGRATION_6,
    /* 6 -> 7: 1-minute rollups packed across series (then te_rollup_1m_convert) */
    TE_SQL_MIGRATION_7,
};

/* --- db.c --- */
#define TE_SQL_USER_VERSION "PRAGMA user_version"
#define TE_SQL_COUNT_EVENTS "SELECT count(*) FROM events"
#define TE_SQL_COUNT_SERIES "SELECT count(*) FROM series"
#define TE_SQL_COUNT_KINDS "SELECT count(*) FROM kinds"
/* min/max per kind through events_kind_ts: no full scan */
#define TE_SQL_TS_RANGE                                                              \
    "SELECT min(lo), max(hi) FROM (SELECT"                                           \
    " (SELECT min(ts_ns) FROM events WHERE kind_id = k.id) AS lo,"                   \
    " (SELECT max(ts_ns) FROM events WHERE kind_id = k.id) AS hi FROM kinds k)"
#define TE_SQL_KIND_STATS                                                            \
    "SELECT k.name,"                                                                 \
    " (SELECT count(*) FROM events e WHERE e.kind_id = k.id),"                       \
    " (SELECT count(*) FROM series s WHERE s.kind_id = k.id)"                        \
    " FROM kinds k ORDER BY k.name"
/* starts a read transaction so that a backup copies one snapshot */
#define TE_SQL_READ_SNAPSHOT "SELECT count(*) FROM sqlite_schema"

/* --- events.c: write path --- */
#define TE_SQL_BEGIN "BEGIN IMMEDIATE"
#define TE_SQL_COMMIT "COMMIT"
#define TE_SQL_ROLLBACK "ROLLBACK"
#define TE_SQL_KIND_GET "SELECT id FROM kinds WHERE name = ?1"
#define TE_SQL_KIND_ADD "INSERT INTO kinds(name) VALUES(?1)"
#define TE_SQL_SERIES_GET "SELECT id FROM series WHERE kind_id = ?1 AND tags = ?2"
#define TE_SQL_SERIES_ADD "INSERT INTO series(kind_id, tags, first_ns) VALUES(?1, ?2, ?3)"
#define TE_SQL_EVENT_ADD                                                             \
    "INSERT OR IGNORE INTO events(ts_ns, kind_id, series_id, source, eid, trace_id," \
    " span_id, parent_span_id, correlation_id, fields, body)"                        \
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"

/* --- events.c / query*.c: read path --- */
#define TE_SQL_KIND_NAME "SELECT name FROM kinds WHERE id = ?1"
#define TE_SQL_KINDS_ALL "SELECT id, name FROM kinds ORDER BY id"
#define TE_SQL_SERIES_TAGS "SELECT tags FROM series WHERE id = ?1"
#define TE_SQL_SERIES_OF_KIND "SELECT id, tags FROM series WHERE kind_id = ?1"
/* newest first inside one kind; ?3 = min(until - 1, cursor ts), and the
 * (ts, id) < (cursor ts, cursor id) tie-break is ?4/?5 (INT64_MAX: none) */
#define TE_SQL_EVENTS_PAGE                                                           \
    "SELECT id, ts_ns, series_id, source, eid, trace_id, span_id, parent_span_id,"   \
    " correlation_id, fields, body FROM events"                                      \
    " WHERE kind_id = ?1 AND ts_ns >= ?2 AND ts_ns <= ?3 AND (ts_ns < ?4 OR id < ?5)" \
    " ORDER BY ts_ns DESC, id DESC"
#define TE_SQL_QUERY_SCAN                                                            \
    "SELECT ts_ns, series_id, fields FROM events"                                    \
    " WHERE kind_id = ?1 AND ts_ns >= ?2 AND ts_ns < ?3"

#endif
