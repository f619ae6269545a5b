/*
 * routes_alerts.c - GET /v1/alerts: alert episodes from the database.
 *
 * THREAD: loop; the read runs on libuv's pool with its own read-only store,
 * as the other read routes do (the loop never touches SQLite).
 * ?state=pending|firing|resolved, ?limit=N (1..1000, default 100).
 * Acks and silences (POST /v1/alerts/{id}/ack, /v1/silences) come with the
 * notification system.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "../engine_int.h"
#include "../store/alerts.h"
#include "../store/store.h"
#include "api.h"

typedef struct alerts_job {
    uv_work_t work;
    te_engine_t *e;
    te_http_req_t *req;
    char *state;
    size_t limit;
    int status;
    te_err_t err;
    char *out;
} alerts_job_t;

static void alerts_work(uv_work_t *w)
{
    alerts_job_t *job = w->data;
    te_store_t *st = NULL;
    cJSON *root = NULL;
    te_store_opts_t so = {.path = job->e->cfg->db_path, .readonly = true};
    job->status = 500;
    if (te_store_open(&so, &st, &job->err) < 0)
        return;
    int rc = te_store_alerts_list_json(st, job->state, job->limit, &root, &job->err);
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

static void alerts_after(uv_work_t *w, int status)
{
    alerts_job_t *job = w->data;
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
    free(job->state);
    free(job);
}

void te_api_alerts_get(te_engine_t *e, te_http_req_t *req)
{
    te_err_t err;
    const char *state = te_http_param(req, "state");
    const char *limit = te_http_param(req, "limit");
    long n = 100;
    if (state && !state[0])
        state = NULL;
    if (state && te_store_alerts_state_check(state, &err) < 0) {
        te_http_respond_error(req, 400, NULL, "bad \"state\": %s", err.msg);
        return;
    }
    if (limit && limit[0]) {
        char *end = NULL;
        n = strtol(limit, &end, 10);
        if (!end || *end || n < 1 || n > 1000) {
            te_http_respond_error(req, 400, NULL, "bad \"limit\" \"%s\": 1 to 1000", limit);
            return;
        }
    }
    alerts_job_t *job = calloc(1, sizeof(*job));
    if (!job || (state && !(job->state = strdup(state)))) {
        free(job);
        te_http_respond_error(req, 500, NULL, "out of memory");
        return;
    }
    job->e = e;
    job->req = req;
    job->limit = (size_t)n;
    job->work.data = job;
    if (uv_queue_work(&e->loop, &job->work, alerts_work, alerts_after) < 0) {
        free(job->state);
        free(job);
        te_http_respond_error(req, 500, NULL, "cannot start the listing");
    }
}
