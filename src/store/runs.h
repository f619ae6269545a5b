/*
 * runs.h - the run tracker (SPEC 8): pipeline runs computed at query time
 * from the stored `run` and `run_step` events. No table of its own.
 *
 * THREAD: the thread owning the store (any read-only store works: API
 * workers, the CLI).
 *
 * Events read (docs/runs.md):
 *   run      tags run_id, pipeline, status = started|succeeded|failed|aborted;
 *            fields steps_total
 *   run_step tags run_id, step, status = started|succeeded|failed;
 *            fields step_ordinal, duration_s (steps_total also read)
 *
 * The one idea: a run is known from its `run` events, which are few (two per
 * run), so they are all read (index events_kind_ts); the `run_step` events,
 * which are many, are read only over the time spans of the runs asked for
 * and of the past runs the ETA learns from (one index range per span).
 *
 * Status: the last `run` event decides (started -> running); a running run
 * with no event for longer than stale_after is `stale`.
 *
 * ETA estimator (running runs only): for each step not finished yet, its
 * typical duration is the median duration_s of the same pipeline's step at
 * the same ordinal over the last TE_RUNS_HISTORY finished runs of that
 * pipeline; without such history, the median of this run's finished steps;
 * without those, the median of every step in the pipeline's history. That
 * sum is scaled by this run's pace: the sum of its finished steps' actual
 * durations over the sum of their typical durations (clamped to 0.5..2, 1
 * when nothing to compare). The step in progress counts its typical
 * duration minus the time it has already run (never below 0). ETA is
 * unknown (NaN, null in JSON) when steps_total is unknown or no duration is.
 */
#ifndef TE_STORE_RUNS_H
#define TE_STORE_RUNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "store/store.h"

#define TE_RUNS_STALE_DEFAULT_NS (INT64_C(600) * INT64_C(1000000000)) /* 10 min */
#define TE_RUNS_LIMIT_DEFAULT 20
#define TE_RUNS_LIMIT_MAX 1000
#define TE_RUNS_HISTORY 20   /* past finished runs of a pipeline the ETA learns from */

/* One step of a run. Strings owned by the run (te_runs_free). */
typedef struct te_run_step {
    char *name;              /* tags.step ("step-N" when absent) */
    int64_t ordinal;         /* fields.step_ordinal (order of first sight when absent) */
    char status[16];         /* started | succeeded | failed (the step's last event) */
    double duration_s;       /* fields.duration_s, else finished - started; NaN unknown */
    int64_t started_ns;      /* 0 when no `started` event was seen */
    int64_t finished_ns;     /* 0 while not finished */
} te_run_step_t;

/* One run. Read-only for callers; free with te_runs_free. */
typedef struct te_run {
    char *id;
    char *pipeline;          /* "" when no event named it */
    char status[16];         /* running | stale | succeeded | failed | aborted */
    int64_t steps_total;     /* -1 unknown */
    int64_t steps_done;      /* steps whose last status is succeeded */
    char *current_step;      /* running: the step in progress (or next, by history); */
    int64_t current_ordinal; /* failed/aborted: the last step seen; NULL / 0 otherwise */
    int64_t started_ns;      /* first `run` event */
    int64_t last_event_ns;   /* newest event of the run (run or run_step) */
    int64_t ended_ns;        /* the finishing `run` event; 0 while running or stale */
    double elapsed_s;        /* ended (or last event when stale, now when running) - started */
    double eta_s;            /* remaining seconds (running only); NaN unknown */
    te_run_step_t *steps;    /* by ordinal */
    size_t nsteps;
} te_run_t;

typedef struct te_runs_query {
    const char *id;          /* one run (status, since and limit are ignored); NULL: list */
    const char *status;      /* NULL: any; else one of te_runs_status_check's words */
    int64_t since_ns;        /* runs whose last event is at or after; 0: no bound */
    size_t limit;            /* 0: TE_RUNS_LIMIT_DEFAULT */
    int64_t now_ns;          /* the clock (tests pass a fixed one) */
    int64_t stale_after_ns;  /* 0: TE_RUNS_STALE_DEFAULT_NS */
} te_runs_query_t;

/* Checks a status filter word: running|stale|succeeded|failed|aborted.
 * Returns 0 or TE_EINVAL with err listing the words. */
int te_runs_status_check(const char *status, te_err_t *err);

/* Computes runs from the stored events, newest start first, each with its
 * steps. Returns 0 and sets *out (caller owns: te_runs_free) and *n (may be
 * 0: with q->id, 0 means no such run), or TE_ESQLITE / TE_ENOMEM / TE_EINVAL
 * (bad status) with err; on failure *out is untouched. */
int te_store_runs(te_store_t *st, const te_runs_query_t *q, te_run_t **out, size_t *n,
                  te_err_t *err);

/* Frees n runs. NULL is a no-op. */
void te_runs_free(te_run_t *runs, size_t n);

/* The JSON object of one run (a `cJSON *`, caller owns): id, pipeline,
 * status, steps_total, steps_done, progress ("X/Y", "X/?" when Y is
 * unknown), current_step, current_ordinal, started_at, last_event_at,
 * ended_at, elapsed_s, eta_s, eta_at (null when unknown), and with
 * with_steps "steps":[{name, ordinal, status, duration_s, started_at,
 * finished_at}]. now_ns places eta_at. NULL when out of memory. */
void *te_run_json(const te_run_t *r, bool with_steps, int64_t now_ns);

/* {"runs":[run objects without steps]} for runs[0..n) (a `cJSON *`, caller
 * owns): what GET /v1/runs and `runs list --format json` print. NULL when
 * out of memory. */
void *te_runs_list_json(const te_run_t *runs, size_t n, int64_t now_ns);

#endif
