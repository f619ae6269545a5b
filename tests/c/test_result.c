/*
 * test_result.c - result tables and their JSON / CSV / table renderings
 * (core/result), JSON exactly as SPEC section 5 `GET /v1/query`.
 *
 * THREAD: main only.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/result.h"

static te_result_t *spec_example(void)
{
    const char *cols[] = {"provider", "count", "sum:cost_usd"};
    te_result_t *r = te_result_new(cols, 3);
    assert_non_null(r);
    te_val_t *row = te_result_add_row(r);
    assert_non_null(row);
    assert_int_equal(te_val_set_str(&row[0], "openai", 6), 0);
    row[1].type = TE_VAL_INT;
    row[1].u.i = 12;
    row[2].type = TE_VAL_NUM;
    row[2].u.num = 1.23;
    return r;
}

static void result_json_spec_example_exact(void **state)
{
    (void)state;
    te_result_t *r = spec_example();
    size_t len = 0;
    char *js = te_result_to_json(r, &len);
    assert_string_equal(js, "{\"columns\":[\"provider\",\"count\",\"sum:cost_usd\"],\"rows\":[{"
                            "\"provider\":\"openai\",\"count\":12,\"sum:cost_usd\":1.23}]}");
    assert_int_equal(len, strlen(js));
    free(js);
    te_result_free(r);
    te_result_free(NULL);
}

static void result_json_nulls_numbers_and_escapes(void **state)
{
    (void)state;
    const char *cols[] = {"model", "avg", "n", "q\"x"};
    te_result_t *r = te_result_new(cols, 4);
    te_val_t *row = te_result_add_row(r); /* all NULL */
    row = te_result_add_row(r);
    te_val_set_str(&row[0], "a\"b\\c\n\x01\xc3\xa9", 9);
    row[1].type = TE_VAL_NUM;
    row[1].u.num = NAN;
    row[2].type = TE_VAL_INT;
    row[2].u.i = INT64_MIN;
    row[3].type = TE_VAL_NUM;
    row[3].u.num = 3.0;
    row = te_result_add_row(r);
    row[1].type = TE_VAL_NUM;
    row[1].u.num = INFINITY;
    row[2].type = TE_VAL_NUM;
    row[2].u.num = 0.1 + 0.2;
    row[3].type = TE_VAL_NUM;
    row[3].u.num = -1e-7;
    char *js = te_result_to_json(r, NULL);
    assert_string_equal(js, "{\"columns\":[\"model\",\"avg\",\"n\",\"q\\\"x\"],\"rows\":["
                            "{\"model\":null,\"avg\":null,\"n\":null,\"q\\\"x\":null},"
                            "{\"model\":\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\",\"avg\":null,"
                            "\"n\":-9223372036854775808,\"q\\\"x\":3},"
                            "{\"model\":null,\"avg\":null,\"n\":0.30000000000000004,"
                            "\"q\\\"x\":-1e-07}]}");
    free(js);
    te_result_free(r);
}

static void result_json_no_rows_and_no_columns(void **state)
{
    (void)state;
    const char *cols[] = {"count"};
    te_result_t *r = te_result_new(cols, 1);
    char *js = te_result_to_json(r, NULL);
    assert_string_equal(js, "{\"columns\":[\"count\"],\"rows\":[]}");
    free(js);
    te_result_free(r);
    r = te_result_new(NULL, 0);
    js = te_result_to_json(r, NULL);
    assert_string_equal(js, "{\"columns\":[],\"rows\":[]}");
    free(js);
    js = te_result_to_csv(r, NULL);
    assert_string_equal(js, "");
    free(js);
    js = te_result_to_table(r, NULL);
    assert_string_equal(js, "");
    free(js);
    te_result_free(r);
}

static void result_add_row_grows_and_set_str_replaces(void **state)
{
    (void)state;
    const char *cols[] = {"k", "v"};
    te_result_t *r = te_result_new(cols, 2);
    for (int i = 0; i < 1000; i++) {
        te_val_t *row = te_result_add_row(r);
        assert_non_null(row);
        assert_int_equal(row[0].type, TE_VAL_NULL);
        assert_int_equal(te_val_set_str(&row[0], "first", 5), 0);
        assert_int_equal(te_val_set_str(&row[0], "second", 6), 0);
        row[1].type = TE_VAL_INT;
        row[1].u.i = i;
    }
    assert_int_equal(r->nrows, 1000);
    assert_string_equal(r->cells[999 * 2].u.s, "second");
    assert_true(r->cells[999 * 2 + 1].u.i == 999);
    assert_int_equal(te_val_set_str(&r->cells[0], NULL, 0), 0);
    assert_int_equal(r->cells[0].type, TE_VAL_NULL);
    /* Strings are copied by length, not up to a NUL. */
    assert_int_equal(te_val_set_str(&r->cells[2], "abcdef", 3), 0);
    assert_string_equal(r->cells[2].u.s, "abc");
    te_result_free(r);
}

static void result_csv_rfc4180_quoting(void **state)
{
    (void)state;
    const char *cols[] = {"name", "note,x", "n"};
    te_result_t *r = te_result_new(cols, 3);
    te_val_t *row = te_result_add_row(r);
    te_val_set_str(&row[0], "plain", 5);
    te_val_set_str(&row[1], "say \"hi\", ok", 12);
    row[2].type = TE_VAL_NUM;
    row[2].u.num = 2.5;
    row = te_result_add_row(r);
    te_val_set_str(&row[0], "two\nlines", 9);
    row[2].type = TE_VAL_NUM;
    row[2].u.num = NAN;
    size_t len;
    char *csv = te_result_to_csv(r, &len);
    assert_string_equal(csv, "name,\"note,x\",n\r\n"
                             "plain,\"say \"\"hi\"\", ok\",2.5\r\n"
                             "\"two\nlines\",,\r\n");
    assert_int_equal(len, strlen(csv));
    free(csv);
    te_result_free(r);
}

static void result_table_aligned_columns(void **state)
{
    (void)state;
    te_result_t *r = spec_example();
    te_val_t *row = te_result_add_row(r);
    te_val_set_str(&row[0], "anthropic", 9);
    row[1].type = TE_VAL_INT;
    row[1].u.i = 1500;
    row = te_result_add_row(r); /* NULL provider, NULL sum */
    row[1].type = TE_VAL_INT;
    row[1].u.i = 3;
    char *t = te_result_to_table(r, NULL);
    assert_string_equal(t, "provider   count  sum:cost_usd\n"
                           "openai        12          1.23\n"
                           "anthropic   1500             -\n"
                           "-              3             -\n");
    free(t);
    te_result_free(r);
    /* Width counts characters, not bytes; control characters are shown escaped. */
    const char *cols[] = {"k", "v"};
    r = te_result_new(cols, 2);
    row = te_result_add_row(r);
    te_val_set_str(&row[0], "\xc3\xa9t\xc3\xa9", 5);
    te_val_set_str(&row[1], "a\tb", 3);
    row = te_result_add_row(r);
    te_val_set_str(&row[0], "x", 1);
    te_val_set_str(&row[1], "y", 1);
    t = te_result_to_table(r, NULL);
    assert_string_equal(t, "k    v\n"
                           "\xc3\xa9t\xc3\xa9  a\\tb\n"
                           "x    y\n");
    free(t);
    te_result_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(result_json_spec_example_exact),
        cmocka_unit_test(result_json_nulls_numbers_and_escapes),
        cmocka_unit_test(result_json_no_rows_and_no_columns),
        cmocka_unit_test(result_add_row_grows_and_set_str_replaces),
        cmocka_unit_test(result_csv_rfc4180_quoting),
        cmocka_unit_test(result_table_aligned_columns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
