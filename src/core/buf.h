/*
 * buf.h - a growing text buffer: answers, CSV, tables, templates.
 *
 * THREAD: any (one owner). Appends never fail loudly: on ENOMEM the buffer
 * sets oom, drops the bytes and keeps what it has, so a builder appends
 * freely and checks oom once at the end.
 */
#ifndef TE_CORE_BUF_H
#define TE_CORE_BUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct te_buf {
    char *p;        /* NUL-terminated once anything was appended; NULL before */
    size_t len, cap;
    bool oom;       /* an append failed: the contents are incomplete */
} te_buf_t;

/* Appends bytes. On ENOMEM sets b->oom and drops the bytes. */
void te_buf_add(te_buf_t *b, const char *s, size_t len);

/* Appends a NUL-terminated string. */
void te_buf_adds(te_buf_t *b, const char *s);

/* Appends printf-formatted text. */
void te_buf_addf(te_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends s (len bytes) as a quoted, escaped JSON string. */
void te_buf_add_json_str(te_buf_t *b, const char *s, size_t len);

/* Frees the buffer's memory and empties it. */
void te_buf_free(te_buf_t *b);

#endif
