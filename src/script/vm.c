/*
 * vm.c - one script file in its own sandboxed lua_State: memory cap,
 * instruction and time budget, text-only load, lib-only require.
 *
 * THREAD: the thread owning the script (loop); nothing here is shared.
 *
 * The one idea: limits are enforced where Lua cannot reach them. The
 * allocator counts every byte of the state and refuses past the cap; the
 * count hook checks steps and a monotonic deadline. Once a limit is hit
 * the script is "killed": the hook fires on every instruction and raises
 * again, so a pcall inside the script cannot swallow the error and C gets
 * control back; te_script_pcall then marks the script disabled with the
 * message in s->error.
 *
 * Memory: Lua retries a refused allocation once after an emergency full
 * GC, so only a refusal of the same request twice in a row kills the
 * script (a GC that makes room is not a violation). After a kill the
 * allocator allows a small slack so the error text and traceback can be
 * built.
 *
 * Known limit: a long-running C function (a pathological string.find
 * pattern) executes no Lua instructions, so the deadline is checked only
 * when it returns.
 */
#include "script.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/log.h"
#include "core/time.h"
#include "luaopen_te.h"
#include "rules/rule.h"

#define TE_HOOK_EVERY 1000
#define DEFAULT_MEM_BYTES ((size_t)64 << 20)
#define DEFAULT_MAX_STEPS UINT64_C(10000000)
#define DEFAULT_MAX_CALL_NS TE_NS_PER_SEC
#define KILL_SLACK_BYTES ((size_t)64 << 10)
#define MAX_SCRIPT_BYTES ((size_t)4 << 20)

/* The allocator's memory of the last refusal (see the top comment). */
typedef struct {
    const void *ptr;
    size_t osize, nsize;
    bool pending;
} refusal_t;

/* te_script_t has no slot for this, so it lives next to the script. */
typedef struct {
    te_script_t s; /* first: the allocator's ud and the extraspace point here */
    refusal_t refused;
    int depth; /* te_script_pcall nesting */
} script_box;

static void kill_script(te_script_t *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void budget_hook(lua_State *L, lua_Debug *ar);

static void kill_script(te_script_t *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->error, sizeof(s->error), fmt, ap);
    va_end(ap);
    s->killed = true;
    if (s->L)
        lua_sethook(s->L, budget_hook, LUA_MASKCOUNT, 1);
}

static bool same_request(const refusal_t *r, const void *ptr, size_t osize, size_t nsize)
{
    return r->pending && r->ptr == ptr && r->osize == osize && r->nsize == nsize;
}

static void *cap_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    script_box *b = ud;
    te_script_t *s = &b->s;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        s->mem_used -= old;
        return NULL;
    }
    size_t cap = s->limits.mem_bytes;
    if (s->killed || s->status == TE_SCRIPT_DISABLED)
        cap += KILL_SLACK_BYTES;
    if (nsize > old && s->mem_used - old + nsize > cap) {
        /* the same request again: Lua's emergency GC did not make room */
        if (same_request(&b->refused, ptr, osize, nsize) && !s->killed)
            kill_script(s, "%s: memory cap of %zu bytes exceeded; script disabled", s->path,
                        s->limits.mem_bytes);
        b->refused = (refusal_t){ptr, osize, nsize, true};
        return NULL;
    }
    bool retried = same_request(&b->refused, ptr, osize, nsize);
    void *p = realloc(ptr, nsize);
    if (!p)
        return NULL;
    if (retried)
        b->refused.pending = false; /* the emergency GC made room */
    s->mem_used = s->mem_used - old + nsize;
    return p;
}

/* A refusal Lua did not retry (luaL_Buffer boxes, caught by a pcall in
 * the script): after a full GC, would the request fit now? If not, the
 * script is over its cap. Runs only C finalizers: scripts cannot set __gc
 * (see l_setmetatable), so no Lua code runs here. */
static void check_refusal(te_script_t *s)
{
    script_box *b = (script_box *)s;
    if (!b->refused.pending || s->killed)
        return;
    refusal_t r = b->refused;
    b->refused.pending = false;
    lua_gc(s->L, LUA_GCCOLLECT);
    size_t old = r.ptr ? r.osize : 0;
    if (s->mem_used - old + r.nsize > s->limits.mem_bytes)
        kill_script(s, "%s: memory cap of %zu bytes exceeded; script disabled", s->path,
                    s->limits.mem_bytes);
}

static void budget_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    te_script_t *s = *(te_script_t **)lua_getextraspace(L);
    check_refusal(s);
    if (!s->killed) {
        char what[96];
        s->steps += TE_HOOK_EVERY;
        if (s->steps > s->limits.max_steps) {
            snprintf(what, sizeof(what), "instruction budget of %llu exceeded",
                     (unsigned long long)s->limits.max_steps);
        } else if (te_time_mono_ns() > s->deadline_ns) {
            char d[32];
            te_duration_format(s->limits.max_call_ns, d, sizeof(d));
            snprintf(what, sizeof(what), "time budget of %s per call exceeded", d);
        } else {
            return;
        }
        lua_Debug here;
        if (lua_getstack(L, 0, &here) && lua_getinfo(L, "Sl", &here) && here.currentline > 0)
            kill_script(s, "%s:%d: %s; script disabled",
                        here.source[0] == '@' ? here.source + 1 : here.short_src,
                        here.currentline, what);
        else
            kill_script(s, "%s: %s; script disabled", s->path, what);
    }
    /* killed: raise on every instruction until C has control again */
    lua_pushstring(L, s->error);
    lua_error(L);
}

/* Message handler: the message plus a traceback. */
static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (!msg) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

int te_script_pcall(te_script_t *s, int nargs, int nres)
{
    script_box *b = (script_box *)s;
    lua_State *L = s->L; /* [fn, args...] -> [results...] | [msg] */
    int base = lua_gettop(L) - nargs;
    if (s->status == TE_SCRIPT_DISABLED || !lua_checkstack(L, 2)) {
        lua_settop(L, base - 1);
        lua_pushstring(L, s->status == TE_SCRIPT_DISABLED ? s->error : "Lua stack overflow");
        return LUA_ERRRUN;
    }
    lua_pushcfunction(L, traceback);
    lua_insert(L, base); /* [tb, fn, args...] */
    /* A nested call (Lua -> C host -> te_script_pcall) runs under the
     * outer call's budget: resetting it would let a script escape. */
    bool outer = b->depth == 0;
    if (outer) {
        s->steps = 0;
        s->killed = false;
        b->refused.pending = false;
        s->deadline_ns = te_time_mono_ns() + s->limits.max_call_ns;
        lua_sethook(L, budget_hook, LUA_MASKCOUNT, TE_HOOK_EVERY);
    }
    b->depth++;
    int rc = lua_pcall(L, nargs, nres, base);
    b->depth--;
    lua_remove(L, base);
    if (rc != LUA_OK && b->refused.pending && !s->killed)
        kill_script(s, "%s: memory cap of %zu bytes exceeded; script disabled", s->path,
                    s->limits.mem_bytes); /* the refusal ended the call */
    if (!s->killed) {
        if (outer)
            lua_sethook(L, NULL, 0, 0);
        return rc;
    }
    s->status = TE_SCRIPT_DISABLED;
    /* one message for every kind of overrun, even when the kill came as the
     * call returned */
    lua_pop(L, rc != LUA_OK ? 1 : nres == LUA_MULTRET ? lua_gettop(L) - base + 1 : nres);
    lua_pushstring(L, s->error);
    if (outer) {
        lua_sethook(L, NULL, 0, 0);
        s->killed = false;
        te_log(TE_LOG_ERROR, "script", "%s", s->error);
    } /* else the hook still fires on every instruction: the outer call ends too */
    return rc == LUA_OK ? LUA_ERRRUN : rc;
}

/* --- sandbox functions --- */

static te_script_t *script_of(lua_State *L)
{
    return *(te_script_t **)lua_getextraspace(L);
}

/* load(chunk [, chunkname [, mode [, env]]]) with mode forced to "t":
 * binary chunks are not verified by Lua and could break the sandbox. */
static int l_load(lua_State *L)
{
    int n = lua_gettop(L);
    if (n < 2) {
        n = 2;
        lua_settop(L, n); /* chunk and chunkname (nil: the default) */
    }
    lua_pushvalue(L, lua_upvalueindex(1)); /* the stock load */
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_pushliteral(L, "t");
    if (n >= 4)
        lua_pushvalue(L, 4);
    lua_call(L, n >= 4 ? 4 : 3, LUA_MULTRET);
    return lua_gettop(L) - n;
}

/* setmetatable without __gc: finalizers run with hooks off (lgc.c), so a
 * Lua __gc could loop outside the budget. */
static int l_setmetatable(lua_State *L)
{
    if (lua_istable(L, 2)) {
        lua_pushliteral(L, "__gc");
        if (lua_rawget(L, 2) != LUA_TNIL)
            return te_lua_raise(L, "setmetatable: __gc metamethods are not allowed in scripts");
        lua_pop(L, 1);
    }
    lua_pushvalue(L, lua_upvalueindex(1)); /* the stock setmetatable */
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

/* xpcall's message handler runs with hooks off when the error came from
 * the budget hook (ldo.c calls it before unwinding), so a looping handler
 * would escape the budget: once the script is killed the user's handler
 * is skipped and the message passes through. */
static int xpcall_handler(lua_State *L)
{
    if (script_of(L)->killed)
        return 1;
    lua_pushvalue(L, lua_upvalueindex(1)); /* [msg, h] */
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

static int l_xpcall(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, xpcall_handler, 1);
    lua_replace(L, 2);
    lua_pushvalue(L, lua_upvalueindex(1)); /* the stock xpcall */
    lua_insert(L, 1);
    lua_call(L, n, LUA_MULTRET);
    return lua_gettop(L);
}

static int l_print(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1)
            luaL_addchar(&b, '\t');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    te_log(TE_LOG_INFO, "script", "%s: %s", script_of(L)->path, lua_tostring(L, -1));
    return 0;
}

static bool module_name_ok(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > 200 || name[0] == '.' || name[len - 1] == '.' || strstr(name, ".."))
        return false;
    for (const char *p = name; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

/* require(name): te and loaded modules from the registry's _LOADED, else
 * lib_dir/name.lua (dots as slashes), text only. */
static int l_require(lua_State *L)
{
    te_script_t *s = script_of(L);
    if (lua_type(L, 1) != LUA_TSTRING)
        return te_lua_arg_type_error(L, 1, "require", "string");
    lua_settop(L, 1);
    const char *name = lua_tostring(L, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE); /* [name, loaded] */
    if (lua_getfield(L, 2, name) != LUA_TNIL)
        return 1;
    lua_pop(L, 1);
    if (!module_name_ok(name))
        return te_lua_raise(L,
                            "require: bad module name \"%s\" (modules are names like \"util\" or "
                            "\"util.text\" under lua/lib/)",
                            name);
    if (!s->lib_dir)
        return te_lua_raise(L, "require: module \"%s\" not found (no lua/lib/ directory)", name);
    const char *rel = luaL_gsub(L, name, ".", "/");                     /* [name, loaded, rel] */
    const char *path = lua_pushfstring(L, "%s/%s.lua", s->lib_dir, rel); /* [.., rel, path] */
    int rc = luaL_loadfilex(L, path, "t");                              /* [.., path, chunk] */
    if (rc == LUA_ERRFILE)
        return te_lua_raise(L, "require: module \"%s\" not found: no file \"%s\"", name, path);
    if (rc != LUA_OK)
        return lua_error(L);
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 4);
    lua_call(L, 2, 1); /* [name, loaded, rel, path, result] */
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushboolean(L, 1);
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, 2, name);
    return 1;
}

static int setup_sandbox(lua_State *L)
{
    static const luaL_Reg libs[] = {
        {LUA_GNAME, luaopen_base},         {LUA_STRLIBNAME, luaopen_string},
        {LUA_TABLIBNAME, luaopen_table},   {LUA_MATHLIBNAME, luaopen_math},
        {LUA_UTF8LIBNAME, luaopen_utf8},   {NULL, NULL},
    };
    for (const luaL_Reg *lib = libs; lib->func; lib++) {
        luaL_requiref(L, lib->name, lib->func, 1);
        lua_pop(L, 1);
    }
    lua_pushglobaltable(L); /* [_G] */
    lua_pushnil(L);
    lua_setfield(L, -2, "dofile");
    lua_pushnil(L);
    lua_setfield(L, -2, "loadfile");
    lua_getfield(L, -1, "load");
    lua_pushcclosure(L, l_load, 1);
    lua_setfield(L, -2, "load");
    lua_getfield(L, -1, "xpcall");
    lua_pushcclosure(L, l_xpcall, 1);
    lua_setfield(L, -2, "xpcall");
    lua_getfield(L, -1, "setmetatable");
    lua_pushcclosure(L, l_setmetatable, 1);
    lua_setfield(L, -2, "setmetatable");
    lua_pushcfunction(L, l_print);
    lua_setfield(L, -2, "print");
    lua_pushcfunction(L, l_require);
    lua_setfield(L, -2, "require");
    lua_getfield(L, -1, LUA_STRLIBNAME); /* [_G, string] */
    lua_pushnil(L);
    lua_setfield(L, -2, "dump"); /* bytecode out means bytecode in elsewhere */
    lua_pop(L, 2);
    luaL_requiref(L, "te", te_lua_open_engine, 0);
    lua_pop(L, 1);
    lua_pushboolean(L, 0); /* the clock slot exists from the start */
    lua_setfield(L, LUA_REGISTRYINDEX, TE_LUA_CLOCK_KEY);
    return 0;
}

/* --- load / free --- */

static uint64_t fnv1a(const char *p, size_t n)
{
    uint64_t h = UINT64_C(14695981039346656037);
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= UINT64_C(1099511628211);
    }
    return h;
}

static int read_file(const char *path, char **out, size_t *len, te_err_t *err)
{
    struct stat st;
    FILE *f = fopen(path, "rb");
    if (!f)
        return te_err_set(err, TE_EIO, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return te_err_set(err, TE_EIO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > MAX_SCRIPT_BYTES) {
        fclose(f);
        return te_err_set(err, TE_ETOOBIG, "%s: script is over %zu bytes", path,
                          MAX_SCRIPT_BYTES);
    }
    size_t cap = (size_t)st.st_size + 1; /* +1: notice growth while reading */
    char *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        return te_err_set(err, TE_ENOMEM, "%s: out of memory", path);
    }
    size_t n = fread(buf, 1, cap, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || n == cap) {
        free(buf);
        return te_err_set(err, TE_EIO, "%s: cannot read%s", path,
                          bad ? "" : " (the file changed while loading; retry)");
    }
    *out = buf;
    *len = n;
    return 0;
}

/* Copies the message at the top of L into err without its traceback. */
static int take_error(lua_State *L, te_err_t *err)
{
    const char *msg = lua_tostring(L, -1);
    if (!msg)
        msg = "(error object is not a string)";
    const char *tb = strstr(msg, "\nstack traceback:");
    int n = tb ? (int)(tb - msg) : (int)strlen(msg);
    return te_err_set(err, TE_ESCRIPT, "%.*s", n, msg);
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

int te_script_load(const char *path, const char *lib_dir, const te_script_limits_t *limits,
                   te_script_t **out, te_err_t *err)
{
    char *src = NULL, chunkname[1024];
    size_t len = 0;
    int rc = read_file(path, &src, &len, err);
    if (rc < 0)
        return rc;
    script_box *b = calloc(1, sizeof(*b));
    te_script_t *s = b ? &b->s : NULL;
    if (!s || !(s->path = dup_str(path)) || (lib_dir && !(s->lib_dir = dup_str(lib_dir)))) {
        rc = te_err_set(err, TE_ENOMEM, "%s: out of memory", path);
        goto fail;
    }
    if (limits)
        s->limits = *limits;
    if (!s->limits.mem_bytes)
        s->limits.mem_bytes = DEFAULT_MEM_BYTES;
    if (!s->limits.max_steps)
        s->limits.max_steps = DEFAULT_MAX_STEPS;
    if (s->limits.max_call_ns <= 0)
        s->limits.max_call_ns = DEFAULT_MAX_CALL_NS;
    s->version = fnv1a(src, len);
    s->L = lua_newstate(cap_alloc, b);
    if (!s->L) {
        rc = te_err_set(err, TE_ENOMEM, "%s: cannot create a Lua state (memory cap %zu bytes)",
                        path, s->limits.mem_bytes);
        goto fail;
    }
    *(te_script_t **)lua_getextraspace(s->L) = s;
    lua_pushcfunction(s->L, setup_sandbox);
    if (te_script_pcall(s, 0, 0) != LUA_OK) {
        te_err_t why = {0};
        take_error(s->L, &why);
        size_t plen = strlen(path);
        const char *m = why.msg;
        if (strncmp(m, path, plen) == 0 && m[plen] == ':')
            for (m += plen + 1; *m == ' ';)
                m++;
        rc = te_err_set(err, TE_ESCRIPT, "%s: cannot set up the sandbox: %s", path, m);
        goto fail;
    }
    snprintf(chunkname, sizeof(chunkname), "@%s", path);
    if (luaL_loadbufferx(s->L, src, len, chunkname, "t") != LUA_OK) {
        rc = take_error(s->L, err);
        goto fail;
    }
    free(src);
    src = NULL;
    if (te_script_pcall(s, 0, 0) != LUA_OK) {
        rc = take_error(s->L, err);
        goto fail;
    }
    s->status = TE_SCRIPT_OK;
    s->loaded_at_ns = te_time_now_ns(); /* from now on te.rule refuses: see bind_rule.c */
    *out = s;
    return 0;
fail:
    free(src);
    te_script_free(s);
    return rc;
}

void te_script_free(te_script_t *s)
{
    if (!s)
        return;
    if (s->L)
        lua_close(s->L); /* __gc of pending declarations runs here */
    for (size_t i = 0; i < s->ndefs; i++)
        te_rule_def_free(s->defs[i]);
    free(s->defs);
    free(s->path);
    free(s->lib_dir);
    free((script_box *)s);
}

static int set_clock(lua_State *L)
{
    lua_pushvalue(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, TE_LUA_CLOCK_KEY);
    return 0;
}

int te_script_set_clock(te_script_t *s, const te_script_clock_t *clock)
{
    lua_State *L = s->L;
    if (!lua_checkstack(L, 2))
        return TE_ENOMEM;
    lua_pushcfunction(L, set_clock);
    if (clock)
        lua_pushlightuserdata(L, (void *)(uintptr_t)clock);
    else
        lua_pushboolean(L, 0);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        lua_pop(L, 1);
        return TE_ENOMEM;
    }
    return 0;
}
