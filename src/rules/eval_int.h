/*
 * eval_int.h - the inside of te_ruleset_t, shared by eval.c, group.c and
 * hook.c only.
 *
 * THREAD: loop.
 *
 * A group's identity is a short list of strings ("items"): for a rule the
 * group_by values in order, for an on_event hook the alert name followed
 * by sorted key/value pairs of ctx.alert{group=...}. Items are hashed with
 * separators and stored packed ("a\0b\0") in the group, so lookups compare
 * the full key without building it.
 */
#ifndef TE_RULES_EVAL_INT_H
#define TE_RULES_EVAL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rules/alert.h"
#include "rules/eval.h"
#include "rules/rule.h"
#include "rules/window.h"

#define TE_GROUP_MAX_ITEMS (1 + 2 * TE_EVENT_MAX_TAGS)
#define TE_DEFAULT_MAX_GROUPS 10000u

/* A detector group's method state (rules/eval_detect.c). A built-in
 * method lives in det; a Lua method in a table of the script's registry
 * (lua_ref), or as an encoded blob while it waits for its script (after a
 * reload or a restart) to decode it at the next evaluation. */
struct te_detector;
typedef struct te_group_det {
    struct te_detector *det;
    int lua_ref;            /* LUA_NOREF when none */
    unsigned char *blob;    /* pending state (built-in or Lua), owned */
    size_t bloblen;
    int64_t seen_ns;        /* last event fed to the group (0: none since restore) */
    bool has_verdict;
    double score, baseline;
} te_group_det_t;

typedef struct te_group {
    uint64_t hash;
    char *key;              /* packed items, owned */
    size_t keylen;
    size_t nitems;
    int64_t last_event_ns;  /* rule: last event added; hook: last ctx.alert */
    int64_t expires_ns;     /* hook alerts: resolve at this time */
    te_alert_t alert;       /* identity set at creation */
    te_group_det_t *det;    /* detectors only, made at the first evaluation; owned */
    size_t nwin;
    te_window_t *win[];     /* one per agg (rule), none for hooks */
} te_group_t;

typedef struct te_group_map {
    te_group_t **slots;     /* open addressing, linear probing; NULL = empty */
    size_t cap, n;
} te_group_map_t;

typedef struct te_hook_box te_hook_box_t;

/* Interned tag-key indices of one aggregate (see te_ruleset.keys). */
typedef struct te_agg_keys {
    uint32_t *filter;       /* nfilter indices, into the rule's kidx */
    uint32_t field;         /* distinct: the tag's index */
} te_agg_keys_t;

#define TE_MAX_TAG_KEYS 4096u

typedef struct te_live_rule {
    te_rule_def_t *def;     /* borrowed from script */
    te_script_t *script;
    size_t decl;            /* index in script->defs */
    te_window_opts_t *wopts; /* per agg */
    uint32_t *kidx;         /* interned keys: where, then group_by, then filters */
    te_agg_keys_t *akeys;   /* per agg */
    te_group_map_t groups;
    int64_t next_eval_ns;
    bool failed;            /* last evaluation raised */
    bool limit_reported;
    char error[TE_ERR_MSG_MAX];
    char warning[96];
    int64_t last_eval_ns;
    uint64_t evals, errors, cpu_ns, groups_dropped;
    int ctx_ref;            /* on_event: the ctx table in the script's registry */
    te_hook_box_t *ctx_box; /* on_event: the box the ctx closures share */
} te_live_rule_t;

struct te_ruleset {
    te_ruleset_opts_t opts;
    uint64_t rng;
    te_live_rule_t **rules;
    size_t n, cap;
    /* Tag keys used by any rule, interned (only grows, at most
     * TE_MAX_TAG_KEYS), and a per-event cache of their values: the event
     * being fed is gen; kgen[i] == gen means kval[i] is its tag value. */
    char **keys;
    size_t nkeys, capkeys;
    const char **kval;
    uint32_t *kgen;
    uint32_t gen;
};

/* Hash of items (never 0). Cannot fail. */
uint64_t te_group_hash(const char *const *items, size_t n);

/* Finds the group with these items (hash from te_group_hash), or NULL. */
te_group_t *te_group_find(const te_group_map_t *m, const char *const *items, size_t n,
                          uint64_t hash);

/* Makes a group with nwin windows (opts per window, clock at now_ns), adds
 * it to m. NULL on ENOMEM / bad window (nothing added). */
te_group_t *te_group_add(te_group_map_t *m, const char *const *items, size_t n, uint64_t hash,
                         const te_window_opts_t *wopts, size_t nwin, int64_t now_ns);

/* Removes g from m and frees it. */
void te_group_remove(te_group_map_t *m, te_group_t *g);

/* Frees every group and the table. */
void te_group_map_free(te_group_map_t *m);

/* The live rule named name, or NULL. */
te_live_rule_t *te_ruleset_find(const te_ruleset_t *rs, const char *name);

/* Calls the alert callback. */
void te_ruleset_notify(te_ruleset_t *rs, const te_alert_t *a, te_alert_transition_t t);

/* Makes the ctx table of an on_event rule (hook.c). Returns 0 or TE_ENOMEM. */
int te_hook_init(te_ruleset_t *rs, te_live_rule_t *r, te_err_t *err);

/* Drops the ctx table (the script must be alive). */
void te_hook_close(te_live_rule_t *r);

/* Runs the hook of r on ev (where/kind already matched). */
void te_hook_run(te_ruleset_t *rs, te_live_rule_t *r, const te_event_t *ev, int64_t now_ns);

/* --- detectors (eval_detect.c) --- */

/* Checks a detector def (method parameters, summary with the detector
 * labels); 0 or TE_EINVAL with err "path:line: detector \"x\": ...". */
int te_detect_def_check(const te_rule_def_t *d, const char *path, te_err_t *err);

/* True when two detector defs keep the same method state (method and its
 * parameters, stat, every). */
bool te_detect_def_same(const te_rule_def_t *a, const te_rule_def_t *b);

/* Evaluates every group of detector r at now_ns, then expires idle groups. */
void te_detect_eval(te_ruleset_t *rs, te_live_rule_t *r, int64_t now_ns);

/* Before r moves from old_s to a new script on reload: Lua method states
 * are encoded into their groups' blobs (decoded by the new state later). */
void te_detect_rebind(te_live_rule_t *r);

/* Frees a group's detector state (the Lua ref is left to its state). */
void te_group_det_free(te_group_det_t *gd);

/* CPU time of this thread in ns (status only). */
uint64_t te_eval_cpu_ns(void);

/* Records a Lua error of r from the top of the stack of L (popped). */
void te_eval_lua_error(te_live_rule_t *r, lua_State *L, int64_t now_ns);

#endif
