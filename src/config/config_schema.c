/*
 * config_schema.c - the declared shape of every telemetry.lua block.
 *
 * THREAD: any (constant tables; the checks run on the thread loading the
 * configuration, inside its throwaway lua_State).
 *
 * Checking raises a Lua error at the first problem: callers check a block
 * completely before copying anything out of it, so a raise never leaks.
 */
#include "config_schema.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <lauxlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/err.h"
#include "../core/time.h"
#include "../core/suggest.h"

#define END {NULL, TE_CFG_STRING, false, 0, 0, NULL, NULL, NULL}
#define STR(k) {k, TE_CFG_STRING, false, 0, 0, NULL, NULL, NULL}
#define STR_REQ(k) {k, TE_CFG_STRING, true, 0, 0, NULL, NULL, NULL}
#define DUR(k) {k, TE_CFG_DURATION, false, 0, 0, NULL, NULL, NULL}
#define INT(k, lo, hi) {k, TE_CFG_INT, false, lo, hi, NULL, NULL, NULL}
#define BOOL(k) {k, TE_CFG_BOOL, false, 0, 0, NULL, NULL, NULL}
#define SIZE(k) {k, TE_CFG_SIZE, false, 0, 0, NULL, NULL, NULL}
#define ENUM(k, c, t) {k, TE_CFG_ENUM, false, 0, 0, c, t, NULL}
#define ENUM_REQ(k, c, t) {k, TE_CFG_ENUM, true, 0, 0, c, t, NULL}
#define LIST(k) {k, TE_CFG_STRLIST, false, 0, 0, NULL, NULL, NULL}
#define LIST_OF(k, c, t) {k, TE_CFG_STRLIST, false, 0, 0, c, t, NULL}
#define STR_OR_LIST_REQ(k) {k, TE_CFG_STR_OR_LIST, true, 0, 0, NULL, NULL, NULL}
#define MAP(k) {k, TE_CFG_STRMAP, false, 0, 0, NULL, NULL, NULL}
#define TABLE(k, s) {k, TE_CFG_TABLE, false, 0, 0, NULL, NULL, s}
#define TABLES(k, s) {k, TE_CFG_TABLE_LIST, false, 0, 0, NULL, NULL, s}

static const char *const durability_choices[] = {"process", "power", NULL};
static const char *const level_choices[] = {"debug", "info", "warn", "error", "off", NULL};
static const char *const scope_choices[] = {"ingest", "read", "admin", NULL};
static const char *const builtin_choices[] = {"email", "card", "api_key", "ipv4", "jwt", NULL};
static const char *const source_types[] = {"tail", NULL};

/* storage.retention: each age is a duration or "forever" (keep); kinds maps
 * a kind name to its own raw / 1m / 1h, which win over the global ones */
#define KEEP(k) {k, TE_CFG_DURATION, false, 0, 0, keep_choices, "\"forever\"", NULL}
static const char *const keep_choices[] = {"forever", NULL};
static const te_cfg_key_t retention_kind_keys[] = {KEEP("raw"), KEEP("1m"), KEEP("1h"), END};
static const te_cfg_key_t retention_keys[] = {
    KEEP("raw"), KEEP("1m"), KEEP("1h"),
    {"kinds", TE_CFG_STRMAP, false, 0, 0, NULL, NULL, retention_kind_keys}, END};

const te_cfg_key_t te_cfg_storage_keys[] = {
    STR("path"),
    ENUM("durability", durability_choices, "\"process\" or \"power\""),
    TABLE("retention", retention_keys),
    INT("queue_events", 1, 100000000),
    END,
};

const te_cfg_key_t te_cfg_listen_keys[] = {
    STR("http"), STR("tcp"), STR("udp"), STR("unix"), SIZE("max_body"), END,
};

const te_cfg_key_t te_cfg_scripts_keys[] = {
    STR("dir"), SIZE("memory"), INT("instructions", 1000, INT64_C(1000000000000)),
    DUR("call_timeout"), END};

const te_cfg_key_t te_cfg_log_keys[] = {
    ENUM("level", level_choices, "\"debug\", \"info\", \"warn\", \"error\" or \"off\""),
    END,
};

static const te_cfg_key_t token_keys[] = {
    STR_REQ("name"),
    STR_REQ("sha256"),
    LIST_OF("scopes", scope_choices, "\"ingest\", \"read\", \"admin\""),
    END,
};

const te_cfg_key_t te_cfg_auth_keys[] = {TABLES("tokens", token_keys), END};

const te_cfg_key_t te_cfg_redact_keys[] = {
    LIST_OF("builtin", builtin_choices, "\"email\", \"card\", \"api_key\", \"ipv4\", \"jwt\""),
    LIST("patterns"),
    END,
};

const te_cfg_key_t te_cfg_source_keys[] = {
    ENUM_REQ("type", source_types, "\"tail\""),
    STR_REQ("path"),
    STR("kind"),
    STR("source"),
    END,
};

static const te_cfg_key_t flap_keys[] = {INT("changes", 0, 1000), DUR("window"), END};
static const te_cfg_key_t inhibit_keys[] = {MAP("source"), MAP("target"), LIST("equal"), END};

const te_cfg_key_t te_cfg_alerts_keys[] = {
    TABLE("flap", flap_keys), TABLES("inhibit", inhibit_keys), DUR("poll"), END};

/* notifiers: every type has `type`; the rest depends on the type; the
 * grouping keys (group_by, group_wait, group_interval) go with every type
 * but file and stdout, and the engine's dispatcher reads them */
#define NOTIFY_GROUP LIST("group_by"), DUR("group_wait"), DUR("group_interval")
#define NOTIFY_TYPE ENUM_REQ("type", notifier_types, te_cfg_notifier_types_text)
static const char *const notifier_types[] = {"webhook", "slack", "email", "file",
                                             "exec",    "stdout", NULL};
const char te_cfg_notifier_types_text[] =
    "\"webhook\", \"slack\", \"email\", \"file\", \"exec\" or \"stdout\"";

static const te_cfg_key_t webhook_keys[] = {
    NOTIFY_TYPE, STR_REQ("url"), DUR("timeout"), INT("retries", 0, 100), STR("rate_limit"),
    STR("template"), MAP("headers"), BOOL("tls"), NOTIFY_GROUP, END,
};
static const te_cfg_key_t slack_keys[] = {
    NOTIFY_TYPE, STR("url"), DUR("timeout"), INT("retries", 0, 100), STR("rate_limit"),
    STR("template"), STR("username"), NOTIFY_GROUP, END,
};
static const char *const email_tls[] = {"try", "always", NULL};
static const te_cfg_key_t email_keys[] = {
    NOTIFY_TYPE, STR_REQ("smtp"), STR_REQ("from"), STR_OR_LIST_REQ("to"), STR("username"),
    STR("password"), ENUM("tls", email_tls, "\"try\" or \"always\""), DUR("timeout"),
    INT("retries", 0, 100), STR("rate_limit"),
    STR("template"), NOTIFY_GROUP, END,
};
static const te_cfg_key_t file_keys[] = {NOTIFY_TYPE, STR_REQ("path"), STR("template"), END};
static const te_cfg_key_t exec_keys[] = {
    NOTIFY_TYPE, STR_OR_LIST_REQ("command"), DUR("timeout"), STR("rate_limit"), NOTIFY_GROUP, END,
};
static const te_cfg_key_t stdout_keys[] = {NOTIFY_TYPE, STR("template"), END};

static const struct {
    const char *type;
    const te_cfg_key_t *keys;
} notifier_schemas[] = {
    {"webhook", webhook_keys}, {"slack", slack_keys}, {"email", email_keys},
    {"file", file_keys},       {"exec", exec_keys},   {"stdout", stdout_keys},
};
#define NSCHEMAS (sizeof(notifier_schemas) / sizeof(notifier_schemas[0]))

const te_cfg_key_t *te_cfg_notifier_keys(const char *type)
{
    for (size_t i = 0; i < NSCHEMAS; i++) {
        if (strcmp(notifier_schemas[i].type, type) == 0)
            return notifier_schemas[i].keys;
    }
    return NULL;
}

bool te_cfg_notifier_known_key(const char *key)
{
    for (size_t i = 0; i < NSCHEMAS; i++) {
        for (const te_cfg_key_t *k = notifier_schemas[i].keys; k->key; k++) {
            if (strcmp(k->key, key) == 0)
                return true;
        }
    }
    return false;
}

int te_cfg_parse_size(lua_State *L, int idx, size_t *out)
{
    static const struct {
        const char *unit;
        uint64_t mult;
    } units[] = {{"", 1},          {"B", 1},           {"KB", 1000},
                 {"MB", 1000000},  {"GB", 1000000000}, {"KiB", 1024},
                 {"MiB", 1048576}, {"GiB", 1073741824}};
    if (lua_type(L, idx) == LUA_TNUMBER) {
        if (!lua_isinteger(L, idx) || lua_tointeger(L, idx) <= 0)
            return -1;
        *out = (size_t)lua_tointeger(L, idx);
        return 0;
    }
    const char *s = lua_tostring(L, idx);
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || s[0] == '-' || v == 0)
        return -1;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(end, units[i].unit) == 0) {
            if (v > UINT64_MAX / units[i].mult / 2)
                return -1;
            *out = (size_t)(v * units[i].mult);
            return 0;
        }
    }
    return -1;
}

/* --- raising errors with the caller's file:line --- */

/* Raises "FILE:LINE: msg" where FILE:LINE is the Lua code calling the block. */
int te_cfg_raise(lua_State *L, const char *fmt, ...)
{
    char msg[TE_ERR_MSG_MAX];
    va_list ap;
    lua_Debug ar;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
        const char *src = ar.source[0] == '@' ? ar.source + 1 : ar.short_src;
        lua_pushfstring(L, "%s:%d: %s", src, ar.currentline, msg);
    } else {
        lua_pushstring(L, msg);
    }
    return lua_error(L);
}

/* --- schema checking (raises) --- */

/* The known key closest to key: edit distance <= 2, else one that shares
 * all of key but its last letter as a prefix ("retry" -> "retries"). */
static const char *nearest(const char *key, const te_cfg_key_t *keys)
{
    const char *best = NULL;
    size_t bestd = 3, len = strlen(key);
    for (const te_cfg_key_t *k = keys; k->key; k++) {
        size_t d = te_edit_distance(key, k->key);
        if (d < bestd) {
            bestd = d;
            best = k->key;
        }
    }
    for (const te_cfg_key_t *k = keys; !best && len >= 4 && k->key; k++) {
        if (strncmp(key, k->key, len - 1) == 0)
            best = k->key;
    }
    return best;
}

const te_cfg_key_t *te_cfg_find_key(const te_cfg_key_t *keys, const char *key)
{
    for (const te_cfg_key_t *k = keys; k->key; k++) {
        if (strcmp(k->key, key) == 0)
            return k;
    }
    return NULL;
}

static void check_value(lua_State *L, int idx, const char *where, const te_cfg_key_t *k);

/* Checks the table at idx against keys; where names the block ("storage"). */
void te_cfg_check_table(lua_State *L, int idx, const char *where, const te_cfg_key_t *keys)
{
    idx = lua_absindex(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) { /* [.., k, v] */
        if (lua_type(L, -2) != LUA_TSTRING)
            te_cfg_raise(L, "%s: unexpected value without a name (write key = value)", where);
        const char *key = lua_tostring(L, -2);
        const te_cfg_key_t *k = te_cfg_find_key(keys, key);
        if (!k) {
            const char *near = nearest(key, keys);
            if (near)
                te_cfg_raise(L, "%s: unknown key \"%s\" (did you mean \"%s\"?)", where, key, near);
            te_cfg_raise(L, "%s: unknown key \"%s\"", where, key);
        }
        check_value(L, -1, where, k);
        lua_pop(L, 1);
    }
    for (const te_cfg_key_t *k = keys; k->key; k++) {
        if (!k->required)
            continue;
        lua_getfield(L, idx, k->key);
        if (lua_isnil(L, -1))
            te_cfg_raise(L, "%s: %s is required", where, k->key);
        lua_pop(L, 1);
    }
}

static void check_strlist(lua_State *L, int idx, const char *where, const te_cfg_key_t *k)
{
    idx = lua_absindex(L, idx);
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (!lua_isinteger(L, -2) || lua_tointeger(L, -2) < 1 || lua_tointeger(L, -2) > n)
            te_cfg_raise(L, "%s: %s must be a list of strings", where, k->key);
        if (lua_type(L, -1) != LUA_TSTRING)
            te_cfg_raise(L, "%s: %s[%d] must be a string, got %s", where, k->key,
                     (int)lua_tointeger(L, -2), luaL_typename(L, -1));
        const char *s = lua_tostring(L, -1);
        if (k->choices) {
            bool ok = false;
            for (const char *const *c = k->choices; *c; c++)
                ok = ok || strcmp(*c, s) == 0;
            if (!ok)
                te_cfg_raise(L, "%s: %s: unknown value \"%s\" (known: %s)", where, k->key, s,
                         k->choices_text);
        }
        lua_pop(L, 1);
    }
}

static void check_value(lua_State *L, int idx, const char *where, const te_cfg_key_t *k)
{
    int t = lua_type(L, idx);
    const char *got = luaL_typename(L, idx);
    char sub[160];
    te_err_t err = {0};

    switch (k->type) {
    case TE_CFG_STRING:
        if (t != LUA_TSTRING)
            te_cfg_raise(L, "%s: %s must be a string, got %s", where, k->key, got);
        return;
    case TE_CFG_ENUM: {
        if (t != LUA_TSTRING)
            te_cfg_raise(L, "%s: %s must be %s, got %s", where, k->key, k->choices_text, got);
        const char *s = lua_tostring(L, idx);
        for (const char *const *c = k->choices; *c; c++) {
            if (strcmp(*c, s) == 0)
                return;
        }
        te_cfg_raise(L, "%s: %s must be %s, got \"%s\"", where, k->key, k->choices_text, s);
        return;
    }
    case TE_CFG_DURATION: {
        int64_t ns;
        if (t != LUA_TSTRING)
            te_cfg_raise(L, "%s.%s: duration must be a string such as \"30s\", got %s", where,
                     k->key, got);
        const char *s = lua_tostring(L, idx);
        for (const char *const *c = k->choices; c && *c; c++) {
            if (strcmp(*c, s) == 0)
                return; /* a word allowed besides durations ("forever") */
        }
        if (te_duration_parse(s, &ns, &err) < 0 || ns < 0) {
            if (k->choices_text)
                te_cfg_raise(L, "%s.%s: bad duration \"%s\" (use 30s, 5m, 2h, 7d, 1w or %s)",
                             where, k->key, s, k->choices_text);
            te_cfg_raise(L, "%s.%s: bad duration \"%s\" (use 30s, 5m, 2h, 7d, 1w)", where, k->key,
                     s);
        }
        return;
    }
    case TE_CFG_INT:
        if (!lua_isinteger(L, idx) || lua_tointeger(L, idx) < k->min ||
            lua_tointeger(L, idx) > k->max) {
            if (t == LUA_TNUMBER)
                te_cfg_raise(L, "%s: %s must be an integer from %lld to %lld, got %s", where, k->key,
                         (long long)k->min, (long long)k->max, lua_tostring(L, idx));
            te_cfg_raise(L, "%s: %s must be an integer, got %s", where, k->key, got);
        }
        return;
    case TE_CFG_NUMBER:
        if (t != LUA_TNUMBER)
            te_cfg_raise(L, "%s: %s must be a number, got %s", where, k->key, got);
        return;
    case TE_CFG_BOOL:
        if (t != LUA_TBOOLEAN)
            te_cfg_raise(L, "%s: %s must be true or false, got %s", where, k->key, got);
        return;
    case TE_CFG_SIZE:
        if (t == LUA_TNUMBER || t == LUA_TSTRING) {
            size_t bytes;
            if (te_cfg_parse_size(L, idx, &bytes) == 0)
                return;
        }
        te_cfg_raise(L, "%s: %s must be a size in bytes (an integer or \"16MiB\", \"512KiB\"), got "
                    "%s",
                 where, k->key, t == LUA_TSTRING ? lua_tostring(L, idx) : got);
        return;
    case TE_CFG_STRLIST:
        if (t != LUA_TTABLE)
            te_cfg_raise(L, "%s: %s must be a list of strings { \"a\", \"b\" }, got %s", where,
                     k->key, got);
        check_strlist(L, idx, where, k);
        return;
    case TE_CFG_STR_OR_LIST:
        if (t == LUA_TSTRING)
            return;
        if (t != LUA_TTABLE)
            te_cfg_raise(L, "%s: %s must be a string or a list of strings, got %s", where, k->key,
                     got);
        check_strlist(L, idx, where, k);
        return;
    case TE_CFG_STRMAP:
        if (k->sub) { /* { name = { ... } }: each value checked against sub */
            if (t != LUA_TTABLE)
                te_cfg_raise(L, "%s: %s must be a table { name = { ... } }, got %s", where, k->key,
                             got);
            idx = lua_absindex(L, idx);
            lua_pushnil(L);
            while (lua_next(L, idx)) {
                if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TTABLE)
                    te_cfg_raise(L, "%s: %s must map names to tables { ... }", where, k->key);
                snprintf(sub, sizeof(sub), "%s.%s.%s", where, k->key, lua_tostring(L, -2));
                te_cfg_check_table(L, -1, sub, k->sub);
                lua_pop(L, 1);
            }
            return;
        }
        if (t != LUA_TTABLE)
            te_cfg_raise(L, "%s: %s must be a table of strings { name = \"value\" }, got %s", where,
                     k->key, got);
        idx = lua_absindex(L, idx);
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
                te_cfg_raise(L, "%s: %s must map names to strings", where, k->key);
            lua_pop(L, 1);
        }
        return;
    case TE_CFG_TABLE:
        if (t != LUA_TTABLE)
            te_cfg_raise(L, "%s: %s must be a table { ... }, got %s", where, k->key, got);
        snprintf(sub, sizeof(sub), "%s.%s", where, k->key);
        te_cfg_check_table(L, idx, sub, k->sub);
        return;
    case TE_CFG_TABLE_LIST: {
        if (t != LUA_TTABLE)
            te_cfg_raise(L, "%s: %s must be a list of tables { { ... }, ... }, got %s", where,
                     k->key, got);
        idx = lua_absindex(L, idx);
        lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            if (!lua_isinteger(L, -2) || lua_tointeger(L, -2) < 1 || lua_tointeger(L, -2) > n ||
                lua_type(L, -1) != LUA_TTABLE)
                te_cfg_raise(L, "%s: %s must be a list of tables { { ... }, ... }", where, k->key);
            snprintf(sub, sizeof(sub), "%s.%s[%d]", where, k->key, (int)lua_tointeger(L, -2));
            te_cfg_check_table(L, -1, sub, k->sub);
            lua_pop(L, 1);
        }
        return;
    }
    }
}

/* --- Lua table -> JSON text (after checking: does not raise except on ENOMEM) --- */

static cJSON *to_json(lua_State *L, int idx, int depth)
{
    int t = lua_type(L, idx);
    if (depth > 16)
        return NULL;
    if (t == LUA_TSTRING)
        return cJSON_CreateString(lua_tostring(L, idx));
    if (t == LUA_TBOOLEAN)
        return cJSON_CreateBool(lua_toboolean(L, idx));
    if (t == LUA_TNUMBER)
        return cJSON_CreateNumber(lua_tonumber(L, idx));
    if (t != LUA_TTABLE)
        return cJSON_CreateNull();
    idx = lua_absindex(L, idx);
    size_t n = lua_rawlen(L, idx);
    cJSON *out = n > 0 ? cJSON_CreateArray() : cJSON_CreateObject();
    if (!out)
        return NULL;
    if (n > 0) {
        for (size_t i = 1; i <= n; i++) {
            lua_rawgeti(L, idx, (lua_Integer)i);
            cJSON *item = to_json(L, -1, depth + 1);
            lua_pop(L, 1);
            if (!item || !cJSON_AddItemToArray(out, item)) {
                cJSON_Delete(item);
                cJSON_Delete(out);
                return NULL;
            }
        }
        return out;
    }
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) == LUA_TSTRING) {
            cJSON *item = to_json(L, -1, depth + 1);
            if (!item || !cJSON_AddItemToObject(out, lua_tostring(L, -2), item)) {
                cJSON_Delete(item);
                cJSON_Delete(out);
                lua_pop(L, 2);
                return NULL;
            }
        }
        lua_pop(L, 1);
    }
    return out;
}

/* Prints the table at idx as JSON, replacing "path" by resolved when given. */
char *te_cfg_block_json(lua_State *L, int idx, const char *resolved_path)
{
    cJSON *j = to_json(L, idx, 0);
    char *text = NULL;
    if (!j)
        return NULL;
    if (resolved_path && cJSON_GetObjectItemCaseSensitive(j, "path")) {
        cJSON *p = cJSON_CreateString(resolved_path);
        if (!p || !cJSON_ReplaceItemInObjectCaseSensitive(j, "path", p)) {
            cJSON_Delete(p);
            cJSON_Delete(j);
            return NULL;
        }
    }
    text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return text;
}
