/*
 * stream.h - NDJSON over TCP and Unix sockets (SPEC sections 3 and 5), and
 * the listen-address helpers every listener shares.
 *
 * THREAD: loop.
 *
 * The one idea: back-pressure by not reading. Each connection splits its
 * bytes into lines (ndjson.h), parses them into a pending batch and submits
 * it at the end of every read callback (or at TE_STREAM_BATCH_EVENTS). When
 * the writer queue is full the connection stops reading, keeps its batch and
 * waits on the listener's paused list; te_stream_listener_resume (called by
 * the engine whenever batches complete) retries and starts reading again.
 * Nothing is answered on these sockets; rejected lines are counted and
 * logged at most once a second per listener, with a count.
 */
#ifndef TE_INGEST_STREAM_H
#define TE_INGEST_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "../core/err.h"

struct sockaddr;
struct sockaddr_storage;
struct te_writer;
struct te_batch;

#define TE_STREAM_BATCH_EVENTS 1000

/* Parses "HOST:PORT" (IPv4 literal, "localhost", "*" or "0.0.0.0") or
 * "[IPv6]:PORT" into out. Port 0 asks for an ephemeral port. Returns 0 or
 * TE_EINVAL with a message naming the text ("bad address \"x\": expected
 * HOST:PORT or [IPv6]:PORT"). */
int te_addr_parse(const char *text, struct sockaddr_storage *out, te_err_t *err);

/* Formats an IPv4/IPv6 socket address as "127.0.0.1:4380" / "[::1]:4380". */
void te_addr_format(const struct sockaddr *sa, char *buf, size_t cap);

/* Builds the error of a failed bind/listen: "<name>: cannot listen on ADDR:
 * <uv message> (is another telemetry-engine running? use --<name> ADDR)"
 * and returns TE_EIO. */
int te_addr_listen_error(te_err_t *err, const char *name, const char *addr, int uv_rc);

typedef struct te_stream_listener te_stream_listener_t;

typedef enum { TE_STREAM_TCP = 0, TE_STREAM_UNIX } te_stream_type_t;

typedef struct te_stream_stats {
    uint64_t submitted;    /* events handed to the writer */
    uint64_t rejected;     /* lines that were not valid events */
    uint64_t connections;  /* open now */
    uint64_t paused;       /* connections waiting for queue room now */
} te_stream_stats_t;

/* Binds and listens. addr: "HOST:PORT" (TCP) or a socket path (Unix: a
 * stale socket file is removed first and its folder created). Batches go to
 * w; their done callback is done with ud done_ud. On success *out is the
 * listener (te_stream_listener_free after the loop stopped). */
int te_stream_listener_start(uv_loop_t *loop, te_stream_type_t type, const char *addr,
                             struct te_writer *w, void (*done)(struct te_batch *b),
                             void *done_ud, te_stream_listener_t **out, te_err_t *err);

/* The address actually bound ("127.0.0.1:4381", or the socket path). */
const char *te_stream_listener_address(const te_stream_listener_t *l);

/* Retries the paused connections' batches and restarts reading those that
 * fit. Call after batches completed. */
void te_stream_listener_resume(te_stream_listener_t *l);

/* Stops accepting and reading; every pending batch is submitted, waiting for
 * room (te_writer_submit_wait), then every connection is closed. Call before
 * te_writer_stop. Returns the events submitted this way. Idempotent. */
size_t te_stream_listener_close(te_stream_listener_t *l);

/* Fills the counters. */
void te_stream_listener_stats(const te_stream_listener_t *l, te_stream_stats_t *out);

/* Frees the listener after the loop ran its close callbacks (a Unix listener
 * also removes its socket file). NULL is a no-op. */
void te_stream_listener_free(te_stream_listener_t *l);

#endif
