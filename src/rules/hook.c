/*
 * hook.c - on_event hooks: fn(ev, ctx) per matching event (SPEC 6.2).
 *
 * THREAD: loop.
 *
 * ev is a te.Event box made per call and expired when fn returns
 * (script/bind_event.h). ctx is one table per hook, made at load time,
 * whose closures share a te_hook_box_t that C points at the running call
 * and clears afterwards, so a ctx kept past its call raises.
 *
 * ctx.alert{name=?, severity=?, summary=?, group={...}, value=?} raises a
 * one-shot alert: identity = hook name + sorted group pairs (plus
 * alertname = name when given). A new one fires at once (no pending); a
 * re-raise while firing updates value/summary and extends its life; one
 * not re-raised for hook_alert_ns (default 5 min) resolves at the next
 * tick. Returns the alert id.
 * ctx.emit{kind=..., tags={...}, fields={...}} builds a derived event
 * (ts = the triggering event's ts) and hands it to the host's on_emit.
 *
 * Lua errors longjmp: every argument is validated before any malloc, and
 * group strings stay anchored in the argument table while C reads them.
 */
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "rules/eval_int.h"
#include "script/bind_event.h"

struct te_hook_box {
    te_ruleset_t *rs;
    te_live_rule_t *r;
    const te_event_t *ev;
    int64_t now_ns;
    bool live;
};

static te_hook_box_t *check_box(lua_State *L, const char *fname)
{
    te_hook_box_t *b = lua_touserdata(L, lua_upvalueindex(1));
    if (!b || !b->live)
        luaL_error(L, "%s: ctx used after its hook returned", fname);
    luaL_checktype(L, 1, LUA_TTABLE);
    return b;
}

typedef struct pairs {
    const char *k[TE_EVENT_MAX_TAGS + 1];
    const char *v[TE_EVENT_MAX_TAGS + 1];
    char num[TE_EVENT_MAX_TAGS + 1][32];
    size_t n;
} pairs;

/* Reads table at idx (string keys; string or number values, or numbers
 * only when numbers_only) into p. Raises on bad input. */
static void read_pairs(lua_State *L, int idx, pairs *p, bool numbers_only, const char *what)
{
    p->n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) { /* [.., k, v] */
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "%s: keys must be strings", what);
        int vt = lua_type(L, -1);
        if (numbers_only ? vt != LUA_TNUMBER : (vt != LUA_TSTRING && vt != LUA_TNUMBER))
            luaL_error(L, "%s.%s: expected %s, got %s", what, lua_tostring(L, -2),
                       numbers_only ? "number" : "string or number", luaL_typename(L, -1));
        if (p->n >= TE_EVENT_MAX_TAGS)
            luaL_error(L, "%s: more than %d entries", what, TE_EVENT_MAX_TAGS);
        p->k[p->n] = lua_tostring(L, -2);
        if (vt == LUA_TSTRING) {
            p->v[p->n] = lua_tostring(L, -1);
        } else {
            if (lua_isinteger(L, -1))
                snprintf(p->num[p->n], 32, "%lld", (long long)lua_tointeger(L, -1));
            else
                snprintf(p->num[p->n], 32, "%.14g", (double)lua_tonumber(L, -1));
            p->v[p->n] = p->num[p->n];
        }
        p->n++;
        lua_pop(L, 1);
    }
}

static void sort_pairs(pairs *p)
{
    for (size_t i = 1; i < p->n; i++)
        for (size_t j = i; j > 0 && strcmp(p->k[j - 1], p->k[j]) > 0; j--) {
            const char *t = p->k[j];
            p->k[j] = p->k[j - 1];
            p->k[j - 1] = t;
            t = p->v[j];
            p->v[j] = p->v[j - 1];
            p->v[j - 1] = t;
        }
}

static const char *opt_field(lua_State *L, int t, const char *key, int type, const char *fname)
{
    int got = lua_getfield(L, t, key); /* left on the stack: anchors strings */
    if (got == LUA_TNIL)
        return NULL;
    if (got != type)
        luaL_error(L, "%s: %s: expected %s, got %s", fname, key, lua_typename(L, type),
                   luaL_typename(L, -1));
    return type == LUA_TSTRING ? lua_tostring(L, -1) : "";
}

static int ctx_alert(lua_State *L)
{
    te_hook_box_t *b = check_box(L, "ctx.alert");
    te_live_rule_t *r = b->r;
    const te_rule_def_t *d = r->def;
    const char *name = opt_field(L, 1, "name", LUA_TSTRING, "ctx.alert");
    const char *sev = opt_field(L, 1, "severity", LUA_TSTRING, "ctx.alert");
    const char *summary = opt_field(L, 1, "summary", LUA_TSTRING, "ctx.alert");
    bool has_value = opt_field(L, 1, "value", LUA_TNUMBER, "ctx.alert") != NULL;
    double value = has_value ? (double)lua_tonumber(L, -1) : 0;
    bool has_group = opt_field(L, 1, "group", LUA_TTABLE, "ctx.alert") != NULL;
    te_severity_t severity = d->severity;
    if (sev && te_severity_parse(sev, &severity) != 0)
        return luaL_error(L, "ctx.alert: severity: expected \"info\", \"warning\" or "
                             "\"critical\", got \"%s\"", sev);
    pairs p;
    p.n = 0;
    if (has_group)
        read_pairs(L, lua_gettop(L), &p, false, "ctx.alert: group");
    if (name) {
        bool have = false;
        for (size_t i = 0; i < p.n && !have; i++)
            have = strcmp(p.k[i], "alertname") == 0;
        if (!have) {
            p.k[p.n] = "alertname";
            p.v[p.n++] = name;
        }
    }
    sort_pairs(&p);
    /* no Lua error past this point until the result is pushed */
    const char *items[2 * (TE_EVENT_MAX_TAGS + 1)];
    for (size_t i = 0; i < p.n; i++) {
        items[2 * i] = p.k[i];
        items[2 * i + 1] = p.v[i];
    }
    size_t n = 2 * p.n;
    uint64_t h = te_group_hash(items, n);
    te_group_t *g = te_group_find(&r->groups, items, n, h);
    if (!g) {
        size_t max = d->max_groups ? d->max_groups : TE_DEFAULT_MAX_GROUPS;
        if (r->groups.n >= max) {
            r->groups_dropped++;
            if (!r->limit_reported) {
                r->limit_reported = true;
                snprintf(r->warning, sizeof(r->warning), "group limit reached (%zu)", max);
            }
            lua_pushnil(L);
            lua_pushstring(L, r->warning);
            return 2;
        }
        g = te_group_add(&r->groups, items, n, h, NULL, 0, b->now_ns);
        if (!g || te_alert_set_identity(&g->alert, d->name, p.k, p.v, p.n)) {
            if (g)
                te_group_remove(&r->groups, g);
            return luaL_error(L, "ctx.alert: out of memory");
        }
        te_alert_fingerprint(d->name, items, n, g->alert.fingerprint);
    }
    te_alert_t *a = &g->alert;
    a->severity = severity;
    a->has_value = has_value;
    a->value = value;
    te_alert_set_labels(a, d->label_keys, d->label_values, d->nlabels);
    te_alert_set_notify(a, d->notify, d->nnotify);
    const char *tmpl = summary ? summary : d->summary;
    if (tmpl) {
        char *s = te_alert_render(tmpl, a, NULL);
        te_alert_set_summary(a, s ? s : tmpl);
        free(s);
    }
    g->last_event_ns = b->now_ns;
    g->expires_ns = b->now_ns + b->rs->opts.hook_alert_ns;
    te_alert_policy_t pol = {0, 0, d->repeat_every_ns};
    te_alert_transition_t t = te_alert_step(a, &pol, true, b->now_ns, &b->rs->rng);
    te_ruleset_notify(b->rs, a, t);
    lua_pushstring(L, a->id);
    return 1;
}

/* Adds the pairs of the table at idx to obj (cJSON object). */
static bool add_pairs(lua_State *L, int idx, cJSON *obj, bool numbers)
{
    pairs p;
    read_pairs(L, idx, &p, numbers, "");
    for (size_t i = 0; i < p.n; i++) {
        cJSON *item = numbers ? cJSON_CreateNumber(strtod(p.v[i], NULL)) : cJSON_CreateString(p.v[i]);
        if (!item)
            return false;
        cJSON_AddItemToObject(obj, p.k[i], item);
    }
    return true;
}

static int ctx_emit(lua_State *L)
{
    te_hook_box_t *b = check_box(L, "ctx.emit");
    const char *kind = opt_field(L, 1, "kind", LUA_TSTRING, "ctx.emit");
    if (!kind)
        return luaL_error(L, "ctx.emit: kind is required");
    int it = opt_field(L, 1, "tags", LUA_TTABLE, "ctx.emit") ? lua_gettop(L) : 0;
    int ifl = opt_field(L, 1, "fields", LUA_TTABLE, "ctx.emit") ? lua_gettop(L) : 0;
    pairs check;
    if (it)
        read_pairs(L, it, &check, false, "ctx.emit: tags");
    if (ifl)
        read_pairs(L, ifl, &check, true, "ctx.emit: fields");
    if (!b->rs->opts.on_emit)
        return luaL_error(L, "ctx.emit: this engine has no sink for derived events");
    /* validated: from here on no Lua error until cJSON is freed */
    te_err_t err;
    te_event_t *ev = NULL;
    int rc = TE_ENOMEM;
    cJSON *o = cJSON_CreateObject();
    cJSON *tags = o ? cJSON_AddObjectToObject(o, "tags") : NULL;
    cJSON *fields = o ? cJSON_AddObjectToObject(o, "fields") : NULL;
    te_err_clear(&err);
    if (tags && fields && cJSON_AddStringToObject(o, "kind", kind) &&
        (!it || add_pairs(L, it, tags, false)) && (!ifl || add_pairs(L, ifl, fields, true))) {
        te_event_opts_t eo = {NULL, NULL, b->ev->ts_ns};
        rc = te_event_from_cjson(o, 512, &eo, &ev, &err);
    } else {
        te_err_set(&err, TE_ENOMEM, "out of memory");
    }
    cJSON_Delete(o);
    if (rc)
        return luaL_error(L, "ctx.emit: %s", err.msg);
    if (b->rs->opts.on_emit(b->rs->opts.emit_ud, ev) != 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "emit refused");
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* [] -> [ctx, box] */
static int make_ctx(lua_State *L)
{
    te_hook_box_t *b = lua_newuserdatauv(L, sizeof(*b), 0);
    memset(b, 0, sizeof(*b));
    lua_createtable(L, 0, 2);
    lua_pushvalue(L, -2);
    lua_pushcclosure(L, ctx_alert, 1);
    lua_setfield(L, -2, "alert");
    lua_pushvalue(L, -2);
    lua_pushcclosure(L, ctx_emit, 1);
    lua_setfield(L, -2, "emit");
    lua_insert(L, -2);
    return 2;
}

int te_hook_init(te_ruleset_t *rs, te_live_rule_t *r, te_err_t *err)
{
    (void)rs;
    lua_State *L = r->script->L;
    int top = lua_gettop(L);
    lua_pushcfunction(L, make_ctx);
    if (te_script_pcall(r->script, 0, 2) != LUA_OK) {
        te_err_set(err, TE_ENOMEM, "%s: on_event \"%s\": %s", r->script->path, r->def->name,
                   lua_tostring(L, -1));
        lua_settop(L, top);
        return TE_ENOMEM;
    }
    r->ctx_box = lua_touserdata(L, -1);
    lua_pop(L, 1);
    r->ctx_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_settop(L, top);
    return 0;
}

void te_hook_close(te_live_rule_t *r)
{
    if (r->ctx_ref != LUA_NOREF && r->script && r->script->L)
        luaL_unref(r->script->L, LUA_REGISTRYINDEX, r->ctx_ref);
    r->ctx_ref = LUA_NOREF;
    r->ctx_box = NULL;
}

void te_hook_run(te_ruleset_t *rs, te_live_rule_t *r, const te_event_t *ev, int64_t now_ns)
{
    te_script_t *s = r->script;
    lua_State *L = s->L;
    if (!r->ctx_box)
        return;
    uint64_t c0 = te_eval_cpu_ns();
    int top = lua_gettop(L);
    lua_pushcfunction(L, te_bind_event_new);
    lua_pushlightuserdata(L, (void *)(uintptr_t)ev);
    if (te_script_pcall(s, 1, 1) != LUA_OK) {
        te_eval_lua_error(r, L, now_ns);
        goto done;
    }
    int ibox = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, r->def->fn_ref);
    lua_pushvalue(L, ibox);
    lua_rawgeti(L, LUA_REGISTRYINDEX, r->ctx_ref);
    te_hook_box_t *b = r->ctx_box;
    b->rs = rs;
    b->r = r;
    b->ev = ev;
    b->now_ns = now_ns;
    b->live = true;
    int rc = te_script_pcall(s, 2, 0);
    b->live = false;
    b->ev = NULL;
    te_bind_event_expire(L, ibox);
    if (rc != LUA_OK)
        te_eval_lua_error(r, L, now_ns);
    else
        r->failed = false;
done:
    lua_settop(L, top);
    r->evals++;
    r->last_eval_ns = now_ns;
    r->cpu_ns += te_eval_cpu_ns() - c0;
}
