/*
 * render_md.c - a report document as Markdown (GitHub flavour: pipe
 * tables).
 *
 * THREAD: any. Pure.
 *
 * Markdown cannot hold a picture without an external file, so a chart
 * becomes the table of its numbers (x down, one column per series; a pie
 * gets a share column) under its title. Data strings are escaped so that
 * they cannot break a table ('|') or turn into HTML ('<', '>').
 */
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "report.h"

static const char *str(const cJSON *o, const char *key)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

/* Appends s with '<', '>' as entities, '|' escaped and newlines as spaces
 * (cell) or kept (block text). */
static void md_escape(te_buf_t *b, const char *s, bool cell)
{
    if (!s)
        return;
    const char *start = s;
    for (; *s; s++) {
        const char *rep;
        switch (*s) {
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '|': rep = cell ? "\\|" : "|"; break;
        case '\r': rep = cell ? "" : "\r"; break;
        case '\n': rep = cell ? " " : "\n"; break;
        default: continue;
        }
        te_buf_add(b, start, (size_t)(s - start));
        te_buf_adds(b, rep);
        start = s + 1;
    }
    te_buf_add(b, start, (size_t)(s - start));
}

static void md_value(te_buf_t *b, const cJSON *v, const char *fmt)
{
    te_buf_t t = {0};
    te_report_format_value(&t, v, fmt);
    if (t.oom)
        b->oom = true;
    md_escape(b, t.p, true);
    te_buf_free(&t);
}

static void heading(const cJSON *blk, te_buf_t *b)
{
    const cJSON *lv = cJSON_GetObjectItemCaseSensitive(blk, "level");
    int level = cJSON_IsNumber(lv) ? (int)lv->valuedouble : 2;
    if (level < 1)
        level = 1;
    if (level > 6)
        level = 6;
    te_buf_add(b, "######", (size_t)level);
    te_buf_add(b, " ", 1);
    md_escape(b, str(blk, "text"), true);
    te_buf_adds(b, "\n\n");
}

static void stat(const cJSON *blk, te_buf_t *b)
{
    const char *fmt = str(blk, "format");
    const char *unit = str(blk, "unit");
    const cJSON *delta = cJSON_GetObjectItemCaseSensitive(blk, "delta");
    te_buf_adds(b, "- **");
    md_escape(b, str(blk, "label"), true);
    te_buf_adds(b, "**: ");
    md_value(b, cJSON_GetObjectItemCaseSensitive(blk, "value"), fmt);
    if (unit && *unit) {
        te_buf_add(b, " ", 1);
        md_escape(b, unit, true);
    }
    if (cJSON_IsNumber(delta)) {
        char t[48];
        snprintf(t, sizeof(t), " (%s%.1f%% vs previous period)",
                 delta->valuedouble > 0 ? "+" : "", delta->valuedouble * 100.0);
        te_buf_adds(b, t);
    } else if (cJSON_IsString(delta)) {
        te_buf_adds(b, " (");
        md_escape(b, delta->valuestring, true);
        te_buf_adds(b, ")");
    }
    te_buf_add(b, "\n", 1);
}

static void table_head(te_buf_t *b, const cJSON *cols)
{
    const cJSON *c;
    te_buf_add(b, "|", 1);
    cJSON_ArrayForEach(c, cols) {
        te_buf_add(b, " ", 1);
        md_escape(b, str(c, "label"), true);
        te_buf_adds(b, " |");
    }
    te_buf_add(b, "\n|", 2);
    cJSON_ArrayForEach(c, cols) {
        const char *fmt = str(c, "format");
        bool right = fmt && strcmp(fmt, "text") != 0 && strcmp(fmt, "time") != 0;
        te_buf_adds(b, right ? " ---: |" : " --- |");
    }
    te_buf_add(b, "\n", 1);
}

static void title(const cJSON *blk, te_buf_t *b)
{
    const char *t = str(blk, "title");
    if (t && *t) {
        te_buf_adds(b, "**");
        md_escape(b, t, true);
        te_buf_adds(b, "**\n\n");
    }
}

static void table(const cJSON *blk, te_buf_t *b)
{
    cJSON *cols = te_report_table_columns(blk);
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(blk, "rows");
    if (!cols) {
        b->oom = true;
        return;
    }
    title(blk, b);
    if (cJSON_GetArraySize(cols) == 0 || cJSON_GetArraySize(rows) == 0) {
        te_buf_adds(b, "_No data._\n\n");
        cJSON_Delete(cols);
        return;
    }
    table_head(b, cols);
    const cJSON *row, *c;
    cJSON_ArrayForEach(row, rows) {
        te_buf_add(b, "|", 1);
        cJSON_ArrayForEach(c, cols) {
            te_buf_add(b, " ", 1);
            md_value(b, cJSON_GetObjectItemCaseSensitive(row, str(c, "key")), str(c, "format"));
            te_buf_adds(b, " |");
        }
        te_buf_add(b, "\n", 1);
    }
    te_buf_add(b, "\n", 1);
    cJSON_Delete(cols);
}

static void chart(const cJSON *blk, te_buf_t *b)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(blk, "x");
    const cJSON *series = cJSON_GetObjectItemCaseSensitive(blk, "series");
    const char *kind = str(blk, "chart");
    const char *fmt = str(blk, "format");
    bool pie = kind && strcmp(kind, "pie") == 0;
    int n = cJSON_GetArraySize(x), ns = cJSON_GetArraySize(series);
    const cJSON *s, *v;
    title(blk, b);
    if (n == 0 || ns == 0) {
        te_buf_adds(b, "_No data._\n\n");
        return;
    }
    te_buf_adds(b, "| |");
    cJSON_ArrayForEach(s, series) {
        te_buf_add(b, " ", 1);
        md_escape(b, str(s, "name"), true);
        te_buf_adds(b, " |");
    }
    if (pie)
        te_buf_adds(b, " share |");
    te_buf_adds(b, "\n| --- |");
    for (int i = 0; i < ns + (pie ? 1 : 0); i++)
        te_buf_adds(b, " ---: |");
    te_buf_add(b, "\n", 1);
    double total = 0;
    if (pie) {
        cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(series, 0),
                                                               "values"))
            if (cJSON_IsNumber(v) && v->valuedouble > 0)
                total += v->valuedouble;
    }
    for (int i = 0; i < n; i++) {
        te_buf_adds(b, "| ");
        md_value(b, cJSON_GetArrayItem(x, i), NULL);
        te_buf_adds(b, " |");
        cJSON_ArrayForEach(s, series) {
            te_buf_add(b, " ", 1);
            md_value(b, cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(s, "values"), i),
                     fmt);
            te_buf_adds(b, " |");
        }
        if (pie) {
            v = cJSON_GetArrayItem(
                cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(series, 0), "values"), i);
            te_buf_add(b, " ", 1);
            if (cJSON_IsNumber(v) && v->valuedouble > 0 && total > 0)
                te_report_format_number(b, v->valuedouble / total, "pct");
            else
                te_buf_adds(b, "\xe2\x80\x94");
            te_buf_adds(b, " |");
        }
        te_buf_add(b, "\n", 1);
    }
    te_buf_add(b, "\n", 1);
}

static void list(const cJSON *blk, te_buf_t *b)
{
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(blk, "items"), *it;
    if (cJSON_GetArraySize(items) == 0) {
        te_buf_adds(b, "_None._\n\n");
        return;
    }
    cJSON_ArrayForEach(it, items) {
        te_buf_adds(b, "- ");
        md_value(b, it, NULL);
        te_buf_add(b, "\n", 1);
    }
    te_buf_add(b, "\n", 1);
}

static void alert_list(const cJSON *blk, te_buf_t *b)
{
    const cJSON *alerts = cJSON_GetObjectItemCaseSensitive(blk, "alerts"), *a;
    if (cJSON_GetArraySize(alerts) == 0) {
        te_buf_adds(b, "_No alerts._\n\n");
        return;
    }
    cJSON_ArrayForEach(a, alerts) {
        const char *sum = str(a, "summary");
        te_buf_adds(b, "- **");
        md_escape(b, str(a, "severity") ? str(a, "severity") : "alert", true);
        te_buf_adds(b, "** ");
        md_escape(b, str(a, "rule"), true);
        te_buf_adds(b, " \xe2\x80\x94 ");
        md_escape(b, str(a, "state"), true);
        if (sum && *sum) {
            te_buf_adds(b, ": ");
            md_escape(b, sum, true);
        }
        if (str(a, "starts_at")) {
            te_buf_adds(b, " (since ");
            md_escape(b, str(a, "starts_at"), true);
            if (str(a, "ends_at")) {
                te_buf_adds(b, ", resolved ");
                md_escape(b, str(a, "ends_at"), true);
            }
            te_buf_adds(b, ")");
        }
        te_buf_add(b, "\n", 1);
    }
    te_buf_add(b, "\n", 1);
}

void te_report_render_md(const cJSON *doc, te_buf_t *b)
{
    const char *t = str(doc, "title");
    te_buf_adds(b, "# ");
    md_escape(b, t ? t : str(doc, "name"), true);
    te_buf_adds(b, "\n\n");
    if (str(doc, "since") && str(doc, "until")) {
        te_buf_adds(b, "_");
        md_escape(b, str(doc, "since"), true);
        te_buf_adds(b, " \xe2\x80\x93 ");
        md_escape(b, str(doc, "until"), true);
        if (str(doc, "generated_at")) {
            te_buf_adds(b, " \xc2\xb7 generated ");
            md_escape(b, str(doc, "generated_at"), true);
        }
        te_buf_adds(b, "_\n\n");
    }
    const cJSON *blk;
    bool in_stats = false;
    cJSON_ArrayForEach(blk, cJSON_GetObjectItemCaseSensitive(doc, "blocks")) {
        const char *type = str(blk, "type");
        if (!type)
            continue;
        bool is_stat = strcmp(type, "stat") == 0;
        if (in_stats && !is_stat)
            te_buf_add(b, "\n", 1);
        in_stats = is_stat;
        if (strcmp(type, "heading") == 0)
            heading(blk, b);
        else if (strcmp(type, "text") == 0) {
            md_escape(b, str(blk, "text"), false);
            te_buf_adds(b, "\n\n");
        } else if (is_stat)
            stat(blk, b);
        else if (strcmp(type, "table") == 0)
            table(blk, b);
        else if (strcmp(type, "chart") == 0)
            chart(blk, b);
        else if (strcmp(type, "list") == 0)
            list(blk, b);
        else if (strcmp(type, "alert_list") == 0)
            alert_list(blk, b);
    }
    if (in_stats)
        te_buf_add(b, "\n", 1);
}
