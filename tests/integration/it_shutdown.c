/*
 * it_shutdown.c - SPEC section 3: on SIGTERM/SIGINT the engine stops
 * accepting, drains the queue, commits and exits 0; every acknowledged
 * event is there after a restart. Also: TCP data sent before the signal is
 * drained, and a second start on the same data dir works.
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
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "harness.h"

static void signal_while_posting(int sig)
{
    te_it_srv_t srv;
    assert_int_equal(te_it_start_fresh(&srv, NULL), 0);
    te_it_load_t *l = te_it_load_start(&srv, "shut", 2, 200);
    assert_true(te_it_load_wait_acked(l, 20, 20000) >= 20);
    int rc = te_it_stop(&srv, sig, 15000);
    if (rc != 0)
        te_it_dump_log(&srv);
    assert_int_equal(rc, 0);
    te_it_load_stop(l);
    assert_int_equal(te_it_start(&srv, NULL), 0);
    assert_int_equal(te_it_load_verify(l, &srv), 0);
    assert_int_equal(te_it_stop(&srv, SIGTERM, 10000), 0);
    te_it_load_free(l);
    te_it_cleanup(&srv);
}

static void sigterm_while_posting_exits_0_and_keeps_acked(void **state)
{
    (void)state;
    signal_while_posting(SIGTERM);
}

static void sigint_while_posting_exits_0_and_keeps_acked(void **state)
{
    (void)state;
    signal_while_posting(SIGINT);
}

static void sigterm_drains_tcp_lines_already_received(void **state)
{
    (void)state;
    te_it_srv_t srv;
    assert_int_equal(te_it_start_fresh(&srv, NULL), 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)srv.tcp_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    te_it_str_t b = {0};
    for (int i = 0; i < 500; i++)
        te_it_str_add(&b, "{\"kind\":\"drain\",\"fields\":{\"i\":%d}}\n", i);
    assert_int_equal(send(fd, b.p, b.len, MSG_NOSIGNAL), (ssize_t)b.len);
    te_it_str_free(&b);
    /* wait until the engine has read them (stored or queued), then stop */
    assert_int_equal(te_it_wait_count(&srv, "drain", NULL, 500, 10000), 500);
    assert_int_equal(te_it_stop(&srv, SIGTERM, 10000), 0);
    close(fd);
    assert_int_equal(te_it_start(&srv, NULL), 0);
    assert_int_equal(te_it_count(&srv, "drain", NULL), 500);
    assert_int_equal(te_it_stop(&srv, SIGINT, 10000), 0);
    te_it_cleanup(&srv);
}

static void idle_engine_stops_quickly(void **state)
{
    (void)state;
    te_it_srv_t srv;
    assert_int_equal(te_it_start_fresh(&srv, NULL), 0);
    int64_t t0 = te_it_now_ms();
    assert_int_equal(te_it_stop(&srv, SIGTERM, 5000), 0);
    assert_true(te_it_now_ms() - t0 < 2000);
    te_it_cleanup(&srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sigterm_while_posting_exits_0_and_keeps_acked),
        cmocka_unit_test(sigint_while_posting_exits_0_and_keeps_acked),
        cmocka_unit_test(sigterm_drains_tcp_lines_already_received),
        cmocka_unit_test(idle_engine_stops_quickly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
