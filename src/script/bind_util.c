/*
 * bind_util.c - small te helpers: te.duration, te.log, te.null, te.array,
 * te.now.
 *
 * THREAD: the thread owning the lua_State.
 *
 * te.now() reads the host's clock (registry TE_LUA_CLOCK_KEY, set by
 * te_script_set_clock), so rule tests under a virtual clock see virtual
 * time; in standalone te.so a test may pin it with te._set_now(seconds).
 * JSON <-> Lua has one rule: te.null is null (a NULL light userdata, as in
 * lua-cjson) and te.array{} marks a table as an array.
 */
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "core/time.h"
#include "luaopen_te.h"

#define TE_ARRAY_MT "te.Array"

static int l_duration(lua_State *L)
{
    te_err_t err = {0};
    int64_t ns = 0;
    if (lua_type(L, 1) != LUA_TSTRING)
        return te_lua_arg_type_error(L, 1, "te.duration", "string");
    if (te_duration_parse(lua_tostring(L, 1), &ns, &err) < 0)
        return te_lua_raise(L, "te.duration: %s", err.msg);
    if (ns % TE_NS_PER_SEC == 0)
        lua_pushinteger(L, (lua_Integer)(ns / TE_NS_PER_SEC));
    else
        lua_pushnumber(L, (lua_Number)ns / (lua_Number)TE_NS_PER_SEC);
    return 1;
}

/* The file of the Lua code calling the running C function, for log tags. */
static const char *caller_file(lua_State *L, lua_Debug *ar)
{
    for (int level = 1; level < 8; level++) {
        if (!lua_getstack(L, level, ar))
            break;
        if (lua_getinfo(L, "S", ar) && ar->what[0] != 'C')
            return ar->source[0] == '@' ? ar->source + 1 : ar->short_src;
    }
    return "?";
}

static int l_log(lua_State *L)
{
    static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
    static const te_log_level_t values[] = {TE_LOG_DEBUG, TE_LOG_INFO, TE_LOG_WARN, TE_LOG_ERROR};
    if (lua_type(L, 1) != LUA_TSTRING)
        return te_lua_arg_type_error(L, 1, "te.log", "string");
    const char *lv = lua_tostring(L, 1);
    int i = 0;
    while (levels[i] && strcmp(levels[i], lv) != 0)
        i++;
    if (!levels[i])
        return te_lua_raise(L,
                            "bad argument #1 to 'te.log' (level must be \"debug\", \"info\", "
                            "\"warn\" or \"error\", got \"%s\")",
                            lv);
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int a = 2; a <= n; a++) {
        if (a > 2)
            luaL_addchar(&b, ' ');
        luaL_tolstring(L, a, NULL); /* [.., s] */
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b); /* [args.., msg] */
    te_script_t *s = te_lua_script(L);
    lua_Debug ar;
    const char *file = s ? s->path : caller_file(L, &ar);
    te_log(values[i], "script", "%s: %s", file, lua_tostring(L, -1));
    return 0;
}

static int l_array(lua_State *L)
{
    if (lua_isnoneornil(L, 1)) {
        lua_newtable(L);
    } else {
        if (!lua_istable(L, 1))
            return te_lua_arg_type_error(L, 1, "te.array", "table");
        if (lua_getmetatable(L, 1)) {
            luaL_getmetatable(L, TE_ARRAY_MT);
            if (!lua_rawequal(L, -1, -2))
                return te_lua_raise(L, "te.array: the table already has a metatable");
            lua_pop(L, 2);
        }
        lua_settop(L, 1);
    }
    luaL_getmetatable(L, TE_ARRAY_MT);
    lua_setmetatable(L, -2);
    return 1;
}

static int l_now(lua_State *L)
{
    int64_t ns;
    lua_getfield(L, LUA_REGISTRYINDEX, TE_LUA_VIRTUAL_NOW_KEY);
    if (lua_type(L, -1) == LUA_TNUMBER)
        return 1;
    lua_pop(L, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, TE_LUA_CLOCK_KEY);
    const te_script_clock_t *clock = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (clock && clock->now_ns)
        ns = clock->now_ns(clock->arg);
    else
        ns = te_time_now_ns();
    lua_pushnumber(L, (lua_Number)ns / (lua_Number)TE_NS_PER_SEC);
    return 1;
}

static const luaL_Reg util_funcs[] = {
    {"duration", l_duration}, {"log", l_log}, {"array", l_array}, {"now", l_now}, {NULL, NULL},
};

void te_bind_util(lua_State *L, bool standalone)
{
    /* [te] */
    luaL_newmetatable(L, TE_ARRAY_MT); /* [te, mt]: __name marks arrays for JSON */
    lua_pop(L, 1);
    lua_pushboolean(L, standalone);
    luaL_setfuncs(L, util_funcs, 1);
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
}
