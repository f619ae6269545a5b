/*
 * schedule.c - parsing and stepping report schedules (see schedule.h).
 *
 * THREAD: any. Pure. Everything is UTC: the Unix epoch began on a
 * Thursday, which fixes the weekday arithmetic below.
 */
#include "schedule.h"

#include <stdio.h>
#include <string.h>

#include "core/time.h"

#define NS_PER_MIN (60 * TE_NS_PER_SEC)
#define NS_PER_DAY (86400 * TE_NS_PER_SEC)

static const char *const DAYS[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

static int bad(const char *s, te_err_t *err)
{
    return te_err_set(err, TE_EINVAL,
                      "schedule \"%s\": expected \"daily HH:MM\", \"weekly mon HH:MM\" or "
                      "\"every 6h\"",
                      s);
}

static int parse_hhmm(const char *p, int *out)
{
    int h, m;
    char extra;
    if (strlen(p) != 5 || p[2] != ':' || sscanf(p, "%2d:%2d%c", &h, &m, &extra) != 2 || h < 0 ||
        h > 23 || m < 0 || m > 59)
        return -1;
    *out = h * 60 + m;
    return 0;
}

int te_report_schedule_parse(const char *s, te_report_schedule_t *out, te_err_t *err)
{
    te_report_schedule_t r;
    memset(&r, 0, sizeof(r));
    if (strncmp(s, "daily ", 6) == 0) {
        r.kind = TE_SCHED_DAILY;
        if (parse_hhmm(s + 6, &r.minute_of_day) < 0)
            return bad(s, err);
    } else if (strncmp(s, "weekly ", 7) == 0) {
        r.kind = TE_SCHED_WEEKLY;
        r.weekday = -1;
        for (int i = 0; i < 7; i++)
            if (strncmp(s + 7, DAYS[i], 3) == 0 && s[10] == ' ')
                r.weekday = i;
        if (r.weekday < 0 || parse_hhmm(s + 11, &r.minute_of_day) < 0)
            return bad(s, err);
    } else if (strncmp(s, "every ", 6) == 0) {
        r.kind = TE_SCHED_EVERY;
        if (te_duration_parse(s + 6, &r.every_ns, NULL) < 0)
            return bad(s, err);
        if (r.every_ns < NS_PER_MIN)
            return te_err_set(err, TE_EINVAL, "schedule \"%s\": the period must be 1m or more",
                              s);
    } else {
        return bad(s, err);
    }
    *out = r;
    return 0;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int64_t te_report_schedule_next(const te_report_schedule_t *s, int64_t after_ns)
{
    if (s->kind == TE_SCHED_EVERY)
        return (floor_div(after_ns, s->every_ns) + 1) * s->every_ns;
    int64_t day = floor_div(after_ns, NS_PER_DAY);
    int64_t at = (int64_t)s->minute_of_day * NS_PER_MIN;
    for (int64_t d = day; d < day + 8; d++) {
        int64_t t = d * NS_PER_DAY + at;
        if (t <= after_ns)
            continue;
        /* 1970-01-01 (day 0) was a Thursday: weekday 3 with Monday = 0 */
        int wd = (int)(((d % 7) + 7 + 3) % 7);
        if (s->kind == TE_SCHED_DAILY || wd == s->weekday)
            return t;
    }
    return after_ns + NS_PER_DAY; /* unreachable */
}
