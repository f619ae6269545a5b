/*
 * result.c - query result tables and their three renderings.
 *
 * THREAD: any. JSON follows SPEC section 5 `GET /v1/query` exactly: keys in
 * column order, null for NULL and for non-finite numbers, integers as
 * integers, other doubles as the shortest text that reads back the same.
 * CSV is RFC 4180 (CRLF line ends, quotes only where needed, NULL = empty).
 * The table pads by UTF-8 characters, right-aligns numeric columns and shows
 * NULL as "-", for people reading a terminal.
 */
#include "result.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "json.h"

/* A growing output buffer; a failed grow poisons it (ok = false). */
typedef struct outbuf {
    char *p;
    size_t len, cap;
    bool ok;
} outbuf;

static bool ob_reserve(outbuf *o, size_t more)
{
    if (!o->ok)
        return false;
    if (o->len + more + 1 <= o->cap)
        return true;
    size_t cap = o->cap ? o->cap : 256;
    while (cap < o->len + more + 1)
        cap *= 2;
    char *p = realloc(o->p, cap);
    if (!p) {
        o->ok = false;
        return false;
    }
    o->p = p;
    o->cap = cap;
    return true;
}

static void ob_add(outbuf *o, const char *s, size_t n)
{
    if (!ob_reserve(o, n))
        return;
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void ob_str(outbuf *o, const char *s)
{
    ob_add(o, s, strlen(s));
}

static void ob_char(outbuf *o, char c)
{
    ob_add(o, &c, 1);
}

static void ob_json_str(outbuf *o, const char *s)
{
    size_t n = strlen(s), e = te_json_escaped_len(s, n);
    if (!ob_reserve(o, e + 2))
        return;
    o->p[o->len++] = '"';
    o->len = (size_t)(te_json_escape(o->p + o->len, s, n) - o->p);
    o->p[o->len++] = '"';
}

static char *ob_finish(outbuf *o, size_t *len_out)
{
    if (!ob_reserve(o, 0)) {
        free(o->p);
        return NULL;
    }
    o->p[o->len] = '\0';
    if (len_out)
        *len_out = o->len;
    return o->p;
}

/* Text of a non-NULL scalar (numbers as in JSON); NULL for TE_VAL_NULL. */
static const char *val_text(const te_val_t *v, char *num)
{
    switch (v->type) {
    case TE_VAL_STR:
        return v->u.s ? v->u.s : "";
    case TE_VAL_INT: {
        /* Written by hand: avoids the printf machinery in the hot loop. */
        char tmp[24];
        size_t n = 0;
        uint64_t u = v->u.i < 0 ? (uint64_t)(-(v->u.i + 1)) + 1 : (uint64_t)v->u.i;
        do {
            tmp[n++] = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        size_t o = 0;
        if (v->u.i < 0)
            num[o++] = '-';
        while (n)
            num[o++] = tmp[--n];
        num[o] = '\0';
        return num;
    }
    case TE_VAL_NUM:
        if (!isfinite(v->u.num))
            return NULL;
        te_json_number(v->u.num, num);
        return num;
    default:
        return NULL;
    }
}

te_result_t *te_result_new(const char *const *columns, size_t ncols)
{
    te_result_t *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->columns = calloc(ncols ? ncols : 1, sizeof(char *));
    if (!r->columns)
        goto fail;
    r->ncols = ncols;
    for (size_t i = 0; i < ncols; i++) {
        const char *c = columns[i] ? columns[i] : "";
        size_t n = strlen(c) + 1;
        r->columns[i] = malloc(n);
        if (!r->columns[i])
            goto fail;
        memcpy(r->columns[i], c, n);
    }
    return r;
fail:
    te_result_free(r);
    return NULL;
}

void te_result_free(te_result_t *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nrows * r->ncols; i++)
        if (r->cells[i].type == TE_VAL_STR)
            free(r->cells[i].u.s);
    free(r->cells);
    if (r->columns)
        for (size_t i = 0; i < r->ncols; i++)
            free(r->columns[i]);
    free(r->columns);
    free(r);
}

te_val_t *te_result_add_row(te_result_t *r)
{
    if (r->nrows == r->cap_rows) {
        size_t cap = r->cap_rows ? r->cap_rows * 2 : 16;
        size_t per = r->ncols ? r->ncols : 1;
        if (cap > SIZE_MAX / per / sizeof(te_val_t))
            return NULL;
        te_val_t *cells = realloc(r->cells, cap * per * sizeof(te_val_t));
        if (!cells)
            return NULL;
        r->cells = cells;
        r->cap_rows = cap;
    }
    te_val_t *row = r->cells + r->nrows * r->ncols;
    memset(row, 0, r->ncols * sizeof(te_val_t));
    r->nrows++;
    return row;
}

int te_val_set_str(te_val_t *v, const char *s, size_t len)
{
    char *copy = NULL;
    if (s) {
        copy = malloc(len + 1);
        if (!copy)
            return TE_ENOMEM;
        memcpy(copy, s, len);
        copy[len] = '\0';
    }
    if (v->type == TE_VAL_STR)
        free(v->u.s);
    if (copy) {
        v->type = TE_VAL_STR;
        v->u.s = copy;
    } else {
        v->type = TE_VAL_NULL;
    }
    return 0;
}

char *te_result_to_json(const te_result_t *r, size_t *len_out)
{
    outbuf o = {NULL, 0, 0, true};
    char num[TE_JSON_NUM_MAX];
    ob_str(&o, "{\"columns\":[");
    for (size_t c = 0; c < r->ncols; c++) {
        if (c)
            ob_char(&o, ',');
        ob_json_str(&o, r->columns[c]);
    }
    ob_str(&o, "],\"rows\":[");
    for (size_t i = 0; i < r->nrows; i++) {
        const te_val_t *row = r->cells + i * r->ncols;
        ob_str(&o, i ? ",{" : "{");
        for (size_t c = 0; c < r->ncols; c++) {
            if (c)
                ob_char(&o, ',');
            ob_json_str(&o, r->columns[c]);
            ob_char(&o, ':');
            const char *t = val_text(&row[c], num);
            if (!t)
                ob_str(&o, "null");
            else if (row[c].type == TE_VAL_STR)
                ob_json_str(&o, t);
            else
                ob_str(&o, t);
        }
        ob_char(&o, '}');
    }
    ob_str(&o, "]}");
    return ob_finish(&o, len_out);
}

static void csv_field(outbuf *o, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        ob_str(o, s);
        return;
    }
    ob_char(o, '"');
    for (; *s; s++) {
        if (*s == '"')
            ob_char(o, '"');
        ob_char(o, *s);
    }
    ob_char(o, '"');
}

char *te_result_to_csv(const te_result_t *r, size_t *len_out)
{
    outbuf o = {NULL, 0, 0, true};
    char num[TE_JSON_NUM_MAX];
    for (size_t c = 0; c < r->ncols; c++) {
        if (c)
            ob_char(&o, ',');
        csv_field(&o, r->columns[c]);
    }
    if (r->ncols)
        ob_str(&o, "\r\n");
    for (size_t i = 0; i < r->nrows; i++) {
        const te_val_t *row = r->cells + i * r->ncols;
        for (size_t c = 0; c < r->ncols; c++) {
            if (c)
                ob_char(&o, ',');
            const char *t = val_text(&row[c], num);
            if (t)
                csv_field(&o, t);
        }
        if (r->ncols)
            ob_str(&o, "\r\n");
    }
    return ob_finish(&o, len_out);
}

/* Display width: UTF-8 characters, with control bytes shown as "\n"-like pairs. */
static size_t text_width(const char *s)
{
    size_t w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20)
            w += 2;
        else if ((*p & 0xC0) != 0x80)
            w++;
    }
    return w;
}

static void table_text(outbuf *o, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20) {
            ob_char(o, (char)c);
            continue;
        }
        ob_char(o, '\\');
        ob_char(o, c == '\n' ? 'n' : c == '\t' ? 't' : c == '\r' ? 'r' : '?');
    }
}

static void pad(outbuf *o, size_t n)
{
    while (n--)
        ob_char(o, ' ');
}

char *te_result_to_table(const te_result_t *r, size_t *len_out)
{
    outbuf o = {NULL, 0, 0, true};
    char num[TE_JSON_NUM_MAX];
    size_t *width = calloc(r->ncols ? r->ncols : 1, sizeof(size_t));
    bool *right = calloc(r->ncols ? r->ncols : 1, sizeof(bool));
    if (!width || !right) {
        free(width);
        free(right);
        return NULL;
    }
    for (size_t c = 0; c < r->ncols; c++) {
        width[c] = text_width(r->columns[c]);
        bool numeric = r->nrows > 0;
        for (size_t i = 0; i < r->nrows; i++) {
            const te_val_t *v = &r->cells[i * r->ncols + c];
            const char *t = val_text(v, num);
            size_t w = t ? text_width(t) : 1;
            if (w > width[c])
                width[c] = w;
            if (v->type == TE_VAL_STR)
                numeric = false;
        }
        right[c] = numeric;
    }
    for (size_t i = 0; i <= r->nrows && r->ncols; i++) {
        /* Row 0 is the header. Trailing blanks are trimmed. */
        size_t line_start = o.len;
        for (size_t c = 0; c < r->ncols; c++) {
            const char *t;
            if (i == 0) {
                t = r->columns[c];
            } else {
                t = val_text(&r->cells[(i - 1) * r->ncols + c], num);
                if (!t)
                    t = "-";
            }
            size_t gap = width[c] - text_width(t);
            if (c)
                pad(&o, 2);
            if (right[c])
                pad(&o, gap);
            table_text(&o, t);
            if (!right[c] && c + 1 < r->ncols)
                pad(&o, gap);
        }
        while (o.ok && o.len > line_start && o.p[o.len - 1] == ' ')
            o.len--;
        ob_char(&o, '\n');
    }
    free(width);
    free(right);
    return ob_finish(&o, len_out);
}
