/* test_notify.c - notifier factory and the "file" notifier. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "alerts/notify.h"

typedef struct { int called; int rc; char msg[256]; } res_t;

static void on_done(int rc, const char *msg, void *ud)
{
    res_t *r = ud;
    r->called++;
    r->rc = rc;
    snprintf(r->msg, sizeof r->msg, "%s", msg ? msg : "");
}

static void fill_alert(te_alert_t *a)
{
    memset(a, 0, sizeof *a);
    strcpy(a->id, "00000000000000aa");
    strcpy(a->fingerprint, "00000000000000bb");
    a->rule = "cpu_high";
    a->state = TE_ALERT_FIRING;
    a->starts_at_ns = 1700000000000000000LL;
}

static void test_file_writes_lines(void **state)
{
    (void)state;
    char dir[] = "/tmp/te_notify_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], json[400];
    snprintf(path, sizeof path, "%s/out.jsonl", dir);
    snprintf(json, sizeof json, "{\"name\":\"f\",\"type\":\"file\",\"path\":\"%s\",\"fsync\":true}", path);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    te_config_notifier_t cfg = {"f", "file", json};
    te_err_t err = {0};
    te_notifier_t *n = te_notifier_new(&loop, &cfg, &err);
    assert_non_null(n);
    te_alert_t a;
    fill_alert(&a);
    res_t r = {0};
    assert_int_equal(n->send(n, &a, "firing", on_done, &r), 0);
    assert_int_equal(r.called, 0); /* asynchronous */
    assert_int_equal(n->send(n, &a, "resolved", on_done, &r), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(r.called, 2);
    assert_int_equal(r.rc, 0);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[4096];
    char *exp1 = te_alert_to_json(&a, "firing"), *exp2 = te_alert_to_json(&a, "resolved");
    assert_non_null(fgets(line, sizeof line, f));
    line[strcspn(line, "\n")] = 0;
    assert_string_equal(line, exp1);
    assert_non_null(fgets(line, sizeof line, f));
    line[strcspn(line, "\n")] = 0;
    assert_string_equal(line, exp2);
    assert_null(fgets(line, sizeof line, f));
    fclose(f);
    free(exp1);
    free(exp2);
    te_notifier_free(n);
    assert_int_equal(uv_loop_close(&loop), 0);
    unlink(path);
    rmdir(dir);
}

static void test_file_open_error(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    te_config_notifier_t cfg = {"f", "file",
        "{\"type\":\"file\",\"path\":\"/nonexistent_dir_te/x.jsonl\"}"};
    te_err_t err = {0};
    te_notifier_t *n = te_notifier_new(&loop, &cfg, &err);
    assert_non_null(n);
    te_alert_t a;
    fill_alert(&a);
    res_t r = {0};
    assert_int_equal(n->send(n, &a, NULL, on_done, &r), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(r.called, 1);
    assert_int_equal(r.rc, TE_EIO);
    assert_non_null(strstr(r.msg, "notifier \"f\": open /nonexistent_dir_te/x.jsonl"));
    te_notifier_free(n);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void bad(const char *type, const char *json, const char *want)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    te_config_notifier_t cfg = {"ops", (char *)type, (char *)json};
    te_err_t err = {0};
    assert_null(te_notifier_new(&loop, &cfg, &err));
    assert_int_equal(err.code, TE_ECONFIG);
    if (!strstr(err.msg, want)) fail_msg("got \"%s\", want \"%s\"", err.msg, want);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_bad_configs(void **state)
{
    (void)state;
    bad("file", "{\"type\":\"file\"}", "notifier \"ops\": file needs a \"path\" string");
    bad("file", "{\"path\":\"\"}", "notifier \"ops\": file needs a \"path\" string");
    bad("file", "{\"path\":\"/tmp/x\",\"pth\":1}", "notifier \"ops\": unknown key \"pth\"");
    bad("file", "{\"path\":\"/tmp/x\",\"fsync\":1}", "notifier \"ops\": \"fsync\" must be a boolean");
    bad("file", "[1]", "notifier \"ops\": block is not a JSON object");
    bad("pager", "{}", "notifier \"ops\": type \"pager\" is not supported yet");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_writes_lines),
        cmocka_unit_test(test_file_open_error),
        cmocka_unit_test(test_bad_configs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
