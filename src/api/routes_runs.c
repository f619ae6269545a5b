/*
 * routes_runs.c - GET /v1/runs and GET /v1/runs/{id}: pipeline runs
 * computed from the stored run / run_step events (SPEC 5, 8; model and
 * ETA estimator in store/runs.h).
 *
 * THREAD: loop; the read runs on libuv's pool with its own read-only store,
 * as the other read routes do (the loop never touches SQLite).
 * GET /v1/runs?status=running|stale|succeeded|failed|aborted&since=D|TIME
 * &limit=N (1..1000, default 20)&stale_after=D (default 10m) ->
 * {"runs":[run objects]} newest start first; GET /v1/runs/{id}?stale_after=D
 * -> the run object with its "steps", 404 naming an unknown id.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "../core/time.h"
#include "../engine_int.h"
#include "../store/runs.h"
#include "../store/store.h"
#include "api.h"

#define PREFIX "/v1/runs/"

typedef struct runs_job {
    uv_work_t work;
    te_engine_t *e;
    te_http_req_t *req;
    char *id;        /* NULL: list */
    char *status;
    int64_t since_ns, stale_ns;
    size_t limit;
    int status_code;
    te_err_t err;
    char *out;
} runs_job_t;

static void runs_work(uv_work_t *w)
{
    runs_job_t *job = w->data;
    te_store_t *st = NULL;
    te_run_t *v = NULL;
    size_t n = 0;
    cJSON *root = NULL;
    int64_t now = te_time_now_ns();
    te_store_opts_t so = {.path = job->e->cfg->db_path, .readonly = true};
    te_runs_query_t q = {.id = job->id,
                         .status = job->status,
                         .since_ns = job->since_ns,
                         .limit = job->limit,
                         .now_ns = now,
                         .stale_after_ns = job->stale_ns};
    job->status_code = 500;
    if (te_store_open(&so, &st, &job->err) < 0)
        return;
    int rc = te_store_runs(st, &q, &v, &n, &job->err);
    te_store_close(st);
    if (rc < 0)
        return;
    if (job->id && n == 0) {
        job->status_code = 404;
        te_err_set(&job->err, TE_EINVAL, "no run \"%s\"", job->id);
        te_runs_free(v, n);
        return;
    }
    root = job->id ? te_run_json(&v[0], true, now) : te_runs_list_json(v, n, now);
    te_runs_free(v, n);
    job->out = root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!job->out) {
        te_err_set(&job->err, TE_ENOMEM, "out of memory");
        return;
    }
    job->status_code = 200;
}

static void job_free(runs_job_t *job)
{
    free(job->id);
    free(job->status);
    free(job->out);
    free(job);
}

static void runs_after(uv_work_t *w, int status)
{
    runs_job_t *job = w->data;
    (void)status;
    if (job->status_code == 200) {
        size_t len = strlen(job->out);
        char *body = realloc(job->out, len + 2);
        if (body) {
            body[len++] = '\n';
            body[len] = '\0';
            job->out = NULL;
            te_http_respond_take(job->req, 200, NULL, NULL, body, len);
        } else {
            te_http_respond_error(job->req, 500, NULL, "out of memory");
        }
    } else {
        te_http_respond_error(job->req, job->status_code, NULL, "%s", job->err.msg);
    }
    job_free(job);
}

/* The parameter, or NULL when absent or empty. */
static const char *param(te_http_req_t *req, const char *key)
{
    const char *v = te_http_param(req, key);
    return v && v[0] ? v : NULL;
}

/* Reads the parameters into a new job; answers 400 / 500 itself and
 * returns NULL on a problem. */
static runs_job_t *job_new(te_engine_t *e, te_http_req_t *req, const char *id)
{
    te_err_t err = {0};
    const char *status = param(req, "status"), *since = param(req, "since");
    const char *limit = param(req, "limit"), *stale = param(req, "stale_after");
    int64_t since_ns = 0, stale_ns = 0;
    long n = TE_RUNS_LIMIT_DEFAULT;
    if (status && te_runs_status_check(status, &err) < 0) {
        te_http_respond_error(req, 400, NULL, "bad \"status\": %s", err.msg);
        return NULL;
    }
    if (since && te_time_parse_since(since, te_time_now_ns(), &since_ns, &err) < 0) {
        te_http_respond_error(req, 400, NULL, "bad \"since\": %s", err.msg);
        return NULL;
    }
    if (stale && (te_duration_parse(stale, &stale_ns, &err) < 0 || stale_ns <= 0)) {
        te_http_respond_error(req, 400, NULL, "bad \"stale_after\" \"%s\": a duration such as 10m",
                              stale);
        return NULL;
    }
    if (limit) {
        char *end = NULL;
        n = strtol(limit, &end, 10);
        if (!end || *end || n < 1 || n > TE_RUNS_LIMIT_MAX) {
            te_http_respond_error(req, 400, NULL, "bad \"limit\" \"%s\": 1 to %d", limit,
                                  TE_RUNS_LIMIT_MAX);
            return NULL;
        }
    }
    runs_job_t *job = calloc(1, sizeof(*job));
    if (job) {
        job->id = id ? strdup(id) : NULL;
        job->status = status ? strdup(status) : NULL;
    }
    if (!job || (id && !job->id) || (status && !job->status)) {
        if (job)
            job_free(job);
        te_http_respond_error(req, 500, NULL, "out of memory");
        return NULL;
    }
    job->e = e;
    job->req = req;
    job->since_ns = since_ns;
    job->stale_ns = stale_ns;
    job->limit = (size_t)n;
    job->work.data = job;
    return job;
}

static void start(te_engine_t *e, te_http_req_t *req, const char *id)
{
    runs_job_t *job = job_new(e, req, id);
    if (!job)
        return;
    if (uv_queue_work(&e->loop, &job->work, runs_work, runs_after) < 0) {
        job_free(job);
        te_http_respond_error(req, 500, NULL, "cannot start the listing");
    }
}

void te_api_runs_get(te_engine_t *e, te_http_req_t *req)
{
    start(e, req, NULL);
}

void te_api_run_get(te_engine_t *e, te_http_req_t *req)
{
    const char *id = req->path + strlen(PREFIX);
    if (!id[0] || strchr(id, '/')) {
        te_http_respond_error(req, 404, NULL, "no such path %s (GET /v1/runs/{id})", req->path);
        return;
    }
    start(e, req, id);
}
