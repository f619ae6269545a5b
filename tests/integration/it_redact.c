/*
 * it_redact.c - redaction at ingest on the real binary (SPEC section 10):
 * with a redact block, events POSTed over HTTP (NDJSON and a pretty-printed
 * single object), sent over TCP and ingested by the CLI come back redacted
 * from GET /v1/events, /metrics counts the redactions, and the raw values
 * appear nowhere in the database files (.db, -wal, -shm bytes). A malformed
 * pattern stops serve at start-up with PCRE2's message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define CONFIG                                                                                  \
    "redact { builtin = { \"email\", \"card\", \"api_key\" },\n"                               \
    "         patterns = { \"secret-[0-9a-f]{16}\" } }\n"

/* The raw values sent; none may be stored. */
static const char *const raw[] = {
    "ana.lopez@example.com", "bob@example.org", "carol@example.net", "dave@example.io",
    "4111 1111 1111 1111",   "4111111111111111", "5555-5555-5555-4444",
    "sk-ant-api03-abcdefghijklmnopqrstuvwxyz", "secret-0123456789abcdef"};

/* True when needle occurs in any regular file of dir. */
static bool found_in_files(const char *dir, const char *needle)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    bool found = false;
    size_t nl = strlen(needle);
    assert_non_null(d);
    while (!found && (de = readdir(d)) != NULL) {
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        te_it_str_t s = {0};
        char buf[65536];
        size_t n;
        while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
            te_it_str_addn(&s, buf, n);
        fclose(f);
        for (size_t i = 0; s.p && i + nl <= s.len && !found; i++)
            found = memcmp(s.p + i, needle, nl) == 0;
        te_it_str_free(&s);
    }
    closedir(d);
    return found;
}

/* Bytes of .db files in dir (to show the scan read something). */
static long db_bytes(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    long total = 0;
    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        if (!strstr(de->d_name, ".db"))
            continue;
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        fseek(f, 0, SEEK_END);
        total += ftell(f);
        fclose(f);
    }
    closedir(d);
    return total;
}

static void send_tcp(const te_it_srv_t *srv, const char *text)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)srv->tcp_port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        assert_true(w > 0);
        off += (size_t)w;
    }
    close(fd);
}

static void redacted_before_anything_is_stored(void **state)
{
    (void)state;
    te_it_srv_t srv;
    char cfg[512];
    assert_int_equal(te_it_init(&srv), 0);
    assert_int_equal(
        te_it_write_file(&srv, "telemetry.lua", CONFIG, strlen(CONFIG), cfg, sizeof(cfg)), 0);
    const char *extra[] = {"--config", cfg, NULL};
    assert_int_equal(te_it_start(&srv, extra), 0);

    /* NDJSON: canonical and flat form, secrets in tags and body */
    const char *ndjson =
        "{\"kind\":\"signup\",\"tags\":{\"user\":\"ana.lopez@example.com\",\"plan\":\"pro\"},"
        "\"fields\":{\"latency_ms\":12},\"body\":{\"card\":\"4111 1111 1111 1111\","
        "\"note\":\"key sk-ant-api03-abcdefghijklmnopqrstuvwxyz and "
        "secret-0123456789abcdef\"}}\n"
        "{\"kind\":\"signup\",\"user\":\"bob@example.org\",\"card\":\"4111111111111111\","
        "\"latency_ms\":7}\n";
    te_it_resp_t resp;
    assert_int_equal(te_it_post(&srv, ndjson, strlen(ndjson), &resp), 0);
    assert_int_equal(resp.status, 200);
    te_it_resp_free(&resp);
    /* one pretty-printed object (the HTTP whole-body path) */
    const char *pretty = "{\n  \"kind\": \"signup\",\n  \"user\": \"carol@example.net\",\n"
                         "  \"meta\": {\"cc\": \"5555-5555-5555-4444\"}\n}\n";
    assert_int_equal(te_it_post(&srv, pretty, strlen(pretty), &resp), 0);
    assert_int_equal(resp.status, 200);
    te_it_resp_free(&resp);
    /* TCP stream */
    send_tcp(&srv, "{\"kind\":\"signup\",\"user\":\"dave@example.io\"}\n");
    assert_int_equal(te_it_wait_count(&srv, "signup", NULL, 4, 10000), 4);

    te_it_resp_t ev;
    assert_int_equal(te_it_http(&srv, "GET", "/v1/events?kind=signup&limit=10", NULL, 0, NULL,
                                &ev),
                     0);
    assert_int_equal(ev.status, 200);
    for (size_t i = 0; i < sizeof(raw) / sizeof(raw[0]); i++) {
        if (strstr(ev.body, raw[i]))
            fprintf(stderr, "raw \"%s\" in %s\n", raw[i], ev.body);
        assert_null(strstr(ev.body, raw[i]));
    }
    assert_non_null(strstr(ev.body, "\"user\":\"[REDACTED:email]\""));
    assert_non_null(strstr(ev.body, "\"card\":\"[REDACTED:card]\""));
    assert_non_null(strstr(ev.body, "\"cc\":\"[REDACTED:card]\""));
    assert_non_null(strstr(ev.body, "key [REDACTED:api_key] and [REDACTED:pattern]"));
    assert_non_null(strstr(ev.body, "\"plan\":\"pro\""));
    assert_non_null(strstr(ev.body, "\"latency_ms\":12"));
    te_it_resp_free(&ev);

    /* 4 emails, 3 cards, 1 key, 1 pattern */
    assert_true(te_it_metric(&srv, "te_redactions_total") == 9.0);
    te_it_resp_t m;
    assert_int_equal(te_it_http(&srv, "GET", "/metrics", NULL, 0, NULL, &m), 0);
    assert_non_null(strstr(m.body, "te_redactions_total{type=\"email\"} 4\n"));
    assert_non_null(strstr(m.body, "te_redactions_total{type=\"card\"} 3\n"));
    te_it_resp_free(&m);

    /* the raw bytes are nowhere on disk, engine running (WAL) and stopped */
    assert_true(db_bytes(srv.data) > 0);
    for (size_t i = 0; i < sizeof(raw) / sizeof(raw[0]); i++)
        assert_false(found_in_files(srv.data, raw[i]));
    assert_true(found_in_files(srv.data, "[REDACTED:email]"));
    assert_int_equal(te_it_stop(&srv, 15, 10000), 0);

    /* the CLI ingest path redacts too */
    const char *file = "{\"kind\":\"cli\",\"user\":\"erin@example.com\","
                       "\"auth\":\"Bearer abcdefghijklmnop0123456789\"}\n";
    char path[512];
    assert_int_equal(te_it_write_file(&srv, "in.ndjson", file, strlen(file), path, sizeof(path)),
                     0);
    const char *args[] = {"ingest", "--config", cfg, "--data", srv.data, path, NULL};
    char *out = NULL, *err = NULL;
    int rc = te_it_run_cli(args, NULL, 0, &out, &err);
    if (rc != 0)
        fprintf(stderr, "ingest: %s%s\n", out ? out : "", err ? err : "");
    assert_int_equal(rc, 0);
    free(out);
    free(err);
    for (size_t i = 0; i < sizeof(raw) / sizeof(raw[0]); i++)
        assert_false(found_in_files(srv.data, raw[i]));
    assert_false(found_in_files(srv.data, "erin@example.com"));
    assert_false(found_in_files(srv.data, "abcdefghijklmnop0123456789"));
    assert_true(found_in_files(srv.data, "Bearer [REDACTED:api_key]"));
    te_it_cleanup(&srv);
}

static void bad_pattern_stops_serve(void **state)
{
    (void)state;
    te_it_srv_t srv;
    char cfg[512];
    const char *bad = "redact {\n  patterns = { \"secret-(\" } }\n";
    assert_int_equal(te_it_init(&srv), 0);
    assert_int_equal(te_it_write_file(&srv, "telemetry.lua", bad, strlen(bad), cfg, sizeof(cfg)),
                     0);
    const char *args[] = {"serve", "--config", cfg, "--data", srv.data, "--http",
                          "127.0.0.1:0", NULL};
    char *out = NULL, *err = NULL;
    int rc = te_it_run_cli(args, NULL, 0, &out, &err);
    assert_int_not_equal(rc, 0);
    assert_non_null(err);
    if (!strstr(err, "redact: patterns[1] \"secret-(\": missing closing parenthesis (at "
                     "offset 8)"))
        fprintf(stderr, "stderr: %s\n", err);
    assert_non_null(strstr(err, "telemetry.lua:1: redact: patterns[1] \"secret-(\": missing "
                                "closing parenthesis (at offset 8)"));
    free(out);
    free(err);
    te_it_cleanup(&srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(redacted_before_anything_is_stored),
        cmocka_unit_test(bad_pattern_stops_serve),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
