/*
 * it_http.c - HTTP API of the real binary (SPEC section 5): every answer
 * code of POST /v1/events, GET /v1/events paging and CSV, GET /v1/query on a
 * known data set, 404/405, /metrics, /v1/status, 503 under a tiny queue.
 *
 * THREAD: main (the 503 test adds poster threads).
 */
#define _GNU_SOURCE
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "harness.h"

static te_it_srv_t srv; /* one engine for the whole group */

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

static cJSON *post_json(const char *body, size_t len, const char *const *headers, long want)
{
    te_it_resp_t r;
    assert_int_equal(te_it_http(&srv, "POST", "/v1/events", body, len, headers, &r), 0);
    if (r.status != want)
        fprintf(stderr, "POST -> %ld %s\n", r.status, r.body);
    assert_int_equal(r.status, want);
    cJSON *j = cJSON_Parse(r.body);
    if (!j)
        fprintf(stderr, "not JSON: %s\n", r.body);
    assert_non_null(j);
    te_it_resp_free(&r);
    return j;
}

static long num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(v))
        fail_msg("\"%s\" is not a number", k);
    return (long)v->valuedouble;
}

/* Sends raw bytes to the HTTP port and returns the status code of the answer. */
static int raw_http(const char *req, size_t len)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)srv.http_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_int_equal(send(fd, req, len, MSG_NOSIGNAL), (ssize_t)len);
    char buf[512];
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
    close(fd);
    if (n <= 12)
        return -1;
    buf[n] = '\0';
    return atoi(buf + 9); /* "HTTP/1.1 413 ..." */
}

/* ---------- POST /v1/events ---------- */

static void post_mixed_batch_reports_exact_indexes(void **state)
{
    (void)state;
    const char body[] = "{\"kind\":\"mix\",\"fields\":{\"x\":1}}\n"
                        "{\"kind\":\"Bad Kind\",\"fields\":{\"x\":2}}\n"
                        "{\"kind\":\"mix\",\"fields\":{\"x\":3}}\n"
                        "{\"kind\":\"mix\",\"tags\":{\"a\":\"b\"},\"fields\":{\"latency_ms\":\"slow\"}}\n"
                        "{\"kind\":\"mix\",\"fields\":{\"x\":5}}\n"
                        "{\"fields\":{\"x\":6}}\n";
    cJSON *j = post_json(body, strlen(body), NULL, 200);
    assert_int_equal(num(j, "accepted"), 3);
    assert_int_equal(num(j, "rejected"), 3);
    cJSON *errs = cJSON_GetObjectItemCaseSensitive(j, "errors");
    assert_int_equal(cJSON_GetArraySize(errs), 3);
    static const long want_idx[] = {1, 3, 5};
    for (int i = 0; i < 3; i++) {
        cJSON *e = cJSON_GetArrayItem(errs, i);
        assert_int_equal(num(e, "index"), want_idx[i]);
        cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "error");
        assert_true(cJSON_IsString(msg) && msg->valuestring[0]);
    }
    /* the non-numeric field is named in its error */
    assert_non_null(strstr(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(errs, 1), "error")->valuestring,
        "latency_ms"));
    cJSON_Delete(j);
    assert_int_equal(te_it_wait_count(&srv, "mix", NULL, 3, 5000), 3);
}

static void post_array_and_single_object_are_accepted(void **state)
{
    (void)state;
    const char arr[] = "[{\"kind\":\"arr\",\"fields\":{\"x\":1}},{\"kind\":\"arr\"},"
                       "{\"kind\":\"arr\",\"tags\":{\"t\":\"v\"}}]";
    cJSON *j = post_json(arr, strlen(arr), NULL, 200);
    assert_int_equal(num(j, "accepted"), 3);
    assert_int_equal(num(j, "rejected"), 0);
    cJSON_Delete(j);
    static const char *const hj[] = {"Content-Type: application/json", NULL};
    const char one[] = "{\"kind\":\"obj\",\"fields\":{\"x\":1}}";
    j = post_json(one, strlen(one), hj, 200);
    assert_int_equal(num(j, "accepted"), 1);
    cJSON_Delete(j);
    /* flat form */
    const char flat[] = "{\"type\":\"obj\",\"provider\":\"openai\",\"latency_ms\":12.5}\n";
    j = post_json(flat, strlen(flat), NULL, 200);
    assert_int_equal(num(j, "accepted"), 1);
    cJSON_Delete(j);
    assert_int_equal(te_it_wait_count(&srv, "arr", NULL, 3, 5000), 3);
    assert_int_equal(te_it_wait_count(&srv, "obj", NULL, 2, 5000), 2);
    assert_int_equal(te_it_count(&srv, "obj", "where=provider:openai"), 1);
}

static void post_gzip_body_is_inflated(void **state)
{
    (void)state;
    te_it_str_t b = {0};
    for (int i = 0; i < 500; i++)
        te_it_str_add(&b, "{\"kind\":\"gz\",\"tags\":{\"i\":\"%d\"},\"fields\":{\"v\":%d}}\n", i, i);
    size_t glen;
    unsigned char *gz = te_it_gzip(b.p, b.len, &glen);
    assert_non_null(gz);
    static const char *const h[] = {"Content-Type: application/x-ndjson",
                                    "Content-Encoding: gzip", NULL};
    cJSON *j = post_json((const char *)gz, glen, h, 200);
    assert_int_equal(num(j, "accepted"), 500);
    cJSON_Delete(j);
    free(gz);
    te_it_str_free(&b);
    assert_int_equal(te_it_count(&srv, "gz", NULL), 500);
}

static void post_unparseable_bodies_answer_400(void **state)
{
    (void)state;
    cJSON *j = post_json("", 0, NULL, 400);
    assert_true(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(j, "error")));
    cJSON_Delete(j);
    j = post_json("this is not json at all\n", 24, NULL, 400);
    assert_true(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(j, "error")));
    cJSON_Delete(j);
    static const char *const h[] = {"Content-Encoding: gzip", NULL};
    /* a valid gzip header followed by garbage */
    const char broken[] = "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage-not-deflate";
    j = post_json(broken, sizeof(broken) - 1, h, 400);
    cJSON_Delete(j);
    /* a truncated gzip stream of good events */
    const char good[] = "{\"kind\":\"trunc\"}\n{\"kind\":\"trunc\"}\n";
    size_t glen;
    unsigned char *gz = te_it_gzip(good, strlen(good), &glen);
    j = post_json((const char *)gz, glen - 6, h, 400);
    cJSON_Delete(j);
    free(gz);
    /* bad Content-Length */
    const char bad_len[] = "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}";
    assert_int_equal(raw_http(bad_len, strlen(bad_len)), 400);
    const char neg_len[] = "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n{}";
    assert_int_equal(raw_http(neg_len, strlen(neg_len)), 400);
    assert_int_equal(te_it_count(&srv, "trunc", NULL), 0);
}

static void post_over_16mib_answers_413_and_stores_nothing(void **state)
{
    (void)state;
    /* announced size over the limit: answered before the body is sent */
    const char big[] = "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
                       "Content-Length: 16777217\r\n\r\n";
    assert_int_equal(raw_http(big, strlen(big)), 413);
    /* a gzip bomb: 180 KB on the wire, > 16 MiB inflated, all valid events */
    te_it_str_t b = {0};
    const char line[] = "{\"kind\":\"bomb\",\"fields\":{\"x\":1}}\n";
    while (b.len <= 16u * 1024 * 1024 + 1024)
        te_it_str_addn(&b, line, sizeof(line) - 1);
    size_t glen;
    unsigned char *gz = te_it_gzip(b.p, b.len, &glen);
    assert_true(glen < 1024 * 1024);
    static const char *const h[] = {"Content-Type: application/x-ndjson",
                                    "Content-Encoding: gzip", NULL};
    cJSON *j = post_json((const char *)gz, glen, h, 413);
    cJSON_Delete(j);
    free(gz);
    te_it_str_free(&b);
    assert_int_equal(te_it_count(&srv, "bomb", NULL), 0);
}

/* Both sides of the 16 MiB body limit with real bodies: exactly 16 MiB is
 * accepted, one byte more is 413 and nothing of it is stored. */
static void build_body_of_size(te_it_str_t *b, const char *kind, size_t size, int *nevents)
{
    const size_t limit = size;
    int n = 0;
    char ev[512];
    int len = snprintf(ev, sizeof(ev), "{\"kind\":\"%s\",\"body\":{\"pad\":\"%0400d\"}}\n",
                       kind, 0);
    while (b->len + 2 * (size_t)len < limit) {
        te_it_str_addn(b, ev, (size_t)len);
        n++;
    }
    /* last event padded to reach the exact size */
    size_t rest = limit - b->len;
    int head = snprintf(ev, sizeof(ev), "{\"kind\":\"%s\",\"body\":{\"pad\":\"", kind);
    te_it_str_addn(b, ev, (size_t)head);
    size_t pad = rest - (size_t)head - 4; /* "}}\n" and the closing quote */
    for (size_t i = 0; i < pad; i++)
        te_it_str_addn(b, "x", 1);
    te_it_str_addn(b, "\"}}\n", 4);
    n++;
    assert_int_equal(b->len, limit);
    *nevents = n;
}

static void post_body_at_16mib_limit_both_sides(void **state)
{
    (void)state;
    te_it_str_t b = {0};
    int n;
    build_body_of_size(&b, "edge", 16u * 1024 * 1024, &n);
    cJSON *j = post_json(b.p, b.len, NULL, 200);
    assert_int_equal(num(j, "accepted"), n);
    assert_int_equal(num(j, "rejected"), 0);
    cJSON_Delete(j);
    te_it_str_free(&b);
    int stored = n;
    build_body_of_size(&b, "edge2", 16u * 1024 * 1024 + 1, &n);
    te_it_resp_t r;
    assert_int_equal(te_it_post(&srv, b.p, b.len, &r), 0);
    te_it_str_free(&b);
    assert_int_equal(r.status, 413);
    te_it_resp_free(&r);
    assert_int_equal(te_it_count(&srv, "edge", NULL), stored);
    assert_int_equal(te_it_count(&srv, "edge2", NULL), 0);
}

static void post_event_over_1mib_is_rejected_alone(void **state)
{
    (void)state;
    size_t big = 1024 * 1024 + 100, small = 1024 * 1024 - 200;
    te_it_str_t b = {0};
    te_it_str_add(&b, "{\"kind\":\"huge\",\"body\":{\"s\":\"");
    for (size_t i = 0; i < big; i++)
        te_it_str_addn(&b, "a", 1);
    te_it_str_add(&b, "\"}}\n{\"kind\":\"huge\",\"body\":{\"s\":\"");
    for (size_t i = 0; i < small; i++)
        te_it_str_addn(&b, "b", 1);
    te_it_str_add(&b, "\"}}\n{\"kind\":\"huge\",\"fields\":{\"x\":1}}\n");
    cJSON *j = post_json(b.p, b.len, NULL, 200);
    te_it_str_free(&b);
    assert_int_equal(num(j, "accepted"), 2);
    assert_int_equal(num(j, "rejected"), 1);
    cJSON *e = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "errors"), 0);
    assert_int_equal(num(e, "index"), 0);
    cJSON_Delete(j);
    assert_int_equal(te_it_count(&srv, "huge", NULL), 2);
}

static void post_same_source_and_id_is_stored_once(void **state)
{
    (void)state;
    const char ev[] = "{\"kind\":\"idem\",\"source\":\"s1\",\"id\":\"a-1\",\"fields\":{\"x\":1}}\n";
    for (int i = 0; i < 2; i++) {
        cJSON *j = post_json(ev, strlen(ev), NULL, 200);
        assert_int_equal(num(j, "accepted"), 1);
        assert_int_equal(num(j, "rejected"), 0);
        cJSON_Delete(j);
    }
    const char other[] = "{\"kind\":\"idem\",\"source\":\"s2\",\"id\":\"a-1\",\"fields\":{\"x\":2}}\n";
    cJSON *j = post_json(other, strlen(other), NULL, 200);
    cJSON_Delete(j);
    /* twice in the same request */
    const char twice[] = "{\"kind\":\"idem\",\"source\":\"s3\",\"id\":\"z\"}\n"
                         "{\"kind\":\"idem\",\"source\":\"s3\",\"id\":\"z\"}\n";
    j = post_json(twice, strlen(twice), NULL, 200);
    assert_int_equal(num(j, "accepted"), 2);
    cJSON_Delete(j);
    cJSON *got = te_it_get_json(&srv, "/v1/events?kind=idem&since=1h");
    assert_non_null(got);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(got, "events")), 3);
    cJSON_Delete(got);
}

/* ---------- GET /v1/events ---------- */

static void get_events_pages_without_gaps_or_duplicates(void **state)
{
    (void)state;
    enum { N = 250 };
    te_it_str_t b = {0};
    for (int i = 0; i < N; i++) {
        char ts[40];
        te_it_rfc3339(-(int64_t)(N - i) * 1000, ts, sizeof(ts)); /* one per second, oldest first */
        te_it_str_add(&b, "{\"ts\":\"%s\",\"kind\":\"page\",\"tags\":{\"n\":\"%d\"},"
                          "\"fields\":{\"n\":%d}}\n", ts, i, i);
    }
    cJSON *j = post_json(b.p, b.len, NULL, 200);
    assert_int_equal(num(j, "accepted"), N);
    cJSON_Delete(j);
    te_it_str_free(&b);

    char seen[N] = {0};
    int total = 0, pages = 0, last = N;
    char path[512] = "/v1/events?kind=page&since=1h&limit=100";
    for (;;) {
        cJSON *p = te_it_get_json(&srv, path);
        assert_non_null(p);
        cJSON *evs = cJSON_GetObjectItemCaseSensitive(p, "events");
        assert_true(cJSON_GetArraySize(evs) <= 100);
        cJSON *ev;
        cJSON_ArrayForEach(ev, evs)
        {
            int n = (int)cJSON_GetObjectItemCaseSensitive(
                           cJSON_GetObjectItemCaseSensitive(ev, "fields"), "n")->valuedouble;
            assert_true(n >= 0 && n < N);
            assert_int_equal(seen[n], 0);
            assert_true(n < last); /* newest first */
            last = n;
            seen[n] = 1;
            total++;
        }
        pages++;
        cJSON *next = cJSON_GetObjectItemCaseSensitive(p, "next");
        if (cJSON_IsNull(next) || !next) {
            cJSON_Delete(p);
            break;
        }
        assert_true(cJSON_IsString(next));
        char *esc = curl_easy_escape(NULL, next->valuestring, 0);
        snprintf(path, sizeof(path), "/v1/events?kind=page&since=1h&limit=100&cursor=%s", esc);
        curl_free(esc);
        cJSON_Delete(p);
        assert_true(pages < 10);
    }
    assert_int_equal(total, N);
    assert_int_equal(pages, 3);

    /* CSV: a header line plus one line per event */
    te_it_resp_t r;
    assert_int_equal(te_it_http(&srv, "GET", "/v1/events?kind=page&since=1h&limit=10&format=csv",
                                NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    int lines = 0;
    for (const char *c = r.body; *c; c++)
        lines += *c == '\n';
    assert_int_equal(lines, 11);
    assert_non_null(strcasestr(r.headers, "text/csv"));
    te_it_resp_free(&r);

    /* where= filters by tag */
    cJSON *w = te_it_get_json(&srv, "/v1/events?kind=page&since=1h&where=n:17");
    assert_non_null(w);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(w, "events")), 1);
    cJSON_Delete(w);
    /* limit over 1000 is refused */
    assert_int_equal(te_it_http(&srv, "GET", "/v1/events?kind=page&limit=1001", NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 400);
    te_it_resp_free(&r);
}

/* ---------- GET /v1/query ---------- */

static const cJSON *row_where(const cJSON *rows, const char *key, const char *val)
{
    const cJSON *row;
    cJSON_ArrayForEach(row, rows)
    {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, key);
        if (val == NULL ? cJSON_IsNull(v) : (cJSON_IsString(v) && strcmp(v->valuestring, val) == 0))
            return row;
    }
    return NULL;
}

static double dnum(const cJSON *row, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, k);
    if (!cJSON_IsNumber(v))
        fail_msg("\"%s\" is not a number", k);
    return v->valuedouble;
}

static void query_known_data_set_gives_exact_aggregates(void **state)
{
    (void)state;
    /* 10 events in the previous whole hour, 5 in its first minute, 5 in
     * its second: latency 10..100 (openai: 10..40, anthropic: 50..80, no
     * provider: 90, 100), workflow a/b alternating. */
    time_t now = time(NULL);
    time_t base = (now / 3600) * 3600 - 3600;
    te_it_str_t b = {0};
    for (int i = 0; i < 10; i++) {
        time_t t = base + (i < 5 ? i : 60 + i);
        const char *prov = i < 4 ? "openai" : (i < 8 ? "anthropic" : NULL);
        te_it_str_add(&b, "{\"ts\":%lld,\"kind\":\"q\",\"tags\":{\"workflow\":\"%s\"%s%s%s},"
                          "\"fields\":{\"latency_ms\":%d}}\n",
                      (long long)t, i % 2 ? "b" : "a", prov ? ",\"provider\":\"" : "",
                      prov ? prov : "", prov ? "\"" : "", (i + 1) * 10);
    }
    cJSON *j = post_json(b.p, b.len, NULL, 200);
    assert_int_equal(num(j, "accepted"), 10);
    cJSON_Delete(j);
    te_it_str_free(&b);

    char path[1024];
    snprintf(path, sizeof(path),
             "/v1/query?kind=q&since=%lld&until=%lld&agg=count,sum:latency_ms,avg:latency_ms,"
             "min:latency_ms,max:latency_ms,p50:latency_ms,p95:latency_ms,p99:latency_ms,rate,"
             "distinct:workflow",
             (long long)base, (long long)base + 3600);
    cJSON *q = te_it_get_json(&srv, path);
    assert_non_null(q);
    char *cols = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(q, "columns"));
    assert_string_equal(cols, "[\"count\",\"sum:latency_ms\",\"avg:latency_ms\",\"min:latency_ms\","
                              "\"max:latency_ms\",\"p50:latency_ms\",\"p95:latency_ms\","
                              "\"p99:latency_ms\",\"rate\",\"distinct:workflow\"]");
    free(cols);
    cJSON *rows = cJSON_GetObjectItemCaseSensitive(q, "rows");
    assert_int_equal(cJSON_GetArraySize(rows), 1);
    cJSON *r0 = cJSON_GetArrayItem(rows, 0);
    assert_int_equal(cJSON_GetArraySize(r0), 10);
    assert_true(dnum(r0, "count") == 10);
    assert_true(fabs(dnum(r0, "sum:latency_ms") - 550) < 1e-9);
    assert_true(fabs(dnum(r0, "avg:latency_ms") - 55) < 1e-9);
    assert_true(dnum(r0, "min:latency_ms") == 10);
    assert_true(dnum(r0, "max:latency_ms") == 100);
    /* numpy-style linear interpolation: rank = p * (n - 1) */
    assert_true(fabs(dnum(r0, "p50:latency_ms") - 55) < 1e-6);
    assert_true(fabs(dnum(r0, "p95:latency_ms") - 95.5) < 1e-6);
    assert_true(fabs(dnum(r0, "p99:latency_ms") - 99.1) < 1e-6);
    assert_true(fabs(dnum(r0, "rate") - 10.0 / 3600) < 1e-6);
    assert_true(dnum(r0, "distinct:workflow") == 2);
    cJSON_Delete(q);

    /* group_by with a missing tag: a null group */
    snprintf(path, sizeof(path),
             "/v1/query?kind=q&since=%lld&until=%lld&group_by=provider&agg=count,sum:latency_ms",
             (long long)base, (long long)base + 3600);
    q = te_it_get_json(&srv, path);
    assert_non_null(q);
    cols = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(q, "columns"));
    assert_string_equal(cols, "[\"provider\",\"count\",\"sum:latency_ms\"]");
    free(cols);
    rows = cJSON_GetObjectItemCaseSensitive(q, "rows");
    assert_int_equal(cJSON_GetArraySize(rows), 3);
    const cJSON *ro = row_where(rows, "provider", "openai");
    const cJSON *ra = row_where(rows, "provider", "anthropic");
    const cJSON *rn = row_where(rows, "provider", NULL);
    assert_non_null(ro);
    assert_non_null(ra);
    assert_non_null(rn);
    assert_true(dnum(ro, "count") == 4 && dnum(ro, "sum:latency_ms") == 100);
    assert_true(dnum(ra, "count") == 4 && dnum(ra, "sum:latency_ms") == 260);
    assert_true(dnum(rn, "count") == 2 && dnum(rn, "sum:latency_ms") == 190);
    cJSON_Delete(q);

    /* every=1m: two buckets, "time" first, RFC 3339 bucket starts */
    snprintf(path, sizeof(path), "/v1/query?kind=q&since=%lld&until=%lld&agg=count&every=1m",
             (long long)base, (long long)base + 3600);
    q = te_it_get_json(&srv, path);
    assert_non_null(q);
    cols = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(q, "columns"));
    assert_string_equal(cols, "[\"time\",\"count\"]");
    free(cols);
    rows = cJSON_GetObjectItemCaseSensitive(q, "rows");
    assert_int_equal(cJSON_GetArraySize(rows), 2);
    for (int i = 0; i < 2; i++) {
        cJSON *row = cJSON_GetArrayItem(rows, i);
        char want[32];
        time_t t = base + i * 60;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%S", &tm);
        const cJSON *tv = cJSON_GetObjectItemCaseSensitive(row, "time");
        assert_true(cJSON_IsString(tv));
        assert_memory_equal(tv->valuestring, want, strlen(want));
        assert_true(dnum(row, "count") == 5);
    }
    cJSON_Delete(q);

    /* errors: unknown aggregate, missing kind */
    te_it_resp_t r;
    assert_int_equal(te_it_http(&srv, "GET", "/v1/query?kind=q&agg=median:x", NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "\"error\""));
    te_it_resp_free(&r);
}

/* ---------- errors, metrics, status ---------- */

static void unknown_path_is_404_and_wrong_method_is_405(void **state)
{
    (void)state;
    te_it_resp_t r;
    assert_int_equal(te_it_http(&srv, "GET", "/v1/nope", NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 404);
    cJSON *j = cJSON_Parse(r.body);
    assert_true(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(j, "error")));
    cJSON_Delete(j);
    te_it_resp_free(&r);
    assert_int_equal(te_it_http(&srv, "DELETE", "/v1/events", NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 405);
    j = cJSON_Parse(r.body);
    assert_true(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(j, "error")));
    cJSON_Delete(j);
    te_it_resp_free(&r);
    assert_int_equal(te_it_http(&srv, "GET", "/v1/health", NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    te_it_resp_free(&r);
}

static void metrics_count_accepted_and_rejected(void **state)
{
    (void)state;
    double a0 = te_it_metric(&srv, "te_events_accepted_total");
    double r0 = te_it_metric(&srv, "te_events_rejected_total");
    assert_true(a0 >= 0 && r0 >= 0);
    const char body[] = "{\"kind\":\"met\"}\n{\"kind\":\"met\"}\n{\"kind\":\"BAD\"}\n";
    cJSON *j = post_json(body, strlen(body), NULL, 200);
    cJSON_Delete(j);
    assert_true(te_it_metric(&srv, "te_events_accepted_total") - a0 == 2);
    assert_true(te_it_metric(&srv, "te_events_rejected_total") - r0 == 1);
    assert_true(te_it_metric(&srv, "te_http_requests_total") > 0);
}

static void status_reports_queue_ingest_and_db(void **state)
{
    (void)state;
    cJSON *s = te_it_get_json(&srv, "/v1/status");
    assert_non_null(s);
    cJSON *q = cJSON_GetObjectItemCaseSensitive(s, "queue");
    cJSON *in = cJSON_GetObjectItemCaseSensitive(s, "ingest");
    cJSON *db = cJSON_GetObjectItemCaseSensitive(s, "db");
    assert_non_null(q);
    assert_non_null(in);
    assert_non_null(db);
    assert_true(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(q, "events")));
    assert_true(num(in, "accepted") > 0);
    assert_true(num(in, "rejected") > 0);
    assert_true(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(in, "dropped")));
    assert_true(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(in, "rate_per_s")));
    assert_true(num(db, "bytes") > 0);
    cJSON_Delete(s);
}

/* ---------- 503 under a tiny queue ---------- */

typedef struct poster {
    te_it_srv_t *srv;
    int ok, full, other;
    long accepted;
    int retry_after_seen;
} poster_t;

static void *poster_main(void *arg)
{
    poster_t *p = arg;
    te_it_str_t b = {0};
    for (int i = 0; i < 200; i++)
        te_it_str_add(&b, "{\"kind\":\"full\",\"fields\":{\"i\":%d}}\n", i);
    int64_t deadline = te_it_now_ms() + 8000;
    while (te_it_now_ms() < deadline && (p->full == 0 || p->ok < 3)) {
        te_it_resp_t r;
        if (te_it_post(p->srv, b.p, b.len, &r) != 0) {
            p->other++;
            continue;
        }
        if (r.status == 200) {
            cJSON *j = cJSON_Parse(r.body);
            p->accepted += (long)cJSON_GetObjectItemCaseSensitive(j, "accepted")->valuedouble;
            cJSON_Delete(j);
            p->ok++;
        } else if (r.status == 503) {
            p->full++;
            if (strcasestr(r.headers, "\nRetry-After:"))
                p->retry_after_seen = 1;
        } else {
            p->other++;
        }
        te_it_resp_free(&r);
    }
    te_it_str_free(&b);
    return NULL;
}

static void full_queue_answers_503_with_retry_after(void **state)
{
    (void)state;
    te_it_srv_t s2;
    assert_int_equal(te_it_init(&s2), 0);
    const char cfg[] = "storage { queue_events = 1 }\n";
    char path[512];
    assert_int_equal(te_it_write_file(&s2, "tiny.lua", cfg, strlen(cfg), path, sizeof(path)), 0);
    const char *const extra[] = {"--config", path, NULL};
    assert_int_equal(te_it_start(&s2, extra), 0);
    enum { T = 6 };
    poster_t ps[T];
    pthread_t th[T];
    for (int i = 0; i < T; i++) {
        ps[i] = (poster_t){.srv = &s2};
        pthread_create(&th[i], NULL, poster_main, &ps[i]);
    }
    int full = 0, other = 0, retry = 0;
    long accepted = 0;
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        full += ps[i].full;
        other += ps[i].other;
        accepted += ps[i].accepted;
        retry |= ps[i].retry_after_seen;
    }
    if (full == 0)
        fprintf(stderr, "note: no 503 seen with queue_events = 1 and %d posters\n", T);
    assert_true(full > 0);
    assert_true(retry);
    assert_int_equal(other, 0);
    /* what was acknowledged is stored, what was refused is not */
    assert_int_equal(te_it_wait_count(&s2, "full", NULL, accepted, 5000), accepted);
    assert_int_equal(te_it_stop(&s2, 15, 10000), 0);
    te_it_cleanup(&s2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(post_mixed_batch_reports_exact_indexes),
        cmocka_unit_test(post_array_and_single_object_are_accepted),
        cmocka_unit_test(post_gzip_body_is_inflated),
        cmocka_unit_test(post_unparseable_bodies_answer_400),
        cmocka_unit_test(post_over_16mib_answers_413_and_stores_nothing),
        cmocka_unit_test(post_body_at_16mib_limit_both_sides),
        cmocka_unit_test(post_event_over_1mib_is_rejected_alone),
        cmocka_unit_test(post_same_source_and_id_is_stored_once),
        cmocka_unit_test(get_events_pages_without_gaps_or_duplicates),
        cmocka_unit_test(query_known_data_set_gives_exact_aggregates),
        cmocka_unit_test(unknown_path_is_404_and_wrong_method_is_405),
        cmocka_unit_test(metrics_count_accepted_and_rejected),
        cmocka_unit_test(status_reports_queue_ingest_and_db),
        cmocka_unit_test(full_queue_answers_503_with_retry_after),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
