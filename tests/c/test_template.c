/*
 * test_template.c - notifier body templates and the exact SPEC section 7
 * payloads they start from (single alert and group).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "alerts/notify.h"
#include "alerts/template.h"
#include "rules/alert.h"

/* 2026-11-23T10:00:30Z */
#define T0 INT64_C(1795428030000000000)

static void make(te_alert_t *a)
{
    te_alert_init(a);
    const char *keys[] = {"provider", "model"}, *vals[] = {"openai", "m"};
    char *lk[] = {"team"}, *lv[] = {"llm-platform"};
    assert_int_equal(te_alert_set_identity(a, "llm-error-rate", keys, vals, 2), 0);
    assert_int_equal(te_alert_set_labels(a, lk, lv, 1), 0);
    assert_int_equal(te_alert_set_summary(a, "openai/m error rate 8.3% (5m)"), 0);
    memcpy(a->id, "00000000000000aa", 17);
    a->severity = TE_SEV_WARNING;
    a->state = TE_ALERT_FIRING;
    a->has_value = true;
    a->value = 0.083;
    a->starts_at_ns = T0;
}

static void payload_is_spec_exact(void **state)
{
    (void)state;
    te_alert_t a;
    make(&a);
    char expect[1024];
    snprintf(expect, sizeof(expect),
             "{\"version\":1,\"status\":\"firing\",\"alert\":{\"id\":\"00000000000000aa\","
             "\"rule\":\"llm-error-rate\",\"fingerprint\":\"%s\",\"severity\":\"warning\","
             "\"group\":{\"provider\":\"openai\",\"model\":\"m\"},\"labels\":{\"team\":"
             "\"llm-platform\"},\"value\":0.083,\"summary\":\"openai/m error rate 8.3%% (5m)\","
             "\"starts_at\":\"2026-11-23T10:00:30Z\",\"ends_at\":null}}",
             a.fingerprint);
    char *got = te_alert_to_json(&a, NULL);
    assert_string_equal(got, expect);
    /* {{payload}} inserts exactly that */
    char *t = te_template_render("{{payload}}", &a, "firing", NULL, 1, NULL);
    assert_string_equal(t, expect);
    free(t);
    free(got);
    te_alert_clear(&a);
}

static void template_names_filters_and_json(void **state)
{
    (void)state;
    te_alert_t a;
    make(&a);
    te_alert_set_summary(&a, "say \"hi\"\n<b>");
    char *t = te_template_render("{\"text\": {{summary|json}}, \"s\": \"{{status|upper}}\", "
                                 "\"p\": \"{{ provider }}/{{group.model}}\", \"t\": "
                                 "\"{{labels.team}}\", \"v\": \"{{value|pct}}\", \"n\": "
                                 "{{count}}, \"missing\": {{nope|json}}, \"end\": "
                                 "{{ends_at|json}}, \"id\": \"{{id}}\"}",
                                 &a, "resolved", NULL, 3, NULL);
    assert_string_equal(t, "{\"text\": \"say \\\"hi\\\"\\n<b>\", \"s\": \"RESOLVED\", \"p\": "
                           "\"openai/m\", \"t\": \"llm-platform\", \"v\": \"8.3%\", \"n\": 3, "
                           "\"missing\": null, \"end\": null, \"id\": \"00000000000000aa\"}");
    free(t);
    te_err_t err = {0};
    assert_int_equal(te_template_check("{{status|bogus}}", &err), TE_EINVAL);
    assert_non_null(strstr(err.msg, "unknown filter \"bogus\""));
    assert_int_equal(te_template_check("x {{status", &err), TE_EINVAL);
    assert_non_null(strstr(err.msg, "unclosed"));
    assert_int_equal(te_template_check("{{a}} {{b|json}}", &err), 0);
    te_alert_clear(&a);
}

static void group_payload_lists_each_spec_payload(void **state)
{
    (void)state;
    te_alert_t a, b;
    make(&a);
    make(&b);
    const char *keys[] = {"provider", "model"}, *vals[] = {"anthropic", "c"};
    te_alert_set_identity(&b, "llm-error-rate", keys, vals, 2);
    const te_alert_t *as[] = {&a, &b};
    const char *st[] = {"resolved", "firing"};
    char *g = te_alert_group_json(as, st, 2);
    char *pa = te_alert_to_json(&a, "resolved"), *pb = te_alert_to_json(&b, "firing");
    char expect[4096];
    snprintf(expect, sizeof(expect),
             "{\"version\":1,\"status\":\"firing\",\"count\":2,\"alerts\":[%s,%s]}", pa, pb);
    assert_string_equal(g, expect);
    const char *st2[] = {"resolved", "resolved"};
    char *g2 = te_alert_group_json(as, st2, 2);
    assert_non_null(strstr(g2, "{\"version\":1,\"status\":\"resolved\",\"count\":2,"));
    free(g);
    free(g2);
    free(pa);
    free(pb);
    te_alert_clear(&a);
    te_alert_clear(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(payload_is_spec_exact),
        cmocka_unit_test(template_names_filters_and_json),
        cmocka_unit_test(group_payload_lists_each_spec_payload),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
