/*
 * test_recs.c - stored recommendations (store/recs.c): fingerprints,
 * de-duplication across runs, resolution of what a run no longer returns,
 * reopening, per-recommender isolation, listing filters and order, the
 * JSON object, savepoints inside an outer transaction, and a read-only
 * listing beside the writer. Real database files in a mkdtemp folder.
 *
 * THREAD: main.
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

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "store/recs.h"
#include "store/store.h"
#include "store/store_int.h" /* st->db for the outer-transaction test */

#define T0 INT64_C(1763632800000000000) /* 2025-11-20T10:00:00Z */
#define HOUR INT64_C(3600000000000)

typedef struct fx {
    char dir[64];
    char db[128];
    te_store_t *st;
} fx_t;

static int fx_setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    strcpy(f->dir, "/tmp/te-recs-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->db, sizeof(f->db), "%s/telemetry.db", f->dir);
    te_store_opts_t so = {.path = f->db};
    te_err_t err = {0};
    if (te_store_open(&so, &f->st, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fx_t *f = *state;
    char p[256];
    te_store_close(f->st);
    static const char *const files[] = {"telemetry.db", "telemetry.db-wal", "telemetry.db-shm"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s/%s", f->dir, files[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

/* A finding of recommender name; key may be NULL (the title identifies it). */
static te_rec_t rec(const char *name, const char *sev, const char *title, const char *key,
                    const char *evidence)
{
    te_rec_t r;
    memset(&r, 0, sizeof(r));
    r.name = strdup(name);
    snprintf(r.severity, sizeof(r.severity), "%s", sev);
    r.title = strdup(title);
    r.detail = strdup("detail text");
    r.action = strdup("do this");
    r.evidence_json = evidence ? strdup(evidence) : NULL;
    te_rec_fingerprint(name, key ? key : title, r.fingerprint);
    return r;
}

static void clear_all(te_rec_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        te_rec_clear(&v[i]);
}

typedef struct listed {
    te_rec_t v[16];
    size_t n;
} listed_t;

static int collect(void *ud, const te_rec_t *r)
{
    listed_t *l = ud;
    assert_true(l->n < 16);
    te_rec_t *c = &l->v[l->n++];
    *c = *r;
    c->name = strdup(r->name);
    c->title = strdup(r->title);
    c->detail = r->detail ? strdup(r->detail) : NULL;
    c->action = r->action ? strdup(r->action) : NULL;
    c->evidence_json = r->evidence_json ? strdup(r->evidence_json) : NULL;
    return 0;
}

static void list(te_store_t *st, const char *state, const char *sev, const char *name,
                 listed_t *out)
{
    te_err_t err = {0};
    te_recs_filter_t f = {.state = state, .severity = sev, .name = name};
    memset(out, 0, sizeof(*out));
    assert_int_equal(te_store_recs_list(st, &f, 0, collect, out, &err), 0);
}

static void save(te_store_t *st, const char *name, te_rec_t *v, size_t n, int64_t now,
                 te_recs_run_stats_t *stats)
{
    te_err_t err = {0};
    int rc = te_store_recs_save_run(st, name, v, n, now, stats, &err);
    if (rc != 0)
        fail_msg("save_run: %s", err.msg);
}

static void test_fingerprint(void **state)
{
    (void)state;
    char a[17], b[17], c[17], d[17];
    te_rec_fingerprint("r", "title one", a);
    te_rec_fingerprint("r", "title one", b);
    te_rec_fingerprint("r", "title two", c);
    te_rec_fingerprint("s", "title one", d);
    assert_int_equal(strlen(a), 16);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    assert_string_not_equal(a, d);
    /* the separator keeps ("ab", "c") apart from ("a", "bc") */
    te_rec_fingerprint("ab", "c", a);
    te_rec_fingerprint("a", "bc", b);
    assert_string_not_equal(a, b);
}

static void test_dedup_across_runs(void **state)
{
    fx_t *f = *state;
    te_recs_run_stats_t s;
    te_rec_t v[2] = {rec("downgrade", "warning", "use a cheaper tier", NULL, "{\"calls\":12}"),
                     rec("downgrade", "info", "second finding", NULL, NULL)};
    save(f->st, "downgrade", v, 2, T0, &s);
    assert_int_equal(s.opened, 2);
    assert_int_equal(s.seen + s.reopened + s.resolved, 0);
    save(f->st, "downgrade", v, 2, T0 + HOUR, &s);
    assert_int_equal(s.opened, 0);
    assert_int_equal(s.seen, 2);

    listed_t l;
    list(f->st, NULL, NULL, NULL, &l);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.v[0].title, "use a cheaper tier"); /* warning before info */
    assert_int_equal(l.v[0].count, 2);
    assert_true(l.v[0].first_seen_ns == T0);
    assert_true(l.v[0].last_seen_ns == T0 + HOUR);
    assert_string_equal(l.v[0].state, "open");
    assert_string_equal(l.v[0].evidence_json, "{\"calls\":12}");
    assert_null(l.v[1].evidence_json);
    int64_t id0 = l.v[0].id;
    clear_all(l.v, l.n);

    /* a finding given twice in one run counts once */
    te_rec_t twice[2] = {rec("downgrade", "warning", "use a cheaper tier", NULL, NULL),
                         rec("downgrade", "warning", "use a cheaper tier", NULL, NULL)};
    save(f->st, "downgrade", twice, 2, T0 + 2 * HOUR, &s);
    assert_int_equal(s.seen, 1);
    assert_int_equal(s.resolved, 1); /* "second finding" was not returned */
    list(f->st, "open", NULL, NULL, &l);
    assert_int_equal(l.n, 1);
    assert_true(l.v[0].id == id0);
    assert_int_equal(l.v[0].count, 3);
    clear_all(l.v, l.n);
    clear_all(v, 2);
    clear_all(twice, 2);
}

static void test_key_identifies_across_titles(void **state)
{
    fx_t *f = *state;
    te_rec_t a = rec("models", "warning", "m-1 fails 8.0% of calls", "m-1", NULL);
    save(f->st, "models", &a, 1, T0, NULL);
    te_rec_t b = rec("models", "critical", "m-1 fails 12.5% of calls", "m-1", NULL);
    te_recs_run_stats_t s;
    save(f->st, "models", &b, 1, T0 + HOUR, &s);
    assert_int_equal(s.seen, 1);
    listed_t l;
    list(f->st, NULL, NULL, NULL, &l);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0].title, "m-1 fails 12.5% of calls"); /* texts follow the run */
    assert_string_equal(l.v[0].severity, "critical");
    assert_int_equal(l.v[0].count, 2);
    clear_all(l.v, l.n);
    te_rec_clear(&a);
    te_rec_clear(&b);
}

static void test_resolve_and_reopen(void **state)
{
    fx_t *f = *state;
    te_recs_run_stats_t s;
    te_rec_t a = rec("steps", "info", "step x dominates", NULL, NULL);
    save(f->st, "steps", &a, 1, T0, NULL);
    save(f->st, "steps", NULL, 0, T0 + HOUR, &s); /* the data no longer shows it */
    assert_int_equal(s.resolved, 1);
    listed_t l;
    list(f->st, "resolved", NULL, NULL, &l);
    assert_int_equal(l.n, 1);
    assert_true(l.v[0].resolved_ns == T0 + HOUR);
    int64_t id = l.v[0].id;
    clear_all(l.v, l.n);
    list(f->st, "open", NULL, NULL, &l);
    assert_int_equal(l.n, 0);

    /* a later run that sees it again reopens the same row */
    save(f->st, "steps", &a, 1, T0 + 2 * HOUR, &s);
    assert_int_equal(s.reopened, 1);
    assert_int_equal(s.opened, 0);
    list(f->st, "open", NULL, NULL, &l);
    assert_int_equal(l.n, 1);
    assert_true(l.v[0].id == id);
    assert_int_equal(l.v[0].count, 2);
    assert_true(l.v[0].resolved_ns == 0);
    assert_true(l.v[0].first_seen_ns == T0);
    clear_all(l.v, l.n);
    te_rec_clear(&a);
}

static void test_runs_are_per_recommender(void **state)
{
    fx_t *f = *state;
    te_rec_t a = rec("alpha", "warning", "same title", NULL, NULL);
    te_rec_t b = rec("beta", "warning", "same title", NULL, NULL);
    save(f->st, "alpha", &a, 1, T0, NULL);
    save(f->st, "beta", &b, 1, T0, NULL);
    te_recs_run_stats_t s;
    save(f->st, "alpha", NULL, 0, T0 + HOUR, &s); /* resolves alpha's only */
    assert_int_equal(s.resolved, 1);
    listed_t l;
    list(f->st, "open", NULL, NULL, &l);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0].name, "beta");
    clear_all(l.v, l.n);
    list(f->st, "all", NULL, "alpha", &l);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0].state, "resolved");
    clear_all(l.v, l.n);
    te_rec_clear(&a);
    te_rec_clear(&b);
}

static void test_filters_and_checks(void **state)
{
    fx_t *f = *state;
    te_rec_t v[3] = {rec("r", "info", "i", NULL, NULL), rec("r", "critical", "c", NULL, NULL),
                     rec("r", "warning", "w", NULL, NULL)};
    save(f->st, "r", v, 3, T0, NULL);
    listed_t l;
    list(f->st, NULL, NULL, NULL, &l);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.v[0].severity, "critical");
    assert_string_equal(l.v[1].severity, "warning");
    assert_string_equal(l.v[2].severity, "info");
    clear_all(l.v, l.n);
    list(f->st, "open", "warning", NULL, &l);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0].title, "w");
    clear_all(l.v, l.n);

    te_err_t err = {0};
    assert_int_equal(te_store_recs_filter_check("open", "info", &err), 0);
    assert_int_equal(te_store_recs_filter_check(NULL, NULL, &err), 0);
    assert_int_equal(te_store_recs_filter_check("closed", NULL, &err), TE_EINVAL);
    assert_string_equal(err.msg, "state must be open, resolved or all, got \"closed\"");
    assert_int_equal(te_store_recs_filter_check(NULL, "high", &err), TE_EINVAL);
    assert_string_equal(err.msg, "severity must be info, warning or critical, got \"high\"");

    /* a finding without a title is refused and nothing changes */
    te_rec_t bad = rec("r", "info", "x", NULL, NULL);
    free(bad.title);
    bad.title = NULL;
    assert_int_equal(te_store_recs_save_run(f->st, "r", &bad, 1, T0 + HOUR, NULL, &err),
                     TE_EINVAL);
    list(f->st, "open", NULL, NULL, &l);
    assert_int_equal(l.n, 3);
    clear_all(l.v, l.n);
    te_rec_clear(&bad);
    clear_all(v, 3);
}

static void test_json_object(void **state)
{
    fx_t *f = *state;
    te_rec_t a = rec("r", "warning", "t", NULL, "{\"saving_usd\":12.5,\"calls\":[1,2]}");
    save(f->st, "r", &a, 1, T0, NULL);
    cJSON *root = NULL;
    te_err_t err = {0};
    te_recs_filter_t flt = {.state = "open"};
    assert_int_equal(te_store_recs_list_json(f->st, &flt, 10, &root, &err), 0);
    char *text = cJSON_PrintUnformatted(root);
    const char *want = "{\"recommendations\":[{\"id\":1,\"name\":\"r\",\"fingerprint\":\"";
    assert_memory_equal(text, want, strlen(want));
    cJSON *o = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "recommendations"), 0);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(o, "first_seen")),
                        "2025-11-20T10:00:00Z");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(o, "resolved_at")));
    assert_true(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "evidence"), "saving_usd")->valuedouble ==
                12.5);
    assert_int_equal(cJSON_GetObjectItem(o, "count")->valueint, 1);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(o, "state")), "open");
    cJSON_free(text);
    cJSON_Delete(root);
    te_rec_clear(&a);
}

/* The engine saves through the writer's apply hook: inside its transaction.
 * A failed save must leave the outer transaction usable and unchanged. */
static void test_inside_outer_transaction(void **state)
{
    fx_t *f = *state;
    te_err_t err = {0};
    te_rec_t a = rec("r", "info", "kept", NULL, NULL);
    assert_int_equal(te_store_begin(f->st, &err), 0);
    save(f->st, "r", &a, 1, T0, NULL);
    te_rec_t bad = rec("r", "info", "x", NULL, NULL);
    bad.fingerprint[0] = '\0';
    assert_int_equal(te_store_recs_save_run(f->st, "r", &bad, 1, T0, NULL, &err), TE_EINVAL);
    assert_int_equal(te_store_commit(f->st, &err), 0);

    /* a reader on its own connection sees the committed row */
    te_store_t *ro = NULL;
    te_store_opts_t so = {.path = f->db, .readonly = true};
    assert_int_equal(te_store_open(&so, &ro, &err), 0);
    assert_int_equal(te_store_recs_init(ro, &err), 0);
    listed_t l;
    list(ro, NULL, NULL, NULL, &l);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0].title, "kept");
    clear_all(l.v, l.n);
    te_store_close(ro);
    te_rec_clear(&a);
    te_rec_clear(&bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fingerprint),
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
        T(test_dedup_across_runs),
        T(test_key_identifies_across_titles),
        T(test_resolve_and_reopen),
        T(test_runs_are_per_recommender),
        T(test_filters_and_checks),
        T(test_json_object),
        T(test_inside_outer_transaction),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
