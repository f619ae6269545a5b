/*
 * writer.c - the bounded ingest queue and the writer thread (group commit).
 *
 * THREAD: te_writer_submit*, te_writer_has_room, te_writer_get_stats from
 * any one producer thread at a time; the writer thread runs writer_main and
 * the done callbacks.
 *
 * The one idea: accepted means committed. Producers append whole batches to
 * a linked list under one mutex; the writer takes everything queued (up to
 * max_txn_events; a single larger batch goes alone), runs BEGIN, inserts
 * every event, COMMIT, and only then calls each batch's done callback,
 * outside the lock. A failure anywhere in the transaction rolls it back and
 * fails every batch in it: nothing of a failed batch is stored, nothing of a
 * committed batch is lost. The queue bound counts events, so back-pressure
 * (TE_EFULL, te_writer_has_room) tracks memory, not request counts.
 */
#include "writer.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../core/log.h"
#include "../core/time.h"
#include "../store/store.h"

const double te_writer_buckets[12] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                      0.05,   0.1,   0.25,   0.5,   1.0,  1e300};

struct te_writer {
    te_store_t *st;
    size_t max_queued, max_txn;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t work;        /* writer waits: batches queued or closing */
    pthread_cond_t room;        /* submit_wait waits: room freed or closing */
    te_batch_t *head, *tail;    /* guarded by lock */
    size_t queued_events, queued_batches;
    bool closing;
    te_writer_stats_t stats;    /* guarded by lock */
    /* checkpointer: its own connection, so WAL checkpoints (and their
     * fsyncs) never run inside a commit that a client waits on */
    te_store_t *ckpt_st;
    pthread_t ckpt_thread;
    pthread_cond_t ckpt_cv;     /* guarded by lock */
    bool ckpt_wanted, ckpt_running;
    int wal_frames;             /* writer thread only: frames after the last commit */
    int ckpt_frames, ckpt_high_frames; /* CKPT_BYTES, CKPT_HIGH_BYTES in frames */
    pthread_mutex_t ckpt_lock;  /* held by whoever checkpoints (one at a time) */
};

/* WAL bytes past which a checkpoint is asked for: SQLite's own
 * autocheckpoint default (1000 frames of 4 KiB). */
#define CKPT_BYTES (1000 * 4096)
/* A checkpoint that runs while commits go on never catches up with the
 * end of the WAL, and only a complete one lets the next transaction rewind
 * it. Past this many bytes the writer finishes the job itself, between
 * transactions and after the done callbacks (copying only what the
 * checkpointer has not): the WAL stays bounded (about 32 MiB). */
#define CKPT_HIGH_BYTES (8192 * 4096)

/* ---------- batches ---------- */

te_batch_t *te_batch_new(size_t cap)
{
    te_batch_t *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    if (cap) {
        b->events = malloc(cap * sizeof(*b->events));
        if (!b->events) {
            free(b);
            return NULL;
        }
        b->cap = cap;
    }
    return b;
}

int te_batch_take(te_batch_t *b, te_event_t *ev)
{
    if (b->n == b->cap) {
        size_t ncap = b->cap ? b->cap * 2 : 16;
        te_event_t **ne = realloc(b->events, ncap * sizeof(*ne));
        if (!ne) {
            te_event_free(ev);
            return TE_ENOMEM;
        }
        b->events = ne;
        b->cap = ncap;
    }
    b->events[b->n++] = ev;
    return 0;
}

void te_batch_free(te_batch_t *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++)
        te_event_free(b->events[i]);
    free(b->events);
    free(b->dupmask);
    free(b);
}

/* ---------- queue ---------- */

static bool room_locked(const te_writer_t *w, size_t n)
{
    if (w->queued_events == 0)
        return true; /* a batch larger than the whole queue goes alone */
    return w->queued_events + n <= w->max_queued;
}

bool te_writer_has_room(te_writer_t *w, size_t n)
{
    pthread_mutex_lock(&w->lock);
    bool ok = !w->closing && room_locked(w, n);
    pthread_mutex_unlock(&w->lock);
    return ok;
}

static void enqueue_locked(te_writer_t *w, te_batch_t *b)
{
    b->next = NULL;
    b->rc = 0;
    b->stored = b->duplicates = 0;
    te_err_clear(&b->err);
    b->submit_ns = te_time_mono_ns();
    if (w->tail)
        w->tail->next = b;
    else
        w->head = b;
    w->tail = b;
    w->queued_events += b->n;
    w->queued_batches++;
    pthread_cond_signal(&w->work);
}

int te_writer_submit(te_writer_t *w, te_batch_t *b)
{
    pthread_mutex_lock(&w->lock);
    int rc = 0;
    if (w->closing)
        rc = TE_ECLOSED;
    else if (!room_locked(w, b->n))
        rc = TE_EFULL;
    else
        enqueue_locked(w, b);
    pthread_mutex_unlock(&w->lock);
    return rc;
}

int te_writer_submit_wait(te_writer_t *w, te_batch_t *b)
{
    pthread_mutex_lock(&w->lock);
    while (!w->closing && !room_locked(w, b->n))
        pthread_cond_wait(&w->room, &w->lock);
    int rc = w->closing ? TE_ECLOSED : 0;
    if (rc == 0)
        enqueue_locked(w, b);
    pthread_mutex_unlock(&w->lock);
    return rc;
}

/* ---------- the writer thread ---------- */

/* Takes the batches of the next transaction off the queue (lock held). */
static te_batch_t *take_locked(te_writer_t *w, size_t *nevents)
{
    te_batch_t *first = w->head, *last = first;
    size_t n = first->n;
    while (last->next && n + last->next->n <= w->max_txn) {
        last = last->next;
        n += last->n;
    }
    w->head = last->next;
    if (!w->head)
        w->tail = NULL;
    last->next = NULL;
    *nevents = n;
    return first;
}

/* Inserts every event of the list in one transaction. Returns 0 or the
 * failure code with err filled; on failure nothing is stored. */
static int write_txn(te_writer_t *w, te_batch_t *list, te_err_t *err)
{
    int rc = te_store_begin(w->st, err);
    if (rc < 0)
        return rc;
    for (te_batch_t *b = list; b; b = b->next) {
        b->stored = b->duplicates = 0;
        for (size_t i = 0; i < b->n; i++) {
            bool stored = false;
            rc = te_store_insert(w->st, b->events[i], &stored, err);
            if (rc < 0) {
                te_store_rollback(w->st);
                return rc;
            }
            if (stored) {
                b->stored++;
            } else {
                b->duplicates++;
                if (!b->dupmask)
                    b->dupmask = calloc(b->n, 1);
                if (b->dupmask) /* without it the event is only seen twice */
                    b->dupmask[i] = 1;
            }
        }
        if (b->apply) {
            rc = b->apply(w->st, b->apply_ud, err);
            if (rc < 0) {
                te_store_rollback(w->st);
                return rc;
            }
        }
    }
    return te_store_commit(w->st, err);
}

static size_t hist_bucket(double secs)
{
    size_t i = 0;
    while (i < 11 && secs > te_writer_buckets[i])
        i++;
    return i;
}

static void *writer_main(void *arg)
{
    te_writer_t *w = arg;
    for (;;) {
        pthread_mutex_lock(&w->lock);
        while (!w->head && !w->closing)
            pthread_cond_wait(&w->work, &w->lock);
        if (!w->head) { /* closing and drained */
            pthread_mutex_unlock(&w->lock);
            /* the rollup hours still in memory, so that the next open
             * need not roll them up again from the raw events */
            te_err_t err;
            te_err_clear(&err);
            if (te_store_rollup_sync(w->st, &err) < 0)
                te_log(TE_LOG_WARN, "writer", "rollups at shutdown: %s (rolled up at the next open)",
                       err.msg);
            break;
        }
        size_t nevents = 0;
        te_batch_t *list = take_locked(w, &nevents);
        pthread_mutex_unlock(&w->lock);

        te_err_t err;
        te_err_clear(&err);
        int64_t t0 = te_time_mono_ns();
        int rc = write_txn(w, list, &err);
        int64_t t1 = te_time_mono_ns();
        uint64_t dur = t1 > t0 ? (uint64_t)(t1 - t0) : 0;
        if (rc < 0)
            te_log(TE_LOG_ERROR, "writer", "transaction of %zu events failed: %s", nevents,
                   err.msg);

        pthread_mutex_lock(&w->lock);
        size_t nbatches = 0;
        for (te_batch_t *b = list; b; b = b->next) {
            nbatches++;
            if (rc < 0) {
                w->stats.failed_events += b->n;
            } else {
                w->stats.stored_events += b->stored;
                w->stats.duplicate_events += b->duplicates;
                w->stats.committed_events += b->n;
            }
        }
        /* every transaction, failed or not, is timed: the histogram's +Inf
         * bucket equals commits + commit_failures */
        if (rc < 0)
            w->stats.commit_failures++;
        else
            w->stats.commits++;
        w->stats.commit_ns_total += dur;
        if (dur > w->stats.commit_ns_max)
            w->stats.commit_ns_max = dur;
        w->stats.commit_hist[hist_bucket((double)dur / 1e9)]++;
        w->queued_events -= nevents;
        w->queued_batches -= nbatches;
        pthread_cond_broadcast(&w->room);
        pthread_mutex_unlock(&w->lock);

        /* done callbacks outside the lock; the callee owns b (and b->next) */
        te_batch_t *b = list;
        while (b) {
            te_batch_t *next = b->next;
            b->next = NULL;
            b->rc = rc;
            b->commit_ns = t1;
            if (rc < 0) {
                b->err = err;
                b->stored = b->duplicates = 0;
            } else if (b->dupmask) {
                for (size_t i = 0; i < b->n; i++)
                    if (b->dupmask[i]) {
                        te_event_free(b->events[i]);
                        b->events[i] = NULL;
                    }
            }
            free(b->dupmask);
            b->dupmask = NULL;
            if (b->done)
                b->done(b);
            else
                te_batch_free(b);
            b = next;
        }
        if (w->wal_frames >= w->ckpt_high_frames && w->ckpt_running) {
            te_err_clear(&err);
            pthread_mutex_lock(&w->ckpt_lock); /* waits out a running checkpoint */
            if (te_store_checkpoint(w->st, &err) < 0)
                te_log(TE_LOG_WARN, "writer", "checkpoint failed: %s", err.msg);
            pthread_mutex_unlock(&w->ckpt_lock);
            w->wal_frames = 0;
        }
    }
    return NULL;
}

/* Writer thread, after each commit (sqlite3_wal_hook). */
static void on_wal(void *ud, int frames)
{
    te_writer_t *w = ud;
    w->wal_frames = frames;
    if (frames < w->ckpt_frames)
        return;
    pthread_mutex_lock(&w->lock);
    w->ckpt_wanted = true;
    pthread_cond_signal(&w->ckpt_cv);
    pthread_mutex_unlock(&w->lock);
}

static void *ckpt_main(void *arg)
{
    te_writer_t *w = arg;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->ckpt_wanted && !w->closing)
            pthread_cond_wait(&w->ckpt_cv, &w->lock);
        if (w->closing)
            break;
        w->ckpt_wanted = false;
        pthread_mutex_unlock(&w->lock);
        te_err_t err;
        pthread_mutex_lock(&w->ckpt_lock);
        if (te_store_checkpoint(w->ckpt_st, &err) < 0)
            te_log(TE_LOG_WARN, "writer", "checkpoint failed: %s", err.msg);
        pthread_mutex_unlock(&w->ckpt_lock);
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* Starts the checkpointer. On any failure SQLite's autocheckpoint stays on
 * (correct, only slower at the tail), so this cannot fail the writer. */
static void ckpt_start(te_writer_t *w)
{
    te_store_opts_t o = {.path = te_store_path(w->st)};
    te_err_t err;
    if (te_store_open(&o, &w->ckpt_st, &err) < 0) {
        te_log(TE_LOG_WARN, "writer", "no checkpoint thread (%s); SQLite checkpoints inline",
               err.msg);
        return;
    }
    if (pthread_mutex_init(&w->ckpt_lock, NULL) != 0)
        goto fail;
    if (pthread_cond_init(&w->ckpt_cv, NULL) != 0) {
        pthread_mutex_destroy(&w->ckpt_lock);
        goto fail;
    }
    if (pthread_create(&w->ckpt_thread, NULL, ckpt_main, w) != 0) {
        pthread_cond_destroy(&w->ckpt_cv);
        pthread_mutex_destroy(&w->ckpt_lock);
        goto fail;
    }
    w->ckpt_running = true;
    if (te_store_wal_notify(w->st, on_wal, w, &err) < 0)
        te_log(TE_LOG_WARN, "writer", "%s", err.msg);
    return;
fail:
    te_store_close(w->ckpt_st);
    w->ckpt_st = NULL;
}

int te_writer_start(struct te_store *st, const te_writer_opts_t *opts, te_writer_t **out,
                    te_err_t *err)
{
    if (!st || !out)
        return te_err_set(err, TE_EINVAL, "writer: no store given");
    te_writer_t *w = calloc(1, sizeof(*w));
    if (!w)
        return te_err_set(err, TE_ENOMEM, "writer: cannot allocate");
    w->st = st;
    w->max_queued = opts && opts->max_queued_events ? opts->max_queued_events : 65536;
    w->max_txn = opts && opts->max_txn_events ? opts->max_txn_events : 50000;
    int prc = pthread_mutex_init(&w->lock, NULL);
    if (prc == 0 && (prc = pthread_cond_init(&w->work, NULL)) != 0)
        pthread_mutex_destroy(&w->lock);
    if (prc == 0 && (prc = pthread_cond_init(&w->room, NULL)) != 0) {
        pthread_cond_destroy(&w->work);
        pthread_mutex_destroy(&w->lock);
    }
    if (prc == 0 && (prc = pthread_create(&w->thread, NULL, writer_main, w)) != 0) {
        pthread_cond_destroy(&w->room);
        pthread_cond_destroy(&w->work);
        pthread_mutex_destroy(&w->lock);
    }
    if (prc != 0) {
        free(w);
        return te_err_set(err, TE_ENOMEM, "writer: cannot start the writer thread: %s",
                          strerror(prc));
    }
    /* No batch can reach the writer thread before *out is set, so the WAL
     * hook is installed on its connection without a race. */
    int page = te_store_page_size(st);
    w->ckpt_frames = CKPT_BYTES / page;
    w->ckpt_high_frames = CKPT_HIGH_BYTES / page;
    ckpt_start(w);
    *out = w;
    return 0;
}

void te_writer_stop(te_writer_t *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->closing = true;
    if (w->ckpt_running)
        pthread_cond_signal(&w->ckpt_cv);
    pthread_cond_broadcast(&w->work);
    pthread_cond_broadcast(&w->room);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    if (w->ckpt_running) {
        pthread_join(w->ckpt_thread, NULL);
        pthread_cond_destroy(&w->ckpt_cv);
        pthread_mutex_destroy(&w->ckpt_lock);
    }
    te_store_close(w->ckpt_st);
    te_store_close(w->st);
    pthread_cond_destroy(&w->room);
    pthread_cond_destroy(&w->work);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

void te_writer_get_stats(te_writer_t *w, te_writer_stats_t *out)
{
    pthread_mutex_lock(&w->lock);
    *out = w->stats;
    out->queued_events = w->queued_events;
    out->queued_batches = w->queued_batches;
    pthread_mutex_unlock(&w->lock);
}
