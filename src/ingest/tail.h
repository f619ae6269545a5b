/*
 * tail.h - follows JSONL files named by `source "x" { type = "tail" }`
 * blocks (SPEC sections 1 and 6.0), like Fluent Bit's in_tail or Promtail.
 *
 * THREAD: loop. Every function runs on the loop that te_tail_start was given;
 * files are read with pread(2) on that loop (local files: a read never waits
 * on the network, and one tick reads at most TE_TAIL_TICK_BYTES per file).
 *
 * The one idea: a file position is saved only once the lines before it are
 * committed. Each batch submitted to the writer carries a ticket (file
 * identity, byte offset and line number just past its last line); when the
 * engine hands the committed batch back (te_tail_committed), that ticket
 * becomes the source's saved position, written to the positions file
 * (tail_pos.h: JSON, replaced atomically with rename(2)) at the end of the
 * loop iteration that saw the commit. A restarted engine resumes there: nothing committed is read
 * twice, nothing uncommitted is skipped. The exception is a crash between the
 * commit and that write (a few microseconds) or a failed commit (the file is
 * re-read from the saved position): then lines may be stored twice (at least
 * once; lines with an `id` are deduplicated by the store).
 *
 * What a followed file may do:
 *  - not exist yet: waited for (logged once), read from byte 0 when it appears;
 *  - grow: polled every poll_ms (default 250 ms); only complete lines (ending
 *    in '\n') are parsed, a partial last line waits for its newline;
 *  - shrink below the read offset (copytruncate): read again from byte 0;
 *  - be replaced (rename or delete + create: the path's inode changes): the
 *    old file is read to its end, kept open until it has been quiet for
 *    TE_TAIL_ROTATE_WAIT_MS (its writer may still append; 5 times that at
 *    most), then closed (a last line without newline is parsed then), and
 *    the new file is read from byte 0.
 * Each line is one event parsed exactly like an NDJSON line on the other
 * ingest paths (te_ndjson_add_event: redaction included); the block's kind
 * and source fill in events that lack them. A bad line (malformed JSON, a
 * wrong type, longer than max_line_bytes) is logged with file and line
 * number, counted, and skipped; it never stops the file.
 */
#ifndef TE_INGEST_TAIL_H
#define TE_INGEST_TAIL_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "../core/err.h"

struct te_writer;
struct te_batch;

#define TE_TAIL_BATCH_EVENTS 1000           /* events per submitted batch */
#define TE_TAIL_TICK_BYTES (1024u * 1024u) /* read per file per tick (bounds a loop stall) */
#define TE_TAIL_POLL_MS 250
#define TE_TAIL_ROTATE_WAIT_MS 1000

/* One followed file (from a source block). Strings are copied. */
typedef struct te_tail_source {
    const char *name;     /* the block's name: logs, metrics, the positions file */
    const char *path;     /* the file (the config already resolved it) */
    const char *kind;     /* default kind for lines without one; may be NULL */
    const char *source;   /* default source for lines without one; may be NULL */
} te_tail_source_t;

typedef struct te_tail_opts {
    const te_tail_source_t *sources;
    size_t nsources;
    const char *positions_path; /* NULL: positions are not saved (always from byte 0) */
    size_t max_line_bytes;      /* 0: TE_EVENT_MAX_BYTES (1 MiB) */
    unsigned poll_ms;           /* 0: TE_TAIL_POLL_MS */
    unsigned rotate_wait_ms;    /* 0: TE_TAIL_ROTATE_WAIT_MS */
    struct te_writer *w;
    /* every batch is submitted with these (like the other listeners); the
     * batch must come back through te_tail_committed once done */
    void (*done)(struct te_batch *b);
    void *done_ud;
} te_tail_opts_t;

typedef struct te_tail te_tail_t;

/* Per-file counters and state, for /v1/status and /metrics. */
typedef struct te_tail_source_stats {
    const char *name;      /* borrowed from the tail */
    const char *path;
    const char *state;     /* "waiting" (no file yet), "following", "error" */
    uint64_t lines;        /* complete lines read (blank ones included) */
    uint64_t submitted;    /* events handed to the writer */
    uint64_t committed;    /* events of committed batches */
    uint64_t rejected;     /* lines that were not valid events */
    uint64_t truncations;
    uint64_t rotations;
    uint64_t read_offset;  /* bytes of the current file consumed */
    uint64_t saved_offset; /* committed position (what a restart resumes from) */
} te_tail_source_stats_t;

/* Reads the positions file (a missing one is fine; an unreadable or corrupt
 * one is logged and ignored: files are then read from byte 0), opens the
 * files that exist and starts polling. Nothing is read before the loop runs.
 * Returns 0, or TE_ENOMEM / TE_EIO with err naming the problem; on failure
 * *out is untouched and nothing is left on the loop but closing handles. */
int te_tail_start(uv_loop_t *loop, const te_tail_opts_t *opts, te_tail_t **out, te_err_t *err);

/* Must be called (on the loop) for every batch this tail submitted, once the
 * writer is done with it and before it is freed: a committed batch advances
 * its file's saved position, a failed one makes the file be re-read from the
 * saved position. Does not free b. Also valid after te_tail_close. */
void te_tail_committed(te_tail_t *t, const struct te_batch *b);

/* Stops polling, submits the batch being built (waiting for room) and
 * closes the handles and files. Positions still advance through
 * te_tail_committed while the writer drains. Returns the events submitted
 * here. Idempotent; NULL is a no-op. */
size_t te_tail_close(te_tail_t *t);

/* Number of followed files. */
size_t te_tail_count(const te_tail_t *t);

/* Fills out with file i's counters (i < te_tail_count). */
void te_tail_source_stats(const te_tail_t *t, size_t i, te_tail_source_stats_t *out);

/* Lines rejected over all files. */
uint64_t te_tail_rejected(const te_tail_t *t);

/* Writes the positions file now (normally done after each commit). Returns
 * 0 or TE_EIO with err. */
int te_tail_save(te_tail_t *t, te_err_t *err);

/* Frees the tail after the loop ran its close callbacks (te_tail_close
 * first). NULL is a no-op. */
void te_tail_free(te_tail_t *t);

#endif
