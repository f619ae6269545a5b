/*
 * rules_test.c - `telemetry-engine rules test [PATH...]` (SPEC 6.6): finds
 * rule test files, loads each in its own sandbox and runs its tests.
 *
 * THREAD: main.
 *
 * A test file is a script like any other: te_script_load runs it in a
 * fresh sandbox (memory cap, instruction budget, require from lua/lib/
 * only), so a syntax or runtime error is reported as FILE:LINE. Its top
 * level returns a table of test data; te_script_load drops results, so
 * the chunk is run a second time in the same sandbox to get the table
 * (a test file's top level is declarative: running it twice is harmless).
 * The table is copied into cJSON (data only: strings, numbers, booleans,
 * te.null, nested tables; map keys sorted so messages are stable) and the
 * state is closed before any test runs.
 */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "../config/config.h"
#include "rules_test.h"

#define CMD "rules test"
#define MAX_DEPTH 32
#define MAX_NODES 2000000
#define MAX_TEST_FILE_BYTES ((size_t)4 << 20)

void te_cli_help_rules_test(FILE *f)
{
    fprintf(f,
            "usage: " TE_CLI_PROG " rules test [PATH...] [--config FILE]\n"
            "\n"
            "Runs rule unit tests: each test file returns a table of fixture events at\n"
            "virtual times and the alert states expected at given times; every test runs\n"
            "in an isolated in-memory engine with a virtual clock (see docs/rules-testing.md).\n"
            "\n"
            "  PATH      a test file, or a folder whose *_test.lua files are run\n"
            "            (default: <scripts dir>/rules, i.e. lua/rules)\n"
            "  --config  telemetry.lua whose scripts { dir = ... } gives the default folder\n"
            "\n"
            "Prints 'ok   FILE: test' or 'FAIL FILE: test' with the reasons, then\n"
            "'N passed, M failed'. Exit status: 0 when every test passed, 1 otherwise,\n"
            "2 on a usage error.\n");
}

/* --- Lua table -> cJSON --- */

typedef struct convert_ctx {
    cJSON *root;
    size_t nodes;
    char path[256];
} convert_ctx_t;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int convert_value(lua_State *L, convert_ctx_t *c, int idx, cJSON *parent,
                         const char *key, int depth);

/* Adds item to parent (an array when key is NULL); it then belongs to the
 * tree, so a later Lua error leaks nothing. */
static cJSON *attach(lua_State *L, convert_ctx_t *c, cJSON *parent, const char *key, cJSON *item)
{
    if (!item)
        luaL_error(L, "out of memory");
    if (++c->nodes > MAX_NODES) {
        cJSON_Delete(item);
        luaL_error(L, "%s: more than %d values", c->path[0] ? c->path : "test data", MAX_NODES);
    }
    if (!parent)
        c->root = item;
    else if (key)
        cJSON_AddItemToObject(parent, key, item);
    else
        cJSON_AddItemToArray(parent, item);
    return item;
}

static int convert_table(lua_State *L, convert_ctx_t *c, int idx, cJSON *parent, const char *key,
                         int depth)
{
    size_t n = 0, nstr = 0, len = strlen(c->path);
    lua_Integer max = 0;
    if (depth > MAX_DEPTH)
        return luaL_error(L, "%s: tables nested deeper than %d", c->path, MAX_DEPTH);
    luaL_checkstack(L, 8, "test data too deep");
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) { /* [.., k, v] */
        n++;
        if (lua_type(L, -2) == LUA_TSTRING)
            nstr++;
        else if (lua_isinteger(L, -2) && lua_tointeger(L, -2) > max)
            max = lua_tointeger(L, -2);
        lua_pop(L, 1);
    }
    if (n > 0 && nstr == 0 && (size_t)max == n) { /* a list 1..n */
        cJSON *arr = attach(L, c, parent, key, cJSON_CreateArray());
        for (size_t i = 1; i <= n; i++) {
            snprintf(c->path + len, sizeof(c->path) - len, "[%zu]", i);
            lua_rawgeti(L, idx, (lua_Integer)i);
            convert_value(L, c, lua_gettop(L), arr, NULL, depth + 1);
            lua_pop(L, 1);
        }
        c->path[len] = '\0';
        return 0;
    }
    if (nstr != n)
        return luaL_error(L, "%s: a table must be a list {a, b} or a map {k = v} with string "
                          "keys, not both", c->path[0] ? c->path : "test data");
    cJSON *obj = attach(L, c, parent, key, cJSON_CreateObject());
    const char **keys = lua_newuserdatauv(L, (n ? n : 1) * sizeof(*keys), 0); /* anchored scratch */
    int ikeys = lua_gettop(L);
    size_t k = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        keys[k++] = lua_tostring(L, -2); /* kept alive by the table */
        lua_pop(L, 1);
    }
    qsort(keys, n, sizeof(*keys), cmp_str);
    for (size_t i = 0; i < n; i++) {
        snprintf(c->path + len, sizeof(c->path) - len, "%s%s", len ? "." : "", keys[i]);
        lua_getfield(L, idx, keys[i]);
        convert_value(L, c, lua_gettop(L), obj, keys[i], depth + 1);
        lua_pop(L, 1);
    }
    c->path[len] = '\0';
    lua_remove(L, ikeys);
    return 0;
}

static int convert_value(lua_State *L, convert_ctx_t *c, int idx, cJSON *parent,
                         const char *key, int depth)
{
    switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN:
        attach(L, c, parent, key, cJSON_CreateBool(lua_toboolean(L, idx)));
        return 0;
    case LUA_TNUMBER: {
        double d = lua_tonumber(L, idx);
        if (!isfinite(d))
            return luaL_error(L, "%s: numbers must be finite", c->path);
        attach(L, c, parent, key, cJSON_CreateNumber(d));
        return 0;
    }
    case LUA_TSTRING:
        attach(L, c, parent, key, cJSON_CreateString(lua_tostring(L, idx)));
        return 0;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) { /* te.null */
            attach(L, c, parent, key, cJSON_CreateNull());
            return 0;
        }
        break;
    case LUA_TTABLE:
        return convert_table(L, c, idx, parent, key, depth);
    default:
        break;
    }
    return luaL_error(L, "%s: a %s is not test data (use strings, numbers, booleans and tables)",
                      c->path[0] ? c->path : "test data", luaL_typename(L, idx));
}

/* [ctx, table] -> []: fills ctx->root. */
static int convert(lua_State *L)
{
    convert_ctx_t *c = lua_touserdata(L, 1);
    return convert_value(L, c, 2, NULL, NULL, 0);
}

/* --- loading a test file --- */

static int read_source(const char *path, char **out, size_t *len, te_err_t *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return te_err_set(err, TE_EIO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = malloc(MAX_TEST_FILE_BYTES + 1);
    size_t n = buf ? fread(buf, 1, MAX_TEST_FILE_BYTES + 1, f) : 0;
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad || n > MAX_TEST_FILE_BYTES) {
        free(buf);
        return te_err_set(err, !buf ? TE_ENOMEM : bad ? TE_EIO : TE_ETOOBIG,
                          "%s: %s", path, !buf ? "out of memory" : bad ? "cannot read"
                                                                      : "test file over 4 MiB");
    }
    *out = buf;
    *len = n;
    return 0;
}

/* The message at the top of L without its traceback, into err. */
static int take_error(lua_State *L, int code, te_err_t *err)
{
    const char *msg = lua_tostring(L, -1);
    if (!msg)
        msg = "(error object is not a string)";
    const char *tb = strstr(msg, "\nstack traceback:");
    return te_err_set(err, code, "%.*s", tb ? (int)(tb - msg) : (int)strlen(msg), msg);
}

/* Loads path in a sandbox and copies the table it returns into *out. */
static int load_test_file(const char *path, const char *lib_dir, cJSON **out, te_err_t *err)
{
    te_script_t *s = NULL;
    char *src = NULL, chunk[1024];
    size_t len = 0;
    convert_ctx_t *c = NULL;
    int rc = te_script_load(path, lib_dir, NULL, &s, err);
    if (rc < 0)
        return rc;
    if ((rc = read_source(path, &src, &len, err)) < 0)
        goto done;
    snprintf(chunk, sizeof(chunk), "@%s", path);
    lua_State *L = s->L;
    if (luaL_loadbufferx(L, src, len, chunk, "t") != LUA_OK) {
        rc = take_error(L, TE_ESCRIPT, err);
        goto done;
    }
    if (te_script_pcall(s, 0, 1) != LUA_OK) {
        rc = take_error(L, TE_ESCRIPT, err);
        goto done;
    }
    if (!lua_istable(L, -1)) {
        rc = te_err_set(err, TE_EINVAL,
                        "%s: a test file must return a table { rule_files = {...}, tests = "
                        "{...} }, got %s (see docs/rules-testing.md)",
                        path, luaL_typename(L, -1));
        goto done;
    }
    if (!(c = calloc(1, sizeof(*c)))) {
        rc = te_err_set(err, TE_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    lua_pushcfunction(L, convert); /* [t, convert] */
    lua_pushlightuserdata(L, c);
    lua_pushvalue(L, -3);          /* [t, convert, c, t] */
    if (te_script_pcall(s, 2, 0) != LUA_OK) {
        te_err_t e2;
        take_error(L, TE_EINVAL, &e2);
        rc = te_err_set(err, TE_EINVAL, "%s: %s", path, e2.msg);
        goto done;
    }
    *out = c->root;
    c->root = NULL;
    rc = 0;
done:
    if (c)
        cJSON_Delete(c->root);
    free(c);
    free(src);
    te_script_free(s);
    return rc;
}

/* dirname(file)/../lib when it is a folder (lua/rules/x_test.lua -> lua/lib). */
static char *lib_dir_of(const char *file)
{
    struct stat sb;
    const char *slash = strrchr(file, '/');
    size_t dir = slash ? (size_t)(slash - file) + 1 : 0;
    char *p = malloc(dir + sizeof("../lib"));
    if (!p)
        return NULL;
    memcpy(p, file, dir);
    memcpy(p + dir, "../lib", sizeof("../lib"));
    if (stat(p, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        free(p);
        return NULL;
    }
    return p;
}

static void run_file(const char *path, te_rules_test_tally_t *tally)
{
    te_err_t err;
    cJSON *spec = NULL;
    char *lib = lib_dir_of(path);
    te_err_clear(&err);
    if (load_test_file(path, lib, &spec, &err) < 0) {
        const char *m = err.msg;
        /* "path: ..." messages from the loader already name the file */
        size_t n = strlen(path);
        if (strncmp(m, path, n) == 0 && m[n] == ':' && m[n + 1] == ' ')
            fprintf(stdout, "FAIL %s: %s\n", path, m + n + 2);
        else
            fprintf(stdout, "FAIL %s: %s\n", path, m);
        tally->failed++;
    } else {
        te_rules_test_run_file(path, spec, lib, NULL, stdout, tally);
    }
    cJSON_Delete(spec);
    free(lib);
}

/* --- finding the files --- */

typedef struct file_list {
    char **p;
    size_t n, cap;
} file_list_t;

static int list_add(file_list_t *l, const char *dir, const char *name)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **p = realloc(l->p, cap * sizeof(*p));
        if (!p)
            return TE_ENOMEM;
        l->p = p;
        l->cap = cap;
    }
    if (dir && strcmp(dir, ".") == 0)
        dir = NULL; /* "x_test.lua", not "./x_test.lua" */
    size_t dn = dir ? strlen(dir) : 0, nn = strlen(name);
    bool slash = dn > 0 && dir[dn - 1] != '/';
    char *s = malloc(dn + slash + nn + 1);
    if (!s)
        return TE_ENOMEM;
    if (dn)
        memcpy(s, dir, dn);
    if (slash)
        s[dn] = '/';
    memcpy(s + dn + slash, name, nn + 1);
    l->p[l->n++] = s;
    return 0;
}

static bool is_test_name(const char *name)
{
    size_t n = strlen(name);
    return n > 9 && name[0] != '.' && strcmp(name + n - 9, "_test.lua") == 0;
}

/* Adds dir's *_test.lua files, sorted. Returns how many, or < 0. */
static int add_dir(file_list_t *l, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return TE_EIO;
    size_t first = l->n;
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d)) != NULL)
        if (is_test_name(de->d_name))
            rc = list_add(l, dir, de->d_name);
    closedir(d);
    if (rc < 0)
        return rc;
    if (l->n > first) /* qsort(NULL, 0, ...) is undefined */
        qsort(l->p + first, l->n - first, sizeof(char *), cmp_str);
    return (int)(l->n - first);
}

int te_cli_rules_test(int argc, char **argv)
{
    te_cli_args_t a;
    te_err_t err;
    file_list_t files = {0};
    te_rules_test_tally_t tally = {0, 0};
    char *default_dir = NULL;
    int rc = TE_CLI_FAIL;
    te_err_clear(&err);
    if (te_cli_parse(&a, NULL, 0, argc, argv, &err) < 0)
        return te_cli_usage_error(CMD, "%s", err.msg);
    if (a.help) {
        te_cli_help_rules_test(stdout);
        te_cli_args_free(&a);
        return TE_CLI_OK;
    }
    const char *const *paths = a.pos;
    size_t npaths = a.npos;
    if (npaths == 0) {
        te_config_t *cfg = NULL;
        if (te_cli_load_config(CMD, &a, &cfg) != 0)
            goto done;
        const char *sd = cfg->scripts_dir ? cfg->scripts_dir : "lua";
        default_dir = malloc(strlen(sd) + sizeof("/rules"));
        if (default_dir) {
            strcpy(default_dir, sd);
            strcat(default_dir, "/rules");
        }
        te_config_free(cfg);
        if (!default_dir) {
            te_cli_fail(CMD, "out of memory");
            goto done;
        }
        paths = (const char *const *)&default_dir;
        npaths = 1;
    }
    for (size_t i = 0; i < npaths; i++) {
        struct stat sb;
        const char *p = paths[i];
        int n;
        if (stat(p, &sb) != 0) {
            printf("FAIL %s: cannot open: %s\n", p, strerror(errno));
            tally.failed++;
        } else if (S_ISDIR(sb.st_mode)) {
            if ((n = add_dir(&files, p)) < 0) {
                te_cli_fail(CMD, "%s: cannot read the folder", p);
                goto done;
            }
            if (n == 0) {
                printf("FAIL %s: no *_test.lua files in this folder\n", p);
                tally.failed++;
            }
        } else if (list_add(&files, NULL, p) < 0) {
            te_cli_fail(CMD, "out of memory");
            goto done;
        }
    }
    for (size_t i = 0; i < files.n; i++)
        run_file(files.p[i], &tally);
    printf("%d passed, %d failed\n", tally.passed, tally.failed);
    fflush(stdout);
    rc = tally.failed == 0 ? TE_CLI_OK : TE_CLI_FAIL;
done:
    for (size_t i = 0; i < files.n; i++)
        free(files.p[i]);
    free(files.p);
    free(default_dir);
    te_cli_args_free(&a);
    return rc;
}
