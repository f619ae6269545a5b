/*
 * template.c - notifier body templates (see template.h).
 *
 * THREAD: any.
 */
#include "alerts/template.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/buf.h"
#include "core/time.h"

static bool is(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && memcmp(s, word, n) == 0;
}

static void trim(const char **s, size_t *n)
{
    while (*n && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*n)--;
    }
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
}

static bool known_filter(const char *f, size_t n)
{
    return n == 0 || is(f, n, "json") || is(f, n, "pct") || is(f, n, "round") ||
           is(f, n, "upper");
}

/* The raw text of name into tmp (or a pointer to the alert's own). */
static const char *lookup(const char *name, size_t n, const char *filt, size_t fn,
                          const te_alert_t *a, const char *status, const char *payload,
                          size_t count, char *tmp, size_t cap)
{
    tmp[0] = '\0';
    if (is(name, n, "status"))
        return status;
    if (is(name, n, "id"))
        return a->id;
    if (is(name, n, "rule"))
        return a->rule ? a->rule : "";
    if (is(name, n, "severity"))
        return te_severity_name(a->severity);
    if (is(name, n, "fingerprint"))
        return a->fingerprint;
    if (is(name, n, "summary"))
        return a->summary ? a->summary : "";
    if (is(name, n, "payload"))
        return payload;
    if (is(name, n, "count")) {
        snprintf(tmp, cap, "%zu", count);
        return tmp;
    }
    if (is(name, n, "starts_at") || is(name, n, "ends_at")) {
        int64_t ns = is(name, n, "starts_at") ? a->starts_at_ns : a->ends_at_ns;
        if (ns)
            te_time_format_rfc3339(ns, tmp, cap);
        return tmp;
    }
    if (is(name, n, "value")) {
        if (!a->has_value)
            return tmp;
        if (is(filt, fn, "pct"))
            snprintf(tmp, cap, "%.1f%%", a->value * 100.0);
        else if (is(filt, fn, "round"))
            snprintf(tmp, cap, "%.0f", round(a->value));
        else
            snprintf(tmp, cap, "%g", a->value);
        return tmp;
    }
    if (n > 7 && memcmp(name, "labels.", 7) == 0) {
        for (size_t i = 0; i < a->nlabels; i++)
            if (is(name + 7, n - 7, a->label_keys[i]))
                return a->label_values[i];
        return tmp;
    }
    if (n > 6 && memcmp(name, "group.", 6) == 0) {
        name += 6;
        n -= 6;
    }
    for (size_t i = 0; i < a->ngroup; i++)
        if (is(name, n, a->group_keys[i]))
            return a->group_values[i];
    return tmp;
}

static int render(te_buf_t *b, const char *tmpl, const te_alert_t *a, const char *status,
                  const char *payload, size_t count, te_err_t *err)
{
    const char *p = tmpl;
    while (*p) {
        const char *open = strstr(p, "{{");
        if (!open) {
            te_buf_adds(b, p);
            return 0;
        }
        te_buf_add(b, p, (size_t)(open - p));
        const char *close = strstr(open + 2, "}}");
        if (!close)
            return te_err_set(err, TE_EINVAL, "template: unclosed \"{{\" at offset %zu",
                              (size_t)(open - tmpl));
        const char *name = open + 2;
        size_t inner = (size_t)(close - name);
        const char *bar = memchr(name, '|', inner);
        size_t n = bar ? (size_t)(bar - name) : inner;
        const char *filt = bar ? bar + 1 : close;
        size_t fn = bar ? (size_t)(close - filt) : 0;
        trim(&name, &n);
        trim(&filt, &fn);
        if (!known_filter(filt, fn))
            return te_err_set(err, TE_EINVAL, "template: unknown filter \"%.*s\" (json, pct, "
                              "round or upper)", (int)fn, filt);
        if (a) {
            char tmp[64];
            const char *v = lookup(name, n, filt, fn, a, status, payload, count, tmp,
                                   sizeof(tmp));
            if (is(filt, fn, "json")) {
                if (!v[0]) {
                    te_buf_adds(b, "null");
                } else {
                    cJSON *s = cJSON_CreateString(v);
                    char *q = s ? cJSON_PrintUnformatted(s) : NULL;
                    cJSON_Delete(s);
                    if (!q)
                        return te_err_set(err, TE_ENOMEM, "template: out of memory");
                    te_buf_adds(b, q);
                    free(q);
                }
            } else if (is(filt, fn, "upper")) {
                for (const char *c = v; *c; c++) {
                    char u = *c >= 'a' && *c <= 'z' ? (char)(*c - 32) : *c;
                    te_buf_add(b, &u, 1);
                }
            } else {
                te_buf_adds(b, v);
            }
        }
        p = close + 2;
    }
    return 0;
}

int te_template_check(const char *tmpl, te_err_t *err)
{
    te_buf_t b = {0};
    int rc = render(&b, tmpl ? tmpl : "", NULL, "", "", 0, err);
    te_buf_free(&b);
    return rc;
}

char *te_template_render(const char *tmpl, const te_alert_t *a, const char *status,
                         const char *payload, size_t count, te_err_t *err)
{
    char *own = NULL;
    if (!payload && !(payload = own = te_alert_to_json(a, status))) {
        te_err_set(err, TE_ENOMEM, "template: out of memory");
        return NULL;
    }
    te_buf_t b = {0};
    te_buf_add(&b, "", 0);
    int rc = render(&b, tmpl ? tmpl : "", a, status, payload, count, err);
    free(own);
    if (rc == 0 && b.oom)
        rc = te_err_set(err, TE_ENOMEM, "template: out of memory");
    if (rc) {
        te_buf_free(&b);
        return NULL;
    }
    return b.p;
}
