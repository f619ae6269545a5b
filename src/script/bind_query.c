/*
 * bind_query.c - the read-only `q` object of reports and recommendations
 * (see bind_query.h for the Lua API).
 *
 * THREAD: the thread owning the lua_State and, while q lives, the store.
 *
 * The one idea: Lua errors longjmp, so nothing malloc'd may be held on
 * the C stack when a binding raises. Each call first checks its whole
 * argument table (raising freely), then allocates a "te.QScratch" userdata
 * whose __gc frees whatever C memory the call collects (parsed aggregates,
 * the result table, copied events, cJSON rows). The store callbacks never
 * touch Lua: they copy into the scratch, and only once SQLite is done are
 * the rows pushed, so a memory error while pushing cannot skip a
 * statement reset.
 */
#include "bind_query.h"

#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "core/result.h"
#include "core/suggest.h"
#include "core/time.h"
#include "luaopen_te.h"
#include "rules/alert.h"
#include "store/alerts.h"
#include "store/query_cache.h"
#include "store/store.h"

#define TE_Q_MT "te.Q"
#define TE_QSCRATCH_MT "te.QScratch"
#define MAX_WHERE 32
#define MAX_WHERE_VALUES 256
#define MAX_GROUP 32
#define MAX_AGGS 64
#define MAX_EVENTS 10000

typedef struct q_box {
    te_store_t *st; /* NULL once expired */
    int64_t now_ns, since_ns, until_ns;
    void (*progress)(void *ud, const char *what);
    void *progress_ud;
    sqlite3 *rec;   /* read-only connection for q.recommendations, lazily opened */
    te_qcache_t *cache; /* what q.query read, for the next q.query (lazily made) */
    int reads;
    bool owns_st;   /* te.report_q: the box closes st */
} q_box;

typedef struct scratch {
    te_agg_t *aggs;
    size_t naggs;
    te_result_t *res;
    te_event_t **evs;
    size_t nevs, cap_evs;
    cJSON *rows;    /* a cJSON array */
} scratch_t;

/* t[k] without metamethods: user tables cannot run code (or raise) while
 * C memory is held, and what is checked is what is converted. */
static int rawfield(lua_State *L, int idx, const char *k)
{
    idx = lua_absindex(L, idx);
    lua_pushstring(L, k);
    return lua_rawget(L, idx);
}

/* ---------- boxes ---------- */

static int scratch_gc(lua_State *L)
{
    scratch_t *s = luaL_checkudata(L, 1, TE_QSCRATCH_MT);
    if (s->aggs)
        te_aggs_free(s->aggs, s->naggs);
    te_result_free(s->res);
    for (size_t i = 0; i < s->nevs; i++)
        te_event_free(s->evs[i]);
    free(s->evs);
    cJSON_Delete(s->rows);
    memset(s, 0, sizeof(*s));
    return 0;
}

static scratch_t *new_scratch(lua_State *L)
{
    scratch_t *s = lua_newuserdatauv(L, sizeof(*s), 0);
    memset(s, 0, sizeof(*s));
    if (luaL_newmetatable(L, TE_QSCRATCH_MT)) {
        lua_pushcfunction(L, scratch_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return s;
}

static void close_rec(q_box *b)
{
    if (b->rec) {
        sqlite3_close(b->rec);
        b->rec = NULL;
    }
}

static void release(q_box *b)
{
    close_rec(b);
    te_qcache_free(b->cache);
    b->cache = NULL;
    if (b->owns_st)
        te_store_close(b->st);
    b->owns_st = false;
    b->st = NULL;
}

static int qbox_gc(lua_State *L)
{
    release(luaL_checkudata(L, 1, TE_Q_MT));
    return 0;
}

static q_box *check_box(lua_State *L, const char *fn)
{
    q_box *b = lua_touserdata(L, lua_upvalueindex(1));
    if (!b || !b->st)
        te_lua_raise(L, "%s: q used after its report finished (keep results, not q)", fn);
    return b;
}

static void note_read(q_box *b, const char *fn, const char *what)
{
    char line[160];
    b->reads++;
    if (b->progress) {
        snprintf(line, sizeof(line), "%s %s", fn, what ? what : "");
        b->progress(b->progress_ud, line);
    }
}

/* ---------- argument checks ---------- */

static void check_args(lua_State *L, const char *fn, const char *const *keys)
{
    if (lua_isnoneornil(L, 1)) {
        lua_settop(L, 0);
        lua_newtable(L);
    }
    if (!lua_istable(L, 1))
        te_lua_arg_type_error(L, 1, fn, "table");
    lua_settop(L, 1);
    lua_pushnil(L);
    while (lua_next(L, 1)) { /* [args, k, v] */
        if (lua_type(L, -2) != LUA_TSTRING)
            te_lua_raise(L, "%s: unexpected value without a name (write key = value)", fn);
        const char *key = lua_tostring(L, -2);
        const char *best = NULL;
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

/* args[key] as a time: a duration back from now, RFC 3339, or seconds. */
static int64_t time_arg(lua_State *L, const char *fn, const char *key, int64_t now_ns,
                        int64_t dflt)
{
    te_err_t err = {0};
    int64_t ns = dflt;
    int t = rawfield(L, 1, key);
    if (t == LUA_TNUMBER) {
        double s = lua_tonumber(L, -1);
        if (!isfinite(s) || fabs(s) > 9.0e9)
            te_lua_raise(L, "%s: \"%s\" is out of range", fn, key);
        ns = (int64_t)(s * 1e9);
    } else if (t == LUA_TSTRING) {
        if (te_time_parse_since(lua_tostring(L, -1), now_ns, &ns, &err) < 0)
            te_lua_raise(L,
                         "%s: \"%s\": bad time \"%s\" (use a duration such as 7d, an RFC 3339 "
                         "time or Unix seconds)",
                         fn, key, lua_tostring(L, -1));
    } else if (t != LUA_TNIL) {
        te_lua_raise(L, "%s: \"%s\" must be a duration, a time or seconds, got %s", fn, key,
                     luaL_typename(L, -1));
    }
    lua_pop(L, 1);
    return ns;
}

static void range_args(lua_State *L, const char *fn, const q_box *b, int64_t *since,
                       int64_t *until)
{
    *since = time_arg(L, fn, "since", b->now_ns, b->since_ns);
    *until = time_arg(L, fn, "until", b->now_ns, b->until_ns);
    if (*until <= *since)
        te_lua_raise(L, "%s: \"until\" must be after \"since\"", fn);
}

static const char *opt_string(lua_State *L, const char *fn, const char *key, bool required)
{
    int t = rawfield(L, 1, key);
    const char *s = NULL;
    if (t == LUA_TSTRING)
        s = lua_tostring(L, -1); /* kept alive by args */
    else if (t != LUA_TNIL || required)
        te_lua_raise(L, "%s: \"%s\" must be a string, got %s", fn, key, luaL_typename(L, -1));
    lua_pop(L, 1);
    return s;
}

static lua_Integer opt_int(lua_State *L, const char *fn, const char *key, lua_Integer dflt,
                           lua_Integer min, lua_Integer max)
{
    int t = rawfield(L, 1, key);
    lua_Integer v = dflt;
    if (t != LUA_TNIL) {
        if (!lua_isinteger(L, -1))
            te_lua_raise(L, "%s: \"%s\" must be an integer, got %s", fn, key,
                         luaL_typename(L, -1));
        v = lua_tointeger(L, -1);
        if (v < min || v > max)
            te_lua_raise(L, "%s: \"%s\" must be from %lld to %lld, got %lld", fn, key,
                         (long long)min, (long long)max, (long long)v);
    }
    lua_pop(L, 1);
    return v;
}

static const char *opt_kind(lua_State *L, const char *fn, bool required)
{
    const char *k = opt_string(L, fn, "kind", required);
    if (k && !te_kind_valid(k, strlen(k)))
        te_lua_raise(L, "%s: \"kind\" must match [a-z][a-z0-9_.-]{0,63}, got \"%s\"", fn, k);
    return k;
}

/* where = { tag = "v" | { "v1", "v2" } } into filters living in a userdata
 * (pointers to Lua strings kept alive by the args table). */
typedef struct where_buf {
    te_tag_filter_t f[MAX_WHERE];
    const char *vals[MAX_WHERE_VALUES];
    size_t n;
} where_buf;

static where_buf *where_arg(lua_State *L, const char *fn)
{
    where_buf *w = lua_newuserdatauv(L, sizeof(*w), 0); /* [args, .., w] */
    int widx = lua_gettop(L);
    memset(w, 0, sizeof(*w));
    int t = rawfield(L, 1, "where");
    if (t == LUA_TNIL) {
        lua_pop(L, 1);
        return w;
    }
    if (t != LUA_TTABLE)
        te_lua_raise(L, "%s: \"where\" must be a table of tag = value, got %s", fn,
                     luaL_typename(L, -1));
    size_t nv = 0;
    lua_pushnil(L);
    while (lua_next(L, -2)) { /* [.., where, k, v] */
        if (lua_type(L, -2) != LUA_TSTRING)
            te_lua_raise(L, "%s: \"where\" keys must be tag names", fn);
        if (w->n == MAX_WHERE)
            te_lua_raise(L, "%s: \"where\" has more than %d tags", fn, MAX_WHERE);
        te_tag_filter_t *f = &w->f[w->n++];
        f->key = lua_tostring(L, -2);
        f->values = &w->vals[nv];
        if (lua_type(L, -1) == LUA_TSTRING) {
            if (nv == MAX_WHERE_VALUES)
                te_lua_raise(L, "%s: \"where\" has too many values", fn);
            w->vals[nv++] = lua_tostring(L, -1);
        } else if (lua_istable(L, -1)) {
            lua_Integer len = (lua_Integer)lua_rawlen(L, -1);
            if (len == 0)
                te_lua_raise(L, "%s: where.%s is an empty list", fn, f->key);
            for (lua_Integer i = 1; i <= len; i++) {
                if (lua_rawgeti(L, -1, i) != LUA_TSTRING)
                    te_lua_raise(L, "%s: where.%s[%d] must be a string", fn, f->key, (int)i);
                if (nv == MAX_WHERE_VALUES)
                    te_lua_raise(L, "%s: \"where\" has too many values", fn);
                w->vals[nv++] = lua_tostring(L, -1);
                lua_pop(L, 1);
            }
        } else {
            te_lua_raise(L, "%s: where.%s must be a string or a list of strings, got %s", fn,
                         f->key, luaL_typename(L, -1));
        }
        f->nvalues = (size_t)(&w->vals[nv] - f->values);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    lua_settop(L, widx);
    return w;
}

/* ---------- pushing results ---------- */

static void push_cjson(lua_State *L, const cJSON *j, int depth);

static void push_rfc3339(lua_State *L, int64_t ns)
{
    char ts[40];
    size_t n = te_time_format_rfc3339(ns, ts, sizeof(ts));
    lua_pushlstring(L, ts, n);
}

static void push_number(lua_State *L, double v)
{
    if (v == floor(v) && fabs(v) < 9007199254740992.0)
        lua_pushinteger(L, (lua_Integer)v);
    else
        lua_pushnumber(L, v);
}

static void push_cjson(lua_State *L, const cJSON *j, int depth)
{
    luaL_checkstack(L, 4, "q: result too deep");
    if (depth > 64 || cJSON_IsNull(j) || !j) {
        lua_pushnil(L);
    } else if (cJSON_IsBool(j)) {
        lua_pushboolean(L, cJSON_IsTrue(j));
    } else if (cJSON_IsNumber(j)) {
        push_number(L, j->valuedouble);
    } else if (cJSON_IsString(j)) {
        lua_pushstring(L, j->valuestring);
    } else if (cJSON_IsArray(j)) {
        lua_createtable(L, cJSON_GetArraySize(j), 0);
        lua_Integer i = 1;
        const cJSON *c;
        cJSON_ArrayForEach(c, j) {
            push_cjson(L, c, depth + 1);
            lua_rawseti(L, -2, i++);
        }
    } else if (cJSON_IsObject(j)) {
        lua_createtable(L, 0, cJSON_GetArraySize(j));
        const cJSON *c;
        cJSON_ArrayForEach(c, j) {
            if (cJSON_IsNull(c) || !c->string)
                continue;
            push_cjson(L, c, depth + 1);
            lua_setfield(L, -2, c->string);
        }
    } else {
        lua_pushnil(L);
    }
}

static void push_val(lua_State *L, const te_val_t *v)
{
    switch (v->type) {
    case TE_VAL_STR: lua_pushstring(L, v->u.s); break;
    case TE_VAL_INT: lua_pushinteger(L, (lua_Integer)v->u.i); break;
    case TE_VAL_NUM:
        if (isfinite(v->u.num))
            lua_pushnumber(L, v->u.num);
        else
            lua_pushnil(L);
        break;
    default: lua_pushnil(L); break;
    }
}

/* ---------- q.query ---------- */

static const char *const query_keys[] = {"kind",  "since", "until", "where",
                                         "group_by", "every", "aggs", NULL};

static bool agg_name_ok(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == ':' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

static int l_query(lua_State *L)
{
    const char *fn = "q.query";
    q_box *b = check_box(L, fn);
    check_args(L, fn, query_keys); /* [args] */
    const char *kind = opt_kind(L, fn, true);
    int64_t since, until, every = 0;
    range_args(L, fn, b, &since, &until);
    int t = rawfield(L, 1, "every");
    if (t == LUA_TSTRING) {
        te_err_t err = {0};
        if (te_duration_parse(lua_tostring(L, -1), &every, &err) < 0 || every <= 0)
            te_lua_raise(L, "%s: \"every\": bad duration \"%s\" (use 1m, 1h, 1d)", fn,
                         lua_tostring(L, -1));
    } else if (t != LUA_TNIL) {
        te_lua_raise(L, "%s: \"every\" must be a duration like \"1h\", got %s", fn,
                     luaL_typename(L, -1));
    }
    lua_pop(L, 1);
    where_buf *w = where_arg(L, fn); /* [args, w] */
    /* group_by: a list of tag names or one name */
    const char *group[MAX_GROUP];
    size_t ngroup = 0;
    t = rawfield(L, 1, "group_by"); /* [args, w, gb] */
    if (t == LUA_TSTRING) {
        group[ngroup++] = lua_tostring(L, -1);
    } else if (t == LUA_TTABLE) {
        lua_Integer len = (lua_Integer)lua_rawlen(L, -1);
        for (lua_Integer i = 1; i <= len; i++) {
            if (lua_rawgeti(L, -1, i) != LUA_TSTRING || lua_rawlen(L, -1) == 0)
                te_lua_raise(L, "%s: group_by[%d] must be a tag name", fn, (int)i);
            if (ngroup == MAX_GROUP)
                te_lua_raise(L, "%s: \"group_by\" has more than %d tags", fn, MAX_GROUP);
            group[ngroup++] = lua_tostring(L, -1);
            lua_pop(L, 1);
        }
    } else if (t != LUA_TNIL) {
        te_lua_raise(L, "%s: \"group_by\" must be a list of tag names, got %s", fn,
                     luaL_typename(L, -1));
    }
    /* aggs: name -> spec; checked before anything is allocated */
    const char *names[MAX_AGGS], *specs[MAX_AGGS];
    size_t naggs = 0;
    t = rawfield(L, 1, "aggs"); /* [args, w, gb, aggs] */
    if (t == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            if (lua_type(L, -2) != LUA_TSTRING || !agg_name_ok(lua_tostring(L, -2)))
                te_lua_raise(L, "%s: aggs keys must be names like cost or p95 (got %s)", fn,
                             lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2)
                                                             : luaL_typename(L, -2));
            if (lua_type(L, -1) != LUA_TSTRING)
                te_lua_raise(L, "%s: aggs.%s must be a string like \"sum:cost_usd\", got %s", fn,
                             lua_tostring(L, -2), luaL_typename(L, -1));
            if (strchr(lua_tostring(L, -1), ','))
                te_lua_raise(L, "%s: aggs.%s must be one aggregate, got \"%s\"", fn,
                             lua_tostring(L, -2), lua_tostring(L, -1));
            if (naggs == MAX_AGGS)
                te_lua_raise(L, "%s: more than %d aggs", fn, MAX_AGGS);
            names[naggs] = lua_tostring(L, -2);
            specs[naggs++] = lua_tostring(L, -1);
            lua_pop(L, 1);
        }
    } else if (t != LUA_TNIL) {
        te_lua_raise(L, "%s: \"aggs\" must be a table of name = \"count\" | \"sum:F\" ..., got %s",
                     fn, luaL_typename(L, -1));
    }
    if (naggs == 0) {
        names[0] = "count";
        specs[0] = "count";
        naggs = 1;
    }
    /* sorted by name: lua_next order depends on the state's hash seed */
    for (size_t i = 1; i < naggs; i++) {
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            const char *tn = names[j], *ts = specs[j];
            names[j] = names[j - 1];
            specs[j] = specs[j - 1];
            names[j - 1] = tn;
            specs[j - 1] = ts;
        }
    }
    scratch_t *s = new_scratch(L); /* [args, w, gb, aggs, scratch] */
    s->aggs = calloc(naggs, sizeof(*s->aggs));
    if (!s->aggs)
        return te_lua_raise(L, "%s: out of memory", fn);
    te_err_t err = {0};
    for (size_t i = 0; i < naggs; i++) {
        te_agg_t *one = NULL;
        size_t n1 = 0;
        if (te_aggs_parse(specs[i], &one, &n1, &err) < 0)
            return te_lua_raise(L, "%s: aggs.%s: %s", fn, names[i], err.msg);
        s->aggs[i] = one[0];
        free(one); /* the strings moved into s->aggs[i] */
        s->naggs = i + 1;
        free(s->aggs[i].name);
        s->aggs[i].name = strdup(names[i]);
        if (!s->aggs[i].name)
            return te_lua_raise(L, "%s: out of memory", fn);
    }
    te_query_t q = {.kind = kind,
                    .since_ns = since,
                    .until_ns = until,
                    .where = w->f,
                    .nwhere = w->n,
                    .group_by = group,
                    .ngroup = ngroup,
                    .aggs = s->aggs,
                    .naggs = s->naggs,
                    .every_ns = every};
    note_read(b, fn, kind);
    /* the questions of one report share their reads (store/query_cache.h);
     * without a cache (no memory) every query reads for itself */
    if (!b->cache)
        b->cache = te_qcache_new(TE_QCACHE_DEFAULT_BYTES);
    if (te_store_query_cached(b->st, &q, b->cache, &s->res, &err) < 0)
        return te_lua_raise(L, "%s: %s", fn, err.msg);
    const te_result_t *r = s->res;
    lua_createtable(L, (int)r->nrows, 0); /* [.., scratch, rows] */
    for (size_t i = 0; i < r->nrows; i++) {
        lua_createtable(L, 0, (int)r->ncols + 1);
        for (size_t c = 0; c < r->ncols; c++) {
            const te_val_t *v = &r->cells[i * r->ncols + c];
            push_val(L, v);
            lua_setfield(L, -2, r->columns[c]);
            if (every && strcmp(r->columns[c], "time") == 0 && v->type == TE_VAL_STR) {
                int64_t ns = 0;
                if (te_time_parse_rfc3339(v->u.s, strlen(v->u.s), &ns, NULL) == 0) {
                    lua_pushinteger(L, (lua_Integer)(ns / TE_NS_PER_SEC));
                    lua_setfield(L, -2, "t");
                }
            }
        }
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

/* ---------- q.events ---------- */

static const char *const events_keys[] = {"kind", "since", "until", "where", "limit", NULL};

static int copy_event(const te_event_t *ev, void *ud)
{
    scratch_t *s = ud;
    if (s->nevs == s->cap_evs) {
        size_t cap = s->cap_evs ? s->cap_evs * 2 : 64;
        te_event_t **p = realloc(s->evs, cap * sizeof(*p));
        if (!p)
            return TE_ENOMEM;
        s->evs = p;
        s->cap_evs = cap;
    }
    te_event_t *copy = NULL;
    if (te_event_build(ev->ts_ns, ev->kind, ev->source, ev->id, ev->trace_id, ev->span_id,
                       ev->parent_span_id, ev->correlation_id, ev->tags_json, ev->tags_json_len,
                       ev->fields_blob, ev->fields_blob_len, NULL, 0, &copy, NULL) < 0)
        return TE_ENOMEM;
    s->evs[s->nevs++] = copy;
    return 0;
}

static void set_opt_str(lua_State *L, const char *key, const char *v)
{
    if (v) {
        lua_pushstring(L, v);
        lua_setfield(L, -2, key);
    }
}

static int l_events(lua_State *L)
{
    const char *fn = "q.events";
    q_box *b = check_box(L, fn);
    check_args(L, fn, events_keys);
    const char *kind = opt_kind(L, fn, false);
    int64_t since, until;
    range_args(L, fn, b, &since, &until);
    size_t limit = (size_t)opt_int(L, fn, "limit", 100, 1, MAX_EVENTS);
    where_buf *w = where_arg(L, fn);
    scratch_t *s = new_scratch(L);
    char cursor[2][128];
    const char *cur = NULL;
    te_err_t err = {0};
    note_read(b, fn, kind ? kind : "all kinds");
    for (int page = 0; s->nevs < limit; page ^= 1) {
        size_t want = limit - s->nevs;
        te_events_query_t eq = {.kind = kind,
                                .since_ns = since,
                                .until_ns = until,
                                .where = w->f,
                                .nwhere = w->n,
                                .limit = want > 1000 ? 1000 : want,
                                .cursor = cur};
        cursor[page][0] = '\0';
        int rc = te_store_events(b->st, &eq, copy_event, s, cursor[page], sizeof(cursor[page]),
                                 &err);
        if (rc < 0)
            return te_lua_raise(L, "%s: %s", fn,
                                rc == TE_ENOMEM && !err.msg[0] ? "out of memory" : err.msg);
        if (!cursor[page][0])
            break;
        cur = cursor[page];
    }
    lua_createtable(L, (int)s->nevs, 0);
    for (size_t i = 0; i < s->nevs; i++) {
        const te_event_t *ev = s->evs[i];
        lua_createtable(L, 0, 12);
        push_rfc3339(L, ev->ts_ns);
        lua_setfield(L, -2, "ts");
        lua_pushnumber(L, (lua_Number)ev->ts_ns / 1e9);
        lua_setfield(L, -2, "t");
        set_opt_str(L, "kind", ev->kind);
        set_opt_str(L, "source", ev->source);
        set_opt_str(L, "id", ev->id);
        set_opt_str(L, "trace_id", ev->trace_id);
        set_opt_str(L, "span_id", ev->span_id);
        set_opt_str(L, "parent_span_id", ev->parent_span_id);
        set_opt_str(L, "correlation_id", ev->correlation_id);
        lua_createtable(L, 0, (int)ev->ntags);
        for (size_t k = 0; k < ev->ntags; k++) {
            lua_pushstring(L, ev->tags[k].value);
            lua_setfield(L, -2, ev->tags[k].key);
        }
        lua_setfield(L, -2, "tags");
        lua_createtable(L, 0, (int)ev->nfields);
        for (size_t k = 0; k < ev->nfields; k++) {
            lua_pushnumber(L, ev->fields[k].value);
            lua_setfield(L, -2, ev->fields[k].key);
        }
        lua_setfield(L, -2, "fields");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

/* ---------- q.alerts ---------- */

static const char *const alerts_keys[] = {"state", "since", "until", "rule", "limit", NULL};

/* Adds KEY_s (seconds) next to every RFC 3339 member KEY ending in "_at". */
static bool add_seconds(cJSON *o)
{
    cJSON *c;
    cJSON *extra = cJSON_CreateObject();
    if (!extra)
        return false;
    cJSON_ArrayForEach(c, o) {
        size_t kl = c->string ? strlen(c->string) : 0;
        int64_t ns;
        if (kl < 4 || strcmp(c->string + kl - 3, "_at") != 0 || !cJSON_IsString(c) ||
            te_time_parse_rfc3339(c->valuestring, strlen(c->valuestring), &ns, NULL) < 0)
            continue;
        char key[64];
        snprintf(key, sizeof(key), "%s_s", c->string);
        if (!cJSON_AddNumberToObject(extra, key, (double)ns / 1e9)) {
            cJSON_Delete(extra);
            return false;
        }
    }
    while (extra->child) {
        cJSON *it = cJSON_DetachItemViaPointer(extra, extra->child);
        cJSON_AddItemToObject(o, it->string, it);
    }
    cJSON_Delete(extra);
    return true;
}

typedef struct alerts_ctx {
    scratch_t *s;
    int64_t since, until;
    const char *rule;
    size_t limit, n;
} alerts_ctx;

static int collect_alert(void *ud, const te_alert_t *a)
{
    alerts_ctx *c = ud;
    int64_t end = a->ends_at_ns ? a->ends_at_ns : INT64_MAX;
    int64_t start = a->active_at_ns ? a->active_at_ns : a->starts_at_ns;
    if (start >= c->until || end < c->since)
        return 0;
    if (c->rule && (!a->rule || strcmp(a->rule, c->rule) != 0))
        return 0;
    cJSON *o = te_alert_to_cjson(a);
    if (!o || !add_seconds(o)) {
        cJSON_Delete(o);
        return TE_ENOMEM;
    }
    cJSON_AddItemToArray(c->s->rows, o);
    return ++c->n >= c->limit ? 1 : 0;
}

static int l_alerts(lua_State *L)
{
    const char *fn = "q.alerts";
    q_box *b = check_box(L, fn);
    check_args(L, fn, alerts_keys);
    const char *state = opt_string(L, fn, "state", false);
    te_err_t err = {0};
    if (state && te_store_alerts_state_check(state, &err) < 0)
        return te_lua_raise(L, "%s: %s", fn, err.msg);
    const char *rule = opt_string(L, fn, "rule", false);
    alerts_ctx c = {.rule = rule};
    range_args(L, fn, b, &c.since, &c.until);
    c.limit = (size_t)opt_int(L, fn, "limit", 1000, 1, 100000);
    c.s = new_scratch(L);
    if (!(c.s->rows = cJSON_CreateArray()))
        return te_lua_raise(L, "%s: out of memory", fn);
    note_read(b, fn, state);
    int rc = te_store_alerts_list(b->st, state, 0, collect_alert, &c, &err);
    if (rc < 0 && rc != TE_ESQLITE)
        return te_lua_raise(L, "%s: %s", fn, err.msg[0] ? err.msg : te_strerror(rc));
    /* a database without alert tables (never served) has no alerts */
    push_cjson(L, c.s->rows, 0);
    return 1;
}

/* ---------- q.recommendations ---------- */

static const char *const rec_keys[] = {"since", "until", "severity", "state", "limit", NULL};

/* Fills rows from the recommendations table; 0 also when it is absent. */
static int read_recommendations(q_box *b, cJSON *rows, int64_t since, int64_t until,
                                const char *severity, const char *state, int64_t limit,
                                te_err_t *err)
{
    sqlite3_stmt *stmt = NULL;
    char cols[8][32];
    int ncols = 0, rc;
    const char *time_col = NULL;
    bool has_severity = false, has_state = false;
    if (!b->rec) {
        rc = sqlite3_open_v2(te_store_path(b->st), &b->rec, SQLITE_OPEN_READONLY, NULL);
        if (rc != SQLITE_OK) {
            te_err_set(err, TE_ESQLITE, "cannot open %s: %s", te_store_path(b->st),
                       sqlite3_errmsg(b->rec));
            close_rec(b);
            return TE_ESQLITE;
        }
        sqlite3_busy_timeout(b->rec, 5000);
    }
    if (sqlite3_prepare_v2(b->rec, "SELECT name FROM pragma_table_info('recommendations')", -1,
                           &stmt, NULL) != SQLITE_OK)
        goto sqlerr;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(stmt, 0);
        if (!name)
            continue;
        if (strcmp(name, "severity") == 0)
            has_severity = true;
        if (strcmp(name, "state") == 0)
            has_state = true;
        static const char *const tcols[] = {"updated_ns", "created_ns", "last_seen_ns",
                                            "ts_ns", "first_seen_ns"};
        for (size_t i = 0; i < sizeof(tcols) / sizeof(tcols[0]) && ncols < 8; i++) {
            if (strcmp(name, tcols[i]) == 0 && strlen(name) < sizeof(cols[0]))
                snprintf(cols[ncols++], sizeof(cols[0]), "%s", name);
        }
    }
    sqlite3_finalize(stmt);
    stmt = NULL;
    if (rc != SQLITE_DONE)
        goto sqlerr;
    {
        /* the most preferred time column present */
        static const char *const order[] = {"updated_ns", "created_ns", "last_seen_ns", "ts_ns",
                                            "first_seen_ns"};
        for (size_t i = 0; i < 5 && !time_col; i++)
            for (int k = 0; k < ncols && !time_col; k++)
                if (strcmp(cols[k], order[i]) == 0)
                    time_col = cols[k];
    }
    if (!time_col && !has_severity) {
        /* absent table (no columns) or one we cannot filter by time */
        if (sqlite3_prepare_v2(b->rec,
                               "SELECT 1 FROM sqlite_master WHERE type='table' AND "
                               "name='recommendations'",
                               -1, &stmt, NULL) != SQLITE_OK)
            goto sqlerr;
        rc = sqlite3_step(stmt);
        sqlite3_finalize(stmt);
        stmt = NULL;
        if (rc != SQLITE_ROW)
            return 0;
    }
    char sql[256];
    int n = snprintf(sql, sizeof(sql), "SELECT * FROM recommendations WHERE 1");
    if (time_col)
        n += snprintf(sql + n, sizeof(sql) - (size_t)n, " AND %.31s >= ?1 AND %.31s < ?2",
                      time_col, time_col);
    if (severity && has_severity)
        n += snprintf(sql + n, sizeof(sql) - (size_t)n, " AND severity = ?3");
    if (state && has_state)
        n += snprintf(sql + n, sizeof(sql) - (size_t)n, " AND state = ?5");
    if (time_col)
        n += snprintf(sql + n, sizeof(sql) - (size_t)n, " ORDER BY %.31s DESC", time_col);
    snprintf(sql + n, sizeof(sql) - (size_t)n, " LIMIT ?4");
    if (sqlite3_prepare_v2(b->rec, sql, -1, &stmt, NULL) != SQLITE_OK)
        goto sqlerr;
    sqlite3_bind_int64(stmt, 1, since);
    sqlite3_bind_int64(stmt, 2, until);
    if (severity && has_severity)
        sqlite3_bind_text(stmt, 3, severity, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 4, limit);
    if (state && has_state)
        sqlite3_bind_text(stmt, 5, state, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        cJSON *o = cJSON_CreateObject();
        if (!o)
            goto nomem;
        cJSON_AddItemToArray(rows, o);
        for (int c = 0; c < sqlite3_column_count(stmt); c++) {
            const char *name = sqlite3_column_name(stmt, c);
            size_t nl = strlen(name);
            cJSON *v = NULL;
            switch (sqlite3_column_type(stmt, c)) {
            case SQLITE_INTEGER: {
                int64_t iv = sqlite3_column_int64(stmt, c);
                v = cJSON_CreateNumber((double)iv);
                if (nl > 3 && strcmp(name + nl - 3, "_ns") == 0 && nl < 60) {
                    char key[64], ts[40];
                    te_time_format_rfc3339(iv, ts, sizeof(ts));
                    snprintf(key, sizeof(key), "%.*s_at", (int)(nl - 3), name);
                    if (!cJSON_AddStringToObject(o, key, ts))
                        goto nomem;
                    snprintf(key, sizeof(key), "%.*s_s", (int)(nl - 3), name);
                    if (!cJSON_AddNumberToObject(o, key, (double)iv / 1e9))
                        goto nomem;
                }
                break;
            }
            case SQLITE_FLOAT: v = cJSON_CreateNumber(sqlite3_column_double(stmt, c)); break;
            case SQLITE_TEXT: {
                const char *txt = (const char *)sqlite3_column_text(stmt, c);
                /* JSON columns (evidence_json) come back as tables */
                if (nl > 5 && strcmp(name + nl - 5, "_json") == 0 && (v = cJSON_Parse(txt))) {
                    char key[64];
                    snprintf(key, sizeof(key), "%.*s", (int)(nl - 5), name);
                    cJSON_AddItemToObject(o, key, v);
                    v = NULL;
                    continue;
                }
                v = cJSON_CreateString(txt ? txt : "");
                break;
            }
            default: continue;
            }
            if (!v)
                goto nomem;
            cJSON_AddItemToObject(o, name, v);
        }
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE)
        return te_err_set(err, TE_ESQLITE, "%s", sqlite3_errmsg(b->rec));
    return 0;
nomem:
    sqlite3_finalize(stmt);
    return te_err_set(err, TE_ENOMEM, "out of memory");
sqlerr:
    sqlite3_finalize(stmt);
    return te_err_set(err, TE_ESQLITE, "%s", sqlite3_errmsg(b->rec));
}

static int l_recommendations(lua_State *L)
{
    const char *fn = "q.recommendations";
    q_box *b = check_box(L, fn);
    check_args(L, fn, rec_keys);
    int64_t since, until;
    range_args(L, fn, b, &since, &until);
    const char *severity = opt_string(L, fn, "severity", false);
    const char *state = opt_string(L, fn, "state", false);
    lua_Integer limit = opt_int(L, fn, "limit", 100, 1, 10000);
    scratch_t *s = new_scratch(L);
    if (!(s->rows = cJSON_CreateArray()))
        return te_lua_raise(L, "%s: out of memory", fn);
    te_err_t err = {0};
    note_read(b, fn, NULL);
    if (read_recommendations(b, s->rows, since, until, severity, state, limit, &err) < 0)
        return te_lua_raise(L, "%s: %s", fn, err.msg);
    push_cjson(L, s->rows, 0);
    return 1;
}

/* ---------- q.stats, q.time ---------- */

static int l_stats(lua_State *L)
{
    const char *fn = "q.stats";
    q_box *b = check_box(L, fn);
    te_store_stats_t st;
    te_err_t err = {0};
    note_read(b, fn, NULL);
    if (te_store_stats(b->st, &st, &err) < 0)
        return te_lua_raise(L, "%s: %s", fn, err.msg);
    scratch_t *s = new_scratch(L);
    if (te_store_kind_stats(b->st, &s->res, &err) < 0)
        return te_lua_raise(L, "%s: %s", fn, err.msg);
    lua_createtable(L, 0, 8);
    lua_pushinteger(L, st.events);
    lua_setfield(L, -2, "events");
    lua_pushinteger(L, st.series);
    lua_setfield(L, -2, "series");
    lua_pushinteger(L, st.file_bytes + st.wal_bytes);
    lua_setfield(L, -2, "db_bytes");
    if (st.events > 0) {
        push_rfc3339(L, st.oldest_ts_ns);
        lua_setfield(L, -2, "oldest");
        push_rfc3339(L, st.newest_ts_ns);
        lua_setfield(L, -2, "newest");
    }
    const te_result_t *r = s->res;
    lua_createtable(L, (int)r->nrows, 0);
    for (size_t i = 0; i < r->nrows; i++) {
        lua_createtable(L, 0, (int)r->ncols);
        for (size_t c = 0; c < r->ncols; c++) {
            push_val(L, &r->cells[i * r->ncols + c]);
            lua_setfield(L, -2, r->columns[c]);
        }
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "kinds");
    return 1;
}

static int l_time(lua_State *L)
{
    double s = luaL_checknumber(L, 1);
    if (!isfinite(s) || fabs(s) > 9.0e9)
        return te_lua_raise(L, "q.time: %f is out of range", s);
    push_rfc3339(L, (int64_t)llround(s * 1e9));
    return 1;
}

/* ---------- the table ---------- */

static const luaL_Reg q_funcs[] = {
    {"query", l_query},   {"events", l_events}, {"alerts", l_alerts},
    {"recommendations", l_recommendations},     {"stats", l_stats},
    {"time", l_time},     {NULL, NULL},
};

void te_lua_push_q(lua_State *L, const te_lua_q_opts_t *opts)
{
    lua_createtable(L, 0, 10); /* [q] */
    q_box *b = lua_newuserdatauv(L, sizeof(*b), 0); /* [q, box] */
    memset(b, 0, sizeof(*b));
    b->st = opts->st;
    b->now_ns = opts->now_ns;
    b->since_ns = opts->since_ns;
    b->until_ns = opts->until_ns;
    b->progress = opts->progress;
    b->progress_ud = opts->progress_ud;
    if (luaL_newmetatable(L, TE_Q_MT)) {
        lua_pushcfunction(L, qbox_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    luaL_setfuncs(L, q_funcs, 1); /* each function gets the box as upvalue 1 */
    lua_pushnumber(L, (lua_Number)opts->since_ns / 1e9);
    lua_setfield(L, -2, "since");
    lua_pushnumber(L, (lua_Number)opts->until_ns / 1e9);
    lua_setfield(L, -2, "until");
    lua_pushnumber(L, (lua_Number)opts->now_ns / 1e9);
    lua_setfield(L, -2, "now");
}

/* The box behind q.query of the q table at idx (NULL when not a q table).
 * Leaves the stack as found. */
static q_box *box_of(lua_State *L, int idx)
{
    q_box *b = NULL;
    idx = lua_absindex(L, idx);
    if (!lua_istable(L, idx) || !lua_checkstack(L, 3))
        return NULL;
    lua_pushliteral(L, "query");
    if (lua_rawget(L, idx) == LUA_TFUNCTION && lua_getupvalue(L, -1, 1)) {
        b = luaL_testudata(L, -1, TE_Q_MT);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return b;
}

void te_lua_q_expire(lua_State *L, int idx)
{
    q_box *b = box_of(L, idx);
    if (b)
        release(b);
}

int te_lua_q_reads(lua_State *L, int idx)
{
    q_box *b = box_of(L, idx);
    return b ? b->reads : 0;
}

/* te.report_q{ db, since, until, now } (standalone te.so only): a q over
 * a read-only connection to the database file db, which the q closes
 * when collected (or on q:close()). */
int te_lua_q_open(lua_State *L)
{
    static const char *const keys[] = {"db", "since", "until", "now", NULL};
    const char *fn = "te.report_q";
    te_err_t err = {0};
    check_args(L, fn, keys);
    const char *db = opt_string(L, fn, "db", true);
    int64_t now = time_arg(L, fn, "now", te_time_now_ns(), te_time_now_ns());
    int64_t since = time_arg(L, fn, "since", now, now - 7 * 86400 * TE_NS_PER_SEC);
    int64_t until = time_arg(L, fn, "until", now, now);
    if (until <= since)
        return te_lua_raise(L, "%s: \"until\" must be after \"since\"", fn);
    te_lua_q_opts_t o = {.now_ns = now, .since_ns = since, .until_ns = until};
    te_lua_push_q(L, &o); /* a q without a store yet: nothing to leak if this raises */
    q_box *b = box_of(L, -1);
    te_store_opts_t so = {.path = db, .readonly = true};
    te_store_t *st = NULL;
    if (!b || te_store_open(&so, &st, &err) < 0) {
        lua_pushnil(L);
        lua_pushstring(L, b ? err.msg : "te.report_q: out of memory");
        return 2;
    }
    b->st = st;
    b->owns_st = true;
    return 1;
}
