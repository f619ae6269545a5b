/*
 * engine_reports.c - scheduled reports (see engine_reports.h).
 *
 * THREAD: loop, except check_work (libuv's pool: touches only its job).
 *
 * The one idea: the loop keeps only one instant, the end of the previous
 * check. Each tick (when no job is in flight) hands the window
 * (prev, now] to a pool job, which loads the catalog of templates, picks
 * every scheduled report with a schedule instant inside the window, runs
 * it against its own read-only store and writes the HTML through a
 * temporary file and a rename. The instant names the file, so a report is
 * written once per instant however the ticks fall. Runs go one job at a
 * time: the pool is shared with API reads and recommendations.
 */
#include "engine_reports.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/time.h"
#include "engine_int.h"
#include "report/run.h"
#include "report/schedule.h"
#include "store/store.h"

#define TICK_MS 5000

typedef struct check_job {
    uv_work_t work;
    struct te_engine_reports *R;
    char *scripts_dir, *db_path, *out_dir;
    int64_t from_ns, to_ns;       /* the window (from, to] */
    uint64_t written, failed;
    char load_error[256];         /* the first template load error, "" when none */
} check_job_t;

struct te_engine_reports {
    te_engine_t *e;
    uv_timer_t timer;
    bool timer_on, closed, running;
    int64_t checked_ns;           /* end of the previous window */
    uint64_t written, failed;
    char load_error[256];         /* last logged template error: log each once */
};

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

static void job_free(check_job_t *j)
{
    free(j->scripts_dir);
    free(j->db_path);
    free(j->out_dir);
    free(j);
}

static int write_file(const char *path, const char *data, size_t len, te_err_t *err)
{
    char tmp[1200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return te_err_set(err, TE_EIO, "cannot write %s: %s", tmp, strerror(errno));
    bool ok = fwrite(data, 1, len, f) == len;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        return te_err_set(err, TE_EIO, "cannot write %s: %s", path, strerror(e));
    }
    return 0;
}

static void run_one(check_job_t *j, const te_report_info_t *it, int64_t at_ns)
{
    te_err_t err = {0};
    te_store_t *st = NULL;
    char *out = NULL, name[256], path[1100];
    size_t len = 0;
    te_store_opts_t so = {.path = j->db_path, .readonly = true};
    te_report_file_name(it->name, at_ns, TE_REPORT_HTML, name, sizeof(name));
    snprintf(path, sizeof(path), "%s/%s", j->out_dir, name);
    int rc = mkdir(j->out_dir, 0755);
    if (rc != 0 && errno != EEXIST)
        rc = te_err_set(&err, TE_EIO, "cannot create %s: %s", j->out_dir, strerror(errno));
    else
        rc = te_store_open(&so, &st, &err);
    if (rc == 0) {
        te_report_run_opts_t ro = {.scripts_dir = j->scripts_dir,
                                   .name = it->name,
                                   .st = st,
                                   .now_ns = at_ns,
                                   .format = TE_REPORT_HTML};
        rc = te_report_run(&ro, &out, &len, &err);
        te_store_close(st);
    }
    if (rc == 0)
        rc = write_file(path, out, len, &err);
    free(out);
    if (rc == 0) {
        j->written++;
        te_log(TE_LOG_INFO, "report", "report=%s wrote %s", it->name, path);
    } else {
        j->failed++;
        te_log(TE_LOG_ERROR, "report", "report=%s scheduled run failed: %s", it->name, err.msg);
    }
}

static void check_work(uv_work_t *w)
{
    check_job_t *j = w->data;
    te_report_catalog_t cat;
    te_err_t err = {0};
    if (te_report_catalog_load(j->scripts_dir, &cat, &err) < 0) {
        te_log(TE_LOG_ERROR, "report", "cannot list report templates: %s", err.msg);
        return;
    }
    /* a broken template is logged once (the loop compares with the last) */
    char seen[256];
    snprintf(seen, sizeof(seen), "%s", cat.nerrors ? cat.errors[0] : "");
    if (cat.nerrors && strcmp(seen, j->load_error) != 0)
        te_log(TE_LOG_ERROR, "report", "a report template failed to load: %s", cat.errors[0]);
    snprintf(j->load_error, sizeof(j->load_error), "%s", seen);
    for (size_t i = 0; i < cat.n; i++) {
        te_report_schedule_t s;
        if (!cat.items[i].schedule ||
            te_report_schedule_parse(cat.items[i].schedule, &s, NULL) < 0)
            continue;
        int64_t at = te_report_schedule_next(&s, j->from_ns);
        if (at <= j->to_ns)
            run_one(j, &cat.items[i], at);
    }
    te_report_catalog_free(&cat);
}

static void check_after(uv_work_t *w, int status)
{
    check_job_t *j = w->data;
    struct te_engine_reports *R = j->R;
    (void)status;
    R->running = false;
    R->written += j->written;
    R->failed += j->failed;
    memcpy(R->load_error, j->load_error, sizeof(R->load_error));
    job_free(j);
}

static void on_tick(uv_timer_t *t)
{
    struct te_engine_reports *R = t->data;
    if (R->closed || R->running)
        return;
    const te_config_t *cfg = R->e->cfg;
    int64_t now = te_time_now_ns();
    char out_dir[1024];
    snprintf(out_dir, sizeof(out_dir), "%s/reports", cfg->data_dir ? cfg->data_dir : "data");
    check_job_t *j = calloc(1, sizeof(*j));
    if (!j)
        return;
    j->R = R;
    j->scripts_dir = dup_str(cfg->scripts_dir && cfg->scripts_dir[0] ? cfg->scripts_dir : "lua");
    j->db_path = dup_str(cfg->db_path);
    j->out_dir = dup_str(out_dir);
    j->from_ns = R->checked_ns;
    memcpy(j->load_error, R->load_error, sizeof(j->load_error));
    j->to_ns = now;
    j->work.data = j;
    if (!j->scripts_dir || !j->db_path || !j->out_dir ||
        uv_queue_work(&R->e->loop, &j->work, check_work, check_after) < 0) {
        job_free(j);
        return;
    }
    R->running = true;
    R->checked_ns = now;
}

int te_engine_reports_start(te_engine_t *e, te_err_t *err)
{
    struct te_engine_reports *R = calloc(1, sizeof(*R));
    if (!R)
        return te_err_set(err, TE_ENOMEM, "reports: out of memory");
    R->e = e;
    R->checked_ns = te_time_now_ns();
    int rc = uv_timer_init(&e->loop, &R->timer);
    if (rc == 0) {
        R->timer.data = R;
        R->timer_on = true;
        rc = uv_timer_start(&R->timer, on_tick, TICK_MS, TICK_MS);
    }
    if (rc < 0) {
        e->reports = R; /* the handle (if any) is closed by te_engine_reports_close */
        return te_err_set(err, TE_EIO, "reports: cannot start the schedule timer: %s",
                          uv_strerror(rc));
    }
    uv_unref((uv_handle_t *)&R->timer);
    e->reports = R;
    return 0;
}

void te_engine_reports_close(te_engine_t *e)
{
    struct te_engine_reports *R = e ? e->reports : NULL;
    if (!R || R->closed)
        return;
    R->closed = true;
    if (R->timer_on && !uv_is_closing((uv_handle_t *)&R->timer))
        uv_close((uv_handle_t *)&R->timer, NULL);
}

void te_engine_reports_free(te_engine_t *e)
{
    if (!e || !e->reports)
        return;
    free(e->reports);
    e->reports = NULL;
}

void te_engine_reports_counts(const te_engine_t *e, uint64_t *written, uint64_t *failed)
{
    *written = e && e->reports ? e->reports->written : 0;
    *failed = e && e->reports ? e->reports->failed : 0;
}
