/*
 * test_eval.c - live rules (rules/eval): rule scripts loaded through the
 * real sandbox, events fed at virtual times, ticks, and the exact
 * transitions and times they produce; groups, limits, expiry, hot reload,
 * errors, on_event hooks, restore from a real SQLite file.
 *
 * THREAD: main only. Virtual time only: every instant is T0 + n seconds.
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

#include "core/event.h"
#include "rules/eval.h"
#include "rules/eval_int.h"
#include "script/script.h"
#include "store/alerts.h"
#include "store/store.h"

#define S INT64_C(1000000000)
#define T0 (INT64_C(1800000000) * S) /* a multiple of every 10 s / 30 s / 1 m */
#define AT(sec) (T0 + (int64_t)(sec) * S)

typedef struct rec {
    te_alert_transition_t t;
    te_alert_state_t state;
    char id[17], fp[17];
    char rule[64];
    char summary[128];
    char reason[32];
    int64_t at;
    double value;
} rec;

typedef struct fix {
    char dir[64];
    char paths[4][128];
    int npaths;
    te_script_t *s[4];
    te_ruleset_t *rs;
    rec recs[64];
    int n;
    te_store_t *st;       /* when set, every transition is saved */
    te_event_t *emitted[8];
    int nemitted;
    bool refuse_emit;
} fix;

static void on_alert(void *ud, const te_alert_t *a, te_alert_transition_t t)
{
    fix *f = ud;
    assert_true(f->n < 64);
    rec *r = &f->recs[f->n++];
    r->t = t;
    r->state = a->state;
    memcpy(r->id, a->id, 17);
    memcpy(r->fp, a->fingerprint, 17);
    snprintf(r->rule, sizeof(r->rule), "%s", a->rule);
    snprintf(r->summary, sizeof(r->summary), "%s", a->summary ? a->summary : "");
    snprintf(r->reason, sizeof(r->reason), "%s", a->reason ? a->reason : "");
    r->at = a->updated_ns;
    r->value = a->value;
    if (f->st) {
        te_err_t err;
        assert_int_equal(te_store_alerts_save(f->st, a, t, &err), 0);
    }
}

static int on_emit(void *ud, te_event_t *ev)
{
    fix *f = ud;
    if (f->refuse_emit || f->nemitted >= 8) {
        te_event_free(ev);
        return -1;
    }
    f->emitted[f->nemitted++] = ev;
    return 0;
}

static int setup(void **state)
{
    fix *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/te_eval_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    te_ruleset_opts_t o = {.id_seed = 1234, .on_alert = on_alert, .alert_ud = f,
                           .on_emit = on_emit, .emit_ud = f};
    f->rs = te_ruleset_new(&o, NULL);
    assert_non_null(f->rs);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fix *f = *state;
    te_ruleset_free(f->rs);
    for (int i = 0; i < 4; i++)
        te_script_free(f->s[i]);
    for (int i = 0; i < f->npaths; i++)
        unlink(f->paths[i]);
    for (int i = 0; i < f->nemitted; i++)
        te_event_free(f->emitted[i]);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* Writes src to DIR/name and loads it into slot. */
static te_script_t *load(fix *f, int slot, const char *name, const char *src,
                         const te_script_limits_t *lim)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", f->dir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(src, fp);
    fclose(fp);
    bool seen = false;
    for (int i = 0; i < f->npaths; i++)
        seen = seen || strcmp(f->paths[i], path) == 0;
    if (!seen)
        snprintf(f->paths[f->npaths++], 128, "%s", path);
    te_err_t err;
    te_script_t *s = NULL;
    int rc = te_script_load(path, NULL, lim, &s, &err);
    if (rc)
        fail_msg("load %s: %s", name, err.msg);
    f->s[slot] = s;
    return s;
}

static void feed(fix *f, int64_t at, const char *json)
{
    te_event_t *ev = NULL;
    te_err_t err;
    te_event_opts_t o = {NULL, NULL, at};
    if (te_event_parse(json, strlen(json), &o, &ev, &err))
        fail_msg("event: %s", err.msg);
    te_ruleset_feed(f->rs, ev, at);
    te_event_free(ev);
}

static const char *ERR_RULE =
    "local te = require 'te'\n"
    "te.rule { name = 'errs', kind = 'req', group_by = { 'svc' }, window = '1m', every = '10s',\n"
    "  aggs = { errors = te.count{ status = 'error' }, total = te.count(),\n"
    "           p95 = te.quantile('ms', 0.95), users = te.distinct('user') },\n"
    "  condition = function(a) return a.errors >= 2 end,\n"
    "  value = function(a) return a.errors / a.total end,\n"
    "  pending = '20s', keep_firing = '10s', severity = 'critical',\n"
    "  summary = '{{svc}} errors {{value|pct}}', labels = { team = 'web' } }\n";

static void rule_pending_firing_resolved_exact_times(void **state)
{
    fix *f = *state;
    te_err_t err;
    te_script_t *s = load(f, 0, "errs.lua", ERR_RULE, NULL);
    assert_int_equal(te_ruleset_add(f->rs, s, T0, &err), 0);
    assert_true(te_ruleset_next_tick(f->rs) == AT(10));
    feed(f, AT(1), "{\"kind\":\"req\",\"svc\":\"a\",\"status\":\"error\",\"ms\":10,\"user\":\"u1\"}");
    feed(f, AT(2), "{\"kind\":\"req\",\"svc\":\"a\",\"status\":\"error\",\"ms\":20,\"user\":\"u2\"}");
    feed(f, AT(3), "{\"kind\":\"req\",\"svc\":\"a\",\"status\":\"ok\",\"ms\":30,\"user\":\"u1\"}");
    feed(f, AT(3), "{\"kind\":\"req\",\"svc\":\"b\",\"status\":\"error\"}");
    feed(f, AT(3), "{\"kind\":\"other\",\"svc\":\"a\",\"status\":\"error\"}");
    assert_int_equal(te_ruleset_tick(f->rs, AT(9)), 0); /* not due */
    assert_int_equal(te_ruleset_tick(f->rs, AT(10)), 1);
    assert_int_equal(f->n, 1);
    assert_int_equal(f->recs[0].t, TE_ALERT_T_PENDING);
    assert_true(f->recs[0].at == AT(10));
    assert_string_equal(f->recs[0].rule, "errs");
    char id[17];
    memcpy(id, f->recs[0].id, 17);
    te_ruleset_tick(f->rs, AT(20));
    assert_int_equal(f->n, 1);
    te_ruleset_tick(f->rs, AT(30));
    assert_int_equal(f->n, 2);
    assert_int_equal(f->recs[1].t, TE_ALERT_T_FIRING);
    assert_true(f->recs[1].at == AT(30));
    assert_string_equal(f->recs[1].id, id);
    assert_string_equal(f->recs[1].summary, "a errors 66.7%");
    const te_alert_t *a = te_ruleset_alert(f->rs, "errs", f->recs[1].fp);
    assert_non_null(a);
    assert_int_equal(a->severity, TE_SEV_CRITICAL);
    assert_string_equal(a->label_values[0], "web");
    assert_string_equal(a->group_values[0], "a");
    /* the events at 1 s and 2 s leave the 1 m window at 62 s: false at 70 */
    te_ruleset_tick(f->rs, AT(60));
    te_ruleset_tick(f->rs, AT(70));
    assert_int_equal(f->n, 2); /* keep_firing 10 s */
    te_ruleset_tick(f->rs, AT(80));
    assert_int_equal(f->n, 3);
    assert_int_equal(f->recs[2].t, TE_ALERT_T_RESOLVED);
    assert_true(f->recs[2].at == AT(80));
    assert_string_equal(f->recs[2].id, id);
    /* new episode: new id, same fingerprint */
    feed(f, AT(81), "{\"kind\":\"req\",\"svc\":\"a\",\"status\":\"error\"}");
    feed(f, AT(82), "{\"kind\":\"req\",\"svc\":\"a\",\"status\":\"error\"}");
    te_ruleset_tick(f->rs, AT(90));
    assert_int_equal(f->n, 4);
    assert_int_equal(f->recs[3].t, TE_ALERT_T_PENDING);
    assert_string_not_equal(f->recs[3].id, id);
    assert_string_equal(f->recs[3].fp, f->recs[0].fp);
    te_rule_status_t st[2];
    assert_int_equal(te_ruleset_status(f->rs, s, st, 2), 1);
    assert_string_equal(st[0].name, "errs");
    assert_string_equal(st[0].type, "rule");
    assert_string_equal(st[0].status, "ok");
    assert_int_equal(st[0].evals, 7);
    assert_true(st[0].last_eval_ns == AT(90));
    assert_int_equal(st[0].groups, 2);
}

static const char *AGG_RULE =
    "local te = require 'te'\n"
    "seen = {}\n"
    "te.rule { name = 'aggs', kind = 'req', window = '1m', every = '10s',\n"
    "  aggs = { n = te.count(), s = te.sum('ms'), av = te.avg('ms'), lo = te.min('ms'),\n"
    "           hi = te.max('ms'), l = te.last('ms'), u = te.distinct('user'), r = te.rate(),\n"
    "           q = te.quantile('ms', 1.0), none = te.sum('nope') },\n"
    "  condition = function(a, g)\n"
    "    seen = { n = a.n, s = a.s, av = a.av, lo = a.lo, hi = a.hi, l = a.l, u = a.u,\n"
    "             r = a.r, q = a.q, none = a.none }\n"
    "    return false end }\n";

static double lua_global_field(te_script_t *s, const char *k, bool *isnil);

static void rule_aggregates_reach_lua(void **state)
{
    fix *f = *state;
    te_err_t err;
    te_script_t *s = load(f, 0, "aggs.lua", AGG_RULE, NULL);
    assert_int_equal(te_ruleset_add(f->rs, s, T0, &err), 0);
    feed(f, AT(1), "{\"kind\":\"req\",\"ms\":10,\"user\":\"a\"}");
    feed(f, AT(2), "{\"kind\":\"req\",\"ms\":30,\"user\":\"b\"}");
    feed(f, AT(3), "{\"kind\":\"req\",\"ms\":20,\"user\":\"a\"}");
    te_ruleset_tick(f->rs, AT(10));
    bool nil;
    assert_true(lua_global_field(s, "n", &nil) == 3 && !nil);
    assert_true(lua_global_field(s, "s", &nil) == 60);
    assert_true(lua_global_field(s, "av", &nil) == 20);
    assert_true(lua_global_field(s, "lo", &nil) == 10);
    assert_true(lua_global_field(s, "hi", &nil) == 30);
    assert_true(lua_global_field(s, "l", &nil) == 20);
    assert_true(lua_global_field(s, "u", &nil) == 2);
    assert_true(lua_global_field(s, "r", &nil) == 3.0 / 60.0);
    assert_true(lua_global_field(s, "q", &nil) == 30);
    lua_global_field(s, "none", &nil);
    assert_true(nil); /* no data: nil, not 0 */
}

#include <lua.h>
static double lua_global_field(te_script_t *s, const char *k, bool *isnil)
{
    lua_getglobal(s->L, "seen");
    lua_getfield(s->L, -1, k);
    *isnil = lua_isnil(s->L, -1);
    double v = lua_tonumber(s->L, -1);
    lua_pop(s->L, 2);
    return v;
}

static void rule_repeat_every_renotifies_while_firing(void **state)
{
    fix *f = *state;
    te_err_t err;
    te_script_t *s = load(f, 0, "rep.lua",
                          "local te = require 'te'\n"
                          "te.rule { name = 'rep', kind = 'req', window = '5m', every = '10s',\n"
                          "  aggs = { n = te.count() }, condition = function(a) return a.n > 0 end,\n"
                          "  repeat_every = '30s' }\n",
                          NULL);
    assert_int_equal(te_ruleset_add(f->rs, s, T0, &err), 0);
    feed(f, AT(1), "{\"kind\":\"req\"}");
    for (int t = 10; t <= 80; t += 10)
        te_ruleset_tick(f->rs, AT(t));
    assert_int_equal(f->n, 3);
    assert_int_equal(f->recs[0].t, TE_ALERT_T_FIRING);
    assert_true(f->recs[0].at == AT(10));
    assert_int_equal(f->recs[1].t, TE_ALERT_T_REPEAT);
    assert_true(f->recs[1].at == AT(40));
    assert_int_equal(f->recs[2].t, TE_ALERT_T_REPEAT);
    assert_true(f->recs[2].at == AT(70));
    assert_string_equal(f->recs[2].id, f->recs[0].id);
}

static const char *LIMIT_RULE =
    "local te = require 'te'\n"
    "te.rule { name = 'lim', kind = 'req', group_by = { 'svc' }, window = '1m', every = '10s',\n"
    "  aggs = { n = te.count() }, condition = function(a) return a.n > 100 end,\n"
    "  max_groups = 2 }\n";

static void rule_group_limit_drops_new_groups(void **state)
{
    fix *f = *state;
    te_err_t err;
    te_script_t *s = load(f, 0, "lim.lua", LIMIT_RULE, NULL);
    assert_int_equal(te_ruleset_add(f->rs, s, T0, &err), 0);
    te_rule_status_t st;
    feed(f, AT(1), "{\"kind\":\"req\",\"svc\":\"a\"}");
    feed(f, AT(1), "{\"kind\":\"req\",\"svc\":\"b\"}");
    feed(f, AT(1), "{\"kind\":\"req\",\"svc\":\"a\"}");
    te_ruleset_status(f->rs, s, &st, 1);
    assert_int_equal(st.groups, 2);
    assert_int_equal(st.groups_dropped, 0);
    assert_string_equal(st.warning, "");
    feed(f, AT(2), "{\"kind\":\"req\",\"svc\":\"c\"}");
    feed(f, AT(2), "{\"kind\":\"req\",\"svc\":\"d\"}");
    feed(f, AT(2), "{\"kind\":\"req\"}"); /* missing tag: group "" is new too */
    feed(f, AT(2), "{\"kind\":\"req\",\"svc\":\"b\"}");
    te_ruleset_status(f->rs, s, &st, 1);
    assert_int_equal(st.groups, 2);
    assert_int_equal(st.groups_dropped, 3);
    assert_string_equal(st.warning, "group limit reached (2)");
    assert_int_equal(te_ruleset_groups_dropped(f->rs), 3);
}

static void rule_idle_groups_expire_after_two_windows(void **state)
{
    fix *f = *state;
    te_err_t err;
    te_script_t *s = load(f, 0, "lim.lua", LIMIT_RULE, NULL);
    assert_int_equal(te_ruleset_add(f->rs, s, T0, &err), 0);
    te_rule_status_t st;
    feed(f, AT(1), "{\"kind\":\"req\",\"svc\":\"a\"}");
    feed(f, AT(50), "{\"kind\":\"req\",\"svc\":\"b\"}");
    te_ruleset_tick(f->rs, AT(120)); /* a idle 119 s < 120 s */
    te_ruleset_status(f->rs, s, &st, 1);
    assert_int_equal(st.groups, 2);
    te_ruleset_tick(f->rs, AT(130)); /* a idle 129 s: gone; b stays */
    te_ruleset_status(f->rs, s, &st, 1);
    assert_int_equal(st.groups, 1);
    te_ruleset_tick(f->rs, AT(170));
    te_ruleset_status(f->rs, s, &st, 1);
    assert_int_equal(st.groups, 0);
    /* a slot freed by expiry is usable again under the limit */
    feed(f, AT(171), "{\"kind\":\"req\",\"svc\":\"x\"}");
    feed(f, AT(171), "{\"kind\":\"req\",\"svc\":\"y\"}");
    te_ruleset_status(f->rs, s, &st, 1);
    assert_int_equal(st.groups, 2);
    assert_int_equal(st.groups_dropped, 0);
}

static void rule_firing_group_does_not_expire(void **state)
{
    fix *f = *state;
    te_err_t err;
    te_script_t *s = load(f, 0, "keep.lua",
                          "local te = require 'te'\n"
                          "te.rule { name = 'k', kind = 'req', window = '10s', every = '10s',\n"
                          "  aggs = { n = te.count() }, condition = function(a) return a.n > 0 end,\n"
                          "  keep_firing = '1h' }\n",
                          NULL);
    assert_int_equal(te_ruleset_add(f->rs, s, T0, &err), 0);
    feed(f, AT(1), "{\"kind\":\"req\"}");
    te_ruleset_tick(f->rs, AT(10));
    assert_int_equal(f->recs[0].t, TE_ALERT_T_FIRING);
    te_ruleset_tick(f->rs, AT(100));
    te_rule_status_t st;
    te_ruleset_status(f->rs, s, &st, 1);
    assert_int_equal(st.groups, 1);
    assert_int_equal(f->n, 1);
}

static const char *RELOAD_A =
    "local te = require 'te'\n"
    "te.rule { name = 'same', kind = 'req', window = '1m', every = '10s',\n"
    "  aggs = { n = te.count() }, condition = function(a) return a.n > 0 end }\n"
    "te.rule { name = 'changed', kind = 'req', window = '1m', every = '10s',\n"
    "  aggs = { n = te.count() }, condition = function(a) return a.n > 0 end }\n"
    "te.rule { name = 'gone', kind = 'req', window = '1m', every = '10s',\n"
    "  aggs = { n = te.count() }, condition = function(a) return a.n > 0 end }\n";

static const char *RELOAD_B =
    "local te = require 'te'\n"
    "te.rule { name = 'same', kind = 'req', window = '1m', every = '10s',\n"
    "  aggs = { n = te.count() }, condition = function(a) return a.n > 0 end,\n"
    "  summary = 'still {{value}}', value = function(a) return a.n end }\n"
    "te.rule { name = 'changed', kind = 'req', window = '2m', every = '10s',\n"
    "  aggs = { n = te.count() }, condition = function(a) return a.n > 0 end }\n"
    "te.rule { name = 'new', kind = 'req', window = '1m', every = '10s',\n"
    "  aggs = { n = te.count() }, condition = function(a) return a.n > 0 end }\n";

static void reload_keeps_unchanged_state_and_resets_changed(void **state)
{
    fix *f = *state;
    te_err_t err;
    te_script_t *a = load(f, 0, "r.lua", RELOAD_A, NULL);
    assert_int_equal(te_ruleset_add(f->rs, a, T0, &err), 0);
    feed(f, AT(1), "{\"kind\":\"req\"}");
    te_ruleset_tick(f->rs, AT(10));
    assert_int_equal(f->n, 3); /* three firing */
    char same_id[17];
    for (int i = 0; i < 3; i++)
        if (strcmp(f->recs[i].rule, "same") == 0)
            memcpy(same_id, f->recs[i].id, 17);
    te_script_t *b = load(f, 1, "r.lua", RELOAD_B, NULL);
    assert_int_equal(te_ruleset_replace(f->rs, a, b, AT(15), &err), 0);
    /* changed and gone resolve now, with their reasons */
    assert_int_equal(f->n, 5);
    bool saw_changed = false, saw_gone = false;
    for (int i = 3; i < 5; i++) {
        assert_int_equal(f->recs[i].t, TE_ALERT_T_RESOLVED);
        assert_true(f->recs[i].at == AT(15));
        if (strcmp(f->recs[i].rule, "changed") == 0)
            saw_changed = strcmp(f->recs[i].reason, "rule changed") == 0;
        if (strcmp(f->recs[i].rule, "gone") == 0)
            saw_gone = strcmp(f->recs[i].reason, "rule removed") == 0;
    }
    assert_true(saw_changed && saw_gone);
    te_script_free(a);
    f->s[0] = NULL;
    /* next tick: 'same' keeps firing with its id (no transition) and the
     * new summary; 'changed' and 'new' have empty windows */
    te_ruleset_tick(f->rs, AT(20));
    assert_int_equal(f->n, 5);
    te_rule_status_t st[4];
    assert_int_equal(te_ruleset_status(f->rs, b, st, 4), 3);
    for (int i = 0; i < 3; i++) {
        if (strcmp(st[i].name, "same") == 0)
            assert_int_equal(st[i].groups, 1);
        else
            assert_int_equal(st[i].groups, 0);
    }
    feed(f, AT(21), "{\"kind\":\"req\"}");
    te_ruleset_tick(f->rs, AT(30));
    /* changed + new fire (fresh episodes); same still has its old id */
    assert_int_equal(f->n, 7);
    te_rule_status_t one;
    te_ruleset_status(f->rs, b, &one, 1);
    bool found = false;
    for (int i = 0; i < 7; i++)
        if (strcmp(f->recs[i].rule, "same") == 0) {
            const te_alert_t *al = te_ruleset_alert(f->rs, "same", f->recs[i].fp);
            assert_non_null(al);
            assert_string_equal(al->id, same_id);
            assert_int_equal(al->state, TE_ALERT_FIRING);
            assert_string_equal(al->summary, "still 2");
            found = true;
        }
    assert_true(found);
}

static void reload_duplicate_name_is_refused(void **state)
{
    fix *f = *state;
    te_err_t err;
    te_script_t *a = load(f, 0, "a.lua", LIMIT_RULE, NULL);
    te_script_t *b = load(f, 1, "b.lua", LIMIT_RULE, NULL);
    assert_int_equal(te_ruleset_add(f->rs, a, T0, &err), 0);
    assert_int_equal(te_ruleset_add(f->rs, b, T0, &err), TE_EEXISTS);
    assert_non_null(strstr(err.msg, "rule \"lim\" is already defined by"));
    assert_int_equal(te_ruleset_status(f->rs, NULL, NULL, 0), 1);
    te_ruleset_remove(f->rs, a, T0);
    assert_int_equal(te_ruleset_status(f->rs, NULL, NULL, 0), 0);
    assert_int_equal(te_ruleset_add(f->rs, b, T0, &err), 0);
}

static void rule_bad_summary_is_refused_at_add(void **state)
{
    fix *f = *state;
    te_err_t err;
    te_script_t *a = load(f, 0, "bad.lua",
                          "local te = require 'te'\n"
                          "te.rule { name = 'b', kind = 'req', group_by = { 'svc' },\n"
                          "  aggs = { n = te.count() }, condition = function(a) return true end,\n"
                          "  summary = '{{region}} {{value|pct}}' }\n",
                          NULL);
    assert_int_equal(te_ruleset_add(f->rs, a, T0, &err), TE_EINVAL);
    assert_non_null(strstr(err.msg, "bad.lua:2: rule \"b\": summary: unknown name {{region}}"));
}

static void rule_error_does_not_stop_others(void **state)
{
    fix *f = *state;
    te_err_t err;
    te_script_t *s = load(f, 0, "e.lua",
                          "local te = require 'te'\n"
                          "te.rule { name = 'bad', kind = 'req', every = '10s',\n"
                          "  aggs = { n = te.count() }, condition = function(a) error('boom') end }\n"
                          "te.rule { name = 'good', kind = 'req', every = '10s',\n"
                          "  aggs = { n = te.count() }, condition = function(a) return a.n > 0 end }\n",
                          NULL);
    assert_int_equal(te_ruleset_add(f->rs, s, T0, &err), 0);
    feed(f, AT(1), "{\"kind\":\"req\"}");
    assert_int_equal(te_ruleset_tick(f->rs, AT(10)), 2);
    assert_int_equal(f->n, 1);
    assert_string_equal(f->recs[0].rule, "good");
    te_rule_status_t st[2];
    te_ruleset_status(f->rs, s, st, 2);
    assert_string_equal(st[0].status, "error");
    assert_non_null(strstr(st[0].error, "boom"));
    assert_int_equal(st[0].errors, 1);
    assert_string_equal(st[1].status, "ok");
    assert_string_equal(st[1].error, "");
}

static void rule_budget_blow_disables_script(void **state)
{
    fix *f = *state;
    te_err_t err;
    te_script_limits_t lim = {.max_steps = 100000};
    te_script_t *s = load(f, 0, "loop.lua",
                          "local te = require 'te'\n"
                          "te.rule { name = 'spin', kind = 'req', every = '10s',\n"
                          "  aggs = { n = te.count() }, condition = function(a) while true do end end }\n",
                          &lim);
    assert_int_equal(te_ruleset_add(f->rs, s, T0, &err), 0);
    feed(f, AT(1), "{\"kind\":\"req\"}");
    te_ruleset_tick(f->rs, AT(10));
    assert_int_equal(s->status, TE_SCRIPT_DISABLED);
    te_rule_status_t st;
    te_ruleset_status(f->rs, s, &st, 1);
    assert_string_equal(st.status, "disabled");
    assert_true(strlen(st.error) > 0);
    assert_int_equal(te_ruleset_tick(f->rs, AT(20)), 0); /* skipped from now on */
}

static const char *HOOK =
    "local te = require 'te'\n"
    "kept = nil\n"
    "te.on_event { name = 'slow', kind = 'llm_call', where = { provider = 'openai' },\n"
    "  fn = function(ev, ctx)\n"
    "    if kept then local ok, e = pcall(function() return kept.kind end); late_err = e end\n"
    "    kept = ev\n"
    "    last_ts = ev.ts; last_model = ev.tags.model; last_ms = ev.fields.latency_ms\n"
    "    if ev.fields.latency_ms > 1000 then\n"
    "      ctx.alert { severity = 'critical', group = { model = ev.tags.model }, summary = 'slow {{model}}',\n"
    "                  value = ev.fields.latency_ms }\n"
    "      ctx.emit { kind = 'slow_call', tags = { model = ev.tags.model, n = 1 },\n"
    "                 fields = { ms = ev.fields.latency_ms } }\n"
    "    end\n"
    "  end }\n";

static void hook_alerts_emits_and_expires_views(void **state)
{
    fix *f = *state;
    te_err_t err;
    te_script_t *s = load(f, 0, "hook.lua", HOOK, NULL);
    assert_int_equal(te_ruleset_add(f->rs, s, T0, &err), 0);
    feed(f, AT(1), "{\"kind\":\"llm_call\",\"provider\":\"openai\",\"model\":\"m\",\"latency_ms\":1500}");
    feed(f, AT(2), "{\"kind\":\"llm_call\",\"provider\":\"anthropic\",\"model\":\"m\",\"latency_ms\":1500}");
    assert_int_equal(f->n, 1);
    assert_int_equal(f->recs[0].t, TE_ALERT_T_FIRING);
    assert_string_equal(f->recs[0].rule, "slow");
    assert_string_equal(f->recs[0].summary, "slow m");
    assert_true(f->recs[0].value == 1500);
    assert_int_equal(f->nemitted, 1);
    assert_string_equal(f->emitted[0]->kind, "slow_call");
    assert_true(f->emitted[0]->ts_ns == AT(1));
    assert_string_equal(te_event_tag(f->emitted[0], "n"), "1");
    double ms;
    assert_true(te_event_field(f->emitted[0], "ms", &ms) && ms == 1500);
    /* re-raise at 100 s extends; a fast call keeps nothing new */
    feed(f, AT(100), "{\"kind\":\"llm_call\",\"provider\":\"openai\",\"model\":\"m\",\"latency_ms\":2000}");
    feed(f, AT(101), "{\"kind\":\"llm_call\",\"provider\":\"openai\",\"model\":\"m\",\"latency_ms\":5}");
    assert_int_equal(f->n, 1);
    lua_getglobal(s->L, "late_err");
    assert_non_null(strstr(lua_tostring(s->L, -1), "te.Event used after its hook returned"));
    lua_pop(s->L, 1);
    lua_getglobal(s->L, "last_ts");
    assert_true(lua_tonumber(s->L, -1) == 1800000101.0);
    lua_pop(s->L, 1);
    te_ruleset_tick(f->rs, AT(399));
    assert_int_equal(f->n, 1);
    assert_true(te_ruleset_next_tick(f->rs) == AT(400));
    te_ruleset_tick(f->rs, AT(400));
    assert_int_equal(f->n, 2);
    assert_int_equal(f->recs[1].t, TE_ALERT_T_RESOLVED);
    assert_string_equal(f->recs[1].id, f->recs[0].id);
    te_rule_status_t st;
    te_ruleset_status(f->rs, s, &st, 1);
    assert_string_equal(st.type, "on_event");
    assert_int_equal(st.evals, 3);
    assert_int_equal(st.groups, 0);
}

static void hook_error_is_counted_and_reported(void **state)
{
    fix *f = *state;
    te_err_t err;
    te_script_t *s = load(f, 0, "hook2.lua",
                          "local te = require 'te'\n"
                          "te.on_event { name = 'h', fn = function(ev, ctx)\n"
                          "  if ev.kind == 'x' then ev.kind = 'y' end\n"
                          "  ctx.alert { severity = 'loud' } end }\n",
                          NULL);
    assert_int_equal(te_ruleset_add(f->rs, s, T0, &err), 0);
    feed(f, AT(1), "{\"kind\":\"x\"}");
    te_rule_status_t st;
    te_ruleset_status(f->rs, s, &st, 1);
    assert_string_equal(st.status, "error");
    assert_non_null(strstr(st.error, "te.Event is read-only"));
    feed(f, AT(2), "{\"kind\":\"z\"}");
    te_ruleset_status(f->rs, s, &st, 1);
    assert_non_null(strstr(st.error, "ctx.alert: severity: expected \"info\", \"warning\" or "
                                     "\"critical\", got \"loud\""));
    assert_int_equal(st.errors, 2);
    assert_int_equal(f->n, 0);
}

static void rule_where_list_and_regex_select_events(void **state)
{
    fix *f = *state;
    te_err_t err;
    te_script_t *s = load(f, 0, "w.lua",
                          "local te = require 'te'\n"
                          "te.rule { name = 'w', kind = 'req', every = '10s',\n"
                          "  where = { provider = te.match('^open'), region = { 'eu', 'us' } },\n"
                          "  aggs = { n = te.count(), e = te.count{ code = te.match('^5') } },\n"
                          "  condition = function(a) seen = { n = a.n, e = a.e } return false end }\n",
                          NULL);
    assert_int_equal(te_ruleset_add(f->rs, s, T0, &err), 0);
    feed(f, AT(1), "{\"kind\":\"req\",\"provider\":\"openai\",\"region\":\"eu\",\"code\":\"500\"}");
    feed(f, AT(1), "{\"kind\":\"req\",\"provider\":\"openai\",\"region\":\"us\",\"code\":\"200\"}");
    feed(f, AT(1), "{\"kind\":\"req\",\"provider\":\"openai\",\"region\":\"ap\",\"code\":\"500\"}");
    feed(f, AT(1), "{\"kind\":\"req\",\"provider\":\"anthropic\",\"region\":\"eu\"}");
    feed(f, AT(1), "{\"kind\":\"req\",\"region\":\"eu\"}");
    te_ruleset_tick(f->rs, AT(10));
    bool nil;
    assert_true(lua_global_field(s, "n", &nil) == 2);
    assert_true(lua_global_field(s, "e", &nil) == 1);
}

static void reload_failure_keeps_previous_rules(void **state)
{
    fix *f = *state;
    te_err_t err;
    te_script_t *a = load(f, 0, "a.lua",
                          "local te = require 'te'\n"
                          "te.rule { name = 'x', kind = 'req', every = '10s', aggs = { n = te.count() },\n"
                          "  condition = function(a) return a.n > 0 end }\n",
                          NULL);
    te_script_t *c = load(f, 1, "c.lua", LIMIT_RULE, NULL);
    assert_int_equal(te_ruleset_add(f->rs, a, T0, &err), 0);
    assert_int_equal(te_ruleset_add(f->rs, c, T0, &err), 0);
    feed(f, AT(1), "{\"kind\":\"req\"}");
    te_ruleset_tick(f->rs, AT(10));
    assert_int_equal(f->n, 1);
    /* the new version of a.lua declares 'lim', owned by c.lua */
    te_script_t *a2 = load(f, 2, "a2.lua", LIMIT_RULE, NULL);
    assert_int_equal(te_ruleset_replace(f->rs, a, a2, AT(12), &err), TE_EEXISTS);
    assert_non_null(strstr(err.msg, "a2.lua:2: rule \"lim\" is already defined by"));
    assert_int_equal(f->n, 1); /* nothing resolved */
    te_rule_status_t st;
    assert_int_equal(te_ruleset_status(f->rs, a, &st, 1), 1);
    assert_string_equal(st.name, "x");
    assert_int_equal(st.groups, 1);
    assert_int_equal(te_ruleset_status(f->rs, a2, NULL, 0), 0);
}

static void reload_kept_rule_takes_new_every(void **state)
{
    fix *f = *state;
    te_err_t err;
    te_script_t *a = load(f, 0, "a.lua",
                          "local te = require 'te'\n"
                          "te.rule { name = 'x', kind = 'req', every = '10s', aggs = { n = te.count() },\n"
                          "  condition = function(a) return a.n > 0 end }\n",
                          NULL);
    assert_int_equal(te_ruleset_add(f->rs, a, T0, &err), 0);
    assert_true(te_ruleset_next_tick(f->rs) == AT(10));
    te_script_t *b = load(f, 1, "a.lua",
                          "local te = require 'te'\n"
                          "te.rule { name = 'x', kind = 'req', every = '1m', aggs = { n = te.count() },\n"
                          "  condition = function(a) return a.n > 0 end }\n",
                          NULL);
    assert_int_equal(te_ruleset_replace(f->rs, a, b, AT(5), &err), 0);
    assert_true(te_ruleset_next_tick(f->rs) == AT(60));
    assert_int_equal(te_ruleset_tick(f->rs, AT(10)), 0);
    assert_int_equal(te_ruleset_tick(f->rs, AT(60)), 1);
}

static void hook_emit_refusal_and_bad_input(void **state)
{
    fix *f = *state;
    te_err_t err;
    te_script_t *s = load(f, 0, "em.lua",
                          "local te = require 'te'\n"
                          "te.on_event { name = 'em', kind = 'req', fn = function(ev, ctx)\n"
                          "  r1, r2 = ctx.emit { kind = 'derived', fields = { x = 1 } }\n"
                          "  ok1, e1 = pcall(ctx.emit, { tags = {} })\n"
                          "  ok2, e2 = pcall(ctx.emit, { kind = 'Bad Kind' })\n"
                          "  ok3, e3 = pcall(ctx.emit, { kind = 'd', fields = { x = 'str' } })\n"
                          "  saved = ctx end }\n"
                          "te.rule { name = 'later', kind = 'tick', every = '10s', aggs = { n = te.count() },\n"
                          "  condition = function(a) ok4, e4 = pcall(saved.alert, {}) return false end }\n",
                          NULL);
    assert_int_equal(te_ruleset_add(f->rs, s, T0, &err), 0);
    f->refuse_emit = true;
    feed(f, AT(1), "{\"kind\":\"req\"}");
    feed(f, AT(1), "{\"kind\":\"tick\"}");
    te_ruleset_tick(f->rs, AT(10));
    lua_State *L = s->L;
    lua_getglobal(L, "r1");
    assert_true(lua_isnil(L, -1));
    lua_getglobal(L, "r2");
    assert_string_equal(lua_tostring(L, -1), "emit refused");
    lua_getglobal(L, "e1");
    assert_non_null(strstr(lua_tostring(L, -1), "ctx.emit: kind is required"));
    lua_getglobal(L, "e2");
    assert_non_null(strstr(lua_tostring(L, -1), "ctx.emit: kind \"Bad Kind\""));
    lua_getglobal(L, "e3");
    assert_non_null(strstr(lua_tostring(L, -1), "ctx.emit: fields.x: expected number, got string"));
    lua_getglobal(L, "e4");
    assert_non_null(strstr(lua_tostring(L, -1), "ctx.alert: ctx used after its hook returned"));
    lua_pop(L, 6);
    assert_int_equal(f->nemitted, 0);
}

static void group_map_survives_random_inserts_and_removals(void **state)
{
    (void)state;
    te_group_map_t m = {0};
    static bool live[2000];
    uint64_t x = 88172645463325252ull;
    char buf[32];
    memset(live, 0, sizeof(live));
    for (int round = 0; round < 20000; round++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int k = (int)(x % 2000);
        snprintf(buf, sizeof(buf), "g%d", k);
        const char *items[2] = {buf, k % 3 ? "x" : ""};
        uint64_t h = te_group_hash(items, 2);
        te_group_t *g = te_group_find(&m, items, 2, h);
        assert_true((g != NULL) == live[k]);
        if (g)
            te_group_remove(&m, g);
        else
            assert_non_null(te_group_add(&m, items, 2, h, NULL, 0, T0));
        live[k] = !live[k];
    }
    size_t n = 0;
    for (int k = 0; k < 2000; k++) {
        snprintf(buf, sizeof(buf), "g%d", k);
        const char *items[2] = {buf, k % 3 ? "x" : ""};
        assert_true((te_group_find(&m, items, 2, te_group_hash(items, 2)) != NULL) == live[k]);
        n += live[k];
    }
    assert_int_equal(m.n, n);
    te_group_map_free(&m);
}

typedef struct restore_ctx {
    te_ruleset_t *rs;
    int restored;
} restore_ctx;

static int on_load(void *ud, const te_alert_t *a)
{
    restore_ctx *c = ud;
    te_err_t err;
    assert_int_equal(te_ruleset_restore(c->rs, a, AT(100), &err), 0);
    c->restored++;
    return 0;
}

static void restore_reattaches_firing_alert_after_restart(void **state)
{
    fix *f = *state;
    te_err_t err;
    char path[128];
    snprintf(path, sizeof(path), "%s/t.db", f->dir);
    te_store_opts_t o = {.path = path};
    assert_int_equal(te_store_open(&o, &f->st, &err), 0);
    assert_int_equal(te_store_alerts_init(f->st, &err), 0);
    te_script_t *s = load(f, 0, "errs.lua", ERR_RULE, NULL);
    assert_int_equal(te_ruleset_add(f->rs, s, T0, &err), 0);
    feed(f, AT(1), "{\"kind\":\"req\",\"svc\":\"a\",\"status\":\"error\"}");
    feed(f, AT(2), "{\"kind\":\"req\",\"svc\":\"a\",\"status\":\"error\"}");
    te_ruleset_tick(f->rs, AT(10));
    te_ruleset_tick(f->rs, AT(30));
    assert_int_equal(f->recs[1].t, TE_ALERT_T_FIRING);
    char id[17];
    memcpy(id, f->recs[1].id, 17);
    /* "restart": a new ruleset and script, state from the store */
    te_ruleset_free(f->rs);
    te_script_free(s);
    f->s[0] = NULL;
    te_ruleset_opts_t ro = {.id_seed = 99, .on_alert = on_alert, .alert_ud = f};
    f->rs = te_ruleset_new(&ro, NULL);
    s = load(f, 0, "errs.lua", ERR_RULE, NULL);
    assert_int_equal(te_ruleset_add(f->rs, s, AT(100), &err), 0);
    restore_ctx c = {f->rs, 0};
    assert_int_equal(te_store_alerts_load_active(f->st, on_load, &c, &err), 0);
    assert_int_equal(c.restored, 1);
    const te_alert_t *a = te_ruleset_alert(f->rs, "errs", f->recs[1].fp);
    assert_non_null(a);
    assert_string_equal(a->id, id);
    assert_int_equal(a->state, TE_ALERT_FIRING);
    /* no data after the restart: resolves keep_firing (10 s) later, same id */
    int before = f->n;
    te_ruleset_tick(f->rs, AT(110));
    te_ruleset_tick(f->rs, AT(120));
    assert_int_equal(f->n, before + 1);
    assert_int_equal(f->recs[before].t, TE_ALERT_T_RESOLVED);
    assert_string_equal(f->recs[before].id, id);
    assert_true(f->recs[before].at == AT(120));
    int64_t n;
    assert_int_equal(te_store_alerts_history_count(f->st, id, &n, &err), 0);
    assert_int_equal(n, 3); /* pending, firing, resolved */
    c.restored = 0;
    assert_int_equal(te_store_alerts_load_active(f->st, on_load, &c, &err), 0);
    assert_int_equal(c.restored, 0);
    /* an alert of an unknown rule is not attached */
    te_alert_t x;
    te_alert_init(&x);
    const char *k[] = {"svc"}, *v[] = {"a"};
    te_alert_set_identity(&x, "nope", k, v, 1);
    x.state = TE_ALERT_FIRING;
    assert_int_equal(te_ruleset_restore(f->rs, &x, AT(130), &err), TE_ENOTFOUND);
    te_alert_set_identity(&x, "errs", k, v, 0);
    assert_int_equal(te_ruleset_restore(f->rs, &x, AT(130), &err), TE_ENOTFOUND);
    x.state = TE_ALERT_RESOLVED;
    assert_int_equal(te_ruleset_restore(f->rs, &x, AT(130), &err), TE_EINVAL);
    te_alert_clear(&x);
    te_store_close(f->st);
    f->st = NULL;
    unlink(path);
    char side[160];
    snprintf(side, sizeof(side), "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof(side), "%s-shm", path);
    unlink(side);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(rule_pending_firing_resolved_exact_times),
        T(rule_aggregates_reach_lua),
        T(rule_repeat_every_renotifies_while_firing),
        T(rule_group_limit_drops_new_groups),
        T(rule_idle_groups_expire_after_two_windows),
        T(rule_firing_group_does_not_expire),
        T(reload_keeps_unchanged_state_and_resets_changed),
        T(reload_duplicate_name_is_refused),
        T(rule_bad_summary_is_refused_at_add),
        T(rule_error_does_not_stop_others),
        T(rule_budget_blow_disables_script),
        T(hook_alerts_emits_and_expires_views),
        T(hook_error_is_counted_and_reported),
        T(restore_reattaches_firing_alert_after_restart),
        T(rule_where_list_and_regex_select_events),
        T(reload_failure_keeps_previous_rules),
        T(reload_kept_rule_takes_new_every),
        T(hook_emit_refusal_and_bad_input),
        T(group_map_survives_random_inserts_and_removals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
