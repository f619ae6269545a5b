/*
 * recommend.c - running one te.recommend function (see recommend.h).
 *
 * THREAD: the thread owning the script's lua_State.
 *
 * A run is three steps on the script's stack, each protected:
 *   1. find the declaration by name and push [q, fn, q] (lua_pcall of a C
 *      function: allocation may raise);
 *   2. fn(q) through te_script_pcall, under the script's instruction, time
 *      and memory budgets -> [q, result];
 *   3. check and copy the result into C findings (lua_pcall again: a bad
 *      finding raises with the declaration's file:line, and whatever was
 *      copied hangs off the caller's array, so nothing leaks).
 * q is expired afterwards (bind_query.h), so a q kept by the script cannot
 * reach a store the caller is about to close. Evidence becomes JSON with
 * object keys sorted, so an unchanged finding stores the same text every
 * run.
 */
#include "recommend.h"

#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/suggest.h"
#include "core/time.h"
#include "script/bind_query.h"
#include "store/recs.h"

#define EVIDENCE_MAX_DEPTH 16

/* ---- declarations ---- */

typedef struct decls_ctx {
    te_recommend_decl_t *v;
    size_t n;
} decls_ctx_t;

static int read_decls(lua_State *L)
{
    decls_ctx_t *c = lua_touserdata(L, 1);
    if (lua_getfield(L, LUA_REGISTRYINDEX, TE_LUA_RECS_KEY) != LUA_TTABLE)
        return 0;
    size_t len = (size_t)lua_rawlen(L, -1);
    if (len == 0)
        return 0;
    if (!(c->v = calloc(len, sizeof(*c->v))))
        return luaL_error(L, "out of memory");
    for (size_t i = 0; i < len; i++) {
        lua_rawgeti(L, -1, (lua_Integer)i + 1);
        lua_getfield(L, -1, "name");
        lua_getfield(L, -2, "every_ns");
        lua_getfield(L, -3, "line");
        te_recommend_decl_t *d = &c->v[c->n++];
        snprintf(d->name, sizeof(d->name), "%s", lua_tostring(L, -3) ? lua_tostring(L, -3) : "");
        d->every_ns = (int64_t)lua_tointeger(L, -2);
        d->line = (int)lua_tointeger(L, -1);
        lua_pop(L, 4);
    }
    return 0;
}

int te_recommend_decls(te_script_t *s, te_recommend_decl_t **out, size_t *n)
{
    decls_ctx_t c = {0};
    *out = NULL;
    *n = 0;
    if (!s || !s->L)
        return 0;
    lua_State *L = s->L;
    int top = lua_gettop(L);
    if (!lua_checkstack(L, 8))
        return TE_ENOMEM;
    lua_pushcfunction(L, read_decls);
    lua_pushlightuserdata(L, &c);
    int rc = lua_pcall(L, 1, 0, 0);
    lua_settop(L, top);
    if (rc != LUA_OK) {
        free(c.v);
        return TE_ENOMEM;
    }
    *out = c.v;
    *n = c.n;
    return 0;
}

/* ---- running ---- */

typedef struct run_ctx {
    const char *name;
    const te_recommend_run_opts_t *opts;
    int line;               /* of the declaration */
    const char *path;       /* the script's file */
    te_rec_t *v;            /* findings copied so far (owned by the caller) */
    size_t n;
} run_ctx_t;

/* [ctx] -> [q, fn, q]; raises "not found" as a plain string (no file:line). */
static int prepare(lua_State *L)
{
    run_ctx_t *c = lua_touserdata(L, 1);
    lua_settop(L, 0);
    if (lua_getfield(L, LUA_REGISTRYINDEX, TE_LUA_RECS_KEY) == LUA_TTABLE) {
        lua_Integer len = (lua_Integer)lua_rawlen(L, 1);
        for (lua_Integer i = 1; i <= len; i++) {
            lua_rawgeti(L, 1, i); /* [list, decl] */
            lua_getfield(L, 2, "name");
            if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), c->name) == 0) {
                lua_getfield(L, 2, "line");
                c->line = (int)lua_tointeger(L, -1);
                lua_settop(L, 2);
                int64_t range = c->opts->range_ns > 0 ? c->opts->range_ns
                                                      : 24 * 3600 * TE_NS_PER_SEC;
                te_lua_q_opts_t qo = {.st = c->opts->st,
                                      .now_ns = c->opts->now_ns,
                                      .since_ns = c->opts->now_ns - range,
                                      .until_ns = c->opts->now_ns};
                te_lua_push_q(L, &qo);      /* [list, decl, q] */
                lua_getfield(L, 2, "fn");   /* [list, decl, q, fn] */
                lua_pushvalue(L, 3);        /* [list, decl, q, fn, q] */
                lua_remove(L, 1);
                lua_remove(L, 1);           /* [q, fn, q] */
                return 3;
            }
            lua_settop(L, 1);
        }
    }
    lua_pushfstring(L, "no recommender \"%s\"", c->name);
    return lua_error(L);
}

/* Raises "FILE:LINE: te.recommend "NAME": finding #i: <fmt...>" (i 0: no
 * finding part). Never returns. */
static int bad(lua_State *L, const run_ctx_t *c, int i, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int bad(lua_State *L, const run_ctx_t *c, int i, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (i > 0)
        return luaL_error(L, "%s:%d: te.recommend \"%s\": finding #%d: %s", c->path, c->line,
                          c->name, i, what);
    return luaL_error(L, "%s:%d: te.recommend \"%s\": %s", c->path, c->line, c->name, what);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Lua value at idx -> a new cJSON (raises on what JSON cannot hold; path
 * names the place, "evidence.calls[2]"). Memory failure -> NULL. */
static cJSON *to_json(lua_State *L, const run_ctx_t *c, int fi, int idx, const char *path,
                      int depth)
{
    idx = lua_absindex(L, idx);
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        return cJSON_CreateNull();
    case LUA_TBOOLEAN:
        return cJSON_CreateBool(lua_toboolean(L, idx));
    case LUA_TNUMBER: {
        double d = lua_isinteger(L, idx) ? (double)lua_tointeger(L, idx) : lua_tonumber(L, idx);
        return isfinite(d) ? cJSON_CreateNumber(d) : cJSON_CreateNull();
    }
    case LUA_TSTRING:
        return cJSON_CreateString(lua_tostring(L, idx));
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) /* te.null */
            return cJSON_CreateNull();
        break;
    case LUA_TTABLE: {
        if (depth >= EVIDENCE_MAX_DEPTH)
            bad(L, c, fi, "%s: nested deeper than 16 levels", path);
        if (!lua_checkstack(L, 4))
            return NULL;
        char sub[256];
        bool is_array = false;
        if (luaL_getmetafield(L, idx, "__name") == LUA_TSTRING) {
            is_array = strcmp(lua_tostring(L, -1), "te.Array") == 0;
            lua_pop(L, 1);
        }
        size_t len = (size_t)lua_rawlen(L, idx), count = 0;
        bool only_seq = true;
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            count++;
            if (!lua_isinteger(L, -2) || lua_tointeger(L, -2) < 1 ||
                (size_t)lua_tointeger(L, -2) > len)
                only_seq = false;
            lua_pop(L, 1);
        }
        if (is_array || (count > 0 && only_seq && count == len)) {
            cJSON *a = cJSON_CreateArray();
            for (size_t i = 0; a && i < len; i++) {
                snprintf(sub, sizeof(sub), "%s[%zu]", path, i + 1);
                lua_rawgeti(L, idx, (lua_Integer)i + 1);
                cJSON *item = to_json(L, c, fi, -1, sub, depth + 1);
                lua_pop(L, 1);
                if (!item) {
                    cJSON_Delete(a);
                    return NULL;
                }
                cJSON_AddItemToArray(a, item);
            }
            return a;
        }
        /* an object: string keys, sorted */
        const char **keys = count ? calloc(count, sizeof(*keys)) : NULL;
        if (count && !keys)
            return NULL;
        size_t k = 0;
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            lua_pop(L, 1);
            if (lua_type(L, -1) != LUA_TSTRING) {
                free(keys);
                bad(L, c, fi, "%s: keys must be strings (or write a list)", path);
            }
            keys[k++] = lua_tostring(L, -1); /* the key stays in the table: pinned */
        }
        qsort(keys, k, sizeof(*keys), cmp_str);
        cJSON *o = cJSON_CreateObject();
        for (size_t i = 0; o && i < k; i++) {
            snprintf(sub, sizeof(sub), "%s.%s", path, keys[i]);
            lua_getfield(L, idx, keys[i]);
            cJSON *item = to_json(L, c, fi, -1, sub, depth + 1);
            lua_pop(L, 1);
            if (!item) {
                cJSON_Delete(o);
                o = NULL;
                break;
            }
            cJSON_AddItemToObject(o, keys[i], item);
        }
        free(keys);
        return o;
    }
    default:
        break;
    }
    bad(L, c, fi, "%s: a %s cannot be stored (use strings, numbers, booleans and tables)", path,
        luaL_typename(L, idx));
    return NULL;
}

static const char *const finding_keys[] = {"severity", "title", "detail", "action",
                                           "evidence", "key", NULL};

static void check_finding_keys(lua_State *L, const run_ctx_t *c, int fi, int idx)
{
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            bad(L, c, fi, "unexpected value without a name (write key = value)");
        const char *key = lua_tostring(L, -1);
        const char *near = NULL;
        size_t bestd = 3;
        const char *const *k = finding_keys;
        for (; *k && strcmp(*k, key) != 0; k++) {
            size_t d = te_edit_distance(key, *k);
            if (d < bestd) {
                bestd = d;
                near = *k;
            }
        }
        if (!*k) {
            if (near)
                bad(L, c, fi, "unknown key \"%s\" (did you mean \"%s\"?)", key, near);
            bad(L, c, fi, "unknown key \"%s\"", key);
        }
    }
}

/* Copies finding field key (a string) into a new malloc'd string in *slot. */
static void text_field(lua_State *L, const run_ctx_t *c, int fi, int idx, const char *key,
                       bool required, char **slot)
{
    int t = lua_getfield(L, idx, key);
    if (t == LUA_TNIL) {
        lua_pop(L, 1);
        if (required)
            bad(L, c, fi, "\"%s\" is required", key);
        return;
    }
    if (t != LUA_TSTRING && t != LUA_TNUMBER)
        bad(L, c, fi, "\"%s\" must be a string, got %s", key, luaL_typename(L, -1));
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    if (required && len == 0)
        bad(L, c, fi, "\"%s\" must not be empty", key);
    if (len > TE_RECOMMEND_MAX_TEXT) {
        char lim[32];
        snprintf(lim, sizeof(lim), "%d", TE_RECOMMEND_MAX_TEXT);
        bad(L, c, fi, "\"%s\" is longer than %s bytes", key, lim);
    }
    if (!(*slot = malloc(len + 1)))
        luaL_error(L, "out of memory");
    memcpy(*slot, s, len + 1);
    lua_pop(L, 1);
}

/* [q, result] -> findings in c->v (stack left as found). */
static int convert(lua_State *L)
{
    run_ctx_t *c = lua_touserdata(L, 1);
    int res = 2; /* [ctx, result] */
    if (lua_isnil(L, res))
        return 0;
    if (!lua_istable(L, res))
        bad(L, c, 0, "fn must return a list of findings, got %s", luaL_typename(L, res));
    size_t len = (size_t)lua_rawlen(L, res), count = 0;
    lua_pushnil(L);
    while (lua_next(L, res)) {
        count++;
        lua_pop(L, 1);
    }
    if (count != len)
        bad(L, c, 0, "fn must return a list of findings ({ {severity = ..., title = ...}, ... })"
                     "");
    if (len > TE_RECOMMEND_MAX_FINDINGS) {
        char lim[32];
        snprintf(lim, sizeof(lim), "%d", TE_RECOMMEND_MAX_FINDINGS);
        bad(L, c, 0, "more than %s findings in one run", lim);
    }
    if (len == 0)
        return 0;
    if (!(c->v = calloc(len, sizeof(*c->v))))
        return luaL_error(L, "out of memory");
    for (size_t i = 0; i < len; i++) {
        int fi = (int)i + 1;
        lua_rawgeti(L, res, (lua_Integer)fi);
        int f = lua_gettop(L);
        if (!lua_istable(L, f))
            bad(L, c, fi, "must be a table {severity = ..., title = ...}, got %s",
                luaL_typename(L, f));
        check_finding_keys(L, c, fi, f);
        te_rec_t *r = &c->v[c->n++];
        if (!(r->name = malloc(strlen(c->name) + 1)))
            return luaL_error(L, "out of memory");
        memcpy(r->name, c->name, strlen(c->name) + 1);
        /* severity */
        int t = lua_getfield(L, f, "severity");
        if (t == LUA_TNIL)
            bad(L, c, fi, "\"severity\" is required (\"info\", \"warning\" or \"critical\")");
        const char *sev = t == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        if (!sev || (strcmp(sev, "info") != 0 && strcmp(sev, "warning") != 0 &&
                     strcmp(sev, "critical") != 0)) {
            char got[160];
            if (sev)
                snprintf(got, sizeof(got), "\"%.120s\"", sev);
            else
                snprintf(got, sizeof(got), "%s", luaL_typename(L, -1));
            bad(L, c, fi, "\"severity\" must be \"info\", \"warning\" or \"critical\", got %s",
                got);
        }
        snprintf(r->severity, sizeof(r->severity), "%s", sev);
        lua_pop(L, 1);
        text_field(L, c, fi, f, "title", true, &r->title);
        text_field(L, c, fi, f, "detail", false, &r->detail);
        text_field(L, c, fi, f, "action", false, &r->action);
        char *key = NULL;
        text_field(L, c, fi, f, "key", false, &key);
        te_rec_fingerprint(c->name, key ? key : r->title, r->fingerprint);
        free(key);
        if (lua_getfield(L, f, "evidence") != LUA_TNIL) {
            cJSON *j = to_json(L, c, fi, -1, "evidence", 0);
            if (!j)
                return luaL_error(L, "out of memory");
            /* cJSON allocates with malloc (no hooks are installed), and
             * te_rec_clear frees with free() */
            r->evidence_json = cJSON_PrintUnformatted(j);
            cJSON_Delete(j);
            if (!r->evidence_json)
                return luaL_error(L, "out of memory");
            if (strlen(r->evidence_json) > TE_RECOMMEND_MAX_EVIDENCE) {
                char lim[32];
                snprintf(lim, sizeof(lim), "%d", TE_RECOMMEND_MAX_EVIDENCE);
                bad(L, c, fi, "\"evidence\" is longer than %s bytes as JSON", lim);
            }
        }
        lua_settop(L, res);
    }
    return 0;
}

void te_recommend_findings_free(te_rec_t *v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        te_rec_clear(&v[i]);
    free(v);
}

int te_recommend_run(te_script_t *s, const char *name, const te_recommend_run_opts_t *opts,
                     te_rec_t **out, size_t *n, te_err_t *err)
{
    run_ctx_t c = {.name = name, .opts = opts, .path = s->path};
    lua_State *L = s->L;
    int top = lua_gettop(L), rc = 0;
    *out = NULL;
    *n = 0;
    if (s->status == TE_SCRIPT_DISABLED)
        return te_err_set(err, TE_ESCRIPT, "%s", s->error);
    if (!lua_checkstack(L, 8))
        return te_err_set(err, TE_ENOMEM, "%s: out of memory", s->path);

    lua_pushcfunction(L, prepare);
    lua_pushlightuserdata(L, &c);
    if (lua_pcall(L, 1, 3, 0) != LUA_OK) { /* [q, fn, q] */
        const char *m = lua_tostring(L, -1);
        bool missing = m && strncmp(m, "no recommender", 14) == 0;
        rc = te_err_set(err, missing ? TE_ENOTFOUND : TE_ENOMEM, "%s: %s", s->path,
                        m ? m : "out of memory");
        goto done;
    }
    int q = top + 1;
    if (te_script_pcall(s, 1, 1) != LUA_OK) { /* [q, result] | [q, msg] */
        const char *m = lua_tostring(L, -1);
        const char *tb = m ? strstr(m, "\nstack traceback:") : NULL;
        int len = tb ? (int)(tb - m) : (int)strlen(m ? m : "");
        rc = te_err_set(err, TE_ESCRIPT, "%.*s", len, m ? m : "");
        if (!m)
            te_err_set(err, TE_ESCRIPT, "%s: error object is not a string", s->path);
        goto expire;
    }
    lua_pushcfunction(L, convert); /* [q, result, convert] */
    lua_insert(L, -2);             /* [q, convert, result] */
    lua_pushlightuserdata(L, &c);
    lua_insert(L, -2);             /* [q, convert, ctx, result] */
    if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
        const char *m = lua_tostring(L, -1);
        rc = te_err_set(err, m && strcmp(m, "out of memory") == 0 ? TE_ENOMEM : TE_ESCRIPT,
                        "%s", m ? m : "out of memory");
        te_recommend_findings_free(c.v, c.n);
        c.v = NULL;
        c.n = 0;
    }
expire:
    te_lua_q_expire(L, q);
done:
    lua_settop(L, top);
    if (rc == 0) {
        *out = c.v;
        *n = c.n;
    }
    return rc;
}
