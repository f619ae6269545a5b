/*
 * bind_detect.c - te.detector and te.methods.* (SPEC 6.3).
 *
 * THREAD: the thread owning the lua_State (a script's top level; method
 * objects may be used from any Lua code of that state).
 *
 * te.methods.X{...} checks the parameters of a built-in method (file:line
 * errors naming the key) and returns a "te.Method" object holding them.
 * The object is also a working detector on its own: m:update(value, t)
 * runs the C method on a private state, which is how busted specs and
 * users try a method on a series without an engine. te.detector{...}
 * builds a TE_DEF_DETECTOR def (bind_rule_int.h readers, so keys are
 * checked exactly like te.rule's): one aggregate "value" from stat and
 * field, and the method's parameters copied (or a Lua function's ref).
 */
#include "bind_detect.h"

#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bind_rule_int.h"
#include "core/suggest.h"
#include "core/time.h"
#include "detect/detect.h"
#include "luaopen_te.h"

#define TE_METHOD_MT "te.Method"

typedef struct {
    te_detect_params_t p;
    te_detector_t *d; /* m:update's own state, made on first use */
} method_box;

/* --- te.methods.X{...} --- */

typedef enum { P_NUM, P_INT, P_DUR, P_DIR } ptype_t;

typedef struct {
    const char *key;
    ptype_t type;
    size_t off;
} pdesc_t;

#define PD(k, t, f) {k, t, offsetof(te_detect_params_t, f)}
static const pdesc_t pdescs[] = {
    PD("threshold", P_NUM, threshold), PD("alpha", P_NUM, alpha),
    PD("drift", P_NUM, drift),
    PD("warmup", P_INT, warmup),       PD("window", P_INT, window),
    PD("period", P_DUR, period_ns),    PD("every", P_DUR, step_ns),
    PD("seasons", P_INT, seasons),     PD("pct", P_NUM, pct),
    PD("after", P_DUR, after_ns),      PD("k", P_INT, k),
    PD("lag", P_INT, lag),             PD("smooth", P_INT, smooth),
    PD("train_window", P_INT, train_window), PD("train_every", P_INT, train_every),
    PD("models", P_INT, models),       PD("percentile", P_NUM, percentile),
    PD("direction", P_DIR, direction),
};
#undef PD

/* The keys each method takes, NULL-terminated. */
static const char *const keys_ewma[] = {"alpha", "threshold", "warmup", "drift", "direction",
                                        NULL};
static const char *const keys_mad[] = {"window", "threshold", "drift", "direction", NULL};
static const char *const keys_seasonal[] = {"period", "threshold", "seasons", "every",
                                            "direction", NULL};
static const char *const keys_change[] = {"pct", "window", "direction", NULL};
static const char *const keys_absent[] = {"after", NULL};
static const char *const keys_mv[] = {"k", "lag", "smooth", "train_window", "train_every",
                                      "models", "percentile", "threshold", NULL};
static const char *const *const method_keys[TE_DETECT_NKINDS] = {
    keys_ewma, keys_mad, keys_seasonal, keys_change, keys_absent, keys_mv};

static const pdesc_t *find_pdesc(const char *key)
{
    for (size_t i = 0; i < sizeof(pdescs) / sizeof(pdescs[0]); i++)
        if (strcmp(pdescs[i].key, key) == 0)
            return &pdescs[i];
    return NULL;
}

static const char *nearest(const char *key, const char *const *keys)
{
    const char *best = NULL;
    size_t bestd = 3;
    for (const char *const *k = keys; *k; k++) {
        size_t d = te_edit_distance(key, *k);
        if (d < bestd) {
            bestd = d;
            best = *k;
        }
    }
    return best;
}

/* Reads the parameter table at idx into p (defaults first). Raises. */
static void read_params(lua_State *L, int idx, te_detect_kind_t kind, te_detect_params_t *p)
{
    const char *fn = te_detect_kind_name(kind);
    const char *const *keys = method_keys[kind];
    te_detect_params_default(p, kind);
    if (lua_isnoneornil(L, idx))
        return;
    if (!lua_istable(L, idx))
        te_lua_raise(L, "bad argument #1 to 'te.methods.%s' (table expected, got %s)", fn,
                     luaL_typename(L, idx));
    lua_pushnil(L);
    while (lua_next(L, idx)) { /* [.., k, v] */
        if (lua_type(L, -2) != LUA_TSTRING)
            te_lua_raise(L, "te.methods.%s: unexpected value without a name (write key = value)",
                         fn);
        const char *key = lua_tostring(L, -2);
        const char *const *k = keys;
        while (*k && strcmp(*k, key) != 0)
            k++;
        if (!*k) {
            const char *near = nearest(key, keys);
            if (near)
                te_lua_raise(L, "te.methods.%s: unknown key \"%s\" (did you mean \"%s\"?)", fn,
                             key, near);
            te_lua_raise(L, "te.methods.%s: unknown key \"%s\"", fn, key);
        }
        const pdesc_t *pd = find_pdesc(key);
        char *slot = (char *)p + pd->off;
        switch (pd->type) {
        case P_NUM: {
            if (lua_type(L, -1) != LUA_TNUMBER)
                te_lua_raise(L, "te.methods.%s: \"%s\" must be a number, got %s", fn, key,
                             luaL_typename(L, -1));
            double v = lua_tonumber(L, -1);
            if (!(v > 0) || !isfinite(v))
                te_lua_raise(L, "te.methods.%s: \"%s\" must be a number > 0, got %s", fn, key,
                             lua_tostring(L, -1));
            memcpy(slot, &v, sizeof(v));
            break;
        }
        case P_INT: {
            if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 ||
                lua_tointeger(L, -1) > 1000000)
                te_lua_raise(L, "te.methods.%s: \"%s\" must be an integer in [1, 1000000], got %s",
                             fn, key, luaL_tolstring(L, -1, NULL));
            uint32_t v = (uint32_t)lua_tointeger(L, -1);
            memcpy(slot, &v, sizeof(v));
            break;
        }
        case P_DUR: {
            te_err_t err = {0};
            int64_t ns = 0;
            if (lua_type(L, -1) != LUA_TSTRING)
                te_lua_raise(L, "te.methods.%s: \"%s\" must be a duration like \"10m\", got %s",
                             fn, key, luaL_typename(L, -1));
            if (te_duration_parse(lua_tostring(L, -1), &ns, &err) < 0)
                te_lua_raise(L, "te.methods.%s: \"%s\": %s", fn, key, err.msg);
            if (ns <= 0)
                te_lua_raise(L, "te.methods.%s: \"%s\" must be longer than 0s", fn, key);
            memcpy(slot, &ns, sizeof(ns));
            break;
        }
        case P_DIR: {
            const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
            te_detect_dir_t dir = TE_DETECT_BOTH;
            if (strcmp(s, "both") == 0)
                dir = TE_DETECT_BOTH;
            else if (strcmp(s, "up") == 0)
                dir = TE_DETECT_UP;
            else if (strcmp(s, "down") == 0)
                dir = TE_DETECT_DOWN;
            else
                te_lua_raise(L, "te.methods.%s: \"direction\" must be \"up\", \"down\" or "
                             "\"both\"", fn);
            memcpy(slot, &dir, sizeof(dir));
            break;
        }
        }
        lua_pop(L, 1);
    }
}

static method_box *check_method(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, TE_METHOD_MT);
}

/* Pushes a te.Method holding p. */
static void push_method(lua_State *L, const te_detect_params_t *p)
{
    method_box *b = lua_newuserdatauv(L, sizeof(*b), 0);
    b->p = *p;
    b->d = NULL;
    luaL_setmetatable(L, TE_METHOD_MT);
}

static int make_method(lua_State *L, te_detect_kind_t kind)
{
    te_detect_params_t p;
    read_params(L, 1, kind, &p);
    if (kind == TE_DETECT_SEASONAL && p.period_ns > 0 && p.step_ns == 0)
        p.step_ns = p.period_ns / 24; /* te.detector sets its own every */
    te_err_t err = {0};
    if (te_detect_params_check(&p, &err))
        te_lua_raise(L, "te.methods.%s", err.msg);
    push_method(L, &p);
    return 1;
}

static int l_ewma(lua_State *L) { return make_method(L, TE_DETECT_EWMA); }
static int l_mad(lua_State *L) { return make_method(L, TE_DETECT_MAD); }
static int l_seasonal(lua_State *L) { return make_method(L, TE_DETECT_SEASONAL); }
static int l_change(lua_State *L) { return make_method(L, TE_DETECT_CHANGE); }
static int l_absent(lua_State *L) { return make_method(L, TE_DETECT_ABSENT); }
static int l_multivariate(lua_State *L) { return make_method(L, TE_DETECT_MULTIVARIATE); }

/* m:update(value, t) -> anomalous, score, baseline, lower, upper
 * (t in seconds; during warm-up: false, nil). */
static int m_update(lua_State *L)
{
    method_box *b = check_method(L, 1);
    double v = luaL_checknumber(L, 2);
    double t = luaL_checknumber(L, 3);
    if (!isfinite(v))
        return luaL_argerror(L, 2, "value must be finite");
    if (!(fabs(t) < 9e9))
        return luaL_argerror(L, 3, "t must be seconds since the epoch");
    if (!b->d && !(b->d = te_detect_new(&b->p, NULL)))
        return luaL_error(L, "te.Method: out of memory");
    te_detect_verdict_t vd;
    te_detect_update(b->d, v, (int64_t)llround(t * 1e9), &vd);
    lua_pushboolean(L, vd.anomalous);
    if (!vd.ready) {
        lua_pushnil(L);
        return 2;
    }
    lua_pushnumber(L, vd.score);
    lua_pushnumber(L, vd.baseline);
    lua_pushnumber(L, vd.lower);
    lua_pushnumber(L, vd.upper);
    return 5;
}

/* m:seen(t): a heartbeat for absent. */
static int m_seen(lua_State *L)
{
    method_box *b = check_method(L, 1);
    double t = luaL_checknumber(L, 2);
    if (!b->d && !(b->d = te_detect_new(&b->p, NULL)))
        return luaL_error(L, "te.Method: out of memory");
    te_detect_seen(b->d, (int64_t)llround(t * 1e9));
    return 0;
}

/* m:save() -> the state blob as a string; m:load(s) -> true | nil, msg. */
static int m_save(lua_State *L)
{
    method_box *b = check_method(L, 1);
    if (!b->d && !(b->d = te_detect_new(&b->p, NULL)))
        return luaL_error(L, "te.Method: out of memory");
    unsigned char *blob = NULL;
    size_t len = 0;
    if (te_detect_save(b->d, &blob, &len))
        return luaL_error(L, "te.Method: out of memory");
    lua_pushlstring(L, (const char *)blob, len);
    free(blob);
    return 1;
}

static int m_load(lua_State *L)
{
    method_box *b = check_method(L, 1);
    size_t len;
    const char *s = luaL_checklstring(L, 2, &len);
    te_err_t err = {0};
    te_detector_t *d = te_detect_load(&b->p, s, len, &err);
    if (!d) {
        lua_pushnil(L);
        lua_pushstring(L, err.msg);
        return 2;
    }
    te_detect_free(b->d);
    b->d = d;
    lua_pushboolean(L, 1);
    return 1;
}

/* m:params() -> { kind = "mad", window = 60, ... } (durations in seconds). */
static int m_params(lua_State *L)
{
    method_box *b = check_method(L, 1);
    const te_detect_params_t *p = &b->p;
    lua_newtable(L);
    lua_pushstring(L, te_detect_kind_name(p->kind));
    lua_setfield(L, -2, "kind");
    for (const char *const *k = method_keys[p->kind]; *k; k++) {
        const pdesc_t *pd = find_pdesc(*k);
        const char *slot = (const char *)p + pd->off;
        switch (pd->type) {
        case P_NUM: {
            double v;
            memcpy(&v, slot, sizeof(v));
            lua_pushnumber(L, v);
            break;
        }
        case P_INT: {
            uint32_t v;
            memcpy(&v, slot, sizeof(v));
            lua_pushinteger(L, v);
            break;
        }
        case P_DUR: {
            int64_t v;
            memcpy(&v, slot, sizeof(v));
            lua_pushnumber(L, (lua_Number)v / 1e9);
            break;
        }
        case P_DIR:
            lua_pushstring(L, p->direction == TE_DETECT_UP     ? "up"
                              : p->direction == TE_DETECT_DOWN ? "down"
                                                               : "both");
            break;
        }
        lua_setfield(L, -2, *k);
    }
    return 1;
}

static int m_gc(lua_State *L)
{
    method_box *b = check_method(L, 1);
    te_detect_free(b->d);
    b->d = NULL;
    return 0;
}

static int m_tostring(lua_State *L)
{
    method_box *b = check_method(L, 1);
    lua_pushfstring(L, "te.Method(%s)", te_detect_kind_name(b->p.kind));
    return 1;
}

/* --- te.detector{...} --- */

static const char *const detector_keys[] = {
    "name", "kind", "where", "group_by", "field", "stat", "every", "window", "method",
    "severity", "summary", "labels", "notify", "pending", "keep_firing", "repeat_every",
    "max_groups", "description", NULL};

static char *dup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

/* Reads stat and field into def->aggs[0] ("value") and def->stat. */
static void read_stat(lua_State *L, te_rule_def_t *def)
{
    const char *fn = "te.detector";
    char *field = NULL;
    te_bind_def_string(L, fn, "field", false, &field);
    if (!(def->aggs = calloc(1, sizeof(*def->aggs)))) {
        free(field);
        te_lua_raise(L, "%s: out of memory", fn);
    }
    def->naggs = 1;
    te_rule_agg_t *g = &def->aggs[0];
    g->field = field;
    if (!(g->name = dup("value")))
        te_lua_raise(L, "%s: out of memory", fn);
    te_bind_def_string(L, fn, "stat", false, &def->stat);
    if (!def->stat && !(def->stat = dup(field ? "avg" : "count")))
        te_lua_raise(L, "%s: out of memory", fn);
    const char *s = def->stat;
    static const struct {
        const char *name;
        te_ragg_op_t op;
    } ops[] = {{"count", TE_RAGG_COUNT}, {"rate", TE_RAGG_RATE}, {"sum", TE_RAGG_SUM},
               {"avg", TE_RAGG_AVG},     {"min", TE_RAGG_MIN},   {"max", TE_RAGG_MAX},
               {"last", TE_RAGG_LAST},   {"median", TE_RAGG_QUANTILE}};
    size_t i = 0;
    while (i < sizeof(ops) / sizeof(ops[0]) && strcmp(ops[i].name, s) != 0)
        i++;
    if (i < sizeof(ops) / sizeof(ops[0])) {
        g->op = ops[i].op;
        g->q = 0.5;
    } else {
        char *end = NULL;
        double q = s[0] == 'p' && s[1] >= '0' && s[1] <= '9' ? strtod(s + 1, &end) : -1;
        if (!end || *end || !(q > 0 && q < 100))
            te_lua_raise(L, "%s: \"stat\" must be count, rate, sum, avg, min, max, last, median "
                         "or a percentile like p95, got \"%s\"", fn, s);
        g->op = TE_RAGG_QUANTILE;
        g->q = q / 100.0;
    }
    if (g->op != TE_RAGG_COUNT && g->op != TE_RAGG_RATE && !g->field)
        te_lua_raise(L, "%s: stat \"%s\" needs \"field\" (the event field it reads)", fn, s);
    if ((g->op == TE_RAGG_COUNT || g->op == TE_RAGG_RATE) && g->field) {
        free(g->field); /* count and rate read no field */
        g->field = NULL;
    }
}

/* Reads method into def (engine: a function becomes a registry ref). */
static void read_method(lua_State *L, te_rule_def_t *def, bool standalone)
{
    const char *fn = "te.detector";
    int t = lua_getfield(L, 1, "method");
    te_detect_params_t p;
    if (t == LUA_TFUNCTION) {
        if (!standalone) {
            def->method_ref = luaL_ref(L, LUA_REGISTRYINDEX);
            return;
        }
        lua_pop(L, 1);
        return;
    }
    if (t == LUA_TNIL) {
        te_detect_params_default(&p, TE_DETECT_MULTIVARIATE);
    } else if (luaL_testudata(L, -1, TE_METHOD_MT)) {
        p = ((method_box *)lua_touserdata(L, -1))->p;
    } else {
        te_lua_raise(L, "%s: \"method\" must be te.methods.<name>{...} or a function, got %s", fn,
                     luaL_typename(L, -1));
    }
    lua_pop(L, 1);
    if (p.kind == TE_DETECT_SEASONAL)
        p.step_ns = def->every_ns;
    te_err_t err = {0};
    if (te_detect_params_check(&p, &err))
        te_lua_raise(L, "%s: method %s", fn, err.msg);
    if (!(def->method = malloc(sizeof(*def->method))))
        te_lua_raise(L, "%s: out of memory", fn);
    *def->method = p;
}

static int l_detector(lua_State *L)
{
    const char *fn = "te.detector";
    te_bind_def_check_spec(L, fn, detector_keys);
    te_rule_def_t *def = te_bind_def_new(L, fn, TE_DEF_DETECTOR); /* [spec, box] */
    bool standalone = te_lua_script(L) == NULL;
    te_bind_def_name_kind(L, fn, def, false);
    te_bind_def_strlist(L, fn, "group_by", &def->group_by, &def->ngroup);
    def->window_ns = te_bind_def_duration(L, fn, "window", "5m", true);
    def->every_ns = te_bind_def_duration(L, fn, "every", "1m", true);
    read_stat(L, def);
    read_method(L, def, standalone);
    def->pending_ns = te_bind_def_duration(L, fn, "pending", "0s", false);
    def->keep_firing_ns = te_bind_def_duration(L, fn, "keep_firing", "0s", false);
    def->repeat_every_ns = te_bind_def_duration(L, fn, "repeat_every", "0s", false);
    def->severity = TE_SEV_WARNING;
    int t = lua_getfield(L, 1, "severity");
    if (t != LUA_TNIL && (t != LUA_TSTRING ||
                          te_severity_parse(lua_tostring(L, -1), &def->severity) < 0))
        te_lua_raise(L, "%s: \"severity\" must be \"info\", \"warning\" or \"critical\"", fn);
    lua_pop(L, 1);
    te_bind_def_string(L, fn, "summary", false, &def->summary);
    te_bind_def_labels(L, fn, def);
    if (te_bind_def_strlist(L, fn, "notify", &def->notify, &def->nnotify) == LUA_TNIL) {
        if (!(def->notify = calloc(1, sizeof(char *))) || !(def->notify[0] = dup("stdout")))
            te_lua_raise(L, "%s: out of memory", fn);
        def->nnotify = 1;
    }
    def->max_groups = 10000;
    t = lua_getfield(L, 1, "max_groups");
    if (t != LUA_TNIL) {
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1)
            te_lua_raise(L, "%s: \"max_groups\" must be an integer >= 1", fn);
        def->max_groups = (size_t)lua_tointeger(L, -1);
    }
    lua_pop(L, 1);
    t = lua_getfield(L, 1, "description");
    if (t != LUA_TNIL && t != LUA_TSTRING)
        te_lua_raise(L, "%s: \"description\" must be a string, got %s", fn, luaL_typename(L, -1));
    lua_pop(L, 1);
    te_bind_def_unique(L, fn, def->name);
    char stat[32];
    snprintf(stat, sizeof(stat), "%s", def->stat);
    te_detect_params_t p;
    bool builtin = def->method != NULL;
    if (builtin)
        p = *def->method;
    if (te_bind_def_finish(L, fn) == 0)
        return 0;
    /* standalone: [spec, box, desc] gains stat, field and method */
    lua_pushstring(L, stat);
    lua_setfield(L, -2, "stat");
    lua_getfield(L, 1, "field");
    lua_setfield(L, -2, "field");
    if (builtin)
        push_method(L, &p);
    else
        lua_getfield(L, 1, "method");
    lua_setfield(L, -2, "method");
    return 1;
}

static const luaL_Reg method_funcs[] = {
    {"ewma_zscore", l_ewma}, {"mad", l_mad},       {"seasonal", l_seasonal},
    {"change", l_change},    {"absent", l_absent}, {"multivariate", l_multivariate},
    {NULL, NULL},
};

static const luaL_Reg method_meta[] = {
    {"update", m_update}, {"seen", m_seen}, {"save", m_save},
    {"load", m_load},     {"params", m_params}, {NULL, NULL},
};

void te_bind_detect(lua_State *L, bool standalone)
{
    /* [te] */
    if (luaL_newmetatable(L, TE_METHOD_MT)) {
        lua_pushcfunction(L, m_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, m_tostring);
        lua_setfield(L, -2, "__tostring");
        luaL_newlib(L, method_meta);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    lua_pushboolean(L, standalone);
    lua_pushcclosure(L, l_detector, 1);
    lua_setfield(L, -2, "detector");
    lua_newtable(L);
    lua_pushboolean(L, standalone);
    luaL_setfuncs(L, method_funcs, 1);
    lua_setfield(L, -2, "methods");
}
