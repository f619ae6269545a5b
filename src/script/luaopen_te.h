/*
 * luaopen_te.h - the `te` module table, joined from the bind_*.c files, for
 * the engine's sandboxes and for busted's te.so.
 *
 * THREAD: the thread owning the lua_State.
 *
 * Two modes, fixed when the table is built and carried by every te
 * function as its first upvalue (a boolean, true = standalone):
 * - engine: the state was made by te_script_load; declarations
 *   (te.rule, te.on_event) are appended to the te_script_t found through
 *   lua_getextraspace(L);
 * - standalone (te.so under plain lua5.4): declarations are kept in a list
 *   inside the state (registry) and returned by te.declarations() so tests
 *   can assert on them and call their functions.
 * Either way the spec tables are checked by the same code, so a script
 * that passes busted passes the engine's loader.
 */
#ifndef TE_SCRIPT_LUAOPEN_TE_H
#define TE_SCRIPT_LUAOPEN_TE_H

#include <stdbool.h>

#include "script/script.h"

/* Registry key of the standalone declaration list (a Lua sequence). */
#define TE_LUA_DECLS_KEY "te.declarations"
/* Registry key of the clock (light userdata -> te_script_clock_t). */
#define TE_LUA_CLOCK_KEY "te.clock"
/* Registry key of a fixed virtual time in seconds (standalone tests). */
#define TE_LUA_VIRTUAL_NOW_KEY "te.virtual_now"

/* Pushes a new `te` table with every binding. May raise (memory) like any
 * Lua allocation; call it from protected code (luaL_requiref inside a
 * pcall, or a luaopen_ function). */
void te_lua_push_module(lua_State *L, bool standalone);

/* lua_CFunction for luaL_requiref in the engine's sandbox: pushes the
 * engine-mode `te` table. */
int te_lua_open_engine(lua_State *L);

/* Adds te.rule, te.on_event, the aggregate constructors and te.match to
 * the table at the top of the stack (bind_rule.c, bind_agg.c), each with the
 * mode as first upvalue. Leaves the stack as found; may raise
 * (memory). */
void te_bind_rule(lua_State *L, bool standalone);

/* Adds te.duration, te.log, te.null, te.array, te.now (bind_util.c); same
 * contract as te_bind_rule. */
void te_bind_util(lua_State *L, bool standalone);

/* The entry point of te.so (luaopen_te_module.c): the standalone `te`
 * table plus test helpers (te.declarations, te._reset, te._set_now,
 * te._sandbox_run). */
int luaopen_te(lua_State *L);

/* The script a te function runs for, or NULL in standalone mode. Only
 * valid inside a te function (reads its first upvalue). Cannot fail. */
te_script_t *te_lua_script(lua_State *L);

/* Raises "FILE:LINE: <fmt...>" where FILE:LINE is the Lua code calling the
 * running C function (formatted with vsnprintf into a stack buffer, so
 * any printf format works). Never returns. */
int te_lua_raise(lua_State *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Raises "FILE:LINE: bad argument #arg to 'fname' (expected expected, got
 * TYPE)", the luaL_typeerror text with a fixed function name. Never
 * returns. */
int te_lua_arg_type_error(lua_State *L, int arg, const char *fname, const char *expected);

/* The line of the Lua code calling the running C function (0 when none). */
int te_lua_caller_line(lua_State *L);

#endif
