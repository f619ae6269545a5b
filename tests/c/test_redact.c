/*
 * test_redact.c - redaction at ingest (src/ingest/redact.c): every builtin
 * with positives and negatives, user patterns, several matches in one
 * string, UTF-8 around matches, events (tags, fields, body) and the ingest
 * hook in te_ndjson_add_event.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/event.h"
#include "ingest/ndjson.h"
#include "ingest/redact.h"
#include "pipeline/writer.h"

static te_redact_t *compile_ok(const char *json)
{
    te_redact_t *r = NULL;
    te_err_t err = {0};
    int rc = te_redact_compile(json, &r, &err);
    if (rc != 0)
        fprintf(stderr, "compile: %s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_non_null(r);
    return r;
}

/* Redacts in and checks the result: want NULL means "left as is". */
static void expect(te_redact_t *r, const char *in, const char *want)
{
    char *out = NULL;
    size_t out_len = 0;
    assert_int_equal(te_redact_string(r, in, strlen(in), &out, &out_len), 0);
    if (!want) {
        if (out)
            fprintf(stderr, "in:   %s\nout:  %s\nwant: unchanged\n", in, out);
        assert_null(out);
        return;
    }
    if (!out || strcmp(out, want) != 0)
        fprintf(stderr, "in:   %s\nout:  %s\nwant: %s\n", in, out ? out : "(unchanged)", want);
    assert_non_null(out);
    assert_string_equal(out, want);
    assert_int_equal(out_len, strlen(want));
    free(out);
}

static uint64_t count(te_redact_t *r, te_redact_type_t t)
{
    uint64_t c[TE_REDACT_NTYPES];
    te_redact_counts(r, c);
    return c[t];
}

static void redact_email(void **state)
{
    (void)state;
    te_redact_t *r = compile_ok("{\"builtin\":[\"email\"]}");
    expect(r, "bob@example.com", "[REDACTED:email]");
    expect(r, "contact bob.smith+tag@mail.example.co.uk today",
           "contact [REDACTED:email] today");
    expect(r, "<ana_b@sub-domain.example.org>", "<[REDACTED:email]>");
    expect(r, "mailto:x@y.io.", "mailto:[REDACTED:email].");
    expect(r, "a@b.com.1", "[REDACTED:email].1");
    /* UTF-8 around the match and inside it */
    expect(r, "Привет, ana@example.com — ok", "Привет, [REDACTED:email] — ok");
    expect(r, "連絡先: josé@münchen.de です", "連絡先: [REDACTED:email] です");
    /* not emails */
    expect(r, "user@localhost", NULL);
    expect(r, "a @ b.com", NULL);
    expect(r, "@handle.com", NULL);
    expect(r, "x@.com", NULL);
    expect(r, "x@y.c", NULL);
    expect(r, "no at sign.here", NULL);
    expect(r, "ver@1.2", NULL);
    assert_int_equal(count(r, TE_REDACT_EMAIL), 7);
    assert_int_equal(count(r, TE_REDACT_CARD), 0);
    te_redact_free(r);
}

static void redact_card_luhn(void **state)
{
    (void)state;
    te_redact_t *r = compile_ok("{\"builtin\":[\"card\"]}");
    expect(r, "4111111111111111", "[REDACTED:card]");
    expect(r, "paid with 4111 1111 1111 1111 ok", "paid with [REDACTED:card] ok");
    expect(r, "5555-5555-5555-4444", "[REDACTED:card]");
    expect(r, "amex 378282246310005.", "amex [REDACTED:card].");
    expect(r, "card 4111 1111 1111 1111 12/26", "card [REDACTED:card] 12/26");
    expect(r, "Карта 6011111111111117, спасибо", "Карта [REDACTED:card], спасибо");
    /* Luhn-invalid, too short, too long, inside words */
    expect(r, "4111111111111112", NULL);
    expect(r, "4111 1111 1111 1112", NULL);
    expect(r, "1234567890123", NULL);
    expect(r, "411111111111", NULL);
    expect(r, "41111111111111111111111111", NULL);
    expect(r, "id4111111111111111", NULL);
    expect(r, "4111111111111111x", NULL);
    expect(r, "4111  1111  1111  1111", NULL); /* two spaces: not one number */
    expect(r, "2026-11-20 10:00:00", NULL);
    assert_int_equal(count(r, TE_REDACT_CARD), 6);
    te_redact_free(r);
}

static void redact_api_keys(void **state)
{
    (void)state;
    te_redact_t *r = compile_ok("{\"builtin\":[\"api_key\"]}");
    expect(r, "key sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz_0123456789 used",
           "key [REDACTED:api_key] used");
    expect(r, "sk-proj-abcdefghijklmnopqrstuvwxyz012345", "[REDACTED:api_key]");
    expect(r, "aws AKIAIOSFODNN7EXAMPLE here", "aws [REDACTED:api_key] here");
    expect(r, "ghp_abcdefghijklmnopqrstuvwxyz0123456789", "[REDACTED:api_key]");
    expect(r, "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
           "[REDACTED:api_key]");
    expect(r, "slack xoxb-1234567890-abcdefghij", "slack [REDACTED:api_key]");
    expect(r, "Authorization: Bearer abcdef0123456789ABCDEF.xyz",
           "Authorization: Bearer [REDACTED:api_key]");
    expect(r, "GET /x?api_key=0123456789abcdef0123&y=1",
           "GET /x?api_key=[REDACTED:api_key]&y=1");
    expect(r, "TOKEN: \"ZGVhZGJlZWZkZWFkYmVlZg==\"", "TOKEN: \"[REDACTED:api_key]\"");
    expect(r, "client_secret=4f9a0c1e2b3d4a5f6e7d8c9b", "client_secret=[REDACTED:api_key]");
    /* not keys */
    expect(r, "sk-short", NULL);
    expect(r, "task-abcdefghijklmnopqrstuvwxyz012345", NULL);
    expect(r, "AKIA1234", NULL);
    expect(r, "token=short", NULL);
    expect(r, "Bearer of bad news", NULL);
    expect(r, "code-review-workflow-step", NULL);
    expect(r, "anthropic", NULL);
    assert_int_equal(count(r, TE_REDACT_API_KEY), 10);
    te_redact_free(r);
}

static void redact_jwt(void **state)
{
    (void)state;
    te_redact_t *r = compile_ok("{\"builtin\":[\"jwt\",\"api_key\"]}");
    const char *jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
                      "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
    char in[512];
    snprintf(in, sizeof(in), "session %s end", jwt);
    expect(r, in, "session [REDACTED:jwt] end");
    /* jwt runs before api_key: the type says what it was */
    snprintf(in, sizeof(in), "Authorization: Bearer %s", jwt);
    expect(r, in, "Authorization: Bearer [REDACTED:jwt]");
    expect(r, "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "[REDACTED:jwt]"); /* unsigned */
    expect(r, "eyJ alone", NULL);
    expect(r, "eyJhbGciOiJIUzI1NiJ9", NULL);
    expect(r, "xeyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc", NULL);
    assert_int_equal(count(r, TE_REDACT_JWT), 3);
    assert_int_equal(count(r, TE_REDACT_API_KEY), 0);
    te_redact_free(r);
}

static void redact_ipv4(void **state)
{
    (void)state;
    te_redact_t *r = compile_ok("{\"builtin\":[\"ipv4\"]}");
    expect(r, "from 10.0.0.1:8080", "from [REDACTED:ipv4]:8080");
    expect(r, "192.168.1.254", "[REDACTED:ipv4]");
    expect(r, "ip=255.255.255.255.", "ip=[REDACTED:ipv4].");
    expect(r, "x 0.0.0.0 y", "x [REDACTED:ipv4] y");
    /* version strings and near misses */
    expect(r, "version 1.2.3.4.5", NULL);
    expect(r, "v1.2.3.4", NULL);
    expect(r, "1.2.3.4a", NULL);
    expect(r, "999.1.1.1", NULL);
    expect(r, "1.2.3", NULL);
    expect(r, "1.2.3.1000", NULL);
    expect(r, "build 2.0.1", NULL);
    assert_int_equal(count(r, TE_REDACT_IPV4), 4);
    te_redact_free(r);
}

static void redact_user_patterns(void **state)
{
    (void)state;
    te_redact_t *r = compile_ok("{\"patterns\":[\"secret-[0-9a-f]{16}\",\"пароль:\\\\S+\"]}");
    expect(r, "k secret-0123456789abcdef end", "k [REDACTED:pattern] end");
    expect(r, "secret-0123456789abcdeg", NULL);
    expect(r, "пароль:тайна, ok", "[REDACTED:pattern] ok");
    expect(r, "bob@example.com", NULL); /* no builtin asked for */
    assert_int_equal(count(r, TE_REDACT_PATTERN), 2);
    te_redact_free(r);
}

static void redact_many_in_one_string(void **state)
{
    (void)state;
    te_redact_t *r = compile_ok(
        "{\"builtin\":[\"email\",\"card\",\"api_key\",\"ipv4\",\"jwt\"],"
        "\"patterns\":[\"secret-[0-9a-f]{16}\"]}");
    expect(r, "a@b.io, c@d.io and e@f.io",
           "[REDACTED:email], [REDACTED:email] and [REDACTED:email]");
    expect(r,
           "user ana@example.com paid 4111 1111 1111 1111 from 10.1.2.3 with "
           "sk-ant-abcdefghijklmnopqrstuvwxyz and secret-00112233445566ff",
           "user [REDACTED:email] paid [REDACTED:card] from [REDACTED:ipv4] with "
           "[REDACTED:api_key] and [REDACTED:pattern]");
    expect(r, "nothing to see: model m-large, 812 ms, status ok", NULL);
    expect(r, "", NULL);
    assert_int_equal(count(r, TE_REDACT_EMAIL), 4);
    assert_int_equal(count(r, TE_REDACT_CARD), 1);
    assert_int_equal(count(r, TE_REDACT_IPV4), 1);
    assert_int_equal(count(r, TE_REDACT_API_KEY), 1);
    assert_int_equal(count(r, TE_REDACT_PATTERN), 1);
    te_redact_free(r);
}

static te_event_t *parse(const char *json)
{
    te_event_t *ev = NULL;
    te_err_t err = {0};
    te_event_opts_t o = {NULL, NULL, 1};
    assert_int_equal(te_event_parse(json, strlen(json), &o, &ev, &err), 0);
    return ev;
}

static void redact_event_tags_fields_body(void **state)
{
    (void)state;
    te_redact_t *r = compile_ok("{\"builtin\":[\"email\",\"card\"]}");
    te_event_t *ev = parse(
        "{\"kind\":\"llm_call\",\"source\":\"svc\",\"id\":\"c-1\",\"ts\":100,"
        "\"tags\":{\"user\":\"ana@example.com\",\"model\":\"m-large\",\"note\":\"q\\\"uote "
        "bob@x.org\"},"
        "\"fields\":{\"latency_ms\":812.5,\"n\":4111111111111111},"
        "\"body\":{\"prompt\":\"mail me at bob@example.org\",\"ana@example.com\":1,"
        "\"list\":[\"4111-1111-1111-1111\",42,{\"deep\":\"x c@d.io\"}],\"num\":4111111111111111}}");
    const te_event_t *before = ev;
    te_err_t err = {0};
    assert_int_equal(te_redact_event(r, &ev, &err), 0);
    assert_ptr_not_equal(ev, before); /* rebuilt */
    assert_string_equal(ev->kind, "llm_call");
    assert_string_equal(ev->source, "svc");
    assert_string_equal(ev->id, "c-1");
    assert_true(ev->ts_ns == 100000000000LL);
    assert_string_equal(te_event_tag(ev, "user"), "[REDACTED:email]");
    assert_string_equal(te_event_tag(ev, "model"), "m-large");
    assert_string_equal(te_event_tag(ev, "note"), "q\"uote [REDACTED:email]");
    assert_string_equal(ev->tags_json, "{\"model\":\"m-large\",\"note\":\"q\\\"uote "
                                       "[REDACTED:email]\",\"user\":\"[REDACTED:email]\"}");
    assert_int_equal(ev->tags_json_len, strlen(ev->tags_json));
    double v = 0;
    assert_true(te_event_field(ev, "latency_ms", &v));
    assert_true(v == 812.5);
    assert_true(te_event_field(ev, "n", &v)); /* numbers are not strings: kept */
    assert_true(v == 4111111111111111.0);
    assert_non_null(ev->body);
    assert_int_equal(ev->body_len, strlen(ev->body));
    assert_string_equal(ev->body,
                        "{\"prompt\":\"mail me at [REDACTED:email]\",\"ana@example.com\":1,"
                        "\"list\":[\"[REDACTED:card]\",42,{\"deep\":\"x [REDACTED:email]\"}],"
                        "\"num\":4111111111111111}");
    assert_int_equal(count(r, TE_REDACT_EMAIL), 4);
    assert_int_equal(count(r, TE_REDACT_CARD), 1);

    /* nothing to redact: the event is kept as is, no copy */
    te_event_t *clean = parse("{\"kind\":\"k\",\"tags\":{\"a\":\"b\"},\"body\":{\"x\":\"y@z\"}}");
    before = clean;
    assert_int_equal(te_redact_event(r, &clean, &err), 0);
    assert_ptr_equal(clean, before);
    /* NULL redactor: a no-op */
    assert_int_equal(te_redact_event(NULL, &clean, &err), 0);
    assert_ptr_equal(clean, before);
    te_event_free(clean);
    te_event_free(ev);
    te_redact_free(r);
}

static void redact_hook_in_ndjson(void **state)
{
    (void)state;
    te_err_t err = {0};
    te_batch_t *b = NULL;
    te_event_opts_t o = {NULL, NULL, 1};
    const char *line = "{\"kind\":\"k\",\"user\":\"ana@example.com\",\"latency_ms\":3}";
    /* nothing installed: stored as sent */
    assert_null(te_redact_active());
    assert_int_equal(te_ndjson_add_event(&b, 4, line, strlen(line), &o, &err), 0);
    assert_string_equal(te_event_tag(b->events[0], "user"), "ana@example.com");
    assert_int_equal(te_redact_install("{\"builtin\":[\"email\"]}", &err), 0);
    assert_non_null(te_redact_active());
    assert_int_equal(te_ndjson_add_event(&b, 4, line, strlen(line), &o, &err), 0);
    assert_int_equal(b->n, 2);
    assert_string_equal(te_event_tag(b->events[1], "user"), "[REDACTED:email]");
    assert_int_equal(count(te_redact_active(), TE_REDACT_EMAIL), 1);
    /* a bad block installs nothing and keeps the old one */
    assert_int_equal(te_redact_install("{\"patterns\":[\"(\"]}", &err), TE_ECONFIG);
    assert_non_null(te_redact_active());
    te_redact_uninstall();
    assert_null(te_redact_active());
    te_batch_free(b);
}

static void redact_compile_errors(void **state)
{
    (void)state;
    te_redact_t *r = (te_redact_t *)&r;
    te_err_t err = {0};
    assert_int_equal(te_redact_compile(NULL, &r, &err), 0);
    assert_null(r);
    assert_int_equal(te_redact_compile("{\"patterns\":[\"ok\",\"secret-(\"]}", &r, &err),
                     TE_ECONFIG);
    assert_null(r);
    assert_string_equal(err.msg,
                        "patterns[2] \"secret-(\": missing closing parenthesis (at offset 8)");
    assert_int_equal(te_redact_compile("{\"patterns\":[\"a|\"]}", &r, &err), TE_ECONFIG);
    assert_string_equal(err.msg, "patterns[1] \"a|\": matches the empty string");
    assert_int_equal(te_redact_compile("{\"builtin\":[\"dna\"]}", &r, &err), TE_ECONFIG);
    assert_non_null(strstr(err.msg, "unknown value \"dna\""));
    assert_int_equal(te_redact_compile("{\"patterns\":\"x\"}", &r, &err), TE_ECONFIG);
    assert_int_equal(te_redact_compile("{\"patterns\":[3]}", &r, &err), TE_ECONFIG);
    assert_string_equal(te_redact_type_name(TE_REDACT_API_KEY), "api_key");
    assert_null(te_redact_type_name(TE_REDACT_NTYPES));
    /* an empty block compiles and redacts nothing */
    r = compile_ok("{}");
    expect(r, "bob@example.com", NULL);
    te_redact_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(redact_email),
        cmocka_unit_test(redact_card_luhn),
        cmocka_unit_test(redact_api_keys),
        cmocka_unit_test(redact_jwt),
        cmocka_unit_test(redact_ipv4),
        cmocka_unit_test(redact_user_patterns),
        cmocka_unit_test(redact_many_in_one_string),
        cmocka_unit_test(redact_event_tags_fields_body),
        cmocka_unit_test(redact_hook_in_ndjson),
        cmocka_unit_test(redact_compile_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
