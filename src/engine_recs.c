/*
 * engine_recs.c - recommendations on their schedule (see engine_recs.h).
 *
 * THREAD: loop, except run_work (libuv's pool: touches only its job) and
 * save_apply (the writer thread: touches only its record).
 *
 * A 1 s housekeeping timer (unref'd) keeps a table of the recommenders the
 * live scripts declare (script/recommend.h), by name: a name declared by
 * two files runs from the first one in path order and the other is logged
 * once. When one is due and no run is in flight, a job goes to the pool:
 * open a read-only store, load the script file in a fresh sandbox
 * (te_script_load, the configured budgets), call fn(q), copy the findings,
 * close everything. The live script is not used on the pool (its state
 * belongs to the loop); if the file changed meanwhile and no longer loads,
 * the run fails with that error and the next one is tried on schedule.
 * Runs go one at a time: the pool is shared with reloads and API reads.
 * Findings are saved by an event-less writer batch whose apply hook calls
 * te_store_recs_save_run; a save failure is logged and never fails the
 * transaction it shares with other producers' events.
 */
#include "engine_recs.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/time.h"
#include "engine_int.h"
#include "engine_rules.h"
#include "script/recommend.h"
#include "script/reload.h"
#include "store/recs.h"
#include "store/store.h"

#define TICK_MS 1000

typedef struct rec_entry {
    char name[128];
    char *path;               /* the declaring file */
    int64_t every_ns;
    int64_t next_ns;          /* wall clock */
    bool present;             /* seen by the last sync */
    bool dup_logged;          /* a second declaration was reported */
} rec_entry_t;

typedef struct rec_job {
    uv_work_t work;
    struct te_engine_recs *R;
    char name[128];
    char *path, *lib_dir, *db_path;
    te_script_limits_t limits;
    int64_t now_ns;
    te_rec_t *v;
    size_t n;
    int rc;
    te_err_t err;
} rec_job_t;

typedef struct save_rec {
    char name[128];
    te_rec_t *v;
    size_t n;
    int64_t now_ns;
    int rc;
    te_err_t err;
    te_recs_run_stats_t stats;
} save_rec_t;

struct te_engine_recs {
    te_engine_t *e;
    uv_timer_t timer;
    bool timer_on, closed, running;
    rec_entry_t *v;
    size_t n, cap;
    te_engine_done_t save_done;
    uint64_t runs, failures;
};

/* ---- saving (the writer's transaction) ---- */

static void save_free(save_rec_t *s)
{
    te_recommend_findings_free(s->v, s->n);
    free(s);
}

static int save_apply(struct te_store *st, void *ud, te_err_t *err)
{
    (void)err;
    save_rec_t *s = ud;
    te_err_clear(&s->err);
    /* never fail the shared transaction: save_run undid its own part */
    s->rc = te_store_recs_save_run(st, s->name, s->v, s->n, s->now_ns, &s->stats, &s->err);
    return 0;
}

static void save_done(te_engine_t *e, te_batch_t *b, void *arg)
{
    (void)e;
    (void)arg;
    save_rec_t *s = b->apply_ud;
    if (b->rc < 0)
        te_log(TE_LOG_ERROR, "recommend", "\"%s\": findings not saved: %s", s->name, b->err.msg);
    else if (s->rc < 0)
        te_log(TE_LOG_ERROR, "recommend", "\"%s\": findings not saved: %s", s->name, s->err.msg);
    else
        te_log(TE_LOG_INFO, "recommend",
               "\"%s\": %zu finding(s): %zu new, %zu again, %zu reopened, %zu resolved", s->name,
               s->n, s->stats.opened, s->stats.seen, s->stats.reopened, s->stats.resolved);
    save_free(s);
    te_batch_free(b);
}

static void submit_save(struct te_engine_recs *R, rec_job_t *job)
{
    save_rec_t *s = calloc(1, sizeof(*s));
    te_batch_t *b = s ? te_batch_new(0) : NULL;
    if (!b) {
        free(s);
        te_log(TE_LOG_ERROR, "recommend", "\"%s\": findings not saved: out of memory",
               job->name);
        return;
    }
    memcpy(s->name, job->name, sizeof(s->name));
    s->v = job->v;
    s->n = job->n;
    s->now_ns = job->now_ns;
    job->v = NULL;
    job->n = 0;
    b->apply = save_apply;
    b->apply_ud = s;
    b->done = te_engine_batch_done;
    b->ud = &R->save_done;
    int rc = R->e->writer ? te_writer_submit(R->e->writer, b) : TE_ECLOSED;
    if (rc < 0) {
        /* full: the next run finds the same things again */
        te_log(TE_LOG_WARN, "recommend", "\"%s\": findings not saved: %s", s->name,
               rc == TE_EFULL ? "the pipeline is full (next run retries)" : te_strerror(rc));
        save_free(s);
        te_batch_free(b);
    }
}

/* ---- a run on the pool ---- */

static void job_free(rec_job_t *job)
{
    te_recommend_findings_free(job->v, job->n);
    free(job->path);
    free(job->lib_dir);
    free(job->db_path);
    free(job);
}

static void run_work(uv_work_t *w)
{
    rec_job_t *job = w->data;
    te_store_t *st = NULL;
    te_script_t *s = NULL;
    te_store_opts_t so = {.path = job->db_path, .readonly = true};
    job->rc = te_store_open(&so, &st, &job->err);
    if (job->rc == 0)
        job->rc = te_script_load(job->path, job->lib_dir, &job->limits, &s, &job->err);
    if (job->rc == 0) {
        te_recommend_run_opts_t ro = {.st = st, .now_ns = job->now_ns};
        job->rc = te_recommend_run(s, job->name, &ro, &job->v, &job->n, &job->err);
    }
    te_script_free(s);
    te_store_close(st);
}

static rec_entry_t *find(struct te_engine_recs *R, const char *name)
{
    for (size_t i = 0; i < R->n; i++)
        if (strcmp(R->v[i].name, name) == 0)
            return &R->v[i];
    return NULL;
}

static void on_tick(uv_timer_t *t);

static void run_after(uv_work_t *w, int status)
{
    rec_job_t *job = w->data;
    struct te_engine_recs *R = job->R;
    R->running = false;
    R->runs++;
    int64_t now = te_time_now_ns();
    rec_entry_t *en = find(R, job->name);
    if (en) {
        en->next_ns = job->now_ns + en->every_ns;
        if (en->next_ns <= now) /* the run took longer than every */
            en->next_ns = now + en->every_ns;
    }
    if (status == UV_ECANCELED || R->closed) {
        job_free(job);
        return;
    }
    if (job->rc < 0) {
        R->failures++;
        te_log(TE_LOG_ERROR, "recommend", "\"%s\" failed: %s", job->name,
               job->err.msg[0] ? job->err.msg : te_strerror(job->rc));
    } else {
        submit_save(R, job);
    }
    job_free(job);
    on_tick(&R->timer); /* the next due one need not wait for the tick */
}

static void start_run(struct te_engine_recs *R, rec_entry_t *en, int64_t now)
{
    const te_config_t *cfg = R->e->cfg;
    struct te_reload *scripts = te_engine_rules_scripts(R->e);
    const char *lib = scripts ? te_reload_lib_dir(scripts) : NULL;
    rec_job_t *job = calloc(1, sizeof(*job));
    if (job) {
        job->R = R;
        memcpy(job->name, en->name, sizeof(job->name));
        job->path = strdup(en->path);
        job->lib_dir = lib ? strdup(lib) : NULL;
        job->db_path = strdup(cfg->db_path);
        job->limits = (te_script_limits_t){.mem_bytes = cfg->script_mem_bytes,
                                           .max_steps = (uint64_t)cfg->script_max_steps,
                                           .max_call_ns = cfg->script_call_ns};
        if (job->limits.max_call_ns < TE_RECOMMEND_MIN_CALL_NS)
            job->limits.max_call_ns = TE_RECOMMEND_MIN_CALL_NS;
        job->now_ns = now;
        job->work.data = job;
    }
    if (!job || !job->path || (lib && !job->lib_dir) || !job->db_path ||
        uv_queue_work(&R->e->loop, &job->work, run_work, run_after) < 0) {
        if (job)
            job_free(job);
        en->next_ns = now + en->every_ns;
        R->failures++;
        te_log(TE_LOG_ERROR, "recommend", "\"%s\": cannot start a run (out of memory)",
               en->name);
        return;
    }
    R->running = true;
}

/* ---- the table of recommenders ---- */

static void drop(struct te_engine_recs *R, size_t i)
{
    free(R->v[i].path);
    R->v[i] = R->v[--R->n];
}

static void add_decl(struct te_engine_recs *R, const char *path, const te_recommend_decl_t *d,
                     int64_t now)
{
    rec_entry_t *en = find(R, d->name);
    if (en && en->present) {
        if (strcmp(en->path, path) != 0 && !en->dup_logged) {
            en->dup_logged = true;
            te_log(TE_LOG_WARN, "recommend", "%s:%d: te.recommend \"%s\" is already declared "
                   "in %s; this one does not run (rename it)", path, d->line, d->name, en->path);
        }
        return;
    }
    if (en) {
        if (strcmp(en->path, path) != 0) {
            char *p = strdup(path);
            if (!p)
                return;
            free(en->path);
            en->path = p;
        }
        if (en->every_ns != d->every_ns && en->next_ns > now + d->every_ns)
            en->next_ns = now + d->every_ns;
        en->every_ns = d->every_ns;
        en->present = true;
        return;
    }
    if (R->n == R->cap) {
        size_t cap = R->cap ? R->cap * 2 : 8;
        rec_entry_t *v = realloc(R->v, cap * sizeof(*v));
        if (!v)
            return;
        R->v = v;
        R->cap = cap;
    }
    en = &R->v[R->n];
    memset(en, 0, sizeof(*en));
    if (!(en->path = strdup(path)))
        return;
    memcpy(en->name, d->name, sizeof(en->name));
    en->every_ns = d->every_ns;
    en->next_ns = now; /* first run at once */
    en->present = true;
    R->n++;
}

/* Brings the table in line with the live scripts. */
static void sync(struct te_engine_recs *R, int64_t now)
{
    struct te_reload *scripts = te_engine_rules_scripts(R->e);
    for (size_t i = 0; i < R->n; i++)
        R->v[i].present = false;
    size_t nf = 0;
    const te_reload_file_t *files = scripts ? te_reload_files(scripts, &nf) : NULL;
    for (size_t i = 0; i < nf; i++) {
        te_script_t *s = files[i].live;
        if (!s || s->status == TE_SCRIPT_DISABLED)
            continue;
        te_recommend_decl_t *d = NULL;
        size_t nd = 0;
        if (te_recommend_decls(s, &d, &nd) < 0)
            continue;
        for (size_t k = 0; k < nd; k++)
            add_decl(R, files[i].path, &d[k], now);
        free(d);
    }
    for (size_t i = R->n; i-- > 0;)
        if (!R->v[i].present)
            drop(R, i);
}

static void on_tick(uv_timer_t *t)
{
    struct te_engine_recs *R = t->data;
    if (R->closed)
        return;
    int64_t now = te_time_now_ns();
    sync(R, now);
    if (R->running || !R->e->writer)
        return;
    rec_entry_t *due = NULL;
    for (size_t i = 0; i < R->n; i++)
        if (R->v[i].next_ns <= now && (!due || R->v[i].next_ns < due->next_ns))
            due = &R->v[i];
    if (due)
        start_run(R, due, now);
}

/* ---- start and stop ---- */

int te_engine_recs_start(te_engine_t *e, te_err_t *err)
{
    struct te_engine_recs *R = calloc(1, sizeof(*R));
    if (!R)
        return te_err_set(err, TE_ENOMEM, "recommendations: out of memory");
    e->recs = R;
    R->e = e;
    R->save_done.e = e;
    R->save_done.cb = save_done;
    /* the table comes with the schema (v5); a reader proves it is there */
    te_store_t *st = NULL;
    te_store_opts_t so = {.path = e->cfg->db_path, .readonly = true};
    int rc = te_store_open(&so, &st, err);
    if (rc == 0)
        rc = te_store_recs_init(st, err);
    te_store_close(st);
    if (rc < 0)
        return rc;
    uv_timer_init(&e->loop, &R->timer);
    R->timer.data = R;
    R->timer_on = true;
    uv_unref((uv_handle_t *)&R->timer);
    uv_timer_start(&R->timer, on_tick, 0, TICK_MS);
    return 0;
}

void te_engine_recs_close(te_engine_t *e)
{
    struct te_engine_recs *R = e ? e->recs : NULL;
    if (!R || R->closed)
        return;
    R->closed = true;
    if (R->timer_on && !uv_is_closing((uv_handle_t *)&R->timer))
        uv_close((uv_handle_t *)&R->timer, NULL);
}

void te_engine_recs_free(te_engine_t *e)
{
    struct te_engine_recs *R = e ? e->recs : NULL;
    if (!R)
        return;
    for (size_t i = 0; i < R->n; i++)
        free(R->v[i].path);
    free(R->v);
    free(R);
    e->recs = NULL;
}

void te_engine_recs_counts(const te_engine_t *e, te_engine_recs_counts_t *out)
{
    memset(out, 0, sizeof(*out));
    const struct te_engine_recs *R = e->recs;
    if (!R)
        return;
    out->recommenders = R->n;
    out->runs = R->runs;
    out->failures = R->failures;
}
