/*
 * udp.h - events over UDP datagrams (SPEC sections 3 and 5).
 *
 * THREAD: loop.
 *
 * A datagram holds one JSON event, or several NDJSON lines (clients may
 * batch small events into one packet, as Fluent Bit's in_udp accepts); each
 * line is one event.
 *
 * The one idea: UDP cannot push back, so a full queue drops and counts
 * (te_events_dropped_total{listener="udp"}). Datagrams received in one loop
 * iteration are collected into one batch, submitted from a uv_check handle
 * (after the poll phase) or at TE_UDP_BATCH_EVENTS. A datagram is at most
 * 64 KiB; a truncated one is rejected.
 */
#ifndef TE_INGEST_UDP_H
#define TE_INGEST_UDP_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "../core/err.h"

struct te_writer;
struct te_batch;

#define TE_UDP_BATCH_EVENTS 1000
#define TE_UDP_MAX_DATAGRAM (64u * 1024u)

typedef struct te_udp_listener te_udp_listener_t;

typedef struct te_udp_stats {
    uint64_t datagrams;
    uint64_t submitted;   /* events handed to the writer */
    uint64_t rejected;    /* lines (datagrams) that were not valid events */
    uint64_t dropped;     /* valid events dropped because the queue was full */
} te_udp_stats_t;

/* Binds addr ("HOST:PORT", "[v6]:PORT") and starts receiving. Batches go to
 * w with done/done_ud. On failure *out is untouched and err names the
 * address ("udp: cannot listen on ...: address already in use (...)"). */
int te_udp_listener_start(uv_loop_t *loop, const char *addr, struct te_writer *w,
                          void (*done)(struct te_batch *b), void *done_ud,
                          te_udp_listener_t **out, te_err_t *err);

/* The address actually bound. */
const char *te_udp_listener_address(const te_udp_listener_t *u);

/* Stops receiving, submits the pending batch (waiting for room) and closes
 * the handles. Returns the events submitted. Idempotent. */
size_t te_udp_listener_close(te_udp_listener_t *u);

/* Fills the counters. */
void te_udp_listener_stats(const te_udp_listener_t *u, te_udp_stats_t *out);

/* Frees the listener after the loop ran its close callbacks. NULL is a no-op. */
void te_udp_listener_free(te_udp_listener_t *u);

#endif
