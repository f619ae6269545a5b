/*
 * render_csv.c - a report document as CSV sections (RFC 4180 each).
 *
 * THREAD: any. Pure.
 *
 * One file cannot hold several tables in strict CSV, so each data block
 * becomes a section: a line "# <title>" then a header line and the rows,
 * sections separated by one empty line. Stats form one section ("# stats":
 * label,value,unit,delta); tables keep their column keys as headers; a
 * chart becomes x plus one column per series. Values are raw (numbers as
 * JSON numbers, no $ or %) so that spreadsheets get numbers.
 */
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "report.h"

static const char *str(const cJSON *o, const char *key)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

static void cell_str(te_buf_t *b, const char *s)
{
    cJSON tmp;
    memset(&tmp, 0, sizeof(tmp));
    tmp.type = cJSON_String;
    tmp.valuestring = (char *)(s ? s : "");
    te_report_csv_value(b, &tmp);
}

static void section(te_buf_t *b, bool *first, const char *title, const char *dflt, int n)
{
    char t[32];
    if (!*first)
        te_buf_add(b, "\n", 1);
    *first = false;
    te_buf_adds(b, "# ");
    if (title && *title) {
        /* one line: newlines in a title would start a row */
        for (const char *p = title; *p; p++)
            te_buf_add(b, (*p == '\n' || *p == '\r') ? " " : p, 1);
    } else {
        snprintf(t, sizeof(t), "%s %d", dflt, n);
        te_buf_adds(b, t);
    }
    te_buf_add(b, "\n", 1);
}

static void table(const cJSON *blk, te_buf_t *b)
{
    cJSON *cols = te_report_table_columns(blk);
    if (!cols) {
        b->oom = true;
        return;
    }
    const cJSON *c, *row;
    bool comma = false;
    cJSON_ArrayForEach(c, cols) {
        if (comma)
            te_buf_add(b, ",", 1);
        comma = true;
        cell_str(b, str(c, "key"));
    }
    te_buf_add(b, "\n", 1);
    cJSON_ArrayForEach(row, cJSON_GetObjectItemCaseSensitive(blk, "rows")) {
        comma = false;
        cJSON_ArrayForEach(c, cols) {
            if (comma)
                te_buf_add(b, ",", 1);
            comma = true;
            te_report_csv_value(b, cJSON_GetObjectItemCaseSensitive(row, str(c, "key")));
        }
        te_buf_add(b, "\n", 1);
    }
    cJSON_Delete(cols);
}

static void chart(const cJSON *blk, te_buf_t *b)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(blk, "x");
    const cJSON *series = cJSON_GetObjectItemCaseSensitive(blk, "series"), *s;
    te_buf_adds(b, "x");
    cJSON_ArrayForEach(s, series) {
        te_buf_add(b, ",", 1);
        cell_str(b, str(s, "name"));
    }
    te_buf_add(b, "\n", 1);
    int n = cJSON_GetArraySize(x);
    for (int i = 0; i < n; i++) {
        te_report_csv_value(b, cJSON_GetArrayItem(x, i));
        cJSON_ArrayForEach(s, series) {
            te_buf_add(b, ",", 1);
            te_report_csv_value(b, cJSON_GetArrayItem(
                                       cJSON_GetObjectItemCaseSensitive(s, "values"), i));
        }
        te_buf_add(b, "\n", 1);
    }
}

void te_report_render_csv(const cJSON *doc, te_buf_t *b)
{
    const cJSON *blk;
    bool first = true, stats = false;
    int n = 0;
    const cJSON *blocks = cJSON_GetObjectItemCaseSensitive(doc, "blocks");
    cJSON_ArrayForEach(blk, blocks) {
        const char *type = str(blk, "type");
        if (!type || strcmp(type, "stat") != 0)
            continue;
        if (!stats) {
            section(b, &first, "stats", "stats", 0);
            te_buf_adds(b, "label,value,unit,delta\n");
            stats = true;
        }
        cell_str(b, str(blk, "label"));
        te_buf_add(b, ",", 1);
        te_report_csv_value(b, cJSON_GetObjectItemCaseSensitive(blk, "value"));
        te_buf_add(b, ",", 1);
        cell_str(b, str(blk, "unit"));
        te_buf_add(b, ",", 1);
        te_report_csv_value(b, cJSON_GetObjectItemCaseSensitive(blk, "delta"));
        te_buf_add(b, "\n", 1);
    }
    const char *heading = NULL;
    cJSON_ArrayForEach(blk, blocks) {
        const char *type = str(blk, "type");
        if (!type)
            continue;
        if (strcmp(type, "heading") == 0) {
            heading = str(blk, "text");
            continue;
        }
        bool is_table = strcmp(type, "table") == 0;
        if (!is_table && strcmp(type, "chart") != 0)
            continue;
        n++;
        const char *t = str(blk, "title");
        section(b, &first, t && *t ? t : heading, is_table ? "table" : "chart", n);
        if (is_table)
            table(blk, b);
        else
            chart(blk, b);
    }
    if (first)
        te_buf_adds(b, "# no tables\n");
}
