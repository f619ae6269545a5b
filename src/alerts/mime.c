/*
 * mime.c - the pieces every alert email is built from (see mime.h).
 *
 * THREAD: any. Everything is 7-bit on the wire: the subject becomes RFC
 * 2047 encoded words when it is not plain ASCII, bodies are
 * quoted-printable (text) or base64 (attachments), so no line passes 76
 * characters whatever the values hold, and no value can end the headers
 * or forge a MIME boundary.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alerts/mime.h"
#include "core/time.h"

void te_mime_add_b64(te_buf_t *b, const unsigned char *s, size_t n)
{
    static const char d[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0) |
                     (i + 2 < n ? s[i + 2] : 0);
        char q[4] = {d[v >> 18 & 63], d[v >> 12 & 63], i + 1 < n ? d[v >> 6 & 63] : '=',
                     i + 2 < n ? d[v & 63] : '='};
        te_buf_add(b, q, 4);
    }
}

void te_mime_add_subject(te_buf_t *b, const char *subject)
{
    char *s = strdup(subject);
    if (!s) {
        b->oom = true;
        return;
    }
    bool plain = strlen(s) <= 900;
    for (unsigned char *p = (unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            *p = ' ';
        if (*p >= 0x80 || (p[0] == '=' && p[1] == '?'))
            plain = false;
    }
    te_buf_adds(b, "Subject: ");
    if (plain) {
        te_buf_adds(b, s);
    } else {
        size_t n = strlen(s), i = 0;
        while (i < n) {
            size_t k = n - i < 45 ? n - i : 45; /* 45 bytes -> 60 base64 chars */
            while (k > 1 && i + k < n && ((unsigned char)s[i + k] & 0xC0) == 0x80)
                k--; /* do not cut inside a character */
            te_buf_adds(b, i ? "\r\n =?UTF-8?B?" : "=?UTF-8?B?");
            te_mime_add_b64(b, (const unsigned char *)s + i, k);
            te_buf_adds(b, "?=");
            i += k;
        }
    }
    te_buf_adds(b, "\r\n");
    free(s);
}

void te_mime_add_qp(te_buf_t *b, const char *text)
{
    size_t col = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (*p == '\r' && p[1] == '\n')
            continue;
        if (*p == '\n') {
            te_buf_adds(b, "\r\n");
            col = 0;
            continue;
        }
        bool at_eol = p[1] == '\0' || p[1] == '\n' || (p[1] == '\r' && p[2] == '\n');
        char tok[4];
        size_t tl = 1;
        if ((*p >= 33 && *p <= 126 && *p != '=') || ((*p == ' ' || *p == '\t') && !at_eol))
            tok[0] = (char)*p;
        else
            tl = (size_t)snprintf(tok, sizeof(tok), "=%02X", *p);
        if (col + tl > 75) {
            te_buf_adds(b, "=\r\n");
            col = 0;
        }
        te_buf_add(b, tok, tl);
        col += tl;
    }
}

void te_mime_add_html(te_buf_t *b, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&': te_buf_adds(b, "&amp;"); break;
        case '<': te_buf_adds(b, "&lt;"); break;
        case '>': te_buf_adds(b, "&gt;"); break;
        case '"': te_buf_adds(b, "&quot;"); break;
        case '\'': te_buf_adds(b, "&#39;"); break;
        default: te_buf_add(b, s, 1);
        }
    }
}

void te_mime_date(int64_t now_ns, char *out, size_t cap)
{
    /* by hand, not strftime: %a and %b follow the locale */
    static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t secs = (time_t)(now_ns / 1000000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(out, cap, "%s, %02d %s %04d %02d:%02d:%02d +0000", wd[tm.tm_wday], tm.tm_mday,
             mon[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

void te_mime_domain(const char *from, char *out, size_t cap)
{
    char addr[256];
    const char *lt = strrchr(from, '<'), *gt = lt ? strchr(lt, '>') : NULL;
    if (lt && gt)
        snprintf(addr, sizeof(addr), "%.*s", (int)(gt - lt - 1), lt + 1);
    else
        snprintf(addr, sizeof(addr), "%s", from);
    const char *at = strrchr(addr, '@');
    size_t dn = 0;
    for (const char *p = at ? at + 1 : ""; *p && dn + 1 < cap; p++)
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '.' || *p == '-')
            out[dn++] = *p;
    out[dn] = '\0';
    if (dn == 0)
        snprintf(out, cap, "%s", "telemetry-engine.invalid");
}

void te_mime_add_to(te_buf_t *b, const char *const *to)
{
    te_buf_adds(b, "To: ");
    for (size_t i = 0; to[i]; i++)
        te_buf_addf(b, "%s%s", i ? ",\r\n " : "", to[i]);
    te_buf_adds(b, "\r\n");
}

void te_mime_upper(const char *status, char *out, size_t cap)
{
    snprintf(out, cap, "%s", status);
    for (char *p = out; *p; p++)
        *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
}

/* "k=v, k2=v2" (or "-" when n is 0) into b. */
static void add_pairs(te_buf_t *b, char *const *keys, char *const *values, size_t n)
{
    if (n == 0)
        te_buf_adds(b, "-");
    for (size_t i = 0; i < n; i++)
        te_buf_addf(b, "%s%s=%s", i ? ", " : "", keys[i], values[i]);
}

void te_mime_alert_rows(const te_alert_t *a, const char *status,
                        te_buf_t vals[TE_MIME_ALERT_ROWS],
                        const char *labels[TE_MIME_ALERT_ROWS])
{
    static const char *const names[TE_MIME_ALERT_ROWS] = {
        "Status", "Rule",    "Severity",  "Group",   "Labels",
        "Value",  "Summary", "Starts at", "Ends at", "Alert id"};
    char t[40];
    for (int i = 0; i < TE_MIME_ALERT_ROWS; i++)
        labels[i] = names[i];
    te_buf_adds(&vals[0], status);
    te_buf_adds(&vals[1], a->rule ? a->rule : "");
    te_buf_adds(&vals[2], te_severity_name(a->severity));
    add_pairs(&vals[3], a->group_keys, a->group_values, a->ngroup);
    add_pairs(&vals[4], a->label_keys, a->label_values, a->nlabels);
    if (a->has_value)
        te_buf_addf(&vals[5], "%.15g", a->value);
    else
        te_buf_adds(&vals[5], "-");
    te_buf_adds(&vals[6], a->summary ? a->summary : "-");
    te_time_format_rfc3339(a->starts_at_ns, t, sizeof(t));
    te_buf_adds(&vals[7], t);
    if (a->ends_at_ns) {
        te_time_format_rfc3339(a->ends_at_ns, t, sizeof(t));
        te_buf_adds(&vals[8], t);
    } else {
        te_buf_adds(&vals[8], "-");
    }
    te_buf_addf(&vals[9], "%s (fingerprint %s)", a->id, a->fingerprint);
}
