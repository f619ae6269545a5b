/*
 * it_auth.c - bearer tokens on the real binary (SPEC section 10): tokens
 * configured as SHA-256 digests in telemetry.lua, 401 without or with an
 * unknown token, 403 without the scope, the liveness probe always open.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

/* sha256("s3cret-ingest"), sha256("s3cret-read"), sha256("s3cret-admin") */
#define CONFIG                                                                                  \
    "auth { tokens = {\n"                                                                       \
    "  { name = \"ci\", scopes = { \"ingest\" },\n"                                             \
    "    sha256 = \"da3fbea56517ee2226eece5e0c1a99d0bc00ad63f189f6d978399ff5bea30efc\" },\n"    \
    "  { name = \"grafana\", scopes = { \"read\" },\n"                                          \
    "    sha256 = \"41a911a03893b2693decbf93c67853dcbf7098053fd81f66d17511b12ba61f81\" },\n"    \
    "  { name = \"ops\", scopes = { \"admin\" },\n"                                             \
    "    sha256 = \"77a4e206296282b0c1acebc0bebff60856cf558f731762d241cb9be07b60119a\" },\n"    \
    "} }\n"

static long request(const te_it_srv_t *srv, const char *method, const char *path,
                    const char *token, char **body_out)
{
    char hdr[128];
    const char *headers[2] = {NULL, NULL};
    const char *ev = "{\"kind\":\"llm_call\",\"model\":\"m\",\"latency_ms\":5}\n";
    if (token) {
        snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", token);
        headers[0] = hdr;
    }
    te_it_resp_t resp;
    bool post = strcmp(method, "POST") == 0;
    assert_int_equal(te_it_http(srv, method, path, post ? ev : NULL, post ? strlen(ev) : 0,
                                headers, &resp),
                     0);
    long status = resp.status;
    if (body_out)
        *body_out = strdup(resp.body ? resp.body : "");
    te_it_resp_free(&resp);
    return status;
}

static void tokens_and_scopes_gate_every_route(void **state)
{
    (void)state;
    te_it_srv_t srv;
    char cfg[512];
    assert_int_equal(te_it_init(&srv), 0);
    assert_int_equal(te_it_write_file(&srv, "telemetry.lua", CONFIG, strlen(CONFIG), cfg,
                                      sizeof(cfg)),
                     0);
    const char *extra[] = {"--config", cfg, NULL};
    assert_int_equal(te_it_start(&srv, extra), 0);

    char *body = NULL;
    assert_int_equal(request(&srv, "GET", "/v1/health", NULL, NULL), 200);
    assert_int_equal(request(&srv, "POST", "/v1/events", NULL, &body), 401);
    assert_non_null(strstr(body, "missing bearer token"));
    free(body);
    assert_int_equal(request(&srv, "POST", "/v1/events", "wrong", &body), 401);
    assert_non_null(strstr(body, "unknown token"));
    free(body);
    assert_int_equal(request(&srv, "POST", "/v1/events", "s3cret-ingest", NULL), 200);
    assert_int_equal(request(&srv, "GET", "/v1/events?kind=llm_call", "s3cret-ingest", &body), 403);
    assert_non_null(strstr(body, "token \\\"ci\\\" lacks the \\\"read\\\" scope"));
    free(body);
    assert_int_equal(request(&srv, "GET", "/v1/events?kind=llm_call", "s3cret-read", &body), 200);
    assert_non_null(strstr(body, "\"model\":\"m\""));
    free(body);
    assert_int_equal(request(&srv, "GET", "/metrics", NULL, NULL), 401);
    assert_int_equal(request(&srv, "POST", "/v1/events", "s3cret-read", NULL), 403);
    assert_int_equal(request(&srv, "POST", "/v1/rules/reload", "s3cret-read", NULL), 403);
    assert_int_equal(request(&srv, "POST", "/v1/rules/reload", "s3cret-admin", NULL), 200);
    assert_int_equal(request(&srv, "GET", "/v1/status", "s3cret-admin", NULL), 200);
    assert_int_equal(request(&srv, "POST", "/v1/events", "s3cret-admin", NULL), 200);
    assert_int_equal(te_it_stop(&srv, SIGTERM, 10000), 0);
    te_it_cleanup(&srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tokens_and_scopes_gate_every_route),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
