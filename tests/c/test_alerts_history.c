/*
 * test_alerts_history.c - store/alerts_history.h: the alert_history table
 * read as a stream (seq order, the group from the episode row, only what
 * comes after a seq), on a real database file, through a second read-only
 * connection as `alerts watch` uses it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/time.h"
#include "rules/alert.h"
#include "store/alerts.h"
#include "store/alerts_history.h"
#include "store/store.h"

#define S TE_NS_PER_SEC
#define T0 (INT64_C(1763632800) * S)

typedef struct seen {
    int n;
    int64_t seq[8], at[8];
    char transition[8][16], rule[8][32], group[8][128], summary[8][64];
    int has_value[8];
    double value[8];
    int stop_after;
} seen_t;

static int on_row(void *ud, const te_alert_history_row_t *r)
{
    seen_t *s = ud;
    if (s->n < 8) {
        s->seq[s->n] = r->seq;
        s->at[s->n] = r->at_ns;
        snprintf(s->transition[s->n], sizeof(s->transition[0]), "%s", r->transition);
        snprintf(s->rule[s->n], sizeof(s->rule[0]), "%s", r->rule);
        snprintf(s->group[s->n], sizeof(s->group[0]), "%s", r->group_json);
        snprintf(s->summary[s->n], sizeof(s->summary[0]), "%s", r->summary ? r->summary : "NULL");
        s->has_value[s->n] = r->has_value;
        s->value[s->n] = r->value;
    }
    s->n++;
    return s->stop_after && s->n >= s->stop_after ? 7 : 0;
}

static void history_streams_transitions_after_a_seq(void **state)
{
    (void)state;
    char dir[] = "/tmp/te_ahist_XXXXXX", path[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/t.db", dir);
    te_store_opts_t o = {.path = path};
    te_store_t *st = NULL, *ro = NULL;
    te_err_t err;
    assert_int_equal(te_store_open(&o, &st, &err), 0);
    te_store_opts_t oro = {.path = path, .readonly = true};
    assert_int_equal(te_store_open(&oro, &ro, &err), 0);

    int64_t last = -1;
    assert_int_equal(te_store_alerts_history_last_seq(ro, &last, &err), 0);
    assert_int_equal(last, 0); /* empty */

    te_alert_t a;
    te_alert_init(&a);
    const char *k[] = {"provider", "model"}, *v[] = {"openai", "m"};
    assert_int_equal(te_alert_set_identity(&a, "llm-errors", k, v, 2), 0);
    te_alert_policy_t p = {10 * S, 0, 0};
    uint64_t rng = 3;
    assert_int_equal(te_alert_step(&a, &p, true, T0, &rng), TE_ALERT_T_PENDING);
    assert_int_equal(te_store_alerts_save(st, &a, TE_ALERT_T_PENDING, &err), 0);
    a.has_value = true;
    a.value = 0.5;
    te_alert_set_summary(&a, "openai/m 50%");
    assert_int_equal(te_alert_step(&a, &p, true, T0 + 10 * S, &rng), TE_ALERT_T_FIRING);
    assert_int_equal(te_store_alerts_save(st, &a, TE_ALERT_T_FIRING, &err), 0);

    seen_t s = {0};
    assert_int_equal(te_store_alerts_history_since(ro, 0, on_row, &s, &err), 0);
    assert_int_equal(s.n, 2);
    assert_true(s.seq[0] < s.seq[1]);
    assert_string_equal(s.transition[0], "pending");
    assert_string_equal(s.transition[1], "firing");
    assert_true(s.at[1] == T0 + 10 * S);
    assert_string_equal(s.rule[1], "llm-errors");
    assert_string_equal(s.group[0], "{\"provider\":\"openai\",\"model\":\"m\"}");
    assert_string_equal(s.summary[0], "NULL");
    assert_int_equal(s.has_value[0], 0);
    assert_string_equal(s.summary[1], "openai/m 50%");
    assert_true(s.has_value[1] && s.value[1] == 0.5);

    /* only what comes after a seq; the end moves with new rows */
    assert_int_equal(te_store_alerts_history_last_seq(ro, &last, &err), 0);
    assert_true(last == s.seq[1]);
    seen_t none = {0};
    assert_int_equal(te_store_alerts_history_since(ro, last, on_row, &none, &err), 0);
    assert_int_equal(none.n, 0);
    assert_int_equal(te_alert_step(&a, &p, false, T0 + 20 * S, &rng), TE_ALERT_T_RESOLVED);
    assert_int_equal(te_store_alerts_save(st, &a, TE_ALERT_T_RESOLVED, &err), 0);
    seen_t one = {0};
    assert_int_equal(te_store_alerts_history_since(ro, last, on_row, &one, &err), 0);
    assert_int_equal(one.n, 1);
    assert_string_equal(one.transition[0], "resolved");
    assert_true(one.seq[0] > last);

    /* a callback's non-zero return stops the scan and comes back */
    seen_t stop = {.stop_after = 1};
    assert_int_equal(te_store_alerts_history_since(ro, 0, on_row, &stop, &err), 7);
    assert_int_equal(stop.n, 1);

    te_alert_clear(&a);
    te_store_close(ro);
    te_store_close(st);
    char f[300];
    const char *suffix[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(f, sizeof(f), "%s%s", path, suffix[i]);
        unlink(f);
    }
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(history_streams_transitions_after_a_seq),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
