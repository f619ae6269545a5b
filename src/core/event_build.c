/*
 * event_build.c - the other direction: stored parts -> te_event_t
 * (te_event_build), te_event_t -> canonical JSON (te_event_to_json), lookups
 * and the fields blob.
 *
 * THREAD: any. te_event_build runs for every row the store reads, so
 * tags_json is decoded by a small scanner (two passes: measure, then decode
 * into the event's single allocation) rather than through cJSON. It is our
 * own canonical text, yet it is checked as if it were not: malformed text,
 * unsorted or duplicate keys, and a bad blob are TE_EINVAL, never a crash.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "event_internal.h"
#include "json.h"
#include "time.h"

static void put_le64(unsigned char *p, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(u >> (8 * i));
}

void te_fields_blob_write(unsigned char *dst, const te_field_t *fields, size_t n)
{
    *dst++ = (unsigned char)n;
    for (size_t i = 0; i < n; i++) {
        size_t kl = strlen(fields[i].key);
        *dst++ = (unsigned char)kl;
        memcpy(dst, fields[i].key, kl);
        dst += kl;
        put_le64(dst, fields[i].value);
        dst += 8;
    }
}

bool te_fields_blob_get(const unsigned char *blob, size_t len, const char *key, double *out)
{
    size_t pos = 0, kl, want = strlen(key);
    const char *k;
    double v;
    while (te_fields_blob_next(blob, len, &pos, &k, &kl, &v)) {
        if (kl == want && memcmp(k, key, kl) == 0) {
            *out = v;
            return true;
        }
    }
    return false;
}

const char *te_event_tag(const te_event_t *ev, const char *key)
{
    size_t lo = 0, hi = ev->ntags;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(ev->tags[mid].key, key);
        if (c == 0)
            return ev->tags[mid].value;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

bool te_event_field(const te_event_t *ev, const char *key, double *out)
{
    size_t lo = 0, hi = ev->nfields;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(ev->fields[mid].key, key);
        if (c == 0) {
            *out = ev->fields[mid].value;
            return true;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static long hex4(const char *s)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(s[i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* Scans the JSON string at s[*i] (a '"'); writes the decoded bytes and a NUL
 * to out when out is not NULL. Returns the decoded length or -1. */
static long scan_string(const char *s, size_t len, size_t *i, char *out)
{
    size_t p = *i;
    long n = 0;
    if (p >= len || s[p] != '"')
        return -1;
    p++;
    for (;;) {
        if (p >= len)
            return -1;
        unsigned char c = (unsigned char)s[p];
        if (c == '"')
            break;
        if (c < 0x20)
            return -1;
        if (c != '\\') {
            if (out)
                out[n] = (char)c;
            n++;
            p++;
            continue;
        }
        if (p + 1 >= len)
            return -1;
        char e = s[p + 1];
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e && simple) {
            static const char map[] = "\"\\/\b\f\n\r\t";
            if (out)
                out[n] = map[simple - "\"\\/bfnrt"];
            n++;
            p += 2;
            continue;
        }
        if (e != 'u' || p + 6 > len)
            return -1;
        long cp = hex4(s + p + 2);
        p += 6;
        if (cp < 0 || cp == 0 || (cp >= 0xDC00 && cp <= 0xDFFF))
            return -1;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (p + 6 > len || s[p] != '\\' || s[p + 1] != 'u')
                return -1;
            long lo = hex4(s + p + 2);
            if (lo < 0xDC00 || lo > 0xDFFF)
                return -1;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            p += 6;
        }
        unsigned char u[4];
        int k;
        if (cp < 0x80) {
            u[0] = (unsigned char)cp;
            k = 1;
        } else if (cp < 0x800) {
            u[0] = (unsigned char)(0xC0 | (cp >> 6));
            u[1] = (unsigned char)(0x80 | (cp & 0x3F));
            k = 2;
        } else if (cp < 0x10000) {
            u[0] = (unsigned char)(0xE0 | (cp >> 12));
            u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
            u[2] = (unsigned char)(0x80 | (cp & 0x3F));
            k = 3;
        } else {
            u[0] = (unsigned char)(0xF0 | (cp >> 18));
            u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
            u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
            u[3] = (unsigned char)(0x80 | (cp & 0x3F));
            k = 4;
        }
        if (out)
            memcpy(out + n, u, (size_t)k);
        n += k;
    }
    if (out)
        out[n] = '\0';
    *i = p + 1;
    return n;
}

static size_t skip_ws(const char *s, size_t len, size_t i)
{
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

/* Walks a {"k":"v",...} object. With tags == NULL it counts tags and decoded
 * bytes (key + value + 2 NULs each); otherwise it decodes into tags/strs.
 * Returns 0 or -1 on malformed text. */
static int scan_tags(const char *s, size_t len, size_t *ntags, size_t *bytes, te_tag_t *tags,
                     char *strs)
{
    size_t i = skip_ws(s, len, 0), n = 0, total = 0;
    if (i >= len || s[i] != '{')
        return -1;
    i = skip_ws(s, len, i + 1);
    if (i < len && s[i] == '}') {
        i++;
        goto end;
    }
    for (;;) {
        long kl = scan_string(s, len, &i, strs ? strs + total : NULL);
        if (kl < 0)
            return -1;
        if (tags)
            tags[n].key = strs + total;
        total += (size_t)kl + 1;
        i = skip_ws(s, len, i);
        if (i >= len || s[i] != ':')
            return -1;
        i = skip_ws(s, len, i + 1);
        long vl = scan_string(s, len, &i, strs ? strs + total : NULL);
        if (vl < 0)
            return -1;
        if (tags)
            tags[n].value = strs + total;
        total += (size_t)vl + 1;
        n++;
        i = skip_ws(s, len, i);
        if (i < len && s[i] == ',') {
            i = skip_ws(s, len, i + 1);
            continue;
        }
        if (i < len && s[i] == '}') {
            i++;
            break;
        }
        return -1;
    }
end:
    if (skip_ws(s, len, i) != len)
        return -1;
    *ntags = n;
    *bytes = total;
    return 0;
}

static size_t opt_len(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

static const char *put_opt(char **p, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = *p;
    memcpy(d, s, n);
    *p += n;
    return d;
}

int te_event_build(int64_t ts_ns, const char *kind, const char *source, const char *id,
                   const char *trace_id, const char *span_id, const char *parent_span_id,
                   const char *correlation_id, const char *tags_json, size_t tags_json_len,
                   const unsigned char *fields_blob, size_t fields_blob_len, const char *body,
                   size_t body_len, te_event_t **out, te_err_t *err)
{
    size_t nt = 0, tag_bytes = 0, nf = 0, fkey_bytes = 0, pos = 0, kl;
    const char *k, *prev = NULL;
    size_t prev_len = 0;
    double v;
    if (!kind || !te_kind_valid(kind, strlen(kind)))
        return te_err_set(err, TE_EINVAL, "event build: invalid kind");
    if (!tags_json || tags_json_len == 0) {
        tags_json = "{}";
        tags_json_len = 2;
    }
    if (scan_tags(tags_json, tags_json_len, &nt, &tag_bytes, NULL, NULL) < 0)
        return te_err_set(err, TE_EINVAL, "event build: tags_json is not a tags object");
    if (nt > TE_EVENT_MAX_TAGS)
        return te_err_set(err, TE_EINVAL, "event build: %zu tags, over the %d-tag limit", nt,
                          TE_EVENT_MAX_TAGS);
    if (fields_blob && fields_blob_len > 0) {
        while (te_fields_blob_next(fields_blob, fields_blob_len, &pos, &k, &kl, &v)) {
            if (kl == 0 || memchr(k, '\0', kl) ||
                (prev && (memcmp(prev, k, kl < prev_len ? kl : prev_len) > 0 ||
                          (memcmp(prev, k, kl < prev_len ? kl : prev_len) == 0 &&
                           prev_len >= kl))))
                return te_err_set(err, TE_EINVAL,
                                  "event build: fields blob keys are empty or not sorted");
            prev = k;
            prev_len = kl;
            nf++;
            fkey_bytes += kl + 1;
        }
        if (pos != fields_blob_len && !(pos == 0 && fields_blob_len == 1))
            return te_err_set(err, TE_EINVAL, "event build: malformed fields blob");
        if (fields_blob[0] != nf)
            return te_err_set(err, TE_EINVAL, "event build: fields blob count mismatch");
    } else {
        fields_blob = (const unsigned char *)"\0";
        fields_blob_len = 1;
    }

    size_t off_tags = sizeof(te_event_t);
    size_t off_fields = off_tags + nt * sizeof(te_tag_t);
    size_t off_chars = off_fields + nf * sizeof(te_field_t);
    size_t total = off_chars + opt_len(kind) + opt_len(source) + opt_len(id) +
                   opt_len(trace_id) + opt_len(span_id) + opt_len(parent_span_id) +
                   opt_len(correlation_id) + tag_bytes + fkey_bytes + tags_json_len + 1 +
                   fields_blob_len + (body ? body_len + 1 : 0);
    char *base = malloc(total);
    if (!base)
        return te_err_set(err, TE_ENOMEM, "event build: out of memory");
    te_event_t *ev = (te_event_t *)(void *)base;
    memset(ev, 0, sizeof(*ev));
    ev->ts_ns = ts_ns;
    ev->tags = nt ? (te_tag_t *)(void *)(base + off_tags) : NULL;
    ev->ntags = nt;
    ev->fields = nf ? (te_field_t *)(void *)(base + off_fields) : NULL;
    ev->nfields = nf;
    char *p = base + off_chars;
    ev->kind = put_opt(&p, kind);
    ev->source = put_opt(&p, source);
    ev->id = put_opt(&p, id);
    ev->trace_id = put_opt(&p, trace_id);
    ev->span_id = put_opt(&p, span_id);
    ev->parent_span_id = put_opt(&p, parent_span_id);
    ev->correlation_id = put_opt(&p, correlation_id);
    if (nt) {
        scan_tags(tags_json, tags_json_len, &nt, &tag_bytes, ev->tags, p);
        p += tag_bytes;
        for (size_t i = 1; i < nt; i++)
            if (strcmp(ev->tags[i - 1].key, ev->tags[i].key) >= 0) {
                free(base);
                return te_err_set(err, TE_EINVAL,
                                  "event build: tags_json keys are not sorted and unique");
            }
    }
    pos = 0;
    for (size_t i = 0; i < nf; i++) {
        te_fields_blob_next(fields_blob, fields_blob_len, &pos, &k, &kl, &v);
        memcpy(p, k, kl);
        p[kl] = '\0';
        ev->fields[i].key = p;
        ev->fields[i].value = v;
        p += kl + 1;
    }
    memcpy(p, tags_json, tags_json_len);
    p[tags_json_len] = '\0';
    ev->tags_json = p;
    ev->tags_json_len = tags_json_len;
    p += tags_json_len + 1;
    memcpy(p, fields_blob, fields_blob_len);
    ev->fields_blob = (const unsigned char *)p;
    ev->fields_blob_len = fields_blob_len;
    p += fields_blob_len;
    if (body) {
        memcpy(p, body, body_len);
        p[body_len] = '\0';
        ev->body = p;
        ev->body_len = body_len;
    }
    ev->size_bytes = tags_json_len + fields_blob_len + body_len + 128;
    *out = ev;
    return 0;
}

static char *put_json_str(char *p, const char *name, const char *s)
{
    *p++ = ',';
    *p++ = '"';
    size_t n = strlen(name);
    memcpy(p, name, n);
    p += n;
    memcpy(p, "\":\"", 3);
    p += 3;
    p = te_json_escape(p, s, strlen(s));
    *p++ = '"';
    return p;
}

char *te_event_to_json(const te_event_t *ev, size_t *len_out)
{
    const char *names[] = {"source",  "id",           "trace_id",
                           "span_id", "parent_span_id", "correlation_id"};
    const char *vals[] = {ev->source,  ev->id,             ev->trace_id,
                          ev->span_id, ev->parent_span_id, ev->correlation_id};
    size_t cap = 64 + 40 + te_json_escaped_len(ev->kind, strlen(ev->kind)) + ev->tags_json_len +
                 ev->body_len + 16;
    for (int i = 0; i < 6; i++)
        if (vals[i])
            cap += 24 + te_json_escaped_len(vals[i], strlen(vals[i]));
    for (size_t i = 0; i < ev->nfields; i++)
        cap += 4 + TE_JSON_NUM_MAX +
               te_json_escaped_len(ev->fields[i].key, strlen(ev->fields[i].key));
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    char *p = buf;
    char ts[40];
    size_t tl = te_time_format_rfc3339(ev->ts_ns, ts, sizeof(ts));
    memcpy(p, "{\"ts\":\"", 7);
    p += 7;
    memcpy(p, ts, tl);
    p += tl;
    *p++ = '"';
    p = put_json_str(p, "kind", ev->kind);
    for (int i = 0; i < 6; i++)
        if (vals[i])
            p = put_json_str(p, names[i], vals[i]);
    memcpy(p, ",\"tags\":", 8);
    p += 8;
    if (ev->tags_json && ev->tags_json_len) {
        memcpy(p, ev->tags_json, ev->tags_json_len);
        p += ev->tags_json_len;
    } else {
        memcpy(p, "{}", 2);
        p += 2;
    }
    memcpy(p, ",\"fields\":{", 11);
    p += 11;
    for (size_t i = 0; i < ev->nfields; i++) {
        if (i)
            *p++ = ',';
        *p++ = '"';
        p = te_json_escape(p, ev->fields[i].key, strlen(ev->fields[i].key));
        *p++ = '"';
        *p++ = ':';
        p += te_json_number(ev->fields[i].value, p);
    }
    *p++ = '}';
    if (ev->body) {
        memcpy(p, ",\"body\":", 8);
        p += 8;
        memcpy(p, ev->body, ev->body_len);
        p += ev->body_len;
    }
    *p++ = '}';
    *p = '\0';
    if (len_out)
        *len_out = (size_t)(p - buf);
    return buf;
}
