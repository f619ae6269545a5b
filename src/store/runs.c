/*
 * runs.c - the run tracker (SPEC 8): runs, steps, status, stale and ETA
 * computed from the stored `run` / `run_step` events at query time.
 *
 * THREAD: the thread owning the store (see runs.h).
 *
 * How a query reads (runs.h has the model and the ETA estimator):
 *  1. every `run` event (index events_kind_ts; tags come once per series,
 *     json_extract'ed from series.tags) -> one accumulator per run_id in a
 *     small hash;
 *  2. the runs are ordered newest start first and taken in batches: a
 *     finished run can be filtered on status and time already, a running
 *     one needs its steps (stale depends on the last step event);
 *  3. for the batch (plus, for running runs, the last TE_RUNS_HISTORY
 *     finished runs of their pipelines) the `run_step` events are read over
 *     each run's time span only (merged spans, one index range each), so
 *     the cost follows the runs shown, not the table.
 * The SQL lives here rather than in sql.h because it is read-only and
 * private to this file.
 */
#include "runs.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/time.h"
#include "store_int.h"

#define SQL_RUN_EVENTS                                                                      \
    "SELECT e.ts_ns, json_extract(s.tags, '$.run_id'), json_extract(s.tags, '$.pipeline'), " \
    "json_extract(s.tags, '$.status'), te_field(e.fields, 'steps_total') "                  \
    "FROM events e JOIN series s ON s.id = e.series_id "                                    \
    "WHERE e.kind_id = ?1 ORDER BY e.ts_ns, e.id"

#define SQL_STEP_EVENTS                                                                     \
    "SELECT e.ts_ns, json_extract(s.tags, '$.run_id'), json_extract(s.tags, '$.step'), "     \
    "json_extract(s.tags, '$.status'), te_field(e.fields, 'step_ordinal'), "                \
    "te_field(e.fields, 'duration_s'), te_field(e.fields, 'steps_total'), "                 \
    "json_extract(s.tags, '$.pipeline') "                                                   \
    "FROM events e JOIN series s ON s.id = e.series_id "                                    \
    "WHERE e.kind_id = ?1 AND e.ts_ns >= ?2 AND e.ts_ns <= ?3 ORDER BY e.ts_ns, e.id"

/* Step events may carry a timestamp a little before the run's `started`
 * event or after its end (clocks of different workers): spans are widened. */
#define SPAN_MARGIN_NS (INT64_C(60) * TE_NS_PER_SEC)
#define MAX_STEPS 4096 /* per run; further step names are ignored (bounded memory) */

typedef struct acc {
    te_run_t r;
    size_t cap_steps;
    bool terminal;   /* last run event finished it */
    bool loaded;     /* its steps were read */
    bool loading;    /* its steps are being read now */
    bool done;       /* finalised */
} acc_t;

typedef struct ctx {
    te_store_t *st;
    const te_runs_query_t *q;
    int64_t now_ns, stale_ns;
    int64_t step_kind;
    acc_t *v;
    size_t n, cap;
    size_t *slots;   /* hash of index+1 (0 empty) */
    size_t nslots;
    te_err_t *err;
} ctx_t;

static const char *const STATUS_WORDS[] = {"running", "stale", "succeeded", "failed",
                                           "aborted"};

int te_runs_status_check(const char *status, te_err_t *err)
{
    for (size_t i = 0; i < sizeof(STATUS_WORDS) / sizeof(*STATUS_WORDS); i++)
        if (status && strcmp(status, STATUS_WORDS[i]) == 0)
            return 0;
    return te_err_set(err, TE_EINVAL,
                      "runs: unknown status \"%s\" (use running, stale, succeeded, failed or "
                      "aborted)",
                      status ? status : "");
}

static bool is_terminal(const char *s)
{
    return !strcmp(s, "succeeded") || !strcmp(s, "failed") || !strcmp(s, "aborted");
}

static bool is_finished_step(const char *s)
{
    return !strcmp(s, "succeeded") || !strcmp(s, "failed");
}

/* ---- the id hash ---- */

static int grow_slots(ctx_t *c)
{
    size_t ns = c->nslots ? c->nslots * 2 : 256;
    size_t *slots = calloc(ns, sizeof(*slots));
    if (!slots)
        return te_err_set(c->err, TE_ENOMEM, "runs: out of memory");
    for (size_t i = 0; i < c->n; i++) {
        size_t h = (size_t)te_store_hash(c->v[i].r.id, strlen(c->v[i].r.id), 0) & (ns - 1);
        while (slots[h])
            h = (h + 1) & (ns - 1);
        slots[h] = i + 1;
    }
    free(c->slots);
    c->slots = slots;
    c->nslots = ns;
    return 0;
}

static acc_t *find_acc(ctx_t *c, const char *id)
{
    if (!c->nslots)
        return NULL;
    size_t h = (size_t)te_store_hash(id, strlen(id), 0) & (c->nslots - 1);
    while (c->slots[h]) {
        acc_t *a = &c->v[c->slots[h] - 1];
        if (strcmp(a->r.id, id) == 0)
            return a;
        h = (h + 1) & (c->nslots - 1);
    }
    return NULL;
}

static acc_t *add_acc(ctx_t *c, const char *id)
{
    if ((c->n + 1) * 2 > c->nslots && grow_slots(c) < 0)
        return NULL;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        acc_t *v = realloc(c->v, cap * sizeof(*v));
        if (!v) {
            te_err_set(c->err, TE_ENOMEM, "runs: out of memory");
            return NULL;
        }
        c->v = v;
        c->cap = cap;
    }
    acc_t *a = &c->v[c->n];
    memset(a, 0, sizeof(*a));
    a->r.id = strdup(id);
    a->r.pipeline = strdup("");
    if (!a->r.id || !a->r.pipeline) {
        free(a->r.id);
        free(a->r.pipeline);
        te_err_set(c->err, TE_ENOMEM, "runs: out of memory");
        return NULL;
    }
    a->r.steps_total = -1;
    a->r.eta_s = NAN;
    snprintf(a->r.status, sizeof(a->r.status), "running");
    size_t h = (size_t)te_store_hash(id, strlen(id), 0) & (c->nslots - 1);
    while (c->slots[h])
        h = (h + 1) & (c->nslots - 1);
    c->slots[h] = ++c->n;
    return a;
}

static void run_clear(te_run_t *r)
{
    for (size_t i = 0; i < r->nsteps; i++)
        free(r->steps[i].name);
    free(r->steps);
    free(r->id);
    free(r->pipeline);
    free(r->current_step);
    memset(r, 0, sizeof(*r));
}

void te_runs_free(te_run_t *runs, size_t n)
{
    if (!runs)
        return;
    for (size_t i = 0; i < n; i++)
        run_clear(&runs[i]);
    free(runs);
}

static const char *col_text(sqlite3_stmt *s, int i)
{
    return (const char *)sqlite3_column_text(s, i);
}

static double col_num(sqlite3_stmt *s, int i)
{
    return sqlite3_column_type(s, i) == SQLITE_NULL ? NAN : sqlite3_column_double(s, i);
}

static int set_pipeline(ctx_t *c, acc_t *a, const char *p)
{
    if (!p || a->r.pipeline[0])
        return 0;
    char *d = strdup(p);
    if (!d)
        return te_err_set(c->err, TE_ENOMEM, "runs: out of memory");
    free(a->r.pipeline);
    a->r.pipeline = d;
    return 0;
}

/* ---- step 1: the run events ---- */

static int read_runs(ctx_t *c, int64_t run_kind)
{
    sqlite3_stmt *s = NULL;
    int src = sqlite3_prepare_v2(c->st->db, SQL_RUN_EVENTS, -1, &s, NULL);
    if (src != SQLITE_OK)
        return te_store_sqlerr(c->st, src, c->err, "runs: read run events");
    sqlite3_bind_int64(s, 1, run_kind);
    int rc = 0;
    while (rc == 0 && (src = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t ts = sqlite3_column_int64(s, 0);
        const char *id = col_text(s, 1);
        if (!id)
            continue;
        acc_t *a = find_acc(c, id);
        if (!a)
            a = add_acc(c, id);
        if (!a) {
            rc = TE_ENOMEM;
            break;
        }
        rc = set_pipeline(c, a, col_text(s, 2));
        if (!a->r.started_ns || ts < a->r.started_ns)
            a->r.started_ns = ts;
        if (ts > a->r.last_event_ns)
            a->r.last_event_ns = ts;
        double total = col_num(s, 4);
        if (!isnan(total) && total >= 0)
            a->r.steps_total = (int64_t)total;
        const char *status = col_text(s, 3);
        if (status && is_terminal(status)) {
            snprintf(a->r.status, sizeof(a->r.status), "%s", status);
            a->terminal = true;
            a->r.ended_ns = ts;
        } else if (status && !strcmp(status, "started")) {
            /* a later "started" (a resumed run) makes it run again */
            snprintf(a->r.status, sizeof(a->r.status), "running");
            a->terminal = false;
            a->r.ended_ns = 0;
        }
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = te_store_sqlerr(c->st, src, c->err, "runs: read run events");
    sqlite3_finalize(s);
    return rc;
}

/* ---- step 3: the step events over the spans of the runs being loaded ---- */

typedef struct span {
    int64_t lo, hi;
} span_t;

static int span_cmp(const void *x, const void *y)
{
    const span_t *a = x, *b = y;
    return a->lo < b->lo ? -1 : a->lo > b->lo;
}

static te_run_step_t *step_get(ctx_t *c, acc_t *a, const char *name, double ordinal)
{
    for (size_t i = 0; i < a->r.nsteps; i++)
        if (strcmp(a->r.steps[i].name, name) == 0)
            return &a->r.steps[i];
    if (a->r.nsteps >= MAX_STEPS)
        return NULL;
    if (a->r.nsteps == a->cap_steps) {
        size_t cap = a->cap_steps ? a->cap_steps * 2 : 8;
        te_run_step_t *v = realloc(a->r.steps, cap * sizeof(*v));
        if (!v) {
            te_err_set(c->err, TE_ENOMEM, "runs: out of memory");
            return NULL;
        }
        a->r.steps = v;
        a->cap_steps = cap;
    }
    te_run_step_t *p = &a->r.steps[a->r.nsteps];
    memset(p, 0, sizeof(*p));
    p->name = strdup(name);
    if (!p->name) {
        te_err_set(c->err, TE_ENOMEM, "runs: out of memory");
        return NULL;
    }
    p->ordinal = isnan(ordinal) ? (int64_t)a->r.nsteps + 1 : (int64_t)ordinal;
    p->duration_s = NAN;
    snprintf(p->status, sizeof(p->status), "started");
    a->r.nsteps++;
    return p;
}

static int step_row(ctx_t *c, sqlite3_stmt *s)
{
    int64_t ts = sqlite3_column_int64(s, 0);
    const char *id = col_text(s, 1);
    acc_t *a = id ? find_acc(c, id) : NULL;
    if (!a || !a->loading)
        return 0;
    double ordinal = col_num(s, 4), dur = col_num(s, 5), total = col_num(s, 6);
    const char *name = col_text(s, 2), *status = col_text(s, 3);
    char gen[32];
    if (!name) {
        if (isnan(ordinal))
            return 0;
        snprintf(gen, sizeof(gen), "step-%lld", (long long)ordinal);
        name = gen;
    }
    if (ts > a->r.last_event_ns)
        a->r.last_event_ns = ts;
    if (a->r.steps_total < 0 && !isnan(total) && total >= 0)
        a->r.steps_total = (int64_t)total;
    int rc = set_pipeline(c, a, col_text(s, 7));
    if (rc < 0)
        return rc;
    te_run_step_t *p = step_get(c, a, name, ordinal);
    if (!p)
        return a->r.nsteps >= MAX_STEPS ? 0 : TE_ENOMEM;
    if (!isnan(ordinal))
        p->ordinal = (int64_t)ordinal;
    if (!status)
        return 0;
    if (!strcmp(status, "started")) {
        snprintf(p->status, sizeof(p->status), "started");
        if (!p->started_ns)
            p->started_ns = ts;
        p->finished_ns = 0;
    } else if (is_finished_step(status)) {
        snprintf(p->status, sizeof(p->status), "%s", status);
        p->finished_ns = ts;
        if (!isnan(dur) && dur >= 0)
            p->duration_s = dur;
        else if (p->started_ns)
            p->duration_s = (double)(ts - p->started_ns) / 1e9;
    }
    return 0;
}

/* Reads the step events of every run marked loading, then marks them loaded. */
static int load_steps(ctx_t *c)
{
    size_t nsp = 0;
    for (size_t i = 0; i < c->n; i++)
        nsp += c->v[i].loading;
    if (!nsp || !c->step_kind)
        goto mark;
    span_t *sp = malloc(nsp * sizeof(*sp));
    if (!sp)
        return te_err_set(c->err, TE_ENOMEM, "runs: out of memory");
    nsp = 0;
    for (size_t i = 0; i < c->n; i++) {
        const acc_t *a = &c->v[i];
        if (!a->loading)
            continue;
        sp[nsp].lo = a->r.started_ns - SPAN_MARGIN_NS;
        sp[nsp].hi = a->terminal ? a->r.ended_ns + SPAN_MARGIN_NS : INT64_MAX;
        nsp++;
    }
    qsort(sp, nsp, sizeof(*sp), span_cmp);
    size_t m = 0;
    for (size_t i = 1; i < nsp; i++) {
        if (sp[i].lo <= sp[m].hi) {
            if (sp[i].hi > sp[m].hi)
                sp[m].hi = sp[i].hi;
        } else {
            sp[++m] = sp[i];
        }
    }
    nsp = m + 1;
    sqlite3_stmt *s = NULL;
    int rc = 0, src = sqlite3_prepare_v2(c->st->db, SQL_STEP_EVENTS, -1, &s, NULL);
    if (src != SQLITE_OK) {
        free(sp);
        return te_store_sqlerr(c->st, src, c->err, "runs: read step events");
    }
    for (size_t i = 0; rc == 0 && i < nsp; i++) {
        sqlite3_reset(s);
        sqlite3_bind_int64(s, 1, c->step_kind);
        sqlite3_bind_int64(s, 2, sp[i].lo);
        sqlite3_bind_int64(s, 3, sp[i].hi);
        while (rc == 0 && (src = sqlite3_step(s)) == SQLITE_ROW)
            rc = step_row(c, s);
        if (rc == 0 && src != SQLITE_DONE)
            rc = te_store_sqlerr(c->st, src, c->err, "runs: read step events");
    }
    sqlite3_finalize(s);
    free(sp);
    if (rc < 0)
        return rc;
mark:
    for (size_t i = 0; i < c->n; i++)
        if (c->v[i].loading) {
            c->v[i].loading = false;
            c->v[i].loaded = true;
        }
    return 0;
}

/* ---- finalising a run: status, X/Y, current step, ETA ---- */

static int dbl_cmp(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

static int step_cmp(const void *x, const void *y)
{
    const te_run_step_t *a = x, *b = y;
    return a->ordinal < b->ordinal ? -1 : a->ordinal > b->ordinal;
}

static double median(double *v, size_t n)
{
    if (!n)
        return NAN;
    qsort(v, n, sizeof(*v), dbl_cmp); /* n > 0: v is not NULL */
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The history of a pipeline: its last TE_RUNS_HISTORY finished runs
 * (order[] is newest start first). */
typedef struct hist {
    const acc_t *runs[TE_RUNS_HISTORY];
    size_t n;
} hist_t;

static void hist_pick(const ctx_t *c, const size_t *order, const acc_t *self, hist_t *h)
{
    h->n = 0;
    for (size_t i = 0; i < c->n && h->n < TE_RUNS_HISTORY; i++) {
        const acc_t *a = &c->v[order[i]];
        if (a != self && a->terminal && !strcmp(a->r.pipeline, self->r.pipeline))
            h->runs[h->n++] = a;
    }
}

/* Median duration of the succeeded steps at ordinal k (k == 0: every
 * ordinal) over the history runs; scratch holds cap values. */
static double hist_median(const hist_t *h, int64_t k, double *scratch, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < h->n; i++)
        for (size_t j = 0; j < h->runs[i]->r.nsteps && n < cap; j++) {
            const te_run_step_t *p = &h->runs[i]->r.steps[j];
            if ((k == 0 || p->ordinal == k) && !strcmp(p->status, "succeeded") &&
                !isnan(p->duration_s))
                scratch[n++] = p->duration_s;
        }
    return median(scratch, n);
}

static const char *hist_name(const hist_t *h, int64_t k)
{
    for (size_t i = 0; i < h->n; i++)
        for (size_t j = 0; j < h->runs[i]->r.nsteps; j++)
            if (h->runs[i]->r.steps[j].ordinal == k)
                return h->runs[i]->r.steps[j].name;
    return NULL;
}

static const te_run_step_t *step_at(const te_run_t *r, int64_t k)
{
    for (size_t i = 0; i < r->nsteps; i++)
        if (r->steps[i].ordinal == k)
            return &r->steps[i];
    return NULL;
}

static double estimate_eta(const te_run_t *r, const hist_t *h, int64_t now_ns, double *scratch,
                           size_t cap)
{
    if (r->steps_total < 0)
        return NAN;
    double own[MAX_STEPS];
    size_t nown = 0;
    double num = 0, den = 0;
    for (size_t i = 0; i < r->nsteps; i++) {
        const te_run_step_t *p = &r->steps[i];
        if (!is_finished_step(p->status) || isnan(p->duration_s))
            continue;
        own[nown++] = p->duration_s;
        double b = hist_median(h, p->ordinal, scratch, cap);
        if (!isnan(b) && b > 0) {
            num += p->duration_s;
            den += b;
        }
    }
    double pace = den > 0 ? num / den : 1;
    pace = pace < 0.5 ? 0.5 : pace > 2 ? 2 : pace;
    double own_med = median(own, nown), all_med = hist_median(h, 0, scratch, cap);
    double remaining = 0;
    for (int64_t k = 1; k <= r->steps_total; k++) {
        const te_run_step_t *p = step_at(r, k);
        if (p && is_finished_step(p->status))
            continue;
        double b = hist_median(h, k, scratch, cap);
        if (isnan(b))
            b = own_med;
        if (isnan(b))
            b = all_med;
        if (isnan(b))
            return NAN;
        double t = pace * b;
        if (p && p->started_ns && !strcmp(p->status, "started")) {
            t -= (double)(now_ns - p->started_ns) / 1e9;
            if (t < 0)
                t = 0;
        }
        remaining += t;
    }
    return remaining;
}

static int set_current(ctx_t *c, te_run_t *r, const char *name, int64_t k)
{
    free(r->current_step);
    r->current_step = NULL;
    r->current_ordinal = k;
    if (!name)
        return 0;
    r->current_step = strdup(name);
    return r->current_step ? 0 : te_err_set(c->err, TE_ENOMEM, "runs: out of memory");
}

static int finalize(ctx_t *c, acc_t *a, const size_t *order)
{
    te_run_t *r = &a->r;
    if (r->nsteps)
        qsort(r->steps, r->nsteps, sizeof(*r->steps), step_cmp);
    r->steps_done = 0;
    int64_t max_finished = 0;
    const te_run_step_t *in_progress = NULL;
    for (size_t i = 0; i < r->nsteps; i++) {
        const te_run_step_t *p = &r->steps[i];
        r->steps_done += !strcmp(p->status, "succeeded");
        if (is_finished_step(p->status) && p->ordinal > max_finished)
            max_finished = p->ordinal;
        if (!strcmp(p->status, "started"))
            in_progress = p;   /* sorted: the highest ordinal wins */
    }
    a->done = true;
    if (a->terminal) {
        r->elapsed_s = (double)(r->ended_ns - r->started_ns) / 1e9;
        if (strcmp(r->status, "succeeded") != 0 && r->nsteps)
            return set_current(c, r, r->steps[r->nsteps - 1].name,
                               r->steps[r->nsteps - 1].ordinal);
        return 0;
    }
    bool stale = c->now_ns - r->last_event_ns > c->stale_ns;
    snprintf(r->status, sizeof(r->status), "%s", stale ? "stale" : "running");
    r->elapsed_s = (double)((stale ? r->last_event_ns : c->now_ns) - r->started_ns) / 1e9;
    hist_t h;
    hist_pick(c, order, a, &h);
    size_t cap = (size_t)TE_RUNS_HISTORY * 64;
    double *scratch = malloc(cap * sizeof(*scratch));
    if (!scratch)
        return te_err_set(c->err, TE_ENOMEM, "runs: out of memory");
    int rc;
    if (in_progress) {
        rc = set_current(c, r, in_progress->name, in_progress->ordinal);
    } else {
        int64_t k = max_finished + 1;
        const te_run_step_t *p = step_at(r, k);
        rc = (r->steps_total >= 0 && k > r->steps_total)
                 ? 0
                 : set_current(c, r, p ? p->name : hist_name(&h, k), k);
    }
    if (!stale)
        r->eta_s = estimate_eta(r, &h, c->now_ns, scratch, cap);
    free(scratch);
    return rc;
}

/* ---- step 2: selection ---- */

static int order_cmp_impl(const ctx_t *c, size_t x, size_t y)
{
    const acc_t *a = &c->v[x], *b = &c->v[y];
    if (a->r.started_ns != b->r.started_ns)
        return a->r.started_ns > b->r.started_ns ? -1 : 1;
    return strcmp(b->r.id, a->r.id);
}

static void order_sort(const ctx_t *c, size_t *order, size_t n)
{
    /* qsort has no user pointer: a bottom-up merge sort over indices */
    size_t *tmp = malloc(n * sizeof(*tmp));
    if (!tmp) { /* fall back to insertion sort: slower, still correct */
        for (size_t i = 1; i < n; i++)
            for (size_t j = i; j > 0 && order_cmp_impl(c, order[j - 1], order[j]) > 0; j--) {
                size_t t = order[j];
                order[j] = order[j - 1];
                order[j - 1] = t;
            }
        return;
    }
    for (size_t w = 1; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                tmp[k++] = order_cmp_impl(c, order[i], order[j]) <= 0 ? order[i++] : order[j++];
            while (i < mid)
                tmp[k++] = order[i++];
            while (j < hi)
                tmp[k++] = order[j++];
        }
        memcpy(order, tmp, n * sizeof(*order));
    }
    free(tmp);
}

/* Could a run pass the filters? Finished runs are decided from their run
 * events; running ones only after their steps are read. */
static bool maybe_passes(const ctx_t *c, const acc_t *a)
{
    const char *want = c->q->status;
    if (a->terminal)
        return (!want || !strcmp(want, a->r.status)) && a->r.last_event_ns >= c->q->since_ns;
    return !want || !strcmp(want, "running") || !strcmp(want, "stale");
}

static bool passes(const ctx_t *c, const acc_t *a)
{
    const char *want = c->q->status;
    return (!want || !strcmp(want, a->r.status)) && a->r.last_event_ns >= c->q->since_ns;
}

/* Marks the history runs of every running run among order[from..to) for
 * loading. */
static void mark_history(ctx_t *c, const size_t *order, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        const acc_t *a = &c->v[order[i]];
        if (a->terminal || !a->loading)
            continue;
        hist_t h;
        hist_pick(c, order, a, &h);
        for (size_t j = 0; j < h.n; j++) {
            acc_t *hr = (acc_t *)h.runs[j];
            if (!hr->loaded)
                hr->loading = true;
        }
    }
}

static void ctx_free(ctx_t *c)
{
    for (size_t i = 0; i < c->n; i++)
        run_clear(&c->v[i].r);
    free(c->v);
    free(c->slots);
}

int te_store_runs(te_store_t *st, const te_runs_query_t *q, te_run_t **out, size_t *n,
                  te_err_t *err)
{
    if (q->status && te_runs_status_check(q->status, err) < 0)
        return TE_EINVAL;
    ctx_t c = {.st = st, .q = q, .err = err};
    c.now_ns = q->now_ns ? q->now_ns : te_time_now_ns();
    c.stale_ns = q->stale_after_ns > 0 ? q->stale_after_ns : TE_RUNS_STALE_DEFAULT_NS;
    size_t limit = q->limit ? q->limit : TE_RUNS_LIMIT_DEFAULT;
    int64_t run_kind = 0;
    size_t *order = NULL, *picked = NULL, npicked = 0;
    te_run_t *res = NULL;
    int rc = te_store_kind_find(st, "run", &run_kind, err);
    if (rc == 0 && run_kind)
        rc = te_store_kind_find(st, "run_step", &c.step_kind, err);
    if (rc == 0 && run_kind)
        rc = read_runs(&c, run_kind);
    if (rc < 0)
        goto fail;
    order = malloc((c.n ? c.n : 1) * sizeof(*order));
    picked = malloc((c.n ? c.n : 1) * sizeof(*picked));
    if (!order || !picked) {
        rc = te_err_set(err, TE_ENOMEM, "runs: out of memory");
        goto fail;
    }
    for (size_t i = 0; i < c.n; i++)
        order[i] = i;
    order_sort(&c, order, c.n);

    if (q->id) {
        acc_t *a = find_acc(&c, q->id);
        if (a) {
            a->loading = true;
            size_t pos = 0;
            while (order[pos] != (size_t)(a - c.v))
                pos++;
            mark_history(&c, order, pos, pos + 1);
            rc = load_steps(&c);
            if (rc == 0)
                rc = finalize(&c, a, order);
            if (rc < 0)
                goto fail;
            picked[npicked++] = (size_t)(a - c.v);
        }
    } else {
        /* batches of candidates until limit runs passed or none is left */
        size_t pos = 0;
        while (npicked < limit && pos < c.n) {
            size_t from = pos, want = limit - npicked, cand = 0;
            while (pos < c.n && cand < want) {
                acc_t *a = &c.v[order[pos++]];
                if (maybe_passes(&c, a)) {
                    a->loading = !a->loaded;
                    a->done = false;
                    cand++;
                }
            }
            mark_history(&c, order, from, pos);
            rc = load_steps(&c);
            for (size_t i = from; rc == 0 && i < pos; i++) {
                acc_t *a = &c.v[order[i]];
                if (!maybe_passes(&c, a) || !a->loaded)
                    continue;
                rc = finalize(&c, a, order);
                if (rc == 0 && passes(&c, a) && npicked < limit)
                    picked[npicked++] = order[i];
            }
            if (rc < 0)
                goto fail;
        }
    }
    res = calloc(npicked ? npicked : 1, sizeof(*res));
    if (!res) {
        rc = te_err_set(err, TE_ENOMEM, "runs: out of memory");
        goto fail;
    }
    for (size_t i = 0; i < npicked; i++) {
        res[i] = c.v[picked[i]].r;
        memset(&c.v[picked[i]].r, 0, sizeof(te_run_t)); /* moved out */
    }
    ctx_free(&c);
    free(order);
    free(picked);
    *out = res;
    *n = npicked;
    return 0;
fail:
    ctx_free(&c);
    free(order);
    free(picked);
    return rc < 0 ? rc : TE_ESQLITE;
}

/* ---- JSON ---- */

static bool add_time(cJSON *o, const char *key, int64_t ns)
{
    char buf[40];
    if (!ns)
        return cJSON_AddNullToObject(o, key) != NULL;
    te_time_format_rfc3339(ns, buf, sizeof(buf));
    return cJSON_AddStringToObject(o, key, buf) != NULL;
}

static bool add_num(cJSON *o, const char *key, double v)
{
    if (isnan(v) || isinf(v))
        return cJSON_AddNullToObject(o, key) != NULL;
    return cJSON_AddNumberToObject(o, key, v) != NULL;
}

static bool add_str(cJSON *o, const char *key, const char *s)
{
    return (s ? cJSON_AddStringToObject(o, key, s) : cJSON_AddNullToObject(o, key)) != NULL;
}

void *te_run_json(const te_run_t *r, bool with_steps, int64_t now_ns)
{
    cJSON *o = cJSON_CreateObject();
    char progress[48];
    if (r->steps_total >= 0)
        snprintf(progress, sizeof(progress), "%lld/%lld", (long long)r->steps_done,
                 (long long)r->steps_total);
    else
        snprintf(progress, sizeof(progress), "%lld/?", (long long)r->steps_done);
    bool ok = o && add_str(o, "id", r->id) && add_str(o, "pipeline", r->pipeline) &&
              add_str(o, "status", r->status) &&
              add_num(o, "steps_total", r->steps_total >= 0 ? (double)r->steps_total : NAN) &&
              add_num(o, "steps_done", (double)r->steps_done) &&
              add_str(o, "progress", progress) && add_str(o, "current_step", r->current_step) &&
              add_num(o, "current_ordinal", r->current_ordinal ? (double)r->current_ordinal : NAN) &&
              add_time(o, "started_at", r->started_ns) &&
              add_time(o, "last_event_at", r->last_event_ns) &&
              add_time(o, "ended_at", r->ended_ns) && add_num(o, "elapsed_s", r->elapsed_s) &&
              add_num(o, "eta_s", r->eta_s) &&
              add_time(o, "eta_at", isnan(r->eta_s) ? 0 : now_ns + (int64_t)(r->eta_s * 1e9));
    if (ok && with_steps) {
        cJSON *arr = cJSON_AddArrayToObject(o, "steps");
        ok = arr != NULL;
        for (size_t i = 0; ok && i < r->nsteps; i++) {
            const te_run_step_t *p = &r->steps[i];
            cJSON *so = cJSON_CreateObject();
            ok = so && cJSON_AddItemToArray(arr, so);
            if (!ok) {
                cJSON_Delete(so);
                break;
            }
            ok = add_str(so, "name", p->name) && add_num(so, "ordinal", (double)p->ordinal) &&
                 add_str(so, "status", p->status) && add_num(so, "duration_s", p->duration_s) &&
                 add_time(so, "started_at", p->started_ns) &&
                 add_time(so, "finished_at", p->finished_ns);
        }
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

void *te_runs_list_json(const te_run_t *runs, size_t n, int64_t now_ns)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = root ? cJSON_AddArrayToObject(root, "runs") : NULL;
    if (!arr) {
        cJSON_Delete(root);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        cJSON *o = te_run_json(&runs[i], false, now_ns);
        if (!o || !cJSON_AddItemToArray(arr, o)) {
            cJSON_Delete(o);
            cJSON_Delete(root);
            return NULL;
        }
    }
    return root;
}
