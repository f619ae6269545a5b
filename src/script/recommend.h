/*
 * recommend.h - te.recommend (SPEC 6.4): declaring recommenders in a
 * script (bind_recommend.c) and running one (recommend.c).
 *
 * THREAD: the thread owning the script's lua_State. The engine runs a
 * recommender on libuv's pool in a fresh load of its file (its own
 * lua_State and its own read-only store), so a slow one never stalls the
 * loop; the CLI runs them on main.
 *
 *   te.recommend { name = "premium-downgrade", every = "1h",
 *                  description = "...",
 *                  fn = function(q) return { {severity = "warning", title = "...",
 *                      detail = "...", action = "...", evidence = {...},
 *                      key = "..."}, ... } end }
 *
 * Declarations are kept inside the script's state (engine mode: a list in
 * the registry, TE_LUA_RECS_KEY; te.so: te.declarations() entries of type
 * "recommend"), so the rules side (te_rule_def_t, the ruleset) never sees
 * them. fn gets the read-only q object of script/bind_query.h and returns
 * a list of findings (nil or {} when there is nothing to say). A finding's
 * `key` (optional) identifies it across runs when its title carries
 * changing numbers; see store/recs.h.
 */
#ifndef TE_SCRIPT_RECOMMEND_H
#define TE_SCRIPT_RECOMMEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "script/script.h"

typedef struct lua_State lua_State;
struct te_store;
struct te_rec;

/* Registry key of the engine-mode list of declarations (a Lua sequence of
 * {name, every_ns, line, fn}). */
#define TE_LUA_RECS_KEY "te.recommends"

/* Limits on what one run may return (bigger answers fail the run). */
#define TE_RECOMMEND_MAX_FINDINGS 1000
#define TE_RECOMMEND_MAX_TEXT 8192          /* title, detail, action, key: bytes */
#define TE_RECOMMEND_MAX_EVIDENCE 65536     /* evidence as JSON text: bytes */

/* Wall-time budget of one fn call at least (the configured per-call
 * budget, scripts.call_timeout, is meant for rules that run on the loop
 * every few seconds; a recommender reads days of data on a pool thread
 * once an hour). The instruction budget and the memory cap stay as
 * configured. */
#define TE_RECOMMEND_MIN_CALL_NS (30 * INT64_C(1000000000))

/* Adds te.recommend to the table at the top of the stack, with the mode as
 * first upvalue (luaopen_te.h). Leaves the stack as found; may raise
 * (memory). */
void te_bind_recommend(lua_State *L, bool standalone);

/* One declared recommender, as C data. */
typedef struct te_recommend_decl {
    char name[128];
    int64_t every_ns;
    int line;
} te_recommend_decl_t;

/* The recommenders declared by loaded script s, in declaration order, as
 * a malloc'd array (free()) in *out and its length in *n (0 and NULL when
 * none). Returns 0, or TE_ENOMEM (then *out is NULL, *n 0). */
int te_recommend_decls(te_script_t *s, te_recommend_decl_t **out, size_t *n);

/* Options of one run. */
typedef struct te_recommend_run_opts {
    struct te_store *st;     /* read-only use by q, borrowed; required */
    int64_t now_ns;          /* q.now; q's default range is [now - range, now) */
    int64_t range_ns;        /* 0: 24 h */
} te_recommend_run_opts_t;

/* Runs recommender name of loaded script s: fn(q) under the script's
 * budgets, then checks and copies the findings into a malloc'd array
 * (*out, *n; free with te_recommend_findings_free; each finding's name and
 * fingerprint are set). Returns 0; TE_ENOTFOUND (no such recommender),
 * TE_ESCRIPT (fn raised, blew a budget -- then s is disabled -- or
 * returned something that is not a list of findings) with err as
 * "FILE:LINE: te.recommend \"NAME\": finding #2: \"severity\" must be
 * \"info\", \"warning\" or \"critical\", got \"high\""; or TE_ENOMEM.
 * On failure *out is NULL and *n 0. */
int te_recommend_run(te_script_t *s, const char *name, const te_recommend_run_opts_t *opts,
                     struct te_rec **out, size_t *n, te_err_t *err);

/* Frees n findings and the array. NULL is a no-op. */
void te_recommend_findings_free(struct te_rec *v, size_t n);

#endif
