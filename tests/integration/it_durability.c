/*
 * it_durability.c - SPEC section 3: after an accepted answer, kill -9 of
 * the engine loses nothing. Two client threads post batches of 200 events
 * with unique ids; the engine is killed mid-stream, restarted on the same
 * data dir, and every acknowledged batch must be there, whole and once.
 *
 * THREAD: main + the harness's poster threads.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

static void check_db(const te_it_srv_t *srv)
{
    char *out = NULL, *err = NULL;
    const char *const args[] = {"db", "check", "--data", srv->data, NULL};
    int rc = te_it_run_cli(args, NULL, 0, &out, &err);
    if (rc != 0)
        fprintf(stderr, "db check -> %d\nstdout: %s\nstderr: %s\n", rc, out, err);
    assert_int_equal(rc, 0);
    free(out);
    free(err);
}

static void kill9_mid_stream_loses_no_acked_event(void **state)
{
    (void)state;
    te_it_srv_t srv;
    assert_int_equal(te_it_start_fresh(&srv, NULL), 0);
    te_it_load_t *l = te_it_load_start(&srv, "dur", 2, 200);
    /* let some batches be acked, then kill while requests are in flight */
    assert_true(te_it_load_wait_acked(l, 30, 20000) >= 30);
    te_it_kill9(&srv);
    te_it_load_stop(l);
    int acked = te_it_load_acked(l);
    assert_true(acked >= 30);

    assert_int_equal(te_it_start(&srv, NULL), 0);
    assert_int_equal(te_it_load_verify(l, &srv), 0);
    long n = te_it_count(&srv, "dur", NULL);
    assert_true(n >= (long)acked * 200);

    /* a second round on the recovered database */
    te_it_load_t *l2 = te_it_load_start(&srv, "dur2", 2, 200);
    assert_true(te_it_load_wait_acked(l2, 10, 20000) >= 10);
    te_it_kill9(&srv);
    te_it_load_stop(l2);
    assert_int_equal(te_it_start(&srv, NULL), 0);
    assert_int_equal(te_it_load_verify(l2, &srv), 0);
    assert_int_equal(te_it_load_verify(l, &srv), 0);
    assert_int_equal(te_it_stop(&srv, SIGTERM, 10000), 0);

    check_db(&srv);
    te_it_load_free(l);
    te_it_load_free(l2);
    te_it_cleanup(&srv);
}

static void resent_batches_after_crash_are_not_duplicated(void **state)
{
    (void)state;
    te_it_srv_t srv;
    assert_int_equal(te_it_start_fresh(&srv, NULL), 0);
    const char body[] = "{\"kind\":\"again\",\"source\":\"c\",\"id\":\"x1\"}\n"
                        "{\"kind\":\"again\",\"source\":\"c\",\"id\":\"x2\"}\n";
    te_it_resp_t r;
    assert_int_equal(te_it_post(&srv, body, strlen(body), &r), 0);
    assert_int_equal(r.status, 200);
    te_it_resp_free(&r);
    te_it_kill9(&srv);
    assert_int_equal(te_it_start(&srv, NULL), 0);
    /* a client that did not see the answer sends the batch again */
    assert_int_equal(te_it_post(&srv, body, strlen(body), &r), 0);
    assert_int_equal(r.status, 200);
    te_it_resp_free(&r);
    assert_int_equal(te_it_count(&srv, "again", NULL), 2);
    assert_int_equal(te_it_stop(&srv, SIGTERM, 10000), 0);
    te_it_cleanup(&srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kill9_mid_stream_loses_no_acked_event),
        cmocka_unit_test(resent_batches_after_crash_are_not_duplicated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
