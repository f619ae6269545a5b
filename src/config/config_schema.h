/*
 * config_schema.h - the declared shape of every telemetry.lua block: which
 * keys exist, their types, limits and allowed values (SPEC section 6.0).
 *
 * THREAD: any (constant tables). config.c checks each block against these
 * tables before copying anything, so adding a key is one line here.
 */
#ifndef TE_CONFIG_CONFIG_SCHEMA_H
#define TE_CONFIG_CONFIG_SCHEMA_H

#include <lua.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    TE_CFG_STRING = 0,  /* any string */
    TE_CFG_ENUM,        /* one of choices */
    TE_CFG_DURATION,    /* "30s", "5m", "2h", "7d", "1w"; choices, when set, are words
                         * allowed as well ("forever") */
    TE_CFG_INT,         /* integer in [min, max] */
    TE_CFG_NUMBER,      /* any number */
    TE_CFG_BOOL,
    TE_CFG_SIZE,        /* bytes: an integer or "16MiB", "512KiB", "1GB" */
    TE_CFG_STRLIST,     /* { "a", "b" } (choices, when set, limit the values) */
    TE_CFG_STR_OR_LIST, /* "a" or { "a", "b" } */
    TE_CFG_STRMAP,      /* { name = "value" }, or with sub { name = { ... } } each
                         * value checked against sub */
    TE_CFG_TABLE,       /* nested table checked against sub */
    TE_CFG_TABLE_LIST   /* { {..}, {..} }, each checked against sub */
} te_cfg_type_t;

/* One key of a block. Arrays of keys end with a {NULL} entry. */
typedef struct te_cfg_key {
    const char *key;
    te_cfg_type_t type;
    bool required;
    int64_t min, max;                /* TE_CFG_INT */
    const char *const *choices;      /* TE_CFG_ENUM / STRLIST: NULL-terminated */
    const char *choices_text;        /* '"process" or "power"' for messages */
    const struct te_cfg_key *sub;    /* TE_CFG_TABLE / TABLE_LIST / STRMAP of tables */
} te_cfg_key_t;

extern const te_cfg_key_t te_cfg_storage_keys[];
extern const te_cfg_key_t te_cfg_listen_keys[];
extern const te_cfg_key_t te_cfg_scripts_keys[];
extern const te_cfg_key_t te_cfg_log_keys[];
extern const te_cfg_key_t te_cfg_auth_keys[];
extern const te_cfg_key_t te_cfg_redact_keys[];
extern const te_cfg_key_t te_cfg_alerts_keys[]; /* alerts { flap, inhibit, poll } */
extern const te_cfg_key_t te_cfg_source_keys[];

/* '"webhook", "slack", "email", "file", "exec" or "stdout"' */
extern const char te_cfg_notifier_types_text[];

/* Keys of notifier type (NULL for an unknown type). */
const te_cfg_key_t *te_cfg_notifier_keys(const char *type);

/* True when key belongs to some notifier type (for "does not apply" errors). */
bool te_cfg_notifier_known_key(const char *key);

/* Reads a size at idx: a positive integer, or a string "<n>[B|KB|MB|GB|KiB|
 * MiB|GiB]" (KB = 1000, KiB = 1024). Returns 0 and sets *out, or -1. Does
 * not raise. */
int te_cfg_parse_size(lua_State *L, int idx, size_t *out);

/* Raises a Lua error "FILE:LINE: <fmt...>" where FILE:LINE is the Lua code
 * that called the running C function (the block's first line). Never
 * returns. */
int te_cfg_raise(lua_State *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Finds key in keys; NULL when unknown. */
const te_cfg_key_t *te_cfg_find_key(const te_cfg_key_t *keys, const char *key);

/* Checks the table at idx against keys (unknown keys with a "did you mean"
 * suggestion, types, limits, durations, required keys); where names the
 * block in messages ("storage", "notifier \"hook\""). Raises on the first
 * problem. */
void te_cfg_check_table(lua_State *L, int idx, const char *where, const te_cfg_key_t *keys);

/* Prints the (already checked) table at idx as compact JSON text, replacing
 * its "path" by resolved_path when both exist. malloc'd; NULL on ENOMEM.
 * Does not raise. */
char *te_cfg_block_json(lua_State *L, int idx, const char *resolved_path);

#endif
