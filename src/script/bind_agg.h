/*
 * bind_agg.h - the aggregate constructors and te.match (bind_agg.c), and
 * the `where`-table helpers that te.rule shares with them.
 *
 * THREAD: the thread owning the lua_State.
 */
#ifndef TE_SCRIPT_BIND_AGG_H
#define TE_SCRIPT_BIND_AGG_H

#include <stdbool.h>
#include <stddef.h>

#include "rules/rule.h"

typedef struct lua_State lua_State;

#define TE_AGG_MT "te.Agg"

/* Adds te.count, te.sum, te.avg, te.min, te.max, te.quantile, te.rate,
 * te.distinct, te.last and te.match to the table at the top of the stack,
 * each with the mode as first upvalue (luaopen_te.h). Leaves the stack as
 * found; may raise (memory). */
void te_bind_agg(lua_State *L, bool standalone);

/* Checks the where/filter table at idx: keys are tag names, values a
 * string, a non-empty list of strings or te.match(). who prefixes messages
 * ("te.rule: where"). Raises "FILE:LINE: who.key ..." on the first
 * problem; returns only when the table is valid. */
void te_bind_where_check(lua_State *L, int idx, const char *who);

/* Copies a checked where table at idx into *out and *n. The array is
 * stored in *out and *n as soon as it exists, so whatever was copied belongs
 * to the caller (te_rule_def_free frees it) even on failure. Returns 0 or
 * -1 (out of memory). Never raises. */
int te_bind_where_build(lua_State *L, int idx, te_where_t **out, size_t *n);

/* True when idx holds a te.Agg; then also re-checks its filter table
 * (raises, see te_bind_where_check; who names the aggregate). */
bool te_bind_agg_check(lua_State *L, int idx, const char *who);

/* Fills op, q, field and filter of g from the te.Agg at idx (checked with
 * te_bind_agg_check). Pieces belong to g as soon as they exist. Returns 0
 * or -1 (out of memory). Never raises. */
int te_bind_agg_build(lua_State *L, int idx, te_rule_agg_t *g);

/* "count", "sum", ... for op ("?" when out of range). */
const char *te_bind_agg_op_name(te_ragg_op_t op);

#endif
