/*
 * log.h - the engine's log: one write(2) per record, thread-safe.
 *
 * THREAD: any (never from a signal handler). Records go to stderr as
 * "2026-11-20T10:00:00.123Z WARN  store: message". Messages never carry
 * event bodies or secrets at INFO.
 */
#ifndef TE_CORE_LOG_H
#define TE_CORE_LOG_H

typedef enum { TE_LOG_DEBUG = 0, TE_LOG_INFO, TE_LOG_WARN, TE_LOG_ERROR, TE_LOG_OFF } te_log_level_t;

/* Sets the lowest level written (default TE_LOG_INFO). Cannot fail. */
void te_log_set_level(te_log_level_t level);

/* Parses "debug|info|warn|error|off"; returns 0 and sets *out, or TE_EINVAL. */
int te_log_level_parse(const char *s, te_log_level_t *out);

/* Writes one record for module (a short word: "store", "http"). */
void te_log(te_log_level_t level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
