/*
 * test_policy.c - the alert lifecycle policy (alerts/policy, alerts/silence):
 * silences, inhibition, acknowledgements, flap detection and repeats,
 * decided for real transitions of te_alert_step, plus tag matchers.
 *
 * THREAD: main only. Virtual time only: every call gets now explicitly.
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

#include <cjson/cJSON.h>

#include "alerts/policy.h"
#include "alerts/silence.h"
#include "rules/alert.h"

#define S INT64_C(1000000000)
#define M (60 * S)
#define T0 (INT64_C(1800000000) * S) /* 2027-01-15T08:00:00Z */

/* ---- helpers ---- */

static void mk(te_alert_t *a, const char *rule, const char *provider, te_severity_t sev)
{
    const char *keys[] = {"provider"};
    const char *vals[] = {provider};
    char *lk[] = {"team"}, *lv[] = {"llm-platform"};
    char *nt[] = {"ops"};
    te_alert_init(a);
    assert_int_equal(te_alert_set_identity(a, rule, keys, vals, 1), 0);
    assert_int_equal(te_alert_set_labels(a, lk, lv, 1), 0);
    assert_int_equal(te_alert_set_notify(a, nt, 1), 0);
    a->severity = sev;
}

/* One evaluation: the transition must be want; returns the policy's verdict. */
static te_verdict_t step(te_policy_t *p, te_alert_t *a, const te_alert_policy_t *ap, bool cond,
                         int64_t now, uint64_t *rng, te_alert_transition_t want)
{
    te_alert_transition_t t = te_alert_step(a, ap, cond, now, rng);
    assert_int_equal(t, want);
    return te_policy_decide(p, a, t, now);
}

static void assert_notify(te_verdict_t v, const char *status)
{
    assert_true(v.notify);
    assert_false(v.held);
    assert_string_equal(v.status, status);
}

static void assert_held(te_verdict_t v, const char *reason)
{
    assert_false(v.notify);
    assert_true(v.held);
    assert_string_equal(v.reason, reason);
}

/* A silence of one matcher text between starts and ends. */
static void silence(te_policy_t *p, const char *id, const char *matcher, int64_t starts,
                    int64_t ends)
{
    te_silence_t s;
    memset(&s, 0, sizeof(s));
    snprintf(s.id, sizeof(s.id), "%s", id);
    te_matcher_t m;
    te_err_t err = {0};
    assert_int_equal(te_matcher_parse(matcher, &m, &err), 0);
    s.m = &m;
    s.nm = 1;
    s.starts_ns = starts;
    s.ends_ns = ends;
    s.created_ns = starts;
    assert_int_equal(te_policy_silence_add(p, &s), 0);
    free(m.name);
    free(m.value);
}

typedef struct rec {
    size_t n;
    char rule[64], provider[64], status[16];
} rec_t;

static void on_recheck(void *ud, te_alert_t *a, const char *status)
{
    rec_t *r = ud;
    r->n++;
    snprintf(r->rule, sizeof(r->rule), "%s", a->rule);
    snprintf(r->provider, sizeof(r->provider), "%s", te_alert_tag(a, "provider"));
    snprintf(r->status, sizeof(r->status), "%s", status);
}

static const te_alert_policy_t NOW = {0, 0, 0}; /* fire at once, resolve at once */

/* ---- (a) plain ---- */

static void plain_firing_and_resolved_notify(void **state)
{
    (void)state;
    te_policy_t *p = te_policy_new(NULL);
    assert_non_null(p);
    te_alert_t a;
    uint64_t rng = 1;
    mk(&a, "err-rate", "openai", TE_SEV_WARNING);
    te_verdict_t v = step(p, &a, &NOW, true, T0, &rng, TE_ALERT_T_FIRING);
    assert_notify(v, "firing");
    assert_int_equal(te_policy_size(p), 1);
    /* still true: nothing to decide */
    step(p, &a, &NOW, true, T0 + M, &rng, TE_ALERT_T_NONE);
    v = step(p, &a, &NOW, false, T0 + 2 * M, &rng, TE_ALERT_T_RESOLVED);
    assert_notify(v, "resolved");
    assert_false(a.flapping);
    assert_null(a.acked_by);
    /* recheck has nothing to send and forgets the resolved entry */
    rec_t r = {0};
    assert_int_equal(te_policy_recheck(p, T0 + 3 * M, on_recheck, &r), 0);
    assert_int_equal(r.n, 0);
    assert_int_equal(te_policy_size(p), 0);
    te_alert_clear(&a);
    te_policy_free(p);
}

static void pending_and_cleared_are_not_notifications(void **state)
{
    (void)state;
    te_policy_t *p = te_policy_new(NULL);
    te_alert_t a;
    uint64_t rng = 2;
    te_alert_policy_t ap = {5 * M, 0, 0};
    mk(&a, "err-rate", "openai", TE_SEV_WARNING);
    te_verdict_t v = step(p, &a, &ap, true, T0, &rng, TE_ALERT_T_PENDING);
    assert_false(v.notify);
    assert_false(v.held);
    v = step(p, &a, &ap, false, T0 + M, &rng, TE_ALERT_T_CLEARED);
    assert_false(v.notify);
    assert_false(v.held);
    te_alert_clear(&a);
    te_policy_free(p);
}

/* ---- (b) silences ---- */

static void silence_holds_firing_and_resolution_keeps_state(void **state)
{
    (void)state;
    te_policy_t *p = te_policy_new(NULL);
    silence(p, "sil-1", "provider=openai", T0, T0 + 60 * M);
    te_alert_t a;
    uint64_t rng = 3;
    mk(&a, "err-rate", "openai", TE_SEV_WARNING);
    assert_string_equal(te_policy_silenced_by(p, &a, T0 + M), "sil-1");
    te_verdict_t v = step(p, &a, &NOW, true, T0 + M, &rng, TE_ALERT_T_FIRING);
    assert_held(v, "silenced by sil-1");
    assert_int_equal(a.state, TE_ALERT_FIRING); /* state changes all the same */
    v = step(p, &a, &NOW, false, T0 + 2 * M, &rng, TE_ALERT_T_RESOLVED);
    assert_true(v.held);
    assert_false(v.notify);
    assert_int_equal(a.state, TE_ALERT_RESOLVED);
    /* nothing is due at recheck: it is resolved */
    rec_t r = {0};
    assert_int_equal(te_policy_recheck(p, T0 + 3 * M, on_recheck, &r), 0);
    te_alert_clear(&a);
    te_policy_free(p);
}

static void resolution_never_notified_is_held(void **state)
{
    (void)state;
    te_policy_t *p = te_policy_new(NULL);
    silence(p, "sil-2", "rule=err-rate", T0, T0 + 60 * M);
    te_alert_t a;
    uint64_t rng = 4;
    mk(&a, "err-rate", "openai", TE_SEV_WARNING);
    assert_held(step(p, &a, &NOW, true, T0 + M, &rng, TE_ALERT_T_FIRING), "silenced by sil-2");
    /* the silence ends, but no recheck ran before the resolution */
    assert_int_equal(te_policy_silence_end(p, "sil-2", T0 + 2 * M), 0);
    assert_null(te_policy_silenced_by(p, &a, T0 + 2 * M));
    assert_held(step(p, &a, &NOW, false, T0 + 3 * M, &rng, TE_ALERT_T_RESOLVED),
                "never notified as firing");
    assert_int_equal(te_policy_silence_end(p, "nope", T0), TE_ENOTFOUND);
    te_alert_clear(&a);
    te_policy_free(p);
}

static void silence_end_then_recheck_notifies_once(void **state)
{
    (void)state;
    te_policy_t *p = te_policy_new(NULL);
    silence(p, "sil-3", "provider=openai", T0, T0 + 60 * M);
    te_alert_t a, b;
    uint64_t rng = 5;
    mk(&a, "err-rate", "openai", TE_SEV_WARNING);
    mk(&b, "err-rate", "anthropic", TE_SEV_WARNING);
    assert_held(step(p, &a, &NOW, true, T0 + M, &rng, TE_ALERT_T_FIRING), "silenced by sil-3");
    assert_notify(step(p, &b, &NOW, true, T0 + M, &rng, TE_ALERT_T_FIRING), "firing");
    rec_t r = {0};
    /* still silenced: nothing */
    assert_int_equal(te_policy_recheck(p, T0 + 2 * M, on_recheck, &r), 0);
    assert_int_equal(te_policy_silence_end(p, "sil-3", T0 + 3 * M), 0);
    assert_int_equal(te_policy_recheck(p, T0 + 3 * M, on_recheck, &r), 1);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.provider, "openai");
    assert_string_equal(r.status, "firing");
    /* once only */
    assert_int_equal(te_policy_recheck(p, T0 + 4 * M, on_recheck, &r), 0);
    assert_int_equal(r.n, 1);
    /* it was notified now, so its resolution goes out */
    assert_notify(step(p, &a, &NOW, false, T0 + 5 * M, &rng, TE_ALERT_T_RESOLVED), "resolved");
    te_alert_clear(&a);
    te_alert_clear(&b);
    te_policy_free(p);
}

static void silence_expiring_by_itself_then_recheck(void **state)
{
    (void)state;
    te_policy_t *p = te_policy_new(NULL);
    silence(p, "sil-4", "severity=warning", T0, T0 + 10 * M);
    te_alert_t a;
    uint64_t rng = 6;
    mk(&a, "err-rate", "openai", TE_SEV_WARNING);
    assert_held(step(p, &a, &NOW, true, T0 + M, &rng, TE_ALERT_T_FIRING), "silenced by sil-4");
    rec_t r = {0};
    /* ends_at is exclusive */
    assert_int_equal(te_policy_recheck(p, T0 + 10 * M - 1, on_recheck, &r), 0);
    assert_int_equal(te_policy_recheck(p, T0 + 10 * M, on_recheck, &r), 1);
    assert_string_equal(r.status, "firing");
    te_alert_clear(&a);
    te_policy_free(p);
}

static void non_matching_silences_do_not_hold(void **state)
{
    (void)state;
    te_policy_t *p = te_policy_new(NULL);
    silence(p, "other-value", "provider=anthropic", T0, T0 + 60 * M);
    silence(p, "negated", "provider!=openai", T0, T0 + 60 * M);
    silence(p, "future", "rule=err-rate", T0 + 30 * M, T0 + 60 * M);
    te_alert_t a;
    uint64_t rng = 7;
    mk(&a, "err-rate", "openai", TE_SEV_WARNING);
    assert_null(te_policy_silenced_by(p, &a, T0 + M));
    assert_notify(step(p, &a, &NOW, true, T0 + M, &rng, TE_ALERT_T_FIRING), "firing");
    /* the future one starts holding at its start (inclusive) */
    assert_null(te_policy_silenced_by(p, &a, T0 + 30 * M - 1));
    assert_string_equal(te_policy_silenced_by(p, &a, T0 + 30 * M), "future");
    /* a negated matcher matching the alert does hold */
    silence(p, "neg-match", "provider!=anthropic", T0, T0 + 60 * M);
    assert_string_equal(te_policy_silenced_by(p, &a, T0 + 2 * M), "neg-match");
    /* re-adding the same id replaces the silence */
    silence(p, "neg-match", "provider=nobody", T0, T0 + 60 * M);
    assert_null(te_policy_silenced_by(p, &a, T0 + 2 * M));
    te_alert_clear(&a);
    te_policy_free(p);
}

/* ---- (c) inhibition ---- */

static void inhibition_by_equal_tags_and_recheck(void **state)
{
    (void)state;
    te_matcher_t src = {"severity", "critical", false};
    te_matcher_t dst = {"severity", "warning", false};
    char *equal[] = {"provider"};
    te_inhibit_t in = {&src, &dst, 1, 1, equal, 1};
    te_policy_opts_t o = {0, 0, &in, 1};
    te_policy_t *p = te_policy_new(&o);
    assert_non_null(p);
    te_alert_t a, b1, b2;
    uint64_t rng = 8;
    mk(&a, "outage", "openai", TE_SEV_CRITICAL);
    mk(&b1, "latency", "openai", TE_SEV_WARNING);
    mk(&b2, "latency", "anthropic", TE_SEV_WARNING);
    assert_notify(step(p, &a, &NOW, true, T0, &rng, TE_ALERT_T_FIRING), "firing");
    te_verdict_t v = step(p, &b1, &NOW, true, T0 + M, &rng, TE_ALERT_T_FIRING);
    char want[128];
    snprintf(want, sizeof(want), "inhibited by outage %s", a.id);
    assert_held(v, want);
    assert_notify(step(p, &b2, &NOW, true, T0 + M, &rng, TE_ALERT_T_FIRING), "firing");
    rec_t r = {0};
    assert_int_equal(te_policy_recheck(p, T0 + 2 * M, on_recheck, &r), 0);
    /* the source resolves: its resolution goes out, recheck releases b1 */
    assert_notify(step(p, &a, &NOW, false, T0 + 3 * M, &rng, TE_ALERT_T_RESOLVED), "resolved");
    assert_int_equal(te_policy_recheck(p, T0 + 3 * M, on_recheck, &r), 1);
    assert_string_equal(r.rule, "latency");
    assert_string_equal(r.provider, "openai");
    assert_string_equal(r.status, "firing");
    assert_int_equal(te_policy_recheck(p, T0 + 4 * M, on_recheck, &r), 0);
    assert_int_equal(r.n, 1);
    te_alert_clear(&a);
    te_alert_clear(&b1);
    te_alert_clear(&b2);
    te_policy_free(p);
}

static void inhibited_alert_resolving_is_never_notified(void **state)
{
    (void)state;
    te_matcher_t src = {"rule", "outage", false};
    te_matcher_t dst = {"rule", "latency", false};
    char *equal[] = {"provider"};
    te_inhibit_t in = {&src, &dst, 1, 1, equal, 1};
    te_policy_opts_t o = {0, 0, &in, 1};
    te_policy_t *p = te_policy_new(&o);
    te_alert_t a, b;
    uint64_t rng = 9;
    mk(&a, "outage", "openai", TE_SEV_CRITICAL);
    mk(&b, "latency", "openai", TE_SEV_WARNING);
    assert_notify(step(p, &a, &NOW, true, T0, &rng, TE_ALERT_T_FIRING), "firing");
    assert_true(step(p, &b, &NOW, true, T0 + M, &rng, TE_ALERT_T_FIRING).held);
    /* a resolution is never inhibited, but it was never notified as firing */
    assert_held(step(p, &b, &NOW, false, T0 + 2 * M, &rng, TE_ALERT_T_RESOLVED),
                "never notified as firing");
    te_alert_clear(&a);
    te_alert_clear(&b);
    te_policy_free(p);
}

/* ---- (d) acks and (f) repeats ---- */

static void ack_holds_repeats_not_resolution_nor_next_episode(void **state)
{
    (void)state;
    te_policy_t *p = te_policy_new(NULL);
    te_alert_t a;
    uint64_t rng = 10;
    te_alert_policy_t ap = {0, 0, 5 * M};
    mk(&a, "err-rate", "openai", TE_SEV_WARNING);
    assert_notify(step(p, &a, &ap, true, T0, &rng, TE_ALERT_T_FIRING), "firing");
    char id1[17];
    memcpy(id1, a.id, sizeof(id1));
    /* (f) unacknowledged: a repeat notifies "firing" */
    assert_notify(step(p, &a, &ap, true, T0 + 5 * M, &rng, TE_ALERT_T_REPEAT), "firing");

    const te_alert_t *out = NULL;
    assert_int_equal(te_policy_ack(p, id1, "alice", "on it", T0 + 6 * M, &out), 0);
    assert_non_null(out);
    assert_string_equal(out->acked_by, "alice");
    assert_string_equal(out->ack_comment, "on it");
    assert_true(out->acked_at_ns == T0 + 6 * M);
    assert_int_equal(te_policy_ack(p, "0123456789abcdef", "bob", NULL, T0 + 6 * M, NULL),
                     TE_ENOTFOUND);

    te_verdict_t v = step(p, &a, &ap, true, T0 + 10 * M, &rng, TE_ALERT_T_REPEAT);
    assert_held(v, "acknowledged by alice");
    /* the policy tells the caller about the ack, to be saved */
    assert_non_null(a.acked_by);
    assert_string_equal(a.acked_by, "alice");
    assert_true(a.acked_at_ns == T0 + 6 * M);
    assert_held(step(p, &a, &ap, true, T0 + 15 * M, &rng, TE_ALERT_T_REPEAT),
                "acknowledged by alice");
    assert_notify(step(p, &a, &ap, false, T0 + 16 * M, &rng, TE_ALERT_T_RESOLVED), "resolved");
    /* a resolved episode cannot be acknowledged */
    assert_int_equal(te_policy_ack(p, id1, "bob", NULL, T0 + 17 * M, NULL), TE_ENOTFOUND);

    /* a new episode (same alert object, so a stale ack rides along) is not acked */
    assert_notify(step(p, &a, &ap, true, T0 + 20 * M, &rng, TE_ALERT_T_FIRING), "firing");
    assert_string_not_equal(a.id, id1);
    assert_null(a.acked_by);
    assert_notify(step(p, &a, &ap, true, T0 + 25 * M, &rng, TE_ALERT_T_REPEAT), "firing");
    assert_null(a.acked_by);
    /* and it can be acked in turn */
    assert_int_equal(te_policy_ack(p, a.id, "carol", NULL, T0 + 26 * M, NULL), 0);
    assert_held(step(p, &a, &ap, true, T0 + 30 * M, &rng, TE_ALERT_T_REPEAT),
                "acknowledged by carol");
    te_alert_clear(&a);
    te_policy_free(p);
}

static void ack_of_a_pending_alert_and_restore(void **state)
{
    (void)state;
    te_policy_t *p = te_policy_new(NULL);
    te_alert_t a;
    uint64_t rng = 11;
    te_alert_policy_t ap = {2 * M, 0, 5 * M};
    mk(&a, "err-rate", "openai", TE_SEV_WARNING);
    step(p, &a, &ap, true, T0, &rng, TE_ALERT_T_PENDING);
    assert_int_equal(te_policy_ack(p, a.id, NULL, NULL, T0 + M, NULL), 0);
    assert_notify(step(p, &a, &ap, true, T0 + 2 * M, &rng, TE_ALERT_T_FIRING), "firing");
    assert_held(step(p, &a, &ap, true, T0 + 7 * M, &rng, TE_ALERT_T_REPEAT),
                "acknowledged by unknown");

    /* a restored firing alert counts as notified: its resolution goes out */
    te_policy_t *q = te_policy_new(NULL);
    te_alert_t r;
    uint64_t rng2 = 12;
    mk(&r, "err-rate", "anthropic", TE_SEV_WARNING);
    assert_int_equal(te_alert_step(&r, &NOW, true, T0, &rng2), TE_ALERT_T_FIRING);
    assert_int_equal(te_policy_restore(q, &r), 0);
    assert_int_equal(te_policy_size(q), 1);
    rec_t rc = {0};
    assert_int_equal(te_policy_recheck(q, T0 + M, on_recheck, &rc), 0);
    assert_notify(step(q, &r, &NOW, false, T0 + 2 * M, &rng2, TE_ALERT_T_RESOLVED), "resolved");
    te_alert_clear(&r);
    te_policy_free(q);
    te_alert_clear(&a);
    te_policy_free(p);
}

/* ---- (e) flapping ---- */

static void flapping_one_notification_then_calm(void **state)
{
    (void)state;
    te_policy_opts_t o = {4, 10 * M, NULL, 0};
    te_policy_t *p = te_policy_new(&o);
    te_alert_t a;
    uint64_t rng = 13;
    mk(&a, "err-rate", "openai", TE_SEV_WARNING);
    size_t flapping = 0, held = 0;
    /* F R F R: four changes, all notified */
    assert_notify(step(p, &a, &NOW, true, T0, &rng, TE_ALERT_T_FIRING), "firing");
    assert_notify(step(p, &a, &NOW, false, T0 + M, &rng, TE_ALERT_T_RESOLVED), "resolved");
    assert_notify(step(p, &a, &NOW, true, T0 + 2 * M, &rng, TE_ALERT_T_FIRING), "firing");
    assert_notify(step(p, &a, &NOW, false, T0 + 3 * M, &rng, TE_ALERT_T_RESOLVED), "resolved");
    assert_false(a.flapping);
    /* the fifth change in 10 min: flapping, then held */
    for (int i = 4; i <= 10; i++) {
        bool fire = i % 2 == 0;
        te_verdict_t v = step(p, &a, &NOW, fire, T0 + i * M, &rng,
                              fire ? TE_ALERT_T_FIRING : TE_ALERT_T_RESOLVED);
        assert_true(a.flapping);
        if (v.notify) {
            assert_string_equal(v.status, "flapping");
            flapping++;
        } else {
            assert_held(v, "flapping");
            held++;
        }
    }
    assert_int_equal(flapping, 1);
    assert_int_equal(held, 6);
    assert_int_equal(a.state, TE_ALERT_FIRING); /* the last change (10 min) fired */
    rec_t r = {0};
    /* still many changes in the window */
    assert_int_equal(te_policy_recheck(p, T0 + 11 * M, on_recheck, &r), 0);
    /* at T0+18m the window holds the changes of 9 and 10 min only: calm */
    assert_int_equal(te_policy_recheck(p, T0 + 17 * M, on_recheck, &r), 0);
    assert_int_equal(te_policy_recheck(p, T0 + 18 * M + 1, on_recheck, &r), 1);
    assert_string_equal(r.status, "firing");
    assert_int_equal(te_policy_recheck(p, T0 + 19 * M, on_recheck, &r), 0);
    assert_int_equal(r.n, 1);
    /* calm again: the next change is an ordinary notification */
    te_verdict_t v = step(p, &a, &NOW, false, T0 + 20 * M, &rng, TE_ALERT_T_RESOLVED);
    assert_notify(v, "resolved");
    assert_false(a.flapping);
    te_alert_clear(&a);
    te_policy_free(p);
}

/* A threshold above the 64 changes an earlier fixed ring kept: the
 * 101st change within the window marks the alert flapping, not never. */
static void flapping_with_a_large_threshold(void **state)
{
    (void)state;
    te_policy_opts_t o = {100, 10 * M, NULL, 0};
    te_policy_t *p = te_policy_new(&o);
    te_alert_t a;
    uint64_t rng = 17;
    mk(&a, "err-rate", "openai", TE_SEV_WARNING);
    for (int i = 0; i < 100; i++) {
        bool fire = i % 2 == 0;
        step(p, &a, &NOW, fire, T0 + i * (M / 20), &rng,
             fire ? TE_ALERT_T_FIRING : TE_ALERT_T_RESOLVED);
        assert_false(a.flapping);
    }
    te_verdict_t v = step(p, &a, &NOW, true, T0 + 100 * (M / 20), &rng, TE_ALERT_T_FIRING);
    assert_true(a.flapping);
    assert_notify(v, "flapping");
    /* the window slides past all but the newest changes: calm again */
    rec_t r = {0};
    assert_int_equal(te_policy_recheck(p, T0 + 100 * (M / 20) + 10 * M, on_recheck, &r), 1);
    te_alert_clear(&a);
    te_policy_free(p);
}

/* An alert that calms down while silenced is notified (firing) once the
 * silence ends, not lost between the two. */
static void flapping_that_calms_while_silenced_fires_after_the_silence(void **state)
{
    (void)state;
    te_policy_opts_t o = {4, 10 * M, NULL, 0};
    te_policy_t *p = te_policy_new(&o);
    te_alert_t a;
    uint64_t rng = 15;
    mk(&a, "err-rate", "openai", TE_SEV_WARNING);
    for (int i = 0; i <= 4; i++) /* F R F R F(flapping, notified) */
        step(p, &a, &NOW, i % 2 == 0, T0 + i * M, &rng,
             i % 2 == 0 ? TE_ALERT_T_FIRING : TE_ALERT_T_RESOLVED);
    assert_true(a.flapping);
    assert_int_equal(a.state, TE_ALERT_FIRING);
    silence(p, "sil-f", "provider=openai", T0 + 5 * M, T0 + 30 * M);
    rec_t r = {0};
    /* calm at 14 min, but silenced: nothing */
    assert_int_equal(te_policy_recheck(p, T0 + 14 * M + 1, on_recheck, &r), 0);
    assert_int_equal(te_policy_recheck(p, T0 + 20 * M, on_recheck, &r), 0);
    /* the silence ends: the firing alert is notified once */
    assert_int_equal(te_policy_recheck(p, T0 + 30 * M, on_recheck, &r), 1);
    assert_string_equal(r.status, "firing");
    assert_int_equal(te_policy_recheck(p, T0 + 31 * M, on_recheck, &r), 0);
    te_alert_clear(&a);
    te_policy_free(p);
}

/* The receiver's last word was "flapping": when the alert calms down
 * resolved, the resolution must go out even though "resolved" was also the
 * last status sent before it started flapping. */
static void flapping_that_calms_resolved_sends_resolved(void **state)
{
    (void)state;
    te_policy_opts_t o = {4, 10 * M, NULL, 0};
    te_policy_t *p = te_policy_new(&o);
    te_alert_t a;
    uint64_t rng = 14;
    mk(&a, "err-rate", "openai", TE_SEV_WARNING);
    for (int i = 0; i <= 5; i++) { /* F R F R F(flapping) R */
        bool fire = i % 2 == 0;
        step(p, &a, &NOW, fire, T0 + i * M, &rng, fire ? TE_ALERT_T_FIRING : TE_ALERT_T_RESOLVED);
    }
    assert_true(a.flapping);
    assert_int_equal(a.state, TE_ALERT_RESOLVED);
    rec_t r = {0};
    assert_int_equal(te_policy_recheck(p, T0 + 6 * M, on_recheck, &r), 0);
    assert_int_equal(te_policy_recheck(p, T0 + 20 * M, on_recheck, &r), 1);
    assert_string_equal(r.status, "resolved");
    assert_int_equal(te_policy_recheck(p, T0 + 21 * M, on_recheck, &r), 0);
    assert_int_equal(r.n, 1);
    te_alert_clear(&a);
    te_policy_free(p);
}

static void repeats_do_not_count_as_flap_changes(void **state)
{
    (void)state;
    te_policy_opts_t o = {2, 10 * M, NULL, 0};
    te_policy_t *p = te_policy_new(&o);
    te_alert_t a;
    uint64_t rng = 15;
    te_alert_policy_t ap = {0, 0, M};
    mk(&a, "err-rate", "openai", TE_SEV_WARNING);
    assert_notify(step(p, &a, &ap, true, T0, &rng, TE_ALERT_T_FIRING), "firing");
    for (int i = 1; i <= 5; i++)
        assert_notify(step(p, &a, &ap, true, T0 + i * M, &rng, TE_ALERT_T_REPEAT), "firing");
    assert_false(a.flapping);
    te_alert_clear(&a);
    te_policy_free(p);
}

/* ---- (g) matchers ---- */

static void matcher_parse_errors_name_the_text(void **state)
{
    (void)state;
    te_matcher_t m;
    te_err_t err = {0};
    assert_int_equal(te_matcher_parse("provider", &m, &err), TE_EINVAL);
    assert_non_null(strstr(err.msg, "\"provider\""));
    assert_int_equal(te_matcher_parse("=openai", &m, &err), TE_EINVAL);
    assert_non_null(strstr(err.msg, "\"=openai\""));
    assert_non_null(strstr(err.msg, "empty"));
    assert_int_equal(te_matcher_parse("!=openai", &m, &err), TE_EINVAL);
    assert_non_null(strstr(err.msg, "\"!=openai\""));

    assert_int_equal(te_matcher_parse("provider!=openai", &m, &err), 0);
    assert_string_equal(m.name, "provider");
    assert_string_equal(m.value, "openai");
    assert_true(m.negate);
    free(m.name);
    free(m.value);
    assert_int_equal(te_matcher_parse("zone=", &m, &err), 0);
    assert_string_equal(m.name, "zone");
    assert_string_equal(m.value, "");
    assert_false(m.negate);
    free(m.name);
    free(m.value);
}

static int from_json(const char *text, te_matcher_t **m, size_t *n, te_err_t *err)
{
    cJSON *j = cJSON_Parse(text);
    assert_non_null(j);
    int rc = te_matchers_from_cjson(j, m, n, err);
    cJSON_Delete(j);
    return rc;
}

static void matchers_from_json_forms(void **state)
{
    (void)state;
    te_matcher_t *m;
    size_t n;
    te_err_t err = {0};
    assert_int_equal(from_json("{\"provider\":\"openai\",\"model\":\"m\"}", &m, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(m[0].name, "provider");
    assert_string_equal(m[1].value, "m");
    assert_false(m[0].negate || m[1].negate);
    te_matchers_free(m, n);

    assert_int_equal(from_json("[\"provider=openai\",\"severity!=info\"]", &m, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_false(m[0].negate);
    assert_true(m[1].negate);
    assert_string_equal(m[1].name, "severity");
    char *js = te_matchers_to_json(m, n);
    assert_string_equal(js, "[{\"name\":\"provider\",\"value\":\"openai\",\"op\":\"=\"},"
                            "{\"name\":\"severity\",\"value\":\"info\",\"op\":\"!=\"}]");
    cJSON_free(js);
    te_matchers_free(m, n);

    assert_int_equal(from_json("[{\"name\":\"rule\",\"value\":\"r\",\"op\":\"!=\"},"
                               "{\"name\":\"zone\",\"value\":\"eu\",\"isEqual\":false},"
                               "{\"name\":\"team\",\"value\":\"x\"}]",
                               &m, &n, &err),
                     0);
    assert_int_equal(n, 3);
    assert_true(m[0].negate);
    assert_true(m[1].negate);
    assert_false(m[2].negate);
    te_matchers_free(m, n);

    assert_int_equal(from_json("{}", &m, &n, &err), TE_EINVAL);
    assert_non_null(strstr(err.msg, "at least one"));
    assert_null(m);
    assert_int_equal(from_json("[]", &m, &n, &err), TE_EINVAL);
    assert_non_null(strstr(err.msg, "at least one"));
    assert_int_equal(from_json("[\"provider=openai\",\"bad\"]", &m, &n, &err), TE_EINVAL);
    assert_non_null(strstr(err.msg, "\"bad\""));
    assert_int_equal(from_json("{\"provider\":3}", &m, &n, &err), TE_EINVAL);
    assert_non_null(strstr(err.msg, "provider"));
    assert_int_equal(from_json("[{\"name\":\"\",\"value\":\"x\"}]", &m, &n, &err), TE_EINVAL);
    assert_int_equal(from_json("[{\"name\":\"a\",\"value\":\"x\",\"op\":\"=~\"}]", &m, &n, &err),
                     TE_EINVAL);
    assert_non_null(strstr(err.msg, "=~"));
    assert_int_equal(from_json("\"provider=openai\"", &m, &n, &err), TE_EINVAL);
}

static bool matches(const char *text, const te_alert_t *a)
{
    te_matcher_t m;
    te_err_t err = {0};
    assert_int_equal(te_matcher_parse(text, &m, &err), 0);
    bool r = te_matchers_match(&m, 1, a);
    free(m.name);
    free(m.value);
    return r;
}

static void matchers_match_rule_severity_group_labels(void **state)
{
    (void)state;
    te_alert_t a;
    mk(&a, "err-rate", "openai", TE_SEV_CRITICAL);
    assert_true(matches("rule=err-rate", &a));
    assert_true(matches("alertname=err-rate", &a));
    assert_false(matches("rule=other", &a));
    assert_true(matches("severity=critical", &a));
    assert_false(matches("severity=warning", &a));
    assert_true(matches("provider=openai", &a));
    assert_true(matches("provider!=anthropic", &a));
    assert_false(matches("provider!=openai", &a));
    assert_true(matches("team=llm-platform", &a)); /* a label */
    assert_true(matches("zone=", &a));             /* missing tag is "" */
    assert_true(matches("zone!=eu", &a));
    assert_false(matches("zone=eu", &a));
    assert_true(te_matchers_match(NULL, 0, &a));
    assert_string_equal(te_alert_tag(&a, "nothing"), "");

    /* a silence matches between starts (inclusive) and ends (exclusive) */
    te_matcher_t m[2] = {{"provider", "openai", false}, {"severity", "critical", false}};
    te_silence_t s;
    memset(&s, 0, sizeof(s));
    snprintf(s.id, sizeof(s.id), "sx");
    s.m = m;
    s.nm = 2;
    s.starts_ns = T0;
    s.ends_ns = T0 + M;
    assert_false(te_silence_matches(&s, &a, T0 - 1));
    assert_true(te_silence_matches(&s, &a, T0));
    assert_false(te_silence_matches(&s, &a, T0 + M));
    a.severity = TE_SEV_WARNING;
    assert_false(te_silence_matches(&s, &a, T0));
    cJSON *j = te_silence_to_cjson(&s, T0 - 1);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(j, "state")), "pending");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "matchers")), 2);
    cJSON_Delete(j);
    j = te_silence_to_cjson(&s, T0 + M);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(j, "state")), "expired");
    cJSON_Delete(j);
    te_alert_clear(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plain_firing_and_resolved_notify),
        cmocka_unit_test(pending_and_cleared_are_not_notifications),
        cmocka_unit_test(silence_holds_firing_and_resolution_keeps_state),
        cmocka_unit_test(resolution_never_notified_is_held),
        cmocka_unit_test(silence_end_then_recheck_notifies_once),
        cmocka_unit_test(silence_expiring_by_itself_then_recheck),
        cmocka_unit_test(non_matching_silences_do_not_hold),
        cmocka_unit_test(inhibition_by_equal_tags_and_recheck),
        cmocka_unit_test(inhibited_alert_resolving_is_never_notified),
        cmocka_unit_test(ack_holds_repeats_not_resolution_nor_next_episode),
        cmocka_unit_test(ack_of_a_pending_alert_and_restore),
        cmocka_unit_test(flapping_one_notification_then_calm),
        cmocka_unit_test(flapping_with_a_large_threshold),
        cmocka_unit_test(flapping_that_calms_while_silenced_fires_after_the_silence),
        cmocka_unit_test(flapping_that_calms_resolved_sends_resolved),
        cmocka_unit_test(repeats_do_not_count_as_flap_changes),
        cmocka_unit_test(matcher_parse_errors_name_the_text),
        cmocka_unit_test(matchers_from_json_forms),
        cmocka_unit_test(matchers_match_rule_severity_group_labels),
    };
    return cmocka_run_group_tests(tests, 0, 0);
}
