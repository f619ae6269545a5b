/*
 * routes_status.c - GET /v1/health, /v1/status, /metrics and the small
 * dashboard page at /.
 *
 * THREAD: loop. These answer from counters the loop owns plus
 * te_writer_get_stats (thread-safe) and two stat(2) calls for the database
 * size; nothing here opens SQLite, so health checks stay cheap.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../core/time.h"
#include "../engine_int.h"
#include "../engine_alerts.h"
#include "../engine_recs.h"
#include "../engine_reports.h"
#include "../engine_rules.h"
#include "../ingest/redact.h"
#include "api.h"

static int64_t file_bytes(const char *path, const char *suffix)
{
    char p[1024];
    struct stat st;
    snprintf(p, sizeof(p), "%s%s", path, suffix);
    return stat(p, &st) == 0 ? (int64_t)st.st_size : 0;
}

typedef struct totals {
    te_writer_stats_t ws;
    te_stream_stats_t tcp, unix_s;
    te_udp_stats_t udp;
    uint64_t tail_rejected;
    uint64_t rejected, dropped;
} totals_t;

static void gather(const te_engine_t *e, totals_t *t)
{
    memset(t, 0, sizeof(*t));
    if (e->writer)
        te_writer_get_stats(e->writer, &t->ws);
    if (e->tcp)
        te_stream_listener_stats(e->tcp, &t->tcp);
    if (e->unix_l)
        te_stream_listener_stats(e->unix_l, &t->unix_s);
    if (e->udp)
        te_udp_listener_stats(e->udp, &t->udp);
    t->tail_rejected = te_tail_rejected(e->tail);
    t->rejected = e->http_rejected + t->tcp.rejected + t->unix_s.rejected + t->udp.rejected +
                  t->tail_rejected;
    t->dropped = t->udp.dropped;
}

static double uptime_s(const te_engine_t *e)
{
    return (double)(te_time_mono_ns() - e->start_mono_ns) / 1e9;
}

static void respond_buf(te_http_req_t *req, te_buf_t *b, const char *ctype)
{
    if (b->oom) {
        te_buf_free(b);
        te_http_respond_error(req, 500, NULL, "out of memory");
        return;
    }
    te_http_respond_take(req, 200, ctype, NULL, b->p, b->len);
}

void te_api_health(te_engine_t *e, te_http_req_t *req)
{
    static const char ok[] = "{\"status\":\"ok\"}\n";
    (void)e;
    te_http_respond(req, 200, NULL, NULL, ok, sizeof(ok) - 1);
}

static void listener_json(te_buf_t *b, const char *name, const char *addr, bool first)
{
    te_buf_addf(b, "%s\"%s\":", first ? "" : ",", name);
    if (addr)
        te_buf_add_json_str(b, addr, strlen(addr));
    else
        te_buf_adds(b, "null");
}

/* "notifications":{"sent","failed","held","outbox_pending","notifiers":[{"name",
 * "type","sent","failed","consecutive_failures","queued","in_flight","last_ok",
 * "last_error","failing"}]} -- a notifier failing 3 times in a row is "failing" */
static void notifiers_json(te_engine_t *e, te_buf_t *b)
{
    te_engine_alerts_t *A = te_engine_rules_alerts(e);
    te_engine_alerts_counts_t c;
    te_engine_alerts_counts(A, &c);
    te_buf_addf(b, "\"notifications\":{\"sent\":%llu,\"failed\":%llu,\"held\":%llu,"
                   "\"outbox_pending\":%zu,\"notifiers\":[",
                (unsigned long long)c.notify_sent, (unsigned long long)c.notify_failed,
                (unsigned long long)c.notify_held, c.outbox_pending);
    te_notifier_health_t h[32];
    size_t n = te_engine_alerts_health(A, h, 32);
    for (size_t i = 0; i < n && i < 32; i++) {
        te_buf_adds(b, i ? ",{\"name\":" : "{\"name\":");
        te_buf_add_json_str(b, h[i].name, strlen(h[i].name));
        te_buf_adds(b, ",\"type\":");
        te_buf_add_json_str(b, h[i].type, strlen(h[i].type));
        te_buf_addf(b, ",\"sent\":%llu,\"failed\":%llu,\"consecutive_failures\":%llu,"
                       "\"queued\":%zu,\"in_flight\":%zu,\"failing\":%s,\"last_ok\":",
                    (unsigned long long)h[i].sent, (unsigned long long)h[i].failed,
                    (unsigned long long)h[i].consecutive_failures, h[i].queued, h[i].in_flight,
                    h[i].consecutive_failures >= 3 ? "true" : "false");
        if (h[i].last_ok_ns) {
            char t[40];
            te_time_format_rfc3339(h[i].last_ok_ns, t, sizeof(t));
            te_buf_add_json_str(b, t, strlen(t));
        } else {
            te_buf_adds(b, "null");
        }
        te_buf_adds(b, ",\"last_error\":");
        if (h[i].last_error[0])
            te_buf_add_json_str(b, h[i].last_error, strlen(h[i].last_error));
        else
            te_buf_adds(b, "null");
        te_buf_adds(b, "}");
    }
    te_buf_adds(b, "]}");
}

/* te_notifier_* series of /metrics */
static void notifier_metrics(te_engine_t *e, te_buf_t *b)
{
    te_engine_alerts_t *A = te_engine_rules_alerts(e);
    te_notifier_health_t h[32];
    size_t n = te_engine_alerts_health(A, h, 32);
    te_engine_alerts_counts_t c;
    te_engine_alerts_counts(A, &c);
    te_buf_adds(b, "# HELP te_notifications_held_total Notifications held back (silenced, "
                   "inhibited, acknowledged, flapping).\n# TYPE te_notifications_held_total "
                   "counter\n");
    te_buf_addf(b, "te_notifications_held_total %llu\n", (unsigned long long)c.notify_held);
    te_buf_adds(b, "# HELP te_outbox_pending Notifications queued and not yet delivered.\n"
                   "# TYPE te_outbox_pending gauge\n");
    te_buf_addf(b, "te_outbox_pending %zu\n", c.outbox_pending);
    te_buf_adds(b, "# HELP te_notifier_deliveries_total Deliveries per notifier, by result.\n"
                   "# TYPE te_notifier_deliveries_total counter\n");
    for (size_t i = 0; i < n && i < 32; i++) {
        te_buf_addf(b, "te_notifier_deliveries_total{notifier=\"%s\",result=\"sent\"} %llu\n",
                    h[i].name, (unsigned long long)h[i].sent);
        te_buf_addf(b, "te_notifier_deliveries_total{notifier=\"%s\",result=\"failed\"} %llu\n",
                    h[i].name, (unsigned long long)h[i].failed);
    }
    te_buf_adds(b, "# HELP te_notifier_consecutive_failures Failed attempts in a row per "
                   "notifier (0: the last one worked).\n# TYPE te_notifier_consecutive_failures "
                   "gauge\n");
    for (size_t i = 0; i < n && i < 32; i++)
        te_buf_addf(b, "te_notifier_consecutive_failures{notifier=\"%s\"} %llu\n", h[i].name,
                    (unsigned long long)h[i].consecutive_failures);
}

/* A Prometheus label value: backslash, quote and newline escaped. */
static void add_label_value(te_buf_t *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            te_buf_addf(b, "\\%c", *v);
        else if (*v == '\n')
            te_buf_adds(b, "\\n");
        else
            te_buf_addf(b, "%c", *v);
    }
}

/* "tail":[{"name","path","state","lines","submitted","committed","rejected",
 * "truncations","rotations","read_offset","saved_offset"}] */
static void tail_json(te_engine_t *e, te_buf_t *b)
{
    te_buf_adds(b, ",\"tail\":[");
    for (size_t i = 0; i < te_tail_count(e->tail); i++) {
        te_tail_source_stats_t s;
        te_tail_source_stats(e->tail, i, &s);
        te_buf_adds(b, i ? ",{\"name\":" : "{\"name\":");
        te_buf_add_json_str(b, s.name, strlen(s.name));
        te_buf_adds(b, ",\"path\":");
        te_buf_add_json_str(b, s.path, strlen(s.path));
        te_buf_addf(b, ",\"state\":\"%s\",\"lines\":%llu,\"submitted\":%llu,\"committed\":%llu,"
                       "\"rejected\":%llu,\"truncations\":%llu,\"rotations\":%llu,"
                       "\"read_offset\":%llu,\"saved_offset\":%llu}",
                    s.state, (unsigned long long)s.lines, (unsigned long long)s.submitted,
                    (unsigned long long)s.committed, (unsigned long long)s.rejected,
                    (unsigned long long)s.truncations, (unsigned long long)s.rotations,
                    (unsigned long long)s.read_offset, (unsigned long long)s.saved_offset);
    }
    te_buf_adds(b, "]");
}

void te_api_status(te_engine_t *e, te_http_req_t *req)
{
    totals_t t;
    te_buf_t b = {0};
    const char *db = e->cfg->db_path;

    gather(e, &t);
    te_buf_addf(&b, "{\"status\":\"%s\",\"uptime_s\":%.0f,", e->shutting_down ? "stopping" : "ok",
                     uptime_s(e));
    te_buf_addf(&b, "\"queue\":{\"events\":%llu,\"batches\":%llu,\"capacity\":%zu},",
                     (unsigned long long)t.ws.queued_events,
                     (unsigned long long)t.ws.queued_batches, e->queue_capacity);
    te_buf_addf(&b,
                     "\"ingest\":{\"accepted\":%llu,\"rejected\":%llu,\"dropped\":%llu,"
                     "\"duplicates\":%llu,\"failed\":%llu,\"rate_per_s\":",
                     (unsigned long long)e->accepted, (unsigned long long)t.rejected,
                     (unsigned long long)t.dropped, (unsigned long long)e->duplicates,
                     (unsigned long long)e->failed);
    te_api_json_num(&b, floor(te_engine_rate(e) * 10.0 + 0.5) / 10.0);
    te_buf_adds(&b, "},\"db\":{\"path\":");
    te_buf_add_json_str(&b, db, strlen(db));
    te_buf_addf(&b, ",\"bytes\":%lld,\"wal_bytes\":%lld},",
                     (long long)file_bytes(db, ""), (long long)file_bytes(db, "-wal"));
    te_engine_rules_counts_t rc;
    te_engine_rules_counts(e, &rc);
    te_buf_addf(&b,
                     "\"scripts\":{\"files\":%zu,\"errors\":%zu,\"disabled\":%zu,"
                     "\"rules\":%zu,\"rule_errors\":%llu,\"groups_dropped\":%llu,"
                     "\"reloads\":%llu},",
                     rc.files, rc.file_errors, rc.disabled, rc.rules,
                     (unsigned long long)rc.rule_errors, (unsigned long long)rc.groups_dropped,
                     (unsigned long long)rc.reloads);
    notifiers_json(e, &b);
    te_engine_recs_counts_t recs;
    te_engine_recs_counts(e, &recs);
    te_buf_addf(&b, ",\"recommendations\":{\"recommenders\":%zu,\"runs\":%llu,"
                    "\"failures\":%llu}",
                recs.recommenders, (unsigned long long)recs.runs,
                (unsigned long long)recs.failures);
    tail_json(e, &b);
    te_buf_adds(&b, ",\"listeners\":{");
    listener_json(&b, "http", e->http ? e->http_addr : NULL, true);
    listener_json(&b, "tcp", e->tcp ? te_stream_listener_address(e->tcp) : NULL, false);
    listener_json(&b, "udp", e->udp ? te_udp_listener_address(e->udp) : NULL, false);
    listener_json(&b, "unix", e->unix_l ? te_stream_listener_address(e->unix_l) : NULL, false);
    te_buf_addf(&b,
                     "},\"connections\":{\"http\":%zu,\"tcp\":%llu,\"unix\":%llu,"
                     "\"paused\":%llu}}\n",
                     e->http ? te_http_server_connections(e->http) : 0,
                     (unsigned long long)t.tcp.connections,
                     (unsigned long long)t.unix_s.connections,
                     (unsigned long long)(t.tcp.paused + t.unix_s.paused));
    respond_buf(req, &b, NULL);
}

static void metric_head(te_buf_t *b, const char *name, const char *type, const char *help)
{
    te_buf_addf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void te_api_metrics(te_engine_t *e, te_http_req_t *req)
{
    totals_t t;
    te_buf_t b = {0};
    static const char *const listeners[] = {"http", "tcp", "unix", "udp", "tail"};

    gather(e, &t);
    uint64_t rejected[5] = {e->http_rejected, t.tcp.rejected, t.unix_s.rejected, t.udp.rejected,
                            t.tail_rejected};

    metric_head(&b, "te_events_accepted_total", "counter",
                "Events committed to storage (stored plus idempotent duplicates).");
    te_buf_addf(&b, "te_events_accepted_total %llu\n", (unsigned long long)e->accepted);
    metric_head(&b, "te_events_rejected_total", "counter",
                "Events rejected as invalid, by listener (tail: lines of followed files).");
    for (int i = 0; i < 5; i++)
        te_buf_addf(&b, "te_events_rejected_total{listener=\"%s\"} %llu\n", listeners[i],
                         (unsigned long long)rejected[i]);
    metric_head(&b, "te_events_dropped_total", "counter",
                "Valid events dropped because the queue was full (UDP only: the others push "
                "back).");
    te_buf_addf(&b, "te_events_dropped_total{listener=\"udp\"} %llu\n",
                     (unsigned long long)t.udp.dropped);
    metric_head(&b, "te_events_duplicate_total", "counter",
                "Events accepted as re-sends of a stored (source, id).");
    te_buf_addf(&b, "te_events_duplicate_total %llu\n", (unsigned long long)e->duplicates);
    metric_head(&b, "te_events_failed_total", "counter",
                "Events in batches whose commit failed (not stored, answered 500).");
    te_buf_addf(&b, "te_events_failed_total %llu\n", (unsigned long long)e->failed);
    uint64_t redactions[TE_REDACT_NTYPES];
    te_redact_counts(te_redact_active(), redactions);
    metric_head(&b, "te_redactions_total", "counter",
                "Matches replaced by [REDACTED:type] at ingest, by type (redact block).");
    for (int i = 0; i < TE_REDACT_NTYPES; i++)
        te_buf_addf(&b, "te_redactions_total{type=\"%s\"} %llu\n", te_redact_type_name(i),
                    (unsigned long long)redactions[i]);
    if (te_tail_count(e->tail) > 0) {
        metric_head(&b, "te_tail_lines_total", "counter",
                    "Complete lines read from followed files (source blocks), by source.");
        for (size_t i = 0; i < te_tail_count(e->tail); i++) {
            te_tail_source_stats_t s;
            te_tail_source_stats(e->tail, i, &s);
            te_buf_adds(&b, "te_tail_lines_total{source=\"");
            add_label_value(&b, s.name);
            te_buf_addf(&b, "\"} %llu\n", (unsigned long long)s.lines);
        }
        metric_head(&b, "te_tail_saved_offset_bytes", "gauge",
                    "Committed read position in each followed file (a restart resumes there).");
        for (size_t i = 0; i < te_tail_count(e->tail); i++) {
            te_tail_source_stats_t s;
            te_tail_source_stats(e->tail, i, &s);
            te_buf_adds(&b, "te_tail_saved_offset_bytes{source=\"");
            add_label_value(&b, s.name);
            te_buf_addf(&b, "\"} %llu\n", (unsigned long long)s.saved_offset);
        }
    }
    metric_head(&b, "te_queue_events", "gauge", "Events waiting in the ingest queue.");
    te_buf_addf(&b, "te_queue_events %llu\n", (unsigned long long)t.ws.queued_events);
    metric_head(&b, "te_queue_capacity_events", "gauge", "Bound of the ingest queue.");
    te_buf_addf(&b, "te_queue_capacity_events %zu\n", e->queue_capacity);

    metric_head(&b, "te_commit_duration_seconds", "histogram",
                "Duration of storage transactions (group commits).");
    uint64_t cum = 0;
    for (int i = 0; i < 12; i++) {
        cum += t.ws.commit_hist[i];
        if (i == 11)
            te_buf_addf(&b, "te_commit_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                             (unsigned long long)cum);
        else
            te_buf_addf(&b, "te_commit_duration_seconds_bucket{le=\"%g\"} %llu\n",
                             te_writer_buckets[i], (unsigned long long)cum);
    }
    te_buf_adds(&b, "te_commit_duration_seconds_sum ");
    te_api_json_num(&b, (double)t.ws.commit_ns_total / 1e9);
    te_buf_addf(&b, "\nte_commit_duration_seconds_count %llu\n",
                     (unsigned long long)(t.ws.commits + t.ws.commit_failures));
    metric_head(&b, "te_commits_total", "counter", "Storage transactions committed.");
    te_buf_addf(&b, "te_commits_total %llu\n", (unsigned long long)t.ws.commits);
    metric_head(&b, "te_commit_failures_total", "counter", "Storage transactions that failed.");
    te_buf_addf(&b, "te_commit_failures_total %llu\n",
                     (unsigned long long)t.ws.commit_failures);

    metric_head(&b, "te_http_requests_total", "counter", "HTTP requests answered, by status code.");
    if (e->http) {
        for (int code = 100; code < 600; code++) {
            uint64_t n = te_http_server_count(e->http, code);
            if (n)
                te_buf_addf(&b, "te_http_requests_total{code=\"%d\"} %llu\n", code,
                                 (unsigned long long)n);
        }
    }
    te_engine_rules_counts_t rc;
    te_engine_rules_counts(e, &rc);
    metric_head(&b, "te_script_files", "gauge", "Rule script files known.");
    te_buf_addf(&b, "te_script_files %zu\n", rc.files);
    metric_head(&b, "te_script_load_errors", "gauge",
                "Script files whose last load failed (the previous version runs).");
    te_buf_addf(&b, "te_script_load_errors %zu\n", rc.file_errors);
    metric_head(&b, "te_scripts_disabled", "gauge",
                "Scripts disabled for blowing their instruction, time or memory budget.");
    te_buf_addf(&b, "te_scripts_disabled %zu\n", rc.disabled);
    metric_head(&b, "te_rules", "gauge", "Live rules and hooks.");
    te_buf_addf(&b, "te_rules %zu\n", rc.rules);
    metric_head(&b, "te_rule_errors_total", "counter", "Run-time errors of rules and hooks.");
    te_buf_addf(&b, "te_rule_errors_total %llu\n", (unsigned long long)rc.rule_errors);
    metric_head(&b, "te_rule_groups_dropped_total", "counter",
                "Events not counted in a rule because its group limit was reached.");
    te_buf_addf(&b, "te_rule_groups_dropped_total %llu\n",
                     (unsigned long long)rc.groups_dropped);
    metric_head(&b, "te_notifications_total", "counter",
                "Deliveries of configured notifiers (webhook, slack, file), by result.");
    te_buf_addf(&b, "te_notifications_total{result=\"sent\"} %llu\n",
                (unsigned long long)rc.notify_sent);
    te_buf_addf(&b, "te_notifications_total{result=\"failed\"} %llu\n",
                (unsigned long long)rc.notify_failed);
    notifier_metrics(e, &b);
    uint64_t rep_sent = 0, rep_failed = 0;
    te_engine_reports_notify_counts(e, &rep_sent, &rep_failed);
    metric_head(&b, "te_report_notifications_total", "counter",
                "Scheduled reports sent through notifiers, by result.");
    te_buf_addf(&b, "te_report_notifications_total{result=\"sent\"} %llu\n",
                (unsigned long long)rep_sent);
    te_buf_addf(&b, "te_report_notifications_total{result=\"failed\"} %llu\n",
                (unsigned long long)rep_failed);
    te_engine_recs_counts_t recs;
    te_engine_recs_counts(e, &recs);
    metric_head(&b, "te_recommendation_runs_total", "counter",
                "Recommender runs, by result.");
    te_buf_addf(&b, "te_recommendation_runs_total{result=\"ok\"} %llu\n",
                (unsigned long long)(recs.runs > recs.failures ? recs.runs - recs.failures : 0));
    te_buf_addf(&b, "te_recommendation_runs_total{result=\"failed\"} %llu\n",
                (unsigned long long)recs.failures);
    metric_head(&b, "te_script_reloads_total", "counter", "Script reloads applied.");
    te_buf_addf(&b, "te_script_reloads_total %llu\n", (unsigned long long)rc.reloads);
    metric_head(&b, "te_uptime_seconds", "gauge", "Seconds since the engine started.");
    te_buf_addf(&b, "te_uptime_seconds %.3f\n", uptime_s(e));
    respond_buf(req, &b, "text/plain; version=0.0.4; charset=utf-8");
}

#include "dashboard_html.h" /* generated from src/api/dashboard.html */

void te_api_dashboard(te_engine_t *e, te_http_req_t *req)
{
    (void)e;
    te_http_respond(req, 200, "text/html; charset=utf-8",
                    "Cache-Control: no-cache\r\nContent-Security-Policy: default-src 'self'; "
                    "script-src 'unsafe-inline'; style-src 'unsafe-inline'\r\n",
                    (const char *)dashboard_html, sizeof(dashboard_html) - 1);
}
