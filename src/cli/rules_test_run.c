/*
 * rules_test_run.c - runs the tests of one rule test file (SPEC 6.6; the
 * format is in docs/rules-testing.md).
 *
 * THREAD: main.
 *
 * The one idea: a test is a replay on a virtual clock. Each test gets a
 * fresh ruleset and fresh rule-script states; the clock jumps from one
 * interesting instant to the next (an event's time, the ruleset's next
 * tick, an expectation's time), and at one instant the order is fixed:
 * events first, then the tick, then the expectations. So an expectation
 * "at = 2m" sees the evaluation made at 2m, and a test gives the same
 * answer on every run and every machine. Alert state is taken from the
 * transition callback (not from the live groups, which may expire), so
 * "resolved" stays observable after the group is gone.
 */
#include "rules_test.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "../core/time.h"
#include "../rules/eval.h"
#include "rules_test_spec.h"

#define MAX_STEPS 5000000     /* clock jumps per test: a runaway guard */
#define MAX_EMITTED 100000    /* derived events (ctx.emit) per test */

typedef struct trans {
    int64_t at;               /* offset from start */
    te_alert_transition_t t;
} trans_t;

/* What the callback saw of one alert instance (rule + fingerprint). */
typedef struct inst {
    char *rule;
    char fp[TE_ALERT_ID_LEN + 1];
    char **keys, **values;
    size_t n;
    te_alert_state_t state;
    int64_t since;            /* offset of the last state change */
    te_severity_t sev;
    bool has_value;
    double value;
    char *summary;
    trans_t *tr;
    size_t ntr, trcap;
} inst_t;

typedef struct run {
    int64_t start, now;
    te_script_clock_t clock;
    te_script_t **scripts;
    size_t nscripts;
    te_ruleset_t *rs;
    inst_t *insts;
    size_t ninst, instcap;
    te_event_t **emitted;     /* queue of ctx.emit events, fed after the current feed */
    size_t nemit, emitcap, emit_total;
    bool oom;
    FILE *why;                /* reasons of failure, one per line */
    char *why_buf;
    size_t why_len;
    int nwhy;
} run_t;

static int64_t clock_now(void *arg)
{
    return ((const run_t *)arg)->now;
}

static void fail_line(run_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail_line(run_t *r, const char *fmt, ...)
{
    va_list ap;
    r->nwhy++;
    if (!r->why)
        return;
    fputs("     ", r->why);
    va_start(ap, fmt);
    vfprintf(r->why, fmt, ap);
    va_end(ap);
    fputc('\n', r->why);
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s ? s : "") + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s ? s : "", n);
    return p;
}

static void fmt_off(int64_t ns, char *buf, size_t cap)
{
    te_duration_format(ns, buf, cap);
}

/* --- the transition callback --- */

static void inst_free(inst_t *in)
{
    free(in->rule);
    for (size_t i = 0; i < in->n; i++) {
        free(in->keys[i]);
        free(in->values[i]);
    }
    free(in->keys);
    free(in->values);
    free(in->summary);
    free(in->tr);
}

static inst_t *inst_get(run_t *r, const te_alert_t *a)
{
    for (size_t i = 0; i < r->ninst; i++)
        if (strcmp(r->insts[i].fp, a->fingerprint) == 0 && strcmp(r->insts[i].rule, a->rule) == 0)
            return &r->insts[i];
    if (r->ninst == r->instcap) {
        size_t cap = r->instcap ? r->instcap * 2 : 16;
        inst_t *p = realloc(r->insts, cap * sizeof(*p));
        if (!p)
            return NULL;
        r->insts = p;
        r->instcap = cap;
    }
    inst_t *in = &r->insts[r->ninst];
    memset(in, 0, sizeof(*in));
    memcpy(in->fp, a->fingerprint, sizeof(in->fp));
    in->rule = dup_str(a->rule);
    in->keys = calloc(a->ngroup ? a->ngroup : 1, sizeof(char *));
    in->values = calloc(a->ngroup ? a->ngroup : 1, sizeof(char *));
    bool ok = in->rule && in->keys && in->values;
    for (size_t i = 0; ok && i < a->ngroup; i++) {
        in->keys[i] = dup_str(a->group_keys[i]);
        in->values[i] = dup_str(a->group_values[i]);
        in->n = i + 1;
        ok = in->keys[i] && in->values[i];
    }
    if (!ok) {
        inst_free(in);
        return NULL;
    }
    r->ninst++;
    return in;
}

static void on_alert(void *ud, const te_alert_t *a, te_alert_transition_t t)
{
    run_t *r = ud;
    inst_t *in = inst_get(r, a);
    if (!in) {
        r->oom = true;
        return;
    }
    if (in->ntr == in->trcap) {
        size_t cap = in->trcap ? in->trcap * 2 : 8;
        trans_t *p = realloc(in->tr, cap * sizeof(*p));
        if (!p) {
            r->oom = true;
            return;
        }
        in->tr = p;
        in->trcap = cap;
    }
    in->tr[in->ntr++] = (trans_t){r->now - r->start, t};
    te_alert_state_t st = t == TE_ALERT_T_PENDING   ? TE_ALERT_PENDING
                          : t == TE_ALERT_T_RESOLVED ? TE_ALERT_RESOLVED
                          : t == TE_ALERT_T_CLEARED  ? TE_ALERT_INACTIVE
                                                     : TE_ALERT_FIRING;
    if (st != in->state || t == TE_ALERT_T_FIRING)
        in->since = r->now - r->start;
    in->state = st;
    in->sev = a->severity;
    in->has_value = a->has_value;
    in->value = a->value;
    free(in->summary);
    in->summary = a->summary ? dup_str(a->summary) : NULL;
}

static int on_emit(void *ud, te_event_t *ev)
{
    run_t *r = ud;
    if (r->emit_total >= MAX_EMITTED) {
        te_event_free(ev);
        return -1;
    }
    if (r->nemit == r->emitcap) {
        size_t cap = r->emitcap ? r->emitcap * 2 : 16;
        te_event_t **p = realloc(r->emitted, cap * sizeof(*p));
        if (!p) {
            te_event_free(ev);
            r->oom = true;
            return -1;
        }
        r->emitted = p;
        r->emitcap = cap;
    }
    r->emitted[r->nemit++] = ev;
    r->emit_total++;
    return 0;
}

/* Feeds ev, then every derived event it (transitively) emitted, in order. */
static void feed(run_t *r, const te_event_t *ev)
{
    te_ruleset_feed(r->rs, ev, r->now);
    for (size_t i = 0; i < r->nemit; i++) { /* feeding may append: re-read nemit */
        te_ruleset_feed(r->rs, r->emitted[i], r->now);
    }
    for (size_t i = 0; i < r->nemit; i++)
        te_event_free(r->emitted[i]);
    r->nemit = 0;
}

/* --- expectations --- */

static const te_rule_def_t *find_def(const run_t *r, const char *name)
{
    for (size_t i = 0; i < r->nscripts; i++)
        for (size_t j = 0; j < r->scripts[i]->ndefs; j++)
            if (strcmp(r->scripts[i]->defs[j]->name, name) == 0)
                return r->scripts[i]->defs[j];
    return NULL;
}

static bool group_matches(const inst_t *in, const cJSON *g)
{
    for (size_t i = 0; i < in->n; i++) {
        const cJSON *v = g ? cJSON_GetObjectItemCaseSensitive(g, in->keys[i]) : NULL;
        if (strcmp(v ? v->valuestring : "", in->values[i]) != 0)
            return false;
    }
    for (const cJSON *v = g ? g->child : NULL; v; v = v->next) {
        bool have = false;
        for (size_t i = 0; i < in->n && !have; i++)
            have = strcmp(in->keys[i], v->string) == 0;
        if (!have)
            return false;
    }
    return true;
}

static const inst_t *find_inst(const run_t *r, const te_rules_test_expect_t *x)
{
    for (size_t i = 0; i < r->ninst; i++)
        if (strcmp(r->insts[i].rule, x->rule) == 0 && group_matches(&r->insts[i], x->group))
            return &r->insts[i];
    return NULL;
}

/* "rule{k=v, k2=v2}" for messages (keys sorted, as the spec reader keeps them). */
static void describe(const te_rules_test_expect_t *x, char *buf, size_t cap)
{
    size_t n = (size_t)snprintf(buf, cap, "%s{", x->rule);
    for (const cJSON *v = x->group ? x->group->child : NULL; v && n < cap; v = v->next)
        n += (size_t)snprintf(buf + n, cap - n, "%s%s=%s", v == x->group->child ? "" : ", ",
                              v->string, v->valuestring);
    if (n < cap)
        snprintf(buf + n, cap - n, "}");
}

/* Checks the rule and group keys an expectation names against the loaded
 * rule files. Returns false (reason recorded) when they cannot match. */
static bool check_names(run_t *r, const te_rules_test_expect_t *x)
{
    const char *list = x->transition ? "expect_transitions" : "expect";
    const te_rule_def_t *d = find_def(r, x->rule);
    if (!d) {
        fail_line(r, "%s[%zu]: no rule or on_event named \"%s\" in rule_files", list, x->index,
                  x->rule);
        return false;
    }
    if (d->type == TE_DEF_ON_EVENT)
        return true; /* on_event alerts: the group is whatever ctx.alert gave */
    for (const cJSON *v = x->group ? x->group->child : NULL; v; v = v->next) {
        bool have = false;
        for (size_t i = 0; i < d->ngroup && !have; i++)
            have = strcmp(d->group_by[i], v->string) == 0;
        if (!have) {
            char keys[256] = "";
            size_t n = 0;
            for (size_t i = 0; i < d->ngroup && n < sizeof(keys); i++)
                n += (size_t)snprintf(keys + n, sizeof(keys) - n, "%s%s", i ? ", " : "",
                                      d->group_by[i]);
            fail_line(r, "%s[%zu]: group key \"%s\" is not in group_by of rule \"%s\" (%s)", list,
                      x->index, v->string, x->rule, keys);
            return false;
        }
    }
    return true;
}

static void check_transition(run_t *r, const te_rules_test_expect_t *x)
{
    char who[512], at[32], got[512] = "";
    const inst_t *in = find_inst(r, x);
    for (size_t i = 0; in && i < in->ntr; i++)
        if (in->tr[i].t == x->to && in->tr[i].at == x->at)
            return;
    describe(x, who, sizeof(who));
    fmt_off(x->at, at, sizeof(at));
    size_t n = 0;
    for (size_t i = 0; in && i < in->ntr && n < sizeof(got); i++) {
        char t[32];
        fmt_off(in->tr[i].at, t, sizeof(t));
        n += (size_t)snprintf(got + n, sizeof(got) - n, "%s%s at %s", i ? ", " : "",
                              te_alert_transition_name(in->tr[i].t), t);
    }
    fail_line(r, "expect_transitions[%zu]: %s: expected a transition to %s at %s, got %s",
              x->index, who, te_alert_transition_name(x->to), at, n ? got : "none");
}

static void check_state(run_t *r, const te_rules_test_expect_t *x)
{
    char who[512], at[32], since[32];
    const inst_t *in = find_inst(r, x);
    te_alert_state_t st = in ? in->state : TE_ALERT_INACTIVE;
    describe(x, who, sizeof(who));
    fmt_off(x->at, at, sizeof(at));
    if (st != x->state) {
        if (!in || in->ntr == 0) {
            fail_line(r, "expect[%zu] at %s: %s: expected %s, got inactive (never active)",
                      x->index, at, who, te_alert_state_name(x->state));
        } else {
            fmt_off(in->since, since, sizeof(since));
            fail_line(r, "expect[%zu] at %s: %s: expected %s, got %s since %s", x->index, at, who,
                      te_alert_state_name(x->state), te_alert_state_name(st), since);
        }
        return;
    }
    if (!in || (!x->has_sev && !x->has_value && !x->summary))
        return;
    /* the live alert carries the latest evaluation; the record, the last transition */
    const te_alert_t *live = te_ruleset_alert(r->rs, in->rule, in->fp);
    te_severity_t sev = live ? live->severity : in->sev;
    bool has_value = live ? live->has_value : in->has_value;
    double value = live ? live->value : in->value;
    const char *summary = live ? live->summary : in->summary;
    if (x->has_sev && sev != x->sev)
        fail_line(r, "expect[%zu] at %s: %s: expected severity %s, got %s", x->index, at, who,
                  te_severity_name(x->sev), te_severity_name(sev));
    if (x->has_value) {
        double tol = x->has_tol ? x->tol : 1e-6 * fmax(1.0, fabs(x->value));
        if (!has_value)
            fail_line(r, "expect[%zu] at %s: %s: expected value %.9g, got no value", x->index,
                      at, who, x->value);
        else if (!(fabs(value - x->value) <= tol))
            fail_line(r, "expect[%zu] at %s: %s: expected value %.9g (+/- %g), got %.9g",
                      x->index, at, who, x->value, tol, value);
    }
    if (x->summary && strcmp(summary ? summary : "", x->summary) != 0)
        fail_line(r, "expect[%zu] at %s: %s: expected summary \"%s\", got \"%s\"", x->index, at,
                  who, x->summary, summary ? summary : "");
}

/* --- one test --- */

static int cmp_occ(const void *a, const void *b)
{
    const te_rules_test_occ_t *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    if (x->item != y->item)
        return x->item < y->item ? -1 : 1;
    return x->k < y->k ? -1 : x->k > y->k;
}

static int cmp_expect(const void *a, const void *b)
{
    const te_rules_test_expect_t *x = a, *y = b;
    if (x->at != y->at)
        return x->at < y->at ? -1 : 1;
    if (x->transition != y->transition)
        return x->transition ? 1 : -1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static bool load_rules(run_t *r, const te_rules_test_t *t, const char *lib_dir,
                       const te_script_limits_t *limits)
{
    te_err_t err;
    r->scripts = calloc(t->nrule_files ? t->nrule_files : 1, sizeof(*r->scripts));
    te_ruleset_opts_t o = {.id_seed = 1, .on_alert = on_alert, .alert_ud = r,
                           .on_emit = on_emit, .emit_ud = r};
    te_err_clear(&err);
    if (!r->scripts || !(r->rs = te_ruleset_new(&o, &err))) {
        fail_line(r, "out of memory");
        return false;
    }
    for (size_t i = 0; i < t->nrule_files; i++) {
        te_script_t *s = NULL;
        te_err_clear(&err);
        if (te_script_load(t->rule_files[i], lib_dir, limits, &s, &err) < 0) {
            fail_line(r, "rule file: %s", err.msg);
            return false;
        }
        r->scripts[r->nscripts++] = s;
        if (te_script_set_clock(s, &r->clock) < 0) {
            fail_line(r, "%s: out of memory", t->rule_files[i]);
            return false;
        }
        te_err_clear(&err);
        if (te_ruleset_add(r->rs, s, r->now, &err) < 0) {
            fail_line(r, "rule file: %s", err.msg);
            return false;
        }
    }
    return true;
}

/* Rules that raised or were disabled during the test fail it. */
static void check_rule_errors(run_t *r)
{
    size_t n = te_ruleset_status(r->rs, NULL, NULL, 0);
    te_rule_status_t *st = calloc(n ? n : 1, sizeof(*st));
    if (!st) {
        fail_line(r, "out of memory");
        return;
    }
    n = te_ruleset_status(r->rs, NULL, st, n);
    for (size_t i = 0; i < n; i++)
        if (st[i].errors > 0 || strcmp(st[i].status, "ok") != 0)
            fail_line(r, "%s \"%s\" %s during the test (errors: %llu): %s", st[i].type,
                      st[i].name, strcmp(st[i].status, "disabled") == 0 ? "was disabled" : "raised",
                      (unsigned long long)st[i].errors, st[i].error);
    free(st);
}

static void replay(run_t *r, te_rules_test_t *t)
{
    if (t->nocc > 0) /* qsort(NULL, 0, ...) is undefined */
        qsort(t->occ, t->nocc, sizeof(*t->occ), cmp_occ);
    qsort(t->expect, t->nexpect, sizeof(*t->expect), cmp_expect);
    for (size_t i = 0; i < t->nexpect; i++)
        if (!check_names(r, &t->expect[i]))
            return;
    size_t oi = 0, xi = 0;
    for (long steps = 0; xi < t->nexpect && !r->oom; steps++) {
        int64_t t_ev = oi < t->nocc ? r->start + t->occ[oi].ts : INT64_MAX;
        int64_t t_tick = te_ruleset_next_tick(r->rs);
        int64_t t_x = r->start + t->expect[xi].at;
        int64_t now = t_x < t_ev ? t_x : t_ev;
        if (t_tick < now)
            now = t_tick;
        if (steps > MAX_STEPS) {
            char b[32];
            fmt_off(now - r->start, b, sizeof(b));
            fail_line(r, "virtual clock: more than %d steps by %s (a rule with a tiny every?)",
                      MAX_STEPS, b);
            return;
        }
        r->now = now;
        while (oi < t->nocc && r->start + t->occ[oi].ts == now) {
            te_event_t *ev = t->items[t->occ[oi].item];
            ev->ts_ns = now;
            feed(r, ev);
            oi++;
        }
        if (t_tick <= now) {
            te_ruleset_tick(r->rs, now);
            if (te_ruleset_next_tick(r->rs) <= now) {
                char b[32];
                fmt_off(now - r->start, b, sizeof(b));
                fail_line(r, "virtual clock: the ruleset did not schedule a tick after %s", b);
                return;
            }
        }
        while (xi < t->nexpect && r->start + t->expect[xi].at == now) {
            if (!t->expect[xi].transition) /* transitions: at the end, with the full history */
                check_state(r, &t->expect[xi]);
            xi++;
        }
    }
    for (size_t i = 0; xi == t->nexpect && i < t->nexpect; i++)
        if (t->expect[i].transition)
            check_transition(r, &t->expect[i]);
    if (r->oom)
        fail_line(r, "out of memory while recording alerts");
    if (r->emit_total >= MAX_EMITTED)
        fail_line(r, "ctx.emit: more than %d derived events in one test", MAX_EMITTED);
    check_rule_errors(r);
}

static void run_one(const char *path, te_rules_test_t *t, int64_t start, const char *lib_dir,
                    const te_script_limits_t *limits, FILE *out, te_rules_test_tally_t *tally)
{
    run_t r;
    memset(&r, 0, sizeof(r));
    r.start = r.now = start;
    r.clock.now_ns = clock_now;
    r.clock.arg = &r;
    r.why = open_memstream(&r.why_buf, &r.why_len);
    if (load_rules(&r, t, lib_dir, limits))
        replay(&r, t);
    te_ruleset_free(r.rs); /* before the scripts: it holds their refs */
    for (size_t i = 0; i < r.nscripts; i++)
        te_script_free(r.scripts[i]);
    free(r.scripts);
    for (size_t i = 0; i < r.ninst; i++)
        inst_free(&r.insts[i]);
    free(r.insts);
    for (size_t i = 0; i < r.nemit; i++)
        te_event_free(r.emitted[i]);
    free(r.emitted);
    if (r.why)
        fclose(r.why);
    if (r.nwhy == 0) {
        fprintf(out, "ok   %s: %s\n", path, t->name);
        tally->passed++;
    } else {
        fprintf(out, "FAIL %s: %s\n%s", path, t->name,
                r.why_buf ? r.why_buf : "     (out of memory)\n");
        tally->failed++;
    }
    free(r.why_buf);
}

void te_rules_test_run_file(const char *path, const void *spec, const char *lib_dir,
                            const te_script_limits_t *limits, FILE *out,
                            te_rules_test_tally_t *tally)
{
    te_err_t err;
    te_rules_test_file_t f;
    te_err_clear(&err);
    if (te_rules_test_spec_file(path, spec, &f, &err) < 0) {
        fprintf(out, "FAIL %s: %s\n", path, err.msg);
        tally->failed++;
        return;
    }
    for (size_t i = 0; i < f.ntests; i++) {
        te_rules_test_t t;
        te_err_clear(&err);
        if (te_rules_test_spec_test(&f, i, &t, &err) < 0) {
            fprintf(out, "FAIL %s: %s\n     %s\n", path, t.name ? t.name : "?", err.msg);
            tally->failed++;
            te_rules_test_spec_test_free(&t);
            continue;
        }
        run_one(path, &t, f.start, lib_dir, limits, out, tally);
        te_rules_test_spec_test_free(&t);
    }
    te_rules_test_spec_file_free(&f);
    fflush(out);
}
