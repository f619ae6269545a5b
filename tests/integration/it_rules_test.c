/*
 * it_rules_test.c - `telemetry-engine rules test` on the real binary
 * (SPEC 6.6): the shipped rules pass their tests; a wrong expectation, a
 * broken test file and a missing path fail with exit 1 and say why; the
 * default folder comes from the configuration's scripts dir.
 *
 * THREAD: main.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "harness.h"

typedef struct cli_run {
    int rc;
    char *out, *err;
} cli_run_t;

static cli_run_t cli(const char *const *args)
{
    cli_run_t r = {0};
    r.rc = te_it_run_cli(args, NULL, 0, &r.out, &r.err);
    return r;
}

static void cli_free(cli_run_t *r)
{
    free(r->out);
    free(r->err);
}

static void expect_rc(const cli_run_t *r, int want)
{
    if (r->rc != want)
        fprintf(stderr, "exit %d, wanted %d\nstdout:\n%s\nstderr:\n%s\n", r->rc, want,
                r->out ? r->out : "", r->err ? r->err : "");
    assert_int_equal(r->rc, want);
}

static void expect_in(const char *hay, const char *needle)
{
    if (!hay || !strstr(hay, needle))
        fprintf(stderr, "missing \"%s\" in:\n%s\n", needle, hay ? hay : "(null)");
    assert_non_null(hay);
    assert_non_null(strstr(hay, needle));
}

/* The last line of s (without its newline) into buf. */
static const char *last_line(const char *s, char *buf, size_t n)
{
    size_t len = s ? strlen(s) : 0;
    if (len && s[len - 1] == '\n')
        len--;
    size_t start = len;
    while (start > 0 && s[start - 1] != '\n')
        start--;
    snprintf(buf, n, "%.*s", (int)(len - start), s ? s + start : "");
    return buf;
}

static const char *source_dir(void)
{
    const char *d = getenv("TE_SOURCE_DIR");
    return d ? d : ".";
}

static void write_file(const te_it_srv_t *s, const char *name, const char *text)
{
    char path[512];
    assert_int_equal(te_it_write_file(s, name, text, strlen(text), path, sizeof(path)), 0);
}

static const char *saturation_rule =
    "local te = require \"te\"\n"
    "te.rule { name = \"cpu-high\", kind = \"host_sample\", group_by = { \"host\" },\n"
    "  window = \"1m\", every = \"30s\", pending = \"1m\",\n"
    "  aggs = { cpu = te.avg(\"cpu_pct\") },\n"
    "  condition = function(a) return a.cpu ~= nil and a.cpu > 90 end }\n";

static const char *saturation_events =
    "  events = { { at = \"500ms\", every = \"10s\", times = 30,\n"
    "    event = { kind = \"host_sample\", tags = { host = \"h1\" }, fields = { cpu_pct = 95 } } } "
    "},\n";

static void shipped_rules_pass_their_tests(void **state)
{
    (void)state;
    char dir[1024], line[256];
    snprintf(dir, sizeof(dir), "%s/lua/rules", source_dir());
    const char *args[] = {"rules", "test", dir, NULL};
    cli_run_t r = cli(args);
    expect_rc(&r, 0);
    assert_null(strstr(r.out, "FAIL"));
    last_line(r.out, line, sizeof(line));
    int passed = -1, failed = -1;
    assert_int_equal(sscanf(line, "%d passed, %d failed", &passed, &failed), 2);
    assert_int_equal(failed, 0);
    assert_true(passed >= 16); /* 8 rule files, at least a firing and a quiet case each */
    expect_in(r.out, "ok   ");
    expect_in(r.out, "llm_error_rate_test.lua: ");
    cli_free(&r);
}

static void wrong_expectation_fails_with_the_reason(void **state)
{
    (void)state;
    te_it_srv_t s;
    char path[512], line[256];
    assert_int_equal(te_it_init(&s), 0);
    write_file(&s, "cpu.lua", saturation_rule);
    char test[2048];
    snprintf(test, sizeof(test),
             "return { rule_files = { \"cpu.lua\" }, tests = {\n"
             "  { name = \"fires after pending\",\n%s"
             "    expect = { { at = \"1m30s\", rule = \"cpu-high\", group = { host = \"h1\" },"
             " state = \"firing\" } } },\n"
             "  { name = \"wrongly expects firing at once\",\n%s"
             "    expect = { { at = \"30s\", rule = \"cpu-high\", group = { host = \"h1\" },"
             " state = \"firing\" } } } } }\n",
             saturation_events, saturation_events);
    write_file(&s, "cpu_test.lua", test);
    snprintf(path, sizeof(path), "%s/cpu_test.lua", s.root);
    const char *args[] = {"rules", "test", path, NULL};
    cli_run_t r = cli(args);
    expect_rc(&r, 1);
    expect_in(r.out, "ok   ");
    expect_in(r.out, "cpu_test.lua: fires after pending\n");
    expect_in(r.out, "FAIL ");
    expect_in(r.out, "cpu_test.lua: wrongly expects firing at once\n");
    expect_in(r.out, "expect[1] at 30s: cpu-high{host=h1}: expected firing, got pending since 30s");
    assert_string_equal(last_line(r.out, line, sizeof(line)), "1 passed, 1 failed");
    cli_free(&r);
    te_it_cleanup(&s);
}

static void broken_test_file_fails_with_file_and_line(void **state)
{
    (void)state;
    te_it_srv_t s;
    char path[512], line[256], want[1100];
    assert_int_equal(te_it_init(&s), 0);
    write_file(&s, "cpu.lua", saturation_rule);
    write_file(&s, "broken_test.lua",
               "return {\n  rule_files = { \"cpu.lua\" },\n  tests = { { name = \"x\" \n");
    snprintf(path, sizeof(path), "%s/broken_test.lua", s.root);
    const char *args[] = {"rules", "test", path, NULL};
    cli_run_t r = cli(args);
    expect_rc(&r, 1);
    snprintf(want, sizeof(want), "FAIL %s: %s:4: ", path, path);
    expect_in(r.out, want);
    assert_string_equal(last_line(r.out, line, sizeof(line)), "0 passed, 1 failed");
    cli_free(&r);

    /* a rule file with an error fails the test that loads it, naming its line */
    write_file(&s, "bad.lua",
               "local te = require \"te\"\nte.rule { name = \"x\", windw = \"5m\" }\n");
    write_file(&s, "bad_test.lua",
               "return { rule_files = { \"bad.lua\" }, tests = { { name = \"t\",\n"
               "  expect = { { at = \"1m\", rule = \"x\", state = \"inactive\" } } } } }\n");
    snprintf(path, sizeof(path), "%s/bad_test.lua", s.root);
    const char *args2[] = {"rules", "test", path, NULL};
    r = cli(args2);
    expect_rc(&r, 1);
    expect_in(r.out, "bad.lua:2: ");
    assert_string_equal(last_line(r.out, line, sizeof(line)), "0 passed, 1 failed");
    cli_free(&r);

    /* test data is data: a function in it is named by its place */
    write_file(&s, "fn_test.lua",
               "return { rule_files = { \"cpu.lua\" }, tests = { { name = \"t\", fn = print,\n"
               "  expect = { { at = \"1m\", rule = \"cpu-high\", state = \"inactive\" } } } } }\n");
    snprintf(path, sizeof(path), "%s/fn_test.lua", s.root);
    const char *args3[] = {"rules", "test", path, NULL};
    r = cli(args3);
    expect_rc(&r, 1);
    expect_in(r.out, "fn_test.lua: tests[1].fn: a function is not test data");
    cli_free(&r);
    te_it_cleanup(&s);
}

static void default_folder_comes_from_the_config(void **state)
{
    (void)state;
    te_it_srv_t s;
    char dir[512], cfg[512], line[256];
    assert_int_equal(te_it_init(&s), 0);
    snprintf(dir, sizeof(dir), "%s/lua", s.root);
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(dir, sizeof(dir), "%s/lua/rules", s.root);
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(dir, sizeof(dir), "%s/lua/lib", s.root);
    assert_int_equal(mkdir(dir, 0755), 0);
    write_file(&s, "telemetry.lua", "scripts { dir = \"lua\" }\n");
    write_file(&s, "lua/rules/cpu.lua", saturation_rule);
    /* rules and test files may require helpers from lua/lib */
    write_file(&s, "lua/lib/limits.lua", "return { cpu_pct = 90 }\n");
    write_file(&s, "lua/rules/lib.lua",
               "local te = require \"te\"\nlocal limits = require \"limits\"\n"
               "te.rule { name = \"cpu-lib\", kind = \"host_sample\", group_by = { \"host\" },\n"
               "  aggs = { cpu = te.avg(\"cpu_pct\") },\n"
               "  condition = function(a) return (a.cpu or 0) > limits.cpu_pct end,\n"
               "  value = function(a) return a.cpu end }\n");
    char test[2048];
    snprintf(test, sizeof(test),
             "local limits = require \"limits\"\n"
             "return { rule_files = { \"cpu.lua\", \"lib.lua\" }, tests = {\n"
             "  { name = \"quiet host\",\n%s"
             "  expect = { { at = \"5m\", rule = \"cpu-high\", group = { host = \"h2\" },"
             " state = \"inactive\" },\n"
             "    { at = \"30s\", rule = \"cpu-lib\", group = { host = \"h1\" },"
             " state = \"firing\", value = limits.cpu_pct + 5 } } } } }\n",
             saturation_events);
    write_file(&s, "lua/rules/cpu_test.lua", test);
    snprintf(cfg, sizeof(cfg), "%s/telemetry.lua", s.root);
    const char *args[] = {"rules", "test", "--config", cfg, NULL};
    cli_run_t r = cli(args);
    expect_rc(&r, 0);
    expect_in(r.out, "cpu_test.lua: quiet host\n");
    assert_string_equal(last_line(r.out, line, sizeof(line)), "1 passed, 0 failed");
    cli_free(&r);

    /* a path that does not exist, and a folder without test files */
    snprintf(dir, sizeof(dir), "%s/nope", s.root);
    const char *args2[] = {"rules", "test", dir, s.data, NULL};
    r = cli(args2);
    expect_rc(&r, 1);
    expect_in(r.out, "nope: cannot open: ");
    expect_in(r.out, "no *_test.lua files in this folder");
    assert_string_equal(last_line(r.out, line, sizeof(line)), "0 passed, 2 failed");
    cli_free(&r);
    te_it_cleanup(&s);
}

static void help_and_usage_errors(void **state)
{
    (void)state;
    const char *args[] = {"rules", "test", "--help", NULL};
    cli_run_t r = cli(args);
    expect_rc(&r, 0);
    expect_in(r.out, "rules test [PATH...]");
    cli_free(&r);
    const char *args2[] = {"rules", "test", "--bogus", NULL};
    r = cli(args2);
    expect_rc(&r, 2);
    expect_in(r.err, "--bogus");
    cli_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(shipped_rules_pass_their_tests),
        cmocka_unit_test(wrong_expectation_fails_with_the_reason),
        cmocka_unit_test(broken_test_file_fails_with_file_and_line),
        cmocka_unit_test(default_folder_comes_from_the_config),
        cmocka_unit_test(help_and_usage_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
