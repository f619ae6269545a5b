/*
 * otlp.c - OTLP/HTTP JSON requests -> events (see otlp.h, docs/otlp.md).
 *
 * THREAD: any; no shared state.
 *
 * The one idea: walk the request tree once (resource -> scope -> item) and
 * build, per item, the canonical event object {"ts","kind","source","id",
 * "trace_id","span_id","parent_span_id","tags","fields","body"} as cJSON,
 * then let te_event_from_cjson apply every limit of SPEC section 2. Errors
 * that concern one item reject that item only; errors in the request's
 * skeleton (a container that is not an array, not JSON at all) reject the
 * request. OTLP's JSON encoding (proto3 JSON mapping) writes 64-bit
 * integers as strings and enums as numbers; both spellings are accepted
 * (the readers and the event builder are in otlp_value.c).
 */
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "../core/time.h"
#include "otlp.h"
#include "otlp_int.h"
#include "redact.h"

/* ---- the walk ---- */

typedef struct walk {
    te_otlp_signal_t sig;
    int64_t recv_ts_ns;
    te_otlp_result_t *r;
    const char *service; /* the current resource's service.name, or NULL */
    char path[256];      /* the current item, for messages */
} walk_t;

static void reject(walk_t *w, const char *msg)
{
    w->r->rejected++;
    if (!w->r->error[0])
        snprintf(w->r->error, sizeof(w->r->error), "%.150s: %.340s", w->path, msg);
}

/* Finishes an item: validates it as an event and keeps it, or rejects it.
 * Frees it->obj. Returns 0 or TE_ENOMEM. */
static int finish(walk_t *w, te_otlp_item_t *it, int rc, te_err_t *err)
{
    te_event_t *ev = NULL;
    te_event_opts_t opts = {.recv_ts_ns = w->recv_ts_ns};
    if (rc == 0) {
        char *text = cJSON_PrintUnformatted(it->obj);
        if (!text)
            rc = TE_ENOMEM;
        else
            rc = te_event_from_cjson(it->obj, strlen(text), &opts, &ev, err);
        cJSON_free(text);
    }
    /* redaction (SPEC 10), as for every other ingest path (ndjson.c) */
    if (rc == 0 && (rc = te_redact_event(te_redact_active(), &ev, err)) < 0) {
        te_event_free(ev);
        ev = NULL;
    }
    te_otlp_item_free(it);
    if (rc == TE_ENOMEM)
        return rc;
    if (rc < 0) {
        reject(w, err->msg);
        return 0;
    }
    te_otlp_result_t *r = w->r;
    if (r->n == r->cap) {
        size_t ncap = r->cap ? r->cap * 2 : 64;
        te_event_t **ne = realloc(r->events, ncap * sizeof(*ne));
        if (!ne) {
            te_event_free(ev);
            return TE_ENOMEM;
        }
        r->events = ne;
        r->cap = ncap;
    }
    r->events[r->n++] = ev;
    return 0;
}

static const char *const SPAN_KINDS[] = {"unspecified", "internal", "server",
                                         "client",      "producer", "consumer"};
static const char *const STATUS_CODES[] = {"unset", "ok", "error"};

/* True when s mentions a timeout ("timeout", "APITimeoutError"). */
static bool has_timeout(const char *s)
{
    for (; *s; s++)
        if (!strncasecmp(s, "timeout", 7))
            return true;
    return false;
}

static int span_item(walk_t *w, const cJSON *span, te_otlp_item_t *it, te_err_t *err)
{
    char trace[33], sid[17], parent[17];
    int64_t start, end;
    const cJSON *attrs = te_otlp_member(span, "attributes");
    const cJSON *name = te_otlp_member(span, "name");
    const cJSON *status = te_otlp_member(span, "status");
    int rc, kind, code = 0;

    if (!cJSON_IsObject(span))
        return te_err_set(err, TE_EINVAL, "expected a span object, got %s",
                          te_otlp_type_name(span));
    if (te_otlp_get_id(span, "traceId", 32, trace, err) < 0 ||
        te_otlp_get_id(span, "spanId", 16, sid, err) < 0 ||
        te_otlp_get_id(span, "parentSpanId", 16, parent, err) < 0)
        return TE_EINVAL;
    if (!trace[0])
        return te_err_set(err, TE_EINVAL, "span has no \"traceId\"");
    if (!sid[0])
        return te_err_set(err, TE_EINVAL, "span has no \"spanId\"");
    if (!cJSON_IsString(name))
        return te_err_set(err, TE_EINVAL, "span \"name\" must be a string, got %s",
                          te_otlp_type_name(name));
    if (te_otlp_get_u64(span, "startTimeUnixNano", &start, err) < 0 ||
        te_otlp_get_u64(span, "endTimeUnixNano", &end, err) < 0)
        return TE_EINVAL;
    if (start == 0)
        return te_err_set(err, TE_EINVAL, "span has no \"startTimeUnixNano\"");
    if (end && end < start)
        return te_err_set(err, TE_EINVAL,
                          "span ends (endTimeUnixNano %" PRId64 ") before it "
                          "starts (startTimeUnixNano %" PRId64 ")",
                          end, start);
    kind = te_otlp_get_enum(span, "kind", "SPAN_KIND_", SPAN_KINDS, 6, err);
    if (kind < 0)
        return TE_EINVAL;
    if (status && !cJSON_IsObject(status))
        return te_err_set(err, TE_EINVAL, "span \"status\" must be an object, got %s",
                          te_otlp_type_name(status));
    if (status &&
        (code = te_otlp_get_enum(status, "code", "STATUS_CODE_", STATUS_CODES, 3, err)) < 0)
        return TE_EINVAL;
    if (te_otlp_check_attrs(attrs, err) < 0)
        return TE_EINVAL;

    /* GenAI semantic conventions -> llm_call */
    te_otlp_item_t probe = {0};
    const char *provider, *system, *model, *rmodel, *op, *etype;
    double in_tok = 0, out_tok = 0;
    bool have_in, have_out;
    if (te_otlp_attr_string(&probe, attrs, "gen_ai.provider.name", &provider, err) < 0 ||
        te_otlp_attr_string(&probe, attrs, "gen_ai.system", &system, err) < 0 ||
        te_otlp_attr_string(&probe, attrs, "gen_ai.request.model", &model, err) < 0 ||
        te_otlp_attr_string(&probe, attrs, "gen_ai.response.model", &rmodel, err) < 0 ||
        te_otlp_attr_string(&probe, attrs, "gen_ai.operation.name", &op, err) < 0 ||
        te_otlp_attr_string(&probe, attrs, "error.type", &etype, err) < 0)
        return TE_EINVAL;
    bool genai = provider || system || model || rmodel || op;
    int64_t ts = start;
    rc = te_otlp_item_init(it, genai ? "llm_call" : "span", ts, w->service);
    if (rc == 0)
        rc = te_otlp_item_str(it, "trace_id", trace);
    if (rc == 0)
        rc = te_otlp_item_str(it, "span_id", sid);
    if (rc == 0)
        rc = te_otlp_item_str(it, "parent_span_id", parent);
    if (rc == 0) {
        /* (source, id) makes an exporter's retry idempotent (SPEC 2) */
        char id[64];
        snprintf(id, sizeof(id), "%s-%s", trace, sid);
        rc = te_otlp_item_str(it, "id", id);
    }
    if (rc == 0)
        rc = te_otlp_item_tag(it, "service.name", w->service);
    if (rc < 0)
        return rc;
    double dur_ms = end ? (double)(end - start) / 1e6 : -1;
    if (genai) {
        if (provider)
            it->consumed[it->nconsumed++] = "gen_ai.provider.name";
        else if (system)
            it->consumed[it->nconsumed++] = "gen_ai.system";
        if (model)
            it->consumed[it->nconsumed++] = "gen_ai.request.model";
        else if (rmodel)
            it->consumed[it->nconsumed++] = "gen_ai.response.model";
        if (op)
            it->consumed[it->nconsumed++] = "gen_ai.operation.name";
        const char *st = "ok";
        if (code == 2 || etype)
            st = etype && has_timeout(etype) ? "timeout" : "error";
        if ((rc = te_otlp_item_tag(it, "provider", provider ? provider : system)) < 0 ||
            (rc = te_otlp_item_tag(it, "model", model ? model : rmodel)) < 0 ||
            (rc = te_otlp_item_tag(it, "operation", op)) < 0 ||
            (rc = te_otlp_item_tag(it, "status", st)) < 0)
            return rc;
        if (te_otlp_attr_number(it, attrs, "gen_ai.usage.input_tokens", &in_tok, &have_in, err) < 0)
            return TE_EINVAL;
        if (!have_in && te_otlp_attr_number(it, attrs, "gen_ai.usage.prompt_tokens", &in_tok,
                                            &have_in, err) < 0)
            return TE_EINVAL;
        if (te_otlp_attr_number(it, attrs, "gen_ai.usage.output_tokens", &out_tok, &have_out, err) <
            0)
            return TE_EINVAL;
        if (!have_out && te_otlp_attr_number(it, attrs, "gen_ai.usage.completion_tokens", &out_tok,
                                             &have_out, err) < 0)
            return TE_EINVAL;
        if ((have_in && (rc = te_otlp_item_field(it, "input_tokens", in_tok)) < 0) ||
            (have_out && (rc = te_otlp_item_field(it, "output_tokens", out_tok)) < 0) ||
            (dur_ms >= 0 && (rc = te_otlp_item_field(it, "latency_ms", dur_ms)) < 0))
            return rc;
    } else {
        if ((rc = te_otlp_item_tag(it, "name", name->valuestring)) < 0 ||
            (kind && (rc = te_otlp_item_tag(it, "span.kind", SPAN_KINDS[kind])) < 0) ||
            (rc = te_otlp_item_tag(it, "status", STATUS_CODES[code])) < 0 ||
            (dur_ms >= 0 && (rc = te_otlp_item_field(it, "duration_ms", dur_ms)) < 0))
            return rc;
    }
    const cJSON *smsg = status ? te_otlp_member(status, "message") : NULL;
    if (cJSON_IsString(smsg) && smsg->valuestring[0]) {
        cJSON *body = cJSON_AddObjectToObject(it->obj, "body");
        if (!body || !cJSON_AddStringToObject(body, "status_message", smsg->valuestring))
            return TE_ENOMEM;
    }
    return te_otlp_add_attrs(it, attrs, err);
}

static const char *const SEVERITY_TEXT[] = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"};

static int log_item(walk_t *w, const cJSON *rec, te_otlp_item_t *it, te_err_t *err)
{
    char trace[33], sid[17];
    int64_t t, observed;
    const cJSON *attrs = te_otlp_member(rec, "attributes");
    const cJSON *sev_text = te_otlp_member(rec, "severityText");
    const cJSON *sev_num = te_otlp_member(rec, "severityNumber");
    double sevn = 0;
    int rc;

    if (!cJSON_IsObject(rec))
        return te_err_set(err, TE_EINVAL, "expected a log record object, got %s",
                          te_otlp_type_name(rec));
    if (te_otlp_get_id(rec, "traceId", 32, trace, err) < 0 ||
        te_otlp_get_id(rec, "spanId", 16, sid, err) < 0 ||
        te_otlp_get_u64(rec, "timeUnixNano", &t, err) < 0 ||
        te_otlp_get_u64(rec, "observedTimeUnixNano", &observed, err) < 0 ||
        te_otlp_check_attrs(attrs, err) < 0)
        return TE_EINVAL;
    if (sev_text && !cJSON_IsString(sev_text))
        return te_err_set(err, TE_EINVAL, "\"severityText\" must be a string, got %s",
                          te_otlp_type_name(sev_text));
    if (sev_num) {
        if (cJSON_IsString(sev_num) && !strncmp(sev_num->valuestring, "SEVERITY_NUMBER_", 16)) {
            /* the enum's name: SEVERITY_NUMBER_WARN2 and the like */
            const char *s = sev_num->valuestring + 16;
            for (int i = 0; i < 6; i++) {
                size_t n = strlen(SEVERITY_TEXT[i]);
                if (!strncmp(s, SEVERITY_TEXT[i], n) &&
                    (s[n] == '\0' || (s[n] >= '2' && s[n] <= '4' && s[n + 1] == '\0')))
                    sevn = 1 + 4 * i + (s[n] ? s[n] - '1' : 0);
            }
            if (sevn == 0 && strcmp(s, "UNSPECIFIED") != 0)
                return te_err_set(err, TE_EINVAL,
                                  "\"severityNumber\": \"%.40s\" is not a "
                                  "known value",
                                  sev_num->valuestring);
        } else if (!cJSON_IsNumber(sev_num) || sev_num->valuedouble < 0 ||
                   sev_num->valuedouble > 24 ||
                   sev_num->valuedouble != floor(sev_num->valuedouble)) {
            return te_err_set(err, TE_EINVAL, "\"severityNumber\" must be 0 to 24");
        } else {
            sevn = sev_num->valuedouble;
        }
    }
    rc = te_otlp_item_init(it, "log", t ? t : observed ? observed : w->recv_ts_ns, w->service);
    if (rc == 0)
        rc = te_otlp_item_str(it, "trace_id", trace);
    if (rc == 0)
        rc = te_otlp_item_str(it, "span_id", sid);
    if (rc == 0)
        rc = te_otlp_item_tag(it, "service.name", w->service);
    if (rc == 0 && sev_text && sev_text->valuestring[0])
        rc = te_otlp_item_tag(it, "severity_text", sev_text->valuestring);
    else if (rc == 0 && sevn > 0)
        rc = te_otlp_item_tag(it, "severity_text", SEVERITY_TEXT[((int)sevn - 1) / 4]);
    if (rc == 0 && sevn > 0)
        rc = te_otlp_item_field(it, "severity_number", sevn);
    if (rc < 0)
        return rc;
    const cJSON *body = te_otlp_member(rec, "body");
    if (body) {
        cJSON *b = NULL;
        rc = te_otlp_any_to_json(body, "body", 1, &b, err);
        if (rc < 0)
            return rc;
        if (cJSON_IsNull(b))
            cJSON_Delete(b);
        else
            cJSON_AddItemToObject(it->obj, "body", b);
    }
    return te_otlp_add_attrs(it, attrs, err);
}

/* One metric data point. type: "gauge", "sum", "histogram",
 * "exponentialHistogram", "summary". */
static int point_item(walk_t *w, const char *mname, const char *type, const cJSON *pt,
                      te_otlp_item_t *it, te_err_t *err)
{
    int64_t t, count;
    double v;
    const cJSON *attrs = te_otlp_member(pt, "attributes");
    int rc;

    if (!cJSON_IsObject(pt))
        return te_err_set(err, TE_EINVAL, "expected a data point object, got %s",
                          te_otlp_type_name(pt));
    if (te_otlp_get_u64(pt, "timeUnixNano", &t, err) < 0 || te_otlp_check_attrs(attrs, err) < 0)
        return TE_EINVAL;
    rc = te_otlp_item_init(it, "metric", t ? t : w->recv_ts_ns, w->service);
    if (rc == 0)
        rc = te_otlp_item_tag(it, "name", mname);
    if (rc == 0)
        rc = te_otlp_item_tag(it, "service.name", w->service);
    if (rc < 0)
        return rc;
    if (!strcmp(type, "gauge") || !strcmp(type, "sum")) {
        const cJSON *d = te_otlp_member(pt, "asDouble"), *i = te_otlp_member(pt, "asInt");
        if (d)
            rc = te_otlp_parse_double(d, "\"asDouble\"", &v, err);
        else if (i)
            rc = te_otlp_parse_i64(i, "\"asInt\"", &v, err);
        else
            return te_err_set(err, TE_EINVAL,
                              "data point has neither \"asDouble\" nor "
                              "\"asInt\"");
        if (rc < 0)
            return rc;
        if ((rc = te_otlp_item_field(it, "value", v)) < 0)
            return rc;
    } else {
        static const char *const opt[] = {"sum", "min", "max"};
        if (te_otlp_get_u64(pt, "count", &count, err) < 0)
            return TE_EINVAL;
        if ((rc = te_otlp_item_field(it, "count", (double)count)) < 0)
            return rc;
        for (size_t k = 0; k < 3; k++) {
            const cJSON *x = te_otlp_member(pt, opt[k]);
            char what[16];
            if (!x)
                continue;
            snprintf(what, sizeof(what), "\"%s\"", opt[k]);
            if (te_otlp_parse_double(x, what, &v, err) < 0)
                return TE_EINVAL;
            if ((rc = te_otlp_item_field(it, opt[k], v)) < 0)
                return rc;
        }
        const cJSON *qs = te_otlp_member(pt, "quantileValues");
        if (qs && !cJSON_IsArray(qs))
            return te_err_set(err, TE_EINVAL, "\"quantileValues\" must be an array");
        const cJSON *q;
        cJSON_ArrayForEach (q, qs) {
            double qq = 0, qv = 0; /* proto3 JSON leaves out zeros */
            char key[32];
            if (!cJSON_IsObject(q))
                return te_err_set(err, TE_EINVAL, "\"quantileValues\" holds a %s, not an object",
                                  te_otlp_type_name(q));
            if ((te_otlp_member(q, "quantile") &&
                 te_otlp_parse_double(te_otlp_member(q, "quantile"), "\"quantile\"", &qq, err) <
                     0) ||
                (te_otlp_member(q, "value") &&
                 te_otlp_parse_double(te_otlp_member(q, "value"), "quantile \"value\"", &qv, err) <
                     0))
                return TE_EINVAL;
            if (qq < 0 || qq > 1)
                return te_err_set(err, TE_EINVAL, "quantile %g is not in [0, 1]", qq);
            snprintf(key, sizeof(key), "p%.10g", qq * 100);
            if ((rc = te_otlp_item_field(it, key, qv)) < 0)
                return rc;
        }
    }
    return te_otlp_add_attrs(it, attrs, err);
}

/* ---- the skeleton ---- */

/* The array member key of obj (absent/null: NULL). */
static int get_array(const cJSON *obj, const char *key, const cJSON **out, const char *where,
                     te_err_t *err)
{
    const cJSON *v = te_otlp_member(obj, key);
    *out = v;
    if (v && !cJSON_IsArray(v))
        return te_err_set(err, TE_EPARSE, "%s\"%s\" must be an array, got %s", where, key,
                          te_otlp_type_name(v));
    return 0;
}

static const char *const TOP[] = {"resourceSpans", "resourceLogs", "resourceMetrics"};
static const char *const SCOPE[] = {"scopeSpans", "scopeLogs", "scopeMetrics"};
static const char *const ITEMS[] = {"spans", "logRecords", "metrics"};
static const char *const PATHS[] = {"/v1/traces", "/v1/logs", "/v1/metrics"};

static int resource_service(walk_t *w, const cJSON *res, const char *where, te_err_t *err)
{
    const cJSON *resource = te_otlp_member(res, "resource");
    const cJSON *attrs = resource ? te_otlp_member(resource, "attributes") : NULL;
    w->service = NULL;
    if (resource && !cJSON_IsObject(resource))
        return te_err_set(err, TE_EPARSE, "%s\"resource\" must be an object, got %s", where,
                          te_otlp_type_name(resource));
    if (te_otlp_check_attrs(attrs, err) < 0) {
        char why[TE_ERR_MSG_MAX];
        memcpy(why, err->msg, sizeof(why));
        return te_err_set(err, TE_EPARSE, "%sresource: %.300s", where, why);
    }
    const cJSON *v = te_otlp_find_attr(attrs, "service.name");
    const cJSON *s = cJSON_IsObject(v) ? te_otlp_member(v, "stringValue") : NULL;
    if (v && !cJSON_IsString(s))
        return te_err_set(err, TE_EPARSE,
                          "%sresource attribute \"service.name\" must be a "
                          "stringValue",
                          where);
    w->service = s ? s->valuestring : NULL;
    return 0;
}

static int metric_points(walk_t *w, const cJSON *m, const char *prefix, te_err_t *err)
{
    static const char *const TYPES[] = {"gauge", "sum", "histogram", "exponentialHistogram",
                                        "summary"};
    const cJSON *name = cJSON_IsObject(m) ? te_otlp_member(m, "name") : NULL;
    const cJSON *data = NULL, *pts = NULL;
    const char *type = NULL;
    int rc;

    snprintf(w->path, sizeof(w->path), "%s", prefix);
    if (!cJSON_IsObject(m)) {
        reject(w, "expected a metric object");
        return 0;
    }
    for (size_t k = 0; k < 5 && !data; k++)
        if ((data = te_otlp_member(m, TYPES[k])) != NULL)
            type = TYPES[k];
    if (!cJSON_IsString(name) || !name->valuestring[0]) {
        reject(w, "metric has no \"name\"");
        return 0;
    }
    if (!data) {
        reject(w, "metric has no gauge, sum, histogram, exponentialHistogram or summary");
        return 0;
    }
    if (!cJSON_IsObject(data) ||
        ((pts = te_otlp_member(data, "dataPoints")) && !cJSON_IsArray(pts))) {
        reject(w, "expected {\"dataPoints\":[...]}");
        return 0;
    }
    const cJSON *pt;
    size_t i = 0;
    cJSON_ArrayForEach (pt, pts) {
        te_otlp_item_t it = {0};
        te_err_clear(err);
        snprintf(w->path, sizeof(w->path), "%.120s.%.20s.dataPoints[%zu]", prefix, type, i++);
        rc = point_item(w, name->valuestring, type, pt, &it, err);
        if ((rc = finish(w, &it, rc, err)) < 0)
            return rc;
    }
    return 0;
}

int te_otlp_convert(te_otlp_signal_t sig, const char *json, size_t len, int64_t recv_ts_ns,
                    te_otlp_result_t *out, te_err_t *err)
{
    const char *endp = NULL;
    te_err_t local;
    if (!err)
        err = &local;
    memset(out, 0, sizeof(*out));
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &endp, 0);
    if (!root) {
        size_t at = endp && endp >= json ? (size_t)(endp - json) : 0;
        return te_err_set(err, TE_EPARSE,
                          "the body is not valid JSON (error near byte %zu); "
                          "send an OTLP/HTTP JSON request",
                          at);
    }
    while (endp && endp < json + len &&
           (*endp == ' ' || *endp == '\t' || *endp == '\r' || *endp == '\n'))
        endp++;
    int rc = 0;
    if (endp != json + len) {
        rc = te_err_set(err, TE_EPARSE, "unexpected text after the JSON object (byte %zu)",
                        (size_t)(endp - json));
        goto done;
    }
    if (!cJSON_IsObject(root)) {
        rc = te_err_set(err, TE_EPARSE, "expected an OTLP JSON object {\"%s\":[...]}, got %s",
                        TOP[sig], te_otlp_type_name(root));
        goto done;
    }
    const cJSON *top;
    if ((rc = get_array(root, TOP[sig], &top, "", err)) < 0)
        goto done;
    if (!top) {
        for (int s = 0; s < 3; s++) {
            if (s != (int)sig && te_otlp_member(root, TOP[s])) {
                rc = te_err_set(err, TE_EPARSE,
                                "this body holds \"%s\", not \"%s\": POST it "
                                "to %s",
                                TOP[s], TOP[sig], PATHS[s]);
                goto done;
            }
        }
    }

    walk_t w = {.sig = sig, .recv_ts_ns = recv_ts_ns, .r = out};
    const cJSON *res;
    size_t ri = 0;
    cJSON_ArrayForEach (res, top) {
        char where[96];
        const cJSON *scopes;
        snprintf(where, sizeof(where), "%s[%zu]: ", TOP[sig], ri);
        if (!cJSON_IsObject(res)) {
            rc = te_err_set(err, TE_EPARSE, "%sexpected an object, got %s", where,
                            te_otlp_type_name(res));
            goto done;
        }
        if ((rc = resource_service(&w, res, where, err)) < 0 ||
            (rc = get_array(res, SCOPE[sig], &scopes, where, err)) < 0)
            goto done;
        const cJSON *scope;
        size_t si = 0;
        cJSON_ArrayForEach (scope, scopes) {
            const cJSON *items;
            snprintf(where, sizeof(where), "%s[%zu].%s[%zu]: ", TOP[sig], ri, SCOPE[sig], si);
            if (!cJSON_IsObject(scope)) {
                rc = te_err_set(err, TE_EPARSE, "%sexpected an object, got %s", where,
                                te_otlp_type_name(scope));
                goto done;
            }
            if ((rc = get_array(scope, ITEMS[sig], &items, where, err)) < 0)
                goto done;
            const cJSON *x;
            size_t i = 0;
            cJSON_ArrayForEach (x, items) {
                te_otlp_item_t it = {0};
                te_err_clear(err);
                snprintf(w.path, sizeof(w.path), "%s[%zu].%s[%zu].%s[%zu]", TOP[sig], ri,
                         SCOPE[sig], si, ITEMS[sig], i++);
                if (sig == TE_OTLP_METRICS) {
                    char prefix[256];
                    memcpy(prefix, w.path, sizeof(prefix));
                    rc = metric_points(&w, x, prefix, err);
                } else {
                    rc = sig == TE_OTLP_TRACES ? span_item(&w, x, &it, err)
                                               : log_item(&w, x, &it, err);
                    rc = finish(&w, &it, rc, err);
                }
                if (rc < 0)
                    goto done;
            }
            si++;
        }
        ri++;
    }
    rc = 0;
done:
    cJSON_Delete(root);
    if (rc == TE_ENOMEM)
        te_err_set(err, TE_ENOMEM, "out of memory");
    return rc;
}

void te_otlp_result_free(te_otlp_result_t *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        te_event_free(r->events[i]);
    free(r->events);
    memset(r, 0, sizeof(*r));
}

const char *te_otlp_item_name(te_otlp_signal_t sig)
{
    static const char *const names[] = {"Spans", "LogRecords", "DataPoints"};
    return names[sig];
}
