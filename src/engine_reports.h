/*
 * engine_reports.h - scheduled reports in a running engine (SPEC 6.5,
 * te.report's `schedule`): each report whose template declares a schedule
 * is rendered as HTML into <data dir>/reports/NAME-YYYYmmddTHHMM.html when
 * its time comes (UTC; see report/schedule.h).
 *
 * THREAD: loop; the template runs on libuv's pool (engine_reports.c).
 */
#ifndef TE_ENGINE_REPORTS_H
#define TE_ENGINE_REPORTS_H

#include <stdint.h>

#include "core/err.h"

struct te_engine;

/* Starts the schedule: a 5 s housekeeping timer (unref'd) that, off the
 * loop, re-reads the templates (edits apply without a restart) and runs
 * every report one of whose schedule instants passed since the previous
 * check. Instants before the start are not caught up. Allocates
 * e->reports. Returns 0 or TE_ENOMEM. */
int te_engine_reports_start(struct te_engine *e, te_err_t *err);

/* Stops the timer; a run in flight finishes (its file is still written).
 * Idempotent, NULL-safe. */
void te_engine_reports_close(struct te_engine *e);

/* Frees everything, after the loop ran its close callbacks and its pool
 * work. NULL-safe. */
void te_engine_reports_free(struct te_engine *e);

/* Reports written and failed since start (zeros when not started). */
void te_engine_reports_counts(const struct te_engine *e, uint64_t *written, uint64_t *failed);

/* Report deliveries to notifiers (te.report notify) that succeeded and
 * failed since start (zeros when not started). */
void te_engine_reports_notify_counts(const struct te_engine *e, uint64_t *sent,
                                     uint64_t *failed);

#endif
