/*
 * schedule.h - when a scheduled report runs (te.report's `schedule`).
 *
 * THREAD: any. Pure.
 *
 * Three forms, in UTC: "daily HH:MM", "weekly DAY HH:MM" (DAY = mon, tue,
 * wed, thu, fri, sat, sun) and "every D" (D a duration of at least 1m;
 * runs at multiples of D since the Unix epoch, so "every 6h" runs at
 * 00:00, 06:00, 12:00 and 18:00 UTC).
 */
#ifndef TE_REPORT_SCHEDULE_H
#define TE_REPORT_SCHEDULE_H

#include <stdint.h>

#include "core/err.h"

typedef enum { TE_SCHED_DAILY = 0, TE_SCHED_WEEKLY, TE_SCHED_EVERY } te_sched_kind_t;

typedef struct te_report_schedule {
    te_sched_kind_t kind;
    int weekday;         /* weekly: 0 = Monday .. 6 = Sunday */
    int minute_of_day;   /* daily, weekly: 0..1439 */
    int64_t every_ns;    /* every */
} te_report_schedule_t;

/* Parses s. Returns 0, or TE_EINVAL with err such as 'schedule "daily
 * 8am": expected "daily HH:MM", "weekly mon HH:MM" or "every 6h"'. */
int te_report_schedule_parse(const char *s, te_report_schedule_t *out, te_err_t *err);

/* The first run instant strictly after after_ns. Cannot fail. */
int64_t te_report_schedule_next(const te_report_schedule_t *s, int64_t after_ns);

#endif
