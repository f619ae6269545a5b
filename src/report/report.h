/*
 * report.h - report documents and their renderers (SPEC 6.5): Markdown,
 * HTML (one self-contained file, inline CSS and SVG), JSON and CSV.
 *
 * THREAD: any. Pure functions over a cJSON tree; no Lua, no SQLite.
 *
 * The document is a cJSON object built by the Lua builder `r`
 * (script/bind_report.c) or by hand (tests):
 *   {"name":"overview","title":"LLM usage","generated_at":RFC3339,
 *    "since":RFC3339,"until":RFC3339,"params":{...},
 *    "blocks":[
 *      {"type":"heading","text":"Cost","level":2},
 *      {"type":"text","text":"..."},
 *      {"type":"stat","label":"Total cost","value":12.5,"unit":"USD",
 *       "delta":0.12,"format":"usd"},             delta: fraction vs before
 *      {"type":"table","title":"..","columns":[{"key","label","format"}],
 *       "rows":[{...}]},
 *      {"type":"chart","chart":"line|bar|stacked|pie","title":"..",
 *       "x":[labels],"series":[{"name":"..","values":[n|null,...]}],
 *       "format":"usd"},
 *      {"type":"list","items":["..", ...]},
 *      {"type":"alert_list","alerts":[{"rule","severity","state","summary",
 *       "starts_at","ends_at","value"}]}]}
 * Every renderer accepts any such tree: missing members render as empty,
 * unknown block types are skipped, strings are escaped for the output
 * (HTML entities in HTML/SVG; '|', '<', '>' in Markdown; RFC 4180 in CSV).
 *
 * Value formats (tables, stats, chart axes): "number" (default), "int",
 * "usd", "pct" (fraction shown as percent), "ms", "s" (duration in
 * seconds), "bytes", "time" (Unix seconds shown as RFC 3339), "text".
 */
#ifndef TE_REPORT_REPORT_H
#define TE_REPORT_REPORT_H

#include <stddef.h>

#include "core/buf.h"
#include "core/err.h"

struct cJSON;

typedef enum {
    TE_REPORT_MD = 0,
    TE_REPORT_HTML,
    TE_REPORT_JSON,
    TE_REPORT_CSV
} te_report_format_t;

/* Parses "md" ("markdown"), "html", "json", "csv". Returns 0 or TE_EINVAL
 * with 'bad format "x" (use md, html, json or csv)'. */
int te_report_format_parse(const char *s, te_report_format_t *out, te_err_t *err);

/* "md", "html", "json", "csv". */
const char *te_report_format_name(te_report_format_t f);

/* The Content-Type of a format ("text/html; charset=utf-8", ...). */
const char *te_report_content_type(te_report_format_t f);

/* Renders doc in format f into a malloc'd NUL-terminated text (*out, caller
 * frees) of *len bytes. Returns 0 or TE_ENOMEM (then *out is untouched). */
int te_report_render(const struct cJSON *doc, te_report_format_t f, char **out, size_t *len,
                     te_err_t *err);

/* The renderers behind te_report_render; each appends to b (b->oom tells
 * of a failed append). */
void te_report_render_md(const struct cJSON *doc, te_buf_t *b);
void te_report_render_html(const struct cJSON *doc, te_buf_t *b);
void te_report_render_json(const struct cJSON *doc, te_buf_t *b);
void te_report_render_csv(const struct cJSON *doc, te_buf_t *b);

/* Appends one chart block as an inline <svg> element (render_svg.c):
 * axes with ticks at nice values (1, 2, 5 x 10^k), a legend, negative
 * values below a zero line, "no data" for an empty chart. Every string is
 * HTML-escaped. */
void te_report_svg_chart(const struct cJSON *chart, te_buf_t *b);

/* --- helpers shared by the renderers (doc.c) --- */

/* Appends s with & < > " ' as HTML entities. NULL appends nothing. */
void te_report_html_escape(te_buf_t *b, const char *s);

/* Appends v (number, string, bool; null/absent -> dash) formatted for
 * people with fmt (see the list above; NULL = "number"). */
void te_report_format_value(te_buf_t *b, const struct cJSON *v, const char *fmt);

/* Appends a number formatted with fmt (as te_report_format_value). */
void te_report_format_number(te_buf_t *b, double v, const char *fmt);

/* Appends v as a CSV cell: numbers as JSON numbers, strings quoted when
 * needed (RFC 4180), null/absent as empty. */
void te_report_csv_value(te_buf_t *b, const struct cJSON *v);

/* Appends at most max_chars UTF-8 characters of s, with "…" when cut. */
void te_report_utf8_trunc(te_buf_t *b, const char *s, size_t max_chars);

/* The columns of a table block as a cJSON array of {"key","label",
 * "format"} objects: its "columns" member normalised (plain strings become
 * {key, label = key}), or, when absent, the keys of the first row. Caller
 * owns the result (cJSON_Delete); NULL on ENOMEM. */
struct cJSON *te_report_table_columns(const struct cJSON *table);

#endif
