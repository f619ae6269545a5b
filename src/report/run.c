/*
 * run.c - report templates: listing them and running one (see run.h).
 *
 * THREAD: the caller's; nothing here is shared between calls.
 *
 * The one idea: a run is a fresh sandbox per call. The template file is
 * loaded (its top level declares reports into the registry list of
 * bind_report.c), then one protected C function (run_render, called
 * through te_script_pcall so the budget and the traceback apply) builds
 * params, q (read-only, over the given store) and the builder r, calls
 * render(q, r, params) and renders the document while the builder still
 * owns it. Everything Lua made dies with the state.
 */
#include "run.h"

#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "core/suggest.h"
#include "core/time.h"
#include "script/bind_query.h"
#include "script/bind_report.h"
#include "script/reload.h"
#include "script/script.h"

#define DEFAULT_MAX_NS (120 * TE_NS_PER_SEC)
#define REPORT_MEM_BYTES ((size_t)256 << 20)
#define REPORT_MAX_STEPS UINT64_C(2000000000)

static char *dup(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

static void dirs(const char *scripts_dir, char *reports, size_t rcap, char *lib, size_t lcap)
{
    const char *d = scripts_dir && scripts_dir[0] ? scripts_dir : "lua";
    snprintf(reports, rcap, "%s/reports", d);
    snprintf(lib, lcap, "%s/lib", d);
}

static te_script_limits_t limits_for(int64_t max_ns)
{
    te_script_limits_t l = {.mem_bytes = REPORT_MEM_BYTES,
                            .max_steps = REPORT_MAX_STEPS,
                            .max_call_ns = max_ns > 0 ? max_ns : DEFAULT_MAX_NS};
    return l;
}

/* Number of reports declared by the loaded script s (its registry list). */
static int decl_count(te_script_t *s)
{
    lua_State *L = s->L;
    if (!lua_checkstack(L, 4))
        return 0;
    int n = 0;
    if (lua_getfield(L, LUA_REGISTRYINDEX, TE_LUA_REPORTS_KEY) == LUA_TTABLE)
        n = (int)lua_rawlen(L, -1);
    lua_pop(L, 1);
    return n;
}

/* A string member of declaration i (1-based) of s, or NULL; the pointer
 * lives as long as the state. */
static const char *decl_str(te_script_t *s, int i, const char *key)
{
    lua_State *L = s->L;
    const char *v = NULL;
    lua_getfield(L, LUA_REGISTRYINDEX, TE_LUA_REPORTS_KEY);
    lua_rawgeti(L, -1, i);
    lua_pushstring(L, key);
    if (lua_rawget(L, -2) == LUA_TSTRING)
        v = lua_tostring(L, -1); /* anchored by the declaration table */
    lua_pop(L, 3);
    return v;
}

static int decl_line(te_script_t *s, int i)
{
    lua_State *L = s->L;
    lua_getfield(L, LUA_REGISTRYINDEX, TE_LUA_REPORTS_KEY);
    lua_rawgeti(L, -1, i);
    lua_getfield(L, -1, "line");
    int line = (int)lua_tointeger(L, -1);
    lua_pop(L, 3);
    return line;
}

/* Copies the notify list of declaration i into it; 0 or TE_ENOMEM. */
static int decl_notify(te_script_t *s, int i, te_report_info_t *it)
{
    lua_State *L = s->L;
    int rc = 0;
    lua_getfield(L, LUA_REGISTRYINDEX, TE_LUA_REPORTS_KEY);
    lua_rawgeti(L, -1, i);
    if (lua_getfield(L, -1, "notify") == LUA_TTABLE) {
        size_t n = (size_t)lua_rawlen(L, -1);
        it->notify = n ? calloc(n, sizeof(*it->notify)) : NULL;
        if (n && !it->notify)
            rc = TE_ENOMEM;
        for (size_t k = 0; k < n && rc == 0; k++) {
            if (lua_rawgeti(L, -1, (lua_Integer)k + 1) == LUA_TSTRING) {
                if (!(it->notify[it->nnotify] = dup(lua_tostring(L, -1))))
                    rc = TE_ENOMEM;
                else
                    it->nnotify++;
            }
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 3);
    return rc;
}

static int decl_find(te_script_t *s, const char *name)
{
    int n = decl_count(s);
    for (int i = 1; i <= n; i++) {
        const char *nm = decl_str(s, i, "name");
        if (nm && strcmp(nm, name) == 0)
            return i;
    }
    return 0;
}

/* ---------- catalog ---------- */

static int cmp_info(const void *a, const void *b)
{
    return strcmp(((const te_report_info_t *)a)->name, ((const te_report_info_t *)b)->name);
}

static int add_error(te_report_catalog_t *c, const char *msg)
{
    char **e = realloc(c->errors, (c->nerrors + 1) * sizeof(*e));
    if (!e)
        return TE_ENOMEM;
    c->errors = e;
    if (!(c->errors[c->nerrors] = dup(msg)))
        return TE_ENOMEM;
    c->nerrors++;
    return 0;
}

static bool catalog_has(const te_report_catalog_t *c, const char *name)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->items[i].name, name) == 0)
            return true;
    return false;
}

int te_report_catalog_load(const char *scripts_dir, te_report_catalog_t *out, te_err_t *err)
{
    char rdir[1024], lib[1024], msg[TE_ERR_MSG_MAX + 64];
    char **files = NULL;
    te_script_limits_t lim = limits_for(0);
    memset(out, 0, sizeof(*out));
    dirs(scripts_dir, rdir, sizeof(rdir), lib, sizeof(lib));
    int nf = te_reload_list(rdir, &files, err);
    if (nf < 0)
        return nf;
    int rc = 0;
    for (int f = 0; f < nf && rc == 0; f++) {
        te_script_t *s = NULL;
        te_err_t e2 = {0};
        if (te_script_load(files[f], lib, &lim, &s, &e2) < 0) {
            rc = add_error(out, e2.msg[0] ? e2.msg : files[f]);
            continue;
        }
        int n = decl_count(s);
        for (int i = 1; i <= n && rc == 0; i++) {
            const char *name = decl_str(s, i, "name");
            if (!name)
                continue;
            if (catalog_has(out, name)) {
                snprintf(msg, sizeof(msg), "%s:%d: te.report: \"%s\" is already declared by "
                         "another template; this one is ignored",
                         files[f], decl_line(s, i), name);
                rc = add_error(out, msg);
                continue;
            }
            te_report_info_t *items = realloc(out->items, (out->n + 1) * sizeof(*items));
            if (!items) {
                rc = TE_ENOMEM;
                break;
            }
            out->items = items;
            te_report_info_t *it = &out->items[out->n];
            memset(it, 0, sizeof(*it));
            out->n++;
            it->name = dup(name);
            it->title = dup(decl_str(s, i, "title"));
            it->description = dup(decl_str(s, i, "description"));
            it->schedule = dup(decl_str(s, i, "schedule"));
            it->file = dup(files[f]);
            it->line = decl_line(s, i);
            if (!it->name || !it->file || decl_notify(s, i, it) < 0)
                rc = TE_ENOMEM;
        }
        te_script_free(s);
    }
    te_reload_list_free(files, nf);
    if (rc < 0) {
        te_report_catalog_free(out);
        return te_err_set(err, rc, "reports: out of memory");
    }
    if (out->n > 1)
        qsort(out->items, out->n, sizeof(*out->items), cmp_info);
    return 0;
}

void te_report_catalog_free(te_report_catalog_t *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->items[i].name);
        free(c->items[i].title);
        free(c->items[i].description);
        free(c->items[i].schedule);
        free(c->items[i].file);
        for (size_t k = 0; k < c->items[i].nnotify; k++)
            free(c->items[i].notify[k]);
        free(c->items[i].notify);
    }
    free(c->items);
    for (size_t i = 0; i < c->nerrors; i++)
        free(c->errors[i]);
    free(c->errors);
    memset(c, 0, sizeof(*c));
}

/* ---------- finding one report ---------- */

/* Loads the template declaring name into *out (and its index into *idx).
 * Not found: TE_ENOTFOUND with the names there are. */
static int find_report(const te_report_run_opts_t *o, const te_script_limits_t *lim,
                       te_script_t **out, int *idx, te_err_t *err)
{
    char rdir[1024], lib[1024], first[1100];
    struct stat st;
    te_err_t e2 = {0};
    dirs(o->scripts_dir, rdir, sizeof(rdir), lib, sizeof(lib));
    /* NAME.lua first: the common case loads one file */
    snprintf(first, sizeof(first), "%s/%s.lua", rdir, o->name);
    if (!strchr(o->name, '/') && stat(first, &st) == 0 && S_ISREG(st.st_mode)) {
        te_script_t *s = NULL;
        if (te_script_load(first, lib, lim, &s, &e2) < 0)
            return te_err_set(err, TE_ESCRIPT, "%s", e2.msg);
        int i = decl_find(s, o->name);
        if (i > 0) {
            *out = s;
            *idx = i;
            return 0;
        }
        te_script_free(s);
    }
    char **files = NULL;
    int nf = te_reload_list(rdir, &files, err);
    if (nf < 0)
        return nf;
    te_buf_t names = {0};
    const char *best = NULL;
    char best_buf[128] = "";
    size_t bestd = 3, count = 0;
    char load_error[TE_ERR_MSG_MAX] = "";
    int rc = TE_ENOTFOUND;
    for (int f = 0; f < nf; f++) {
        te_script_t *s = NULL;
        te_err_clear(&e2);
        if (te_script_load(files[f], lib, lim, &s, &e2) < 0) {
            if (!load_error[0])
                snprintf(load_error, sizeof(load_error), "%s", e2.msg);
            continue;
        }
        int i = decl_find(s, o->name);
        if (i > 0) {
            *out = s;
            *idx = i;
            rc = 0;
            break;
        }
        int n = decl_count(s);
        for (int k = 1; k <= n; k++) {
            const char *nm = decl_str(s, k, "name");
            if (!nm)
                continue;
            te_buf_adds(&names, count++ ? ", " : "");
            te_buf_adds(&names, nm);
            size_t d = te_edit_distance(o->name, nm);
            if (d < bestd) {
                bestd = d;
                snprintf(best_buf, sizeof(best_buf), "%s", nm);
                best = best_buf;
            }
        }
        te_script_free(s);
    }
    te_reload_list_free(files, nf);
    if (rc == TE_ENOTFOUND) {
        if (count == 0)
            te_err_set(err, TE_ENOTFOUND,
                       "unknown report \"%s\": no report templates in %s/ (write one with "
                       "te.report{...}, see docs/reports.md)%s%s",
                       o->name, rdir, load_error[0] ? "; a template failed to load: " : "",
                       load_error);
        else if (best)
            te_err_set(err, TE_ENOTFOUND,
                       "unknown report \"%s\" (did you mean \"%s\"?); available: %s", o->name,
                       best, names.p ? names.p : "");
        else
            te_err_set(err, TE_ENOTFOUND, "unknown report \"%s\"; available: %s%s%s", o->name,
                       names.p ? names.p : "",
                       load_error[0] ? "; a template failed to load: " : "", load_error);
    }
    te_buf_free(&names);
    return rc;
}

/* ---------- running ---------- */

typedef struct run_ctx {
    const te_report_run_opts_t *o;
    int idx;                  /* the declaration in the registry list */
    int64_t now_ns, since_ns, until_ns;
    const char *since_text, *until_text;
    cJSON *doc;               /* moves to the builder inside run_render */
    char *out;
    size_t len;
    te_err_t err;             /* a C-side failure (parameters, rendering) */
    int code;
} run_ctx;

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static const char *param_hint(lua_State *L, int defaults, const char *key, char *buf, size_t cap)
{
    const char *best = NULL;
    size_t bestd = 3;
    buf[0] = '\0';
    lua_pushnil(L);
    while (lua_next(L, defaults)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            continue;
        size_t d = te_edit_distance(key, lua_tostring(L, -1));
        if (d < bestd) {
            bestd = d;
            snprintf(buf, cap, "%s", lua_tostring(L, -1));
            best = buf;
        }
    }
    return best;
}

/* Fills the params table at the top from the defaults (at defaults) and
 * the overrides; returns false with ctx->err set on a bad parameter. */
static bool apply_params(lua_State *L, run_ctx *c, int defaults)
{
    const te_report_run_opts_t *o = c->o;
    int params = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, defaults)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_settable(L, params);
    }
    for (size_t i = 0; i < o->nparams; i++) {
        const char *k = o->params[i].key, *v = o->params[i].value;
        if (strcmp(k, "since") == 0 || strcmp(k, "until") == 0)
            continue; /* set below from the range actually used */
        int t = lua_getfield(L, defaults, k);
        lua_pop(L, 1);
        if (t == LUA_TNIL) {
            char hint[96];
            const char *best = param_hint(L, defaults, k, hint, sizeof(hint));
            te_buf_t names = {0};
            const char *keys[64];
            size_t nk = 0;
            lua_pushnil(L);
            while (lua_next(L, defaults)) {
                lua_pop(L, 1);
                if (nk < 64)
                    keys[nk++] = lua_tostring(L, -1); /* anchored by defaults */
            }
            qsort(keys, nk, sizeof(keys[0]), cmp_cstr);
            for (size_t j = 0; j < nk; j++) {
                te_buf_adds(&names, j ? ", " : "");
                te_buf_adds(&names, keys[j]);
            }
            if (best)
                te_err_set(&c->err, TE_EINVAL,
                           "report \"%s\": unknown parameter \"%s\" (did you mean \"%s\"?)",
                           o->name, k, best);
            else
                te_err_set(&c->err, TE_EINVAL,
                           "report \"%s\": unknown parameter \"%s\" (it takes: %s)", o->name, k,
                           names.len ? names.p : "since, until");
            te_buf_free(&names);
            return false;
        }
        if (t == LUA_TNUMBER) {
            char *end;
            double d = strtod(v, &end);
            if (!*v || *end || !isfinite(d)) {
                te_err_set(&c->err, TE_EINVAL,
                           "report \"%s\": parameter \"%s\" must be a number, got \"%s\"",
                           o->name, k, v);
                return false;
            }
            if (d == floor(d) && fabs(d) < 9e15)
                lua_pushinteger(L, (lua_Integer)d);
            else
                lua_pushnumber(L, d);
        } else if (t == LUA_TBOOLEAN) {
            bool yes = strcmp(v, "true") == 0 || strcmp(v, "1") == 0 || strcmp(v, "yes") == 0;
            bool no = strcmp(v, "false") == 0 || strcmp(v, "0") == 0 || strcmp(v, "no") == 0;
            if (!yes && !no) {
                te_err_set(&c->err, TE_EINVAL,
                           "report \"%s\": parameter \"%s\" must be true or false, got \"%s\"",
                           o->name, k, v);
                return false;
            }
            lua_pushboolean(L, yes);
        } else {
            lua_pushstring(L, v);
        }
        lua_setfield(L, params, k);
    }
    lua_pushstring(L, c->since_text);
    lua_setfield(L, params, "since");
    lua_pushstring(L, c->until_text);
    lua_setfield(L, params, "until");
    return true;
}

static bool add_time(cJSON *doc, const char *key, int64_t ns)
{
    char ts[40];
    te_time_format_rfc3339(ns - ns % TE_NS_PER_SEC, ts, sizeof(ts)); /* whole seconds */
    return cJSON_AddStringToObject(doc, key, ts) != NULL;
}

/* Protected: [ctx] -> []. Raises on script errors; C-side failures set
 * ctx->code and return normally. */
static int run_render(lua_State *L)
{
    run_ctx *c = lua_touserdata(L, 1);
    const te_report_run_opts_t *o = c->o;
    lua_settop(L, 0);
    lua_getfield(L, LUA_REGISTRYINDEX, TE_LUA_REPORTS_KEY);
    lua_rawgeti(L, 1, c->idx); /* [list, decl] */
    lua_getfield(L, 2, "params"); /* [list, decl, defaults] */
    if (!lua_istable(L, 3)) {
        lua_pop(L, 1);
        lua_newtable(L);
    }
    /* the range: --since/--until, else the template's defaults */
    lua_getfield(L, 3, "since");
    lua_getfield(L, 3, "until"); /* [.., defaults, dsince, duntil] */
    for (size_t i = 0; i < o->nparams; i++) {
        if (strcmp(o->params[i].key, "since") == 0 && !o->since)
            c->since_text = o->params[i].value;
        if (strcmp(o->params[i].key, "until") == 0 && !o->until)
            c->until_text = o->params[i].value;
    }
    if (!c->since_text)
        c->since_text = o->since ? o->since
                                 : (lua_type(L, 4) == LUA_TSTRING ? lua_tostring(L, 4) : "7d");
    if (!c->until_text)
        c->until_text = o->until ? o->until
                                 : (lua_type(L, 5) == LUA_TSTRING ? lua_tostring(L, 5) : "now");
    te_err_t e2 = {0};
    if (te_time_parse_since(c->since_text, c->now_ns, &c->since_ns, &e2) < 0) {
        c->code = te_err_set(&c->err, TE_EINVAL,
                             "report \"%s\": bad since \"%s\" (use a duration such as 7d, an RFC "
                             "3339 time or Unix seconds)",
                             o->name, c->since_text);
        return 0;
    }
    c->until_ns = c->now_ns;
    if (strcmp(c->until_text, "now") != 0 &&
        te_time_parse_since(c->until_text, c->now_ns, &c->until_ns, &e2) < 0) {
        c->code = te_err_set(&c->err, TE_EINVAL,
                             "report \"%s\": bad until \"%s\" (use an RFC 3339 time, Unix seconds "
                             "or a duration ago such as 1h)",
                             o->name, c->until_text);
        return 0;
    }
    if (c->until_ns <= c->since_ns) {
        c->code = te_err_set(&c->err, TE_EINVAL, "report \"%s\": until must be after since",
                             o->name);
        return 0;
    }
    lua_settop(L, 3);
    lua_getfield(L, 2, "render"); /* [list, decl, defaults, render] */
    te_lua_q_opts_t qo = {.st = o->st,
                          .now_ns = c->now_ns,
                          .since_ns = c->since_ns,
                          .until_ns = c->until_ns,
                          .progress = o->progress,
                          .progress_ud = o->progress_ud};
    te_lua_push_q(L, &qo); /* [.., render, q] */
    int qidx = lua_gettop(L);
    /* the document header, then the builder owns it */
    cJSON *doc = c->doc;
    lua_getfield(L, 2, "title");
    bool ok = cJSON_AddStringToObject(doc, "name", o->name) &&
              cJSON_AddStringToObject(doc, "title", lua_isstring(L, -1) ? lua_tostring(L, -1)
                                                                        : o->name) &&
              add_time(doc, "generated_at", c->now_ns) && add_time(doc, "since", c->since_ns) &&
              add_time(doc, "until", c->until_ns);
    lua_pop(L, 1);
    te_lua_push_builder(L, doc); /* [.., render, q, r] */
    c->doc = NULL;               /* the builder's now */
    if (!ok)
        return luaL_error(L, "report: out of memory");
    int ridx = lua_gettop(L);
    lua_newtable(L); /* [.., render, q, r, params] */
    if (!apply_params(L, c, 3)) {
        c->code = c->err.code;
        return 0;
    }
    cJSON *pj = te_lua_to_cjson(L, -1);
    if (!pj || !cJSON_AddItemToObject(doc, "params", pj)) {
        cJSON_Delete(pj);
        return luaL_error(L, "report: out of memory");
    }
    lua_call(L, 3, 0); /* render(q, r, params); errors propagate to te_script_pcall */
    lua_settop(L, ridx);
    te_lua_q_expire(L, qidx);
    if (te_report_render(doc, o->format, &c->out, &c->len, &c->err) < 0)
        c->code = c->err.code;
    return 0;
}

int te_report_run(const te_report_run_opts_t *o, char **out, size_t *len, te_err_t *err)
{
    te_script_limits_t lim = limits_for(o->max_ns);
    te_script_t *s = NULL;
    int idx = 0;
    if (!o->name || !o->name[0])
        return te_err_set(err, TE_EINVAL, "report: no report name given");
    int rc = find_report(o, &lim, &s, &idx, err);
    if (rc < 0)
        return rc;
    run_ctx c;
    memset(&c, 0, sizeof(c));
    c.o = o;
    c.idx = idx;
    c.now_ns = o->now_ns ? o->now_ns : te_time_now_ns();
    c.doc = cJSON_CreateObject();
    if (!c.doc) {
        te_script_free(s);
        return te_err_set(err, TE_ENOMEM, "report: out of memory");
    }
    lua_State *L = s->L;
    if (!lua_checkstack(L, 2)) {
        cJSON_Delete(c.doc);
        te_script_free(s);
        return te_err_set(err, TE_ENOMEM, "report: out of memory");
    }
    lua_pushcfunction(L, run_render);
    lua_pushlightuserdata(L, &c);
    int lrc = te_script_pcall(s, 1, 0);
    if (lrc != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        const char *tb = msg ? strstr(msg, "\nstack traceback:") : NULL;
        rc = te_err_set(err, TE_ESCRIPT, "report \"%s\": %.*s", o->name,
                        msg ? (tb ? (int)(tb - msg) : (int)strlen(msg)) : 7,
                        msg ? msg : "failed");
        lua_pop(L, 1);
    } else if (c.code < 0) {
        if (err)
            *err = c.err;
        rc = c.code;
    } else {
        *out = c.out;
        *len = c.len;
        if (o->since_ns_out)
            *o->since_ns_out = c.since_ns;
        if (o->until_ns_out)
            *o->until_ns_out = c.until_ns;
        c.out = NULL;
        rc = 0;
    }
    free(c.out);
    cJSON_Delete(c.doc); /* still ours only when run_render failed before taking it */
    te_script_free(s);   /* the builder's __gc frees the document */
    return rc;
}

size_t te_report_file_name(const char *name, int64_t ns, te_report_format_t f, char *buf,
                           size_t cap)
{
    char ts[40];
    te_time_format_rfc3339(ns, ts, sizeof(ts)); /* 2026-11-23T08:00:00Z */
    int n = snprintf(buf, cap, "%s-%.4s%.2s%.2sT%.2s%.2s.%s", name, ts, ts + 5, ts + 8, ts + 11,
                     ts + 14, te_report_format_name(f));
    if (n < 0)
        return 0;
    return (size_t)n < cap ? (size_t)n : cap - 1;
}
