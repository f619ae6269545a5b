/*
 * ndjson.c - in-place NDJSON line splitting (see ndjson.h).
 *
 * THREAD: any (one splitter per thread at a time).
 * memchr finds newlines; complete lines inside the caller's bytes are never
 * copied. Only the tail of one feed that continues into the next is copied
 * into nd->buf, and that copy is bounded by max_line.
 */
#include "ndjson.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../pipeline/writer.h"
#include "redact.h"

void te_ndjson_init(te_ndjson_t *nd, size_t max_line_bytes, te_ndjson_line_cb cb, void *ud)
{
    memset(nd, 0, sizeof(*nd));
    nd->cb = cb;
    nd->ud = ud;
    nd->max_line = max_line_bytes ? max_line_bytes : TE_EVENT_MAX_BYTES;
}

bool te_ndjson_blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return false;
    }
    return true;
}

static int too_long(te_ndjson_t *nd, uint64_t line_no)
{
    char msg[160];
    snprintf(msg, sizeof(msg),
             "line %llu is longer than %zu bytes (the event size limit)",
             (unsigned long long)line_no, nd->max_line);
    return nd->cb(nd->ud, NULL, 0, line_no, msg);
}

/* Emits one complete line (without its '\n'). */
static int emit(te_ndjson_t *nd, const char *line, size_t len)
{
    uint64_t no = ++nd->line_no;
    if (len > 0 && line[len - 1] == '\r')
        len--;
    if (len > nd->max_line)
        return too_long(nd, no);
    if (te_ndjson_blank(line, len))
        return 0;
    return nd->cb(nd->ud, line, len, no, NULL);
}

static int carry(te_ndjson_t *nd, const char *data, size_t len)
{
    size_t need = nd->len + len;
    if (need > nd->max_line + 1) {
        /* over the limit: report once when the line ends, drop its bytes */
        nd->skipping = true;
        nd->len = 0;
        return 0;
    }
    if (need > nd->cap) {
        size_t cap = nd->cap ? nd->cap : 4096;
        while (cap < need)
            cap *= 2;
        char *p = realloc(nd->buf, cap);
        if (!p)
            return TE_ENOMEM;
        nd->buf = p;
        nd->cap = cap;
    }
    memcpy(nd->buf + nd->len, data, len);
    nd->len += len;
    return 0;
}

int te_ndjson_feed(te_ndjson_t *nd, const char *data, size_t len)
{
    const char *p = data, *end = data + len;
    int rc;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            return nd->skipping ? 0 : carry(nd, p, (size_t)(end - p));
        if (nd->skipping) {
            nd->skipping = false;
            rc = too_long(nd, ++nd->line_no);
        } else if (nd->len > 0) {
            rc = carry(nd, p, (size_t)(nl - p));
            if (rc == 0 && nd->skipping) {
                nd->skipping = false;
                rc = too_long(nd, ++nd->line_no);
            } else if (rc == 0) {
                size_t n = nd->len;
                nd->len = 0;
                rc = emit(nd, nd->buf, n);
            }
        } else {
            rc = emit(nd, p, (size_t)(nl - p));
        }
        if (rc != 0)
            return rc;
        p = nl + 1;
    }
    return 0;
}

int te_ndjson_finish(te_ndjson_t *nd)
{
    if (nd->skipping) {
        nd->skipping = false;
        return too_long(nd, ++nd->line_no);
    }
    if (nd->len == 0)
        return 0;
    size_t n = nd->len;
    nd->len = 0;
    return emit(nd, nd->buf, n);
}

uint64_t te_ndjson_line_count(const te_ndjson_t *nd)
{
    return nd->line_no;
}

size_t te_ndjson_pending(const te_ndjson_t *nd)
{
    return nd->skipping ? 1 : nd->len;
}

void te_ndjson_close(te_ndjson_t *nd)
{
    free(nd->buf);
    nd->buf = NULL;
    nd->len = nd->cap = 0;
}

int te_ndjson_add_event(te_batch_t **batch, size_t cap_hint, const char *line, size_t len,
                        const te_event_opts_t *opts, te_err_t *err)
{
    te_event_t *ev = NULL;
    int rc = te_event_parse(line, len, opts, &ev, err);
    if (rc < 0)
        return rc;
    /* redaction (SPEC 10): before any rule, hook or store sees the event */
    if ((rc = te_redact_event(te_redact_active(), &ev, err)) < 0) {
        te_event_free(ev);
        return rc;
    }
    if (!*batch) {
        *batch = te_batch_new(cap_hint ? cap_hint : 1024);
        if (!*batch) {
            te_event_free(ev);
            return te_err_set(err, TE_ENOMEM, "ingest: out of memory");
        }
    }
    rc = te_batch_take(*batch, ev);
    if (rc < 0)
        return te_err_set(err, TE_ENOMEM, "ingest: out of memory");
    return 0;
}
