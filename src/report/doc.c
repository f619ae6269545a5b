/*
 * doc.c - what every report renderer shares: formats, value formatting for
 * people (thousands separators, $, %, durations), escaping, table columns,
 * and te_report_render's dispatch.
 *
 * THREAD: any. Pure.
 *
 * Formatting is deliberately locale-free (snprintf "%.*f" with the C
 * locale the engine never changes), so that golden files are stable.
 */
#include "report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/json.h"
#include "core/time.h"

int te_report_format_parse(const char *s, te_report_format_t *out, te_err_t *err)
{
    if (s && (strcmp(s, "md") == 0 || strcmp(s, "markdown") == 0))
        *out = TE_REPORT_MD;
    else if (s && strcmp(s, "html") == 0)
        *out = TE_REPORT_HTML;
    else if (s && strcmp(s, "json") == 0)
        *out = TE_REPORT_JSON;
    else if (s && strcmp(s, "csv") == 0)
        *out = TE_REPORT_CSV;
    else
        return te_err_set(err, TE_EINVAL, "bad format \"%s\" (use md, html, json or csv)",
                          s ? s : "");
    return 0;
}

const char *te_report_format_name(te_report_format_t f)
{
    static const char *const names[] = {"md", "html", "json", "csv"};
    return (unsigned)f < 4 ? names[f] : "md";
}

const char *te_report_content_type(te_report_format_t f)
{
    switch (f) {
    case TE_REPORT_HTML: return "text/html; charset=utf-8";
    case TE_REPORT_JSON: return "application/json";
    case TE_REPORT_CSV: return "text/csv; charset=utf-8";
    default: return "text/markdown; charset=utf-8";
    }
}

int te_report_render(const cJSON *doc, te_report_format_t f, char **out, size_t *len,
                     te_err_t *err)
{
    te_buf_t b = {0};
    switch (f) {
    case TE_REPORT_HTML: te_report_render_html(doc, &b); break;
    case TE_REPORT_JSON: te_report_render_json(doc, &b); break;
    case TE_REPORT_CSV: te_report_render_csv(doc, &b); break;
    default: te_report_render_md(doc, &b); break;
    }
    if (!b.oom && !b.p)
        te_buf_add(&b, "", 0);
    if (b.oom || !b.p) {
        te_buf_free(&b);
        return te_err_set(err, TE_ENOMEM, "report: out of memory while rendering");
    }
    *out = b.p;
    *len = b.len;
    return 0;
}

void te_report_html_escape(te_buf_t *b, const char *s)
{
    if (!s)
        return;
    const char *start = s;
    for (; *s; s++) {
        const char *rep;
        switch (*s) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default: continue;
        }
        te_buf_add(b, start, (size_t)(s - start));
        te_buf_adds(b, rep);
        start = s + 1;
    }
    te_buf_add(b, start, (size_t)(s - start));
}

void te_report_utf8_trunc(te_buf_t *b, const char *s, size_t max_chars)
{
    if (!s)
        return;
    size_t chars = 0, i = 0, n = strlen(s);
    while (i < n && chars < max_chars) {
        size_t l = te_utf8_seq_len((const unsigned char *)s + i, n - i);
        i += l ? l : 1;
        chars++;
    }
    if (i >= n) {
        te_buf_add(b, s, n);
        return;
    }
    /* cut one character earlier so that the ellipsis fits the budget */
    size_t j = 0, k = 0;
    while (k + 1 < max_chars && j < n) {
        size_t l = te_utf8_seq_len((const unsigned char *)s + j, n - j);
        j += l ? l : 1;
        k++;
    }
    te_buf_add(b, s, j);
    te_buf_adds(b, "\xe2\x80\xa6");
}

/* "12,345,678" from an integer-valued double (sign kept). */
static void add_grouped(te_buf_t *b, double v, int decimals)
{
    char num[64];
    if (fabs(v) >= 1e18) {
        snprintf(num, sizeof(num), "%.3g", v);
        te_buf_adds(b, num);
        return;
    }
    snprintf(num, sizeof(num), "%.*f", decimals, fabs(v));
    if (v < 0 && strspn(num, "0.") != strlen(num))
        te_buf_add(b, "-", 1);
    const char *dot = strchr(num, '.');
    size_t ilen = dot ? (size_t)(dot - num) : strlen(num);
    for (size_t i = 0; i < ilen; i++) {
        if (i > 0 && (ilen - i) % 3 == 0)
            te_buf_add(b, ",", 1);
        te_buf_add(b, num + i, 1);
    }
    if (dot)
        te_buf_adds(b, dot);
}

static void add_duration_s(te_buf_t *b, double s)
{
    char t[64];
    double a = fabs(s);
    const char *sign = s < 0 ? "-" : "";
    if (a == 0.0)
        snprintf(t, sizeof(t), "0 s");
    else if (a < 1.0)
        snprintf(t, sizeof(t), "%s%.0f ms", sign, a * 1000.0);
    else if (a < 60.0)
        snprintf(t, sizeof(t), "%s%.1f s", sign, a);
    else if (a < 3600.0)
        snprintf(t, sizeof(t), "%s%dm %02ds", sign, (int)(a / 60.0), (int)fmod(a, 60.0));
    else if (a < 86400.0)
        snprintf(t, sizeof(t), "%s%dh %02dm", sign, (int)(a / 3600.0),
                 (int)fmod(a / 60.0, 60.0));
    else
        snprintf(t, sizeof(t), "%s%dd %02dh", sign, (int)(a / 86400.0),
                 (int)fmod(a / 3600.0, 24.0));
    te_buf_adds(b, t);
}

void te_report_format_number(te_buf_t *b, double v, const char *fmt)
{
    char t[64];
    if (!isfinite(v)) {
        te_buf_adds(b, "\xe2\x80\x94");
        return;
    }
    if (!fmt || !*fmt || strcmp(fmt, "number") == 0 || strcmp(fmt, "text") == 0) {
        double a = fabs(v);
        if (v == floor(v) && a < 1e15)
            add_grouped(b, v, 0);
        else if (a >= 100)
            add_grouped(b, v, 1);
        else if (a >= 1)
            add_grouped(b, v, 2);
        else {
            snprintf(t, sizeof(t), "%.3g", v);
            te_buf_adds(b, t);
        }
    } else if (strcmp(fmt, "int") == 0) {
        add_grouped(b, round(v), 0);
    } else if (strcmp(fmt, "usd") == 0) {
        if (v < 0)
            te_buf_add(b, "-", 1);
        te_buf_add(b, "$", 1);
        add_grouped(b, fabs(v), fabs(v) >= 1 || v == 0 ? 2 : 4);
    } else if (strcmp(fmt, "pct") == 0) {
        snprintf(t, sizeof(t), "%.1f%%", v * 100.0);
        te_buf_adds(b, t);
    } else if (strcmp(fmt, "ms") == 0) {
        if (fabs(v) >= 1000.0)
            snprintf(t, sizeof(t), "%.2f s", v / 1000.0);
        else
            snprintf(t, sizeof(t), "%.1f ms", v);
        te_buf_adds(b, t);
    } else if (strcmp(fmt, "s") == 0 || strcmp(fmt, "duration") == 0) {
        add_duration_s(b, v);
    } else if (strcmp(fmt, "bytes") == 0) {
        static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
        int u = 0;
        double a = v;
        while (fabs(a) >= 1024.0 && u < 4) {
            a /= 1024.0;
            u++;
        }
        snprintf(t, sizeof(t), u ? "%.1f %s" : "%.0f %s", a, units[u]);
        te_buf_adds(b, t);
    } else if (strcmp(fmt, "time") == 0) {
        size_t n = te_time_format_rfc3339((int64_t)llround(v * 1e9), t, sizeof(t));
        te_buf_add(b, t, n);
    } else {
        add_grouped(b, v, v == floor(v) ? 0 : 2);
    }
}

void te_report_format_value(te_buf_t *b, const cJSON *v, const char *fmt)
{
    if (!v || cJSON_IsNull(v) || cJSON_IsInvalid(v))
        te_buf_adds(b, "\xe2\x80\x94"); /* em dash */
    else if (cJSON_IsNumber(v))
        te_report_format_number(b, v->valuedouble, fmt);
    else if (cJSON_IsString(v))
        te_buf_adds(b, v->valuestring);
    else if (cJSON_IsBool(v))
        te_buf_adds(b, cJSON_IsTrue(v) ? "yes" : "no");
    else
        te_buf_adds(b, "\xe2\x80\xa6");
}

void te_report_csv_value(te_buf_t *b, const cJSON *v)
{
    if (!v || cJSON_IsNull(v))
        return;
    if (cJSON_IsNumber(v)) {
        char num[TE_JSON_NUM_MAX];
        if (isfinite(v->valuedouble))
            te_buf_add(b, num, te_json_number(v->valuedouble, num));
        return;
    }
    if (cJSON_IsBool(v)) {
        te_buf_adds(b, cJSON_IsTrue(v) ? "true" : "false");
        return;
    }
    const char *s = cJSON_IsString(v) ? v->valuestring : "";
    if (!strpbrk(s, ",\"\r\n")) {
        te_buf_adds(b, s);
        return;
    }
    te_buf_add(b, "\"", 1);
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            te_buf_add(b, "\"", 1);
        te_buf_add(b, p, 1);
    }
    te_buf_add(b, "\"", 1);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

cJSON *te_report_table_columns(const cJSON *table)
{
    cJSON *out = cJSON_CreateArray();
    if (!out)
        return NULL;
    const cJSON *cols = cJSON_GetObjectItemCaseSensitive(table, "columns");
    const cJSON *c;
    if (cJSON_IsArray(cols) && cJSON_GetArraySize(cols) > 0) {
        cJSON_ArrayForEach(c, cols) {
            const char *key = NULL, *label = NULL, *fmt = NULL;
            if (cJSON_IsString(c)) {
                key = label = c->valuestring;
            } else if (cJSON_IsObject(c)) {
                key = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "key"));
                label = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "label"));
                fmt = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "format"));
            }
            if (!key)
                continue;
            cJSON *o = cJSON_CreateObject();
            if (!o || !cJSON_AddItemToArray(out, o) || !cJSON_AddStringToObject(o, "key", key) ||
                !cJSON_AddStringToObject(o, "label", label ? label : key) ||
                (fmt && !cJSON_AddStringToObject(o, "format", fmt))) {
                cJSON_Delete(out);
                return NULL;
            }
        }
        return out;
    }
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(table, "rows");
    const cJSON *first = cJSON_IsArray(rows) ? cJSON_GetArrayItem(rows, 0) : NULL;
    int n = cJSON_IsObject(first) ? cJSON_GetArraySize(first) : 0;
    if (n == 0)
        return out;
    const char **keys = calloc((size_t)n, sizeof(*keys));
    if (!keys) {
        cJSON_Delete(out);
        return NULL;
    }
    int k = 0;
    cJSON_ArrayForEach(c, first) {
        if (c->string && k < n)
            keys[k++] = c->string;
    }
    qsort(keys, (size_t)k, sizeof(*keys), cmp_str);
    for (int i = 0; i < k; i++) {
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(out, o) || !cJSON_AddStringToObject(o, "key", keys[i]) ||
            !cJSON_AddStringToObject(o, "label", keys[i])) {
            free(keys);
            cJSON_Delete(out);
            return NULL;
        }
    }
    free(keys);
    return out;
}

void te_report_render_json(const cJSON *doc, te_buf_t *b)
{
    char *s = cJSON_Print(doc);
    if (!s) {
        b->oom = true;
        return;
    }
    te_buf_adds(b, s);
    te_buf_add(b, "\n", 1);
    free(s);
}
