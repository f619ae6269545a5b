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
 *
 * A report that names notifiers (te.report notify = {..}) keeps its HTML
 * in the job; back on the loop (check_after) each named notifier of the
 * alert side (te_engine_alerts_notifier) gets it through send_report, with
 * a link to GET /v1/reports/NAME for the same range when HTTP is on. Each
 * delivery is logged ("report=NAME sent to hook") and counted; a missing
 * notifier, or one whose type cannot send reports, is an error, too.
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
#include "engine_alerts.h"
#include "engine_int.h"
#include "engine_rules.h"
#include "report/run.h"
#include "report/schedule.h"
#include "store/store.h"

#define TICK_MS 5000

/* A written report to hand to its notifiers (made on the pool, sent on the
 * loop). */
typedef struct written {
    char *name, *title, *path, *html;
    size_t html_len;
    char **notify;
    size_t nnotify;
    int64_t at_ns, since_ns, until_ns;
    struct written *next;
} written_t;

typedef struct check_job {
    uv_work_t work;
    struct te_engine_reports *R;
    char *scripts_dir, *db_path, *out_dir;
    int64_t from_ns, to_ns;       /* the window (from, to] */
    uint64_t written, failed;
    char load_error[256];         /* the first template load error, "" when none */
    written_t *to_send;           /* reports with notifiers, in run order reversed */
} check_job_t;

struct te_engine_reports {
    te_engine_t *e;
    uv_timer_t timer;
    bool timer_on, closed, running;
    int64_t checked_ns;           /* end of the previous window */
    uint64_t written, failed;
    uint64_t notify_sent, notify_failed;
    char load_error[256];         /* last logged template error: log each once */
};

/* One delivery of a report to one notifier. */
typedef struct delivery {
    struct te_engine_reports *R;
    char report[128], notifier[128];
} delivery_t;

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

static void written_free(written_t *w)
{
    if (!w)
        return;
    free(w->name);
    free(w->title);
    free(w->path);
    free(w->html);
    for (size_t i = 0; i < w->nnotify; i++)
        free(w->notify[i]);
    free(w->notify);
    free(w);
}

static void job_free(check_job_t *j)
{
    while (j->to_send) {
        written_t *w = j->to_send;
        j->to_send = w->next;
        written_free(w);
    }
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
    int64_t since_ns = 0, until_ns = 0;
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
                                   .format = TE_REPORT_HTML,
                                   .since_ns_out = &since_ns,
                                   .until_ns_out = &until_ns};
        rc = te_report_run(&ro, &out, &len, &err);
        te_store_close(st);
    }
    if (rc == 0)
        rc = write_file(path, out, len, &err);
    if (rc == 0 && it->nnotify > 0) { /* keep the HTML for its notifiers */
        written_t *w = calloc(1, sizeof(*w));
        bool ok = w != NULL;
        if (ok) {
            w->name = dup_str(it->name);
            w->title = dup_str(it->title ? it->title : it->name);
            w->path = dup_str(path);
            w->notify = calloc(it->nnotify, sizeof(*w->notify));
            ok = w->name && w->title && w->path && w->notify;
            for (size_t i = 0; ok && i < it->nnotify; i++, w->nnotify++)
                ok = (w->notify[i] = dup_str(it->notify[i])) != NULL;
        }
        if (ok) {
            w->html = out;
            w->html_len = len;
            out = NULL;
            w->at_ns = at_ns;
            w->since_ns = since_ns;
            w->until_ns = until_ns;
            w->next = j->to_send;
            j->to_send = w;
        } else {
            written_free(w);
            te_log(TE_LOG_ERROR, "report", "report=%s not sent to its notifiers: out of memory",
                   it->name);
        }
    }
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

static void on_delivered(int rc, const char *msg, void *ud)
{
    delivery_t *d = ud;
    if (rc == 0) {
        d->R->notify_sent++;
        te_log(TE_LOG_INFO, "report", "report=%s sent to %s", d->report, d->notifier);
    } else {
        d->R->notify_failed++;
        te_log(TE_LOG_ERROR, "report", "report=%s not sent to %s: %s", d->report, d->notifier,
               msg ? msg : te_strerror(rc));
    }
    free(d);
}

/* Hands w to each of its notifiers (loop). */
static void send_written(struct te_engine_reports *R, const written_t *w)
{
    char url[1400], since[40], until[40];
    const char *addr = R->e->http ? R->e->http_addr : "";
    te_time_format_rfc3339(w->since_ns, since, sizeof(since));
    te_time_format_rfc3339(w->until_ns, until, sizeof(until));
    snprintf(url, sizeof(url), "http://%s/v1/reports/%s?since=%s&until=%s&format=html", addr,
             w->name, since, until);
    te_report_note_t note = {.name = w->name,
                             .title = w->title,
                             .path = w->path,
                             .url = addr[0] ? url : NULL,
                             .html = w->html,
                             .html_len = w->html_len,
                             .generated_at_ns = w->at_ns};
    te_engine_alerts_t *A = te_engine_rules_alerts(R->e);
    for (size_t i = 0; i < w->nnotify; i++) {
        te_notifier_t *n = R->closed ? NULL : te_engine_alerts_notifier(A, w->notify[i]);
        const char *why = R->closed ? "the engine is stopping"
                          : !n      ? "no such notifier (see the notifier blocks of "
                                      "telemetry.lua)"
                          : !n->send_report ? "this notifier type cannot send reports"
                                            : NULL;
        delivery_t *d = why ? NULL : calloc(1, sizeof(*d));
        if (!why && !d)
            why = "out of memory";
        int rc = 0;
        if (d) {
            d->R = R;
            snprintf(d->report, sizeof(d->report), "%s", w->name);
            snprintf(d->notifier, sizeof(d->notifier), "%s", w->notify[i]);
            rc = n->send_report(n, &note, on_delivered, d);
            if (rc < 0) {
                free(d);
                why = te_strerror(rc);
            }
        }
        if (why) {
            R->notify_failed++;
            te_log(TE_LOG_ERROR, "report", "report=%s not sent to %s: %s", w->name,
                   w->notify[i], why);
        }
    }
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
    for (written_t *x = j->to_send; x; x = x->next)
        send_written(R, x);
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

void te_engine_reports_notify_counts(const te_engine_t *e, uint64_t *sent, uint64_t *failed)
{
    *sent = e && e->reports ? e->reports->notify_sent : 0;
    *failed = e && e->reports ? e->reports->notify_failed : 0;
}
