/*
 * test_buf.c - the growing text buffer of core/buf.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"

static void buf_add_grows_and_stays_terminated(void **state)
{
    (void)state;
    te_buf_t b = {0};
    te_buf_add(&b, "", 0);
    assert_non_null(b.p);
    assert_string_equal(b.p, "");
    for (int i = 0; i < 1000; i++)
        te_buf_adds(&b, "abc");
    assert_int_equal(b.len, 3000);
    assert_int_equal(strlen(b.p), 3000);
    assert_false(b.oom);
    te_buf_free(&b);
    assert_null(b.p);
    assert_int_equal(b.len, 0);
    te_buf_free(&b); /* twice is fine */
}

static void buf_addf_formats_past_the_stack_scratch(void **state)
{
    (void)state;
    te_buf_t b = {0};
    char big[2000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    te_buf_addf(&b, "%d:%s:%s", 42, "short", big);
    assert_int_equal(b.len, strlen("42:short:") + sizeof(big) - 1);
    assert_memory_equal(b.p, "42:short:x", 10);
    te_buf_free(&b);
}

static void buf_add_json_str_escapes_quotes_controls_and_keeps_utf8(void **state)
{
    (void)state;
    te_buf_t b = {0};
    const char s[] = "a\"b\\c\n\t\x01 \xc3\xa9";
    te_buf_add_json_str(&b, s, sizeof(s) - 1);
    assert_string_equal(b.p, "\"a\\\"b\\\\c\\n\\t\\u0001 \xc3\xa9\"");
    te_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(buf_add_grows_and_stays_terminated),
        cmocka_unit_test(buf_addf_formats_past_the_stack_scratch),
        cmocka_unit_test(buf_add_json_str_escapes_quotes_controls_and_keeps_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
