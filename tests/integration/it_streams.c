/*
 * it_streams.c - stream listeners of the real binary (SPEC sections 3, 4):
 * TCP NDJSON, Unix-socket NDJSON and UDP datagrams end up stored; bad lines
 * are counted in /metrics and never poison the good ones.
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
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cmocka.h>

#include "harness.h"

static te_it_srv_t srv;

static int setup(void **state)
{
    (void)state;
    return te_it_start_fresh(&srv, NULL);
}

static int teardown(void **state)
{
    (void)state;
    int rc = te_it_stop(&srv, 15, 10000);
    if (rc != 0)
        te_it_dump_log(&srv);
    te_it_cleanup(&srv);
    return rc == 0 ? 0 : -1;
}

static int tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

static int unix_connect(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    size_t n = strlen(path);
    assert_true(n < sizeof(a.sun_path));
    memcpy(a.sun_path, path, n + 1);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        assert_true(w > 0);
        p += w;
        n -= (size_t)w;
    }
}

/* Polls a metric until it reaches want (deadline 5 s); returns the last value. */
static double wait_metric(const char *name, double want)
{
    int64_t deadline = te_it_now_ms() + 5000;
    double v;
    do {
        v = te_it_metric(&srv, name);
        if (v >= want)
            return v;
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    } while (te_it_now_ms() < deadline);
    return v;
}

/* 1000 good lines for kind with 2 bad ones in the middle, a line split
 * across two writes, and a last line without its newline. */
static void stream_lines(int fd, const char *kind)
{
    te_it_str_t b = {0};
    for (int i = 0; i < 998; i++) {
        te_it_str_add(&b, "{\"kind\":\"%s\",\"tags\":{\"i\":\"%d\"},\"fields\":{\"v\":%d}}\n", kind,
                      i, i);
        if (i == 100)
            te_it_str_add(&b, "{\"kind\":\"%s\",\"fields\":{\"v\":\"not a number\"}}\n", kind);
        if (i == 500)
            te_it_str_add(&b, "this line is not json\n");
    }
    send_all(fd, b.p, b.len);
    te_it_str_free(&b);
    char line[128];
    int n = snprintf(line, sizeof(line), "{\"kind\":\"%s\",\"fields\":{\"v\":998}}\n", kind);
    send_all(fd, line, 10);
    send_all(fd, line + 10, (size_t)n - 10);
    n = snprintf(line, sizeof(line), "{\"kind\":\"%s\",\"fields\":{\"v\":999}}", kind);
    send_all(fd, line, (size_t)n);
    shutdown(fd, SHUT_WR);
}

static void tcp_ndjson_is_stored_and_bad_lines_counted(void **state)
{
    (void)state;
    double r0 = te_it_metric(&srv, "te_events_rejected_total");
    assert_true(r0 >= 0);
    int fd = tcp_connect(srv.tcp_port);
    stream_lines(fd, "tcpk");
    assert_int_equal(te_it_wait_count(&srv, "tcpk", NULL, 1000, 10000), 1000);
    close(fd);
    assert_true(wait_metric("te_events_rejected_total", r0 + 2) == r0 + 2);
    assert_int_equal(te_it_count(&srv, "tcpk", "where=i:100"), 1);
}

static void unix_socket_ndjson_is_stored(void **state)
{
    (void)state;
    double r0 = te_it_metric(&srv, "te_events_rejected_total");
    int fd = unix_connect(srv.sock);
    stream_lines(fd, "unixk");
    assert_int_equal(te_it_wait_count(&srv, "unixk", NULL, 1000, 10000), 1000);
    close(fd);
    assert_true(wait_metric("te_events_rejected_total", r0 + 2) == r0 + 2);
}

static void tcp_many_connections_at_once(void **state)
{
    (void)state;
    enum { C = 8, PER = 250 };
    int fds[C];
    for (int c = 0; c < C; c++)
        fds[c] = tcp_connect(srv.tcp_port);
    for (int i = 0; i < PER; i++)
        for (int c = 0; c < C; c++) {
            char line[128];
            int n = snprintf(line, sizeof(line), "{\"kind\":\"multi\",\"fields\":{\"c\":%d}}\n", c);
            send_all(fds[c], line, (size_t)n);
        }
    for (int c = 0; c < C; c++)
        close(fds[c]);
    assert_int_equal(te_it_wait_count(&srv, "multi", NULL, C * PER, 10000), C * PER);
}

static int udp_socket(struct sockaddr_in *a)
{
    *a = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)srv.udp_port)};
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return socket(AF_INET, SOCK_DGRAM, 0);
}

static void udp_datagrams_are_stored(void **state)
{
    (void)state;
    double r0 = te_it_metric(&srv, "te_events_rejected_total");
    struct sockaddr_in a;
    int fd = udp_socket(&a);
    /* 100 datagrams of one event each, then 1 bad one */
    for (int i = 0; i < 100; i++) {
        char d[128];
        int n = snprintf(d, sizeof(d), "{\"kind\":\"udpk\",\"fields\":{\"i\":%d}}", i);
        assert_int_equal(sendto(fd, d, (size_t)n, 0, (struct sockaddr *)&a, sizeof(a)), n);
        /* the engine keeps pace on loopback; wait for it every 25 datagrams
         * so a slow CI machine does not overflow the socket buffer */
        if (i % 25 == 24)
            assert_int_equal(te_it_wait_count(&srv, "udpk", NULL, i + 1, 5000), i + 1);
    }
    const char bad[] = "{\"kind\":\"udpk\",";
    assert_int_equal(sendto(fd, bad, sizeof(bad) - 1, 0, (struct sockaddr *)&a, sizeof(a)),
                     (ssize_t)sizeof(bad) - 1);
    close(fd);
    assert_true(wait_metric("te_events_rejected_total", r0 + 1) == r0 + 1);
    assert_int_equal(te_it_count(&srv, "udpk", NULL), 100);
}

/* Like Fluent Bit's in_udp (records split on "\n"), a datagram may carry
 * several NDJSON lines: clients batch small events into one packet. */
static void udp_datagram_with_ndjson_lines_stores_each(void **state)
{
    (void)state;
    struct sockaddr_in a;
    int fd = udp_socket(&a);
    for (int i = 0; i < 20; i++) {
        char d[256];
        int n = snprintf(d, sizeof(d),
                         "{\"kind\":\"udpm\",\"fields\":{\"i\":%d}}\n"
                         "{\"kind\":\"udpm\",\"fields\":{\"i\":%d}}\n"
                         "{\"kind\":\"udpm\",\"fields\":{\"i\":%d}}\n",
                         1000 + i, 2000 + i, 3000 + i);
        assert_int_equal(sendto(fd, d, (size_t)n, 0, (struct sockaddr *)&a, sizeof(a)), n);
    }
    close(fd);
    assert_int_equal(te_it_wait_count(&srv, "udpm", NULL, 60, 5000), 60);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tcp_ndjson_is_stored_and_bad_lines_counted),
        cmocka_unit_test(unix_socket_ndjson_is_stored),
        cmocka_unit_test(tcp_many_connections_at_once),
        cmocka_unit_test(udp_datagrams_are_stored),
        cmocka_unit_test(udp_datagram_with_ndjson_lines_stores_each),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
