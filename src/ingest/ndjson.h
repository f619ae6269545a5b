/*
 * ndjson.h - NDJSON line splitting and batch building, shared by every
 * ingest path (HTTP bodies, TCP and Unix streams, the CLI's bulk ingest).
 *
 * THREAD: any; one te_ndjson_t is used by one thread at a time. No libuv:
 * the CLI feeds it from read(2), the server from libuv read callbacks.
 *
 * The one idea: lines are handed out IN PLACE. A line that lies wholly
 * inside the bytes given to te_ndjson_feed is passed as a pointer into those
 * bytes (no copy); only a line split across two feeds is assembled in an
 * internal buffer, which is bounded by max_line_bytes (default 1 MiB, the
 * event size limit). An over-long line is skipped up to its newline and
 * reported once, with its line number, through the same callback.
 */
#ifndef TE_INGEST_NDJSON_H
#define TE_INGEST_NDJSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"
#include "../core/event.h"

struct te_batch;

/* Called once per non-blank line. line/len exclude the newline and a
 * trailing '\r'; line is not NUL-terminated and is borrowed for the call.
 * line_no is the 1-based physical line number (blank lines count).
 * error is NULL for a normal line; for an over-long line it is a message
 * ("line 7 is longer than 1048576 bytes (the event size limit)")
 * and line/len are NULL/0. Return 0 to go on, non-zero to stop te_ndjson_feed
 * (which then returns that value; the unread rest is dropped). */
typedef int (*te_ndjson_line_cb)(void *ud, const char *line, size_t len, uint64_t line_no,
                                 const char *error);

typedef struct te_ndjson {
    /* private */
    te_ndjson_line_cb cb;
    void *ud;
    size_t max_line;
    char *buf;        /* partial line carried between feeds */
    size_t len, cap;
    bool skipping;    /* inside an over-long line: drop until '\n' */
    uint64_t line_no; /* lines completed so far */
} te_ndjson_t;

/* Prepares a splitter. max_line_bytes 0 means TE_EVENT_MAX_BYTES. Cannot
 * fail (memory is taken on first need). */
void te_ndjson_init(te_ndjson_t *nd, size_t max_line_bytes, te_ndjson_line_cb cb, void *ud);

/* Splits data into lines and calls cb for each complete one. Bytes after the
 * last newline are kept for the next feed. Returns 0, TE_ENOMEM, or the
 * callback's non-zero value. */
int te_ndjson_feed(te_ndjson_t *nd, const char *data, size_t len);

/* Ends the input: a last line without a newline is passed to cb. Returns
 * like te_ndjson_feed. The splitter can be fed again afterwards. */
int te_ndjson_finish(te_ndjson_t *nd);

/* Lines completed so far (the next line's number minus one). */
uint64_t te_ndjson_line_count(const te_ndjson_t *nd);

/* Bytes of an unfinished line held now (0 when at a line boundary). */
size_t te_ndjson_pending(const te_ndjson_t *nd);

/* Releases the internal buffer. The splitter must be re-inited before use. */
void te_ndjson_close(te_ndjson_t *nd);

/* True when [s, s+len) holds only spaces, tabs, '\r' and '\n'. */
bool te_ndjson_blank(const char *s, size_t len);

/* Parses one line as an event and appends it to *batch, allocating a batch
 * with room for cap_hint events when *batch is NULL. Returns 0 when the
 * event was added; a negative code with err naming the problem when the line
 * is rejected (te_event_parse's code); TE_ENOMEM when memory ran out (*batch is kept). */
int te_ndjson_add_event(struct te_batch **batch, size_t cap_hint, const char *line, size_t len,
                        const te_event_opts_t *opts, te_err_t *err);

#endif
