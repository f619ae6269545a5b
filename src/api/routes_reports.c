/*
 * routes_reports.c - GET /v1/reports (the templates and the reports they
 * declare) and GET /v1/reports/{name}?since=&until=&format=&param.K=V
 * (one rendered report; SPEC 5, 6.5).
 *
 * THREAD: loop; the template runs on libuv's pool in a fresh sandbox with
 * a read-only store opened for the job (SQLite and Lua never run on the
 * loop). Templates are read from disk on every request, so an edited
 * template applies to the next request without a restart.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "../core/time.h"
#include "../engine_int.h"
#include "../report/run.h"
#include "api.h"

#define PREFIX "/v1/reports/"
#define MAX_PARAMS 64

typedef struct report_job {
    uv_work_t work;
    te_engine_t *e;
    te_http_req_t *req;
    bool list;                 /* GET /v1/reports */
    char name[128];
    te_report_format_t format;
    te_report_param_t params[MAX_PARAMS];
    size_t nparams;
    int status;
    te_err_t err;
    char *out;
    size_t len;
} report_job_t;

static const char *scripts_dir(const te_engine_t *e)
{
    return e->cfg->scripts_dir && e->cfg->scripts_dir[0] ? e->cfg->scripts_dir : "lua";
}

static char *catalog_json(const te_report_catalog_t *cat, size_t *len)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = root ? cJSON_AddArrayToObject(root, "reports") : NULL;
    cJSON *errs = root ? cJSON_AddArrayToObject(root, "errors") : NULL;
    bool ok = arr && errs;
    for (size_t i = 0; ok && i < cat->n; i++) {
        const te_report_info_t *it = &cat->items[i];
        cJSON *o = cJSON_CreateObject();
        ok = o && cJSON_AddItemToArray(arr, o) && cJSON_AddStringToObject(o, "name", it->name) &&
             cJSON_AddStringToObject(o, "title", it->title ? it->title : it->name) &&
             (it->description ? cJSON_AddStringToObject(o, "description", it->description)
                              : cJSON_AddNullToObject(o, "description")) &&
             (it->schedule ? cJSON_AddStringToObject(o, "schedule", it->schedule)
                           : cJSON_AddNullToObject(o, "schedule")) &&
             cJSON_AddStringToObject(o, "file", it->file) &&
             cJSON_AddNumberToObject(o, "line", it->line);
    }
    for (size_t i = 0; ok && i < cat->nerrors; i++) {
        cJSON *s = cJSON_CreateString(cat->errors[i]);
        ok = s && cJSON_AddItemToArray(errs, s);
    }
    char *txt = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (txt)
        *len = strlen(txt);
    return txt;
}

static void report_work(uv_work_t *w)
{
    report_job_t *job = w->data;
    te_engine_t *e = job->e;
    job->status = 500;
    if (job->list) {
        te_report_catalog_t cat;
        if (te_report_catalog_load(scripts_dir(e), &cat, &job->err) < 0)
            return;
        job->out = catalog_json(&cat, &job->len);
        te_report_catalog_free(&cat);
        if (!job->out) {
            te_err_set(&job->err, TE_ENOMEM, "out of memory");
            return;
        }
        job->status = 200;
        return;
    }
    te_store_t *st = NULL;
    te_store_opts_t so = {.path = e->cfg->db_path, .readonly = true};
    if (te_store_open(&so, &st, &job->err) < 0)
        return;
    te_report_run_opts_t ro = {.scripts_dir = scripts_dir(e),
                               .name = job->name,
                               .st = st,
                               .since = te_http_param(job->req, "since"),
                               .until = te_http_param(job->req, "until"),
                               .params = job->params,
                               .nparams = job->nparams,
                               .format = job->format};
    if (ro.since && !ro.since[0])
        ro.since = NULL;
    if (ro.until && !ro.until[0])
        ro.until = NULL;
    int rc = te_report_run(&ro, &job->out, &job->len, &job->err);
    te_store_close(st);
    if (rc == TE_ENOTFOUND)
        job->status = 404;
    else if (rc == TE_EINVAL)
        job->status = 400;
    else if (rc == 0)
        job->status = 200;
}

static void report_after(uv_work_t *w, int status)
{
    report_job_t *job = w->data;
    (void)status;
    if (job->status == 200) {
        te_http_respond_take(job->req, 200,
                             job->list ? NULL : te_report_content_type(job->format), NULL,
                             job->out, job->len);
        job->out = NULL;
    } else {
        te_http_respond_error(job->req, job->status, NULL, "%s",
                              job->err.msg[0] ? job->err.msg : "report failed");
    }
    free(job->out);
    free(job);
}

static void start(te_engine_t *e, te_http_req_t *req, report_job_t *job)
{
    job->e = e;
    job->req = req;
    job->work.data = job;
    if (uv_queue_work(&e->loop, &job->work, report_work, report_after) < 0) {
        free(job);
        te_http_respond_error(req, 500, NULL, "cannot start the report");
    }
}

void te_api_reports_list(te_engine_t *e, te_http_req_t *req)
{
    report_job_t *job = calloc(1, sizeof(*job));
    if (!job) {
        te_http_respond_error(req, 500, NULL, "out of memory");
        return;
    }
    job->list = true;
    start(e, req, job);
}

void te_api_report_get(te_engine_t *e, te_http_req_t *req)
{
    te_err_t err = {0};
    const char *name = req->path + strlen(PREFIX);
    size_t n = strcspn(name, "/");
    if (n == 0 || n >= sizeof(((report_job_t *)0)->name) || (name[n] && name[n + 1])) {
        te_http_respond_error(req, 404, NULL,
                              "no route for GET %s (GET /v1/reports/NAME; GET /v1/reports lists "
                              "the names)",
                              req->path);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-')) {
            te_http_respond_error(req, 400, NULL, "bad report name \"%.*s\"", (int)n, name);
            return;
        }
    }
    report_job_t *job = calloc(1, sizeof(*job));
    if (!job) {
        te_http_respond_error(req, 500, NULL, "out of memory");
        return;
    }
    memcpy(job->name, name, n);
    const char *fmt = te_http_param(req, "format");
    job->format = TE_REPORT_HTML;
    if (fmt && fmt[0] && te_report_format_parse(fmt, &job->format, &err) < 0) {
        free(job);
        te_http_respond_error(req, 400, NULL, "bad \"format\": %s", err.msg);
        return;
    }
    for (size_t i = 0; i < req->nparams; i++) {
        const char *k = req->params[i].key;
        if (strncmp(k, "param.", 6) != 0)
            continue;
        if (job->nparams == MAX_PARAMS || !k[6]) {
            free(job);
            te_http_respond_error(req, 400, NULL, "bad parameters: at most %d param.K=V, each "
                                                  "with a name",
                                  MAX_PARAMS);
            return;
        }
        job->params[job->nparams].key = k + 6;
        job->params[job->nparams].value = req->params[i].value;
        job->nparams++;
    }
    start(e, req, job);
}
