/*
 * routes_events.c - POST /v1/events (ingest) and GET /v1/events (listing).
 *
 * THREAD: loop; the listing's database read runs on libuv's pool.
 *
 * The one idea of POST: accepted means committed. The body is parsed in
 * place (NDJSON lines or the spans of a JSON array's elements), the valid
 * events go to the writer as ONE batch, and the answer is written only in
 * the batch's done callback, after the commit. Bad events are answered per
 * index and never poison the batch. A full queue is answered 503 at once and
 * nothing of the request is stored.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "../core/json.h"
#include "../core/log.h"
#include "../core/time.h"
#include "../engine_int.h"
#include "../ingest/gunzip.h"
#include "../ingest/ndjson.h"
#include "../ingest/redact.h"
#include "../store/store.h"
#include "api.h"

typedef struct post_ctx {
    te_engine_done_t done;
    te_http_req_t *req;
    te_batch_t *batch;
    size_t cap_hint;
    te_event_opts_t opts;
    size_t index;           /* next element's index */
    size_t rejected;
    size_t nerrors;
    te_buf_t errors;   /* {"index":..,"error":..},... */
    bool any_json;          /* some element was JSON (valid event or not) */
    bool first_not_json;    /* element 0 was not JSON at all */
    bool oom;
    char first_err[256];
} post_ctx_t;

static void post_ctx_free(post_ctx_t *ctx)
{
    te_batch_free(ctx->batch);
    te_buf_free(&ctx->errors);
    free(ctx);
}

static void reject(post_ctx_t *ctx, size_t index, int code, const char *msg)
{
    ctx->rejected++;
    if (code != TE_EPARSE)
        ctx->any_json = true;
    if (!ctx->first_err[0])
        snprintf(ctx->first_err, sizeof(ctx->first_err), "index %zu: %s", index, msg);
    if (ctx->nerrors >= TE_API_MAX_ERRORS)
        return;
    te_buf_addf(&ctx->errors, "%s{\"index\":%zu,\"error\":", ctx->nerrors ? "," : "", index);
    te_buf_add_json_str(&ctx->errors, msg, strlen(msg));
    te_buf_add(&ctx->errors, "}", 1);
    ctx->nerrors++;
}

/* One element: an NDJSON line or an array element's text. */
static int add_element(post_ctx_t *ctx, const char *s, size_t len)
{
    te_err_t err;
    size_t index = ctx->index++;
    int rc = te_ndjson_add_event(&ctx->batch, ctx->cap_hint, s, len, &ctx->opts, &err);
    if (rc == TE_ENOMEM) {
        ctx->oom = true;
        return rc;
    }
    if (rc < 0) {
        if (index == 0 && rc == TE_EPARSE)
            ctx->first_not_json = true;
        reject(ctx, index, rc, err.msg);
        return 0;
    }
    ctx->any_json = true;
    return 0;
}

static int on_line(void *ud, const char *line, size_t len, uint64_t line_no, const char *error)
{
    post_ctx_t *ctx = ud;
    (void)line_no;
    if (error) {
        reject(ctx, ctx->index++, TE_ETOOBIG, error);
        return 0;
    }
    return add_element(ctx, line, len);
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Walks the top-level elements of a JSON array without building a tree:
 * strings and nesting are tracked only to find the commas between elements,
 * each element is then parsed on its own (its exact size counts for the
 * 1 MiB limit). Returns 0, TE_ENOMEM, or TE_EPARSE with msg set when the
 * array itself is malformed. */
static int scan_array(post_ctx_t *ctx, const char *p, const char *end, char *msg, size_t cap)
{
    p++; /* '[' */
    for (;;) {
        while (p < end && is_ws(*p))
            p++;
        if (p < end && *p == ']' && ctx->index == 0) {
            p++;
            break;
        }
        const char *start = p;
        int depth = 0;
        bool in_str = false;
        for (; p < end; p++) {
            char c = *p;
            if (in_str) {
                if (c == '\\')
                    p++;
                else if (c == '"')
                    in_str = false;
            } else if (c == '"') {
                in_str = true;
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
        if (p >= end) {
            snprintf(msg, cap, "the JSON array is not closed (missing ']')");
            return TE_EPARSE;
        }
        const char *stop = p;
        while (stop > start && is_ws(stop[-1]))
            stop--;
        if (stop == start) {
            snprintf(msg, cap, "empty element at index %zu of the JSON array", ctx->index);
            return TE_EPARSE;
        }
        if (add_element(ctx, start, (size_t)(stop - start)) < 0)
            return TE_ENOMEM;
        if (*p++ == ']')
            break;
    }
    while (p < end && is_ws(*p))
        p++;
    if (p < end) {
        snprintf(msg, cap, "unexpected text after the JSON array");
        return TE_EPARSE;
    }
    return 0;
}


static void answer_counts(post_ctx_t *ctx, size_t accepted)
{
    te_buf_t b = {0};
    te_buf_addf(&b, "{\"accepted\":%zu,\"rejected\":%zu,\"errors\":[", accepted,
                     ctx->rejected);
    if (ctx->errors.len)
        te_buf_add(&b, ctx->errors.p, ctx->errors.len);
    te_buf_adds(&b, "]}\n");
    if (b.oom) {
        te_buf_free(&b);
        te_http_respond_error(ctx->req, 500, NULL, "out of memory");
        return;
    }
    te_http_respond_take(ctx->req, 200, NULL, NULL, b.p, b.len);
}

/* 400 for a body with nothing usable; detail lists the per-element errors
 * found before the verdict (capped like the 200 answer). */
static void answer_unparseable(post_ctx_t *ctx, const char *why)
{
    te_buf_t b = {0};
    char msg[400];
    if (strncmp(why, "no parseable", 12) == 0)
        snprintf(msg, sizeof(msg), "%s", why);
    else
        snprintf(msg, sizeof(msg), "no parseable events: %s", why);
    te_buf_adds(&b, "{\"error\":");
    te_buf_add_json_str(&b, msg, strlen(msg));
    if (ctx->nerrors) {
        te_buf_adds(&b, ",\"detail\":{\"errors\":[");
        te_buf_add(&b, ctx->errors.p, ctx->errors.len);
        te_buf_adds(&b, "]}");
    }
    te_buf_adds(&b, "}\n");
    if (b.oom) {
        te_buf_free(&b);
        te_http_respond_error(ctx->req, 400, NULL, "%s", msg);
        return;
    }
    te_http_respond_take(ctx->req, 400, NULL, NULL, b.p, b.len);
}

static void on_committed(te_engine_t *e, te_batch_t *b, void *arg)
{
    post_ctx_t *ctx = arg;
    (void)e;
    ctx->batch = b;
    /* where an ack's latency goes: parsing (loop), queue + commit (writer),
     * hand-back to the loop */
    te_log(TE_LOG_DEBUG, "http",
           "POST /v1/events: %zu events: parse %.2f ms, queue+commit %.2f ms, wake %.2f ms", b->n,
           (double)(b->submit_ns - ctx->req->start_ns) / 1e6,
           (double)(b->commit_ns - b->submit_ns) / 1e6,
           (double)(te_time_mono_ns() - b->commit_ns) / 1e6);
    if (b->rc == 0)
        answer_counts(ctx, b->stored + b->duplicates);
    else
        te_http_respond_error(ctx->req, 500, NULL, "storage: %s (nothing of this request was "
                              "stored; retry)", b->err.msg);
    post_ctx_free(ctx);
}

/* The pretty-printed single event: when the whole body is one JSON object,
 * that object replaces whatever the line-by-line pass found. */
static int parse_whole_object(post_ctx_t *ctx, const char *body, size_t len)
{
    const char *endp = NULL;
    te_event_t *ev = NULL;
    te_err_t err;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &endp, 0);
    if (!root)
        return 0;
    while (endp && endp < body + len && is_ws(*endp))
        endp++;
    if (!cJSON_IsObject(root) || endp != body + len) {
        cJSON_Delete(root);
        return 0;
    }
    te_batch_free(ctx->batch);
    te_buf_free(&ctx->errors);
    ctx->batch = NULL;
    ctx->rejected = ctx->nerrors = 0;
    ctx->first_err[0] = '\0';
    ctx->index = 1;
    ctx->any_json = true;
    cJSON_Delete(root);
    /* Parse the text again rather than reuse root: only the raw text shows a
     * \u0000 escape, which cJSON has already cut its string at. */
    int rc = te_event_parse(body, len, &ctx->opts, &ev, &err);
    if (rc == 0 && (rc = te_redact_event(te_redact_active(), &ev, &err)) < 0)
        te_event_free(ev); /* redaction (SPEC 10), as te_ndjson_add_event does */
    if (rc == TE_ENOMEM)
        return rc;
    if (rc < 0) {
        reject(ctx, 0, rc, err.msg);
        return 0;
    }
    ctx->batch = te_batch_new(1);
    if (!ctx->batch) {
        te_event_free(ev);
        return TE_ENOMEM;
    }
    return te_batch_take(ctx->batch, ev);
}

/* The body's kind: '[' -> array, else NDJSON, with one exception: a
 * pretty-printed single object (first line not JSON, whole body one object). */
static int parse_body(post_ctx_t *ctx, const char *body, size_t len, char *msg, size_t cap)
{
    const char *p = body, *end = body + len;
    while (p < end && is_ws(*p))
        p++;
    if (p == end) {
        snprintf(msg, cap, "no parseable events: the body is empty");
        return TE_EPARSE;
    }
    if (*p == '[') {
        ctx->cap_hint = 1024;
        return scan_array(ctx, p, end, msg, cap);
    }
    size_t lines = 1;
    for (const char *q = p; (q = memchr(q, '\n', (size_t)(end - q))) != NULL; q++)
        lines++;
    ctx->cap_hint = lines;
    te_ndjson_t nd;
    te_ndjson_init(&nd, len + 1, on_line, ctx);  /* the event parser enforces 1 MiB */
    int rc = te_ndjson_feed(&nd, body, len);
    if (rc == 0)
        rc = te_ndjson_finish(&nd);
    te_ndjson_close(&nd);
    if (rc < 0)
        return rc;
    if (ctx->first_not_json && lines > 1)
        return parse_whole_object(ctx, body, len);
    return 0;
}

void te_api_events_post(te_engine_t *e, te_http_req_t *req)
{
    char msg[300];
    char *plain = NULL;
    const char *body = req->body ? req->body : "";
    size_t len = req->body_len;
    int rc;

    if (!e->writer || e->shutting_down) {
        te_http_respond_error(req, 503, "Retry-After: 1\r\n", "shutting down, retry later");
        return;
    }
    if (req->content_encoding && strcasecmp(req->content_encoding, "identity") != 0) {
        if (strcasecmp(req->content_encoding, "gzip") != 0 &&
            strcasecmp(req->content_encoding, "x-gzip") != 0) {
            te_http_respond_error(req, 415, NULL,
                                  "unsupported Content-Encoding \"%s\" (use gzip or none)",
                                  req->content_encoding);
            return;
        }
        rc = te_gunzip(body, len, e->max_body_bytes, &plain, &len, msg, sizeof(msg));
        if (rc == TE_ENOMEM) {
            te_http_respond_error(req, 500, NULL, "out of memory");
            return;
        }
        if (rc < 0) {
            te_http_respond_error(req, rc == TE_ETOOBIG ? 413 : 400, NULL, "%s", msg);
            return;
        }
        body = plain;
    }

    post_ctx_t *ctx = calloc(1, sizeof(*ctx));
    if (!ctx) {
        free(plain);
        te_http_respond_error(req, 500, NULL, "out of memory");
        return;
    }
    ctx->done.e = e;
    ctx->done.cb = on_committed;
    ctx->done.arg = ctx;
    ctx->req = req;
    ctx->opts.recv_ts_ns = te_time_now_ns();
    ctx->opts.default_kind = te_http_param(req, "kind");
    ctx->opts.default_source = te_http_param(req, "source");
    msg[0] = '\0';
    rc = parse_body(ctx, body, len, msg, sizeof(msg));
    free(plain);
    if (rc == TE_ENOMEM || ctx->oom || ctx->errors.oom) {
        te_http_respond_error(req, 500, NULL, "out of memory");
        post_ctx_free(ctx);
        return;
    }
    if (rc == 0 && ctx->index == 0) {
        te_http_respond_error(req, 400, NULL, "no parseable events: the body holds no events");
        post_ctx_free(ctx);
        return;
    }
    if (rc < 0 || !ctx->any_json) {
        answer_unparseable(ctx, rc < 0 ? msg : ctx->first_err);
        post_ctx_free(ctx);
        return;
    }
    e->http_rejected += ctx->rejected;
    if (!ctx->batch || ctx->batch->n == 0) {
        answer_counts(ctx, 0);
        post_ctx_free(ctx);
        return;
    }
    te_batch_t *b = ctx->batch;
    b->done = te_engine_batch_done;
    b->ud = &ctx->done;
    rc = te_writer_submit(e->writer, b);
    if (rc < 0) {
        e->http_rejected -= ctx->rejected;   /* the client will send them again */
        if (rc == TE_EFULL)
            te_http_respond_error(req, 503, "Retry-After: 1\r\n",
                                  "ingest queue full, retry later");
        else
            te_http_respond_error(req, 503, "Retry-After: 1\r\n", "shutting down, retry later");
        post_ctx_free(ctx);
        return;
    }
    ctx->batch = NULL;   /* the writer has it until on_committed */
}

/* ---- GET /v1/events ---- */

typedef struct list_job {
    uv_work_t work;
    te_engine_t *e;
    te_http_req_t *req;
    te_api_filter_t f;
    const char *kind;
    const char *cursor;
    size_t limit;
    int csv;
    size_t count;
    int status;
    te_err_t err;
    te_buf_t out;
    char next[256];
} list_job_t;

static void csv_fields(te_buf_t *b, const te_event_t *ev)
{
    te_buf_t j = {0};
    char num[TE_JSON_NUM_MAX];
    te_buf_add(&j, "{", 1);
    for (size_t i = 0; i < ev->nfields; i++) {
        if (i)
            te_buf_add(&j, ",", 1);
        te_buf_add_json_str(&j, ev->fields[i].key, strlen(ev->fields[i].key));
        te_buf_add(&j, ":", 1);
        te_buf_add(&j, num, te_json_number(ev->fields[i].value, num));
    }
    te_buf_add(&j, "}", 1);
    te_api_csv_cell(b, j.p ? j.p : "{}", j.p ? j.len : 2);
    b->oom |= j.oom;
    te_buf_free(&j);
}

static int on_event(const te_event_t *ev, void *ud)
{
    list_job_t *job = ud;
    te_buf_t *b = &job->out;
    if (job->csv) {
        char ts[40];
        size_t n = te_time_format_rfc3339(ev->ts_ns, ts, sizeof(ts));
        te_api_csv_cell(b, ts, n);
        te_buf_add(b, ",", 1);
        te_api_csv_cell(b, ev->kind, strlen(ev->kind));
        te_buf_add(b, ",", 1);
        te_api_csv_cell(b, ev->source ? ev->source : "", ev->source ? strlen(ev->source) : 0);
        te_buf_add(b, ",", 1);
        te_api_csv_cell(b, ev->id ? ev->id : "", ev->id ? strlen(ev->id) : 0);
        te_buf_add(b, ",", 1);
        te_api_csv_cell(b, ev->tags_json, ev->tags_json_len);
        te_buf_add(b, ",", 1);
        csv_fields(b, ev);
        te_buf_add(b, ",", 1);
        te_api_csv_cell(b, ev->body ? ev->body : "", ev->body ? ev->body_len : 0);
        te_buf_add(b, "\r\n", 2);
    } else {
        size_t n = 0;
        char *text = te_event_to_json(ev, &n);
        if (!text) {
            b->oom = true;
            return 1;
        }
        if (job->count)
            te_buf_add(b, ",", 1);
        te_buf_add(b, text, n);
        free(text);
    }
    job->count++;
    return b->oom ? 1 : 0;
}

static void list_work(uv_work_t *w)
{
    list_job_t *job = w->data;
    te_store_t *st = NULL;
    te_store_opts_t so = {.path = job->e->cfg->db_path, .readonly = true};
    te_events_query_t q = {.kind = job->kind,
                           .since_ns = job->f.since_ns,
                           .until_ns = job->f.until_ns,
                           .where = job->f.where,
                           .nwhere = job->f.nwhere,
                           .limit = job->limit,
                           .cursor = job->cursor};
    job->status = 500;
    if (te_store_open(&so, &st, &job->err) < 0)
        return;
    if (job->csv)
        te_buf_adds(&job->out, "ts,kind,source,id,tags,fields,body\r\n");
    else
        te_buf_adds(&job->out, "{\"events\":[");
    int rc = te_store_events(st, &q, on_event, job, job->next, sizeof(job->next), &job->err);
    te_store_close(st);
    if (rc < 0) {
        job->status = rc == TE_EINVAL ? 400 : 500;
        return;
    }
    if (!job->csv) {
        te_buf_adds(&job->out, "],\"next\":");
        if (job->next[0])
            te_buf_add_json_str(&job->out, job->next, strlen(job->next));
        else
            te_buf_adds(&job->out, "null");
        te_buf_adds(&job->out, "}\n");
    }
    if (job->out.oom) {
        te_err_set(&job->err, TE_ENOMEM, "out of memory");
        return;
    }
    job->status = 200;
}

static void list_after(uv_work_t *w, int status)
{
    list_job_t *job = w->data;
    (void)status;
    if (job->status == 200) {
        const char *ctype = job->csv ? "text/csv; charset=utf-8" : NULL;
        char extra[300] = "";
        if (job->csv && job->next[0])
            snprintf(extra, sizeof(extra), "X-Next-Cursor: %s\r\n", job->next);
        te_http_respond_take(job->req, 200, ctype, extra, job->out.p, job->out.len);
        job->out.p = NULL;
    } else {
        te_http_respond_error(job->req, job->status, NULL, "%s", job->err.msg);
    }
    te_buf_free(&job->out);
    te_api_filter_free(&job->f);
    free(job);
}

void te_api_events_get(te_engine_t *e, te_http_req_t *req)
{
    te_err_t err;
    const char *s;
    list_job_t *job = calloc(1, sizeof(*job));
    if (!job) {
        te_http_respond_error(req, 500, NULL, "out of memory");
        return;
    }
    job->e = e;
    job->req = req;
    job->limit = 100;
    job->kind = te_http_param(req, "kind");
    job->cursor = te_http_param(req, "cursor");
    if (job->kind && !job->kind[0])
        job->kind = NULL;
    if (job->cursor && !job->cursor[0])
        job->cursor = NULL;
    if (te_api_filter_parse(req, &job->f, &err) < 0 || te_api_format_parse(req, &job->csv, &err) < 0)
        goto bad;
    s = te_http_param(req, "limit");
    if (s) {
        char *end;
        unsigned long long v = strtoull(s, &end, 10);
        if (!*s || *end || s[0] == '-' || v < 1 || v > 1000) {
            te_err_set(&err, TE_EINVAL, "bad \"limit\" value \"%s\": expected 1 to 1000", s);
            goto bad;
        }
        job->limit = (size_t)v;
    }
    job->work.data = job;
    if (uv_queue_work(&e->loop, &job->work, list_work, list_after) < 0) {
        te_err_set(&err, TE_EIO, "cannot start the query");
        te_api_filter_free(&job->f);
        free(job);
        te_http_respond_error(req, 500, NULL, "%s", err.msg);
        return;
    }
    return;
bad:
    te_api_filter_free(&job->f);
    free(job);
    te_http_respond_error(req, 400, NULL, "%s", err.msg);
}
