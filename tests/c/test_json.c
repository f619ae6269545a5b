/*
 * test_json.c - JSON text helpers (core/json): the array splitter, strict
 * UTF-8, message excerpts and shortest round-trip numbers.
 *
 * THREAD: main only.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/event.h"
#include "core/json.h"

static void json_array_next_splits_elements(void **state)
{
    (void)state;
    const char *js = " [ {\"kind\":\"a\",\"s\":\"x,]}\\\"\"} ,\n"
                     "{\"kind\":\"b\",\"n\":[1,{}]}, 3 ] \n";
    size_t pos = 0, start, len;
    assert_int_equal(te_json_array_next(js, strlen(js), &pos, &start, &len), 1);
    te_event_opts_t opts = {NULL, NULL, 0};
    te_event_t *ev = NULL;
    assert_int_equal(te_event_parse(js + start, len, &opts, &ev, NULL), 0);
    assert_string_equal(te_event_tag(ev, "s"), "x,]}\"");
    assert_int_equal(ev->size_bytes, len);
    te_event_free(ev);
    assert_int_equal(te_json_array_next(js, strlen(js), &pos, &start, &len), 1);
    assert_memory_equal(js + start, "{\"kind\":\"b\",\"n\":[1,{}]}", len);
    assert_int_equal(te_json_array_next(js, strlen(js), &pos, &start, &len), 1);
    assert_int_equal(len, 1);
    assert_int_equal(js[start], '3');
    assert_int_equal(te_json_array_next(js, strlen(js), &pos, &start, &len), 0);
    assert_int_equal(te_json_array_next(js, strlen(js), &pos, &start, &len), 0);
    pos = 0;
    assert_int_equal(te_json_array_next("[]", 2, &pos, &start, &len), 0);
}

static void json_array_next_broken_structure_is_error(void **state)
{
    (void)state;
    const char *bad[] = {"", "{}", "[", "[1", "[1,]", "[,1]", "[[1]", "[\"a]",
                         "[1]x", "[{]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t pos = 0, start, len;
        int rc;
        do
            rc = te_json_array_next(bad[i], strlen(bad[i]), &pos, &start, &len);
        while (rc == 1);
        if (rc != -1)
            fail_msg("%s: rc %d", bad[i], rc);
    }
}

static void json_utf8_check_rfc3629_boundaries(void **state)
{
    (void)state;
    struct {
        const char *s;
        size_t bad_at; /* SIZE_MAX: valid */
    } cases[] = {
        {"plain ascii", SIZE_MAX},       {"\xc2\x80", SIZE_MAX},      {"\xdf\xbf", SIZE_MAX},
        {"a\xc1\xbf", 1},                {"\xe0\xa0\x80", SIZE_MAX},  {"\xe0\x9f\xbf", 0},
        {"\xed\x9f\xbf", SIZE_MAX},      {"\xed\xa0\x80", 0},         {"\xee\x80\x80", SIZE_MAX},
        {"\xf0\x90\x80\x80", SIZE_MAX}, {"\xf0\x8f\xbf\xbf", 0},     {"\xf4\x8f\xbf\xbf", SIZE_MAX},
        {"\xf4\x90\x80\x80", 0},        {"\xf5\x80\x80\x80", 0},     {"ab\xe6\x97", 2},
        {"\x80", 0},                     {"\xc3\xa9\xff", 2},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = strlen(cases[i].s);
        size_t want = cases[i].bad_at == SIZE_MAX ? n : cases[i].bad_at;
        if (te_utf8_check(cases[i].s, n) != want)
            fail_msg("case %zu: got %zu want %zu", i, te_utf8_check(cases[i].s, n), want);
    }
}

static void json_excerpt_and_number_forms(void **state)
{
    (void)state;
    char buf[16], num[TE_JSON_NUM_MAX];
    assert_string_equal(te_json_excerpt("short", 5, buf, sizeof(buf)), "short");
    assert_string_equal(te_json_excerpt("a\xff\n\xc3\xa9", 5, buf, sizeof(buf)), "a??\xc3\xa9");
    /* 12 bytes of room: whole characters only, then "...". */
    const char *five = "\xe6\x97\xa5\xe6\x97\xa5\xe6\x97\xa5\xe6\x97\xa5\xe6\x97\xa5";
    assert_string_equal(te_json_excerpt(five, 15, buf, sizeof(buf)),
                        "\xe6\x97\xa5\xe6\x97\xa5\xe6\x97\xa5\xe6\x97\xa5...");
    struct {
        double v;
        const char *want;
    } n[] = {{0, "0"},          {-0.0, "0"},       {42, "42"},         {-7, "-7"},
             {812.5, "812.5"},  {0.1, "0.1"},      {1.0 / 3, "0.3333333333333333"},
             {1e21, "1e+21"},   {9007199254740992.0, "9007199254740992"},
             {5e-324, "4.94065645841247e-324"}};
    for (size_t i = 0; i < sizeof(n) / sizeof(n[0]); i++) {
        assert_int_equal(te_json_number(n[i].v, num), strlen(n[i].want));
        assert_string_equal(num, n[i].want);
    }
    assert_int_equal(te_json_number(NAN, num), 4);
    assert_string_equal(num, "null");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_array_next_splits_elements),
        cmocka_unit_test(json_array_next_broken_structure_is_error),
        cmocka_unit_test(json_utf8_check_rfc3629_boundaries),
        cmocka_unit_test(json_excerpt_and_number_forms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
