/*
 * test_store.c - the SQLite store (store/db.c, store/events.c): migrations,
 * idempotent inserts, the newest-first listing and its cursor, tag filters,
 * read-only opens beside a writer, stats, check, backup while writing and
 * the te_field() SQL function. Real database files in a mkdtemp folder.
 *
 * THREAD: main, plus one writer thread (te_writer) where a test says so.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/event.h"
#include "core/time.h"
#include "pipeline/writer.h"
#include "store/store.h"
#include "store/sql.h"
#include "store/store_int.h" /* st->db for te_field() and damage tests */

#define TE_STR(x) #x
#define TE_XSTR(x) TE_STR(x)

#define T0 INT64_C(1763632800000000000) /* 2025-11-20T10:00:00Z */
#define SEC INT64_C(1000000000)

typedef struct fx {
    char dir[64];
    char db[128];
} fx_t;

static int fx_setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    strcpy(f->dir, "/tmp/te-store-XXXXXX");
    if (!f || !mkdtemp(f->dir))
        return -1;
    snprintf(f->db, sizeof(f->db), "%s/data/telemetry.db", f->dir);
    *state = f;
    return 0;
}

static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        if (unlink(p) < 0)
            rm_tree(p);
    }
    closedir(d);
    rmdir(dir);
}

static int fx_teardown(void **state)
{
    fx_t *f = *state;
    rm_tree(f->dir);
    free(f);
    return 0;
}

static te_store_t *open_rw(const fx_t *f)
{
    te_store_opts_t o = {.path = f->db};
    te_store_t *st = NULL;
    te_err_t err = {0};
    if (te_store_open(&o, &st, &err) != 0)
        fail_msg("open %s: %s", f->db, err.msg);
    return st;
}

static te_store_t *open_ro(const fx_t *f)
{
    te_store_opts_t o = {.path = f->db, .readonly = true};
    te_store_t *st = NULL;
    te_err_t err = {0};
    if (te_store_open(&o, &st, &err) != 0)
        fail_msg("open ro %s: %s", f->db, err.msg);
    return st;
}

static te_event_t *ev_parse(const char *js)
{
    te_event_opts_t o = {NULL, NULL, T0};
    te_event_t *ev = NULL;
    te_err_t err = {0};
    if (te_event_parse(js, strlen(js), &o, &ev, &err) != 0)
        fail_msg("parse %s: %s", js, err.msg);
    return ev;
}

/* Inserts one event in its own transaction; returns whether it was stored. */
static bool put(te_store_t *st, const char *js)
{
    te_event_t *ev = ev_parse(js);
    te_err_t err = {0};
    bool stored = false;
    assert_int_equal(te_store_begin(st, &err), 0);
    if (te_store_insert(st, ev, &stored, &err) != 0)
        fail_msg("insert: %s", err.msg);
    assert_int_equal(te_store_commit(st, &err), 0);
    te_event_free(ev);
    return stored;
}

static void put_ts(te_store_t *st, const char *kind, int64_t ts, const char *tags, int n)
{
    char js[512], tss[40];
    te_time_format_rfc3339(ts, tss, sizeof(tss));
    snprintf(js, sizeof(js), "{\"kind\":\"%s\",\"ts\":\"%s\",\"tags\":%s,\"fields\":{\"n\":%d}}",
             kind, tss, tags, n);
    put(st, js);
}

static int64_t count_events(te_store_t *st)
{
    te_store_stats_t s;
    te_err_t err = {0};
    if (te_store_stats(st, &s, &err) != 0)
        fail_msg("stats: %s", err.msg);
    return s.events;
}

/* ---- migrations ---- */

static void open_creates_schema_and_reopen_keeps_version(void **state)
{
    fx_t *f = *state;
    te_store_t *st = open_rw(f);
    te_store_stats_t s;
    assert_int_equal(te_store_stats(st, &s, NULL), 0);
    assert_int_equal(s.schema_version, TE_SQL_SCHEMA_VERSION);
    assert_int_equal(s.events, 0);
    assert_string_equal(te_store_path(st), f->db);
    assert_int_equal(sqlite3_exec(st->db, "SELECT 1 FROM alerts, alert_history", NULL, NULL, NULL),
                     SQLITE_OK);
    assert_true(put(st, "{\"kind\":\"a\",\"x\":1}"));
    te_store_close(st);
    st = open_rw(f); /* second open: no migration re-run, data kept */
    assert_int_equal(te_store_stats(st, &s, NULL), 0);
    assert_int_equal(s.schema_version, TE_SQL_SCHEMA_VERSION);
    assert_int_equal(s.events, 1);
    assert_true(s.file_bytes > 0);
    /* a database this build makes has 16 KiB pages, whoever reads it */
    assert_int_equal(te_store_page_size(st), 16384);
    te_store_close(st);
    st = open_ro(f);
    assert_int_equal(te_store_page_size(st), 16384);
    te_store_close(st);
}

static void open_migrates_v1_database_to_current(void **state)
{
    fx_t *f = *state;
    /* a v1 database, as the spine's first release left it */
    te_store_close(open_rw(f)); /* makes the folder */
    char side[600];
    unlink(f->db);
    snprintf(side, sizeof(side), "%s-wal", f->db);
    unlink(side);
    snprintf(side, sizeof(side), "%s-shm", f->db);
    unlink(side);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, te_sql_migrations[0], NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "INSERT INTO kinds(id, name) VALUES(1, 'a');"
                                      "INSERT INTO series(id, kind_id, tags) VALUES(1, 1, '{}');"
                                      "INSERT INTO events(ts_ns, kind_id, series_id)"
                                      " VALUES(1000, 1, 1); PRAGMA user_version = 1",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    te_store_t *st = open_rw(f);
    te_store_stats_t s;
    assert_int_equal(te_store_stats(st, &s, NULL), 0);
    assert_int_equal(s.schema_version, TE_SQL_SCHEMA_VERSION);
    assert_int_equal(s.events, 1);
    assert_int_equal(sqlite3_exec(st->db, "SELECT 1 FROM alerts, alert_history, silences, outbox,"
                                          " alert_actions", NULL, NULL, NULL),
                     SQLITE_OK);
    /* an older database keeps the page size it was made with */
    assert_int_equal(te_store_page_size(st), 4096);
    assert_true(put(st, "{\"kind\":\"a\",\"x\":2}"));
    te_store_close(st);
}

static void open_newer_schema_is_refused(void **state)
{
    fx_t *f = *state;
    te_store_close(open_rw(f));
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    te_store_opts_t o = {.path = f->db};
    te_store_t *st = NULL;
    te_err_t err = {0};
    assert_int_equal(te_store_open(&o, &st, &err), TE_ESQLITE);
    assert_null(st);
    assert_non_null(
        strstr(err.msg, "schema version 99, newer than this build's " TE_XSTR(TE_SQL_SCHEMA_VERSION)));
    o.readonly = true;
    assert_int_equal(te_store_open(&o, &st, &err), TE_ESQLITE);
    assert_non_null(strstr(err.msg, "newer"));
}

static void open_ro_missing_or_empty_fails_clearly(void **state)
{
    fx_t *f = *state;
    te_store_opts_t o = {.path = f->db, .readonly = true};
    te_store_t *st = NULL;
    te_err_t err = {0};
    assert_int_equal(te_store_open(&o, &st, &err), TE_ESQLITE);
    assert_non_null(strstr(err.msg, "cannot open"));
    assert_non_null(strstr(err.msg, f->db));
    /* an empty SQLite file without our schema */
    char p[160];
    snprintf(p, sizeof(p), "%s/empty.db", f->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE x(y)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    o.path = p;
    assert_int_equal(te_store_open(&o, &st, &err), TE_ESQLITE);
    assert_non_null(strstr(err.msg, "no telemetry schema"));
    o.path = "";
    assert_int_equal(te_store_open(&o, &st, &err), TE_EINVAL);
    assert_int_equal(te_store_open(NULL, &st, &err), TE_EINVAL);
}

static int64_t pragma_int(te_store_t *st, const char *sql)
{
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(st->db, sql, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int64_t v = sqlite3_column_type(s, 0) == SQLITE_TEXT
                    ? (strcmp((const char *)sqlite3_column_text(s, 0), "wal") == 0 ? 1 : -1)
                    : sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

static void open_durability_sets_wal_and_synchronous(void **state)
{
    fx_t *f = *state;
    te_store_t *st = open_rw(f);
    assert_int_equal(pragma_int(st, "PRAGMA journal_mode"), 1); /* wal */
    assert_int_equal(pragma_int(st, "PRAGMA synchronous"), 1);  /* NORMAL */
    assert_int_equal(pragma_int(st, "PRAGMA foreign_keys"), 0);
    assert_int_equal(pragma_int(st, "PRAGMA busy_timeout"), 5000);
    te_store_close(st);
    te_store_opts_t o = {.path = f->db, .durability = TE_DURABILITY_POWER, .busy_timeout_ms = 250};
    te_err_t err = {0};
    assert_int_equal(te_store_open(&o, &st, &err), 0);
    assert_int_equal(pragma_int(st, "PRAGMA synchronous"), 2); /* FULL */
    assert_int_equal(pragma_int(st, "PRAGMA busy_timeout"), 250);
    te_store_close(st);
    te_store_close(NULL);
}

/* ---- inserts ---- */

static void insert_same_source_id_is_duplicate(void **state)
{
    fx_t *f = *state;
    te_store_t *st = open_rw(f);
    assert_true(put(st, "{\"kind\":\"a\",\"source\":\"s1\",\"id\":\"e1\",\"v\":1}"));
    assert_false(put(st, "{\"kind\":\"a\",\"source\":\"s1\",\"id\":\"e1\",\"v\":2}"));
    assert_true(put(st, "{\"kind\":\"a\",\"source\":\"s2\",\"id\":\"e1\",\"v\":3}"));
    /* no source: (NULL, id) dedups too */
    assert_true(put(st, "{\"kind\":\"a\",\"id\":\"e1\",\"v\":4}"));
    assert_false(put(st, "{\"kind\":\"b\",\"id\":\"e1\",\"v\":5}"));
    /* no id: never a duplicate */
    assert_true(put(st, "{\"kind\":\"a\",\"source\":\"s1\",\"v\":6}"));
    assert_true(put(st, "{\"kind\":\"a\",\"source\":\"s1\",\"v\":6}"));
    assert_int_equal(count_events(st), 5);
    te_store_close(st);
}

static void insert_needs_transaction_and_writable_store(void **state)
{
    fx_t *f = *state;
    te_store_t *st = open_rw(f);
    te_event_t *ev = ev_parse("{\"kind\":\"a\",\"v\":1}");
    te_err_t err = {0};
    bool stored;
    assert_int_equal(te_store_insert(st, ev, &stored, &err), TE_EINVAL);
    assert_non_null(strstr(err.msg, "outside a transaction"));
    assert_int_equal(te_store_commit(st, &err), TE_EINVAL);
    assert_int_equal(te_store_begin(st, &err), 0);
    assert_int_equal(te_store_begin(st, &err), TE_EINVAL);
    assert_int_equal(te_store_insert(st, ev, &stored, &err), 0);
    te_store_rollback(st); /* nothing stored, caches forgotten */
    assert_int_equal(count_events(st), 0);
    assert_int_equal(te_store_begin(st, &err), 0);
    assert_int_equal(te_store_insert(st, ev, &stored, &err), 0);
    assert_true(stored);
    assert_int_equal(te_store_commit(st, &err), 0);
    te_store_t *ro = open_ro(f);
    assert_int_equal(te_store_begin(ro, &err), TE_EINVAL);
    assert_non_null(strstr(err.msg, "read-only"));
    assert_int_equal(count_events(ro), 1);
    te_store_close(ro);
    te_store_close(st);
    te_event_free(ev);
}

/* ---- listing ---- */

typedef struct collect {
    int n;
    int64_t ts[256];
    int vals[256];
    char kinds[256][8];
    int stop_after;
} collect_t;

static int collect_cb(const te_event_t *ev, void *ud)
{
    collect_t *c = ud;
    double v = -1;
    te_event_field(ev, "n", &v);
    c->ts[c->n] = ev->ts_ns;
    c->vals[c->n] = (int)v;
    snprintf(c->kinds[c->n], sizeof(c->kinds[0]), "%s", ev->kind);
    c->n++;
    return c->stop_after && c->n >= c->stop_after;
}

static int list(te_store_t *st, te_events_query_t *q, collect_t *c, char *next)
{
    te_err_t err = {0};
    int rc = te_store_events(st, q, collect_cb, c, next, 64, &err);
    if (rc != 0)
        fail_msg("events: %s", err.msg);
    return rc;
}

static void events_pages_cover_equal_timestamps_once(void **state)
{
    fx_t *f = *state;
    te_store_t *st = open_rw(f);
    /* 30 events on 10 distinct timestamps, two kinds interleaved */
    for (int i = 0; i < 30; i++)
        put_ts(st, i % 2 ? "k1" : "k2", T0 + (i / 3) * SEC, "{}", i);
    te_store_close(st);
    te_store_t *ro = open_ro(f);
    for (int withkind = 0; withkind < 2; withkind++) {
        te_events_query_t q = {.kind = withkind ? "k1" : NULL, .since_ns = T0,
                               .until_ns = T0 + 100 * SEC, .limit = 7};
        collect_t c = {0};
        char next[64] = "";
        int pages = 0;
        do {
            q.cursor = next[0] ? strdup(next) : NULL;
            list(ro, &q, &c, next);
            free((char *)q.cursor);
            pages++;
        } while (next[0] && pages < 20);
        int want = withkind ? 15 : 30;
        assert_int_equal(c.n, want);
        assert_int_equal(pages, (want + 6) / 7);
        int seen[30] = {0};
        for (int i = 0; i < c.n; i++) {
            seen[c.vals[i]]++;
            if (i)
                assert_true(c.ts[i] <= c.ts[i - 1]);
            if (i && c.ts[i] == c.ts[i - 1]) /* same ts: newer insert (higher id) first */
                assert_true(c.vals[i] < c.vals[i - 1]);
        }
        for (int i = 0; i < 30; i++)
            assert_int_equal(seen[i], withkind && i % 2 == 0 ? 0 : 1);
    }
    /* range: since inclusive, until exclusive */
    te_events_query_t q = {.since_ns = T0 + SEC, .until_ns = T0 + 3 * SEC, .limit = 100};
    collect_t c = {0};
    char next[64];
    list(ro, &q, &c, next);
    assert_int_equal(c.n, 6);
    assert_string_equal(next, "");
    assert_int_equal(c.vals[0], 8);
    assert_int_equal(c.vals[5], 3);
    /* unknown kind: empty, no error */
    q.kind = "nope";
    c.n = 0;
    list(ro, &q, &c, next);
    assert_int_equal(c.n, 0);
    te_store_close(ro);
}

static void events_callback_stop_returns_cursor(void **state)
{
    fx_t *f = *state;
    te_store_t *st = open_rw(f);
    for (int i = 0; i < 5; i++)
        put_ts(st, "k", T0 + i * SEC, "{}", i);
    te_events_query_t q = {.kind = "k", .since_ns = T0, .until_ns = T0 + 10 * SEC, .limit = 5};
    collect_t c = {.stop_after = 2};
    char next[64];
    list(st, &q, &c, next);
    assert_int_equal(c.n, 2);
    assert_string_not_equal(next, "");
    q.cursor = next;
    collect_t c2 = {0};
    char next2[64];
    list(st, &q, &c2, next2);
    assert_int_equal(c2.n, 3);
    assert_int_equal(c2.vals[0], 2);
    assert_string_equal(next2, "");
    te_store_close(st);
}

static void events_bad_cursor_and_limit_rejected(void **state)
{
    fx_t *f = *state;
    te_store_t *st = open_rw(f);
    te_events_query_t q = {.since_ns = 0, .until_ns = T0, .limit = 10};
    collect_t c = {0};
    char next[64];
    te_err_t err = {0};
    const char *bad[] = {"x", "12", "12.", ".5", "12.0", "12.-3", "12.5x", "99999999999999999999.1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        q.cursor = bad[i];
        assert_int_equal(te_store_events(st, &q, collect_cb, &c, next, sizeof(next), &err),
                         TE_EINVAL);
        assert_non_null(strstr(err.msg, "bad cursor"));
    }
    q.cursor = "-5.3"; /* negative timestamps are valid */
    assert_int_equal(te_store_events(st, &q, collect_cb, &c, next, sizeof(next), &err), 0);
    q.cursor = NULL;
    q.limit = 0;
    assert_int_equal(te_store_events(st, &q, collect_cb, &c, next, sizeof(next), &err),
                     TE_EINVAL);
    assert_non_null(strstr(err.msg, "limit 0 is out of range (1..1000)"));
    q.limit = 1001;
    assert_int_equal(te_store_events(st, &q, collect_cb, &c, next, sizeof(next), &err),
                     TE_EINVAL);
    q.limit = 1000;
    assert_int_equal(te_store_events(st, &q, collect_cb, &c, next, sizeof(next), &err), 0);
    assert_int_equal(te_store_events(st, &q, collect_cb, &c, next, 10, &err), TE_EINVAL);
    te_store_close(st);
}

static void events_tag_filters_and_across_keys_or_within(void **state)
{
    fx_t *f = *state;
    te_store_t *st = open_rw(f);
    put_ts(st, "llm", T0 + 1, "{\"model\":\"x\",\"provider\":\"a\"}", 1);
    put_ts(st, "llm", T0 + 2, "{\"model\":\"y\",\"provider\":\"a\"}", 2);
    put_ts(st, "llm", T0 + 3, "{\"model\":\"x\",\"provider\":\"b\"}", 3);
    put_ts(st, "llm", T0 + 4, "{\"model\":\"z\"}", 4);
    put_ts(st, "other", T0 + 5, "{\"model\":\"x\",\"provider\":\"a\"}", 5);
    const char *pa[] = {"a"}, *mx[] = {"x"}, *my[] = {"y"}, *mxz[] = {"x", "z"};
    struct {
        const char *kind;
        te_tag_filter_t w[3];
        size_t nw;
        int want[5];
        int nwant;
    } cases[] = {
        {"llm", {{"provider", pa, 1}}, 1, {2, 1}, 2},
        {"llm", {{"provider", pa, 1}, {"model", mx, 1}}, 2, {1}, 1},
        {"llm", {{"model", mx, 1}, {"model", my, 1}}, 2, {3, 2, 1}, 3},
        {"llm", {{"model", mxz, 2}}, 1, {4, 3, 1}, 3},
        {NULL, {{"provider", pa, 1}, {"model", mx, 1}}, 2, {5, 1}, 2},
        {"llm", {{"nope", pa, 1}}, 1, {0}, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        te_events_query_t q = {.kind = cases[i].kind, .since_ns = T0, .until_ns = T0 + SEC,
                               .where = cases[i].w, .nwhere = cases[i].nw, .limit = 10};
        collect_t c = {0};
        char next[64];
        list(st, &q, &c, next);
        assert_int_equal(c.n, cases[i].nwant);
        for (int j = 0; j < c.n; j++)
            assert_int_equal(c.vals[j], cases[i].want[j]);
    }
    te_tag_filter_t empty = {"model", NULL, 0};
    te_events_query_t q = {.since_ns = T0, .until_ns = T0 + SEC, .where = &empty, .nwhere = 1,
                           .limit = 10};
    collect_t c = {0};
    char next[64];
    te_err_t err = {0};
    assert_int_equal(te_store_events(st, &q, collect_cb, &c, next, 64, &err), TE_EINVAL);
    assert_non_null(strstr(err.msg, "tag \"model\" has no value"));
    te_store_close(st);
}

static int to_json_cb(const te_event_t *ev, void *ud)
{
    *(char **)ud = te_event_to_json(ev, NULL);
    return 0;
}

static char *json_of_first(te_store_t *st)
{
    te_events_query_t q = {.since_ns = 0, .until_ns = INT64_MAX, .limit = 1};
    char *js = NULL;
    char next[64];
    te_err_t err = {0};
    assert_int_equal(te_store_events(st, &q, to_json_cb, &js, next, 64, &err), 0);
    return js;
}

static void events_roundtrip_every_member(void **state)
{
    fx_t *f = *state;
    te_store_t *st = open_rw(f);
    const char *js =
        "{\"ts\":\"2026-11-20T10:00:00.123456789Z\",\"kind\":\"llm_call\",\"source\":\"svc-a\","
        "\"id\":\"c-1\",\"trace_id\":\"t1\",\"span_id\":\"s1\",\"parent_span_id\":\"p1\","
        "\"correlation_id\":\"r1\",\"tags\":{\"model\":\"m\",\"provider\":\"p\"},"
        "\"fields\":{\"cost_usd\":0.0123,\"latency_ms\":812.5},\"body\":{\"a\":[1,2,{\"b\":null}]}}";
    te_event_t *ev = ev_parse(js);
    char *want = te_event_to_json(ev, NULL);
    put(st, js);
    char *got = json_of_first(st);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
    free(want);
    te_event_free(ev);
    te_store_close(st);
}

/* ---- stats, check, te_field ---- */

static void stats_and_kind_stats_count_per_kind(void **state)
{
    fx_t *f = *state;
    te_store_t *st = open_rw(f);
    put_ts(st, "b", T0 + 5, "{\"x\":\"1\"}", 1);
    put_ts(st, "b", T0 + 9, "{\"x\":\"2\"}", 1);
    put_ts(st, "a", T0 - 3, "{}", 1);
    te_store_stats_t s;
    assert_int_equal(te_store_stats(st, &s, NULL), 0);
    assert_int_equal(s.events, 3);
    assert_int_equal(s.kinds, 2);
    assert_int_equal(s.series, 3);
    assert_true(s.oldest_ts_ns == T0 - 3);
    assert_true(s.newest_ts_ns == T0 + 9);
    te_result_t *r = NULL;
    assert_int_equal(te_store_kind_stats(st, &r, NULL), 0);
    assert_int_equal(r->ncols, 3);
    assert_int_equal(r->nrows, 2);
    assert_string_equal(r->cells[0].u.s, "a");
    assert_int_equal(r->cells[1].u.i, 1);
    assert_string_equal(r->cells[3].u.s, "b");
    assert_int_equal(r->cells[4].u.i, 2);
    assert_int_equal(r->cells[5].u.i, 2);
    te_result_free(r);
    te_store_close(st);
}

static void sql_te_field_reads_blob(void **state)
{
    fx_t *f = *state;
    te_store_t *st = open_rw(f);
    put(st, "{\"kind\":\"a\",\"fields\":{\"lat\":12.5,\"z\":1}}");
    put(st, "{\"kind\":\"a\",\"tags\":{\"q\":\"1\"}}");
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(st->db,
                                        "SELECT te_field(fields,'lat'), te_field(fields,'nope')"
                                        " FROM events ORDER BY id",
                                        -1, &s, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_true(sqlite3_column_double(s, 0) == 12.5);
    assert_int_equal(sqlite3_column_type(s, 1), SQLITE_NULL);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_int_equal(sqlite3_column_type(s, 0), SQLITE_NULL); /* no fields: NULL blob */
    sqlite3_finalize(s);
    te_store_close(st);
}

static void check_ok_then_damaged_file_reported(void **state)
{
    fx_t *f = *state;
    te_store_t *st = open_rw(f);
    te_err_t err = {0};
    assert_int_equal(te_store_begin(st, &err), 0);
    for (int i = 0; i < 3000; i++) {
        char js[128];
        snprintf(js, sizeof(js), "{\"kind\":\"k\",\"id\":\"e%d\",\"tags\":{\"t\":\"%d\"},\"fields\":{\"v\":%d}}",
                 i, i % 50, i);
        te_event_t *ev = ev_parse(js);
        assert_int_equal(te_store_insert(st, ev, NULL, &err), 0);
        te_event_free(ev);
    }
    assert_int_equal(te_store_commit(st, &err), 0);
    assert_int_equal(te_store_check(st, true, &err), 0);
    assert_int_equal(te_store_check(st, false, &err), 0);
    /* checkpoint into the main file, then damage an index page */
    assert_int_equal(sqlite3_exec(st->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL),
                     SQLITE_OK);
    te_store_close(st);
    FILE *fp = fopen(f->db, "r+b");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    assert_true(size > 40 * 4096);
    char junk[4096];
    memset(junk, 0x5a, sizeof(junk));
    fseek(fp, size - 3 * 4096, SEEK_SET); /* a late page: index or data, never page 1 */
    fwrite(junk, 1, sizeof(junk), fp);
    fclose(fp);
    st = open_ro(f);
    assert_int_equal(te_store_check(st, false, &err), TE_ESQLITE);
    if (!strstr(err.msg, "is damaged"))
        fail_msg("check: %s", err.msg);
    te_store_close(st);
}

/* ---- concurrency: read-only beside a writer, backup while writing ---- */

static void done_free(te_batch_t *b)
{
    assert_int_equal(b->rc, 0);
    te_batch_free(b);
}

static te_batch_t *make_batch(int base, int n)
{
    te_batch_t *b = te_batch_new((size_t)n);
    for (int i = 0; i < n; i++) {
        char js[160];
        snprintf(js, sizeof(js),
                 "{\"kind\":\"load\",\"ts\":%d,\"tags\":{\"h\":\"h%d\"},\"fields\":{\"n\":%d}}",
                 1700000000 + base + i, i % 7, base + i);
        assert_int_equal(te_batch_take(b, ev_parse(js)), 0);
    }
    b->done = done_free;
    return b;
}

static void readonly_and_backup_while_writer_writes(void **state)
{
    fx_t *f = *state;
    te_store_t *st = open_rw(f);
    te_writer_t *w = NULL;
    te_writer_opts_t wo = {.max_queued_events = 4000, .max_txn_events = 500};
    assert_int_equal(te_writer_start(st, &wo, &w, NULL), 0);
    assert_int_equal(te_writer_submit_wait(w, make_batch(0, 1000)), 0);
    /* wait (deadline) until the first batch is committed so a reader sees it */
    int64_t deadline = te_time_mono_ns() + 20 * SEC;
    te_writer_stats_t ws;
    do
        te_writer_get_stats(w, &ws);
    while (ws.committed_events < 1000 && te_time_mono_ns() < deadline);
    assert_int_equal(ws.committed_events, 1000);

    te_store_t *ro = open_ro(f);
    char bk[160];
    snprintf(bk, sizeof(bk), "%s/backup.db", f->dir);
    int64_t prev = 0;
    for (int round = 0; round < 10; round++) {
        /* keep the writer busy while we read and back up */
        assert_int_equal(te_writer_submit_wait(w, make_batch(1000 + round * 300, 300)), 0);
        int64_t n = count_events(ro);
        assert_true(n >= prev && n >= 1000);
        te_events_query_t q = {.kind = "load", .since_ns = 0, .until_ns = INT64_MAX, .limit = 50};
        collect_t c = {0};
        char next[64];
        list(ro, &q, &c, next);
        assert_int_equal(c.n, 50);
        assert_string_not_equal(next, "");
        prev = n;
        if (round == 5) {
            te_err_t err = {0};
            if (te_store_backup(ro, bk, NULL, NULL, &err) != 0)
                fail_msg("backup: %s", err.msg);
        }
    }
    te_writer_stop(w); /* drains: every batch committed */
    assert_int_equal(count_events(ro), 4000);
    te_store_close(ro);

    te_store_opts_t o = {.path = bk, .readonly = true};
    te_store_t *copy = NULL;
    te_err_t err = {0};
    if (te_store_open(&o, &copy, &err) != 0)
        fail_msg("open backup: %s", err.msg);
    assert_int_equal(te_store_check(copy, false, &err), 0);
    int64_t nc = count_events(copy);
    assert_true(nc >= 1000 && nc <= 4000);
    te_store_close(copy);
    char tmp[200];
    snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", bk, (long)getpid());
    assert_int_equal(access(tmp, F_OK), -1); /* renamed, no temp left */
}

static int progress_calls;
static void on_progress(int remaining, int total, void *ud)
{
    (void)ud;
    assert_true(remaining >= 0 && remaining <= total);
    progress_calls++;
}

static void backup_reports_progress_and_bad_dest_fails(void **state)
{
    fx_t *f = *state;
    te_store_t *st = open_rw(f);
    put(st, "{\"kind\":\"a\",\"v\":1}");
    char bk[160];
    snprintf(bk, sizeof(bk), "%s/b2.db", f->dir);
    te_err_t err = {0};
    progress_calls = 0;
    assert_int_equal(te_store_backup(st, bk, on_progress, NULL, &err), 0);
    assert_true(progress_calls >= 1);
    assert_int_equal(te_store_backup(st, "/nonexistent-dir/x.db", NULL, NULL, &err), TE_EIO);
    assert_non_null(strstr(err.msg, "cannot create"));
    assert_int_equal(te_store_backup(st, "", NULL, NULL, &err), TE_EINVAL);
    te_store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
        T(open_creates_schema_and_reopen_keeps_version),
        T(open_durability_sets_wal_and_synchronous),
        T(open_migrates_v1_database_to_current),
        T(open_newer_schema_is_refused),
        T(open_ro_missing_or_empty_fails_clearly),
        T(insert_same_source_id_is_duplicate),
        T(insert_needs_transaction_and_writable_store),
        T(events_pages_cover_equal_timestamps_once),
        T(events_callback_stop_returns_cursor),
        T(events_bad_cursor_and_limit_rejected),
        T(events_tag_filters_and_across_keys_or_within),
        T(events_roundtrip_every_member),
        T(stats_and_kind_stats_count_per_kind),
        T(sql_te_field_reads_blob),
        T(check_ok_then_damaged_file_reported),
        T(readonly_and_backup_while_writer_writes),
        T(backup_reports_progress_and_bad_dest_fails),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
