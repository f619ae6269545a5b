/*
 * test_retention.c - retention per kind and resolution (store/retention.c
 * te_store_retention, SPEC 9): with a global raw age of 30 d and
 * host_sample's own 7 d, host_sample events 10 days old are archived (gzip
 * NDJSON, one line each) and deleted while llm_call events of the same age
 * stay; a kind's "forever" (0) keeps what the global age would delete; 1m /
 * 1h rollup rows go by their kind's own age. The clock is the now_ns
 * argument, so nothing waits.
 *
 * THREAD: main only.
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
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "core/event.h"
#include "store/retention.h"
#include "store/rollup.h"
#include "store/store.h"
#include "store/store_int.h"

#define SEC INT64_C(1000000000)
#define HOUR (3600 * SEC)
#define DAY (24 * HOUR)
#define NOW INT64_C(1764806400000000000) /* 2025-12-04T00:00:00Z */

typedef struct fx {
    char dir[64];
    char db[128];
    char archive[128];
    te_store_t *st;
} fx_t;

static void insert(te_store_t *st, const char *kind, int64_t ts, int i)
{
    char js[256];
    snprintf(js, sizeof(js),
             "{\"kind\":\"%s\",\"ts\":%lld,\"source\":\"s\",\"id\":\"%s-%lld-%d\","
             "\"fields\":{\"v\":%d}}",
             kind, (long long)(ts / SEC), kind, (long long)(ts / SEC), i, i);
    te_event_opts_t o = {NULL, NULL, NOW};
    te_event_t *ev = NULL;
    te_err_t err = {0};
    if (te_event_parse(js, strlen(js), &o, &ev, &err) != 0)
        fail_msg("parse %s: %s", js, err.msg);
    if (te_store_insert(st, ev, NULL, &err) != 0)
        fail_msg("insert: %s", err.msg);
    te_event_free(ev);
}

/* n events of kind at each of the given ages (days before NOW). */
static void fill(fx_t *f, const char *kind, const int *ages, size_t nages, int n)
{
    te_err_t err = {0};
    assert_int_equal(te_store_begin(f->st, &err), 0);
    for (size_t a = 0; a < nages; a++) {
        for (int i = 0; i < n; i++)
            insert(f->st, kind, NOW - ages[a] * DAY + i * SEC, i);
    }
    assert_int_equal(te_store_commit(f->st, &err), 0);
}

/* sql's one integer answer, ?1 bound to kind */
static int64_t sql_int(te_store_t *st, const char *sql, const char *kind)
{
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(st->db, sql, -1, &s, NULL), SQLITE_OK);
    sqlite3_bind_text(s, 1, kind, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

#define RAW_OLDER(kind, days)                                                                  \
    sql_int(f->st,                                                                             \
            "SELECT count(*) FROM events WHERE kind_id = (SELECT id FROM kinds WHERE name = " \
            "?1) AND ts_ns < 1764806400000000000 - " #days " * 86400000000000",              \
            kind)
#define RAW_ALL(kind)                                                                          \
    sql_int(f->st,                                                                             \
            "SELECT count(*) FROM events WHERE kind_id = (SELECT id FROM kinds WHERE name = " \
            "?1)",                                                                           \
            kind)
#define ROWS(table, kind)                                                                      \
    sql_int(f->st,                                                                             \
            "SELECT count(*) FROM " table " WHERE kind_id = (SELECT id FROM kinds WHERE "     \
            "name = ?1)",                                                                    \
            kind)

static int64_t gz_lines(const char *path)
{
    gzFile gz = gzopen(path, "rb");
    if (!gz)
        return -1;
    char line[4096];
    int64_t n = 0;
    while (gzgets(gz, line, sizeof(line))) {
        assert_non_null(strstr(line, "\"kind\":\"host_sample\""));
        n++;
    }
    gzclose(gz);
    return n;
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    strcpy(f->dir, "/tmp/te-retention-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->db, sizeof(f->db), "%s/telemetry.db", f->dir);
    snprintf(f->archive, sizeof(f->archive), "%s/archive", f->dir);
    te_store_opts_t o = {.path = f->db};
    te_err_t err = {0};
    if (te_store_open(&o, &f->st, &err) != 0)
        fail_msg("open: %s", err.msg);
    *state = f;
    return 0;
}

static void rm_rf(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return;
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char sub[512];
            snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
            rm_rf(sub);
        }
        if (d)
            closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static int teardown(void **state)
{
    fx_t *f = *state;
    te_store_close(f->st);
    rm_rf(f->dir);
    free(f);
    return 0;
}

/* host_sample keeps 7 d of raw events, llm_call the global 30 d. */
static void retention_raw_per_kind(void **state)
{
    fx_t *f = *state;
    te_err_t err = {0};
    static const int ages[] = {40, 10, 1};
    fill(f, "host_sample", ages, 3, 5);
    fill(f, "llm_call", ages, 3, 5);
    fill(f, "span", ages, 3, 5);
    const te_retention_kind_t kinds[] = {
        {"host_sample", 7 * DAY, -1, -1},
        {"span", 0, -1, -1}, /* "forever" beats the global 30 d */
        {"not_stored", DAY, DAY, DAY},
    };
    te_retention_policy_t p = {.raw_ns = 30 * DAY, .kinds = kinds, .nkinds = 3,
                               .archive_dir = f->archive};
    te_retention_stats_t st = {0};
    if (te_store_retention(f->st, &p, NOW, &st, &err) != 0)
        fail_msg("retention: %s", err.msg);
    /* host_sample: the 40 d and 10 d old ones archived and deleted */
    assert_int_equal(RAW_ALL("host_sample"), 5);
    assert_int_equal(RAW_OLDER("host_sample", 7), 0);
    /* llm_call: only the 40 d old ones; those of the same age (10 d) stay */
    assert_int_equal(RAW_ALL("llm_call"), 10);
    assert_int_equal(RAW_OLDER("llm_call", 7), 5);
    assert_int_equal(RAW_OLDER("llm_call", 30), 0);
    /* span: all kept */
    assert_int_equal(RAW_ALL("span"), 15);
    assert_int_equal(st.events, 10 + 5);
    assert_int_equal(st.files, 2 + 1);

    /* the archive: one day file per kind and day, one line per event */
    char path[256];
    snprintf(path, sizeof(path), "%s/host_sample/2025-11-24.ndjson.gz", f->archive); /* 10 d */
    assert_int_equal(gz_lines(path), 5);
    snprintf(path, sizeof(path), "%s/host_sample/2025-10-25.ndjson.gz", f->archive); /* 40 d */
    assert_int_equal(gz_lines(path), 5);
    snprintf(path, sizeof(path), "%s/llm_call/2025-11-24.ndjson.gz", f->archive);
    assert_int_equal(access(path, F_OK), -1);
    snprintf(path, sizeof(path), "%s/span", f->archive);
    assert_int_equal(access(path, F_OK), -1);

    /* rollups keep counting what was archived */
    assert_true(ROWS("rollup_1h", "host_sample") > 0);

    /* a second pass finds nothing more to do */
    if (te_store_retention(f->st, &p, NOW, &st, &err) != 0)
        fail_msg("retention: %s", err.msg);
    assert_int_equal(st.events, 0);
    assert_int_equal(RAW_ALL("llm_call"), 10);
}

/* Rolls kind's raw events up to NOW (rows of the recent hours appear). */
static void roll_up(fx_t *f, const char *kind)
{
    te_err_t err = {0};
    int64_t kid = sql_int(f->st, "SELECT id FROM kinds WHERE name = ?1", kind);
    assert_int_equal(te_store_begin(f->st, &err), 0);
    if (te_rollup_materialize(f->st, kid, NOW, &err) != 0)
        fail_msg("materialize: %s", err.msg);
    assert_int_equal(te_store_commit(f->st, &err), 0);
}

/* Rollup rows go by their kind's own 1m / 1h age, else the global one. */
static void retention_rollups_per_kind(void **state)
{
    fx_t *f = *state;
    te_err_t err = {0};
    static const int ages[] = {40, 10, 1};
    fill(f, "host_sample", ages, 3, 3);
    fill(f, "llm_call", ages, 3, 3);
    roll_up(f, "host_sample");
    roll_up(f, "llm_call");
    int64_t h1_llm = ROWS("rollup_1h", "llm_call");
    int64_t m1_llm = ROWS("rollup_1m", "llm_call");
    assert_true(h1_llm >= 3 && m1_llm >= 3);
    const te_retention_kind_t kinds[] = {
        {"llm_call", -1, 0, 800 * DAY}, /* 1m forever, 1h 800 d */
        {"host_sample", -1, 5 * DAY, -1},
    };
    te_retention_policy_t p = {.m1_ns = 30 * DAY, .h1_ns = 20 * DAY, .kinds = kinds,
                               .nkinds = 2, .archive_dir = f->archive};
    te_retention_stats_t st = {0};
    if (te_store_retention(f->st, &p, NOW, &st, &err) != 0)
        fail_msg("retention: %s", err.msg);
    /* llm_call: nothing goes (1m forever, 1h 800 d) */
    assert_int_equal(ROWS("rollup_1h", "llm_call"), h1_llm);
    assert_int_equal(ROWS("rollup_1m", "llm_call"), m1_llm);
    /* host_sample: 1m rows older than 5 d go (only the 1 d old remain);
     * 1h rows by the global 20 d (the 40 d old go) */
    assert_int_equal(sql_int(f->st,
                             "SELECT count(*) FROM rollup_1m WHERE kind_id = (SELECT id FROM "
                             "kinds WHERE name = ?1) AND bucket < 1764374400000000000",
                             "host_sample"),
                     0);
    assert_true(ROWS("rollup_1m", "host_sample") > 0);
    assert_int_equal(sql_int(f->st,
                             "SELECT count(*) FROM rollup_1h WHERE kind_id = (SELECT id FROM "
                             "kinds WHERE name = ?1) AND bucket < 1763078400000000000",
                             "host_sample"),
                     0);
    assert_int_equal(sql_int(f->st,
                             "SELECT count(*) FROM rollup_1h WHERE kind_id = (SELECT id FROM "
                             "kinds WHERE name = ?1) AND bucket >= 1763078400000000000",
                             "host_sample"),
                     ROWS("rollup_1h", "host_sample"));
    assert_true(ROWS("rollup_1h", "host_sample") > 0);
    assert_true(st.rollup_rows > 0);
    /* raw events untouched: no raw age anywhere */
    assert_int_equal(st.events, 0);
    assert_int_equal(RAW_ALL("host_sample"), 9);
}

static void retention_bad_arguments(void **state)
{
    fx_t *f = *state;
    te_err_t err = {0};
    assert_int_equal(te_store_retention(f->st, NULL, NOW, NULL, &err), TE_EINVAL);
    te_retention_policy_t p = {0};
    assert_int_equal(te_store_retention(NULL, &p, NOW, NULL, &err), TE_EINVAL);
    assert_int_equal(te_store_retention(f->st, &p, NOW, NULL, &err), 0); /* keep all: no-op */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(retention_raw_per_kind, setup, teardown),
        cmocka_unit_test_setup_teardown(retention_rollups_per_kind, setup, teardown),
        cmocka_unit_test_setup_teardown(retention_bad_arguments, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
