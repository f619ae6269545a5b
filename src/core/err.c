/*
 * err.c - error codes to words, and the message buffer.
 */
#include "err.h"

#include <stdio.h>
#include <string.h>

const char *te_strerror(int code)
{
    switch (code) {
    case 0:
        return "ok";
#define XX(name, c, msg) \
    case c:              \
        return msg;
        TE_ERRNO_MAP(XX)
#undef XX
    default:
        return "unknown error";
    }
}

int te_err_setv(te_err_t *err, int code, const char *fmt, va_list ap)
{
    if (err) {
        err->code = code;
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    }
    return code;
}

int te_err_set(te_err_t *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    te_err_setv(err, code, fmt, ap);
    va_end(ap);
    return code;
}

void te_err_clear(te_err_t *err)
{
    if (err) {
        err->code = 0;
        err->msg[0] = '\0';
    }
}
