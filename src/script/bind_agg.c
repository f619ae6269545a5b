/*
 * bind_agg.c - the aggregate constructors (te.count ... te.last), te.match
 * and the `where` tables both use (SPEC 6.1).
 *
 * THREAD: the thread owning the lua_State.
 *
 * An aggregate is a small "te.Agg" userdata: its op and q in C, its field
 * and filter table as user values. Nothing is malloc'd until te.rule copies
 * it into a te_rule_agg_t (bind_rule.c), so a constructor can raise freely.
 * te.match compiles its PCRE2 pattern at once (errors point at the call)
 * and the rule takes a copy of the compiled code.
 */
#include "bind_agg.h"

#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/event.h"
#include "luaopen_te.h"

#define TE_MATCH_MT "te.Match"

typedef struct {
    te_ragg_op_t op;
    double q;
} agg_box; /* uservalue 1: field string or nil; 2: filter table or nil */

typedef struct {
    pcre2_code *re;
} match_box; /* uservalue 1: the pattern string */


static const char *const op_names[] = {"count", "sum",      "avg",  "min", "max",
                                       "quantile", "rate", "distinct", "last"};

/* --- te.match --- */

static int match_gc(lua_State *L)
{
    match_box *m = luaL_checkudata(L, 1, TE_MATCH_MT);
    pcre2_code_free(m->re);
    m->re = NULL;
    return 0;
}

static int match_tostring(lua_State *L)
{
    luaL_checkudata(L, 1, TE_MATCH_MT);
    lua_getiuservalue(L, 1, 1);
    lua_pushfstring(L, "te.match(\"%s\")", lua_tostring(L, -1));
    return 1;
}

static int l_match(lua_State *L)
{
    int errcode = 0;
    PCRE2_SIZE off = 0;
    if (lua_type(L, 1) != LUA_TSTRING)
        return te_lua_arg_type_error(L, 1, "te.match", "string");
    size_t len;
    const char *pat = lua_tolstring(L, 1, &len);
    match_box *m = lua_newuserdatauv(L, sizeof(*m), 1); /* [pat, m] */
    m->re = NULL;
    luaL_setmetatable(L, TE_MATCH_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    m->re = pcre2_compile((PCRE2_SPTR)pat, len, 0, &errcode, &off, NULL);
    if (!m->re) {
        PCRE2_UCHAR buf[160];
        pcre2_get_error_message(errcode, buf, sizeof(buf));
        return te_lua_raise(L, "te.match: bad regex \"%s\": %s (at offset %zu)", pat,
                            (const char *)buf, (size_t)off);
    }
    return 1;
}

/* --- where / filter tables --- */

static bool is_match(lua_State *L, int idx)
{
    return luaL_testudata(L, idx, TE_MATCH_MT) != NULL;
}

void te_bind_where_check(lua_State *L, int idx, const char *who)
{
    idx = lua_absindex(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) { /* [.., k, v] */
        if (lua_type(L, -2) != LUA_TSTRING)
            te_lua_raise(L, "%s: keys must be tag names, got %s", who, luaL_typename(L, -2));
        const char *key = lua_tostring(L, -2);
        if (!*key || strlen(key) > TE_TAG_KEY_MAX)
            te_lua_raise(L, "%s: tag name \"%s\" must be 1 to %d bytes", who, key, TE_TAG_KEY_MAX);
        if (lua_type(L, -1) == LUA_TTABLE) {
            lua_Integer n = (lua_Integer)lua_rawlen(L, -1), count = 0;
            lua_pushnil(L);
            while (lua_next(L, -2)) { /* [.., k, list, i, s] */
                count++;
                if (!lua_isinteger(L, -2) || lua_tointeger(L, -2) < 1 || lua_tointeger(L, -2) > n)
                    te_lua_raise(L, "%s.%s must be a list of strings", who, key);
                if (lua_type(L, -1) != LUA_TSTRING)
                    te_lua_raise(L, "%s.%s[%d] must be a string, got %s", who, key,
                                 (int)lua_tointeger(L, -2), luaL_typename(L, -1));
                lua_pop(L, 1);
            }
            if (count == 0)
                te_lua_raise(L, "%s.%s is an empty list (give at least one value)", who, key);
        } else if (lua_type(L, -1) != LUA_TSTRING && !is_match(L, -1)) {
            te_lua_raise(L, "%s.%s must be a string, a list of strings or te.match(\"re\"), got %s",
                         who, key, luaL_typename(L, -1));
        }
        lua_pop(L, 1);
    }
}

static char *dup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

int te_bind_where_build(lua_State *L, int idx, te_where_t **out, size_t *n)
{
    size_t count = 0, i = 0;
    idx = lua_absindex(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        count++;
        lua_pop(L, 1);
    }
    if (count == 0)
        return 0;
    te_where_t *w = calloc(count, sizeof(*w));
    if (!w)
        return -1;
    *out = w;
    *n = count;
    lua_pushnil(L);
    while (lua_next(L, idx)) { /* [.., k, v] */
        te_where_t *e = &w[i++];
        int rc = 0;
        e->key = dup(lua_tostring(L, -2));
        if (!e->key) {
            rc = -1;
        } else if (lua_type(L, -1) == LUA_TSTRING) {
            e->values = calloc(1, sizeof(char *));
            e->nvalues = e->values ? 1 : 0;
            if (!e->values || !(e->values[0] = dup(lua_tostring(L, -1))))
                rc = -1;
        } else if (lua_type(L, -1) == LUA_TTABLE) {
            size_t len = (size_t)lua_rawlen(L, -1);
            e->values = calloc(len, sizeof(char *));
            e->nvalues = e->values ? len : 0;
            for (size_t j = 0; rc == 0 && j < e->nvalues; j++) {
                lua_rawgeti(L, -1, (lua_Integer)j + 1);
                e->values[j] = dup(lua_tostring(L, -1));
                lua_pop(L, 1);
                if (!e->values[j])
                    rc = -1;
            }
            if (!e->values)
                rc = -1;
        } else {
            match_box *m = lua_touserdata(L, -1);
            lua_getiuservalue(L, -1, 1);
            e->pattern = dup(lua_tostring(L, -1));
            lua_pop(L, 1);
            e->re = m->re ? pcre2_code_copy(m->re) : NULL;
            e->md = e->re ? pcre2_match_data_create_from_pattern(e->re, NULL) : NULL;
            if (!e->pattern || !e->re || !e->md)
                rc = -1;
        }
        if (rc < 0) {
            lua_pop(L, 2);
            return -1;
        }
        lua_pop(L, 1);
    }
    return 0;
}

/* --- aggregate constructors --- */

static int agg_tostring(lua_State *L)
{
    agg_box *a = luaL_checkudata(L, 1, TE_AGG_MT);
    lua_getiuservalue(L, 1, 1); /* [a, field|nil] */
    lua_getiuservalue(L, 1, 2); /* [a, field|nil, filter|nil] */
    const char *filt = lua_isnil(L, -1) ? "" : ", filtered";
    if (a->op == TE_RAGG_QUANTILE)
        lua_pushfstring(L, "te.Agg(quantile \"%s\", %f%s)", lua_tostring(L, -2), a->q, filt);
    else if (lua_isnil(L, -2))
        lua_pushfstring(L, "te.Agg(%s%s)", op_names[a->op], filt);
    else
        lua_pushfstring(L, "te.Agg(%s \"%s\"%s)", op_names[a->op], lua_tostring(L, -2), filt);
    return 1;
}

static int make_agg(lua_State *L, te_ragg_op_t op, const char *fname)
{
    char who[64];
    int arg = 1;
    bool has_field = op != TE_RAGG_COUNT && op != TE_RAGG_RATE;
    double q = 0;
    if (has_field) {
        if (lua_type(L, 1) != LUA_TSTRING)
            return te_lua_arg_type_error(L, 1, fname, "string");
        if (lua_rawlen(L, 1) == 0)
            return te_lua_raise(L, "bad argument #1 to '%s' (%s name must not be empty)", fname,
                                op == TE_RAGG_DISTINCT ? "tag" : "field");
        arg++;
    }
    if (op == TE_RAGG_QUANTILE) {
        if (lua_type(L, 2) != LUA_TNUMBER)
            return te_lua_arg_type_error(L, 2, fname, "number");
        q = lua_tonumber(L, 2);
        if (!(q >= 0 && q <= 1))
        {
            char got[32];
            if (q != q)
                snprintf(got, sizeof(got), "nan"); /* printf may say "-nan" */
            else
                snprintf(got, sizeof(got), "%g", q);
            return te_lua_raise(L, "bad argument #2 to '%s' (q must be between 0 and 1, got %s)",
                                fname, got);
        }
        arg++;
    }
    if (!lua_isnoneornil(L, arg)) {
        if (!lua_istable(L, arg))
            return te_lua_arg_type_error(L, arg, fname, "table");
        snprintf(who, sizeof(who), "%s: filter", fname);
        te_bind_where_check(L, arg, who);
    }
    if (lua_gettop(L) > arg)
        return te_lua_raise(L, "bad argument #%d to '%s' (no more than %d arguments expected)",
                            arg + 1, fname, arg);
    agg_box *a = lua_newuserdatauv(L, sizeof(*a), 2);
    a->op = op;
    a->q = q;
    luaL_setmetatable(L, TE_AGG_MT);
    if (has_field) {
        lua_pushvalue(L, 1);
        lua_setiuservalue(L, -2, 1);
    }
    if (lua_istable(L, arg)) {
        lua_pushvalue(L, arg);
        lua_setiuservalue(L, -2, 2);
    }
    return 1;
}

static int l_count(lua_State *L) { return make_agg(L, TE_RAGG_COUNT, "te.count"); }
static int l_sum(lua_State *L) { return make_agg(L, TE_RAGG_SUM, "te.sum"); }
static int l_avg(lua_State *L) { return make_agg(L, TE_RAGG_AVG, "te.avg"); }
static int l_min(lua_State *L) { return make_agg(L, TE_RAGG_MIN, "te.min"); }
static int l_max(lua_State *L) { return make_agg(L, TE_RAGG_MAX, "te.max"); }
static int l_quantile(lua_State *L) { return make_agg(L, TE_RAGG_QUANTILE, "te.quantile"); }
static int l_rate(lua_State *L) { return make_agg(L, TE_RAGG_RATE, "te.rate"); }
static int l_distinct(lua_State *L) { return make_agg(L, TE_RAGG_DISTINCT, "te.distinct"); }
static int l_last(lua_State *L) { return make_agg(L, TE_RAGG_LAST, "te.last"); }

const char *te_bind_agg_op_name(te_ragg_op_t op)
{
    return (int)op >= 0 && (int)op < (int)(sizeof(op_names) / sizeof(op_names[0])) ? op_names[op]
                                                                                   : "?";
}

bool te_bind_agg_check(lua_State *L, int idx, const char *who)
{
    idx = lua_absindex(L, idx);
    if (!luaL_testudata(L, idx, TE_AGG_MT))
        return false;
    lua_getiuservalue(L, idx, 2);
    if (lua_istable(L, -1))
        te_bind_where_check(L, -1, who); /* the filter table may have changed since te.count */
    lua_pop(L, 1);
    return true;
}

int te_bind_agg_build(lua_State *L, int idx, te_rule_agg_t *g)
{
    idx = lua_absindex(L, idx);
    agg_box *a = lua_touserdata(L, idx);
    int rc = 0;
    g->op = a->op;
    g->q = a->q;
    lua_getiuservalue(L, idx, 1);
    if (lua_type(L, -1) == LUA_TSTRING && !(g->field = dup(lua_tostring(L, -1))))
        rc = -1;
    lua_getiuservalue(L, idx, 2);
    if (rc == 0 && lua_istable(L, -1) && te_bind_where_build(L, -1, &g->filter, &g->nfilter) < 0)
        rc = -1;
    lua_pop(L, 2);
    return rc;
}

static const luaL_Reg agg_funcs[] = {
    {"match", l_match},     {"count", l_count},       {"sum", l_sum},
    {"avg", l_avg},         {"min", l_min},           {"max", l_max},
    {"quantile", l_quantile}, {"rate", l_rate},       {"distinct", l_distinct},
    {"last", l_last},       {NULL, NULL},
};

void te_bind_agg(lua_State *L, bool standalone)
{
    /* [te] */
    luaL_newmetatable(L, TE_AGG_MT);
    lua_pushcfunction(L, agg_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, "te.Agg");
    lua_setfield(L, -2, "__metatable"); /* scripts cannot swap the methods */
    luaL_newmetatable(L, TE_MATCH_MT);
    lua_pushcfunction(L, match_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, match_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, "te.Match");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);
    lua_pushboolean(L, standalone);
    luaL_setfuncs(L, agg_funcs, 1);
}
