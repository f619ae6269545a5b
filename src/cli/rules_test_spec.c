/*
 * rules_test_spec.c - checks and reads a rule test file's table (see
 * rules_test_spec.h and docs/rules-testing.md).
 *
 * THREAD: main.
 *
 * A Lua table that is empty converts to an empty JSON object, so an empty
 * list and an empty map are both accepted wherever either is expected.
 */
#include "rules_test_spec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/time.h"
#include "../core/suggest.h"

#define DEFAULT_START "2026-01-01T00:00:00Z"
#define MAX_OFFSET_NS (INT64_C(366) * 86400 * 1000000000)
#define MAX_OCCURRENCES 1000000
#define MAX_TIMES 1000000

static const char *const file_keys[] = {"rule_files", "start", "tests", NULL};
static const char *const test_keys[] = {"name", "events", "expect", "expect_transitions", NULL};
static const char *const event_keys[] = {"at", "every", "times", "event", NULL};
static const char *const expect_keys[] = {"at", "rule", "group", "state", "severity",
                                          "value", "tolerance", "summary", NULL};
static const char *const trans_keys[] = {"at", "rule", "group", "to", NULL};

static bool is_list(const cJSON *v)
{
    return cJSON_IsArray(v) || (cJSON_IsObject(v) && !v->child);
}

static bool is_map(const cJSON *v)
{
    return cJSON_IsObject(v) || (cJSON_IsArray(v) && !v->child);
}

static const char *type_name(const cJSON *v)
{
    if (cJSON_IsString(v))
        return "string";
    if (cJSON_IsNumber(v))
        return "number";
    if (cJSON_IsBool(v))
        return "boolean";
    if (cJSON_IsArray(v))
        return "list";
    if (cJSON_IsObject(v))
        return "table";
    return "nil";
}

/* Every key of obj must be in keys; where prefixes the message. */
static int check_keys(const cJSON *obj, const char *const *keys, const char *where, te_err_t *err)
{
    for (const cJSON *v = obj->child; v; v = v->next) {
        const char *best = NULL;
        size_t bestd = 3;
        bool known = false;
        for (const char *const *k = keys; *k && !known; k++) {
            size_t d = te_edit_distance(v->string ? v->string : "", *k);
            known = d == 0;
            if (d < bestd) {
                bestd = d;
                best = *k;
            }
        }
        if (known)
            continue;
        if (best)
            return te_err_set(err, TE_EINVAL, "%s: unknown key \"%s\" (did you mean \"%s\"?)",
                              where, v->string, best);
        return te_err_set(err, TE_EINVAL, "%s: unknown key \"%s\"", where,
                          v->string ? v->string : "?");
    }
    return 0;
}

/* A duration: "2m30s" or a number of seconds; in [0, 366d]. */
static int get_offset(const cJSON *v, const char *where, const char *key, int64_t *out,
                      te_err_t *err)
{
    te_err_t e2;
    if (cJSON_IsString(v)) {
        te_err_clear(&e2);
        if (te_duration_parse(v->valuestring, out, &e2) < 0)
            return te_err_set(err, TE_EINVAL, "%s.%s: %s", where, key, e2.msg);
    } else if (cJSON_IsNumber(v) && isfinite(v->valuedouble)) {
        if (fabs(v->valuedouble) > 366.0 * 86400)
            return te_err_set(err, TE_EINVAL, "%s.%s: %g s is out of range", where, key,
                              v->valuedouble);
        *out = (int64_t)llround(v->valuedouble * 1e9);
    } else {
        return te_err_set(err, TE_EINVAL,
                          "%s.%s: expected a duration (\"1m30s\") or seconds, got %s", where, key,
                          type_name(v));
    }
    if (*out < 0 || *out > MAX_OFFSET_NS)
        return te_err_set(err, TE_EINVAL, "%s.%s: must be between 0s and 366d", where, key);
    return 0;
}

static int get_string(const cJSON *obj, const char *key, bool required, const char *where,
                      const char **out, te_err_t *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = NULL;
    if (!v) {
        if (required)
            return te_err_set(err, TE_EINVAL, "%s: \"%s\" is required", where, key);
        return 0;
    }
    if (!cJSON_IsString(v))
        return te_err_set(err, TE_EINVAL, "%s.%s: expected a string, got %s", where, key,
                          type_name(v));
    *out = v->valuestring;
    return 0;
}

/* --- the file --- */

void te_rules_test_spec_file_free(te_rules_test_file_t *f)
{
    for (size_t i = 0; i < f->nrule_files; i++)
        free(f->rule_files[i]);
    free(f->rule_files);
    memset(f, 0, sizeof(*f));
}

static char *resolve(const char *test_path, const char *rel)
{
    const char *slash = strrchr(test_path, '/');
    size_t dir = rel[0] == '/' || !slash ? 0 : (size_t)(slash - test_path) + 1;
    size_t n = strlen(rel);
    char *p = malloc(dir + n + 1);
    if (!p)
        return NULL;
    memcpy(p, test_path, dir);
    memcpy(p + dir, rel, n + 1);
    return p;
}

int te_rules_test_spec_file(const char *path, const void *spec, te_rules_test_file_t *f,
                            te_err_t *err)
{
    const cJSON *root = spec;
    te_err_t e2;
    int rc;
    memset(f, 0, sizeof(*f));
    if (!cJSON_IsObject(root) || !root->child)
        return te_err_set(err, TE_EINVAL,
                          "a test file must return a table { rule_files = {...}, tests = {...} }"
                          " (see docs/rules-testing.md)");
    if ((rc = check_keys(root, file_keys, "test file", err)) < 0)
        return rc;
    const cJSON *rf = cJSON_GetObjectItemCaseSensitive(root, "rule_files");
    if (!rf || !cJSON_IsArray(rf) || !rf->child)
        return te_err_set(err, TE_EINVAL, "rule_files: expected a non-empty list of rule files "
                          "(relative to the test file), got %s", type_name(rf));
    f->rule_files = calloc((size_t)cJSON_GetArraySize(rf), sizeof(char *));
    if (!f->rule_files)
        return te_err_set(err, TE_ENOMEM, "out of memory");
    size_t i = 1;
    for (const cJSON *v = rf->child; v; v = v->next, i++) {
        if (!cJSON_IsString(v) || !v->valuestring[0]) {
            rc = te_err_set(err, TE_EINVAL, "rule_files[%zu]: expected a file name, got %s", i,
                            type_name(v));
            goto fail;
        }
        if (!(f->rule_files[f->nrule_files] = resolve(path, v->valuestring))) {
            rc = te_err_set(err, TE_ENOMEM, "out of memory");
            goto fail;
        }
        f->nrule_files++;
    }
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(root, "start");
    te_err_clear(&e2);
    if (!st) {
        te_time_parse_rfc3339(DEFAULT_START, strlen(DEFAULT_START), &f->start, NULL);
    } else if (cJSON_IsString(st)) {
        if (te_time_parse(st->valuestring, &f->start, &e2) < 0) {
            rc = te_err_set(err, TE_EINVAL, "start: %s", e2.msg);
            goto fail;
        }
    } else if (cJSON_IsNumber(st) && isfinite(st->valuedouble) && st->valuedouble >= 0 &&
               st->valuedouble < 9e9) {
        f->start = (int64_t)llround(st->valuedouble * 1e9);
    } else {
        rc = te_err_set(err, TE_EINVAL, "start: expected an RFC 3339 time or Unix seconds, got %s",
                        type_name(st));
        goto fail;
    }
    f->tests = cJSON_GetObjectItemCaseSensitive(root, "tests");
    if (!f->tests || !cJSON_IsArray(f->tests) || !f->tests->child) {
        rc = te_err_set(err, TE_EINVAL, "tests: expected a non-empty list of tests, got %s",
                        type_name(f->tests));
        goto fail;
    }
    f->ntests = (size_t)cJSON_GetArraySize(f->tests);
    return 0;
fail:
    te_rules_test_spec_file_free(f);
    return rc;
}

/* --- one test --- */

void te_rules_test_spec_test_free(te_rules_test_t *t)
{
    for (size_t i = 0; i < t->nitems; i++)
        te_event_free(t->items[i]);
    free(t->items);
    free(t->occ);
    free(t->expect);
    memset(t, 0, sizeof(*t));
}

static int read_event(te_rules_test_t *t, const cJSON *e, size_t i, te_err_t *err)
{
    char where[48];
    int rc;
    int64_t at = 0, every = 0, times = 1;
    snprintf(where, sizeof(where), "events[%zu]", i);
    if (!cJSON_IsObject(e))
        return te_err_set(err, TE_EINVAL, "%s: expected a table { at, every, times, event }, "
                          "got %s", where, type_name(e));
    if ((rc = check_keys(e, event_keys, where, err)) < 0)
        return rc;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, "at");
    if (v && (rc = get_offset(v, where, "at", &at, err)) < 0)
        return rc;
    v = cJSON_GetObjectItemCaseSensitive(e, "times");
    if (v) {
        if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
            v->valuedouble < 1 || v->valuedouble > MAX_TIMES)
            return te_err_set(err, TE_EINVAL, "%s.times: expected an integer from 1 to %d", where,
                              MAX_TIMES);
        times = (int64_t)v->valuedouble;
    }
    v = cJSON_GetObjectItemCaseSensitive(e, "every");
    if (v && (rc = get_offset(v, where, "every", &every, err)) < 0)
        return rc;
    if (times > 1 && every <= 0)
        return te_err_set(err, TE_EINVAL, "%s: times = %lld needs every > 0", where,
                          (long long)times);
    if (at + (times - 1) * every > MAX_OFFSET_NS)
        return te_err_set(err, TE_EINVAL, "%s: the last repeat is past 366d", where);
    if (t->nocc + (size_t)times > MAX_OCCURRENCES)
        return te_err_set(err, TE_EINVAL, "%s: more than %d events in one test", where,
                          MAX_OCCURRENCES);
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(e, "event");
    if (!cJSON_IsObject(ev) || !ev->child)
        return te_err_set(err, TE_EINVAL, "%s.event: expected an event table { kind, tags, "
                          "fields }, got %s", where, type_name(ev));
    static const char *const timed[] = {"ts", "time", "timestamp", NULL};
    for (const char *const *k = timed; *k; k++)
        if (cJSON_GetObjectItemCaseSensitive(ev, *k))
            return te_err_set(err, TE_EINVAL, "%s.event: leave out \"%s\": the time comes from "
                              "at/every", where, *k);
    char *text = cJSON_PrintUnformatted(ev);
    if (!text)
        return te_err_set(err, TE_ENOMEM, "out of memory");
    size_t size = strlen(text);
    free(text);
    te_event_opts_t eo = {NULL, NULL, 0};
    te_err_t e2;
    te_err_clear(&e2);
    te_event_t *parsed = NULL;
    if ((rc = te_event_from_cjson(ev, size, &eo, &parsed, &e2)) < 0)
        return te_err_set(err, rc, "%s.event: %s", where, e2.msg);
    t->items[t->nitems++] = parsed;
    te_rules_test_occ_t *occ = realloc(t->occ, (t->nocc + (size_t)times) * sizeof(*occ));
    if (!occ)
        return te_err_set(err, TE_ENOMEM, "out of memory");
    t->occ = occ;
    for (int64_t k = 0; k < times; k++)
        t->occ[t->nocc++] = (te_rules_test_occ_t){at + k * every, t->nitems - 1, (size_t)k};
    return 0;
}

static int read_group(const cJSON *e, const char *where, const cJSON **out, te_err_t *err)
{
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(e, "group");
    *out = NULL;
    if (!g)
        return 0;
    if (!is_map(g))
        return te_err_set(err, TE_EINVAL, "%s.group: expected a table of tag = value, got %s",
                          where, type_name(g));
    for (const cJSON *v = g->child; v; v = v->next)
        if (!v->string || !cJSON_IsString(v))
            return te_err_set(err, TE_EINVAL, "%s.group.%s: expected a string, got %s "
                              "(group values are tag values)", where,
                              v->string ? v->string : "?", type_name(v));
    *out = g->child ? g : NULL;
    return 0;
}

static int read_expect(te_rules_test_expect_t *x, const cJSON *e, size_t i, bool transition,
                       te_err_t *err)
{
    char where[48];
    int rc;
    const char *s;
    memset(x, 0, sizeof(*x));
    x->index = i;
    x->transition = transition;
    snprintf(where, sizeof(where), "%s[%zu]", transition ? "expect_transitions" : "expect", i);
    if (!cJSON_IsObject(e))
        return te_err_set(err, TE_EINVAL, "%s: expected a table, got %s", where, type_name(e));
    if ((rc = check_keys(e, transition ? trans_keys : expect_keys, where, err)) < 0)
        return rc;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, "at");
    if (!v)
        return te_err_set(err, TE_EINVAL, "%s: \"at\" is required", where);
    if ((rc = get_offset(v, where, "at", &x->at, err)) < 0)
        return rc;
    if ((rc = get_string(e, "rule", true, where, &x->rule, err)) < 0)
        return rc;
    if ((rc = read_group(e, where, &x->group, err)) < 0)
        return rc;
    if (transition) {
        static const struct { const char *name; te_alert_transition_t t; } tos[] = {
            {"pending", TE_ALERT_T_PENDING},   {"firing", TE_ALERT_T_FIRING},
            {"repeat", TE_ALERT_T_REPEAT},     {"resolved", TE_ALERT_T_RESOLVED},
            {"cleared", TE_ALERT_T_CLEARED},
        };
        if ((rc = get_string(e, "to", true, where, &s, err)) < 0)
            return rc;
        for (size_t k = 0; k < sizeof(tos) / sizeof(tos[0]); k++)
            if (strcmp(s, tos[k].name) == 0) {
                x->to = tos[k].t;
                return 0;
            }
        return te_err_set(err, TE_EINVAL, "%s.to: expected pending, firing, repeat, resolved or "
                          "cleared, got \"%s\"", where, s);
    }
    if ((rc = get_string(e, "state", true, where, &s, err)) < 0)
        return rc;
    if (te_alert_state_parse(s, &x->state) != 0)
        return te_err_set(err, TE_EINVAL, "%s.state: expected pending, firing, resolved or "
                          "inactive, got \"%s\"", where, s);
    if ((rc = get_string(e, "severity", false, where, &s, err)) < 0)
        return rc;
    if (s) {
        if (te_severity_parse(s, &x->sev) != 0)
            return te_err_set(err, TE_EINVAL, "%s.severity: expected info, warning or critical, "
                              "got \"%s\"", where, s);
        x->has_sev = true;
    }
    static const char *const nums[] = {"value", "tolerance"};
    for (size_t k = 0; k < 2; k++) {
        v = cJSON_GetObjectItemCaseSensitive(e, nums[k]);
        if (!v)
            continue;
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || (k == 1 && v->valuedouble < 0))
            return te_err_set(err, TE_EINVAL, "%s.%s: expected a%s number, got %s", where,
                              nums[k], k ? " non-negative" : "", type_name(v));
        if (k == 0) {
            x->has_value = true;
            x->value = v->valuedouble;
        } else {
            x->has_tol = true;
            x->tol = v->valuedouble;
        }
    }
    if (x->has_tol && !x->has_value)
        return te_err_set(err, TE_EINVAL, "%s: tolerance without value", where);
    if ((rc = get_string(e, "summary", false, where, &x->summary, err)) < 0)
        return rc;
    if ((x->has_sev || x->has_value || x->summary) &&
        (x->state == TE_ALERT_INACTIVE))
        return te_err_set(err, TE_EINVAL, "%s: severity, value and summary can only be checked "
                          "on a pending, firing or resolved alert", where);
    return 0;
}

static int read_expects(te_rules_test_t *t, const cJSON *list, bool transition, te_err_t *err)
{
    const char *key = transition ? "expect_transitions" : "expect";
    if (!list)
        return 0;
    if (!is_list(list))
        return te_err_set(err, TE_EINVAL, "%s: expected a list, got %s", key, type_name(list));
    size_t n = (size_t)cJSON_GetArraySize(list);
    te_rules_test_expect_t *x = realloc(t->expect, (t->nexpect + n + 1) * sizeof(*x));
    if (!x)
        return te_err_set(err, TE_ENOMEM, "out of memory");
    t->expect = x;
    size_t i = 1;
    for (const cJSON *e = list->child; e; e = e->next, i++) {
        int rc = read_expect(&t->expect[t->nexpect], e, i, transition, err);
        if (rc < 0)
            return rc;
        t->nexpect++;
    }
    return 0;
}

int te_rules_test_spec_test(const te_rules_test_file_t *f, size_t i, te_rules_test_t *t,
                            te_err_t *err)
{
    int rc;
    memset(t, 0, sizeof(*t));
    snprintf(t->label, sizeof(t->label), "tests[%zu]", i + 1);
    t->name = t->label;
    t->rule_files = f->rule_files;
    t->nrule_files = f->nrule_files;
    const cJSON *e = cJSON_GetArrayItem(f->tests, (int)i);
    if (!cJSON_IsObject(e))
        return te_err_set(err, TE_EINVAL, "%s: expected a table { name, events, expect }, got %s",
                          t->label, type_name(e));
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "name");
    if (cJSON_IsString(name) && name->valuestring[0])
        t->name = name->valuestring;
    else
        return te_err_set(err, TE_EINVAL, "name: expected a non-empty string, got %s",
                          type_name(name));
    if ((rc = check_keys(e, test_keys, t->label, err)) < 0)
        return rc;
    const cJSON *evs = cJSON_GetObjectItemCaseSensitive(e, "events");
    if (evs) {
        if (!is_list(evs))
            return te_err_set(err, TE_EINVAL, "events: expected a list, got %s", type_name(evs));
        t->items = calloc((size_t)cJSON_GetArraySize(evs) + 1, sizeof(*t->items));
        if (!t->items)
            return te_err_set(err, TE_ENOMEM, "out of memory");
        size_t k = 1;
        for (const cJSON *v = evs->child; v; v = v->next, k++)
            if ((rc = read_event(t, v, k, err)) < 0)
                return rc;
    }
    if ((rc = read_expects(t, cJSON_GetObjectItemCaseSensitive(e, "expect"), false, err)) < 0)
        return rc;
    rc = read_expects(t, cJSON_GetObjectItemCaseSensitive(e, "expect_transitions"), true, err);
    if (rc < 0)
        return rc;
    if (t->nexpect == 0)
        return te_err_set(err, TE_EINVAL, "a test needs at least one entry in expect or "
                          "expect_transitions");
    return 0;
}
