/*
 * bind_query.h - the read-only `q` object given to report renderers
 * (te.report's render(q, r, params), SPEC 6.5) and to recommendations
 * (te.recommend's fn(q), SPEC 6.4).
 *
 * THREAD: the thread owning the lua_State; the store must be used by that
 * thread only while q is alive (a worker's own read-only connection).
 *
 * q is a plain table of functions sharing one "te.Q" box (an upvalue) that
 * borrows the store. te_lua_q_expire ends the borrow: a q kept by the
 * script raises "q used after its report finished" instead of touching a
 * closed store. Every function takes one table argument; times accept a
 * duration back from the reference instant ("7d"), an RFC 3339 time or a
 * number of Unix seconds; `since`/`until` default to the range of the run
 * (opts->since_ns / until_ns).
 *
 *   q.query{kind, since, until, where, group_by, every, aggs}
 *     aggs = { n = "count", cost = "sum:cost_usd", p95 = "p95:latency_ms" }
 *     (any item of `telemetry-engine query --agg`; default { count = "count" }).
 *     where = { provider = "openai" } or { provider = { "openai", "google" } }.
 *     Returns a list of rows, each a table keyed by the group tags (nil where
 *     an event lacks the tag), the agg names (nil for sum/avg/.. over no
 *     values) and, with `every`, `time` (RFC 3339 bucket start) and `t`
 *     (bucket start in Unix seconds). Rows are ordered by time then group
 *     values. Built on te_store_query (raw data or rollups, as it decides);
 *     the queries of one q share their reads (store/query_cache.h: same
 *     answers, emptied when the data changes).
 *   q.events{kind, since, until, where, limit}
 *     Newest first, at most limit (default 100, max 10000) events, each
 *     { ts = RFC 3339, t = seconds, kind, source, id, trace_id, span_id,
 *       parent_span_id, correlation_id, tags = {..}, fields = {..} }.
 *   q.alerts{state, since, until, rule, limit}
 *     Alert episodes (most recently changed first) that were active at some
 *     point in [since, until): the GET /v1/alerts objects (id, rule,
 *     fingerprint, severity, group, labels, value, summary, state, reason,
 *     starts_at, ends_at, active_at, updated_at) plus the instants as Unix
 *     seconds: starts_at_s, ends_at_s (nil while active), active_at_s,
 *     updated_at_s, and acked_at_s when the store records acks. state:
 *     "pending" | "firing" | "resolved" (nil: all). limit default 1000.
 *   q.recommendations{since, until, severity, state, limit}
 *     Rows of the `recommendations` table (store/sql_v5.h: name,
 *     fingerprint, severity, title, detail, action, evidence, count, state
 *     "open"|"resolved", first_seen_ns, last_seen_ns, resolved_ns) whose
 *     last_seen falls in [since, until), newest first (limit default 100),
 *     each a table keyed by column name; a column NAME_ns also gives
 *     NAME_at (RFC 3339) and NAME_s (seconds), a column NAME_json is
 *     decoded into NAME. When the table is absent: an empty list.
 *   q.stats()   -> { events, series, kinds = { {kind, events, series}.. },
 *                    oldest, newest (RFC 3339 or nil), db_bytes }
 *   q.time(s)   -> RFC 3339 text of Unix seconds s
 *   q.since, q.until, q.now: the run's range and reference instant (seconds).
 * JSON null in results is nil. Bad arguments raise with file:line
 * ("reports/x.lua:12: q.query: unknown key \"agg\" (did you mean \"aggs\"?)");
 * a storage failure raises "q.query: <why>".
 */
#ifndef TE_SCRIPT_BIND_QUERY_H
#define TE_SCRIPT_BIND_QUERY_H

#include <stdint.h>

typedef struct lua_State lua_State;
struct te_store;

typedef struct te_lua_q_opts {
    struct te_store *st;   /* borrowed, read-only use; required */
    int64_t now_ns;        /* reference instant for durations */
    int64_t since_ns;      /* default range of q.query/q.events/q.alerts */
    int64_t until_ns;
    /* Optional: called before each store read with what is being read
     * ("q.query llm_call"), for a progress line. */
    void (*progress)(void *ud, const char *what);
    void *progress_ud;
} te_lua_q_opts_t;

/* Pushes a new q table for opts (copied; st stays borrowed until
 * te_lua_q_expire). May raise (memory) like any Lua allocation: call from
 * protected code. */
void te_lua_push_q(lua_State *L, const te_lua_q_opts_t *opts);

/* Ends the borrow of the q table at idx (later use raises) and closes any
 * extra connection it opened. A value that is not a q table is ignored.
 * Cannot fail, does not raise. */
void te_lua_q_expire(lua_State *L, int idx);

/* lua_CFunction behind te.report_q{ db = PATH, since, until, now } of the
 * standalone te.so (tests of templates against a real database): returns
 * a q over its own read-only connection to PATH, closed when the q is
 * collected, or nil and a message when PATH cannot be opened. since
 * defaults to 7 days before now, until to now. */
int te_lua_q_open(lua_State *L);

/* Number of store reads (query, events, alerts, recommendations, stats)
 * made through the q table at idx so far (0 for a value that is not q). */
int te_lua_q_reads(lua_State *L, int idx);

#endif
