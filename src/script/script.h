/*
 * script.h - one Lua script file in its own sandboxed lua_State.
 *
 * THREAD: loop (or the thread that owns the script; never shared).
 * te_script_load makes a fresh state with a counting allocator (memory
 * cap), opens only base/string/table/math/utf8, removes dofile/loadfile,
 * makes load text-only, installs a require that searches lua/lib only, and
 * preloads the `te` module (script/luaopen_te.c) with the script as its
 * context (lua_getextraspace). It then runs the file's top level, which
 * declares rules; the declarations are collected as te_rule_def_t.
 * Every call into Lua goes through te_script_pcall (budget + traceback).
 * A script that blows its instruction/time budget or memory cap is marked
 * disabled with the error; the engine keeps running.
 */
#ifndef TE_SCRIPT_SCRIPT_H
#define TE_SCRIPT_SCRIPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

typedef struct lua_State lua_State;
struct te_rule_def;

typedef struct te_script_limits {
    size_t mem_bytes;        /* per-script memory cap; 0 = 64 MiB */
    uint64_t max_steps;      /* instructions per call; 0 = 10,000,000 */
    int64_t max_call_ns;     /* wall time per call; 0 = 1 s */
} te_script_limits_t;

typedef enum { TE_SCRIPT_OK = 0, TE_SCRIPT_ERROR, TE_SCRIPT_DISABLED } te_script_status_t;

typedef struct te_script {
    /* read-only for users */
    char *path;              /* file as given */
    char *lib_dir;           /* lua/lib for require, may be NULL */
    lua_State *L;
    te_script_status_t status;
    char error[TE_ERR_MSG_MAX]; /* "file:line: message" when not OK */
    struct te_rule_def **defs;
    size_t ndefs;
    int64_t loaded_at_ns;
    uint64_t version;        /* content hash of the file */
    /* private */
    te_script_limits_t limits;
    size_t mem_used;
    uint64_t steps;
    int64_t deadline_ns;
    bool killed;
    void *user;              /* the host (engine / test harness) */
} te_script_t;

/* Loads and runs path in a new sandbox. On success *out owns the state and
 * the declarations. On failure (syntax error, runtime error in the top
 * level, a bad declaration, budget) returns TE_ESCRIPT with err as
 * "lua/rules/x.lua:12: te.rule: unknown key \"windw\" (did you mean
 * \"window\"?)", and *out is untouched. */
int te_script_load(const char *path, const char *lib_dir, const te_script_limits_t *limits,
                   te_script_t **out, te_err_t *err);

/* Closes the state and frees the declarations. NULL is a no-op. */
void te_script_free(te_script_t *s);

/* Calls [fn, args...] on s->L with nargs/nres like lua_pcall, under the
 * budget and with a traceback. Returns LUA_OK or an error code with the
 * message on the stack; a budget or memory overrun also marks the script
 * TE_SCRIPT_DISABLED with the message in s->error. */
int te_script_pcall(te_script_t *s, int nargs, int nres);

/* The clock te.now() reads: now_ns(arg), ns since the Unix epoch (the
 * engine clock, virtual under `rules test`). */
typedef struct te_script_clock {
    int64_t (*now_ns)(void *arg);
    void *arg;
} te_script_clock_t;

/* Makes te.now() in s read clock, which the caller owns and keeps alive
 * while s lives; NULL restores the wall clock. Returns 0, or TE_ENOMEM
 * (then nothing changes). Appended for issue #3 (vm). */
int te_script_set_clock(te_script_t *s, const te_script_clock_t *clock);

#endif
