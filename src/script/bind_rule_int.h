/*
 * bind_rule_int.h - the spec-table readers of bind_rule.c, shared with
 * bind_detect.c so te.detector checks its keys exactly like te.rule.
 *
 * THREAD: the thread owning the lua_State (a script's top level).
 *
 * Every function reads the spec table at stack index 1 and raises a Lua
 * error naming fn, the key and the caller's file:line on bad input.
 */
#ifndef TE_SCRIPT_BIND_RULE_INT_H
#define TE_SCRIPT_BIND_RULE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rules/rule.h"

typedef struct lua_State lua_State;

/* Checks that argument 1 is one table declared at the top level and that
 * its keys are all in keys (NULL-terminated; a near miss is suggested). */
void te_bind_def_check_spec(lua_State *L, const char *fn, const char *const *keys);

/* Pushes a box owning a fresh def of type (freed with the box unless
 * te_bind_def_finish takes it): [spec] -> [spec, box]. */
te_rule_def_t *te_bind_def_new(lua_State *L, const char *fn, te_def_type_t type);

/* Reads name (required), kind and where into def. */
void te_bind_def_name_kind(lua_State *L, const char *fn, te_rule_def_t *def, bool kind_required);

/* Reads spec[key] as a list of non-empty strings; returns the Lua type
 * found (LUA_TNIL: absent, nothing set). */
int te_bind_def_strlist(lua_State *L, const char *fn, const char *key, char ***out, size_t *n);

/* Reads spec[key] as a duration (dflt when absent); positive: > 0. */
int64_t te_bind_def_duration(lua_State *L, const char *fn, const char *key, const char *dflt,
                             bool positive);

/* Reads spec[key] as a string into *slot (left NULL when absent). */
void te_bind_def_string(lua_State *L, const char *fn, const char *key, bool required, char **slot);

/* Reads labels = { k = "v" } into def. */
void te_bind_def_labels(lua_State *L, const char *fn, te_rule_def_t *def);

/* Raises when name is already declared by this script / module. */
void te_bind_def_unique(lua_State *L, const char *fn, const char *name);

/* [spec, box] -> engine: the def moves to the script, 0 results;
 * standalone: pushes the description table and returns 1. */
int te_bind_def_finish(lua_State *L, const char *fn);

#endif
