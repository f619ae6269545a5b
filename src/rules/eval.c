/*
 * eval.c - live rules: instantiation, hot reload, feeding and ticks
 * (see eval.h for the semantics, docs/rules.md for the user's view).
 *
 * THREAD: loop.
 *
 * The one idea: a rule's state (groups, windows, alerts) lives in C, keyed
 * by rule name and fingerprint, so a reload that keeps a rule's shape keeps
 * its state: the live rule just re-points at the new def and script.
 */
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "rules/eval_int.h"

#define DEFAULT_HOOK_ALERT_NS (INT64_C(300) * 1000000000)

/* The loop's time in a rule: CLOCK_MONOTONIC is read through the vDSO
 * (tens of ns), where CLOCK_THREAD_CPUTIME_ID is a system call that cost
 * more than the hooks it timed. The loop runs one thing at a time, so the
 * two differ only when the thread is preempted. */
uint64_t te_eval_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* The first multiple of every strictly after now. */
static int64_t next_aligned(int64_t now_ns, int64_t every_ns)
{
    return (floor_div(now_ns, every_ns) + 1) * every_ns;
}

void te_ruleset_notify(te_ruleset_t *rs, const te_alert_t *a, te_alert_transition_t t)
{
    if (t != TE_ALERT_T_NONE && rs->opts.on_alert)
        rs->opts.on_alert(rs->opts.alert_ud, a, t);
}

void te_eval_lua_error(te_live_rule_t *r, lua_State *L, int64_t now_ns)
{
    const char *msg = lua_tostring(L, -1);
    char buf[TE_ERR_MSG_MAX];
    snprintf(buf, sizeof(buf), "%s", msg ? msg : "(error object is not a string)");
    lua_pop(L, 1);
    if (!r->failed || strncmp(buf, r->error, strlen(r->error)) != 0)
        te_log(TE_LOG_WARN, "rules", "rule=%s: %s", r->def->name, buf);
    memcpy(r->error, buf, sizeof(buf));
    char *nl = strchr(r->error, '\n'); /* status shows the message, the log the traceback */
    if (nl)
        *nl = '\0';
    r->failed = true;
    r->errors++;
    r->last_eval_ns = now_ns;
}

te_ruleset_t *te_ruleset_new(const te_ruleset_opts_t *opts, te_err_t *err)
{
    te_ruleset_t *rs = calloc(1, sizeof(*rs));
    if (!rs) {
        te_err_set(err, TE_ENOMEM, "rules: cannot allocate the ruleset");
        return NULL;
    }
    if (opts)
        rs->opts = *opts;
    if (rs->opts.hook_alert_ns <= 0)
        rs->opts.hook_alert_ns = DEFAULT_HOOK_ALERT_NS;
    rs->rng = rs->opts.id_seed;
    return rs;
}

static void rule_free(te_live_rule_t *r)
{
    if (!r)
        return;
    te_hook_close(r);
    te_group_map_free(&r->groups);
    free(r->wopts);
    free(r->kidx);
    free(r->akeys);
    free(r);
}

void te_ruleset_free(te_ruleset_t *rs)
{
    if (!rs)
        return;
    for (size_t i = 0; i < rs->n; i++)
        rule_free(rs->rules[i]);
    free(rs->rules);
    for (size_t i = 0; i < rs->nkeys; i++)
        free(rs->keys[i]);
    free(rs->keys);
    free(rs->kval);
    free(rs->kgen);
    free(rs);
}

te_live_rule_t *te_ruleset_find(const te_ruleset_t *rs, const char *name)
{
    for (size_t i = 0; i < rs->n; i++)
        if (strcmp(rs->rules[i]->def->name, name) == 0)
            return rs->rules[i];
    return NULL;
}

/* Checks a summary template against the rule's group keys and labels. */
static int check_summary(const te_rule_def_t *d, te_err_t *err)
{
    if (!d->summary)
        return 0;
    te_alert_t a;
    te_alert_init(&a);
    a.ngroup = d->ngroup;
    a.group_keys = d->group_by;
    a.group_values = d->group_by; /* any non-NULL strings */
    a.nlabels = d->nlabels;
    a.label_keys = d->label_keys;
    a.label_values = d->label_values;
    a.rule = d->name;
    char *s = te_alert_render(d->summary, &a, err);
    if (!s)
        return err ? err->code : TE_EINVAL;
    free(s);
    return 0;
}

/* Index of tag key k in rs->keys, adding it when new. Returns 0 or
 * TE_ENOMEM / TE_ETOOBIG (more than TE_MAX_TAG_KEYS distinct keys). */
static int intern(te_ruleset_t *rs, const char *k, uint32_t *out)
{
    for (size_t i = 0; i < rs->nkeys; i++)
        if (strcmp(rs->keys[i], k) == 0) {
            *out = (uint32_t)i;
            return 0;
        }
    if (rs->nkeys >= TE_MAX_TAG_KEYS)
        return TE_ETOOBIG;
    if (rs->nkeys == rs->capkeys) {
        size_t cap = rs->capkeys ? rs->capkeys * 2 : 16;
        char **keys = realloc(rs->keys, cap * sizeof(*keys));
        if (!keys)
            return TE_ENOMEM;
        rs->keys = keys;
        const char **kval = realloc(rs->kval, cap * sizeof(*kval));
        if (!kval)
            return TE_ENOMEM;
        rs->kval = kval;
        uint32_t *kgen = realloc(rs->kgen, cap * sizeof(*kgen));
        if (!kgen)
            return TE_ENOMEM;
        rs->kgen = kgen;
        rs->capkeys = cap;
    }
    char *d = malloc(strlen(k) + 1);
    if (!d)
        return TE_ENOMEM;
    strcpy(d, k);
    rs->keys[rs->nkeys] = d;
    rs->kgen[rs->nkeys] = 0; /* gen starts at 1: never valid */
    *out = (uint32_t)rs->nkeys++;
    return 0;
}

/* Interns every tag key the rule reads on the hot path. */
static int intern_rule(te_ruleset_t *rs, te_live_rule_t *r)
{
    const te_rule_def_t *d = r->def;
    size_t n = d->nwhere + d->ngroup;
    for (size_t i = 0; i < d->naggs; i++)
        n += d->aggs[i].nfilter;
    r->kidx = calloc(n ? n : 1, sizeof(*r->kidx));
    r->akeys = calloc(d->naggs ? d->naggs : 1, sizeof(*r->akeys));
    if (!r->kidx || !r->akeys)
        return TE_ENOMEM;
    size_t k = 0;
    int rc = 0;
    for (size_t i = 0; i < d->nwhere && !rc; i++)
        rc = intern(rs, d->where[i].key, &r->kidx[k++]);
    for (size_t i = 0; i < d->ngroup && !rc; i++)
        rc = intern(rs, d->group_by[i], &r->kidx[k++]);
    for (size_t i = 0; i < d->naggs && !rc; i++) {
        r->akeys[i].filter = &r->kidx[k];
        for (size_t j = 0; j < d->aggs[i].nfilter && !rc; j++)
            rc = intern(rs, d->aggs[i].filter[j].key, &r->kidx[k++]);
        if (!rc && d->aggs[i].op == TE_RAGG_DISTINCT && d->aggs[i].field)
            rc = intern(rs, d->aggs[i].field, &r->akeys[i].field);
    }
    return rc;
}

static te_live_rule_t *rule_new(te_ruleset_t *rs, te_script_t *s, size_t decl, int64_t now_ns,
                                te_err_t *err)
{
    te_rule_def_t *d = s->defs[decl];
    te_err_t e2;
    te_live_rule_t *r = calloc(1, sizeof(*r));
    if (!r) {
        te_err_set(err, TE_ENOMEM, "rules: cannot allocate rule \"%s\"", d->name);
        return NULL;
    }
    r->def = d;
    r->script = s;
    r->decl = decl;
    r->ctx_ref = LUA_NOREF;
    if (d->ngroup > TE_EVENT_MAX_TAGS) {
        te_err_set(err, TE_EINVAL, "%s:%d: rule \"%s\": group_by has %zu tags, at most %d",
                   s->path, d->line, d->name, d->ngroup, TE_EVENT_MAX_TAGS);
        goto fail;
    }
    int irc = intern_rule(rs, r);
    if (irc) {
        te_err_set(err, irc, "%s:%d: rule \"%s\": %s", s->path, d->line, d->name,
                   irc == TE_ETOOBIG ? "more than 4096 distinct tag keys across rules"
                                     : "out of memory");
        goto fail;
    }
    if (d->type != TE_DEF_ON_EVENT) {
        if (d->every_ns <= 0 || d->window_ns <= 0) {
            te_err_set(err, TE_EINVAL, "%s:%d: rule \"%s\": window and every must be > 0",
                       s->path, d->line, d->name);
            goto fail;
        }
        r->wopts = calloc(d->naggs ? d->naggs : 1, sizeof(*r->wopts));
        if (!r->wopts) {
            te_err_set(err, TE_ENOMEM, "rules: cannot allocate rule \"%s\"", d->name);
            goto fail;
        }
        for (size_t i = 0; i < d->naggs; i++) {
            te_window_opts_t *o = &r->wopts[i];
            o->window_ns = d->window_ns;
            if (d->aggs[i].op == TE_RAGG_QUANTILE)
                o->flags = TE_WINDOW_QUANTILE;
            else if (d->aggs[i].op == TE_RAGG_DISTINCT)
                o->flags = TE_WINDOW_DISTINCT;
            te_window_t *w = te_window_new(o, now_ns, &e2);
            if (!w) {
                te_err_set(err, e2.code, "%s:%d: rule \"%s\": agg \"%s\": %s", s->path, d->line,
                           d->name, d->aggs[i].name, e2.msg);
                goto fail;
            }
            te_window_free(w);
        }
        int crc = d->type == TE_DEF_RULE ? check_summary(d, &e2)
                                         : te_detect_def_check(d, s->path, &e2);
        if (crc) {
            te_err_set(err, e2.code, "%s:%d: %s \"%s\": %s", s->path, d->line,
                       d->type == TE_DEF_RULE ? "rule" : "detector", d->name, e2.msg);
            goto fail;
        }
        r->next_eval_ns = next_aligned(now_ns, d->every_ns);
    } else if (te_hook_init(rs, r, err)) {
        goto fail;
    }
    return r;
fail:
    rule_free(r);
    return NULL;
}

static int reserve(te_ruleset_t *rs, size_t more, te_err_t *err)
{
    if (rs->n + more <= rs->cap)
        return 0;
    size_t cap = rs->cap ? rs->cap : 8;
    while (cap < rs->n + more)
        cap *= 2;
    te_live_rule_t **p = realloc(rs->rules, cap * sizeof(*p));
    if (!p)
        return te_err_set(err, TE_ENOMEM, "rules: cannot grow the ruleset");
    rs->rules = p;
    rs->cap = cap;
    return 0;
}

/* Checks that no def of s clashes with a live rule (other than those of
 * skip) or with another def of s. */
static int check_names(const te_ruleset_t *rs, const te_script_t *s, const te_script_t *skip,
                       te_err_t *err)
{
    for (size_t i = 0; i < s->ndefs; i++) {
        const te_rule_def_t *d = s->defs[i];
        te_live_rule_t *o = te_ruleset_find(rs, d->name);
        if (o && o->script != skip)
            return te_err_set(err, TE_EEXISTS,
                              "%s:%d: rule \"%s\" is already defined by %s:%d", s->path,
                              d->line, d->name, o->script->path, o->def->line);
        for (size_t j = 0; j < i; j++)
            if (strcmp(s->defs[j]->name, d->name) == 0)
                return te_err_set(err, TE_EEXISTS, "%s:%d: rule \"%s\" is already defined at line %d",
                                  s->path, d->line, d->name, s->defs[j]->line);
    }
    return 0;
}

int te_ruleset_add(te_ruleset_t *rs, te_script_t *s, int64_t now_ns, te_err_t *err)
{
    int rc = check_names(rs, s, NULL, err);
    if (rc)
        return rc;
    rc = reserve(rs, s->ndefs, err);
    if (rc)
        return rc;
    size_t base = rs->n;
    for (size_t i = 0; i < s->ndefs; i++) {
        te_live_rule_t *r = rule_new(rs, s, i, now_ns, err);
        if (!r) {
            while (rs->n > base)
                rule_free(rs->rules[--rs->n]);
            return err ? err->code : TE_EINVAL;
        }
        rs->rules[rs->n++] = r;
    }
    return 0;
}

static bool str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool where_eq(const te_where_t *a, size_t na, const te_where_t *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++) {
        if (!str_eq(a[i].key, b[i].key) || !str_eq(a[i].pattern, b[i].pattern) ||
            a[i].nvalues != b[i].nvalues)
            return false;
        for (size_t j = 0; j < a[i].nvalues; j++)
            if (!str_eq(a[i].values[j], b[i].values[j]))
                return false;
    }
    return true;
}

/* Same state shape: the live groups and windows remain meaningful. */
static bool same_shape(const te_rule_def_t *a, const te_rule_def_t *b)
{
    if (a->type != b->type || !str_eq(a->kind, b->kind) || a->window_ns != b->window_ns ||
        a->ngroup != b->ngroup || a->naggs != b->naggs ||
        !where_eq(a->where, a->nwhere, b->where, b->nwhere))
        return false;
    for (size_t i = 0; i < a->ngroup; i++)
        if (!str_eq(a->group_by[i], b->group_by[i]))
            return false;
    for (size_t i = 0; i < a->naggs; i++) {
        const te_rule_agg_t *x = &a->aggs[i], *y = &b->aggs[i];
        if (!str_eq(x->name, y->name) || x->op != y->op || !str_eq(x->field, y->field) ||
            x->q != y->q || !where_eq(x->filter, x->nfilter, y->filter, y->nfilter))
            return false;
    }
    return a->type != TE_DEF_DETECTOR || te_detect_def_same(a, b);
}

/* Resolves every active alert of r with reason. */
static void resolve_all(te_ruleset_t *rs, te_live_rule_t *r, const char *reason, int64_t now_ns)
{
    for (size_t i = 0; i < r->groups.cap; i++) {
        te_group_t *g = r->groups.slots[i];
        if (!g)
            continue;
        te_alert_transition_t t = te_alert_force_resolve(&g->alert, reason, now_ns);
        te_ruleset_notify(rs, &g->alert, t);
    }
}

int te_ruleset_replace(te_ruleset_t *rs, te_script_t *old_s, te_script_t *new_s, int64_t now_ns,
                       te_err_t *err)
{
    int rc = check_names(rs, new_s, old_s, err);
    if (rc)
        return rc;
    rc = reserve(rs, new_s->ndefs, err);
    if (rc)
        return rc;
    /* build new live rules for changed/new defs first: failure leaves old */
    te_live_rule_t **fresh = calloc(new_s->ndefs ? new_s->ndefs : 1, sizeof(*fresh));
    if (!fresh)
        return te_err_set(err, TE_ENOMEM, "rules: cannot reload %s", new_s->path);
    for (size_t i = 0; i < new_s->ndefs; i++) {
        te_live_rule_t *o = te_ruleset_find(rs, new_s->defs[i]->name);
        if (o && o->script == old_s && same_shape(o->def, new_s->defs[i])) {
            te_err_t e2;
            const te_rule_def_t *d = new_s->defs[i];
            if (d->type == TE_DEF_RULE && check_summary(d, &e2) == 0)
                continue;
            if (d->type == TE_DEF_DETECTOR && te_detect_def_check(d, new_s->path, &e2) == 0)
                continue;
            if (d->type == TE_DEF_ON_EVENT)
                continue;
            te_err_set(err, e2.code, "%s:%d: rule \"%s\": %s", new_s->path, d->line, d->name,
                       e2.msg);
            for (size_t j = 0; j < i; j++)
                rule_free(fresh[j]);
            free(fresh);
            return e2.code;
        }
        fresh[i] = rule_new(rs, new_s, i, now_ns, err);
        if (!fresh[i]) {
            for (size_t j = 0; j < i; j++)
                rule_free(fresh[j]);
            free(fresh);
            return err ? err->code : TE_EINVAL;
        }
    }
    /* kept rules re-point at the new def; changed and gone ones resolve */
    size_t w = 0;
    for (size_t i = 0; i < rs->n; i++) {
        te_live_rule_t *r = rs->rules[i];
        if (r->script != old_s) {
            rs->rules[w++] = r;
            continue;
        }
        size_t j = 0;
        while (j < new_s->ndefs && strcmp(new_s->defs[j]->name, r->def->name) != 0)
            j++;
        if (j < new_s->ndefs && !fresh[j]) {
            int64_t old_every = r->def->every_ns;
            te_hook_close(r);
            if (r->def->type == TE_DEF_DETECTOR)
                te_detect_rebind(r); /* Lua method states move to the new state */
            r->def = new_s->defs[j];
            r->script = new_s;
            r->decl = j;
            r->failed = false;
            if (r->def->type != TE_DEF_ON_EVENT) {
                if (r->def->every_ns != old_every)
                    r->next_eval_ns = next_aligned(now_ns, r->def->every_ns);
            } else if (te_hook_init(rs, r, err)) {
                te_log(TE_LOG_WARN, "rules", "rule=%s: %s", r->def->name, err ? err->msg : "");
            }
            rs->rules[w++] = r;
            continue;
        }
        resolve_all(rs, r, j < new_s->ndefs ? "rule changed" : "rule removed", now_ns);
        rule_free(r);
    }
    rs->n = w;
    for (size_t i = 0; i < new_s->ndefs; i++)
        if (fresh[i])
            rs->rules[rs->n++] = fresh[i];
    free(fresh);
    return 0;
}

void te_ruleset_remove(te_ruleset_t *rs, te_script_t *s, int64_t now_ns)
{
    size_t w = 0;
    for (size_t i = 0; i < rs->n; i++) {
        te_live_rule_t *r = rs->rules[i];
        if (r->script != s) {
            rs->rules[w++] = r;
            continue;
        }
        resolve_all(rs, r, "rule removed", now_ns);
        rule_free(r);
    }
    rs->n = w;
}

/* --- feeding: the hot path --- */

/* The value of interned tag key i in the event being fed (NULL: absent);
 * looked up once per event whatever the number of rules reading it. */
static const char *tagv(te_ruleset_t *rs, const te_event_t *ev, uint32_t i)
{
    if (rs->kgen[i] != rs->gen) {
        rs->kgen[i] = rs->gen;
        rs->kval[i] = te_event_tag(ev, rs->keys[i]);
        if (!rs->kval[i] && strcmp(rs->keys[i], "source") == 0)
            rs->kval[i] = ev->source; /* group_by/where "source": the event's own, when no tag */
    }
    return rs->kval[i];
}

static bool where_ok(te_ruleset_t *rs, const te_event_t *ev, const te_where_t *w,
                     const uint32_t *idx, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *v = tagv(rs, ev, idx[i]);
        if (!v)
            return false;
        if (w[i].re) {
            if (!te_where_match(&w[i], 1, ev))
                return false;
            continue;
        }
        bool any = false;
        for (size_t j = 0; j < w[i].nvalues && !any; j++)
            any = strcmp(w[i].values[j], v) == 0;
        if (!any)
            return false;
    }
    return true;
}

static void feed_rule(te_ruleset_t *rs, te_live_rule_t *r, const te_event_t *ev, int64_t now_ns)
{
    const te_rule_def_t *d = r->def;
    const char *items[TE_EVENT_MAX_TAGS];
    const uint32_t *gidx = r->kidx + d->nwhere;
    for (size_t i = 0; i < d->ngroup; i++)
        items[i] = tagv(rs, ev, gidx[i]);
    uint64_t h = te_group_hash(items, d->ngroup);
    te_group_t *g = te_group_find(&r->groups, items, d->ngroup, h);
    if (!g) {
        size_t max = d->max_groups ? d->max_groups : TE_DEFAULT_MAX_GROUPS;
        if (r->groups.n >= max) {
            r->groups_dropped++;
            if (!r->limit_reported) {
                r->limit_reported = true;
                snprintf(r->warning, sizeof(r->warning), "group limit reached (%zu)", max);
                te_log(TE_LOG_WARN, "rules", "rule=%s: group limit reached (%zu): events of new "
                       "groups are dropped", d->name, max);
            }
            return;
        }
        g = te_group_add(&r->groups, items, d->ngroup, h, r->wopts, d->naggs, now_ns);
        if (!g || te_alert_set_identity(&g->alert, d->name, (const char *const *)d->group_by,
                                        items, d->ngroup)) {
            if (g)
                te_group_remove(&r->groups, g);
            r->groups_dropped++;
            return;
        }
    }
    g->last_event_ns = now_ns;
    if (g->det)
        g->det->seen_ns = now_ns;
    for (size_t i = 0; i < d->naggs; i++) {
        const te_rule_agg_t *ag = &d->aggs[i];
        te_window_t *w = g->win[i];
        double v;
        if (ag->nfilter && !where_ok(rs, ev, ag->filter, r->akeys[i].filter, ag->nfilter))
            continue;
        te_window_advance(w, now_ns);
        switch (ag->op) {
        case TE_RAGG_COUNT:
        case TE_RAGG_RATE:
            te_window_add(w, ev->ts_ns, 1.0);
            break;
        case TE_RAGG_DISTINCT: {
            const char *t = tagv(rs, ev, r->akeys[i].field);
            if (t)
                te_window_add_key(w, ev->ts_ns, te_window_key_hash(t, strlen(t)));
            break;
        }
        default:
            if (te_event_field(ev, ag->field, &v))
                te_window_add(w, ev->ts_ns, v);
            break;
        }
    }
}

void te_ruleset_feed(te_ruleset_t *rs, const te_event_t *ev, int64_t now_ns)
{
    if (++rs->gen == 0) { /* wrapped: forget every cached value */
        for (size_t i = 0; i < rs->nkeys; i++)
            rs->kgen[i] = 0;
        rs->gen = 1;
    }
    for (size_t i = 0; i < rs->n; i++) {
        te_live_rule_t *r = rs->rules[i];
        const te_rule_def_t *d = r->def;
        if (d->kind && strcmp(d->kind, ev->kind) != 0)
            continue;
        if (d->nwhere && !where_ok(rs, ev, d->where, r->kidx, d->nwhere))
            continue;
        if (d->type != TE_DEF_ON_EVENT)
            feed_rule(rs, r, ev, now_ns);
        else if (r->script->status != TE_SCRIPT_DISABLED)
            te_hook_run(rs, r, ev, now_ns);
    }
}

/* --- ticks --- */

/* Pushes the aggregate table `a` of g. */
static void push_aggs(lua_State *L, const te_rule_def_t *d, te_group_t *g)
{
    lua_createtable(L, 0, (int)d->naggs);
    for (size_t i = 0; i < d->naggs; i++) {
        te_window_t *w = g->win[i];
        const te_rule_agg_t *ag = &d->aggs[i];
        double v = 0;
        uint64_t c;
        bool capped, have = true;
        switch (ag->op) {
        case TE_RAGG_COUNT: v = (double)te_window_count(w); break;
        case TE_RAGG_RATE: v = te_window_rate(w); break;
        case TE_RAGG_DISTINCT:
            te_window_distinct(w, &c, &capped);
            v = (double)c;
            break;
        case TE_RAGG_SUM:
            have = te_window_count(w) > 0;
            v = te_window_sum(w);
            break;
        case TE_RAGG_AVG: have = te_window_avg(w, &v) == 0; break;
        case TE_RAGG_MIN: have = te_window_min(w, &v) == 0; break;
        case TE_RAGG_MAX: have = te_window_max(w, &v) == 0; break;
        case TE_RAGG_LAST: have = te_window_last(w, &v, NULL) == 0; break;
        case TE_RAGG_QUANTILE: have = te_window_quantile(w, ag->q, &v) == 0; break;
        }
        if (!have)
            continue;
        if (ag->op == TE_RAGG_COUNT || ag->op == TE_RAGG_DISTINCT)
            lua_pushinteger(L, (lua_Integer)v);
        else
            lua_pushnumber(L, v);
        lua_setfield(L, -2, ag->name);
    }
}

static void push_group(lua_State *L, const te_group_t *g)
{
    lua_createtable(L, 0, (int)g->alert.ngroup);
    for (size_t i = 0; i < g->alert.ngroup; i++) {
        lua_pushstring(L, g->alert.group_values[i]);
        lua_setfield(L, -2, g->alert.group_keys[i]);
    }
}

/* Calls ref(a, g) with a, g at stack indices ia, ig; leaves 1 result.
 * Returns LUA_OK or an error (message on the stack). */
static int call_fn(te_script_t *s, int ref, int ia, int ig)
{
    lua_State *L = s->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
    lua_pushvalue(L, ia);
    lua_pushvalue(L, ig);
    return te_script_pcall(s, 2, 1);
}

/* Evaluates one group; returns false when Lua raised (error recorded). */
static bool eval_group(te_ruleset_t *rs, te_live_rule_t *r, te_group_t *g, int64_t now_ns)
{
    const te_rule_def_t *d = r->def;
    te_script_t *s = r->script;
    lua_State *L = s->L;
    int top = lua_gettop(L);
    for (size_t i = 0; i < g->nwin; i++)
        te_window_advance(g->win[i], now_ns);
    push_aggs(L, d, g);
    push_group(L, g);
    int ia = top + 1, ig = top + 2;
    if (call_fn(s, d->condition_ref, ia, ig) != LUA_OK)
        goto lua_fail;
    bool cond = lua_toboolean(L, -1);
    lua_pop(L, 1);
    te_alert_t *a = &g->alert;
    if (cond) {
        if (d->value_ref != LUA_NOREF && d->value_ref != LUA_REFNIL) {
            if (call_fn(s, d->value_ref, ia, ig) != LUA_OK)
                goto lua_fail;
            int isnum = 0;
            double v = lua_tonumberx(L, -1, &isnum);
            a->has_value = isnum != 0 && isfinite(v);
            a->value = v;
            bool bad = !isnum && !lua_isnil(L, -1);
            lua_pop(L, 1);
            if (bad) {
                lua_pushfstring(L, "rule \"%s\": value must return a number or nil", d->name);
                goto lua_fail;
            }
        }
        a->severity = d->severity;
        if (d->severity_ref != LUA_NOREF && d->severity_ref != LUA_REFNIL) {
            if (call_fn(s, d->severity_ref, ia, ig) != LUA_OK)
                goto lua_fail;
            const char *sv = lua_tostring(L, -1);
            te_severity_t sev;
            if (!sv || te_severity_parse(sv, &sev) != 0) {
                lua_pop(L, 1);
                lua_pushfstring(L, "rule \"%s\": severity must return \"info\", \"warning\" or "
                                "\"critical\"", d->name);
                goto lua_fail;
            }
            lua_pop(L, 1);
            a->severity = sev;
        }
    }
    lua_settop(L, top);
    te_alert_policy_t p = {d->pending_ns, d->keep_firing_ns, d->repeat_every_ns};
    te_alert_transition_t t = te_alert_step(a, &p, cond, now_ns, &rs->rng);
    if (t != TE_ALERT_T_NONE) { /* ENOMEM keeps the previous lists */
        te_alert_set_labels(a, d->label_keys, d->label_values, d->nlabels);
        te_alert_set_notify(a, d->notify, d->nnotify);
    }
    if (cond || t != TE_ALERT_T_NONE) {
        if (d->summary) {
            char *sum = te_alert_render(d->summary, a, NULL);
            if (sum) {
                free(a->summary);
                a->summary = sum;
            }
        }
    }
    te_ruleset_notify(rs, a, t);
    return true;
lua_fail:
    te_eval_lua_error(r, L, now_ns);
    lua_settop(L, top);
    return false;
}

static void eval_rule(te_ruleset_t *rs, te_live_rule_t *r, int64_t now_ns)
{
    uint64_t c0 = te_eval_cpu_ns();
    bool ok = true;
    for (size_t i = 0; i < r->groups.cap && r->script->status != TE_SCRIPT_DISABLED; i++) {
        te_group_t *g = r->groups.slots[i];
        if (g && !eval_group(rs, r, g, now_ns))
            ok = false;
    }
    if (ok && r->script->status != TE_SCRIPT_DISABLED)
        r->failed = false;
    r->evals++;
    r->last_eval_ns = now_ns;
    r->cpu_ns += te_eval_cpu_ns() - c0;
    /* idle groups: no event for two windows and nothing active */
    for (size_t i = 0; i < r->groups.cap;) {
        te_group_t *g = r->groups.slots[i];
        if (g && g->alert.state != TE_ALERT_PENDING && g->alert.state != TE_ALERT_FIRING &&
            now_ns - g->last_event_ns >= 2 * r->def->window_ns) {
            te_group_remove(&r->groups, g);
            continue; /* a later entry may have shifted into slot i */
        }
        i++;
    }
}

/* on_event alerts: resolve those not re-raised within their lifetime. */
static void expire_hook_alerts(te_ruleset_t *rs, te_live_rule_t *r, int64_t now_ns)
{
    for (size_t i = 0; i < r->groups.cap;) {
        te_group_t *g = r->groups.slots[i];
        if (g && g->alert.state == TE_ALERT_FIRING && now_ns >= g->expires_ns) {
            te_alert_transition_t t = te_alert_force_resolve(&g->alert, NULL, now_ns);
            te_ruleset_notify(rs, &g->alert, t);
        }
        if (g && g->alert.state != TE_ALERT_FIRING) {
            te_group_remove(&r->groups, g);
            continue;
        }
        i++;
    }
}

int te_ruleset_tick(te_ruleset_t *rs, int64_t now_ns)
{
    int n = 0;
    for (size_t i = 0; i < rs->n; i++) {
        te_live_rule_t *r = rs->rules[i];
        if (r->def->type == TE_DEF_ON_EVENT) {
            expire_hook_alerts(rs, r, now_ns);
            continue;
        }
        if (now_ns < r->next_eval_ns)
            continue;
        r->next_eval_ns = next_aligned(now_ns, r->def->every_ns);
        if (r->script->status == TE_SCRIPT_DISABLED)
            continue;
        if (r->def->type == TE_DEF_DETECTOR)
            te_detect_eval(rs, r, now_ns);
        else
            eval_rule(rs, r, now_ns);
        n++;
    }
    return n;
}

int64_t te_ruleset_next_tick(const te_ruleset_t *rs)
{
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < rs->n; i++) {
        const te_live_rule_t *r = rs->rules[i];
        if (r->def->type != TE_DEF_ON_EVENT) {
            if (r->next_eval_ns < next)
                next = r->next_eval_ns;
            continue;
        }
        for (size_t j = 0; j < r->groups.cap; j++) {
            const te_group_t *g = r->groups.slots[j];
            if (g && g->alert.state == TE_ALERT_FIRING && g->expires_ns < next)
                next = g->expires_ns;
        }
    }
    return next;
}
