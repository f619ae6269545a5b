/*
 * bind_report.c - te.report declarations and the report builder `r`
 * (SPEC 6.5; the Lua API is in bind_report.h).
 *
 * THREAD: the thread owning the lua_State.
 *
 * The one idea: the document is C memory (a cJSON tree) owned by the
 * builder's userdata ("te.Report", __gc frees it). Each method checks all
 * of its arguments first - raising with file:line is free then - and only
 * afterwards converts them with te_lua_to_cjson, which never raises; the
 * finished block joins the document in one step, so an error can neither
 * leak nor leave half a block behind.
 */
#include "bind_report.h"

#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/event.h"
#include "core/suggest.h"
#include "core/time.h"
#include "luaopen_te.h"
#include "report/report.h"
#include "report/schedule.h"
#include "script/bind_query.h"

#define TE_REPORT_MT "te.Report"
#define MAX_DEPTH 32

typedef struct {
    cJSON *doc;
} builder_box;

static const char *const FORMATS[] = {"number", "int", "usd", "pct", "ms", "s",
                                      "duration", "bytes", "time", "text", NULL};

/* t[k] without metamethods: user tables cannot run code (or raise) while
 * C memory is held, and what is checked is what is converted. */
static int rawfield(lua_State *L, int idx, const char *k)
{
    idx = lua_absindex(L, idx);
    lua_pushstring(L, k);
    return lua_rawget(L, idx);
}

/* ---------- Lua -> cJSON ---------- */

static cJSON *to_cjson(lua_State *L, int idx, int depth)
{
    idx = lua_absindex(L, idx);
    switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN: return cJSON_CreateBool(lua_toboolean(L, idx));
    case LUA_TNUMBER: {
        double v = lua_tonumber(L, idx);
        return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
    }
    case LUA_TSTRING: return cJSON_CreateString(lua_tostring(L, idx));
    case LUA_TTABLE: break;
    default: return cJSON_CreateNull();
    }
    if (depth >= MAX_DEPTH || !lua_checkstack(L, 3))
        return cJSON_CreateNull();
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
    bool is_array = n > 0;
    if (!is_array) {
        /* an empty table, or one marked te.array{}, is an empty array only
         * when it has a te.Array metatable; otherwise an object */
        if (lua_getmetatable(L, idx)) {
            rawfield(L, -1, "__name");
            is_array = lua_type(L, -1) == LUA_TSTRING &&
                       strcmp(lua_tostring(L, -1), "te.Array") == 0;
            lua_pop(L, 2);
        }
    }
    cJSON *out = is_array ? cJSON_CreateArray() : cJSON_CreateObject();
    if (!out)
        return NULL;
    if (is_array) {
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, idx, i);
            cJSON *v = to_cjson(L, -1, depth + 1);
            lua_pop(L, 1);
            if (!v || !cJSON_AddItemToArray(out, v)) {
                cJSON_Delete(v);
                cJSON_Delete(out);
                return NULL;
            }
        }
        return out;
    }
    lua_pushnil(L);
    while (lua_next(L, idx)) { /* [.., k, v] */
        if (lua_type(L, -2) != LUA_TSTRING) {
            lua_pop(L, 1);
            continue;
        }
        cJSON *v = to_cjson(L, -1, depth + 1);
        if (!v || !cJSON_AddItemToObject(out, lua_tostring(L, -2), v)) {
            lua_pop(L, 2);
            cJSON_Delete(v);
            cJSON_Delete(out);
            return NULL;
        }
        lua_pop(L, 1);
    }
    return out;
}

cJSON *te_lua_to_cjson(lua_State *L, int idx)
{
    return to_cjson(L, idx, 0);
}

/* ---------- cJSON -> Lua (r:document) ---------- */

static void push_cjson(lua_State *L, const cJSON *j, int depth)
{
    luaL_checkstack(L, 4, "document too deep");
    if (!j || depth > 64 || cJSON_IsNull(j)) {
        lua_pushlightuserdata(L, NULL); /* te.null: arrays keep their length */
    } else if (cJSON_IsBool(j)) {
        lua_pushboolean(L, cJSON_IsTrue(j));
    } else if (cJSON_IsNumber(j)) {
        double v = j->valuedouble;
        if (v == floor(v) && fabs(v) < 9007199254740992.0)
            lua_pushinteger(L, (lua_Integer)v);
        else
            lua_pushnumber(L, v);
    } else if (cJSON_IsString(j)) {
        lua_pushstring(L, j->valuestring);
    } else {
        const cJSON *c;
        lua_Integer i = 1;
        lua_newtable(L);
        cJSON_ArrayForEach(c, j) {
            push_cjson(L, c, depth + 1);
            if (cJSON_IsArray(j))
                lua_rawseti(L, -2, i++);
            else
                lua_setfield(L, -2, c->string);
        }
    }
}

/* ---------- the builder ---------- */

static int builder_gc(lua_State *L)
{
    builder_box *b = luaL_checkudata(L, 1, TE_REPORT_MT);
    cJSON_Delete(b->doc);
    b->doc = NULL;
    return 0;
}

static cJSON *check_builder(lua_State *L, const char *fn)
{
    builder_box *b = luaL_testudata(L, 1, TE_REPORT_MT);
    if (!b)
        te_lua_raise(L, "%s: call it with a colon (r:%s(...))", fn, strchr(fn, ':') + 1);
    if (!b->doc)
        te_lua_raise(L, "%s: the report is closed", fn);
    return b->doc;
}

static void nomem(lua_State *L, const char *fn)
{
    te_lua_raise(L, "%s: out of memory", fn);
}

/* Appends blk (taken) to the document and returns the builder. */
static int add_block(lua_State *L, const char *fn, cJSON *doc, cJSON *blk)
{
    cJSON *blocks = cJSON_GetObjectItemCaseSensitive(doc, "blocks");
    if (!blocks)
        blocks = cJSON_AddArrayToObject(doc, "blocks");
    if (!blk || !cJSON_IsArray(blocks) || !cJSON_AddItemToArray(blocks, blk)) {
        cJSON_Delete(blk);
        nomem(L, fn);
    }
    lua_settop(L, 1);
    return 1;
}

static void check_format(lua_State *L, const char *fn, const char *fmt)
{
    for (const char *const *f = FORMATS; *f; f++)
        if (strcmp(*f, fmt) == 0)
            return;
    const char *best = NULL;
    size_t bestd = 3;
    for (const char *const *f = FORMATS; *f; f++) {
        size_t d = te_edit_distance(fmt, *f);
        if (d < bestd) {
            bestd = d;
            best = *f;
        }
    }
    if (best)
        te_lua_raise(L, "%s: unknown format \"%s\" (did you mean \"%s\"?)", fn, fmt, best);
    te_lua_raise(L,
                 "%s: unknown format \"%s\" (use number, int, usd, pct, ms, s, bytes, time or "
                 "text)",
                 fn, fmt);
}

/* Checks that the table at idx has only keys from keys. */
static void check_keys(lua_State *L, int idx, const char *fn, const char *const *keys)
{
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            te_lua_raise(L, "%s: unexpected value without a name (write key = value)", fn);
        const char *key = lua_tostring(L, -2), *best = NULL;
        size_t bestd = 3;
        const char *const *k = keys;
        for (; *k; k++) {
            if (strcmp(*k, key) == 0)
                break;
            size_t d = te_edit_distance(key, *k);
            if (d < bestd) {
                bestd = d;
                best = *k;
            }
        }
        if (!*k) {
            if (best)
                te_lua_raise(L, "%s: unknown key \"%s\" (did you mean \"%s\"?)", fn, key, best);
            te_lua_raise(L, "%s: unknown key \"%s\"", fn, key);
        }
        lua_pop(L, 1);
    }
}

/* t[key] must be nil or of type want (or one of the two types). */
static int field_type(lua_State *L, int t, const char *fn, const char *key, int want, int want2,
                      const char *expected)
{
    int ty = rawfield(L, t, key);
    if (ty != LUA_TNIL && ty != want && ty != want2)
        te_lua_raise(L, "%s: \"%s\" must be %s, got %s", fn, key, expected, luaL_typename(L, -1));
    lua_pop(L, 1);
    return ty;
}

static cJSON *new_block(const char *type)
{
    cJSON *b = cJSON_CreateObject();
    if (b && !cJSON_AddStringToObject(b, "type", type)) {
        cJSON_Delete(b);
        return NULL;
    }
    return b;
}

/* Copies t[key] (any value) into blk; false on ENOMEM. Absent stays absent. */
static bool copy_field(lua_State *L, int t, const char *key, cJSON *blk)
{
    if (rawfield(L, t, key) == LUA_TNIL) {
        lua_pop(L, 1);
        return true;
    }
    cJSON *v = to_cjson(L, -1, 0);
    lua_pop(L, 1);
    if (!v)
        return false;
    if (!cJSON_AddItemToObject(blk, key, v)) {
        cJSON_Delete(v);
        return false;
    }
    return true;
}

static int r_heading(lua_State *L)
{
    const char *fn = "r:heading";
    cJSON *doc = check_builder(L, fn);
    if (lua_type(L, 2) != LUA_TSTRING && lua_type(L, 2) != LUA_TNUMBER)
        return te_lua_arg_type_error(L, 2, fn, "string");
    lua_Integer level = luaL_optinteger(L, 3, 2);
    if (level < 1 || level > 6)
        return te_lua_raise(L, "%s: level must be from 1 to 6, got %lld", fn, (long long)level);
    cJSON *blk = new_block("heading");
    if (blk && (!cJSON_AddStringToObject(blk, "text", lua_tostring(L, 2)) ||
                !cJSON_AddNumberToObject(blk, "level", (double)level))) {
        cJSON_Delete(blk);
        blk = NULL;
    }
    return add_block(L, fn, doc, blk);
}

static int r_text(lua_State *L)
{
    const char *fn = "r:text";
    cJSON *doc = check_builder(L, fn);
    if (lua_type(L, 2) != LUA_TSTRING && lua_type(L, 2) != LUA_TNUMBER)
        return te_lua_arg_type_error(L, 2, fn, "string");
    cJSON *blk = new_block("text");
    if (blk && !cJSON_AddStringToObject(blk, "text", lua_tostring(L, 2))) {
        cJSON_Delete(blk);
        blk = NULL;
    }
    return add_block(L, fn, doc, blk);
}

static int r_stat(lua_State *L)
{
    static const char *const keys[] = {"label", "value", "unit", "delta", "format", NULL};
    const char *fn = "r:stat";
    cJSON *doc = check_builder(L, fn);
    if (!lua_istable(L, 2))
        return te_lua_arg_type_error(L, 2, fn, "table");
    check_keys(L, 2, fn, keys);
    if (rawfield(L, 2, "label") != LUA_TSTRING)
        return te_lua_raise(L, "%s: \"label\" must be a string, got %s", fn,
                            luaL_typename(L, -1));
    lua_pop(L, 1);
    field_type(L, 2, fn, "value", LUA_TNUMBER, LUA_TSTRING, "a number or a string");
    field_type(L, 2, fn, "unit", LUA_TSTRING, LUA_TSTRING, "a string");
    field_type(L, 2, fn, "delta", LUA_TNUMBER, LUA_TSTRING, "a number (a fraction) or a string");
    if (field_type(L, 2, fn, "format", LUA_TSTRING, LUA_TSTRING, "a string") == LUA_TSTRING) {
        rawfield(L, 2, "format");
        check_format(L, fn, lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    cJSON *blk = new_block("stat");
    for (const char *const *k = keys; blk && *k; k++) {
        if (!copy_field(L, 2, *k, blk)) {
            cJSON_Delete(blk);
            blk = NULL;
        }
    }
    /* a missing value is shown as a dash: keep the key so JSON says null */
    if (blk && !cJSON_GetObjectItemCaseSensitive(blk, "value") &&
        !cJSON_AddNullToObject(blk, "value")) {
        cJSON_Delete(blk);
        blk = NULL;
    }
    return add_block(L, fn, doc, blk);
}

static void check_list(lua_State *L, int idx, const char *fn, const char *what)
{
    if (!lua_istable(L, idx))
        te_lua_raise(L, "%s: %s must be a list, got %s", fn, what, luaL_typename(L, idx));
}

static int r_table(lua_State *L)
{
    static const char *const col_keys[] = {"key", "label", "format", NULL};
    const char *fn = "r:table";
    cJSON *doc = check_builder(L, fn);
    check_list(L, 2, fn, "rows");
    lua_Integer nrows = (lua_Integer)lua_rawlen(L, 2);
    for (lua_Integer i = 1; i <= nrows; i++) {
        if (lua_rawgeti(L, 2, i) != LUA_TTABLE)
            te_lua_raise(L, "%s: rows[%d] must be a table, got %s", fn, (int)i,
                         luaL_typename(L, -1));
        lua_pop(L, 1);
    }
    if (!lua_isnoneornil(L, 3)) {
        check_list(L, 3, fn, "columns");
        lua_Integer nc = (lua_Integer)lua_rawlen(L, 3);
        for (lua_Integer i = 1; i <= nc; i++) {
            int t = lua_rawgeti(L, 3, i); /* [.., col] */
            int ci = lua_gettop(L);
            if (t == LUA_TTABLE) {
                check_keys(L, ci, fn, col_keys);
                if (rawfield(L, ci, "key") != LUA_TSTRING)
                    te_lua_raise(L, "%s: columns[%d].key must be a string", fn, (int)i);
                lua_pop(L, 1);
                field_type(L, ci, fn, "label", LUA_TSTRING, LUA_TSTRING, "a string");
                if (rawfield(L, ci, "format") == LUA_TSTRING)
                    check_format(L, fn, lua_tostring(L, -1));
                else if (!lua_isnil(L, -1))
                    te_lua_raise(L, "%s: columns[%d].format must be a string", fn, (int)i);
                lua_pop(L, 1);
            } else if (t != LUA_TSTRING) {
                te_lua_raise(L,
                             "%s: columns[%d] must be a key or {key, label, format}, got %s",
                             fn, (int)i, luaL_typename(L, -1));
            }
            lua_pop(L, 1);
        }
    }
    if (!lua_isnoneornil(L, 4) && lua_type(L, 4) != LUA_TSTRING)
        return te_lua_arg_type_error(L, 4, fn, "string (a title)");
    cJSON *blk = new_block("table");
    cJSON *rows = blk ? cJSON_AddArrayToObject(blk, "rows") : NULL;
    bool ok = rows != NULL;
    for (lua_Integer i = 1; ok && i <= nrows; i++) {
        lua_rawgeti(L, 2, i);
        cJSON *r = to_cjson(L, -1, 0);
        lua_pop(L, 1);
        if (r && !cJSON_IsObject(r)) { /* {} converts as an object; a list is no row */
            cJSON_Delete(r);
            r = cJSON_CreateObject();
        }
        ok = r && cJSON_AddItemToArray(rows, r);
        if (!ok)
            cJSON_Delete(r);
    }
    if (ok && !lua_isnoneornil(L, 3)) {
        cJSON *cols = to_cjson(L, 3, 0);
        ok = cols && cJSON_AddItemToObject(blk, "columns", cols);
        if (!ok)
            cJSON_Delete(cols);
    }
    if (ok && lua_type(L, 4) == LUA_TSTRING)
        ok = cJSON_AddStringToObject(blk, "title", lua_tostring(L, 4)) != NULL;
    if (!ok) {
        cJSON_Delete(blk);
        blk = NULL;
    }
    return add_block(L, fn, doc, blk);
}

static int r_chart(lua_State *L)
{
    static const char *const keys[] = {"type", "title", "x", "series", "format", NULL};
    static const char *const types[] = {"line", "bar", "stacked", "pie", NULL};
    const char *fn = "r:chart";
    cJSON *doc = check_builder(L, fn);
    if (!lua_istable(L, 2))
        return te_lua_arg_type_error(L, 2, fn, "table");
    check_keys(L, 2, fn, keys);
    const char *type = "line";
    if (rawfield(L, 2, "type") != LUA_TNIL) {
        if (lua_type(L, -1) != LUA_TSTRING)
            te_lua_raise(L, "%s: \"type\" must be a string", fn);
        type = lua_tostring(L, -1);
        const char *const *t = types;
        while (*t && strcmp(*t, type) != 0)
            t++;
        if (!*t)
            te_lua_raise(L, "%s: \"type\" must be \"line\", \"bar\", \"stacked\" or \"pie\", got "
                         "\"%s\"",
                         fn, type);
    }
    lua_pop(L, 1);
    field_type(L, 2, fn, "title", LUA_TSTRING, LUA_TSTRING, "a string");
    if (field_type(L, 2, fn, "format", LUA_TSTRING, LUA_TSTRING, "a string") == LUA_TSTRING) {
        rawfield(L, 2, "format");
        check_format(L, fn, lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    if (rawfield(L, 2, "x") != LUA_TTABLE) /* [r, spec, x] */
        te_lua_raise(L, "%s: \"x\" must be a list of labels, got %s", fn, luaL_typename(L, -1));
    lua_Integer nx = (lua_Integer)lua_rawlen(L, -1);
    if (rawfield(L, 2, "series") != LUA_TTABLE) /* [r, spec, x, series] */
        te_lua_raise(L, "%s: \"series\" must be a list of {name, values}, got %s", fn,
                     luaL_typename(L, -1));
    lua_Integer ns = (lua_Integer)lua_rawlen(L, -1);
    for (lua_Integer i = 1; i <= ns; i++) {
        if (lua_rawgeti(L, -1, i) != LUA_TTABLE) /* [.., s] */
            te_lua_raise(L, "%s: series[%d] must be a table {name, values}", fn, (int)i);
        int si = lua_gettop(L);
        static const char *const skeys[] = {"name", "values", NULL};
        check_keys(L, si, fn, skeys);
        field_type(L, si, fn, "name", LUA_TSTRING, LUA_TNUMBER, "a string");
        if (rawfield(L, si, "values") != LUA_TTABLE)
            te_lua_raise(L, "%s: series[%d].values must be a list of numbers", fn, (int)i);
        lua_Integer nv = (lua_Integer)lua_rawlen(L, -1);
        if (nv > nx)
            te_lua_raise(L, "%s: series[%d].values has %d values for %d x labels", fn, (int)i,
                         (int)nv, (int)nx);
        for (lua_Integer k = 1; k <= nv; k++) {
            int vt = lua_rawgeti(L, -1, k);
            if (vt != LUA_TNUMBER && vt != LUA_TNIL && vt != LUA_TLIGHTUSERDATA)
                te_lua_raise(L, "%s: series[%d].values[%d] must be a number, got %s", fn, (int)i,
                             (int)k, luaL_typename(L, -1));
            lua_pop(L, 1);
        }
        lua_pop(L, 2);
    }
    if (strcmp(type, "pie") == 0 && ns > 1)
        te_lua_raise(L, "%s: a pie takes one series, got %d", fn, (int)ns);
    lua_settop(L, 2);
    cJSON *blk = new_block("chart");
    bool ok = blk && cJSON_AddStringToObject(blk, "chart", type) &&
              copy_field(L, 2, "title", blk) && copy_field(L, 2, "format", blk) &&
              copy_field(L, 2, "x", blk);
    if (ok && nx == 0 && !cJSON_GetObjectItemCaseSensitive(blk, "x"))
        ok = cJSON_AddArrayToObject(blk, "x") != NULL;
    if (ok && cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(blk, "x")))
        cJSON_ReplaceItemInObject(blk, "x", cJSON_CreateArray());
    cJSON *series = ok ? cJSON_AddArrayToObject(blk, "series") : NULL;
    ok = series != NULL;
    rawfield(L, 2, "series"); /* [r, spec, series] */
    for (lua_Integer i = 1; ok && i <= ns; i++) {
        lua_rawgeti(L, 3, i);
        rawfield(L, -1, "values");
        lua_Integer nv = (lua_Integer)lua_rawlen(L, -1);
        cJSON *s = cJSON_CreateObject();
        cJSON *vals = s ? cJSON_AddArrayToObject(s, "values") : NULL;
        ok = vals && cJSON_AddItemToArray(series, s);
        if (!ok)
            cJSON_Delete(s);
        rawfield(L, -2, "name");
        if (ok && !lua_isnil(L, -1))
            ok = cJSON_AddStringToObject(s, "name", lua_tostring(L, -1)) != NULL;
        else if (ok) {
            char nm[32];
            snprintf(nm, sizeof(nm), "series %d", (int)i);
            ok = cJSON_AddStringToObject(s, "name", nm) != NULL;
        }
        lua_pop(L, 1);
        /* values: holes (nil) up to #x become null so indexes line up */
        for (lua_Integer k = 1; ok && k <= nx; k++) {
            cJSON *v;
            if (k <= nv && lua_rawgeti(L, -1, k) == LUA_TNUMBER && isfinite(lua_tonumber(L, -1)))
                v = cJSON_CreateNumber(lua_tonumber(L, -1));
            else
                v = cJSON_CreateNull();
            if (k <= nv)
                lua_pop(L, 1);
            ok = v && cJSON_AddItemToArray(vals, v);
            if (!ok)
                cJSON_Delete(v);
        }
        lua_pop(L, 2);
    }
    if (!ok) {
        cJSON_Delete(blk);
        blk = NULL;
    }
    return add_block(L, fn, doc, blk);
}

static int r_list(lua_State *L)
{
    const char *fn = "r:list";
    cJSON *doc = check_builder(L, fn);
    check_list(L, 2, fn, "items");
    lua_Integer n = (lua_Integer)lua_rawlen(L, 2);
    for (lua_Integer i = 1; i <= n; i++) {
        int t = lua_rawgeti(L, 2, i);
        if (t != LUA_TSTRING && t != LUA_TNUMBER)
            te_lua_raise(L, "%s: items[%d] must be a string or a number, got %s", fn, (int)i,
                         luaL_typename(L, -1));
        lua_pop(L, 1);
    }
    cJSON *blk = new_block("list");
    cJSON *items = blk ? cJSON_AddArrayToObject(blk, "items") : NULL;
    bool ok = items != NULL;
    for (lua_Integer i = 1; ok && i <= n; i++) {
        lua_rawgeti(L, 2, i);
        cJSON *v = to_cjson(L, -1, 0);
        lua_pop(L, 1);
        ok = v && cJSON_AddItemToArray(items, v);
        if (!ok)
            cJSON_Delete(v);
    }
    if (!ok) {
        cJSON_Delete(blk);
        blk = NULL;
    }
    return add_block(L, fn, doc, blk);
}

static int r_alert_list(lua_State *L)
{
    static const char *const keep[] = {"id", "rule", "severity", "state", "summary",
                                       "starts_at", "ends_at", "value", "group", NULL};
    const char *fn = "r:alert_list";
    cJSON *doc = check_builder(L, fn);
    check_list(L, 2, fn, "alerts");
    lua_Integer n = (lua_Integer)lua_rawlen(L, 2);
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_rawgeti(L, 2, i) != LUA_TTABLE)
            te_lua_raise(L, "%s: alerts[%d] must be an alert table (as q.alerts returns)", fn,
                         (int)i);
        lua_pop(L, 1);
    }
    cJSON *blk = new_block("alert_list");
    cJSON *alerts = blk ? cJSON_AddArrayToObject(blk, "alerts") : NULL;
    bool ok = alerts != NULL;
    for (lua_Integer i = 1; ok && i <= n; i++) {
        lua_rawgeti(L, 2, i);
        cJSON *a = cJSON_CreateObject();
        ok = a && cJSON_AddItemToArray(alerts, a);
        if (!ok)
            cJSON_Delete(a);
        for (const char *const *k = keep; ok && *k; k++)
            ok = copy_field(L, lua_gettop(L), *k, a);
        lua_pop(L, 1);
    }
    if (!ok) {
        cJSON_Delete(blk);
        blk = NULL;
    }
    return add_block(L, fn, doc, blk);
}

static int r_render(lua_State *L)
{
    const char *fn = "r:render";
    cJSON *doc = check_builder(L, fn);
    te_report_format_t f;
    te_err_t err = {0};
    const char *name = luaL_optstring(L, 2, "md");
    if (te_report_format_parse(name, &f, &err) < 0)
        return te_lua_raise(L, "%s: %s", fn, err.msg);
    /* render into a userdata-free buffer, then copy: nothing raises in
     * between */
    char *out = NULL;
    size_t len = 0;
    if (te_report_render(doc, f, &out, &len, &err) < 0)
        return te_lua_raise(L, "%s: %s", fn, err.msg);
    luaL_Buffer b;
    char *p = luaL_buffinitsize(L, &b, len); /* may raise: nothing held but out */
    memcpy(p, out, len);
    free(out);
    luaL_pushresultsize(&b, len);
    return 1;
}

static int r_document(lua_State *L)
{
    cJSON *doc = check_builder(L, "r:document");
    if (!cJSON_GetObjectItemCaseSensitive(doc, "blocks") && !cJSON_AddArrayToObject(doc, "blocks"))
        nomem(L, "r:document");
    push_cjson(L, doc, 0);
    return 1;
}

static int r_tostring(lua_State *L)
{
    builder_box *b = luaL_checkudata(L, 1, TE_REPORT_MT);
    lua_pushfstring(L, "te.Report (%d blocks)",
                    b->doc ? cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(b->doc, "blocks"))
                           : 0);
    return 1;
}

static const luaL_Reg builder_methods[] = {
    {"heading", r_heading}, {"text", r_text},   {"stat", r_stat},
    {"table", r_table},     {"chart", r_chart}, {"list", r_list},
    {"alert_list", r_alert_list}, {"render", r_render}, {"document", r_document},
    {NULL, NULL},
};

static void builder_metatable(lua_State *L)
{
    if (luaL_newmetatable(L, TE_REPORT_MT)) {
        lua_pushcfunction(L, builder_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, r_tostring);
        lua_setfield(L, -2, "__tostring");
        luaL_newlib(L, builder_methods);
        lua_setfield(L, -2, "__index");
        lua_pushliteral(L, "locked");
        lua_setfield(L, -2, "__metatable");
    }
}

void te_lua_push_builder(lua_State *L, cJSON *doc)
{
    builder_metatable(L);                                   /* [mt]: may raise */
    builder_box *b = lua_newuserdatauv(L, sizeof(*b), 0);   /* [mt, box]: may raise */
    b->doc = NULL;
    lua_insert(L, -2);                                      /* [box, mt] */
    lua_setmetatable(L, -2);                                /* [box] */
    b->doc = doc; /* nothing below raises: the builder owns doc from here */
}

cJSON *te_lua_builder_doc(lua_State *L, int idx)
{
    builder_box *b = luaL_testudata(L, idx, TE_REPORT_MT);
    return b ? b->doc : NULL;
}

static int l_report_builder(lua_State *L)
{
    static const char *const keys[] = {"name", "title", NULL};
    const char *fn = "te.report_builder";
    if (lua_isnoneornil(L, 1)) {
        lua_settop(L, 0);
        lua_newtable(L);
    }
    if (!lua_istable(L, 1))
        return te_lua_arg_type_error(L, 1, fn, "table");
    check_keys(L, 1, fn, keys);
    field_type(L, 1, fn, "name", LUA_TSTRING, LUA_TSTRING, "a string");
    field_type(L, 1, fn, "title", LUA_TSTRING, LUA_TSTRING, "a string");
    cJSON *doc = cJSON_CreateObject();
    if (!doc || !copy_field(L, 1, "name", doc) || !copy_field(L, 1, "title", doc)) {
        cJSON_Delete(doc);
        nomem(L, fn);
    }
    te_lua_push_builder(L, doc);
    return 1;
}

/* ---------- te.report ---------- */

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

static int l_report(lua_State *L)
{
    static const char *const keys[] = {"name", "title", "description", "params",
                                       "schedule", "notify", "render", NULL};
    const char *fn = "te.report";
    te_script_t *s = te_lua_script(L);
    if (s && s->loaded_at_ns != 0)
        return te_lua_raise(L, "%s: declarations belong at the top level of the script, not in "
                               "a function the engine calls later",
                            fn);
    if (!lua_istable(L, 1))
        return te_lua_arg_type_error(L, 1, fn, "table");
    if (lua_gettop(L) > 1)
        return te_lua_raise(L, "bad argument #2 to '%s' (write %s{ ... } with one table)", fn,
                            fn);
    check_keys(L, 1, fn, keys);
    if (rawfield(L, 1, "name") != LUA_TSTRING)
        return te_lua_raise(L, "%s: \"name\" is required (a string)", fn);
    const char *name = lua_tostring(L, -1);
    if (!valid_name(name))
        return te_lua_raise(L, "%s: \"name\" must match [a-zA-Z0-9_.-]+, got \"%s\"", fn, name);
    lua_pop(L, 1);
    field_type(L, 1, fn, "title", LUA_TSTRING, LUA_TSTRING, "a string");
    field_type(L, 1, fn, "description", LUA_TSTRING, LUA_TSTRING, "a string");
    if (rawfield(L, 1, "render") != LUA_TFUNCTION)
        return te_lua_raise(L, "%s: \"render\" is required: function(q, r, params) ... end", fn);
    lua_pop(L, 1);
    int t = rawfield(L, 1, "params");
    if (t != LUA_TNIL) {
        if (t != LUA_TTABLE)
            te_lua_raise(L, "%s: \"params\" must be a table of name = default, got %s", fn,
                         luaL_typename(L, -1));
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            if (lua_type(L, -2) != LUA_TSTRING || !valid_name(lua_tostring(L, -2)))
                te_lua_raise(L, "%s: params keys must be names like since or top", fn);
            int vt = lua_type(L, -1);
            if (vt != LUA_TSTRING && vt != LUA_TNUMBER && vt != LUA_TBOOLEAN)
                te_lua_raise(L, "%s: params.%s must be a string, number or boolean, got %s", fn,
                             lua_tostring(L, -2), luaL_typename(L, -1));
            if (strcmp(lua_tostring(L, -2), "since") == 0 ||
                strcmp(lua_tostring(L, -2), "until") == 0) {
                te_err_t err = {0};
                int64_t ns;
                if (vt != LUA_TSTRING ||
                    te_time_parse_since(lua_tostring(L, -1), 0, &ns, &err) < 0)
                    te_lua_raise(L, "%s: params.%s must be a duration such as \"7d\" or a time",
                                 fn, lua_tostring(L, -2));
            }
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    if (field_type(L, 1, fn, "schedule", LUA_TSTRING, LUA_TSTRING, "a string") == LUA_TSTRING) {
        te_report_schedule_t sch;
        te_err_t err = {0};
        rawfield(L, 1, "schedule");
        if (te_report_schedule_parse(lua_tostring(L, -1), &sch, &err) < 0)
            te_lua_raise(L, "%s: %s", fn, err.msg);
        lua_pop(L, 1);
    }
    /* notify: a list of notifier names (telemetry.lua notifier blocks) */
    t = rawfield(L, 1, "notify");
    if (t != LUA_TNIL) {
        lua_Integer nn = t == LUA_TTABLE ? (lua_Integer)lua_rawlen(L, -1) : 0;
        if (t != LUA_TTABLE)
            te_lua_raise(L, "%s: \"notify\" must be a list of notifier names, got %s", fn,
                         luaL_typename(L, -1));
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            if (!lua_isinteger(L, -2) || lua_tointeger(L, -2) < 1 ||
                lua_tointeger(L, -2) > nn)
                te_lua_raise(L, "%s: \"notify\" must be a list of notifier names "
                                "(write notify = { \"hook\", \"mail\" })",
                             fn);
            if (lua_type(L, -1) != LUA_TSTRING || !valid_name(lua_tostring(L, -1)))
                te_lua_raise(L, "%s: notify[%d] must be a notifier name (a string like "
                                "\"hook\"), got %s",
                             fn, (int)lua_tointeger(L, -2),
                             lua_type(L, -1) == LUA_TSTRING ? "a bad name"
                                                            : luaL_typename(L, -1));
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    /* the registry list; a duplicate name in this state is an error */
    if (rawfield(L, LUA_REGISTRYINDEX, TE_LUA_REPORTS_KEY) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, TE_LUA_REPORTS_KEY);
    } /* [spec, list] */
    lua_Integer n = (lua_Integer)lua_rawlen(L, 2);
    /* standalone: te._reset() clears te.declarations(), so duplicates are
     * looked up there (reports only) */
    if (!s && rawfield(L, LUA_REGISTRYINDEX, TE_LUA_DECLS_KEY) == LUA_TTABLE)
        lua_replace(L, 2); /* the reports list is found again below */
    else if (!s) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_replace(L, 2);
    }
    lua_Integer nd = (lua_Integer)lua_rawlen(L, 2);
    for (lua_Integer i = 1; i <= nd; i++) {
        lua_rawgeti(L, 2, i);
        rawfield(L, -1, "name");
        rawfield(L, -2, "type");
        bool is_report =
            lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "report") == 0;
        lua_pop(L, 1);
        if (is_report && lua_type(L, -1) == LUA_TSTRING &&
            strcmp(lua_tostring(L, -1), name) == 0) {
            rawfield(L, -2, "line");
            te_lua_raise(L, "%s: duplicate name \"%s\" (already declared at line %d)", fn, name,
                         (int)lua_tointeger(L, -1));
        }
        lua_pop(L, 2);
    }
    lua_createtable(L, 0, 8); /* [spec, list, desc] */
    lua_pushliteral(L, "report");
    lua_setfield(L, -2, "type");
    static const char *const copy[] = {"name", "title", "description", "schedule", "render",
                                       NULL};
    for (const char *const *k = copy; *k; k++) {
        rawfield(L, 1, *k);
        lua_setfield(L, -2, *k);
    }
    rawfield(L, -1, "title");
    if (lua_isnil(L, -1)) {
        lua_pushstring(L, name);
        lua_setfield(L, -3, "title");
    }
    lua_pop(L, 1);
    lua_newtable(L); /* a copy of params: later edits of the spec do not leak in */
    if (rawfield(L, 1, "params") == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_settable(L, -5);
        }
    }
    lua_pop(L, 1);
    lua_setfield(L, -2, "params");
    lua_newtable(L); /* a copy of notify (empty when none) */
    if (rawfield(L, 1, "notify") == LUA_TTABLE) {
        lua_Integer nn = (lua_Integer)lua_rawlen(L, -1);
        for (lua_Integer i = 1; i <= nn; i++) {
            lua_rawgeti(L, -1, i);
            lua_rawseti(L, -3, i);
        }
    }
    lua_pop(L, 1);
    lua_setfield(L, -2, "notify");
    lua_pushinteger(L, te_lua_caller_line(L));
    lua_setfield(L, -2, "line");
    rawfield(L, LUA_REGISTRYINDEX, TE_LUA_REPORTS_KEY); /* [spec, list, desc, reports] */
    lua_pushvalue(L, -2);
    lua_rawseti(L, -2, n + 1);
    lua_pop(L, 1); /* [spec, list, desc] */
    if (s)
        return 0;
    if (rawfield(L, LUA_REGISTRYINDEX, TE_LUA_DECLS_KEY) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, TE_LUA_DECLS_KEY);
    }
    lua_pushvalue(L, -2);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    lua_pop(L, 1);
    return 1;
}

static const luaL_Reg report_funcs[] = {
    {"report", l_report},
    {"report_builder", l_report_builder},
    {NULL, NULL},
};

void te_bind_report(lua_State *L, bool standalone)
{
    builder_metatable(L);
    lua_pop(L, 1);
    lua_pushboolean(L, standalone);
    luaL_setfuncs(L, report_funcs, 1);
    if (standalone) { /* scripts in the engine get q from their run, not a file */
        lua_pushcfunction(L, te_lua_q_open);
        lua_setfield(L, -2, "report_q");
    }
}
