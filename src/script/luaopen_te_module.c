/*
 * luaopen_te_module.c - te.so: the `te` module for plain lua5.4 (busted
 * specs, users' own tests of their rules).
 *
 * THREAD: the thread running the host's lua_State.
 *
 * Standalone mode (luaopen_te.h): te.rule / te.on_event check their spec
 * exactly as in the engine and append a description table to a list in
 * the registry, returned by te.declarations(). Helpers for tests only,
 * named with a leading underscore:
 *   te._reset()                clears the declarations and a pinned clock
 *   te._set_now(seconds|nil)   pins te.now() (virtual time) or unpins it
 *   te._sandbox_run(path, opts) loads path with te_script_load in a fresh
 *       engine sandbox; opts: lib_dir, mem_bytes, max_steps, max_call_ms,
 *       call (name of a global function to call through te_script_pcall
 *       after loading). Returns true, ndefs[, up to 4 call results:
 *       numbers, booleans, strings cut at 255 bytes, others as nil] or
 *       false, message, status ("error" | "disabled").
 */
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <string.h>

#include "core/time.h"
#include "luaopen_te.h"
#include "script/script.h"

static int l_declarations(lua_State *L)
{
    if (lua_getfield(L, LUA_REGISTRYINDEX, TE_LUA_DECLS_KEY) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, TE_LUA_DECLS_KEY);
    }
    return 1;
}

static int l_reset(lua_State *L)
{
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, TE_LUA_DECLS_KEY);
    lua_pushnil(L);
    lua_setfield(L, LUA_REGISTRYINDEX, TE_LUA_VIRTUAL_NOW_KEY);
    return 0;
}

static int l_set_now(lua_State *L)
{
    if (!lua_isnoneornil(L, 1) && lua_type(L, 1) != LUA_TNUMBER)
        return te_lua_arg_type_error(L, 1, "te._set_now", "number");
    lua_settop(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, TE_LUA_VIRTUAL_NOW_KEY);
    return 0;
}

static lua_Integer opt_int(lua_State *L, int t, const char *key)
{
    lua_getfield(L, t, key);
    lua_Integer v = lua_isnil(L, -1) ? 0 : luaL_checkinteger(L, -1);
    lua_pop(L, 1);
    return v;
}

static int l_sandbox_run(lua_State *L)
{
    te_script_limits_t limits = {0};
    te_err_t err = {0};
    te_script_t *s = NULL;
    const char *path = luaL_checkstring(L, 1);
    const char *lib_dir = NULL, *call = NULL;
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        limits.mem_bytes = (size_t)opt_int(L, 2, "mem_bytes");
        limits.max_steps = (uint64_t)opt_int(L, 2, "max_steps");
        limits.max_call_ns = (int64_t)opt_int(L, 2, "max_call_ms") * TE_NS_PER_MS;
        lua_getfield(L, 2, "lib_dir");
        lib_dir = lua_tostring(L, -1); /* kept alive by opts */
        lua_getfield(L, 2, "call");
        call = lua_tostring(L, -1);
    }
    if (te_script_load(path, lib_dir, &limits, &s, &err) < 0) {
        lua_pushboolean(L, 0);
        lua_pushstring(L, err.msg);
        lua_pushstring(L, "error");
        return 3;
    }
    /* from here on nothing may raise while s is held: copy out, then free */
    int nres = 0, ok = 1;
    char msg[TE_ERR_MSG_MAX] = "";
    lua_Number res[4] = {0};
    char str[4][256];
    int restype[4] = {LUA_TNIL, LUA_TNIL, LUA_TNIL, LUA_TNIL};
    size_t ndefs = s->ndefs;
    if (call) {
        int top = lua_gettop(s->L);
        lua_getglobal(s->L, call);
        if (te_script_pcall(s, 0, LUA_MULTRET) != LUA_OK) {
            ok = 0;
            const char *m = lua_tostring(s->L, -1);
            const char *tb = m ? strstr(m, "\nstack traceback:") : NULL;
            snprintf(msg, sizeof(msg), "%.*s", tb ? (int)(tb - m) : (int)strlen(m ? m : "?"),
                     m ? m : "?");
        } else {
            nres = lua_gettop(s->L) - top;
            if (nres > 4)
                nres = 4;
            for (int i = 0; i < nres; i++) {
                restype[i] = lua_type(s->L, top + 1 + i);
                res[i] = restype[i] == LUA_TBOOLEAN ? lua_toboolean(s->L, top + 1 + i)
                                                    : lua_tonumber(s->L, top + 1 + i);
                if (restype[i] == LUA_TSTRING)
                    snprintf(str[i], sizeof(str[i]), "%s", lua_tostring(s->L, top + 1 + i));
            }
        }
    }
    const char *status = s->status == TE_SCRIPT_DISABLED ? "disabled" : "error";
    te_script_free(s);
    if (!ok) {
        lua_pushboolean(L, 0);
        lua_pushstring(L, msg);
        lua_pushstring(L, status);
        return 3;
    }
    lua_pushboolean(L, 1);
    lua_pushinteger(L, (lua_Integer)ndefs);
    for (int i = 0; i < nres; i++) {
        if (restype[i] == LUA_TNUMBER)
            lua_pushnumber(L, res[i]);
        else if (restype[i] == LUA_TBOOLEAN)
            lua_pushboolean(L, res[i] != 0);
        else if (restype[i] == LUA_TSTRING)
            lua_pushstring(L, str[i]);
        else
            lua_pushnil(L);
    }
    return 2 + nres;
}

static const luaL_Reg test_funcs[] = {
    {"declarations", l_declarations}, {"_reset", l_reset},  {"_set_now", l_set_now},
    {"_sandbox_run", l_sandbox_run},  {NULL, NULL},
};

int luaopen_te(lua_State *L)
{
    te_lua_push_module(L, true); /* [te] */
    luaL_setfuncs(L, test_funcs, 0);
    return 1;
}
