/*
 * test_config.c - telemetry.lua loading: defaults, precedence, every error
 * message a user can see, sandbox and limits.
 *
 * Each test runs in a fresh temporary folder (chdir), so "telemetry.lua"
 * in error messages is the name as given.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "store/store.h"

static char old_cwd[4096];
static char tmp_dir[256];

static int setup(void **state)
{
    (void)state;
    assert_non_null(getcwd(old_cwd, sizeof(old_cwd)));
    snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/te_config_XXXXXX");
    assert_non_null(mkdtemp(tmp_dir));
    assert_int_equal(chdir(tmp_dir), 0);
    unsetenv("TELEMETRY_DATA");
    unsetenv("TELEMETRY_CONFIG");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[512];
    assert_int_equal(chdir(old_cwd), 0);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_dir);
    assert_int_equal(system(cmd), 0);
    unsetenv("TELEMETRY_DATA");
    unsetenv("TELEMETRY_CONFIG");
    return 0;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Loads text as telemetry.lua and expects failure with exactly msg. */
static void expect_error(const char *text, const char *msg)
{
    te_config_t *cfg = NULL;
    te_err_t err = {0};
    write_file("telemetry.lua", text);
    int rc = te_config_load("telemetry.lua", NULL, &cfg, &err);
    if (rc == 0 || strcmp(err.msg, msg) != 0)
        fprintf(stderr, "got rc %d msg: %s\nwanted:     %s\n", rc, err.msg, msg);
    assert_int_equal(rc, TE_ECONFIG);
    assert_null(cfg);
    assert_string_equal(err.msg, msg);
}

static te_config_t *load_ok(const char *text)
{
    te_config_t *cfg = NULL;
    te_err_t err = {0};
    write_file("telemetry.lua", text);
    int rc = te_config_load("telemetry.lua", NULL, &cfg, &err);
    if (rc != 0)
        fprintf(stderr, "unexpected error: %s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_non_null(cfg);
    return cfg;
}

static void config_load_without_file_gives_defaults(void **state)
{
    (void)state;
    te_config_t *cfg = NULL;
    assert_int_equal(te_config_load(NULL, NULL, &cfg, NULL), 0);
    assert_null(cfg->file);
    assert_string_equal(cfg->data_dir, "./data");
    assert_string_equal(cfg->db_path, "./data/telemetry.db");
    assert_string_equal(cfg->listen_http, "127.0.0.1:4380");
    assert_string_equal(cfg->listen_tcp, "127.0.0.1:4381");
    assert_string_equal(cfg->listen_udp, "127.0.0.1:4382");
    assert_string_equal(cfg->listen_unix, "./data/telemetry.sock");
    assert_string_equal(cfg->scripts_dir, "lua");
    assert_string_equal(cfg->log_level, "info");
    assert_int_equal(cfg->durability, TE_DURABILITY_PROCESS);
    assert_int_equal(cfg->max_body_bytes, 16u * 1024u * 1024u);
    assert_int_equal(cfg->queue_events, 65536);
    assert_null(cfg->retention_raw);
    assert_int_equal(cfg->nnotifiers, 0);
    assert_int_equal(cfg->nsources, 0);
    assert_null(cfg->auth_json);
    te_config_free(cfg);
}

static void config_load_picks_up_telemetry_lua_in_cwd(void **state)
{
    (void)state;
    te_config_t *cfg = NULL;
    write_file("telemetry.lua", "storage { durability = \"power\" }\n");
    assert_int_equal(te_config_load(NULL, NULL, &cfg, NULL), 0);
    assert_string_equal(cfg->file, "telemetry.lua");
    assert_int_equal(cfg->durability, TE_DURABILITY_POWER);
    te_config_free(cfg);
}

static void config_load_env_overrides_defaults(void **state)
{
    (void)state;
    te_config_t *cfg = NULL;
    assert_int_equal(mkdir("conf", 0755), 0);
    write_file("conf/x.lua", "scripts { dir = \"rules\" }\n");
    setenv("TELEMETRY_DATA", "/tmp/te-env-data", 1);
    setenv("TELEMETRY_CONFIG", "conf/x.lua", 1);
    assert_int_equal(te_config_load(NULL, NULL, &cfg, NULL), 0);
    assert_string_equal(cfg->file, "conf/x.lua");
    assert_string_equal(cfg->data_dir, "/tmp/te-env-data");
    assert_string_equal(cfg->db_path, "/tmp/te-env-data/telemetry.db");
    assert_string_equal(cfg->listen_unix, "/tmp/te-env-data/telemetry.sock");
    assert_string_equal(cfg->scripts_dir, "conf/rules");
    te_config_free(cfg);
}

static void config_load_data_flag_beats_env_and_storage_path(void **state)
{
    (void)state;
    te_config_t *cfg = NULL;
    write_file("telemetry.lua", "storage { path = \"db/t.db\" }\n");
    setenv("TELEMETRY_DATA", "envdir", 1);
    assert_int_equal(te_config_load("telemetry.lua", "flagdir", &cfg, NULL), 0);
    assert_string_equal(cfg->data_dir, "flagdir");
    assert_string_equal(cfg->db_path, "flagdir/telemetry.db");
    te_config_free(cfg);
    /* env beats the file */
    assert_int_equal(te_config_load("telemetry.lua", NULL, &cfg, NULL), 0);
    assert_string_equal(cfg->db_path, "envdir/telemetry.db");
    te_config_free(cfg);
    /* the file's path when neither is given */
    unsetenv("TELEMETRY_DATA");
    assert_int_equal(te_config_load("telemetry.lua", NULL, &cfg, NULL), 0);
    assert_string_equal(cfg->db_path, "db/t.db");
    assert_string_equal(cfg->data_dir, "db");
    assert_string_equal(cfg->listen_unix, "db/telemetry.sock");
    te_config_free(cfg);
}

static void config_load_resolves_relative_paths_against_file_folder(void **state)
{
    (void)state;
    te_config_t *cfg = NULL;
    assert_int_equal(mkdir("etc", 0755), 0);
    write_file("etc/telemetry.lua",
               "storage { path = \"db/t.db\" }\n"
               "listen { unix = \"run/te.sock\" }\n"
               "scripts { dir = \"/abs/lua\" }\n"
               "notifier \"log\" { type = \"file\", path = \"alerts.jsonl\" }\n"
               "source \"calls\" { type = \"tail\", path = \"calls.jsonl\", kind = \"llm_call\" }\n");
    assert_int_equal(te_config_load("etc/telemetry.lua", NULL, &cfg, NULL), 0);
    assert_string_equal(cfg->db_path, "etc/db/t.db");
    assert_string_equal(cfg->data_dir, "etc/db");
    assert_string_equal(cfg->listen_unix, "etc/run/te.sock");
    assert_string_equal(cfg->scripts_dir, "/abs/lua");
    assert_int_equal(cfg->nnotifiers, 1);
    assert_non_null(strstr(cfg->notifiers[0].json, "\"path\":\"etc/alerts.jsonl\""));
    assert_int_equal(cfg->nsources, 1);
    assert_string_equal(cfg->sources[0].path, "etc/calls.jsonl");
    te_config_free(cfg);
}

static void config_load_missing_explicit_file_fails(void **state)
{
    (void)state;
    te_config_t *cfg = NULL;
    te_err_t err = {0};
    assert_int_equal(te_config_load("nope.lua", NULL, &cfg, &err), TE_ECONFIG);
    assert_string_equal(err.msg, "cannot read config file nope.lua: No such file or directory");
    setenv("TELEMETRY_CONFIG", "gone.lua", 1);
    assert_int_equal(te_config_load(NULL, NULL, &cfg, &err), TE_ECONFIG);
    assert_string_equal(err.msg, "cannot read config file gone.lua: No such file or directory");
}

static void config_unknown_key_suggests_nearest(void **state)
{
    (void)state;
    expect_error("-- comment\n\nstorage { pth = \"x.db\" }\n",
                 "telemetry.lua:3: storage: unknown key \"pth\" (did you mean \"path\"?)");
    expect_error("storage { zzzzzz = 1 }\n", "telemetry.lua:1: storage: unknown key \"zzzzzz\"");
    expect_error("notifier \"hook\" { type = \"webhook\", url = \"http://x\", retry = 3 }\n",
                 "telemetry.lua:1: notifier \"hook\": unknown key \"retry\" (did you mean "
                 "\"retries\"?)");
    expect_error("storage { retention = { [\"1d\"] = \"1d\" } }\n",
                 "telemetry.lua:1: storage.retention: unknown key \"1d\" (did you mean \"1m\"?)");
}

static void config_bad_enum_names_choices(void **state)
{
    (void)state;
    expect_error("\n\n\n\nstorage { durability = \"fast\" }\n",
                 "telemetry.lua:5: storage: durability must be \"process\" or \"power\", got "
                 "\"fast\"");
    expect_error("log { level = \"loud\" }\n",
                 "telemetry.lua:1: log: level must be \"debug\", \"info\", \"warn\", \"error\" or "
                 "\"off\", got \"loud\"");
}

static void config_bad_duration_names_key_path(void **state)
{
    (void)state;
    expect_error("\n\n\n\n\n\nstorage { retention = { raw = \"3x\" } }\n",
                 "telemetry.lua:7: storage.retention.raw: bad duration \"3x\" (use 30s, 5m, 2h, "
                 "7d, 1w or \"forever\")");
    te_config_t *cfg = load_ok("storage { retention = { raw = \"30d\", [\"1m\"] = \"90d\", "
                               "[\"1h\"] = \"400d\" } }\n");
    assert_string_equal(cfg->retention_raw, "30d");
    assert_string_equal(cfg->retention_1m, "90d");
    assert_string_equal(cfg->retention_1h, "400d");
    assert_int_equal(cfg->retention_raw_ns, 30 * INT64_C(86400000000000));
    assert_int_equal(cfg->retention_1h_ns, 400 * INT64_C(86400000000000));
    assert_int_equal(cfg->nretention_kinds, 0);
    te_config_free(cfg);
}

/* storage.retention.kinds: a kind's own ages win; "forever" keeps */
static void config_retention_per_kind(void **state)
{
    (void)state;
    const int64_t day = INT64_C(86400000000000);
    te_config_t *cfg = load_ok(
        "storage { retention = { raw = \"30d\", [\"1m\"] = \"forever\", [\"1h\"] = \"400d\",\n"
        "  kinds = { llm_call = { raw = \"90d\", [\"1h\"] = \"800d\" },\n"
        "            host_sample = { raw = \"7d\" }, span = { [\"1m\"] = \"forever\" } } } }\n");
    assert_int_equal(cfg->retention_raw_ns, 30 * day);
    assert_int_equal(cfg->retention_1m_ns, 0);
    assert_int_equal(cfg->retention_1h_ns, 400 * day);
    assert_int_equal(cfg->nretention_kinds, 3);
    /* sorted by kind */
    assert_string_equal(cfg->retention_kinds[0].kind, "host_sample");
    assert_int_equal(cfg->retention_kinds[0].raw_ns, 7 * day);
    assert_int_equal(cfg->retention_kinds[0].m1_ns, -1);
    assert_int_equal(cfg->retention_kinds[0].h1_ns, -1);
    assert_string_equal(cfg->retention_kinds[1].kind, "llm_call");
    assert_int_equal(cfg->retention_kinds[1].raw_ns, 90 * day);
    assert_int_equal(cfg->retention_kinds[1].m1_ns, -1);
    assert_int_equal(cfg->retention_kinds[1].h1_ns, 800 * day);
    assert_string_equal(cfg->retention_kinds[2].kind, "span");
    assert_int_equal(cfg->retention_kinds[2].raw_ns, -1);
    assert_int_equal(cfg->retention_kinds[2].m1_ns, 0);
    te_config_free(cfg);

    expect_error("storage { retention = { kinds = { host_sample = { rew = \"7d\" } } } }\n",
                 "telemetry.lua:1: storage.retention.kinds.host_sample: unknown key \"rew\" (did "
                 "you mean \"raw\"?)");
    expect_error("storage { retention = { kind = { } } }\n",
                 "telemetry.lua:1: storage.retention: unknown key \"kind\" (did you mean "
                 "\"kinds\"?)");
    expect_error("\n\nstorage { retention = {\n"
                 " kinds = { llm_call = { [\"1h\"] = \"8 days\" } } } }\n",
                 "telemetry.lua:3: storage.retention.kinds.llm_call.1h: bad duration \"8 days\" "
                 "(use 30s, 5m, 2h, 7d, 1w or \"forever\")");
    expect_error("storage { retention = { kinds = { llm_call = \"7d\" } } }\n",
                 "telemetry.lua:1: storage.retention: kinds must map names to tables { ... }");
    expect_error("storage { retention = { kinds = { llm_call = { raw = \"0s\" } } } }\n",
                 "telemetry.lua:1: storage.retention.kinds.llm_call.raw: bad duration \"0s\" "
                 "(must be longer than 0, or \"forever\")");
}

static void config_scripts_limits(void **state)
{
    (void)state;
    te_config_t *cfg = load_ok("scripts { dir = \"rules-here\", memory = \"8MiB\", "
                               "instructions = 50000, call_timeout = \"250ms\" }\n");
    assert_int_equal(cfg->script_mem_bytes, 8 * 1024 * 1024);
    assert_int_equal(cfg->script_max_steps, 50000);
    assert_int_equal(cfg->script_call_ns, 250 * 1000000LL);
    assert_non_null(strstr(cfg->scripts_dir, "rules-here"));
    te_config_free(cfg);
    cfg = load_ok("\n");
    assert_int_equal(cfg->script_mem_bytes, 0); /* 0: the sandbox's defaults */
    assert_int_equal(cfg->script_max_steps, 0);
    te_config_free(cfg);
    expect_error("scripts { call_timeout = \"soon\" }\n",
                 "telemetry.lua:1: scripts.call_timeout: bad duration \"soon\" (use 30s, 5m, 2h, "
                 "7d, 1w)");
}

static void config_redact_bad_pattern_is_a_startup_error(void **state)
{
    (void)state;
    te_config_t *cfg = load_ok("redact { builtin = { \"email\" }, patterns = { \"k-[0-9]+\" } }\n");
    assert_non_null(strstr(cfg->redact_json, "k-[0-9]+"));
    te_config_free(cfg);
    expect_error("\nredact { patterns = { \"ok-[0-9]+\", \"secret-(\" } }\n",
                 "telemetry.lua:2: redact: patterns[2] \"secret-(\": missing closing "
                 "parenthesis (at offset 8)");
    expect_error("redact { patterns = { \"x*\" } }\n",
                 "telemetry.lua:1: redact: patterns[1] \"x*\": matches the empty string");
}

static void config_wrong_types_are_named(void **state)
{
    (void)state;
    expect_error("storage { path = 42 }\n",
                 "telemetry.lua:1: storage: path must be a string, got number");
    expect_error("storage \"x\"\n",
                 "telemetry.lua:1: storage: expected a table { ... }, got string");
    expect_error("storage { queue_events = \"big\" }\n",
                 "telemetry.lua:1: storage: queue_events must be an integer, got string");
    expect_error("storage { \"data.db\" }\n",
                 "telemetry.lua:1: storage: unexpected value without a name (write key = value)");
    expect_error("redact { builtin = { \"email\", \"dna\" } }\n",
                 "telemetry.lua:1: redact: builtin: unknown value \"dna\" (known: \"email\", "
                 "\"card\", \"api_key\", \"ipv4\", \"jwt\")");
}

static void config_queue_events_limits(void **state)
{
    (void)state;
    expect_error("storage { queue_events = 0 }\n",
                 "telemetry.lua:1: storage: queue_events must be an integer from 1 to 100000000, "
                 "got 0");
    te_config_t *cfg = load_ok("storage { queue_events = 1 }\n");
    assert_int_equal(cfg->queue_events, 1);
    te_config_free(cfg);
    cfg = load_ok("storage { queue_events = 100000000 }\n");
    assert_int_equal(cfg->queue_events, 100000000);
    te_config_free(cfg);
    expect_error("storage { queue_events = 100000001 }\n",
                 "telemetry.lua:1: storage: queue_events must be an integer from 1 to 100000000, "
                 "got 100000001");
}

static void config_listen_addresses_sizes_and_off(void **state)
{
    (void)state;
    te_config_t *cfg = load_ok("listen { http = \"0.0.0.0:8080\", tcp = \"off\", udp = \"\", "
                               "unix = \"off\", max_body = \"1MiB\" }\n");
    assert_string_equal(cfg->listen_http, "0.0.0.0:8080");
    assert_string_equal(cfg->listen_tcp, "");
    assert_string_equal(cfg->listen_udp, "");
    assert_string_equal(cfg->listen_unix, "");
    assert_int_equal(cfg->max_body_bytes, 1048576);
    te_config_free(cfg);
    cfg = load_ok("listen { http = \"[::1]:0\", max_body = 1000 }\n");
    assert_string_equal(cfg->listen_http, "[::1]:0");
    assert_int_equal(cfg->max_body_bytes, 1000);
    te_config_free(cfg);
    cfg = load_ok("listen { max_body = \"2MB\" }\n");
    assert_int_equal(cfg->max_body_bytes, 2000000);
    te_config_free(cfg);
    expect_error("listen { http = \"4380\" }\n",
                 "telemetry.lua:1: listen: http must be \"HOST:PORT\" (e.g. \"127.0.0.1:4380\") "
                 "or \"off\", got \"4380\"");
    expect_error("listen { tcp = \"host:65536\" }\n",
                 "telemetry.lua:1: listen: tcp must be \"HOST:PORT\" (e.g. \"127.0.0.1:4380\") "
                 "or \"off\", got \"host:65536\"");
    expect_error("listen { max_body = \"16 MiB\" }\n",
                 "telemetry.lua:1: listen: max_body must be a size in bytes (an integer or "
                 "\"16MiB\", \"512KiB\"), got 16 MiB");
    expect_error("listen { max_body = 0 }\n",
                 "telemetry.lua:1: listen: max_body must be a size in bytes (an integer or "
                 "\"16MiB\", \"512KiB\"), got number");
}

static void config_set_listen_checks_flags(void **state)
{
    (void)state;
    char *slot = NULL;
    te_err_t err = {0};
    assert_int_equal(te_config_set_listen(&slot, "--http", "127.0.0.1:65535", &err), 0);
    assert_string_equal(slot, "127.0.0.1:65535");
    assert_int_equal(te_config_set_listen(&slot, "--http", "off", &err), 0);
    assert_string_equal(slot, "");
    assert_int_equal(te_config_set_listen(&slot, "--http", "a:b:1", &err), TE_EINVAL);
    assert_string_equal(err.msg, "--http must be \"HOST:PORT\" (e.g. \"127.0.0.1:4380\") or "
                                 "\"off\", got \"a:b:1\"");
    assert_int_equal(te_config_set_listen(&slot, "--udp", ":99", &err), TE_EINVAL);
    assert_int_equal(te_config_set_listen(&slot, "--udp", "[]:99", &err), TE_EINVAL);
    assert_int_equal(te_config_set_listen(&slot, "--udp", "h:-1", &err), TE_EINVAL);
    assert_string_equal(slot, "");
    free(slot);
}

static void config_notifiers_and_sources_are_parsed(void **state)
{
    (void)state;
    setenv("TE_TEST_HOOK", "http://127.0.0.1:9000/alerts", 1);
    unsetenv("TE_TEST_UNSET");
    te_config_t *cfg = load_ok(
        "notifier \"hook\" { type = \"webhook\", url = env \"TE_TEST_HOOK\", timeout = \"5s\", "
        "retries = 3 }\n"
        "notifier \"slack-ops\" { type = \"slack\", url = env \"TE_TEST_UNSET\" }\n"
        "notifier \"mail\" { type = \"email\", smtp = \"smtp://127.0.0.1:2525\", from = "
        "\"te@example.org\", to = { \"oncall@example.org\" } }\n"
        "notifier \"page\" { type = \"exec\", command = { \"/bin/page\", \"--team\", \"llm\" } }\n"
        "source \"llm-calls\" { type = \"tail\", path = \"/var/calls.jsonl\", kind = \"llm_call\" "
        "}\n"
        "auth { tokens = { { name = \"ci\", sha256 = string.rep(\"ab\", 32), scopes = { "
        "\"ingest\" } } } }\n"
        "redact { builtin = { \"email\", \"card\", \"api_key\" }, patterns = { "
        "\"secret-[0-9a-f]{16}\" } }\n");
    assert_int_equal(cfg->nnotifiers, 4);
    assert_string_equal(cfg->notifiers[0].name, "hook");
    assert_string_equal(cfg->notifiers[0].type, "webhook");
    assert_non_null(strstr(cfg->notifiers[0].json, "\"url\":\"http://127.0.0.1:9000/alerts\""));
    assert_non_null(strstr(cfg->notifiers[0].json, "\"retries\":3"));
    assert_null(strstr(cfg->notifiers[1].json, "url"));
    assert_non_null(strstr(cfg->notifiers[2].json, "\"to\":[\"oncall@example.org\"]"));
    assert_non_null(strstr(cfg->notifiers[3].json, "\"command\":[\"/bin/page\",\"--team\""));
    assert_int_equal(cfg->nsources, 1);
    assert_string_equal(cfg->sources[0].name, "llm-calls");
    assert_string_equal(cfg->sources[0].type, "tail");
    assert_string_equal(cfg->sources[0].kind, "llm_call");
    assert_string_equal(cfg->sources[0].path, "/var/calls.jsonl");
    assert_non_null(strstr(cfg->auth_json, "\"scopes\":[\"ingest\"]"));
    assert_non_null(strstr(cfg->redact_json, "secret-[0-9a-f]{16}"));
    te_config_free(cfg);
}

static void config_notifier_errors(void **state)
{
    (void)state;
    expect_error("notifier \"x\" { url = \"http://x\" }\n",
                 "telemetry.lua:1: notifier \"x\": type is required (\"webhook\", \"slack\", "
                 "\"email\", \"file\", \"exec\" or \"stdout\")");
    expect_error("notifier \"x\" { type = \"pager\" }\n",
                 "telemetry.lua:1: notifier \"x\": type must be \"webhook\", \"slack\", "
                 "\"email\", \"file\", \"exec\" or \"stdout\", got \"pager\"");
    expect_error("notifier \"x\" { type = \"file\", path = \"a\", url = \"http://x\" }\n",
                 "telemetry.lua:1: notifier \"x\": key \"url\" does not apply to type \"file\"");
    expect_error("notifier \"x\" { type = \"webhook\" }\n",
                 "telemetry.lua:1: notifier \"x\": url is required");
    expect_error("notifier \"x\" { type = \"webhook\", url = \"u\", timeout = \"soon\" }\n",
                 "telemetry.lua:1: notifier \"x\".timeout: bad duration \"soon\" (use 30s, 5m, "
                 "2h, 7d, 1w)");
    expect_error("notifier \"a\" { type = \"stdout\" }\nnotifier \"a\" { type = \"stdout\" }\n",
                 "telemetry.lua:2: notifier \"a\": defined twice");
    expect_error("notifier { type = \"stdout\" }\n",
                 "telemetry.lua:1: notifier: expected a name, as in notifier \"name\" { ... }, "
                 "got table");
    expect_error("source \"s\" { type = \"tail\", path = \"p\", kind = \"Bad Kind\" }\n",
                 "telemetry.lua:1: source \"s\": kind \"Bad Kind\" must match "
                 "[a-z][a-z0-9_.-]{0,63}");
    expect_error("source \"s\" { type = \"tail\" }\n",
                 "telemetry.lua:1: source \"s\": path is required");
    expect_error("auth { tokens = { { name = \"ci\", sha256 = \"abc\" } } }\n",
                 "telemetry.lua:1: auth.tokens[1]: sha256 must be 64 hex digits (sha256sum of "
                 "the token), got \"abc\"");
    expect_error("auth { tokens = { { name = \"ci\", sha256 = string.rep(\"a\", 64), scopes = "
                 "{ \"root\" } } } }\n",
                 "telemetry.lua:1: auth.tokens[1]: scopes: unknown value \"root\" (known: "
                 "\"ingest\", \"read\", \"admin\")");
}

static void config_block_twice_is_an_error(void **state)
{
    (void)state;
    expect_error("storage { }\n\nstorage { }\n",
                 "telemetry.lua:3: storage: block given twice (first at line 1)");
}

static void config_lua_errors_carry_file_and_line(void **state)
{
    (void)state;
    expect_error("storage {\n  path = \"x\"\n", "telemetry.lua:3: '}' expected (to close '{' at "
                                                 "line 1) near <eof>");
    expect_error("\nlocal x = nil + 1\n",
                 "telemetry.lua:2: attempt to perform arithmetic on a nil value");
    expect_error("\n\nerror(\"custom stop\")\n", "telemetry.lua:3: custom stop");
}

static void config_sandbox_hides_files_and_processes(void **state)
{
    (void)state;
    expect_error("dofile(\"x.lua\")\n",
                 "telemetry.lua:1: attempt to call a nil value (global 'dofile')");
    expect_error("io.open(\"x\")\n", "telemetry.lua:1: attempt to index a nil value (global 'io')");
    expect_error("os.execute(\"true\")\n",
                 "telemetry.lua:1: attempt to index a nil value (global 'os')");
    expect_error("local f, e = load(string.dump(function() end))\nerror(e, 0)\n",
                 "attempt to load a binary chunk (mode is 't')");
    te_config_t *cfg = load_ok("local dir = \"l\" .. \"ua2\"\nscripts { dir = "
                               "load(\"return '\" .. dir .. \"'\")() }\n");
    assert_string_equal(cfg->scripts_dir, "lua2");
    te_config_free(cfg);
}

static void config_endless_loop_fails_clearly(void **state)
{
    (void)state;
    expect_error("\nwhile true do end\n",
                 "telemetry.lua:2: configuration ran over 10000000 instructions (an endless "
                 "loop?)");
}

static void config_set_replaces_value(void **state)
{
    (void)state;
    char *slot = NULL;
    assert_int_equal(te_config_set(&slot, "a"), 0);
    assert_int_equal(te_config_set(&slot, "bb"), 0);
    assert_string_equal(slot, "bb");
    free(slot);
    te_config_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(config_load_without_file_gives_defaults),
        T(config_load_picks_up_telemetry_lua_in_cwd),
        T(config_load_env_overrides_defaults),
        T(config_load_data_flag_beats_env_and_storage_path),
        T(config_load_resolves_relative_paths_against_file_folder),
        T(config_load_missing_explicit_file_fails),
        T(config_unknown_key_suggests_nearest),
        T(config_bad_enum_names_choices),
        T(config_bad_duration_names_key_path),
        T(config_retention_per_kind),
        T(config_scripts_limits),
        T(config_redact_bad_pattern_is_a_startup_error),
        T(config_wrong_types_are_named),
        T(config_queue_events_limits),
        T(config_listen_addresses_sizes_and_off),
        T(config_set_listen_checks_flags),
        T(config_notifiers_and_sources_are_parsed),
        T(config_notifier_errors),
        T(config_block_twice_is_an_error),
        T(config_lua_errors_carry_file_and_line),
        T(config_sandbox_hides_files_and_processes),
        T(config_endless_loop_fails_clearly),
        T(config_set_replaces_value),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
