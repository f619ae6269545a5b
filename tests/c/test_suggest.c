/*
 * test_suggest.c - edit distance behind "did you mean" messages.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/suggest.h"

static void edit_distance_counts_edits(void **state)
{
    (void)state;
    assert_int_equal(te_edit_distance("window", "window"), 0);
    assert_int_equal(te_edit_distance("windw", "window"), 1);    /* deletion */
    assert_int_equal(te_edit_distance("pth", "path"), 1);
    assert_int_equal(te_edit_distance("retires", "retries"), 2); /* transposition = 2 */
    assert_int_equal(te_edit_distance("", "abc"), 3);
    assert_int_equal(te_edit_distance("kitten", "sitting"), 3);
}

static void edit_distance_of_long_strings_is_too_far(void **state)
{
    (void)state;
    char a[70];
    memset(a, 'a', sizeof(a) - 1);
    a[sizeof(a) - 1] = '\0';
    assert_int_equal(te_edit_distance(a, a), 99);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(edit_distance_counts_edits),
        cmocka_unit_test(edit_distance_of_long_strings_is_too_far),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
