/*
 * routes_query.c - GET /v1/query, and the parameter parsing shared with
 * GET /v1/events (since, until, where, format).
 *
 * THREAD: loop; the aggregate query runs on libuv's pool with a read-only
 * store opened for the job (SQLite never runs on the loop).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/json.h"
#include "../core/result.h"
#include "../core/time.h"
#include "../engine_int.h"
#include "api.h"

/* ---- shared parameter parsing ---- */

int te_api_filter_parse(const te_http_req_t *req, te_api_filter_t *f, te_err_t *err)
{
    int64_t now = te_time_now_ns();
    const char *s;
    te_err_t e2;
    char *keys[TE_HTTP_MAX_PARAMS];
    const char *vals[TE_HTTP_MAX_PARAMS];
    size_t n = 0;

    memset(f, 0, sizeof(*f));
    f->since_ns = now - 24 * 3600 * TE_NS_PER_SEC;
    f->until_ns = now;
    s = te_http_param(req, "since");
    if (s && s[0] && te_time_parse_since(s, now, &f->since_ns, &e2) < 0)
        return te_err_set(err, TE_EINVAL, "bad \"since\": %s", e2.msg);
    s = te_http_param(req, "until");
    if (s && s[0] && te_time_parse_since(s, now, &f->until_ns, &e2) < 0)
        return te_err_set(err, TE_EINVAL, "bad \"until\": %s", e2.msg);

    for (size_t i = 0; i < req->nparams; i++) {
        if (strcmp(req->params[i].key, "where") != 0)
            continue;
        const char *v = req->params[i].value;
        const char *colon = strchr(v, ':');
        if (!colon || colon == v)
            return te_err_set(err, TE_EINVAL,
                              "bad \"where\" value \"%s\": expected TAG:VALUE (where=model:m-large)",
                              v);
        char *copy = strdup(v);
        if (!copy)
            return te_err_set(err, TE_ENOMEM, "out of memory");
        f->copies[f->ncopies++] = copy;
        copy[colon - v] = '\0';
        keys[n] = copy;
        vals[n] = copy + (colon - v) + 1;
        n++;
    }
    /* group values by key, keys in order of first appearance */
    size_t nv = 0;
    for (size_t i = 0; i < n; i++) {
        bool seen = false;
        for (size_t k = 0; k < f->nwhere; k++)
            seen = seen || strcmp(f->where[k].key, keys[i]) == 0;
        if (seen)
            continue;
        te_tag_filter_t *tf = &f->where[f->nwhere++];
        tf->key = keys[i];
        tf->values = &f->values[nv];
        for (size_t j = i; j < n; j++) {
            if (strcmp(keys[j], keys[i]) == 0)
                f->values[nv++] = vals[j];
        }
        tf->nvalues = (size_t)(&f->values[nv] - tf->values);
    }
    return 0;
}

void te_api_filter_free(te_api_filter_t *f)
{
    for (size_t i = 0; i < f->ncopies; i++)
        free(f->copies[i]);
    f->ncopies = 0;
}

int te_api_format_parse(const te_http_req_t *req, int *csv, te_err_t *err)
{
    const char *s = te_http_param(req, "format");
    *csv = 0;
    if (!s || !s[0] || strcmp(s, "json") == 0)
        return 0;
    if (strcmp(s, "csv") == 0) {
        *csv = 1;
        return 0;
    }
    return te_err_set(err, TE_EINVAL, "bad \"format\" value \"%s\": expected json or csv", s);
}

void te_api_csv_cell(te_buf_t *b, const char *s, size_t len)
{
    bool quote = false;
    for (size_t i = 0; i < len && !quote; i++)
        quote = s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n';
    if (!quote) {
        te_buf_add(b, s, len);
        return;
    }
    te_buf_add(b, "\"", 1);
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '"')
            continue;
        te_buf_add(b, s + start, i + 1 - start);
        te_buf_add(b, "\"", 1);
        start = i + 1;
    }
    te_buf_add(b, s + start, len - start);
    te_buf_add(b, "\"", 1);
}

void te_api_json_num(te_buf_t *b, double v)
{
    char num[TE_JSON_NUM_MAX];
    te_buf_add(b, num, te_json_number(v, num));
}

/* ---- GET /v1/query ---- */

typedef struct query_job {
    uv_work_t work;
    te_engine_t *e;
    te_http_req_t *req;
    te_api_filter_t f;
    te_agg_t *aggs;
    size_t naggs;
    char *group_copy;
    const char *group[TE_HTTP_MAX_PARAMS];
    size_t ngroup;
    int64_t every_ns;
    int csv;
    int status;
    te_err_t err;
    char *out;
    size_t out_len;
} query_job_t;

static void query_job_free(query_job_t *job)
{
    te_api_filter_free(&job->f);
    if (job->aggs)
        te_aggs_free(job->aggs, job->naggs);
    free(job->group_copy);
    free(job->out);
    free(job);
}

static void query_work(uv_work_t *w)
{
    query_job_t *job = w->data;
    te_store_t *st = NULL;
    te_result_t *res = NULL;
    te_store_opts_t so = {.path = job->e->cfg->db_path, .readonly = true};
    te_query_t q = {.kind = te_http_param(job->req, "kind"),
                    .since_ns = job->f.since_ns,
                    .until_ns = job->f.until_ns,
                    .where = job->f.where,
                    .nwhere = job->f.nwhere,
                    .group_by = job->group,
                    .ngroup = job->ngroup,
                    .aggs = job->aggs,
                    .naggs = job->naggs,
                    .every_ns = job->every_ns};
    job->status = 500;
    if (te_store_open(&so, &st, &job->err) < 0)
        return;
    int rc = te_store_query(st, &q, &res, &job->err);
    te_store_close(st);
    if (rc < 0) {
        job->status = rc == TE_EINVAL ? 400 : 500;
        return;
    }
    job->out = job->csv ? te_result_to_csv(res, &job->out_len) : te_result_to_json(res, &job->out_len);
    te_result_free(res);
    if (job->out && !job->csv) {
        char *nl = realloc(job->out, job->out_len + 2);   /* end the JSON line */
        if (!nl) {
            free(job->out);
            job->out = NULL;
        } else {
            job->out = nl;
            job->out[job->out_len++] = '\n';
            job->out[job->out_len] = '\0';
        }
    }
    if (!job->out) {
        te_err_set(&job->err, TE_ENOMEM, "out of memory");
        return;
    }
    job->status = 200;
}

static void query_after(uv_work_t *w, int status)
{
    query_job_t *job = w->data;
    (void)status;
    if (job->status == 200) {
        te_http_respond_take(job->req, 200, job->csv ? "text/csv; charset=utf-8" : NULL, NULL,
                             job->out, job->out_len);
        job->out = NULL;
    } else {
        te_http_respond_error(job->req, job->status, NULL, "%s", job->err.msg);
    }
    query_job_free(job);
}

static int parse_group(query_job_t *job, const char *s, te_err_t *err)
{
    if (!s || !s[0])
        return 0;
    job->group_copy = strdup(s);
    if (!job->group_copy)
        return te_err_set(err, TE_ENOMEM, "out of memory");
    char *p = job->group_copy;
    for (;;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        if (!p[0])
            return te_err_set(err, TE_EINVAL,
                              "bad \"group_by\" value \"%s\": empty tag name (group_by=T1,T2)", s);
        if (job->ngroup == TE_HTTP_MAX_PARAMS)
            return te_err_set(err, TE_EINVAL, "bad \"group_by\": more than 64 tags");
        job->group[job->ngroup++] = p;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

void te_api_query_get(te_engine_t *e, te_http_req_t *req)
{
    te_err_t err, e2;
    const char *kind = te_http_param(req, "kind");
    const char *agg = te_http_param(req, "agg");
    const char *every = te_http_param(req, "every");
    query_job_t *job;

    if (!kind || !kind[0]) {
        te_http_respond_error(req, 400, NULL, "missing \"kind\" (GET /v1/query?kind=llm_call)");
        return;
    }
    job = calloc(1, sizeof(*job));
    if (!job) {
        te_http_respond_error(req, 500, NULL, "out of memory");
        return;
    }
    job->e = e;
    job->req = req;
    if (te_api_filter_parse(req, &job->f, &err) < 0 ||
        te_api_format_parse(req, &job->csv, &err) < 0 ||
        parse_group(job, te_http_param(req, "group_by"), &err) < 0)
        goto bad;
    if (te_aggs_parse(agg && agg[0] ? agg : "count", &job->aggs, &job->naggs, &e2) < 0) {
        te_err_set(&err, TE_EINVAL, "bad \"agg\": %s", e2.msg);
        goto bad;
    }
    if (every && every[0]) {
        if (te_duration_parse(every, &job->every_ns, &e2) < 0) {
            te_err_set(&err, TE_EINVAL, "bad \"every\": %s", e2.msg);
            goto bad;
        }
        if (job->every_ns <= 0) {
            te_err_set(&err, TE_EINVAL, "bad \"every\" value \"%s\": must be above zero", every);
            goto bad;
        }
    }
    job->work.data = job;
    if (uv_queue_work(&e->loop, &job->work, query_work, query_after) < 0) {
        query_job_free(job);
        te_http_respond_error(req, 500, NULL, "cannot start the query");
        return;
    }
    return;
bad:
    query_job_free(job);
    te_http_respond_error(req, 400, NULL, "%s", err.msg);
}
