/*
 * test_dispatch.c - the notification dispatcher (alerts/dispatch): single
 * deliveries, grouping (group_wait, group_interval, group_by, the 1000
 * alert split), notifiers without send_group, failed deliveries retried
 * later, health counters and the in-flight limit.
 *
 * THREAD: main only (one real uv loop per test).
 *
 * The notifier here is a test double of the transport only (the
 * dispatcher is what is under test): it records every send/send_group
 * call and completes it later from a uv timer, never inside send, as
 * notify.h requires. Waits are conditions with deadlines on the loop; the
 * dispatcher reads the real clock, so timings are checked as lower bounds
 * (a group never goes out before group_wait).
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

#include <uv.h>

#include "alerts/dispatch.h"
#include "alerts/notify.h"
#include "core/time.h"
#include "rules/alert.h"

#define MS INT64_C(1000000)
#define MAX_CALLS 64

/* ---- the test double notifier ---- */

typedef struct call {
    int64_t at_ns;
    size_t count;     /* alerts in the message (1 for send) */
    bool group;       /* send_group */
    char rule[32];    /* of the first alert */
    char status[16];  /* of the first alert */
} call_t;

typedef struct fake {
    te_notifier_t n;
    int fail;                  /* the next `fail` deliveries fail */
    int fail_sync;             /* the next `fail_sync` calls return an error from send */
    size_t ncalls, alerts;     /* calls recorded (up to MAX_CALLS), alerts in all calls */
    size_t sends, send_groups; /* every call, also past MAX_CALLS */
    call_t calls[MAX_CALLS];
    size_t in_flight, max_in_flight;
} fake_t;

typedef struct done_ctx {
    uv_timer_t t;
    fake_t *f;
    te_notify_done_cb done;
    void *ud;
    int rc;
} done_ctx_t;

static void done_closed(uv_handle_t *h)
{
    free(h->data);
}

static void complete(uv_timer_t *t)
{
    done_ctx_t *c = t->data;
    c->f->in_flight--;
    c->done(c->rc, c->rc ? "receiver said no" : NULL, c->ud);
    uv_close((uv_handle_t *)&c->t, done_closed);
}

static int record(fake_t *f, const te_alert_t *a, const char *status, size_t count, bool group,
                  te_notify_done_cb done, void *ud)
{
    if (f->fail_sync > 0) {
        f->fail_sync--;
        return TE_EIO;
    }
    if (f->ncalls < MAX_CALLS) {
        call_t *c = &f->calls[f->ncalls++];
        c->at_ns = te_time_now_ns();
        c->count = count;
        c->group = group;
        snprintf(c->rule, sizeof(c->rule), "%s", a->rule);
        snprintf(c->status, sizeof(c->status), "%s", status);
    }
    f->alerts += count;
    if (group)
        f->send_groups++;
    else
        f->sends++;
    done_ctx_t *d = calloc(1, sizeof(*d));
    assert_non_null(d);
    d->f = f;
    d->done = done;
    d->ud = ud;
    d->rc = 0;
    if (f->fail > 0) {
        f->fail--;
        d->rc = TE_EIO;
    }
    f->in_flight++;
    if (f->in_flight > f->max_in_flight)
        f->max_in_flight = f->in_flight;
    uv_timer_init(f->n.loop, &d->t);
    d->t.data = d;
    uv_timer_start(&d->t, complete, 2, 0);
    return 0;
}

static int fake_send(te_notifier_t *n, const te_alert_t *a, const char *status,
                     te_notify_done_cb done, void *ud)
{
    return record(n->impl, a, status, 1, false, done, ud);
}

static int fake_send_group(te_notifier_t *n, const te_alert_t *const *a,
                           const char *const *status, size_t count, te_notify_done_cb done,
                           void *ud)
{
    for (size_t i = 0; i < count; i++)
        assert_non_null(a[i]->rule);
    return record(n->impl, a[0], status[0], count, true, done, ud);
}

static void fake_init(fake_t *f, uv_loop_t *loop, const char *name, bool with_group)
{
    memset(f, 0, sizeof(*f));
    f->n.name = (char *)name;
    f->n.type = (char *)"fake";
    f->n.loop = loop;
    f->n.send = fake_send;
    f->n.send_group = with_group ? fake_send_group : NULL;
    f->n.impl = f;
}

/* ---- results ---- */

typedef struct res {
    size_t n, ok, failed, final_failed;
    int64_t last_id, last_attempts;
    int last_rc;
    bool last_final;
    char last_msg[64];
} res_t;

static void on_result(void *ud, int64_t id, int rc, const char *msg, int64_t attempts,
                      bool final)
{
    res_t *r = ud;
    r->n++;
    if (rc == 0) {
        assert_true(final);
        r->ok++;
    } else if (final) {
        r->final_failed++;
    } else {
        r->failed++;
    }
    r->last_id = id;
    r->last_rc = rc;
    r->last_attempts = attempts;
    r->last_final = final;
    snprintf(r->last_msg, sizeof(r->last_msg), "%s", msg ? msg : "");
}

/* ---- the loop: run until a condition, with a deadline ---- */

typedef struct env {
    uv_loop_t loop;
    uv_timer_t poll, deadline;
    bool (*pred)(struct env *);
    bool timed_out;
    fake_t f[2];
    res_t r;
    te_dispatch_t *d;
    size_t want_ok, want_results;
} env_t;

static void on_poll(uv_timer_t *t)
{
    env_t *e = t->data;
    if (e->pred && e->pred(e))
        uv_stop(&e->loop);
}

static void on_deadline(uv_timer_t *t)
{
    env_t *e = t->data;
    e->timed_out = true;
    uv_stop(&e->loop);
}

/* Runs the loop until pred holds (true) or ms pass (false). pred NULL: ms. */
static bool run_until(env_t *e, bool (*pred)(env_t *), uint64_t ms)
{
    e->pred = pred;
    e->timed_out = false;
    if (!pred || !pred(e)) {
        uv_timer_start(&e->poll, on_poll, 1, 1);
        uv_timer_start(&e->deadline, on_deadline, ms, 0);
        uv_run(&e->loop, UV_RUN_DEFAULT);
        uv_timer_stop(&e->poll);
        uv_timer_stop(&e->deadline);
    }
    return pred ? pred(e) : true;
}

static bool results_reached(env_t *e)
{
    return e->r.n >= e->want_results;
}

static bool ok_reached(env_t *e)
{
    return e->r.ok >= e->want_ok;
}

static bool idle(env_t *e)
{
    return e->f[0].in_flight == 0 && e->f[1].in_flight == 0;
}

static void env_start(env_t *e, const te_group_opts_t *g0, const te_group_opts_t *g1,
                      bool group0, bool group1, size_t n)
{
    memset(e, 0, sizeof(*e));
    assert_int_equal(uv_loop_init(&e->loop), 0);
    uv_timer_init(&e->loop, &e->poll);
    uv_timer_init(&e->loop, &e->deadline);
    e->poll.data = e->deadline.data = e;
    fake_init(&e->f[0], &e->loop, "ops", group0);
    fake_init(&e->f[1], &e->loop, "pager", group1);
    te_notifier_t *ns[2] = {&e->f[0].n, &e->f[1].n};
    te_group_opts_t gs[2] = {{0}, {0}};
    if (g0)
        gs[0] = *g0;
    if (g1)
        gs[1] = *g1;
    e->d = te_dispatch_new(&e->loop, ns, gs, n, 0, on_result, &e->r);
    assert_non_null(e->d);
}

static void env_stop(env_t *e)
{
    /* let deliveries in flight finish so every handle is closed */
    assert_true(run_until(e, idle, 5000));
    te_dispatch_close(e->d);
    uv_close((uv_handle_t *)&e->poll, NULL);
    uv_close((uv_handle_t *)&e->deadline, NULL);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    te_dispatch_free(e->d);
    assert_int_equal(uv_loop_close(&e->loop), 0);
}

static void mk(te_alert_t *a, const char *rule, int i)
{
    char v[32];
    snprintf(v, sizeof(v), "p%d", i);
    const char *keys[] = {"provider"};
    const char *vals[] = {v};
    te_alert_init(a);
    assert_int_equal(te_alert_set_identity(a, rule, keys, vals, 1), 0);
    a->state = TE_ALERT_FIRING;
    a->starts_at_ns = INT64_C(1800000000000000000);
    snprintf(a->id, sizeof(a->id), "%016x", (unsigned)i + 1);
}

static void enqueue(env_t *e, int64_t id, const char *notifier, const char *rule, int i,
                    const char *status)
{
    te_alert_t a;
    mk(&a, rule, i);
    assert_int_equal(te_dispatch_enqueue(e->d, id, notifier, &a, status, te_time_now_ns(), 0),
                     0);
    te_alert_clear(&a);
}

/* ---- tests ---- */

static void no_grouping_one_send_each(void **state)
{
    (void)state;
    env_t e;
    env_start(&e, NULL, NULL, true, true, 2);
    enqueue(&e, 1, "ops", "err-rate", 1, "firing");
    enqueue(&e, 2, "ops", "err-rate", 2, "resolved");
    enqueue(&e, 3, "pager", "latency", 3, "flapping");
    te_alert_t a;
    mk(&a, "x", 9);
    assert_int_equal(te_dispatch_enqueue(e.d, 4, "nobody", &a, "firing", 0, 0), TE_ENOTFOUND);
    te_alert_clear(&a);
    e.want_ok = 3;
    assert_true(run_until(&e, ok_reached, 5000));
    assert_int_equal(e.r.n, 3); /* nothing for the unknown notifier */
    assert_int_equal(e.f[0].sends, 2);
    assert_int_equal(e.f[0].send_groups, 0);
    assert_int_equal(e.f[1].sends, 1);
    assert_string_equal(e.f[0].calls[0].status, "firing");
    assert_string_equal(e.f[0].calls[1].status, "resolved");
    assert_string_equal(e.f[1].calls[0].status, "flapping");
    assert_true(e.r.last_final);
    assert_int_equal(e.r.last_attempts, 1);
    assert_int_equal(e.r.last_rc, 0);

    te_notifier_health_t h[2];
    assert_int_equal(te_dispatch_health(e.d, h, 2), 2);
    assert_string_equal(h[0].name, "ops");
    assert_string_equal(h[0].type, "fake");
    assert_int_equal(h[0].sent, 2);
    assert_int_equal(h[0].failed, 0);
    assert_int_equal(h[0].queued, 0);
    assert_int_equal(h[1].sent, 1);
    assert_true(h[0].last_ok_ns > 0);
    env_stop(&e);
}

static void group_wait_makes_one_message(void **state)
{
    (void)state;
    env_t e;
    te_group_opts_t g = {NULL, 0, 50 * MS, 0};
    env_start(&e, &g, NULL, true, true, 2);
    int64_t t0 = te_time_now_ns();
    for (int i = 0; i < 50; i++)
        enqueue(&e, i + 1, "ops", "err-rate", i, "firing");
    te_notifier_health_t h;
    te_dispatch_health(e.d, &h, 1);
    assert_int_equal(h.queued, 50);
    e.want_ok = 50;
    assert_true(run_until(&e, ok_reached, 5000));
    assert_int_equal(e.f[0].send_groups, 1);
    assert_int_equal(e.f[0].sends, 0);
    assert_int_equal(e.f[0].calls[0].count, 50);
    assert_true(e.f[0].calls[0].at_ns - t0 >= 50 * MS);
    /* nothing more comes */
    run_until(&e, NULL, 80);
    assert_int_equal(e.f[0].ncalls, 1);
    te_dispatch_health(e.d, &h, 1);
    assert_int_equal(h.sent, 50);
    assert_int_equal(h.queued, 0);
    env_stop(&e);
}

static void two_rules_two_groups_and_group_by(void **state)
{
    (void)state;
    env_t e;
    te_group_opts_t g = {NULL, 0, 30 * MS, 0};
    char *by[] = {"provider"};
    te_group_opts_t g2 = {by, 1, 30 * MS, 0};
    env_start(&e, &g, &g2, true, true, 2);
    for (int i = 0; i < 10; i++) {
        enqueue(&e, i + 1, "ops", i % 2 ? "err-rate" : "latency", i, "firing");
        /* pager groups by provider: 5 providers, two rules each */
        enqueue(&e, 100 + i, "pager", i % 2 ? "err-rate" : "latency", i / 2, "firing");
    }
    e.want_ok = 20;
    assert_true(run_until(&e, ok_reached, 5000));
    assert_int_equal(e.f[0].send_groups, 2);
    assert_int_equal(e.f[0].calls[0].count + e.f[0].calls[1].count, 10);
    assert_int_equal(e.f[0].calls[0].count, 5);
    assert_string_not_equal(e.f[0].calls[0].rule, e.f[0].calls[1].rule);
    assert_int_equal(e.f[1].send_groups, 5);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(e.f[1].calls[i].count, 2);
    env_stop(&e);
}

static void group_interval_delays_later_alerts_of_a_notified_group(void **state)
{
    (void)state;
    env_t e;
    te_group_opts_t g = {NULL, 0, 20 * MS, 200 * MS};
    env_start(&e, &g, NULL, true, true, 1);
    enqueue(&e, 1, "ops", "err-rate", 1, "firing");
    e.want_ok = 1;
    assert_true(run_until(&e, ok_reached, 5000));
    int64_t first = e.f[0].calls[0].at_ns;
    /* a later alert of the same group waits group_interval after the
     * group's message; one of another group only its group_wait */
    int64_t t1 = te_time_now_ns();
    enqueue(&e, 2, "ops", "err-rate", 2, "resolved");
    enqueue(&e, 3, "ops", "latency", 3, "firing");
    enqueue(&e, 4, "ops", "err-rate", 4, "firing");
    e.want_ok = 4;
    assert_true(run_until(&e, ok_reached, 5000));
    assert_int_equal(e.f[0].ncalls, 3);
    /* latency went first, after its wait */
    assert_string_equal(e.f[0].calls[1].rule, "latency");
    assert_true(e.f[0].calls[1].at_ns - t1 >= 20 * MS);
    assert_string_equal(e.f[0].calls[2].rule, "err-rate");
    assert_int_equal(e.f[0].calls[2].count, 2);
    /* first was stamped a few µs after the flush that started the interval */
    assert_true(e.f[0].calls[2].at_ns - first >= 190 * MS);
    assert_true(e.f[0].calls[2].at_ns > e.f[0].calls[1].at_ns);
    env_stop(&e);
}

static void notifier_without_send_group_gets_separate_sends(void **state)
{
    (void)state;
    env_t e;
    te_group_opts_t g = {NULL, 0, 50 * MS, 0};
    env_start(&e, &g, NULL, false, false, 1);
    int64_t t0 = te_time_now_ns();
    for (int i = 0; i < 20; i++)
        enqueue(&e, i + 1, "ops", "err-rate", i, "firing");
    e.want_ok = 20;
    assert_true(run_until(&e, ok_reached, 5000));
    assert_int_equal(e.f[0].sends, 20);
    assert_int_equal(e.f[0].send_groups, 0);
    for (size_t i = 0; i < 20; i++)
        assert_true(e.f[0].calls[i].at_ns - t0 >= 50 * MS);
    /* at most 8 deliveries in flight per notifier */
    assert_true(e.f[0].max_in_flight <= 8);
    assert_true(e.f[0].max_in_flight >= 2);
    env_stop(&e);
}

static void in_flight_limit_without_grouping(void **state)
{
    (void)state;
    env_t e;
    env_start(&e, NULL, NULL, true, true, 1);
    for (int i = 0; i < 30; i++)
        enqueue(&e, i + 1, "ops", "err-rate", i, "firing");
    te_notifier_health_t h;
    te_dispatch_health(e.d, &h, 1);
    assert_int_equal(h.in_flight, 8);
    assert_int_equal(h.queued, 30);
    e.want_ok = 30;
    assert_true(run_until(&e, ok_reached, 5000));
    assert_int_equal(e.f[0].max_in_flight, 8);
    env_stop(&e);
}

static void failed_delivery_is_retried_later(void **state)
{
    (void)state;
    env_t e;
    env_start(&e, NULL, NULL, true, true, 2);
    te_dispatch_set_retry(e.d, 40 * MS, 80 * MS);
    e.f[0].fail = 2;
    enqueue(&e, 7, "ops", "err-rate", 1, "firing");
    e.want_results = 1;
    assert_true(run_until(&e, results_reached, 5000));
    assert_int_equal(e.r.last_id, 7);
    assert_true(e.r.last_rc < 0);
    assert_false(e.r.last_final);
    assert_int_equal(e.r.last_attempts, 1);
    assert_string_equal(e.r.last_msg, "receiver said no");
    te_notifier_health_t h[2];
    te_dispatch_health(e.d, h, 2);
    assert_int_equal(h[0].failed, 1);
    assert_int_equal(h[0].consecutive_failures, 1);
    assert_string_equal(h[0].last_error, "receiver said no");
    assert_true(h[0].last_fail_ns > 0);
    assert_int_equal(h[0].queued, 1);
    assert_int_equal(h[0].in_flight, 0);
    assert_int_equal(h[1].failed, 0); /* the other notifier is untouched */

    /* second try after >= 40 ms fails again, third after >= 80 ms succeeds */
    e.want_ok = 1;
    assert_true(run_until(&e, ok_reached, 5000));
    assert_int_equal(e.r.n, 3);
    assert_int_equal(e.r.failed, 2);
    assert_true(e.r.last_final);
    assert_int_equal(e.r.last_rc, 0);
    assert_int_equal(e.r.last_attempts, 3);
    assert_int_equal(e.f[0].ncalls, 3);
    assert_true(e.f[0].calls[1].at_ns - e.f[0].calls[0].at_ns >= 40 * MS);
    assert_true(e.f[0].calls[2].at_ns - e.f[0].calls[1].at_ns >= 80 * MS);
    te_dispatch_health(e.d, h, 2);
    assert_int_equal(h[0].sent, 1);
    assert_int_equal(h[0].failed, 2);
    assert_int_equal(h[0].consecutive_failures, 0);
    assert_int_equal(h[0].queued, 0);
    assert_true(h[0].last_ok_ns >= h[0].last_fail_ns);
    env_stop(&e);
}

static void failed_group_is_retried_and_old_rows_given_up(void **state)
{
    (void)state;
    env_t e;
    te_group_opts_t g = {NULL, 0, 10 * MS, 0};
    env_start(&e, &g, NULL, true, true, 1);
    te_dispatch_set_retry(e.d, 20 * MS, 20 * MS);
    e.f[0].fail = 1;
    for (int i = 0; i < 3; i++)
        enqueue(&e, i + 1, "ops", "err-rate", i, "firing");
    e.want_ok = 3;
    assert_true(run_until(&e, ok_reached, 5000));
    assert_int_equal(e.r.failed, 3); /* each row of the failed message */
    assert_int_equal(e.r.last_attempts, 2);

    /* a row older than max_age (24 h) that fails is given up: final */
    e.f[0].fail = 1;
    te_alert_t a;
    mk(&a, "err-rate", 5);
    int64_t old = te_time_now_ns() - 25 * 3600 * INT64_C(1000000000);
    assert_int_equal(te_dispatch_enqueue(e.d, 50, "ops", &a, "firing", old, 3), 0);
    te_alert_clear(&a);
    e.want_results = e.r.n + 1;
    assert_true(run_until(&e, results_reached, 5000));
    assert_int_equal(e.r.last_id, 50);
    assert_true(e.r.last_final);
    assert_true(e.r.last_rc < 0);
    assert_int_equal(e.r.last_attempts, 4);
    assert_int_equal(e.r.final_failed, 1);
    te_notifier_health_t h;
    te_dispatch_health(e.d, &h, 1);
    assert_int_equal(h.queued, 0);
    env_stop(&e);
}

static void send_refused_at_once_is_retried(void **state)
{
    (void)state;
    env_t e;
    te_group_opts_t g = {NULL, 0, 10 * MS, 0};
    env_start(&e, &g, NULL, true, true, 1);
    te_dispatch_set_retry(e.d, 20 * MS, 20 * MS);
    e.f[0].fail_sync = 1; /* send_group returns an error without calling back */
    for (int i = 0; i < 4; i++)
        enqueue(&e, i + 1, "ops", "err-rate", i, "firing");
    e.want_ok = 4;
    assert_true(run_until(&e, ok_reached, 5000));
    assert_int_equal(e.r.failed, 4);
    assert_int_equal(e.r.last_attempts, 2);
    te_notifier_health_t h;
    te_dispatch_health(e.d, &h, 1);
    assert_int_equal(h.failed, 1);
    assert_int_equal(h.in_flight, 0);
    assert_int_equal(h.queued, 0);
    env_stop(&e);
}

static void big_groups_split_at_1000(void **state)
{
    (void)state;
    env_t e;
    /* a long wait: queueing 2500 rows must end before the group is due,
     * even under ASan on a loaded machine */
    te_group_opts_t g = {NULL, 0, 1000 * MS, 0};
    env_start(&e, &g, NULL, true, true, 1);
    int64_t t0 = te_time_now_ns();
    for (int i = 0; i < 2500; i++)
        enqueue(&e, i + 1, "ops", "err-rate", i, "firing");
    e.want_ok = 2500;
    assert_true(te_time_now_ns() - t0 < 1000 * MS);
    assert_true(run_until(&e, ok_reached, 10000));
    assert_int_equal(e.f[0].send_groups, 3);
    assert_int_equal(e.f[0].sends, 0);
    assert_int_equal(e.f[0].alerts, 2500);
    for (size_t i = 0; i < 3; i++)
        assert_true(e.f[0].calls[i].count <= 1000);
    assert_int_equal(e.f[0].calls[0].count, 1000);
    te_notifier_health_t h;
    te_dispatch_health(e.d, &h, 1);
    assert_int_equal(h.sent, 2500);
    env_stop(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(no_grouping_one_send_each),
        cmocka_unit_test(group_wait_makes_one_message),
        cmocka_unit_test(two_rules_two_groups_and_group_by),
        cmocka_unit_test(group_interval_delays_later_alerts_of_a_notified_group),
        cmocka_unit_test(notifier_without_send_group_gets_separate_sends),
        cmocka_unit_test(in_flight_limit_without_grouping),
        cmocka_unit_test(failed_delivery_is_retried_later),
        cmocka_unit_test(failed_group_is_retried_and_old_rows_given_up),
        cmocka_unit_test(send_refused_at_once_is_retried),
        cmocka_unit_test(big_groups_split_at_1000),
    };
    return cmocka_run_group_tests(tests, 0, 0);
}
