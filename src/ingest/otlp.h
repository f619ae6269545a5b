/*
 * otlp.h - OTLP/HTTP JSON (traces, logs, metrics) -> events (SPEC section 5).
 *
 * THREAD: any. A pure conversion: the JSON text of one
 * ExportTraceServiceRequest / ExportLogsServiceRequest /
 * ExportMetricsServiceRequest goes in, validated te_event_t's come out. No
 * I/O, no engine state; routes_otlp.c hands the events to the writer the way
 * POST /v1/events does, and the unit tests call it directly.
 *
 * The one idea: every OTLP item (a span, a log record, a metric data point)
 * is turned into a canonical-form event object (cJSON) and then goes through
 * te_event_from_cjson, so OTLP events meet exactly the limits and checks of
 * SPEC section 2. An item that fails them, or whose own OTLP fields are bad
 * (a trace id that is not 32 hex digits, an intValue that is not an
 * integer), is rejected alone and counted, like OTLP's partial success; a
 * body that is not an OTLP JSON request at all is one error for the whole
 * request. The mapping is documented in docs/otlp.md.
 */
#ifndef TE_INGEST_OTLP_H
#define TE_INGEST_OTLP_H

#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"
#include "../core/event.h"

typedef enum te_otlp_signal {
    TE_OTLP_TRACES,  /* resourceSpans[].scopeSpans[].spans[] */
    TE_OTLP_LOGS,    /* resourceLogs[].scopeLogs[].logRecords[] */
    TE_OTLP_METRICS, /* resourceMetrics[].scopeMetrics[].metrics[].<type>.dataPoints[] */
} te_otlp_signal_t;

/* What one request converted to. events[0..n) are owned (te_otlp_result_free
 * frees those still there; a caller that takes one sets its slot to NULL). */
typedef struct te_otlp_result {
    te_event_t **events;
    size_t n, cap;
    size_t rejected;            /* spans / log records / data points rejected */
    char error[TE_ERR_MSG_MAX]; /* the first rejection's message, "" when none */
} te_otlp_result_t;

/* Converts the OTLP JSON request json (len bytes, need not be
 * NUL-terminated) of signal sig into events. recv_ts_ns is the time used
 * for an item without a timestamp. Returns 0 (then out holds the events and
 * the per-item rejections: see docs/otlp.md for the mapping), TE_EPARSE
 * with err naming the problem when the text is not JSON or not a request of
 * that signal (e.g. `"resourceSpans" must be an array, got string`), or
 * TE_ENOMEM. Call te_otlp_result_free on out either way. */
int te_otlp_convert(te_otlp_signal_t sig, const char *json, size_t len, int64_t recv_ts_ns,
                    te_otlp_result_t *out, te_err_t *err);

/* Frees the events left in r and its array; r is zeroed. */
void te_otlp_result_free(te_otlp_result_t *r);

/* The item word of a signal for messages and partialSuccess:
 * "Spans", "LogRecords", "DataPoints". */
const char *te_otlp_item_name(te_otlp_signal_t sig);

#endif
