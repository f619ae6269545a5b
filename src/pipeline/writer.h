/*
 * writer.h - the bounded ingest queue and the writer thread (group commit).
 *
 * THREAD: te_writer_submit* from one producer thread at a time (the loop, or
 * the CLI's main thread); done callbacks run ON THE WRITER THREAD: the engine
 * forwards them to the loop with uv_async_send.
 *
 * The one idea: accepted means committed. A batch's done callback runs only
 * after the transaction holding all its events committed (rc == 0) or failed
 * (rc < 0, nothing of it stored). Batches queued while a transaction commits
 * share the next one (group commit), so many small requests cost one fsync.
 */
#ifndef TE_PIPELINE_WRITER_H
#define TE_PIPELINE_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"
#include "../core/event.h"

struct te_store;

typedef struct te_batch te_batch_t;

/* Called on the writer thread once the batch committed or failed. The
 * callee owns b from then on (te_batch_free). */
typedef void (*te_batch_done_cb)(te_batch_t *b);

struct te_batch {
    /* public, set by the producer */
    te_event_t **events;   /* owned: freed by te_batch_free */
    size_t n, cap;
    te_batch_done_cb done;
    void *ud;
    /* optional: more writes in the same transaction, after the events
     * (alert state, history, outbox). Runs on the writer thread; a negative
     * return fails the whole transaction like a failed insert. */
    int (*apply)(struct te_store *st, void *apply_ud, te_err_t *err);
    void *apply_ud;
    /* read-only, set by the writer before done */
    int rc;                /* 0 committed; < 0 failed (err says why) */
    te_err_t err;
    size_t stored;         /* events newly stored */
    size_t duplicates;     /* events accepted as idempotent re-sends; after a
                            * commit their events[i] are NULL (freed by the
                            * writer), so consumers see each event once */
    int64_t submit_ns, commit_ns; /* monotonic */
    /* private */
    te_batch_t *next;
    unsigned char *dupmask; /* per event, set while the transaction runs */
};

/* Allocates an empty batch with room for cap events. NULL on ENOMEM. */
te_batch_t *te_batch_new(size_t cap);

/* Appends ev; the batch takes it (also on failure, when it frees it).
 * Returns 0 or TE_ENOMEM. */
int te_batch_take(te_batch_t *b, te_event_t *ev);

/* Frees the batch and its events. NULL is a no-op. */
void te_batch_free(te_batch_t *b);

typedef struct te_writer te_writer_t;

typedef struct te_writer_opts {
    size_t max_queued_events;  /* queue bound; 0 means 65536 */
    size_t max_txn_events;     /* events per transaction; 0 means 50000 */
} te_writer_opts_t;

/* Starts the writer thread on st, which it owns from now on (closed by
 * te_writer_stop). On failure st is NOT taken. */
int te_writer_start(struct te_store *st, const te_writer_opts_t *opts, te_writer_t **out,
                    te_err_t *err);

/* Queues b. Never blocks. Returns TE_EFULL when the queue lacks room for
 * b->n events (the caller keeps b: HTTP answers 503, streams stop reading),
 * TE_ECLOSED after stop began. A batch larger than the whole queue is
 * accepted when the queue is empty. */
int te_writer_submit(te_writer_t *w, te_batch_t *b);

/* Queues b, waiting for room. Returns 0 or TE_ECLOSED. */
int te_writer_submit_wait(te_writer_t *w, te_batch_t *b);

/* True when n more events would fit now. */
bool te_writer_has_room(te_writer_t *w, size_t n);

/* Stops taking batches, commits everything queued (calling each done), joins
 * the thread, closes the store, frees w. NULL is a no-op. */
void te_writer_stop(te_writer_t *w);

typedef struct te_writer_stats {
    uint64_t queued_events;     /* now */
    uint64_t queued_batches;    /* now */
    uint64_t committed_events;  /* total stored + duplicates */
    uint64_t stored_events;
    uint64_t duplicate_events;
    uint64_t failed_events;
    uint64_t commits;
    uint64_t commit_failures;
    uint64_t commit_ns_total;   /* sum of transaction durations */
    uint64_t commit_ns_max;
    /* commit latency histogram, seconds upper bounds: see te_writer_buckets */
    uint64_t commit_hist[12];
} te_writer_stats_t;

/* Upper bounds (seconds) of commit_hist buckets; the last is +Inf. */
extern const double te_writer_buckets[12];

/* Copies the counters (thread-safe). */
void te_writer_get_stats(te_writer_t *w, te_writer_stats_t *out);

#endif
