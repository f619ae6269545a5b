/*
 * http_text.c - the text helpers of the HTTP server: answer buffers with
 * JSON string escaping, and URL query decoding.
 *
 * THREAD: any (pure functions on the caller's data).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

void te_http_buf_add(te_http_buf_t *b, const char *s, size_t len)
{
    if (b->oom)
        return;
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + len + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, len);
    b->len += len;
    b->p[b->len] = '\0';
}

void te_http_buf_adds(te_http_buf_t *b, const char *s)
{
    te_http_buf_add(b, s, strlen(s));
}

void te_http_buf_addf(te_http_buf_t *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(tmp)) {
        te_http_buf_add(b, tmp, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->oom = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    te_http_buf_add(b, big, (size_t)n);
    free(big);
}

void te_http_buf_add_json_str(te_http_buf_t *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t start = 0;
    te_http_buf_add(b, "\"", 1);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch != '"' && ch != '\\')
            continue;
        te_http_buf_add(b, s + start, i - start);
        start = i + 1;
        char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
        size_t n = 2;
        switch (ch) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[ch >> 4];
            esc[5] = hex[ch & 15];
            n = 6;
        }
        te_http_buf_add(b, esc, n);
    }
    te_http_buf_add(b, s + start, len - start);
    te_http_buf_add(b, "\"", 1);
}

void te_http_buf_free(te_http_buf_t *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

/* ---- URL ---- */

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

static char *url_decode(const char *s, size_t len)
{
    char *out = malloc(len + 1);
    size_t j = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '+') {
            out[j++] = ' ';
        } else if (s[i] == '%' && i + 2 < len && hexval(s[i + 1]) >= 0 &&
                   hexval(s[i + 2]) >= 0) {
            out[j++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            out[j++] = s[i];
        }
    }
    out[j] = '\0';
    return out;
}

int te_http_parse_url(te_http_req_t *req)
{
    char *url = req->url;
    char *q = strchr(url, '?');
    char *frag = strchr(url, '#');
    if (frag)
        *frag = '\0';
    req->path = url;
    if (!q)
        return 0;
    *q++ = '\0';
    while (*q) {
        char *amp = strchr(q, '&');
        size_t len = amp ? (size_t)(amp - q) : strlen(q);
        if (len > 0) {
            if (req->nparams == TE_HTTP_MAX_PARAMS)
                return TE_ETOOBIG;
            char *eq = memchr(q, '=', len);
            size_t klen = eq ? (size_t)(eq - q) : len;
            te_http_param_t *p = &req->params[req->nparams];
            p->key = url_decode(q, klen);
            p->value = eq ? url_decode(eq + 1, len - klen - 1) : url_decode("", 0);
            req->nparams++;
            if (!p->key || !p->value)
                return TE_ENOMEM;
        }
        if (!amp)
            break;
        q = amp + 1;
    }
    return 0;
}

