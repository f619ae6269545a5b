/*
 * test_http.c - the HTTP/1.1 server (src/ingest/http.c) over real sockets.
 *
 * The loop runs on the test's thread; a client thread plays scripted
 * exchanges with blocking sockets and records what came back; the
 * assertions run after the loop ended (and uv_loop_close returned 0).
 */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ingest/http.h"

#define NSCEN 8
#define OUT_MAX 8192

typedef struct fixture {
    uv_loop_t loop;
    te_http_server_t *srv;
    uv_async_t done;
    uv_timer_t later;
    te_http_req_t *pending[4];   /* /async requests waiting for the timer */
    size_t npending;
    int port;
    const char *send[NSCEN];
    size_t send_len[NSCEN];
    bool hang_up[NSCEN];         /* close without reading the answer */
    char out[NSCEN][OUT_MAX];
    size_t nscen;
} fixture_t;

static void later_cb(uv_timer_t *t)
{
    fixture_t *f = t->data;
    for (size_t i = 0; i < f->npending; i++)
        te_http_respond(f->pending[i], 200, NULL, NULL, "async\n", 6);
    f->npending = 0;
}

static void handler(te_http_req_t *req, void *ud)
{
    fixture_t *f = ud;
    char body[128];
    if (strcmp(req->path, "/async") == 0) {
        assert_true(f->npending < 4);
        f->pending[f->npending++] = req;
        uv_timer_start(&f->later, later_cb, 50, 0);
        return;
    }
    const char *q = te_http_param(req, "q");
    int n = snprintf(body, sizeof(body), "%s %s body=%zu q=%s\n",
                     http_method_str((enum http_method)req->method), req->path, req->body_len,
                     q ? q : "-");
    te_http_respond(req, 200, "text/plain", NULL, body, (size_t)n);
}

static void on_done(uv_async_t *a)
{
    fixture_t *f = a->data;
    if (f->npending) {            /* answer before closing: nothing is abandoned */
        uv_timer_stop(&f->later);
        later_cb(&f->later);
    }
    te_http_server_close(f->srv);
    uv_close((uv_handle_t *)&f->done, NULL);
    uv_close((uv_handle_t *)&f->later, NULL);
}

/* One exchange: connect, send, read until the server closes (5 s cap). */
static void exchange(fixture_t *f, size_t i)
{
    struct sockaddr_in sa;
    struct timeval tv = {5, 0};
    size_t got = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)f->port);
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        size_t off = 0;
        while (off < f->send_len[i]) {
            ssize_t w = send(fd, f->send[i] + off, f->send_len[i] - off, MSG_NOSIGNAL);
            if (w <= 0)
                break;
            off += (size_t)w;
        }
        for (; !f->hang_up[i];) {
            ssize_t r = recv(fd, f->out[i] + got, OUT_MAX - 1 - got, 0);
            if (r <= 0)
                break;
            got += (size_t)r;
        }
    }
    f->out[i][got] = '\0';
    close(fd);
}

static void *client(void *arg)
{
    fixture_t *f = arg;
    for (size_t i = 0; i < f->nscen; i++)
        exchange(f, i);
    uv_async_send(&f->done);
    return NULL;
}

static void run(fixture_t *f, size_t max_body)
{
    te_err_t err;
    char addr[80];
    pthread_t th;
    te_http_opts_t o = {.addr = "127.0.0.1:0", .max_body_bytes = max_body, .handler = handler,
                        .ud = f};
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(te_http_server_start(&f->loop, &o, &f->srv, &err), 0);
    te_http_server_address(f->srv, addr, sizeof(addr));
    f->port = atoi(strrchr(addr, ':') + 1);
    assert_true(f->port > 0);
    uv_async_init(&f->loop, &f->done, on_done);
    f->done.data = f;
    uv_timer_init(&f->loop, &f->later);
    f->later.data = f;
    assert_int_equal(pthread_create(&th, NULL, client, f), 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    pthread_join(th, NULL);
    assert_int_equal(te_http_server_connections(f->srv), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

static void add(fixture_t *f, const char *s)
{
    f->send[f->nscen] = s;
    f->send_len[f->nscen] = strlen(s);
    f->nscen++;
}

static void http_pipelined_requests_answer_in_order(void **state)
{
    (void)state;
    fixture_t *f = calloc(1, sizeof(*f));
    add(f, "GET /a?q=x%20y+z HTTP/1.1\r\nHost: t\r\n\r\n"
           "GET /async HTTP/1.1\r\nHost: t\r\n\r\n"
           "POST /c HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"
           "GET /d HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    run(f, 100);
    const char *o = f->out[0];
    const char *a = strstr(o, "GET /a body=0 q=x y z");
    const char *b = strstr(o, "async");
    const char *c = strstr(o, "POST /c body=3");
    const char *d = strstr(o, "GET /d body=0");
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_non_null(d);
    assert_true(a < b && b < c && c < d);
    assert_non_null(strstr(d - 80, "Connection: close"));
    assert_int_equal(te_http_server_count(f->srv, 200), 4);
    te_http_server_free(f->srv);
    free(f);
}

static void http_body_limit_both_sides(void **state)
{
    (void)state;
    static char at[512], over[512], chunked[512];
    char body[102];
    memset(body, 'x', sizeof(body) - 1);
    body[101] = '\0';
    fixture_t *f = calloc(1, sizeof(*f));
    snprintf(at, sizeof(at),
             "POST /at HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 100\r\n\r\n%.100s",
             body);
    snprintf(over, sizeof(over),
             "POST /over HTTP/1.1\r\nHost: t\r\nContent-Length: 101\r\n\r\n%s", body);
    snprintf(chunked, sizeof(chunked),
             "POST /ch HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
             "32\r\n%.50s\r\n33\r\n%.51s\r\n0\r\n\r\n",
             body, body);
    add(f, at);
    add(f, over);
    add(f, chunked);
    run(f, 100);
    assert_non_null(strstr(f->out[0], "POST /at body=100"));
    assert_non_null(strstr(f->out[1], "HTTP/1.1 413 "));
    assert_non_null(strstr(f->out[1],
                           "{\"error\":\"request body is 101 bytes, over the 100-byte limit"));
    assert_non_null(strstr(f->out[1], "Connection: close"));
    assert_non_null(strstr(f->out[2], "HTTP/1.1 413 "));
    assert_null(strstr(f->out[2], "POST /ch"));
    te_http_server_free(f->srv);
    free(f);
}

static void http_bad_input_gets_json_error_and_close(void **state)
{
    (void)state;
    static char big_header[70 * 1024];
    fixture_t *f = calloc(1, sizeof(*f));
    int n = snprintf(big_header, sizeof(big_header), "GET / HTTP/1.1\r\nX-Big: ");
    memset(big_header + n, 'a', 66 * 1024);
    memcpy(big_header + n + 66 * 1024, "\r\n\r\n", 5);
    add(f, "GARBAGE\r\n\r\n");
    add(f, big_header);
    add(f, "POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n");
    run(f, 100);
    assert_non_null(strstr(f->out[0], "HTTP/1.1 400 "));
    assert_non_null(strstr(f->out[0], "{\"error\":\"bad request: invalid HTTP method\"}"));
    assert_non_null(strstr(f->out[1], "HTTP/1.1 431 "));
    assert_non_null(strstr(f->out[2], "HTTP/1.1 400 "));
    assert_non_null(strstr(f->out[2], "content-length"));
    te_http_server_free(f->srv);
    free(f);
}

static void http_client_gone_before_async_answer_frees_cleanly(void **state)
{
    (void)state;
    fixture_t *f = calloc(1, sizeof(*f));
    add(f, "GET /async HTTP/1.1\r\nHost: t\r\n\r\n");
    f->hang_up[0] = true;
    add(f, "GET /async HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    run(f, 100);
    /* the first answer went nowhere, the connection was freed all the same
     * (run() checked no connection is left and uv_loop_close() == 0) */
    assert_int_equal(te_http_server_count(f->srv, 200), 2);
    assert_non_null(strstr(f->out[1], "async"));
    te_http_server_free(f->srv);
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(http_pipelined_requests_answer_in_order),
        cmocka_unit_test(http_body_limit_both_sides),
        cmocka_unit_test(http_bad_input_gets_json_error_and_close),
        cmocka_unit_test(http_client_gone_before_async_answer_frees_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
