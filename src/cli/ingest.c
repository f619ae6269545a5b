/*
 * ingest.c - `telemetry-engine ingest`: bulk load NDJSON files or stdin.
 *
 * THREAD: main parses; the writer thread it starts inserts. Batch
 * completion callbacks run on the writer thread and only touch the counters
 * below, under their mutex.
 *
 * The one idea: parsing on this thread overlaps with SQLite inserts on the
 * writer thread. Lines are split in place (te_ndjson) from a 1 MiB read
 * buffer, so the only per-line allocation is the event itself; batches of
 * BATCH_EVENTS go through te_writer_submit_wait, which blocks while the
 * bounded queue is full, so memory stays flat whatever the file size.
 *
 * Gzip: a file (or stdin) whose first bytes are the gzip magic 1f 8b is
 * inflated on the fly (zlib, every member of a multi-member file, as
 * `db archive` writes), whatever its name; anything else is read as is.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "../config/config.h"
#include "../core/time.h"
#include "../ingest/ndjson.h"
#include "../ingest/redact.h"
#include "../pipeline/writer.h"
#include "../store/store.h"
#include "cli.h"

#define BATCH_EVENTS 5000
#define QUEUE_EVENTS (3 * BATCH_EVENTS)
#define READ_BYTES (1024 * 1024)
#define MAX_PRINTED_ERRORS 100

typedef struct ingest {
    te_writer_t *writer;
    te_event_opts_t opts;
    te_batch_t *batch;
    const char *file_name;   /* for FILE:LINE messages */
    uint64_t lines, parsed, rejected;
    uint64_t printed_errors;
    te_cli_progress_t progress;
    int64_t start_ns;
    int fatal;               /* TE_ENOMEM / TE_ECLOSED: stop reading */
    /* written by the writer thread (done callbacks) */
    pthread_mutex_t lock;
    uint64_t stored, duplicates, failed;
    te_err_t commit_err;
    te_batch_t **spent;      /* committed batches for this thread to free */
    size_t nspent, spent_cap;
} ingest_t;

static const te_cli_opt_t ingest_opts[] = {
    {"kind", 0, TE_CLI_VALUE},
    {"source", 0, TE_CLI_VALUE},
};

void te_cli_help_ingest(FILE *f)
{
    fprintf(f,
            "usage: %s ingest [--data DIR] [--kind K] [--source S] FILE...|-\n\n"
            "Bulk loads NDJSON (one event per line, canonical or flat form) from files or\n"
            "from stdin (\"-\") into DIR/telemetry.db. Works while 'serve' runs. Gzip input\n"
            "(e.g. a `db archive` file) is recognised by its magic bytes and inflated.\n"
            "Each rejected line is reported on stderr as FILE:LINE: error (the first %d);\n"
            "the good lines are stored either way. Prints \"accepted N, rejected M\".\n\n"
            "options:\n"
            "  --kind K       kind for events that have none\n"
            "  --source S     source for events that have none\n"
            "  --config FILE  configuration (default ./telemetry.lua when present)\n"
            "  --data DIR     data folder (default ./data)\n\n"
            "exit status: 0 when every line was accepted, 1 when any was rejected or\n"
            "could not be stored, 2 on a usage error.\n\n"
            "example:\n"
            "  lua5.4 examples/gen.lua --count 100000 > events.ndjson\n"
            "  %s ingest events.ndjson\n",
            TE_CLI_PROG, MAX_PRINTED_ERRORS, TE_CLI_PROG);
}

static void batch_done(te_batch_t *b)
{
    ingest_t *in = b->ud;
    pthread_mutex_lock(&in->lock);
    if (b->rc == 0) {
        in->stored += b->stored;
        in->duplicates += b->duplicates;
    } else {
        in->failed += b->n;
        if (in->commit_err.code == 0)
            in->commit_err = b->err;
    }
    /* Hand the events back to the thread that allocated them: freeing here
     * would cost the writer (the bottleneck) time and cross malloc arenas. */
    if (in->nspent == in->spent_cap) {
        size_t cap = in->spent_cap ? in->spent_cap * 2 : 16;
        te_batch_t **p = realloc(in->spent, cap * sizeof(*p));
        if (p) {
            in->spent = p;
            in->spent_cap = cap;
        }
    }
    if (in->nspent < in->spent_cap) {
        in->spent[in->nspent++] = b;
        b = NULL;
    }
    pthread_mutex_unlock(&in->lock);
    te_batch_free(b);
}

/* Frees the batches the writer finished with (on this, the parsing thread). */
static void free_spent(ingest_t *in)
{
    te_batch_t *local[64];
    size_t n;
    do {
        pthread_mutex_lock(&in->lock);
        n = in->nspent < 64 ? in->nspent : 64;
        in->nspent -= n;
        if (n)
            memcpy(local, in->spent + in->nspent, n * sizeof(*local));
        pthread_mutex_unlock(&in->lock);
        for (size_t i = 0; i < n; i++)
            te_batch_free(local[i]);
    } while (n == 64);
}

static int submit(ingest_t *in)
{
    te_batch_t *b = in->batch;
    if (!b)
        return 0;
    in->batch = NULL;
    b->done = batch_done;
    b->ud = in;
    if (te_writer_submit_wait(in->writer, b) < 0) {
        te_batch_free(b);
        return TE_ECLOSED;
    }
    free_spent(in);
    return 0;
}

static void report_line_error(ingest_t *in, uint64_t line_no, const char *msg)
{
    in->rejected++;
    if (in->printed_errors++ < MAX_PRINTED_ERRORS) {
        te_cli_progress_done(&in->progress);
        fprintf(stderr, "%s:%llu: %s\n", in->file_name, (unsigned long long)line_no, msg);
    }
}

static void show_progress(ingest_t *in, bool force)
{
    double secs = (double)(te_time_mono_ns() - in->start_ns) / 1e9;
    te_cli_progress_update(&in->progress, force, "%llu lines, %llu rejected, %.0f events/s",
                           (unsigned long long)in->lines, (unsigned long long)in->rejected,
                           secs > 0 ? (double)in->parsed / secs : 0.0);
}

static int on_line(void *ud, const char *line, size_t len, uint64_t line_no, const char *error)
{
    ingest_t *in = ud;
    te_err_t err;

    in->lines++;
    if (error) {
        report_line_error(in, line_no, error);
        return 0;
    }
    err.code = 0;
    err.msg[0] = '\0';
    int rc = te_ndjson_add_event(&in->batch, BATCH_EVENTS, line, len, &in->opts, &err);
    if (rc == TE_ENOMEM) {
        in->fatal = rc;
        return rc;
    }
    if (rc < 0) {
        report_line_error(in, line_no, err.msg);
        return 0;
    }
    in->parsed++;
    if (in->batch->n >= BATCH_EVENTS) {
        rc = submit(in);
        if (rc < 0) {
            in->fatal = rc;
            return rc;
        }
        if (in->progress.tty)
            show_progress(in, false);
    }
    return 0;
}

/* An input that may be gzip: plain bytes pass through, gzip is inflated. */
typedef struct input {
    int fd;
    bool started, gz, in_member, eof;
    z_stream z;
    unsigned char *zbuf;     /* compressed bytes (gzip only) */
    const char *error;       /* a gzip error, for the message */
} input_t;

static void input_close(input_t *x)
{
    if (x->gz)
        inflateEnd(&x->z);
    free(x->zbuf);
}

/* Reads up to cap plain bytes into buf: > 0 bytes, 0 at the end, -1 with
 * errno set or x->error for bad gzip data. */
static ssize_t input_read(input_t *x, char *buf, size_t cap)
{
    if (!x->started) {
        x->started = true;
        ssize_t n = read(x->fd, buf, cap);
        if (n < 2 || (unsigned char)buf[0] != 0x1f || (unsigned char)buf[1] != 0x8b)
            return n;
        x->zbuf = malloc(READ_BYTES);
        if (!x->zbuf) {
            errno = ENOMEM;
            return -1;
        }
        memcpy(x->zbuf, buf, (size_t)n);
        memset(&x->z, 0, sizeof(x->z));
        if (inflateInit2(&x->z, 16 + MAX_WBITS) != Z_OK) {
            x->error = "cannot start zlib";
            return -1;
        }
        x->gz = true;
        x->in_member = true;
        x->z.next_in = x->zbuf;
        x->z.avail_in = (uInt)n;
    }
    if (!x->gz)
        return read(x->fd, buf, cap);
    x->z.next_out = (unsigned char *)buf;
    x->z.avail_out = (uInt)cap;
    while (x->z.avail_out == cap) {
        if (x->z.avail_in == 0 && !x->eof) {
            ssize_t n = read(x->fd, x->zbuf, READ_BYTES);
            if (n < 0)
                return -1;
            if (n == 0)
                x->eof = true;
            x->z.next_in = x->zbuf;
            x->z.avail_in = (uInt)n;
        }
        if (x->z.avail_in == 0 && x->eof) {
            if (x->in_member) {
                x->error = "the gzip data ends early (truncated file?)";
                return -1;
            }
            break;
        }
        if (!x->in_member) { /* another member follows */
            inflateReset(&x->z);
            x->in_member = true;
        }
        int zr = inflate(&x->z, Z_NO_FLUSH);
        if (zr == Z_STREAM_END) {
            x->in_member = false;
        } else if (zr != Z_OK && zr != Z_BUF_ERROR) {
            x->error = x->z.msg ? x->z.msg : "bad gzip data";
            return -1;
        }
    }
    return (ssize_t)(cap - x->z.avail_out);
}

/* Reads one file (or stdin for "-") through the splitter. Returns 0 or the
 * error already printed as a negative code. */
static int ingest_file(ingest_t *in, const char *path, char *buf)
{
    int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY);
    te_ndjson_t nd;
    int rc = 0;
    input_t inp = {.fd = fd};

    in->file_name = fd == STDIN_FILENO ? "stdin" : path;
    if (fd < 0) {
        te_cli_progress_done(&in->progress);
        fprintf(stderr, "%s ingest: cannot open %s: %s\n", TE_CLI_PROG, path, strerror(errno));
        return TE_EIO;
    }
#ifdef POSIX_FADV_SEQUENTIAL
    if (fd != STDIN_FILENO)
        (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
    te_ndjson_init(&nd, 0, on_line, in);
    for (;;) {
        /* input that trickles in (a pipe from `tail -f`): do not let a part
         * batch wait for 10,000 lines; store what we have after 200 ms */
        if (in->batch && in->batch->n > 0) {
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            if (poll(&pfd, 1, 200) == 0 && submit(in) < 0) {
                in->fatal = TE_ECLOSED;
                break;
            }
        }
        ssize_t n = input_read(&inp, buf, READ_BYTES);
        if (n < 0 && !inp.error && errno == EINTR)
            continue;
        if (n < 0) {
            te_cli_progress_done(&in->progress);
            fprintf(stderr, "%s ingest: cannot read %s: %s\n", TE_CLI_PROG, in->file_name,
                    inp.error ? inp.error : strerror(errno));
            rc = TE_EIO;
            break;
        }
        if (n == 0) {
            rc = te_ndjson_finish(&nd);
            break;
        }
        in->opts.recv_ts_ns = te_time_now_ns();
        rc = te_ndjson_feed(&nd, buf, (size_t)n);
        if (rc != 0)
            break;
    }
    te_ndjson_close(&nd);
    input_close(&inp);
    if (fd != STDIN_FILENO)
        close(fd);
    if (rc == TE_ENOMEM || in->fatal == TE_ENOMEM) {
        te_cli_progress_done(&in->progress);
        fprintf(stderr, "%s ingest: out of memory\n", TE_CLI_PROG);
        return TE_ENOMEM;
    }
    if (in->fatal == TE_ECLOSED) {
        te_cli_progress_done(&in->progress);
        fprintf(stderr, "%s ingest: the writer stopped unexpectedly\n", TE_CLI_PROG);
        return TE_ECLOSED;
    }
    return rc < 0 ? rc : 0;
}

static void print_summary(ingest_t *in)
{
    double secs = (double)(te_time_mono_ns() - in->start_ns) / 1e9;
    uint64_t accepted = in->stored + in->duplicates;
    printf("accepted %llu, rejected %llu", (unsigned long long)accepted,
           (unsigned long long)in->rejected);
    if (in->duplicates)
        printf(" (%llu duplicates already stored)", (unsigned long long)in->duplicates);
    printf(" in %.2f s (%.0f events/s)\n", secs, secs > 0 ? (double)accepted / secs : 0.0);
}

int te_cli_ingest(int argc, char **argv)
{
    te_cli_args_t a;
    te_err_t err = {0};
    te_config_t *cfg = NULL;
    te_store_t *st = NULL;
    char *buf = NULL;
    ingest_t in;
    int rc, io_rc = 0;
    bool mutex_ready = false;

    memset(&in, 0, sizeof(in));
    if (te_cli_parse(&a, ingest_opts, sizeof(ingest_opts) / sizeof(ingest_opts[0]), argc, argv,
                     &err) < 0)
        return te_cli_usage_error("ingest", "%s", err.msg);
    if (a.help) {
        te_cli_help_ingest(stdout);
        rc = TE_CLI_OK;
        goto out;
    }
    if (a.npos == 0) {
        rc = te_cli_usage_error("ingest", "no input (give one or more FILEs, or - for stdin)");
        goto out;
    }
    const char *kind = te_cli_get(&a, "kind");
    if (kind && !te_kind_valid(kind, strlen(kind))) {
        rc = te_cli_usage_error("ingest", "--kind \"%s\" must match [a-z][a-z0-9_.-]{0,63}",
                                kind);
        goto out;
    }
    size_t nstdin = 0;
    for (size_t i = 0; i < a.npos; i++)
        nstdin += strcmp(a.pos[i], "-") == 0;
    if (nstdin > 1) {
        rc = te_cli_usage_error("ingest", "stdin (-) can be read only once");
        goto out;
    }
    /* every file must be readable before anything is stored */
    for (size_t i = 0; i < a.npos; i++) {
        if (strcmp(a.pos[i], "-") != 0 && access(a.pos[i], R_OK) != 0) {
            rc = te_cli_fail("ingest", "cannot read %s: %s", a.pos[i], strerror(errno));
            goto out;
        }
    }
    rc = te_cli_load_config("ingest", &a, &cfg);
    if (rc != 0)
        goto out;
    if (te_redact_install(cfg->redact_json, &err) < 0) { /* events are redacted as parsed */
        rc = te_cli_fail("ingest", "%s", err.msg);
        goto out;
    }

    te_store_opts_t so = {.path = cfg->db_path, .durability = (te_durability_t)cfg->durability};
    if (te_store_open(&so, &st, &err) < 0) {
        rc = te_cli_fail("ingest", "%s", err.msg);
        goto out;
    }
    if (pthread_mutex_init(&in.lock, NULL) != 0) {
        rc = te_cli_fail("ingest", "cannot create a mutex");
        goto out;
    }
    mutex_ready = true;
    /* three batches in flight keep the writer busy; more would only cost memory */
    te_writer_opts_t wo = {.max_queued_events = cfg->queue_events < QUEUE_EVENTS
                                                    ? cfg->queue_events
                                                    : QUEUE_EVENTS};
    if (te_writer_start(st, &wo, &in.writer, &err) < 0) {
        rc = te_cli_fail("ingest", "%s", err.msg);
        goto out;
    }
    st = NULL; /* the writer owns it now */
    buf = malloc(READ_BYTES);
    if (!buf) {
        rc = te_cli_fail("ingest", "out of memory");
        goto out;
    }
    in.opts.default_kind = kind;
    in.opts.default_source = te_cli_get(&a, "source");
    in.start_ns = te_time_mono_ns();
    te_cli_progress_init(&in.progress);

    for (size_t i = 0; i < a.npos && io_rc == 0; i++)
        io_rc = ingest_file(&in, a.pos[i], buf);
    if (io_rc != TE_ENOMEM && io_rc != TE_ECLOSED && submit(&in) < 0)
        io_rc = TE_ECLOSED;
    te_writer_stop(in.writer); /* commits what is queued, runs every done */
    in.writer = NULL;
    if (in.progress.tty)
        show_progress(&in, true);
    te_cli_progress_done(&in.progress);

    if (in.printed_errors > MAX_PRINTED_ERRORS)
        fprintf(stderr, "... %llu more errors\n",
                (unsigned long long)(in.printed_errors - MAX_PRINTED_ERRORS));
    if (in.failed)
        fprintf(stderr, "%s ingest: %llu events were not stored: %s\n", TE_CLI_PROG,
                (unsigned long long)in.failed, in.commit_err.msg);
    print_summary(&in);
    rc = (io_rc == 0 && in.rejected == 0 && in.failed == 0) ? TE_CLI_OK : TE_CLI_FAIL;
out:
    te_batch_free(in.batch);
    te_writer_stop(in.writer);
    te_store_close(st);
    if (mutex_ready) {
        free_spent(&in);
        pthread_mutex_destroy(&in.lock);
    }
    free(in.spent);
    free(buf);
    te_redact_uninstall();
    te_config_free(cfg);
    te_cli_args_free(&a);
    return rc;
}
