/*
 * render_html.c - a report document as ONE self-contained HTML file.
 *
 * THREAD: any. Pure.
 *
 * No external assets: the CSS is inline, charts are inline SVG
 * (render_svg.c), there is no script at all. Light and dark come from
 * prefers-color-scheme through CSS variables, which the SVG's classes use
 * too; @media print switches to black on white, drops the page width cap
 * and keeps cards, tables and charts from splitting across pages. Every
 * string from the document is HTML-escaped, so a hostile tag value such
 * as "<script>" is shown, never run.
 */
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "report.h"

static const char CSS[] =
    ":root{--bg:#ffffff;--fg:#1d2330;--muted:#5b6472;--grid:#e3e6eb;--card:#f5f6f8;"
    "--border:#dde1e6;--accent:#4e79a7;--up:#2e7d32;--down:#c62828;--crit:#c62828;"
    "--warn:#b26a00;--info:#1f6fb2;color-scheme:light dark}\n"
    "@media (prefers-color-scheme:dark){:root{--bg:#14171c;--fg:#e6e9ef;--muted:#9aa3b2;"
    "--grid:#2b313a;--card:#1c2027;--border:#2f353f;--accent:#7aa7d6;--up:#81c784;"
    "--down:#ef9a9a;--crit:#ef7373;--warn:#f0b35a;--info:#7ab6f0}}\n"
    "*{box-sizing:border-box}\n"
    "body{margin:0;background:var(--bg);color:var(--fg);"
    "font:15px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif}\n"
    "main{max-width:980px;margin:0 auto;padding:28px 24px 48px}\n"
    "h1{font-size:1.7em;margin:0 0 4px}h2{font-size:1.3em;margin:1.6em 0 .5em;"
    "border-bottom:1px solid var(--border);padding-bottom:4px}\n"
    "h3{font-size:1.1em;margin:1.2em 0 .4em}\n"
    ".meta{color:var(--muted);margin:0 0 16px;font-size:.9em}\n"
    ".stats{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:12px;"
    "margin:12px 0}\n"
    ".stat{background:var(--card);border:1px solid var(--border);border-radius:8px;"
    "padding:10px 14px}\n"
    ".stat .label{color:var(--muted);font-size:.85em}.stat .value{font-size:1.5em;"
    "font-weight:600;font-variant-numeric:tabular-nums}.stat .unit{color:var(--muted);"
    "font-size:.8em;margin-left:4px}\n"
    ".delta{font-size:.85em}.delta.up{color:var(--up)}.delta.down{color:var(--down)}\n"
    "table{border-collapse:collapse;width:100%;margin:8px 0 16px;font-size:.92em}\n"
    "th,td{padding:6px 10px;border-bottom:1px solid var(--border);text-align:left;"
    "vertical-align:top}\n"
    "th{color:var(--muted);font-weight:600}td.num,th.num{text-align:right;"
    "font-variant-numeric:tabular-nums}\n"
    "caption,figcaption{text-align:left;font-weight:600;margin:0 0 6px}\n"
    "figure{margin:12px 0 20px}svg{display:block;max-width:100%;height:auto}\n"
    "svg .tx{fill:var(--muted)}svg .grid{stroke:var(--grid)}svg .axis{stroke:var(--muted)}\n"
    ".empty{color:var(--muted);font-style:italic}\n"
    "ul.alerts{list-style:none;padding:0}ul.alerts li{border-left:4px solid var(--info);"
    "background:var(--card);margin:6px 0;padding:6px 10px;border-radius:0 6px 6px 0}\n"
    "ul.alerts li.critical{border-color:var(--crit)}\n"
    "ul.alerts li.warning{border-color:var(--warn)}\n"
    "svg .slice{stroke:var(--bg)}\n"
    ".sev{font-weight:600;text-transform:uppercase;font-size:.8em;margin-right:6px}\n"
    ".when{color:var(--muted);font-size:.85em}\n"
    "footer{color:var(--muted);font-size:.8em;margin-top:32px}\n"
    "@media print{:root{--bg:#fff;--fg:#000;--muted:#444;--grid:#ccc;--card:#fff;"
    "--border:#bbb}body{font-size:10.5pt}main{max-width:none;padding:0}"
    ".stat,figure,table,ul.alerts li{break-inside:avoid}h2,h3{break-after:avoid}}\n";

static const char *str(const cJSON *o, const char *key)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

#define esc te_report_html_escape

static void value(te_buf_t *b, const cJSON *v, const char *fmt)
{
    te_buf_t t = {0};
    te_report_format_value(&t, v, fmt);
    if (t.oom)
        b->oom = true;
    esc(b, t.p);
    te_buf_free(&t);
}

static bool numeric_format(const char *fmt)
{
    return !fmt || (strcmp(fmt, "text") != 0 && strcmp(fmt, "time") != 0);
}

static void stat(const cJSON *blk, te_buf_t *b)
{
    const char *unit = str(blk, "unit");
    const cJSON *delta = cJSON_GetObjectItemCaseSensitive(blk, "delta");
    te_buf_adds(b, "<div class=\"stat\"><div class=\"label\">");
    esc(b, str(blk, "label"));
    te_buf_adds(b, "</div><div class=\"value\">");
    value(b, cJSON_GetObjectItemCaseSensitive(blk, "value"), str(blk, "format"));
    if (unit && *unit) {
        te_buf_adds(b, "<span class=\"unit\">");
        esc(b, unit);
        te_buf_adds(b, "</span>");
    }
    te_buf_adds(b, "</div>");
    if (cJSON_IsNumber(delta)) {
        double d = delta->valuedouble;
        char t[64];
        snprintf(t, sizeof(t), "<div class=\"delta %s\">%s %s%.1f%% vs previous</div>",
                 d > 0 ? "up" : d < 0 ? "down" : "flat",
                 d > 0 ? "\xe2\x96\xb2" : d < 0 ? "\xe2\x96\xbc" : "\xe2\x80\x94",
                 d > 0 ? "+" : "", d * 100.0);
        te_buf_adds(b, t);
    } else if (cJSON_IsString(delta)) {
        te_buf_adds(b, "<div class=\"delta\">");
        esc(b, delta->valuestring);
        te_buf_adds(b, "</div>");
    }
    te_buf_adds(b, "</div>\n");
}

static void table(const cJSON *blk, te_buf_t *b)
{
    cJSON *cols = te_report_table_columns(blk);
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(blk, "rows"), *row, *c;
    const char *title = str(blk, "title");
    if (!cols) {
        b->oom = true;
        return;
    }
    if (cJSON_GetArraySize(cols) == 0 || cJSON_GetArraySize(rows) == 0) {
        if (title && *title) {
            te_buf_adds(b, "<h3>");
            esc(b, title);
            te_buf_adds(b, "</h3>");
        }
        te_buf_adds(b, "<p class=\"empty\">No data.</p>\n");
        cJSON_Delete(cols);
        return;
    }
    te_buf_adds(b, "<table>");
    if (title && *title) {
        te_buf_adds(b, "<caption>");
        esc(b, title);
        te_buf_adds(b, "</caption>");
    }
    te_buf_adds(b, "<thead><tr>");
    cJSON_ArrayForEach(c, cols) {
        te_buf_adds(b, numeric_format(str(c, "format")) && str(c, "format") ? "<th class=\"num\">"
                                                                              : "<th>");
        esc(b, str(c, "label"));
        te_buf_adds(b, "</th>");
    }
    te_buf_adds(b, "</tr></thead>\n<tbody>\n");
    cJSON_ArrayForEach(row, rows) {
        te_buf_adds(b, "<tr>");
        cJSON_ArrayForEach(c, cols) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, str(c, "key"));
            bool num = cJSON_IsNumber(v) && numeric_format(str(c, "format"));
            te_buf_adds(b, num ? "<td class=\"num\">" : "<td>");
            value(b, v, str(c, "format"));
            te_buf_adds(b, "</td>");
        }
        te_buf_adds(b, "</tr>\n");
    }
    te_buf_adds(b, "</tbody></table>\n");
    cJSON_Delete(cols);
}

static void chart(const cJSON *blk, te_buf_t *b)
{
    const char *title = str(blk, "title");
    te_buf_adds(b, "<figure class=\"chart\">");
    if (title && *title) {
        te_buf_adds(b, "<figcaption>");
        esc(b, title);
        te_buf_adds(b, "</figcaption>");
    }
    te_report_svg_chart(blk, b);
    te_buf_adds(b, "</figure>\n");
}

static void list(const cJSON *blk, te_buf_t *b)
{
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(blk, "items"), *it;
    if (cJSON_GetArraySize(items) == 0) {
        te_buf_adds(b, "<p class=\"empty\">None.</p>\n");
        return;
    }
    te_buf_adds(b, "<ul>\n");
    cJSON_ArrayForEach(it, items) {
        te_buf_adds(b, "<li>");
        value(b, it, NULL);
        te_buf_adds(b, "</li>\n");
    }
    te_buf_adds(b, "</ul>\n");
}

static void alert_list(const cJSON *blk, te_buf_t *b)
{
    const cJSON *alerts = cJSON_GetObjectItemCaseSensitive(blk, "alerts"), *a;
    if (cJSON_GetArraySize(alerts) == 0) {
        te_buf_adds(b, "<p class=\"empty\">No alerts.</p>\n");
        return;
    }
    te_buf_adds(b, "<ul class=\"alerts\">\n");
    cJSON_ArrayForEach(a, alerts) {
        const char *sev = str(a, "severity");
        const char *sum = str(a, "summary");
        bool known = sev && (strcmp(sev, "critical") == 0 || strcmp(sev, "warning") == 0 ||
                             strcmp(sev, "info") == 0);
        te_buf_addf(b, "<li class=\"%s\"><span class=\"sev\">", known ? sev : "info");
        esc(b, sev ? sev : "alert");
        te_buf_adds(b, "</span><strong>");
        esc(b, str(a, "rule"));
        te_buf_adds(b, "</strong> \xe2\x80\x94 ");
        esc(b, str(a, "state"));
        if (sum && *sum) {
            te_buf_adds(b, ": ");
            esc(b, sum);
        }
        if (str(a, "starts_at")) {
            te_buf_adds(b, " <span class=\"when\">since ");
            esc(b, str(a, "starts_at"));
            if (str(a, "ends_at")) {
                te_buf_adds(b, ", resolved ");
                esc(b, str(a, "ends_at"));
            }
            te_buf_adds(b, "</span>");
        }
        te_buf_adds(b, "</li>\n");
    }
    te_buf_adds(b, "</ul>\n");
}

void te_report_render_html(const cJSON *doc, te_buf_t *b)
{
    const char *title = str(doc, "title");
    if (!title)
        title = str(doc, "name");
    te_buf_adds(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                   "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                   "<meta name=\"generator\" content=\"telemetry-engine\">\n<title>");
    esc(b, title);
    te_buf_adds(b, "</title>\n<style>\n");
    te_buf_adds(b, CSS);
    te_buf_adds(b, "</style>\n</head>\n<body>\n<main>\n<header><h1>");
    esc(b, title);
    te_buf_adds(b, "</h1>");
    if (str(doc, "since") && str(doc, "until")) {
        te_buf_adds(b, "<p class=\"meta\">");
        esc(b, str(doc, "since"));
        te_buf_adds(b, " \xe2\x80\x93 ");
        esc(b, str(doc, "until"));
        if (str(doc, "generated_at")) {
            te_buf_adds(b, " \xc2\xb7 generated ");
            esc(b, str(doc, "generated_at"));
        }
        te_buf_adds(b, "</p>");
    }
    te_buf_adds(b, "</header>\n");
    const cJSON *blk;
    bool in_stats = false;
    cJSON_ArrayForEach(blk, cJSON_GetObjectItemCaseSensitive(doc, "blocks")) {
        const char *type = str(blk, "type");
        if (!type)
            continue;
        bool is_stat = strcmp(type, "stat") == 0;
        if (is_stat && !in_stats)
            te_buf_adds(b, "<section class=\"stats\">\n");
        if (!is_stat && in_stats)
            te_buf_adds(b, "</section>\n");
        in_stats = is_stat;
        if (strcmp(type, "heading") == 0) {
            const cJSON *lv = cJSON_GetObjectItemCaseSensitive(blk, "level");
            int level = cJSON_IsNumber(lv) ? (int)lv->valuedouble : 2;
            level = level < 1 ? 1 : level > 6 ? 6 : level;
            te_buf_addf(b, "<h%d>", level);
            esc(b, str(blk, "text"));
            te_buf_addf(b, "</h%d>\n", level);
        } else if (strcmp(type, "text") == 0) {
            te_buf_adds(b, "<p>");
            esc(b, str(blk, "text"));
            te_buf_adds(b, "</p>\n");
        } else if (is_stat) {
            stat(blk, b);
        } else if (strcmp(type, "table") == 0) {
            table(blk, b);
        } else if (strcmp(type, "chart") == 0) {
            chart(blk, b);
        } else if (strcmp(type, "list") == 0) {
            list(blk, b);
        } else if (strcmp(type, "alert_list") == 0) {
            alert_list(blk, b);
        }
    }
    if (in_stats)
        te_buf_adds(b, "</section>\n");
    te_buf_adds(b, "<footer>telemetry-engine report");
    if (str(doc, "name")) {
        te_buf_adds(b, " \xe2\x80\x9c");
        esc(b, str(doc, "name"));
        te_buf_adds(b, "\xe2\x80\x9d");
    }
    te_buf_adds(b, "</footer>\n</main>\n</body>\n</html>\n");
}
