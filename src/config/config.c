/*
 * config.c - telemetry.lua evaluated in a sandboxed, throwaway Lua state
 * (SPEC section 6.0).
 *
 * THREAD: any (start-up only).
 *
 * The one idea: the file is a program whose only effect is calling block
 * functions (storage{...}, notifier "x" {...}); each block is checked
 * against a declared schema BEFORE anything is copied into the te_config_t,
 * and a problem raises a Lua error that carries the caller's file:line, so
 * the user reads `telemetry.lua:3: storage: unknown key "pth" (did you mean
 * "path"?)`. Everything copied lives in the te_config_t being built, which is
 * freed on failure, so a raise (longjmp) never leaks.
 *
 * Limits: the chunk runs under an instruction budget (an endless loop fails
 * with a clear error) and a memory cap.
 */
#include "config.h"

#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/event.h"
#include "../core/log.h"
#include "../core/time.h"
#include "../ingest/redact.h"
#include "../store/store.h"
#include "config_schema.h"

#define CONFIG_MAX_INSTRUCTIONS 10000000L
#define CONFIG_HOOK_EVERY 10000
#define CONFIG_MAX_MEMORY (32u * 1024u * 1024u)
#define DEFAULT_MAX_BODY (16u * 1024u * 1024u)
#define DEFAULT_QUEUE_EVENTS 65536u

typedef struct load_ctx {
    te_config_t *cfg;
    char *dir;             /* folder of the config file ("." for a bare name) */
    long steps;
    size_t mem;
    int storage_line, listen_line, scripts_line, auth_line, redact_line, log_line, alerts_line;
    char *storage_path;    /* resolved storage.path, NULL when not given */
} load_ctx_t;

static load_ctx_t *ctx_of(lua_State *L)
{
    return *(load_ctx_t **)lua_getextraspace(L);
}

/* --- small helpers (no Lua) --- */

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

static char *join_path(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p)
        return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

/* A path from the file: absolute stays, relative is taken from the file's folder. */
static char *resolve(const char *dir, const char *path)
{
    if (path[0] == '/' || path[0] == '\0' || strcmp(dir, ".") == 0)
        return xstrdup(path);
    return join_path(dir, path);
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return xstrdup(".");
    if (slash == path)
        return xstrdup("/");
    size_t n = (size_t)(slash - path);
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, path, n);
        p[n] = '\0';
    }
    return p;
}

int te_config_set(char **slot, const char *value)
{
    char *p = xstrdup(value ? value : "");
    if (!p)
        return TE_ENOMEM;
    free(*slot);
    *slot = p;
    return 0;
}

int te_config_set_listen(char **slot, const char *what, const char *value, te_err_t *err)
{
    const char *colon, *host_end;
    char *end = NULL;
    long port;

    if (value[0] == '\0' || strcmp(value, "off") == 0)
        return te_config_set(slot, "") < 0 ? te_err_set(err, TE_ENOMEM, "out of memory") : 0;
    if (value[0] == '[') {
        host_end = strchr(value, ']');
        colon = host_end ? host_end + 1 : NULL;
        if (colon && *colon != ':')
            colon = NULL;
        if (host_end == value + 1)
            colon = NULL;
    } else {
        colon = strrchr(value, ':');
        host_end = colon;
        if (colon && (colon == value || memchr(value, ':', (size_t)(colon - value))))
            colon = NULL;
    }
    if (colon) {
        errno = 0;
        port = strtol(colon + 1, &end, 10);
        if (errno || end == colon + 1 || *end != '\0' || port < 0 || port > 65535)
            colon = NULL;
    }
    if (!colon)
        return te_err_set(err, TE_EINVAL,
                          "%s must be \"HOST:PORT\" (e.g. \"127.0.0.1:4380\") or \"off\", got "
                          "\"%s\"",
                          what, value);
    return te_config_set(slot, value) < 0 ? te_err_set(err, TE_ENOMEM, "out of memory") : 0;
}

void te_config_free(te_config_t *cfg)
{
    if (!cfg)
        return;
    free(cfg->file);
    free(cfg->data_dir);
    free(cfg->db_path);
    free(cfg->retention_raw);
    free(cfg->retention_1m);
    free(cfg->retention_1h);
    for (size_t i = 0; i < cfg->nretention_kinds; i++)
        free(cfg->retention_kinds[i].kind);
    free(cfg->retention_kinds);
    free(cfg->listen_http);
    free(cfg->listen_tcp);
    free(cfg->listen_udp);
    free(cfg->listen_unix);
    free(cfg->scripts_dir);
    free(cfg->log_level);
    for (size_t i = 0; i < cfg->nnotifiers; i++) {
        free(cfg->notifiers[i].name);
        free(cfg->notifiers[i].type);
        free(cfg->notifiers[i].json);
    }
    free(cfg->notifiers);
    for (size_t i = 0; i < cfg->nsources; i++) {
        free(cfg->sources[i].name);
        free(cfg->sources[i].type);
        free(cfg->sources[i].path);
        free(cfg->sources[i].kind);
        free(cfg->sources[i].json);
    }
    free(cfg->sources);
    free(cfg->auth_json);
    free(cfg->redact_json);
    free(cfg->alerts_json);
    free(cfg);
}


static int caller_line(lua_State *L)
{
    lua_Debug ar;
    if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "l", &ar))
        return ar.currentline;
    return 0;
}

static void set_or_raise(lua_State *L, char **slot, const char *value)
{
    if (te_config_set(slot, value) < 0)
        te_cfg_raise(L, "out of memory");
}

static void take_or_raise(lua_State *L, char **slot, char *value)
{
    if (!value)
        te_cfg_raise(L, "out of memory");
    free(*slot);
    *slot = value;
}


static const char *opt_string(lua_State *L, int idx, const char *key)
{
    lua_getfield(L, idx, key);
    const char *s = lua_tostring(L, -1); /* kept alive by the table */
    lua_pop(L, 1);
    return s;
}

static void check_block_arg(lua_State *L, const char *where)
{
    if (lua_gettop(L) != 1 || !lua_istable(L, 1))
        te_cfg_raise(L, "%s: expected a table { ... }, got %s", where,
                 lua_gettop(L) ? luaL_typename(L, 1) : "nothing");
}

static void once(lua_State *L, int *line, const char *name)
{
    if (*line)
        te_cfg_raise(L, "%s: block given twice (first at line %d)", name, *line);
    *line = caller_line(L);
    if (*line == 0)
        *line = -1;
}

/* One retention age (already checked by the schema): -1 when s is NULL, 0
 * for "forever", else nanoseconds; "0s" raises (it would delete at once). */
static int64_t retention_age(lua_State *L, const char *s, const char *where, const char *key)
{
    int64_t ns = 0;
    te_err_t err = {0};
    if (!s)
        return -1;
    if (strcmp(s, "forever") == 0)
        return 0;
    if (te_duration_parse(s, &ns, &err) < 0 || ns <= 0)
        te_cfg_raise(L, "%s.%s: bad duration \"%s\" (must be longer than 0, or \"forever\")",
                     where, key, s);
    return ns;
}

static int cmp_retention_kind(const void *a, const void *b)
{
    return strcmp(((const te_config_retention_kind_t *)a)->kind,
                  ((const te_config_retention_kind_t *)b)->kind);
}

/* Copies storage.retention.kinds (table at idx, checked) into cfg. */
static void retention_kinds(lua_State *L, int idx, te_config_t *cfg)
{
    static const char *const keys[] = {"raw", "1m", "1h"};
    char where[160];
    lua_getfield(L, idx, "kinds");
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        return;
    }
    int map = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, map)) { /* [.., name, {raw=..}] */
        const char *kind = lua_tostring(L, -2);
        snprintf(where, sizeof(where), "storage.retention.kinds.%s", kind);
        int64_t ages[3];
        for (int i = 0; i < 3; i++)
            ages[i] = retention_age(L, opt_string(L, -1, keys[i]), where, keys[i]);
        te_config_retention_kind_t *grown =
            realloc(cfg->retention_kinds, (cfg->nretention_kinds + 1) * sizeof(*grown));
        if (!grown)
            te_cfg_raise(L, "out of memory");
        cfg->retention_kinds = grown;
        te_config_retention_kind_t *rk = &grown[cfg->nretention_kinds];
        rk->kind = strdup(kind);
        if (!rk->kind)
            te_cfg_raise(L, "out of memory");
        rk->raw_ns = ages[0];
        rk->m1_ns = ages[1];
        rk->h1_ns = ages[2];
        cfg->nretention_kinds++;
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    if (cfg->nretention_kinds > 1)
        qsort(cfg->retention_kinds, cfg->nretention_kinds, sizeof(*cfg->retention_kinds),
              cmp_retention_kind);
}

/* --- the blocks --- */

static int l_storage(lua_State *L)
{
    load_ctx_t *c = ctx_of(L);
    te_config_t *cfg = c->cfg;
    check_block_arg(L, "storage");
    te_cfg_check_table(L, 1, "storage", te_cfg_storage_keys);
    once(L, &c->storage_line, "storage");
    const char *s = opt_string(L, 1, "path");
    if (s)
        take_or_raise(L, &c->storage_path, resolve(c->dir, s));
    s = opt_string(L, 1, "durability");
    if (s)
        cfg->durability = strcmp(s, "power") == 0 ? TE_DURABILITY_POWER : TE_DURABILITY_PROCESS;
    lua_getfield(L, 1, "queue_events");
    if (!lua_isnil(L, -1))
        cfg->queue_events = (size_t)lua_tointeger(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, 1, "retention");
    if (lua_istable(L, -1)) {
        static const char *const keys[] = {"raw", "1m", "1h"};
        char **slots[] = {&cfg->retention_raw, &cfg->retention_1m, &cfg->retention_1h};
        int64_t *ns[] = {&cfg->retention_raw_ns, &cfg->retention_1m_ns, &cfg->retention_1h_ns};
        for (int i = 0; i < 3; i++) {
            s = opt_string(L, -1, keys[i]);
            if (s)
                set_or_raise(L, slots[i], s);
            *ns[i] = retention_age(L, s, "storage.retention", keys[i]);
            if (*ns[i] < 0)
                *ns[i] = 0;
        }
        retention_kinds(L, lua_gettop(L), cfg);
    }
    lua_pop(L, 1);
    return 0;
}

static int l_listen(lua_State *L)
{
    load_ctx_t *c = ctx_of(L);
    te_config_t *cfg = c->cfg;
    static const char *const names[] = {"http", "tcp", "udp"};
    char **slots[] = {&cfg->listen_http, &cfg->listen_tcp, &cfg->listen_udp};
    te_err_t err = {0};
    char what[32];

    check_block_arg(L, "listen");
    te_cfg_check_table(L, 1, "listen", te_cfg_listen_keys);
    for (int i = 0; i < 3; i++) {
        const char *s = opt_string(L, 1, names[i]);
        snprintf(what, sizeof(what), "listen: %s", names[i]);
        if (s && te_config_set_listen(slots[i], what, s, &err) < 0)
            te_cfg_raise(L, "%s", err.msg);
    }
    once(L, &c->listen_line, "listen");
    const char *u = opt_string(L, 1, "unix");
    if (u) {
        if (u[0] == '\0' || strcmp(u, "off") == 0)
            set_or_raise(L, &cfg->listen_unix, "");
        else
            take_or_raise(L, &cfg->listen_unix, resolve(c->dir, u));
    }
    lua_getfield(L, 1, "max_body");
    if (!lua_isnil(L, -1))
        te_cfg_parse_size(L, -1, &cfg->max_body_bytes);
    lua_pop(L, 1);
    return 0;
}

static int l_scripts(lua_State *L)
{
    load_ctx_t *c = ctx_of(L);
    check_block_arg(L, "scripts");
    te_cfg_check_table(L, 1, "scripts", te_cfg_scripts_keys);
    once(L, &c->scripts_line, "scripts");
    const char *s = opt_string(L, 1, "dir");
    if (s)
        take_or_raise(L, &c->cfg->scripts_dir, resolve(c->dir, s));
    lua_getfield(L, 1, "memory");
    if (!lua_isnil(L, -1))
        te_cfg_parse_size(L, -1, &c->cfg->script_mem_bytes);
    lua_pop(L, 1);
    lua_getfield(L, 1, "instructions");
    if (!lua_isnil(L, -1))
        c->cfg->script_max_steps = (int64_t)lua_tointeger(L, -1);
    lua_pop(L, 1);
    s = opt_string(L, 1, "call_timeout");
    if (s && te_duration_parse(s, &c->cfg->script_call_ns, NULL) < 0)
        te_cfg_raise(L, "scripts.call_timeout: bad duration \"%s\"", s); /* checked above */
    return 0;
}

static int l_log(lua_State *L)
{
    load_ctx_t *c = ctx_of(L);
    check_block_arg(L, "log");
    te_cfg_check_table(L, 1, "log", te_cfg_log_keys);
    once(L, &c->log_line, "log");
    const char *s = opt_string(L, 1, "level");
    if (s)
        set_or_raise(L, &c->cfg->log_level, s);
    return 0;
}

static int l_auth(lua_State *L)
{
    load_ctx_t *c = ctx_of(L);
    check_block_arg(L, "auth");
    te_cfg_check_table(L, 1, "auth", te_cfg_auth_keys);
    lua_getfield(L, 1, "tokens");
    if (lua_istable(L, -1)) {
        size_t n = lua_rawlen(L, -1);
        for (size_t i = 1; i <= n; i++) {
            lua_rawgeti(L, -1, (lua_Integer)i);
            const char *h = opt_string(L, -1, "sha256");
            size_t len = strlen(h);
            bool hex = len == 64;
            for (size_t j = 0; hex && j < len; j++)
                hex = strchr("0123456789abcdefABCDEF", h[j]) != NULL;
            if (!hex)
                te_cfg_raise(L, "auth.tokens[%d]: sha256 must be 64 hex digits (sha256sum of the "
                            "token), got \"%s\"",
                         (int)i, h);
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    once(L, &c->auth_line, "auth");
    take_or_raise(L, &c->cfg->auth_json, te_cfg_block_json(L, 1, NULL));
    return 0;
}

static int l_redact(lua_State *L)
{
    load_ctx_t *c = ctx_of(L);
    check_block_arg(L, "redact");
    te_cfg_check_table(L, 1, "redact", te_cfg_redact_keys);
    once(L, &c->redact_line, "redact");
    take_or_raise(L, &c->cfg->redact_json, te_cfg_block_json(L, 1, NULL));
    /* a malformed pattern is a startup error here, with the file and line */
    te_redact_t *r = NULL;
    te_err_t err;
    if (te_redact_compile(c->cfg->redact_json, &r, &err) < 0)
        te_cfg_raise(L, "redact: %s", err.msg);
    te_redact_free(r);
    return 0;
}

static int l_alerts(lua_State *L)
{
    load_ctx_t *c = ctx_of(L);
    check_block_arg(L, "alerts");
    te_cfg_check_table(L, 1, "alerts", te_cfg_alerts_keys);
    once(L, &c->alerts_line, "alerts");
    take_or_raise(L, &c->cfg->alerts_json, te_cfg_block_json(L, 1, NULL));
    return 0;
}

static void check_name(lua_State *L, const char *block)
{
    if (lua_type(L, 1) != LUA_TSTRING || lua_rawlen(L, 1) == 0)
        te_cfg_raise(L, "%s: expected a name, as in %s \"name\" { ... }, got %s", block, block,
                 lua_gettop(L) ? luaL_typename(L, 1) : "nothing");
    if (lua_gettop(L) > 1)
        te_cfg_raise(L, "%s \"%s\": expected %s \"name\" { ... }", block, lua_tostring(L, 1), block);
}

/* notifier "name" { ... }: the curried second call, name in upvalue 1. */
static int l_notifier_body(lua_State *L)
{
    load_ctx_t *c = ctx_of(L);
    te_config_t *cfg = c->cfg;
    const char *name = lua_tostring(L, lua_upvalueindex(1));
    char where[160];
    snprintf(where, sizeof(where), "notifier \"%s\"", name);
    check_block_arg(L, where);

    const te_cfg_key_t *keys = NULL;
    lua_getfield(L, 1, "type");
    if (lua_type(L, -1) != LUA_TSTRING)
        te_cfg_raise(L, "%s: type is required (%s)", where, te_cfg_notifier_types_text);
    const char *type = lua_tostring(L, -1);
    lua_pop(L, 1);
    keys = te_cfg_notifier_keys(type);
    if (!keys)
        te_cfg_raise(L, "%s: type must be %s, got \"%s\"", where, te_cfg_notifier_types_text, type);
    /* a key of another notifier type gets a more helpful message than "unknown" */
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        if (lua_type(L, -2) == LUA_TSTRING && !te_cfg_find_key(keys, lua_tostring(L, -2)) &&
            te_cfg_notifier_known_key(lua_tostring(L, -2)))
            te_cfg_raise(L, "%s: key \"%s\" does not apply to type \"%s\"", where,
                     lua_tostring(L, -2), type);
        lua_pop(L, 1);
    }
    te_cfg_check_table(L, 1, where, keys);
    for (size_t i = 0; i < cfg->nnotifiers; i++) {
        if (strcmp(cfg->notifiers[i].name, name) == 0)
            te_cfg_raise(L, "%s: defined twice", where);
    }
    if (strcmp(type, "slack") == 0 && !opt_string(L, 1, "url"))
        te_log(TE_LOG_WARN, "config", "%s: no url (is the environment variable set?)", where);

    te_config_notifier_t *arr =
        realloc(cfg->notifiers, (cfg->nnotifiers + 1) * sizeof(*cfg->notifiers));
    if (!arr)
        te_cfg_raise(L, "out of memory");
    cfg->notifiers = arr;
    te_config_notifier_t *n = &arr[cfg->nnotifiers++];
    memset(n, 0, sizeof(*n));
    set_or_raise(L, &n->name, name);
    set_or_raise(L, &n->type, type);
    const char *path = opt_string(L, 1, "path");
    char *resolved = path ? resolve(c->dir, path) : NULL;
    if (path && !resolved)
        te_cfg_raise(L, "out of memory");
    n->json = te_cfg_block_json(L, 1, resolved);
    free(resolved);
    if (!n->json)
        te_cfg_raise(L, "out of memory");
    return 0;
}

static int l_notifier(lua_State *L)
{
    check_name(L, "notifier");
    lua_pushcclosure(L, l_notifier_body, 1);
    return 1;
}

static int l_source_body(lua_State *L)
{
    load_ctx_t *c = ctx_of(L);
    te_config_t *cfg = c->cfg;
    const char *name = lua_tostring(L, lua_upvalueindex(1));
    char where[160];
    snprintf(where, sizeof(where), "source \"%s\"", name);
    check_block_arg(L, where);
    te_cfg_check_table(L, 1, where, te_cfg_source_keys);
    const char *kind = opt_string(L, 1, "kind");
    if (kind && !te_kind_valid(kind, strlen(kind)))
        te_cfg_raise(L, "%s: kind \"%s\" must match [a-z][a-z0-9_.-]{0,63}", where, kind);
    for (size_t i = 0; i < cfg->nsources; i++) {
        if (strcmp(cfg->sources[i].name, name) == 0)
            te_cfg_raise(L, "%s: defined twice", where);
    }
    te_config_source_t *arr = realloc(cfg->sources, (cfg->nsources + 1) * sizeof(*cfg->sources));
    if (!arr)
        te_cfg_raise(L, "out of memory");
    cfg->sources = arr;
    te_config_source_t *s = &arr[cfg->nsources++];
    memset(s, 0, sizeof(*s));
    set_or_raise(L, &s->name, name);
    set_or_raise(L, &s->type, opt_string(L, 1, "type"));
    take_or_raise(L, &s->path, resolve(c->dir, opt_string(L, 1, "path")));
    if (kind)
        set_or_raise(L, &s->kind, kind);
    take_or_raise(L, &s->json, te_cfg_block_json(L, 1, s->path));
    return 0;
}

static int l_source(lua_State *L)
{
    check_name(L, "source");
    lua_pushcclosure(L, l_source_body, 1);
    return 1;
}

static int l_env(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    const char *v = getenv(name);
    if (v)
        lua_pushstring(L, v);
    else
        lua_pushnil(L);
    return 1;
}

/* --- the sandboxed state --- */

static void *limited_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    load_ctx_t *c = ud;
    if (!ptr)
        osize = 0;
    if (nsize == 0) {
        free(ptr);
        c->mem -= osize;
        return NULL;
    }
    if (nsize > osize && c->mem + (nsize - osize) > CONFIG_MAX_MEMORY)
        return NULL;
    void *p = realloc(ptr, nsize);
    if (p)
        c->mem = c->mem - osize + nsize;
    return p;
}

static void budget_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    load_ctx_t *c = ctx_of(L);
    lua_Debug here;
    c->steps += CONFIG_HOOK_EVERY;
    if (c->steps <= CONFIG_MAX_INSTRUCTIONS)
        return;
    /* level 0 inside a count hook is the Lua function being run */
    if (lua_getstack(L, 0, &here) && lua_getinfo(L, "Sl", &here) && here.currentline > 0)
        lua_pushfstring(L, "%s:%d: ", here.source[0] == '@' ? here.source + 1 : here.short_src,
                        here.currentline);
    else
        lua_pushliteral(L, "");
    lua_pushfstring(L, "configuration ran over %d instructions (an endless loop?)",
                    (int)CONFIG_MAX_INSTRUCTIONS);
    lua_concat(L, 2);
    lua_error(L);
}

static const char sandbox_lua[] =
    "dofile = nil; loadfile = nil\n"
    "local raw_load = load\n"
    "load = function(chunk, name, mode, env) return raw_load(chunk, name, 't', env) end\n";

static int open_sandbox(lua_State *L)
{
    static const luaL_Reg libs[] = {{LUA_GNAME, luaopen_base},
                                    {LUA_STRLIBNAME, luaopen_string},
                                    {LUA_TABLIBNAME, luaopen_table},
                                    {LUA_MATHLIBNAME, luaopen_math},
                                    {NULL, NULL}};
    static const luaL_Reg blocks[] = {
        {"storage", l_storage}, {"listen", l_listen}, {"scripts", l_scripts},
        {"notifier", l_notifier}, {"source", l_source}, {"auth", l_auth},
        {"redact", l_redact}, {"alerts", l_alerts}, {"log", l_log}, {"env", l_env}, {NULL, NULL}};
    for (const luaL_Reg *l = libs; l->func; l++) {
        luaL_requiref(L, l->name, l->func, 1);
        lua_pop(L, 1);
    }
    for (const luaL_Reg *b = blocks; b->func; b++) {
        lua_pushcfunction(L, b->func);
        lua_setglobal(L, b->name);
    }
    if (luaL_loadstring(L, sandbox_lua) != LUA_OK || lua_pcall(L, 0, 0, 0) != LUA_OK)
        return -1;
    return 0;
}

static int run_file(load_ctx_t *c, const char *path, te_err_t *err)
{
    int rc = 0;
    lua_State *L = lua_newstate(limited_alloc, c);
    if (!L)
        return te_err_set(err, TE_ENOMEM, "config: out of memory");
    *(load_ctx_t **)lua_getextraspace(L) = c;
    if (open_sandbox(L) < 0) {
        rc = te_err_set(err, TE_ENOMEM, "config: cannot prepare the Lua state");
        goto out;
    }
    int lrc = luaL_loadfilex(L, path, "t");
    if (lrc == LUA_OK) {
        lua_sethook(L, budget_hook, LUA_MASKCOUNT, CONFIG_HOOK_EVERY);
        lrc = lua_pcall(L, 0, 0, 0);
    }
    if (lrc != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        if (lrc == LUA_ERRMEM)
            rc = te_err_set(err, TE_ECONFIG, "%s: not enough memory (configuration is limited to "
                                             "%u MiB)",
                            path, CONFIG_MAX_MEMORY >> 20);
        else
            rc = te_err_set(err, TE_ECONFIG, "%s", msg ? msg : "error object is not a string");
    }
out:
    lua_close(L);
    return rc;
}

/* --- load --- */

static int set_default(char **slot, const char *value, te_err_t *err)
{
    if (*slot)
        return 0;
    if (te_config_set(slot, value) < 0)
        return te_err_set(err, TE_ENOMEM, "config: out of memory");
    return 0;
}

static const char *nonempty_env(const char *name)
{
    const char *v = getenv(name);
    return v && v[0] ? v : NULL;
}

int te_config_load(const char *path, const char *data_dir_override, te_config_t **out,
                   te_err_t *err)
{
    int rc;
    load_ctx_t c;
    te_config_t *cfg = calloc(1, sizeof(*cfg));

    memset(&c, 0, sizeof(c));
    if (!cfg)
        return te_err_set(err, TE_ENOMEM, "config: out of memory");
    c.cfg = cfg;
    cfg->durability = TE_DURABILITY_PROCESS;
    cfg->max_body_bytes = DEFAULT_MAX_BODY;
    cfg->queue_events = DEFAULT_QUEUE_EVENTS;

    if (!path)
        path = nonempty_env("TELEMETRY_CONFIG");
    if (!path && access("telemetry.lua", F_OK) == 0)
        path = "telemetry.lua";
    if (path) {
        FILE *f = fopen(path, "r");
        if (!f) {
            rc = te_err_set(err, TE_ECONFIG, "cannot read config file %s: %s", path,
                            strerror(errno));
            goto fail;
        }
        fclose(f);
        cfg->file = xstrdup(path);
        c.dir = dir_of(path);
        if (!cfg->file || !c.dir) {
            rc = te_err_set(err, TE_ENOMEM, "config: out of memory");
            goto fail;
        }
        rc = run_file(&c, path, err);
        if (rc < 0)
            goto fail;
    }

    /* data folder: --data > TELEMETRY_DATA > storage.path's folder > ./data */
    const char *data = data_dir_override ? data_dir_override : nonempty_env("TELEMETRY_DATA");
    if (data || !c.storage_path) {
        rc = te_config_set(&cfg->data_dir, data ? data : "./data");
        if (rc == 0) {
            cfg->db_path = join_path(cfg->data_dir, "telemetry.db");
            rc = cfg->db_path ? 0 : TE_ENOMEM;
        }
    } else {
        cfg->db_path = c.storage_path;
        c.storage_path = NULL;
        cfg->data_dir = dir_of(cfg->db_path);
        rc = cfg->data_dir ? 0 : TE_ENOMEM;
    }
    if (rc < 0) {
        rc = te_err_set(err, TE_ENOMEM, "config: out of memory");
        goto fail;
    }
    if (!cfg->listen_unix) {
        cfg->listen_unix = join_path(cfg->data_dir, "telemetry.sock");
        if (!cfg->listen_unix) {
            rc = te_err_set(err, TE_ENOMEM, "config: out of memory");
            goto fail;
        }
    }
    rc = set_default(&cfg->listen_http, "127.0.0.1:4380", err);
    if (rc == 0)
        rc = set_default(&cfg->listen_tcp, "127.0.0.1:4381", err);
    if (rc == 0)
        rc = set_default(&cfg->listen_udp, "127.0.0.1:4382", err);
    if (rc == 0)
        rc = set_default(&cfg->scripts_dir, "lua", err);
    if (rc == 0)
        rc = set_default(&cfg->log_level, "info", err);
    if (rc < 0)
        goto fail;
    free(c.dir);
    free(c.storage_path);
    *out = cfg;
    return 0;
fail:
    free(c.dir);
    free(c.storage_path);
    te_config_free(cfg);
    return rc;
}
