/*
 * test_alert.c - alert instances (rules/alert): the state machine with exact
 * times, ids and fingerprints, summary templates, the webhook JSON text,
 * and persistence in a real SQLite file (store/alerts).
 *
 * THREAD: main only. Virtual time only.
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
#include <unistd.h>

#include "rules/alert.h"
#include "store/alerts.h"
#include "store/store.h"
#include "store/store_int.h"

#define S INT64_C(1000000000)
#define T0 (INT64_C(1800000000) * S) /* 2027-01-15T08:00:00Z */

static void mk(te_alert_t *a)
{
    const char *keys[] = {"provider", "model"};
    const char *vals[] = {"openai", "m"};
    char *lk[] = {"team"}, *lv[] = {"llm-platform"};
    char *nt[] = {"stdout", "slack-ops"};
    te_alert_init(a);
    assert_int_equal(te_alert_set_identity(a, "llm-error-rate", keys, vals, 2), 0);
    assert_int_equal(te_alert_set_labels(a, lk, lv, 1), 0);
    assert_int_equal(te_alert_set_notify(a, nt, 2), 0);
    a->severity = TE_SEV_WARNING;
}

static void step_pending_then_firing_after_pending(void **state)
{
    (void)state;
    te_alert_t a;
    uint64_t rng = 42;
    te_alert_policy_t p = {60 * S, 0, 0};
    mk(&a);
    assert_int_equal(te_alert_step(&a, &p, false, T0, &rng), TE_ALERT_T_NONE);
    assert_int_equal(a.state, TE_ALERT_INACTIVE);
    assert_int_equal(te_alert_step(&a, &p, true, T0 + 30 * S, &rng), TE_ALERT_T_PENDING);
    assert_int_equal(a.state, TE_ALERT_PENDING);
    char id[17];
    memcpy(id, a.id, 17);
    assert_int_equal(strlen(id), 16);
    assert_true(a.active_at_ns == T0 + 30 * S);
    /* one step short of pending: still pending */
    assert_int_equal(te_alert_step(&a, &p, true, T0 + 89 * S, &rng), TE_ALERT_T_NONE);
    assert_int_equal(a.state, TE_ALERT_PENDING);
    assert_int_equal(te_alert_step(&a, &p, true, T0 + 90 * S, &rng), TE_ALERT_T_FIRING);
    assert_int_equal(a.state, TE_ALERT_FIRING);
    assert_string_equal(a.id, id); /* one id from pending to resolved */
    assert_true(a.starts_at_ns == T0 + 90 * S);
    assert_true(a.ends_at_ns == 0);
    assert_int_equal(te_alert_step(&a, &p, false, T0 + 120 * S, &rng), TE_ALERT_T_RESOLVED);
    assert_int_equal(a.state, TE_ALERT_RESOLVED);
    assert_true(a.ends_at_ns == T0 + 120 * S);
    assert_string_equal(a.id, id);
    te_alert_clear(&a);
}

static void step_pending_false_clears_without_firing(void **state)
{
    (void)state;
    te_alert_t a;
    uint64_t rng = 1;
    te_alert_policy_t p = {60 * S, 0, 0};
    mk(&a);
    assert_int_equal(te_alert_step(&a, &p, true, T0, &rng), TE_ALERT_T_PENDING);
    assert_int_equal(te_alert_step(&a, &p, false, T0 + 30 * S, &rng), TE_ALERT_T_CLEARED);
    assert_int_equal(a.state, TE_ALERT_INACTIVE);
    te_alert_clear(&a);
}

static void step_zero_pending_fires_at_once(void **state)
{
    (void)state;
    te_alert_t a;
    uint64_t rng = 1;
    te_alert_policy_t p = {0, 0, 0};
    mk(&a);
    assert_int_equal(te_alert_step(&a, &p, true, T0, &rng), TE_ALERT_T_FIRING);
    assert_true(a.active_at_ns == T0 && a.starts_at_ns == T0);
    te_alert_clear(&a);
}

static void step_keep_firing_holds_until_elapsed(void **state)
{
    (void)state;
    te_alert_t a;
    uint64_t rng = 1;
    te_alert_policy_t p = {0, 120 * S, 0};
    mk(&a);
    assert_int_equal(te_alert_step(&a, &p, true, T0, &rng), TE_ALERT_T_FIRING);
    assert_int_equal(te_alert_step(&a, &p, false, T0 + 30 * S, &rng), TE_ALERT_T_NONE);
    /* true again resets the keep_firing clock */
    assert_int_equal(te_alert_step(&a, &p, true, T0 + 60 * S, &rng), TE_ALERT_T_NONE);
    assert_int_equal(te_alert_step(&a, &p, false, T0 + 90 * S, &rng), TE_ALERT_T_NONE);
    assert_int_equal(te_alert_step(&a, &p, false, T0 + 209 * S, &rng), TE_ALERT_T_NONE);
    assert_int_equal(a.state, TE_ALERT_FIRING);
    assert_int_equal(te_alert_step(&a, &p, false, T0 + 210 * S, &rng), TE_ALERT_T_RESOLVED);
    assert_true(a.ends_at_ns == T0 + 210 * S);
    te_alert_clear(&a);
}

static void step_new_episode_gets_new_id_same_fingerprint(void **state)
{
    (void)state;
    te_alert_t a;
    uint64_t rng = 7;
    te_alert_policy_t p = {0, 0, 0};
    mk(&a);
    char fp[17], id[17];
    memcpy(fp, a.fingerprint, 17);
    te_alert_step(&a, &p, true, T0, &rng);
    memcpy(id, a.id, 17);
    te_alert_step(&a, &p, false, T0 + S, &rng);
    assert_int_equal(te_alert_step(&a, &p, true, T0 + 2 * S, &rng), TE_ALERT_T_FIRING);
    assert_string_not_equal(a.id, id);
    assert_string_equal(a.fingerprint, fp);
    assert_true(a.ends_at_ns == 0);
    te_alert_clear(&a);
}

static void step_repeat_every_renotifies(void **state)
{
    (void)state;
    te_alert_t a;
    uint64_t rng = 7;
    te_alert_policy_t p = {0, 0, 60 * S};
    mk(&a);
    assert_int_equal(te_alert_step(&a, &p, true, T0, &rng), TE_ALERT_T_FIRING);
    assert_int_equal(te_alert_step(&a, &p, true, T0 + 59 * S, &rng), TE_ALERT_T_NONE);
    assert_int_equal(te_alert_step(&a, &p, true, T0 + 60 * S, &rng), TE_ALERT_T_REPEAT);
    assert_int_equal(te_alert_step(&a, &p, true, T0 + 90 * S, &rng), TE_ALERT_T_NONE);
    assert_int_equal(te_alert_step(&a, &p, true, T0 + 120 * S, &rng), TE_ALERT_T_REPEAT);
    te_alert_clear(&a);
}

static void ids_are_deterministic_per_seed(void **state)
{
    (void)state;
    uint64_t r1 = 99, r2 = 99, r3 = 100;
    char a[17], b[17], c[17];
    te_alert_new_id(&r1, a);
    te_alert_new_id(&r2, b);
    te_alert_new_id(&r3, c);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    te_alert_new_id(&r1, b);
    assert_string_not_equal(a, b);
}

static void fingerprint_depends_on_rule_and_values(void **state)
{
    (void)state;
    const char *v1[] = {"a", "b"}, *v2[] = {"ab", ""}, *v3[] = {"a", NULL}, *v4[] = {"a", ""};
    char f1[17], f2[17], f3[17], f4[17], f5[17];
    te_alert_fingerprint("r", v1, 2, f1);
    te_alert_fingerprint("r", v2, 2, f2);
    te_alert_fingerprint("r", v3, 2, f3);
    te_alert_fingerprint("r", v4, 2, f4);
    te_alert_fingerprint("s", v1, 2, f5);
    assert_string_not_equal(f1, f2);
    assert_string_equal(f3, f4); /* a missing tag is "" */
    assert_string_not_equal(f1, f5);
}

static void render_template_filters(void **state)
{
    (void)state;
    te_alert_t a;
    te_err_t err;
    mk(&a);
    a.has_value = true;
    a.value = 0.083;
    char *s = te_alert_render("{{provider}}/{{ model }} error rate {{value|pct}} (5m)", &a, &err);
    assert_non_null(s);
    assert_string_equal(s, "openai/m error rate 8.3% (5m)");
    free(s);
    a.value = 12.6;
    s = te_alert_render("{{value}} {{value|round}} {{labels.team}} {{rule}} {{severity}}", &a,
                        &err);
    assert_string_equal(s, "12.6 13 llm-platform llm-error-rate warning");
    free(s);
    a.has_value = false;
    s = te_alert_render("v={{value}} p={{value|pct}}", &a, &err);
    assert_string_equal(s, "v= p=");
    free(s);
    te_alert_clear(&a);
}

static void render_template_errors_name_the_problem(void **state)
{
    (void)state;
    te_alert_t a;
    te_err_t err;
    mk(&a);
    assert_null(te_alert_render("x {{value|pc}}", &a, &err));
    assert_int_equal(err.code, TE_EINVAL);
    assert_string_equal(err.msg, "summary: unknown filter \"pc\" in {{value|pc}}");
    assert_null(te_alert_render("x {{region}}", &a, &err));
    assert_non_null(strstr(err.msg, "unknown name {{region}}"));
    assert_null(te_alert_render("x {{labels.owner}}", &a, &err));
    assert_string_equal(err.msg, "summary: unknown label {{labels.owner}}");
    assert_null(te_alert_render("ab {{value", &a, &err));
    assert_string_equal(err.msg, "summary: unclosed \"{{\" at offset 3");
    assert_null(te_alert_render("{{provider|pct}}", &a, &err));
    te_alert_clear(&a);
}

static void webhook_json_exact_text(void **state)
{
    (void)state;
    te_alert_t a;
    uint64_t rng = 1;
    te_alert_policy_t p = {0, 0, 0};
    mk(&a);
    a.has_value = true;
    a.value = 0.083;
    te_alert_step(&a, &p, true, T0 + 123 * S / 1000, &rng);
    te_alert_set_summary(&a, "openai/m error rate 8.3% (5m)");
    char *j = te_alert_to_json(&a, NULL);
    char want[1024];
    snprintf(want, sizeof(want),
             "{\"version\":1,\"status\":\"firing\",\"alert\":{\"id\":\"%s\",\"rule\":"
             "\"llm-error-rate\",\"fingerprint\":\"%s\",\"severity\":\"warning\","
             "\"group\":{\"provider\":\"openai\",\"model\":\"m\"},\"labels\":{\"team\":"
             "\"llm-platform\"},\"value\":0.083,\"summary\":\"openai/m error rate 8.3%% (5m)\","
             "\"starts_at\":\"2027-01-15T08:00:00.123Z\",\"ends_at\":null}}",
             a.id, a.fingerprint);
    assert_string_equal(j, want);
    free(j);
    te_alert_step(&a, &p, false, T0 + 60 * S, &rng);
    a.has_value = false;
    j = te_alert_to_json(&a, NULL);
    assert_non_null(strstr(j, "\"status\":\"resolved\""));
    assert_non_null(strstr(j, "\"value\":null"));
    assert_non_null(strstr(j, "\"ends_at\":\"2027-01-15T08:01:00Z\"}}"));
    free(j);
    te_alert_clear(&a);
}

static void force_resolve_records_reason(void **state)
{
    (void)state;
    te_alert_t a, b;
    uint64_t rng = 1;
    te_alert_policy_t p = {0, 0, 0};
    mk(&a);
    assert_int_equal(te_alert_force_resolve(&a, "rule removed", T0), TE_ALERT_T_NONE);
    te_alert_step(&a, &p, true, T0, &rng);
    assert_int_equal(te_alert_force_resolve(&a, "rule removed", T0 + S), TE_ALERT_T_RESOLVED);
    assert_string_equal(a.reason, "rule removed");
    te_alert_init(&b);
    assert_int_equal(te_alert_copy(&b, &a), 0);
    assert_string_equal(b.reason, "rule removed");
    assert_string_equal(b.fingerprint, a.fingerprint);
    assert_string_equal(b.group_values[1], "m");
    te_alert_clear(&a);
    te_alert_clear(&b);
}

/* --- store --- */

typedef struct loaded {
    int n;
    te_alert_t a[4];
} loaded;

static int on_load(void *ud, const te_alert_t *a)
{
    loaded *l = ud;
    te_alert_init(&l->a[l->n]);
    assert_int_equal(te_alert_copy(&l->a[l->n++], a), 0);
    return 0;
}

/* Sets the group_json of row id to invalid JSON (state stays firing). */
static void sqlite_corrupt_state(te_store_t *st, const char *id)
{
    sqlite3 *db = ((struct te_store *)st)->db;
    char sql[200];
    snprintf(sql, sizeof(sql), "UPDATE alerts SET group_json = '{bad' WHERE id = '%s'", id);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
}

static void store_round_trip_keeps_active_alerts(void **state)
{
    (void)state;
    char dir[] = "/tmp/te_alert_XXXXXX", path[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/t.db", dir);
    te_store_opts_t o = {.path = path};
    te_store_t *st = NULL;
    te_err_t err;
    assert_int_equal(te_store_open(&o, &st, &err), 0);
    assert_int_equal(te_store_alerts_init(st, &err), 0);
    assert_int_equal(te_store_alerts_init(st, &err), 0); /* idempotent */

    te_alert_t a, b;
    uint64_t rng = 5;
    te_alert_policy_t p = {30 * S, 0, 0};
    mk(&a);
    mk(&b);
    const char *bk[] = {"provider", "model"}, *bv[] = {"anthropic", "c"};
    te_alert_set_identity(&b, "llm-error-rate", bk, bv, 2);
    /* a: pending then firing (2 history rows); b: firing then resolved */
    assert_int_equal(te_alert_step(&a, &p, true, T0, &rng), TE_ALERT_T_PENDING);
    assert_int_equal(te_store_alerts_save(st, &a, TE_ALERT_T_PENDING, &err), 0);
    a.has_value = true;
    a.value = 0.25;
    te_alert_set_summary(&a, "openai/m 25.0%");
    assert_int_equal(te_alert_step(&a, &p, true, T0 + 30 * S, &rng), TE_ALERT_T_FIRING);
    assert_int_equal(te_store_alerts_save(st, &a, TE_ALERT_T_FIRING, &err), 0);
    p.pending_ns = 0;
    assert_int_equal(te_alert_step(&b, &p, true, T0, &rng), TE_ALERT_T_FIRING);
    assert_int_equal(te_store_alerts_save(st, &b, TE_ALERT_T_FIRING, &err), 0);
    assert_int_equal(te_alert_step(&b, &p, false, T0 + 10 * S, &rng), TE_ALERT_T_RESOLVED);
    assert_int_equal(te_store_alerts_save(st, &b, TE_ALERT_T_RESOLVED, &err), 0);
    int64_t n = 0;
    assert_int_equal(te_store_alerts_history_count(st, a.id, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(te_store_alerts_history_count(st, b.id, &n, &err), 0);
    assert_int_equal(n, 2);
    /* an alert without id is refused */
    te_alert_t none;
    te_alert_init(&none);
    assert_int_equal(te_store_alerts_save(st, &none, TE_ALERT_T_NONE, &err), TE_EINVAL);
    te_store_close(st);

    /* "restart": reopen the file, load the active ones */
    st = NULL;
    assert_int_equal(te_store_open(&o, &st, &err), 0);
    assert_int_equal(te_store_alerts_init(st, &err), 0);
    loaded l = {0};
    assert_int_equal(te_store_alerts_load_active(st, on_load, &l, &err), 0);
    assert_int_equal(l.n, 1);
    te_alert_t *r = &l.a[0];
    assert_string_equal(r->id, a.id);
    assert_string_equal(r->fingerprint, a.fingerprint);
    assert_string_equal(r->rule, "llm-error-rate");
    assert_int_equal(r->state, TE_ALERT_FIRING);
    assert_int_equal(r->severity, TE_SEV_WARNING);
    assert_int_equal(r->ngroup, 2);
    assert_string_equal(r->group_keys[0], "provider");
    assert_string_equal(r->group_values[1], "m");
    assert_int_equal(r->nlabels, 1);
    assert_string_equal(r->label_values[0], "llm-platform");
    assert_int_equal(r->nnotify, 2);
    assert_string_equal(r->notify[1], "slack-ops");
    assert_true(r->has_value && r->value == 0.25);
    assert_string_equal(r->summary, "openai/m 25.0%");
    assert_true(r->active_at_ns == T0 && r->starts_at_ns == T0 + 30 * S && r->ends_at_ns == 0);
    char *j1 = te_alert_to_json(r, NULL), *j2 = te_alert_to_json(&a, NULL);
    assert_string_equal(j1, j2);
    free(j1);
    free(j2);
    te_alert_clear(r);

    /* a corrupt row is reported by id, not loaded */
    assert_int_equal(te_store_alerts_save(st, &a, TE_ALERT_T_NONE, &err), 0);
    sqlite_corrupt_state(st, a.id);
    l.n = 0;
    assert_int_equal(te_store_alerts_load_active(st, on_load, &l, &err), TE_EPARSE);
    assert_non_null(strstr(err.msg, a.id));
    te_alert_clear(&a);
    te_alert_clear(&b);
    te_store_close(st);
    unlink(path);
    char side[300];
    snprintf(side, sizeof(side), "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof(side), "%s-shm", path);
    unlink(side);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(step_pending_then_firing_after_pending),
        cmocka_unit_test(step_pending_false_clears_without_firing),
        cmocka_unit_test(step_zero_pending_fires_at_once),
        cmocka_unit_test(step_keep_firing_holds_until_elapsed),
        cmocka_unit_test(step_new_episode_gets_new_id_same_fingerprint),
        cmocka_unit_test(step_repeat_every_renotifies),
        cmocka_unit_test(ids_are_deterministic_per_seed),
        cmocka_unit_test(fingerprint_depends_on_rule_and_values),
        cmocka_unit_test(render_template_filters),
        cmocka_unit_test(render_template_errors_name_the_problem),
        cmocka_unit_test(webhook_json_exact_text),
        cmocka_unit_test(force_resolve_records_reason),
        cmocka_unit_test(store_round_trip_keeps_active_alerts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
