/*
 * json.c - JSON text helpers: escaping, numbers, UTF-8, message excerpts.
 *
 * THREAD: any. The escape table makes the common case (plain ASCII) one
 * table load per byte; numbers try 15, 16 then 17 significant digits so the
 * text is the shortest that round-trips, as JavaScript and Python print.
 */
#include "json.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Extra bytes each input byte needs when escaped: 0, 1 (\n, \"), or 5 (\u00XX). */
static const unsigned char esc_extra[256] = {
    5, 5, 5, 5, 5, 5, 5, 5, 1, 1, 1, 5, 1, 1, 5, 5, /* \b \t \n \f \r */
    5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5,
    ['"'] = 1, ['\\'] = 1,
};

size_t te_json_escaped_len(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = len;
    for (size_t i = 0; i < len; i++)
        n += esc_extra[p[i]];
    return n;
}

char *te_json_escape(char *dst, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = p[i];
        if (!esc_extra[c]) {
            *dst++ = (char)c;
            continue;
        }
        *dst++ = '\\';
        switch (c) {
        case '"': *dst++ = '"'; break;
        case '\\': *dst++ = '\\'; break;
        case '\b': *dst++ = 'b'; break;
        case '\f': *dst++ = 'f'; break;
        case '\n': *dst++ = 'n'; break;
        case '\r': *dst++ = 'r'; break;
        case '\t': *dst++ = 't'; break;
        default:
            *dst++ = 'u';
            *dst++ = '0';
            *dst++ = '0';
            *dst++ = hex[c >> 4];
            *dst++ = hex[c & 15];
        }
    }
    return dst;
}

size_t te_json_number(double v, char *buf)
{
    int n;
    if (!isfinite(v)) {
        memcpy(buf, "null", 5);
        return 4;
    }
    if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        n = snprintf(buf, TE_JSON_NUM_MAX, "%lld", (long long)v);
        return (size_t)n;
    }
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(buf, TE_JSON_NUM_MAX, "%.*g", prec, v);
        if (prec == 17 || strtod(buf, NULL) == v)
            break;
    }
    return (size_t)n;
}

size_t te_utf8_seq_len(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    unsigned char lo = 0x80, hi = 0xBF;
    size_t n;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F; /* no UTF-16 surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F; /* at most U+10FFFF */
    } else {
        return 0;
    }
    if (avail < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return n;
}

size_t te_utf8_check(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = te_utf8_seq_len(p + i, len - i);
        if (n == 0)
            return i;
        i += n;
    }
    return len;
}

const char *te_json_excerpt(const char *s, size_t len, char *buf, size_t cap)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t room = cap - 4, i = 0, o = 0;
    while (i < len) {
        size_t n = p[i] < 0x80 ? 1 : te_utf8_seq_len(p + i, len - i);
        if (o + (n ? n : 1) > room)
            break;
        if (n == 0 || p[i] < 0x20 || p[i] == 0x7f) {
            buf[o++] = '?';
            i += n ? n : 1;
            continue;
        }
        memcpy(buf + o, p + i, n);
        o += n;
        i += n;
    }
    if (i < len) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

static size_t skip_blank(const char *s, size_t len, size_t i)
{
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

int te_json_array_next(const char *s, size_t len, size_t *pos, size_t *start, size_t *elen)
{
    size_t i = *pos;
    if (i != 0 && i >= len)
        return 0;
    if (i == 0) {
        if (len >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0)
            i = 3; /* UTF-8 byte order mark */
        i = skip_blank(s, len, i);
        if (i >= len || s[i] != '[')
            return -1;
        i = skip_blank(s, len, i + 1);
        if (i < len && s[i] == ']')
            goto closed;
    } else {
        i = skip_blank(s, len, i);
        if (i < len && s[i] == ']')
            goto closed;
        if (i >= len || s[i] != ',')
            return -1;
        i = skip_blank(s, len, i + 1);
    }
    size_t b = i, depth = 0;
    for (; i < len; i++) {
        char c = s[i];
        if (c == '"') {
            for (i++; i < len && s[i] != '"'; i++)
                if (s[i] == '\\')
                    i++;
            if (i >= len)
                return -1;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (depth == 0)
                break;
            depth--;
        } else if (c == ',' && depth == 0) {
            break;
        }
    }
    if (i >= len || depth != 0)
        return -1;
    size_t e = i;
    while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\n' || s[e - 1] == '\r'))
        e--;
    if (e == b)
        return -1;
    *start = b;
    *elen = e - b;
    *pos = i;
    return 1;
closed:
    if (skip_blank(s, len, i + 1) != len)
        return -1;
    *pos = len;
    return 0;
}
