/*
 * luaopen_te.c - joins the bind_*.c registrations into the `te` table.
 *
 * THREAD: the thread owning the lua_State.
 *
 * The engine's sandbox (vm.c) preloads the table in engine mode; te.so
 * (luaopen_te_module.c) builds it in standalone mode. The mode rides along
 * as the first upvalue of every te function, so a binding asks
 * te_lua_script() and never a C global.
 */
#include "luaopen_te.h"

#include <lauxlib.h>
#include <lua.h>
#include <stdarg.h>
#include <stdio.h>

#include "script/bind_detect.h"
#include "script/bind_report.h"
#include "script/recommend.h"

void te_lua_push_module(lua_State *L, bool standalone)
{
    lua_newtable(L); /* [te] */
    te_bind_rule(L, standalone);
    te_bind_util(L, standalone);
    te_bind_report(L, standalone);
    te_bind_recommend(L, standalone);
    te_bind_detect(L, standalone);
    lua_pushstring(L, TE_VERSION);
    lua_setfield(L, -2, "version");
}

int te_lua_open_engine(lua_State *L)
{
    te_lua_push_module(L, false);
    return 1;
}

te_script_t *te_lua_script(lua_State *L)
{
    if (lua_toboolean(L, lua_upvalueindex(1)))
        return NULL;
    return *(te_script_t **)lua_getextraspace(L);
}

/* The nearest Lua frame above the running C function: the caller, or the
 * caller's caller when a C function such as pcall sits in between. */
static bool caller_frame(lua_State *L, lua_Debug *ar)
{
    for (int level = 1; level < 8; level++) {
        if (!lua_getstack(L, level, ar))
            return false;
        if (lua_getinfo(L, "Sl", ar) && ar->currentline > 0)
            return true;
    }
    return false;
}

int te_lua_caller_line(lua_State *L)
{
    lua_Debug ar;
    return caller_frame(L, &ar) ? ar.currentline : 0;
}

static int raise_msg(lua_State *L, const char *msg)
{
    lua_Debug ar;
    if (caller_frame(L, &ar)) {
        const char *src = ar.source[0] == '@' ? ar.source + 1 : ar.short_src;
        lua_pushfstring(L, "%s:%d: %s", src, ar.currentline, msg);
    } else {
        lua_pushstring(L, msg);
    }
    return lua_error(L);
}

int te_lua_raise(lua_State *L, const char *fmt, ...)
{
    char msg[TE_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return raise_msg(L, msg);
}

int te_lua_arg_type_error(lua_State *L, int arg, const char *fname, const char *expected)
{
    const char *got = lua_isnone(L, arg) ? "no value" : luaL_typename(L, arg);
    if (luaL_getmetafield(L, arg, "__name") == LUA_TSTRING)
        got = lua_tostring(L, -1); /* stays on the stack until we raise */
    return te_lua_raise(L, "bad argument #%d to '%s' (%s expected, got %s)", arg, fname,
                        expected, got);
}
