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

