/*
 * err.h - error codes and the error-message buffer shared by every module.
 *
 * THREAD: any. Every fallible function returns 0 or a negative TE_E* code
 * (libuv's convention); where a message helps, it also fills a te_err_t the
 * caller passes last (NULL allowed). Messages follow "where: what[: cause]
 * (how to fix)".
 */
#ifndef TE_CORE_ERR_H
#define TE_CORE_ERR_H

#include <stdarg.h>

#define TE_ERRNO_MAP(XX)                                   \
    XX(INVAL, -1, "invalid argument")                      \
    XX(NOMEM, -2, "out of memory")                         \
    XX(SQLITE, -3, "storage error")                        \
    XX(IO, -4, "input/output error")                       \
    XX(FULL, -5, "queue full")                             \
    XX(TOOBIG, -6, "too large")                            \
    XX(PARSE, -7, "parse error")                           \
    XX(NOTFOUND, -8, "not found")                          \
    XX(CLOSED, -9, "closed")                               \
    XX(CONFIG, -10, "configuration error")                 \
    XX(USAGE, -11, "usage error")                          \
    XX(SCRIPT, -12, "script error")                        \
    XX(EXISTS, -13, "already exists")

#define XX(name, code, msg) TE_E##name = code,
typedef enum { TE_OK = 0, TE_ERRNO_MAP(XX) } te_errno_t;
#undef XX

#define TE_ERR_MSG_MAX 512

/* An error code plus a human message, filled by the function that failed. */
typedef struct te_err {
    int code;
    char msg[TE_ERR_MSG_MAX];
} te_err_t;

/* Returns a static string describing code (never NULL; unknown codes give
 * "unknown error"). */
const char *te_strerror(int code);

/* Formats a message into err (when err is not NULL) and returns code, so
 * callers can write `return te_err_set(err, TE_EINVAL, "...")`. */
int te_err_set(te_err_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like te_err_set with a va_list. */
int te_err_setv(te_err_t *err, int code, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* Clears err (code 0, empty message). NULL is a no-op. */
void te_err_clear(te_err_t *err);

#endif
