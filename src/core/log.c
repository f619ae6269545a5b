/*
 * log.c - one write(2) per record from a local buffer, under a mutex so that
 * records from the loop and the writer never interleave.
 */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "time.h"

static te_log_level_t min_level = TE_LOG_INFO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *const level_names[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};

void te_log_set_level(te_log_level_t level)
{
    min_level = level;
}

int te_log_level_parse(const char *s, te_log_level_t *out)
{
    static const char *const names[] = {"debug", "info", "warn", "error", "off"};
    for (int i = 0; i < 5; i++) {
        if (strcasecmp(s, names[i]) == 0) {
            *out = (te_log_level_t)i;
            return 0;
        }
    }
    return TE_EINVAL;
}

void te_log(te_log_level_t level, const char *module, const char *fmt, ...)
{
    char buf[2048];
    size_t n;
    int k;
    va_list ap;

    if (level < min_level || level >= TE_LOG_OFF)
        return;
    int64_t now = te_time_now_ns();
    n = te_time_format_rfc3339(now - now % TE_NS_PER_MS, buf, 40); /* millisecond stamps */
    k = snprintf(buf + n, sizeof(buf) - n, " %s %s: ", level_names[level], module);
    if (k > 0)
        n += (size_t)k;
    va_start(ap, fmt);
    k = vsnprintf(buf + n, sizeof(buf) - n - 1, fmt, ap);
    va_end(ap);
    if (k > 0)
        n += (size_t)k < sizeof(buf) - n - 1 ? (size_t)k : sizeof(buf) - n - 2;
    buf[n++] = '\n';
    pthread_mutex_lock(&log_lock);
    ssize_t w = write(STDERR_FILENO, buf, n);
    pthread_mutex_unlock(&log_lock);
    (void)w;
}
