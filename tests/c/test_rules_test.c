/*
 * test_rules_test.c - the engine of `rules test` (cli/rules_test_spec.c,
 * cli/rules_test_run.c): every check of the test-file format with both
 * sides of its limits, and replays on the virtual clock through real rule
 * scripts: ordering at one instant, on_event alerts, derived events,
 * rules that raise, names defined twice. The CLI around it is covered by
 * tests/integration/it_rules_test.c.
 *
 * THREAD: main only.
 */
#define _DEFAULT_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/rules_test.h"
#include "cli/rules_test_spec.h"

#define S INT64_C(1000000000)

/* --- the format --- */

static int spec_file(const char *json, te_rules_test_file_t *f, te_err_t *err)
{
    cJSON *j = cJSON_Parse(json);
    assert_non_null(j);
    int rc = te_rules_test_spec_file("dir/x_test.lua", j, f, err);
    cJSON_Delete(j);
    return rc;
}

static void spec_file_rejects_a_bad_top_level(void **state)
{
    (void)state;
    te_rules_test_file_t f;
    te_err_t err;
    assert_int_equal(spec_file("[]", &f, &err), TE_EINVAL);
    assert_non_null(strstr(err.msg, "must return a table"));
    assert_int_equal(spec_file("{\"tests\":[{}]}", &f, &err), TE_EINVAL);
    assert_string_equal(err.msg, "rule_files: expected a non-empty list of rule files (relative "
                                 "to the test file), got nil");
    assert_int_equal(spec_file("{\"rule_files\":[\"r.lua\"],\"tests\":[]}", &f, &err), TE_EINVAL);
    assert_string_equal(err.msg, "tests: expected a non-empty list of tests, got list");
    assert_int_equal(spec_file("{\"rule_files\":[\"r.lua\"],\"test\":[{}]}", &f, &err), TE_EINVAL);
    assert_string_equal(err.msg, "test file: unknown key \"test\" (did you mean \"tests\"?)");
    assert_int_equal(
        spec_file("{\"rule_files\":[\"r.lua\"],\"start\":\"yesterday\",\"tests\":[{}]}", &f, &err),
        TE_EINVAL);
    assert_non_null(strstr(err.msg, "start: "));
    assert_int_equal(spec_file("{\"rule_files\":[1],\"tests\":[{}]}", &f, &err), TE_EINVAL);
    assert_string_equal(err.msg, "rule_files[1]: expected a file name, got number");
}

static void spec_file_resolves_rule_files_and_start(void **state)
{
    (void)state;
    te_rules_test_file_t f;
    te_err_t err;
    assert_int_equal(
        spec_file("{\"rule_files\":[\"r.lua\",\"/abs/q.lua\"],\"tests\":[{}]}", &f, &err), 0);
    assert_int_equal(f.nrule_files, 2);
    assert_string_equal(f.rule_files[0], "dir/r.lua");
    assert_string_equal(f.rule_files[1], "/abs/q.lua");
    assert_int_equal(f.start, INT64_C(1767225600) * S); /* 2026-01-01T00:00:00Z */
    assert_int_equal(f.ntests, 1);
    te_rules_test_spec_file_free(&f);
    assert_int_equal(
        spec_file("{\"rule_files\":[\"r.lua\"],\"start\":1800000000.5,\"tests\":[{}]}", &f, &err),
        0);
    assert_int_equal(f.start, INT64_C(1800000000) * S + S / 2);
    te_rules_test_spec_file_free(&f);
}

/* Reads the single test of {"rule_files":["r.lua"],"tests":[TEST]}. */
static int one_test(const char *test_json, te_rules_test_t *t, te_err_t *err)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), "{\"rule_files\":[\"r.lua\"],\"tests\":[%s]}", test_json);
    cJSON *j = cJSON_Parse(buf);
    assert_non_null(j);
    te_rules_test_file_t f;
    assert_int_equal(te_rules_test_spec_file("x_test.lua", j, &f, err), 0);
    int rc = te_rules_test_spec_test(&f, 0, t, err);
    te_rules_test_spec_file_free(&f);
    cJSON_Delete(j);
    return rc;
}

#define EXPECT_OK "\"expect\":[{\"at\":\"1m\",\"rule\":\"r\",\"state\":\"inactive\"}]"
#define EV "\"event\":{\"kind\":\"k\",\"tags\":{\"a\":\"b\"},\"fields\":{\"x\":1}}"

static void expect_test_error(const char *test_json, const char *want)
{
    te_rules_test_t t;
    te_err_t err;
    int rc = one_test(test_json, &t, &err);
    if (rc == 0 || !strstr(err.msg, want))
        fprintf(stderr, "test %s\n  rc %d, message \"%s\", wanted \"%s\"\n", test_json, rc,
                rc ? err.msg : "", want);
    assert_int_equal(rc, TE_EINVAL);
    assert_non_null(strstr(err.msg, want));
    te_rules_test_spec_test_free(&t);
}

static void spec_test_checks_names_and_keys(void **state)
{
    (void)state;
    expect_test_error("{" EXPECT_OK "}", "name: expected a non-empty string, got nil");
    expect_test_error("{\"name\":\"t\"}", "at least one entry in expect or expect_transitions");
    expect_test_error("{\"name\":\"t\",\"expct\":[]," EXPECT_OK "}",
                      "tests[1]: unknown key \"expct\" (did you mean \"expect\"?)");
    expect_test_error("{\"name\":\"t\",\"expect\":[{\"at\":\"1m\",\"rule\":\"r\",\"stat\":\"x\"}]}",
                      "expect[1]: unknown key \"stat\" (did you mean \"state\"?)");
    expect_test_error("{\"name\":\"t\",\"expect\":[{\"rule\":\"r\",\"state\":\"firing\"}]}",
                      "expect[1]: \"at\" is required");
    expect_test_error(
        "{\"name\":\"t\",\"expect\":[{\"at\":\"1m\",\"rule\":\"r\",\"state\":\"fire\"}]}",
        "expect[1].state: expected pending, firing, resolved or inactive, got \"fire\"");
    expect_test_error(
        "{\"name\":\"t\",\"expect\":[{\"at\":\"1m\",\"rule\":\"r\",\"state\":\"firing\","
        "\"severity\":\"high\"}]}",
        "expect[1].severity: expected info, warning or");
    expect_test_error(
        "{\"name\":\"t\",\"expect\":[{\"at\":\"1m\",\"rule\":\"r\",\"state\":\"inactive\","
        "\"value\":1}]}",
        "can only be checked on a pending, firing or resolved");
    expect_test_error(
        "{\"name\":\"t\",\"expect\":[{\"at\":\"1m\",\"rule\":\"r\",\"state\":\"firing\","
        "\"tolerance\":1}]}",
        "expect[1]: tolerance without value");
    expect_test_error(
        "{\"name\":\"t\",\"expect\":[{\"at\":\"1m\",\"rule\":\"r\",\"state\":\"firing\","
        "\"value\":1,\"tolerance\":-1}]}",
        "expect[1].tolerance: expected a non-negative");
    expect_test_error(
        "{\"name\":\"t\",\"expect\":[{\"at\":\"1m\",\"rule\":\"r\",\"state\":\"firing\","
        "\"group\":{\"port\":80}}]}",
        "expect[1].group.port: expected a string, got number");
    expect_test_error("{\"name\":\"t\",\"expect_transitions\":[{\"at\":\"1m\",\"rule\":\"r\","
                      "\"to\":\"fired\"}]}",
                      "expect_transitions[1].to: expected pending, firing,");
}

static void spec_test_checks_events_and_their_limits(void **state)
{
    (void)state;
    te_rules_test_t t;
    te_err_t err;
    /* times: 1 and 1,000,000 are fine; 0 and 1,000,001 are not */
    assert_int_equal(one_test("{\"name\":\"t\",\"events\":[{\"at\":\"0s\",\"times\":1," EV
                              "}]," EXPECT_OK "}",
                              &t, &err),
                     0);
    assert_int_equal(t.nocc, 1);
    te_rules_test_spec_test_free(&t);
    assert_int_equal(one_test("{\"name\":\"t\",\"events\":[{\"every\":\"1ms\",\"times\":1000000," EV
                              "}]," EXPECT_OK "}",
                              &t, &err),
                     0);
    assert_int_equal(t.nocc, 1000000);
    assert_int_equal(t.occ[999999].ts, INT64_C(999999) * 1000000);
    te_rules_test_spec_test_free(&t);
    expect_test_error("{\"name\":\"t\",\"events\":[{\"every\":\"1ms\",\"times\":1000001," EV
                      "}]," EXPECT_OK "}",
                      "events[1].times: expected an integer from 1 to 1000000");
    expect_test_error("{\"name\":\"t\",\"events\":[{\"times\":0," EV "}]," EXPECT_OK "}",
                      "events[1].times: expected an integer from 1 to 1000000");
    expect_test_error("{\"name\":\"t\",\"events\":[{\"times\":1.5," EV "}]," EXPECT_OK "}",
                      "events[1].times: expected an integer");
    expect_test_error("{\"name\":\"t\",\"events\":[{\"times\":2," EV "}]," EXPECT_OK "}",
                      "events[1]: times = 2 needs every > 0");
    /* two items of 600,000: the total is capped too */
    expect_test_error("{\"name\":\"t\",\"events\":[{\"every\":1,\"times\":600000," EV "},"
                      "{\"every\":1,\"times\":600000," EV "}]," EXPECT_OK "}",
                      "events[2]: more than 1000000 events in one test");
    /* offsets: 366d is the last one allowed; seconds as numbers */
    assert_int_equal(one_test("{\"name\":\"t\",\"events\":[{\"at\":\"366d\"," EV "},"
                              "{\"at\":1.25," EV "}]," EXPECT_OK "}",
                              &t, &err),
                     0);
    assert_int_equal(t.occ[0].ts, INT64_C(366) * 86400 * S);
    assert_int_equal(t.occ[1].ts, S + S / 4);
    te_rules_test_spec_test_free(&t);
    expect_test_error("{\"name\":\"t\",\"events\":[{\"at\":\"367d\"," EV "}]," EXPECT_OK "}",
                      "events[1].at: must be between 0s and 366d");
    expect_test_error("{\"name\":\"t\",\"events\":[{\"at\":-1," EV "}]," EXPECT_OK "}",
                      "events[1].at: must be between 0s and 366d");
    expect_test_error("{\"name\":\"t\",\"events\":[{\"at\":\"1x\"," EV "}]," EXPECT_OK "}",
                      "events[1].at: duration \"1x\"");
    expect_test_error(
        "{\"name\":\"t\",\"events\":[{\"every\":\"1s\",\"times\":2,\"at\":\"366d\"," EV
        "}]," EXPECT_OK "}",
        "events[1]: the last repeat is past 366d");
    /* the event itself: parsed like ingest, no ts of its own */
    expect_test_error(
        "{\"name\":\"t\",\"events\":[{\"event\":{\"kind\":\"k\",\"ts\":5}}]," EXPECT_OK "}",
        "events[1].event: leave out \"ts\"");
    expect_test_error("{\"name\":\"t\",\"events\":[{\"event\":{\"kind\":\"k\",\"fields\":"
                      "{\"x\":\"high\"}}}]," EXPECT_OK "}",
                      "events[1].event: field \"x\": expected a number, got string");
    expect_test_error("{\"name\":\"t\",\"events\":[{\"at\":\"1s\"}]," EXPECT_OK "}",
                      "events[1].event: expected an event table");
}

/* --- replays --- */

typedef struct fix {
    char dir[64];
} fix;

static int setup(void **state)
{
    fix *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/te-rules-test-XXXXXX");
    if (!f || !mkdtemp(f->dir))
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fix *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static void write_rule(const fix *f, const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", f->dir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    assert_int_equal(fclose(fp), 0);
}

/* Runs the tests of spec_json; returns the output and the tally. */
static char *run(const fix *f, const char *spec_json, te_rules_test_tally_t *tally)
{
    char path[256], *out = NULL;
    size_t len = 0;
    snprintf(path, sizeof(path), "%s/x_test.lua", f->dir);
    cJSON *j = cJSON_Parse(spec_json);
    assert_non_null(j);
    FILE *mem = open_memstream(&out, &len);
    assert_non_null(mem);
    memset(tally, 0, sizeof(*tally));
    te_rules_test_run_file(path, j, NULL, NULL, mem, tally);
    fclose(mem);
    cJSON_Delete(j);
    return out;
}

static const char *count_rule =
    "local te = require \"te\"\n"
    "te.rule { name = \"many\", kind = \"k\", group_by = { \"a\" }, window = \"1m\", every = "
    "\"10s\",\n"
    "  aggs = { n = te.count() }, condition = function(a) return a.n >= 3 end,\n"
    "  value = function(a) return a.n end, summary = \"{{a}}: {{value}}\" }\n";

static void replay_feeds_events_before_the_tick_at_the_same_instant(void **state)
{
    fix *f = *state;
    te_rules_test_tally_t tally;
    write_rule(f, "r.lua", count_rule);
    /* the third event lands exactly on the 30s tick: counted in it */
    char *out =
        run(f,
            "{\"rule_files\":[\"r.lua\"],\"start\":\"2026-11-20T10:00:00Z\",\"tests\":["
            "{\"name\":\"on the tick\",\"events\":[{\"at\":\"10s\",\"every\":\"10s\",\"times\":3,"
            "\"event\":{\"kind\":\"k\",\"tags\":{\"a\":\"x\"}}}],"
            "\"expect\":[{\"at\":\"20s\",\"rule\":\"many\",\"group\":{\"a\":\"x\"},\"state\":"
            "\"inactive\"},"
            "{\"at\":\"30s\",\"rule\":\"many\",\"group\":{\"a\":\"x\"},\"state\":\"firing\","
            "\"value\":3,"
            "\"summary\":\"x: 3\"},{\"at\":\"2m\",\"rule\":\"many\",\"group\":{\"a\":\"x\"},"
            "\"state\":\"resolved\"}],"
            "\"expect_transitions\":[{\"at\":\"30s\",\"rule\":\"many\",\"group\":{\"a\":\"x\"},"
            "\"to\":\"firing\"}]},"
            "{\"name\":\"wrong\",\"events\":[{\"at\":\"10s\",\"every\":\"10s\",\"times\":3,"
            "\"event\":{\"kind\":\"k\",\"tags\":{\"a\":\"x\"}}}],"
            "\"expect\":[{\"at\":\"20s\",\"rule\":\"many\",\"group\":{\"a\":\"x\"},\"state\":"
            "\"firing\"}],"
            "\"expect_transitions\":[{\"at\":\"40s\",\"rule\":\"many\",\"group\":{\"a\":\"x\"},"
            "\"to\":\"firing\"}]}]}",
            &tally);
    const char *want_fail =
        "     expect[1] at 20s: many{a=x}: expected firing, got inactive (never active)\n"
        "     expect_transitions[1]: many{a=x}: expected a transition to firing at 40s, got firing "
        "at 30s\n";
    if (tally.passed != 1 || !strstr(out, want_fail))
        fprintf(stderr, "%s", out);
    assert_int_equal(tally.passed, 1);
    assert_int_equal(tally.failed, 1);
    assert_non_null(strstr(out, "ok   "));
    assert_non_null(strstr(out, "/x_test.lua: on the tick\nFAIL "));
    assert_non_null(strstr(out, want_fail));
    free(out);
}

static void replay_checks_on_event_alerts_and_derived_events(void **state)
{
    fix *f = *state;
    te_rules_test_tally_t tally;
    write_rule(
        f, "hooks.lua",
        "local te = require \"te\"\n"
        "te.on_event { name = \"big\", kind = \"k\", fn = function(ev, ctx)\n"
        "  if ev.fields.x > 10 then\n"
        "    ctx.alert { name = \"too-big\", group = { a = ev.tags.a }, value = ev.fields.x }\n"
        "    ctx.emit { kind = \"derived\", tags = { a = ev.tags.a } }\n"
        "  end end }\n"
        "te.rule { name = \"derived-seen\", kind = \"derived\", group_by = { \"a\" },\n"
        "  window = \"1m\", every = \"30s\", aggs = { n = te.count() },\n"
        "  condition = function(a) return a.n > 0 end }\n");
    char *out = run(
        f,
        "{\"rule_files\":[\"hooks.lua\"],\"tests\":[{\"name\":\"hooks\","
        "\"events\":[{\"at\":\"5s\",\"event\":{\"kind\":\"k\",\"tags\":{\"a\":\"q\"},"
        "\"fields\":{\"x\":11}}},{\"at\":\"6s\",\"event\":{\"kind\":\"k\",\"tags\":{\"a\":\"z\"},"
        "\"fields\":{\"x\":1}}}],"
        "\"expect\":[{\"at\":\"5s\",\"rule\":\"big\",\"group\":{\"a\":\"q\",\"alertname\":\"too-"
        "big\"},"
        "\"state\":\"firing\",\"value\":11},"
        "{\"at\":\"30s\",\"rule\":\"derived-seen\",\"group\":{\"a\":\"q\"},\"state\":\"firing\"},"
        "{\"at\":\"30s\",\"rule\":\"derived-seen\",\"group\":{\"a\":\"z\"},\"state\":\"inactive\"},"
        "{\"at\":\"5m5s\",\"rule\":\"big\",\"group\":{\"a\":\"q\",\"alertname\":\"too-big\"},"
        "\"state\":\"resolved\"}]}]}",
        &tally);
    if (tally.passed != 1)
        fprintf(stderr, "%s", out);
    assert_int_equal(tally.passed, 1);
    assert_int_equal(tally.failed, 0);
    free(out);
}

static void replay_fails_a_test_whose_rule_raises_or_clashes(void **state)
{
    fix *f = *state;
    te_rules_test_tally_t tally;
    write_rule(f, "raise.lua",
               "local te = require \"te\"\n"
               "te.rule { name = \"raise\", kind = \"k\", aggs = { n = te.count() },\n"
               "  condition = function(a) error(\"no good\") end }\n");
    write_rule(f, "r.lua", count_rule);
    write_rule(f, "r2.lua", count_rule);
    char *out = run(f,
                    "{\"rule_files\":[\"raise.lua\"],\"tests\":[{\"name\":\"raises\","
                    "\"events\":[{\"at\":\"1s\",\"event\":{\"kind\":\"k\"}}],"
                    "\"expect\":[{\"at\":\"1m\",\"rule\":\"raise\",\"state\":\"inactive\"}]}]}",
                    &tally);
    assert_int_equal(tally.failed, 1);
    assert_non_null(strstr(out, "     rule \"raise\" raised during the test (errors: 2): "));
    assert_non_null(strstr(out, "raise.lua:3: no good"));
    free(out);
    out = run(f,
              "{\"rule_files\":[\"r.lua\",\"r2.lua\"],\"tests\":[{\"name\":\"twice\","
              "\"expect\":[{\"at\":\"1m\",\"rule\":\"many\",\"state\":\"inactive\"}]}]}",
              &tally);
    if (!strstr(out, "already defined"))
        fprintf(stderr, "%s", out);
    assert_int_equal(tally.failed, 1);
    assert_non_null(strstr(out, "rule file: "));
    assert_non_null(strstr(out, "r2.lua:2: rule \"many\" is already defined by "));
    free(out);
    /* a test-level format error fails that test only */
    out = run(
        f,
        "{\"rule_files\":[\"r.lua\"],\"tests\":[{\"name\":\"bad\",\"expect\":[{\"at\":\"1m\"}]},"
        "{\"name\":\"good\",\"expect\":[{\"at\":\"1m\",\"rule\":\"many\",\"state\":\"inactive\"}]}]"
        "}",
        &tally);
    assert_int_equal(tally.passed, 1);
    assert_int_equal(tally.failed, 1);
    assert_non_null(strstr(out, "x_test.lua: bad\n     expect[1]: \"rule\" is required\n"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(spec_file_rejects_a_bad_top_level),
        cmocka_unit_test(spec_file_resolves_rule_files_and_start),
        cmocka_unit_test(spec_test_checks_names_and_keys),
        cmocka_unit_test(spec_test_checks_events_and_their_limits),
        cmocka_unit_test_setup_teardown(replay_feeds_events_before_the_tick_at_the_same_instant,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(replay_checks_on_event_alerts_and_derived_events, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(replay_fails_a_test_whose_rule_raises_or_clashes, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
