/*
 * bind_recommend.c - te.recommend{...} (SPEC 6.4; see recommend.h).
 *
 * THREAD: the thread owning the lua_State (a script's top level).
 *
 * The declaration is checked key by key, exactly as te.rule checks its
 * spec (bind_rule.c), with the file:line of the call in every message:
 *   rules/r.lua:3: te.recommend: unknown key "evry" (did you mean "every"?)
 * Nothing is allocated in C: an accepted declaration is one small Lua table
 * appended to a list in the registry (engine) or to te.declarations()
 * (te.so), so a raise half-way leaks nothing.
 */
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "core/suggest.h"
#include "core/time.h"
#include "luaopen_te.h"
#include "recommend.h"
#include "rules/rule.h"

static const char *const recommend_keys[] = {"name", "every", "fn", "description", NULL};

#define FN "te.recommend"

static void check_keys(lua_State *L)
{
    lua_pushnil(L);
    while (lua_next(L, 1)) { /* [spec, k, v] */
        if (lua_type(L, -2) != LUA_TSTRING)
            te_lua_raise(L, FN ": unexpected value without a name (write key = value)");
        const char *key = lua_tostring(L, -2);
        const char *near = NULL;
        size_t bestd = 3;
        const char *const *k = recommend_keys;
        for (; *k && strcmp(*k, key) != 0; k++) {
            size_t d = te_edit_distance(key, *k);
            if (d < bestd) {
                bestd = d;
                near = *k;
            }
        }
        if (!*k) {
            if (near)
                te_lua_raise(L, FN ": unknown key \"%s\" (did you mean \"%s\"?)", key, near);
            te_lua_raise(L, FN ": unknown key \"%s\"", key);
        }
        lua_pop(L, 1);
    }
}

static bool valid_name(const char *s, size_t len)
{
    if (len == 0 || len >= sizeof(((te_recommend_decl_t *)0)->name))
        return false;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

/* Line of an earlier declaration named name in list (a sequence of tables
 * with name and line), or -1. [.., list] stays as found. */
static int line_in_list(lua_State *L, int list, const char *name)
{
    int line = -1;
    lua_Integer n = (lua_Integer)lua_rawlen(L, list);
    for (lua_Integer i = 1; i <= n && line < 0; i++) {
        lua_rawgeti(L, list, i);
        lua_getfield(L, -1, "name");
        if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), name) == 0) {
            lua_getfield(L, -2, "line");
            line = (int)lua_tointeger(L, -1);
            lua_pop(L, 1);
        }
        lua_pop(L, 2);
    }
    return line;
}

/* Pushes the registry list under key, creating it: [..] -> [.., list]. */
static int push_list(lua_State *L, const char *key)
{
    if (lua_getfield(L, LUA_REGISTRYINDEX, key) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, key);
    }
    return lua_gettop(L);
}

static int l_recommend(lua_State *L)
{
    te_script_t *s = te_lua_script(L);
    if (s && s->loaded_at_ns != 0)
        te_lua_raise(L, FN ": declarations belong at the top level of the script, not in a "
                        "function the engine calls later");
    if (!lua_istable(L, 1))
        te_lua_arg_type_error(L, 1, FN, "table");
    if (lua_gettop(L) > 1)
        te_lua_raise(L, "bad argument #2 to '" FN "' (write " FN "{ ... } with one table)");
    check_keys(L);
    int line = te_lua_caller_line(L);

    /* name */
    if (lua_getfield(L, 1, "name") == LUA_TNIL)
        te_lua_raise(L, FN ": \"name\" is required");
    if (lua_type(L, -1) != LUA_TSTRING)
        te_lua_raise(L, FN ": \"name\" must be a string, got %s", luaL_typename(L, -1));
    size_t nlen;
    const char *name = lua_tolstring(L, -1, &nlen);
    if (!valid_name(name, nlen))
        te_lua_raise(L, FN ": \"name\" must match [a-zA-Z0-9_.-]{1,127}, got \"%s\"", name);
    int name_idx = lua_gettop(L);

    /* every */
    int64_t every_ns = 0;
    const char *every = "1h";
    int t = lua_getfield(L, 1, "every");
    if (t != LUA_TNIL) {
        if (t != LUA_TSTRING)
            te_lua_raise(L, FN ": \"every\" must be a duration like \"1h\", got %s",
                         luaL_typename(L, -1));
        every = lua_tostring(L, -1);
    }
    te_err_t err = {0};
    if (te_duration_parse(every, &every_ns, &err) < 0)
        te_lua_raise(L, FN ": \"every\": %s", err.msg);
    if (every_ns < TE_NS_PER_SEC)
        te_lua_raise(L, FN ": \"every\" must be at least 1s, got \"%s\"", every);
    lua_pop(L, 1);

    /* fn, description */
    t = lua_getfield(L, 1, "fn");
    if (t == LUA_TNIL)
        te_lua_raise(L, FN ": \"fn\" is required (function(q) return { findings } end)");
    if (t != LUA_TFUNCTION)
        te_lua_raise(L, FN ": \"fn\" must be a function, got %s", luaL_typename(L, -1));
    int fn_idx = lua_gettop(L);
    t = lua_getfield(L, 1, "description");
    if (t != LUA_TNIL && t != LUA_TSTRING)
        te_lua_raise(L, FN ": \"description\" must be a string, got %s", luaL_typename(L, -1));
    int desc_idx = lua_gettop(L);

    /* unique in the script (engine) or the module (te.so), across types */
    int prev = -1;
    if (s) {
        for (size_t i = 0; i < s->ndefs && prev < 0; i++)
            if (strcmp(s->defs[i]->name, name) == 0)
                prev = s->defs[i]->line;
    }
    if (prev < 0) {
        int list = push_list(L, s ? TE_LUA_RECS_KEY : TE_LUA_DECLS_KEY);
        prev = line_in_list(L, list, name);
        lua_pop(L, 1);
    }
    if (prev >= 0)
        te_lua_raise(L, FN ": duplicate name \"%s\" (already declared at line %d)", name, prev);

    /* the declaration */
    lua_createtable(L, 0, 6); /* [.., decl] */
    lua_pushvalue(L, name_idx);
    lua_setfield(L, -2, "name");
    lua_pushinteger(L, line);
    lua_setfield(L, -2, "line");
    lua_pushvalue(L, fn_idx);
    lua_setfield(L, -2, "fn");
    lua_pushvalue(L, desc_idx);
    lua_setfield(L, -2, "description");
    if (s) {
        lua_pushinteger(L, (lua_Integer)every_ns);
        lua_setfield(L, -2, "every_ns");
    } else {
        lua_pushstring(L, "recommend");
        lua_setfield(L, -2, "type");
        if (every_ns % TE_NS_PER_SEC == 0)
            lua_pushinteger(L, (lua_Integer)(every_ns / TE_NS_PER_SEC));
        else
            lua_pushnumber(L, (lua_Number)every_ns / (lua_Number)TE_NS_PER_SEC);
        lua_setfield(L, -2, "every");
    }
    int list = push_list(L, s ? TE_LUA_RECS_KEY : TE_LUA_DECLS_KEY); /* [.., decl, list] */
    lua_pushvalue(L, -2);
    lua_rawseti(L, list, (lua_Integer)lua_rawlen(L, list) + 1);
    lua_pop(L, 1);
    return s ? 0 : 1; /* te.so returns the description, as te.rule does */
}

void te_bind_recommend(lua_State *L, bool standalone)
{
    /* [te] */
    lua_pushboolean(L, standalone);
    lua_pushcclosure(L, l_recommend, 1);
    lua_setfield(L, -2, "recommend");
}
