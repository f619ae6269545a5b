/*
 * test_notify_exec.c - the exec notifier with real child processes: the
 * alert JSON on stdin, exit codes, a command that hangs (SIGKILL after the
 * timeout), a command that does not exist, and a clean loop at the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "alerts/notify.h"

typedef struct outcome {
    int calls, rc;
    char msg[400];
} outcome_t;

static void on_done(int rc, const char *msg, void *ud)
{
    outcome_t *o = ud;
    o->calls++;
    o->rc = rc;
    snprintf(o->msg, sizeof(o->msg), "%s", msg ? msg : "");
}

static void make_alert(te_alert_t *a)
{
    const char *keys[] = {"host"}, *vals[] = {"h1"};
    te_alert_init(a);
    assert_int_equal(te_alert_set_identity(a, "host-saturation", keys, vals, 1), 0);
    snprintf(a->id, sizeof(a->id), "%s", "00000000000000aa");
    a->state = TE_ALERT_FIRING;
    a->severity = TE_SEV_CRITICAL;
}

/* Runs one send of a notifier with block json to completion. */
static void run_one(const char *json, outcome_t *o, te_alert_t *a)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    te_config_notifier_t cfg = {.name = (char *)"page", .type = (char *)"exec", .json = (char *)json};
    te_err_t err = {0};
    te_notifier_t *n = te_notifier_new(&loop, &cfg, &err);
    if (!n)
        fail_msg("notifier: %s", err.msg);
    assert_int_equal(n->send(n, a, "firing", on_done, o), 0);
    assert_int_equal(o->calls, 0);
    while (o->calls == 0)
        uv_run(&loop, UV_RUN_ONCE);
    te_notifier_free(n);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void exec_gets_the_alert_json_on_stdin(void **state)
{
    (void)state;
    char dir[] = "/tmp/te-exec-XXXXXX", out[64], json[256];
    assert_non_null(mkdtemp(dir));
    snprintf(out, sizeof(out), "%s/got.json", dir);
    snprintf(json, sizeof(json), "{\"command\":[\"/bin/sh\",\"-c\",\"cat > %s\"]}", out);
    te_alert_t a;
    make_alert(&a);
    outcome_t o = {0};
    run_one(json, &o, &a);
    assert_int_equal(o.rc, 0);
    char got[4096] = "";
    FILE *f = fopen(out, "r");
    assert_non_null(f);
    size_t n = fread(got, 1, sizeof(got) - 1, f);
    fclose(f);
    got[n] = '\0';
    char *want = te_alert_to_json(&a, "firing");
    assert_string_equal(got, want);
    free(want);
    te_alert_clear(&a);
    unlink(out);
    rmdir(dir);
}

static void exec_nonzero_exit_is_a_failed_delivery(void **state)
{
    (void)state;
    te_alert_t a;
    make_alert(&a);
    outcome_t o = {0};
    run_one("{\"command\":[\"/bin/sh\",\"-c\",\"cat >/dev/null; exit 3\"]}", &o, &a);
    assert_int_equal(o.rc, TE_EIO);
    assert_string_equal(o.msg, "notifier \"page\": /bin/sh exited with status 3");
    te_alert_clear(&a);
}

static void exec_that_hangs_is_killed_after_the_timeout(void **state)
{
    (void)state;
    te_alert_t a;
    make_alert(&a);
    outcome_t o = {0};
    uint64_t t0 = uv_hrtime();
    run_one("{\"command\":[\"/bin/sleep\",\"30\"],\"timeout\":\"200ms\"}", &o, &a);
    assert_int_equal(o.rc, TE_EIO);
    assert_string_equal(o.msg, "notifier \"page\": /bin/sleep did not finish in time (killed)");
    assert_true(uv_hrtime() - t0 < 10u * 1000000000u);
    te_alert_clear(&a);
}

static void exec_of_a_missing_command_names_it(void **state)
{
    (void)state;
    te_alert_t a;
    make_alert(&a);
    outcome_t o = {0};
    run_one("{\"command\":[\"/nonexistent/pager\"]}", &o, &a);
    assert_int_equal(o.rc, TE_EIO);
    assert_string_equal(o.msg, "notifier \"page\": cannot run /nonexistent/pager: "
                               "no such file or directory");
    te_alert_clear(&a);
}

static void exec_bad_blocks_are_named(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    const char *bad[][2] = {
        {"{}", "notifier \"page\": exec needs a \"command\" (argv list)"},
        {"{\"command\":[\"/bin/true\", 3]}",
         "notifier \"page\": command must be a list of strings (at most 64)"},
        {"{\"command\":\"/bin/true\",\"timeout\":\"x\"}", "notifier \"page\": bad timeout \"x\""},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        te_config_notifier_t cfg = {.name = (char *)"page", .type = (char *)"exec",
                                    .json = (char *)bad[i][0]};
        te_err_t err = {0};
        assert_null(te_notifier_new(&loop, &cfg, &err));
        assert_string_equal(err.msg, bad[i][1]);
    }
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exec_gets_the_alert_json_on_stdin),
        cmocka_unit_test(exec_nonzero_exit_is_a_failed_delivery),
        cmocka_unit_test(exec_that_hangs_is_killed_after_the_timeout),
        cmocka_unit_test(exec_of_a_missing_command_names_it),
        cmocka_unit_test(exec_bad_blocks_are_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
