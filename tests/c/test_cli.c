/*
 * test_cli.c - option parsing and the shared CLI helpers: options before or
 * after a command's words, every usage error's text, both sides of each
 * limit, and the exit codes of the dispatcher for usage errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/time.h"
#include "store/store.h"

static const te_cli_opt_t opts[] = {
    {"kind", 0, TE_CLI_VALUE},
    {"where", 0, TE_CLI_LIST},
    {"quick", 'q', TE_CLI_FLAG},
};
#define NOPTS (sizeof(opts) / sizeof(opts[0]))

static int parse(te_cli_args_t *a, te_err_t *err, int argc, ...)
{
    char *argv[32];
    va_list ap;
    va_start(ap, argc);
    for (int i = 0; i < argc; i++)
        argv[i] = va_arg(ap, char *);
    va_end(ap);
    return te_cli_parse(a, opts, NOPTS, argc, argv, err);
}

static void cli_parse_options_before_and_after_words_match(void **state)
{
    (void)state;
    te_cli_args_t a, b;
    te_err_t err = {0};
    assert_int_equal(parse(&a, &err, 3, "--data", "d", "stats"), 0);
    assert_int_equal(parse(&b, &err, 3, "stats", "--data", "d"), 0);
    assert_int_equal(a.npos, 1);
    assert_int_equal(b.npos, 1);
    assert_string_equal(a.pos[0], "stats");
    assert_string_equal(b.pos[0], "stats");
    assert_string_equal(te_cli_get(&a, "data"), "d");
    assert_string_equal(te_cli_get(&b, "data"), "d");
    assert_null(te_cli_get(&a, "config"));
    assert_false(a.help);
    te_cli_args_free(&a);
    te_cli_args_free(&b);
}

static void cli_parse_equals_form_and_last_value_wins(void **state)
{
    (void)state;
    te_cli_args_t a;
    te_err_t err = {0};
    assert_int_equal(parse(&a, &err, 3, "--kind=llm_call", "--config", "c.lua"), 0);
    assert_string_equal(te_cli_get(&a, "kind"), "llm_call");
    assert_string_equal(te_cli_get(&a, "config"), "c.lua");
    te_cli_args_free(&a);
    assert_int_equal(parse(&a, &err, 4, "--kind", "a", "--kind", "b"), 0);
    assert_string_equal(te_cli_get(&a, "kind"), "b");
    te_cli_args_free(&a);
    assert_int_equal(parse(&a, &err, 1, "--kind="), 0);
    assert_string_equal(te_cli_get(&a, "kind"), "");
    te_cli_args_free(&a);
}

static void cli_parse_list_keeps_every_value(void **state)
{
    (void)state;
    te_cli_args_t a;
    te_err_t err = {0};
    const char *const *vals = NULL;
    assert_int_equal(parse(&a, &err, 5, "--where", "a=1", "x", "--where=b=2", "y"), 0);
    assert_int_equal(te_cli_list(&a, "where", &vals), 2);
    assert_string_equal(vals[0], "a=1");
    assert_string_equal(vals[1], "b=2");
    assert_int_equal(a.npos, 2);
    assert_int_equal(te_cli_list(&a, "nope", &vals), 0);
    assert_null(vals);
    te_cli_args_free(&a);
}

static void cli_parse_flags_help_dash_and_double_dash(void **state)
{
    (void)state;
    te_cli_args_t a;
    te_err_t err = {0};
    assert_int_equal(parse(&a, &err, 5, "-q", "-", "-h", "--", "--kind"), 0);
    assert_true(te_cli_has(&a, "quick"));
    assert_true(a.help);
    assert_int_equal(a.npos, 2);
    assert_string_equal(a.pos[0], "-");
    assert_string_equal(a.pos[1], "--kind");
    te_cli_args_free(&a);
    assert_int_equal(parse(&a, &err, 1, "--help"), 0);
    assert_true(a.help);
    assert_false(te_cli_has(&a, "quick"));
    te_cli_args_free(&a);
}

static void cli_parse_errors_name_the_problem(void **state)
{
    (void)state;
    te_cli_args_t a;
    te_err_t err = {0};
    assert_int_equal(parse(&a, &err, 2, "stats", "--bogus"), TE_EUSAGE);
    assert_string_equal(err.msg, "unknown option \"--bogus\"");
    assert_int_equal(parse(&a, &err, 1, "--bogus=1"), TE_EUSAGE);
    assert_string_equal(err.msg, "unknown option \"--bogus\"");
    assert_int_equal(parse(&a, &err, 1, "-x"), TE_EUSAGE);
    assert_string_equal(err.msg, "unknown option \"-x\"");
    assert_int_equal(parse(&a, &err, 1, "-qq"), TE_EUSAGE);
    assert_string_equal(err.msg, "unknown option \"-qq\"");
    assert_int_equal(parse(&a, &err, 2, "x", "--kind"), TE_EUSAGE);
    assert_string_equal(err.msg, "option --kind needs a value");
    assert_int_equal(parse(&a, &err, 1, "--where"), TE_EUSAGE);
    assert_string_equal(err.msg, "option --where needs a value");
    assert_int_equal(parse(&a, &err, 1, "--quick=yes"), TE_EUSAGE);
    assert_string_equal(err.msg, "option --quick takes no value");
    /* a failed parse leaves nothing to free, and freeing twice is safe */
    te_cli_args_free(&a);
}

static void cli_parse_int_checks_both_bounds(void **state)
{
    (void)state;
    int64_t v = 0;
    te_err_t err = {0};
    assert_int_equal(te_cli_parse_int("limit", "1", 1, 100000, &v, &err), 0);
    assert_int_equal(v, 1);
    assert_int_equal(te_cli_parse_int("limit", "100000", 1, 100000, &v, &err), 0);
    assert_int_equal(v, 100000);
    assert_int_equal(te_cli_parse_int("limit", "0", 1, 100000, &v, &err), TE_EUSAGE);
    assert_string_equal(err.msg, "--limit must be an integer from 1 to 100000, got \"0\"");
    assert_int_equal(te_cli_parse_int("limit", "100001", 1, 100000, &v, &err), TE_EUSAGE);
    assert_int_equal(te_cli_parse_int("limit", "10x", 1, 100000, &v, &err), TE_EUSAGE);
    assert_int_equal(te_cli_parse_int("limit", "", 1, 100000, &v, &err), TE_EUSAGE);
    assert_int_equal(te_cli_parse_int("limit", "99999999999999999999", 1, 100000, &v, &err),
                     TE_EUSAGE);
    assert_int_equal(v, 100000);
}

static void cli_parse_format_accepts_three_names(void **state)
{
    (void)state;
    te_cli_format_t f;
    te_err_t err = {0};
    assert_int_equal(te_cli_parse_format(NULL, &f, &err), 0);
    assert_int_equal(f, TE_CLI_FMT_TABLE);
    assert_int_equal(te_cli_parse_format("json", &f, &err), 0);
    assert_int_equal(f, TE_CLI_FMT_JSON);
    assert_int_equal(te_cli_parse_format("csv", &f, &err), 0);
    assert_int_equal(f, TE_CLI_FMT_CSV);
    assert_int_equal(te_cli_parse_format("table", &f, &err), 0);
    assert_int_equal(f, TE_CLI_FMT_TABLE);
    assert_int_equal(te_cli_parse_format("yaml", &f, &err), TE_EUSAGE);
    assert_string_equal(err.msg, "--format must be table, json or csv, got \"yaml\"");
}

static void cli_parse_where_splits_on_first_equals(void **state)
{
    (void)state;
    te_tag_filter_t *f = NULL;
    te_err_t err = {0};
    const char *items[] = {"provider=openai", "expr=a=b", "empty="};
    assert_int_equal(te_cli_parse_where(items, 3, &f, &err), 0);
    assert_string_equal(f[0].key, "provider");
    assert_int_equal(f[0].nvalues, 1);
    assert_string_equal(f[0].values[0], "openai");
    assert_string_equal(f[1].key, "expr");
    assert_string_equal(f[1].values[0], "a=b");
    assert_string_equal(f[2].key, "empty");
    assert_string_equal(f[2].values[0], "");
    te_cli_where_free(f, 3);
    assert_int_equal(te_cli_parse_where(items, 0, &f, &err), 0);
    assert_null(f);
    const char *bad1[] = {"provider"};
    assert_int_equal(te_cli_parse_where(bad1, 1, &f, &err), TE_EUSAGE);
    assert_string_equal(err.msg, "--where must be TAG=VALUE, got \"provider\"");
    const char *bad2[] = {"=x"};
    assert_int_equal(te_cli_parse_where(bad2, 1, &f, &err), TE_EUSAGE);
    assert_string_equal(err.msg, "--where must be TAG=VALUE, got \"=x\"");
}

static const te_cli_opt_t range_opts[] = {
    {"since", 0, TE_CLI_VALUE},
    {"until", 0, TE_CLI_VALUE},
};

static int range(int argc, char **argv, int64_t *since, int64_t *until, te_err_t *err)
{
    te_cli_args_t a;
    assert_int_equal(te_cli_parse(&a, range_opts, 2, argc, argv, err), 0);
    int rc = te_cli_parse_range(&a, since, until, err);
    te_cli_args_free(&a);
    return rc;
}

static void cli_parse_range_defaults_to_last_24h(void **state)
{
    (void)state;
    int64_t since, until, now = te_time_now_ns();
    te_err_t err = {0};
    assert_int_equal(range(0, NULL, &since, &until, &err), 0);
    assert_true(until >= now && until - now < 60 * TE_NS_PER_SEC);
    assert_true(until - since == 24 * 3600 * TE_NS_PER_SEC);

    char *ok[] = {"--since", "1795000000", "--until", "2026-11-20T10:00:00Z"};
    int64_t want_until = 0;
    assert_int_equal(te_time_parse_rfc3339(ok[3], strlen(ok[3]), &want_until, NULL), 0);
    assert_int_equal(range(4, ok, &since, &until, &err), 0);
    assert_int_equal(since, INT64_C(1795000000) * TE_NS_PER_SEC);
    assert_int_equal(until, want_until);

    char *bad[] = {"--since", "yesterday"};
    assert_int_equal(range(2, bad, &since, &until, &err), TE_EUSAGE);
    assert_non_null(strstr(err.msg, "--since: bad value \"yesterday\""));
    char *bad2[] = {"--until", "soon"};
    assert_int_equal(range(2, bad2, &since, &until, &err), TE_EUSAGE);
    assert_non_null(strstr(err.msg, "--until: bad value \"soon\""));
    char *inverted[] = {"--since", "1h", "--until", "2h"};
    assert_int_equal(range(4, inverted, &since, &until, &err), TE_EUSAGE);
    assert_string_equal(err.msg, "--until must be after --since");
}

static int run_main(int argc, ...)
{
    char *argv[16];
    va_list ap;
    argv[0] = "telemetry-engine";
    va_start(ap, argc);
    for (int i = 1; i < argc; i++)
        argv[i] = va_arg(ap, char *);
    va_end(ap);
    return te_cli_main(argc, argv);
}

static void cli_main_exit_codes(void **state)
{
    (void)state;
    assert_int_equal(run_main(1), TE_CLI_USAGE);
    assert_int_equal(run_main(2, "frobnicate"), TE_CLI_USAGE);
    assert_int_equal(run_main(2, "help"), TE_CLI_OK);
    assert_int_equal(run_main(2, "--help"), TE_CLI_OK);
    assert_int_equal(run_main(3, "help", "events"), TE_CLI_OK);
    assert_int_equal(run_main(3, "help", "nope"), TE_CLI_USAGE);
    assert_int_equal(run_main(2, "version"), TE_CLI_OK);
    assert_int_equal(run_main(3, "version", "extra"), TE_CLI_USAGE);
    static const char *const cmds[] = {"serve", "ingest", "events", "query", "db", "version"};
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(run_main(3, cmds[i], "--help"), TE_CLI_OK);
        assert_int_equal(run_main(3, cmds[i], "-h"), TE_CLI_OK);
        assert_int_equal(run_main(3, cmds[i], "--no-such-option"), TE_CLI_USAGE);
    }
    assert_int_equal(run_main(4, "db", "stats", "--help"), TE_CLI_OK);
    assert_int_equal(run_main(2, "db"), TE_CLI_USAGE);
    assert_int_equal(run_main(3, "db", "explode"), TE_CLI_USAGE);
    assert_int_equal(run_main(3, "db", "backup"), TE_CLI_USAGE);
    assert_int_equal(run_main(5, "db", "check", "--format", "json"), TE_CLI_USAGE);
    assert_int_equal(run_main(2, "ingest"), TE_CLI_USAGE);
    assert_int_equal(run_main(5, "ingest", "--kind", "Bad Kind", "x"), TE_CLI_USAGE);
    assert_int_equal(run_main(4, "ingest", "-", "-"), TE_CLI_USAGE);
    assert_int_equal(run_main(2, "query"), TE_CLI_USAGE);
    assert_int_equal(run_main(6, "query", "--kind", "k", "--every", "0s"), TE_CLI_USAGE);
    assert_int_equal(run_main(6, "query", "--kind", "k", "--group-by", "a,,b"), TE_CLI_USAGE);
    assert_int_equal(run_main(3, "events", "--limit=0"), TE_CLI_USAGE);
    assert_int_equal(run_main(3, "events", "--limit=100001"), TE_CLI_USAGE);
    assert_int_equal(run_main(3, "events", "--format=xml"), TE_CLI_USAGE);
    assert_int_equal(run_main(3, "events", "--where=novalue"), TE_CLI_USAGE);
    assert_int_equal(run_main(3, "serve", "--http=nope"), TE_CLI_USAGE);
}

static void cli_read_commands_without_database_fail_with_1(void **state)
{
    (void)state;
    assert_int_equal(run_main(4, "events", "--data", "/nonexistent/te-test"), TE_CLI_FAIL);
    assert_int_equal(run_main(6, "query", "--kind", "k", "--data", "/nonexistent/te-test"),
                     TE_CLI_FAIL);
    assert_int_equal(run_main(5, "db", "--data", "/nonexistent/te-test", "stats"), TE_CLI_FAIL);
    assert_int_equal(run_main(5, "db", "vacuum", "--data", "/nonexistent/te-test"), TE_CLI_FAIL);
    assert_int_equal(run_main(5, "ingest", "/nonexistent/te-test/x.ndjson", "--data", "/tmp"),
                     TE_CLI_FAIL);
    assert_int_equal(run_main(4, "events", "--config", "/nonexistent/te.lua"), TE_CLI_FAIL);
}

/* Runs te_cli_main with stdout captured into buf (NUL-terminated). */
static int run_captured(char *buf, size_t cap, int argc, char **argv)
{
    char path[] = "/tmp/te_cli_out_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    assert_true(dup2(fd, STDOUT_FILENO) >= 0);
    int rc = te_cli_main(argc, argv);
    fflush(stdout);
    assert_true(dup2(saved, STDOUT_FILENO) >= 0);
    close(saved);
    ssize_t n = pread(fd, buf, cap - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
    return rc;
}

static void cli_ingest_events_query_db_end_to_end(void **state)
{
    (void)state;
    char dir[] = "/tmp/te_cli_e2e_XXXXXX";
    char data[300], good[300], bad[300], backup[300], data2[300], out[65536], cmd[400];
    assert_non_null(mkdtemp(dir));
    snprintf(data, sizeof(data), "%s/data", dir);
    snprintf(data2, sizeof(data2), "%s/data2", dir);
    snprintf(good, sizeof(good), "%s/good.ndjson", dir);
    snprintf(bad, sizeof(bad), "%s/bad.ndjson", dir);
    snprintf(backup, sizeof(backup), "%s/backup.db", dir);
    FILE *f = fopen(good, "w");
    assert_non_null(f);
    int64_t now_s = te_time_now_ns() / TE_NS_PER_SEC;
    for (int i = 0; i < 25; i++)
        fprintf(f, "{\"ts\":%lld,\"kind\":\"llm_call\",\"provider\":\"%s\",\"latency_ms\":%d}\n",
                (long long)(now_s - 60 - i), i % 5 ? "openai" : "anthropic", 100 + i);
    fclose(f);
    f = fopen(bad, "w");
    assert_non_null(f);
    fprintf(f, "{\"kind\":\"llm_call\",\"fields\":{\"latency_ms\":\"slow\"}}\n\n{\"kind\":\"x\"}\n");
    fclose(f);

    char *ing_bad[] = {"telemetry-engine", "ingest", bad, "--data", data};
    assert_int_equal(run_captured(out, sizeof(out), 5, ing_bad), TE_CLI_FAIL);
    assert_non_null(strstr(out, "accepted 1, rejected 1"));
    char *ing[] = {"telemetry-engine", "ingest", "--data", data, good};
    assert_int_equal(run_captured(out, sizeof(out), 5, ing), TE_CLI_OK);
    assert_non_null(strstr(out, "accepted 25, rejected 0"));

    char *ev[] = {"telemetry-engine", "events", "--data", data, "--kind", "llm_call",
                  "--where", "provider=anthropic", "--format", "json", "--limit", "3"};
    assert_int_equal(run_captured(out, sizeof(out), 12, ev), TE_CLI_OK);
    assert_true(strncmp(out, "{\"events\":[{\"ts\":", 17) == 0);
    assert_non_null(strstr(out, "],\"next\":"));
    assert_null(strstr(out, "openai"));
    char *ev_csv[] = {"telemetry-engine", "events", "--data", data, "--format", "csv"};
    assert_int_equal(run_captured(out, sizeof(out), 6, ev_csv), TE_CLI_OK);
    assert_true(strncmp(out, "ts,kind,source,id,tags,fields,body\r\n", 36) == 0);
    size_t lines = 0;
    for (char *p = out; (p = strchr(p, '\n')); p++)
        lines++;
    assert_int_equal(lines, 1 + 26);
    /* paging: --limit above one store page still returns every event */
    char *ev_many[] = {"telemetry-engine", "events", "--data", data, "--limit", "5000",
                       "--format", "csv"};
    assert_int_equal(run_captured(out, sizeof(out), 8, ev_many), TE_CLI_OK);

    char *q[] = {"telemetry-engine", "query", "--data", data, "--kind", "llm_call",
                 "--group-by", "provider", "--agg", "count,max:latency_ms", "--format", "json"};
    assert_int_equal(run_captured(out, sizeof(out), 12, q), TE_CLI_OK);
    assert_non_null(strstr(out, "\"columns\":[\"provider\",\"count\",\"max:latency_ms\"]"));
    assert_non_null(strstr(out, "{\"provider\":\"anthropic\",\"count\":5,\"max:latency_ms\":120}"));

    char *st[] = {"telemetry-engine", "db", "--data", data, "stats", "--format", "json"};
    assert_int_equal(run_captured(out, sizeof(out), 7, st), TE_CLI_OK);
    assert_non_null(strstr(out, "\"events\":26"));
    char *ck[] = {"telemetry-engine", "db", "check", "--data", data};
    assert_int_equal(run_captured(out, sizeof(out), 5, ck), TE_CLI_OK);
    assert_string_equal(out, "ok\n");
    char *bk[] = {"telemetry-engine", "db", "backup", backup, "--data", data};
    assert_int_equal(run_captured(out, sizeof(out), 6, bk), TE_CLI_OK);
    assert_true(strncmp(out, "backup written to ", 18) == 0);
    char *rs[] = {"telemetry-engine", "db", "restore", backup, "--data", data2};
    assert_int_equal(run_captured(out, sizeof(out), 6, rs), TE_CLI_OK);
    char *st2[] = {"telemetry-engine", "db", "stats", "--data", data2, "--format", "json"};
    assert_int_equal(run_captured(out, sizeof(out), 7, st2), TE_CLI_OK);
    assert_non_null(strstr(out, "\"events\":26"));
    char *rs_bad[] = {"telemetry-engine", "db", "restore", good, "--data", data2};
    assert_int_equal(run_captured(out, sizeof(out), 6, rs_bad), TE_CLI_FAIL);
    char *vac[] = {"telemetry-engine", "db", "vacuum", "--data", data2};
    assert_int_equal(run_captured(out, sizeof(out), 5, vac), TE_CLI_OK);

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cli_parse_options_before_and_after_words_match),
        cmocka_unit_test(cli_parse_equals_form_and_last_value_wins),
        cmocka_unit_test(cli_parse_list_keeps_every_value),
        cmocka_unit_test(cli_parse_flags_help_dash_and_double_dash),
        cmocka_unit_test(cli_parse_errors_name_the_problem),
        cmocka_unit_test(cli_parse_int_checks_both_bounds),
        cmocka_unit_test(cli_parse_format_accepts_three_names),
        cmocka_unit_test(cli_parse_where_splits_on_first_equals),
        cmocka_unit_test(cli_parse_range_defaults_to_last_24h),
        cmocka_unit_test(cli_main_exit_codes),
        cmocka_unit_test(cli_read_commands_without_database_fail_with_1),
        cmocka_unit_test(cli_ingest_events_query_db_end_to_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
