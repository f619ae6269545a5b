/*
 * api.h - the HTTP routes of SPEC section 5 (issue #2 subset).
 *
 * THREAD: loop. Each handler gets a complete request and must answer it
 * exactly once (te_http_respond*), now or later. Handlers that read the
 * database run the read on libuv's pool (uv_queue_work) with a read-only
 * store opened for the job, and answer in the after-work callback.
 */
#ifndef TE_API_API_H
#define TE_API_API_H

#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"
#include "../ingest/http.h"
#include "../store/store.h"

struct te_engine;

#define TE_API_MAX_ERRORS 1000   /* per-event errors listed in one answer */

/* POST /v1/events: NDJSON, a JSON array or one object; gzip allowed.
 * Answers after commit (see docs/http-api.md). */
void te_api_events_post(struct te_engine *e, te_http_req_t *req);

/* POST /v1/traces, /v1/logs, /v1/metrics: OTLP/HTTP JSON (gzip allowed)
 * -> events of kind span|llm_call, log, metric (docs/otlp.md). 200 {} or
 * {"partialSuccess":{...}} after commit; 400 not an OTLP JSON request, 415
 * protobuf, 413/503 as POST /v1/events (routes_otlp.c). */
void te_api_otlp_traces(struct te_engine *e, te_http_req_t *req);
void te_api_otlp_logs(struct te_engine *e, te_http_req_t *req);
void te_api_otlp_metrics(struct te_engine *e, te_http_req_t *req);

/* GET /v1/events: stored events, newest first, json or csv. */
void te_api_events_get(struct te_engine *e, te_http_req_t *req);

/* GET /v1/query: aggregates (te_store_query), json or csv. */
void te_api_query_get(struct te_engine *e, te_http_req_t *req);

/* GET /v1/health: {"status":"ok"}. */
void te_api_health(struct te_engine *e, te_http_req_t *req);

/* GET /v1/status: queue, ingest, db, listeners. */
void te_api_status(struct te_engine *e, te_http_req_t *req);

/* GET /metrics: Prometheus text exposition 0.0.4. */
void te_api_metrics(struct te_engine *e, te_http_req_t *req);

/* GET /: a small self-contained dashboard page. */
void te_api_dashboard(struct te_engine *e, te_http_req_t *req);

/* Query parameters shared by /v1/events and /v1/query. Owns copies of the
 * where values; free with te_api_filter_free. */
typedef struct te_api_filter {
    int64_t since_ns, until_ns;
    te_tag_filter_t where[TE_HTTP_MAX_PARAMS];
    size_t nwhere;
    const char *values[TE_HTTP_MAX_PARAMS];
    char *copies[TE_HTTP_MAX_PARAMS];
    size_t ncopies;
} te_api_filter_t;

/* Reads since (default 24h ago), until (default now) and every where=TAG:VAL
 * (split at the first ':', repeated tags OR together) from req. Returns 0,
 * or TE_EINVAL with err naming the bad parameter. Call te_api_filter_free
 * either way. */
int te_api_filter_parse(const te_http_req_t *req, te_api_filter_t *f, te_err_t *err);

/* Frees the copies held by f. */
void te_api_filter_free(te_api_filter_t *f);

/* Reads format=json|csv (default json) into *csv. Returns 0 or TE_EINVAL. */
int te_api_format_parse(const te_http_req_t *req, int *csv, te_err_t *err);

/* Appends one RFC 4180 CSV cell (quoted when it holds , " CR or LF). */
void te_api_csv_cell(te_buf_t *b, const char *s, size_t len);

/* Appends a number as JSON: the shortest text that reads back the same;
 * null when not finite. */
void te_api_json_num(te_buf_t *b, double v);

/* ---- issue #3: rules (api/routes_rules.c) ---- */

struct te_reload_file;
struct te_ruleset;

/* GET /v1/rules: {"scripts":[{"file","status","error","loaded_at",
 * "version","rules":[{"name","type","status","error","last_eval","evals",
 * "cpu_ns",...}]}]} (SPEC 5). */
void te_api_rules_get(struct te_engine *e, te_http_req_t *req);

/* GET /v1/alerts: ?state=pending|firing|resolved, ?limit=N (<= 1000) ->
 * {"alerts":[...]} most recently changed first (routes_alerts.c). */
void te_api_alerts_get(struct te_engine *e, te_http_req_t *req);

/* POST /v1/alerts/{id}/ack {"by","comment"}: acknowledges an active alert
 * (200 with the alert, 404 when no active alert has that id). */
void te_api_alert_post(struct te_engine *e, te_http_req_t *req);

/* GET /v1/silences?state=active|all, POST /v1/silences {matchers, until|for,
 * comment, by}, DELETE /v1/silences/{id} (routes_silences.c). */
void te_api_silences_get(struct te_engine *e, te_http_req_t *req);
void te_api_silences_post(struct te_engine *e, te_http_req_t *req);
void te_api_silence_delete(struct te_engine *e, te_http_req_t *req);

/* GET /v1/recommendations: ?state=open|resolved|all (default open),
 * ?severity=info|warning|critical, ?limit=N (<= 1000) ->
 * {"recommendations":[...]} (routes_recs.c). */
void te_api_recs_get(struct te_engine *e, te_http_req_t *req);

/* GET /v1/runs: ?status=running|stale|succeeded|failed|aborted, ?since=D,
 * ?limit=N (<= 1000, default 20), ?stale_after=D -> {"runs":[...]} newest
 * start first; GET /v1/runs/{id} -> the run with its steps, 404 for an
 * unknown id (routes_runs.c, model in store/runs.h). */
void te_api_runs_get(struct te_engine *e, te_http_req_t *req);
void te_api_run_get(struct te_engine *e, te_http_req_t *req);

/* GET /v1/reports: {"reports":[{"name","title","description","schedule",
 * "file","line"}],"errors":["file:line: message"]} (routes_reports.c). */
void te_api_reports_list(struct te_engine *e, te_http_req_t *req);

/* GET /v1/reports/{name}?since=&until=&format=md|html|json|csv&param.K=V:
 * the rendered report (default html) with its Content-Type; 404 for an
 * unknown name (the message lists the names), 400 for a bad parameter,
 * 500 when the template fails (routes_reports.c). */
void te_api_report_get(struct te_engine *e, te_http_req_t *req);

/* POST /v1/rules/reload: reloads every script, then answers like GET. */
void te_api_rules_reload(struct te_engine *e, te_http_req_t *req);

/* Appends the /v1/rules object for files[0..n) and their live rules in rs
 * (the CLI's `rules list --format json` prints the same). */
void te_api_rules_json(te_buf_t *b, const struct te_reload_file *files, size_t n,
                       const struct te_ruleset *rs);

#endif
