/*
 * bind_event.c - the te.Event userdata (see bind_event.h).
 *
 * THREAD: the thread owning the lua_State.
 */
#include "script/bind_event.h"

#include <lauxlib.h>
#include <lua.h>
#include <string.h>

typedef struct event_box {
    const te_event_t *ev; /* borrowed; NULL once the hook returned */
} event_box;

static const te_event_t *check_event(lua_State *L, int arg)
{
    event_box *box = luaL_checkudata(L, arg, TE_EVENT_MT);
    if (!box->ev)
        luaL_error(L, "te.Event used after its hook returned (copy the fields you need)");
    return box->ev;
}

static void push_opt(lua_State *L, const char *s)
{
    if (s)
        lua_pushstring(L, s);
    else
        lua_pushnil(L);
}

/* [box, key] -> value; tags/fields are cached in the box's user value */
static int event_index(lua_State *L)
{
    const te_event_t *ev = check_event(L, 1);
    const char *k = luaL_checkstring(L, 2);
    if (strcmp(k, "kind") == 0)
        lua_pushstring(L, ev->kind);
    else if (strcmp(k, "ts") == 0)
        lua_pushnumber(L, (lua_Number)ev->ts_ns / 1e9);
    else if (strcmp(k, "source") == 0)
        push_opt(L, ev->source);
    else if (strcmp(k, "id") == 0)
        push_opt(L, ev->id);
    else if (strcmp(k, "trace_id") == 0)
        push_opt(L, ev->trace_id);
    else if (strcmp(k, "span_id") == 0)
        push_opt(L, ev->span_id);
    else if (strcmp(k, "parent_span_id") == 0)
        push_opt(L, ev->parent_span_id);
    else if (strcmp(k, "correlation_id") == 0)
        push_opt(L, ev->correlation_id);
    else if (strcmp(k, "tags") == 0 || strcmp(k, "fields") == 0) {
        int slot = k[0] == 't' ? 1 : 2;
        if (lua_getiuservalue(L, 1, slot) == LUA_TTABLE)
            return 1;
        lua_pop(L, 1);
        if (slot == 1) {
            lua_createtable(L, 0, (int)ev->ntags);
            for (size_t i = 0; i < ev->ntags; i++) {
                lua_pushstring(L, ev->tags[i].value);
                lua_setfield(L, -2, ev->tags[i].key);
            }
        } else {
            lua_createtable(L, 0, (int)ev->nfields);
            for (size_t i = 0; i < ev->nfields; i++) {
                lua_pushnumber(L, ev->fields[i].value);
                lua_setfield(L, -2, ev->fields[i].key);
            }
        }
        lua_pushvalue(L, -1);
        lua_setiuservalue(L, 1, slot);
    } else
        lua_pushnil(L);
    return 1;
}

static int event_newindex(lua_State *L)
{
    luaL_checkudata(L, 1, TE_EVENT_MT);
    return luaL_error(L, "te.Event is read-only");
}

static int event_tostring(lua_State *L)
{
    event_box *box = luaL_checkudata(L, 1, TE_EVENT_MT);
    if (box->ev)
        lua_pushfstring(L, "te.Event(%s)", box->ev->kind);
    else
        lua_pushliteral(L, "te.Event(expired)");
    return 1;
}

int te_bind_event_new(lua_State *L)
{
    const te_event_t *ev = lua_touserdata(L, 1);
    event_box *box = lua_newuserdatauv(L, sizeof(*box), 2);
    box->ev = NULL;
    if (luaL_newmetatable(L, TE_EVENT_MT)) {
        lua_pushcfunction(L, event_index);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, event_newindex);
        lua_setfield(L, -2, "__newindex");
        lua_pushcfunction(L, event_tostring);
        lua_setfield(L, -2, "__tostring");
        lua_pushliteral(L, "te.Event");
        lua_setfield(L, -2, "__metatable");
    }
    lua_setmetatable(L, -2);
    box->ev = ev;
    return 1;
}

void te_bind_event_expire(lua_State *L, int idx)
{
    event_box *box = luaL_testudata(L, idx, TE_EVENT_MT);
    if (box)
        box->ev = NULL;
}
