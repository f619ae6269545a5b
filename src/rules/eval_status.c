/*
 * eval_status.c - what the live rules show outside: per-rule status for
 * /v1/rules, alert lookup, and re-attaching persisted alerts after a
 * restart (see eval.h).
 *
 * THREAD: loop.
 */
#include <stdlib.h>
#include <string.h>

#include "rules/eval_int.h"

int te_ruleset_restore(te_ruleset_t *rs, const te_alert_t *a, int64_t now_ns, te_err_t *err)
{
    if (a->state != TE_ALERT_PENDING && a->state != TE_ALERT_FIRING)
        return te_err_set(err, TE_EINVAL, "rules: alert %s is %s, not active", a->id,
                          te_alert_state_name(a->state));
    te_live_rule_t *r = a->rule ? te_ruleset_find(rs, a->rule) : NULL;
    if (!r)
        return te_err_set(err, TE_ENOTFOUND, "rules: alert %s: no rule \"%s\"", a->id,
                          a->rule ? a->rule : "");
    const te_rule_def_t *d = r->def;
    const char *items[TE_GROUP_MAX_ITEMS];
    size_t n = 0;
    if (d->type != TE_DEF_ON_EVENT) {
        if (a->ngroup != d->ngroup)
            goto mismatch;
        for (size_t i = 0; i < d->ngroup; i++) {
            if (strcmp(a->group_keys[i], d->group_by[i]) != 0)
                goto mismatch;
            items[n++] = a->group_values[i];
        }
    } else {
        if (a->ngroup > TE_EVENT_MAX_TAGS)
            goto mismatch;
        for (size_t i = 0; i < a->ngroup; i++) {
            items[n++] = a->group_keys[i];
            items[n++] = a->group_values[i];
        }
    }
    uint64_t h = te_group_hash(items, n);
    te_group_t *g = te_group_find(&r->groups, items, n, h);
    if (!g)
        g = te_group_add(&r->groups, items, n, h, r->wopts, d->type != TE_DEF_ON_EVENT ? d->naggs : 0,
                         now_ns);
    if (!g || te_alert_copy(&g->alert, a))
        return te_err_set(err, TE_ENOMEM, "rules: cannot restore alert %s", a->id);
    g->last_event_ns = now_ns;
    g->expires_ns = now_ns + rs->opts.hook_alert_ns;
    return 0;
mismatch:
    return te_err_set(err, TE_ENOTFOUND, "rules: alert %s: group keys differ from rule \"%s\"",
                      a->id, a->rule);
}

static void fill_status(const te_live_rule_t *r, te_rule_status_t *o)
{
    o->name = r->def->name;
    o->type = r->def->type == TE_DEF_RULE       ? "rule"
              : r->def->type == TE_DEF_DETECTOR ? "detector"
                                                : "on_event";
    if (r->script->status == TE_SCRIPT_DISABLED) {
        o->status = "disabled";
        o->error = r->script->error;
    } else {
        o->status = r->failed ? "error" : "ok";
        o->error = r->errors ? r->error : "";
    }
    o->warning = r->warning;
    o->last_eval_ns = r->last_eval_ns;
    o->evals = r->evals;
    o->errors = r->errors;
    o->cpu_ns = r->cpu_ns;
    o->groups = r->groups.n;
    o->groups_dropped = r->groups_dropped;
}

size_t te_ruleset_status(const te_ruleset_t *rs, const te_script_t *s, te_rule_status_t *out,
                         size_t cap)
{
    size_t n = 0;
    if (!s) {
        for (size_t i = 0; i < rs->n; i++, n++)
            if (n < cap)
                fill_status(rs->rules[i], &out[n]);
        return n;
    }
    /* a script's rules in declaration order (a reload appends fresh ones) */
    for (size_t d = 0; d < s->ndefs; d++)
        for (size_t i = 0; i < rs->n; i++) {
            const te_live_rule_t *r = rs->rules[i];
            if (r->script != s || r->decl != d)
                continue;
            if (n < cap)
                fill_status(r, &out[n]);
            n++;
        }
    return n;
}

const te_alert_t *te_ruleset_alert(const te_ruleset_t *rs, const char *name, const char *fp)
{
    te_live_rule_t *r = te_ruleset_find(rs, name);
    for (size_t i = 0; r && i < r->groups.cap; i++) {
        const te_group_t *g = r->groups.slots[i];
        if (g && strcmp(g->alert.fingerprint, fp) == 0)
            return &g->alert;
    }
    return NULL;
}

uint64_t te_ruleset_groups_dropped(const te_ruleset_t *rs)
{
    uint64_t n = 0;
    for (size_t i = 0; i < rs->n; i++)
        n += rs->rules[i]->groups_dropped;
    return n;
}
