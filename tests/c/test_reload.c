/*
 * test_reload.c - the script set (script/reload): listing, the first load,
 * reload on request, a broken edit keeping the old version, a rule moved
 * between files in one reload, deletions, a lib change reloading every
 * file, and the periodic stat picking up an edit without fs events.
 *
 * THREAD: main only; the reload jobs run on libuv's pool, results are
 * applied on this thread's loop. Waits run the loop until a condition or
 * a deadline (a guard timer), never a fixed sleep.
 */
#define _DEFAULT_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "rules/eval.h"
#include "script/reload.h"

typedef struct fx {
    char root[64];
    char rules[96], lib[96];
    uv_loop_t loop;
    te_ruleset_t *rs;
    te_reload_t *r;
    int changes;
} fx_t;

static void put(const char *dir, const char *name, const char *src)
{
    char tmp[256], path[256];
    snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs(src, f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(rename(tmp, path), 0);
}

static const char *rule_src(const char *names)
{
    /* one rule per comma-separated name */
    static char buf[2048];
    size_t n = (size_t)snprintf(buf, sizeof(buf), "local te = require \"te\"\n");
    char copy[256];
    snprintf(copy, sizeof(copy), "%s", names);
    for (char *save = NULL, *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
        n += (size_t)snprintf(buf + n, sizeof(buf) - n,
                              "te.rule { name = \"%s\", kind = \"k\", every = \"1s\","
                              " aggs = { n = te.count() },"
                              " condition = function(a) return a.n > 0 end }\n",
                              t);
    return buf;
}

static void on_change(void *ud)
{
    ((fx_t *)ud)->changes++;
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    snprintf(f->root, sizeof(f->root), "/tmp/te-reload-XXXXXX");
    assert_non_null(mkdtemp(f->root));
    snprintf(f->rules, sizeof(f->rules), "%s/rules", f->root);
    snprintf(f->lib, sizeof(f->lib), "%s/lib", f->root);
    assert_int_equal(mkdir(f->rules, 0700), 0);
    assert_int_equal(mkdir(f->lib, 0700), 0);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->rs = te_ruleset_new(NULL, NULL);
    assert_non_null(f->rs);
    *state = f;
    return 0;
}

static void start(fx_t *f, bool watch, int poll_ms)
{
    te_reload_opts_t o = {.scripts_dir = f->root,
                          .watch = watch,
                          .poll_ms = poll_ms,
                          .on_change = on_change,
                          .ud = f};
    assert_int_equal(te_reload_start(&f->loop, f->rs, &o, &f->r, NULL), 0);
}

static int teardown(void **state)
{
    fx_t *f = *state;
    te_reload_close(f->r);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    te_ruleset_free(f->rs);
    te_reload_free(f->r);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->root);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void on_guard(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

/* Runs the loop until *flag >= want or timeout_ms; returns true on success. */
static bool run_until(fx_t *f, const int *flag, int want, int timeout_ms)
{
    uv_timer_t guard;
    bool expired = false;
    uv_timer_init(&f->loop, &guard);
    guard.data = &expired;
    uv_timer_start(&guard, on_guard, (uint64_t)timeout_ms, 0);
    while (*flag < want && !expired)
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    return *flag >= want;
}

static void done_cb(void *ud)
{
    (*(int *)ud)++;
}

static void reload_now(fx_t *f)
{
    int done = 0;
    assert_int_equal(te_reload_request(f->r, done_cb, &done), 0);
    assert_true(run_until(f, &done, 1, 10000));
}

static const te_reload_file_t *file(fx_t *f, const char *name)
{
    size_t n;
    const te_reload_file_t *v = te_reload_files(f->r, &n);
    for (size_t i = 0; i < n; i++) {
        const char *slash = strrchr(v[i].path, '/');
        if (slash && strcmp(slash + 1, name) == 0)
            return &v[i];
    }
    return NULL;
}

static size_t nrules(fx_t *f)
{
    return te_ruleset_status(f->rs, NULL, NULL, 0);
}

/* ---- tests ---- */

static void list_skips_tests_hidden_and_others_sorted(void **state)
{
    fx_t *f = *state;
    put(f->rules, "b.lua", "");
    put(f->rules, "a.lua", "");
    put(f->rules, "a_test.lua", "");
    put(f->rules, "notes.txt", "");
    char **v = NULL;
    int n = te_reload_list(f->rules, &v, NULL);
    assert_int_equal(n, 2); /* the .tmp files of put() are hidden */
    assert_non_null(strstr(v[0], "/a.lua"));
    assert_non_null(strstr(v[1], "/b.lua"));
    te_reload_list_free(v, n);
    start(f, false, -1);
}

static void list_missing_folder_is_empty(void **state)
{
    fx_t *f = *state;
    char **v = NULL;
    char dir[160];
    snprintf(dir, sizeof(dir), "%s/nope", f->root);
    assert_int_equal(te_reload_list(dir, &v, NULL), 0);
    assert_null(v);
    start(f, false, -1);
    size_t n;
    te_reload_files(f->r, &n);
    assert_int_equal(n, 0);
}

static void start_loads_good_files_and_records_bad_ones(void **state)
{
    fx_t *f = *state;
    put(f->rules, "good.lua", rule_src("r1,r2"));
    put(f->rules, "bad.lua", "local te = require \"te\"\nte.rule { name = \"x\", kind = \"k\", windw = \"5m\" }\n");
    start(f, false, -1);
    assert_int_equal(f->changes, 1);
    const te_reload_file_t *g = file(f, "good.lua"), *b = file(f, "bad.lua");
    assert_non_null(g);
    assert_non_null(b);
    assert_non_null(g->live);
    assert_false(g->failed);
    assert_null(b->live);
    assert_true(b->failed);
    assert_non_null(strstr(b->error, "bad.lua:2: te.rule: unknown key \"windw\""));
    assert_int_equal(nrules(f), 2);
    assert_int_equal(te_reload_failures(f->r), 1);
}

static void broken_edit_keeps_previous_version_then_fix_loads(void **state)
{
    fx_t *f = *state;
    put(f->rules, "a.lua", rule_src("r1"));
    start(f, false, -1);
    const te_script_t *v1 = file(f, "a.lua")->live;
    uint64_t ver1 = v1->version;
    put(f->rules, "a.lua", "local te = require \"te\"\nte.rule {\n");
    reload_now(f);
    const te_reload_file_t *a = file(f, "a.lua");
    assert_true(a->failed);
    assert_ptr_equal(a->live, v1); /* still running */
    assert_int_equal(a->live->version, ver1);
    assert_non_null(strstr(a->error, "a.lua:"));
    assert_int_equal(nrules(f), 1);
    put(f->rules, "a.lua", rule_src("r1,r3"));
    reload_now(f);
    a = file(f, "a.lua");
    assert_false(a->failed);
    assert_string_equal(a->error, "");
    assert_int_not_equal(a->live->version, ver1);
    assert_int_equal(nrules(f), 2);
}

static void rule_moved_between_files_in_one_reload(void **state)
{
    fx_t *f = *state;
    put(f->rules, "a.lua", rule_src("r1"));
    put(f->rules, "b.lua", rule_src("r2"));
    start(f, false, -1);
    /* a.lua is applied first and takes r2 while b.lua still holds it */
    put(f->rules, "a.lua", rule_src("r1,r2"));
    put(f->rules, "b.lua", rule_src("r3"));
    reload_now(f);
    assert_false(file(f, "a.lua")->failed);
    assert_false(file(f, "b.lua")->failed);
    assert_int_equal(nrules(f), 3);
    assert_int_equal(te_ruleset_status(f->rs, file(f, "a.lua")->live, NULL, 0), 2);
}

static void duplicate_name_is_an_error_naming_both_files(void **state)
{
    fx_t *f = *state;
    put(f->rules, "a.lua", rule_src("r1"));
    start(f, false, -1);
    put(f->rules, "b.lua", rule_src("r1"));
    reload_now(f);
    const te_reload_file_t *b = file(f, "b.lua");
    assert_true(b->failed);
    assert_null(b->live);
    assert_non_null(strstr(b->error, "a.lua"));
    assert_int_equal(nrules(f), 1);
}

static void deleted_file_drops_its_rules(void **state)
{
    fx_t *f = *state;
    put(f->rules, "a.lua", rule_src("r1"));
    put(f->rules, "b.lua", rule_src("r2"));
    start(f, false, -1);
    char path[160];
    snprintf(path, sizeof(path), "%s/b.lua", f->rules);
    assert_int_equal(unlink(path), 0);
    reload_now(f);
    assert_null(file(f, "b.lua"));
    assert_int_equal(nrules(f), 1);
}

static void edit_is_picked_up_by_the_watcher(void **state)
{
    fx_t *f = *state;
    put(f->rules, "a.lua", rule_src("r1"));
    start(f, true, -1); /* fs events only */
    int want = f->changes + 1;
    put(f->rules, "a.lua", rule_src("r1,r2"));
    assert_true(run_until(f, &f->changes, want, 5000));
    assert_int_equal(nrules(f), 2);
}

static void edit_is_picked_up_by_the_periodic_stat(void **state)
{
    fx_t *f = *state;
    put(f->rules, "a.lua", rule_src("r1"));
    start(f, false, -1);
    /* start again with the periodic stat only (fs events off) */
    te_reload_close(f->r);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    te_ruleset_free(f->rs);
    te_reload_free(f->r);
    f->rs = te_ruleset_new(NULL, NULL);
    te_reload_opts_t o = {.scripts_dir = f->root, .watch = true, .poll_ms = 50,
                          .no_fs_events = true, .on_change = on_change, .ud = f};
    assert_int_equal(te_reload_start(&f->loop, f->rs, &o, &f->r, NULL), 0);
    int want = f->changes + 1;
    put(f->rules, "b.lua", rule_src("r2"));
    assert_true(run_until(f, &f->changes, want, 5000));
    assert_int_equal(nrules(f), 2);
}

static void lib_change_reloads_every_file(void **state)
{
    fx_t *f = *state;
    put(f->lib, "names.lua", "return { rule = \"from-lib-1\" }\n");
    put(f->rules, "a.lua", "local te = require \"te\"\nlocal names = require \"names\"\n"
                           "te.rule { name = names.rule, kind = \"k\", aggs = { n = te.count() },"
                           " condition = function(a) return a.n > 0 end }\n");
    start(f, true, 50);
    assert_false(file(f, "a.lua")->failed);
    te_rule_status_t st;
    assert_int_equal(te_ruleset_status(f->rs, NULL, &st, 1), 1);
    assert_string_equal(st.name, "from-lib-1");
    int want = f->changes + 1;
    put(f->lib, "names.lua", "return { rule = \"from-lib-2\" }\n");
    assert_true(run_until(f, &f->changes, want, 5000));
    assert_int_equal(te_ruleset_status(f->rs, NULL, &st, 1), 1);
    assert_string_equal(st.name, "from-lib-2");
}

static void close_answers_waiting_requests(void **state)
{
    fx_t *f = *state;
    put(f->rules, "a.lua", rule_src("r1"));
    start(f, false, -1);
    int done = 0;
    assert_int_equal(te_reload_request(f->r, done_cb, &done), 0);
    assert_int_equal(te_reload_request(f->r, done_cb, &done), 0);
    te_reload_close(f->r);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(done, 2);
    /* after close a request is answered at once */
    assert_int_equal(te_reload_request(f->r, done_cb, &done), 0);
    assert_int_equal(done, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(list_skips_tests_hidden_and_others_sorted, setup, teardown),
        cmocka_unit_test_setup_teardown(list_missing_folder_is_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(start_loads_good_files_and_records_bad_ones, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(broken_edit_keeps_previous_version_then_fix_loads, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(rule_moved_between_files_in_one_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(duplicate_name_is_an_error_naming_both_files, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(deleted_file_drops_its_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(edit_is_picked_up_by_the_watcher, setup, teardown),
        cmocka_unit_test_setup_teardown(edit_is_picked_up_by_the_periodic_stat, setup, teardown),
        cmocka_unit_test_setup_teardown(lib_change_reloads_every_file, setup, teardown),
        cmocka_unit_test_setup_teardown(close_answers_waiting_requests, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
