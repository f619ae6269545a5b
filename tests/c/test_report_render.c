/*
 * test_report_render.c - the four report renderers on fixed documents,
 * against golden files under tests/golden/ (TE_UPDATE_GOLDEN=1 rewrites
 * them; review the diff), plus the properties a golden file could hide:
 * SVG ticks at nice values, empty data, one point, negative values,
 * unicode, HTML escaping of a hostile "<script>" tag value, value formats
 * and report schedules.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "core/time.h"
#include "report/report.h"
#include "report/schedule.h"

static const char FULL[] =
    "{\"name\":\"demo\",\"title\":\"Überblick — 東京 ✓ <b>\",\"generated_at\":"
    "\"2026-11-20T10:00:00Z\",\"since\":\"2026-11-13T10:00:00Z\",\"until\":"
    "\"2026-11-20T10:00:00Z\",\"params\":{\"since\":\"7d\"},\"blocks\":["
    "{\"type\":\"heading\",\"text\":\"Summary\",\"level\":2},"
    "{\"type\":\"stat\",\"label\":\"Total cost\",\"value\":1234.5,\"format\":\"usd\","
    "\"delta\":0.125},"
    "{\"type\":\"stat\",\"label\":\"Success rate\",\"value\":0.9712,\"format\":\"pct\","
    "\"delta\":-0.02},"
    "{\"type\":\"stat\",\"label\":\"p95\",\"value\":1520,\"format\":\"ms\"},"
    "{\"type\":\"stat\",\"label\":\"Empty\",\"value\":null,\"unit\":\"calls\"},"
    "{\"type\":\"text\",\"text\":\"Plain text with <tags> & \\\"quotes\\\" — ünïcödé.\"},"
    "{\"type\":\"table\",\"title\":\"By provider\",\"columns\":["
    "{\"key\":\"provider\",\"label\":\"Provider\",\"format\":\"text\"},"
    "{\"key\":\"calls\",\"label\":\"Calls\",\"format\":\"int\"},"
    "{\"key\":\"cost\",\"label\":\"Cost\",\"format\":\"usd\"},"
    "\"note\"],\"rows\":["
    "{\"provider\":\"<script>alert(1)</script>\",\"calls\":12345,\"cost\":0.0123,"
    "\"note\":\"a|b, \\\"c\\\"\"},"
    "{\"provider\":\"東京\",\"calls\":7,\"cost\":-2.5},"
    "{\"provider\":\"none\"}]},"
    "{\"type\":\"chart\",\"chart\":\"line\",\"title\":\"Cost per day\",\"format\":\"usd\","
    "\"x\":[\"2026-11-17T00:00:00Z\",\"2026-11-18T00:00:00Z\",\"2026-11-19T00:00:00Z\","
    "\"2026-11-20T00:00:00Z\"],\"series\":[{\"name\":\"cost\",\"values\":[0,120,null,480]},"
    "{\"name\":\"budget <x>\",\"values\":[100,100,100,100]}]},"
    "{\"type\":\"chart\",\"chart\":\"bar\",\"title\":\"Change\",\"x\":[\"a\",\"b\",\"c\"],"
    "\"series\":[{\"name\":\"delta\",\"values\":[-30,45,12]}]},"
    "{\"type\":\"chart\",\"chart\":\"stacked\",\"title\":\"Tokens\",\"x\":[\"fast\",\"capable\"],"
    "\"series\":[{\"name\":\"in\",\"values\":[1200000,800000]},{\"name\":\"out\","
    "\"values\":[300000,-100000]}]},"
    "{\"type\":\"chart\",\"chart\":\"pie\",\"title\":\"Share\",\"x\":[\"openai\",\"<anthropic>\","
    "\"google\"],\"series\":[{\"name\":\"cost\",\"values\":[3,1,-1]}]},"
    "{\"type\":\"list\",\"items\":[\"first <i>\",\"second | pipe\",42]},"
    "{\"type\":\"alert_list\",\"alerts\":[{\"rule\":\"llm-error-rate\",\"severity\":\"critical\","
    "\"state\":\"firing\",\"summary\":\"<img src=x onerror=alert(1)> 8.3%\",\"starts_at\":"
    "\"2026-11-20T09:00:00Z\"},{\"rule\":\"r2\",\"severity\":\"\\\"weird\\\"\",\"state\":"
    "\"resolved\",\"starts_at\":\"2026-11-19T09:00:00Z\",\"ends_at\":\"2026-11-19T10:00:00Z\"}]}"
    "]}";

static const char EMPTY[] =
    "{\"name\":\"empty\",\"title\":\"Nothing\",\"blocks\":["
    "{\"type\":\"table\",\"title\":\"No rows\",\"columns\":[\"a\"],\"rows\":[]},"
    "{\"type\":\"chart\",\"chart\":\"line\",\"title\":\"No points\",\"x\":[],\"series\":[]},"
    "{\"type\":\"chart\",\"chart\":\"bar\",\"title\":\"All null\",\"x\":[\"a\"],"
    "\"series\":[{\"name\":\"s\",\"values\":[null]}]},"
    "{\"type\":\"chart\",\"chart\":\"pie\",\"title\":\"Zero pie\",\"x\":[\"a\"],"
    "\"series\":[{\"name\":\"s\",\"values\":[0]}]},"
    "{\"type\":\"list\",\"items\":[]},{\"type\":\"alert_list\",\"alerts\":[]},"
    "{\"type\":\"mystery\",\"text\":\"skipped\"}]}";

static const char ONE_POINT[] =
    "{\"name\":\"one\",\"title\":\"One point\",\"blocks\":["
    "{\"type\":\"chart\",\"chart\":\"line\",\"title\":\"Single\",\"x\":[\"2026-11-20T10:00:00Z\"],"
    "\"series\":[{\"name\":\"v\",\"values\":[3.5]}]}]}";

static const char NEGATIVE[] =
    "{\"name\":\"neg\",\"title\":\"Negative\",\"blocks\":["
    "{\"type\":\"chart\",\"chart\":\"line\",\"title\":\"Below zero\",\"x\":[\"a\",\"b\",\"c\"],"
    "\"series\":[{\"name\":\"v\",\"values\":[-0.5,-2.25,-1]}]}]}";

static char *render(const char *json, te_report_format_t f)
{
    cJSON *doc = cJSON_Parse(json);
    assert_non_null(doc);
    char *out = NULL;
    size_t len = 0;
    te_err_t err = {0};
    assert_int_equal(te_report_render(doc, f, &out, &len, &err), 0);
    assert_int_equal(strlen(out), len);
    cJSON_Delete(doc);
    return out;
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
    p[n] = '\0';
    fclose(f);
    return p;
}

/* Compares text with tests/golden/name, or writes it there when
 * TE_UPDATE_GOLDEN is set. */
static void golden(const char *name, const char *text)
{
    char path[1024];
    const char *root = getenv("TE_SOURCE_DIR");
    snprintf(path, sizeof(path), "%s/tests/golden/%s", root ? root : ".", name);
    if (getenv("TE_UPDATE_GOLDEN")) {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
        return;
    }
    char *want = read_all(path);
    if (!want)
        fail_msg("missing golden file %s (run with TE_UPDATE_GOLDEN=1 and review it)", path);
    if (strcmp(want, text) != 0) {
        size_t i = 0;
        while (want[i] && want[i] == text[i])
            i++;
        fprintf(stderr, "%s differs at byte %zu:\n  want: %.80s\n  got:  %.80s\n", path, i,
                want + i, text + i);
        free(want);
        fail_msg("golden mismatch: %s", name);
    }
    free(want);
}

static void golden_all(const char *doc, const char *base)
{
    static const char *const ext[] = {"md", "html", "json", "csv"};
    for (int f = 0; f < 4; f++) {
        char name[128];
        snprintf(name, sizeof(name), "%s.%s", base, ext[f]);
        char *out = render(doc, (te_report_format_t)f);
        golden(name, out);
        free(out);
    }
}

static void render_full_document_matches_goldens(void **state)
{
    (void)state;
    golden_all(FULL, "report_full");
}

static void render_empty_document_matches_goldens(void **state)
{
    (void)state;
    golden_all(EMPTY, "report_empty");
}

static void render_one_point_and_negatives_match_goldens(void **state)
{
    (void)state;
    golden_all(ONE_POINT, "report_one_point");
    golden_all(NEGATIVE, "report_negative");
}

static void html_escapes_hostile_values_everywhere(void **state)
{
    (void)state;
    char *html = render(FULL, TE_REPORT_HTML);
    assert_null(strstr(html, "<script"));
    assert_null(strstr(html, "<img"));
    assert_null(strstr(html, "<anthropic>"));
    assert_null(strstr(html, "<x>"));
    assert_null(strstr(html, "<b>"));
    assert_non_null(strstr(html, "&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert_non_null(strstr(html, "&lt;img src=x onerror=alert(1)&gt;"));
    assert_non_null(strstr(html, "budget &lt;x&gt;"));
    /* an unknown severity does not become a class name */
    assert_non_null(strstr(html, "<li class=\"info\"><span class=\"sev\">&quot;weird&quot;"));
    /* self-contained: no external references, no script */
    assert_null(strstr(html, "src=\"http"));
    assert_null(strstr(html, "href="));
    assert_non_null(strstr(html, "prefers-color-scheme:dark"));
    assert_non_null(strstr(html, "@media print"));
    assert_non_null(strstr(html, "東京"));
    free(html);
    char *md = render(FULL, TE_REPORT_MD);
    assert_null(strstr(md, "<script"));
    assert_non_null(strstr(md, "a\\|b"));
    free(md);
}

static void svg_ticks_sit_at_nice_values(void **state)
{
    (void)state;
    te_buf_t b = {0};
    cJSON *doc = cJSON_Parse(FULL);
    const cJSON *blk;
    int charts = 0;
    cJSON_ArrayForEach(blk, cJSON_GetObjectItem(doc, "blocks")) {
        const char *title = cJSON_GetStringValue(cJSON_GetObjectItem(blk, "title"));
        if (!title || strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(blk, "type")), "chart"))
            continue;
        charts++;
        te_buf_free(&b);
        memset(&b, 0, sizeof(b));
        te_report_svg_chart(blk, &b);
        assert_false(b.oom);
        if (strcmp(title, "Cost per day") == 0) {
            /* 0..480 in usd: 0, 100 .. 500 */
            for (int v = 0; v <= 500; v += 100) {
                char want[32];
                snprintf(want, sizeof(want), ">$%d</text>", v);
                assert_non_null(strstr(b.p, want));
            }
            assert_null(strstr(b.p, ">$600<"));
            /* the null breaks the line: a second "M" starts after it */
            assert_non_null(strstr(b.p, " M"));
            assert_non_null(strstr(b.p, ">11-17</text>")); /* midnight labels: day only */
        } else if (strcmp(title, "Change") == 0) {
            /* -30..45: step 20, from -40 to 60, zero line drawn as the axis */
            assert_non_null(strstr(b.p, ">-40</text>"));
            assert_non_null(strstr(b.p, ">60</text>"));
            assert_non_null(strstr(b.p, ">0</text>"));
            assert_null(strstr(b.p, ">-60</text>"));
        } else if (strcmp(title, "Tokens") == 0) {
            assert_non_null(strstr(b.p, ">1.5M</text>"));
            assert_non_null(strstr(b.p, ">-0.5M</text>"));
        } else if (strcmp(title, "Share") == 0) {
            assert_non_null(strstr(b.p, "75.0%"));
            assert_non_null(strstr(b.p, "negative values are not shown"));
        }
    }
    assert_int_equal(charts, 4);
    te_buf_free(&b);
    cJSON_Delete(doc);
}

static void empty_and_single_point_charts_render(void **state)
{
    (void)state;
    char *html = render(EMPTY, TE_REPORT_HTML);
    const char *p = html;
    int no_data = 0;
    while ((p = strstr(p, ">No data</text>")) != NULL) {
        no_data++;
        p++;
    }
    assert_int_equal(no_data, 3);
    assert_null(strstr(html, "skipped"));
    free(html);
    html = render(ONE_POINT, TE_REPORT_HTML);
    assert_non_null(strstr(html, "<circle"));
    assert_non_null(strstr(html, ">4</text>"));
    free(html);
}

static void csv_keeps_raw_numbers_and_quotes(void **state)
{
    (void)state;
    char *csv = render(FULL, TE_REPORT_CSV);
    assert_non_null(strstr(csv, "# stats\nlabel,value,unit,delta\nTotal cost,1234.5,,0.125\n"));
    assert_non_null(strstr(csv, "\"a|b, \"\"c\"\"\""));
    assert_non_null(strstr(csv, "# By provider\nprovider,calls,cost,note\n"));
    free(csv);
}

static void format_number_for_people(void **state)
{
    (void)state;
    static const struct {
        double v;
        const char *fmt, *want;
    } cases[] = {
        {1234567, NULL, "1,234,567"},  {-1234.567, NULL, "-1,234.6"}, {0.01234, NULL, "0.0123"},
        {12.5, "usd", "$12.50"},       {-0.5, "usd", "-$0.5000"},     {0.0835, "pct", "8.3%"},
        {812.5, "ms", "812.5 ms"},     {2500, "ms", "2.50 s"},        {0, "s", "0 s"},
        {95, "s", "1m 35s"},           {7200, "s", "2h 00m"},         {1536, "bytes", "1.5 KiB"},
        {2.6, "int", "3"},             {1795168800, "time", "2026-11-20T10:00:00Z"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        te_buf_t b = {0};
        te_report_format_number(&b, cases[i].v, cases[i].fmt);
        assert_string_equal(b.p, cases[i].want);
        te_buf_free(&b);
    }
}

static void utf8_truncation_keeps_characters_whole(void **state)
{
    (void)state;
    te_buf_t b = {0};
    te_report_utf8_trunc(&b, "東京都庁舎", 3);
    assert_string_equal(b.p, "東京\xe2\x80\xa6");
    te_buf_free(&b);
    memset(&b, 0, sizeof(b));
    te_report_utf8_trunc(&b, "東京", 3);
    assert_string_equal(b.p, "東京");
    te_buf_free(&b);
}

static void format_names_parse(void **state)
{
    (void)state;
    te_report_format_t f;
    te_err_t err = {0};
    assert_int_equal(te_report_format_parse("markdown", &f, &err), 0);
    assert_int_equal(f, TE_REPORT_MD);
    assert_int_equal(te_report_format_parse("csv", &f, &err), 0);
    assert_int_equal(f, TE_REPORT_CSV);
    assert_int_equal(te_report_format_parse("pdf", &f, &err), TE_EINVAL);
    assert_string_equal(err.msg, "bad format \"pdf\" (use md, html, json or csv)");
    assert_string_equal(te_report_content_type(TE_REPORT_HTML), "text/html; charset=utf-8");
}

static int64_t at(const char *s)
{
    int64_t ns = 0;
    assert_int_equal(te_time_parse_rfc3339(s, strlen(s), &ns, NULL), 0);
    return ns;
}

static void schedule_next_runs(void **state)
{
    (void)state;
    te_report_schedule_t s;
    te_err_t err = {0};
    assert_int_equal(te_report_schedule_parse("daily 08:00", &s, &err), 0);
    assert_int_equal(te_report_schedule_next(&s, at("2026-11-20T07:59:59Z")),
                     at("2026-11-20T08:00:00Z"));
    assert_int_equal(te_report_schedule_next(&s, at("2026-11-20T08:00:00Z")),
                     at("2026-11-21T08:00:00Z"));
    /* 2026-11-20 is a Friday */
    assert_int_equal(te_report_schedule_parse("weekly mon 09:30", &s, &err), 0);
    assert_int_equal(te_report_schedule_next(&s, at("2026-11-20T12:00:00Z")),
                     at("2026-11-23T09:30:00Z"));
    assert_int_equal(te_report_schedule_parse("every 6h", &s, &err), 0);
    assert_int_equal(te_report_schedule_next(&s, at("2026-11-20T12:00:00Z")),
                     at("2026-11-20T18:00:00Z"));
    assert_int_equal(te_report_schedule_parse("daily 8am", &s, &err), TE_EINVAL);
    assert_string_equal(err.msg, "schedule \"daily 8am\": expected \"daily HH:MM\", \"weekly mon "
                                 "HH:MM\" or \"every 6h\"");
    assert_int_equal(te_report_schedule_parse("weekly xyz 09:00", &s, &err), TE_EINVAL);
    assert_int_equal(te_report_schedule_parse("daily 24:00", &s, &err), TE_EINVAL);
    assert_int_equal(te_report_schedule_parse("every 10s", &s, &err), TE_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(render_full_document_matches_goldens),
        cmocka_unit_test(render_empty_document_matches_goldens),
        cmocka_unit_test(render_one_point_and_negatives_match_goldens),
        cmocka_unit_test(html_escapes_hostile_values_everywhere),
        cmocka_unit_test(svg_ticks_sit_at_nice_values),
        cmocka_unit_test(empty_and_single_point_charts_render),
        cmocka_unit_test(csv_keeps_raw_numbers_and_quotes),
        cmocka_unit_test(format_number_for_people),
        cmocka_unit_test(utf8_truncation_keeps_characters_whole),
        cmocka_unit_test(format_names_parse),
        cmocka_unit_test(schedule_next_runs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
