/*
 * engine.c - te_engine_serve: start-up, the router, batch completions and
 * an orderly shutdown (SPEC sections 3 and 5).
 *
 * THREAD: loop, except te_engine_batch_done (writer thread).
 *
 * The one idea: accepted means committed. Producers on the loop (HTTP,
 * TCP, Unix, UDP) submit batches to the writer; the writer calls
 * te_engine_batch_done after the commit, which only queues the batch for
 * the loop (see engine_int.h). Tailed files (source blocks) are one more
 * producer; their saved positions advance as their batches come back.
 * Shutdown runs in this order: close the listeners and tails (stop
 * accepting and reading; streams hand over what they had), stop the writer
 * (drain, commit, join), answer what completed, close every handle, run the
 * loop until uv_loop_close() returns 0.
 */
#include "engine.h"

#include <cjson/cJSON.h>
#include <http_parser.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "core/log.h"
#include "core/time.h"
#include "engine_int.h"
#include "api/auth.h"
#include "ingest/redact.h"
#include "engine_recs.h"
#include "engine_reports.h"
#include "engine_retention.h"
#include "engine_rules.h"
#include "store/store.h"

/* ---- batch completions ---- */

void te_engine_batch_done(te_batch_t *b)
{
    te_engine_done_t *d = b->ud;
    te_engine_t *e = d->e;

    /* From here on the engine owns b, so the writer's queue link is free:
     * chaining through it needs no allocation, which cannot fail. */
    b->next = NULL;
    pthread_mutex_lock(&e->done_lock);
    if (e->done_tail)
        e->done_tail->next = b;
    else
        e->done_head = b;
    e->done_tail = b;
    pthread_mutex_unlock(&e->done_lock);
    uv_async_send(&e->async);
}

static void complete(te_engine_t *e, te_batch_t *b)
{
    te_engine_done_t *d = b->ud;
    if (b->rc == 0) {
        e->accepted += b->stored + b->duplicates;
        e->duplicates += b->duplicates;
    } else {
        e->failed += b->n;
        te_log(TE_LOG_ERROR, "engine", "commit of %zu events failed: %s", b->n, b->err.msg);
    }
    te_engine_rules_batch(e, b); /* only committed events reach the rules */
    if (d && d->cb)
        d->cb(e, b, d->arg);
    else
        te_batch_free(b);
}

static void drain_done(te_engine_t *e)
{
    pthread_mutex_lock(&e->done_lock);
    te_batch_t *b = e->done_head;
    e->done_head = e->done_tail = NULL;
    pthread_mutex_unlock(&e->done_lock);

    while (b) {
        te_batch_t *next = b->next;
        complete(e, b);
        b = next;
    }
    if (e->tcp)
        te_stream_listener_resume(e->tcp);
    if (e->unix_l)
        te_stream_listener_resume(e->unix_l);
}

static void on_async(uv_async_t *h)
{
    drain_done(h->data);
}

/* ---- ingest rate ---- */

static void on_tick(uv_timer_t *t)
{
    te_engine_t *e = t->data;
    e->rate_samples[e->rate_pos] = e->accepted;
    e->rate_times[e->rate_pos] = te_time_mono_ns();
    e->rate_pos = (e->rate_pos + 1) % TE_ENGINE_RATE_SAMPLES;
    if (e->rate_count < TE_ENGINE_RATE_SAMPLES)
        e->rate_count++;
}

double te_engine_rate(const te_engine_t *e)
{
    if (e->rate_count == 0)
        return 0.0;
    size_t oldest = e->rate_count < TE_ENGINE_RATE_SAMPLES ? 0 : e->rate_pos;
    int64_t dt = te_time_mono_ns() - e->rate_times[oldest];
    if (dt <= 0)
        return 0.0;
    return (double)(e->accepted - e->rate_samples[oldest]) * 1e9 / (double)dt;
}

/* ---- router ---- */

typedef void (*route_fn)(te_engine_t *e, te_http_req_t *req);

/* A path ending in '/' matches that prefix followed by at least one more
 * character (the handler reads the rest: "/v1/reports/{name}"); any other
 * path matches exactly. Exact routes are tried first. */
typedef struct route {
    const char *path;
    route_fn get, post, del;
    const char *allow;
} route_t;

static const route_t routes[] = {
    {"/v1/events", te_api_events_get, te_api_events_post, NULL, "GET, POST"},
    {"/v1/query", te_api_query_get, NULL, NULL, "GET"},
    {"/v1/traces", NULL, te_api_otlp_traces, NULL, "POST"},
    {"/v1/logs", NULL, te_api_otlp_logs, NULL, "POST"},
    {"/v1/metrics", NULL, te_api_otlp_metrics, NULL, "POST"},
    {"/v1/health", te_api_health, NULL, NULL, "GET"},
    {"/v1/status", te_api_status, NULL, NULL, "GET"},
    {"/v1/rules", te_api_rules_get, NULL, NULL, "GET"},
    {"/v1/rules/reload", NULL, te_api_rules_reload, NULL, "POST"},
    {"/v1/alerts", te_api_alerts_get, NULL, NULL, "GET"},
    {"/v1/alerts/", NULL, te_api_alert_post, NULL, "POST"},
    {"/v1/silences", te_api_silences_get, te_api_silences_post, NULL, "GET, POST"},
    {"/v1/silences/", NULL, NULL, te_api_silence_delete, "DELETE"},
    {"/v1/recommendations", te_api_recs_get, NULL, NULL, "GET"},
    {"/v1/runs", te_api_runs_get, NULL, NULL, "GET"},
    {"/v1/runs/", te_api_run_get, NULL, NULL, "GET"},
    {"/v1/reports", te_api_reports_list, NULL, NULL, "GET"},
    {"/v1/reports/", te_api_report_get, NULL, NULL, "GET"},
    {"/metrics", te_api_metrics, NULL, NULL, "GET"},
    {"/", te_api_dashboard, NULL, NULL, "GET"},
};

/* SPEC 10: ingest for posting events, admin for other POSTs (reloads),
 * read for every GET but the liveness probe. Answers 401/403 itself. */
static bool authorized(te_engine_t *e, te_http_req_t *req, const route_t *r)
{
    char msg[160];
    unsigned scope;
    if (!e->auth || strcmp(r->path, "/v1/health") == 0)
        return true;
    if (req->method == HTTP_POST || req->method == HTTP_DELETE)
        scope = r->post == te_api_events_post || r->post == te_api_otlp_traces ||
                        r->post == te_api_otlp_logs || r->post == te_api_otlp_metrics
                    ? TE_SCOPE_INGEST
                    : TE_SCOPE_ADMIN;
    else
        scope = TE_SCOPE_READ;
    int status = te_auth_check(e->auth, req->authorization, scope, msg, sizeof(msg));
    if (status == 0)
        return true;
    te_http_respond_error(req, status, status == 401 ? "WWW-Authenticate: Bearer\r\n" : NULL,
                          "%s", msg);
    return false;
}

static bool route_matches(const route_t *r, const char *path, size_t plen, bool prefix)
{
    size_t rlen = strlen(r->path);
    bool is_prefix = rlen > 1 && r->path[rlen - 1] == '/';
    if (is_prefix != prefix)
        return false;
    if (!prefix)
        return rlen == plen && strncmp(r->path, path, plen) == 0;
    return plen > rlen && strncmp(r->path, path, rlen) == 0;
}

static void dispatch(te_engine_t *e, te_http_req_t *req, const route_t *r)
{
    char allow[64];
    if (!authorized(e, req, r))
        return;
    route_fn fn = NULL;
    if (req->method == HTTP_GET)
        fn = r->get;
    else if (req->method == HTTP_POST)
        fn = r->post;
    else if (req->method == HTTP_DELETE)
        fn = r->del;
    if (fn) {
        fn(e, req);
        return;
    }
    snprintf(allow, sizeof(allow), "Allow: %s\r\n", r->allow);
    te_http_respond_error(req, 405, allow, "method %s is not allowed on %s (allowed: %s)",
                          http_method_str((enum http_method)req->method), req->path, r->allow);
}

static void on_request(te_http_req_t *req, void *ud)
{
    te_engine_t *e = ud;
    size_t plen = strlen(req->path);

    /* one trailing slash is forgiven ("/v1/events/") */
    if (plen > 1 && req->path[plen - 1] == '/')
        plen--;
    for (int prefix = 0; prefix < 2; prefix++) {
        for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
            if (route_matches(&routes[i], req->path, plen, prefix)) {
                dispatch(e, req, &routes[i]);
                return;
            }
        }
    }
    te_http_respond_error(req, 404, NULL, "no route for %s %s",
                          http_method_str((enum http_method)req->method), req->path);
}

/* ---- start and stop ---- */

static bool enabled(const char *addr)
{
    return addr && addr[0] && strcmp(addr, "off") != 0;
}

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Everything of shutdown but the signal: idempotent, also used when
 * start-up fails half-way. */
static void shutdown_engine(te_engine_t *e)
{
    if (e->shutting_down)
        return;
    e->shutting_down = true;
    te_http_server_close(e->http);
    te_stream_listener_close(e->tcp);
    te_stream_listener_close(e->unix_l);
    te_udp_listener_close(e->udp);
    te_tail_close(e->tail);
    te_engine_rules_close(e); /* before the drain: last alert transitions commit */
    te_engine_recs_close(e);
    te_engine_reports_close(e);
    te_engine_retention_close(e);
    if (e->writer) {
        te_writer_t *w = e->writer;
        /* count what completes from now on: queued batches plus what the
         * streams handed over above are all still unanswered */
        uint64_t acc0 = e->accepted + e->failed;
        e->writer = NULL;
        te_writer_stop(w);
        drain_done(e);
        uint64_t after = e->accepted + e->failed - acc0;
        if (e->serving)
            te_log(TE_LOG_INFO, "engine", "shutdown: drained %llu events",
                   (unsigned long long)after);
    }
    if (e->handles_open) {
        e->handles_open = false;
        close_handle((uv_handle_t *)&e->sig_term);
        close_handle((uv_handle_t *)&e->sig_int);
        close_handle((uv_handle_t *)&e->sig_hup);
        close_handle((uv_handle_t *)&e->async);
        close_handle((uv_handle_t *)&e->tick);
    }
}

static void on_signal(uv_signal_t *h, int signum)
{
    te_engine_t *e = h->data;
    if (signum == SIGHUP) {
        te_log(TE_LOG_INFO, "engine", "SIGHUP: reloading scripts");
        te_engine_rules_reload(e, NULL, NULL);
        return;
    }
    te_log(TE_LOG_INFO, "engine", "shutdown: %s received, draining",
           signum == SIGTERM ? "SIGTERM" : "SIGINT");
    shutdown_engine(e);
}

static void walk_close(uv_handle_t *h, void *arg)
{
    (void)arg;
    close_handle(h);
}

static int start_handles(te_engine_t *e, te_err_t *err)
{
    int rc = uv_async_init(&e->loop, &e->async, on_async);
    if (rc < 0)
        return te_err_set(err, TE_EIO, "engine: cannot create the wake-up handle: %s",
                          uv_strerror(rc));
    e->async.data = e;
    uv_signal_init(&e->loop, &e->sig_term);
    uv_signal_init(&e->loop, &e->sig_int);
    uv_signal_init(&e->loop, &e->sig_hup);
    uv_timer_init(&e->loop, &e->tick);
    e->sig_term.data = e->sig_int.data = e->sig_hup.data = e->tick.data = e;
    e->handles_open = true;
    rc = uv_signal_start(&e->sig_term, on_signal, SIGTERM);
    if (rc == 0)
        rc = uv_signal_start(&e->sig_int, on_signal, SIGINT);
    if (rc == 0)
        rc = uv_signal_start(&e->sig_hup, on_signal, SIGHUP);
    if (rc == 0)
        rc = uv_timer_start(&e->tick, on_tick, 1000, 1000);
    if (rc < 0)
        return te_err_set(err, TE_EIO, "engine: cannot install signal handlers: %s",
                          uv_strerror(rc));
    uv_unref((uv_handle_t *)&e->tick);
    on_tick(&e->tick);
    return 0;
}

/* A tailed batch is back: its file's saved position moves (te_tail_committed
 * must see it before it is freed). */
static void on_tail_batch(te_engine_t *e, te_batch_t *b, void *arg)
{
    (void)arg;
    te_tail_committed(e->tail, b);
    te_batch_free(b);
}

/* The `source` key of a source block (the default source of its events),
 * read from the block's JSON; NULL when absent. Caller frees. */
static char *block_source(const te_config_source_t *s)
{
    cJSON *o = s->json ? cJSON_Parse(s->json) : NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "source");
    char *out = cJSON_IsString(v) ? strdup(v->valuestring) : NULL;
    cJSON_Delete(o);
    return out;
}

/* source "x" { type = "tail", path = ..., kind = ..., source = ... }: follows
 * each file; positions are saved in <db>.tail-positions. */
static int start_tail(te_engine_t *e, te_err_t *err)
{
    const te_config_t *cfg = e->cfg;
    char positions[4096];
    size_t n = 0;
    int rc = 0;

    if (cfg->nsources == 0)
        return 0;
    te_tail_source_t *src = calloc(cfg->nsources, sizeof(*src));
    char **defaults = calloc(cfg->nsources, sizeof(*defaults));
    if (!src || !defaults) {
        free(src);
        free(defaults);
        return te_err_set(err, TE_ENOMEM, "serve: out of memory");
    }
    for (size_t i = 0; i < cfg->nsources; i++) {
        const te_config_source_t *s = &cfg->sources[i];
        if (!s->type || strcmp(s->type, "tail") != 0 || !s->path)
            continue; /* the config schema admits only tail today */
        defaults[i] = block_source(s);
        src[n].name = s->name;
        src[n].path = s->path;
        src[n].kind = s->kind;
        src[n].source = defaults[i];
        n++;
    }
    snprintf(positions, sizeof(positions), "%s.tail-positions", cfg->db_path);
    e->tail_done.e = e;
    e->tail_done.cb = on_tail_batch;
    te_tail_opts_t to = {.sources = src,
                         .nsources = n,
                         .positions_path = positions,
                         .max_line_bytes = 0, /* the event size limit, 1 MiB */
                         .w = e->writer,
                         .done = te_engine_batch_done,
                         .done_ud = &e->tail_done};
    if (n > 0)
        rc = te_tail_start(&e->loop, &to, &e->tail, err);
    for (size_t i = 0; i < cfg->nsources; i++)
        free(defaults[i]);
    free(defaults);
    free(src);
    return rc;
}

static int start_listeners(te_engine_t *e, te_err_t *err)
{
    const te_config_t *cfg = e->cfg;
    int rc;

    if (enabled(cfg->listen_http)) {
        te_http_opts_t ho = {.addr = cfg->listen_http,
                             .max_body_bytes = e->max_body_bytes,
                             .handler = on_request,
                             .ud = e};
        rc = te_http_server_start(&e->loop, &ho, &e->http, err);
        if (rc < 0)
            return rc;
        te_http_server_address(e->http, e->http_addr, sizeof(e->http_addr));
    }
    if (enabled(cfg->listen_tcp)) {
        rc = te_stream_listener_start(&e->loop, TE_STREAM_TCP, cfg->listen_tcp, e->writer,
                                      te_engine_batch_done, &e->stream_done, &e->tcp, err);
        if (rc < 0)
            return rc;
    }
    if (enabled(cfg->listen_udp)) {
        rc = te_udp_listener_start(&e->loop, cfg->listen_udp, e->writer, te_engine_batch_done,
                                   &e->stream_done, &e->udp, err);
        if (rc < 0)
            return rc;
    }
    if (enabled(cfg->listen_unix)) {
        rc = te_stream_listener_start(&e->loop, TE_STREAM_UNIX, cfg->listen_unix, e->writer,
                                      te_engine_batch_done, &e->stream_done, &e->unix_l, err);
        if (rc < 0)
            return rc;
    }
    rc = start_tail(e, err);
    if (rc < 0)
        return rc;
    if (e->http) {
        printf("http listening on http://%s\n", e->http_addr);
        printf("dashboard on http://%s/\n", e->http_addr);
    }
    if (e->tcp)
        printf("tcp listening on %s\n", te_stream_listener_address(e->tcp));
    if (e->udp)
        printf("udp listening on %s\n", te_udp_listener_address(e->udp));
    if (e->unix_l)
        printf("unix listening on %s\n", te_stream_listener_address(e->unix_l));
    for (size_t i = 0; i < te_tail_count(e->tail); i++) {
        te_tail_source_stats_t ts;
        te_tail_source_stats(e->tail, i, &ts);
        printf("tail \"%s\" following %s\n", ts.name, ts.path);
    }
    printf("ready\n");
    fflush(stdout);
    return 0;
}

static int start_writer(te_engine_t *e, te_err_t *err)
{
    te_store_t *st = NULL;
    te_store_opts_t so = {.path = e->cfg->db_path,
                          .durability = (te_durability_t)e->cfg->durability,
                          .readonly = false,
                          .busy_timeout_ms = 0};
    int rc = te_store_open(&so, &st, err);
    if (rc < 0)
        return rc;
    rc = te_engine_rules_open(e, st, err);
    if (rc < 0) {
        te_store_close(st);
        return rc;
    }
    te_writer_opts_t wo = {.max_queued_events = e->cfg->queue_events, .max_txn_events = 0};
    rc = te_writer_start(st, &wo, &e->writer, err);
    if (rc < 0) {
        te_store_close(st);
        return rc;
    }
    return 0;
}

int te_engine_serve(const te_config_t *cfg, te_err_t *err)
{
    struct sigaction sa;
    te_log_level_t level;
    int rc;

    if (!cfg->db_path || !cfg->db_path[0])
        return te_err_set(err, TE_ECONFIG, "serve: no database path (set storage.path or --data)");
    te_engine_t *e = calloc(1, sizeof(*e));
    if (!e)
        return te_err_set(err, TE_ENOMEM, "serve: out of memory");
    rc = uv_loop_init(&e->loop);
    if (rc < 0) {
        free(e);
        return te_err_set(err, TE_EIO, "serve: cannot create the event loop: %s",
                          uv_strerror(rc));
    }
    pthread_mutex_init(&e->done_lock, NULL);
    e->cfg = cfg;
    e->start_mono_ns = te_time_mono_ns();
    e->stream_done.e = e;
    e->queue_capacity = cfg->queue_events ? cfg->queue_events : 65536;
    e->max_body_bytes = cfg->max_body_bytes ? cfg->max_body_bytes : 16u * 1024u * 1024u;
    if (cfg->log_level && te_log_level_parse(cfg->log_level, &level) == 0)
        te_log_set_level(level);

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    rc = te_auth_new(cfg->auth_json, &e->auth, err);
    if (rc == 0) /* every ingest path redacts as it parses (ndjson.c) */
        rc = te_redact_install(cfg->redact_json, err);
    if (rc == 0)
        rc = start_handles(e, err);
    if (rc == 0)
        rc = start_writer(e, err);
    if (rc == 0)
        rc = te_engine_rules_start(e, err);
    if (rc == 0)
        rc = te_engine_recs_start(e, err);
    if (rc == 0)
        rc = te_engine_reports_start(e, err);
    if (rc == 0)
        rc = te_engine_retention_start(e, err);
    if (rc == 0)
        rc = start_listeners(e, err);
    if (rc == 0) {
        te_log(TE_LOG_INFO, "engine", "serving %s (queue %zu events, body limit %zu bytes)",
               cfg->db_path, e->queue_capacity, e->max_body_bytes);
        e->serving = true;
        uv_run(&e->loop, UV_RUN_DEFAULT);
    }
    shutdown_engine(e);
    /* close callbacks, lingering connections and pending work run out here */
    uv_run(&e->loop, UV_RUN_DEFAULT);
    while (uv_loop_close(&e->loop) == UV_EBUSY) {
        uv_walk(&e->loop, walk_close, NULL);
        uv_run(&e->loop, UV_RUN_DEFAULT);
    }
    te_http_server_free(e->http);
    te_stream_listener_free(e->tcp);
    te_stream_listener_free(e->unix_l);
    te_udp_listener_free(e->udp);
    te_tail_free(e->tail);
    te_engine_rules_free(e);
    te_engine_recs_free(e);
    te_engine_reports_free(e);
    te_engine_retention_free(e);
    te_auth_free(e->auth);
    te_redact_uninstall();
    pthread_mutex_destroy(&e->done_lock);
    free(e);
    return rc;
}
