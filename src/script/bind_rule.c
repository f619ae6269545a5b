/*
 * bind_rule.c - te.rule and te.on_event (SPEC 6.1, 6.2).
 *
 * THREAD: the thread owning the lua_State (a script's top level).
 *
 * The one idea: a declaration is built in C memory owned by a userdata box
 * ("te.DefBox", whose __gc frees it), so any check may raise at any point
 * without leaking: every malloc'd piece hangs off the box's def the moment
 * it exists. Only when the whole spec is valid does the def move to the
 * script (engine mode) or become a description table (standalone te.so).
 * Error texts name the key and carry the file:line of the te.rule call:
 *   rules/x.lua:3: te.rule: unknown key "windw" (did you mean "window"?)
 */
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bind_agg.h"
#include "bind_rule_int.h"
#include "core/event.h"
#include "core/time.h"
#include "luaopen_te.h"
#include "rules/rule.h"
#include "core/suggest.h"

#define TE_DEFBOX_MT "te.DefBox"

typedef struct {
    te_rule_def_t *def;
} def_box;

static char *dup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

/* --- spec tables --- */

static const char *const rule_keys[] = {
    "name", "kind", "where", "group_by", "window", "every", "aggs", "condition", "value",
    "pending", "keep_firing", "severity", "summary", "labels", "notify", "repeat_every",
    "max_groups", "description", NULL};
static const char *const on_event_keys[] = {"name", "kind", "where", "fn", NULL};

/* The known key nearest to key (edit distance <= 2), or NULL. */
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

static void check_keys(lua_State *L, const char *fn, const char *const *keys)
{
    lua_pushnil(L);
    while (lua_next(L, 1)) { /* [spec, k, v] */
        if (lua_type(L, -2) != LUA_TSTRING)
            te_lua_raise(L, "%s: unexpected value without a name (write key = value)", fn);
        const char *key = lua_tostring(L, -2);
        const char *const *k = keys;
        while (*k && strcmp(*k, key) != 0)
            k++;
        if (!*k) {
            const char *near = nearest(key, keys);
            if (near)
                te_lua_raise(L, "%s: unknown key \"%s\" (did you mean \"%s\"?)", fn, key, near);
            te_lua_raise(L, "%s: unknown key \"%s\"", fn, key);
        }
        lua_pop(L, 1);
    }
}

/* Pushes spec[key] and returns its type; raises when a required key is nil. */
static int get_key(lua_State *L, const char *fn, const char *key, bool required)
{
    int t = lua_getfield(L, 1, key);
    if (required && t == LUA_TNIL)
        te_lua_raise(L, "%s: \"%s\" is required", fn, key);
    return t;
}

static void type_error(lua_State *L, const char *fn, const char *key, const char *expected)
{
    te_lua_raise(L, "%s: \"%s\" must be %s, got %s", fn, key, expected, luaL_typename(L, -1));
}

static void nomem(lua_State *L, const char *fn)
{
    te_lua_raise(L, "%s: out of memory", fn);
}

/* Reads spec[key] as a string into *slot (NULL when absent). */
static void opt_string(lua_State *L, const char *fn, const char *key, bool required, char **slot)
{
    int t = get_key(L, fn, key, required);
    if (t != LUA_TNIL) {
        if (t != LUA_TSTRING)
            type_error(L, fn, key, "a string");
        if (!(*slot = dup(lua_tostring(L, -1))))
            nomem(L, fn);
    }
    lua_pop(L, 1);
}

static int64_t opt_duration(lua_State *L, const char *fn, const char *key, const char *dflt,
                            bool positive)
{
    te_err_t err = {0};
    int64_t ns = 0;
    int t = get_key(L, fn, key, false);
    const char *text = dflt;
    if (t != LUA_TNIL) {
        if (t != LUA_TSTRING)
            type_error(L, fn, key, "a duration like \"5m\"");
        text = lua_tostring(L, -1);
    }
    if (te_duration_parse(text, &ns, &err) < 0)
        te_lua_raise(L, "%s: \"%s\": %s", fn, key, err.msg);
    if (positive && ns <= 0)
        te_lua_raise(L, "%s: \"%s\" must be longer than 0s, got \"%s\"", fn, key, text);
    lua_pop(L, 1);
    return ns;
}

/* Reads a list of strings into *out and *n. Returns the Lua type found. */
static int opt_strlist(lua_State *L, const char *fn, const char *key, char ***out, size_t *n)
{
    int t = get_key(L, fn, key, false);
    if (t == LUA_TNIL) {
        lua_pop(L, 1);
        return t;
    }
    if (t != LUA_TTABLE)
        type_error(L, fn, key, "a list of strings");
    size_t len = (size_t)lua_rawlen(L, -1), count = 0;
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        count++;
        if (!lua_isinteger(L, -2) || lua_tointeger(L, -2) < 1 ||
            (size_t)lua_tointeger(L, -2) > len)
            te_lua_raise(L, "%s: \"%s\" must be a list of strings", fn, key);
        if (lua_type(L, -1) != LUA_TSTRING || lua_rawlen(L, -1) == 0)
            te_lua_raise(L, "%s: %s[%d] must be a non-empty string, got %s", fn, key,
                         (int)lua_tointeger(L, -2),
                         lua_type(L, -1) == LUA_TSTRING ? "\"\"" : luaL_typename(L, -1));
        lua_pop(L, 1);
    }
    if (len > 0) {
        if (!(*out = calloc(len, sizeof(char *))))
            nomem(L, fn);
        *n = len;
        for (size_t i = 0; i < len; i++) {
            lua_rawgeti(L, -1, (lua_Integer)i + 1);
            (*out)[i] = dup(lua_tostring(L, -1));
            lua_pop(L, 1);
            if (!(*out)[i])
                nomem(L, fn);
        }
    }
    lua_pop(L, 1);
    return t;
}

static bool valid_name(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

static bool valid_ident(const char *s)
{
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
        return false;
    for (s++; *s; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return false;
    }
    return true;
}

/* Stores spec[key] (a function) in the registry; in standalone mode only
 * checks it (the description table keeps the function itself). */
static int opt_function(lua_State *L, const char *fn, const char *key, bool required,
                        bool standalone)
{
    int t = get_key(L, fn, key, required);
    if (t == LUA_TNIL) {
        lua_pop(L, 1);
        return LUA_NOREF;
    }
    if (t != LUA_TFUNCTION)
        type_error(L, fn, key, "a function");
    if (standalone) {
        lua_pop(L, 1);
        return LUA_NOREF;
    }
    return luaL_ref(L, LUA_REGISTRYINDEX);
}

static void read_aggs(lua_State *L, te_rule_def_t *def)
{
    const char *fn = "te.rule";
    char who[160];
    int t = get_key(L, fn, "aggs", true);
    if (t != LUA_TTABLE)
        type_error(L, fn, "aggs", "a table of name = te.count() ...");
    int aggs = lua_gettop(L);
    size_t count = 0;
    lua_pushnil(L);
    while (lua_next(L, aggs)) { /* [.., aggs, k, v] */
        if (lua_type(L, -2) != LUA_TSTRING || !valid_ident(lua_tostring(L, -2)))
            te_lua_raise(L, "te.rule: aggs: key %s must be a name like errors_total",
                         lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2)
                                                         : luaL_typename(L, -2));
        snprintf(who, sizeof(who), "te.rule: aggs.%s: filter", lua_tostring(L, -2));
        if (!te_bind_agg_check(L, -1, who))
            te_lua_raise(L, "te.rule: aggs.%s must be an aggregate (te.count(), te.sum(\"f\"), ...), "
                         "got %s",
                         lua_tostring(L, -2), luaL_typename(L, -1));
        lua_pop(L, 1);
        count++;
    }
    if (count == 0)
        te_lua_raise(L, "te.rule: \"aggs\" needs at least one aggregate");
    if (!(def->aggs = calloc(count, sizeof(*def->aggs))))
        nomem(L, fn);
    def->naggs = count;
    size_t i = 0;
    lua_pushnil(L);
    while (lua_next(L, aggs)) {
        te_rule_agg_t *g = &def->aggs[i++];
        if (!(g->name = dup(lua_tostring(L, -2))) || te_bind_agg_build(L, -1, g) < 0)
            nomem(L, fn);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

static void read_labels(lua_State *L, te_rule_def_t *def, const char *fn)
{
    int t = get_key(L, fn, "labels", false);
    if (t == LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    if (t != LUA_TTABLE)
        type_error(L, fn, "labels", "a table of name = \"value\"");
    size_t count = 0;
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            te_lua_raise(L, "%s: \"labels\" must be a table of name = \"value\"", fn);
        if (lua_type(L, -1) != LUA_TSTRING)
            te_lua_raise(L, "%s: labels.%s must be a string, got %s", fn, lua_tostring(L, -2),
                         luaL_typename(L, -1));
        count++;
        lua_pop(L, 1);
    }
    if (count) {
        def->label_keys = calloc(count, sizeof(char *));
        def->label_values = calloc(count, sizeof(char *));
        if (!def->label_keys || !def->label_values)
            nomem(L, fn);
        def->nlabels = count;
    }
    size_t i = 0;
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        def->label_keys[i] = dup(lua_tostring(L, -2));
        def->label_values[i] = dup(lua_tostring(L, -1));
        if (!def->label_keys[i] || !def->label_values[i])
            nomem(L, fn);
        i++;
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}


/* --- the declaration box --- */

static void unref_all(lua_State *L, te_rule_def_t *def)
{
    luaL_unref(L, LUA_REGISTRYINDEX, def->condition_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, def->value_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, def->severity_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, def->fn_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, def->method_ref);
}

static int defbox_gc(lua_State *L)
{
    def_box *b = luaL_checkudata(L, 1, TE_DEFBOX_MT);
    if (b->def) {
        unref_all(L, b->def);
        te_rule_def_free(b->def);
        b->def = NULL;
    }
    return 0;
}

/* Pushes a box owning a fresh, empty def: [spec] -> [spec, box]. */
static te_rule_def_t *new_def(lua_State *L, const char *fn, te_def_type_t type)
{
    def_box *b = lua_newuserdatauv(L, sizeof(*b), 0);
    b->def = NULL;
    luaL_setmetatable(L, TE_DEFBOX_MT);
    te_rule_def_t *def = calloc(1, sizeof(*def));
    if (!def)
        nomem(L, fn);
    def->type = type;
    def->condition_ref = def->value_ref = def->severity_ref = def->fn_ref = LUA_NOREF;
    def->method_ref = LUA_NOREF;
    def->line = te_lua_caller_line(L);
    b->def = def;
    return def;
}

/* Raises when name is already declared in this script (engine) or module
 * (standalone). */
static void check_unique(lua_State *L, const char *fn, const char *name, te_script_t *s)
{
    int line = -1;
    if (s) {
        for (size_t i = 0; i < s->ndefs && line < 0; i++) {
            if (strcmp(s->defs[i]->name, name) == 0)
                line = s->defs[i]->line;
        }
    } else {
        lua_getfield(L, LUA_REGISTRYINDEX, TE_LUA_DECLS_KEY); /* [.., list] */
        lua_Integer n = lua_istable(L, -1) ? (lua_Integer)lua_rawlen(L, -1) : 0;
        for (lua_Integer i = 1; i <= n && line < 0; i++) {
            lua_rawgeti(L, -1, i);
            lua_getfield(L, -1, "name");
            if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), name) == 0) {
                lua_getfield(L, -2, "line");
                line = (int)lua_tointeger(L, -1);
                lua_pop(L, 1);
            }
            lua_pop(L, 2);
        }
        lua_pop(L, 1);
    }
    if (line >= 0)
        te_lua_raise(L, "%s: duplicate name \"%s\" (already declared at line %d)", fn, name, line);
}

static void read_name_kind(lua_State *L, const char *fn, te_rule_def_t *def, bool kind_required)
{
    int t = get_key(L, fn, "name", true);
    if (t != LUA_TSTRING)
        type_error(L, fn, "name", "a string");
    if (!valid_name(lua_tostring(L, -1)))
        te_lua_raise(L, "%s: \"name\" must match [a-zA-Z0-9_.-]+, got \"%s\"", fn,
                     lua_tostring(L, -1));
    lua_pop(L, 1);
    opt_string(L, fn, "name", true, &def->name);
    t = get_key(L, fn, "kind", kind_required);
    if (t != LUA_TNIL) {
        if (t != LUA_TSTRING)
            type_error(L, fn, "kind", "a string");
        size_t len;
        const char *k = lua_tolstring(L, -1, &len);
        if (!te_kind_valid(k, len))
            te_lua_raise(L, "%s: \"kind\" must match [a-z][a-z0-9_.-]{0,63}, got \"%s\"", fn, k);
    }
    lua_pop(L, 1);
    opt_string(L, fn, "kind", false, &def->kind);
    t = get_key(L, fn, "where", false);
    if (t != LUA_TNIL) {
        char who[32];
        if (t != LUA_TTABLE)
            type_error(L, fn, "where", "a table of tag = value");
        snprintf(who, sizeof(who), "%s: where", fn);
        te_bind_where_check(L, -1, who);
        if (te_bind_where_build(L, -1, &def->where, &def->nwhere) < 0)
            nomem(L, fn);
    }
    lua_pop(L, 1);
}

static void read_rule(lua_State *L, te_rule_def_t *def, bool standalone)
{
    const char *fn = "te.rule";
    read_name_kind(L, fn, def, true);
    opt_strlist(L, fn, "group_by", &def->group_by, &def->ngroup);
    def->window_ns = opt_duration(L, fn, "window", "5m", true);
    def->every_ns = opt_duration(L, fn, "every", "30s", true);
    read_aggs(L, def);
    def->condition_ref = opt_function(L, fn, "condition", true, standalone);
    def->value_ref = opt_function(L, fn, "value", false, standalone);
    def->pending_ns = opt_duration(L, fn, "pending", "0s", false);
    def->keep_firing_ns = opt_duration(L, fn, "keep_firing", "0s", false);
    def->severity = TE_SEV_WARNING;
    int t = get_key(L, fn, "severity", false);
    if (t == LUA_TSTRING) {
        if (te_severity_parse(lua_tostring(L, -1), &def->severity) < 0)
            te_lua_raise(L, "%s: \"severity\" must be \"info\", \"warning\", \"critical\" or a "
                         "function, got \"%s\"", fn, lua_tostring(L, -1));
    } else if (t == LUA_TFUNCTION) {
        if (!standalone) {
            def->severity_ref = luaL_ref(L, LUA_REGISTRYINDEX);
            lua_pushnil(L); /* keep the pop below balanced */
        }
    } else if (t != LUA_TNIL) {
        type_error(L, fn, "severity", "\"info\", \"warning\", \"critical\" or a function");
    }
    lua_pop(L, 1);
    opt_string(L, fn, "summary", false, &def->summary);
    read_labels(L, def, fn);
    if (opt_strlist(L, fn, "notify", &def->notify, &def->nnotify) == LUA_TNIL) {
        if (!(def->notify = calloc(1, sizeof(char *))))
            nomem(L, fn);
        def->nnotify = 1;
        if (!(def->notify[0] = dup("stdout")))
            nomem(L, fn);
    }
    def->repeat_every_ns = opt_duration(L, fn, "repeat_every", "0s", false);
    def->max_groups = 10000;
    t = get_key(L, fn, "max_groups", false);
    if (t != LUA_TNIL) {
        if (!lua_isinteger(L, -1))
            type_error(L, fn, "max_groups", "an integer");
        if (lua_tointeger(L, -1) < 1)
            te_lua_raise(L, "%s: \"max_groups\" must be at least 1, got %lld", fn,
                         (long long)lua_tointeger(L, -1));
        def->max_groups = (size_t)lua_tointeger(L, -1);
    }
    lua_pop(L, 1);
    t = get_key(L, fn, "description", false); /* checked only: te_rule_def_t has no slot */
    if (t != LUA_TNIL && t != LUA_TSTRING)
        type_error(L, fn, "description", "a string");
    lua_pop(L, 1);
}

/* --- standalone: a description table for busted --- */

static void set_seconds(lua_State *L, const char *key, int64_t ns)
{
    if (ns % TE_NS_PER_SEC == 0)
        lua_pushinteger(L, (lua_Integer)(ns / TE_NS_PER_SEC));
    else
        lua_pushnumber(L, (lua_Number)ns / (lua_Number)TE_NS_PER_SEC);
    lua_setfield(L, -2, key);
}

static void push_strings(lua_State *L, char **v, size_t n)
{
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_pushstring(L, v[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
}

static void push_where(lua_State *L, const te_where_t *w, size_t n)
{
    lua_createtable(L, 0, (int)n);
    for (size_t i = 0; i < n; i++) {
        if (w[i].pattern) {
            lua_createtable(L, 0, 1);
            lua_pushstring(L, w[i].pattern);
            lua_setfield(L, -2, "match");
        } else {
            push_strings(L, w[i].values, w[i].nvalues);
        }
        lua_setfield(L, -2, w[i].key);
    }
}

/* [spec, box] -> [spec, box, desc] */
static void push_description(lua_State *L, const te_rule_def_t *def)
{
    lua_newtable(L);
    lua_pushstring(L, def->type == TE_DEF_RULE       ? "rule"
                      : def->type == TE_DEF_DETECTOR ? "detector"
                                                     : "on_event");
    lua_setfield(L, -2, "type");
    lua_pushstring(L, def->name);
    lua_setfield(L, -2, "name");
    if (def->kind) {
        lua_pushstring(L, def->kind);
        lua_setfield(L, -2, "kind");
    }
    push_where(L, def->where, def->nwhere);
    lua_setfield(L, -2, "where");
    lua_pushinteger(L, def->line);
    lua_setfield(L, -2, "line");
    static const char *const fns[] = {"condition", "value", "fn", "description", NULL};
    for (const char *const *f = fns; *f; f++) {
        lua_getfield(L, 1, *f);
        lua_setfield(L, -2, *f);
    }
    if (def->type == TE_DEF_ON_EVENT)
        return;
    push_strings(L, def->group_by, def->ngroup);
    lua_setfield(L, -2, "group_by");
    set_seconds(L, "window", def->window_ns);
    set_seconds(L, "every", def->every_ns);
    set_seconds(L, "pending", def->pending_ns);
    set_seconds(L, "keep_firing", def->keep_firing_ns);
    set_seconds(L, "repeat_every", def->repeat_every_ns);
    lua_createtable(L, 0, (int)def->naggs);
    for (size_t i = 0; i < def->naggs; i++) {
        const te_rule_agg_t *g = &def->aggs[i];
        lua_createtable(L, 0, 4);
        lua_pushstring(L, te_bind_agg_op_name(g->op));
        lua_setfield(L, -2, "op");
        if (g->field) {
            lua_pushstring(L, g->field);
            lua_setfield(L, -2, "field");
        }
        if (g->op == TE_RAGG_QUANTILE) {
            lua_pushnumber(L, g->q);
            lua_setfield(L, -2, "q");
        }
        if (g->nfilter) {
            push_where(L, g->filter, g->nfilter);
            lua_setfield(L, -2, "filter");
        }
        lua_setfield(L, -2, g->name);
    }
    lua_setfield(L, -2, "aggs");
    lua_getfield(L, 1, "severity");
    if (!lua_isfunction(L, -1)) {
        lua_pop(L, 1);
        lua_pushstring(L, te_severity_name(def->severity));
    }
    lua_setfield(L, -2, "severity");
    if (def->summary) {
        lua_pushstring(L, def->summary);
        lua_setfield(L, -2, "summary");
    }
    lua_createtable(L, 0, (int)def->nlabels);
    for (size_t i = 0; i < def->nlabels; i++) {
        lua_pushstring(L, def->label_values[i]);
        lua_setfield(L, -2, def->label_keys[i]);
    }
    lua_setfield(L, -2, "labels");
    push_strings(L, def->notify, def->nnotify);
    lua_setfield(L, -2, "notify");
    lua_pushinteger(L, (lua_Integer)def->max_groups);
    lua_setfield(L, -2, "max_groups");
}

/* [spec, box] -> engine: the def moves to the script, returns 0 results;
 * standalone: the description joins the module's list and is returned. */
static int finish(lua_State *L, const char *fn)
{
    def_box *b = lua_touserdata(L, 2);
    te_script_t *s = te_lua_script(L);
    te_rule_def_normalise(b->def);
    if (s) {
        te_rule_def_t **defs = realloc(s->defs, (s->ndefs + 1) * sizeof(*defs));
        if (!defs)
            nomem(L, fn);
        s->defs = defs;
        s->defs[s->ndefs++] = b->def;
        b->def = NULL;
        return 0;
    }
    push_description(L, b->def);                          /* [spec, box, desc] */
    if (lua_getfield(L, LUA_REGISTRYINDEX, TE_LUA_DECLS_KEY) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, TE_LUA_DECLS_KEY);
    }                                                     /* [spec, box, desc, list] */
    lua_pushvalue(L, -2);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    lua_pop(L, 1);
    te_rule_def_free(b->def); /* standalone keeps no refs */
    b->def = NULL;
    return 1;
}

static void check_spec_arg(lua_State *L, const char *fn)
{
    te_script_t *s = te_lua_script(L);
    if (s && s->loaded_at_ns != 0) /* the engine holds the defs: the list is closed */
        te_lua_raise(L, "%s: declarations belong at the top level of the script, not in a "
                        "function the engine calls later", fn);
    if (!lua_istable(L, 1))
        te_lua_arg_type_error(L, 1, fn, "table");
    if (lua_gettop(L) > 1)
        te_lua_raise(L, "bad argument #2 to '%s' (write %s{ ... } with one table)", fn, fn);
}

static int l_rule(lua_State *L)
{
    check_spec_arg(L, "te.rule");
    check_keys(L, "te.rule", rule_keys);
    te_rule_def_t *def = new_def(L, "te.rule", TE_DEF_RULE); /* [spec, box] */
    te_script_t *s = te_lua_script(L);
    read_rule(L, def, s == NULL);
    check_unique(L, "te.rule", def->name, s);
    return finish(L, "te.rule");
}

static int l_on_event(lua_State *L)
{
    check_spec_arg(L, "te.on_event");
    check_keys(L, "te.on_event", on_event_keys);
    te_rule_def_t *def = new_def(L, "te.on_event", TE_DEF_ON_EVENT);
    te_script_t *s = te_lua_script(L);
    read_name_kind(L, "te.on_event", def, false);
    def->fn_ref = opt_function(L, "te.on_event", "fn", true, s == NULL);
    def->max_groups = 0;
    check_unique(L, "te.on_event", def->name, s);
    return finish(L, "te.on_event");
}

static const luaL_Reg rule_funcs[] = {
    {"rule", l_rule},
    {"on_event", l_on_event},
    {NULL, NULL},
};

void te_bind_rule(lua_State *L, bool standalone)
{
    /* [te] */
    luaL_newmetatable(L, TE_DEFBOX_MT);
    lua_pushcfunction(L, defbox_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    lua_pushboolean(L, standalone);
    luaL_setfuncs(L, rule_funcs, 1);
    te_bind_agg(L, standalone);
}

/* --- shared with bind_detect.c (bind_rule_int.h) --- */

void te_bind_def_check_spec(lua_State *L, const char *fn, const char *const *keys)
{
    check_spec_arg(L, fn);
    check_keys(L, fn, keys);
}

te_rule_def_t *te_bind_def_new(lua_State *L, const char *fn, te_def_type_t type)
{
    return new_def(L, fn, type);
}

void te_bind_def_name_kind(lua_State *L, const char *fn, te_rule_def_t *def, bool kind_required)
{
    read_name_kind(L, fn, def, kind_required);
}

int te_bind_def_strlist(lua_State *L, const char *fn, const char *key, char ***out, size_t *n)
{
    return opt_strlist(L, fn, key, out, n);
}

int64_t te_bind_def_duration(lua_State *L, const char *fn, const char *key, const char *dflt,
                             bool positive)
{
    return opt_duration(L, fn, key, dflt, positive);
}

void te_bind_def_string(lua_State *L, const char *fn, const char *key, bool required, char **slot)
{
    opt_string(L, fn, key, required, slot);
}

void te_bind_def_labels(lua_State *L, const char *fn, te_rule_def_t *def)
{
    read_labels(L, def, fn);
}

void te_bind_def_unique(lua_State *L, const char *fn, const char *name)
{
    check_unique(L, fn, name, te_lua_script(L));
}

int te_bind_def_finish(lua_State *L, const char *fn)
{
    return finish(L, fn);
}
