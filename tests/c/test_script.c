/*
 * test_script.c - script/vm.c, script/bind_rule.c and rules/rule.c from C:
 * loading good and bad scripts from a temp dir, error texts with
 * file:line, the instruction/time budget, the memory cap, the collected
 * te_rule_def_t, te_script_pcall on a rule's functions, the clock hook,
 * te_where_match and severity names.
 *
 * THREAD: main only.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/event.h"
#include "core/log.h"
#include "core/time.h"
#include "rules/rule.h"
#include "script/script.h"

static char dir[64];
static char lib[96];
static char path[160];
static int nfile;

static const char *write_script(const char *text)
{
    snprintf(path, sizeof(path), "%s/s%d.lua", dir, ++nfile);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static int setup_dir(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/te_script_XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(lib, sizeof(lib), "%s/lib", dir);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "mkdir -p %s && printf 'return {k = 7}\\n' > %s/m.lua", lib, lib);
    te_log_set_level(TE_LOG_OFF);
    return system(cmd) == 0 ? 0 : -1;
}

static int teardown_dir(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static const te_script_limits_t small = {4u << 20, 200000, 2 * TE_NS_PER_SEC};

#define RULE_PREFIX "local te = require 'te'\n"

static te_script_t *load_ok(const char *text)
{
    te_err_t err = {0};
    te_script_t *s = NULL;
    int rc = te_script_load(write_script(text), lib, &small, &s, &err);
    if (rc != 0)
        fail_msg("load failed: %s", err.msg);
    assert_non_null(s);
    assert_int_equal(s->status, TE_SCRIPT_OK);
    return s;
}

/* Loads text expecting failure; returns the message without the path. */
static const char *load_err(const char *text, const te_script_limits_t *limits)
{
    static te_err_t err;
    te_script_t *s = (te_script_t *)(uintptr_t)1;
    memset(&err, 0, sizeof(err));
    const char *p = write_script(text);
    assert_int_equal(te_script_load(p, lib, limits ? limits : &small, &s, &err), TE_ESCRIPT);
    assert_ptr_equal(s, (te_script_t *)(uintptr_t)1); /* untouched */
    assert_int_equal(strncmp(err.msg, p, strlen(p)), 0);
    return err.msg + strlen(p);
}

static void load_full_rule_collects_def(void **state)
{
    (void)state;
    te_script_t *s = load_ok(RULE_PREFIX
        "te.rule {\n"
        "  name = 'llm-error-rate', kind = 'llm_call',\n"
        "  where = { provider = {'openai','anthropic'}, model = te.match('^gpt') },\n"
        "  group_by = { 'provider', 'model' }, window = '5m', every = '30s',\n"
        "  aggs = { errors = te.count{ status = 'error' }, p95 = te.quantile('latency_ms', 0.95) },\n"
        "  condition = function(a) return a.errors > 1 end,\n"
        "  value = function(a) return a.errors * 2 end,\n"
        "  pending = '1m', keep_firing = '2m', severity = 'critical',\n"
        "  summary = '{{provider}} {{value|pct}}', labels = { team = 'llm' },\n"
        "  notify = { 'stdout', 'slack-ops' }, repeat_every = '4h', max_groups = 50,\n"
        "}\n"
        "te.on_event { name = 'hook', where = { status = 'error' }, fn = function(ev, ctx) end }\n");
    assert_int_equal(s->ndefs, 2);
    te_rule_def_t *d = s->defs[0];
    assert_int_equal(d->type, TE_DEF_RULE);
    assert_string_equal(d->name, "llm-error-rate");
    assert_string_equal(d->kind, "llm_call");
    assert_int_equal(d->line, 2);
    assert_int_equal(d->nwhere, 2);
    for (size_t i = 0; i < d->nwhere; i++) {
        if (strcmp(d->where[i].key, "provider") == 0) {
            assert_int_equal(d->where[i].nvalues, 2);
            assert_string_equal(d->where[i].values[0], "openai");
            assert_string_equal(d->where[i].values[1], "anthropic");
            assert_null(d->where[i].re);
        } else {
            assert_string_equal(d->where[i].key, "model");
            assert_string_equal(d->where[i].pattern, "^gpt");
            assert_non_null(d->where[i].re);
            assert_null(d->where[i].values);
        }
    }
    assert_int_equal(d->ngroup, 2);
    assert_string_equal(d->group_by[1], "model");
    assert_true(d->window_ns == 300 * TE_NS_PER_SEC);
    assert_true(d->every_ns == 30 * TE_NS_PER_SEC);
    assert_true(d->pending_ns == 60 * TE_NS_PER_SEC);
    assert_true(d->keep_firing_ns == 120 * TE_NS_PER_SEC);
    assert_true(d->repeat_every_ns == 4 * 3600 * TE_NS_PER_SEC);
    assert_int_equal(d->naggs, 2);
    for (size_t i = 0; i < d->naggs; i++) {
        te_rule_agg_t *g = &d->aggs[i];
        if (g->op == TE_RAGG_COUNT) {
            assert_string_equal(g->name, "errors");
            assert_null(g->field);
            assert_int_equal(g->nfilter, 1);
            assert_string_equal(g->filter[0].key, "status");
            assert_string_equal(g->filter[0].values[0], "error");
        } else {
            assert_int_equal(g->op, TE_RAGG_QUANTILE);
            assert_string_equal(g->name, "p95");
            assert_string_equal(g->field, "latency_ms");
            assert_true(g->q == 0.95);
            assert_int_equal(g->nfilter, 0);
        }
    }
    assert_int_not_equal(d->condition_ref, LUA_NOREF);
    assert_int_not_equal(d->value_ref, LUA_NOREF);
    assert_int_equal(d->severity_ref, LUA_NOREF);
    assert_int_equal(d->severity, TE_SEV_CRITICAL);
    assert_string_equal(d->summary, "{{provider}} {{value|pct}}");
    assert_int_equal(d->nlabels, 1);
    assert_string_equal(d->label_keys[0], "team");
    assert_string_equal(d->label_values[0], "llm");
    assert_int_equal(d->nnotify, 2);
    assert_string_equal(d->notify[1], "slack-ops");
    assert_int_equal(d->max_groups, 50);
    assert_int_equal(d->fn_ref, LUA_NOREF);

    te_rule_def_t *h = s->defs[1];
    assert_int_equal(h->type, TE_DEF_ON_EVENT);
    assert_string_equal(h->name, "hook");
    assert_null(h->kind);
    assert_int_equal(h->line, 13);
    assert_int_not_equal(h->fn_ref, LUA_NOREF);
    assert_int_equal(h->condition_ref, LUA_NOREF);
    assert_true(s->version != 0);
    te_script_free(s);
}

static void load_minimal_rule_gets_defaults(void **state)
{
    (void)state;
    te_script_t *s = load_ok(RULE_PREFIX "te.rule { name = 'r', kind = 'k', aggs = { n = te.count() },"
                                         " condition = function(a) return true end }\n");
    te_rule_def_t *d = s->defs[0];
    assert_true(d->window_ns == 5 * 60 * TE_NS_PER_SEC);
    assert_true(d->every_ns == 30 * TE_NS_PER_SEC);
    assert_true(d->pending_ns == 0 && d->keep_firing_ns == 0 && d->repeat_every_ns == 0);
    assert_int_equal(d->severity, TE_SEV_WARNING);
    assert_int_equal(d->nnotify, 1);
    assert_string_equal(d->notify[0], "stdout");
    assert_int_equal(d->max_groups, 10000);
    assert_int_equal(d->value_ref, LUA_NOREF);
    assert_null(d->summary);
    assert_int_equal(d->nwhere, 0);
    assert_int_equal(d->ngroup, 0);
    te_script_free(s);
}

static void pcall_runs_condition_and_value(void **state)
{
    (void)state;
    te_script_t *s = load_ok(RULE_PREFIX
        "te.rule { name = 'r', kind = 'k', aggs = { n = te.count() },\n"
        "  condition = function(a) return a.n > 3 end, value = function(a) return a.n / 2 end,\n"
        "  severity = function(a) return a.n > 10 and 'critical' or 'info' end }\n");
    te_rule_def_t *d = s->defs[0];
    lua_State *L = s->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, d->condition_ref);
    lua_createtable(L, 0, 1);
    lua_pushinteger(L, 5);
    lua_setfield(L, -2, "n");
    assert_int_equal(te_script_pcall(s, 1, 1), LUA_OK);
    assert_true(lua_toboolean(L, -1));
    lua_pop(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, d->value_ref);
    lua_createtable(L, 0, 1);
    lua_pushinteger(L, 5);
    lua_setfield(L, -2, "n");
    assert_int_equal(te_script_pcall(s, 1, 1), LUA_OK);
    assert_true(lua_tonumber(L, -1) == 2.5);
    lua_pop(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, d->severity_ref);
    lua_createtable(L, 0, 1);
    lua_pushinteger(L, 11);
    lua_setfield(L, -2, "n");
    assert_int_equal(te_script_pcall(s, 1, 1), LUA_OK);
    assert_string_equal(lua_tostring(L, -1), "critical");
    lua_pop(L, 1);
    assert_int_equal(lua_gettop(L), 0);
    /* an error in a condition: message with file:line and a traceback, the
     * script stays enabled */
    lua_rawgeti(L, LUA_REGISTRYINDEX, d->condition_ref);
    lua_pushnil(L);
    assert_int_equal(te_script_pcall(s, 1, 1), LUA_ERRRUN);
    assert_non_null(strstr(lua_tostring(L, -1), ".lua:3: attempt to index a nil value (local 'a')"));
    assert_non_null(strstr(lua_tostring(L, -1), "stack traceback:"));
    lua_pop(L, 1);
    assert_int_equal(s->status, TE_SCRIPT_OK);
    assert_int_equal(lua_gettop(L), 0);
    te_script_free(s);
}

static void load_errors_name_file_and_line(void **state)
{
    (void)state;
    assert_string_equal(load_err("local x = \n\nend\n", NULL), ":3: unexpected symbol near 'end'");
    assert_string_equal(load_err(RULE_PREFIX "\nte.rule { name = 'r', kind = 'k', windw = '5m' }\n", NULL),
                        ":3: te.rule: unknown key \"windw\" (did you mean \"window\"?)");
    assert_string_equal(load_err(RULE_PREFIX "te.rule { name = 'r', kind = 'k', window = 5 }\n", NULL),
                        ":2: te.rule: \"window\" must be a duration like \"5m\", got number");
    assert_string_equal(load_err(RULE_PREFIX "local a = te.count()\n"
                                             "local function mk() return te.rule { name = 'r', kind = 'k', aggs = { n = a },"
                                             " condition = print } end\nmk()\nmk()\n", NULL),
                        ":3: te.rule: duplicate name \"r\" (already declared at line 3)");
    assert_string_equal(load_err(RULE_PREFIX "te.sum()\n", NULL),
                        ":2: bad argument #1 to 'te.sum' (string expected, got no value)");
    assert_string_equal(load_err("error('boom')\n", NULL), ":1: boom");
    assert_string_equal(load_err("local x = os.getenv('HOME')\n", NULL),
                        ":1: attempt to index a nil value (global 'os')");
    const char *msg = load_err("return require('nope')\n", NULL);
    assert_non_null(strstr(msg, ":1: require: module \"nope\" not found: no file \""));
    assert_non_null(strstr(msg, "/lib/nope.lua\""));
}

static void load_bad_files_fail_with_io_or_toobig(void **state)
{
    (void)state;
    te_err_t err = {0};
    te_script_t *s = NULL;
    assert_int_equal(te_script_load("/nonexistent/x.lua", NULL, NULL, &s, &err), TE_EIO);
    assert_string_equal(err.msg, "/nonexistent/x.lua: cannot open: No such file or directory");
    assert_null(s);
    char msg[256];
    assert_int_equal(te_script_load(dir, NULL, NULL, &s, &err), TE_EIO);
    snprintf(msg, sizeof(msg), "%s: not a regular file", dir);
    assert_string_equal(err.msg, msg);
    /* 4 MiB of comment loads; one byte more is refused */
    char big[200];
    snprintf(big, sizeof(big), "%s/big.lua", dir);
    FILE *f = fopen(big, "w");
    assert_non_null(f);
    fputs("--", f);
    for (size_t i = 2; i < (4u << 20); i++)
        fputc('x', f);
    fclose(f);
    assert_int_equal(te_script_load(big, NULL, NULL, &s, &err), 0);
    te_script_free(s);
    s = NULL;
    f = fopen(big, "a");
    fputc('x', f);
    fclose(f);
    assert_int_equal(te_script_load(big, NULL, NULL, &s, &err), TE_ETOOBIG);
    snprintf(msg, sizeof(msg), "%s: script is over 4194304 bytes", big);
    assert_string_equal(err.msg, msg);
    assert_null(s);
}

static void require_reads_lib_only(void **state)
{
    (void)state;
    te_script_t *s = load_ok("local m = require 'm'\nK = m.k\n");
    lua_getglobal(s->L, "K");
    assert_int_equal(lua_tointeger(s->L, -1), 7);
    lua_pop(s->L, 1);
    te_script_free(s);
    const char *msg = load_err("return require('../s1')\n", NULL);
    assert_non_null(strstr(msg, ":1: require: bad module name \"../s1\""));
}

static void budget_stops_loop_and_disables(void **state)
{
    (void)state;
    te_script_t *s = load_ok("function f() while true do pcall(function() while true do end end) end end\n"
                             "function g() return 1 end\n");
    lua_getglobal(s->L, "f");
    assert_int_equal(te_script_pcall(s, 0, 0), LUA_ERRRUN);
    assert_int_equal(s->status, TE_SCRIPT_DISABLED);
    assert_non_null(strstr(s->error, ".lua:1: instruction budget of 200000 exceeded; script disabled"));
    assert_string_equal(lua_tostring(s->L, -1), s->error);
    lua_pop(s->L, 1);
    /* a disabled script refuses further calls with its error */
    lua_getglobal(s->L, "g");
    assert_int_equal(te_script_pcall(s, 0, 1), LUA_ERRRUN);
    assert_string_equal(lua_tostring(s->L, -1), s->error);
    lua_pop(s->L, 1);
    assert_int_equal(lua_gettop(s->L), 0);
    te_script_free(s);
}

static void budget_allows_call_under_limit(void **state)
{
    (void)state;
    /* 2 instructions per iteration: 40,000 stay under 200,000, 1e6 do not */
    te_script_t *s = load_ok("function f() local x = 0 for i = 1, 40000 do x = x + i end return x end\n"
                             "function g() local x = 0 for i = 1, 1000000 do x = x + i end return x end\n");
    for (int i = 0; i < 3; i++) { /* the budget is per call, not cumulative */
        lua_getglobal(s->L, "f");
        assert_int_equal(te_script_pcall(s, 0, 1), LUA_OK);
        assert_int_equal(lua_tointeger(s->L, -1), 800020000);
        lua_pop(s->L, 1);
    }
    lua_getglobal(s->L, "g");
    assert_int_equal(te_script_pcall(s, 0, 1), LUA_ERRRUN);
    lua_pop(s->L, 1);
    assert_int_equal(s->status, TE_SCRIPT_DISABLED);
    te_script_free(s);
}

static void time_budget_stops_slow_call(void **state)
{
    (void)state;
    te_script_limits_t lim = {4u << 20, UINT64_MAX / 2, 30 * TE_NS_PER_MS};
    const char *msg = load_err("while true do end\n", &lim);
    assert_string_equal(msg, ":1: time budget of 30ms per call exceeded; script disabled");
}

static void memory_cap_disables_script(void **state)
{
    (void)state;
    te_script_t *s = load_ok("function small() return #string.rep('x', 512 * 1024) end\n"
                             "function big() local t = {} while true do t[#t + 1] = ('y'):rep(4096) .. #t end end\n");
    lua_getglobal(s->L, "small");
    assert_int_equal(te_script_pcall(s, 0, 1), LUA_OK);
    assert_int_equal(lua_tointeger(s->L, -1), 512 * 1024);
    lua_pop(s->L, 1);
    assert_true(s->mem_used < small.mem_bytes);
    lua_getglobal(s->L, "big");
    assert_int_not_equal(te_script_pcall(s, 0, 0), LUA_OK);
    assert_int_equal(s->status, TE_SCRIPT_DISABLED);
    assert_non_null(strstr(s->error, ": memory cap of 4194304 bytes exceeded; script disabled"));
    lua_pop(s->L, 1);
    te_script_free(s);
}

static void memory_cap_too_small_fails_load(void **state)
{
    (void)state;
    te_script_limits_t lim = {8 * 1024, 0, 0};
    te_err_t err = {0};
    te_script_t *s = NULL;
    assert_int_not_equal(te_script_load(write_script("return 1\n"), NULL, &lim, &s, &err), 0);
    assert_null(s);
    assert_non_null(strstr(err.msg, "memory cap of 8192 bytes exceeded"));
}

static void rule_after_load_is_refused(void **state)
{
    (void)state;
    te_script_t *s = load_ok(RULE_PREFIX "function late()\n"
                             "  te.rule { name = 'r', kind = 'k', aggs = { n = te.count() }, condition = print }\n"
                             "end\n");
    lua_getglobal(s->L, "late");
    assert_int_equal(te_script_pcall(s, 0, 0), LUA_ERRRUN);
    assert_non_null(strstr(lua_tostring(s->L, -1),
                           ".lua:3: te.rule: declarations belong at the top level of the script, "
                           "not in a function the engine calls later"));
    lua_pop(s->L, 1);
    assert_int_equal(s->ndefs, 0);
    assert_int_equal(s->status, TE_SCRIPT_OK);
    te_script_free(s);
}

/* A host function that calls back into the script (as ctx.emit may). */
static int call_inner(lua_State *L)
{
    te_script_t *s = *(te_script_t **)lua_getextraspace(L);
    lua_getglobal(L, "inner");
    int rc = te_script_pcall(s, 0, 1);
    lua_pushboolean(L, rc == LUA_OK);
    lua_insert(L, -2);
    return 2;
}

static void nested_pcall_shares_the_outer_budget(void **state)
{
    (void)state;
    te_script_t *s = load_ok("function inner() local x = 0 for i = 1, 100 do x = x + i end return x end\n"
                             "function outer() local n = 0 while true do local ok, v = host() n = n + v end end\n"
                             "function spin() return host() end\n");
    lua_register(s->L, "host", call_inner);
    lua_getglobal(s->L, "outer");
    assert_int_equal(te_script_pcall(s, 0, 0), LUA_ERRRUN); /* ends: the budget is not reset */
    assert_int_equal(s->status, TE_SCRIPT_DISABLED);
    assert_non_null(strstr(s->error, "instruction budget of 200000 exceeded; script disabled"));
    lua_pop(s->L, 1);
    assert_int_equal(lua_gettop(s->L), 0);
    te_script_free(s);

    /* a kill inside the nested call ends the outer call too */
    s = load_ok("function inner() while true do end end\n"
                "function outer() while true do pcall(host) end end\n");
    lua_register(s->L, "host", call_inner);
    lua_getglobal(s->L, "outer");
    assert_int_equal(te_script_pcall(s, 0, 0), LUA_ERRRUN);
    assert_int_equal(s->status, TE_SCRIPT_DISABLED);
    assert_non_null(strstr(s->error, ".lua:1: instruction budget of 200000 exceeded"));
    lua_pop(s->L, 1);
    te_script_free(s);
}

static int64_t fixed_clock(void *arg)
{
    return *(int64_t *)arg;
}

static void clock_drives_te_now(void **state)
{
    (void)state;
    te_script_t *s = load_ok("local te = require 'te'\nfunction now() return te.now() end\n");
    int64_t t = 1000 * TE_NS_PER_SEC + 500 * TE_NS_PER_MS;
    te_script_clock_t clock = {fixed_clock, &t};
    assert_int_equal(te_script_set_clock(s, &clock), 0);
    lua_getglobal(s->L, "now");
    assert_int_equal(te_script_pcall(s, 0, 1), LUA_OK);
    assert_true(lua_tonumber(s->L, -1) == 1000.5);
    lua_pop(s->L, 1);
    assert_int_equal(te_script_set_clock(s, NULL), 0);
    lua_getglobal(s->L, "now");
    assert_int_equal(te_script_pcall(s, 0, 1), LUA_OK);
    assert_true(lua_tonumber(s->L, -1) > 1.7e9);
    lua_pop(s->L, 1);
    te_script_free(s);
}

static te_event_t *event(const char *json)
{
    te_event_t *ev = NULL;
    te_event_opts_t opts = {0};
    te_err_t err = {0};
    if (te_event_parse(json, strlen(json), &opts, &ev, &err) != 0)
        fail_msg("bad test event: %s", err.msg);
    return ev;
}

static void where_match_values_and_regex(void **state)
{
    (void)state;
    te_script_t *s = load_ok(RULE_PREFIX
        "te.on_event { name = 'h', where = { provider = {'openai', 'anthropic'}, model = te.match('^gpt-4') },"
        " fn = print }\n");
    te_rule_def_t *d = s->defs[0];
    te_event_t *yes = event("{\"kind\":\"llm_call\",\"provider\":\"openai\",\"model\":\"gpt-4o\"}");
    te_event_t *other = event("{\"kind\":\"llm_call\",\"provider\":\"mistral\",\"model\":\"gpt-4o\"}");
    te_event_t *nomodel = event("{\"kind\":\"llm_call\",\"provider\":\"anthropic\"}");
    te_event_t *re_no = event("{\"kind\":\"llm_call\",\"provider\":\"anthropic\",\"model\":\"claude-gpt-4\"}");
    assert_true(te_where_match(d->where, d->nwhere, yes));
    assert_false(te_where_match(d->where, d->nwhere, other));
    assert_false(te_where_match(d->where, d->nwhere, nomodel));
    assert_false(te_where_match(d->where, d->nwhere, re_no));
    assert_true(te_where_match(d->where, 0, other)); /* no matchers: everything */
    te_event_free(yes);
    te_event_free(other);
    te_event_free(nomodel);
    te_event_free(re_no);
    te_script_free(s);
}

static void severity_parse_and_name(void **state)
{
    (void)state;
    te_severity_t sev = TE_SEV_INFO;
    assert_int_equal(te_severity_parse("critical", &sev), 0);
    assert_int_equal(sev, TE_SEV_CRITICAL);
    assert_int_equal(te_severity_parse("warning", &sev), 0);
    assert_int_equal(sev, TE_SEV_WARNING);
    assert_int_equal(te_severity_parse("info", &sev), 0);
    assert_int_equal(sev, TE_SEV_INFO);
    assert_int_equal(te_severity_parse("Warning", &sev), TE_EINVAL);
    assert_int_equal(te_severity_parse(NULL, &sev), TE_EINVAL);
    assert_string_equal(te_severity_name(TE_SEV_WARNING), "warning");
    assert_string_equal(te_severity_name((te_severity_t)7), "unknown");
    te_rule_def_free(NULL);
    te_script_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(load_full_rule_collects_def),
        cmocka_unit_test(load_minimal_rule_gets_defaults),
        cmocka_unit_test(pcall_runs_condition_and_value),
        cmocka_unit_test(load_errors_name_file_and_line),
        cmocka_unit_test(load_bad_files_fail_with_io_or_toobig),
        cmocka_unit_test(require_reads_lib_only),
        cmocka_unit_test(budget_stops_loop_and_disables),
        cmocka_unit_test(budget_allows_call_under_limit),
        cmocka_unit_test(time_budget_stops_slow_call),
        cmocka_unit_test(memory_cap_disables_script),
        cmocka_unit_test(memory_cap_too_small_fails_load),
        cmocka_unit_test(rule_after_load_is_refused),
        cmocka_unit_test(nested_pcall_shares_the_outer_budget),
        cmocka_unit_test(clock_drives_te_now),
        cmocka_unit_test(where_match_values_and_regex),
        cmocka_unit_test(severity_parse_and_name),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
