/*
 * routes_recs.c - GET /v1/recommendations: stored findings of the
 * te.recommend scripts (SPEC 5, 6.4).
 *
 * THREAD: loop; the read runs on libuv's pool with its own read-only store,
 * as the other read routes do (the loop never touches SQLite).
 * ?state=open|resolved|all (default open), ?severity=info|warning|critical,
 * ?name=RECOMMENDER, ?limit=N (1..1000, default 100). Answers
 * {"recommendations":[{"id","name","fingerprint","severity","title",
 * "detail","action","evidence","first_seen","last_seen","count","state",
 * "resolved_at"}]}: open first, then critical before warning before info,
 * then most recently seen first.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "../engine_int.h"
#include "../store/recs.h"
#include "../store/store.h"
#include "api.h"

typedef struct recs_job {
    uv_work_t work;
    te_engine_t *e;
    te_http_req_t *req;
    char *state, *severity, *name;
    size_t limit;
    int status;
    te_err_t err;
    char *out;
} recs_job_t;

static void recs_work(uv_work_t *w)
{
    recs_job_t *job = w->data;
    te_store_t *st = NULL;
    cJSON *root = NULL;
    te_store_opts_t so = {.path = job->e->cfg->db_path, .readonly = true};
    te_recs_filter_t f = {.state = job->state, .severity = job->severity, .name = job->name};
    job->status = 500;
    if (te_store_open(&so, &st, &job->err) < 0)
        return;
    int rc = te_store_recs_list_json(st, &f, job->limit, &root, &job->err);
    te_store_close(st);
    if (rc < 0)
        return;
    job->out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!job->out) {
        te_err_set(&job->err, TE_ENOMEM, "out of memory");
        return;
    }
    job->status = 200;
}

static void job_free(recs_job_t *job)
{
    free(job->state);
    free(job->severity);
    free(job->name);
    free(job);
}

static void recs_after(uv_work_t *w, int status)
{
    recs_job_t *job = w->data;
    (void)status;
    if (job->status == 200) {
        size_t len = strlen(job->out);
        char *body = realloc(job->out, len + 2);
        if (body) {
            body[len++] = '\n';
            body[len] = '\0';
            te_http_respond_take(job->req, 200, NULL, NULL, body, len);
        } else {
            free(job->out);
            te_http_respond_error(job->req, 500, NULL, "out of memory");
        }
        job->out = NULL;
    } else {
        te_http_respond_error(job->req, job->status, NULL, "%s", job->err.msg);
    }
    job_free(job);
}

/* The parameter, or NULL when absent or empty. */
static const char *param(te_http_req_t *req, const char *key)
{
    const char *v = te_http_param(req, key);
    return v && v[0] ? v : NULL;
}

static char *dup_opt(const char *s, bool *fail)
{
    char *p = s ? strdup(s) : NULL;
    if (s && !p)
        *fail = true;
    return p;
}

void te_api_recs_get(te_engine_t *e, te_http_req_t *req)
{
    te_err_t err;
    const char *state = param(req, "state");
    const char *severity = param(req, "severity");
    const char *name = param(req, "name");
    const char *limit = param(req, "limit");
    long n = 100;
    if (te_store_recs_filter_check(state, severity, &err) < 0) {
        te_http_respond_error(req, 400, NULL, "bad parameter: %s", err.msg);
        return;
    }
    if (limit) {
        char *end = NULL;
        n = strtol(limit, &end, 10);
        if (!end || *end || n < 1 || n > 1000) {
            te_http_respond_error(req, 400, NULL, "bad \"limit\" \"%s\": 1 to 1000", limit);
            return;
        }
    }
    recs_job_t *job = calloc(1, sizeof(*job));
    bool fail = !job;
    if (job) {
        job->state = dup_opt(state ? state : "open", &fail);
        job->severity = dup_opt(severity, &fail);
        job->name = dup_opt(name, &fail);
    }
    if (fail) {
        if (job)
            job_free(job);
        te_http_respond_error(req, 500, NULL, "out of memory");
        return;
    }
    job->e = e;
    job->req = req;
    job->limit = (size_t)n;
    job->work.data = job;
    if (uv_queue_work(&e->loop, &job->work, recs_work, recs_after) < 0) {
        job_free(job);
        te_http_respond_error(req, 500, NULL, "cannot start the listing");
    }
}
