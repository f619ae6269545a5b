/*
 * tail.c - following JSONL files (see tail.h).
 *
 * THREAD: loop. One uv_timer polls every file (pread + fstat + stat: no
 * inotify, which misses files on network mounts and needs the parent folder
 * to exist); one uv_check writes the positions file after a loop iteration
 * in which commits arrived, so a burst of commits costs one write.
 *
 * Lines are framed here, not by te_ndjson_feed, because a saved position
 * must be the exact byte offset just past a line's '\n': the buffer keeps
 * the bytes since the last complete line (bounded by max_line + one read),
 * and the file offset of buf[0] is read_off - len. Each complete line goes
 * to te_ndjson_add_event, the parser every other ingest path uses.
 */
#include "tail.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/event.h"
#include "../core/log.h"
#include "../core/time.h"
#include "../pipeline/writer.h"
#include "ndjson.h"
#include "tail_pos.h"

#define READ_CHUNK (64u * 1024u)

typedef te_tail_pos_t pos_t; /* just past line `line`, at byte off (tail_pos.h) */

typedef struct tfile tfile_t;

/* What a submitted batch covers; matched by batch pointer on commit. */
typedef struct ticket {
    struct ticket *next;
    const te_batch_t *b;
    tfile_t *f;
    pos_t end;
    unsigned gen;
} ticket_t;

struct tfile {
    te_tail_t *t;
    char *name, *path, *kind, *source;
    int fd;                 /* -1: not open */
    uint64_t dev, ino;
    uint64_t read_off;      /* file offset of buf[len] */
    char *buf;              /* bytes after the last complete line */
    size_t len, cap;
    bool skipping;          /* inside an over-long line: drop until '\n' */
    uint64_t line_no;       /* complete lines so far in this file */
    pos_t consumed;         /* just past the last line handled */
    te_batch_t *batch;      /* being built */
    bool held;              /* batch refused by a full queue: retried first */
    pos_t saved;            /* committed position (what the positions file says) */
    pos_t resume;           /* from the positions file, used at the first open */
    unsigned gen;           /* bumped when a failed commit rewinds the file */
    int inflight;           /* tickets of this file not yet back */
    int last_errno;         /* of the last failed open (logged once per change) */
    int64_t rotate_seen_ns; /* when the path was first seen replaced or gone */
    int64_t last_growth_ns;
    int64_t last_log_ns;
    uint64_t log_suppressed;
    uint64_t lines, submitted, committed, rejected, truncations, rotations;
};

struct te_tail {
    uv_loop_t *loop;
    uv_timer_t timer;
    uv_check_t check;
    int open_handles;
    bool closing, free_requested;
    bool dirty;             /* a saved position moved since the last write */
    bool more;              /* a file stopped at TE_TAIL_TICK_BYTES */
    bool save_failed;       /* the last positions write failed (logged once) */
    te_writer_t *w;
    te_batch_done_cb done;
    void *done_ud;
    char *positions_path;
    size_t max_line;
    unsigned poll_ms, rotate_wait_ms;
    tfile_t *files;
    size_t nfiles;
    ticket_t *tickets;      /* in submission order */
};

/* ---- small helpers ---- */

static bool pos_same(const pos_t *a, const pos_t *b)
{
    return a->set == b->set && a->dev == b->dev && a->ino == b->ino && a->off == b->off &&
           a->line == b->line;
}

static pos_t pos_here(const tfile_t *f)
{
    pos_t p = {true, f->dev, f->ino, f->read_off - f->len, f->line_no};
    return p;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Rejections are logged at most once a second per file, with a count of
 * those left out, so a file of garbage cannot flood the log. */
static void reject(tfile_t *f, uint64_t line_no, const char *msg)
{
    int64_t now = te_time_mono_ns();
    f->rejected++;
    if (f->last_log_ns && now - f->last_log_ns < TE_NS_PER_SEC) {
        f->log_suppressed++;
        return;
    }
    if (f->log_suppressed)
        te_log(TE_LOG_WARN, "tail", "source \"%s\": rejected %s:%llu: %s (and %llu more "
               "rejected lines)", f->name, f->path, (unsigned long long)line_no, msg,
               (unsigned long long)f->log_suppressed);
    else
        te_log(TE_LOG_WARN, "tail", "source \"%s\": rejected %s:%llu: %s", f->name, f->path,
               (unsigned long long)line_no, msg);
    f->last_log_ns = now;
    f->log_suppressed = 0;
}

/* ---- submitting ---- */

static void ticket_append(te_tail_t *t, ticket_t *tk)
{
    ticket_t **pp = &t->tickets;
    while (*pp)
        pp = &(*pp)->next;
    *pp = tk;
}

/* Submits the batch being built. With nothing to submit, a stretch of
 * blank or rejected lines still moves the saved position once no batch of
 * this file is in flight. Returns 0, TE_EFULL (the batch is held and
 * reading stops until it goes) or TE_ECLOSED. */
static int flush(tfile_t *f)
{
    te_tail_t *t = f->t;
    if (!f->batch || f->batch->n == 0) {
        if (f->inflight == 0 && !f->batch && f->consumed.set &&
            !pos_same(&f->consumed, &f->saved)) {
            f->saved = f->consumed;
            t->dirty = true;
        }
        return 0;
    }
    ticket_t *tk = calloc(1, sizeof(*tk));
    if (!tk) {
        f->held = true; /* retried on the next tick */
        return TE_EFULL;
    }
    te_batch_t *b = f->batch;
    size_t n = b->n;
    b->done = t->done;
    b->ud = t->done_ud;
    tk->b = b;
    tk->f = f;
    tk->end = f->consumed;
    tk->gen = f->gen;
    int rc = t->closing ? te_writer_submit_wait(t->w, b) : te_writer_submit(t->w, b);
    if (rc == TE_EFULL) {
        free(tk);
        f->held = true;
        return rc;
    }
    f->batch = NULL;
    f->held = false;
    if (rc < 0) {
        free(tk);
        te_batch_free(b);
        te_log(TE_LOG_WARN, "tail", "source \"%s\": %zu events of %s not submitted: the "
               "writer is stopping", f->name, n, f->path);
        return rc;
    }
    f->inflight++;
    f->submitted += n;
    ticket_append(t, tk);
    return 0;
}

/* ---- reading ---- */

static void handle_line(tfile_t *f, const char *p, size_t len, const te_event_opts_t *opts)
{
    te_err_t err;
    if (len > 0 && p[len - 1] == '\r')
        len--;
    /* a UTF-8 byte order mark (editors on Windows) is not part of the JSON */
    if (f->line_no == 1 && len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) {
        p += 3;
        len -= 3;
    }
    if (te_ndjson_blank(p, len))
        return;
    if (len > f->t->max_line) {
        char msg[120];
        snprintf(msg, sizeof(msg), "line is longer than %zu bytes (the event size limit)",
                 f->t->max_line);
        reject(f, f->line_no, msg);
        return;
    }
    if (te_ndjson_add_event(&f->batch, TE_TAIL_BATCH_EVENTS, p, len, opts, &err) < 0)
        reject(f, f->line_no, err.msg);
}

/* Hands every complete line in buf to handle_line and keeps the rest.
 * Stops early when a full batch cannot be submitted (held). */
static void split(tfile_t *f, const te_event_opts_t *opts)
{
    char *p = f->buf, *end = f->buf + f->len;
    bool stopped = false;

    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            break;
        f->line_no++;
        f->lines++;
        if (f->skipping) {
            char msg[120];
            f->skipping = false;
            snprintf(msg, sizeof(msg), "line is longer than %zu bytes (the event size limit)",
                     f->t->max_line);
            reject(f, f->line_no, msg);
        } else {
            handle_line(f, p, (size_t)(nl - p), opts);
        }
        p = nl + 1;
        f->len = (size_t)(end - p); /* so pos_here sees the line boundary */
        f->consumed = pos_here(f);
        if (f->batch && f->batch->n >= TE_TAIL_BATCH_EVENTS && flush(f) != 0) {
            stopped = true;
            break;
        }
    }
    size_t rest = (size_t)(end - p);
    if (f->skipping && !stopped) {
        rest = 0; /* still inside the over-long line */
    } else if (!stopped && rest > f->t->max_line + 1) {
        f->skipping = true; /* no newline within the limit: drop until one comes */
        rest = 0;
    }
    if (rest && p != f->buf)
        memmove(f->buf, p, rest);
    f->len = rest;
}

/* Room for one more READ_CHUNK. The buffer never holds more than
 * max_line + 1 bytes between reads (split drops longer lines), so it is
 * bounded by about twice that. */
static int reserve(tfile_t *f)
{
    if (f->cap - f->len >= READ_CHUNK)
        return 0;
    size_t cap = f->cap ? f->cap * 2 : 2 * READ_CHUNK;
    while (cap - f->len < READ_CHUNK)
        cap *= 2;
    char *p = realloc(f->buf, cap);
    if (!p)
        return TE_ENOMEM;
    f->buf = p;
    f->cap = cap;
    return 0;
}

static void close_fd(tfile_t *f)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    f->len = 0;
    f->skipping = false;
    f->rotate_seen_ns = 0;
}

/* Reads up to TE_TAIL_TICK_BYTES and submits what it parsed. Returns true
 * at the end of the file (nothing more to read now). */
static bool read_some(tfile_t *f, int64_t now_ns)
{
    te_tail_t *t = f->t;
    size_t budget = TE_TAIL_TICK_BYTES;
    te_event_opts_t opts = {.default_kind = f->kind,
                            .default_source = f->source,
                            .recv_ts_ns = te_time_now_ns()};
    bool eof = false;

    while (!f->held) {
        if (budget == 0) {
            t->more = true;
            break;
        }
        if (reserve(f) < 0) {
            te_log(TE_LOG_ERROR, "tail", "source \"%s\": out of memory reading %s", f->name,
                   f->path);
            break;
        }
        size_t want = f->cap - f->len;
        if (want > budget)
            want = budget;
        ssize_t n = pread(f->fd, f->buf + f->len, want, (off_t)f->read_off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            te_log(TE_LOG_ERROR, "tail", "source \"%s\": cannot read %s: %s (reopening)",
                   f->name, f->path, strerror(errno));
            f->resume = f->consumed; /* the same file goes on after its last line */
            close_fd(f);
            f->last_errno = 0;
            return true;
        }
        if (n == 0) {
            eof = true;
            break;
        }
        f->len += (size_t)n;
        f->read_off += (uint64_t)n;
        f->last_growth_ns = now_ns;
        budget -= (size_t)n;
        split(f, &opts);
    }
    if (!f->held)
        flush(f);
    return eof;
}

/* Opens the path; logs a missing file or an error once per change. */
static void try_open(tfile_t *f)
{
    struct stat st;
    int fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block */
    if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
        close(fd);
        fd = -1;
        errno = EINVAL;
    }
    if (fd < 0) {
        int e = errno;
        if (e != f->last_errno) {
            if (e == ENOENT)
                te_log(TE_LOG_INFO, "tail", "source \"%s\": waiting for %s to appear", f->name,
                       f->path);
            else if (e == EINVAL)
                te_log(TE_LOG_WARN, "tail", "source \"%s\": %s is not a regular file (will "
                       "retry)", f->name, f->path);
            else
                te_log(TE_LOG_WARN, "tail", "source \"%s\": cannot open %s: %s (will retry)",
                       f->name, f->path, strerror(e));
        }
        f->last_errno = e;
        return;
    }
    f->fd = fd;
    f->last_errno = 0;
    f->dev = (uint64_t)st.st_dev;
    f->ino = (uint64_t)st.st_ino;
    f->read_off = 0;
    f->line_no = 0;
    f->len = 0;
    f->skipping = false;
    f->rotate_seen_ns = 0;
    f->last_growth_ns = te_time_mono_ns();
    /* the inode alone identifies the file across restarts: device numbers
     * of some file systems change at boot */
    if (f->resume.set) {
        if (f->resume.ino != f->ino)
            te_log(TE_LOG_INFO, "tail", "source \"%s\": %s is another file than at the last "
                   "run (inode changed): reading it from byte 0", f->name, f->path);
        else if (f->resume.off > (uint64_t)st.st_size)
            te_log(TE_LOG_WARN, "tail", "source \"%s\": %s is shorter (%lld bytes) than its "
                   "saved position (%llu): reading it from byte 0", f->name, f->path,
                   (long long)st.st_size, (unsigned long long)f->resume.off);
        else {
            f->read_off = f->resume.off;
            f->line_no = f->resume.line;
        }
        f->resume.set = false;
    }
    f->consumed = pos_here(f);
    if (!f->saved.set)
        f->saved = f->consumed;
    te_log(TE_LOG_INFO, "tail", "source \"%s\": following %s from byte %llu (line %llu)",
           f->name, f->path, (unsigned long long)f->read_off,
           (unsigned long long)f->line_no + 1);
}

static void truncated(tfile_t *f, uint64_t size)
{
    te_log(TE_LOG_WARN, "tail", "source \"%s\": %s was truncated (%llu bytes, read up to "
           "%llu): reading it again from byte 0", f->name, f->path, (unsigned long long)size,
           (unsigned long long)f->read_off);
    f->truncations++;
    f->read_off = 0;
    f->line_no = 0;
    f->len = 0;
    f->skipping = false;
    f->consumed = pos_here(f);
}

/* The old file is done: parse a last line without newline, submit, close.
 * Returns false when the batch could not go yet (retried next tick). */
static bool finish_file(tfile_t *f, const char *why)
{
    if (f->skipping || f->len > 0) {
        te_event_opts_t opts = {.default_kind = f->kind,
                                .default_source = f->source,
                                .recv_ts_ns = te_time_now_ns()};
        f->line_no++;
        f->lines++;
        if (f->skipping) {
            char msg[120];
            snprintf(msg, sizeof(msg), "line is longer than %zu bytes (the event size limit)",
                     f->t->max_line);
            reject(f, f->line_no, msg);
        } else {
            te_log(TE_LOG_INFO, "tail", "source \"%s\": the last line of %s has no newline; "
                   "parsed as is since the file was %s", f->name, f->path, why);
            handle_line(f, f->buf, f->len, &opts);
        }
        f->len = 0;
        f->skipping = false;
        f->consumed = pos_here(f);
    }
    if (flush(f) != 0)
        return false;
    te_log(TE_LOG_INFO, "tail", "source \"%s\": %s was %s: finished the old file at byte %llu "
           "(%llu lines)", f->name, f->path, why, (unsigned long long)f->read_off,
           (unsigned long long)f->line_no);
    close_fd(f);
    return true;
}

/* At the end of the file: has the path been replaced or removed? The old
 * file is kept until it has been quiet for rotate_wait_ms. */
static void check_rotation(tfile_t *f, int64_t now_ns)
{
    struct stat st;
    int rc = stat(f->path, &st);
    bool replaced = rc == 0 && ((uint64_t)st.st_ino != f->ino || (uint64_t)st.st_dev != f->dev);
    bool gone = rc < 0 && errno == ENOENT;
    if (!replaced && !gone) {
        f->rotate_seen_ns = 0;
        return;
    }
    if (f->rotate_seen_ns == 0)
        f->rotate_seen_ns = now_ns;
    /* quiet for rotate_wait, or at most 5 times that in all: an old file
     * whose writer never lets go must not starve the new one */
    int64_t wait_ns = (int64_t)f->t->rotate_wait_ms * TE_NS_PER_MS;
    int64_t quiet = f->last_growth_ns > f->rotate_seen_ns ? f->last_growth_ns : f->rotate_seen_ns;
    if (now_ns - quiet < wait_ns && now_ns - f->rotate_seen_ns < 5 * wait_ns)
        return;
    if (!finish_file(f, replaced ? "replaced" : "removed"))
        return;
    if (replaced) {
        f->rotations++;
        try_open(f);
    } else {
        f->last_errno = 0; /* log "waiting" again */
    }
}

static void poll_file(tfile_t *f, int64_t now_ns)
{
    struct stat st;
    if (f->fd < 0) {
        try_open(f);
        if (f->fd < 0)
            return;
    }
    if (f->held) {
        if (flush(f) != 0)
            return; /* the queue is still full: back-pressure, read nothing */
        te_event_opts_t opts = {.default_kind = f->kind,
                                .default_source = f->source,
                                .recv_ts_ns = te_time_now_ns()};
        split(f, &opts); /* the lines left behind the held batch */
        if (f->held)
            return;
    }
    if (!read_some(f, now_ns) || f->held || f->fd < 0)
        return;
    if (fstat(f->fd, &st) == 0 && (uint64_t)st.st_size < f->read_off) {
        truncated(f, (uint64_t)st.st_size);
        if (!read_some(f, now_ns) || f->held || f->fd < 0)
            return;
    }
    check_rotation(f, now_ns);
}

/* ---- positions file (tail_pos.c) ---- */

int te_tail_save(te_tail_t *t, te_err_t *err)
{
    if (!t->positions_path)
        return 0;
    te_tail_pos_entry_t *e = calloc(t->nfiles ? t->nfiles : 1, sizeof(*e));
    size_t n = 0;
    if (!e)
        return te_err_set(err, TE_ENOMEM, "tail: out of memory writing the positions");
    for (size_t i = 0; i < t->nfiles; i++) {
        const tfile_t *f = &t->files[i];
        /* a file not opened yet keeps what the last run saved */
        const pos_t *p = f->saved.set ? &f->saved : f->resume.set ? &f->resume : NULL;
        if (!p)
            continue;
        e[n].name = f->name;
        e[n].path = f->path;
        e[n].pos = *p;
        n++;
    }
    int rc = te_tail_pos_write(t->positions_path, e, n, err);
    free(e);
    return rc;
}

static void on_saved_pos(void *ud, const char *name, const char *path, const pos_t *pos)
{
    te_tail_t *t = ud;
    for (size_t i = 0; i < t->nfiles; i++) {
        tfile_t *f = &t->files[i];
        if (strcmp(f->name, name) != 0)
            continue;
        if (strcmp(f->path, path) != 0)
            te_log(TE_LOG_INFO, "tail", "source \"%s\" now follows %s (was %s): reading it "
                   "from byte 0", f->name, f->path, path);
        else
            f->resume = *pos;
        return;
    }
}

/* Fills each file's resume position. A positions file that cannot be read
 * is logged: the files are then read from byte 0 (at least once). */
static void load_positions(te_tail_t *t)
{
    te_err_t err;
    if (t->positions_path && te_tail_pos_read(t->positions_path, on_saved_pos, t, &err) < 0)
        te_log(TE_LOG_WARN, "tail", "%s (files are read from byte 0)", err.msg);
}

/* ---- handles ---- */

static void on_timer(uv_timer_t *h)
{
    te_tail_t *t = h->data;
    int64_t now = te_time_mono_ns();
    t->more = false;
    for (size_t i = 0; i < t->nfiles; i++)
        poll_file(&t->files[i], now);
    if (t->more) /* a big file: go on right after the loop's other work */
        uv_timer_start(&t->timer, on_timer, 0, t->poll_ms);
}

static void save_if_dirty(te_tail_t *t)
{
    te_err_t err;
    if (!t->dirty)
        return;
    t->dirty = false;
    if (te_tail_save(t, &err) < 0) {
        if (!t->save_failed) /* once, not after every commit */
            te_log(TE_LOG_ERROR, "tail", "%s (a restart may read some lines again)", err.msg);
        t->save_failed = true;
    } else if (t->save_failed) {
        te_log(TE_LOG_INFO, "tail", "%s written again", t->positions_path);
        t->save_failed = false;
    }
}

static void on_check(uv_check_t *h)
{
    save_if_dirty(h->data);
}

static void free_all(te_tail_t *t)
{
    while (t->tickets) {
        ticket_t *n = t->tickets->next;
        free(t->tickets);
        t->tickets = n;
    }
    for (size_t i = 0; i < t->nfiles; i++) {
        tfile_t *f = &t->files[i];
        if (f->fd >= 0)
            close(f->fd);
        te_batch_free(f->batch);
        free(f->buf);
        free(f->name);
        free(f->path);
        free(f->kind);
        free(f->source);
    }
    free(t->files);
    free(t->positions_path);
    free(t);
}

static void on_closed(uv_handle_t *h)
{
    te_tail_t *t = h->data;
    if (--t->open_handles == 0 && t->free_requested)
        free_all(t);
}

int te_tail_start(uv_loop_t *loop, const te_tail_opts_t *opts, te_tail_t **out, te_err_t *err)
{
    te_tail_t *t = calloc(1, sizeof(*t));
    if (!t)
        return te_err_set(err, TE_ENOMEM, "tail: out of memory");
    t->loop = loop;
    t->w = opts->w;
    t->done = opts->done;
    t->done_ud = opts->done_ud;
    t->max_line = opts->max_line_bytes ? opts->max_line_bytes : TE_EVENT_MAX_BYTES;
    t->poll_ms = opts->poll_ms ? opts->poll_ms : TE_TAIL_POLL_MS;
    t->rotate_wait_ms = opts->rotate_wait_ms ? opts->rotate_wait_ms : TE_TAIL_ROTATE_WAIT_MS;
    t->files = calloc(opts->nsources ? opts->nsources : 1, sizeof(*t->files));
    t->positions_path = dup_or_null(opts->positions_path);
    bool oom = !t->files || (opts->positions_path && !t->positions_path);
    for (size_t i = 0; !oom && i < opts->nsources; i++) {
        const te_tail_source_t *s = &opts->sources[i];
        tfile_t *f = &t->files[t->nfiles++];
        f->t = t;
        f->fd = -1;
        f->name = dup_or_null(s->name ? s->name : "tail");
        f->path = dup_or_null(s->path);
        f->kind = dup_or_null(s->kind);
        f->source = dup_or_null(s->source);
        oom = !f->name || !f->path || (s->kind && !f->kind) || (s->source && !f->source);
    }
    if (oom) {
        free_all(t);
        return te_err_set(err, TE_ENOMEM, "tail: out of memory");
    }
    load_positions(t);
    uv_timer_init(loop, &t->timer);
    uv_check_init(loop, &t->check);
    t->timer.data = t->check.data = t;
    t->open_handles = 2;
    int rc = uv_timer_start(&t->timer, on_timer, 0, t->poll_ms);
    if (rc == 0)
        rc = uv_check_start(&t->check, on_check);
    if (rc < 0) {
        t->closing = t->free_requested = true;
        uv_close((uv_handle_t *)&t->timer, on_closed);
        uv_close((uv_handle_t *)&t->check, on_closed);
        return te_err_set(err, TE_EIO, "tail: cannot start polling: %s", uv_strerror(rc));
    }
    uv_unref((uv_handle_t *)&t->check);
    *out = t;
    return 0;
}

/* A failed commit: nothing of the batch was stored. Re-read the file from
 * the saved position; batches in flight of the old generation no longer
 * move the position (their lines are read again: at least once). */
static void rewind_file(tfile_t *f, const te_batch_t *b)
{
    te_log(TE_LOG_ERROR, "tail", "source \"%s\": commit of %zu events from %s failed: %s "
           "(reading again from the saved position)", f->name, b->n, f->path, b->err.msg);
    f->gen++;
    te_batch_free(f->batch);
    f->batch = NULL;
    f->held = false;
    if (f->fd < 0)
        return;
    if (f->saved.set && f->saved.ino == f->ino && f->saved.dev == f->dev) {
        f->read_off = f->saved.off;
        f->line_no = f->saved.line;
    } else {
        f->read_off = 0;
        f->line_no = 0;
    }
    f->len = 0;
    f->skipping = false;
    f->consumed = pos_here(f);
}

void te_tail_committed(te_tail_t *t, const te_batch_t *b)
{
    ticket_t **pp = &t->tickets;
    while (*pp && (*pp)->b != b)
        pp = &(*pp)->next;
    ticket_t *tk = *pp;
    if (!tk)
        return;
    *pp = tk->next;
    tfile_t *f = tk->f;
    f->inflight--;
    if (b->rc == 0) {
        f->committed += b->n;
        if (tk->gen == f->gen) {
            f->saved = tk->end;
            /* lines after the batch that produced no event (blank, rejected) */
            if (f->inflight == 0 && !f->batch && f->consumed.set)
                f->saved = f->consumed;
            t->dirty = true;
        }
    } else if (tk->gen == f->gen && !t->closing) {
        rewind_file(f, b);
    } else if (tk->gen == f->gen) {
        te_log(TE_LOG_ERROR, "tail", "source \"%s\": commit of %zu events from %s failed at "
               "shutdown: %s (they are read again at the next start)", f->name, b->n, f->path,
               b->err.msg);
        f->gen++;
    }
    free(tk);
    if (t->closing) {
        save_if_dirty(t); /* the check handle is gone: write now */
        return;
    }
    /* room in the queue again: a file waiting on it goes on now, not at the
     * next poll (like the engine resuming paused TCP streams) */
    for (size_t i = 0; i < t->nfiles; i++) {
        if (t->files[i].held) {
            uv_timer_start(&t->timer, on_timer, 0, t->poll_ms);
            break;
        }
    }
}

size_t te_tail_close(te_tail_t *t)
{
    size_t n = 0;
    if (!t || t->closing)
        return 0;
    t->closing = true;
    uv_timer_stop(&t->timer);
    for (size_t i = 0; i < t->nfiles; i++) {
        tfile_t *f = &t->files[i];
        size_t k = f->batch ? f->batch->n : 0;
        if (flush(f) == 0)
            n += k;
        if (f->fd >= 0)
            close(f->fd);
        f->fd = -1;
    }
    save_if_dirty(t);
    uv_close((uv_handle_t *)&t->timer, on_closed);
    uv_close((uv_handle_t *)&t->check, on_closed);
    return n;
}

size_t te_tail_count(const te_tail_t *t)
{
    return t ? t->nfiles : 0;
}

void te_tail_source_stats(const te_tail_t *t, size_t i, te_tail_source_stats_t *out)
{
    const tfile_t *f = &t->files[i];
    memset(out, 0, sizeof(*out));
    out->name = f->name;
    out->path = f->path;
    out->state = f->fd >= 0                                   ? "following"
                 : f->last_errno && f->last_errno != ENOENT ? "error"
                                                              : "waiting";
    out->lines = f->lines;
    out->submitted = f->submitted;
    out->committed = f->committed;
    out->rejected = f->rejected;
    out->truncations = f->truncations;
    out->rotations = f->rotations;
    out->read_offset = f->fd >= 0 ? f->read_off - f->len : 0;
    out->saved_offset = f->saved.set ? f->saved.off : 0;
}

uint64_t te_tail_rejected(const te_tail_t *t)
{
    uint64_t n = 0;
    for (size_t i = 0; t && i < t->nfiles; i++)
        n += t->files[i].rejected;
    return n;
}

void te_tail_free(te_tail_t *t)
{
    if (!t)
        return;
    if (t->open_handles == 0)
        free_all(t);
    else
        t->free_requested = true;
}
