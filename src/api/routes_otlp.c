/*
 * routes_otlp.c - POST /v1/traces, /v1/logs, /v1/metrics: OTLP/HTTP JSON
 * receivers (SPEC section 5; mapping in docs/otlp.md).
 *
 * THREAD: loop.
 *
 * The one idea: the same contract as POST /v1/events - accepted means
 * committed. The body (gzip allowed) is converted by te_otlp_convert (a
 * pure function: JSON text in, validated events out), the events go to the
 * writer as ONE batch, and the OTLP answer ({} or {"partialSuccess":{...}})
 * is written in the batch's done callback, after the commit. Items that fail
 * the event limits are counted in partialSuccess and never poison the batch;
 * a body that is not an OTLP JSON request is 400, protobuf is 415, a full
 * queue is 503 + Retry-After with nothing stored.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../core/buf.h"
#include "../core/log.h"
#include "../core/time.h"
#include "../engine_int.h"
#include "../ingest/gunzip.h"
#include "../ingest/otlp.h"
#include "api.h"

typedef struct otlp_ctx {
    te_engine_done_t done;
    te_http_req_t *req;
    te_otlp_signal_t sig;
    size_t rejected;
    char error[TE_ERR_MSG_MAX];
} otlp_ctx_t;

/* OTLP/HTTP protobuf (application/x-protobuf) rather than JSON: the first
 * non-blank byte is not '{' and the start holds control bytes, which JSON
 * text never does outside strings (protobuf lengths and tags below 0x20). */
static bool looks_like_protobuf(const char *p, size_t len)
{
    size_t i = 0, n = len < 256 ? len : 256;
    while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
        i++;
    if (i < len && p[i] == '{')
        return false;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x20 && c != '\t' && c != '\r' && c != '\n')
            return true;
    }
    return false;
}

/* {} when nothing was rejected, else OTLP's partial success:
 * {"partialSuccess":{"rejectedSpans":N,"errorMessage":"..."}}. */
static void answer(otlp_ctx_t *ctx)
{
    te_buf_t b = {0};
    if (ctx->rejected == 0) {
        te_buf_adds(&b, "{}\n");
    } else {
        te_buf_addf(&b, "{\"partialSuccess\":{\"rejected%s\":%zu,\"errorMessage\":",
                    te_otlp_item_name(ctx->sig), ctx->rejected);
        char msg[TE_ERR_MSG_MAX + 64];
        if (ctx->rejected > 1)
            snprintf(msg, sizeof(msg), "%s (and %zu more rejected)", ctx->error, ctx->rejected - 1);
        else
            snprintf(msg, sizeof(msg), "%s", ctx->error);
        te_buf_add_json_str(&b, msg, strlen(msg));
        te_buf_adds(&b, "}}\n");
    }
    if (b.oom) {
        te_buf_free(&b);
        te_http_respond_error(ctx->req, 500, NULL, "out of memory");
        return;
    }
    te_http_respond_take(ctx->req, 200, NULL, NULL, b.p, b.len);
}

static void on_committed(te_engine_t *e, te_batch_t *b, void *arg)
{
    otlp_ctx_t *ctx = arg;
    (void)e;
    te_log(TE_LOG_DEBUG, "http", "POST %s: %zu events: parse %.2f ms, queue+commit %.2f ms",
           ctx->req->path, b->n, (double)(b->submit_ns - ctx->req->start_ns) / 1e6,
           (double)(b->commit_ns - b->submit_ns) / 1e6);
    if (b->rc == 0)
        answer(ctx);
    else
        te_http_respond_error(ctx->req, 500, NULL,
                              "storage: %s (nothing of this request was "
                              "stored; retry)",
                              b->err.msg);
    te_batch_free(b);
    free(ctx);
}

static void otlp_post(te_engine_t *e, te_http_req_t *req, te_otlp_signal_t sig)
{
    char msg[300];
    char *plain = NULL;
    const char *body = req->body ? req->body : "";
    size_t len = req->body_len;
    te_otlp_result_t res;
    te_err_t err;
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
    if (looks_like_protobuf(body, len)) {
        free(plain);
        te_http_respond_error(req, 415, NULL,
                              "OTLP protobuf is not supported: send OTLP/HTTP JSON "
                              "(Content-Type: application/json; exporters: "
                              "OTEL_EXPORTER_OTLP_PROTOCOL=http/json)");
        return;
    }
    rc = te_otlp_convert(sig, body, len, te_time_now_ns(), &res, &err);
    free(plain);
    if (rc < 0) {
        te_otlp_result_free(&res);
        if (rc == TE_ENOMEM)
            te_http_respond_error(req, 500, NULL, "out of memory");
        else
            te_http_respond_error(req, 400, NULL, "%s", err.msg);
        return;
    }

    otlp_ctx_t *ctx = calloc(1, sizeof(*ctx));
    te_batch_t *b = res.n ? te_batch_new(res.n) : NULL;
    if (!ctx || (res.n && !b)) {
        free(ctx);
        te_batch_free(b);
        te_otlp_result_free(&res);
        te_http_respond_error(req, 500, NULL, "out of memory");
        return;
    }
    ctx->done.e = e;
    ctx->done.cb = on_committed;
    ctx->done.arg = ctx;
    ctx->req = req;
    ctx->sig = sig;
    ctx->rejected = res.rejected;
    memcpy(ctx->error, res.error, sizeof(ctx->error));
    rc = 0;
    for (size_t i = 0; i < res.n; i++) {
        if (rc == 0)
            rc = te_batch_take(b, res.events[i]); /* takes it, also on failure */
        else
            te_event_free(res.events[i]);
        res.events[i] = NULL;
    }
    te_otlp_result_free(&res);
    if (rc < 0) {
        te_batch_free(b);
        free(ctx);
        te_http_respond_error(req, 500, NULL, "out of memory");
        return;
    }
    e->http_rejected += ctx->rejected;
    if (!b) {
        answer(ctx);
        free(ctx);
        return;
    }
    b->done = te_engine_batch_done;
    b->ud = &ctx->done;
    rc = te_writer_submit(e->writer, b);
    if (rc < 0) {
        e->http_rejected -= ctx->rejected; /* the client will send them again */
        te_batch_free(b);
        free(ctx);
        if (rc == TE_EFULL)
            te_http_respond_error(req, 503, "Retry-After: 1\r\n", "ingest queue full, retry later");
        else
            te_http_respond_error(req, 503, "Retry-After: 1\r\n", "shutting down, retry later");
    }
}

void te_api_otlp_traces(te_engine_t *e, te_http_req_t *req)
{
    otlp_post(e, req, TE_OTLP_TRACES);
}

void te_api_otlp_logs(te_engine_t *e, te_http_req_t *req)
{
    otlp_post(e, req, TE_OTLP_LOGS);
}

void te_api_otlp_metrics(te_engine_t *e, te_http_req_t *req)
{
    otlp_post(e, req, TE_OTLP_METRICS);
}
