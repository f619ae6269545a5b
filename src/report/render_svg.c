/*
 * render_svg.c - one chart block as an inline SVG element: line, grouped
 * bar, stacked bar and pie.
 *
 * THREAD: any. Pure.
 *
 * The one idea: the value axis always holds zero and runs between
 * multiples of a "nice" step (1, 2 or 5 times a power of ten, Heckbert's
 * Graphics Gems labels), so ticks read 0, 250, 500 rather than 0, 237.3;
 * negative values sit below the zero line. Colours come from a fixed
 * palette that reads on light and dark backgrounds; text and grid lines
 * carry classes (.tx, .grid, .axis) so that the page's CSS themes them,
 * with presentation attributes as the fallback for a standalone SVG.
 * Null values leave a gap in a line and no bar. Every string goes through
 * te_report_html_escape.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "report.h"

#define W 720.0
#define H 300.0
#define LEFT 64.0
#define RIGHT 16.0
#define BOTTOM 44.0
#define MAX_SERIES 64
#define NTICKS 5
#define TE_PI 3.14159265358979323846

static const char *const palette[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2",
                                      "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
                                      "#9c755f", "#bab0ac"};
#define NPALETTE (sizeof(palette) / sizeof(palette[0]))

typedef struct axis {
    double lo, hi, step;
    double top, bottom; /* pixels */
} axis_t;

static const char *str(const cJSON *o, const char *key)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

static bool num_at(const cJSON *arr, int i, double *out)
{
    const cJSON *v = cJSON_GetArrayItem(arr, i);
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return false;
    *out = v->valuedouble;
    return true;
}

static double nice_num(double x, bool round_it)
{
    double e = floor(log10(x));
    double f = x / pow(10.0, e), nf;
    if (round_it)
        nf = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
    else
        nf = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
    return nf * pow(10.0, e);
}

/* Ticks from lo to hi (both multiples of step) covering [min, max] and 0. */
static void nice_axis(double min, double max, axis_t *a)
{
    if (min > 0)
        min = 0;
    if (max < 0)
        max = 0;
    if (max - min < 1e-300) {
        max = 1;
        min = 0;
    }
    double range = nice_num(max - min, false);
    a->step = nice_num(range / (NTICKS - 1), true);
    a->lo = floor(min / a->step + 1e-9) * a->step;
    a->hi = ceil(max / a->step - 1e-9) * a->step;
    if (a->hi <= a->lo)
        a->hi = a->lo + a->step;
}

static double ypix(const axis_t *a, double v)
{
    return a->bottom - (v - a->lo) / (a->hi - a->lo) * (a->bottom - a->top);
}

/* Tick label: as many decimals as the step needs; k/M for big steps. */
static void tick_label(te_buf_t *b, double v, double step, double mag, const char *fmt)
{
    char t[64];
    const char *suffix = "";
    bool pct = fmt && strcmp(fmt, "pct") == 0, usd = fmt && strcmp(fmt, "usd") == 0;
    if (pct) {
        v *= 100;
        step *= 100;
        mag *= 100;
    }
    if (fabs(v) < step * 1e-6)
        v = 0;
    if (v == 0)
        suffix = "";
    else if (mag >= 1e6 && step >= 1e5) {
        v /= 1e6;
        step /= 1e6;
        suffix = "M";
    } else if (mag >= 1e3 && step >= 100) {
        v /= 1e3;
        step /= 1e3;
        suffix = "k";
    }
    int dec = step >= 1 || v == 0 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (dec > 6)
        dec = 6;
    snprintf(t, sizeof(t), "%s%s%.*f%s%s", v < 0 && usd ? "-" : "", usd ? "$" : "", dec,
             usd ? fabs(v) : v, suffix, pct ? "%" : "");
    te_buf_adds(b, t);
}

static void text(te_buf_t *b, double x, double y, const char *anchor, const char *cls,
                 const char *s, size_t max_chars)
{
    te_buf_addf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" class=\"%s\" fill=\"#5b6472\">",
                x, y, anchor, cls);
    te_buf_t t = {0};
    te_report_utf8_trunc(&t, s, max_chars);
    te_report_html_escape(b, t.p);
    te_buf_free(&t);
    te_buf_adds(b, "</text>");
}

/* "2026-11-20T10:00:00Z" -> "11-20 10:00" (or "11-20" when day_only). */
static void x_label(te_buf_t *out, const char *s, bool day_only)
{
    if (s && strlen(s) >= 16 && s[4] == '-' && s[7] == '-' && (s[10] == 'T' || s[10] == ' ') &&
        s[13] == ':') {
        char t[16];
        if (day_only)
            snprintf(t, sizeof(t), "%.5s", s + 5);
        else
            snprintf(t, sizeof(t), "%.5s %.5s", s + 5, s + 11);
        te_buf_adds(out, t);
        return;
    }
    te_report_utf8_trunc(out, s, 14);
}

static bool all_midnight(const cJSON *x)
{
    const cJSON *v;
    int n = 0;
    cJSON_ArrayForEach(v, x) {
        const char *s = cJSON_GetStringValue(v);
        if (!s || strlen(s) < 19 || strncmp(s + 11, "00:00:00", 8) != 0)
            return false;
        n++;
    }
    return n > 0;
}

/* Legend items in rows across the top; returns the height used. */
static double legend(te_buf_t *b, const cJSON *series, int ns)
{
    double x = LEFT, y = 14, rowh = 18;
    for (int i = 0; i < ns; i++) {
        const char *name = str(cJSON_GetArrayItem(series, i), "name");
        te_buf_t t = {0};
        te_report_utf8_trunc(&t, name ? name : "", 24);
        size_t chars = 0;
        for (const char *p = t.p ? t.p : ""; *p; p++)
            chars += ((unsigned char)*p & 0xC0) != 0x80;
        double w = 22 + 7.0 * (double)chars + 14;
        if (x + w > W - RIGHT && x > LEFT) {
            x = LEFT;
            y += rowh;
        }
        te_buf_addf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" rx=\"2\" "
                       "fill=\"%s\"/>",
                    x, y - 10, palette[(size_t)i % NPALETTE]);
        te_buf_addf(b, "<text x=\"%.1f\" y=\"%.1f\" class=\"tx\" fill=\"#5b6472\">", x + 18, y);
        te_report_html_escape(b, t.p);
        te_buf_adds(b, "</text>");
        te_buf_free(&t);
        x += w;
    }
    return y + 10;
}

static void open_svg(te_buf_t *b, const cJSON *chart, double h)
{
    const char *title = str(chart, "title");
    te_buf_addf(b,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %.0f %.0f\" "
                "width=\"100%%\" role=\"img\" font-size=\"12\" "
                "font-family=\"system-ui, sans-serif\"><title>",
                W, h);
    te_report_html_escape(b, title ? title : "chart");
    te_buf_adds(b, "</title>");
}

static void no_data(te_buf_t *b, const cJSON *chart)
{
    open_svg(b, chart, 120);
    te_buf_addf(b, "<rect x=\"0.5\" y=\"0.5\" width=\"%.0f\" height=\"119\" rx=\"6\" fill=\"none\" "
                   "class=\"grid\" stroke=\"#e3e6eb\"/>",
                W - 1);
    text(b, W / 2, 64, "middle", "tx", "No data", 20);
    te_buf_adds(b, "</svg>");
}

static void y_axis(te_buf_t *b, const axis_t *a, const char *fmt)
{
    int n = (int)llround((a->hi - a->lo) / a->step);
    for (int i = 0; i <= n; i++) {
        double v = a->lo + a->step * i;
        double y = ypix(a, v);
        bool zero = fabs(v) < a->step * 1e-6;
        te_buf_addf(b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" class=\"%s\" "
                       "stroke=\"%s\"/>",
                    LEFT, W - RIGHT, y, y, zero ? "axis" : "grid", zero ? "#5b6472" : "#e3e6eb");
        te_buf_addf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" class=\"tx\" "
                       "fill=\"#5b6472\">",
                    LEFT - 6, y + 4);
        tick_label(b, v, a->step, fmax(fabs(a->lo), fabs(a->hi)), fmt);
        te_buf_adds(b, "</text>");
    }
}

/* Labels under the x axis: every stride-th, each about 6.5 px per
 * character wide; one that would touch the previous one is left out, and
 * one that would stick out on the right is right-aligned. */
static void x_labels(te_buf_t *b, const cJSON *x, int n, double (*xpos)(int, int))
{
    int max_labels = (int)((W - LEFT - RIGHT) / 80);
    int stride = (n + max_labels - 1) / max_labels;
    if (stride < 1)
        stride = 1;
    bool day_only = all_midnight(x);
    double last_right = -1e9;
    for (int i = 0; i < n; i += stride) {
        const cJSON *v = cJSON_GetArrayItem(x, i);
        te_buf_t t = {0}, cut = {0};
        if (cJSON_IsString(v))
            x_label(&t, v->valuestring, day_only);
        else
            te_report_format_value(&t, v, NULL);
        te_report_utf8_trunc(&cut, t.p, 16);
        size_t chars = 0;
        for (const char *p = cut.p ? cut.p : ""; *p; p++)
            chars += ((unsigned char)*p & 0xC0) != 0x80;
        double w = 6.5 * (double)chars, px = xpos(i, n);
        bool end = px + w / 2 > W - 2;
        double left = end ? px - w : px - w / 2;
        if (left >= last_right + 8) {
            text(b, px, H - BOTTOM + 18, end ? "end" : "middle", "tx", cut.p, 16);
            last_right = end ? px : px + w / 2;
        }
        te_buf_free(&t);
        te_buf_free(&cut);
    }
}

static double line_x(int i, int n)
{
    double w = W - LEFT - RIGHT - 20;
    return n <= 1 ? LEFT + 10 + w / 2 : LEFT + 10 + w * i / (n - 1);
}

static double band_x(int i, int n)
{
    double w = W - LEFT - RIGHT;
    return LEFT + w * (i + 0.5) / n;
}

static void point_title(te_buf_t *b, const char *series, const cJSON *x, int i, double v,
                        const char *fmt)
{
    te_buf_adds(b, "<title>");
    te_report_html_escape(b, series);
    te_buf_adds(b, " \xc2\xb7 ");
    te_buf_t t = {0};
    te_report_format_value(&t, cJSON_GetArrayItem(x, i), NULL);
    te_buf_adds(&t, ": ");
    te_report_format_number(&t, v, fmt);
    te_report_html_escape(b, t.p);
    te_buf_free(&t);
    te_buf_adds(b, "</title>");
}

static void line_or_bars(const cJSON *chart, te_buf_t *b, const char *kind)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(chart, "x");
    const cJSON *series = cJSON_GetObjectItemCaseSensitive(chart, "series");
    const char *fmt = str(chart, "format");
    int n = cJSON_GetArraySize(x), ns = cJSON_GetArraySize(series);
    bool line = strcmp(kind, "line") == 0, stacked = strcmp(kind, "stacked") == 0;
    if (ns > MAX_SERIES)
        ns = MAX_SERIES;
    double min = 0, max = 0, v;
    bool any = false;
    for (int i = 0; i < n; i++) {
        double pos = 0, neg = 0;
        for (int s = 0; s < ns; s++) {
            const cJSON *vals = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(series, s),
                                                                 "values");
            if (!num_at(vals, i, &v))
                continue;
            any = true;
            if (stacked) {
                if (v >= 0)
                    pos += v;
                else
                    neg += v;
            } else {
                if (v > max)
                    max = v;
                if (v < min)
                    min = v;
            }
        }
        if (stacked) {
            if (pos > max)
                max = pos;
            if (neg < min)
                min = neg;
        }
    }
    if (n == 0 || ns == 0 || !any) {
        no_data(b, chart);
        return;
    }
    open_svg(b, chart, H);
    axis_t a;
    nice_axis(min, max, &a);
    a.top = legend(b, series, ns) + 8;
    a.bottom = H - BOTTOM;
    y_axis(b, &a, fmt);
    double (*xpos)(int, int) = line ? line_x : band_x;
    x_labels(b, x, n, xpos);
    double band = (W - LEFT - RIGHT) / n;
    double y0 = ypix(&a, 0);
    if (line) {
        for (int s = 0; s < ns; s++) {
            const cJSON *se = cJSON_GetArrayItem(series, s);
            const cJSON *vals = cJSON_GetObjectItemCaseSensitive(se, "values");
            const char *col = palette[(size_t)s % NPALETTE];
            te_buf_addf(b, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"2\" "
                           "stroke-linejoin=\"round\" d=\"",
                        col);
            bool pen = false;
            for (int i = 0; i < n; i++) {
                if (!num_at(vals, i, &v)) {
                    pen = false;
                    continue;
                }
                te_buf_addf(b, "%s%.1f %.1f", pen ? " L" : (i ? " M" : "M"), line_x(i, n),
                            ypix(&a, v));
                pen = true;
            }
            te_buf_adds(b, "\"/>");
            if (n > 60)
                continue;
            for (int i = 0; i < n; i++) {
                if (!num_at(vals, i, &v))
                    continue;
                te_buf_addf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%s\" fill=\"%s\">",
                            line_x(i, n), ypix(&a, v), n == 1 ? "4" : "2.5", col);
                point_title(b, str(se, "name"), x, i, v, fmt);
                te_buf_adds(b, "</circle>");
            }
        }
    } else {
        for (int i = 0; i < n; i++) {
            double pos = 0, neg = 0;
            double gw = band * (stacked ? 0.6 : 0.8);
            double bw = stacked ? gw : gw / ns;
            double gx = LEFT + band * i + (band - gw) / 2;
            for (int s = 0; s < ns; s++) {
                const cJSON *se = cJSON_GetArrayItem(series, s);
                if (!num_at(cJSON_GetObjectItemCaseSensitive(se, "values"), i, &v))
                    continue;
                double from = 0, to = v;
                if (stacked) {
                    from = v >= 0 ? pos : neg;
                    to = from + v;
                    if (v >= 0)
                        pos = to;
                    else
                        neg = to;
                }
                double ya = ypix(&a, from), yb = ypix(&a, to);
                double top = ya < yb ? ya : yb, h = fabs(yb - ya);
                te_buf_addf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                               "fill=\"%s\">",
                            stacked ? gx : gx + bw * s, top, bw > 1.5 ? bw - 1 : bw, h,
                            palette[(size_t)s % NPALETTE]);
                point_title(b, str(se, "name"), x, i, v, fmt);
                te_buf_adds(b, "</rect>");
            }
        }
        te_buf_addf(b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" class=\"axis\" "
                       "stroke=\"#5b6472\"/>",
                    LEFT, W - RIGHT, y0, y0);
    }
    te_buf_adds(b, "</svg>");
}

static void pie(const cJSON *chart, te_buf_t *b)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(chart, "x");
    const cJSON *se = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(chart, "series"), 0);
    const cJSON *vals = cJSON_GetObjectItemCaseSensitive(se, "values");
    const char *fmt = str(chart, "format");
    int n = cJSON_GetArraySize(x);
    double total = 0, v;
    bool negatives = false;
    for (int i = 0; i < n; i++) {
        if (num_at(vals, i, &v)) {
            if (v > 0)
                total += v;
            else if (v < 0)
                negatives = true;
        }
    }
    if (n == 0 || total <= 0) {
        no_data(b, chart);
        return;
    }
    open_svg(b, chart, H);
    const double cx = 160, cy = H / 2, r = 120;
    double angle = -TE_PI / 2;
    int row = 0;
    for (int i = 0; i < n; i++) {
        if (!num_at(vals, i, &v) || v <= 0)
            continue;
        const char *col = palette[(size_t)i % NPALETTE];
        double frac = v / total;
        if (frac >= 0.999999) {
            te_buf_addf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\">", cx, cy, r,
                        col);
        } else {
            double a2 = angle + frac * 2 * TE_PI;
            te_buf_addf(b,
                        "<path d=\"M%.1f %.1f L%.1f %.1f A%.1f %.1f 0 %d 1 %.1f %.1f Z\" "
                        "fill=\"%s\" class=\"slice\" stroke=\"#ffffff\" stroke-width=\"1\">",
                        cx, cy, cx + r * cos(angle), cy + r * sin(angle), r, r,
                        frac > 0.5 ? 1 : 0, cx + r * cos(a2), cy + r * sin(a2), col);
            angle = a2;
        }
        const cJSON *lab = cJSON_GetArrayItem(x, i);
        te_buf_t t = {0}, tip = {0};
        te_report_format_value(&t, lab, NULL);
        te_buf_adds(&tip, t.p ? t.p : "");
        te_buf_adds(&tip, ": ");
        te_report_format_number(&tip, v, fmt);
        te_buf_adds(b, "<title>");
        te_report_html_escape(b, tip.p);
        te_buf_adds(b, "</title>");
        te_buf_free(&tip);
        te_buf_adds(b, frac >= 0.999999 ? "</circle>" : "</path>");
        /* legend row: swatch, label, value, share */
        if (row < 14) {
            double ly = 30 + row * 18.0;
            te_buf_addf(b, "<rect x=\"320\" y=\"%.1f\" width=\"12\" height=\"12\" rx=\"2\" "
                           "fill=\"%s\"/>",
                        ly - 10, col);
            te_buf_t l = {0};
            te_report_utf8_trunc(&l, t.p, 28);
            te_buf_adds(&l, " \xe2\x80\x94 ");
            te_report_format_number(&l, v, fmt);
            te_buf_adds(&l, " (");
            te_report_format_number(&l, frac, "pct");
            te_buf_adds(&l, ")");
            te_buf_addf(b, "<text x=\"338\" y=\"%.1f\" class=\"tx\" fill=\"#5b6472\">", ly);
            te_report_html_escape(b, l.p);
            te_buf_adds(b, "</text>");
            te_buf_free(&l);
        } else if (row == 14) {
            text(b, 338, 30 + row * 18.0, "start", "tx", "\xe2\x80\xa6", 4);
        }
        te_buf_free(&t);
        row++;
    }
    if (negatives)
        text(b, 338, H - 12, "start", "tx", "negative values are not shown", 40);
    te_buf_adds(b, "</svg>");
}

void te_report_svg_chart(const cJSON *chart, te_buf_t *b)
{
    const char *kind = str(chart, "chart");
    if (!kind)
        kind = "line";
    if (strcmp(kind, "pie") == 0)
        pie(chart, b);
    else if (strcmp(kind, "bar") == 0 || strcmp(kind, "stacked") == 0)
        line_or_bars(chart, b, kind);
    else
        line_or_bars(chart, b, "line");
}
